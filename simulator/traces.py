"""Reading measured bandwidth traces into piecewise-constant (time, Mbit/s) steps.

Two formats:
- ``columns``: the two-column whitespace/tab text of ``shared/data/traces`` (Pensieve, HSDPA, FCC,
  Oboe): ``time_s  mbps`` per line, no header; throughput is held constant until the next sample.
- ``csv``: a CSV with named columns (``time_column``, ``mbps_column``), optionally filtered by column
  values (e.g. one 5Gophers run); without a time column samples are ``interval_s`` apart.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .errors import UserError


class TraceError(UserError):
    """A trace file is missing or malformed (message names the file and line)."""


@dataclass(frozen=True, eq=False)
class TraceSteps:
    """Bandwidth as steps: ``mbps[i]`` holds on ``[times[i], times[i+1])``; the last step lasts
    ``tail_s`` (the median sampling interval) so that a looped trace has a defined period."""

    times: np.ndarray
    mbps: np.ndarray
    tail_s: float
    source: str

    @property
    def durations(self) -> np.ndarray:
        return np.append(np.diff(self.times), self.tail_s)

    @property
    def period_s(self) -> float:
        return float(self.times[-1] - self.times[0] + self.tail_s)

    @property
    def mean_mbps(self) -> float:
        d = self.durations
        return float((self.mbps * d).sum() / d.sum())


def default_shared_data() -> Path:
    """``../shared/data`` relative to the repository root (as profiles are resolved), not the cwd."""
    return Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def expand_path(path: str) -> Path:
    """Expand ``~`` and ``$VARS``; ``$EESIM_SHARED_DATA`` defaults to ``shared/data`` beside the repository
    (``<repository>/../shared/data``), wherever the command is run from."""
    env = dict(os.environ)
    env.setdefault("EESIM_SHARED_DATA", str(default_shared_data()))
    out = path
    for k in sorted(env, key=len, reverse=True):
        out = out.replace("${" + k + "}", env[k]).replace("$" + k, env[k])
    return Path(out).expanduser()


@lru_cache(maxsize=256)
def load_trace(path: str, fmt: str = "auto", time_column: str | None = None,
               mbps_column: str | None = None, interval_s: float = 1.0,
               where: tuple[tuple[str, str], ...] = ()) -> TraceSteps:
    """Load and validate a trace; cached, so a sweep reads each file once per process."""
    p = expand_path(path)
    if not p.is_file():
        raise TraceError(f"trace file not found: {p}")
    if fmt == "auto":
        fmt = "csv" if p.suffix.lower() == ".csv" else "columns"
    if fmt == "columns":
        times, mbps, lines = _read_columns(p)
    elif fmt == "csv":
        times, mbps, lines = _read_csv(p, time_column, mbps_column, interval_s, dict(where))
    else:
        raise TraceError(f"{p}: unknown trace format {fmt!r} (use columns or csv)")
    if len(times) == 0:
        raise TraceError(f"{p}: no samples")
    for i in range(len(times)):
        if not np.isfinite(mbps[i]) or mbps[i] < 0:
            raise TraceError(f"{p}:{lines[i]}: negative or invalid throughput {mbps[i]}")
        if i and not times[i] > times[i - 1]:
            raise TraceError(f"{p}:{lines[i]}: time {times[i]} does not increase (previous {times[i - 1]})")
    t = np.asarray(times, dtype=np.float64)
    tail = float(np.median(np.diff(t))) if len(t) > 1 else interval_s
    steps = TraceSteps(times=t, mbps=np.asarray(mbps, dtype=np.float64), tail_s=tail, source=str(p))
    if steps.mean_mbps <= 0:
        raise TraceError(f"{p}: throughput is zero throughout")
    return steps


def _read_columns(p: Path) -> tuple[list[float], list[float], list[int]]:
    times, mbps, lines = [], [], []
    with open(p, encoding="utf-8-sig") as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if not parts or parts[0].startswith("#"):
                continue
            if len(parts) < 2:
                raise TraceError(f"{p}:{n}: expected 'time_s mbps', got {line.strip()!r}")
            try:
                times.append(float(parts[0]))
                mbps.append(float(parts[1]))
            except ValueError:
                raise TraceError(f"{p}:{n}: not numbers: {line.strip()!r}") from None
            lines.append(n)
    return times, mbps, lines


def _read_csv(p: Path, time_column: str | None, mbps_column: str | None, interval_s: float,
              where: dict[str, str]) -> tuple[list[float], list[float], list[int]]:
    times, mbps, lines = [], [], []
    with open(p, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        cols = reader.fieldnames or []
        mcol = mbps_column or next((c for c in cols if "mbps" in c.lower()), None)
        for c in [mcol, time_column, *where]:
            if c is not None and c not in cols:
                raise TraceError(f"{p}: no column {c!r} (columns: {', '.join(cols)})")
        if mcol is None:
            raise TraceError(f"{p}: set mbps_column (columns: {', '.join(cols)})")
        for n, row in enumerate(reader, 2):
            if any(str(row.get(k)) != str(v) for k, v in where.items()):
                continue
            try:
                mbps.append(float(row[mcol]))
                times.append(float(row[time_column]) if time_column else len(times) * interval_s)
            except (TypeError, ValueError):
                raise TraceError(f"{p}:{n}: not numbers in {mcol!r}/{time_column!r}") from None
            lines.append(n)
    return times, mbps, lines
