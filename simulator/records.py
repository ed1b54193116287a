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
        return self.records(label, replication, split, warmup_s, deadline_ms).frame()

    def records(self, label: str, replication: int, split: Split, warmup_s: float,
                deadline_ms: float | None) -> RequestRecords:
        """These records as :class:`RequestRecords` (arrays; the table built when asked)."""
        status = (self._reason, self._failovers) if self.status else None
        return RequestRecords({k: np.asarray(v) if k not in TEXT_COLUMNS else v for k, v in self._cols.items()},
                              self.tier_names, self.link_names, label, replication, split, warmup_s, deadline_ms,
                              status)


TEXT_COLUMNS = ("plan", "plan_exits", "route")


class RequestRecords:
    """The per-request records of one simulation as arrays: raw columns (:meth:`RequestLog.columns`, in
    request-id order once sorted here), what follows from them (:meth:`derived`), and the
    ``requests.parquet`` table, built only when asked (:meth:`frame`). ``status`` gives each request's
    failure reason and failovers when devices can fail."""

    def __init__(self, cols: dict, tier_names: list[str], link_names: list[str], label: str, replication: int,
                 split: Split, warmup_s: float, deadline_ms: float | None,
                 status: tuple[list, list] | None = None):
        rid = np.asarray(cols["request_id"])
        order = None if np.all(rid[1:] >= rid[:-1]) else np.argsort(rid, kind="stable")
        self.cols = cols if order is None else {k: _take(v, order) for k, v in cols.items()}
        self.status = None if status is None else tuple(_take(np.asarray(v, dtype=object if i == 0 else None), order)
                                                        if order is not None else v for i, v in enumerate(status))
        self.tier_names, self.link_names = list(tier_names), list(link_names)
        self.label, self.replication, self.split = label, replication, split
        self.warmup_s, self.deadline_ms = warmup_s, deadline_ms
        self._derived: dict | None = None
        self._frame: pd.DataFrame | None = None

    def __len__(self) -> int:
        return len(self.cols["request_id"])

    def derived(self) -> dict[str, np.ndarray]:
        """Per request, as arrays: ``done``, ``dropped``, ``failed``, ``warmup``, ``latency_ms``, ``correct``,
        ``confidence``, ``energy_mobile_j``, ``bytes_total``, ``cost``, ``deadline_met`` (with a deadline)."""
        if self._derived is None:
            c, split = self.cols, self.split
            exit_layer = np.asarray(c["exit_layer"])
            done = exit_layer > 0
            layer_idx = np.maximum(exit_layer - 1, 0)
            s = np.asarray(c["sample"])
            failed = (np.asarray(self.status[0], dtype=object) != "") if self.status is not None else \
                np.zeros(len(s), dtype=bool)
            latency = (np.asarray(c["finish_s"], dtype=float) - np.asarray(c["arrival_s"], dtype=float)) * 1e3
            byte_cols = [np.asarray(c[f"bytes_{n}"]) for n in self.link_names]
            d = {"done": done, "failed": failed, "dropped": ~done & ~failed,
                 "warmup": np.asarray(c["arrival_s"]) < self.warmup_s, "latency_ms": latency,
                 "correct": done & split.correct[s, layer_idx],
                 "confidence": np.where(done, split.confidence[s, layer_idx], np.nan),
                 "energy_mobile_j": np.asarray(c["energy_compute_j"]) + np.asarray(c["energy_radio_j"]),
                 "bytes_total": np.sum(byte_cols, axis=0) if byte_cols else np.zeros(len(s), dtype=np.int64),
                 "cost": np.where(done, np.asarray(c["layer_cost"]) + np.asarray(c["offload_cost"]), np.nan)}
            if self.deadline_ms is not None:
                d["deadline_met"] = done & (latency <= self.deadline_ms)
            self._derived = d
        return self._derived

    def summary_arrays(self) -> dict[str, np.ndarray]:
        """The columns :func:`simulator.metrics.summary_of` and the paired accuracy drop read."""
        d, c = self.derived(), self.cols
        names = np.array([*self.tier_names, ""])
        a = {k: d[k] for k in ("warmup", "dropped", "latency_ms", "correct", "cost", "energy_mobile_j", "bytes_total")}
        a["exit_tier"] = names[np.where(d["done"], np.asarray(c["exit_tier_index"]), len(self.tier_names))]
        for k in ("finish_s", "arrival_s", "exit_layer", "energy_compute_j", "energy_radio_j", "request_id", "sample",
                  *(f"queue_s_{t}" for t in self.tier_names)):
            a[k] = np.asarray(c[k])
        a["replication"] = np.full(len(self), self.replication, dtype=np.int64)
        if self.status is not None:
            a["failed"] = d["failed"]
        return a

    def column(self, name: str) -> np.ndarray:
        """A raw or derived column as an array."""
        d = self.derived()
        return d[name] if name in d else np.asarray(self.cols[name])

    def frame(self) -> pd.DataFrame:
        """The ``requests.parquet`` rows, sorted by request id (a column given as a function is built now)."""
        if self._frame is None:
            self.cols = {k: v() if callable(v) else v for k, v in self.cols.items()}
            self._frame = _request_frame(self)
        return self._frame


