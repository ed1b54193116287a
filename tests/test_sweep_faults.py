"""Sweeps survive faults: a second writer on one folder, a killed worker, a signalled parent, workers
in another directory."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from test_sweep import REPO, SORT, sorted_rows, sweep_cli, write_sweep

from simulator.errors import UserError
from simulator.sweep import load_sweep, read_results, run_sweep
from simulator.sweep.executors import WORKER_DIED, InProcess, LocalPool
from simulator.sweep.lock import LOCK, FolderLock, is_held
from simulator.sweep.store import ResultStore, part_files


def start_sweep(sweep: Path, out: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(REPO / "run_sim.py"), "sweep", str(sweep), "--out", str(out),
                             "--quiet", *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_for_parts(out: Path, n: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while len(part_files(out)) < n:
        assert proc.poll() is None, f"the sweep ended early: {proc.communicate()}"
        assert time.monotonic() < deadline, "no parts written in time"
        time.sleep(0.02)


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


# -- the output folder is locked -------------------------------------------------------------------
def test_lock_is_exclusive_and_says_who_holds_it(tmp_path):
    with FolderLock(tmp_path):
        owner = json.loads((tmp_path / LOCK).read_text())
        assert owner["pid"] == os.getpid() and owner["host"] == socket.gethostname()
        assert is_held(tmp_path)
        with pytest.raises(UserError) as e:
            FolderLock(tmp_path).acquire()
        msg = str(e.value)
        assert "in use by another sweep" in msg and f"pid {os.getpid()}" in msg and "\n" not in msg
    assert not (tmp_path / LOCK).exists() and not is_held(tmp_path)


def test_stale_lock_of_a_dead_pid_is_taken_over_another_hosts_is_refused(tmp_path, synth_profile):
    sweep = write_sweep(tmp_path, synth_profile, grid={"workload.rate_per_s": [1, 2]})
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK).write_text(json.dumps({"pid": dead_pid(), "host": socket.gethostname()}))
    assert not is_held(out)
    res = run_sweep(load_sweep(sweep), out, InProcess(), progress=False)
    assert res.runs_done == 2 and not (out / LOCK).exists()

    (out / LOCK).write_text(json.dumps({"pid": 1, "host": "elsewhere.example"}))
    r = sweep_cli(str(sweep), "--out", str(out), "--resume", "--workers", "1")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "pid 1 on elsewhere.example" in lines[0] and f"remove {out / LOCK}" in lines[0]


def test_second_writer_is_refused_and_no_row_is_duplicated(tmp_path, synth_profile):
    # long enough to outlast the two refused commands below; stopped (SIGTERM) once they are done
    sweep = write_sweep(tmp_path, synth_profile, requests=1000, replications=4,
                        grid={"links.uplink.bandwidth.mean_mbps": [1, 3, 10, 30],
                              "workload.rate_per_s": [2, 4, 8]})
    out = tmp_path / "out"
    first = start_sweep(sweep, out, "--workers", "1", "--chunk-runs", "1")
    try:
        wait_for_parts(out, 1, first)
        for extra in (["--resume"], []):
            r = sweep_cli(str(sweep), "--out", str(out), "--workers", "1", *extra)
            assert r.returncode == 2, r.stderr
            lines = r.stderr.strip().splitlines()
            assert len(lines) == 1 and "is in use by another sweep" in lines[0], r.stderr
            assert f"pid {first.pid} on {socket.gethostname()}" in lines[0]
        assert first.poll() is None, "the first sweep must still run for this test"
    finally:
        first.send_signal(signal.SIGTERM)  # done with it (this also keeps the test short)
        _, err = first.communicate(timeout=120)
    # in-process, the signal arrives inside a simulation (SimPy rebuilds the exception): it still
    # stops the sweep at once, and the run it cut short is not recorded as failed
    assert first.returncode == 143, err
    assert pd.read_csv(out / "failures.csv").empty
    df = read_results(out)
    assert len(df) == 3 * json.loads((out / "manifest.json").read_text())["runs_done"]
    assert not df.duplicated(SORT).any()
    assert not (out / LOCK).exists()


def test_part_names_cannot_collide(tmp_path, synth_profile):
    spec = load_sweep(write_sweep(tmp_path, synth_profile))
    (tmp_path / "results.parquet").mkdir()
    a, b = ResultStore(tmp_path, spec.axes), ResultStore(tmp_path, spec.axes)  # the same counter
    row = {"run_key": "k", "condition": 0, "replication": 0, "policy": "p", "accuracy": 1.0}
    for i, store in enumerate((a, b)):
        store.add([{**row, "condition": i}])
        store.flush()
    parts = part_files(tmp_path)
    assert len(parts) == 2 and parts[0].name.startswith("part-00000-") and parts[0].name != parts[1].name
    assert sorted(read_results(tmp_path)["condition"]) == [0, 1]
    # parts named as older sweeps named them are still read, in order
    (tmp_path / "results.parquet" / "part-00007.parquet").write_bytes(parts[0].read_bytes())
    assert [p.name for p in part_files(tmp_path)][-1] == "part-00007.parquet"


# -- a lost worker does not abort the sweep --------------------------------------------------------
def _die(marker: str, task: int, always: bool) -> int:
    if task == 3 and (always or not os.path.exists(marker)):
        Path(marker).touch()
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.05)
    return 2 * task


def die_once(arg: tuple[str, int]) -> int:
    return _die(*arg, always=False)


def die_always(arg: tuple[str, int]) -> int:
    return _die(*arg, always=True)


@pytest.mark.parametrize("always", [False, True])
def test_pool_survives_a_killed_worker(tmp_path, always):
    marker = str(tmp_path / "died")
    pool = LocalPool(2)
    try:
        got = {t[1]: (res, err) for t, res, err in pool.imap_unordered(die_always if always else die_once,
                                                                       [(marker, i) for i in range(12)])}
    finally:
        pool.close()
    assert sorted(got) == list(range(12)) and pool.restarts >= 1
    if always:  # the run that kills its worker fails alone, the runs beside it are retried and pass
        assert got.pop(3) == (None, WORKER_DIED + " (2 times)")
    assert got == {i: (2 * i, None) for i in got}


def proc_children(pid: int) -> list[int]:
    kids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(d.name))
    return kids


def wait_gone(pids: list[int], timeout: float = 10) -> list[int]:
    deadline = time.monotonic() + timeout
    alive = pids
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if Path(f"/proc/{p}").exists()
                 and (Path(f"/proc/{p}") / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"]
    return alive


@pytest.fixture(scope="module")
def long_sweep(tmp_path_factory, synth_profile):
    tmp = tmp_path_factory.mktemp("long")
    sweep = write_sweep(tmp, synth_profile, requests=400, replications=2,
                        grid={"links.uplink.bandwidth.mean_mbps": [1, 3, 10, 30],
                              "workload.rate_per_s": [2, 4, 8]})
    run_sweep(load_sweep(sweep), tmp / "ref", InProcess(), progress=False)
    return sweep, sorted_rows(read_results(tmp / "ref"))


def progress_reader(proc: subprocess.Popen) -> list[int]:
    """The run counts the progress bar (on the child's stderr) has shown, filled in by a thread."""
    seen = [0]

    def read() -> None:
        buf = ""
        while True:
            ch = proc.stderr.read(1)
            if not ch:
                return
            buf = (buf + ch)[-200:]
            m = re.findall(r"(\d+)/24", buf)
            if m:
                seen[0] = max(seen[0], int(m[-1]))

    threading.Thread(target=read, daemon=True).start()
    return seen


def test_sweep_survives_kill_9_of_a_worker(tmp_path, long_sweep):
    sweep, reference = long_sweep
    out = tmp_path / "out"
    proc = start_sweep(sweep, out, "--workers", "2", "--chunk-runs", "1")
    wait_for_parts(out, 1, proc)
    workers = proc_children(proc.pid)
    assert workers, "the pool has no worker processes"
    os.kill(workers[0], signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr and "a worker process died" in stderr
    pd.testing.assert_frame_equal(sorted_rows(read_results(out)), reference)
    m = json.loads((out / "manifest.json").read_text())
    assert m["status"] == "complete" and m["runs_failed"] == 0 and m["worker_restarts"] >= 1
    assert pd.read_csv(out / "failures.csv").empty


# -- a signalled parent ------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT to the process group", "SIGKILL"])
def test_signalled_sweep_keeps_finished_runs_and_resume_runs_the_rest(tmp_path, long_sweep, how):
    sweep, reference = long_sweep
    out = tmp_path / "out"
    # parts of 100 runs: nothing reaches the disk before the signal unless the signal flushes it
    proc = subprocess.Popen([sys.executable, str(REPO / "run_sim.py"), "sweep", str(sweep), "--out", str(out),
                             "--workers", "2", "--chunk-runs", "100"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    seen = progress_reader(proc)
    deadline = time.monotonic() + 60
    while seen[0] < 3:
        assert proc.poll() is None and time.monotonic() < deadline, "the sweep made no progress"
        time.sleep(0.02)
    workers = proc_children(proc.pid)
    assert workers
    if how == "SIGTERM":
        os.kill(proc.pid, signal.SIGTERM)
    elif how == "SIGKILL":
        os.kill(proc.pid, signal.SIGKILL)
    else:  # Ctrl-C: every process of the group gets it
        os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=60)  # stops (a bound on how fast belongs in benchmarks/, not in a test)
    assert wait_gone(workers) == [], "pool workers outlived their parent"
    m = json.loads((out / "manifest.json").read_text())
    if how == "SIGKILL":  # nothing can be written; the lock is stale and the next sweep takes it over
        assert proc.returncode == -signal.SIGKILL and m["status"] == "running"
        # a process forked before the kill (a worker the pool started late) may hold the inherited flock
        # until it notices its parent is gone: poll until it lets go
        deadline = time.monotonic() + 60
        while is_held(out) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not is_held(out)
        kept = 0
    else:
        assert proc.returncode == (143 if how == "SIGTERM" else 130)
        assert m["status"] == "interrupted" and m["runs_failed"] == 0
        assert not (out / LOCK).exists()
        kept = m["runs_done"]
        assert kept >= 3 and m["rows_written"] == 3 * kept
        assert len(read_results(out)) == 3 * kept  # flushed on the signal
        assert pd.read_csv(out / "failures.csv").empty  # Ctrl-C in a worker is not a failed run
        if how != "SIGTERM":
            return  # resuming is shown after SIGTERM and SIGKILL
    done = sweep_cli(str(sweep), "--out", str(out), "--workers", "2", "--resume", "--quiet")
    assert done.returncode == 0, done.stderr
    assert f"{24 - kept} runs done, {kept} already there" in done.stdout
    pd.testing.assert_frame_equal(sorted_rows(read_results(out)), reference)


def test_disk_full_during_a_sweep_is_one_line(tmp_path, synth_profile, monkeypatch):
    import errno

    import simulator.sweep.store as store

    sweep = write_sweep(tmp_path, synth_profile, grid={"workload.rate_per_s": [1, 2, 3]})
    out = tmp_path / "out"

    def full(path, writer):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(store, "atomic_write", full)
    with pytest.raises(UserError) as e:
        run_sweep(load_sweep(sweep), out, InProcess(), progress=False, chunk_runs=1)
    assert f"cannot write the sweep's results in {out}: No space left on device" in str(e.value)
    assert json.loads((out / "manifest.json").read_text())["status"] == "aborted"
    assert not (out / LOCK).exists()
    (tmp_path / "file").write_text("")  # --out under a file
    r = sweep_cli(str(sweep), "--out", str(tmp_path / "file" / "x"), "--workers", "1")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


# -- workers in another directory --------------------------------------------------------------------
@pytest.fixture
def relative_sweep(tmp_path, synth_profile, monkeypatch):
    """A sweep whose profile, arrival file and traces are given relative to the working directory
    (not to the sweep file), one trace through ${EESIM_SHARED_DATA}; the client runs in ``proj``."""
    import shutil

    import yaml
    from test_sweep import base_scenario

    proj, shared, elsewhere = tmp_path / "proj", tmp_path / "shared", tmp_path / "elsewhere"
    for d in (proj / "data", shared, elsewhere, tmp_path / "sweeps"):
        d.mkdir(parents=True)
    shutil.copy(synth_profile, proj / "prof.npz")
    (proj / "data" / "a.txt").write_text("0 5\n1 2\n2 8\n")
    (shared / "b.txt").write_text("0 20\n1 30\n")
    (proj / "data" / "arrivals.txt").write_text("".join(f"{0.3 * i:.1f}\n" for i in range(40)))
    base = base_scenario(Path("prof.npz"))
    base["profile"] = "prof.npz"
    base["links"]["uplink"]["bandwidth"] = {"model": "trace", "file": "data/a.txt"}
    base["workload"] = {"arrival": "file", "file": "data/arrivals.txt"}
    sweep = tmp_path / "sweeps" / "s.yaml"
    sweep.write_text(yaml.safe_dump({"base": base, "policies": ["all-mobile", "all-cloud"],
                                     "grid": {"links.uplink.bandwidth.file":
                                              ["data/a.txt", "${EESIM_SHARED_DATA}/b.txt"]}}, sort_keys=False))
    monkeypatch.chdir(proj)
    monkeypatch.setenv("EESIM_SHARED_DATA", str(shared))
    return sweep, elsewhere


def worker_env() -> dict[str, str]:
    """A worker's environment: simulator importable, but another ${EESIM_SHARED_DATA}."""
    return {**os.environ, "PYTHONPATH": str(REPO), "EESIM_SHARED_DATA": "/nonexistent"}


def test_tasks_carry_absolute_paths_and_run_from_another_directory(relative_sweep):
    import pickle

    from simulator.sweep.runner import iter_tasks
    from simulator.sweep.spec import run_key

    sweep, elsewhere = relative_sweep
    spec = load_sweep(sweep)
    tasks = list(iter_tasks(spec))
    assert len(tasks) == 2
    for t in tasks:
        files = [t.config["profile"], t.config["links"]["uplink"]["bandwidth"]["file"],
                 t.config["workload"]["file"]]
        assert all(Path(f).is_absolute() and Path(f).is_file() for f in files), files
    assert tasks[1].config["links"]["uplink"]["bandwidth"]["file"] == str(elsewhere.parent / "shared" / "b.txt")
    # keys come from the paths as written: the same wherever the sweep is started
    assert tasks[0].run_key == run_key(spec.condition_config(next(spec.conditions())[1]), 0)
    (elsewhere / "tasks.pkl").write_bytes(pickle.dumps(tasks))
    code = ("import pickle, json; from simulator.sweep.runner import run_one; "
            "print(json.dumps([run_one(t).get('error') for t in pickle.load(open('tasks.pkl', 'rb'))]))")
    r = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env=worker_env(), capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [None, None]


def test_dask_worker_started_in_another_directory(relative_sweep, tmp_path):
    pytest.importorskip("distributed")
    from distributed import LocalCluster

    from simulator.sweep.executors import DaskExecutor

    sweep, elsewhere = relative_sweep
    cluster = LocalCluster(n_workers=0, processes=True, dashboard_address=None)
    worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", cluster.scheduler_address,
                               "--nworkers", "1", "--nthreads", "1", "--no-dashboard"], cwd=elsewhere,
                              env=worker_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ex = DaskExecutor(cluster.scheduler_address)
        try:
            ex.client.wait_for_workers(1, timeout=60)
            res = run_sweep(load_sweep(sweep), tmp_path / "out", ex, progress=False)
        finally:
            ex.close()
        assert res.runs_failed == 0, pd.read_csv(tmp_path / "out" / "failures.csv")["error"].tolist()
        assert res.runs_done == 2 and len(read_results(tmp_path / "out")) == 4
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        cluster.close()
