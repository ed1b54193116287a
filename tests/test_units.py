"""Heterogeneous units inside one device (simulator/units.py): a stretch split across units is a tandem of
FIFO stations with a copy between them; units share one thermal budget; power and energy add up."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import simpy
from conftest import linear_profile

from simulator.config import scenario_from_dict
from simulator.device import DeviceSpec, resolve_catalogue
from simulator.engine import simulate
from simulator.errors import ConfigError
from simulator.fast.support import scenario_why_not
from simulator.thermal import ThermalSpec
from simulator.unit_device import UnitDevice

HIDDEN = 4
REPO = Path(__file__).resolve().parent.parent


_profile = linear_profile  # ms_per_token * tokens ms per request at speed 1 (conftest.py)


SOC = {"speed": 1.0, "servers": 1, "power_idle_w": 0.2, "power_active_w": 0.2, "source": "test",
       "units": {"npu": {"speed": 2.0, "power_idle_w": 0.05, "power_active_w": 1.0},
                 "cpu": {"speed": 0.5, "power_idle_w": 0.1, "power_active_w": 3.0}},
       "copy": {"gbps": 1.0, "latency_us": 100.0}}


def _fifo(ready: list[float], service: list[float]) -> list[float]:
    out, free = [], 0.0
    for a, s in zip(ready, service, strict=True):
        free = max(a, free) + s
        out.append(free)
    return out


def _local(profile: Path, units: dict | None, rate: float = 125.0, requests: int = 40, **soc) -> dict:
    return {
        "name": "units", "profile": str(profile), "seed": 3, "timeline": False,
        "tiers": {"mobile": {"device": "soc", "layers": [1, 2], **({"units": units} if units else {})}},
        "links": {},
        "devices": {"soc": {**SOC, **soc}},
        "payload": {"dtype": "fp16", "header_bytes": 40},
        "workload": {"arrival": "deterministic", "rate_per_s": rate, "requests": requests},
        "policies": ["all-mobile"],
    }


def test_layers_split_across_units_are_a_tandem_with_a_copy(tmp_path):
    """100 tokens: layer 1 on the NPU (speed 2: 2.5 ms), a copy of 100 x 4 x 2 bytes (100 us + 6.4 us),
    layer 2 on the CPU (speed 0.5: 10 ms); arrivals every 8 ms, so the CPU queues without bound. Finish
    times, waits and compute times are the FIFO tandem recursion to 1e-12 s; energy is each unit's
    request power times its compute time."""
    p = _profile(tmp_path / "t.npz", np.full(10, 100))
    sc = scenario_from_dict(_local(p, {"npu": [1, 1], "cpu": [2, 2]}))
    df = simulate(sc, "all-mobile").requests.sort_values("arrival_s")
    arrival = df["arrival_s"].tolist()
    n = len(arrival)
    copy_s = 100e-6 + 100 * HIDDEN * 2 * 8 / 1e9
    npu_done = _fifo(arrival, [0.0025] * n)
    cpu_done = _fifo([t + copy_s for t in npu_done], [0.010] * n)
    assert np.abs(df["finish_s"].to_numpy() - np.array(cpu_done)).max() < 1e-12
    waits = np.array(cpu_done) - np.array(arrival) - 0.0125 - copy_s
    assert np.abs(df["queue_s_mobile"].to_numpy() - waits).max() < 1e-12
    assert np.abs(df["compute_s_mobile"].to_numpy() - (0.0125 + copy_s)).max() < 1e-12
    assert waits[-1] == pytest.approx(0.002 * (n - 1), abs=1e-9)  # 10 ms of CPU per 8 ms of arrivals
    assert df["energy_compute_j"].to_numpy() == pytest.approx(1.0 * 0.0025 + 3.0 * 0.010, rel=1e-12)


def test_unnamed_layers_run_on_the_first_unit(tmp_path):
    """Without a placement every layer runs on the class's first unit (the NPU here): 2 x 2.5 ms, no copy."""
    p = _profile(tmp_path / "t.npz", np.full(10, 100))
    df = simulate(scenario_from_dict(_local(p, None, rate=10.0)), "all-mobile").requests
    assert np.allclose(df["compute_s_mobile"], 0.005, rtol=0, atol=1e-15)
    assert (df["queue_s_mobile"] == 0).all()


