"""End-to-end engine behaviour: reproducibility, common random numbers, payloads, drops, energy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simulator.config import scenario_from_dict
from simulator.engine import simulate
from simulator.runner import run_scenario


def scenario(profile, **over) -> dict:
    d = {
        "name": "e", "profile": str(profile), "seed": 5,
        "tiers": {"mobile": {"device": "phone-cpu", "layers": [1, 2], "count": 3},
                  "edge": {"device": "jetson-orin", "layers": [3, 4]},
                  "cloud": {"device": "cloud-gpu", "layers": [5, 6]}},
        "links": {"uplink": {"rtt_ms": 20, "bandwidth": {"model": "lognormal", "mean_mbps": 5, "cv": 0.5}},
                  "backhaul": {"rtt_ms": 40, "bandwidth": {"model": "constant", "mbps": 100}}},
        "workload": {"rate_per_s": 4, "requests": 300},
        "policies": ["all-mobile", "all-cloud", {"name": "threshold", "thresholds": 0.8}],
    }
    d.update(over)
    return d


def test_same_seed_identical_different_seed_differs(synth_profile):
    a = run_scenario(scenario_from_dict(scenario(synth_profile))).requests
    b = run_scenario(scenario_from_dict(scenario(synth_profile))).requests
    pd.testing.assert_frame_equal(a, b)
    c = run_scenario(scenario_from_dict(scenario(synth_profile, seed=6))).requests
    assert not a["arrival_s"].equals(c["arrival_s"])
    assert not a["latency_ms"].equals(c["latency_ms"])


def test_every_policy_sees_the_same_stream(synth_profile):
    req = run_scenario(scenario_from_dict(scenario(synth_profile))).requests
    frames = [g.reset_index(drop=True) for _, g in req.groupby("policy", sort=False)]
    for g in frames[1:]:
        for col in ("arrival_s", "sample", "mobile"):
            assert g[col].equals(frames[0][col])
    assert not frames[0]["latency_ms"].equals(frames[1]["latency_ms"])


def test_results_do_not_depend_on_executor(synth_profile):
    from concurrent.futures import ProcessPoolExecutor

    sc = scenario_from_dict(scenario(synth_profile, replications=2))
    serial = run_scenario(sc).requests
    with ProcessPoolExecutor(2) as ex:
        parallel = run_scenario(sc, executor=ex).requests
    pd.testing.assert_frame_equal(serial, parallel)


def test_offload_sends_hidden_state_and_input_bytes(synth_profile):
    sc = scenario_from_dict(scenario(synth_profile, payload={"dtype": "fp32", "header_bytes": 10}))
    df = simulate(sc, {"name": "threshold", "thresholds": {}}).requests  # never exits early
    tok = df["tokens"].to_numpy()
    assert np.array_equal(df["bytes_uplink"], tok * 384 * 4 + 10)  # hidden state after layer 2
    assert np.array_equal(df["bytes_backhaul"], tok * 384 * 4 + 10)
    cloud = simulate(sc, "all-cloud").requests
    assert np.array_equal(cloud["bytes_uplink"], cloud["tokens"] * 4 + 10)  # raw token ids
    mobile = simulate(sc, "all-mobile").requests
    assert (mobile["bytes_total"] == 0).all() and (mobile["exit_tier"] == "mobile").all()


def test_accuracy_comes_from_the_profile(synth_profile):
    from simulator.profile import load_profile

    prof = load_profile(synth_profile)
    sc = scenario_from_dict(scenario(synth_profile))
    df = simulate(sc, {"name": "threshold", "thresholds": 0.8}).requests
    rows = df["sample"].to_numpy()
    expect = prof.eval.correct[rows, df["exit_layer"].to_numpy() - 1]
    assert np.array_equal(df["correct"].to_numpy(), expect)
    conf = prof.eval.confidence[rows, df["exit_layer"].to_numpy() - 1]
    early = df["exit_layer"].to_numpy() < 6
    assert (conf[early] >= 0.8).all()
    assert (prof.eval.confidence[rows[~early], 1] < 0.8).all()


def test_queue_capacity_drops_are_counted(synth_profile):
    raw = scenario(synth_profile, workload={"rate_per_s": 200, "requests": 400})
    raw["tiers"]["mobile"]["queue_capacity"] = 2
    raw["tiers"]["mobile"]["count"] = 1
    res = run_scenario(scenario_from_dict(raw))
    row = res.summary.set_index("policy").loc["all-mobile"]
    assert row["dropped"] > 0
    req = res.requests[res.requests["policy"] == "all-mobile"]
    assert (req.loc[req["dropped"], "drop_tier"] == "mobile").all()
    assert row["dropped"] == req["dropped"].sum()


def test_mobile_energy_is_compute_plus_radio(synth_profile):
    sc = scenario_from_dict(scenario(synth_profile))
    df = simulate(sc, {"name": "threshold", "thresholds": {}}).requests
    phone = sc.catalogue()["phone-cpu"]
    # compute on the phone at full frequency: active power x compute time (no throttling this short)
    assert df["energy_compute_j"].to_numpy() == pytest.approx(phone.power_active_w * df["compute_s_mobile"])
    assert (df["energy_radio_j"] > phone.radio.tx_w_per_mbps * df["bytes_uplink"] * 8 / 1e6).all()


def test_warmup_and_deadline_in_summary(synth_profile):
    raw = scenario(synth_profile, deadline_ms=30.0)
    raw["workload"]["warmup_s"] = 10.0
    res = run_scenario(scenario_from_dict(raw))
    req = res.requests
    assert req["warmup"].any()
    for pol, g in req[~req["warmup"]].groupby("policy"):
        miss = 1 - (g["latency_ms"] <= 30.0).mean()
        assert res.summary.set_index("policy").loc[pol, "deadline_miss_rate"] == pytest.approx(miss)


def _loss_scenario(profile, arrivals, servers: int, capacity: int) -> dict:
    return {"name": "q", "profile": str(profile), "seed": 1, "timeline": False,
            "devices": {"host": {"speed": 1.0, "servers": servers, "power_idle_w": 1.0, "power_active_w": 2.0}},
            "tiers": {"mobile": {"device": "host", "layers": [1, 6], "queue_capacity": capacity}},
            "links": {}, "workload": {"arrival": "file", "file": str(arrivals)}, "policies": ["all-mobile"]}


@pytest.mark.parametrize("servers", [1, 2])
def test_queue_capacity_zero_is_a_loss_system(synth_profile, tmp_path, servers):
    arrivals = tmp_path / "a.txt"  # a request takes ~10 ms: bursts of three, then the device is idle again
    arrivals.write_text("0.000\n0.0001\n0.0002\n1.0\n2.0\n2.0001\n2.0002\n")
    df = simulate(scenario_from_dict(_loss_scenario(synth_profile, arrivals, servers, 0)), "all-mobile").requests
    df = df.sort_values("arrival_s")
    burst = [False] * servers + [True] * (3 - servers)  # the first `servers` of a burst find a free server
    assert df["dropped"].tolist() == burst + [False] + burst
    assert (df.loc[~df["dropped"], "queue_s_mobile"] == 0).all()  # nobody waits: there is no waiting room
    one = simulate(scenario_from_dict(_loss_scenario(synth_profile, arrivals, servers, 1)), "all-mobile").requests
    assert one["dropped"].sum() == (0 if servers == 2 else 2)  # one waiting place: the third of a burst waits
