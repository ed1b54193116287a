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


def test_cost_model_climbs_the_chain():
    cost = CostModel(0.1, (0.5, 1.0, 3.0), (0, 1))  # link 2 is a direct link: not on the chain
    assert cost.cost(6, 2) == pytest.approx(0.6 + 1.5)
    assert cost.cost(2, 0) == pytest.approx(0.2)
    np.testing.assert_allclose(cost.cost([1, 4], [0, 1]), [0.1, 0.9])
