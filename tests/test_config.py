"""Scenario validation: bad input gets one clear line naming the key, its path and the closest key."""

from __future__ import annotations

import pytest
import yaml

from simulator.config import REPO_ROOT as REPO
from simulator.config import load_scenario, scenario_from_dict
from simulator.errors import ConfigError


def base(profile) -> dict:
    return {
        "name": "t", "profile": str(profile),
        "tiers": {"mobile": {"device": "phone-cpu", "layers": [1, 2], "count": 2},
                  "edge": {"device": "jetson-orin", "layers": [3, 4]},
                  "cloud": {"device": "cloud-gpu", "layers": [5, 6]}},
        "links": {"uplink": {"bandwidth": {"model": "constant", "mbps": 10}},
                  "backhaul": {"bandwidth": {"model": "constant", "mbps": 100}}},
        "workload": {"rate_per_s": 5, "requests": 50},
        "policies": ["all-mobile", {"name": "threshold", "thresholds": 0.8}],
    }


def test_valid_scenario_fills_defaults(synth_profile):
    sc = scenario_from_dict(base(synth_profile))
    assert sc.payload.dtype == "fp16" and sc.links["uplink"].rtt_ms == 20.0
    plain = sc.to_dict()
    assert plain["links"]["uplink"]["bandwidth"] == {"model": "constant", "mbps": 10.0}
    assert scenario_from_dict(plain).to_dict() == plain  # the resolved config round-trips


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["workload"].update(rate_per_sec=3),
     "unknown key 'rate_per_sec' at 'workload'; did you mean 'rate_per_s'?"),
    (lambda d: d.update(replicatons=2), "unknown key 'replicatons' at the top level; did you mean 'replications'?"),
    (lambda d: d["tiers"]["mobile"].update(devce="x"), "unknown key 'devce' at 'tiers.mobile'; did you mean 'device'?"),
    (lambda d: d["workload"].update(rate_per_s=-1), "'workload.rate_per_s' must be positive, got -1"),
    (lambda d: d["workload"].update(rate_per_s="fast"), "'workload.rate_per_s' must be a number, got 'fast'"),
    (lambda d: d["links"]["uplink"]["bandwidth"].update(mbps=-5), "'links.uplink.bandwidth.mbps' must be positive"),
    (lambda d: d["tiers"]["cloud"].update(layers=[5, 9]),
     "'tiers.cloud.layers' [5, 9] is outside the model's layers 1..6"),
    (lambda d: d["tiers"]["edge"].update(device="jetson-orn"), "did you mean 'jetson-orin'"),
    (lambda d: d.update(profile="nope.npz"), "profile file not found"),
    (lambda d: d["links"]["uplink"].update(bandwidth={"model": "trace", "file": "missing.txt"}),
     "trace file not found"),
    (lambda d: d["policies"].append("all-clowd"),
     "unknown policy 'all-clowd' at 'policies[2]'; did you mean 'all-cloud'?"),
    (lambda d: d["links"].pop("backhaul"), "'links' must define 2 link(s)"),
])
def test_bad_input_is_one_clear_line(synth_profile, mutate, message):
    d = base(synth_profile)
    mutate(d)
    with pytest.raises(ConfigError) as e:
        scenario_from_dict(d)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_overrides_are_parsed_as_yaml(synth_profile, tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(base(synth_profile), sort_keys=False))
    sc = load_scenario(f, ["workload.rate_per_s=20", "tiers.mobile.layers=[1, 3]", "tiers.edge.layers=[4, 4]"])
    assert sc.workload.rate_per_s == 20.0 and sc.tiers["mobile"].layers == [1, 3]
    with pytest.raises(ConfigError, match="unknown key 'rat' at 'workload'"):
        load_scenario(f, ["workload.rat=2"])


