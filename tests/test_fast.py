"""The fast engine gives the SimPy engine's answers: request by request on every shipped scenario, and on
the corners it claims (drops, busy multi-server stations, traces, throttling); elsewhere it says why not
and ``engine: auto`` falls back to SimPy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulator.config import load_scenario, scenario_from_dict
from simulator.engine import simulate as simulate_simpy
from simulator.fast.engine import simulate as simulate_fast
from simulator.fast.engine import simulate_auto
from simulator.fast.support import Unsupported, scenario_why_not, why_not
from simulator.policies.registry import make_policy, policy_label
from simulator.runner import run_scenario

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = sorted((REPO / "scenarios").glob("*.yaml"))
TIME_COLUMNS = ("finish_s", "latency_ms", "transfer_s")


def assert_same_requests(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Same columns, same integers/strings/flags; times within 1e-9 s, other floats within 1e-12 relative
    (on the development machine they are bit-identical)."""
    assert list(a.columns) == list(b.columns)
    assert len(a) == len(b)
    for col in a.columns:
        x, y = a[col].to_numpy(), b[col].to_numpy()
        if a[col].dtype.kind != "f":
            assert (x == y).all() or (pd.isna(x) & pd.isna(y) | (x == y)).all(), col
            continue
        scale_ms = col == "latency_ms"
        if col in TIME_COLUMNS or col.startswith(("queue_s_", "compute_s_")):
            np.testing.assert_allclose(y, x, rtol=0, atol=1e-6 if scale_ms else 1e-9, err_msg=col)
        else:
            np.testing.assert_allclose(y, x, rtol=1e-12, atol=1e-15, err_msg=col)


def assert_same_devices(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns)
    assert (a["device"].to_numpy() == b["device"].to_numpy()).all()
    for col in a.columns:
        if a[col].dtype.kind == "f":
            np.testing.assert_allclose(b[col].to_numpy(), a[col].to_numpy(), rtol=1e-9, err_msg=col)


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_every_shipped_scenario_same_on_both_engines(path, shared_data, monkeypatch):
    monkeypatch.setenv("EESIM_SHARED_DATA", str(shared_data))
    sc = load_scenario(path, ["workload.requests=240", "workload.warmup_s=0"])
    fast = 0
    for spec in sc.policies:
        ref = simulate_simpy(sc, spec, 1)
        reason = why_not(sc, spec)
        got = simulate_auto(sc, spec, 1)
        assert_same_requests(ref.requests, got.requests)
        assert_same_devices(ref.devices, got.devices)
        if reason is None:
            assert got.engine == "fast", (policy_label(spec), got.engine_reason)
            fast += 1
        else:
            assert got.engine == "simpy" and got.engine_reason == reason
            with pytest.raises(Unsupported, match="does not simulate"):
                simulate_fast(sc, spec, 1)
    feed_forward = sum(make_policy(s).feed_forward for s in sc.policies)
    if scenario_why_not(sc) is None:
        assert fast == feed_forward > 0  # every feed-forward policy of the scenario ran fast
    else:  # the scenario itself is outside the fast engine (failures, shared cells, units, ...)
        assert fast == 0


def small(profile, **over) -> dict:
    d = {"name": "f", "profile": str(profile), "seed": 3, "timeline": False,
         "tiers": {"mobile": {"device": "phone-cpu", "layers": [1, 2], "count": 3},
                   "edge": {"device": "jetson-nano", "layers": [3, 4]},
                   "cloud": {"device": "cloud-gpu", "layers": [5, 6]}},
         "links": {"uplink": {"rtt_ms": 20, "bandwidth": {"model": "markov", "states_mbps": [20, 0.5],
                                                           "mean_dwell_s": [2, 1]}},
                   "backhaul": {"rtt_ms": 10, "bandwidth": {"model": "constant", "mbps": 50}}},
         "workload": {"rate_per_s": 8, "requests": 900},
         "policies": ["all-edge", "all-cloud", {"name": "threshold", "thresholds": 0.7},
                      {"name": "confidence", "threshold": 0.8}, {"name": "pabee", "patience": 1},
                      {"name": "beem", "threshold": 1.2}, "deebert", "oracle",
                      {"name": "fixed-split", "split": 3, "exit_at_split": True, "threshold": 0.6}]}
    d.update(over)
    return d


def compare_all(sc) -> list:
    out = []
    for spec in sc.policies:
        ref, got = simulate_simpy(sc, spec, 0), simulate_fast(sc, spec, 0)
        assert_same_requests(ref.requests, got.requests)
        assert_same_devices(ref.devices, got.devices)
        out.append(got)
    return out


@pytest.mark.parametrize("edge_room, cloud_room", [(2, 3), (0, 0)])
def test_queue_drops_busy_multi_server_and_markov_bandwidth(synth_profile, edge_room, cloud_room):
    tiers = {"mobile": {"device": "phone-cpu", "layers": [1, 1], "count": 3},
             "edge": {"device": "jetson-nano", "layers": [2, 4], "queue_capacity": edge_room},
             "cloud": {"device": "slow-pool", "layers": [5, 6], "queue_capacity": cloud_room}}
    devices = {"slow-pool": {"base": "edge-gpu-server", "speed": 0.2, "servers": 3}}
    res = compare_all(scenario_from_dict(small(synth_profile, tiers=tiers, devices=devices)))
    req = pd.concat([r.requests for r in res])
    assert req["dropped"].sum() > 20 and set(req["drop_tier"]) >= {"edge", "cloud"}
    if cloud_room:
        assert (req["queue_s_cloud"] > 1e-3).sum() > 20  # the 3-server pool queues
    else:  # no waiting room: nobody waits, and a request finding a free server is never dropped
        assert (req.loc[~req["dropped"], ["queue_s_edge", "queue_s_cloud"]] == 0).all().all()


