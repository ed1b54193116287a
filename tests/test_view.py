"""The policy contract, enforced: exits only up to the computed layer, labels only for hindsight policies,
and observe() for every request, dropped ones included."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from test_topology import scenario

from simulator.config import scenario_from_dict
from simulator.engine import Simulation
from simulator.policies.base import Plan, Policy, PolicyContractError, every_layer_plan
from simulator.policies.registry import REGISTRY, register


@dataclass
class PeekAhead(Policy):
    """Test policy: reads the exit one layer beyond the one being decided."""

    ahead: int = 1

    def plan(self, req, view) -> Plan:
        return every_layer_plan(self.ctx.tiers, self.ctx.num_layers)

    def decide(self, req, layer, view) -> bool:
        return view.exit_confidence(req, layer + self.ahead) > 2.0


@dataclass
class PeekAtArrival(Policy):
    """Test policy: reads the first exit when the request arrives (nothing is computed yet)."""

    def plan(self, req, view) -> Plan:
        view.exit_confidence(req, 1)
        return self.default_plan()


@dataclass
class ReadsLabels(Policy):
    """Test policy: not hindsight, yet asks for the evaluation split."""

    def start(self, ctx) -> None:
        super().start(ctx)
        self.labels = ctx.split.labels


@dataclass
class Recorder(Policy):
    """Test policy: records every outcome and the confidences it may read then."""

    def start(self, ctx) -> None:
        super().start(ctx)
        self.outcomes = []

    def plan(self, req, view) -> Plan:
        return every_layer_plan(self.ctx.tiers, self.ctx.num_layers)

    def decide(self, req, layer, view) -> bool:
        return view.exit_confidence(req, layer) >= 0.95

    def observe(self, req, outcome, view) -> None:
        seen = view.exit_confidences(req, outcome.exit_layer) if outcome.exit_layer else np.array([])
        self.outcomes.append((req.id, outcome, seen))


@pytest.fixture(autouse=True, scope="module")
def test_policies():
    """Register this module's policies for its tests only (other tests list the registry)."""
    names = {"test-peek-ahead": PeekAhead, "test-peek-arrival": PeekAtArrival, "test-reads-labels": ReadsLabels,
             "test-recorder": Recorder}
    for name, cls in names.items():
        register(name)(cls)
    yield
    for name in names:
        REGISTRY.pop(name, None)


def test_reading_an_exit_beyond_the_computed_layer_is_an_error(synth_profile):
    sc = scenario_from_dict(scenario(synth_profile, policies=["all-mobile"]))
    with pytest.raises(PolicyContractError, match="only layers 1..1 are computed"):
        Simulation(sc, "test-peek-ahead").run()
    with pytest.raises(PolicyContractError, match="only layers 1..0"):
        Simulation(sc, "test-peek-arrival").run()
    Simulation(sc, {"name": "test-peek-ahead", "ahead": 0}).run()  # the decided layer itself is fine


def test_only_hindsight_policies_get_the_evaluation_split(synth_profile):
    sc = scenario_from_dict(scenario(synth_profile, policies=["all-mobile"]))
    with pytest.raises(PolicyContractError, match="only hindsight policies"):
        Simulation(sc, "test-reads-labels")
    Simulation(sc, "oracle").run()


def test_observe_is_called_for_every_request_dropped_ones_included(synth_profile):
    sc = scenario_from_dict(scenario(
        synth_profile, policies=["all-mobile"], workload={"rate_per_s": 400, "requests": 300},
        tiers={"mobile": {"device": "phone-cpu", "layers": [1, 2], "queue_capacity": 2},
               "edge": {"device": "jetson-orin", "layers": [3, 4], "queue_capacity": 1},
               "cloud": {"device": "cloud-gpu", "layers": [5, 6]}}))
    sim = Simulation(sc, "test-recorder")
    df = sim.run().requests
    outcomes = sim.policy.outcomes
    assert len(outcomes) == len(df) == 300
    dropped = {rid for rid, o, _ in outcomes if o.dropped}
    assert 0 < len(dropped) < 300
    assert dropped == set(df.loc[df["dropped"], "request_id"])
    for _rid, o, seen in outcomes:
        assert (o.exit_layer == 0) == o.dropped
        if not o.dropped:  # what the policy may read at the end is what the request computed
            assert len(seen) == o.exit_layer
    assert not sim.view._reached  # nothing held for finished requests


@pytest.mark.parametrize("name", ["splitee", "splitee-s", "ceebert", "queue-aware", "ans"])
def test_online_learners_hold_nothing_after_drops(synth_profile, name):
    sc = scenario_from_dict(scenario(
        synth_profile, policies=["all-mobile"], workload={"rate_per_s": 400, "requests": 300},
        tiers={"mobile": {"device": "phone-cpu", "layers": [1, 2], "queue_capacity": 1},
               "edge": {"device": "jetson-orin", "layers": [3, 4], "queue_capacity": 1},
               "cloud": {"device": "cloud-gpu", "layers": [5, 6]}}))
    sim = Simulation(sc, name)
    df = sim.run().requests
    assert df["dropped"].any()
    assert sim.policy._pending == {}
