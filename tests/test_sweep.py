"""Sweeps: expansion of grid/zip/sample axes, executors agree, resume after SIGKILL, failures, errors."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from simulator.errors import ConfigError
from simulator.sweep import load_sweep, read_results, run_sweep
from simulator.sweep.executors import DaskExecutor, InProcess, LocalPool
from simulator.sweep.runner import iter_tasks
from simulator.sweep.spec import run_key

REPO = Path(__file__).resolve().parent.parent
SORT = ["condition", "replication", "policy"]


def base_scenario(profile: Path, requests: int = 40) -> dict:
    return {
        "profile": str(profile), "seed": 3,
        "tiers": {"mobile": {"device": "phone-cpu", "layers": [1, 2]},
                  "edge": {"device": "jetson-orin", "layers": [3, 4]},
                  "cloud": {"device": "cloud-gpu", "layers": [5, 6]}},
        "links": {"uplink": {"bandwidth": {"model": "lognormal", "mean_mbps": 10, "cv": 0.5}, "rtt_ms": 30},
                  "backhaul": {"bandwidth": 100, "rtt_ms": 20}},
        "workload": {"rate_per_s": 5, "requests": requests},
        "policies": ["all-mobile"],
    }


def write_sweep(tmp: Path, profile: Path, name: str = "sweep.yaml", requests: int = 40, **keys) -> Path:
    data = {"base": base_scenario(profile, requests),
            "policies": ["all-mobile", "all-cloud", {"name": "threshold", "thresholds": 0.8, "label": "t0.8"}]}
    data.update(keys)
    p = tmp / name
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


def sweep_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "run_sim.py"), "sweep", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def sorted_rows(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(SORT).reset_index(drop=True)


# -- expansion -------------------------------------------------------------------------------------
def test_grid_and_zip_expansion(tmp_path, synth_profile):
    p = write_sweep(tmp_path, synth_profile, replications=2,
                    grid={"links.uplink.bandwidth.mean_mbps": [1, 5, 20], "workload.rate_per_s": [2.0, 4.0]},
                    zip={"tiers.mobile.layers": [[1, 2], [1, 4]], "tiers.edge.layers": [[3, 4], [5, 5]],
                         "tiers.cloud.layers": [[5, 6], [6, 6]]})
    spec = load_sweep(p)
    assert spec.n_conditions == 3 * 2 * 2
    assert spec.n_runs == 24
    conds = list(spec.conditions())
    assert [i for i, _ in conds] == list(range(12))
    # cartesian in file order, the last block varying fastest; zip keys move together
    assert conds[0][1] == {"links.uplink.bandwidth.mean_mbps": 1, "workload.rate_per_s": 2.0,
                           "tiers.mobile.layers": [1, 2], "tiers.edge.layers": [3, 4],
                           "tiers.cloud.layers": [5, 6]}
    assert conds[1][1]["tiers.mobile.layers"] == [1, 4] and conds[1][1]["tiers.edge.layers"] == [5, 5]
    assert conds[2][1]["workload.rate_per_s"] == 4.0
    assert [c["links.uplink.bandwidth.mean_mbps"] for _, c in conds] == [1] * 4 + [5] * 4 + [20] * 4
    pairs = {(c["links.uplink.bandwidth.mean_mbps"], c["workload.rate_per_s"], c["tiers.mobile.layers"][1])
             for _, c in conds}
    assert len(pairs) == 12
    sc = spec.build(conds[5][1])  # the condition's scenario really carries the values
    assert sc.links["uplink"].bandwidth.mean_mbps == 5 and sc.tiers["edge"].layers == [5, 5]
    assert sc.policies[2]["label"] == "t0.8"
    tasks = list(iter_tasks(spec))
    assert len(tasks) == 24 and len({t.run_key for t in tasks}) == 24


def test_sample_lhs_and_sobol(tmp_path, synth_profile):
    sample = {"n": 40, "method": "lhs", "seed": 5,
              "links.uplink.rtt_ms": {"uniform": [10, 110]},
              "workload.rate_per_s": {"loguniform": [0.5, 50]},
              "tiers.mobile.count": {"uniform": [1, 4]},
              "payload.dtype": {"choice": ["fp16", "int8"]}}
    spec = load_sweep(write_sweep(tmp_path, synth_profile, sample=sample))
    assert spec.n_conditions == 40
    rows = pd.DataFrame([v for _, v in spec.conditions()])
    rtt, rate, count = rows["links.uplink.rtt_ms"], rows["workload.rate_per_s"], rows["tiers.mobile.count"]
    assert rtt.between(10, 110).all() and rate.between(0.5, 50).all()
    # Latin hypercube: exactly one point in each of the n equal strata of every axis
    assert sorted(np.floor((rtt - 10) / 100 * 40).astype(int)) == list(range(40))
    logs = (np.log(rate) - math.log(0.5)) / (math.log(50) - math.log(0.5))
    assert sorted(np.floor(logs * 40).astype(int)) == list(range(40))
    # integer key: integers 1..4, each equally often (10 strata each)
    assert all(isinstance(v, int) for v in count)
    assert count.value_counts().to_dict() == {1: 10, 2: 10, 3: 10, 4: 10}
    assert set(rows["payload.dtype"]) == {"fp16", "int8"}
    assert rows["payload.dtype"].value_counts().to_dict() == {"fp16": 20, "int8": 20}
    # seeded: the same points again, another seed other points
    again = pd.DataFrame([v for _, v in load_sweep(write_sweep(tmp_path, synth_profile, sample=sample))
                          .conditions()])
    pd.testing.assert_frame_equal(rows, again)
    other = load_sweep(write_sweep(tmp_path, synth_profile, sample={**sample, "seed": 6}))
    assert [v for _, v in other.conditions()][0] != rows.iloc[0].to_dict()
    sobol = load_sweep(write_sweep(tmp_path, synth_profile, sample={**sample, "method": "sobol", "n": 16}))
    srows = pd.DataFrame([v for _, v in sobol.conditions()])
    assert len(srows) == 16 and srows["links.uplink.rtt_ms"].between(10, 110).all()
    assert srows["links.uplink.rtt_ms"].nunique() == 16


def test_glob_axis_lists_files_sorted(tmp_path, synth_profile):
    folder = tmp_path / "traces"
    folder.mkdir()
    for name in ("b_trace", "a_trace", "c_trace"):
        (folder / name).write_text("0.0 5.0\n1.0 2.0\n2.0 8.0\n")
    base = base_scenario(synth_profile)
    base["links"]["uplink"]["bandwidth"] = {"model": "trace", "file": str(folder / "a_trace")}
    p = tmp_path / "tr.yaml"
    p.write_text(yaml.safe_dump({"base": base,
                                 "grid": {"links.uplink.bandwidth.file": {"glob": "traces/*_trace"}}},
                                sort_keys=False))
    spec = load_sweep(p)
    files = [v["links.uplink.bandwidth.file"] for _, v in spec.conditions()]
    assert [Path(f).name for f in files] == ["a_trace", "b_trace", "c_trace"]
    assert spec.build({"links.uplink.bandwidth.file": files[1]}).links["uplink"].bandwidth.file == files[1]


def test_run_key_depends_on_config_and_replication(tmp_path, synth_profile):
    spec = load_sweep(write_sweep(tmp_path, synth_profile, grid={"workload.rate_per_s": [1, 2]}))
    (_, a), (_, b) = list(spec.conditions())
    ca, cb = spec.condition_config(a), spec.condition_config(b)
    assert run_key(ca, 0) == run_key(spec.condition_config(a), 0)
    assert len({run_key(ca, 0), run_key(ca, 1), run_key(cb, 0)}) == 3


# -- executors agree -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_sweep(tmp_path_factory, synth_profile):
    tmp = tmp_path_factory.mktemp("sweep")
    return write_sweep(tmp, synth_profile, replications=2,
                       grid={"links.uplink.bandwidth.mean_mbps": [1, 20], "tiers.mobile.count": [1, 2]})


@pytest.fixture(scope="module")
def reference(small_sweep, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "out"
    res = run_sweep(load_sweep(small_sweep), out, InProcess(), progress=False, chunk_runs=3)
    assert res.runs_done == 8 and res.runs_failed == 0
    return sorted_rows(read_results(out))


def test_results_layout(reference, small_sweep):
    df = reference
    assert len(df) == 4 * 2 * 3  # conditions x replications x policies
    assert not df.duplicated(SORT).any()
    assert list(df.columns[:6]) == ["run_key", "condition", "replication", "policy",
                                    "links.uplink.bandwidth.mean_mbps", "tiers.mobile.count"]
    for col in ("accuracy", "latency_mean_ms", "latency_p95_ms", "cost_mean", "energy_mobile_j_per_req",
                "exit_frac_mobile", "throughput_rps"):
        assert col in df and df[col].notna().all()
    assert set(df["policy"]) == {"all-mobile", "all-cloud", "t0.8"}
    # all policies of a run share its key; a run's policies saw the same stream (common random numbers)
    assert df.groupby("run_key")["policy"].nunique().eq(3).all()
    assert (df.loc[df.policy == "all-mobile", "exit_frac_mobile"] == 1).all()
    # bandwidth matters to offloading but not to all-mobile (same arrivals and samples across conditions)
    m = df[(df.policy == "all-mobile") & (df["tiers.mobile.count"] == 1)]
    assert m.groupby("replication")["latency_mean_ms"].nunique().eq(1).all()
    c = df[(df.policy == "all-cloud") & (df["tiers.mobile.count"] == 1) & (df.replication == 0)]
    assert c["latency_mean_ms"].nunique() == 2


def test_two_workers_same_results(small_sweep, reference, tmp_path):
    pool = LocalPool(2)
    try:
        run_sweep(load_sweep(small_sweep), tmp_path / "out", pool, progress=False, chunk_runs=2)
    finally:
        pool.close()
    pd.testing.assert_frame_equal(sorted_rows(read_results(tmp_path / "out")), reference)
    assert len(list((tmp_path / "out" / "results.parquet").glob("part-*.parquet"))) >= 2
    # the parts folder is a Parquet dataset that pandas reads directly
    pd.testing.assert_frame_equal(sorted_rows(pd.read_parquet(tmp_path / "out" / "results.parquet")),
                                  reference)


def test_dask_local_cluster_same_results(small_sweep, reference, tmp_path):
    ex = DaskExecutor("local", workers=2, processes=False)
    try:
        run_sweep(load_sweep(small_sweep), tmp_path / "out", ex, progress=False)
    finally:
        ex.close()
    pd.testing.assert_frame_equal(sorted_rows(read_results(tmp_path / "out")), reference)


# -- resume ----------------------------------------------------------------------------------------
def test_resume_after_sigkill(tmp_path, synth_profile):
    sweep = write_sweep(tmp_path, synth_profile, requests=80, replications=2,
                        grid={"links.uplink.bandwidth.mean_mbps": [1, 3, 10, 30],
                              "workload.rate_per_s": [2, 4, 8]})
    spec = load_sweep(sweep)
    ref_out = tmp_path / "ref"
    run_sweep(spec, ref_out, InProcess(), progress=False)
    reference = sorted_rows(read_results(ref_out))
    assert len(reference) == 12 * 2 * 3

    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(REPO / "run_sim.py"), "sweep", str(sweep), "--out", str(out),
                             "--workers", "1", "--chunk-runs", "1", "--quiet"], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parts = out / "results.parquet"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(parts.glob("part-*.parquet"))) < 3:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = read_results(out)
    assert 0 < len(partial) < len(reference), "the sweep must be killed mid-run for this test"
    assert len(partial) % 3 == 0  # parts hold whole runs
    (parts / ".part-99999.parquet.junk.tmp").write_bytes(b"half a file")  # a stray temporary is ignored

    refused = sweep_cli(str(sweep), "--out", str(out), "--workers", "1")
    assert refused.returncode == 2
    assert "not empty" in refused.stderr and "--resume" in refused.stderr
    assert "Traceback" not in refused.stderr

    done = sweep_cli(str(sweep), "--out", str(out), "--workers", "1", "--resume", "--quiet")
    assert done.returncode == 0, done.stderr
    assert f"{len(partial) // 3} already there" in done.stdout
    resumed = sorted_rows(read_results(out))
    assert not resumed.duplicated(SORT).any()
    pd.testing.assert_frame_equal(resumed, reference)
    again = sweep_cli(str(sweep), "--out", str(out), "--workers", "1", "--resume", "--quiet")
    assert again.returncode == 0 and "0 runs done, 24 already there" in again.stdout


def test_resume_refuses_a_changed_sweep(tmp_path, synth_profile):
    sweep = write_sweep(tmp_path, synth_profile, grid={"workload.rate_per_s": [1, 2]})
    run_sweep(load_sweep(sweep), tmp_path / "out", InProcess(), progress=False)
    changed = write_sweep(tmp_path, synth_profile, grid={"workload.rate_per_s": [1, 3]})
    r = sweep_cli(str(changed), "--out", str(tmp_path / "out"), "--resume", "--workers", "1")
    assert r.returncode == 2 and "differs" in r.stderr


# -- failures --------------------------------------------------------------------------------------
def test_failing_condition_is_recorded_and_others_complete(tmp_path, synth_profile):
    # a threshold of 1.5 passes the schema but the policy rejects it when the simulation starts
    sweep = write_sweep(tmp_path, synth_profile, replications=2,
                        grid={"policies.2.thresholds": [0.8, 1.5, 0.6]})
    out = tmp_path / "out"
    r = sweep_cli(str(sweep), "--out", str(out), "--workers", "2", "--quiet")
    assert r.returncode == 1
    assert "2 of 6 runs failed" in r.stdout
    fails = pd.read_csv(out / "failures.csv")
    assert len(fails) == 2
    assert set(fails["condition"]) == {1} and set(fails["replication"]) == {0, 1}
    assert (fails["policies.2.thresholds"] == 1.5).all()
    assert fails["error"].str.contains("threshold").all()
    df = read_results(out)
    assert sorted(set(df["condition"])) == [0, 2] and len(df) == 2 * 2 * 3
    import json

    m = json.loads((out / "manifest.json").read_text())
    assert m["kind"] == "sweep" and m["runs_failed"] == 2 and m["status"] == "failed"
    assert m["axes"] == ["policies.2.thresholds"] and m["profile"]["sha256"]


# -- malformed sweep files -------------------------------------------------------------------------
@pytest.mark.parametrize("keys, message", [
    ({"grid": {"links.uplink.bandwith.mean_mbps": [1, 2]}},
     "unknown axis key 'links.uplink.bandwith.mean_mbps' in 'grid': not a scenario key; "
     "did you mean 'links.uplink.bandwidth.mean_mbps'?"),
    ({"grid": {"workload.rate_per_s": []}}, "'grid.workload.rate_per_s' is an empty list"),
    ({"sample": {"n": 5, "links.uplink.rtt_ms": {"uniform": [50, 10]}}},
     "'sample.links.uplink.rtt_ms.uniform': lo must be less than hi, got [50, 10]"),
    ({"sample": {"n": 5, "workload.rate_per_s": {"loguniform": [0, 10]}}},
     "'sample.workload.rate_per_s.loguniform': lo must be positive, got 0"),
    ({"grid": {"workload.rate_per_s": [1, -2]}}, "workload.rate_per_s=-2"),
    ({"zip": {"workload.rate_per_s": [1, 2], "links.uplink.rtt_ms": [10]}}, "equal lengths"),
    ({"gird": {"workload.rate_per_s": [1]}}, "did you mean 'grid'?"),
])
def test_malformed_sweep_one_line_error(tmp_path, synth_profile, keys, message):
    sweep = write_sweep(tmp_path, synth_profile, **keys)
    with pytest.raises(ConfigError) as e:
        load_sweep(sweep)
    assert message in str(e.value)
    r = sweep_cli(str(sweep), "--out", str(tmp_path / "out"), "--workers", "1")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert not (tmp_path / "out").exists()


def test_dry_run_counts_and_estimate(tmp_path, synth_profile):
    sweep = write_sweep(tmp_path, synth_profile, replications=3,
                        grid={"workload.rate_per_s": [1, 2]}, sample={"n": 4, "links.uplink.rtt_ms":
                                                                      {"uniform": [5, 50]}})
    r = sweep_cli(str(sweep), "--dry-run", "--workers", "2", "--set", "workload.requests=30")
    assert r.returncode == 0, r.stderr
    assert "8 conditions x 3 replication(s) = 24 runs; 3 policies per run = 72 simulations" in r.stdout
    assert "calibration: one run (3 policies, 90 requests)" in r.stdout
    assert "estimate:" in r.stdout
    assert not (tmp_path / "out").exists()


def test_a_key_swept_to_null_is_null_in_the_results_and_none_on_plots():
    """A condition setting a key to null (batching off) is stored as JSON null (it read 'NaN' once the
    column had been in a frame) and labelled 'none' in figures."""
    from simulator.report.axes import category_labels
    from simulator.sweep.spec import to_column

    assert to_column([None, float("nan"), {"max_batch": 4}], "string") == ["null", "null", '{"max_batch": 4}']
    assert category_labels(["null", '{"max_batch": 4}'])["null"] == "none"
