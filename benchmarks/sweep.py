"""Sweep throughput and memory.

- conditions/s and simulated requests/s of a 200-condition sweep (the shipped LHS design, n=200,
  ~1,000 requests per simulation, 5 policies) at 1 and 2 workers;
- peak memory (max RSS of the parent and of the worker processes) of a sweep of 100 and of 2,000
  short conditions at 2 workers, each measured in a fresh process;
- an estimate for scenarios/sweeps/lhs_2000.yaml on this machine, and a cProfile of a few runs.

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


def lhs_spec(profile: str, n: int, requests: int | None = None):
    """The shipped LHS sweep with n conditions (same axes, policies and seed)."""
    import yaml

    data = yaml.safe_load(LHS.read_text())
    data["sample"]["n"] = n
    over = [f"profile={profile}"] + ([f"workload.requests={requests}"] if requests else [])
    return sweep_from_dict(data, LHS.parent, over, source=str(LHS), name=f"lhs-{n}")


def throughput(profile: str, n: int, workers: int, tmp: Path) -> dict:
    spec = lhs_spec(profile, n)
    ex = InProcess() if workers == 1 else LocalPool(workers)
    out = tmp / f"tp-{n}-{workers}"
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
    return {"workers": workers, "conditions": n, "runs": res.runs_done, "failed": res.runs_failed,
            "wall_s": wall, "conditions_per_s": n / wall, "requests": requests, "requests_per_s": requests / wall,
            "cpu_s": cpu, "cpu_s_per_condition": cpu / n}


def _cpu_s() -> float:
    """CPU seconds used by this process and its joined children (user + system)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def memory_child(profile: str, n: int, requests: int, workers: int, out: str) -> None:
    """Runs in a fresh process: one sweep, then max RSS of this process and of its (joined) workers."""
    spec = lhs_spec(profile, n, requests)
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
    spec = lhs_spec(profile, 2000)
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
        rows = []
        for w in (1, args.workers):
            r = throughput(prof, args.conditions, w, tmp)
            rows.append(r)
            print(f"{r['conditions']} conditions, {r['workers']} worker(s): {r['wall_s']:.1f} s, "
                  f"{r['conditions_per_s']:.2f} conditions/s, {r['requests_per_s']:.0f} requests/s "
                  f"({r['requests']} requests in {r['runs']} runs x 5 policies, {r['failed']} failed); "
                  f"CPU {r['cpu_s']:.1f} s = {r['cpu_s_per_condition']:.3f} CPU s/condition")
        best = rows[-1]
        est = 2000 / best["conditions_per_s"]
        print(f"lhs_2000.yaml estimate from the measured {args.workers}-worker rate: {est / 60:.1f} min "
              f"({'meets' if est < 900 else 'misses'} the 15 min goal; x{est / 900:.2f} of it)")
        cpu_est = 2000 * rows[0]["cpu_s_per_condition"] / args.workers
        print(f"lhs_2000.yaml estimate from CPU time (1-worker CPU s/condition x 2000 / {args.workers} "
              f"cores, i.e. cores not shared with other work): {cpu_est / 60:.1f} min "
              f"({'meets' if cpu_est < 900 else 'misses'} the 15 min goal; x{cpu_est / 900:.2f} of it)")
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
