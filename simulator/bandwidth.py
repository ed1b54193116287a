"""Link bandwidth as a piecewise-constant random process, and exact transfer times over it.

Each model is a spec dataclass registered under its ``model`` name; ``spec.realise(rng)`` gives a
:class:`BandwidthPath`, a lazily generated sample path. Transfer time is exact: the time at which the
integral of bandwidth from the start time covers the payload, however many steps it straddles.
The path is generated in time order from its own generator, so it is the same whoever asks and when
(all policies in a run see the same realisation).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, ClassVar

import numpy as np
from numba import njit

from .errors import ConfigError, unknown_key
from .schema import _short, build, positive, require
from .traces import FORMATS, SEPARATORS, TIME_FORMATS, TraceError, load_trace, unit_factor

MODELS: dict[str, type[BandwidthSpec]] = {}
# Bounds on what a run may cost, checked before anything is generated: a link's long-run mean bandwidth
# (a link slower than 1 kbit/s never finishes a hidden state) and the mean length of a path's steps (a
# path stepping faster than every millisecond generates millions of steps per transfer).
MIN_MBPS = 1e-3
MIN_STEP_S = 1e-3
MAX_MBPS = 1e9  # a petabit per second: beyond it, bits carried over a run overflow floating point


def register(cls: type[BandwidthSpec]) -> type[BandwidthSpec]:
    MODELS[cls.model] = cls
    return cls


class BandwidthPath:
    """A realised bandwidth sample path: steps ``(start_s, bits_per_s)`` generated on demand."""

    def __init__(self, steps: Iterator[tuple[float, float]] | None = None,
                 blocks: Iterator[tuple[np.ndarray, np.ndarray]] | None = None):
        self._steps = steps  # yields (duration_s, mbps)
        self._blocks = blocks  # or yields blocks of them: (durations_s, mbps) arrays
        self._pending: tuple[list[float], list[float]] = ([], [])
        self._at = 0  # next pending step
        self.starts: list[float] = [0.0]
        self.rates: list[float] = []  # bit/s
        self.cum: list[float] = [0.0]  # bits delivered from t=0 to starts[i]

    def _next_step(self) -> tuple[float, float]:
        if self._blocks is None:
            return next(self._steps)
        if self._at >= len(self._pending[0]):
            d, m = next(self._blocks)
            self._pending, self._at = (d.tolist(), m.tolist()), 0
        self._at += 1
        return self._pending[0][self._at - 1], self._pending[1][self._at - 1]

    def _next_block(self) -> tuple[np.ndarray, np.ndarray]:
        if self._blocks is None:
            steps = list(islice(self._steps, max(64, len(self.rates))))
            return (np.fromiter((x[0] for x in steps), float, len(steps)),
                    np.fromiter((x[1] for x in steps), float, len(steps)))
        if self._at < len(self._pending[0]):
            d, m = (np.asarray(x[self._at:], dtype=float) for x in self._pending)
            self._pending, self._at = ([], []), 0
            return d, m
        return next(self._blocks)

    def _extend(self) -> None:
        duration, mbps = self._next_step()
        rate = mbps * 1e6
        self.rates.append(rate)
        self.cum.append(self.cum[-1] + rate * duration)
        self.starts.append(self.starts[-1] + duration)

    def extend_until(self, t: float) -> None:
        """Generate the path beyond time ``t`` in bulk (the same steps and sums as one at a time)."""
        while self.starts[-1] <= t:
            d, mbps = self._next_block()
            rate = mbps * 1e6
            self.rates.extend(rate.tolist())
            self.cum.extend(np.cumsum(np.concatenate(([self.cum[-1]], rate * d)))[1:].tolist())
            self.starts.extend(np.cumsum(np.concatenate(([self.starts[-1]], d)))[1:].tolist())

    def _segment(self, t: float) -> int:
        while self.starts[-1] <= t:
            self._extend()
        return bisect.bisect_right(self.starts, t) - 1

    def rate_at(self, t: float) -> float:
        """Bandwidth at time t in bit/s."""
        return self.rates[self._segment(t)]

    def next_step(self, t: float) -> float:
        """Time of the first bandwidth change after t."""
        return self.starts[self._segment(t) + 1]

    def bits_until(self, t: float) -> float:
        """Bits the link could carry from time 0 to t."""
        i = self._segment(t)
        return self.cum[i] + self.rates[i] * (t - self.starts[i])

    def finish_time(self, start: float, bits: float) -> float:
        """Earliest time at which a transfer of ``bits`` begun at ``start`` completes."""
        if bits <= 0:
            return start
        target = self.bits_until(start) + bits
        while self.cum[-1] < target:
            self._extend()
        i = bisect.bisect_left(self.cum, target) - 1  # cum[i] < target <= cum[i+1]
        return self.starts[i] + (target - self.cum[i]) / self.rates[i]

    def steps_until(self, t_end: float) -> tuple[np.ndarray, np.ndarray]:
        """Step start times and rates (Mbit/s) covering [0, t_end] (for timelines)."""
        self._segment(t_end)
        n = bisect.bisect_right(self.starts, t_end)
        return np.array(self.starts[:n]), np.array(self.rates[:n]) / 1e6


@dataclass
class BandwidthSpec:
    """Base of bandwidth model specs; subclasses set ``model`` and implement ``steps``."""

    model: ClassVar[str] = ""

    def realise(self, rng: np.random.Generator) -> BandwidthPath:
        return BandwidthPath(blocks=self.blocks(rng))

    def steps(self, rng: np.random.Generator) -> Iterator[tuple[float, float]]:
        """The path's steps ``(duration_s, mbps)``, one at a time."""
        raise NotImplementedError

    def blocks(self, rng: np.random.Generator) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The same steps in blocks of arrays (models that can draw them in bulk override this)."""
        it = self.steps(rng)
        while True:
            steps = list(islice(it, 64))
            yield np.asarray([x[0] for x in steps], dtype=float), np.asarray([x[1] for x in steps], dtype=float)

    def long_run_mbps(self) -> float:
        """Long-run mean bandwidth (Mbit/s), for reports and sanity checks."""
        raise NotImplementedError

    def shortest_mean_step_s(self) -> float:
        """A lower bound on the mean length of the path's steps (s), to bound what generating it costs."""
        return math.inf


