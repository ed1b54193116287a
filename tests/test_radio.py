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


def _send(starts: list[float], nbytes: float = 0.5 * MB, spec: RrcSpec = LTE):
    """Uplink transfers at ``starts`` on an 8 Mbit/s channel; per transfer (finish, charge, tx energy)."""
    env = simpy.Environment()
    ch = Channel(env, "up", Constant(mbps=8.0).realise(np.random.default_rng(0)), latency_s=0.01)
    state, out = RadioState(spec), []

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


WIFI = RrcSpec(**{k: v for k, v in PRESETS["wifi"].items() if k != "source"})


def _upload_then_reply(spec: RrcSpec, latency_s: float):
    """0.1 MB up, then 0.1 MB back as soon as it arrives, at 8 Mbit/s each way: (state, charge, finish)."""
    env = simpy.Environment()
    rate = Constant(mbps=8.0).realise(np.random.default_rng(0))
    up, down = Channel(env, "up", rate, latency_s=latency_s), Channel(env, "down", rate, latency_s=latency_s)
    state, charge, done = RadioState(spec), RrcCharge(), []

    def go():
        yield from state.transmit(env, up, 0.1 * MB, charge, True)
        yield from state.transmit(env, down, 0.1 * MB, charge, False)
        done.append(env.now)

    env.process(go())
    env.run()
    return state, charge, done[0]


def test_a_reply_whose_radio_idled_on_its_way_books_a_promotion():
    # Wi-Fi tail 0.2381 s, propagation 0.3 s: the upload ends, its tail runs out before the reply arrives
    state, charge, _ = _upload_then_reply(WIFI, 0.3)
    assert state.promotions == 2 and charge.promotion_s == pytest.approx(0.0791 * 2)
    assert charge.tail_j == pytest.approx(2 * 0.1193 * 0.2381, rel=1e-12)  # two full tails, none cut


def test_lte_preset_is_aros_profile():
    lte = parse_rrc("lte", "x")
    # lte.conf: T_PROMOTION 0.26, P_PROMOTION 1.21, tail = 0.1 inactivity + 0.02 short DRX + 10 long DRX
    assert (lte.promotion_s, lte.promotion_w, lte.tail_s, lte.tail_w) == (0.26, 1.21, pytest.approx(10.12), 1.06)


def test_rrc_inactive_resumes_cheaply_and_pays_the_inactive_time_it_used():
    # tail 1 s at 1 W, then RRC_INACTIVE 2 s at 0.2 W; resume 0.05 s at 0.5 W; promotion 0.3 s at 1.5 W
    spec = RrcSpec(promotion_s=0.3, promotion_w=1.5, tail_s=1.0, tail_w=1.0, inactive_s=2.0, inactive_w=0.2,
                   resume_s=0.05, resume_w=0.5)
    # 2.3: inside RRC_INACTIVE [1.8, 3.8) after the first upload ends at 0.8
    state, sent = _send([0.0, 2.3, 20.0], spec=spec)
    out = {at: (finish, charge) for at, (finish, charge, _) in zip((0.0, 2.3, 20.0), sent, strict=True)}
    full = 1.0 * 1.0 + 0.2 * 2.0
    finish, first = out[0.0]
    assert finish == pytest.approx(0.3 + 0.5 + 0.01) and first.tail_j == pytest.approx(full)
    finish, second = out[2.3]
    assert finish == pytest.approx(2.3 + 0.05 + 0.5 + 0.01)  # the resume delay, not a promotion
    assert (second.promotion_s, second.promotion_j) == (pytest.approx(0.05), pytest.approx(0.05 * 0.5))
    assert second.tail_j == pytest.approx(full - 0.2 * (3.8 - 2.3), rel=1e-12)  # unused inactive time credited
    assert out[20.0][1].promotion_s == pytest.approx(0.3)  # idle again by then: a full promotion
    assert (state.promotions, state.resumes) == (2, 1)
    assert state.tail_j == pytest.approx(sum(c.tail_j for _, c in out.values()), rel=1e-12)


def test_transfer_power_that_grows_with_throughput_integrates_exactly_over_a_varying_path():
    from simulator.bandwidth import BandwidthPath

    # 2 Mbit/s for 1 s, 8 Mbit/s for 0.25 s, then 4 Mbit/s; 1 MB sent from 0.5 s
    steps = [(1.0, 2.0), (0.25, 8.0), (1e6, 4.0)]
    env = simpy.Environment()
    ch = Channel(env, "up", BandwidthPath(iter(steps)), latency_s=0.0)
    def go():
        yield env.timeout(0.5)
        yield from ch.transmit(MB)

    env.process(go())
    env.run()
    # by hand: 1 Mbit in [0.5, 1.0], 2 Mbit in [1.0, 1.25], the other 5 Mbit at 4 Mbit/s: ends at 2.5
    end = 2.5
    assert ch.busy_s == pytest.approx(end - 0.5, rel=1e-12)
    # energy = integral of (base + slope * rate(t)) dt, piece by piece
    pieces = [(0.5, 1.0, 2.0), (1.0, 1.25, 8.0), (1.25, end, 4.0)]
    by_hand = sum((b - a) * (1.28804 + 0.43839 * r) for a, b, r in pieces)
    assert PHONE.energy_j(8 * MB, ch.busy_s, True) == pytest.approx(by_hand, rel=1e-12)
    assert PHONE.energy_j(8 * MB, ch.busy_s, False) == pytest.approx(
        sum((b - a) * (1.28804 + 0.05197 * r) for a, b, r in pieces), rel=1e-12)


