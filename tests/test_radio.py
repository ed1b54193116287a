"""RRC radio states: promotion, transfer and tail energy against hand-computed totals."""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from simulator.bandwidth import Constant
from simulator.config import scenario_from_dict
from simulator.device import RadioSpec
from simulator.engine import simulate
from simulator.errors import ConfigError
from simulator.network import Channel
from simulator.radio import PRESETS, RadioState, RrcCharge, RrcSpec, parse_rrc

LTE = RrcSpec(**{k: v for k, v in PRESETS["lte-huang2012"].items() if k != "source"})
RADIO = RadioSpec(tx_base_w=1.28804, tx_w_per_mbps=0.43839)
MB = 1_000_000


def _send(starts: list[float], nbytes: float = 0.5 * MB):
    """Uplink transfers at ``starts`` on an 8 Mbit/s channel; per transfer (finish, charge, tx energy)."""
    env = simpy.Environment()
    ch = Channel(env, "up", Constant(mbps=8.0).realise(np.random.default_rng(0)), latency_s=0.01)
    state, out = RadioState(LTE), []

    def go(at):
        yield env.timeout(at)
        charge = RrcCharge()
        _, tx = yield from state.transmit(env, ch, nbytes, charge, True)
        out.append((env.now, charge, RADIO.energy_j(nbytes * 8, tx, True)))

    for at in starts:
        env.process(go(at))
    env.run()
    return state, out


def test_lte_huang2012_preset_is_its_table_3():
    assert (LTE.promotion_s, LTE.promotion_w, LTE.tail_s, LTE.tail_w) == (0.2601, 1.2107, 11.576, 1.06)


def test_isolated_transfer_pays_promotion_transfer_and_full_tail():
    state, [(finish, charge, e_tx)] = _send([0.0])
    assert finish == pytest.approx(0.2601 + 0.5 + 0.01)  # promotion delay adds to latency
    assert charge.promotion_s == pytest.approx(0.2601)
    total = e_tx + charge.energy_j
    assert total == pytest.approx(e_tx + 0.2601 * 1.2107 + 11.576 * 1.06, rel=1e-12)
    assert total == pytest.approx(1.28804 * 0.5 + 0.43839 * 4 + 0.31490 + 12.27056, rel=1e-5)
    assert (state.promotions, state.tail_j) == (1, pytest.approx(11.576 * 1.06))


def test_back_to_back_within_the_tail_pays_one_tail():
    # first ends its transmission at 0.7601; the second starts 2 s later, inside the tail
    state, out = _send([0.0, 0.7601 + 2.0])
    assert state.promotions == 1
    assert sum(c.tail_j for _, c, _ in out) == pytest.approx(1.06 * (2.0 + 11.576), rel=1e-9)
    assert out[1][1].tail_j == pytest.approx(1.06 * 2.0, rel=1e-9)  # the tail time it added
    assert out[1][0] == pytest.approx(0.7601 + 2.0 + 0.5 + 0.01)  # no promotion delay
    assert state.tail_j == pytest.approx(sum(c.tail_j for _, c, _ in out))


def test_transfers_beyond_the_tail_pay_twice():
    state, out = _send([0.0, 20.0])
    assert state.promotions == 2
    assert [c.tail_j for _, c, _ in out] == pytest.approx([11.576 * 1.06] * 2)


def test_overlapping_transfers_share_one_promotion():
    state, out = _send([0.0, 0.1])  # the second waits for the promotion in progress, then the FIFO
    assert state.promotions == 1
    assert out[1][1].promotion_j == 0.0
    assert sum(c.tail_j for _, c, _ in out) == pytest.approx(11.576 * 1.06)


def _scenario(profile, rrc) -> dict:
    radio = {} if rrc == "absent" else {"radio": {"rrc": rrc}}
    return {
        "name": "r", "profile": str(profile), "seed": 2,
        "devices": {"p": {"base": "phone-cpu", **radio}},
        "tiers": {"mobile": {"device": "p", "layers": [1, 1]}, "edge": {"device": "jetson-orin", "layers": [2, 6]}},
        "links": {"uplink": {"rtt_ms": 20, "bandwidth": 8, "downlink": 30}},
        "workload": {"arrival": "deterministic", "rate_per_s": 0.05, "requests": 20},
        "policies": ["all-edge"],
    }


def test_engine_sparse_offloads_pay_promotion_and_tail(synth_profile):
    base = simulate(scenario_from_dict(_scenario(synth_profile, "absent")), "all-edge").requests
    none = simulate(scenario_from_dict(_scenario(synth_profile, "none")), "all-edge").requests
    lte = simulate(scenario_from_dict(_scenario(synth_profile, "lte-huang2012")), "all-edge").requests
    assert "promotion_s" not in none and none.equals(base)  # rrc: none is today's model exactly
    assert lte["promotion_s"].to_numpy() == pytest.approx(0.2601)
    assert (lte["latency_ms"] - base["latency_ms"]).to_numpy() == pytest.approx(260.1)
    # the radio idles in its tail from the end of the upload until the reply reaches it (rtt/2 + edge
    # compute + rtt/2), then a full tail after the reply has arrived: P_tail * (T_tail + gap)
    gap = 0.01 + lte["queue_s_edge"] + lte["compute_s_edge"] + 0.01
    tail = 1.06 * (11.576 + gap.to_numpy())
    assert lte["tail_energy_j"].to_numpy() == pytest.approx(tail, rel=1e-9)
    extra = (lte["energy_radio_j"] - base["energy_radio_j"]).to_numpy()
    assert extra == pytest.approx(0.2601 * 1.2107 + tail, rel=1e-9)


