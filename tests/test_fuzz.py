"""Fuzz: mutated shipped scenarios either validate and run, or are refused with one clear line.

Every numeric leaf of each shipped scenario is set to -1, 0, NaN, infinity or a huge value, and leaves
are given wrong types; a seeded sample of these mutations (bounded in time) must each either be rejected
by validation with a ``ConfigError`` of one short line, or validate and run every policy on a few
requests: never another exception, never a hang.
"""

from __future__ import annotations

import copy
import math
import signal
from pathlib import Path

import numpy as np
import pytest

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
