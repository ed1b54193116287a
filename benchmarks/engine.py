"""Engine speed: simulated requests per second of the full model vs a bare SimPy model of the same hops.

Both models see the same arrivals (same seed) and walk the same path per request: compute on the phone,
uplink, compute on the edge, backhaul, compute in the cloud, and the reply down both links (the full
model with a policy that never exits early). The bare model has FIFO resources and timeouts only, with
each hop's service time taken from the full model's own records, so the ratio is the cost of everything
the simulator adds (policy calls, bandwidth integration, thermal and energy accounting, records).

    python benchmarks/engine.py [scenario.yaml] [--repeat 3]

It also times the shared-link case: 16 phones on one shared cell (processor sharing) vs the same 16
phones on private links, same arrivals, one policy (``shared_cell``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import simpy

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simulator.config import load_scenario  # noqa: E402
from simulator.engine import Simulation  # noqa: E402
from simulator.runner import run_scenario  # noqa: E402
from simulator.streams import ARRIVALS, stream  # noqa: E402
from simulator.workload import arrival_times  # noqa: E402

FULL_PATH = {"name": "threshold", "label": "full-path", "thresholds": {}}


def bare_model(sc, records) -> float:
    """Same arrivals and hops as the full model, plain SimPy; returns wall seconds."""
    env = simpy.Environment()
    n_m = sc.tiers["mobile"].count
    phones = [simpy.Resource(env, 1) for _ in range(n_m)]
    ups = [simpy.Resource(env, 1) for _ in range(n_m)]
    downs = [simpy.Resource(env, 1) for _ in range(n_m)]
    edge = simpy.Resource(env, sc.catalogue()[sc.tiers["edge"].device].servers)
    back, back_down = simpy.Resource(env, 1), simpy.Resource(env, 1)
    cloud = simpy.Resource(env, sc.catalogue()[sc.tiers["cloud"].device].servers)
    lat_up = sc.links["uplink"].rtt_ms / 2e3
    lat_back = sc.links["backhaul"].rtt_ms / 2e3
    by_id = records.set_index("request_id")
    c_m, c_e, c_c = (by_id[f"compute_s_{t}"].to_numpy() for t in ("mobile", "edge", "cloud"))
    tx = (by_id["transfer_s"].to_numpy() - 4 * (lat_up + lat_back) / 2) / 4

    def hop(res, service, latency=0.0):
        with res.request() as r:
            yield r
            yield env.timeout(service)
        if latency:
            yield env.timeout(latency)

    def serve(i, m):
        yield from hop(phones[m], c_m[i])
        yield from hop(ups[m], tx[i], lat_up)
        yield from hop(edge, c_e[i])
        yield from hop(back, tx[i], lat_back)
        yield from hop(cloud, c_c[i])
        yield from hop(back_down, tx[i], lat_back)
        yield from hop(downs[m], tx[i], lat_up)

    counter = [0]

    def source(m, times):
        for t in times:
            yield env.timeout(t - env.now)
            i = counter[0]
            counter[0] += 1
            env.process(serve(i, m))

    wall = time.perf_counter()
    for m in range(n_m):
        env.process(source(m, arrival_times(sc.workload, m, n_m, stream(sc.seed, 0, ARRIVALS, m)).tolist()))
    env.run()
    return time.perf_counter() - wall


def shared_cell(requests: int, repeat: int) -> None:
    """Requests/s with 16 phones sharing one cell uplink vs 16 private uplinks (scenarios/shared_cell.yaml)."""
    rates = {}
    for shared in (True, False):
        sc = load_scenario("scenarios/shared_cell.yaml", [
            f"workload.requests={requests}", "timeline=false", "tiers.mobile.count=16",
            f"links.uplink.shared={str(shared).lower()}"])
        walls = []
        for _ in range(repeat):
            sim = Simulation(sc, {"name": "fixed-split", "split": 2})
            t0 = time.perf_counter()
            res = sim.run()
            walls.append(time.perf_counter() - t0)
        rates[shared] = len(res.requests) / statistics.median(walls)
    print(f"shared_cell, 16 phones, split-2, {requests} requests, median of {repeat}:")
    print(f"  one shared cell : {rates[True]:10.0f} requests/s")
    print(f"  16 private links: {rates[False]:10.0f} requests/s  (shared/private time per request: "
          f"{rates[False] / rates[True]:.2f}x)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", nargs="?", default="scenarios/default.yaml")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--requests", type=int, default=4000)
    args = ap.parse_args()
    sc = load_scenario(args.scenario, [f"workload.requests={args.requests}", "timeline=false"])

    full, bare = [], []
    for _ in range(args.repeat):
        sim = Simulation(sc, FULL_PATH)
        t0 = time.perf_counter()
        res = sim.run()
        full.append(time.perf_counter() - t0)
        bare.append(bare_model(sc, res.requests))
    n = len(res.requests)
    f, b = statistics.median(full), statistics.median(bare)
    print(f"scenario {args.scenario}: {n} requests per run, 7 hops each, median of {args.repeat}")
    print(f"  full model : {n / f:10.0f} requests/s  ({f * 1e3:.0f} ms per run, incl. building records)")
    print(f"  bare SimPy : {n / b:10.0f} requests/s  ({b * 1e3:.0f} ms per run)")
    print(f"  ratio full/bare time per request: {f / b:.2f}x  (goal <= 3x)")

    t0 = time.perf_counter()
    out = run_scenario(load_scenario(args.scenario))
    wall = time.perf_counter() - t0
    print(f"default scenario end to end ({len(out.requests)} requests over {len(sc.policies)} policies x "
          f"{out.scenario.replications} replications): {wall:.2f} s, {len(out.requests) / wall:.0f} requests/s")
    assert np.isfinite(out.summary["accuracy"]).all()
    shared_cell(args.requests, args.repeat)


if __name__ == "__main__":
    main()