PHONE = RadioSpec(tx_base_w=1.28804, tx_w_per_mbps=0.43839, rx_base_w=1.28804, rx_w_per_mbps=0.05197)


def _offload(profile, rtt_ms: float, rate_per_s: float, requests: int):
    """all-edge from one LTE phone (8 Mbit/s up, 30 down); the requests and the phone's row."""
    sc = _scenario(profile, "lte-huang2012")
    sc["links"]["uplink"]["rtt_ms"] = rtt_ms
    sc["workload"].update(rate_per_s=rate_per_s, requests=requests)
    res = simulate(scenario_from_dict(sc), "all-edge")
    return res.requests, res.devices.set_index("device").loc["mobile0"]


@pytest.mark.parametrize("rtt_ms", [0.0, 100.0])
def test_isolated_request_pays_promotion_transfers_propagation_and_a_full_tail(synth_profile, rtt_ms):
    req, phone = _offload(synth_profile, rtt_ms, 0.05, 1)
    r = req.iloc[0]
    half = rtt_ms / 2e3
    t_up, t_dn = r["bytes_uplink"] * 8 / 8e6, 64 * 8 / 30e6  # reply_bytes 64 at 30 Mbit/s
    compute = r["queue_s_edge"] + r["compute_s_edge"]
    # timeline: promotion, upload, propagation, edge, reply, propagation
    assert r["finish_s"] - r["arrival_s"] == pytest.approx(0.2601 + t_up + half + compute + t_dn + half, rel=1e-9)
    # energy: promotion + upload + tail while the request is away (both propagation delays and the
    # edge) + reply + a full tail from the reply's arrival
    expected = (0.2601 * 1.2107 + PHONE.energy_j(r["bytes_uplink"] * 8, t_up, True)
                + 1.06 * (half + compute + half) + PHONE.energy_j(64 * 8, t_dn, False) + 1.06 * 11.576)
    assert r["energy_radio_j"] == pytest.approx(expected, rel=1e-9)
    # the rule this replaces cut the tail when the reply was sent: P_tail * rtt/2 less
    assert abs(r["energy_radio_j"] - (expected - 1.06 * half)) > 1e-6 or rtt_ms == 0
    assert r["tail_energy_j"] == pytest.approx(phone["radio_tail_j"], rel=1e-12)


def test_requests_inside_one_tail_pay_one_tail_for_the_radios_idle_time(synth_profile):
    req, phone = _offload(synth_profile, 100.0, 0.5, 3)  # every 2 s: well inside the 11.6 s tail
    t_up, t_dn = req["bytes_uplink"].to_numpy() * 8 / 8e6, 64 * 8 / 30e6
    assert phone["promotions"] == 1 and req["promotion_s"].tolist() == [0.2601, 0.0, 0.0]
    # the radio is up from the end of the one promotion until a full tail after the last reply arrived;
    # all of that time not spent sending or receiving is tail time
    up_s = req["finish_s"].iloc[-1] + 11.576 - (req["arrival_s"].iloc[0] + 0.2601)
    assert phone["radio_tail_j"] == pytest.approx(1.06 * (up_s - t_up.sum() - 3 * t_dn), rel=1e-9)
    assert req["tail_energy_j"].sum() == pytest.approx(phone["radio_tail_j"], rel=1e-12)


def test_a_reply_whose_radio_idled_on_its_way_books_a_promotion():
    # Wi-Fi tail 0.2381 s, propagation 0.3 s: the upload ends, its tail runs out before the reply arrives
    wifi = RrcSpec(**{k: v for k, v in PRESETS["wifi"].items() if k != "source"})
    env = simpy.Environment()
    rate = Constant(mbps=8.0).realise(np.random.default_rng(0))
    up, down = Channel(env, "up", rate, latency_s=0.3), Channel(env, "down", rate, latency_s=0.3)
    state, charge = RadioState(wifi), RrcCharge()

    def go():
        yield from state.transmit(env, up, 0.1 * MB, charge, True)
        yield from state.transmit(env, down, 0.1 * MB, charge, False)

    env.process(go())
    env.run()
    assert state.promotions == 2 and charge.promotion_s == pytest.approx(0.0791 * 2)
    assert charge.tail_j == pytest.approx(2 * 0.1193 * 0.2381, rel=1e-12)  # two full tails, none cut


@pytest.mark.parametrize("value, message", [
    ("lte5", r"unknown RRC preset 'lte5' at 'x.rrc'"),
    ({"preset": "nope"}, r"unknown RRC preset 'nope' at 'x.rrc.preset'"),
    ({"preset": "lte", "tail_s": -1}, r"'x.rrc.tail_s'"),
])
def test_bad_rrc_is_one_clear_error(value, message):
    with pytest.raises(ConfigError, match=message):
        parse_rrc(value, "x.rrc")