def test_one_unit_reproduces_the_device_without_units():
    """The default scenario's phone as a class with one unit of the same speed and power (and the same
    throttling): every request's times and energy agree with the plain device to 1e-9."""
    from simulator.config import read_yaml

    data = read_yaml(REPO / "scenarios" / "default.yaml")
    over = ["workload.requests=300", "replications=1"]
    base = scenario_from_dict(data, REPO / "scenarios", over)
    phone = base.tiers["mobile"].device
    spec = base.catalogue()[phone]
    unit = {"speed": spec.speed, "servers": spec.servers, "power_idle_w": spec.power_idle_w,
            "power_active_w": spec.power_active_w}
    data["devices"] = {"soc": {"base": phone, "power_idle_w": 0.0, "units": {"big": unit}}}
    data["tiers"]["mobile"]["device"] = "soc"
    sc = scenario_from_dict(data, REPO / "scenarios", over)
    assert sc.catalogue()["soc"].units is not None and sc.thermal_for("mobile").enabled
    for policy in ("all-mobile", sc.policies[-1]):
        a = simulate(base, policy).requests.sort_values("request_id").reset_index(drop=True)
        b = simulate(sc, policy).requests.sort_values("request_id").reset_index(drop=True)
        for col in ("finish_s", "queue_s_mobile", "compute_s_mobile", "energy_compute_j", "exit_layer"):
            assert np.abs(a[col].to_numpy(float) - b[col].to_numpy(float)).max() < 1e-9, col


def _device(thermal: ThermalSpec | None = None, board_w: float = 0.5, record: bool = False
            ) -> tuple[simpy.Environment, UnitDevice]:
    spec = resolve_catalogue({"soc": {**SOC, "power_idle_w": board_w, "power_active_w": board_w}})["soc"]
    env = simpy.Environment()
    return env, UnitDevice(env, "soc0", 0, spec, thermal or ThermalSpec(enabled=False), None, record, None, len)


def test_the_timeline_counts_a_request_from_arrival_to_its_last_unit():
    """Requests in the device (the timeline's in_system) include one being copied between units and end
    at zero when the last one leaves."""
    env, dev = _device(record=True)
    env.process(dev.serve_segments([(0, 0.004, 0.0), (1, 0.010, 0.001)]))
    env.process(dev.serve_segments([(0, 0.004, 0.0)]))
    env.run(until=0.0045)
    assert dev.in_system == 2  # the first is being copied (0.004-0.005), the second computes on unit 0
    env.run(until=0.009)
    assert dev.in_system == 1  # the second left at 0.008, the first computes on unit 1 until 0.015
    env.run()
    assert dev.trace[-1][0] == pytest.approx(0.015) and dev.trace[-1][1] == 0
    assert max(p[1] for p in dev.trace) == 2


def test_energy_is_board_plus_each_units_power_times_time():
    """Work on both units at once: energy over the run is the board's and units' idle power times the
    run's length plus each unit's dynamic power times its busy time."""
    env, dev = _device()
    env.process(dev.serve_segments([(0, 0.004, 0.0)]))
    env.process(dev.serve_segments([(1, 0.010, 0.0)]))
    env.run(until=0.02)
    dev.finish()
    npu, cpu = dev.unit_specs
    expected = (0.5 + npu.power_idle_w + cpu.power_idle_w) * 0.02 + (npu.power_active_w - npu.power_idle_w) * 0.004 \
        + (cpu.power_active_w - cpu.power_idle_w) * 0.010
    assert dev.energy_j == pytest.approx(expected, rel=1e-12)
    assert dev.busy_s == pytest.approx(0.014, rel=1e-12)
    assert dev.unit_busy_s == pytest.approx({"npu": 0.004, "cpu": 0.010}, rel=1e-12)


