"""Records: plans as text, the abstract cost model, and the per-policy record of a replication."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.records import CostModel, describe_plan


def test_describe_plan_runs_of_tiers_up_to_the_last_layer():
    names = ["mobile", "edge", "cloud"]
    assert describe_plan((0, 0, 1, 1, 2, 2), {2, 4, 6}, 6, names) == ("mobile 1-2, edge 3-4, cloud 5-6", "2,4,6")
    assert describe_plan((0, 2, 2, 2, 2, 2), {1, 6}, 6, names) == ("mobile 1, cloud 2-6", "1,6")
    assert describe_plan((0, 0, 1, 1, 1, 1), {3}, 3, names) == ("mobile 1-2, edge 3", "3")  # truncated model


def test_cost_model_per_link_per_tier_and_per_route():
    routes = {(0, 1): (0,), (1, 2): (1,), (0, 2): (2,)}  # link 2 is a direct mobile -> cloud link
    cost = CostModel((0.1, 0.1, 0.1), (0.5, 1.0, 3.0), (0, 1), routes)
    assert cost.plan_cost((0, 0, 1, 1, 2, 2), 6) == pytest.approx(0.6 + 0.5 + 1.0)  # climbs the chain
    assert cost.plan_cost((2,) * 6, 6) == pytest.approx(0.6 + 3.0)  # takes the direct link
    assert cost.plan_cost((0, 0, 1, 1, 2, 2), 2) == pytest.approx(0.2)
    authors = CostModel((0.1, 0.0, 0.0), (0.0, 0.0, 0.0), (0, 1), routes, {(0, 1): 0.4, (0, 2): 0.4})
    assert authors.plan_cost((0, 0, 0, 2, 2, 2), 6) == pytest.approx(0.3 + 0.4)  # server layers are free
    assert authors.plan_cost((0, 0, 1, 1, 2, 2), 6) == pytest.approx(0.2 + 0.4)  # edge -> cloud costs 0
    assert authors.move(0, 2) == pytest.approx(0.4)


def test_shared_link_series_gets_a_point_at_every_capacity_step():
    from simulator.bandwidth import BandwidthPath
    from simulator.records import _with_capacity_steps

    path = BandwidthPath(iter([(2.0, 10.0), (1.0, 4.0), (100.0, 8.0)]))  # steps at 0, 2, 3 s
    series = np.array([[0.0, 0, 0.0], [1.0, 2, 5.0], [4.0, 1, 8.0]])
    got = _with_capacity_steps(series, path, 5.0)
    assert got.tolist() == [[0.0, 0, 0.0], [1.0, 2, 5.0], [2.0, 2, 2.0], [3.0, 2, 4.0], [4.0, 1, 8.0]]
