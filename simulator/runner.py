"""Run every policy x replication of a scenario, on any ``concurrent.futures`` executor.

:func:`simulate_policy` (one policy, one replication, on the scenario's engine) and
:func:`summarise_results` (simulations -> per-replication and per-policy rows, with the paired accuracy
drop against the reference, computed from the records' arrays) are the one way both ``run`` and
``sweep`` simulate and summarise a condition.
"""

from __future__ import annotations

import time
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .config import Scenario
from .engines import get_engine
from .metrics import (
    DROP_COLUMNS,
    across_replications,
    paired_drop_of,
    paired_drop_rows,
    summary_of,
)
from .policies.registry import policy_label
from .records import SimResult

REFERENCE_POLICY = "all-cloud"  # the early-exit papers' reference: the full model in the cloud


@dataclass
class RunResult:
    """Everything a scenario run produced, as flat tables."""

    scenario: Scenario
    requests: pd.DataFrame  # one row per request
    per_replication: pd.DataFrame  # one row per policy x replication
    summary: pd.DataFrame  # one row per policy
    devices: pd.DataFrame  # one row per device x policy x replication
    timeline: pd.DataFrame | None  # replication 0: bandwidth, queues, temperature over time
    wall_s: float
    decisions: list[dict]  # per policy x replication: resolved spec, start-time choices, what it learned
    engines: list[dict] | None = None  # per policy x replication: the engine that ran it, and why (auto)


def simulate_policy(sc: Scenario, spec: str | dict, replication: int, record_timeline: bool = False) -> SimResult:
    """One policy, one replication, on the engine the scenario names."""
    return get_engine(sc.engine)(sc, spec, replication, record_timeline=record_timeline)


def summarise_results(sc: Scenario, results: list[SimResult]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulations of a condition -> (one row per policy x replication, one row per policy with the
    paired accuracy drop pooled over replications), from the records' arrays: no per-request table."""
    per_rep = pd.DataFrame(replication_rows(sc, results, with_drop=False))
    summary = across_replications(per_rep)
    order = {policy_label(s): i for i, s in enumerate(sc.policies)}
    summary = summary.sort_values("policy", key=lambda c: c.map(order)).reset_index(drop=True)
    groups = [(r.policy, _arrays(r)) for r in results]
    if any(p == REFERENCE_POLICY for p, _ in groups):
        merged: dict[str, dict] = {}
        for p, a in groups:  # pooled over replications, in request order
            m = merged.setdefault(p, {k: [] for k in a})
            for k, v in a.items():
                m[k].append(v)
        pooled = [(p, {k: np.concatenate(v) for k, v in m.items()}) for p, m in merged.items()]
        summary = summary.merge(paired_drop_of(pooled, REFERENCE_POLICY), on="policy", how="left")
    return per_rep, summary


def replication_rows(sc: Scenario, results: list[SimResult], with_drop: bool = True) -> list[dict]:
    """One summary row per simulation (policy x replication), with the paired accuracy drop against the
    reference in the same replication when ``with_drop`` (and the reference ran)."""
    arrays = [_arrays(r) for r in results]
    rows = [{"policy": r.policy, "replication": r.replication, **summary_of(a, sc.tier_names, sc.deadline_ms)}
            for r, a in zip(results, arrays, strict=True)]
    if sc.engine != "simpy":  # which engine ran each simulation, and why not the fast one
        for row, r in zip(rows, results, strict=True):
            row["engine"], row["engine_reason"] = r.engine, r.engine_reason
    if not with_drop or not any(r.policy == REFERENCE_POLICY for r in results):
        return rows
    for rep in dict.fromkeys(r.replication for r in results):
        idx = [i for i, r in enumerate(results) if r.replication == rep]
        drop = {d["policy"]: d for d in paired_drop_rows([(results[i].policy, arrays[i]) for i in idx],
                                                         REFERENCE_POLICY)}
        for i in idx:
            got = drop.get(results[i].policy)
            for col in DROP_COLUMNS[1:]:
                rows[i][col] = got[col] if got is not None else np.nan
    return rows


def _arrays(r: SimResult) -> dict:
    if r.records is None:  # a result built from a table (tests, older engines)
        req = r.requests
        return {c: req[c].to_numpy() for c in req.columns}
    return r.records.summary_arrays()


def _task(args: tuple[Scenario, str | dict, int, bool]) -> SimResult:
    sc, spec, rep, record = args
    return simulate_policy(sc, spec, rep, record_timeline=record)


def simulate_condition(sc: Scenario, replication: int, record_timeline: bool = False) -> list[SimResult]:
    """Every policy of ``sc`` for one replication, in order, sharing their inputs where the engine can
    (the fast engine's network, bandwidth paths and requests)."""
    from .fast.engine import shared_inputs

    with shared_inputs():
        return [simulate_policy(sc, spec, replication, record_timeline=record_timeline) for spec in sc.policies]


def run_scenario(sc: Scenario, executor: Executor | None = None, progress: bool = False) -> RunResult:
    """Simulate every policy on the same request stream for each replication."""
    wall = time.perf_counter()
    tasks = [(sc, spec, rep, sc.timeline and rep == 0)
             for rep in range(sc.replications) for spec in sc.policies]
    if executor is None:  # in this process: the policies of a replication share their inputs
        from .fast.engine import shared_inputs

        def in_process():
            with shared_inputs():
                yield from map(_task, tasks)

        mapped = in_process()
    else:
        mapped = executor.map(_task, tasks)
    if progress:
        from tqdm import tqdm

        mapped = tqdm(mapped, total=len(tasks), desc=sc.name, unit="sim", leave=False)
    results = list(mapped)
    requests = pd.concat([r.requests for r in results], ignore_index=True)
    per_rep, summary = summarise_results(sc, results)
    timelines = [r.timeline for r in results if r.timeline is not None]
    return RunResult(
        scenario=sc, requests=requests, per_replication=per_rep, summary=summary,
        devices=pd.concat([r.devices for r in results], ignore_index=True),
        timeline=pd.concat(timelines, ignore_index=True) if timelines else None,
        wall_s=time.perf_counter() - wall, decisions=[r.decisions for r in results if r.decisions],
        engines=[{"policy": r.policy, "replication": r.replication, "engine": r.engine, "reason": r.engine_reason}
                 for r in results])


def engines_used(engines: list[dict]) -> dict[str, str]:
    """Per policy, the engine(s) that ran its replications (``simpy (why not fast)`` under ``auto``)."""
    out: dict[str, set[str]] = {}
    for e in engines:
        out.setdefault(e["policy"], set()).add(e["engine"] + (f" ({e['reason']})" if e["reason"] else ""))
    return {p: "; ".join(sorted(v)) for p, v in out.items()}