def _take(v, order: np.ndarray):
    return [v[i] for i in order] if isinstance(v, list) else np.asarray(v)[order]


def _request_frame(rec: RequestRecords) -> pd.DataFrame:
    d = rec.derived()
    df = pd.DataFrame(rec.cols)
    if rec.status is not None:
        df["failovers"] = rec.status[1]
    names = pd.array([*rec.tier_names, None], dtype="str")  # taken from (fast); null where there is no tier
    done, failed, dropped = d["done"], d["failed"], d["dropped"]
    df.insert(0, "policy", rec.label)
    df.insert(1, "replication", rec.replication)
    df["sample_id"] = rec.split.ids[df["sample"].to_numpy()]
    df["latency_ms"] = d["latency_ms"]
    df["dropped"] = dropped
    blank = len(rec.tier_names)
    df["exit_tier"] = names.take(np.where(done, df["exit_tier_index"].to_numpy(), blank))
    df["drop_tier"] = names.take(np.where(dropped, df["dropped_tier_index"].to_numpy(), blank))
    df["correct"] = d["correct"]
    df["confidence"] = d["confidence"]
    df["energy_mobile_j"] = d["energy_mobile_j"]
    df["bytes_total"] = d["bytes_total"] if rec.link_names else 0
    df["cost"] = d["cost"]
    df["warmup"] = d["warmup"]
    if rec.deadline_ms is not None:
        df["deadline_met"] = d["deadline_met"]
    if rec.status is not None:
        why = np.asarray(rec.status[0], dtype=object)
        df["failed"] = failed
        df["status"] = np.where(done, "completed", np.where(failed, "failed", "dropped"))
        df["reason"] = np.where(dropped, "queue_full:" + df["drop_tier"], why)
    return df.drop(columns=["exit_tier_index", "dropped_tier_index", "layer_cost", "offload_cost"])


class SimResult:
    """Flat outputs of one (policy, replication) simulation. ``requests`` (the per-request table) is
    built from ``records`` the first time it is read; summaries read the arrays directly."""

    def __init__(self, policy: str, replication: int, requests: pd.DataFrame | None = None,
                 timeline: pd.DataFrame | None = None, devices=None, wall_s: float = 0.0,
                 decisions: dict | None = None, engine: str = "simpy", engine_reason: str = "",
                 records: RequestRecords | None = None):
        self.policy, self.replication = policy, replication
        self._requests, self.records = requests, records
        self._devices = devices  # a table, or a function that builds it when first read
        self.timeline, self.wall_s, self.decisions = timeline, wall_s, decisions
        self.engine = engine  # the engine that ran it (simulator/engines.py)
        self.engine_reason = engine_reason  # with engine: auto, why the fast engine did not

    @property
    def devices(self) -> pd.DataFrame:
        if callable(self._devices):
            self._devices = self._devices()
        return self._devices

    @property
    def requests(self) -> pd.DataFrame:
        if self._requests is None:
            self._requests = self.records.frame()
        return self._requests


