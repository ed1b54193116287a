"""``run_sim.py sweep SWEEP.yaml --out DIR [--workers N | --scheduler ADDRESS|local] [--resume] [--dry-run]``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..errors import UserError
from .executors import default_workers, make_executor
from .lock import FolderLock
from .runner import calibrate, iter_tasks, run_sweep
from .spec import SweepSpec, load_sweep
from .store import FAILURES, ResultStore


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sweep", help="sweep file (YAML: base, grid/zip/sample, replications, policies)")
    p.add_argument("--out", help="results folder (default results/<sweep name>-<timestamp>)")
    p.add_argument("--workers", type=int, default=None,
                   help=f"local worker processes (default: all cores, here {default_workers()})")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on a Dask distributed cluster at ADDRESS (tcp://host:8786), or 'local' "
                        "for a LocalCluster of --workers processes")
    p.add_argument("--resume", action="store_true", help="run only the runs missing from --out")
    p.add_argument("--dry-run", action="store_true",
                   help="print conditions, runs and an estimated time (simulates one run), run nothing")
    p.add_argument("--chunk-runs", type=int, default=50, metavar="N",
                   help="runs per Parquet part written (default 50; a part is also written every 30 s)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a base scenario value (dotted key; value parsed as YAML); repeatable")


def _fmt_s(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def dry_run(spec: SweepSpec, out: Path | None, workers: int, resume: bool, show: int = 10) -> int:
    print(f"sweep {spec.name}: {spec.n_conditions} conditions x {spec.replications} replication(s) = "
          f"{spec.n_runs} runs; {len(spec.policies)} policies per run = "
          f"{spec.n_runs * len(spec.policies)} simulations")
    print("axes:")
    for a in spec.axes:
        print(f"  {a.describe()}")
    todo = spec.n_runs
    if resume and out is not None and out.is_dir():
        done = ResultStore(out, spec.axes).done_runs()
        todo = sum(1 for _ in iter_tasks(spec, done))
        print(f"resume: {spec.n_runs - todo} runs already in {out}, {todo} to run")
    print("conditions:")
    for i, values in spec.conditions():
        if i >= show:
            print(f"  ... ({spec.n_conditions - show} more)")
            break
        print(f"  {i:5d}  " + "  ".join(f"{k}={v}" for k, v in values.items()))
    per_run, requests = calibrate(spec)
    est = per_run * todo / max(1, workers)
    print(f"calibration: one run ({len(spec.policies)} policies, {requests} requests) took {per_run:.2f} s "
          f"in this process")
    print(f"estimate: {_fmt_s(est)} for {todo} runs on {workers} worker(s) "
          f"(assumes conditions cost about as much as condition 0)")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.out and not args.dry_run:  # a folder another sweep is writing: say so before loading this one
        FolderLock(Path(args.out)).check()
    spec = load_sweep(args.sweep, args.overrides)
    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers must be at least 1, got {args.workers}")
    out = Path(args.out) if args.out else None
    if args.dry_run:
        return dry_run(spec, out, args.workers or default_workers(), args.resume)
    if out is None:
        out = Path("results") / f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    executor = make_executor(args.workers, args.scheduler)
    try:
        res = run_sweep(spec, out, executor, resume=args.resume, progress=not args.quiet,
                        chunk_runs=args.chunk_runs, extra_manifest={"overrides": list(args.overrides)})
    except KeyboardInterrupt:
        print(f"the finished runs are in {out}; run again with --resume to run the rest", file=sys.stderr)
        raise
    finally:
        executor.close()
    msg = (f"{res.runs_done} runs done, {res.runs_skipped} already there, {res.rows_written} rows written "
           f"in {res.wall_s:.1f} s -> {out}")
    print(msg)
    if res.runs_failed:
        print(f"error: {res.runs_failed} of {res.runs_total} runs failed; see {out / FAILURES}")
        return 1
    return 0
