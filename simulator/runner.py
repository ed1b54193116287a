"""Run every policy x replication of a scenario, on any ``concurrent.futures`` executor.

:func:`simulate_policy` (one policy, one replication, on the scenario's engine) and :func:`summarise_run`
(request rows -> per-replication and per-policy rows, with the paired accuracy drop against the
reference) are the one way both ``run`` and ``sweep`` simulate and summarise a condition.
"""

from __future__ import annotations

import time
from concurrent.futures import Executor
from dataclasses import dataclass

import pandas as pd

from .config import Scenario
from .engines import get_engine
from .metrics import across_replications, paired_accuracy_drop, summarise
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


def with_accuracy_drop(table: pd.DataFrame, requests: pd.DataFrame) -> pd.DataFrame:
    """``table`` (one row per policy, or per policy x replication) plus the paired accuracy drop against
    the reference policy, computed over the same requests (columns absent without the reference)."""
    if REFERENCE_POLICY not in set(requests["policy"]):
        return table
    drop = paired_accuracy_drop(requests, REFERENCE_POLICY)
    if "replication" in table:
        per = [paired_accuracy_drop(g, REFERENCE_POLICY).assign(replication=r)
               for r, g in requests.groupby("replication", sort=False)]
        drop = pd.concat(per, ignore_index=True)
        return table.merge(drop, on=["policy", "replication"], how="left")
    return table.merge(drop, on="policy", how="left")


def summarise_run(sc: Scenario, requests: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Request rows of every policy -> (one row per policy x replication, one row per policy)."""
    per_rep = summarise(requests, sc.tier_names, sc.deadline_ms)
    summary = across_replications(per_rep)
    order = {policy_label(s): i for i, s in enumerate(sc.policies)}
    summary = summary.sort_values("policy", key=lambda c: c.map(order)).reset_index(drop=True)
    return per_rep, with_accuracy_drop(summary, requests)


def _task(args: tuple[Scenario, str | dict, int, bool]) -> SimResult:
    sc, spec, rep, record = args
    return simulate_policy(sc, spec, rep, record_timeline=record)


def run_scenario(sc: Scenario, executor: Executor | None = None, progress: bool = False) -> RunResult:
    """Simulate every policy on the same request stream for each replication."""
    wall = time.perf_counter()
    tasks = [(sc, spec, rep, sc.timeline and rep == 0)
             for rep in range(sc.replications) for spec in sc.policies]
    mapped = executor.map(_task, tasks) if executor is not None else map(_task, tasks)
    if progress:
        from tqdm import tqdm

        mapped = tqdm(mapped, total=len(tasks), desc=sc.name, unit="sim", leave=False)
    results = list(mapped)
    requests = pd.concat([r.requests for r in results], ignore_index=True)
    per_rep, summary = summarise_run(sc, requests)
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
