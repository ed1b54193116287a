"""Handover: a phone's attachment to a device of the second tier (its cell / edge) changes over time.

``mobility:`` gives, per phone, the times it hands over and the device it moves to: an explicit
``schedule`` (``{mobile index: [[time_s, device index], ...]}``, sorted by time), a handover trace
``file`` (CSV with columns ``time_s, mobile, cell``, e.g. cell changes logged on a drive) or random ``dwell``
times per cell (exponential with mean ``mean_dwell_s``, the next cell uniform among the others, from
the keyed ``MOBILITY`` stream). Each handover interrupts that phone's transfers on its access links
(the links leaving the first tier) for ``interruption_s``: the phone's bandwidth on them (its private
path, or its weight on a shared link) is zero for that window, so a transfer interrupted for h seconds
finishes exactly h later on a constant link, and transfer times stay exact.

Rule for work in flight: a request is served along the path its phone had when the request was born
(the edge, and what that edge attaches to, are pinned at arrival); a request that was on the old edge
at a handover still completes there and its reply reaches the phone through its current cell. New
requests go to the new edge. The access link a transfer uses is the phone's current cell: on a private
link its own channel; on a shared cell (``shared: true``) a transfer still active at a handover moves its
remaining bits to the new cell at that instant and shares that cell from then on (its weight zero on it
for the interruption), while the users left on the old cell share it without it (simulator/sharing.py).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .bandwidth import BandwidthPath
from .errors import ConfigError
from .schema import positive, require


def _is_index(value: Any) -> bool:
    """An integer index, as YAML gives it (``3`` or ``"3"``; not ``1.5``, ``true`` or ``"x"``)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and value.strip().lstrip("-").isdigit()


def _schedule(value: Any, path: str) -> dict[int, list[tuple[float, int]]]:
    if not isinstance(value, dict):
        raise ConfigError(f"'{path}' must be a mapping of mobile index: [[time_s, device index], ...]")
    out = {}
    for k, rows in value.items():
        key = f"{path}.{k}"
        if not isinstance(rows, list) or not all(isinstance(r, list | tuple) and len(r) == 2 for r in rows):
            raise ConfigError(f"'{key}' must be a list of [time_s, device index] pairs")
        try:
            times = [float(r[0]) for r in rows]
        except (TypeError, ValueError):
            raise ConfigError(f"'{key}': handover times must be numbers") from None
        require(all(b > a for a, b in zip(times, times[1:], strict=False)),
                f"'{key}' must be sorted by time (strictly increasing), got {times}")
        require(all(0 <= t < math.inf for t in times), f"'{key}' times must be >= 0 and finite")
        indices = [k, *(r[1] for r in rows)]
        if not all(_is_index(i) for i in indices):
            raise ConfigError(f"'{key}': mobile and device indices must be integers")
        out[int(k)] = [(t, int(r[1])) for t, r in zip(times, rows, strict=True)]
    return out


