"""Running a sweep: runs = (condition, replication), each simulating every policy on the same streams.

The parent generates conditions lazily, skips runs already on disk (``resume``), hands the rest to an
executor with a bounded number in flight, and streams finished runs into Parquet parts. A worker gets
the condition's plain config, validates it (``scenario_from_dict``), simulates each policy, reduces the
run's request records to one summary row per policy (as ``run`` does, with the paired accuracy drop
against all-cloud) and returns only those rows, so neither side grows with the number of conditions.
"""

from __future__ import annotations

import copy
import signal
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..output import manifest, write_manifest, write_yaml
from .executors import InProcess
from .lock import LOCK, FolderLock
from .spec import SweepSpec, cell, run_key
from .store import FAILURES, RESULTS, ResultStore

SWEEP_YAML = "sweep.yaml"
MANIFEST = "manifest.json"


@dataclass
class RunTask:
    """What a worker needs for one run (small and picklable)."""

    condition: int
    replication: int
    run_key: str
    config: dict[str, Any]  # the condition's full plain scenario
    base_dir: str
    axes: dict[str, Any]  # axis key -> value (as in the results columns)


def run_one(task: RunTask) -> dict[str, Any]:
    """Simulate every policy of one run; returns ``{"rows": [...]}`` or ``{"error": "..."}``."""
    from ..config import scenario_from_dict
    from ..runner import replication_rows, simulate_condition

    try:
        sc = scenario_from_dict(task.config, Path(task.base_dir))
        results = simulate_condition(sc, task.replication)
        table = replication_rows(sc, results)
        del results
        rows = []
        for row in table:
            row.pop("replication", None)
            rows.append({"run_key": task.run_key, "condition": task.condition,
                         "replication": task.replication, **task.axes, **row})
        return {"rows": rows}
    except Exception as e:  # noqa: BLE001 - a failing run is recorded and the sweep goes on
        tb = traceback.extract_tb(e.__traceback__)
        where = f" (at {Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
        return {"error": f"{type(e).__name__}: {e}{where}".replace("\n", " ")}


def iter_tasks(spec: SweepSpec, done: set[tuple[int, str]] | None = None,
               skipped: list[int] | None = None):
    """Every run not in ``done``, lazily; ``skipped[0]`` counts those that were.

    A task's config has every file path resolved here, on the client, and made absolute (``${VARS}``
    expanded): a worker with another working directory, environment or installation (a Dask worker
    elsewhere) reads the same files. Run keys are computed before, from the paths as written, so they
    do not depend on where the sweep is started from.
    """
    from ..config import resolve_paths

    done = done or set()
    base_dir = str(spec.base_dir.absolute())
    for idx, values in spec.conditions():
        config = spec.condition_config(values)
        axes = {k: cell(v) for k, v in values.items()}
        sent = None
        for r in range(spec.replications):
            key = run_key(config, r)
            if (idx, key) in done:
                if skipped is not None:
                    skipped[0] += 1
                continue
            if sent is None:
                sent = resolve_paths(copy.deepcopy(config), spec.base_dir, absolute=True)
            yield RunTask(idx, r, key, sent, base_dir, axes)


@dataclass
class SweepOutcome:
    runs_total: int
    runs_skipped: int  # already on disk (resume)
    runs_done: int  # completed by this invocation
    runs_failed: int
    rows_written: int
    wall_s: float
    out: Path


def prepare_out(spec: SweepSpec, out: Path, resume: bool) -> None:
    """Refuse a non-empty folder unless resuming the same sweep."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    entries = [p for p in out.iterdir() if p.name != LOCK] if out.is_dir() else []
    if entries and not resume:
        raise UserError(f"output folder {out} is not empty ({len(entries)} entries); use --resume to "
                        f"continue that sweep, or choose another --out")
    if entries and resume:
        import yaml

        prev = out / SWEEP_YAML
        if not prev.is_file():
            raise UserError(f"--resume: {out} has no {SWEEP_YAML}; it is not a sweep folder")
        old = yaml.safe_load(prev.read_text())
        new = spec.resolved()
        if _comparable(old) != _comparable(new):
            raise UserError(f"--resume: the sweep differs from the one in {out / SWEEP_YAML} "
                            f"(changed axes, base or --set?); use a new --out")


def _comparable(resolved: dict[str, Any]) -> Any:
    import json

    d = {k: v for k, v in (resolved or {}).items() if k != "source"}
    return json.loads(json.dumps(d, sort_keys=True, default=str))


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGINT: the sweep stops, keeping what finished (``signum``: which signal)."""

    def __init__(self, signum: int):
        self.signum = int(signum)
        super().__init__(self.signum)  # args = (signum,): rebuilt as type(e)(*e.args) (SimPy does) intact

    def __str__(self) -> str:
        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return f"signal {self.signum}"