@register
@dataclass
class Constant(BandwidthSpec):
    """Fixed bandwidth."""

    model: ClassVar[str] = "constant"
    mbps: float = 10.0

    def check(self, path: str) -> None:
        positive(self.mbps, f"{path}.mbps")
        _max_rate(self.mbps, f"{path}.mbps")

    def steps(self, rng: np.random.Generator) -> Iterator[tuple[float, float]]:
        while True:
            yield 1e9, self.mbps

    def long_run_mbps(self) -> float:
        return self.mbps

    def shortest_mean_step_s(self) -> float:
        return 1e9


@register
@dataclass
class Markov(BandwidthSpec):
    """n-state continuous-time Markov bandwidth (Gilbert-Elliott for two states).

    The chain stays in state i for an exponential time with mean ``mean_dwell_s[i]``, then jumps
    according to row i of ``transitions`` (default: uniformly to another state). The initial state is
    drawn from the time-stationary distribution, so the process is stationary from t=0.
    """

    model: ClassVar[str] = "markov"
    states_mbps: list[float] = field(default_factory=lambda: [20.0, 2.0])
    mean_dwell_s: list[float] = field(default_factory=lambda: [10.0, 3.0])
    transitions: list[list[float]] | None = None

    def check(self, path: str) -> None:
        n = len(self.states_mbps)
        require(n >= 2, f"'{path}.states_mbps' needs at least two states")
        require(len(self.mean_dwell_s) == n,
                f"'{path}.mean_dwell_s' must have {n} entries (one per state), got {len(self.mean_dwell_s)}")
        for i, v in enumerate(self.states_mbps):
            positive(v, f"{path}.states_mbps[{i}]", allow_zero=True)
            _max_rate(v, f"{path}.states_mbps[{i}]")
        for i, v in enumerate(self.mean_dwell_s):
            positive(v, f"{path}.mean_dwell_s[{i}]")
            _min_step(v, f"{path}.mean_dwell_s[{i}]")
        require(max(self.states_mbps) > 0, f"'{path}.states_mbps' are all zero")
        if self.transitions is not None:
            p = np.asarray(self.transitions, dtype=float)
            require(p.shape == (n, n), f"'{path}.transitions' must be a {n}x{n} matrix")
            require(bool(np.all(p >= 0)) and np.allclose(p.sum(axis=1), 1.0) and np.allclose(np.diag(p), 0),
                    f"'{path}.transitions' rows must be probabilities summing to 1 with a zero diagonal")

    def _jump_matrix(self) -> np.ndarray:
        n = len(self.states_mbps)
        if self.transitions is not None:
            return np.asarray(self.transitions, dtype=float)
        return (np.ones((n, n)) - np.eye(n)) / (n - 1)

    def stationary(self) -> np.ndarray:
        """Fraction of time spent in each state."""
        p = self._jump_matrix()
        w, v = np.linalg.eig(p.T)
        nu = np.real(v[:, np.argmin(np.abs(w - 1))])
        nu = nu / nu.sum()
        pi = nu * np.asarray(self.mean_dwell_s)
        return pi / pi.sum()

    def steps(self, rng: np.random.Generator) -> Iterator[tuple[float, float]]:
        p = self._jump_matrix()
        n = len(self.states_mbps)
        state = int(rng.choice(n, p=self.stationary()))
        while True:
            yield float(rng.exponential(self.mean_dwell_s[state])), self.states_mbps[state]
            state = int(rng.choice(n, p=p[state]))

    def long_run_mbps(self) -> float:
        return float(self.stationary() @ np.asarray(self.states_mbps))

    def shortest_mean_step_s(self) -> float:
        return float(min(self.mean_dwell_s))