def read_handovers(file: str, path: str) -> dict[int, list[tuple[float, int]]]:
    """A handover trace (CSV, header ``time_s,mobile,cell``, one row per handover) as a schedule."""
    import csv

    from .traces import expand_path

    p = expand_path(file)
    if not p.is_file():
        raise ConfigError(f"'{path}': handover file not found: {file}")
    rows: dict[int, list[list[float]]] = {}
    try:
        with open(p, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            cols = [c.strip() for c in reader.fieldnames or []]
            if not {"time_s", "mobile", "cell"} <= set(cols):
                raise ConfigError(f"'{path}': {file} needs a header with columns time_s, mobile, cell "
                                  f"(got {', '.join(cols) or 'none'})")
            for n, row in enumerate(reader, 2):
                row = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
                try:
                    t, m, c = float(row["time_s"]), int(row["mobile"]), int(row["cell"])
                except ValueError:
                    raise ConfigError(f"'{path}': {file}:{n}: time_s must be a number, mobile and cell "
                                      f"integers") from None
                if not math.isfinite(t):
                    raise ConfigError(f"'{path}': {file}:{n}: time_s must be finite")
                rows.setdefault(m, []).append([t, c])
    except UnicodeDecodeError:
        raise ConfigError(f"'{path}': {file} is not a text (UTF-8) file") from None
    return _schedule({m: r for m, r in rows.items()}, path)


@dataclass
class MobilityConfig:
    """When phones hand over between devices of the second tier, and what a handover costs."""

    interruption_s: float = 0.05
    schedule: dict[int, list[tuple[float, int]]] | None = field(default=None, metadata={"convert": _schedule})
    mean_dwell_s: float | None = None
    file: str | None = None  # a handover trace: CSV with columns time_s, mobile, cell (read into schedule)

    def check(self, path: str) -> None:
        positive(self.interruption_s, f"{path}.interruption_s", allow_zero=True)
        positive(self.mean_dwell_s, f"{path}.mean_dwell_s")
        given = [k for k in ("schedule", "mean_dwell_s", "file") if getattr(self, k) is not None]
        require(len(given) == 1, f"'{path}' needs exactly one of 'schedule', 'file' or 'mean_dwell_s'"
                                 + (f" (got {', '.join(given)})" if given else ""))
        if self.file is not None:  # read in: the resolved config then holds the schedule itself
            self.schedule, self.file = read_handovers(self.file, f"{path}.file"), None

    def validate(self, n_mobiles: int, n_cells: int, path: str = "mobility") -> None:
        """Indices against the scenario's tier sizes."""
        for m, rows in (self.schedule or {}).items():
            require(0 <= m < n_mobiles, f"'{path}.schedule.{m}': no mobile {m} (there are {n_mobiles})")
            for _, d in rows:
                require(0 <= d < n_cells, f"'{path}.schedule.{m}': no device {d} in the second tier")


class Handovers:
    """One phone's handover times and cells, generated lazily (random dwell) or from a schedule."""

    def __init__(self, first: int, schedule: list[tuple[float, int]] | None, n_cells: int,
                 mean_dwell_s: float | None, rng: np.random.Generator | None):
        self.times: list[float] = [-math.inf]
        self.cells: list[int] = [first]
        self._rows = iter(schedule or [])
        self._random = schedule is None
        self._n, self._mean, self._rng = n_cells, mean_dwell_s, rng
        self._done = False

    def _extend(self) -> None:
        if self._random:
            t = max(self.times[-1], 0.0) + float(self._rng.exponential(self._mean))
            cell = self.cells[-1]
            if self._n > 1:
                cell = (cell + 1 + int(self._rng.integers(self._n - 1))) % self._n
            self.times.append(t)
            self.cells.append(cell)
            return
        row = next(self._rows, None)
        if row is None:
            self._done = True
            return
        self.times.append(row[0])
        self.cells.append(row[1])

    def _cover(self, t: float) -> None:
        while not self._done and self.times[-1] <= t:
            self._extend()

    def cell_at(self, t: float) -> int:
        """The cell the phone is attached to at time t (a handover at t already happened)."""
        self._cover(t)
        return self.cells[bisect.bisect_right(self.times, t) - 1]

    def after(self, t: float) -> float:
        """The first handover time strictly after t (inf if none)."""
        self._cover(t)
        i = bisect.bisect_right(self.times, t)
        return self.times[i] if i < len(self.times) else math.inf


def with_blackouts(path: BandwidthPath, handovers: Handovers, h: float) -> BandwidthPath:
    """``path`` with zero bandwidth for ``h`` seconds from each handover (exact, generated lazily)."""

    def steps() -> Iterator[tuple[float, float]]:
        t = 0.0
        while True:
            nxt_ho = handovers.after(t)
            last = handovers.times[bisect.bisect_right(handovers.times, t) - 1]
            in_gap = last + h > t
            nxt = min(path.next_step(t), nxt_ho, last + h if in_gap else math.inf)
            yield nxt - t, 0.0 if in_gap else path.rate_at(t) / 1e6
            t = nxt

    return BandwidthPath(steps())


def constant_one() -> BandwidthPath:
    """Weight 1 forever (a fair-share user's weight before blackouts)."""
    return BandwidthPath(iter([(1e12, 1e-6)] * 1_000))
