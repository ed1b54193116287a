"""Sweeps survive faults: a second writer on one folder, a killed worker, a signalled parent, workers
in another directory."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_sweep import REPO, SORT, sweep_cli, write_sweep

from simulator.errors import UserError
from simulator.sweep import load_sweep, read_results, run_sweep
from simulator.sweep.executors import InProcess
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
    sweep = write_sweep(tmp_path, synth_profile, requests=400, replications=2,
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
    finally:
        _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    df = read_results(out)
    assert len(df) == 12 * 2 * 3 and not df.duplicated(SORT).any()
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