def test_units_share_one_thermal_budget():
    """Alone, the CPU's 3 W + the board's 0.5 W never reach the 50 C trip (25 + 3.5 x 6 = 46 C); with
    the NPU busy as well (4.5 W, heading for 52 C) the device trips at the RC model's crossing time t*,
    and from then both units run at 0.5x: the CPU's 20 s of work ends at t* + (20 - t*) / 0.5."""
    thermal = ThermalSpec(enabled=True, resistance_k_per_w=6.0, capacitance_j_per_k=0.2, ambient_c=25.0,
                          trips=[[50.0, 0.5]], hysteresis_c=30.0)  # below ambient: never recovers
    env, dev = _device(thermal)
    done = {}

    def job(u, work):
        s = yield from dev.serve_segments([(u, work, 0.0)])
        done[u] = (env.now, s)

    env.process(job(1, 20.0))
    env.run()
    assert done[1][0] == pytest.approx(20.0, rel=1e-12)  # no trip alone

    env, dev = _device(thermal)
    done.clear()
    env.process(job(1, 20.0))
    env.process(job(0, 30.0))
    env.run(until=100.0)
    p = 0.5 + 1.0 + 3.0  # board + both units busy (a unit's active power includes its idle)
    tau = 6.0 * 0.2
    t_star = -tau * math.log(1 - (50.0 - 25.0) / (p * 6.0))
    assert t_star < 20.0
    assert done[1][0] == pytest.approx(t_star + (20.0 - t_star) / 0.5, rel=1e-9)
    assert done[0][0] == pytest.approx(t_star + (30.0 - t_star) / 0.5, rel=1e-9)
    assert dev.frequency == 0.5 and dev.busy == 0 and dev.unit_busy == [0, 0]


def test_failure_on_a_units_device_frees_its_units(tmp_path):
    """A scheduled failure loses the work inside; requests in the window fail under 'drop'; every
    request ends once and the units are idle again afterwards."""
    p = _profile(tmp_path / "t.npz", np.full(10, 100))
    raw = _local(p, {"npu": [1, 1], "cpu": [2, 2]}, rate=50.0, requests=60)
    raw["tiers"] = {"mobile": {"device": "profile-host", "layers": []},
                    "edge": {"device": "soc", "layers": [1, 2], "units": {"npu": [1, 1], "cpu": [2, 2]},
                             "failures": {"schedule": [[0.3, 0.5]]}}}
    raw["links"] = {"uplink": {"rtt_ms": 0, "bandwidth": {"model": "constant", "mbps": 1e5}}}
    raw["policies"] = ["all-edge"]
    raw["failover"] = {"rule": "drop", "timeout_ms": 10}
    df = simulate(scenario_from_dict(raw), "all-edge").requests
    assert len(df) == 60
    failed = df[df["failed"]]
    assert len(failed) > 0 and (failed["reason"] == "down:edge").all()
    lost = (df["arrival_s"] >= 0.3) & (df["arrival_s"] < 0.49)
    assert df.loc[lost, "failed"].all() and lost.sum() >= 9
    after = df[df["arrival_s"] >= 0.51]
    assert len(after) > 10 and not after["failed"].any()
    copy_s = 100e-6 + 100 * HIDDEN * 2 * 8 / 1e9  # neither unit stayed held by the lost work
    assert np.allclose(after["compute_s_edge"], 0.0125 + copy_s, rtol=0, atol=1e-12)
    assert (after["queue_s_edge"] == 0).all()


@pytest.mark.parametrize("change, message", [
    ({"tiers.mobile.units": {"gpu": [1, 2]}},
     "unknown unit 'gpu' at 'tiers.mobile.units' (the units of device class 'soc')"),
    ({"tiers.mobile.units": {"npu": [1, 2], "cpu": [2, 2]}}, "both place layer 2"),
    ({"tiers.mobile.units": {"npu": [1, 3]}}, "outside the model's layers 1..2"),
    ({"tiers.mobile.device": "profile-host"}, "device class 'profile-host' has no units"),
    ({"devices.soc.copy": None}, "'devices.soc.copy' is needed with several units"),
    ({"tiers.mobile.batching": {"max_batch": 2}}, "batching on a device with units is not supported"),
])
def test_bad_unit_input_is_one_clear_error(tmp_path, change, message):
    p = _profile(tmp_path / "t.npz", np.full(10, 100))
    raw = _local(p, {"npu": [1, 1], "cpu": [2, 2]})
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        scenario_from_dict(raw, overrides=change)


def test_unknown_unit_via_the_cli_is_one_line_and_exit_2(tmp_path):
    p = _profile(tmp_path / "t.npz", np.full(10, 100))
    import yaml

    raw = _local(p, {"nnpu": [1, 1], "cpu": [2, 2]})
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(raw))
    r = subprocess.run([sys.executable, str(REPO / "run_sim.py"), "validate", str(f)], capture_output=True, text=True)
    assert r.returncode == 2
    lines = [x for x in r.stderr.strip().splitlines() if x]
    assert len(lines) == 1 and "did you mean 'npu'" in lines[0] and "tiers.mobile.units" in lines[0]
    assert "Traceback" not in r.stderr


