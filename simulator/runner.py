"""Run every policy x replication of a scenario, on any ``concurrent.futures`` executor."""

from __future__ import annotations

import time
from concurrent.futures import Executor
from dataclasses import dataclass

import pandas as pd

from .config import Scenario
from .engine import SimResult, simulate
from .metrics import across_replications, paired_accuracy_drop, summarise
from .policies.base import policy_label

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


def _task(args: tuple[Scenario, str | dict, int, bool]) -> SimResult:
    sc, spec, rep, record = args
    return simulate(sc, spec, rep, record_timeline=record)


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
    tiers = list(sc.tiers)
    per_rep = summarise(requests, tiers, sc.deadline_ms)
    summary = across_replications(per_rep)
    order = {policy_label(s): i for i, s in enumerate(sc.policies)}
    summary = summary.sort_values("policy", key=lambda c: c.map(order)).reset_index(drop=True)
    reference = REFERENCE_POLICY if REFERENCE_POLICY in order else None
    if reference is not None:
        summary = summary.merge(paired_accuracy_drop(requests, reference), on="policy", how="left")
    timelines = [r.timeline for r in results if r.timeline is not None]
    return RunResult(
        scenario=sc, requests=requests, per_replication=per_rep, summary=summary,
        devices=pd.concat([r.devices for r in results], ignore_index=True),
        timeline=pd.concat(timelines, ignore_index=True) if timelines else None,
        wall_s=time.perf_counter() - wall)
