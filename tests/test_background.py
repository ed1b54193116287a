"""Background load against queueing theory: M/M/1 and M/D/1 alone, and the M/G/1 wait it adds to requests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import simpy
from conftest import linear_profile

from simulator.background import BackgroundSpec, run_background
from simulator.config import scenario_from_dict
from simulator.device import Device, builtin_catalogue
from simulator.engine import Simulation, simulate
from simulator.errors import ConfigError


def _alone(dist: str, rate: float = 20.0, service_ms: float = 25.0, horizon: float = 5000.0):
    env = simpy.Environment()
    dev = Device(env, "edge0", 1, builtin_catalogue()["profile-host"])
    waits: list[float] = []
    spec = BackgroundSpec(rate_per_s=rate, service_ms=service_ms, dist=dist)
    env.process(run_background(env, dev.serve, spec, np.random.default_rng(7), horizon, waits))
    env.run()
    dev.finish()
    return dev.busy_s / env.now, float(np.mean(waits[len(waits) // 20:])), len(waits)


def test_mm1_utilisation_and_wait():
    util, wait, n = _alone("exponential")  # rho = 20 * 0.025 = 0.5
    assert n == pytest.approx(100_000, rel=0.02)
    assert util == pytest.approx(0.5, abs=0.01)
    assert wait == pytest.approx(0.5 / (40 - 20), rel=0.06)  # M/M/1: rho / (mu - lambda) = 25 ms


def test_md1_wait():
    util, wait, _ = _alone("deterministic")
    assert util == pytest.approx(0.5, abs=0.01)
    assert wait == pytest.approx(0.5 * 0.025 / (2 * 0.5), rel=0.05)  # M/D/1: rho S / 2(1 - rho) = 12.5 ms


def _profile(path: Path) -> Path:
    """8 requests of 10 tokens, 5 ms per layer at speed 1 (a request: 10 ms)."""
    return linear_profile(path, np.full(8, 10), ms_per_token=1.0)


def _scenario(tmp_path: Path, background: dict | None, requests: int = 20000):
    tier = {"device": "profile-host", "layers": [1, 2]}
    if background is not None:
        tier["background"] = background
    return scenario_from_dict({
        "name": "bg", "profile": str(_profile(tmp_path / "p.npz")), "seed": 2, "timeline": False,
        "tiers": {"edge": tier}, "links": {},
        "workload": {"arrival": "poisson", "rate_per_s": 20, "requests": requests},
        "policies": ["all-mobile"]})


def test_requests_see_the_mg1_wait_of_the_mixed_stream(tmp_path):
    # requests: 20/s x 10 ms (deterministic); background: 20/s x 15 ms exponential; rho = 0.2 + 0.3
    bg = {"rate_per_s": 20, "service_ms": 15, "dist": "exponential"}
    alone = simulate(_scenario(tmp_path, None), "all-mobile")
    mixed = simulate(_scenario(tmp_path, bg), "all-mobile")
    w_alone = alone.requests["queue_s_edge"].mean()
    w_mixed = mixed.requests["queue_s_edge"].mean()
    assert w_alone == pytest.approx(20 * 0.01**2 / (2 * 0.8), rel=0.08)  # M/D/1: 1.25 ms
    pk = (20 * 0.01**2 + 20 * 2 * 0.015**2) / (2 * (1 - 0.5))  # Pollaczek-Khinchine: 11 ms
    assert w_mixed == pytest.approx(pk, rel=0.08)
    end = mixed.devices.set_index("device").loc["edge0"]
    assert end["busy_s"] / end["end_s"] == pytest.approx(0.5, abs=0.015)
    # requests are the same (same streams): only their waits changed
    assert (alone.requests["arrival_s"] == mixed.requests["arrival_s"]).all()


def test_policies_see_background_jobs_in_the_queue_length(tmp_path):
    sc = _scenario(tmp_path, {"rate_per_s": 30, "service_ms": 25, "dist": "deterministic"}, requests=10)
    sim = Simulation(sc, "all-mobile")
    sim.live.start(200.0)
    seen = []
    for t in np.arange(1.0, 200.0, 0.5):
        sim.env.run(until=float(t))
        seen.append(sim.view.queue_length(0, 0))
    assert max(seen) >= 2 and np.mean(seen) > 0.5  # rho = 0.75: L = rho + rho^2 / 2(1 - rho) = 1.875


@pytest.mark.parametrize("bg, needle", [
    ({"rate_per_s": 5, "service_ms": 10, "dist": "pareto"},
     "unknown service time distribution 'pareto' at 'tiers.edge.background.dist'"),
    ({"rate_per_s": 0, "service_ms": 10}, "'tiers.edge.background.rate_per_s' must be positive"),
    ({"rate_per_s": 5}, "missing required key 'tiers.edge.background.service_ms'"),
])
def test_bad_background_is_one_clear_error(tmp_path, bg, needle):
    with pytest.raises(ConfigError) as e:
        _scenario(tmp_path, bg)
    assert needle in str(e.value) and "\n" not in str(e.value)
