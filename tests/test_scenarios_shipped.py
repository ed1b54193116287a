"""Every shipped scenario and sweep file validates (on the shipped profiles and the shared traces)."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.config import load_scenario
from simulator.engine import Simulation
from simulator.sweep.spec import load_sweep

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = sorted((REPO / "scenarios").glob("*.yaml"))
SWEEPS = sorted((REPO / "scenarios" / "sweeps").glob("*.yaml"))


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_scenario_validates_and_policies_start(path, shared_data, monkeypatch):
    monkeypatch.setenv("EESIM_SHARED_DATA", str(shared_data))
    sc = load_scenario(path)
    for spec in sc.policies:
        Simulation(sc, spec)


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.name)
def test_sweep_file_expands(path, shared_data, monkeypatch):
    monkeypatch.setenv("EESIM_SHARED_DATA", str(shared_data))
    spec = load_sweep(path)
    assert spec.n_conditions >= 2
    assert spec.n_runs == spec.n_conditions * spec.replications


def test_default_scenario_shows_the_trade_off(monkeypatch):
    from simulator.runner import run_scenario

    monkeypatch.chdir(REPO)
    sc = load_scenario(REPO / "scenarios" / "default.yaml", ["replications=1", "workload.requests=600"])
    s = run_scenario(sc).summary.set_index("policy")
    assert s.loc["all-mobile", "energy_mobile_j_per_req"] > 10 * s.loc["all-cloud", "energy_mobile_j_per_req"]
    assert s.loc["all-cloud", "latency_mean_ms"] > s.loc["all-edge", "latency_mean_ms"]
    early = s.loc["threshold-0.8"]
    assert 0 < early["exit_frac_mobile"] < 1 and early["cost_mean"] < s.loc["all-cloud", "cost_mean"]
    # a trade-off in accuracy too: the policies do not all score the same, and exiting earlier costs accuracy
    assert s["accuracy"].round(4).nunique() > 1
    assert s.loc["threshold-0.6", "accuracy"] < s.loc["all-cloud", "accuracy"] - 0.01
    assert s.loc["threshold-0.6", "latency_mean_ms"] < s.loc["all-cloud", "latency_mean_ms"]
