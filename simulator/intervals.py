"""95 % confidence intervals over replications that stay inside what a metric can physically be.

A plain Student-t interval ``mean ± t·s/√n`` can reach below zero for a latency or above 1 for an
accuracy when replications are few and one is extreme. Instead the interval is built on a scale where
the metric is unbounded and mapped back (delta method):

- positive metrics (latency and its percentiles, energy, bytes, cost, throughput, queue and compute
  times, counts): Student t on the log scale, ``mean · exp(± t · s / (mean · √n))``;
- proportions (accuracy, drop and deadline-miss rates, exit fractions): Student t on the logit scale,
  ``logit⁻¹(logit(p) ± t · s / (p (1 − p) √n))``;
- anything else (differences such as ``acc_drop_pts``): the ordinary Student-t interval.

Each interval contains the mean, reduces to the ordinary t interval when the spread is small, and never
leaves the metric's support. With one replication there is no interval (nan); with fewer than
``MIN_REPLICATIONS`` the interval is reported but flagged by :func:`few_replications_warning`.
"""

from __future__ import annotations

import math

import numpy as np

MIN_REPLICATIONS = 3
METHOD = ("95 % CI over replications: Student t on the log scale for positive metrics, on the logit "
          "scale for proportions (delta method), so intervals stay within the metric's support")
METHOD_SHORT = "Student t on log/logit scale"

_PROPORTION = ("accuracy", "drop_rate", "deadline_miss_rate", "deadline_met", "exit_frac_")
_POSITIVE = ("latency", "energy", "bytes", "cost", "throughput", "queue_", "compute_", "transfer_",
             "mean_exit_layer", "requests", "completed", "dropped", "busy_s", "wall_s")


def support(metric: str) -> str:
    """``'proportion'`` ([0, 1]), ``'positive'`` ([0, ∞)) or ``'real'`` for a metric column name."""
    if metric.startswith(_PROPORTION):
        return "proportion"
    if metric.startswith("acc_drop"):
        return "real"
    if metric.startswith(_POSITIVE):
        return "positive"
    return "real"


def _t(n: int) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.975, n - 1))


def interval(values: np.ndarray, kind: str = "real") -> tuple[float, float]:
    """(lo, hi) of the 95 % interval of the mean of ``values`` on the scale that fits ``kind``.

    ``kind`` is ``'positive'``, ``'proportion'`` or ``'real'`` (see :func:`support`); nan values are
    ignored; fewer than two values give (nan, nan).
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    n = len(v)
    if n < 2:
        return float("nan"), float("nan")
    m, s = float(v.mean()), float(v.std(ddof=1))
    if s == 0 or not math.isfinite(s):
        return m, m
    half = _t(n) * s / math.sqrt(n)
    if kind == "positive" and v.min() >= 0:
        if m <= 0:
            return 0.0, 0.0
        f = math.exp(half / m)
        return m / f, m * f
    if kind == "proportion" and v.min() >= 0 and v.max() <= 1:
        if m <= 0 or m >= 1:
            return m, m
        logit = math.log(m / (1 - m))
        d = half / (m * (1 - m))
        return 1 / (1 + math.exp(-(logit - d))), 1 / (1 + math.exp(-(logit + d)))
    return m - half, m + half


def metric_interval(values: np.ndarray, metric: str) -> tuple[float, float]:
    """:func:`interval` with the support read from the metric's name."""
    return interval(values, support(metric))


def few_replications_warning(n: int) -> str:
    """A short warning when ``n`` replications are too few for an interval to mean much, else ''."""
    if n <= 1:
        return "1 replication: no confidence interval"
    if n < MIN_REPLICATIONS:
        return f"only {n} replications: intervals are unreliable (use at least {MIN_REPLICATIONS})"
    return ""
