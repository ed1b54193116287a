"""Per-request records -> per-policy summary rows (warm-up requests excluded)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

SUMMARY_KEYS = ["policy", "replication"]


def summarise_group(df: pd.DataFrame, tier_names: list[str], deadline_ms: float | None = None) -> dict:
    """Summary metrics of one group of request records (``failed``/``fail_rate`` when devices can fail)."""
    cols = [c for c in summary_inputs(tier_names) if c in df]
    return summary_of({c: df[c].to_numpy() for c in cols}, tier_names, deadline_ms)


def summary_inputs(tier_names: list[str]) -> list[str]:
    """The request columns :func:`summary_of` reads (``failed`` only where devices can fail)."""
    return ["warmup", "dropped", "failed", "latency_ms", "correct", "finish_s", "arrival_s", "exit_layer",
            "exit_tier", "cost", "energy_mobile_j", "energy_compute_j", "energy_radio_j", "bytes_total",
            *(f"queue_s_{t}" for t in tier_names)]


def summary_of(a: dict[str, np.ndarray], tier_names: list[str], deadline_ms: float | None = None) -> dict:
    """Summary metrics of one simulation's requests, from column arrays (:func:`summary_inputs`; rows in
    request-id order): what ``run`` and ``sweep`` report, computed in numpy."""
    keep = ~a["warmup"]
    n = int(keep.sum())
    failing = "failed" in a
    ok = keep & ~a["dropped"] & ~a["failed"] if failing else keep & ~a["dropped"]
    k = int(ok.sum())
    lat = a["latency_ms"][ok]
    n_drop = int(a["dropped"][keep].sum()) if failing else n - k

    def mean(col: str) -> float:
        return float(a[col][ok].mean()) if k else np.nan

    p50, p95, p99 = (float(x) for x in np.percentile(lat, [50, 95, 99])) if k else (np.nan,) * 3
    row: dict = {
        "requests": n,
        "completed": k,
        "dropped": n_drop,
        "drop_rate": n_drop / n if n else np.nan,
        "accuracy": mean("correct"),
        "latency_mean_ms": float(lat.mean()) if k else np.nan,
        "latency_p50_ms": p50,
        "latency_p95_ms": p95,
        "latency_p99_ms": p99,
    }
    if failing:
        n_fail = int(a["failed"][keep].sum())
        row["failed"], row["fail_rate"] = n_fail, n_fail / n if n else np.nan
    if deadline_ms is not None:
        row["deadline_miss_rate"] = float(1 - (lat <= deadline_ms).sum() / n) if n else np.nan
    span = (a["finish_s"][ok].max() - a["arrival_s"][keep].min()) if k else np.nan
    row["throughput_rps"] = k / span if k and span > 0 else np.nan
    row["mean_exit_layer"] = mean("exit_layer")
    tiers = a["exit_tier"][ok]
    for t in tier_names:
        row[f"exit_frac_{t}"] = float((tiers == t).mean()) if k else np.nan
    row["cost_mean"] = mean("cost")
    row["energy_mobile_j_per_req"] = mean("energy_mobile_j")
    row["energy_compute_j_per_req"] = mean("energy_compute_j")
    row["energy_radio_j_per_req"] = mean("energy_radio_j")
    row["bytes_per_req"] = mean("bytes_total")
    for t in tier_names:
        row[f"queue_ms_{t}"] = float(a[f"queue_s_{t}"][ok].mean() * 1e3) if k else np.nan
    return row


def summarise(requests: pd.DataFrame, tier_names: list[str], deadline_ms: float | None = None,
              by: list[str] | None = None) -> pd.DataFrame:
    """One row per group (default: per policy and replication), in first-seen policy order."""
    by = by or SUMMARY_KEYS
    rows = []
    for keys, g in requests.groupby(by, sort=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        rows.append({**dict(zip(by, keys, strict=True)), **summarise_group(g, tier_names, deadline_ms)})
    return pd.DataFrame(rows)


def ci95(values: np.ndarray | pd.Series) -> float:
    """Half-width of the symmetric Student-t 95 % interval of the mean (nan for fewer than 2 values).

    Kept for differences and other real-valued quantities; summaries of positive metrics and proportions
    use :func:`simulator.intervals.interval`, which stays within the metric's support.
    """
    from scipy import stats

    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    n = len(v)
    if n < 2:
        return float("nan")
    return float(stats.t.ppf(0.975, n - 1) * v.std(ddof=1) / np.sqrt(n))


COUNT_COLUMNS = ("requests", "completed", "dropped", "failed")  # summed over replications, not averaged
CI_METRICS = ("accuracy", "latency_mean_ms", "latency_p95_ms", "cost_mean", "energy_mobile_j_per_req")


def across_replications(per_rep: pd.DataFrame, by: str = "policy") -> pd.DataFrame:
    """Mean over replications per policy, with 95 % intervals of key metrics that respect their support.

    Counts (``requests``, ``completed``, ``dropped``) are totals over replications (integers). For each
    metric in ``CI_METRICS``, ``<m>_ci95_lo``/``<m>_ci95_hi`` bound its 95 % interval (see
    :mod:`simulator.intervals`; nan with one replication); ``ci_method`` names the method and
    ``ci_warning`` says when the replications are too few for the interval to mean much.
    """
    from .intervals import METHOD_SHORT, few_replications_warning, metric_interval

    rows = []
    for name, g in per_rep.groupby(by, sort=False):
        row = {by: name, "replications": len(g)}
        for col in g.columns:
            if col in (by, "replication") or not pd.api.types.is_numeric_dtype(g[col]):
                continue
            row[col] = int(g[col].sum()) if col in COUNT_COLUMNS else g[col].mean()
        for col in CI_METRICS:
            if col in g and len(g) > 1:
                row[f"{col}_ci95_lo"], row[f"{col}_ci95_hi"] = metric_interval(g[col].to_numpy(), col)
        row["ci_method"] = METHOD_SHORT if len(g) > 1 else ""
        row["ci_warning"] = few_replications_warning(len(g))
        rows.append(row)
    return pd.DataFrame(rows)


def paired_accuracy_drop(requests: pd.DataFrame, reference: str, n_boot: int = 2000,
                         seed: int = 0) -> pd.DataFrame:
    """Accuracy lost against a reference policy (points), with a paired bootstrap 95 % interval.

    All policies serve the same requests (same samples), so the difference is taken request by request;
    the bootstrap resamples profile samples (a sample recurs across requests and replications, so
    requests are not independent). Dropped, failed or warm-up requests are excluded from both sides of a
    pair. See :func:`paired_drop_of`.
    """
    cols = ["replication", "request_id", "sample", "correct", "dropped", "warmup"] + (
        ["failed"] if "failed" in requests else [])
    groups = [(name, {c: g[c].to_numpy() for c in cols}) for name, g in requests.groupby("policy", sort=False)]
    return paired_drop_of(groups, reference, n_boot, seed)


DROP_COLUMNS = ["policy", "acc_drop_pts", "acc_drop_ci95_lo", "acc_drop_ci95_hi"]


def paired_drop_of(groups: list[tuple[str, dict[str, np.ndarray]]], reference: str, n_boot: int = 2000,
                   seed: int = 0) -> pd.DataFrame:
    """:func:`paired_drop_rows` as a table."""
    return pd.DataFrame(paired_drop_rows(groups, reference, n_boot, seed), columns=DROP_COLUMNS)


def paired_drop_rows(groups: list[tuple[str, dict[str, np.ndarray]]], reference: str, n_boot: int = 2000,
                     seed: int = 0) -> list[dict]:
    """:func:`paired_accuracy_drop` from column arrays per policy (``replication``, ``request_id``,
    ``sample``, ``correct``, ``dropped``, ``warmup``, and ``failed`` where devices can fail), in order:
    one dict per policy with pairs (``DROP_COLUMNS``).

    The bootstrap draws ``n_boot`` resamples (with replacement) of the samples the reference served, once,
    and every policy's interval uses the same resamples (its pairs' sums and counts per sample, weighted by
    how often a resample holds that sample), so intervals of different policies are paired too.
    """
    by_name = dict(groups)
    if reference not in by_name:
        return []

    def live(a):
        keep = ~a["warmup"]
        lost = a["dropped"] | a["failed"] if "failed" in a else a["dropped"]
        key = a["replication"].astype(np.int64) * (2**40) + a["request_id"].astype(np.int64)
        return key[keep], a["sample"][keep], a["correct"][keep], lost[keep]

    rkey, rsample, rcorrect, rlost = live(by_name[reference])
    order = np.argsort(rkey, kind="stable")
    rkey_sorted = rkey[order]
    universe = np.unique(rsample[~rlost])
    names, means, sums, counts = [], [], [], []
    for name, a in groups:
        key, sample, correct, lost = live(a)
        pos = np.minimum(np.searchsorted(rkey_sorted, key), max(len(rkey_sorted) - 1, 0))
        found = rkey_sorted[pos] == key if len(rkey_sorted) else np.zeros(len(key), dtype=bool)
        j = order[pos[found]]
        keep = ~lost[found] & ~rlost[j]
        d = rcorrect[j][keep].astype(float) - correct[found][keep].astype(float)
        if len(d) == 0:
            continue
        cluster = np.searchsorted(universe, sample[found][keep])
        names.append(name)
        means.append(d.mean())
        sums.append(np.bincount(cluster, weights=d, minlength=len(universe)))
        counts.append(np.bincount(cluster, minlength=len(universe)))
    if not names:
        return []
    if not any(np.any(x) for x in sums):  # every difference is zero: so is every resample's
        lo = hi = np.zeros(len(names))
        return _drop_rows(names, means, lo, hi)
    w = _resample_weights(len(universe), n_boot, seed)
    both = np.concatenate([np.stack(sums, axis=1), np.stack(counts, axis=1)], axis=1)
    exact32 = np.abs(both).sum(axis=0).max() * w.max() < 2**24  # integer sums, exact in float32
    wb = (w @ both.astype(np.float32)).astype(float) if exact32 else w.astype(float) @ both
    num, den = wb[:, :len(names)], wb[:, len(names):]
    with np.errstate(invalid="ignore", divide="ignore"):
        lo, hi = np.nanpercentile(num / den, [2.5, 97.5], axis=0)
    return _drop_rows(names, means, 100 * lo, 100 * hi)


def _drop_rows(names: list[str], means: list[float], lo: np.ndarray, hi: np.ndarray) -> list[dict]:
    return [{"policy": p, "acc_drop_pts": float(100 * m), "acc_drop_ci95_lo": float(a), "acc_drop_ci95_hi": float(b)}
            for p, m, a, b in zip(names, means, lo, hi, strict=True)]


@lru_cache(maxsize=8)
def _resample_weights(n: int, n_boot: int, seed: int) -> np.ndarray:
    """[n_boot, n]: how many times each of n clusters is drawn in each of n_boot resamples of size n
    (uniform, with replacement); depends only on (n, n_boot, seed), so it is kept for the next call."""
    pick = np.random.default_rng(seed).integers(0, n, (n_boot, n)) + (np.arange(n_boot) * n)[:, None]
    w = np.bincount(pick.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(np.float32)
    w.flags.writeable = False
    return w
