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


def test_profile_refuses_to_overwrite_without_force(tmp_path, capsys):
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
