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
from simulator.sharing import SharedLink, SharedPort
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


def _two_cells(moving: bool) -> dict[str, float]:
    """Two 1 MB/s cells; A and B on cell 0, C on cell 1, 1 MB each from 0; A moves to cell 1 at 0.5 s
    with a 0.2 s interruption. Finish time per phone (``moving=False``: A's transfer stays on cell 0)."""
    env = simpy.Environment()
    ho = [Handovers(0, [(0.5, 1)], 2, None, None), Handovers(0, [], 2, None, None),
          Handovers(1, [], 2, None, None)]
    q = [with_blackouts(constant_one(), h, 0.2) for h in ho]
    cells = [SharedLink(env, f"cell{i}", _const(), latency_s=0.0, quality=q) for i in range(2)]
    ports = [SharedPort(cells, u, (lambda u=u: ho[u].cell_at(env.now)), moves=ho[u].after if moving else None)
             for u in range(3)]
    done = {}

    def go(u):
        if not moving:  # the old rule: the cell is picked once, when the transfer starts
            yield from cells[ports[u].cell()].transmit(MB, u)
        else:
            yield from ports[u].transmit(MB)
        done["ABC"[u]] = env.now

    for u in range(3):
        env.process(go(u))
    env.run()
    return done, cells


def test_a_handover_moves_the_transfers_remaining_bits_to_the_new_cell():
    # 0-0.5: A, B share cell 0 (0.75 MB left each), C alone on cell 1 (0.5 MB left). At 0.5 A joins
    # cell 1 with weight 0 until 0.7: B alone on cell 0 ends at 1.25; C alone until 0.7 (0.3 MB left),
    # then shares with A: C ends at 1.3, A has 0.75 - 0.3 = 0.45 MB left, alone: ends 1.75.
    done, cells = _two_cells(moving=True)
    assert done == pytest.approx({"A": 1.75, "B": 1.25, "C": 1.30}, rel=1e-12)
    # each cell's books: cell 0 carried A's first 0.25 MB and B's 1 MB, cell 1 C's 1 MB and A's last
    # 0.75 MB; busy until its last transfer ended; active transfers integrated over time
    assert [c.bits_carried / 8 for c in cells] == pytest.approx([1.25 * MB, 1.75 * MB], rel=1e-12)
    assert [c.bits_sent / 8 for c in cells] == pytest.approx([2 * MB, MB])  # where transfers started
    assert [c.busy_s for c in cells] == pytest.approx([1.25, 1.75], rel=1e-12)
    assert [c.active_s for c in cells] == pytest.approx([2 * 0.5 + 0.75, 0.5 + 2 * 0.8 + 0.45], rel=1e-12)
    # the rule this replaces (the transfer stays on the cell it started on) gives 2.0 / 1.8 / 1.0
    assert _two_cells(moving=False)[0] == pytest.approx({"A": 2.0, "B": 1.8, "C": 1.0}, rel=1e-12)


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
    ({"schedule": {0: [[float("inf"), 1]]}}, r"'mobility.schedule.0' times must be >= 0 and finite"),
    ({"schedule": {0: [[5.0, 1.5]]}}, r"'mobility.schedule.0': mobile and device indices must be integers"),
    ({"schedule": {0: [["soon", 1]]}}, r"'mobility.schedule.0': handover times must be numbers"),
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
