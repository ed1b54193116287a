"""Online learners, partitioners, and every policy end to end in the engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_policies import L, context, hard_split, req, split_from_probs, started

from simulator.config import scenario_from_dict
from simulator.engine import Simulation
from simulator.policies import load_all
from simulator.policies.base import Outcome, Request
from simulator.policies.online import UCB
from simulator.view import ExitView


# -- UCB and SplitEE -----------------------------------------------------------------------------
def test_ucb_concentrates_on_best_arm():
    rng = np.random.default_rng(0)
    means = np.array([0.3, 0.5, 0.7, 0.45])
    b = UCB(4, 1.0, np.random.default_rng(1))
    for _ in range(3000):
        a = b.select()
        b.update(a, float(rng.random() < means[a]))
    assert int(np.argmax(b.counts)) == 2
    assert b.counts[2] > 0.6 * b.counts.sum()


def drive(policy, split, n, view=None, seed=0):
    """Feed n requests with random samples through plan/decide/observe, one at a time, as the engine
    does: exits readable up to the layer decided, then up to the exit layer in observe."""
    view = view if view is not None else ExitView(split)
    view._split = split
    rng = np.random.default_rng(seed)
    exits = []
    for rid in range(n):
        s = int(rng.integers(len(split)))
        r = Request(rid, 0, s, 16, float(rid))
        plan = policy.plan(r, view)
        e = plan.last_layer
        for k in range(1, plan.last_layer):
            view.reach(r, k)
            if k in plan.exits and policy.decide(r, k, view):
                e = k
                break
        tier = plan.tiers[e - 1]
        view.reach(r, e)
        policy.observe(r, Outcome(e, tier, 0.05, 0.0, 0.0), view)
        view.forget(r)
        exits.append(e)
    return np.array(exits)


@pytest.mark.parametrize("name", ["splitee", "splitee-s"])
def test_splitee_plays_best_split_most(name):
    s = hard_split(400, 11)
    ctx = context(s, tiers=None, lam=0.05, offload=(0.3, 0.3))
    p = started({"name": name, "alpha": 0.8}, ctx)
    expected = np.array([np.mean([p.reward(s.confidence[i], j, None) for i in range(len(s))])
                         for j in range(1, L + 1)])
    best = int(np.argmax(expected))
    assert expected[best] - np.sort(expected)[-2] > 0.01  # a clear winner in this setting
    drive(p, s, 3000)
    assert int(np.argmax(p.played)) == best
    assert p.played[best] > 0.5 * p.played.sum()


def test_splitee_plan_and_rewards():
    s = split_from_probs(np.array([[0.6, 0.95, 0.6, 0.6, 0.6, 0.99]]))
    ctx = context(s, lam=0.1, offload=(0.5, 1.0))
    p = started({"name": "splitee", "alpha": 0.9}, ctx)
    assert p.reward(s.confidence[0], 2, None) == pytest.approx(0.95 - 0.2)  # exits on the mobile
    assert p.reward(s.confidence[0], 3, None) == pytest.approx(0.99 - 0.3 - 1.5)  # offloaded to the cloud
    plan = p._plans[2]  # arm: split after layer 3
    assert plan.tiers == (0, 0, 0, 2, 2, 2) and plan.exits == {3, L}
    ps = started({"name": "splitee-s", "alpha": 0.9}, ctx)
    assert ps._plans[2].exits == {1, 2, 3, L}
    # SplitEE-S updates every arm at or below the played one
    r = req(0, rid=7)
    ps._pending[7] = 3
    view = ExitView(s)
    view.reach(r, L)
    ps.observe(r, Outcome(L, 2, 0.1, 0.0, 0.0), view)
    assert list(ps.bandit.counts) == [1, 1, 1, 1, 0, 0]


def test_ceebert_reward_zero_on_first_exit_and_gain_otherwise():
    s = split_from_probs(np.array([[0.6, 0.7, 0.8, 0.95, 0.97, 0.99]]))
    ctx = context(s)
    p = started({"name": "ceebert", "grid": [0.65, 0.9, 0.98], "mu": 0.05}, ctx)
    view = ExitView(s)
    for arm, (exit_layer, tier) in enumerate([(2, 0), (4, 1), (6, 2)]):
        p._pending[arm] = arm
        view.reach(req(0, arm), exit_layer)
        p.observe(req(0, arm), Outcome(exit_layer, tier, 0.1, 0.0, 0.0), view)
    means = p.bandit.means
    assert means[0] == 0.0
    assert means[1] == pytest.approx(0.95 - 0.7 - 0.05 * (0.2 + 0.5))
    assert means[2] == pytest.approx(0.99 - 0.7 - 0.05 * (0.4 + 1.5))


class QueueView(ExitView):
    now = 0.0

    def __init__(self, q):
        super().__init__(None)
        self.q = q

    def queue_length(self, mobile, tier):
        return self.q


def test_queue_aware_keeps_one_bandit_per_queue_length():
    s = hard_split(100, 1)
    p = started({"name": "queue-aware", "max_queue": 4}, context(s))
    drive(p, s, 30, view=QueueView(2))
    drive(p, s, 10, view=QueueView(9))  # capped at max_queue
    counts = [int(b.counts.sum()) for b in p.bandits]
    assert counts == [0, 0, 30, 0, 10]


# -- partitioners --------------------------------------------------------------------------------
class FakeView:
    """Mobile 10 ms/layer, server 1 ms/layer, 20 ms RTT, 30 kB hidden state, 200 B input."""

    now = 0.0

    def __init__(self, bps):
        self.bps = bps

    def route_links(self, mobile, a, b):
        return tuple(range(a, b))

    def link_bandwidth_estimate_bps(self, mobile, link):
        return self.bps

    def link_rtt_s(self, link):
        return 0.02

    def queue_length(self, mobile, tier):
        return 0

    def frequency(self, mobile, tier):
        return 1.0

    def layer_seconds(self, req, tier):
        return np.full(L, 0.010 if tier == 0 else 0.001)

    def head_seconds(self, req, tier):
        return 0.0005

    def transfer_bytes(self, req, after_layer):
        return 200 if after_layer == 0 else 30_000

    def embed_seconds(self, req, tier):
        return 0.0

    def request_power_w(self, mobile, tier):
        return 1.0

    def radio_tx_energy_j(self, nbytes, seconds):
        return seconds


def test_neurosurgeon_picks_minimum_of_computed_total():
    ctx = context(hard_split(10, 0))
    p = started({"name": "neurosurgeon", "server": "edge"}, ctx)
    slow, fast = FakeView(1e3), FakeView(1e9)
    assert p.plan(req(0), slow).tiers == (0,) * L  # uplink too slow: all on the mobile
    assert p.plan(req(0), fast).tiers == (1,) * L  # fast: send the input
    # the hand-computed totals at 2 Mbit/s: cut 0 = 200 B upload + 6 ms server; cut 6 = 60 ms mobile
    view = FakeView(2e6)
    tot = p.scores(req(0), view)
    assert tot[0] == pytest.approx(200 * 8 / 2e6 + 0.02 + 0.006 + 0.0005)
    assert tot[L] == pytest.approx(0.060 + 0.0005)
    assert tot[3] == pytest.approx(0.030 + 30_000 * 8 / 2e6 + 0.02 + 0.003 + 0.0005)
    assert int(np.argmin(tot)) == 0


def test_neurosurgeon_uses_prior_before_first_transfer():
    ctx = context(hard_split(10, 0))

    class NoEstimate(FakeView):
        def link_bandwidth_estimate_bps(self, mobile, link):
            return None

    lo = started({"name": "neurosurgeon", "prior_mbps": 0.001}, ctx)
    hi = started({"name": "neurosurgeon", "prior_mbps": 100.0}, ctx)
    assert lo.plan(req(0), NoEstimate(0)).tiers == (0,) * L
    assert hi.plan(req(0), NoEstimate(0)).tiers[0] == 2


def test_edgent_meets_deadline_with_most_accurate_exit():
    s = hard_split(500, 2)
    ctx = context(s, s)
    acc = s.exit_accuracy()
    assert acc[-1] > acc[0]
    loose = started({"name": "edgent", "deadline_ms": 1000.0}, ctx)
    e, k, lat = loose.choose(req(0), FakeView(1e3))  # all local, 60 ms < 1 s
    assert e == int(np.argmax(acc)) + 1 and k >= e
    tight = started({"name": "edgent", "deadline_ms": 25.0}, ctx)
    e2, k2, lat2 = tight.choose(req(0), FakeView(1e3))  # only 2 local layers fit
    assert lat2 <= 0.025 and e2 <= 2
    plan = tight.plan(req(0), FakeView(1e3))
    assert plan.last_layer == e2 and plan.exits == {e2}


# -- end to end ----------------------------------------------------------------------------------
def scenario(profile, policies, mbps=10.0, requests=120, seed=5):
    data = {
        "name": "t", "profile": str(profile), "seed": seed, "timeline": False,
        "tiers": {"mobile": {"device": "phone-cpu", "count": 2, "layers": [1, 2]},
                  "edge": {"device": "jetson-orin", "layers": [3, 4]},
                  "cloud": {"device": "cloud-gpu", "layers": [5, 6]}},
        "links": {"uplink": {"rtt_ms": 20, "bandwidth": {"model": "constant", "mbps": mbps}},
                  "backhaul": {"rtt_ms": 40, "bandwidth": {"model": "constant", "mbps": 100}}},
        "workload": {"rate_per_s": 5, "requests": requests},
        "cost": {"lambda_per_layer": 0.1, "offload": [0.5, 1.0]},
        "policies": policies,
    }
    return scenario_from_dict(data)


def test_every_policy_end_to_end_same_stream_and_plans_respected(synth_profile):
    names = sorted(load_all())
    sc = scenario(synth_profile, names)
    frames = []
    for name in names:
        sim = Simulation(sc, name)
        plans = {}
        orig = sim.policy.plan

        def recording(r, v, orig=orig, plans=plans):
            plans[r.id] = orig(r, v)
            return plans[r.id]

        sim.policy.plan = recording
        df = sim.run().requests
        tiers = [t.name for t in sim.network.tiers]
        assert len(df) == 120 and df["request_id"].is_unique and not df["dropped"].any(), name
        for row in df.itertuples():
            plan = plans[row.request_id]
            assert row.exit_layer in plan.exits | {plan.last_layer}, name
            assert row.exit_layer <= plan.last_layer
            assert tiers[plan.tiers[row.exit_layer - 1]] == row.exit_tier, name
            assert list(plan.tiers) == sorted(plan.tiers)
        frames.append(df)
    ref = frames[0]
    for name, df in zip(names, frames, strict=True):
        assert np.array_equal(df["arrival_s"].to_numpy(), ref["arrival_s"].to_numpy()), name
        assert np.array_equal(df["sample"].to_numpy(), ref["sample"].to_numpy()), name
        assert np.array_equal(df["mobile"].to_numpy(), ref["mobile"].to_numpy()), name


def test_online_policies_start_cold_each_replication(synth_profile):
    sc = scenario(synth_profile, ["splitee", "ans"])
    for name in ("splitee", "ans", "queue-aware"):
        sim = Simulation(sc, name)
        a = sim.run().requests
        b = Simulation(sc, name).run().requests  # same replication: same choices, nothing carried over
        assert a["exit_layer"].tolist() == b["exit_layer"].tolist()
        assert a["bytes_total"].tolist() == b["bytes_total"].tolist()


def test_oracle_accuracy_is_any_exit_correct_rate(tmp_path):
    from conftest import make_profile

    from simulator.profile import load_profile

    path = make_profile(tmp_path / "p.npz", n=200, seed=4)
    prof = load_profile(path)
    noisy = prof.eval.logits.astype(float) + np.random.default_rng(0).normal(0, 2.0, prof.eval.logits.shape)
    from simulator.profile import Split, save_profile

    ev = Split(logits=noisy, labels=prof.eval.labels, tokens=prof.eval.tokens, ids=prof.eval.ids)
    path = save_profile(tmp_path / "noisy.npz", prof.meta, {"eval": ev, "calib": prof.calib}, prof.timing)
    sc = scenario(path, ["oracle"], requests=150)
    df = Simulation(sc, "oracle").run().requests
    any_correct = ev.correct.any(axis=1)[df["sample"].to_numpy()]
    assert any_correct.mean() < 1.0
    assert df["correct"].mean() == pytest.approx(any_correct.mean())
    first = np.argmax(ev.correct, axis=1) + 1
    want = np.where(ev.correct.any(axis=1), first, L)[df["sample"].to_numpy()]
    assert np.array_equal(df["exit_layer"].to_numpy(), want)


@pytest.fixture(scope="module")
def slow_phone_profile(tmp_path_factory):
    """Layers slow enough on the phone (~50 ms each) that offloading pays on a fast uplink."""
    from conftest import make_profile

    return make_profile(tmp_path_factory.mktemp("slow") / "slow.npz", n=200, layer_ms=20.0)


@pytest.mark.parametrize("name", ["neurosurgeon", "ans", "edgent"])
def test_partitioners_stay_local_on_slow_uplink_and_offload_on_fast(slow_phone_profile, name):
    spec = {"name": name, "deadline_ms": 5000.0} if name == "edgent" else name
    prof = slow_phone_profile
    slow = Simulation(scenario(prof, [spec], mbps=0.005, requests=150), spec).run().requests
    fast = Simulation(scenario(prof, [spec], mbps=1000.0, requests=150), spec).run().requests
    assert (slow["exit_tier"] == "mobile").mean() > 0.8
    assert (fast["exit_tier"] != "mobile").mean() > 0.5
    if name != "ans":  # staying local, they probe the slow link now and then, and the records say which
        probes = slow[slow["explore"]]
        assert len(probes) > 0 and (probes["route"] != "").all()
        assert not fast["explore"].any()  # a fast link is measured all the time: no probe needed


def test_dimee_in_engine_cheaper_than_all_cloud_at_near_equal_accuracy(synth_profile):
    sc = scenario(synth_profile, ["all-cloud", "dimee"], requests=300)
    cloud = Simulation(sc, "all-cloud").run().requests
    sim = Simulation(sc, "dimee")
    dimee = sim.run().requests
    ch = sim.policy.choice
    assert ch.calib_accuracy >= ch.full_accuracy - 0.003 - 1e-12
    assert dimee["cost"].mean() < cloud["cost"].mean()
    assert dimee["correct"].mean() >= cloud["correct"].mean() - 0.02
    assert set(dimee["exit_layer"]) <= {2, 4, 6}


def test_ans_learns_edge_delay_and_keeps_forced_sampling():
    ctx = context(hard_split(10, 0))
    p = started({"name": "ans", "server": "edge"}, ctx)
    view = FakeView(1e9)
    offloads = 0
    for rid in range(400):
        r = req(0, rid)
        plan = p.plan(r, view)
        if plan.tiers[-1] == 1:
            offloads += 1
            cut = plan.tiers.index(1)
            edge_ms = 2000.0 + (30_000 * 8 / 1e6 if cut else 0.0) * 100  # a terrible edge path
            p.observe(r, Outcome(L, 1, (0.010 * cut + edge_ms / 1e3), 0.0, 0.0), view)
    assert 20 <= offloads <= 40  # ~sqrt(t) forced samples, not more: the mobile wins
    good = started({"name": "ans", "server": "edge"}, ctx)
    off = 0
    for rid in range(200):
        r = req(0, rid)
        plan = good.plan(r, view)
        if plan.tiers[-1] == 1:
            off += 1
            good.observe(r, Outcome(L, 1, 0.005, 0.0, 0.0), view)  # a 5 ms edge path beats 60 ms local
    assert off > 180


SST2 = Path(__file__).resolve().parent.parent / "profiles" / "sst2-minilm6.npz"


@pytest.mark.skipif(not SST2.exists(), reason="shipped SST-2 profile not built yet")
def test_dimee_on_sst2_meets_the_paper_style_target():
    """dimee_glue's setting on SST-2: >= 43 % lower abstract cost than all-cloud, <= 0.5 points lost."""
    from simulator.config import load_scenario

    sc = load_scenario(Path(__file__).resolve().parent.parent / "scenarios" / "dimee_glue.yaml",
                       {"workload.requests": 872, "tiers.mobile.count": 1})
    cloud = Simulation(sc, "all-cloud").run().requests
    dimee = Simulation(sc, {"name": "dimee", "mode": "tolerance"}).run().requests
    assert sorted(dimee["sample"]) == list(range(872))  # every eval sample once, paired
    reduction = 1 - dimee["cost"].mean() / cloud["cost"].mean()
    drop = cloud["correct"].mean() - dimee["correct"].mean()
    assert reduction >= 0.43
    assert drop <= 0.005
