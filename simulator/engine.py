"""The SimPy model: builds a network from a Scenario and runs one policy for one replication.

Topology: tiers in order (mobile, edge, cloud, ...); tier i has ``count`` devices; device j of tier i
forwards to device ``j % count[i+1]`` of the next tier over its own link (its uplink/backhaul), so N
mobiles share edges, and edges share the cloud. A request is born on a mobile, carries one profile
sample, and walks the layers of its policy's plan: compute stretches on devices (FIFO queues), hidden
states across links, a small reply back down to the mobile.

Random streams are keyed by (seed, replication, stream, index) with ``SeedSequence`` spawn keys, so the
same scenario and seed give the same arrivals, samples and bandwidth for every policy, whatever order
or process runs them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import simpy

from .config import Scenario
from .device import Device, DeviceSpec
from .network import Channel
from .policies.base import Outcome, Plan, Policy, PolicyContext, Request, TierInfo, make_policy, policy_label
from .profile import Profile, get_profile
from .view import EngineView
from .workload import arrival_times, sample_indices

ARRIVALS, SAMPLES, UPLINK, DOWNLINK, POLICY = 1, 2, 3, 4, 5


def stream(seed: int, replication: int, *key: int) -> np.random.Generator:
    """An independent generator for one named stream of one replication."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(replication, *key)))


@dataclass
class SimResult:
    """Flat outputs of one (policy, replication) simulation."""

    policy: str
    replication: int
    requests: pd.DataFrame
    timeline: pd.DataFrame | None
    devices: pd.DataFrame
    wall_s: float = 0.0


def compute_tables(profile: Profile, split_name: str, spec: DeviceSpec) -> tuple[np.ndarray, ...]:
    """Per-sample seconds on a device class: layers [N, L], one exit head [N], embedding [N]."""
    split = profile.splits[split_name]
    if spec.timing is not None:
        timing, scale = spec.timing.as_timing(profile.num_layers), 1.0
    else:
        timing, scale = profile.timing, 1.0 / spec.speed
    tok = split.tokens
    return (timing.layer_seconds(tok) * scale, timing.head_seconds(tok) * scale,
            timing.embed_seconds(tok) * scale)


