"""Sweep throughput and memory, on the SimPy engine and on ``engine: auto`` (the fast engine wherever it
gives the exact answer), measured in one run.

- conditions/s and simulated requests/s of a 200-condition sweep (the shipped LHS design, n=200,
  ~1,000 requests per simulation, 5 policies) at 1 and 2 workers, on both engines, and their ratio;
- the whole shipped scenarios/sweeps/lhs_2000.yaml on ``engine: auto`` at 2 workers (timed), and the
  time a 100,000-condition sweep of the same design takes at that rate;
- peak memory (max RSS of the parent and of the worker processes) of a sweep of 100 and of 2,000
  short conditions at 2 workers, each measured in a fresh process;
- a cProfile of a few runs.

    python benchmarks/sweep.py                 # everything (a few minutes on 2 cores)
    python benchmarks/sweep.py --conditions 50 # quicker
    python benchmarks/sweep.py --profile-path profiles/sst2-minilm6.npz

Without ``--profile-path`` the shipped SST-2 profile is used when present, else a synthetic profile
(tests/conftest.py) with the same number of layers.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from simulator.sweep import read_results, run_sweep, sweep_from_dict  # noqa: E402
from simulator.sweep.executors import InProcess, LocalPool  # noqa: E402
from simulator.sweep.runner import iter_tasks, run_one  # noqa: E402

LHS = REPO / "scenarios" / "sweeps" / "lhs_2000.yaml"
SHIPPED_PROFILE = REPO / "profiles" / "sst2-minilm6.npz"


def profile_path(arg: str | None, tmp: Path) -> str:
    if arg:
        return arg
    if SHIPPED_PROFILE.is_file():
        return str(SHIPPED_PROFILE)
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import make_profile

    return str(make_profile(tmp / "synth.npz", n=872, layers=6))


def lhs_spec(profile: str, n: int, requests: int | None = None, engine: str = "simpy"):
    """The shipped LHS sweep with n conditions (same axes, policies and seed), on ``engine``."""
    import yaml

    data = yaml.safe_load(LHS.read_text())
    data["sample"]["n"] = n
    over = [f"profile={profile}", f"engine={engine}"] + ([f"workload.requests={requests}"] if requests else [])
    return sweep_from_dict(data, LHS.parent, over, source=str(LHS), name=f"lhs-{n}")


def throughput(profile: str, n: int, workers: int, tmp: Path, engine: str) -> dict:
    spec = lhs_spec(profile, n, engine=engine)
    ex = InProcess() if workers == 1 else LocalPool(workers)
    out = tmp / f"tp-{n}-{workers}-{engine}"
    cpu0 = _cpu_s()
    t = time.perf_counter()
    try:
        res = run_sweep(spec, out, ex, progress=False)
    finally:
        ex.close()  # joins the workers, so their CPU time is in RUSAGE_CHILDREN
    wall = time.perf_counter() - t
    cpu = _cpu_s() - cpu0
    df = read_results(out)
    requests = int(df["requests"].sum())
    return {"engine": engine, "workers": workers, "conditions": n, "runs": res.runs_done, "failed": res.runs_failed,
            "wall_s": wall, "conditions_per_s": n / wall, "requests": requests, "requests_per_s": requests / wall,
            "cpu_s": cpu, "cpu_s_per_condition": cpu / n}


def _cpu_s() -> float:
    """CPU seconds used by this process and its joined children (user + system)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def memory_child(profile: str, n: int, requests: int, workers: int, out: str) -> None:
    """Runs in a fresh process: one sweep, then max RSS of this process and of its (joined) workers."""
    spec = lhs_spec(profile, n, requests, engine="auto")
    ex = InProcess() if workers == 1 else LocalPool(workers)
    t = time.perf_counter()
    try:
        res = run_sweep(spec, Path(out), ex, progress=False)
    finally:
        ex.close()
    print(json.dumps({
        "conditions": n, "requests_per_sim": requests, "runs": res.runs_done, "wall_s": time.perf_counter() - t,
        "parent_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "workers_maxrss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))


def memory(profile: str, n: int, requests: int, workers: int, tmp: Path) -> dict:
    r = subprocess.run([sys.executable, __file__, "--memory-child", str(n), "--requests", str(requests),
                        "--workers", str(workers), "--profile-path", profile, "--out", str(tmp / f"mem-{n}")],
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def profile_runs(profile: str, runs: int) -> str:
    spec = lhs_spec(profile, 2000, engine="auto")
    tasks = [t for _, t in zip(range(runs), iter_tasks(spec), strict=False)]
    pr = cProfile.Profile()
    pr.enable()
    for t in tasks:
        run_one(t)
    pr.disable()
    s = io.StringIO()
    st = pstats.Stats(pr, stream=s)
    st.sort_stats("tottime").print_stats(18)
    st.sort_stats("cumulative").print_stats(30)
    return s.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--conditions", type=int, default=200)
    ap.add_argument("--memory", type=int, nargs="*", default=[100, 2000], help="condition counts")
    ap.add_argument("--requests", type=int, default=20, help="requests per simulation in the memory runs")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--profile-path")
    ap.add_argument("--cprofile-runs", type=int, default=20)
    ap.add_argument("--full", action=argparse.BooleanOptionalAction, default=True,
                    help="also run the whole lhs_2000.yaml on engine auto")
    ap.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        memory_child(args.profile_path, args.memory_child, args.requests, args.workers, args.out)
        return
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        prof = profile_path(args.profile_path, tmp)
        print(f"profile: {prof}")
        rates = {}
        for engine in ("simpy", "auto"):
            for w in (1, args.workers):
                r = throughput(prof, args.conditions, w, tmp, engine)
                rates[engine, w] = r
                print(f"engine {engine:5s}: {r['conditions']} conditions, {r['workers']} worker(s): "
                      f"{r['wall_s']:.1f} s, {r['conditions_per_s']:.2f} conditions/s, {r['requests_per_s']:.0f} "
                      f"requests/s ({r['requests']} requests in {r['runs']} runs x 5 policies, {r['failed']} "
                      f"failed); CPU {r['cpu_s_per_condition'] * 1e3:.1f} ms/condition")
        for w in (1, args.workers):
            ratio = rates["auto", w]["conditions_per_s"] / rates["simpy", w]["conditions_per_s"]
            print(f"auto / simpy conditions per second, {w} worker(s): {ratio:.1f}x")
        if args.full:
            full = sweep_from_dict(__import__("yaml").safe_load(LHS.read_text()), LHS.parent,
                                   [f"profile={prof}", "engine=auto"], source=str(LHS), name="lhs-2000")
            ex = LocalPool(args.workers)
            t = time.perf_counter()
            try:
                res = run_sweep(full, tmp / "lhs-2000", ex, progress=False)
            finally:
                ex.close()
            wall = time.perf_counter() - t
            print(f"lhs_2000.yaml on engine auto, {args.workers} workers: {res.runs_done} runs ({res.runs_failed} "
                  f"failed) in {wall:.1f} s ({'meets' if wall < 30 else 'misses'} the 30 s goal); at that rate "
                  f"100,000 conditions take {100_000 / (res.runs_done / wall) / 60:.1f} min")
        else:
            best = rates["auto", args.workers]["conditions_per_s"]
            print(f"lhs_2000.yaml estimate on engine auto, {args.workers} workers: {2000 / best:.1f} s; 100,000 "
                  f"conditions: {100_000 / best / 60:.1f} min")
        for n in args.memory:
            m = memory(prof, n, args.requests, args.workers, tmp)
            print(f"memory, {n} conditions ({args.requests} requests/sim, {args.workers} workers, "
                  f"{m['wall_s']:.1f} s): parent max RSS {m['parent_maxrss_mb']:.0f} MB, "
                  f"workers max RSS {m['workers_maxrss_mb']:.0f} MB")
        if args.cprofile_runs:
            print(f"\ncProfile of {args.cprofile_runs} runs (in-process):")
            print(profile_runs(prof, args.cprofile_runs))


if __name__ == "__main__":
    main()
