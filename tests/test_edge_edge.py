"""Edge-edge collaboration: a model pipelined across two edge tiers (exact tandem delays) and horizontal
offload between the devices of one tier (simulator/offload.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simulator.config import scenario_from_dict
from simulator.engine import simulate
from simulator.profile import Split, Timing, save_profile

HIDDEN = 4


def _profile(path: Path, tokens: np.ndarray, layers: int = 2, ms_per_token: float = 0.1) -> Path:
    """A profile whose compute time per layer is exactly ``ms_per_token * tokens / layers`` ms."""
    n = len(tokens)
    logits = np.zeros((n, layers, 2))
    logits[:, :, 0] = 1.0
    split = Split(logits=logits, labels=np.zeros(n, dtype=int), tokens=tokens, ids=np.arange(n))
    seq = np.array([1, 1000])
    per_layer = ms_per_token * seq / layers
    timing = Timing(seq_lens=seq, batch_sizes=np.array([1]),
                    layer_ms=np.repeat(per_layer[None, :, None], layers, axis=2),
                    head_ms=np.zeros((1, 2)), embed_ms=np.zeros((1, 2)))
    meta = {"task": "Q", "model": "q", "num_layers": layers, "hidden_size": HIDDEN, "num_classes": 2,
            "label_names": ["a", "b"], "machine": {}, "manifest": {}}
    return save_profile(path, meta, {"eval": split, "calib": split}, timing)


# -- (a) a model pipelined across two edge devices ---------------------------------------------------

def _fifo(ready: list[float], service: list[float]) -> list[float]:
    """Departures of a FIFO single server (or single transmitter) given arrivals and service times."""
    out, free = [], 0.0
    for a, s in zip(ready, service, strict=True):
        free = max(a, free) + s
        out.append(free)
    return out


@pytest.mark.parametrize("speed_b", [2.0, 0.5])  # edge_b faster (never waits) / slower (queues)
def test_pipeline_tandem_matches_the_hand_computed_delay(tmp_path, speed_b):
    """Deterministic arrivals every 8 ms, 100 tokens (5 ms per layer on a speed-1 device), edge_a runs
    layer 1 in 5 ms, edge_b layer 2 in 2.5 ms or 10 ms (then it queues without bound), constant links:
    every request's end-to-end delay is the tandem recursion of FIFO stations (uplink, edge_a, peer link,
    edge_b, the replies' two downlinks), to 1e-12 s."""
    p = _profile(tmp_path / "t.npz", np.full(10, 100))
    up_mbps, peer_mbps, up_rtt, peer_rtt = 4.0, 2.0, 6.0, 1.0
    raw = {
        "name": "tandem", "profile": str(p), "seed": 5, "timeline": False,
        "tiers": {"mobile": {"device": "profile-host", "layers": []},
                  "edge_a": {"device": "profile-host", "layers": [1, 1]},
                  "edge_b": {"device": "b", "layers": [2, 2]}},
        "devices": {"b": {"base": "profile-host", "speed": speed_b}},
        "links": {"uplink": {"from": "mobile", "to": "edge_a", "rtt_ms": up_rtt,
                             "bandwidth": {"model": "constant", "mbps": up_mbps}},
                  "peer": {"from": "edge_a", "to": "edge_b", "rtt_ms": peer_rtt,
                           "bandwidth": {"model": "constant", "mbps": peer_mbps}}},
        "payload": {"dtype": "fp16", "header_bytes": 40, "input_bytes_per_token": 4, "reply_bytes": 64},
        "workload": {"arrival": "deterministic", "rate_per_s": 125.0, "requests": 60},
        "policies": [{"name": "threshold", "thresholds": {}}],
    }
    sc = scenario_from_dict(raw)
    df = simulate(sc, sc.policies[0]).requests.sort_values("arrival_s")
    n = len(df)
    arrival = df["arrival_s"].tolist()
    in_bytes, hidden_bytes = 100 * 4 + 40, 100 * HIDDEN * 2 + 40
    assert (df["bytes_uplink"] == in_bytes).all() and (df["bytes_peer"] == hidden_bytes).all()
    assert (df["route"] == "uplink>peer").all()
    s_a, s_b = 0.005, 0.005 / speed_b
    # hand computation: each station is FIFO; a link transmits then propagates for rtt/2
    up_done = [t + up_rtt / 2e3 for t in _fifo(arrival, [in_bytes * 8 / (up_mbps * 1e6)] * n)]
    a_done = _fifo(up_done, [s_a] * n)
    peer_done = [t + peer_rtt / 2e3 for t in _fifo(a_done, [hidden_bytes * 8 / (peer_mbps * 1e6)] * n)]
    b_done = _fifo(peer_done, [s_b] * n)
    back = [t + peer_rtt / 2e3 for t in _fifo(b_done, [64 * 8 / (peer_mbps * 1e6)] * n)]
    finish = np.array([t + up_rtt / 2e3 for t in _fifo(back, [64 * 8 / (up_mbps * 1e6)] * n)])
    got = df["finish_s"].to_numpy()
    assert np.abs(got - finish).max() < 1e-12
    wait_b = np.array(b_done) - s_b - np.array(peer_done)
    assert np.abs(df["queue_s_edge_b"].to_numpy() - wait_b).max() < 1e-12
    if speed_b < 1:  # edge_b (10 ms per request, one every 8 ms) queues: the n-th waits about 2 ms * n
        assert wait_b[-1] == pytest.approx(0.002 * (n - 1), abs=1e-9)
        assert df["queue_s_edge_b"].iloc[-1] > 0.1
    else:
        assert df["queue_s_edge_b"].max() == 0.0 and df["queue_s_edge_a"].max() == 0.0
