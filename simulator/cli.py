"""Command line: ``run``, ``validate``, ``list``, ``profile``, ``profiles``, ``sweep``, ``report``.

User mistakes (bad scenario, missing file) print one ``error:`` line and exit with status 2.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

import pandas as pd

from .errors import UserError
from .profile import ProfileError

EXIT_USER_ERROR = 2
SUMMARY_COLUMNS = ["policy", "accuracy", "latency_mean_ms", "latency_p95_ms", "cost_mean",
                   "energy_mobile_j_per_req", "bytes_per_req", "dropped", "failed"]


def _add_overrides(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario value (dotted key; value parsed as YAML); repeatable")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="run_sim.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="simulate a scenario and print one row per policy")
    p.add_argument("scenario")
    p.add_argument("--out", help="results folder (default results/<name>-<timestamp>)")
    p.add_argument("--seed", type=int, help="override the scenario's seed")
    p.add_argument("--replications", type=int, help="override the number of replications")
    p.add_argument("--workers", type=int, default=1, help="processes for policies x replications")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_overrides(p)

    p = sub.add_parser("validate", help="check a scenario file and print what is wrong")
    p.add_argument("scenario")
    _add_overrides(p)

    sub.add_parser("list", help="device classes, bandwidth models, policies and profiles")

    from .profiling.build import add_arguments as add_profile  # torch is imported only when it runs
    from .report.cli import add_arguments as add_report
    from .sweep.cli import add_arguments as add_sweep

    add_profile(sub.add_parser("profile", help="build an exit profile with PyTorch (needs the 'profile' extra)"))
    p = sub.add_parser("profiles", help="table of profiles: task, model, layers, per-exit accuracy")
    p.add_argument("folder", nargs="?", default=None)
    p = sub.add_parser("doc-tables", help="regenerate the tables of docs/policies.md from the shipped files")
    p.add_argument("--write", action="store_true", help="replace them in docs/policies.md (default: print)")
    add_sweep(sub.add_parser("sweep", help="run a parameter sweep"))
    add_report(sub.add_parser("report", help="plots and tables from a run or sweep folder"))
    return parser


def cmd_run(args: argparse.Namespace) -> int:
    import shutil

    from .config import load_scenario
    from .output import check_run_out, publish_folder, staging_folder
    from .runner import run_scenario

    overrides = list(args.overrides)
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if args.replications is not None:
        overrides.append(f"replications={args.replications}")
    sc = load_scenario(args.scenario, overrides)
    out = Path(args.out) if args.out else Path("results") / f"{sc.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    if out.is_symlink():
        out = out.resolve()
    # before simulating: --out must be replaceable, and its parent writable (the run is written into a
    # hidden folder beside it and renamed into place, so --out never holds half a run or two runs' files)
    check_run_out(out)
    staging = staging_folder(out)
    old_term = _raise_on_sigterm()  # SIGTERM, like Ctrl-C, removes the temporary folder on its way out
    try:
        executor = None
        if args.workers > 1:
            import os
            from concurrent.futures import ProcessPoolExecutor

            from .sweep.executors import worker_init  # workers leave Ctrl-C to us and exit with us

            executor = ProcessPoolExecutor(args.workers, initializer=worker_init, initargs=(os.getpid(),))
        try:
            res = run_scenario(sc, executor=executor, progress=not args.quiet)
        except BaseException:
            if executor is not None:
                from .sweep.executors import terminate_pool

                terminate_pool(executor)  # do not wait for the runs in flight
                executor = None
            raise
        finally:
            if executor is not None:
                executor.shutdown()
        try:
            _write_run(staging, sc, res, args, overrides)
            replaced = publish_folder(staging, out)
        except OSError as e:  # disk full, permissions
            raise UserError(f"cannot write results to {out}: {e.strerror or e}; nothing was written") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
    print(format_summary(res.summary))
    warn = res.summary["ci_warning"].iloc[0] if "ci_warning" in res.summary and len(res.summary) else ""
    if warn:
        print(f"\nnote: {warn}")
    warmup = warmup_warning(sc, res.requests)
    if warmup:
        print(f"warning: {warmup}", file=sys.stderr)
    print(f"\nresults: {out}  ({len(res.requests)} requests, {res.wall_s:.1f} s)"
          + ("; replaced the earlier run there" if replaced else ""))
    return 0


def _raise_on_sigterm():
    """Make SIGTERM raise (as :class:`~simulator.sweep.runner.Interrupted`) in the main thread; returns
    the handler it replaced (None when not in the main thread)."""
    import threading

    from .sweep.runner import Interrupted

    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum: int, frame) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: the cleanup is not interrupted again
        raise Interrupted(signum)

    return signal.signal(signal.SIGTERM, handler)


def _write_run(folder: Path, sc, res, args: argparse.Namespace, overrides: list[str]) -> None:
    from .output import manifest, write_csv, write_manifest, write_parquet, write_yaml
    from .runner import engines_used

    write_csv(folder / "summary.csv", res.summary)
    write_csv(folder / "per_replication.csv", res.per_replication)
    write_parquet(folder / "requests.parquet", res.requests)
    write_csv(folder / "devices.csv", res.devices)
    if res.timeline is not None:
        write_parquet(folder / "timeline.parquet", res.timeline)
    write_yaml(folder / "config.yaml", sc.resolved())
    write_yaml(folder / "policies.yaml", {"policies": res.decisions})
    write_manifest(folder / "manifest.json", manifest(
        sc.seed, sc.profile, res.wall_s, kind="run", scenario=sc.name, source=str(args.scenario),
        overrides=overrides, replications=sc.replications, requests=len(res.requests), engine=sc.engine,
        engines_used=engines_used(res.engines or [])))


def warmup_warning(sc, requests: pd.DataFrame) -> str:
    """What to say when the warm-up swallowed every request (of the run, or of some replications)."""
    if not len(requests) or "warmup" not in requests:
        return ""
    w = sc.workload.warmup_s
    kept = (~requests["warmup"]).groupby(requests["replication"]).sum()
    if kept.sum() == 0:
        return (f"every request ({len(requests) // max(len(sc.policies), 1)} per policy) arrived in the warm-up "
                f"(workload.warmup_s = {w:g} s), so every statistic is NaN: lower warmup_s or add requests")
    empty = [int(r) for r, k in kept.items() if k == 0]
    if empty:
        return (f"replication(s) {', '.join(map(str, empty))} had every request in the warm-up "
                f"(workload.warmup_s = {w:g} s): their rows are NaN")
    return ""


def expected_warmup_warning(sc) -> str:
    """Before a run: the requests are expected to arrive before the warm-up ends."""
    wl = sc.workload
    if wl.warmup_s <= 0:
        return ""
    horizon, _ = wl.expected_horizon_s(next(iter(sc.tiers.values())).count)
    if horizon > wl.warmup_s:
        return ""
    return (f"the requests are expected to arrive within about {horizon:.3g} s, inside the warm-up "
            f"(workload.warmup_s = {wl.warmup_s:g} s): statistics would be NaN")


def format_summary(summary: pd.DataFrame) -> str:
    cols = [c for c in SUMMARY_COLUMNS if c in summary] + [c for c in summary if c.startswith("exit_frac_")]
    t = summary[cols].copy()
    for c in cols[1:]:
        if c == "accuracy" or c.startswith("exit_frac_"):
            t[c] = t[c].map(lambda v: f"{100 * v:.1f}%")
        elif c in ("dropped", "failed"):
            t[c] = t[c].map(lambda v: f"{v:.0f}")
        else:
            t[c] = t[c].map(lambda v: f"{v:.3g}")
    return t.to_string(index=False)


def cmd_validate(args: argparse.Namespace) -> int:
    from .config import load_scenario
    from .engine import Simulation

    sc = load_scenario(args.scenario, args.overrides)
    for spec in sc.policies:  # policies check their parameters against the tiers when they start
        Simulation(sc, spec)
    print(f"{args.scenario}: OK ({len(sc.tiers)} tiers, {len(sc.policies)} policies, "
          f"{sc.replications} replication(s))")
    warmup = expected_warmup_warning(sc)
    if warmup:
        print(f"warning: {warmup}", file=sys.stderr)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from .bandwidth import MODELS
    from .device import builtin_catalogue
    from .engines import ENGINES
    from .policies import load_all
    from .policies.registry import describe, parameters

    print("Device classes (simulator/devices.yaml):")
    for name, d in builtin_catalogue().items():
        if d.units:  # simulator/units.py
            compute = "units " + ", ".join(f"{u} x{s.speed:g} {s.power_active_w:g} W" for u, s in d.units.items())
        else:
            speed = (f"timing table (batch {d.timing.batch_sizes[0]}-{d.timing.batch_sizes[-1]})"
                     if d.timing is not None and d.timing.batch_sizes else
                     "timing table" if d.timing is not None else f"speed {d.speed:5.2f}")
            compute = f"{speed}  servers {d.servers}  {d.power_idle_w:g}-{d.power_active_w:g} W"
        print(f"  {name:18s} {compute}  throttling {'on' if d.thermal.enabled else 'off'}  {d.description}")
    print("\nBandwidth models:")
    for name, cls in MODELS.items():
        print(f"  {name:18s} {(cls.__doc__ or '').strip().splitlines()[0]}")
    print("\nEngines:")
    for name, target in ENGINES.items():
        print(f"  {name:18s} {target}")
    print("\nPolicies:")
    for name, cls in sorted(load_all().items()):
        params = ", ".join(parameters(cls))
        print(f"  {name:18s} {describe(cls)}" + (f"  [{params}]" if params else ""))
    print("\nProfiles (profiles/):")
    for p in sorted(_profiles_dir().glob("*.npz")):
        print(f"  {p}")
    return 0


def _profiles_dir() -> Path:
    local = Path("profiles")
    return local if local.is_dir() else Path(__file__).resolve().parent.parent / "profiles"


def cmd_profile(args: argparse.Namespace) -> int:
    from .profiling.build import run  # says which extra to install when torch is missing

    return run(args)


def cmd_profiles(args: argparse.Namespace) -> int:
    from .profiles_table import profiles_table

    folder = Path(args.folder) if args.folder else _profiles_dir()
    table = profiles_table(folder)
    if table.empty:
        raise UserError(f"no profiles (*.npz) in {folder}")
    print(table.to_string(index=False))
    return 0


def cmd_doc_tables(args: argparse.Namespace) -> int:
    from . import doctables

    if args.write:
        changed = doctables.write()
        print(f"{doctables.DOC}: " + (f"updated {', '.join(changed)}" if changed else "up to date"))
        return 0
    for name, fn in doctables.TABLES.items():
        print(f"<!-- {name} -->\n{fn()}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from .sweep.cli import run

    return run(args)


def cmd_report(args: argparse.Namespace) -> int:
    from .report.cli import run

    return run(args)


COMMANDS = {"run": cmd_run, "validate": cmd_validate, "list": cmd_list, "profile": cmd_profile,
            "profiles": cmd_profiles, "doc-tables": cmd_doc_tables, "sweep": cmd_sweep, "report": cmd_report}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (UserError, ProfileError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM during a sweep (128 + the signal, as a shell says)
        signum = getattr(e, "signum", 2)
        print("interrupted" + (" (SIGTERM)" if signum == 15 else ""), file=sys.stderr)
        return 128 + signum
    except BrokenPipeError:  # output piped into a command that stopped reading (``| head``)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 141