def test_invalid_yaml_names_file_and_line(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("name: x\ntiers: [\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml:\d+: not valid YAML"):
        load_scenario(f)


def _cost_scenario(profile, cost):
    return {
        "name": "cost", "profile": str(profile), "seed": 1,
        "tiers": {"mobile": {"device": "phone-cpu", "layers": [1, 2]},
                  "edge": {"device": "jetson-orin", "layers": [3, 4]},
                  "cloud": {"device": "cloud-gpu", "layers": [5, 6]}},
        "links": {"uplink": {"bandwidth": 20}, "backhaul": {"bandwidth": 200}},
        "workload": {"rate_per_s": 1, "requests": 60}, "cost": cost,
        "policies": ["all-mobile", "all-cloud", {"name": "threshold", "thresholds": 0.9}],
    }


def test_cost_presets_and_per_route_costs_in_the_engine(synth_profile):
    from simulator.engine import simulate

    sc = scenario_from_dict(_cost_scenario(synth_profile, {"preset": "splitee-code"}))
    assert sc.cost.lambda_per_layer == {"mobile": 0.1, "edge": 0.0, "cloud": 0.0}
    assert sc.cost.offload == {"mobile->edge": 0.5, "mobile->cloud": 0.5}
    assert simulate(sc, "all-cloud").requests["cost"].to_numpy() == pytest.approx(0.5)  # server layers free
    assert simulate(sc, "all-mobile").requests["cost"].to_numpy() == pytest.approx(0.6)
    th = simulate(sc, {"name": "threshold", "thresholds": 0.9}).requests
    want = th["exit_tier"].map({"mobile": 0.2, "edge": 0.7, "cloud": 0.7})  # edge -> cloud costs nothing here
    assert th["cost"].to_numpy() == pytest.approx(want.to_numpy())
    custom = scenario_from_dict(_cost_scenario(synth_profile, {"lambda_per_layer": {"mobile": 0.3, "edge": 0.1},
                                                               "offload": {"mobile->edge": 1, "edge->cloud": 2}}))
    th = simulate(custom, {"name": "threshold", "thresholds": 0.9}).requests
    want = th["exit_tier"].map({"mobile": 0.6, "edge": 0.6 + 0.2 + 1, "cloud": 0.6 + 0.2 + 3})
    assert th["cost"].to_numpy() == pytest.approx(want.to_numpy())


@pytest.mark.parametrize("cost, message", [
    ({"preset": "splitee"}, "unknown cost preset 'splitee'.*did you mean 'splitee-code'"),
    ({"offload": {"edge->mobile": 1}}, "must be 'lower->higher'"),
    ({"lambda_per_layer": {"edg": 0.1}}, "did you mean 'edge'"),
    ({"offload": [1, 2, 3]}, "must have 2 entries"),
])
def test_bad_cost_config(synth_profile, cost, message):
    with pytest.raises(ConfigError, match=message):
        scenario_from_dict(_cost_scenario(synth_profile, cost))


@pytest.mark.parametrize("override, message", [
    ("links.uplink.bandwidth.mean_mbps=.nan", "must be a finite number, got nan"),
    ("links.uplink.rtt_ms=.inf", "must be a finite number, got inf"),
    ("workload.warmup_s=.nan", "must be a finite number"),
    ("seed=-1", "'seed' must be a non-negative integer"),
    ("replications=1000000", "'replications' must be in 1..10000"),
    ("tiers.mobile.count=1000000", "'tiers.mobile.count' must be in 1..100000"),
    ("links.uplink.rtt_ms=1.0e+300", "at most 3.6e6"),
    ("workload.requests=1000000000000", r"'workload.requests' must be in 1\.\.1e\+08"),
    ("payload.header_bytes=1000000000000", "at most 1e9 bytes"),
])
def test_non_finite_and_resource_bombs_are_refused(override, message):
    with pytest.raises(ConfigError, match=message):
        load_scenario(REPO / "scenarios" / "default.yaml", [override])


def test_binary_file_and_huge_values_give_short_errors(tmp_path):
    f = tmp_path / "bin.yaml"
    f.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ConfigError, match="not a text"):
        load_scenario(f)
    nested = ["lol"] * 9
    for _ in range(8):
        nested = [nested] * 9  # 9**9 leaves if expanded
    with pytest.raises(ConfigError) as e:
        load_scenario(REPO / "scenarios" / "default.yaml", {"description": nested})
    assert len(str(e.value)) < 200


def test_file_errors_show_the_path_as_written(synth_profile, tmp_path, monkeypatch):
    folder = tmp_path / "private-folder"
    folder.mkdir()
    (folder / "bad.txt").write_text("0 1\n1 nope\n")
    (folder / "arr.txt").write_text("0.5\nnan\n")
    monkeypatch.setenv("MY_DATA", str(folder))
    d = base(synth_profile)
    d["links"]["uplink"]["bandwidth"] = {"model": "trace", "file": "${MY_DATA}/bad.txt"}
    with pytest.raises(ConfigError) as e:
        scenario_from_dict(d)
    assert str(e.value) == ("'links.uplink.bandwidth.file': ${MY_DATA}/bad.txt:2: expected a throughput "
                            "(a number) in the second field")
    d = base(synth_profile)
    d["workload"] = {"arrival": "file", "file": "arr.txt"}  # relative to the scenario's folder
    with pytest.raises(ConfigError) as e:
        scenario_from_dict(d, base=folder)
    assert str(e.value) == "arr.txt:2: expected a finite arrival time in seconds, got nan"
    assert "private-folder" not in str(e.value)


