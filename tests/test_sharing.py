"""Shared links: processor sharing against closed forms and hand-computed schedules."""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from simulator.bandwidth import BandwidthPath, Constant
from simulator.sharing import SharedLink
from simulator.streams import stream

MB = 1_000_000  # bytes; 8 Mbit/s carries one MB per second


def _path(*steps: tuple[float, float]) -> BandwidthPath:
    return BandwidthPath(iter([*steps, (1e12, steps[-1][1])]))


def _run(link: SharedLink, jobs: list[tuple[float, float, int]]) -> list[float]:
    """Start each (at_s, nbytes, user); return each job's completion time (after propagation)."""
    env, done = link.env, [0.0] * len(jobs)

    def send(i, at, nbytes, user):
        yield env.timeout(at)
        yield from link.transmit(nbytes, user)
        done[i] = env.now

    for i, (at, nbytes, user) in enumerate(jobs):
        env.process(send(i, at, nbytes, user))
    env.run()
    return done


@pytest.mark.parametrize("n", [1, 2, 5, 16])
def test_equal_transfers_together_finish_at_n_s_over_c(n):
    env = simpy.Environment()
    link = SharedLink(env, "cell", Constant(mbps=8.0).realise(np.random.default_rng(0)), latency_s=0.01)
    done = _run(link, [(0.0, 0.5 * MB, 0)] * n)
    assert done == pytest.approx([n * 0.5 + 0.01] * n, rel=1e-12)  # N S / C + propagation
    assert link.busy_s == pytest.approx(n * 0.5)


def test_staggered_starts_match_hand_schedule():
    # C = 1 MB/s. A (1 MB) at 0 alone until 0.5 (0.5 MB left); B (0.25 MB) joins: 0.5 MB/s each;
    # at 0.75 A has 0.375, B 0.125 left; C (0.5 MB) joins: 1/3 MB/s each; B ends at 0.75 + 0.375 = 1.125;
    # A 0.25, C 0.375 left at 0.5 MB/s: A ends at 1.625; C has 0.125 left alone: ends at 1.75.
    env = simpy.Environment()
    link = SharedLink(env, "cell", _path((1e9, 8.0)), latency_s=0.0)
    done = _run(link, [(0.0, MB, 0), (0.5, 0.25 * MB, 0), (0.75, 0.5 * MB, 0)])
    assert done == pytest.approx([1.625, 1.125, 1.75], rel=1e-12)


def test_capacity_step_is_exact_without_replanning():
    # 8 Mbit/s for 1 s then 16: two 1 MB transfers have 0.5 MB left each at t=1, then 1 MB/s each.
    env = simpy.Environment()
    link = SharedLink(env, "cell", _path((1.0, 8.0), (1e9, 16.0)), latency_s=0.0)
    assert _run(link, [(0.0, MB, 0), (0.0, MB, 1)]) == pytest.approx([1.5, 1.5], rel=1e-12)


def test_weighted_by_channel_quality():
    # qualities 3:1 on 1 MB/s: user 0 at 0.75 MB/s ends at 4/3; user 1 has 2/3 MB left then, alone: 2.0.
    env = simpy.Environment()
    q = [_path((1e9, 3.0)), _path((1e9, 1.0))]
    link = SharedLink(env, "cell", _path((1e9, 8.0)), latency_s=0.0, quality=q)
    assert _run(link, [(0.0, MB, 0), (0.0, MB, 1)]) == pytest.approx([4 / 3, 2.0], rel=1e-12)


def test_quality_step_replans():
    # qualities 1:1 until 0.5 (0.25 MB each), then 3:1: user 0 has 0.75 MB at 0.75 MB/s -> ends 1.5;
    # user 1 has 0.75 - 0.25 = 0.5 MB left at 1.5, alone -> 2.0.
    env = simpy.Environment()
    q = [_path((0.5, 1.0), (1e9, 3.0)), _path((1e9, 1.0))]
    link = SharedLink(env, "cell", _path((1e9, 8.0)), latency_s=0.0, quality=q)
    assert _run(link, [(0.0, MB, 0), (0.0, MB, 1)]) == pytest.approx([1.5, 2.0], rel=1e-12)


@pytest.mark.parametrize("dist", ["deterministic", "hyperexponential"])
def test_mg1_ps_mean_sojourn_is_insensitive(dist):
    """M/G/1-PS: E[T] = E[S] / (1 - rho) whatever the size law (FIFO would give 1.5 and 3.0 E[S])."""
    rho, mean_s, n = 0.5, 0.1, 40_000
    rng = stream(10, 0, 99, 0 if dist == "deterministic" else 1)
    gaps = rng.exponential(mean_s / rho, n)
    if dist == "deterministic":
        sizes = np.full(n, mean_s)
    else:  # balanced two-phase hyperexponential, squared CV 3
        p = 0.5 * (1 + np.sqrt(2 / 4))
        fast = rng.random(n) < p
        sizes = np.where(fast, rng.exponential(mean_s / (2 * p), n), rng.exponential(mean_s / (2 * (1 - p)), n))
        assert sizes.mean() == pytest.approx(mean_s, rel=0.03)
    env = simpy.Environment()
    link = SharedLink(env, "cell", Constant(mbps=8.0).realise(np.random.default_rng(0)), latency_s=0.0)
    arrivals = np.cumsum(gaps)
    done = _run(link, [(a, s * MB, 0) for a, s in zip(arrivals, sizes, strict=True)])
    sojourn = np.asarray(done) - arrivals
    warm = n // 10
    assert sojourn[warm:].mean() == pytest.approx(mean_s / (1 - rho), rel=0.06)


