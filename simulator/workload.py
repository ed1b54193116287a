"""Request arrivals per mobile device and the profile samples they carry.

Arrival processes (per mobile): ``poisson`` (rate ``rate_per_s``), ``deterministic`` (period
1/rate, random phase), ``mmpp`` (two-state Markov-modulated Poisson: bursts), ``file`` (timestamps
from a file). Stop after ``requests`` in total (split evenly over mobiles) or at ``duration_s``.
Arrivals before ``warmup_s`` are simulated but excluded from statistics.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from .errors import ConfigError
from .schema import positive, require
from .traces import expand_path

ARRIVALS = ("poisson", "deterministic", "mmpp", "file")
MAX_REQUESTS = 10**8  # a bound on what one run may cost, checked before anything is allocated


@dataclass
class MmppConfig:
    """Two (or more) arrival-rate states with exponential dwell times, cycling in order."""

    rates_per_s: list[float] = field(default_factory=lambda: [20.0, 2.0])
    mean_dwell_s: list[float] = field(default_factory=lambda: [2.0, 8.0])

    def check(self, path: str) -> None:
        require(len(self.rates_per_s) >= 2 and len(self.rates_per_s) == len(self.mean_dwell_s),
                f"'{path}' needs rates_per_s and mean_dwell_s of equal length >= 2")
        for i, r in enumerate(self.rates_per_s):
            positive(r, f"{path}.rates_per_s[{i}]", allow_zero=True)
        for i, d in enumerate(self.mean_dwell_s):
            positive(d, f"{path}.mean_dwell_s[{i}]")
        require(any(r > 0 for r in self.rates_per_s), f"'{path}.rates_per_s' must have a positive rate")


@dataclass
class WorkloadConfig:
    """Who sends what, when."""

    arrival: str = "poisson"
    rate_per_s: float = 5.0
    requests: int | None = 1000
    duration_s: float | None = None
    warmup_s: float = 0.0
    mmpp: MmppConfig = field(default_factory=MmppConfig)
    file: str | None = None
    sample_order: str = "random"

    def check(self, path: str) -> None:
        require(self.arrival in ARRIVALS,
                f"'{path}.arrival' must be one of {', '.join(ARRIVALS)}, got {self.arrival!r}")
        positive(self.rate_per_s, f"{path}.rate_per_s")
        positive(self.warmup_s, f"{path}.warmup_s", allow_zero=True)
        if self.requests is not None:
            require(1 <= self.requests <= MAX_REQUESTS,
                    f"'{path}.requests' must be in 1..{MAX_REQUESTS:.0e}, got {self.requests}")
        positive(self.duration_s, f"{path}.duration_s")
        require(self.requests is not None or self.duration_s is not None or self.arrival == "file",
                f"'{path}': set requests or duration_s")
        require(self.sample_order in ("random", "sequential"),
                f"'{path}.sample_order' must be random or sequential, got {self.sample_order!r}")
        if self.arrival == "file":
            require(self.file is not None, f"missing required key '{path}.file' for arrival: file")
            read_timestamps(self.file)

    def mean_rate_per_s(self) -> float:
        """Long-run arrival rate per mobile (an mmpp's time average), for bounding what a run costs."""
        if self.arrival == "mmpp":
            r, d = self.mmpp.rates_per_s, self.mmpp.mean_dwell_s
            return sum(a * b for a, b in zip(r, d, strict=True)) / sum(d)
        return self.rate_per_s

    def expected_horizon_s(self, n_mobiles: int) -> tuple[float, float]:
        """(when the last request is expected to arrive (s), how many requests are expected in all)."""
        if self.arrival == "file":
            t, _ = read_timestamps(self.file or "")
            if self.duration_s is not None:
                t = t[t < self.duration_s]
            n = len(t) if self.requests is None else min(len(t), self.requests)
            return (float(t[n - 1]) if n else 0.0), float(n)
        rate = self.mean_rate_per_s()
        horizon = math.inf if self.duration_s is None else self.duration_s
        if self.requests is not None:
            horizon = min(horizon, self.requests / n_mobiles / rate)
        return horizon, rate * horizon * n_mobiles


def read_timestamps(path: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Arrival times (s) and optional device indices from a file: one time per line, or a CSV with
    columns ``time_s`` and optionally ``device``; read once per version of the file (read-only arrays).

    Errors name the file as given (not with ``$VARS`` expanded) and the line, and say what was expected;
    they never echo the file's content."""
    p = expand_path(path)
    if not p.is_file():
        raise ConfigError(f"arrival file not found: {path}")
    st = p.stat()
    return _read_timestamps(str(p), st.st_mtime_ns, st.st_size, path)


@lru_cache(maxsize=32)
def _read_timestamps(resolved: str, mtime_ns: int, size: int, path: str) -> tuple[np.ndarray, np.ndarray | None]:
    p = Path(resolved)
    times: list[float] = []
    devices: list[int] = []
    lines: list[int] = []
    n, expected = 0, "a number"
    try:
        with open(p, newline="", encoding="utf-8-sig") as f:
            first = f.readline()
            f.seek(0)
            if "time_s" in first:
                expected = "a number in column 'time_s' (and an integer device index in 'device')"
                for n, row in enumerate(csv.DictReader(f), 2):
                    times.append(float(row["time_s"]))
                    if row.get("device") not in (None, ""):
                        devices.append(int(row["device"]))
                        if devices[-1] < 0:
                            raise ConfigError(f"{path}:{n}: expected a non-negative device index")
                    _finite(times[-1], path, n)
                    lines.append(n)
                    if len(times) > MAX_REQUESTS:
                        raise ConfigError(f"{path}: more than {MAX_REQUESTS:.0e} arrival times")
            else:
                expected = "one arrival time in seconds per line"
                for n, line in enumerate(f, 1):
                    if line.strip() and not line.startswith("#"):
                        times.append(float(line.split(",")[0]))
                        _finite(times[-1], path, n)
                        lines.append(n)
                    if len(times) > MAX_REQUESTS:
                        raise ConfigError(f"{path}: more than {MAX_REQUESTS:.0e} arrival times")
    except UnicodeDecodeError:  # (a ValueError: caught first)
        raise ConfigError(f"{path}: not a text (UTF-8) file") from None
    except ConfigError:
        raise
    except (ValueError, TypeError, KeyError):
        raise ConfigError(f"{path}:{n}: expected {expected}") from None
    except csv.Error:
        raise ConfigError(f"{path}:{n}: not a text CSV file (binary content)") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot be read ({e.strerror or type(e).__name__})") from None
    t = np.asarray(times)
    if len(t) == 0:
        raise ConfigError(f"{path}: no arrival times")
    if np.any(t < 0) or np.any(np.diff(t) < 0):
        bad = int(np.argmax(t < 0)) if np.any(t < 0) else int(np.argmax(np.diff(t) < 0)) + 1
        raise ConfigError(f"{path}:{lines[bad]}: arrival times must be non-negative and non-decreasing")
    dev = np.asarray(devices) if len(devices) == len(times) else None
    for a in (t, dev):
        if a is not None:
            a.flags.writeable = False
    return t, dev


def _finite(value: float, path: str, line: int) -> None:
    if not math.isfinite(value):
        raise ConfigError(f"{path}:{line}: expected a finite arrival time in seconds, got {value}")


def arrival_times(cfg: WorkloadConfig, mobile: int, n_mobiles: int,
                  rng: np.random.Generator) -> np.ndarray:
    """Arrival times (s) of one mobile's requests."""
    n = None
    if cfg.requests is not None:
        n = cfg.requests // n_mobiles + (1 if mobile < cfg.requests % n_mobiles else 0)
    horizon = cfg.duration_s if cfg.duration_s is not None else np.inf
    if cfg.arrival == "file":
        t, dev = read_timestamps(cfg.file or "")
        idx = np.arange(len(t))
        mine = (dev % n_mobiles == mobile) if dev is not None else (idx % n_mobiles == mobile)
        t = t[mine]
    elif cfg.arrival == "poisson":
        t = _poisson(cfg.rate_per_s, n, horizon, rng)
    elif cfg.arrival == "deterministic":
        period = 1.0 / cfg.rate_per_s
        count = n if n is not None else int(np.ceil(horizon / period)) + 1
        t = rng.uniform(0, period) + period * np.arange(count)
    else:
        t = _mmpp(cfg.mmpp, n, horizon, rng)
    t = t[t < horizon]
    return t[:n] if n is not None else t


def _poisson(rate: float, n: int | None, horizon: float, rng: np.random.Generator) -> np.ndarray:
    if n is not None:
        return np.cumsum(rng.exponential(1.0 / rate, n))
    out, t = [], 0.0
    while t < horizon:
        chunk = t + np.cumsum(rng.exponential(1.0 / rate, max(16, int(rate * horizon * 1.1))))
        out.append(chunk)
        t = chunk[-1]
    return np.concatenate(out)


def _mmpp(cfg: MmppConfig, n: int | None, horizon: float, rng: np.random.Generator) -> np.ndarray:
    out: list[float] = []
    t, state = 0.0, int(rng.integers(len(cfg.rates_per_s)))
    while (n is None or len(out) < n) and t < horizon:
        end = t + rng.exponential(cfg.mean_dwell_s[state])
        rate = cfg.rates_per_s[state]
        if rate > 0:
            s = t + rng.exponential(1.0 / rate)
            while s < end:
                out.append(s)
                s += rng.exponential(1.0 / rate)
        t, state = end, (state + 1) % len(cfg.rates_per_s)
    return np.asarray(out)


def sample_indices(count: int, n_samples: int, order: str, mobile: int,
                   rng: np.random.Generator) -> np.ndarray:
    """Which profile sample each request carries: a seeded permutation, repeated as needed."""
    if order == "sequential":
        return (np.arange(count) + mobile * 7919) % n_samples
    reps = -(-count // n_samples) if count else 0
    return np.concatenate([rng.permutation(n_samples) for _ in range(reps)])[:count] if reps else \
        np.zeros(0, dtype=int)

