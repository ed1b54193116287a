"""Summaries equal direct computations on the request records; paired accuracy drop."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simulator.metrics import across_replications, paired_accuracy_drop, summarise


def _requests(n=400, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    samples = rng.integers(0, 100, n)
    for pol, p_right in (("ref", 0.9), ("fast", 0.8)):
        for rep in (0, 1):
            correct = (samples * 7919 % 100) / 100 < p_right  # a fixed subset of samples is right
            rows.append(pd.DataFrame({
                "policy": pol, "replication": rep, "request_id": np.arange(n), "sample": samples,
                "arrival_s": np.arange(n) * 0.1, "finish_s": np.arange(n) * 0.1 + 0.05,
                "latency_ms": rng.exponential(50, n), "correct": correct, "dropped": False,
                "warmup": np.arange(n) < 20, "exit_layer": rng.integers(1, 7, n),
                "exit_tier": rng.choice(["mobile", "cloud"], n), "cost": rng.uniform(0, 2, n),
                "energy_mobile_j": 1.0, "energy_compute_j": 0.5, "energy_radio_j": 0.5, "bytes_total": 10,
                "queue_s_mobile": 0.0, "queue_s_cloud": 0.0}))
    return pd.concat(rows, ignore_index=True)


def test_summary_matches_direct_computation():
    req = _requests()
    per_rep = summarise(req, ["mobile", "cloud"], deadline_ms=60.0)
    assert len(per_rep) == 4
    g = req[(req["policy"] == "fast") & (req["replication"] == 1) & ~req["warmup"]]
    row = per_rep[(per_rep["policy"] == "fast") & (per_rep["replication"] == 1)].iloc[0]
    assert row["requests"] == len(g) == 380
    assert row["accuracy"] == pytest.approx(g["correct"].mean())
    assert row["latency_p95_ms"] == pytest.approx(np.percentile(g["latency_ms"], 95))
    assert row["exit_frac_mobile"] == pytest.approx((g["exit_tier"] == "mobile").mean())
    assert row["deadline_miss_rate"] == pytest.approx((g["latency_ms"] > 60).mean())
    summary = across_replications(per_rep).set_index("policy")
    fast = per_rep[per_rep["policy"] == "fast"]["latency_mean_ms"]
    lo, hi = summary.loc["fast", ["latency_mean_ms_ci95_lo", "latency_mean_ms_ci95_hi"]]
    assert 0 < lo < fast.mean() < hi
    assert summary.loc["fast", "requests"] == per_rep[per_rep["policy"] == "fast"]["requests"].sum()
    assert summary.loc["fast", "ci_warning"]  # 2 replications are too few
    assert "log" in summary.loc["fast", "ci_method"]


def test_paired_accuracy_drop_and_its_interval():
    req = _requests()
    drop = paired_accuracy_drop(req, "ref").set_index("policy")
    live = req[~req["warmup"]]
    expected = 100 * (live[live.policy == "ref"]["correct"].mean() - live[live.policy == "fast"]["correct"].mean())
    assert drop.loc["fast", "acc_drop_pts"] == pytest.approx(expected)
    assert drop.loc["fast", "acc_drop_ci95_lo"] < expected < drop.loc["fast", "acc_drop_ci95_hi"]
    assert drop.loc["fast", "acc_drop_ci95_lo"] > 0  # a real 10-point gap is detected
    assert drop.loc["ref", "acc_drop_pts"] == 0