def _cell(profile, count: int, shared: bool, **link) -> dict:
    return {
        "name": "cell", "profile": str(profile), "seed": 3,
        "tiers": {"mobile": {"device": "phone-cpu", "layers": [1, 1], "count": count},
                  "edge": {"device": "jetson-orin", "layers": [2, 6]}},
        "links": {"uplink": {"rtt_ms": 20, "shared": shared, "bandwidth": {"model": "constant", "mbps": 4},
                             **link}},
        "workload": {"arrival": "deterministic" if count == 1 else "poisson", "rate_per_s": 4, "requests": 200},
        "policies": [{"name": "fixed-split", "split": 1}],
    }


def test_one_phone_without_overlap_is_a_private_link(synth_profile):
    from simulator.config import scenario_from_dict
    from simulator.engine import simulate

    a = simulate(scenario_from_dict(_cell(synth_profile, 1, False)), {"name": "fixed-split", "split": 1})
    b = simulate(scenario_from_dict(_cell(synth_profile, 1, True)), {"name": "fixed-split", "split": 1})
    assert b.requests["latency_ms"].to_numpy() == pytest.approx(a.requests["latency_ms"].to_numpy(), rel=1e-9)


def test_sharing_slows_phones_and_conserves_bytes(synth_profile):
    from simulator.config import scenario_from_dict
    from simulator.engine import simulate

    spec = {"name": "fixed-split", "split": 1}
    priv = simulate(scenario_from_dict(_cell(synth_profile, 8, False)), spec)
    shared = simulate(scenario_from_dict(_cell(synth_profile, 8, True)), spec, record_timeline=True)
    assert shared.requests["transfer_s"].mean() > 1.5 * priv.requests["transfer_s"].mean()
    dev = shared.devices
    users = dev[(dev["tier"] == "uplink") & dev["mean_active"].isna()]
    assert len(users) == 16  # 8 phones x 2 directions
    assert users["bytes"].sum() == pytest.approx(priv.devices[priv.devices["tier"] == "uplink"]["bytes"].sum())
    tl = shared.timeline
    active = tl[(tl["series"] == "active_transfers") & (tl["entity"] == "uplink")]["value"]
    assert active.max() >= 2 and active.iloc[-1] == 0


def test_a_shared_link_has_its_own_row_from_its_active_transfers(synth_profile):
    from simulator.config import scenario_from_dict
    from simulator.engine import simulate

    res = simulate(scenario_from_dict(_cell(synth_profile, 8, True)), {"name": "fixed-split", "split": 1},
                   record_timeline=True)
    dev = res.devices.set_index("device")
    cell, end = dev.loc["uplink"], dev.loc["uplink", "end_s"]
    up_users = dev[dev.index.str.startswith("uplink[")]
    assert cell["tier"] == "uplink" and cell["bytes"] == pytest.approx(up_users["bytes"].sum(), rel=1e-9)
    # the users' transmission times overlap: their sum exceeds the time the cell had a transfer active
    assert cell["busy_s"] < up_users["busy_s"].sum()
    # busy time and mean active transfers, integrated independently from the timeline's step series
    tl = res.timeline
    a = tl[(tl["series"] == "active_transfers") & (tl["entity"] == "uplink")].sort_values("time_s", kind="stable")
    t, n = a["time_s"].to_numpy(), a["value"].to_numpy()
    dt = np.diff(np.append(t, end))
    assert cell["busy_s"] == pytest.approx(dt[n > 0].sum(), rel=1e-9)
    assert cell["mean_active"] == pytest.approx((n * dt).sum() / end, rel=1e-9)
    down_users = dev[dev.index.str.startswith("uplink-down[")]
    assert dev.loc["uplink-down", "bytes"] == pytest.approx(down_users["bytes"].sum())


def test_quality_on_a_private_link_is_one_clear_error(synth_profile):
    from simulator.config import scenario_from_dict
    from simulator.errors import ConfigError

    with pytest.raises(ConfigError, match=r"'links.uplink.quality'.*shared: true"):
        scenario_from_dict(_cell(synth_profile, 2, False, quality={"model": "constant", "mbps": 1}))
    sc = scenario_from_dict(_cell(synth_profile, 2, True, quality={"model": "lognormal", "mean_mbps": 1}))
    assert sc.links["uplink"].quality is not None
