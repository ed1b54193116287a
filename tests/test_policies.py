"""Decision rules of the exit policies on hand-made logits (no engine)."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.policies import load_all
from simulator.policies.base import Plan, PolicyContext, Request, TierInfo, scenario_plan, split_plan
from simulator.policies.dimee import evaluate_grid
from simulator.policies.registry import make_policy
from simulator.profile import Profile, Split
from simulator.records import CostModel
from simulator.view import ExitView

L = 6


def split_from_probs(p_true: np.ndarray, labels: np.ndarray | None = None) -> Split:
    """Two-class split whose class-1 probability at each (sample, layer) is ``p_true``."""
    p = np.clip(np.asarray(p_true, dtype=float), 1e-6, 1 - 1e-6)
    logits = np.stack([np.zeros_like(p), np.log(p / (1 - p))], axis=-1)
    n = p.shape[0]
    labels = np.ones(n, dtype=int) if labels is None else np.asarray(labels)
    return Split(logits=logits, labels=labels, tokens=np.full(n, 16), ids=np.arange(n))


def tiers3(cuts=(2, 4)) -> list[TierInfo]:
    return [TierInfo(0, "mobile", 1, cuts[0], "phone-cpu"), TierInfo(1, "edge", cuts[0] + 1, cuts[1], "e"),
            TierInfo(2, "cloud", cuts[1] + 1, L, "c")]


def context(split: Split, calib: Split | None = None, tiers=None, lam=0.1, offload=(0.5, 1.0),
            seed=0) -> PolicyContext:
    prof = Profile(meta={"num_layers": L, "hidden_size": 8, "num_classes": 2},
                   splits={"eval": split, "calib": calib if calib is not None else split}, timing=None)
    n = len(offload) + 1  # tiers; the links form the chain
    routes = {(a, b): tuple(range(a, b)) for a in range(n) for b in range(a + 1, n)}
    cost = CostModel((lam,) * n, tuple(offload), tuple(range(len(offload))), routes)
    return PolicyContext(profile=prof, tiers=tiers or tiers3(), num_layers=L, cost=cost,
                         rng=np.random.default_rng(seed), hindsight_split=split)


def req(sample: int, rid: int = 0, mobile: int = 0) -> Request:
    return Request(rid, mobile, sample, 16, 0.0)


def run_exit(policy, sample: int, view=None, rid: int = 0) -> int:
    """Walk the plan as the engine does (exits readable up to the layer decided); return the exit layer."""
    view = view if view is not None else ExitView(policy.ctx.profile.splits["eval"])
    r = req(sample, rid)
    plan = policy.plan(r, view)
    for k in range(1, plan.last_layer + 1):
        if k == plan.last_layer:
            return k
        view.reach(r, k)
        if k in plan.exits and policy.decide(r, k, view):
            return k
    raise AssertionError("unreachable")


def started(spec, ctx):
    p = make_policy(spec)
    p.start(ctx)
    return p


# -- registry ------------------------------------------------------------------------------------
def test_registry_has_every_policy_with_docstrings():
    reg = load_all()
    want = {"all-mobile", "all-edge", "all-cloud", "fixed-split", "threshold", "confidence", "deebert",
            "pabee", "beem", "dimee", "splitee", "splitee-s", "ceebert", "queue-aware", "neurosurgeon",
            "edgent", "ans", "oracle"}
    assert want <= set(reg)
    for name, cls in reg.items():
        assert (cls.__doc__ or "").strip(), name
    assert reg["oracle"].hindsight and not reg["dimee"].hindsight


# -- fixed ---------------------------------------------------------------------------------------
def test_fixed_split_plan():
    ctx = context(split_from_probs(np.full((3, L), 0.6)))
    p = started({"name": "fixed-split", "split": 2, "tier": "edge"}, ctx)
    plan = p.plan(req(0), None)
    assert plan.tiers == (0, 0, 1, 1, 1, 1) and plan.exits == {L} and plan.last_layer == L
    assert run_exit(p, 0) == L
    p = started({"name": "fixed-split", "split": 0}, ctx)
    assert p.plan(req(0), None).tiers == (2,) * L
    p = started({"name": "fixed-split", "split": 3, "exit_at_split": True, "threshold": 0.55}, ctx)
    assert run_exit(p, 0) == 3


def test_split_plan_helper():
    assert split_plan(6, [2, 4]).tiers == (0, 0, 1, 1, 2, 2)
    assert split_plan(6, [2, 2]).tiers == (0, 0, 2, 2, 2, 2)
    plan = split_plan(6, [3], [0, 1], {4}, 4)
    assert plan.tiers == (0, 0, 0, 1, 1, 1) and plan.last_layer == 4


# -- threshold family ----------------------------------------------------------------------------
def test_confidence_exits_at_first_layer_over_alpha():
    p_true = np.array([[0.6, 0.93, 0.97, 0.99, 0.99, 0.99],
                       [0.6, 0.70, 0.75, 0.80, 0.85, 0.90]])
    ctx = context(split_from_probs(p_true))
    assert run_exit(started({"name": "confidence", "threshold": 0.9}, ctx), 0) == 2
    assert run_exit(started({"name": "confidence", "threshold": 0.95}, ctx), 0) == 3
    assert run_exit(started({"name": "confidence", "threshold": 0.9}, ctx), 1) == L
    per_layer = {"name": "confidence", "threshold": [1.01, 1.01, 1.01, 0.79, 1.01, 1.0]}
    assert run_exit(started(per_layer, ctx), 1) == 4


def test_threshold_per_tier_only_at_tier_ends():
    p_true = np.array([[0.95, 0.6, 0.6, 0.95, 0.6, 0.6]])
    ctx = context(split_from_probs(p_true))
    p = started({"name": "threshold", "thresholds": 0.9}, ctx)
    assert p.plan(req(0), None).exits == {2, 4, 6}
    assert run_exit(p, 0) == 4


def test_deebert_exits_exactly_where_entropy_below_s():
    rng = np.random.default_rng(1)
    s = split_from_probs(rng.uniform(0.5, 1.0, (200, L)))
    ctx = context(s)
    S = 0.35
    p = started({"name": "deebert", "entropy": S}, ctx)
    below = s.entropy < S
    for i in range(200):
        want = int(np.argmax(below[i])) + 1 if below[i, : L - 1].any() else L
        assert run_exit(p, i) == want


def test_pabee_patience_counting():
    # predictions per layer: 0 1 1 1 0 0  (p > 0.5 means class 1)
    p_true = np.array([[0.2, 0.8, 0.8, 0.8, 0.2, 0.2],
                       [0.2, 0.8, 0.2, 0.8, 0.2, 0.8]])
    ctx = context(split_from_probs(p_true))
    assert run_exit(started({"name": "pabee", "patience": 1}, ctx), 0) == 3
    assert run_exit(started({"name": "pabee", "patience": 2}, ctx), 0) == 4
    assert run_exit(started({"name": "pabee", "patience": 3}, ctx), 0) == L
    assert run_exit(started({"name": "pabee", "patience": 1}, ctx), 1) == L  # never two agreeing in a row


def test_beem_sums_agreeing_confidences():
    # layers 1-2 predict class 1 (0.7 + 0.8 = 1.5); layer 3 predicts class 0 (resets to 0.9); layers 4-6
    # predict class 1 again: 0.9, 0.9 + 0.95, ...
    p_true = np.array([[0.7, 0.8, 0.1, 0.9, 0.95, 0.99]])
    ctx = context(split_from_probs(p_true))
    assert run_exit(started({"name": "beem", "threshold": 1.4}, ctx), 0) == 2
    assert run_exit(started({"name": "beem", "threshold": 1.6}, ctx), 0) == 5
    p = started({"name": "beem", "threshold": 10.0}, ctx)
    s = ctx.split
    assert p.score(s.pred[0, :2], s.confidence[0, :2], 2) == pytest.approx(1.5)
    assert p.score(s.pred[0, :3], s.confidence[0, :3], 3) == pytest.approx(0.9)
    assert p.score(s.pred[0, :5], s.confidence[0, :5], 5) == pytest.approx(0.9 + 0.95)
    assert run_exit(p, 0) == L


# -- oracle --------------------------------------------------------------------------------------
def test_oracle_earliest_correct_and_accuracy():
    rng = np.random.default_rng(2)
    s = split_from_probs(rng.uniform(0, 1, (300, L)))
    ctx = context(s)
    p = started("oracle", ctx)
    exits = np.array([run_exit(p, i) for i in range(300)])
    corr = s.correct
    first = np.where(corr.any(axis=1), corr.argmax(axis=1) + 1, L)
    assert np.array_equal(exits, first)
    acc = corr[np.arange(300), exits - 1].mean()
    assert acc == pytest.approx(corr.any(axis=1).mean())
    p = started({"name": "oracle", "every_layer": False}, ctx)
    assert p.plan(req(0), None).exits == {2, 4, 6}


# -- DIMEE ---------------------------------------------------------------------------------------
def hard_split(n: int, seed: int) -> Split:
    """Exits that get more accurate and more confident with depth; some samples stay wrong."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    diff = rng.uniform(0, 1, n)
    logits = np.zeros((n, L, 2))
    for k in range(L):
        margin = (k + 1) / L * 3.0 - diff * 2.0
        logits[:, k, :] = rng.normal(0, 0.8, (n, 2))
        logits[np.arange(n), k, labels] += margin
    return Split(logits=logits, labels=labels, tokens=np.full(n, 16), ids=np.arange(n))


