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

LTE = RrcSpec(**{k: v for k, v in PRESETS["lte"].items() if k != "source"})
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


def test_lte_preset_is_huang_2012_table_3():
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
    lte = simulate(scenario_from_dict(_scenario(synth_profile, "lte")), "all-edge").requests
    assert "promotion_s" not in none and none.equals(base)  # rrc: none is today's model exactly
    assert lte["promotion_s"].to_numpy() == pytest.approx(0.2601)
    assert (lte["latency_ms"] - base["latency_ms"]).to_numpy() == pytest.approx(260.1)
    # the radio idles in its tail from the end of the upload until the reply starts (rtt/2 + edge
    # compute), then a full tail after the reply: P_tail * (T_tail + gap)
    gap = 0.01 + lte["queue_s_edge"] + lte["compute_s_edge"]
    tail = 1.06 * (11.576 + gap.to_numpy())
    assert lte["tail_energy_j"].to_numpy() == pytest.approx(tail, rel=1e-9)
    extra = (lte["energy_radio_j"] - base["energy_radio_j"]).to_numpy()
    assert extra == pytest.approx(0.2601 * 1.2107 + tail, rel=1e-9)


@pytest.mark.parametrize("value, message", [
    ("lte5", r"unknown RRC preset 'lte5' at 'x.rrc'"),
    ({"preset": "nope"}, r"unknown RRC preset 'nope' at 'x.rrc.preset'"),
    ({"preset": "lte", "tail_s": -1}, r"'x.rrc.tail_s'"),
])
def test_bad_rrc_is_one_clear_error(value, message):
    with pytest.raises(ConfigError, match=message):
        parse_rrc(value, "x.rrc")