class _Signals:
    """SIGTERM and SIGINT raise :class:`Interrupted` in the main thread while the sweep runs, and are
    only noted while it cleans up (so the last part and the manifest are written whatever comes)."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.closing = False
        self.received: int | None = None
        self.old: dict[int, Any] = {}

    def _handler(self, signum: int, frame: Any) -> None:
        self.received = self.received or signum
        if not self.closing:
            raise Interrupted(signum)

    def check(self) -> None:
        """Raise where the sweep can act on it, should the handler's raise have been swallowed."""
        if self.received is not None and not self.closing:
            raise Interrupted(self.received)

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self.old[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        for s, h in self.old.items():
            signal.signal(s, h)


def run_sweep(spec: SweepSpec, out: Path, executor=None, resume: bool = False, progress: bool = True,
              chunk_runs: int = 50, flush_s: float = 30.0, extra_manifest: dict | None = None) -> SweepOutcome:
    """Run (or finish) a sweep into ``out``; see the module docstring.

    The folder is locked while the sweep runs (a second sweep on it is refused). On SIGTERM or SIGINT
    the workers are stopped, the finished runs are written, the manifest says ``interrupted`` and
    :class:`Interrupted` is raised; ``--resume`` then runs only what is missing.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create the output folder {out}: {e.strerror or e}") from None
    with _Signals() as signals:
        lock = FolderLock(out).acquire()  # a second sweep on this folder is refused while this one runs
        try:
            res = _run_locked(spec, out, executor or InProcess(), resume, progress, chunk_runs, flush_s,
                              extra_manifest, signals)
        finally:
            lock.release()
        if signals.received is not None:  # arrived while the sweep was finishing: still say so
            raise Interrupted(signals.received)
    return res


def _run_locked(spec: SweepSpec, out: Path, executor, resume: bool, progress: bool, chunk_runs: int,
                flush_s: float, extra_manifest: dict | None, signals: _Signals) -> SweepOutcome:
    wall = time.perf_counter()
    prepare_out(spec, out, resume)
    try:
        (out / RESULTS).mkdir(exist_ok=True)
        write_yaml(out / SWEEP_YAML, spec.resolved())
    except OSError as e:
        raise _write_error(out, e) from None
    store = ResultStore(out, spec.axes, chunk_runs=chunk_runs, flush_s=flush_s)
    done = store.done_runs() if resume else set()
    total = spec.n_runs
    # runs already on disk: only those this sweep would produce count (keys are unique per condition)
    pre_skipped = sum(1 for c, _ in done if c < spec.n_conditions)
    info = dict(kind="sweep", sweep=spec.name, source=spec.source, axes=spec.axis_keys,
                policies=[_label(p) for p in spec.policies], conditions=spec.n_conditions,
                replications=spec.replications, runs=total, executor=executor.description,
                **(extra_manifest or {}))
    try:
        write_manifest(out / MANIFEST, manifest(spec.seed, spec.base.get("profile"), 0.0, status="running",
                                                **info))
    except OSError as e:
        raise _write_error(out, e) from None
    skipped = [0]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=pre_skipped, unit="run", desc=spec.name, dynamic_ncols=True,
                   smoothing=0.05)
    n_done = n_failed = 0
    status = "aborted"  # an unexpected error, unless the loop says otherwise
    try:
        for task, result, error in executor.imap_unordered(run_one, iter_tasks(spec, done, skipped)):
            signals.check()  # a run that ended on the signal is not recorded as failed
            if error is None and "error" in result:
                error = result["error"]
            try:
                if error is not None:
                    n_failed += 1
                    store.fail({"condition": task.condition, "replication": task.replication,
                                "run_key": task.run_key, **task.axes, "error": error})
                    store.write_failures()
                else:
                    n_done += 1
                    store.add(result["rows"])
            except OSError as e:  # disk full, permissions: one line, not a traceback
                raise _write_error(out, e) from None
            if bar is not None:
                bar.update(1)
                if n_failed:
                    bar.set_postfix(failed=n_failed, refresh=False)
        status = "failed" if n_failed else "complete"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        signals.closing = True  # from here on a signal is only noted
        failing = status in ("interrupted", "aborted")
        if failing:  # stop the workers now: their runs would be lost anyway
            executor.terminate()
        if bar is not None:
            bar.close()
        error = None
        for step in (store.flush, store.write_failures, None):  # each tried even if one before failed
            try:
                if step is not None:
                    step()
                else:
                    wall_s = time.perf_counter() - wall
                    write_manifest(out / MANIFEST, manifest(
                        spec.seed, spec.base.get("profile"), wall_s, status=status, **info,
                        runs_skipped=skipped[0], runs_done=n_done, runs_failed=n_failed,
                        rows_written=store.rows_written, parts_written=store.parts_written,
                        failures=FAILURES, worker_restarts=getattr(executor, "restarts", 0)))
            except OSError as e:
                error = error or e
                status = "aborted"
        if error is not None and not failing:
            raise _write_error(out, error)
    return SweepOutcome(total, skipped[0], n_done, n_failed, store.rows_written, wall_s, out)


def _write_error(out: Path, e: OSError) -> UserError:
    where = f" ({e.filename})" if e.filename else ""
    return UserError(f"cannot write the sweep's results in {out}: {e.strerror or e}{where}")


def _label(spec: Any) -> str:
    from ..policies.registry import policy_label

    return policy_label(spec)


def calibrate(spec: SweepSpec) -> tuple[float, int]:
    """Seconds for one run (the first condition, replication 0, every policy) and its request count; the
    run is timed a second time, so one-off costs (loading the profile, the fast engine's compiled code)
    do not count."""
    task = next(iter_tasks(spec))
    res = run_one(task)
    if "error" in res:
        raise UserError(f"calibration run (condition 0) failed: {res['error']}")
    t = time.perf_counter()
    res = run_one(task)
    elapsed = time.perf_counter() - t
    return elapsed, int(sum(r.get("requests", 0) for r in res["rows"]))
