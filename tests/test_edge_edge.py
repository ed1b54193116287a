"""Edge-edge collaboration: a model pipelined across two edge tiers (exact tandem delays) and horizontal
offload between the devices of one tier (simulator/offload.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import linear_profile

from simulator.config import scenario_from_dict
from simulator.engine import simulate
from simulator.errors import ConfigError

HIDDEN = 4
REPO = Path(__file__).resolve().parent.parent


_profile = linear_profile  # ms_per_token * tokens ms per request at speed 1 (conftest.py)


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


# -- (b) horizontal offload between the devices of one tier -------------------------------------------

def _offload_scenario(profile: Path, rule: str = "least-queue", n_edges: int = 4, requests: int = 20,
                      rate: float = 10_000.0, **offload) -> dict:
    """One mobile attached to edge0 of ``n_edges`` idle profile-host boxes (layer 1, 5 ms at 100 tokens),
    the cloud runs layer 2; near-instant links; ``requests`` deterministic arrivals 0.1 ms apart, all
    inside edge0's first service."""
    return {
        "name": "offload", "profile": str(profile), "seed": 11, "timeline": False,
        "tiers": {"mobile": {"device": "profile-host", "layers": []},
                  "edge": {"device": "profile-host", "count": n_edges, "layers": [1, 1],
                           "offload": {"rule": rule, "link": "peer", **offload}},
                  "cloud": {"device": "cloud-gpu", "layers": [2, 2]}},
        "links": {"uplink": {"rtt_ms": 0, "bandwidth": {"model": "constant", "mbps": 1e5}},
                  "backhaul": {"rtt_ms": 0, "bandwidth": {"model": "constant", "mbps": 1e5}},
                  "peer": {"from": "edge", "to": "edge", "rtt_ms": 0.01,
                           "bandwidth": {"model": "constant", "mbps": 1e4}}},
        "payload": {"dtype": "fp16", "header_bytes": 64, "input_bytes_per_token": 4, "reply_bytes": 64},
        "workload": {"arrival": "deterministic", "rate_per_s": rate, "requests": requests},
        "policies": [{"name": "threshold", "thresholds": {}}],
    }


def test_least_queue_to_idle_peers_balances_exactly(tmp_path):
    """20 requests reach a busy edge0 (one server, 5 ms each) 0.1 ms apart; edge1..3 are idle. With
    least-queue from one waiting request on, the 1st stays, the 2nd-4th go to edge1, edge2, edge3 (each
    then holds 1), the 5th stays (no peer holds fewer than edge0), and so on: every device serves exactly
    5 requests, request i on edge i % 4, and the j-th on each device waits j services."""
    p = _profile(tmp_path / "o.npz", np.full(10, 100))
    sc = scenario_from_dict(_offload_scenario(p))
    res = simulate(sc, sc.policies[0])
    df = res.requests.sort_values("arrival_s").reset_index(drop=True)
    busy = res.devices.set_index("device")["busy_s"]
    assert [busy[f"edge{k}"] for k in range(4)] == pytest.approx([5 * 0.005] * 4, abs=1e-12)
    sent = df.index % 4 != 0
    up, back = 100 * 4 + 64, 100 * HIDDEN * 2 + 64  # the input to the peer, the hidden state after layer 1 back
    assert (df.loc[sent, "bytes_peer"] == up + back).all() and (df.loc[~sent, "bytes_peer"] == 0).all()
    assert (df.loc[sent, "route"] == "uplink>peer>backhaul").all()
    assert (df.loc[~sent, "route"] == "uplink>backhaul").all()
    # the j-th request of each device starts when the one before it ends: it waits j * 5 ms minus how
    # much later than that device's first request it reached it (0.4 ms per round of 4 arrivals)
    j = df.index // 4
    assert np.abs(df["queue_s_edge"].to_numpy() - j * (0.005 - 0.0004)).max() < 1e-9
    assert np.abs(df["compute_s_edge"].to_numpy() - 0.005).max() < 1e-12
    # the peer link's offload cost is paid once per stretch sent: 1.0 per link crossed by default
    extra = df.loc[sent, "cost"].to_numpy() - df.loc[~sent, "cost"].iloc[0]
    assert np.abs(extra - 1.0).max() < 1e-12


def test_offload_waits_for_the_threshold_and_exits_on_the_peer_reply_back(tmp_path):
    """``when_queue_at_least: 3``: the first three stay on edge0 (holding 0, 1, 2), the fourth goes to a
    peer. With the whole model on the edge the request exits there, so only the reply comes back."""
    p = _profile(tmp_path / "o.npz", np.full(10, 100))
    raw = _offload_scenario(p, requests=4, when_queue_at_least=3)
    raw["tiers"]["edge"]["layers"] = [1, 2]
    raw["tiers"]["cloud"]["layers"] = []
    sc = scenario_from_dict(raw)
    df = simulate(sc, sc.policies[0]).requests.sort_values("arrival_s").reset_index(drop=True)
    assert df["bytes_peer"].tolist() == [0, 0, 0, 100 * 4 + 64 + 64]
    assert df["route"].tolist() == ["uplink"] * 3 + ["uplink>peer"]


