"""Handover: attachment over time, exact interruptions of a phone's transfers, bad schedules."""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from simulator.bandwidth import Constant
from simulator.config import scenario_from_dict
from simulator.engine import simulate
from simulator.errors import ConfigError
from simulator.mobility import Handovers, constant_one, with_blackouts
from simulator.network import Channel
from simulator.sharing import SharedLink
from simulator.streams import stream

MB = 1_000_000


def _const(mbps: float = 8.0):
    return Constant(mbps=mbps).realise(np.random.default_rng(0))


def _finish(ch, at: float, nbytes: float) -> float:
    env, out = ch.env, []

    def go():
        yield env.timeout(at)
        yield from ch.transmit(nbytes)
        out.append(env.now)

    env.process(go())
    env.run()
    return out[0]


@pytest.mark.parametrize("h", [0.0, 0.2, 1.5])
def test_interrupted_transfer_finishes_exactly_h_later(h):
    ho = Handovers(0, [(0.3, 1), (5.0, 0)], 2, None, None)
    env = simpy.Environment()
    ch = Channel(env, "up", with_blackouts(_const(), ho, h), latency_s=0.01)
    assert _finish(ch, 0.0, MB) == pytest.approx(1.0 + h + 0.01, rel=1e-12)  # 1 s at 8 Mbit/s, + h
    env = simpy.Environment()
    ch = Channel(env, "up", with_blackouts(_const(), ho, h), latency_s=0.01)
    assert _finish(ch, 2.0, MB) == pytest.approx(3.01, rel=1e-12)  # between handovers: untouched


def test_handover_on_a_shared_cell_gives_the_others_its_share():
    # A and B (1 MB each, 1 MB/s shared); A hands over at 0.5 for 0.2 s: B alone meanwhile;
    # at 0.7 A has 0.75 MB left, B 0.55; B ends at 0.7 + 1.1 = 1.8; A has 0.2 left then: ends 2.0.
    env = simpy.Environment()
    ho_a = Handovers(0, [(0.5, 0)], 1, None, None)
    ho_b = Handovers(0, [], 1, None, None)
    q = [with_blackouts(constant_one(), ho_a, 0.2), with_blackouts(constant_one(), ho_b, 0.2)]
    link = SharedLink(env, "cell", _const(), latency_s=0.0, quality=q)
    done = {}

    def go(user):
        yield from link.transmit(MB, user)
        done[user] = env.now

    env.process(go(0))
    env.process(go(1))
    env.run()
    assert (done[0], done[1]) == pytest.approx((2.0, 1.8), rel=1e-12)


def test_schedule_and_random_dwell():
    ho = Handovers(0, [(1.0, 2), (4.0, 1)], 3, None, None)
    assert [ho.cell_at(t) for t in (0.0, 0.99, 1.0, 3.0, 4.0, 100.0)] == [0, 0, 2, 2, 1, 1]
    rnd = Handovers(0, None, 3, 10.0, stream(1, 0, 7, 0))
    rnd.cell_at(20_000.0)
    gaps = np.diff(rnd.times[1:])
    assert gaps.mean() == pytest.approx(10.0, rel=0.1)  # exponential dwell, mean 10 s
    assert all(a != b for a, b in zip(rnd.cells, rnd.cells[1:], strict=False))  # always moves


def _scenario(profile, mobility=None) -> dict:
    d = {
        "name": "m", "profile": str(profile), "seed": 4,
        "tiers": {"mobile": {"device": "phone-cpu", "layers": [1, 1], "count": 1},
                  "edge": {"device": "jetson-orin", "layers": [2, 6], "count": 2}},
        "links": {"uplink": {"rtt_ms": 20, "bandwidth": 8}},
        "workload": {"arrival": "deterministic", "rate_per_s": 2, "requests": 40},
        "policies": ["all-edge"],
    }
    if mobility:
        d["mobility"] = mobility
    return d


def test_new_requests_follow_the_phone_to_its_new_edge(synth_profile):
    still = simulate(scenario_from_dict(_scenario(synth_profile)), "all-edge").devices.set_index("device")
    moved = simulate(scenario_from_dict(_scenario(synth_profile, {"schedule": {0: [[10.0, 1]]},
                                                                  "interruption_s": 0.1})),
                     "all-edge").devices.set_index("device")
    assert still.loc["edge1", "busy_s"] == 0 and still.loc["edge0", "busy_s"] > 0
    assert moved.loc["edge0", "busy_s"] == pytest.approx(moved.loc["edge1", "busy_s"], rel=0.5)
    assert moved.loc["edge1", "busy_s"] > 0


@pytest.mark.parametrize("mobility, message", [
    ({"schedule": {0: [[5.0, 1], [2.0, 0]]}}, r"'mobility.schedule.0' must be sorted by time"),
    ({"schedule": {0: [[5.0, 3]]}}, r"'mobility.schedule.0': no device 3"),
    ({"mean_dwell_s": 5, "interruption_s": -1}, r"'mobility.interruption_s'"),
    ({"interruption_s": 0.1}, r"'mobility' needs exactly one of"),
])
def test_bad_mobility_is_one_clear_error(synth_profile, mobility, message):
    with pytest.raises(ConfigError, match=message):
        scenario_from_dict(_scenario(synth_profile, mobility))


def test_handover_trace_file_is_the_same_as_its_schedule(tmp_path, synth_profile):
    import pandas as pd

    base = {"profile": str(synth_profile), "seed": 2, "timeline": False,
            "tiers": {"mobile": {"device": "phone-cpu", "layers": [1, 2], "count": 2},
                      "edge": {"device": "jetson-orin", "layers": [3, 6], "count": 3}},
            "links": {"uplink": {"rtt_ms": 10, "bandwidth": 8}},
            "workload": {"rate_per_s": 6, "requests": 200}, "policies": ["all-edge"]}
    schedule = {0: [[3.0, 1], [9.5, 2]], 1: [[5.0, 0]]}
    f = tmp_path / "handovers.csv"
    f.write_text("time_s,mobile,cell\n3.0,0,1\n5.0,1,0\n9.5,0,2\n")
    a = simulate(scenario_from_dict({**base, "mobility": {"schedule": schedule}}), "all-edge")
    b = simulate(scenario_from_dict({**base, "mobility": {"file": str(f)}}), "all-edge")
    pd.testing.assert_frame_equal(a.requests, b.requests)
    bad = tmp_path / "bad.csv"
    bad.write_text("time_s,mobile,cell\n3.0,0,x\n")
    with pytest.raises(ConfigError, match=r"bad.csv:2: time_s must be a number"):
        scenario_from_dict({**base, "mobility": {"file": str(bad)}})
    with pytest.raises(ConfigError, match="exactly one of"):
        scenario_from_dict({**base, "mobility": {"file": str(f), "mean_dwell_s": 4}})