class Simulation:
    """One policy, one replication of a scenario."""

    def __init__(self, sc: Scenario, policy_spec: str | dict, replication: int = 0,
                 profile: Profile | None = None, record_timeline: bool = False, split: str = "eval"):
        self.sc = sc
        self.profile = profile or get_profile(sc.profile)
        self.split = self.profile.splits[split]
        self.replication = replication
        self.label = policy_label(policy_spec)
        self.record = record_timeline
        env = self.env = simpy.Environment()
        catalogue = sc.catalogue()
        self.payload = sc.payload
        L = self.profile.num_layers

        self.tiers: list[TierInfo] = []
        self.devices: list[list[Device]] = []
        self.layer_s, self.head_s, self.embed_s = [], [], []
        tables: dict[str, tuple[np.ndarray, ...]] = {}
        for i, (name, t) in enumerate(sc.tiers.items()):
            first, last = t.layers if t.layers else (L + 1, L)
            self.tiers.append(TierInfo(i, name, first, last, t.device))
            spec = catalogue[t.device]
            thermal = sc.thermal_for(name)
            self.devices.append([Device(env, f"{name}{j}", i, spec, thermal, t.queue_capacity, self.record)
                                 for j in range(t.count)])
            if t.device not in tables:
                tables[t.device] = compute_tables(self.profile, split, spec)
            ls, hs, es = tables[t.device]
            self.layer_s.append(ls)
            self.head_s.append(hs)
            self.embed_s.append(es)
        self.radio = self.devices[0][0].spec.radio

        self.up: list[list[Channel]] = []
        self.down: list[list[Channel]] = []
        for i, (lname, link) in enumerate(sc.links.items()):
            lat = link.rtt_ms / 2e3
            ups, downs = [], []
            for j in range(len(self.devices[i])):
                k = 0 if link.same_realisation else j
                up_path = link.bandwidth.realise(stream(sc.seed, replication, UPLINK, i, k))
                down_path = link.down_spec.realise(stream(sc.seed, replication, DOWNLINK, i, k))
                ups.append(Channel(env, f"{lname}{j}", up_path, lat, link.ewma_weight))
                downs.append(Channel(env, f"{lname}{j}-down", down_path, lat, link.ewma_weight))
            self.up.append(ups)
            self.down.append(downs)

        n_mobiles = len(self.devices[0])
        self.paths: list[list[int]] = []
        for m in range(n_mobiles):
            p = [m]
            for i in range(1, len(self.devices)):
                p.append(p[-1] % len(self.devices[i]))
            self.paths.append(p)

        self.view = EngineView(self)
        self.policy: Policy = make_policy(policy_spec)
        self.policy.start(PolicyContext(
            profile=self.profile, split=self.split, tiers=self.tiers, num_layers=L,
            lambda_per_layer=sc.cost.lambda_per_layer, offload_costs=sc.offload_costs(),
            rng=stream(sc.seed, replication, POLICY)))
        self._offload_cum = np.concatenate([[0.0], np.cumsum(sc.offload_costs())])
        self._cols: dict[str, list] = {k: [] for k in self._column_names()}
        self._next_id = 0

    # -- workload ---------------------------------------------------------------------------
    def _source(self, m: int, times: np.ndarray, samples: np.ndarray):
        env = self.env
        for t, s in zip(times.tolist(), samples.tolist(), strict=True):
            if t > env.now:
                yield env.timeout(t - env.now)
            rid = self._next_id
            self._next_id += 1
            env.process(self._serve(rid, m, s, t))

    # -- one request ------------------------------------------------------------------------
    def _serve(self, rid: int, m: int, sample: int, arrival: float):
        env, policy, view = self.env, self.policy, self.view
        tokens = int(self.split.tokens[sample])
        req = Request(rid, m, sample, tokens, arrival)
        plan: Plan = policy.plan(req, view)
        path = self.paths[m]
        n_t, n_l = len(self.tiers), len(self.up)
        queue_s, compute_s = [0.0] * n_t, [0.0] * n_t
        nbytes_link = [0] * n_l
        transfer_s = e_compute = e_radio = 0.0
        cur, layer, exit_layer, dropped_at = 0, 1, 0, -1
        last = plan.last_layer
        owner = plan.tiers
        while not exit_layer:
            tier = owner[layer - 1]
            if tier != cur:
                nbytes = (self.payload.input_bytes(tokens) if layer == 1
                          else self.payload.hidden_bytes(tokens, self.profile.hidden_size))
                for hop in range(cur, tier):
                    ch = self.up[hop][path[hop]]
                    t0 = env.now
                    _, tx = yield from ch.transmit(nbytes)
                    transfer_s += env.now - t0
                    nbytes_link[hop] += nbytes
                    if hop == 0 and self.radio is not None:
                        e_radio += self.radio.energy_j(nbytes * 8.0, tx, sending=True)
                cur = tier
            end = layer
            while end < last and owner[end] == tier:
                end += 1
            ls = self.layer_s[tier][sample]
            hs = float(self.head_s[tier][sample])
            work = float(self.embed_s[tier][sample]) if layer == 1 else 0.0
            k = layer
            while k <= end:
                work += ls[k - 1]
                if k == last:
                    work += hs
                    exit_layer = k
                    break
                if k in plan.exits:
                    work += hs
                    if policy.decide(req, k, view):
                        exit_layer = k
                        break
                k += 1
            dev = self.devices[tier][path[tier]]
            if dev.is_full():
                dev.drops += 1
                dropped_at = tier
                exit_layer = 0
                break
            t0 = env.now
            with dev.resource.request() as r:
                if dev.record:
                    dev.update()
                yield r
                t1 = env.now
                queue_s[tier] += t1 - t0
                e = yield from dev.compute(float(work))
                compute_s[tier] += env.now - t1
            if dev.record:
                dev.update()
            if tier == 0:
                e_compute += e
            layer = end + 1
        if dropped_at < 0 and cur > 0:
            for hop in range(cur - 1, -1, -1):
                ch = self.down[hop][path[hop]]
                t0 = env.now
                _, tx = yield from ch.transmit(self.payload.reply_bytes)
                transfer_s += env.now - t0
                if hop == 0 and self.radio is not None:
                    e_radio += self.radio.energy_j(self.payload.reply_bytes * 8.0, tx, sending=False)
        finish = env.now
        self._append(rid, m, sample, tokens, arrival, finish, exit_layer, cur, dropped_at, queue_s,
                     compute_s, nbytes_link, transfer_s, e_compute, e_radio)
        if dropped_at < 0:
            policy.observe(req, Outcome(exit_layer, cur, finish - arrival, transfer_s, sum(queue_s)), view)

    # -- records ----------------------------------------------------------------------------
    def _column_names(self) -> list[str]:
        names = ["request_id", "mobile", "sample", "tokens", "arrival_s", "finish_s", "exit_layer",
                 "exit_tier_index", "dropped_tier_index", "transfer_s", "energy_compute_j", "energy_radio_j"]
        names += [f"queue_s_{t.name}" for t in self.tiers] + [f"compute_s_{t.name}" for t in self.tiers]
        names += [f"bytes_{name}" for name in self.sc.links]
        return names

    def _append(self, rid, m, sample, tokens, arrival, finish, exit_layer, tier, dropped_at, queue_s,
                compute_s, nbytes_link, transfer_s, e_compute, e_radio) -> None:
        values = [rid, m, sample, tokens, arrival, finish, exit_layer, tier, dropped_at, transfer_s,
                  e_compute, e_radio, *queue_s, *compute_s, *nbytes_link]
        for col, v in zip(self._cols.values(), values, strict=True):
            col.append(v)

    # -- run --------------------------------------------------------------------------------
    def run(self) -> SimResult:
        """Simulate until every request has completed; return flat records."""
        wall = time.perf_counter()
        sc = self.sc
        n_mobiles = len(self.devices[0])
        for m in range(n_mobiles):
            times = arrival_times(sc.workload, m, n_mobiles, stream(sc.seed, self.replication, ARRIVALS, m))
            samples = sample_indices(len(times), len(self.split), sc.workload.sample_order, m,
                                     stream(sc.seed, self.replication, SAMPLES, m))
            self.env.process(self._source(m, times, samples))
        self.env.run()
        for tier in self.devices:
            for d in tier:
                d.finish()
        return SimResult(policy=self.label, replication=self.replication, requests=self._frame(),
                         timeline=self._timeline() if self.record else None, devices=self._device_frame(),
                         wall_s=time.perf_counter() - wall)

    def _frame(self) -> pd.DataFrame:
        df = pd.DataFrame(self._cols)
        df = df.sort_values("request_id", kind="stable").reset_index(drop=True)
        sc, split = self.sc, self.split
        names = np.array([t.name for t in self.tiers] + [""])
        done = df["exit_layer"].to_numpy() > 0
        layer_idx = np.maximum(df["exit_layer"].to_numpy() - 1, 0)
        s = df["sample"].to_numpy()
        df.insert(0, "policy", self.label)
        df.insert(1, "replication", self.replication)
        df["sample_id"] = split.ids[s]
        df["latency_ms"] = (df["finish_s"] - df["arrival_s"]) * 1e3
        df["dropped"] = ~done
        df["exit_tier"] = np.where(done, names[df["exit_tier_index"].to_numpy()], "")
        df["drop_tier"] = np.where(done, "", names[df["dropped_tier_index"].to_numpy()])
        df["correct"] = done & split.correct[s, layer_idx]
        df["confidence"] = np.where(done, split.confidence[s, layer_idx], np.nan)
        df["energy_mobile_j"] = df["energy_compute_j"] + df["energy_radio_j"]
        byte_cols = [f"bytes_{n}" for n in sc.links]
        df["bytes_total"] = df[byte_cols].sum(axis=1) if byte_cols else 0
        crossed = np.maximum(df["exit_tier_index"].to_numpy(), 0)
        df["cost"] = np.where(done, sc.cost.lambda_per_layer * df["exit_layer"] + self._offload_cum[crossed],
                              np.nan)
        df["warmup"] = df["arrival_s"] < sc.workload.warmup_s
        if sc.deadline_ms is not None:
            df["deadline_met"] = done & (df["latency_ms"] <= sc.deadline_ms)
        return df.drop(columns=["exit_tier_index", "dropped_tier_index"])

    def _device_frame(self) -> pd.DataFrame:
        rows = []
        for tier in self.devices:
            for d in tier:
                rows.append({"policy": self.label, "replication": self.replication, "device": d.name,
                             "tier": self.tiers[d.tier].name, "energy_j": d.energy_j, "busy_s": d.busy_s,
                             "drops": d.drops, "final_temp_c": d.temperature_c, "end_s": self.env.now})
        for (lname, ups), downs in zip(zip(self.sc.links, self.up, strict=True), self.down, strict=True):
            for ch in (*ups, *downs):
                rows.append({"policy": self.label, "replication": self.replication, "device": ch.name,
                             "tier": lname, "busy_s": ch.busy_s, "bytes": ch.bits_sent / 8,
                             "end_s": self.env.now})
        return pd.DataFrame(rows)

    def _timeline(self) -> pd.DataFrame:
        parts = []
        for tier in self.devices:
            for d in tier:
                if not d.trace:
                    continue
                a = np.asarray(d.trace, dtype=float)
                for col, series in ((1, "in_system"), (2, "temperature_c"), (3, "frequency")):
                    if series != "in_system" and d.thermal is None:
                        continue
                    parts.append(pd.DataFrame({"time_s": a[:, 0], "series": series, "entity": d.name,
                                               "tier": self.tiers[d.tier].name, "value": a[:, col]}))
        end = self.env.now
        for i, chans in enumerate(self.up):
            for ch in chans:
                t, r = ch.path.steps_until(end)
                parts.append(pd.DataFrame({"time_s": t, "series": "bandwidth_mbps", "entity": ch.name,
                                           "tier": self.tiers[i].name, "value": r}))
        df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
            columns=["time_s", "series", "entity", "tier", "value"])
        df.insert(0, "policy", self.label)
        df.insert(1, "replication", self.replication)
        return df


def simulate(sc: Scenario, policy_spec: str | dict, replication: int = 0,
             record_timeline: bool = False) -> SimResult:
    """Run one policy for one replication of a scenario."""
    return Simulation(sc, policy_spec, replication, record_timeline=record_timeline).run()