def test_radio_presets_set_transfer_power_and_rrc_and_yield_to_explicit_keys(synth_profile):
    from simulator.radio import parse_radio

    mm = parse_radio({"preset": "5g-nsa-mmwave"}, "x")
    assert (mm.tx_w_per_mbps, mm.rx_w_per_mbps) == (0.009422, 0.001807)  # the artifact's slopes
    assert mm.tx_base_w == pytest.approx(5.624 - 2.338) and mm.rrc.tail_s == 11.2
    sa = parse_radio({"preset": "5g-sa", "rx_w_per_mbps": 0.02, "rrc": {"preset": "5g-sa", "resume_s": 0.03}}, "x")
    assert (sa.rx_w_per_mbps, sa.rrc.resume_s, sa.rrc.inactive_s, sa.rrc.tail_s) == (0.02, 0.03, 4.8, 10.2)
    for name in ("5g-nsa-mmwave", "5g-nsa-lowband", "5g-sa", "lte", "wifi", "lte-huang2012"):
        assert parse_rrc(name, "x").source  # every preset says where it comes from
    sc = _scenario(synth_profile, "absent")
    sc["devices"]["p"]["radio"] = {"preset": "5g-sa"}  # over phone-cpu's explicit LTE transfer power
    phone = scenario_from_dict(sc).catalogue()["p"].radio
    assert (phone.tx_base_w, phone.rx_w_per_mbps) == (pytest.approx(3.204 - 2.338), 0.013518)  # not inherited
    res = simulate(scenario_from_dict(sc), "all-edge")
    req, phone = res.requests, res.devices.set_index("device").loc["mobile0"]
    assert req["promotion_s"].iloc[0] == pytest.approx(0.323) and (req["tail_energy_j"] > 0).all()
    assert phone["resumes"] == 0 and phone["promotions"] == len(req)  # 20 s apart: idle (after 15 s) each time


@pytest.mark.parametrize("radio, message", [
    ({"rrc": "5g-nsa-mmwav"}, r"unknown RRC preset '5g-nsa-mmwav' at 'devices.p.radio.rrc'; did you mean "
                              r"'5g-nsa-mmwave'\?"),
    ({"preset": "5g-lowband"}, r"unknown radio preset '5g-lowband' at 'devices.p.radio.preset'; did you mean"),
    ({"rrc": {"preset": "lte", "tail_s": -2}}, r"'devices.p.radio.rrc.tail_s'"),
    ({"rrc": {"preset": "lte", "promotion_s": 1e9}}, r"'devices.p.radio.rrc.promotion_s' must be at most 3600"),
    ({"rrc": {"preset": "5g-sa", "resume_s": None}}, r"'devices.p.radio.rrc.resume_s' is needed with an "
                                                     r"RRC_INACTIVE state"),
    ({"rrc": {"tail_s": 5, "inactive_s": 3}}, r"'devices.p.radio.rrc.resume_s' is needed"),
    ({"tx_base_w": -1.0}, r"'devices.p.radio.tx_base_w'"),
    ({"rx_w_per_mbps": 1e9}, r"'devices.p.radio.rx_w_per_mbps' must be at most 10"),
    ({"rrc": {"preset": "lte", "tail_w": 1e9}}, r"'devices.p.radio.rrc.tail_w' must be at most 100 W"),
])
def test_bad_radio_is_one_clear_line(synth_profile, radio, message):
    sc = _scenario(synth_profile, "absent")
    sc["devices"]["p"]["radio"] = radio
    with pytest.raises(ConfigError, match=message):
        scenario_from_dict(sc)


def test_bad_radio_at_the_command_line_is_exit_2(tmp_path, synth_profile):
    import subprocess
    import sys

    import yaml

    from tests.conftest import REPO

    sc = _scenario(synth_profile, "absent")
    sc["devices"]["p"]["radio"] = {"rrc": {"preset": "5g-sa", "resume_s": None}}
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(sc))
    r = subprocess.run([sys.executable, "run_sim.py", "validate", str(f)], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "resume_s" in r.stderr, r.stderr


def test_a_reply_sent_inside_the_tail_that_arrives_after_it_promotes():
    # Wi-Fi tail 0.2381 s, propagation 0.2 s each way: the upload ends at 0.0791 + 0.1, the reply leaves at
    # once on arrival (0.3791), inside the tail (ends 0.4172), but reaches the phone at 0.5791, after it
    state, charge, finish = _upload_then_reply(WIFI, 0.2)
    assert state.promotions == 2 and charge.tail_j == pytest.approx(2 * 0.1193 * 0.2381, rel=1e-12)  # none cut
    assert finish == pytest.approx(0.0791 + 0.1 + 0.2 + 0.0791 + 0.1 + 0.2, rel=1e-12)


@pytest.mark.parametrize("value, message", [
    ("lte5", r"unknown RRC preset 'lte5' at 'x.rrc'"),
    ({"preset": "nope"}, r"unknown RRC preset 'nope' at 'x.rrc.preset'"),
    ({"preset": "lte", "tail_s": -1}, r"'x.rrc.tail_s'"),
])
def test_bad_rrc_is_one_clear_error(value, message):
    with pytest.raises(ConfigError, match=message):
        parse_rrc(value, "x.rrc")
