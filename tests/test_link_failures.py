"""Link failures against hand-computed timelines; every request ends exactly once.

The two-layer synthetic profile of test_failures.py (10 tokens per request, 5 ms per layer at speed 1):
the phone runs the model in 10 ms, the edge (speed 0.2) in 50 ms, the cloud (speed 5) in 2 ms. The
mobile's uplink ``up`` has 20 ms RTT (10 ms each way) and 10^6 Mbit/s (transmission under a
nanosecond), so an all-edge request takes 10 ms up + 50 ms + 10 ms down = 70 ms. ``up`` is down in
[1, 2) and [2.5, 2.65). Arrivals (from a file):

* 0.5 and 3.0: untouched (70 ms);
* 0.995: propagating to the edge when ``up`` fails at 1.0 (lost at 1.0);
* 1.2, 1.95: sent while ``up`` is down (lost at once);
* 2.435: reaches the edge at 2.445, computed by 2.495; its reply is propagating when ``up`` fails at
  2.5 (lost at 2.5).

The client notices 100 ms after the loss (``failover.timeout_ms``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import linear_profile

from simulator.config import scenario_from_dict
from simulator.engine import simulate
from simulator.errors import ConfigError
from simulator.metrics import summarise

ROOT = Path(__file__).resolve().parent.parent
ARRIVALS = [0.5, 0.995, 1.2, 1.95, 2.435, 3.0]
TOL = 1e-6


def _profile(path: Path) -> Path:
    """8 requests of 10 tokens, 5 ms per layer at speed 1 (a request: 10 ms)."""
    return linear_profile(path, np.full(8, 10), ms_per_token=1.0)


def _data(tmp_path: Path, rule: str, direct: bool = False, failures: dict | None = None,
          arrivals: list[float] | None = None) -> dict:
    times = tmp_path / "arrivals.txt"
    times.write_text("\n".join(str(t) for t in (arrivals or ARRIVALS)) + "\n")
    up = {"from": "mobile", "to": "edge", "rtt_ms": 20, "bandwidth": {"model": "constant", "mbps": 1e6},
          "failures": failures or {"schedule": [[1.0, 2.0], [2.5, 2.65]]}}
    links = {"up": up, "backhaul": {"from": "edge", "to": "cloud", "rtt_ms": 0,
                                    "bandwidth": {"model": "constant", "mbps": 1e6}}}
    if direct:  # a second way to the cloud, which does not fail
        links["direct"] = {"from": "mobile", "to": "cloud", "rtt_ms": 20,
                           "bandwidth": {"model": "constant", "mbps": 1e6}}
    return {
        "name": "linkfail", "profile": str(_profile(tmp_path / "p.npz")), "seed": 1, "timeline": False,
        "devices": {"phone": {"base": "profile-host"}, "slow-edge": {"base": "profile-host", "speed": 0.2},
                    "fast-cloud": {"base": "profile-host", "speed": 5.0}},
        "tiers": {"mobile": {"device": "phone", "layers": []},
                  "edge": {"device": "slow-edge", "layers": [1, 2]},
                  "cloud": {"device": "fast-cloud", "layers": []}},
        "links": links,
        "workload": {"arrival": "file", "file": str(times)},
        "failover": {"rule": rule, "timeout_ms": 100},
        "policies": ["all-edge"],
    }


def _run(tmp_path: Path, rule: str, **kw):
    return simulate(scenario_from_dict(_data(tmp_path, rule, **kw)), "all-edge").requests


def _ends_once(df, n: int) -> None:
    counts = df["status"].value_counts()
    assert len(df) == n and df["request_id"].is_unique
    assert counts.sum() == n and set(counts.index) <= {"completed", "dropped", "failed"}
    assert (df["failed"] == (df["status"] == "failed")).all()


def test_drop_rule_fails_requests_whose_messages_the_link_loses(tmp_path):
    df = _run(tmp_path, "drop")
    assert df["status"].tolist() == ["completed", "failed", "failed", "failed", "failed", "completed"]
    assert df["reason"].tolist() == ["", "down:up", "down:up", "down:up", "down:up", ""]
    # lost on the way up (0.995, lost at 1.0), sent while down, lost reply (2.435, lost at 2.5)
    np.testing.assert_allclose(df["latency_ms"], [70, 105, 100, 100, 165, 70], atol=TOL)
    assert (df["failovers"] == 0).all() and df["exit_layer"].tolist() == [2, 0, 0, 0, 0, 2]
    _ends_once(df, 6)


def test_local_rule_recomputes_on_the_phone(tmp_path):
    df = _run(tmp_path, "local")
    assert (df["status"] == "completed").all()
    # the phone runs the whole model (10 ms) 100 ms after the loss; the lost reply is recomputed too
    np.testing.assert_allclose(df["latency_ms"], [70, 115, 110, 110, 175, 70], atol=TOL)
    assert df["exit_tier"].tolist() == ["edge", "mobile", "mobile", "mobile", "mobile", "edge"]
    assert df["failovers"].tolist() == [0, 1, 1, 1, 1, 0]
    assert df["compute_s_edge"].iloc[4] == pytest.approx(0.05, abs=TOL)  # the edge's work, whose reply was lost


def test_retry_rule_resends_to_the_cloud_over_another_link(tmp_path):
    df = _run(tmp_path, "retry", direct=True)
    assert (df["status"] == "completed").all()
    # 100 ms after the loss: 10 ms up the direct link, 2 ms on the cloud, 10 ms down
    np.testing.assert_allclose(df["latency_ms"], [70, 127, 122, 122, 187, 70], atol=TOL)
    assert df["exit_tier"].tolist() == ["edge", "cloud", "cloud", "cloud", "cloud", "edge"]
    assert df["route"].iloc[2] == "direct"


def test_retry_over_the_same_down_link_costs_another_timeout(tmp_path):
    df = _run(tmp_path, "retry")  # the cloud is reached through 'up' too
    assert df["status"].tolist() == ["completed", "failed", "failed", "completed", "failed", "completed"]
    nrt = "down:up;no_retry_target"
    assert df["reason"].tolist() == ["", nrt, nrt, "", nrt, ""]
    # 0.995: lost at 1.0, the retry to the cloud at 1.1 lost at once, fails at 1.2 (edge and cloud tried);
    # 1.95: lost, retried at 2.05 when 'up' is back: 10 ms up, 2 ms, 10 ms down;
    # 2.435: reply lost at 2.5 (the edge counts as tried), retry at 2.6 lost at once, fails at 2.7
    np.testing.assert_allclose(df["latency_ms"], [70, 205, 200, 122, 265, 70], atol=TOL)
    assert df["failovers"].tolist() == [0, 1, 1, 1, 1, 0]
    assert df["exit_tier"].iloc[3] == "cloud"


def test_a_failure_during_transmission_loses_the_message(tmp_path):
    # 0.8 Mbit/s: the 104-byte input takes 1.04 ms to transmit; 0.9995 is transmitting when 'up' fails
    data = _data(tmp_path, "drop", arrivals=[0.9, 0.9995, 2.0])
    data["links"]["up"]["bandwidth"] = {"model": "constant", "mbps": 0.8}
    df = simulate(scenario_from_dict(data), "all-edge").requests
    assert df["status"].tolist() == ["completed", "failed", "completed"]
    np.testing.assert_allclose(df["latency_ms"][1], 100.5, atol=TOL)  # lost at 1.0, noticed at 1.1
    # sent at the instant of recovery: delivered (the window is [1, 2)); 1.04 + 10 + 50 + 0.64 + 10 ms
    np.testing.assert_allclose(df["latency_ms"][2], 71.68, atol=TOL)


def test_every_request_ends_exactly_once_with_random_link_failures(tmp_path):
    arrivals = list(np.round(np.cumsum(np.random.default_rng(0).exponential(0.04, 600)), 6))
    data = _data(tmp_path, "retry", failures={"mtbf_s": 3.0, "mttr_s": 1.0}, arrivals=arrivals)
    data["tiers"]["edge"]["queue_capacity"] = 2
    data["tiers"]["mobile"]["count"] = 2
    for rule in ("drop", "local", "retry"):
        data["failover"]["rule"] = rule
        df = simulate(scenario_from_dict(data), "all-edge").requests
        _ends_once(df, 600)
        counts = df["status"].value_counts()
        assert counts.get("dropped", 0) > 0 and counts.get("failed", 0) + df["failovers"].sum() > 0
        assert df["reason"][df["status"] == "failed"].str.startswith("down:up").all()
        row = summarise(df.assign(warmup=False), ["mobile", "edge", "cloud"]).iloc[0]
        assert row["completed"] + row["dropped"] + row["failed"] == 600
    # one stream per channel: the two mobiles' uplinks fail at different times
    import simpy

    from simulator.live import LiveNetwork
    from simulator.profile import get_profile
    from simulator.topology import build_network

    sc = scenario_from_dict(data)
    net = build_network(sc, get_profile(sc.profile))
    a, b = (list(c.failures.windows(c.failure_rng, 50.0)) for c in net.channels[0])
    assert a and b and a != b
    assert len(LiveNetwork(simpy.Environment(), net).link_health) == 2


def test_fast_engine_refuses_link_failures_and_auto_falls_back(tmp_path):
    from simulator.fast.engine import simulate_auto
    from simulator.fast.support import why_not

    sc = scenario_from_dict(_data(tmp_path, "drop"))
    assert why_not(sc, "all-edge") == "links.up fails"
    got = simulate_auto(sc, "all-edge", 0)
    assert got.engine == "simpy" and got.engine_reason == "links.up fails"
    assert got.requests["status"].tolist()[:2] == ["completed", "failed"]


@pytest.mark.parametrize("patch, needle", [
    ({"failures": {"mttr_s": 30}}, "'links.up.failures.mttr_s' needs 'links.up.failures.mtbf_s'"),
    ({"failures": {"mtbf_s": 30}}, "'links.up.failures.mtbf_s' needs 'links.up.failures.mttr_s'"),
    ({"failures": {"schedule": [[5, 2]]}}, "'links.up.failures.schedule[0]' must be [start_s, end_s]"),
    ({"shared": True}, "'links.up.failures': a shared link cannot fail"),
])
def test_bad_link_failures_are_one_clear_error(tmp_path, patch, needle):
    data = _data(tmp_path, "drop")
    data["links"]["up"].update(patch)
    with pytest.raises(ConfigError) as e:
        scenario_from_dict(data)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_rrc_radio_and_shipped_scenarios_with_failing_links(monkeypatch):
    from simulator.config import load_scenario

    monkeypatch.chdir(ROOT)
    for name, sets in (("radio_tail", ["workload.requests=60", "links.uplink.failures={mtbf_s: 60, mttr_s: 30}"]),
                       ("edge_failure", ["workload.requests=400", "links.backhaul.failures={schedule: [[20, 40]]}",
                                         "tiers.edge.failures=null"])):
        sc = load_scenario(ROOT / "scenarios" / f"{name}.yaml", ["replications=1", *sets])
        for spec in sc.policies:
            df = simulate(sc, spec).requests
            _ends_once(df, len(df))
            assert df["reason"][df["status"] == "failed"].str.startswith("down:").all()
            if name == "radio_tail":
                assert (df["tail_energy_j"] >= 0).all()
        if name == "edge_failure":  # all-cloud crosses the backhaul: requests sent in [20, 40) s are lost
            df = simulate(sc, "all-cloud").requests
            hit = df[(df["arrival_s"] > 20.1) & (df["arrival_s"] < 39.8)]
            assert len(hit) > 20 and (hit["reason"] == "down:backhaul").all()


def test_a_peer_link_cannot_fail(tmp_path):
    data = _data(tmp_path, "drop")
    data["tiers"]["edge"].update(count=2, offload={"rule": "random", "link": "peer"})
    data["links"]["peer"] = {"from": "edge", "to": "edge", "rtt_ms": 1, "bandwidth": {"model": "constant", "mbps": 1e3},
                             "failures": {"schedule": [[1, 2]]}}
    with pytest.raises(ConfigError, match="'links.peer.failures': a peer link cannot fail"):
        scenario_from_dict(data)


def test_devices_table_counts_link_failures(synth_profile):
    from simulator.config import scenario_from_dict
    from simulator.engine import simulate

    sc = scenario_from_dict({
        "profile": str(synth_profile), "timeline": False,
        "tiers": {"mobile": {"device": "phone-cpu", "layers": [1, 2]},
                  "edge": {"device": "jetson-orin", "layers": [3, 6]}},
        "links": {"up": {"rtt_ms": 20, "bandwidth": 50, "failures": {"schedule": [[1.0, 2.0], [2.5, 2.65]]}}},
        "workload": {"arrival": "deterministic", "rate_per_s": 10, "requests": 40}, "policies": ["all-edge"]})
    dev = simulate(sc, "all-edge").devices
    links = dev[dev["tier"] == "up"]
    assert len(links) == 2 and (links["failures"] == 2).all()  # up and down directions of the one channel
    assert links["down_s"].to_numpy() == pytest.approx([1.15, 1.15])
    assert dev.loc[dev["tier"] != "up", "failures"].isna().all()


def test_a_message_lost_mid_transmission_books_the_radio_energy_it_used(tmp_path):
    """The phone's 80-byte input on a 10 kbit/s uplink is on air for 64 ms; the link fails 20 ms into it.
    The radio was sending for those 20 ms (200 bits): 1 W x 0.02 s + 0.5 W/Mbps x 200 bits; before, a
    lost message booked nothing."""
    data = _data(tmp_path, "drop", failures={"schedule": [[0.52, 0.6]]}, arrivals=[0.5, 1.0])
    data["links"]["up"]["bandwidth"] = {"model": "constant", "mbps": 0.01}
    data["devices"]["phone"]["radio"] = {"tx_base_w": 1.0, "tx_w_per_mbps": 0.5, "rx_base_w": 0.2,
                                         "rx_w_per_mbps": 0.1}
    data["payload"] = {"header_bytes": 40, "input_bytes_per_token": 4}
    df = _run_data(data).sort_values("arrival_s")
    assert df["status"].tolist() == ["failed", "completed"] and df["reason"].iloc[0] == "down:up"
    assert df["energy_radio_j"].iloc[0] == pytest.approx(1.0 * 0.02 + 0.5 * 200 / 1e6, rel=1e-9)
    whole = 1.0 * 0.064 + 0.5 * 640 / 1e6  # the second: its input on air for 64 ms, the reply received
    reply = 0.2 * 512 / 1e4 + 0.1 * 512 / 1e6  # its 64-byte reply received at 10 kbit/s
    assert df["energy_radio_j"].iloc[1] == pytest.approx(whole + reply, rel=1e-9)


def _run_data(data: dict):
    return simulate(scenario_from_dict(data), "all-edge").requests
