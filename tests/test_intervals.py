"""Confidence intervals stay inside each metric's support, even on adversarial replications."""

import numpy as np
import pandas as pd
import pytest

from simulator.intervals import METHOD, few_replications_warning, interval, support
from simulator.metrics import across_replications


@pytest.mark.parametrize("values", [[10.0, 12.0, 5000.0], [1e-3, 1e-3, 1e4], [0.0, 0.0, 900.0], [3.0, 1e6]])
def test_positive_intervals_stay_positive(values):
    lo, hi = interval(np.array(values), "positive")
    assert 0 <= lo <= np.mean(values) <= hi
    # the naive t interval would have gone below zero here
    from scipy import stats

    v = np.array(values)
    assert v.mean() - stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)) < 0


@pytest.mark.parametrize("values", [[0.99, 0.999, 0.2], [0.01, 0.0, 0.95], [1.0, 1.0, 0.0], [0.5, 1.0]])
def test_proportion_intervals_stay_in_unit_interval(values):
    lo, hi = interval(np.array(values), "proportion")
    assert 0 <= lo <= np.mean(values) <= hi <= 1


def test_small_spread_matches_student_t():
    from scipy import stats

    v = np.array([100.0, 101.0, 99.5, 100.4, 100.1])
    half = stats.t.ppf(0.975, 4) * v.std(ddof=1) / np.sqrt(5)
    lo, hi = interval(v, "positive")
    assert lo == pytest.approx(v.mean() - half, rel=1e-4)
    assert hi == pytest.approx(v.mean() + half, rel=1e-4)


def test_one_replication_has_no_interval_and_few_are_flagged():
    assert all(np.isnan(interval(np.array([3.0]), "positive")))
    assert few_replications_warning(1) and few_replications_warning(2) and not few_replications_warning(3)
    assert "log" in METHOD and "logit" in METHOD


def test_support_by_name():
    assert support("latency_p95_ms") == support("energy_mobile_j_per_req") == "positive"
    assert support("accuracy") == support("exit_frac_edge") == support("drop_rate") == "proportion"
    assert support("acc_drop_pts") == "real"


def test_summary_intervals_respect_support():
    per_rep = pd.DataFrame({"policy": ["a"] * 3, "replication": [0, 1, 2], "requests": [100, 100, 100],
                            "accuracy": [0.999, 0.998, 0.3], "latency_p95_ms": [100.0, 110.0, 9000.0],
                            "cost_mean": [1.0, 1.0, 1.0], "energy_mobile_j_per_req": [0.01, 0.01, 5.0],
                            "latency_mean_ms": [5.0, 6.0, 700.0]})
    s = across_replications(per_rep).iloc[0]
    for m in ("latency_p95_ms", "latency_mean_ms", "energy_mobile_j_per_req"):
        assert 0 < s[f"{m}_ci95_lo"] < s[m] < s[f"{m}_ci95_hi"]
    assert 0 <= s["accuracy_ci95_lo"] < s["accuracy"] < s["accuracy_ci95_hi"] <= 1
    assert s["cost_mean_ci95_lo"] == s["cost_mean_ci95_hi"] == 1.0
    assert s["requests"] == 300 and not s["ci_warning"]
    one = across_replications(per_rep.iloc[:1]).iloc[0]
    assert "accuracy_ci95_lo" not in one.index and one["ci_warning"]