@register
@dataclass
class Lognormal(BandwidthSpec):
    """Bandwidth constant over intervals of ``interval_s``, log-bandwidth an AR(1) process.

    log B_{n+1} = mu + rho (log B_n - mu) + sigma sqrt(1 - rho^2) eps, started from its stationary law,
    with sigma^2 = ln(1 + cv^2) and mu = ln(mean) - sigma^2/2 so the marginal mean is ``mean_mbps`` and
    the coefficient of variation ``cv``.
    """

    model: ClassVar[str] = "lognormal"
    mean_mbps: float = 10.0
    cv: float = 0.5
    correlation: float = 0.8
    interval_s: float = 1.0

    def check(self, path: str) -> None:
        positive(self.mean_mbps, f"{path}.mean_mbps")
        _max_rate(self.mean_mbps, f"{path}.mean_mbps")
        positive(self.cv, f"{path}.cv", allow_zero=True)
        positive(self.interval_s, f"{path}.interval_s")
        _min_step(self.interval_s, f"{path}.interval_s")
        require(-1 < self.correlation < 1, f"'{path}.correlation' must be in (-1, 1), got {self.correlation}")

    def steps(self, rng: np.random.Generator) -> Iterator[tuple[float, float]]:
        for d, m in self.blocks(rng):
            yield from zip(d.tolist(), m.tolist(), strict=True)

    def blocks(self, rng: np.random.Generator) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        sigma = math.sqrt(math.log1p(self.cv**2))
        mu = math.log(self.mean_mbps) - sigma**2 / 2
        innov, rho = sigma * math.sqrt(1 - self.correlation**2), self.correlation
        x = mu + sigma * rng.standard_normal()
        size = 32
        while True:  # normals drawn in growing blocks: the same numbers as one at a time (its own stream)
            mbps, x = _ar1_exp(x, mu, rho, innov, rng.standard_normal(size))
            yield np.full(size, self.interval_s), mbps
            size = min(2 * size, 4096)

    def long_run_mbps(self) -> float:
        return self.mean_mbps

    def shortest_mean_step_s(self) -> float:
        return self.interval_s


def _max_rate(mbps: float, path: str) -> None:
    require(mbps <= MAX_MBPS, f"'{path}' must be at most {MAX_MBPS:g} Mbit/s (1 Pbit/s), got {mbps:g}")


def _min_step(seconds: float, path: str) -> None:
    require(seconds >= MIN_STEP_S, f"'{path}' must be at least {MIN_STEP_S:g} s (a bandwidth step), got {seconds:g}")


def check_capacity(spec: BandwidthSpec, path: str) -> float:
    """The long-run mean (Mbit/s) of a link's bandwidth model, refused below :data:`MIN_MBPS`."""
    mean = spec.long_run_mbps()
    require(mean >= MIN_MBPS, f"'{path}' has a long-run mean of {mean:.3g} Mbit/s, below the minimum "
                              f"{MIN_MBPS:g} Mbit/s (1 kbit/s): its transfers would not end")
    return mean


@njit(cache=True)
def _ar1_exp(x: float, mu: float, rho: float, innov: float, eps: np.ndarray) -> tuple[np.ndarray, float]:
    """``exp`` of the AR(1) log-bandwidth path from ``x`` driven by ``eps``, and the next state (the
    arithmetic of a plain Python loop, compiled)."""
    out = np.empty(eps.shape[0])
    for k in range(eps.shape[0]):
        out[k] = math.exp(x)
        x = mu + rho * (x - mu) + innov * eps[k]
    return out, x


