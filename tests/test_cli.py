"""The command line: outputs of `run`, one-line errors with non-zero exit, `validate`, `list`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

from simulator.cli import main

REPO = Path(__file__).resolve().parent.parent


def _write(tmp_path: Path, profile: Path, **over) -> Path:
    d = {
        "name": "cli", "profile": str(profile), "seed": 2,
        "tiers": {"mobile": {"device": "phone-cpu", "layers": [1, 3], "count": 2},
                  "cloud": {"device": "cloud-gpu", "layers": [4, 6]}},
        "links": {"uplink": {"bandwidth": {"model": "markov", "states_mbps": [20, 1],
                                           "mean_dwell_s": [5, 2]}}},
        "workload": {"rate_per_s": 3, "requests": 120},
        "policies": ["all-mobile", "all-cloud", {"name": "threshold", "thresholds": 0.7}],
    }
    d.update(over)
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(d, sort_keys=False))
    return f


def test_run_writes_all_outputs(tmp_path, synth_profile, capsys):
    f = _write(tmp_path, synth_profile)
    out = tmp_path / "out"
    assert main(["run", str(f), "--out", str(out), "--seed", "7", "--set", "workload.rate_per_s=6",
                 "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "all-cloud" in printed and "threshold" in printed
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["policy"]) == ["all-mobile", "all-cloud", "threshold"]
    req = pd.read_parquet(out / "requests.parquet")
    assert len(req) == 3 * 120
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["seed"] == 7 and cfg["workload"]["rate_per_s"] == 6.0
    assert cfg["payload"]["dtype"] == "fp16"  # defaults filled in
    man = json.loads((out / "manifest.json").read_text())
    assert man["seed"] == 7 and len(man["profile"]["sha256"]) == 64 and "simpy" in man["versions"]
    assert (out / "timeline.parquet").exists()


def test_user_errors_are_one_line_without_traceback(tmp_path, synth_profile):
    f = _write(tmp_path, synth_profile, workload={"rate_per_s": -3})
    r = subprocess.run([sys.executable, "run_sim.py", "validate", str(f)], cwd=REPO, capture_output=True,
                       text=True)
    assert r.returncode == 2
    assert r.stderr.strip() in ("error: 'workload.rate_per_s' must be positive, got -3",
                                "error: 'workload.rate_per_s' must be positive, got -3.0")
    r = subprocess.run([sys.executable, "run_sim.py", "run", str(f), "--set", "workload.rat=1"],
                       cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "did you mean 'rate_per_s'" in r.stderr


def test_validate_ok_and_list(tmp_path, synth_profile, capsys):
    f = _write(tmp_path, synth_profile)
    assert main(["validate", str(f)]) == 0
    assert "OK" in capsys.readouterr().out
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for word in ("phone-cpu", "lognormal", "trace", "all-cloud", "threshold"):
        assert word in out


def test_validate_catches_policy_parameter_errors(tmp_path, synth_profile, capsys):
    f = _write(tmp_path, synth_profile, policies=[{"name": "threshold", "thresholds": {"edge": 0.5}}])
    assert main(["validate", str(f)]) == 2
    assert "unknown tier 'edge'" in capsys.readouterr().err


def test_simulating_sweeping_and_reporting_do_not_import_torch():
    code = ("import sys; from simulator.cli import build_parser; build_parser(); "
            "import simulator.runner, simulator.sweep.runner, simulator.report.cli; "
            "print('torch' in sys.modules or 'transformers' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "False"


def test_run_folder_alone_reproduces_the_run(tmp_path, synth_profile):
    f = _write(tmp_path, synth_profile, policies=["all-mobile", {"name": "dimee", "label": "d"},
                                                  {"name": "splitee", "alpha": 0.8}])
    out = tmp_path / "out"
    assert main(["run", str(f), "--out", str(out), "--quiet"]) == 0
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    phone = cfg["devices"]["phone-cpu"]  # the classes actually used, written out in full
    assert phone["speed"] > 0 and phone["power_active_w"] > 0 and phone["source"] and "thermal" in phone
    assert set(cfg["devices"]) == {"phone-cpu", "cloud-gpu"}
    assert cfg["policies"][1] == {"name": "dimee", "label": "d", "mode": "tolerance", "tolerance_points": 0.3,
                                  "mu": 0.05, "grid": 41, "search_splits": False, "pools": "threshold", "clusters": 8}
    again = tmp_path / "again"
    assert main(["run", str(out / "config.yaml"), "--out", str(again), "--quiet"]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(out / "requests.parquet"),
                                  pd.read_parquet(again / "requests.parquet"))


def test_policies_yaml_records_what_each_policy_chose(tmp_path, synth_profile):
    f = _write(tmp_path, synth_profile, replications=2,
               policies=[{"name": "dimee", "label": "d"}, {"name": "splitee", "alpha": 0.8}])
    out = tmp_path / "out"
    assert main(["run", str(f), "--out", str(out), "--quiet"]) == 0
    recs = yaml.safe_load((out / "policies.yaml").read_text())["policies"]
    assert {(r["policy"], r["replication"]) for r in recs} == {("d", 0), ("d", 1), ("splitee", 0), ("splitee", 1)}
    d = next(r for r in recs if r["policy"] == "d")
    thr, = d["decisions"]["thresholds"]
    assert d["decisions"]["exit_tiers"] == ["mobile"] and 0 <= thr <= 1
    req = pd.read_parquet(out / "requests.parquet")
    mine = req[(req["policy"] == "d") & ~req["dropped"] & ~req["warmup"]]
    on_mobile = mine["exit_tier"] == "mobile"  # the recorded threshold is the one applied
    assert (mine.loc[on_mobile, "confidence"] >= thr).all()
    s = next(r for r in recs if r["policy"] == "splitee" and r["replication"] == 0)
    assert sum(s["learned"]["played"]) == (req[(req["policy"] == "splitee") & (req["replication"] == 0)]).shape[0]
    sp = req[req["policy"] == "splitee"].sort_values("request_id")
    assert sp["explore"].iloc[:3].all()  # untried arms first: exploration steps
    want = {"mobile 1, cloud 2-6", "mobile 1-2, cloud 3-6", "mobile 1-3, cloud 4-6", "mobile 1-4, cloud 5-6",
            "mobile 1-5, cloud 6", "mobile 1-6"}
    assert set(sp["plan"]) == want  # every arm was played, and the plan says where each layer ran
    assert set(sp.loc[sp["exit_tier"] == "cloud", "route"]) == {"uplink"}


def test_outputs_follow_the_umask_and_sweeps_read_from_a_string(tmp_path, synth_profile):
    import os

    from simulator.sweep import read_results

    old = os.umask(0o022)
    try:
        out = tmp_path / "out"
        assert main(["run", str(_write(tmp_path, synth_profile)), "--out", str(out), "--quiet"]) == 0
    finally:
        os.umask(old)
    assert (out / "summary.csv").stat().st_mode & 0o777 == 0o644
    assert out.stat().st_mode & 0o777 == 0o755  # the folder too (it is written as a temporary first)
    assert read_results(str(tmp_path / "missing")).empty  # a str is accepted (it raised TypeError)


def test_network_bad_inputs_exit_2_naming_the_key():
    """Issue 10's bad inputs: per-user weight on a private link, unknown RRC preset, negative tail,
    unsorted handover schedule."""
    cases = [
        ("scenarios/default.yaml", "links.uplink.quality=3", "'links.uplink.quality'"),
        ("scenarios/radio_tail.yaml", "devices.lte-phone.radio.rrc=lte9", "'devices.lte-phone.radio.rrc'"),
        ("scenarios/radio_tail.yaml", "devices.lte-phone.radio.rrc={preset: lte, tail_s: -1}",
         "'devices.lte-phone.radio.rrc.tail_s'"),
        ("scenarios/shared_cell.yaml", "mobility={schedule: {0: [[5, 0], [1, 0]]}}", "'mobility.schedule.0'"),
    ]
    for scenario, override, key in cases:
        r = subprocess.run([sys.executable, "run_sim.py", "validate", scenario, "--set", override], cwd=REPO,
                           capture_output=True, text=True)
        assert r.returncode == 2, (override, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and key in r.stderr and "Traceback" not in r.stderr


def test_profile_refuses_to_overwrite_a_shipped_profile(tmp_path, capsys):
    from simulator.cli import main

    out = tmp_path / "p.npz"
    out.write_bytes(b"keep me")
    assert main(["profile", "--task", "SST-2", "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err and out.read_bytes() == b"keep me"


def test_outputs_honour_umask(tmp_path):
    import os

    from simulator.output import write_text

    old = os.umask(0o022)
    try:
        p = write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert p.stat().st_mode & 0o777 == 0o644


def test_read_results_accepts_a_string(tmp_path):
    from simulator.sweep import read_results

    assert read_results(str(tmp_path)).empty


def test_shared_data_default_is_relative_to_the_repository(tmp_path, monkeypatch):
    from pathlib import Path

    from simulator.traces import expand_path

    monkeypatch.delenv("EESIM_SHARED_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    repo = Path(__file__).resolve().parent.parent
    assert expand_path("${EESIM_SHARED_DATA}/traces") == repo.parent / "shared" / "data" / "traces"


# -- run --out: checked before simulating, written whole ---------------------------------------------
def _no_simulation(monkeypatch):
    import simulator.runner

    def refuse(*a, **k):
        raise AssertionError("simulated although --out cannot be written")

    monkeypatch.setattr(simulator.runner, "run_scenario", refuse)


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0], err
    return err[0]


def test_run_out_refused_before_simulating(tmp_path, synth_profile, monkeypatch, capsys):
    f = _write(tmp_path, synth_profile)
    _no_simulation(monkeypatch)
    afile = tmp_path / "afile"
    afile.write_text("keep")
    assert main(["run", str(f), "--out", str(afile), "--quiet"]) == 2
    assert "exists and is not a folder" in _one_error_line(capsys) and afile.read_text() == "keep"
    assert main(["run", str(f), "--out", str(afile / "sub"), "--quiet"]) == 2  # parent is a file
    assert "cannot write results to" in _one_error_line(capsys)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    assert main(["run", str(f), "--out", str(mine), "--quiet"]) == 2
    assert "not an earlier run's folder (it holds notes.txt)" in _one_error_line(capsys)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "mine", "s.yaml"]  # no temporaries


def test_run_out_is_written_whole_and_replaces_an_earlier_run(tmp_path, synth_profile, monkeypatch):
    import simulator.runner

    f = _write(tmp_path, synth_profile)
    out = tmp_path / "out"
    assert main(["run", str(f), "--out", str(out), "--quiet"]) == 0
    assert (out / "timeline.parquet").exists()
    (out / "report").mkdir()  # a report drawn from that run goes with it
    real = simulator.runner.run_scenario
    seen = []

    def watch(*a, **k):  # while simulating, out still holds the earlier run, complete
        seen.append(sorted(p.name for p in out.iterdir()))
        return real(*a, **k)

    monkeypatch.setattr(simulator.runner, "run_scenario", watch)
    assert main(["run", str(f), "--out", str(out), "--quiet", "--set", "timeline=false",
                 "--set", "workload.rate_per_s=4"]) == 0
    assert "timeline.parquet" in seen[0]
    names = sorted(p.name for p in out.iterdir())
    assert "timeline.parquet" not in names and "report" not in names  # nothing stale beside the new run
    assert {"summary.csv", "requests.parquet", "config.yaml", "manifest.json"} <= set(names)
    assert yaml.safe_load((out / "config.yaml").read_text())["workload"]["rate_per_s"] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "s.yaml"]  # no temporaries left


def test_run_disk_full_is_one_line_and_keeps_the_earlier_run(tmp_path, synth_profile, monkeypatch, capsys):
    import errno

    import simulator.output

    f = _write(tmp_path, synth_profile)
    out = tmp_path / "out"
    assert main(["run", str(f), "--out", str(out), "--quiet"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()

    def full(path, df):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(simulator.output, "write_parquet", full)
    assert main(["run", str(f), "--out", str(out), "--quiet", "--set", "seed=9"]) == 2
    line = _one_error_line(capsys)
    assert f"cannot write results to {out}: No space left on device" in line
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "s.yaml"]


def test_run_sigterm_while_simulating_leaves_nothing(tmp_path, synth_profile):
    import signal
    import time

    f = _write(tmp_path, synth_profile, workload={"rate_per_s": 3, "requests": 200000})
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "run_sim.py", "run", str(f), "--out", str(out), "--quiet",
                             "--workers", "2"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".out.*.tmp")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    time.sleep(0.5)  # simulating now
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err  # interrupted, not run to the end (no wall-clock bound: a loaded CI)
    assert "Traceback" not in err and "interrupted (SIGTERM)" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml"]


def test_every_request_in_the_warm_up_is_a_warning_not_a_crash(tmp_path, synth_profile, capsys):
    f = _write(tmp_path, synth_profile, workload={"rate_per_s": 3, "requests": 12, "warmup_s": 100})
    assert main(["validate", str(f)]) == 0
    assert "inside the warm-up (workload.warmup_s = 100 s)" in capsys.readouterr().err
    out = tmp_path / "out"
    assert main(["run", str(f), "--out", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "warning: every request (12 per policy) arrived in the warm-up (workload.warmup_s = 100 s)" in err
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 3 and summary["accuracy"].isna().all()  # rows with NaN, as before


def test_a_replication_entirely_in_the_warm_up_is_named():
    from types import SimpleNamespace

    from simulator.cli import warmup_warning

    sc = SimpleNamespace(workload=SimpleNamespace(warmup_s=2.5), policies=["a"])
    df = pd.DataFrame({"replication": [0, 0, 1, 1, 2], "warmup": [True, True, False, True, True]})
    assert warmup_warning(sc, df) == ("replication(s) 0, 2 had every request in the warm-up "
                                      "(workload.warmup_s = 2.5 s): their rows are NaN")
    assert warmup_warning(sc, df.assign(warmup=False)) == ""
