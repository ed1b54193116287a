"""RC thermal model against its closed form, and throttling slowing work by the right factor."""

from __future__ import annotations

import math

import numpy as np
import pytest
import simpy

from simulator.device import Device, DeviceSpec
from simulator.thermal import ThermalSpec, ThermalState


def test_temperature_matches_ode_solution_under_constant_power():
    spec = ThermalSpec(enabled=True, resistance_k_per_w=10.0, capacitance_j_per_k=20.0, ambient_c=25.0)
    st = ThermalState(spec)
    # integrate C dT/dt = P - (T - Ta)/R numerically with small Euler steps
    temp, dt, power = 25.0, 0.001, 3.0
    for _ in range(int(150 / dt)):
        temp += dt * (power - (temp - 25.0) / 10.0) / 20.0
    for t in (10.0, 50.0, 150.0):
        st.advance(t, power)  # advancing in pieces must equal one closed-form step
    assert st.temp_c == pytest.approx(temp, abs=0.01)
    assert st.temp_c == pytest.approx(55 - 30 * math.exp(-150 / 200), abs=1e-9)


def test_trip_and_hysteresis():
    spec = ThermalSpec(enabled=True, resistance_k_per_w=10.0, capacitance_j_per_k=10.0, ambient_c=25.0,
                       trips=[[40.0, 0.5]], hysteresis_c=5.0)
    st = ThermalState(spec)
    t_trip = st.time_to_change(3.0)  # Tss = 55: reach 40 at tau ln(30/15)
    assert t_trip == pytest.approx(100 * math.log(2))
    st.advance(t_trip, 3.0)
    assert st.frequency == 0.5
    # cool at zero power: stays throttled until below 35 C
    t_cool = st.time_to_change(0.0)
    assert t_cool == pytest.approx(100 * math.log(15 / 10))
    st.advance(t_trip + t_cool * 0.99, 0.0)
    assert st.frequency == 0.5
    st.advance(t_trip + t_cool, 0.0)
    assert st.frequency == 1.0


def _device(env, thermal: ThermalSpec, idle=0.0, active=3.0) -> Device:
    spec = DeviceSpec(speed=1.0, servers=1, power_idle_w=idle, power_active_w=active, power_exponent=0.0,
                      thermal=thermal)
    return Device(env, "d", 0, spec)


def test_throttled_device_finishes_later_by_the_right_factor():
    spec = ThermalSpec(enabled=True, resistance_k_per_w=10.0, capacitance_j_per_k=10.0, ambient_c=25.0,
                       trips=[[40.0, 0.5]], hysteresis_c=5.0)
    env = simpy.Environment()
    dev = _device(env, spec)  # power_exponent 0: power stays 3 W when throttled, so Tss = 55 C
    work = 200.0
    done = {}

    def job():
        yield from dev.compute(work)
        done["t"] = env.now

    env.process(job())
    env.run()
    t_trip = 100 * math.log(2)
    assert done["t"] == pytest.approx(t_trip + (work - t_trip) / 0.5, rel=1e-9)
    # the same work without throttling takes exactly `work`
    env2 = simpy.Environment()
    dev2 = _device(env2, ThermalSpec(enabled=False))
    env2.process(dev2.compute(work))
    env2.run()
    assert env2.now == pytest.approx(work)


def test_energy_is_power_times_busy_time():
    env = simpy.Environment()
    dev = _device(env, ThermalSpec(enabled=False), idle=0.5, active=4.0)
    got = []

    def job(start, work):
        yield env.timeout(start - env.now)
        with dev.resource.request() as r:
            yield r
            got.append((yield from dev.compute(work)))

    for s, w in ((1.0, 2.0), (2.0, 3.0), (10.0, 1.0)):
        env.process(job(s, w))
    env.run(until=20.0)
    dev.finish()
    busy = 6.0
    assert dev.busy_s == pytest.approx(busy)
    assert dev.energy_j == pytest.approx(4.0 * busy + 0.5 * (20.0 - busy))
    assert got == pytest.approx([8.0, 12.0, 4.0])


def test_multi_server_power_scales_with_busy_servers():
    env = simpy.Environment()
    spec = DeviceSpec(servers=4, power_idle_w=10.0, power_active_w=50.0)
    dev = Device(env, "g", 0, spec)
    assert dev.power_w(busy=2) == pytest.approx(30.0)
    assert dev.request_power_w() == pytest.approx(12.5)
    assert np.isnan(dev.temperature_c)


def _reference_two_servers(jobs, spec: DeviceSpec, h: float = 2e-4):
    """Fixed-step integration of a throttling multi-server device (exact RC step at constant power, the
    frequency re-evaluated every step): finish time and joules of each (start_s, work_s) job."""
    th = spec.thermal
    state = ThermalState(th, 0.0)
    temp, level = state.temp_c, state.level
    trips = th.trips
    left = [w for _, w in jobs]
    energy = [0.0] * len(jobs)
    finish = [None] * len(jobs)
    t = 0.0
    dyn = spec.power_active_w - spec.power_idle_w
    while any(f is None for f in finish):
        f = trips[level - 1][1] if level else 1.0
        active = [i for i, (s, _) in enumerate(jobs) if s <= t + 1e-12 and finish[i] is None]
        p = spec.power_idle_w + dyn * len(active) / spec.servers * f ** spec.power_exponent
        p_req = (spec.power_idle_w + dyn * f ** spec.power_exponent) / spec.servers
        for i in active:
            if left[i] <= h * f:  # ends inside this step
                finish[i] = t + left[i] / f
                energy[i] += p_req * left[i] / f
            else:
                energy[i] += p_req * h
            left[i] -= h * f
        ss = th.ambient_c + p * th.resistance_k_per_w
        temp = ss + (temp - ss) * math.exp(-h / th.tau_s)
        while level < len(trips) and temp >= trips[level][0]:
            level += 1
        while level > 0 and temp <= trips[level - 1][0] - th.hysteresis_c:
            level -= 1
        t += h
    return finish, energy


def test_multi_server_throttling_replans_every_server_at_each_frequency_change():
    """Two jobs on a 2-server throttling device whose frequency keeps changing as the other server
    starts and ends: each job's finish and energy match a fine integration of the exact model."""
    spec = DeviceSpec(servers=2, power_idle_w=1.0, power_active_w=10.0, power_exponent=3.0,
                      thermal=ThermalSpec(enabled=True, resistance_k_per_w=2.0, capacitance_j_per_k=10.0,
                                          ambient_c=25.0, trips=[[35.0, 0.5]], hysteresis_c=2.0))
    jobs = [(0.0, 60.0), (5.0, 20.0)]
    env = simpy.Environment()
    dev = Device(env, "d", 0, spec)
    out = {}

    def job(i, start, work):
        yield env.timeout(start)
        out[i] = (yield from dev.serve(work)), env.now

    for i, (s, w) in enumerate(jobs):
        env.process(job(i, s, w))
    env.run()
    ref_finish, ref_energy = _reference_two_servers(jobs, spec)
    for i in range(len(jobs)):
        service, t = out[i]
        assert t == pytest.approx(ref_finish[i], abs=0.02), i
        assert service.energy_j == pytest.approx(ref_energy[i], rel=2e-3), i
    # the frequency really changes while both run (else re-planning would not matter)
    assert ref_finish[0] > 60.0 * 1.1 and ref_finish[1] - 5.0 > 20.0 * 1.1