def _where(value: Any, path: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ConfigError(f"'{path}' must be a mapping of column: value")
    return {str(k): str(v) for k, v in value.items()}


@register
@dataclass
class Trace(BandwidthSpec):
    """Replay of a measured trace file (see :mod:`simulator.traces`), looped.

    Each realisation starts at a uniformly random offset into the trace (``random_offset``), so
    replications and mobiles see different stretches of the same measurement; ``scale`` multiplies it.
    Reading options: ``format`` (auto, columns, csv), ``separator`` (auto, ``,``, ``;``, tab, whitespace),
    ``time_column`` and ``time_format`` (auto, s, ms, clock), the throughput column (``mbps_column``,
    ``kbps_column``, ``bps_column``, or ``throughput_column`` with ``throughput_unit``: bps, kbps, mbps,
    gbps), ``where`` (keep rows with these column values), ``interval_s`` (sample spacing without a time
    column).
    """

    model: ClassVar[str] = "trace"
    file: str = ""
    format: str = "auto"
    scale: float = 1.0
    random_offset: bool = True
    time_column: str | None = None
    mbps_column: str | None = None
    interval_s: float = 1.0
    where: dict[str, str] = field(default_factory=dict, metadata={"convert": _where})
    separator: str = "auto"
    time_format: str = "auto"
    throughput_column: str | None = None
    throughput_unit: str = "auto"
    kbps_column: str | None = None
    bps_column: str | None = None

    def check(self, path: str) -> None:
        require(bool(self.file), f"missing required key '{path}.file'")
        positive(self.scale, f"{path}.scale")
        positive(self.interval_s, f"{path}.interval_s")
        require(self.format in FORMATS, f"'{path}.format' must be {', '.join(FORMATS)}, got {_short(self.format)}")
        require(self.separator in SEPARATORS,
                f"'{path}.separator' must be auto, ',', ';', tab or whitespace, got {_short(self.separator)}")
        require(self.time_format in TIME_FORMATS,
                f"'{path}.time_format' must be {', '.join(TIME_FORMATS)}, got {_short(self.time_format)}")
        require(self.throughput_unit == "auto" or unit_factor(self.throughput_unit) is not None,
                f"'{path}.throughput_unit' must be auto, bps, kbps, mbps or gbps, got {_short(self.throughput_unit)}")
        given = [k for k in ("mbps_column", "kbps_column", "bps_column", "throughput_column") if getattr(self, k)]
        require(len(given) <= 1, f"'{path}': give one of {' or '.join(given)}, not both")
        implied = {"mbps_column": "mbps", "kbps_column": "kbps", "bps_column": "bps"}.get(given[0]) if given else None
        require(implied is None or self.throughput_unit == "auto"
                or unit_factor(self.throughput_unit) == unit_factor(implied),
                f"'{path}': {given[0] if given else ''} holds {implied}, but throughput_unit says "
                f"{_short(self.throughput_unit)}")
        try:
            tr = self.load()  # fail early on a missing or malformed file
        except TraceError as e:
            raise ConfigError(f"'{path}.file': {e}") from None
        peak = float(tr.mbps.max()) * self.scale
        require(peak <= MAX_MBPS, f"'{path}': its peak throughput (scale included) is {peak:.3g} Mbit/s, above "
                                  f"{MAX_MBPS:g} Mbit/s (is throughput_unit right?)")
        step = self.shortest_mean_step_s()
        require(step >= MIN_STEP_S, f"'{path}.file': its samples are {step:.3g} s apart on average, closer than "
                                    f"{MIN_STEP_S:g} s (is time_format right?)")

    def load(self):
        column = self.throughput_column or self.kbps_column or self.bps_column
        unit = self.throughput_unit
        if unit == "auto" and (self.kbps_column or self.bps_column):
            unit = "kbps" if self.kbps_column else "bps"
        return load_trace(self.file, self.format, self.time_column, self.mbps_column, self.interval_s,
                          tuple(sorted(self.where.items())), separator=self.separator,
                          time_format=self.time_format, throughput_unit=unit, throughput_column=column)

    def steps(self, rng: np.random.Generator) -> Iterator[tuple[float, float]]:
        tr = self.load()
        durations, mbps = tr.durations, tr.mbps * self.scale
        start = 0
        if self.random_offset:
            offset = rng.uniform(0, tr.period_s)
            ends = np.cumsum(durations)
            start = int(np.searchsorted(ends, offset, side="right"))
            start = min(start, len(durations) - 1)
            first = ends[start] - offset
            yield float(first), float(mbps[start])
            start += 1
        while True:
            for i in range(start, len(durations)):
                yield float(durations[i]), float(mbps[i])
            start = 0

    def long_run_mbps(self) -> float:
        return self.load().mean_mbps * self.scale

    def shortest_mean_step_s(self) -> float:
        tr = self.load()
        return tr.period_s / len(tr.times)


def parse_bandwidth(value: Any, path: str) -> BandwidthSpec:
    """Build a bandwidth spec from ``{model: name, ...}`` (a bare number means constant Mbit/s)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = {"model": "constant", "mbps": value}
    if not isinstance(value, dict):
        raise ConfigError(f"'{path}' must be a mapping with a 'model' key, got {value!r}")
    model = value.get("model")
    if model is None:
        raise ConfigError(f"missing required key '{path}.model' (one of {', '.join(sorted(MODELS))})")
    if model not in MODELS:
        raise unknown_key(str(model), f"{path}.model", MODELS, what="bandwidth model")
    rest = {k: v for k, v in value.items() if k != "model"}
    return build(MODELS[model], rest, path)