@pytest.mark.parametrize("rule", ["power-of-two", "random"])
def test_random_rules_are_seeded_and_use_every_peer(tmp_path, rule):
    p = _profile(tmp_path / "o.npz", np.full(10, 100))
    raw = _offload_scenario(p, rule=rule, n_edges=6, requests=400, rate=250.0)
    sc = scenario_from_dict(raw)
    a = simulate(sc, sc.policies[0])
    b = simulate(scenario_from_dict(raw), sc.policies[0])
    assert a.requests.equals(b.requests)
    busy = a.devices.set_index("device")["busy_s"]
    assert all(busy[f"edge{k}"] > 0 for k in range(6))
    other = simulate(scenario_from_dict({**raw, "seed": 12}), sc.policies[0]).devices.set_index("device")["busy_s"]
    assert not np.allclose([busy[f"edge{k}"] for k in range(6)], [other[f"edge{k}"] for k in range(6)])


def test_offload_is_off_by_default_and_relieves_a_busy_edge(tmp_path):
    p = _profile(tmp_path / "o.npz", np.full(10, 100))
    raw = _offload_scenario(p, requests=400, rate=250.0)  # 1.25 x edge0's capacity
    on = simulate(scenario_from_dict(raw), "all-edge").requests
    del raw["tiers"]["edge"]["offload"], raw["links"]["peer"]
    off = simulate(scenario_from_dict(raw), "all-edge").requests
    assert "bytes_peer" not in off
    assert on["latency_ms"].mean() < off["latency_ms"].mean() / 5


def _bad(profile: Path, **edit) -> dict:
    raw = _offload_scenario(profile)
    for key, value in edit.items():
        if value is None:
            del raw["tiers"]["edge"]["offload"][key]
        else:
            raw["tiers"]["edge"]["offload"][key] = value
    return raw


@pytest.mark.parametrize(("edit", "message"), [
    ({"rule": "least-busy"}, "unknown offload rule 'least-busy' at 'tiers.edge.offload.rule'; did you mean "
                             "'least-queue'?"),
    ({"link": None}, "missing required key 'tiers.edge.offload.link': name the peer link, a link with from: edge, "
                     "to: edge (this scenario has 'peer')"),
    ({"link": "perr"}, "unknown link 'perr' at 'tiers.edge.offload.link'; did you mean 'peer'?"),
    ({"link": "backhaul"}, "'tiers.edge.offload.link' 'backhaul' joins edge -> cloud; a peer link of 'edge' must "
                           "have from: edge, to: edge"),
    ({"when_queue_at_least": 0}, "'tiers.edge.offload.when_queue_at_least' must be at least 1, got 0"),
])
def test_bad_offload_is_one_clear_line(tmp_path, edit, message):
    p = _profile(tmp_path / "o.npz", np.full(10, 100))
    with pytest.raises(ConfigError) as e:
        scenario_from_dict(_bad(p, **edit))
    assert str(e.value) == message


def test_bad_peer_links_and_tiers(tmp_path):
    p = _profile(tmp_path / "o.npz", np.full(10, 100))
    raw = _offload_scenario(p)
    del raw["tiers"]["edge"]["offload"]  # an unused peer link carries nothing
    assert (simulate(scenario_from_dict(raw), "all-edge").requests["bytes_peer"] == 0).all()
    raw = _offload_scenario(p, n_edges=1)
    with pytest.raises(ConfigError, match=r"'tiers.edge.offload' needs peers: 'tiers.edge.count' is 1"):
        scenario_from_dict(raw)
    raw = _offload_scenario(p)
    del raw["links"]["peer"]
    raw["tiers"]["edge"]["offload"].pop("link")
    with pytest.raises(ConfigError, match="none yet: add one"):
        scenario_from_dict(raw)
    raw = _offload_scenario(p)
    raw["links"]["peer"]["shared"] = True
    with pytest.raises(ConfigError, match="a peer link cannot be shared"):
        scenario_from_dict(raw)


def test_cli_refuses_bad_offload_with_exit_2(tmp_path):
    import subprocess
    import sys

    import yaml

    p = _profile(tmp_path / "o.npz", np.full(10, 100))
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump(_bad(p, rule="round-robin")))
    r = subprocess.run([sys.executable, "run_sim.py", "validate", str(f)], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: unknown offload rule 'round-robin'")


def test_fast_engine_does_not_claim_offload(tmp_path):
    from simulator.fast.support import why_not
    from simulator.runner import run_scenario

    p = _profile(tmp_path / "o.npz", np.full(10, 100))
    raw = _offload_scenario(p)
    assert why_not(scenario_from_dict(raw), "all-edge") == "tiers.edge offloads to peers"
    res = run_scenario(scenario_from_dict({**raw, "engine": "auto", "policies": ["all-edge"]}))
    assert [(e["engine"], e["reason"]) for e in res.engines] == [("simpy", "tiers.edge offloads to peers")]
    ref = simulate(scenario_from_dict(raw), "all-edge").requests
    assert (res.requests["bytes_peer"].to_numpy() == ref["bytes_peer"].to_numpy()).all()
