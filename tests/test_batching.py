"""Dynamic batching at servers: a hand-computed timeline with a timeout, saturation throughput b / T(b),
and max_batch 1 reproducing the FIFO device exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulator.config import scenario_from_dict
from simulator.engine import Simulation, simulate
from simulator.errors import ConfigError
from simulator.profile import Split, Timing, save_profile

L = 6


def flat_profile(path: Path, n: int = 50, scale: float = 1.0) -> Path:
    """Every layer takes 1 ms at batch 1 and 4 ms at batch 8 (times ``scale``) whatever the length; no head,
    no embedding."""
    logits = np.zeros((n, L, 2))
    logits[:, :, 0] = 1.0
    split = Split(logits=logits, labels=np.zeros(n, dtype=int), tokens=np.full(n, 20), ids=np.arange(n))
    layer = np.zeros((2, 2, L))
    layer[0], layer[1] = 1.0 * scale, 4.0 * scale
    timing = Timing(np.array([8, 512]), np.array([1, 8]), layer, np.zeros((2, 2)), np.zeros((2, 2)))
    meta = {"task": "B", "model": "b", "num_layers": L, "hidden_size": 4, "num_classes": 2,
            "label_names": ["a", "b"], "machine": {}, "manifest": {}}
    return save_profile(path, meta, {"eval": split, "calib": split}, timing)


def one_tier(profile, workload, batching, servers=1) -> dict:
    return {"name": "batch", "profile": str(profile), "seed": 1,
            "devices": {"host": {"speed": 1.0, "servers": servers, "power_idle_w": 1.0, "power_active_w": 5.0}},
            "tiers": {"mobile": {"device": "host", "layers": [1, L], "batching": batching}},
            "links": {}, "workload": workload, "policies": ["all-mobile"], "timeline": False}


def test_hand_computed_timeline_with_timeout(tmp_path):
    prof = flat_profile(tmp_path / "p.npz")
    arrivals = tmp_path / "arrivals.txt"
    arrivals.write_text("0.000\n0.001\n0.010\n")
    sc = scenario_from_dict(one_tier(prof, {"arrival": "file", "file": str(arrivals)},
                                     {"max_batch": 4, "max_wait_ms": 5}))
    df = simulate(sc, "all-mobile").requests.sort_values("arrival_s")
    t2 = L * (1 + 3 / 7) / 1e3  # batch of two: 1 ms + (4 - 1) * (2 - 1) / (8 - 1) per layer
    # r0, r1 wait for r0's timeout (5 ms), run together; r2 arrives while they run and waits for its own
    # timeout (15 ms), then runs alone at batch-1 speed (6 ms)
    want = [0.005 + t2, 0.005 + t2, 0.015 + 0.006]
    np.testing.assert_allclose(df["finish_s"].to_numpy(), want, rtol=0, atol=1e-12)
    np.testing.assert_allclose(df["queue_s_mobile"].to_numpy(), [0.005, 0.004, 0.005], atol=1e-12)
    np.testing.assert_allclose(df["compute_s_mobile"].to_numpy(), [t2, t2, 0.006], atol=1e-12)


# the flat profile's batch table written as a device class's own table (devices.<class>.timing)
DEVICE_TABLE = {"seq_lens": [8, 512], "batch_sizes": [1, 8], "layer_ms": [[1.0, 1.0], [4.0, 4.0]],
                "head_ms": [[0, 0], [0, 0]], "embed_ms": [[0, 0], [0, 0]]}


@pytest.mark.parametrize("table", ["profile", "device"])
@pytest.mark.parametrize("b", [2, 4, 8])
def test_saturation_throughput_is_b_over_T_of_b(tmp_path, b, table):
    """b / T(b) from the profile's batch table, or from the device class's own (a published GPU table)."""
    prof = flat_profile(tmp_path / "p.npz")
    n = 40 * b
    raw = one_tier(prof, {"arrival": "deterministic", "rate_per_s": 1e5, "requests": n},
                   {"max_batch": b, "max_wait_ms": 50})
    if table == "device":  # the profile's own table made 10x slower, so only the device's can pass
        prof = flat_profile(tmp_path / "p.npz", scale=10.0)
        raw["profile"] = str(prof)
        raw["devices"]["host"]["timing"] = DEVICE_TABLE
    sc = scenario_from_dict(raw)
    sim = Simulation(sc, "all-mobile")
    df = sim.run().requests
    tb = L * (1 + 3 * (b - 1) / 7) / 1e3
    dev = sim.live.devices[0][0]
    assert dev.batches == [b] * 40  # a backlog keeps every batch full
    span = df["finish_s"].max() - df["arrival_s"].min()
    assert n / span == pytest.approx(b / tb, rel=0.02)  # only the first arrivals' spread is extra
    energy = sim.live.devices[0][0].energy_j
    assert energy == pytest.approx(5.0 * 40 * tb + 1.0 * (df["finish_s"].max() - 40 * tb), rel=1e-9)


def test_max_batch_one_is_the_fifo_device(synth_profile):
    base = {"name": "fifo", "profile": str(synth_profile), "seed": 4,
            "tiers": {"mobile": {"device": "phone-cpu", "layers": [1, 2], "count": 3, "queue_capacity": 3},
                      "edge": {"device": "jetson-nano", "layers": [3, 4]},
                      "cloud": {"device": "cloud-gpu", "layers": [5, 6]}},
            "links": {"uplink": {"bandwidth": {"model": "lognormal", "mean_mbps": 20, "cv": 0.5}},
                      "backhaul": {"bandwidth": 200}},
            "workload": {"rate_per_s": 60, "requests": 600},
            "policies": [{"name": "threshold", "thresholds": 0.8}]}
    fifo = simulate(scenario_from_dict(base), base["policies"][0]).requests
    for t in ("mobile", "edge", "cloud"):
        base["tiers"][t]["batching"] = {"max_batch": 1, "max_wait_ms": 2}
    one = simulate(scenario_from_dict(base), base["policies"][0]).requests
    assert fifo["dropped"].any() and (fifo["queue_s_edge"] > 0).any()  # a loaded case
    pd.testing.assert_frame_equal(fifo, one, check_exact=True)


def test_batching_speeds_up_a_loaded_server(tmp_path):
    prof = flat_profile(tmp_path / "p.npz")
    wl = {"arrival": "poisson", "rate_per_s": 400, "requests": 2000}
    slow = simulate(scenario_from_dict(one_tier(prof, wl, {"max_batch": 1})), "all-mobile").requests
    fast = simulate(scenario_from_dict(one_tier(prof, wl, {"max_batch": 8, "max_wait_ms": 2})), "all-mobile").requests
    assert fast["latency_ms"].mean() < 0.2 * slow["latency_ms"].mean()  # 400/s overloads a 6 ms server


def test_bad_batching_config(tmp_path):
    prof = flat_profile(tmp_path / "p.npz")
    with pytest.raises(ConfigError, match="max_batch' must be at least 1"):
        scenario_from_dict(one_tier(prof, {"rate_per_s": 1, "requests": 5}, {"max_batch": 0}))
    sc = scenario_from_dict(one_tier(prof, {"rate_per_s": 1, "requests": 5}, {"max_batch": 16}))
    with pytest.raises(ConfigError, match="beyond the timing table's largest batch size 8"):
        Simulation(sc, "all-mobile")


@pytest.mark.parametrize("capacity", [0, 1])
def test_requests_gathering_into_a_batch_at_a_free_server_are_not_dropped(tmp_path, capacity):
    prof = flat_profile(tmp_path / "p.npz")
    arrivals = tmp_path / "arrivals.txt"
    arrivals.write_text("0.000\n0.001\n0.002\n0.003\n0.0035\n")
    wl = {"arrival": "file", "file": str(arrivals)}
    raw = one_tier(prof, wl, {"max_batch": 4, "max_wait_ms": 5})
    raw["tiers"]["mobile"]["queue_capacity"] = capacity
    sim = Simulation(scenario_from_dict(raw), "all-mobile")
    df = sim.run().requests.sort_values("arrival_s")
    # the first four fill a batch at the idle server (dispatched at 3 ms); the fifth arrives while it runs
    assert sim.live.devices[0][0].batches[0] == 4
    assert df["dropped"].tolist() == [False] * 4 + [capacity == 0]


def test_shipped_gpu_edge_saturates_without_batching_and_not_with_it():
    """scenarios/edge_gpu_batching.yaml (NVIDIA's T4 table): 600 requests/s saturate one request at a
    time (~510/s) but not batches of up to 8 (~880/s)."""
    from simulator.config import load_scenario

    repo = Path(__file__).resolve().parent.parent
    mean = {}
    for batching in ("{max_batch: 8, max_wait_ms: 2}", "null"):
        sc = load_scenario(repo / "scenarios" / "edge_gpu_batching.yaml",
                           [f"tiers.edge.batching={batching}", "workload.requests=6000", "replications=1"])
        mean[batching] = simulate(sc, "all-edge").requests["latency_ms"].mean()
    assert mean["{max_batch: 8, max_wait_ms: 2}"] < 40 and mean["null"] > 500
