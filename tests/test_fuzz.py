"""Fuzz: mutated shipped scenarios either validate and run, or are refused with one clear line.

Every numeric leaf of each shipped scenario is set to -1, 0, NaN, infinity or a huge value, and leaves
are given wrong types; a seeded sample of these mutations (bounded in time) must each either be rejected
by validation with a ``ConfigError`` of one short line, or validate and run every policy on a few
requests: never another exception, never a hang.
"""

from __future__ import annotations

import copy
import hashlib
import math
import re
import signal
from pathlib import Path

import numpy as np
import pytest
import yaml

from simulator.cli import main
from simulator.config import read_yaml, scenario_from_dict
from simulator.engine import Simulation
from simulator.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = ["default.yaml", "thermal.yaml", "splitee.yaml", "direct_cloud.yaml", "dimee_glue.yaml"]
VALUES = [-1, 0, float("nan"), float("inf"), 1e12, "x", [], {}, None, True]
PER_MUTATION_S = 20


def leaves(node, path=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from leaves(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from leaves(v, (*path, i))
    elif isinstance(node, int | float) and not isinstance(node, bool):
        yield path


def mutated(data, path, value):
    d = copy.deepcopy(data)
    node = d
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return d


def mutations(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    cases = []
    for name in SCENARIOS:
        data = read_yaml(REPO / "scenarios" / name)
        data["workload"]["requests"] = 24
        data["replications"] = 1
        data["timeline"] = False
        for path in leaves(data):
            if path in (("workload", "requests"), ("replications",)):
                continue
            for v in VALUES:
                cases.append((name, data, path, v))
    pick = rng.choice(len(cases), size=min(n, len(cases)), replace=False)
    return [cases[i] for i in sorted(pick)]


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


@pytest.mark.parametrize("case", mutations(60), ids=lambda c: f"{c[0]}:{'.'.join(map(str, c[2]))}={c[3]!r}")
def test_mutation_is_refused_clearly_or_runs(case, shared_data, monkeypatch):
    name, data, path, value = case
    monkeypatch.setenv("EESIM_SHARED_DATA", str(shared_data))
    monkeypatch.chdir(REPO)
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(PER_MUTATION_S)
    try:
        try:
            sc = scenario_from_dict(mutated(data, path, value), REPO / "scenarios")
        except ConfigError as e:
            msg = str(e)
            assert "\n" not in msg and len(msg) < 400, msg
            return
        if isinstance(value, float) and not math.isfinite(value):
            pytest.fail(f"{value!r} at {path} validated")
        for spec in sc.policies:
            try:
                Simulation(sc, spec).run()
            except ConfigError as e:  # policies check their parameters against the tiers when they start
                assert "\n" not in str(e)
    except Hang:
        pytest.fail(f"hang: more than {PER_MUTATION_S}s")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# -- files, through the command line: exit 0 (valid, runs) or 2 (one ``error:`` line), never a traceback --
TRACE = "".join(f"{t} {2 + (t * 7) % 5}.5\n" for t in range(40))
ARRIVALS = "".join(f"{0.05 * k:.2f}\n" for k in range(20))
HUGE = ["1e300", "-1e300", "1e308", "1e400", "1e-300", "nan", "-nan", "inf", "-inf", "NaN", "1e12", "-1"]


NON_FINITE = {"nan", "-nan", "NaN", "inf", "-inf", "1e400"}


def _file_mutations(n: int, seed: int = 1):
    """(kind, bytes, must be refused) triples: a trace, an arrival file or a scenario with binary bytes, NUL
    bytes, a line of nan or inf, a number replaced by a huge or tiny one, a line cut short. Binary content,
    and a non-finite number in a data file, must be refused (not silently read)."""
    rng = np.random.default_rng(seed)
    scenario = (REPO / "scenarios" / "default.yaml").read_text()
    out = []
    for kind, text in (("trace", TRACE), ("arrivals", ARRIVALS), ("scenario", scenario)):
        lines = text.splitlines(keepends=True)
        out.append((kind, bytes(rng.integers(0, 256, 300, dtype=np.uint8)), True))  # binary garbage
        out.append((kind, text.encode()[:40] + b"\x00\x00\xff\xfe" + text.encode()[40:], True))
        for _ in range(n):
            i = int(rng.integers(len(lines)))
            v = HUGE[int(rng.integers(len(HUGE)))]
            mutated = list(lines)
            op = int(rng.integers(3))
            if op == 0:  # a line of v
                mutated.insert(i, (f"{i} {v}\n" if kind == "trace" else f"{v}\n") if kind != "scenario" else
                               f"# {v}\n")
            elif op == 1:  # a number on line i replaced by v
                nums = re.findall(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])", mutated[i])
                if not nums:
                    continue
                mutated[i] = mutated[i].replace(nums[int(rng.integers(len(nums)))], v, 1)
            else:  # line i cut short
                mutated[i] = mutated[i][: int(rng.integers(len(mutated[i]) + 1))].rstrip("\n") + "\n"
            out.append((kind, "".join(mutated).encode(), kind != "scenario" and op < 2 and v in NON_FINITE))
    return out


@pytest.mark.parametrize("case", _file_mutations(8), ids=lambda c: f"{c[0]}-{hashlib.sha1(c[1]).hexdigest()[:8]}")
def test_mutated_files_exit_0_or_2_through_the_cli(case, tmp_path, shared_data, monkeypatch, capsys):
    kind, content, must_refuse = case
    monkeypatch.setenv("EESIM_SHARED_DATA", str(shared_data))
    monkeypatch.chdir(REPO)
    data = read_yaml(REPO / "scenarios" / "default.yaml")
    data.update(replications=1, timeline=False, profile=str(REPO / data["profile"]))
    data["workload"].update(requests=24, warmup_s=0)
    (tmp_path / "trace.txt").write_text(TRACE)
    data["links"]["uplink"]["bandwidth"] = {"model": "trace", "file": str(tmp_path / "trace.txt")}
    if kind == "trace":
        (tmp_path / "trace.txt").write_bytes(content)
    if kind == "arrivals":
        (tmp_path / "arrivals.txt").write_bytes(content)
        data["workload"] = {"arrival": "file", "file": str(tmp_path / "arrivals.txt")}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    if kind == "scenario":
        path.write_bytes(content)
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(PER_MUTATION_S)
    try:
        rc = main(["validate", str(path)])
        if rc == 0:
            rc = main(["run", str(path), "--quiet", "--replications", "1", "--out", str(tmp_path / "out")])
    except Hang:
        pytest.fail(f"hang: more than {PER_MUTATION_S}s")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    err = capsys.readouterr().err
    assert rc in (0, 2)
    if must_refuse:
        assert rc == 2, "binary content or a non-finite number was accepted"
    if rc == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and len(lines[0]) < 400, err


def test_a_binary_trace_is_exit_2_without_traceback(tmp_path, synth_profile):
    import subprocess
    import sys

    trace = tmp_path / "t.txt"
    trace.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x01")
    data = {"profile": str(synth_profile), "tiers": {"mobile": {"device": "phone-cpu", "layers": [1, 3]},
                                                     "cloud": {"device": "cloud-gpu", "layers": [4, 6]}},
            "links": {"up": {"bandwidth": {"model": "trace", "file": str(trace)}}}, "policies": ["all-cloud"]}
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(data))
    r = subprocess.run([sys.executable, "run_sim.py", "validate", str(f)], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    assert r.stderr == f"error: 'links.up.bandwidth.file': {trace}: not a text (UTF-8) file\n"
