"""Device failures and failover rules against hand-computed timelines; every request ends exactly once.

A two-layer synthetic profile where every request has 10 tokens and a layer takes 5 ms at speed 1 (no
embedding or head time); links with no RTT and 10^6 Mbit/s (transfers under a nanosecond). The edge runs
at speed 0.2 (a layer: 25 ms, the model: 50 ms), the cloud at speed 5 (the model: 2 ms), the phone at
speed 1 (the model: 10 ms). Arrivals come from a file, so the timeline is known to the microsecond.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import linear_profile

from simulator.config import scenario_from_dict
from simulator.engine import simulate
from simulator.errors import ConfigError
from simulator.metrics import summarise

ROOT = Path(__file__).resolve().parent.parent
ARRIVALS = [0.5, 0.97, 1.2, 1.95, 2.05, 3.0]  # edge down in [1, 2): 0.97 is in flight at 1.0
TOL = 1e-6


def _profile(path: Path) -> Path:
    """8 requests of 10 tokens, 5 ms per layer at speed 1 (a request: 10 ms)."""
    return linear_profile(path, np.full(8, 10), ms_per_token=1.0)


def _scenario(tmp_path: Path, rule: str, cloud: bool = True, failures: dict | None = None,
              arrivals: list[float] | None = None, **extra) -> object:
    times = tmp_path / "arrivals.txt"
    times.write_text("\n".join(str(t) for t in (arrivals or ARRIVALS)) + "\n")
    fast = {"rtt_ms": 0, "bandwidth": {"model": "constant", "mbps": 1e6}}
    tiers = {"mobile": {"device": "phone", "layers": [1, 1]},
             "edge": {"device": "slow-edge", "layers": [2, 2],
                      "failures": failures or {"schedule": [[1.0, 2.0]]}}}
    links = {"up": fast}
    if cloud:
        tiers["cloud"] = {"device": "fast-cloud", "layers": []}
        links["backhaul"] = fast
    data = {
        "name": "fail", "profile": str(_profile(tmp_path / "p.npz")), "seed": 1, "timeline": False,
        "devices": {"phone": {"base": "profile-host"}, "slow-edge": {"base": "profile-host", "speed": 0.2},
                    "fast-cloud": {"base": "profile-host", "speed": 5.0}},
        "tiers": tiers, "links": links,
        "workload": {"arrival": "file", "file": str(times)},
        "failover": {"rule": rule, "timeout_ms": 100},
        "policies": ["all-edge"],
    }
    data.update(extra)
    return scenario_from_dict(data)


def _latency_ms(df) -> np.ndarray:
    return df["latency_ms"].to_numpy()


def test_drop_rule_fails_exactly_the_requests_the_window_hits(tmp_path):
    df = simulate(_scenario(tmp_path, "drop"), "all-edge").requests
    assert df["status"].tolist() == ["completed", "failed", "failed", "failed", "completed", "completed"]
    assert df["reason"].tolist() == ["", "down:edge", "down:edge", "down:edge", "", ""]
    # in flight at 1.0 (started 0.97): lost then, noticed 100 ms later; arrivals in the window: 100 ms
    np.testing.assert_allclose(_latency_ms(df), [50, 130, 100, 100, 50, 50], atol=TOL)
    assert not df["dropped"].any() and df["failed"].sum() == 3
    assert (df["failovers"] == 0).all()
    assert df["exit_layer"].tolist() == [2, 0, 0, 0, 2, 2]


def test_local_rule_finishes_on_the_phone_after_the_timeout(tmp_path):
    df = simulate(_scenario(tmp_path, "local"), "all-edge").requests
    assert (df["status"] == "completed").all()
    # the phone runs the whole model (10 ms) after the 100 ms timeout
    np.testing.assert_allclose(_latency_ms(df), [50, 140, 110, 110, 50, 50], atol=TOL)
    assert df["exit_tier"].tolist() == ["edge", "mobile", "mobile", "mobile", "edge", "edge"]
    assert df["failovers"].tolist() == [0, 1, 1, 1, 0, 0]
    # the lost 30 ms of edge compute of the in-flight request are booked to the edge
    assert df["compute_s_edge"].iloc[1] == pytest.approx(0.030, abs=TOL)


def test_retry_rule_resends_to_the_cloud(tmp_path):
    df = simulate(_scenario(tmp_path, "retry"), "all-edge").requests
    assert (df["status"] == "completed").all()
    np.testing.assert_allclose(_latency_ms(df), [50, 132, 102, 102, 50, 50], atol=TOL)
    assert df["exit_tier"].tolist() == ["edge", "cloud", "cloud", "cloud", "edge", "edge"]


def test_retry_without_another_tier_fails(tmp_path):
    df = simulate(_scenario(tmp_path, "retry", cloud=False), "all-edge").requests
    assert df["reason"].tolist() == ["", *["down:edge;no_retry_target"] * 3, "", ""]
    np.testing.assert_allclose(_latency_ms(df), [50, 130, 100, 100, 50, 50], atol=TOL)


def test_local_rule_resumes_from_the_phones_own_layers(tmp_path):
    # layer 1 on the phone (5 ms), layer 2 on the edge (25 ms): the phone keeps layer 1's state
    sc = _scenario(tmp_path, "local", cloud=False)
    df = simulate(sc, {"name": "fixed-split", "split": 1}).requests
    # 0.97: phone until 0.975, edge from 0.975, lost at 1.0, phone runs layer 2 from 1.1 (5 ms)
    np.testing.assert_allclose(_latency_ms(df), [30, 135, 110, 110, 30, 30], atol=TOL)
    assert df["compute_s_mobile"].round(6).tolist() == [0.005, 0.01, 0.01, 0.01, 0.005, 0.005]


def test_policy_failover_overrides_the_scenario_default(tmp_path):
    sc = _scenario(tmp_path, "drop")
    df = simulate(sc, {"name": "all-edge", "label": "x", "failover": {"rule": "retry", "timeout_ms": 40}}).requests
    np.testing.assert_allclose(_latency_ms(df), [50, 72, 42, 42, 50, 50], atol=TOL)


def test_device_books_close_after_a_failure(tmp_path):
    res = simulate(_scenario(tmp_path, "drop"), "all-edge", record_timeline=True)
    edge = res.devices.set_index("device").loc["edge0"]
    # busy: three whole requests (50 ms each) and 30 ms of the lost one
    assert edge["busy_s"] == pytest.approx(0.18, abs=TOL)
    assert edge["failures"] == 1 and edge["down_s"] == pytest.approx(1.0)
    assert edge["end_s"] == pytest.approx(3.05, abs=TOL)  # the last request's finish
    up = res.timeline[res.timeline["series"] == "up"]
    assert up["time_s"].tolist() == [0.0, 1.0, 2.0] and up["value"].tolist() == [1.0, 0.0, 1.0]


def test_the_run_ends_with_the_last_request_not_the_repair(tmp_path):
    res = simulate(_scenario(tmp_path, "drop", failures={"schedule": [[2.9, 50.0]]}), "all-edge")
    edge = res.devices.set_index("device").loc["edge0"]
    assert edge["end_s"] == pytest.approx(3.1, abs=TOL)  # 3.0 lost on arrival, noticed 100 ms later
    assert edge["down_s"] == pytest.approx(0.2, abs=TOL)


def test_every_request_ends_exactly_once_with_random_failures_and_drops(tmp_path):
    arrivals = list(np.round(np.cumsum(np.random.default_rng(0).exponential(0.04, 600)), 6))
    sc = _scenario(tmp_path, "retry", failures={"mtbf_s": 3.0, "mttr_s": 1.0}, arrivals=arrivals)
    sc.tiers["edge"].queue_capacity = 2
    for spec in ("all-edge", {"name": "fixed-split", "split": 1, "tier": "edge"}):
        df = simulate(sc, spec).requests
        assert len(df) == 600 and df["request_id"].is_unique
        counts = df["status"].value_counts()
        assert counts.sum() == 600 and set(counts.index) <= {"completed", "dropped", "failed"}
        assert counts.get("dropped", 0) > 0 and counts.get("failed", 0) + df["failovers"].sum() > 0
        assert (df["dropped"] == (df["status"] == "dropped")).all()
        assert (df["failed"] == (df["status"] == "failed")).all()
        assert (df["reason"][df["status"] == "dropped"].str.startswith("queue_full:")).all()
        row = summarise(df.assign(warmup=False), ["mobile", "edge", "cloud"]).iloc[0]
        assert row["completed"] + row["dropped"] + row["failed"] == 600
        assert row["fail_rate"] == pytest.approx(row["failed"] / 600)


def test_mtbf_windows_have_the_right_means():
    from simulator.failures import FailureSpec

    spec = FailureSpec(mtbf_s=30.0, mttr_s=5.0)
    w = np.array(list(spec.windows(np.random.default_rng(3), 2e5)))
    up = w[1:, 0] - w[:-1, 1]
    assert (w[:, 1] - w[:, 0]).mean() == pytest.approx(5.0, rel=0.05)
    assert up.mean() == pytest.approx(30.0, rel=0.05)


@pytest.mark.parametrize("patch, needle", [
    ({"failover": {"rule": "retyr"}}, "unknown failover rule 'retyr' at 'failover.rule'; did you mean 'retry'?"),
    ({"policies": [{"name": "all-edge", "failover": {"rule": "panic"}}]},
     "unknown failover rule 'panic' at 'policies[0](all-edge).failover.rule'"),
])
def test_unknown_failover_rule_is_one_clear_error(tmp_path, patch, needle):
    with pytest.raises(ConfigError) as e:
        _scenario(tmp_path, "drop", **patch)
    assert needle in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("failures, needle", [
    ({"mttr_s": 30}, "'tiers.edge.failures.mttr_s' needs 'tiers.edge.failures.mtbf_s'"),
    ({"mtbf_s": 30}, "'tiers.edge.failures.mtbf_s' needs 'tiers.edge.failures.mttr_s'"),
    ({"schedule": [[5, 2]]}, "'tiers.edge.failures.schedule[0]' must be [start_s, end_s]"),
    ({"schedule": [[1, 2]], "mtbf_s": 3, "mttr_s": 1}, "either 'schedule' or 'mtbf_s'"),
    ({"mtbf_s": -1, "mttr_s": 1}, "'tiers.edge.failures.mtbf_s' must be positive"),
])
def test_bad_failures_are_one_clear_error(tmp_path, failures, needle):
    with pytest.raises(ConfigError) as e:
        _scenario(tmp_path, "drop", failures=failures)
    assert needle in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("key, needle", [
    ("tiers.edge.failures", "'tiers.edge.failures.mttr_s' needs"),
    ("links.backhaul.failures", "'links.backhaul.failures.mttr_s' needs 'links.backhaul.failures.mtbf_s'")])
def test_cli_exits_2_with_one_line_for_mttr_without_mtbf(key, needle):
    out = subprocess.run([sys.executable, "run_sim.py", "validate", "scenarios/edge_failure.yaml",
                          "--set", f"{key}={{mttr_s: 30}}"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0]


def test_shipped_edge_failure_scenario_failover_keeps_deadline_misses_lower(monkeypatch):
    from simulator.config import load_scenario
    from simulator.runner import run_scenario

    monkeypatch.chdir(ROOT)
    sc = load_scenario(ROOT / "scenarios" / "edge_failure.yaml", ["replications=1", "workload.requests=800"])
    s = run_scenario(sc).summary.set_index("policy")
    assert s.loc["all-edge-drop", "fail_rate"] > 0.2  # the edge is down for 20 of the ~50 s
    for base in ("all-edge", "threshold"):
        drop, retry = s.loc[f"{base}-drop"], s.loc[f"{base}-retry"]
        assert retry["failed"] == 0 and retry["deadline_miss_rate"] < drop["deadline_miss_rate"] / 3
    assert s.loc["all-edge-local", "deadline_miss_rate"] < s.loc["all-edge-drop", "deadline_miss_rate"] / 3


def test_resolved_config_keeps_each_policys_failover():
    """config.yaml rebuilds the run: a policy's own failover rule survives resolution (it did not)."""
    from simulator.config import load_scenario, scenario_from_dict
    from simulator.failures import policy_failover

    sc = load_scenario(ROOT / "scenarios" / "edge_failure.yaml")
    again = scenario_from_dict(sc.resolved())
    rules = [policy_failover(s, sc.failover) for s in sc.policies]
    assert [policy_failover(s, again.failover) for s in again.policies] == rules
    assert {r.rule for r in rules} == {"drop", "retry", "local"}
