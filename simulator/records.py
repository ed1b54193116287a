"""Flat records of a simulation: the per-request record, its derived columns, the abstract cost, and the
per-device and timeline tables.

An engine appends one raw record per request to a :class:`RequestLog` (plain column lists, in the
order of :meth:`RequestLog.columns`); :meth:`RequestLog.frame` turns them into the ``requests.parquet``
table, adding what follows from the profile (correctness, confidence), the scenario (warm-up, deadline)
and the :class:`CostModel`. Every engine shares this, so their outputs have the same columns and meaning.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .profile import Split

if TYPE_CHECKING:
    from .live import LiveNetwork


@dataclass(frozen=True)
class CostModel:
    """The early-exit papers' abstract cost: ``lambda`` per layer computed + an offload cost per link crossed.

    ``link_offload[l]`` is the cost of sending a request's state up link ``l`` (scenario order);
    ``tier_offload[t]`` is the cost of climbing from the first tier to tier ``t`` link by link over the
    consecutive chain (what policies predict with; equal to the recorded cost unless a request takes a
    direct link that skips tiers).
    """

    lambda_per_layer: float
    link_offload: tuple[float, ...]
    chain: tuple[int, ...]  # chain[i]: the link from tier i to tier i + 1

    @cached_property
    def tier_offload(self) -> np.ndarray:
        return np.concatenate([[0.0], np.cumsum([self.link_offload[link] for link in self.chain])])

    def cost(self, exit_layer, exit_tier) -> np.ndarray:
        """Cost of exiting after ``exit_layer`` layers at ``exit_tier`` having climbed the chain."""
        return self.lambda_per_layer * np.asarray(exit_layer, dtype=float) + self.tier_offload[np.asarray(exit_tier)]


class RequestLog:
    """Raw per-request records of one (policy, replication) simulation, as column lists."""

    def __init__(self, tier_names: list[str], link_names: list[str]):
        self.tier_names = list(tier_names)
        self.link_names = list(link_names)
        self._cols: dict[str, list] = {k: [] for k in self.columns()}

    def columns(self) -> list[str]:
        """Raw columns, in the order :meth:`append` takes them."""
        names = ["request_id", "mobile", "sample", "tokens", "arrival_s", "finish_s", "exit_layer",
                 "exit_tier_index", "dropped_tier_index", "transfer_s", "energy_compute_j", "energy_radio_j"]
        names += [f"queue_s_{t}" for t in self.tier_names] + [f"compute_s_{t}" for t in self.tier_names]
        names += [f"bytes_{name}" for name in self.link_names]
        return [*names, "offload_cost"]

    def append(self, rid: int, mobile: int, sample: int, tokens: int, arrival: float, finish: float,
               exit_layer: int, tier: int, dropped_at: int, transfer_s: float, e_compute: float,
               e_radio: float, queue_s: list[float], compute_s: list[float], nbytes_link: list[int],
               offload_cost: float) -> None:
        """One request; ``exit_layer`` 0 means dropped at tier ``dropped_at``."""
        values = [rid, mobile, sample, tokens, arrival, finish, exit_layer, tier, dropped_at, transfer_s,
                  e_compute, e_radio, *queue_s, *compute_s, *nbytes_link, offload_cost]
        for col, v in zip(self._cols.values(), values, strict=True):
            col.append(v)

    def __len__(self) -> int:
        return len(self._cols["request_id"])

    def frame(self, label: str, replication: int, split: Split, cost: CostModel, warmup_s: float,
              deadline_ms: float | None) -> pd.DataFrame:
        """The ``requests.parquet`` rows of this simulation, sorted by request id."""
        df = pd.DataFrame(self._cols)
        df = df.sort_values("request_id", kind="stable").reset_index(drop=True)
        names = np.array([*self.tier_names, ""])
        done = df["exit_layer"].to_numpy() > 0
        layer_idx = np.maximum(df["exit_layer"].to_numpy() - 1, 0)
        s = df["sample"].to_numpy()
        df.insert(0, "policy", label)
        df.insert(1, "replication", replication)
        df["sample_id"] = split.ids[s]
        df["latency_ms"] = (df["finish_s"] - df["arrival_s"]) * 1e3
        df["dropped"] = ~done
        df["exit_tier"] = np.where(done, names[df["exit_tier_index"].to_numpy()], "")
        df["drop_tier"] = np.where(done, "", names[df["dropped_tier_index"].to_numpy()])
        df["correct"] = done & split.correct[s, layer_idx]
        df["confidence"] = np.where(done, split.confidence[s, layer_idx], np.nan)
        df["energy_mobile_j"] = df["energy_compute_j"] + df["energy_radio_j"]
        byte_cols = [f"bytes_{n}" for n in self.link_names]
        df["bytes_total"] = df[byte_cols].sum(axis=1) if byte_cols else 0
        df["cost"] = np.where(done, cost.lambda_per_layer * df["exit_layer"] + df["offload_cost"], np.nan)
        df["warmup"] = df["arrival_s"] < warmup_s
        if deadline_ms is not None:
            df["deadline_met"] = done & (df["latency_ms"] <= deadline_ms)
        return df.drop(columns=["exit_tier_index", "dropped_tier_index", "offload_cost"])


@dataclass
class SimResult:
    """Flat outputs of one (policy, replication) simulation."""

    policy: str
    replication: int
    requests: pd.DataFrame
    timeline: pd.DataFrame | None
    devices: pd.DataFrame
    wall_s: float = 0.0


def device_frame(live: LiveNetwork, label: str, replication: int, end_s: float) -> pd.DataFrame:
    """One row per device (energy, busy time, drops, final temperature) and per link direction."""
    tiers = live.network.tiers
    rows = []
    for tier in live.devices:
        for j, d in enumerate(tier):
            rows.append({"policy": label, "replication": replication, "device": d.name,
                         "tier": tiers[d.tier].name, "energy_j": d.energy_j, "busy_s": d.busy_s,
                         "drops": d.drops, "final_temp_c": d.temperature_c, "end_s": end_s})
            if live.rrc is not None and d.tier == 0:  # RRC radio totals of this phone
                r = live.rrc[j]
                rows[-1].update(promotions=r.promotions, radio_promotion_j=r.promotion_j, radio_tail_j=r.tail_j)
    for link, ups, downs in zip(live.network.links, live.up, live.down, strict=True):
        for ch in (*ups, *downs):
            rows.append({"policy": label, "replication": replication, "device": ch.name, "tier": link.name,
                         "busy_s": ch.busy_s, "bytes": ch.bits_sent / 8, "end_s": end_s})
    return pd.DataFrame(rows)


def timeline_frame(live: LiveNetwork, label: str, replication: int, end_s: float) -> pd.DataFrame:
    """Over time: requests in system per device, temperature and frequency, bandwidth of every uplink."""
    tiers = live.network.tiers
    parts = []
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