@pytest.mark.parametrize("bandwidth, message", [
    ({"model": "constant", "mbps": 1e-300}, "'links.uplink.bandwidth' has a long-run mean of 1e-300 Mbit/s, "
                                            "below the minimum 0.001 Mbit/s"),
    ({"model": "lognormal", "mean_mbps": 1e-6}, "below the minimum 0.001 Mbit/s"),
    ({"model": "markov", "states_mbps": [1e-300, 0], "mean_dwell_s": [1, 1]}, "below the minimum"),
    ({"model": "trace", "file": "TRACE", "scale": 1e-300}, "below the minimum"),
    ({"model": "trace", "file": "TINY"}, "below the minimum"),
    ({"model": "lognormal", "interval_s": 1e-7}, "'links.uplink.bandwidth.interval_s' must be at least 0.001 s"),
    ({"model": "markov", "mean_dwell_s": [10, 1e-9]}, "'links.uplink.bandwidth.mean_dwell_s[1]' must be at least"),
    ({"model": "trace", "file": "FAST"}, "samples are 1e-09 s apart on average"),
    ({"model": "constant", "mbps": 1e300}, "'links.uplink.bandwidth.mbps' must be at most 1e+09 Mbit/s"),
    ({"model": "markov", "states_mbps": [1e10, 1]}, "'links.uplink.bandwidth.states_mbps[0]' must be at most"),
    ({"model": "lognormal", "mean_mbps": 1e10}, "'links.uplink.bandwidth.mean_mbps' must be at most"),
    ({"model": "trace", "file": "HUGE"}, "its peak throughput (scale included) is 1e+308 Mbit/s"),
    ({"model": "trace", "file": "TRACE", "scale": 1e300}, "its peak throughput (scale included) is 2e+300"),
    ({"model": "trace", "file": "LONG"}, "its times span more than floating point can hold"),
])
def test_bandwidths_a_run_could_not_finish_are_refused(synth_profile, tmp_path, bandwidth, message):
    (tmp_path / "trace.txt").write_text("0 1\n1 2\n")
    (tmp_path / "tiny.txt").write_text("0 1e-300\n1 1e-300\n")
    (tmp_path / "fast.txt").write_text("".join(f"{i}e-9 1\n" for i in range(10)))
    (tmp_path / "huge.txt").write_text("0 1\n1 1e308\n2 1\n")
    (tmp_path / "long.txt").write_text("-1e308 1\n1e308 1\n")
    names = {"TRACE": "trace.txt", "TINY": "tiny.txt", "FAST": "fast.txt", "HUGE": "huge.txt", "LONG": "long.txt"}
    if "file" in bandwidth:
        bandwidth["file"] = str(tmp_path / names[bandwidth["file"]])
    d = base(synth_profile)
    d["links"]["uplink"]["bandwidth"] = bandwidth
    with pytest.raises(ConfigError) as e:
        scenario_from_dict(d)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_header_that_takes_hours_over_a_link_is_refused(synth_profile):
    d = base(synth_profile)
    d["links"]["uplink"]["bandwidth"] = {"model": "constant", "mbps": 0.01}
    d["payload"] = {"header_bytes": 10**8}
    with pytest.raises(ConfigError, match=r"'payload.header_bytes' 100000000 takes 8e\+04 s over "
                                          r"'links.uplink.bandwidth'"):
        scenario_from_dict(d)
    d["payload"] = {"reply_bytes": 10**8}
    with pytest.raises(ConfigError, match=r"'payload.reply_bytes' 100000000 takes .* over 'links.uplink.bandwidth'"):
        scenario_from_dict(d)
    d["payload"] = {"header_bytes": 64}
    scenario_from_dict(d)  # 1 kbit/s and more, with small messages, runs


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["workload"].update(requests=None, duration_s=1e12),
     "'workload.duration_s' 1e+12 s at 5 requests/s per mobile (2 mobile(s)) means about 1e+13 requests, "
     "more than 1e+08"),
    (lambda d: d["workload"].update(requests=None, duration_s=1e9, arrival="mmpp",
                                    mmpp={"rates_per_s": [0, 1], "mean_dwell_s": [1, 1]}),
     "means about 1e+09 requests"),
    (lambda d: d["workload"].update(rate_per_s=1e-9), "requests would arrive over about 2.5e+10 s"),
    (lambda d: d["tiers"]["edge"].update(background={"rate_per_s": 1e9, "service_ms": 1}),
     "'tiers.edge.background.rate_per_s' means about 5e+09 background jobs over the 5 s of arrivals"),
    (lambda d: d["tiers"]["edge"].update(failures={"mtbf_s": 1e-9, "mttr_s": 1e-9}),
     "'tiers.edge.failures.mtbf_s' means about 2.5e+09 failures"),
    (lambda d: d.update(mobility={"mean_dwell_s": 1e-9}), "'mobility.mean_dwell_s' means about 1e+10 handovers"),
    (lambda d: d["workload"].update(requests=None, duration_s=1e7, rate_per_s=1e-3) or d["links"].update(
        uplink={"bandwidth": {"model": "lognormal", "interval_s": 0.01}}),
     "the links' bandwidth paths would take about 4e+09 steps"),
])
def test_runs_beyond_the_cost_bounds_are_refused_before_allocating(synth_profile, mutate, message):
    d = base(synth_profile)
    mutate(d)
    with pytest.raises(ConfigError) as e:
        scenario_from_dict(d)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_duration_within_the_bounds_validates(synth_profile):
    d = base(synth_profile)
    d["workload"].update(requests=None, duration_s=3600.0)
    assert scenario_from_dict(d).workload.expected_horizon_s(2) == (3600.0, 5 * 3600.0 * 2)
