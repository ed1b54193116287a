"""Flat records of a simulation: the per-request record, its derived columns, the abstract cost, and the
per-device and timeline tables.

An engine appends one raw record per request to a :class:`RequestLog` (plain column lists, in the
order of :meth:`RequestLog.columns`); :meth:`RequestLog.frame` turns them into the ``requests.parquet``
table, adding what follows from the profile (correctness, confidence), the scenario (warm-up, deadline)
and the :class:`CostModel`. Every engine shares this, so their outputs have the same columns and meaning.

When devices can fail (``status=True``), every request ends in exactly one ``status``: ``completed``,
``dropped`` (a full queue; ``reason`` ``queue_full:<tier>``) or ``failed`` (lost to a failure and not
recovered by the failover rule; ``reason`` from :func:`simulator.failures.failed_reason`); ``dropped``
keeps meaning a queue drop, ``failed`` is its own column and ``failovers`` counts the recoveries a request
took. Without failures these columns are not written (the table is unchanged).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .profile import Split

if TYPE_CHECKING:
    from .live import LiveNetwork


@dataclass(frozen=True)
class CostModel:
    """The early-exit papers' abstract cost of one request: layers computed + offloading.

    Layers cost ``lambda_per_tier[t]`` each on tier t (one value everywhere in today's formula; the
    SplitEE authors' code charges only on-device layers). Moving a request's state up from tier a to
    tier b costs ``link_offload`` of every link its route crosses, plus ``route_offload[(a, b)]`` (zero
    unless the cost is given per route). See :func:`simulator.config.CostConfig`.
    """

    lambda_per_tier: tuple[float, ...]
    link_offload: tuple[float, ...]
    chain: tuple[int, ...]  # chain[i]: the link from tier i to tier i + 1
    routes: dict = field(default_factory=dict, compare=False)  # (a, b) -> link indices
    route_offload: dict = field(default_factory=dict, compare=False)  # (a, b) -> cost

    @property
    def uniform(self) -> bool:
        return len(set(self.lambda_per_tier)) <= 1

    def layers(self, owner: tuple[int, ...], exit_layer: int) -> float:
        """Cost of computing layers 1..``exit_layer`` where ``owner[k-1]`` runs layer k."""
        if self.uniform:
            return self.lambda_per_tier[0] * exit_layer
        return float(sum(self.lambda_per_tier[t] for t in owner[:exit_layer]))

    def move(self, a: int, b: int) -> float:
        """Offload cost of moving a request's state up from tier ``a`` to tier ``b`` over its route."""
        total = 0.0
        for link in self.routes.get((a, b), ()):
            total += self.link_offload[link]
        return total + self.route_offload.get((a, b), 0.0)

    def plan_cost(self, owner: tuple[int, ...], exit_layer: int) -> float:
        """Cost of a request that runs layer k on ``owner[k-1]`` and exits after ``exit_layer``."""
        offload, cur = 0.0, 0
        for t in owner[:exit_layer]:
            if t != cur:
                offload += self.move(cur, t)
                cur = t
        return self.layers(owner, exit_layer) + offload


def describe_plan(tiers: tuple[int, ...], exits, last_layer: int, tier_names: list[str]) -> tuple[str, str]:
    """A plan as text: where layers run (``"mobile 1-2, edge 3-4"``, up to its last layer) and its exits."""
    parts, start = [], 1
    for k in range(2, last_layer + 2):
        if k > last_layer or tiers[k - 1] != tiers[start - 1]:
            span = f"{start}" if k - 1 == start else f"{start}-{k - 1}"
            parts.append(f"{tier_names[tiers[start - 1]]} {span}")
            start = k
    return ", ".join(parts), ",".join(str(e) for e in sorted(exits) if e <= last_layer)


class RequestLog:
    """Raw per-request records of one (policy, replication) simulation, as column lists."""

    def __init__(self, tier_names: list[str], link_names: list[str], status: bool = False):
        self.tier_names = list(tier_names)
        self.link_names = list(link_names)
        self.status = status
        self._cols: dict[str, list] = {k: [] for k in self.columns()}
        self._plans: dict = {}
        self._reason: list[str] = []
        self._failovers: list[int] = []

    def columns(self) -> list[str]:
        """Raw columns, in the order :meth:`append` takes them."""
        names = ["request_id", "mobile", "sample", "tokens", "arrival_s", "finish_s", "exit_layer",
                 "exit_tier_index", "dropped_tier_index", "transfer_s", "energy_compute_j", "energy_radio_j"]
        names += [f"queue_s_{t}" for t in self.tier_names] + [f"compute_s_{t}" for t in self.tier_names]
        names += [f"bytes_{name}" for name in self.link_names]
        return [*names, "plan", "plan_exits", "route", "explore", "layer_cost", "offload_cost"]

    def append(self, rid: int, mobile: int, sample: int, tokens: int, arrival: float, finish: float,
               exit_layer: int, tier: int, dropped_at: int, transfer_s: float, e_compute: float,
               e_radio: float, queue_s: list[float], compute_s: list[float], nbytes_link: list[int],
               plan: tuple[str, str], route: str, explore: bool, layer_cost: float,
               offload_cost: float, failed: str = "", failovers: int = 0) -> None:
        """One request; ``exit_layer`` 0 means dropped at tier ``dropped_at``, or failed (``failed``: why);
        ``plan`` from :func:`describe_plan`, ``route`` the links the request's state crossed, in order."""
        values = [rid, mobile, sample, tokens, arrival, finish, exit_layer, tier, dropped_at, transfer_s,
                  e_compute, e_radio, *queue_s, *compute_s, *nbytes_link, *plan, route, explore, layer_cost,
                  offload_cost]
        for col, v in zip(self._cols.values(), values, strict=True):
            col.append(v)
        if self.status:
            self._reason.append(failed)
            self._failovers.append(failovers)

    def describe(self, plan) -> tuple[str, str]:
        """:func:`describe_plan` of a :class:`~simulator.policies.base.Plan`, cached per plan."""
        text = self._plans.get(plan)
        if text is None:
            text = self._plans[plan] = describe_plan(plan.tiers, plan.exits, plan.last_layer, self.tier_names)
        return text

    def __len__(self) -> int:
        return len(self._cols["request_id"])

    def frame(self, label: str, replication: int, split: Split, warmup_s: float,
              deadline_ms: float | None) -> pd.DataFrame:
        """The ``requests.parquet`` rows of this simulation, sorted by request id."""
        status = (self._reason, self._failovers) if self.status else None
        return request_frame(self._cols, self.tier_names, self.link_names, label, replication, split, warmup_s,
                             deadline_ms, status)


def request_frame(cols: dict, tier_names: list[str], link_names: list[str], label: str, replication: int,
                  split: Split, warmup_s: float, deadline_ms: float | None,
                  status: tuple[list, list] | None = None) -> pd.DataFrame:
    """The ``requests.parquet`` rows from raw columns (:meth:`RequestLog.columns`, lists or arrays),
    sorted by request id; ``status`` gives each request's failure reason and failovers when devices can
    fail."""
    df = pd.DataFrame(cols)
    if status is not None:
        df["failed_reason"], df["failovers"] = status
    df = df.sort_values("request_id", kind="stable").reset_index(drop=True)
    names = pd.array([*tier_names, ""], dtype="str")  # taken from, so str columns are built fast
    done = df["exit_layer"].to_numpy() > 0
    layer_idx = np.maximum(df["exit_layer"].to_numpy() - 1, 0)
    s = df["sample"].to_numpy()
    df.insert(0, "policy", label)
    df.insert(1, "replication", replication)
    df["sample_id"] = split.ids[s]
    df["latency_ms"] = (df["finish_s"] - df["arrival_s"]) * 1e3
    why = df.pop("failed_reason").to_numpy(dtype=object) if status is not None else np.full(len(df), "", object)
    failed = why != ""
    dropped = ~done & ~failed
    df["dropped"] = dropped
    blank = len(tier_names)
    df["exit_tier"] = names.take(np.where(done, df["exit_tier_index"].to_numpy(), blank))
    df["drop_tier"] = names.take(np.where(dropped, df["dropped_tier_index"].to_numpy(), blank))
    df["correct"] = done & split.correct[s, layer_idx]
    df["confidence"] = np.where(done, split.confidence[s, layer_idx], np.nan)
    df["energy_mobile_j"] = df["energy_compute_j"] + df["energy_radio_j"]
    byte_cols = [f"bytes_{n}" for n in link_names]
    df["bytes_total"] = df[byte_cols].sum(axis=1) if byte_cols else 0
    df["cost"] = np.where(done, df["layer_cost"] + df["offload_cost"], np.nan)
    df["warmup"] = df["arrival_s"] < warmup_s
    if deadline_ms is not None:
        df["deadline_met"] = done & (df["latency_ms"] <= deadline_ms)
    if status is not None:
        df["failed"] = failed
        df["status"] = np.where(done, "completed", np.where(failed, "failed", "dropped"))
        df["reason"] = np.where(dropped, "queue_full:" + df["drop_tier"], why)
    return df.drop(columns=["exit_tier_index", "dropped_tier_index", "layer_cost", "offload_cost"])


@dataclass
class SimResult:
    """Flat outputs of one (policy, replication) simulation."""

    policy: str
    replication: int
    requests: pd.DataFrame
    timeline: pd.DataFrame | None
    devices: pd.DataFrame
    wall_s: float = 0.0
    decisions: dict | None = None  # see policy_record
    engine: str = "simpy"  # the engine that ran it (simulator/engines.py)
    engine_reason: str = ""  # with engine: auto, why the fast engine did not


def policy_record(policy, spec: str | dict, replication: int) -> dict:
    """What a policy was and chose for one replication: its spec with every parameter filled in, the
    choices ``start()`` made, and (filled in after the run) what it learned. Plain data."""
    from .policies.registry import policy_label, resolved_spec

    label = policy_label(spec)
    return {"policy": label, "replication": replication, "spec": resolved_spec(policy, label),
            "decisions": policy.decisions(), "learned": {}}


def device_frame(live: LiveNetwork, label: str, replication: int, end_s: float) -> pd.DataFrame:
    """One row per device (energy, busy time, drops, final temperature) and per link direction."""
    tiers = live.network.tiers
    rows = []
    for tier in live.devices:
        for j, d in enumerate(tier):
            rows.append({"policy": label, "replication": replication, "device": d.name,
                         "tier": tiers[d.tier].name, "energy_j": d.energy_j, "busy_s": d.busy_s,
                         "drops": d.drops, "final_temp_c": d.temperature_c, "end_s": end_s})
            health = live.health.get((d.tier, j))
            if health is not None:  # only in scenarios where devices fail
                rows[-1].update(failures=health.failures, down_s=health.down_s(end_s))
            if live.rrc is not None and d.tier == 0:  # RRC radio totals of this phone
                r = live.rrc[j]
                rows[-1].update(promotions=r.promotions, radio_promotion_j=r.promotion_j, radio_tail_j=r.tail_j)
    for link, ups, downs in zip(live.network.links, live.up, live.down, strict=True):
        for ch in (*ups, *downs):
            rows.append({"policy": label, "replication": replication, "device": ch.name, "tier": link.name,
                         "busy_s": ch.busy_s, "bytes": ch.bits_sent / 8, "end_s": end_s})
    return pd.DataFrame(rows)


def timeline_frame(live: LiveNetwork, label: str, replication: int, end_s: float) -> pd.DataFrame:
    """Over time: requests in system per device, temperature and frequency, bandwidth of every uplink,
    and ``up`` (1/0) of devices that can fail."""
    tiers = live.network.tiers
    parts = []
    for (t, j), health in live.health.items():
        steps = [(0.0, 1.0)] + [p for a, b in health.windows for p in ((a, 0.0), (b, 1.0))]
        a = np.asarray([s for s in steps if s[0] <= end_s], dtype=float)  # a repair after the end: not shown
        parts.append(pd.DataFrame({"time_s": a[:, 0], "series": "up", "entity": live.devices[t][j].name,
                                   "tier": tiers[t].name, "value": a[:, 1]}))
    for tier in live.devices:
        for d in tier:
            if not d.trace:
                continue
            a = np.asarray(d.trace, dtype=float)
            for col, series in ((1, "in_system"), (2, "temperature_c"), (3, "frequency")):
                if series != "in_system" and d.thermal is None:
                    continue
                parts.append(pd.DataFrame({"time_s": a[:, 0], "series": series, "entity": d.name,
                                           "tier": tiers[d.tier].name, "value": a[:, col]}))
    for link, chans in zip(live.network.links, live.up, strict=True):
        for ch in chans:
            t, r = ch.path.steps_until(end_s)
            parts.append(pd.DataFrame({"time_s": t, "series": "bandwidth_mbps", "entity": ch.name,
                                       "tier": tiers[link.src].name, "value": r}))
    for sh in live.shared:  # shared links, at every event: transfers active, capacity / active (fair rate)
        a = np.asarray(sh.series or [(0.0, 0, 0.0)], dtype=float)
        for col, series in ((1, "active_transfers"), (2, "per_user_mbps")):
            parts.append(pd.DataFrame({"time_s": a[:, 0], "series": series, "entity": sh.name,
                                       "tier": "shared", "value": a[:, col]}))
    df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["time_s", "series", "entity", "tier", "value"])
    df.insert(0, "policy", label)
    df.insert(1, "replication", replication)
    return df