def brute_force(conf, correct, layers, thresholds, costs):
    accs, cs = [], []
    for i in range(conf.shape[0]):
        for j, (k, a) in enumerate(zip(layers, thresholds, strict=True)):
            if conf[i, k - 1] >= a:
                accs.append(correct[i, k - 1])
                cs.append(costs[j])
                break
        else:
            accs.append(correct[i, L - 1])
            cs.append(costs[-1])
    return np.mean(accs), np.mean(cs)


def test_dimee_grid_matches_brute_force():
    s = hard_split(120, 3)
    grids = [np.array([0.6, 0.8, np.inf]), np.array([0.5, 0.9])]
    costs = [0.2, 0.9, 2.1]
    acc, cost = evaluate_grid(s.confidence, s.correct, [2, 4], grids, costs)
    for a in range(3):
        for b in range(2):
            ra, rc = brute_force(s.confidence, s.correct, [2, 4], [grids[0][a], grids[1][b]], costs)
            assert acc[a, b] == pytest.approx(ra) and cost[a, b] == pytest.approx(rc)


def test_dimee_tolerance_mode_within_tolerance_and_cheaper():
    calib, ev = hard_split(600, 4), hard_split(600, 5)
    ctx = context(ev, calib)
    p = started({"name": "dimee", "tolerance_points": 0.3}, ctx)
    ch = p.choice
    assert ch.calib_accuracy >= ch.full_accuracy - 0.003 - 1e-12
    assert ch.full_cost == pytest.approx(0.1 * L + 1.5)
    assert ch.calib_cost < ch.full_cost
    # the online rule applies exactly the chosen thresholds at the tier ends
    a_m, a_e = ch.thresholds
    conf = ev.confidence
    for i in range(100):
        want = 2 if conf[i, 1] >= a_m else (4 if conf[i, 3] >= a_e else L)
        assert run_exit(p, i) == want
    # a looser tolerance is at least as cheap
    loose = started({"name": "dimee", "tolerance_points": 3.0}, ctx).choice
    assert loose.calib_cost <= ch.calib_cost