def test_measured_trace_and_lognormal(synth_profile, shared_data, monkeypatch):
    monkeypatch.setenv("EESIM_SHARED_DATA", str(shared_data))
    trace = next((shared_data / "traces").rglob("*.log"), None) or next((shared_data / "traces").rglob("*.txt"))
    links = {"uplink": {"rtt_ms": 30, "bandwidth": {"model": "trace", "file": str(trace), "scale": 0.5},
                        "downlink": {"model": "lognormal", "mean_mbps": 3, "cv": 0.8}},
             "backhaul": {"rtt_ms": 10, "bandwidth": {"model": "lognormal", "mean_mbps": 40}}}
    compare_all(scenario_from_dict(small(synth_profile, links=links)))


def test_throttling_phone(monkeypatch):
    monkeypatch.chdir(REPO)
    sc = load_scenario(REPO / "scenarios" / "thermal.yaml", ["workload.requests=6000", "timeline=false"])
    ref, got = simulate_simpy(sc, "all-mobile", 0), simulate_fast(sc, "all-mobile", 0)
    assert_same_requests(ref.requests, got.requests)
    assert_same_devices(ref.devices, got.devices)
    c = got.requests["compute_s_mobile"].to_numpy()
    assert np.median(c[-300:]) > 1.2 * np.median(c[:300])  # it throttled, and both engines agree how


def test_direct_link_route(synth_profile):
    links = {"uplink": {"from": "mobile", "to": "edge", "rtt_ms": 20, "bandwidth": 20},
             "backhaul": {"from": "edge", "to": "cloud", "rtt_ms": 40, "bandwidth": 200},
             "direct": {"from": "mobile", "to": "cloud", "rtt_ms": 60, "bandwidth": 10}}
    res = compare_all(scenario_from_dict(small(synth_profile, links=links)))
    cloud = res[1].requests
    assert (cloud["bytes_direct"] > 0).all() and (cloud["bytes_uplink"] == 0).all()


def test_simultaneous_arrivals_fall_back(synth_profile, tmp_path):
    f = tmp_path / "arrivals.csv"
    f.write_text("time_s,device\n" + "".join(f"{t},{d}\n" for t in np.arange(1, 60) * 0.25 for d in (0, 1)))
    sc = scenario_from_dict(small(synth_profile, workload={"arrival": "file", "file": str(f), "requests": 100}))
    with pytest.raises(Unsupported, match="same instant"):
        simulate_fast(sc, "all-edge", 0)
    got = simulate_auto(sc, "all-edge", 0)
    assert got.engine == "simpy" and "same instant" in got.engine_reason
    assert_same_requests(simulate_simpy(sc, "all-edge", 0).requests, got.requests)


def test_what_the_fast_engine_refuses(synth_profile):
    base = small(synth_profile)
    assert why_not(scenario_from_dict(base), "all-edge") is None
    assert "timeline" in why_not(scenario_from_dict(base), "all-edge", record_timeline=True)
    assert "online learner" in why_not(scenario_from_dict(base), "splitee")
    shared = {**base["links"], "uplink": {**base["links"]["uplink"], "shared": True}}
    assert "shared" in why_not(scenario_from_dict(small(synth_profile, links=shared)), "all-edge")
    batching = {**base["tiers"], "edge": {**base["tiers"]["edge"], "batching": {"max_batch": 4}}}
    assert "batches" in why_not(scenario_from_dict(small(synth_profile, tiers=batching)), "all-edge")


def test_run_with_engine_auto_records_which_engine(synth_profile):
    sc = scenario_from_dict(small(synth_profile, engine="auto", policies=["all-edge", "splitee"],
                                  workload={"rate_per_s": 4, "requests": 200}))
    res = run_scenario(sc)
    used = {(e["policy"], e["engine"]) for e in res.engines}
    assert used == {("all-edge", "fast"), ("splitee", "simpy")}
    assert "online learner" in next(e["reason"] for e in res.engines if e["policy"] == "splitee")
    ref = run_scenario(scenario_from_dict(small(synth_profile, policies=["all-edge", "splitee"],
                                                workload={"rate_per_s": 4, "requests": 200})))
    assert_same_requests(ref.requests, res.requests)


@pytest.mark.parametrize("chunk", [37, 400])
def test_chunks_give_the_same_answer(synth_profile, monkeypatch, chunk):
    """Requests simulated in chunks that start when the network is empty: the same records and books."""
    import simulator.fast.engine as fast

    monkeypatch.setattr(fast, "CHUNK_REQUESTS", chunk)
    tiers = {"mobile": {"device": "phone-cpu", "layers": [1, 2], "count": 2, "throttling": True},
             "edge": {"device": "jetson-nano", "layers": [3, 4], "queue_capacity": 3},
             "cloud": {"device": "cloud-gpu", "layers": [5, 6]}}
    compare_all(scenario_from_dict(small(synth_profile, tiers=tiers, workload={"rate_per_s": 3, "requests": 900})))
    busy = small(synth_profile, tiers=tiers, workload={"rate_per_s": 40, "requests": 600})  # rarely empty
    res = compare_all(scenario_from_dict(busy))
    assert any(r.requests["dropped"].any() for r in res)
