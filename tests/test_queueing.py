"""The engine against queueing theory: M/D/1, M/G/1 (Pollaczek-Khinchine), M/M/1, Little's law, tandem.

A single-tier scenario with the profile host device (speed 1) and ``all-mobile`` makes each mobile a
FIFO single-server queue whose service time is the profile's compute time at the request's token
count, so the service-time distribution is known exactly from the profile.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import linear_profile

from simulator.config import scenario_from_dict
from simulator.engine import Simulation, simulate
from simulator.topology import compute_table

_profile = linear_profile  # ms_per_token * tokens ms per request at speed 1 (conftest.py)


def _scenario(profile: Path, rate: float, requests: int, seed: int = 1, **extra) -> dict:
    sc = {
        "name": "queue", "profile": str(profile), "seed": seed,
        "tiers": {"mobile": {"device": "profile-host", "layers": [1, 2]}},
        "links": {}, "workload": {"arrival": "poisson", "rate_per_s": rate, "requests": requests},
        "policies": ["all-mobile"], "timeline": False,
    }
    sc.update(extra)
    return sc


def _service_moments(profile_path: Path, sc) -> tuple[float, float]:
    sim = Simulation(sc, "all-mobile")
    t = compute_table(sim.profile, "eval", sc.catalogue()["profile-host"])
    s = t.layer_s.sum(axis=1) + t.head_s + t.embed_s
    return float(s.mean()), float((s**2).mean())


def _mean_wait(sc) -> float:
    df = simulate(sc, "all-mobile").requests
    df = df[df["arrival_s"] > 5.0]  # drop the empty-start transient
    return float(df["queue_s_mobile"].mean())


def _pk_wait(rate: float, es: float, es2: float) -> float:
    rho = rate * es
    return rate * es2 / (2 * (1 - rho))


def test_md1_mean_wait(tmp_path):
    p = _profile(tmp_path / "d.npz", np.full(50, 100))  # service exactly 10 ms
    rate = 70.0  # rho = 0.7
    sc = scenario_from_dict(_scenario(p, rate, 60_000))
    es, es2 = _service_moments(p, sc)
    assert es == pytest.approx(0.010)
    expected = _pk_wait(rate, es, es2)  # M/D/1: rho S / (2 (1 - rho)) = 11.67 ms
    mm1 = rate * es**2 / (1 - rate * es)  # what an exponential-service model would predict (2x)
    got = _mean_wait(sc)
    assert got == pytest.approx(expected, rel=0.06)
    assert abs(got - mm1) > 0.3 * mm1


def test_mg1_pollaczek_khinchine(tmp_path):
    rng = np.random.default_rng(0)
    p = _profile(tmp_path / "g.npz", rng.integers(20, 181, 400))  # service 2..18 ms, uniform
    sc = scenario_from_dict(_scenario(p, 60.0, 60_000))
    es, es2 = _service_moments(p, sc)
    rho = 60.0 * es
    assert 0.5 < rho < 0.8
    got = _mean_wait(sc)
    assert got == pytest.approx(_pk_wait(60.0, es, es2), rel=0.07)


def test_mm1_like_exponential_service(tmp_path):
    rng = np.random.default_rng(1)
    tokens = np.maximum(1, np.round(rng.exponential(100, 4000))).astype(int)  # ~ exponential 10 ms
    p = _profile(tmp_path / "m.npz", tokens)
    rate = 60.0
    sc = scenario_from_dict(_scenario(p, rate, 80_000))
    es, es2 = _service_moments(p, sc)
    got = _mean_wait(sc)
    assert got == pytest.approx(_pk_wait(rate, es, es2), rel=0.08)
    rho = rate * es
    assert got == pytest.approx(rho * es / (1 - rho), rel=0.12)  # the M/M/1 closed form


def test_littles_law_on_device_queue(tmp_path):
    rng = np.random.default_rng(2)
    p = _profile(tmp_path / "l.npz", rng.integers(20, 181, 300))
    sc = scenario_from_dict(_scenario(p, 50.0, 20_000))
    sim = Simulation(sc, "all-mobile", record_timeline=True)
    res = sim.run()
    df = res.requests
    a = np.asarray(sim.live.devices[0][0].trace)
    t, n = a[:, 0], a[:, 1]
    area = float(np.sum(n[:-1] * np.diff(t)))  # number in system is a step function of time
    horizon = t[-1] - t[0]
    mean_in_system = area / horizon
    sojourn = (df["queue_s_mobile"] + df["compute_s_mobile"]).to_numpy()
    lam = len(df) / horizon
    assert mean_in_system == pytest.approx(lam * sojourn.mean(), rel=0.01)


def test_tandem_deterministic_stations(tmp_path):
    """Two FIFO stations in series, deterministic service, the second faster: the second never waits,
    so end-to-end delay = M/D/1 wait at the first + both services + the fixed transfer."""
    p = _profile(tmp_path / "t.npz", np.full(20, 100))
    raw = _scenario(p, 60.0, 40_000)
    raw["tiers"] = {"mobile": {"device": "profile-host", "layers": [1, 1]},
                    "edge": {"device": "fast", "layers": [2, 2]}}
    raw["devices"] = {"fast": {"base": "profile-host", "speed": 2.0}}
    raw["links"] = {"uplink": {"rtt_ms": 4.0, "bandwidth": {"model": "constant", "mbps": 1e6}}}
    raw["payload"] = {"header_bytes": 0, "reply_bytes": 0}
    raw["policies"] = [{"name": "threshold", "thresholds": {}}]
    sc = scenario_from_dict(raw)
    df = simulate(sc, sc.policies[0]).requests
    df = df[df["arrival_s"] > 5.0]
    s1, s2 = 0.005, 0.0025  # 5 ms per layer at 100 tokens; the edge is twice as fast
    assert df["compute_s_mobile"].to_numpy() == pytest.approx(s1)
    assert df["compute_s_edge"].to_numpy() == pytest.approx(s2)
    assert df["queue_s_edge"].max() < 1e-9
    wait = _pk_wait(60.0, s1, s1**2)
    fixed = s1 + s2 + 2 * 0.002  # uplink and reply downlink each rtt/2 (transmission ~0)
    assert (df["latency_ms"].mean() / 1e3) == pytest.approx(wait + fixed, rel=0.05)
    assert df["queue_s_mobile"].mean() == pytest.approx(wait, rel=0.08)