def test_dimee_cost_mode_mu_extremes():
    calib = hard_split(400, 6)
    ctx = context(calib, calib)
    greedy = started({"name": "dimee", "mode": "cost", "mu": 10.0}, ctx).choice
    assert greedy.calib_cost == pytest.approx(0.2)  # everything out at the mobile (the paper's mu=1 trap)
    careful = started({"name": "dimee", "mode": "cost", "mu": 0.0}, ctx).choice
    assert careful.calib_accuracy >= greedy.calib_accuracy
    assert careful.calib_accuracy >= careful.full_accuracy


def test_dimee_search_splits_uses_its_own_cuts():
    calib = hard_split(300, 7)
    ctx = context(calib, calib)
    p = started({"name": "dimee", "search_splits": True, "tolerance_points": 1.0}, ctx)
    m, e = p.choice.cuts
    assert 1 <= m < e < L
    plan = p.plan(req(0), None)
    assert plan.tiers == split_plan(L, [m, e]).tiers and plan.exits == {m, e, L}
    fixed = started({"name": "dimee", "tolerance_points": 1.0}, ctx).choice
    assert p.choice.calib_cost <= fixed.calib_cost + 1e-12


def test_scenario_plan_is_default():
    ctx = context(hard_split(10, 0))
    assert started("dimee", ctx).plan(req(0), None) == scenario_plan(ctx.tiers, L)
    assert isinstance(scenario_plan(ctx.tiers, L), Plan)


def test_policies_see_the_evaluation_split_only_with_hindsight(synth_profile):
    from simulator.config import scenario_from_dict
    from simulator.engine import Simulation
    from simulator.fast.engine import FastSimulation
    from simulator.policies.base import PolicyContractError

    sc = scenario_from_dict({
        "profile": str(synth_profile), "timeline": False,
        "tiers": {"mobile": {"device": "phone-cpu", "layers": [1, 3]},
                  "cloud": {"device": "cloud-gpu", "layers": [4, 6]}},
        "links": {"uplink": {"bandwidth": 10}}, "policies": ["all-cloud", "oracle"]})
    for make in (Simulation, FastSimulation):
        plain, hindsight = make(sc, "all-cloud").policy.ctx, make(sc, "oracle").policy.ctx
        assert set(plain.profile.splits) == {"calib"}  # no path to the evaluation labels
        with pytest.raises(PolicyContractError):
            _ = plain.split
        assert len(plain.calib) > 0 and plain.profile.num_layers == 6
        assert hindsight.split is hindsight.profile.splits["eval"]


@pytest.mark.parametrize("spec, message", [
    ({"name": "all-mobile", "tier": 7}, "policy all-mobile: 'tier' 7 is not a tier: give a name (mobile, edge, "
                                        "cloud) or an index in -3..2"),
    ({"name": "all-cloud", "tier": -4}, "'tier' -4 is not a tier"),
    ({"name": "fixed-split", "split": 2, "tier": 3}, "'tier' 3 is not a tier"),
    ({"name": "neurosurgeon", "server": 5}, "'server' 5 is not a tier"),
])
def test_tier_index_out_of_range_is_refused(spec, message):
    from simulator.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        started(spec, context(split_from_probs(np.full((4, L), 0.9))))
    assert message in str(e.value)


def test_tier_indices_in_range_and_from_the_cloud_end():
    ctx = context(split_from_probs(np.full((4, L), 0.9)))
    assert started({"name": "all-mobile", "tier": 2}, ctx)._plan.tiers == (2,) * L
    assert started({"name": "all-mobile", "tier": -3}, ctx)._plan.tiers == (0,) * L
    assert started({"name": "all-cloud"}, ctx)._plan.tiers == (2,) * L  # default -1: the last tier
