"""Reading measured bandwidth traces into piecewise-constant (time, Mbit/s) steps.

A trace is a text file of samples, one per line; throughput is held constant until the next sample.

- Without a header row (``format: columns``, or ``auto`` when the first line is numbers): time in the
  first field, throughput in the second, e.g. the two-column text of ``shared/data/traces`` (Pensieve,
  HSDPA, FCC, Oboe): ``time_s  mbps``.
- With a header row (``format: csv``, or ``auto`` when the first line is not all numbers): columns by
  name, ``time_column`` and the throughput column (``mbps_column``, ``kbps_column``, ``bps_column`` or
  ``throughput_column`` with ``throughput_unit``), optionally filtered by column values (``where``, e.g.
  one 5Gophers run); without a time column samples are ``interval_s`` apart.

As researchers publish them: fields separated by whitespace, tabs, ``,`` or ``;`` (``separator``,
detected from the first line: ``;`` if present, else a tab, else ``,``, else whitespace); a comma inside
a number of a ``;``-, tab- or whitespace-separated file is a decimal comma; fields and names are
stripped of surrounding spaces; ``#`` lines and blank lines are skipped.

Times (``time_format``): ``s`` (seconds: relative, or Unix timestamps), ``ms`` (milliseconds: relative or
Unix), ``clock`` (wall-clock ``HH:MM:SS[.fff]``, a day added when the clock steps back past midnight, or
an ISO date-time ``YYYY-MM-DD HH:MM:SS``); ``auto``: ``clock`` if the first time has a ``:``, ``ms`` if the
time column's name says so (``time_ms``, ``timestamp (ms)``) or the first time is at least 1e11 (a Unix
time in milliseconds: 1e11 seconds would be 3,000 years), else ``s``. Only differences of times matter.

Throughput (``throughput_unit``): ``bps``, ``kbps``, ``mbps`` or ``gbps`` (also ``bit/s``, ``kbit/s``,
``Mbit/s``, ``Gbit/s``); ``auto``: from the column's name (``throughput_kbps``, ``rate (Mbit/s)``,
``bits_per_second``), Mbit/s for ``mbps_column`` and for a file without a header; a column whose name
gives no unit needs ``throughput_unit``.
"""

from __future__ import annotations

import csv
import math
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import numpy as np

from .errors import UserError

FORMATS = ("auto", "columns", "csv")
SEPARATORS = {"auto": "auto", ",": ",", ";": ";", "\t": "\t", "tab": "\t", " ": " ", "whitespace": " ",
              "space": " "}
TIME_FORMATS = ("auto", "s", "ms", "clock")
UNITS = {"bps": 1e-6, "bit/s": 1e-6, "kbps": 1e-3, "kbit/s": 1e-3, "mbps": 1.0, "mbit/s": 1.0,
         "gbps": 1e3, "gbit/s": 1e3}  # -> Mbit/s
MAX_TRACE_BYTES = 256 * 2**20


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


def unit_factor(unit: str) -> float | None:
    """Mbit/s per unit of ``unit`` (``bps``, ``kbit/s``, ...); None when unknown."""
    return UNITS.get(unit.strip().lower())


@lru_cache(maxsize=256)
def load_trace(path: str, fmt: str = "auto", time_column: str | None = None,
               mbps_column: str | None = None, interval_s: float = 1.0,
               where: tuple[tuple[str, str], ...] = (), *, separator: str = "auto",
               time_format: str = "auto", throughput_unit: str = "auto",
               throughput_column: str | None = None) -> TraceSteps:
    """Load and validate a trace; cached, so a sweep reads each file once per process.

    Errors name the file as given (``$VARS`` not expanded) and the line, and say what was expected; they
    never echo the file's content."""
    p = expand_path(path)
    if not p.is_file():
        raise TraceError(f"trace file not found: {path}")
    _check_options(path, fmt, separator, time_format, throughput_unit, mbps_column, throughput_column)
    rows, sep = _rows(p, path, SEPARATORS[separator])
    if not rows:
        raise TraceError(f"{path}: no samples")
    num = _number if sep == "," else _number_or_decimal_comma
    if fmt == "auto":
        fmt = "columns" if all(_looks_numeric(x, num) for x in rows[0][1][:2]) else "csv"
    if fmt == "columns":
        if time_column or mbps_column or throughput_column or where:
            raise TraceError(f"{path}: the file has no header row, so columns cannot be chosen by name "
                             f"(time is the first field, throughput the second)")
        times, mbps, lines = _columns(path, rows, num, time_format, throughput_unit)
    else:
        times, mbps, lines = _named(path, rows, num, time_column, mbps_column, throughput_column, interval_s,
                                    dict(where), time_format, throughput_unit)
    if len(times) == 0:
        raise TraceError(f"{path}: no samples")
    for i in range(len(times)):
        if not math.isfinite(times[i]):
            raise TraceError(f"{path}:{lines[i]}: expected a finite time, got {times[i]}")
        if not math.isfinite(mbps[i]) or mbps[i] < 0:
            raise TraceError(f"{path}:{lines[i]}: negative or invalid throughput {mbps[i]}")
        if i and not times[i] > times[i - 1]:
            raise TraceError(f"{path}:{lines[i]}: time {times[i]} does not increase (previous {times[i - 1]})")
    if not math.isfinite(2 * (times[-1] - times[0])):
        raise TraceError(f"{path}: its times span more than floating point can hold")
    t = np.asarray(times, dtype=np.float64)
    tail = float(np.median(np.diff(t))) if len(t) > 1 else interval_s
    steps = TraceSteps(times=t, mbps=np.asarray(mbps, dtype=np.float64), tail_s=tail, source=str(p))
    if steps.mean_mbps <= 0:
        raise TraceError(f"{path}: throughput is zero throughout")
    return steps


