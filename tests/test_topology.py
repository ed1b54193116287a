"""Links as edges and routes: direct links are taken when present, chains otherwise; bad links rejected."""

from __future__ import annotations

import pytest

from simulator.config import scenario_from_dict
from simulator.engine import Simulation, simulate
from simulator.errors import ConfigError
from simulator.topology import build_routes

DIRECT_LINKS = {
    "uplink": {"from": "mobile", "to": "edge", "rtt_ms": 20, "bandwidth": {"model": "constant", "mbps": 20}},
    "backhaul": {"from": "edge", "to": "cloud", "rtt_ms": 40, "bandwidth": {"model": "constant", "mbps": 200}},
    "direct": {"from": "mobile", "to": "cloud", "rtt_ms": 60, "bandwidth": {"model": "constant", "mbps": 10}},
}


def scenario(profile, links=None, **over) -> dict:
    d = {
        "name": "routes", "profile": str(profile), "seed": 3,
        "tiers": {"mobile": {"device": "phone-cpu", "layers": [1, 2]},
                  "edge": {"device": "jetson-orin", "layers": [3, 4]},
                  "cloud": {"device": "cloud-gpu", "layers": [5, 6]}},
        "links": links if links is not None else DIRECT_LINKS,
        "workload": {"rate_per_s": 0.5, "requests": 40},
        "policies": ["all-mobile", "all-edge", "all-cloud", {"name": "threshold", "thresholds": 0.99}],
    }
    d.update(over)
    return d


def test_build_routes_direct_link_else_chain():
    routes, chain = build_routes(3, [(0, 1), (1, 2), (0, 2)])
    assert chain == [0, 1]
    assert routes == {(0, 1): (0,), (1, 2): (1,), (0, 2): (2,)}
    routes, chain = build_routes(4, [(0, 1), (1, 2), (2, 3), (1, 3)])
    assert routes[(0, 3)] == (0, 1, 2) and routes[(1, 3)] == (3,) and routes[(0, 2)] == (0, 1)


def test_all_cloud_takes_the_direct_link_exactly(synth_profile):
    sc = scenario_from_dict(scenario(synth_profile))
    df = simulate(sc, "all-cloud").requests
    assert (df["bytes_direct"] > 0).all()
    assert (df["bytes_uplink"] == 0).all() and (df["bytes_backhaul"] == 0).all()
    # sparse arrivals, constant links: latency = upload + 30 ms + cloud compute + reply + 30 ms, exactly
    up = (df["tokens"] * 4 + 64) * 8 / 10e6
    down = 64 * 8 / 10e6
    want = up + 0.030 + df["queue_s_cloud"] + df["compute_s_cloud"] + down + 0.030
    assert df["queue_s_cloud"].max() == 0.0
    assert (df["finish_s"] - df["arrival_s"] - want).abs().max() < 1e-12
    edge = simulate(sc, "all-edge").requests
    assert (edge["bytes_uplink"] > 0).all() and (edge["bytes_direct"] == 0).all()


def test_climbing_tier_by_tier_uses_the_chain(synth_profile):
    sc = scenario_from_dict(scenario(synth_profile))
    df = simulate(sc, {"name": "threshold", "thresholds": 0.99}).requests
    cloud = df[df["exit_tier"] == "cloud"]
    assert len(cloud) > 0
    assert (cloud["bytes_uplink"] > 0).all() and (cloud["bytes_backhaul"] > 0).all()
    assert (cloud["bytes_direct"] == 0).all()
    # the offload cost is that of the links actually crossed: lambda * 6 + o(uplink) + o(backhaul)
    assert cloud["cost"].to_numpy() == pytest.approx(0.1 * 6 + 1.0 + 1.0)


def test_without_from_to_links_join_consecutive_tiers_and_are_filled_in(synth_profile):
    links = {"uplink": {"rtt_ms": 20, "bandwidth": {"model": "constant", "mbps": 20}},
             "backhaul": {"rtt_ms": 40, "bandwidth": {"model": "constant", "mbps": 200}}}
    sc = scenario_from_dict(scenario(synth_profile, links=links))
    assert [(v.from_tier, v.to_tier) for v in sc.links.values()] == [("mobile", "edge"), ("edge", "cloud")]
    resolved = sc.to_dict()["links"]
    assert resolved["uplink"]["from"] == "mobile" and resolved["backhaul"]["to"] == "cloud"
    sim = Simulation(sc, "all-cloud")
    assert sim.network.route(0, 2) == (0, 1)
    df = sim.run().requests
    assert (df["bytes_uplink"] > 0).all() and (df["bytes_backhaul"] > 0).all()


def test_partitioner_predicts_over_the_route_it_will_take(synth_profile):
    sc = scenario_from_dict(scenario(synth_profile))
    sim = Simulation(sc, "neurosurgeon")
    assert sim.view.route_links(0, 0, 2) == (2,)
    assert sim.view.link_rtt_s(2) == pytest.approx(0.060)
    assert sim.view.rtt_s(1) == pytest.approx(0.040)  # hop-based methods still walk the chain


@pytest.mark.parametrize("links, message", [
    ({"uplink": {"from": "mobile", "rtt_ms": 1, "bandwidth": 5}}, "both 'from' and 'to'"),
    ({"uplink": {"from": "mobil", "to": "edge", "bandwidth": 5}}, "did you mean 'mobile'"),
    ({"uplink": {"from": "edge", "to": "mobile", "bandwidth": 5}}, "must be a tier before"),
    ({"a": {"from": "mobile", "to": "edge", "bandwidth": 5}, "b": {"from": "mobile", "to": "edge", "bandwidth": 5},
      "c": {"from": "edge", "to": "cloud", "bandwidth": 5}}, "already does"),
    ({"a": {"from": "mobile", "to": "edge", "bandwidth": 5}, "b": {"from": "mobile", "to": "cloud", "bandwidth": 5}},
     "Gaps: edge -> cloud"),
])
def test_bad_links_are_one_clear_error(synth_profile, links, message):
    with pytest.raises(ConfigError, match=message):
        scenario_from_dict(scenario(synth_profile, links=links))


def test_a_link_without_from_to_fills_the_remaining_gap(synth_profile):
    links = {"uplink": {"rtt_ms": 20, "bandwidth": 20},
             "direct": {"from": "mobile", "to": "cloud", "rtt_ms": 60, "bandwidth": 10},
             "backhaul": {"rtt_ms": 40, "bandwidth": 200}}
    sc = scenario_from_dict(scenario(synth_profile, links=links))
    assert (sc.links["uplink"].from_tier, sc.links["backhaul"].from_tier) == ("mobile", "edge")


def test_unknown_engine_is_a_clear_error(synth_profile):
    with pytest.raises(ConfigError, match="unknown engine 'simpyy'.*did you mean 'simpy'"):
        scenario_from_dict(scenario(synth_profile, engine="simpyy"))