def policy_record(policy, spec: str | dict, replication: int) -> dict:
    """What a policy was and chose for one replication: its spec with every parameter filled in, the
    choices ``start()`` made, and (filled in after the run) what it learned. Plain data."""
    from .policies.registry import policy_label, resolved_spec

    label = policy_label(spec)
    return {"policy": label, "replication": replication, "spec": resolved_spec(policy, label, spec),
            "decisions": policy.decisions(), "learned": {}}


def device_frame(live: LiveNetwork, label: str, replication: int, end_s: float) -> pd.DataFrame:
    """One row per device (energy, busy time, drops, final temperature), per link direction of each
    device (for a shared link: each user's own transmission time and bytes) and per shared link (busy:
    at least one transfer active; bytes carried; ``mean_active``: active transfers averaged over the run)."""
    tiers = live.network.tiers
    rows = []
    for tier in live.devices:
        for j, d in enumerate(tier):
            rows.append({"policy": label, "replication": replication, "device": d.name,
                         "tier": tiers[d.tier].name, "energy_j": d.energy_j, "busy_s": d.busy_s,
                         "drops": d.drops, "final_temp_c": d.temperature_c, "end_s": end_s})
            for unit, busy in getattr(d, "unit_busy_s", {}).items():  # a device with units (unit_device.py)
                rows[-1][f"busy_s_{unit}"] = busy
            health = live.health.get((d.tier, j))
            if health is not None:  # only in scenarios where devices fail
                rows[-1].update(failures=health.failures, down_s=health.down_s(end_s))
            if live.rrc is not None and d.tier == 0:  # RRC radio totals of this phone
                r = live.rrc[j]
                rows[-1].update(promotions=r.promotions, radio_promotion_j=r.promotion_j, radio_tail_j=r.tail_j)
                if r.spec.inactive_s > 0:  # an RRC_INACTIVE state (5G SA): resumes from it
                    rows[-1]["resumes"] = r.resumes
    link_health = getattr(live, "link_health", {})
    for link, ups, downs in zip(live.network.links, live.up, live.down, strict=True):
        for j, ch in [*enumerate(ups), *enumerate(downs)]:
            rows.append({"policy": label, "replication": replication, "device": ch.name, "tier": link.name,
                         "busy_s": ch.busy_s, "bytes": ch.bits_sent / 8, "end_s": end_s})
            health = link_health.get((link.index, j))
            if health is not None:  # only links that can fail (both directions go down together)
                rows[-1].update(failures=health.failures, down_s=health.down_s(end_s))
    for sh in live.shared:  # a shared link itself (the per-user rows above overlap in time)
        rows.append({"policy": label, "replication": replication, "device": sh.name, "tier": sh.link,
                     "busy_s": sh.busy_s, "bytes": sh.bits_carried / 8,
                     "mean_active": sh.active_s / end_s if end_s > 0 else 0.0, "end_s": end_s})
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
    for sh in live.shared:  # shared links: transfers active, capacity / active (each user's rate at fair share)
        a = _with_capacity_steps(np.asarray(sh.series or [(0.0, 0, 0.0)], dtype=float), sh.path, end_s)
        for col, series in ((1, "active_transfers"), (2, "per_user_mbps")):
            parts.append(pd.DataFrame({"time_s": a[:, 0], "series": series, "entity": sh.name,
                                       "tier": "shared", "value": a[:, col]}))
    df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["time_s", "series", "entity", "tier", "value"])
    df.insert(0, "policy", label)
    df.insert(1, "replication", replication)
    return df


def _with_capacity_steps(series: np.ndarray, path, end_s: float) -> np.ndarray:
    """A shared link's (time, active, capacity / active) series, at every transfer start or end as logged,
    plus a point at every step of its capacity between them (the rate changes there too)."""
    steps, mbps = path.steps_until(end_s)
    new = np.setdiff1d(steps[steps > series[0, 0]], series[:, 0])
    if not len(new):
        return series
    at = np.searchsorted(series[:, 0], new, side="right") - 1  # the last logged event before each step
    n = series[at, 1]
    rate = mbps[np.searchsorted(steps, new, side="right") - 1]
    added = np.column_stack([new, n, np.where(n > 0, rate / np.maximum(n, 1), 0.0)])
    out = np.concatenate([series, added])
    return out[np.argsort(out[:, 0], kind="stable")]
