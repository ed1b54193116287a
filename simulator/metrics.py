"""Per-request records -> per-policy summary rows (warm-up requests excluded)."""

from __future__ import annotations

import numpy as np
import pandas as pd

SUMMARY_KEYS = ["policy", "replication"]


def summarise_group(df: pd.DataFrame, tier_names: list[str], deadline_ms: float | None = None) -> dict:
    """Summary metrics of one group of request records (``failed``/``fail_rate`` when devices can fail)."""
    df = df[~df["warmup"]]
    n = len(df)
    failing = "failed" in df
    done = df[~df["dropped"] & ~df["failed"]] if failing else df[~df["dropped"]]
    k = len(done)
    lat = done["latency_ms"].to_numpy()
    n_drop = int(df["dropped"].sum()) if failing else n - k
    row: dict = {
        "requests": n,
        "completed": k,
        "dropped": n_drop,
        "drop_rate": n_drop / n if n else np.nan,
        "accuracy": float(done["correct"].mean()) if k else np.nan,
        "latency_mean_ms": float(lat.mean()) if k else np.nan,
        "latency_p50_ms": float(np.percentile(lat, 50)) if k else np.nan,
        "latency_p95_ms": float(np.percentile(lat, 95)) if k else np.nan,
        "latency_p99_ms": float(np.percentile(lat, 99)) if k else np.nan,
    }
    if failing:
        n_fail = int(df["failed"].sum())
        row["failed"], row["fail_rate"] = n_fail, n_fail / n if n else np.nan
    if deadline_ms is not None:
        row["deadline_miss_rate"] = float(1 - (done["latency_ms"] <= deadline_ms).sum() / n) if n else np.nan
    span = (done["finish_s"].max() - df["arrival_s"].min()) if k else np.nan
    row["throughput_rps"] = k / span if k and span > 0 else np.nan
    row["mean_exit_layer"] = float(done["exit_layer"].mean()) if k else np.nan
    for t in tier_names:
        row[f"exit_frac_{t}"] = float((done["exit_tier"] == t).mean()) if k else np.nan
    row["cost_mean"] = float(done["cost"].mean()) if k else np.nan
    row["energy_mobile_j_per_req"] = float(done["energy_mobile_j"].mean()) if k else np.nan
    row["energy_compute_j_per_req"] = float(done["energy_compute_j"].mean()) if k else np.nan
    row["energy_radio_j_per_req"] = float(done["energy_radio_j"].mean()) if k else np.nan
    row["bytes_per_req"] = float(done["bytes_total"].mean()) if k else np.nan
    for t in tier_names:
        col = f"queue_s_{t}"
        row[f"queue_ms_{t}"] = float(done[col].mean() * 1e3) if k else np.nan
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


COUNT_COLUMNS = ("requests", "completed", "dropped")  # summed over replications, not averaged
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
    requests are not independent). Dropped, failed or warm-up requests are excluded from both sides of a pair.
    """
    key = ["replication", "request_id"]
    live = requests[~requests["warmup"]]
    if "failed" in live:
        live = live.assign(dropped=live["dropped"] | live["failed"])
    ref = live[live["policy"] == reference].set_index(key)
    rows = []
    rng = np.random.default_rng(seed)
    for name, g in live.groupby("policy", sort=False):
        pair = g.set_index(key)[["sample", "correct", "dropped"]].join(
            ref[["correct", "dropped"]].add_suffix("_ref"), how="inner")
        pair = pair[~pair["dropped"] & ~pair["dropped_ref"]]
        d = pair["correct_ref"].to_numpy(float) - pair["correct"].to_numpy(float)
        if len(d) == 0:
            continue
        _, cluster = np.unique(pair["sample"].to_numpy(), return_inverse=True)
        sums, counts = np.bincount(cluster, weights=d), np.bincount(cluster)
        pick = rng.integers(0, len(sums), (n_boot, len(sums)))
        boot = sums[pick].sum(axis=1) / counts[pick].sum(axis=1)
        lo, hi = np.percentile(boot, [2.5, 97.5])
        rows.append({"policy": name, "acc_drop_pts": 100 * d.mean(), "acc_drop_ci95_lo": 100 * lo,
                     "acc_drop_ci95_hi": 100 * hi})
    return pd.DataFrame(rows, columns=["policy", "acc_drop_pts", "acc_drop_ci95_lo", "acc_drop_ci95_hi"])