def _check_options(path: str, fmt: str, separator: str, time_format: str, unit: str,
                   mbps_column: str | None, throughput_column: str | None) -> None:
    if fmt not in FORMATS:
        raise TraceError(f"{path}: unknown trace format {fmt!r} (use {', '.join(FORMATS)})")
    if separator not in SEPARATORS:
        raise TraceError(f"{path}: unknown separator {separator!r} (use auto, ',', ';', tab or whitespace)")
    if time_format not in TIME_FORMATS:
        raise TraceError(f"{path}: unknown time_format {time_format!r} (use {', '.join(TIME_FORMATS)})")
    if unit != "auto" and unit_factor(unit) is None:
        raise TraceError(f"{path}: unknown throughput_unit {unit!r} (use auto, bps, kbps, mbps or gbps)")
    if mbps_column and throughput_column:
        raise TraceError(f"{path}: give mbps_column or throughput_column, not both")
    if mbps_column and unit != "auto" and unit_factor(unit) != 1.0:
        raise TraceError(f"{path}: mbps_column holds Mbit/s; for another unit use throughput_column "
                         f"with throughput_unit")


def _rows(p: Path, path: str, sep: str) -> tuple[list[tuple[int, list[str]]], str]:
    """(line number, stripped fields) of every line that is not blank or a ``#`` comment, and the
    separator (``auto`` resolved from the first of them)."""
    if p.stat().st_size > MAX_TRACE_BYTES:
        raise TraceError(f"{path}: larger than {MAX_TRACE_BYTES // 2**20} MiB, too large for a trace")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise TraceError(f"{path}: not a text (UTF-8) file") from None
    except OSError as e:
        raise TraceError(f"{path}: cannot be read ({e.strerror or type(e).__name__})") from None
    if "\x00" in text:
        raise TraceError(f"{path}: not a text file (it contains NUL bytes)")
    out = []
    for n, line in enumerate(text.split("\n"), 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if sep == "auto":
            sep = ";" if ";" in s else "\t" if "\t" in s else "," if "," in s else " "
        if sep == " ":
            fields = s.split()
        elif sep == "\t":
            fields = s.split("\t") if "\t" in s else s.split()
        else:
            fields = next(csv.reader([s], delimiter=sep))
        out.append((n, [f.strip() for f in fields]))
    return out, sep


def _number(field: str) -> float:
    return float(field)


def _number_or_decimal_comma(field: str) -> float:
    """A number; where ``,`` does not separate fields, a single comma is the decimal point (``0,5``)."""
    try:
        return float(field)
    except ValueError:
        if field.count(",") == 1:
            return float(field.replace(",", "."))
        raise


_CLOCK = re.compile(r"^(\d+):([0-5]?\d):([0-5]?\d(?:\.\d*)?)$")
_EPOCH = datetime(1970, 1, 1)


def _clock(field: str) -> tuple[float, bool]:
    """Seconds of a wall-clock ``HH:MM:SS[.fff]`` (True: a time of day) or an ISO date-time (False)."""
    m = _CLOCK.match(field)
    if m:
        return int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3]), True
    dt = datetime.fromisoformat(field.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        return (dt - _EPOCH).total_seconds(), False
    return (dt - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds(), False


def _looks_numeric(field: str, num) -> bool:
    try:
        num(field)
        return True
    except ValueError:
        pass
    try:
        _clock(field)
        return True
    except ValueError:
        return False


def _name_tokens(name: str | None) -> list[str]:
    return re.split(r"[^a-z]+", (name or "").lower())


def _time_reader(num, time_format: str, first: str, column: str | None):
    """A function field -> seconds for this file's time column (``time_format`` resolved from the first)."""
    if time_format == "auto":
        tokens = _name_tokens(column)
        if ":" in first:
            time_format = "clock"
        elif any(t in ("ms", "msec", "millis", "milliseconds") for t in tokens):
            time_format = "ms"
        else:
            try:
                time_format = "ms" if num(first) >= 1e11 else "s"
            except ValueError:
                time_format = "s"  # reported by the reader, with its line
    if time_format == "s":
        return num
    if time_format == "ms":
        return lambda f: num(f) / 1e3
    state = {"prev": None, "day": 0.0}

    def clock(f: str) -> float:
        t, time_of_day = _clock(f)
        prev = state["prev"]
        if time_of_day and prev is not None and t + state["day"] < prev - 12 * 3600:
            state["day"] += 86400.0  # the clock passed midnight
        state["prev"] = t + state["day"]
        return state["prev"]
    return clock


_UNIT_IN_NAME = re.compile(r"(?<![a-z])([gmk]?)(?:bps|bits?/s|bits?_?per_?s(?:ec(?:ond)?)?)(?![a-z])")


def _unit_from_name(name: str) -> float | None:
    """Mbit/s per unit of a column whose name says its unit (``throughput_kbps``, ``rate (Mbit/s)``,
    ``bits_per_second``); None when it does not."""
    m = _UNIT_IN_NAME.search(name.lower())
    if m:
        return {"g": 1e3, "m": 1.0, "k": 1e-3, "": 1e-6}[m[1]]
    return 1.0 if "mbps" in name.lower() else None


def _columns(path: str, rows, num, time_format: str, unit: str) -> tuple[list[float], list[float], list[int]]:
    factor = 1.0 if unit == "auto" else unit_factor(unit)
    read_time = _time_reader(num, time_format, rows[0][1][0], None)
    times, mbps, lines = [], [], []
    for n, fields in rows:
        if len(fields) < 2:
            raise TraceError(f"{path}:{n}: expected two fields, time and throughput")
        try:
            times.append(read_time(fields[0]))
        except ValueError:
            raise TraceError(f"{path}:{n}: expected a time in the first field") from None
        try:
            mbps.append(num(fields[1]) * factor)
        except ValueError:
            raise TraceError(f"{path}:{n}: expected a throughput (a number) in the second field") from None
        lines.append(n)
    return times, mbps, lines


def _named(path: str, rows, num, time_column: str | None, mbps_column: str | None, throughput_column: str | None,
           interval_s: float, where: dict[str, str], time_format: str,
           unit: str) -> tuple[list[float], list[float], list[int]]:
    (_, cols), body = rows[0], rows[1:]
    listed = ", ".join(cols) if len(", ".join(cols)) <= 200 else ", ".join(cols)[:197] + "..."
    col = mbps_column or throughput_column
    if col is None:
        candidates = [c for c in cols if c != time_column]
        col = next((c for c in candidates if "mbps" in c.lower()), None)
        col = col or next((c for c in candidates if _unit_from_name(c) is not None), None)
        col = col or next((c for c in candidates if any(w in c.lower() for w in ("throughput", "bandwidth"))),
                          None)
    for c in [col, time_column, *where]:
        if c is not None and c not in cols:
            raise TraceError(f"{path}: no column {c!r} (columns: {listed})")
    if col is None:
        raise TraceError(f"{path}: set throughput_column (or mbps_column, kbps_column, bps_column) "
                         f"(columns: {listed})")
    if unit != "auto":
        factor = unit_factor(unit)
    elif mbps_column:
        factor = 1.0
    else:
        factor = _unit_from_name(col)
        if factor is None:
            raise TraceError(f"{path}: column {col!r} does not say its unit: set throughput_unit "
                             f"(bps, kbps, mbps or gbps)")
    ti = cols.index(time_column) if time_column else None
    mi = cols.index(col)
    wi = [(cols.index(k), str(v)) for k, v in where.items()]
    kept = [(n, f) for n, f in body if all(i < len(f) and f[i] == v for i, v in wi)]
    read_time = None
    if ti is not None and kept:
        first = kept[0][1][ti] if ti < len(kept[0][1]) else ""
        read_time = _time_reader(num, time_format, first, time_column)
    times, mbps, lines = [], [], []
    for n, fields in kept:
        if mi >= len(fields) or (ti is not None and ti >= len(fields)):
            raise TraceError(f"{path}:{n}: expected {len(cols)} fields (as in the header), got {len(fields)}")
        try:
            mbps.append(num(fields[mi]) * factor)
        except ValueError:
            raise TraceError(f"{path}:{n}: expected a number in column {col!r}") from None
        try:
            times.append(read_time(fields[ti]) if read_time else len(times) * interval_s)
        except ValueError:
            what = "a time" + (" (HH:MM:SS or YYYY-MM-DD HH:MM:SS)" if time_format == "clock" else "")
            raise TraceError(f"{path}:{n}: expected {what} in column {time_column!r}") from None
        lines.append(n)
    return times, mbps, lines
