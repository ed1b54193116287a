"""Engine speed: requests per second of the SimPy engine, of the fast engine, and of a bare SimPy model.

Printed in one run (machines here are noisy, so compare ratios within it):

1. the SimPy engine and the fast engine on the same simulation (same scenario, policy, seed), on the
   default scenario and on a 100,000-request run, with their ratio. Both produce the same records; the
   fast engine is timed twice, for the simulation and its summary arrays (what a sweep uses) and with
   the per-request table built too (what ``run`` writes). Its compiled kernels are warmed up first;
2. the SimPy engine against a bare SimPy model of the same hops with the engine's structure (a Resource
   per device, one timeout per link direction and transfer, service times taken from the engine's own
   records), so the ratio is the cost of everything the engine adds;
3. the shared-cell case (SimPy only): 16 phones on one shared cell vs 16 private links.

    python benchmarks/engine.py [--repeat 3] [--big 100000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import simpy

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simulator.config import load_scenario  # noqa: E402
from simulator.engine import Simulation  # noqa: E402
from simulator.engine import simulate as simulate_simpy  # noqa: E402
from simulator.fast.engine import simulate as simulate_fast  # noqa: E402
from simulator.streams import ARRIVALS, stream  # noqa: E402
from simulator.workload import arrival_times  # noqa: E402

FULL_PATH = {"name": "threshold", "label": "full-path", "thresholds": {}}  # every request visits every hop
THRESHOLD = {"name": "threshold", "label": "threshold-0.9", "thresholds": 0.9}


def bare_model(sc, records) -> float:
    """Same arrivals and hops as the engine, the engine's structure in plain SimPy; returns wall seconds."""
    env = simpy.Environment()
    n_m = sc.tiers["mobile"].count
    catalogue = sc.catalogue()
    phones = [simpy.Resource(env, 1) for _ in range(n_m)]
    edge = simpy.Resource(env, catalogue[sc.tiers["edge"].device].servers)
    cloud = simpy.Resource(env, catalogue[sc.tiers["cloud"].device].servers)
    lat_up, lat_back = sc.links["uplink"].rtt_ms / 2e3, sc.links["backhaul"].rtt_ms / 2e3
    by_id = records.set_index("request_id")
    c_m, c_e, c_c = (by_id[f"compute_s_{t}"].to_numpy() for t in ("mobile", "edge", "cloud"))
    tx = (by_id["transfer_s"].to_numpy() - 2 * (lat_up + lat_back)) / 4
    free: dict[str, float] = {}

    def device(res, service):
        with res.request() as r:
            yield r
            yield env.timeout(service)

    def link(name, service, latency):  # FIFO by the time the channel frees, one timeout (as Channel)
        start = max(env.now, free.get(name, 0.0))
        free[name] = start + service
        yield env.timeout(start + service - env.now + latency)

    def serve(i, m):
        yield from device(phones[m], c_m[i])
        yield from link(f"up{m}", tx[i], lat_up)
        yield from device(edge, c_e[i])
        yield from link("back", tx[i], lat_back)
        yield from device(cloud, c_c[i])
        yield from link("back-down", tx[i], lat_back)
        yield from link(f"down{m}", tx[i], lat_up)

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


def timed(fn, repeat: int) -> tuple[float, object]:
    walls, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        walls.append(time.perf_counter() - t0)
    return statistics.median(walls), out


def engines(sc, policy, repeat: int, label: str) -> None:
    """SimPy vs fast engine on one simulation: requests/s and ratios."""
    simulate_fast(sc, policy, 0)  # compile / load the kernels
    t_simpy, ref = timed(lambda: simulate_simpy(sc, policy, 0).requests, repeat)
    t_fast, res = timed(lambda: simulate_fast(sc, policy, 0).records.summary_arrays(), repeat)
    t_table, got = timed(lambda: simulate_fast(sc, policy, 0).requests, repeat)
    n = len(ref)
    same = bool((ref["finish_s"].to_numpy() == got["finish_s"].to_numpy()).all())
    print(f"{label}: {n} requests, policy {policy['label']}, median of {repeat}")
    print(f"  SimPy engine            : {n / t_simpy:12.0f} requests/s  ({t_simpy * 1e3:8.1f} ms)")
    print(f"  fast engine, summaries  : {n / t_fast:12.0f} requests/s  ({t_fast * 1e3:8.1f} ms)  "
          f"{t_simpy / t_fast:5.1f}x")
    print(f"  fast engine, + table    : {n / t_table:12.0f} requests/s  ({t_table * 1e3:8.1f} ms)  "
          f"{t_simpy / t_table:5.1f}x   (finish times bit-identical: {same})")


def bare(sc, repeat: int) -> None:
    t_full, res = timed(lambda: Simulation(sc, FULL_PATH).run(), repeat)
    t_bare = statistics.median(bare_model(sc, res.requests) for _ in range(repeat))
    n = len(res.requests)
    print(f"SimPy engine vs a bare SimPy model of the same 7 hops ({n} requests, median of {repeat}):")
    print(f"  SimPy engine: {n / t_full:10.0f} requests/s   bare SimPy: {n / t_bare:10.0f} requests/s   "
          f"engine/bare time: {t_full / t_bare:.2f}x")


def shared_cell(requests: int, repeat: int) -> None:
    """Requests/s with 16 phones sharing one cell uplink vs 16 private uplinks (scenarios/shared_cell.yaml)."""
    rates = {}
    for shared in (True, False):
        sc = load_scenario("scenarios/shared_cell.yaml", [
            f"workload.requests={requests}", "timeline=false", "tiers.mobile.count=16",
            f"links.uplink.shared={str(shared).lower()}"])
        t, res = timed(lambda sc=sc: Simulation(sc, {"name": "fixed-split", "split": 2}).run(), repeat)
        rates[shared] = len(res.requests) / t
    print(f"shared_cell (SimPy engine), 16 phones, split-2, {requests} requests, median of {repeat}:")
    print(f"  one shared cell: {rates[True]:10.0f} requests/s   16 private links: {rates[False]:10.0f} requests/s"
          f"   ({rates[False] / rates[True]:.2f}x)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--big", type=int, default=100_000)
    args = ap.parse_args()
    default = load_scenario("scenarios/default.yaml", ["timeline=false"])
    engines(default, THRESHOLD, args.repeat, "default scenario")
    big = load_scenario("scenarios/default.yaml", [f"workload.requests={args.big}", "timeline=false"])
    engines(big, THRESHOLD, 1, f"default scenario, {args.big} requests")
    thermal = load_scenario("scenarios/thermal.yaml", ["timeline=false"])
    engines(thermal, {"name": "all-mobile", "label": "all-mobile"}, 1, "thermal scenario (throttling phone)")
    bare(load_scenario("scenarios/default.yaml", ["workload.requests=4000", "timeline=false"]), args.repeat)
    shared_cell(4000, args.repeat)


if __name__ == "__main__":
    main()