def test_fast_engine_leaves_units_to_simpy(tmp_path):
    p = _profile(tmp_path / "t.npz", np.full(10, 100))
    sc = scenario_from_dict(_local(p, {"npu": [1, 1], "cpu": [2, 2]}))
    assert "units" in (scenario_why_not(sc) or "")
    assert isinstance(sc.catalogue()["soc"], DeviceSpec)


@pytest.mark.parametrize("rate, faster", [(4, "gpu"), (20, "split")])
def test_shipped_phone_gpu_alone_wins_light_load_and_the_split_wins_heavy(rate, faster):
    """scenarios/on_device_units.yaml: one unit is fastest for a lone request, a two-unit pipeline has more
    throughput, so the placement that wins flips with the load (the figures in the README's table)."""
    from simulator.config import load_scenario

    lat = {}
    for name, units in (("gpu", "{gpu: [1, 12]}"), ("split", "{gpu: [1, 8], big: [9, 12]}")):
        sc = load_scenario(REPO / "scenarios" / "on_device_units.yaml",
                           [f"tiers.mobile.units={units}", f"workload.rate_per_s={rate}", "workload.requests=1500",
                            "replications=1", "timeline=false"])
        lat[name] = simulate(sc, "all-mobile").requests["latency_ms"].mean()
    other = "split" if faster == "gpu" else "gpu"
    assert lat[faster] < 0.8 * lat[other]


def test_a_policys_own_placement_equals_the_tiers(tmp_path):
    """``{name: all-mobile, units: {mobile: {...}}}`` runs exactly as the scenario with that tier placement,
    and the resolved config keeps it (a run folder's config.yaml rebuilds the run)."""
    p = _profile(tmp_path / "t.npz", np.full(10, 100))
    own = {"name": "all-mobile", "label": "gpu-cpu", "units": {"mobile": {"npu": [1, 1], "cpu": [2, 2]}}}
    raw = _local(p, None)
    raw["policies"] = ["all-mobile", own]
    sc = scenario_from_dict(raw)
    tier = scenario_from_dict(_local(p, {"npu": [1, 1], "cpu": [2, 2]}))
    a = simulate(sc, own).requests
    b = simulate(tier, "all-mobile").requests
    assert (a["finish_s"].to_numpy() == b["finish_s"].to_numpy()).all()
    assert not (simulate(sc, "all-mobile").requests["finish_s"].to_numpy() == a["finish_s"].to_numpy()).all()
    again = scenario_from_dict(sc.resolved())
    assert again.policies[1]["units"] == own["units"]
    assert (simulate(again, again.policies[1]).requests["finish_s"].to_numpy() == a["finish_s"].to_numpy()).all()


@pytest.mark.parametrize("units, message", [
    ({"edge": {"npu": [1, 2]}}, r"unknown tier 'edge' at 'policies\[1\]\(x\)\.units'"),
    ({"mobile": {"npux": [1, 2]}}, r"unknown unit 'npux' at 'policies\[1\]\(x\)\.units\.mobile'.*did you mean 'npu'"),
    ({"mobile": {"npu": [1, 5]}}, r"'policies\[1\]\(x\)\.units\.mobile\.npu' \[1, 5\] is outside the model's layers"),
    ({"mobile": [1, 2]}, r"'policies\[1\]\(all-mobile\)\.units\.mobile' must be a mapping"),
])
def test_bad_policy_placement_is_one_clear_error(tmp_path, units, message):
    p = _profile(tmp_path / "t.npz", np.full(10, 100))
    raw = _local(p, None)
    raw["policies"] = ["all-mobile", {"name": "all-mobile", "label": "x", "units": units}]
    with pytest.raises(ConfigError, match=message):
        scenario_from_dict(raw)


def test_a_class_based_on_another_changes_one_unit_and_keeps_the_rest():
    """``base:`` merges mappings at every depth: overriding one unit's speed keeps its power and source."""
    cat = resolve_catalogue({"fast-gpu": {"base": "galaxy-s20-units", "units": {"gpu": {"speed": 3.0}}}})
    gpu, ref = cat["fast-gpu"].units["gpu"], cat["galaxy-s20-units"].units["gpu"]
    assert gpu.speed == 3.0 and gpu.power_active_w == ref.power_active_w > 0 and gpu.source == ref.source
    assert list(cat["fast-gpu"].units) == ["big", "little", "gpu"]
