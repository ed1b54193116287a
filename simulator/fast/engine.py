"""The fast engine: every station served in one compiled pass, upstream first (see :mod:`simulator.fast`).

A request's hops are numbered in order (compute stretches on devices, its state up links, the reply
down). Stations are ranked so that every path visits them in increasing rank: devices of tier t at 2t,
a link's upward direction just above its lower tier, downward directions after every device, the
highest first. Serving the stations in rank order, the arrival time of every visit is known when its
station is served: the request's birth for its first hop, else the end of its previous hop.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from functools import cached_property

import numpy as np
import pandas as pd

from ..config import Scenario
from ..policies.base import start_policy
from ..policies.registry import make_policy, policy_label
from ..profile import get_profile
from ..records import RequestRecords, SimResult, policy_record
from ..streams import ARRIVALS, POLICY, SAMPLES, stream
from ..thermal import ThermalState
from ..topology import Network, build_network
from ..workload import arrival_times, sample_indices
from . import kernels
from .paths import DEVICE, DOWN, UP, Paths, sample_paths
from .support import Unsupported, policy_why_not, scenario_why_not


def simulate(sc: Scenario, policy_spec: str | dict, replication: int = 0,
             record_timeline: bool = False) -> SimResult:
    """Run one policy for one replication of a scenario; :class:`Unsupported` outside the engine's scope."""
    sim = FastSimulation(sc, policy_spec, replication, record_timeline=record_timeline)
    if sim.reason is not None:
        raise Unsupported(f"engine 'fast' does not simulate this: {sim.reason}; use engine: auto or simpy")
    return sim.run()


def simulate_auto(sc: Scenario, policy_spec: str | dict, replication: int = 0,
                  record_timeline: bool = False) -> SimResult:
    """The fast engine where it gives the exact answer, the SimPy engine otherwise (saying why)."""
    sim = FastSimulation(sc, policy_spec, replication, record_timeline=record_timeline)
    reason = sim.reason
    if reason is None:
        try:
            return sim.run()
        except Unsupported as e:
            reason = str(e)
    from ..engine import simulate as simulate_simpy

    res = simulate_simpy(sc, policy_spec, replication, record_timeline)
    res.engine, res.engine_reason = "simpy", reason
    return res


class _Stations:
    """Station numbering: one per device and per link direction and lower-tier device, in rank order."""

    def __init__(self, net: Network):
        n_t, n_l = len(net.tiers), len(net.links)
        kinds = [(DEVICE, t, 2 * t, t) for t in range(n_t)]  # (kind, tier or link, rank, attachment tier)
        kinds += [(UP, lk.index, 2 * lk.src + 1, lk.src) for lk in net.links]
        kinds += [(DOWN, lk.index, 2 * n_t + (n_t - 1 - lk.src), lk.src) for lk in net.links]
        kinds.sort(key=lambda x: x[2])
        self.offset = np.zeros((3, max(n_t, n_l, 1)), dtype=np.int64)
        self.attach = np.zeros((3, max(n_t, n_l, 1)), dtype=np.int64)
        self.what: list[tuple[int, int, int]] = []  # station -> (kind, tier or link, device index)
        self.blocks: list[tuple[int, int, int, int]] = []  # (kind, tier or link, first station, stations)
        for kind, i, _, at in kinds:
            self.offset[kind, i], self.attach[kind, i] = len(self.what), at
            self.blocks.append((kind, i, len(self.what), len(net.devices[at])))
            self.what += [(kind, i, j) for j in range(len(net.devices[at]))]


_SHARED = threading.local()


@contextmanager
def shared_inputs():
    """Within this block, the policies of one scenario object and replication simulated one after another
    share their :class:`Condition` (network, bandwidth paths, requests) instead of each building its own:
    what ``run`` and ``sweep`` use. Outside it every simulation builds its inputs afresh."""
    before = getattr(_SHARED, "on", False)
    _SHARED.on = True
    try:
        yield
    finally:
        _SHARED.on = before
        if not before:
            _SHARED.last = None


class Condition:
    """What every policy of one replication of a scenario shares: the network (its bandwidth paths are
    the same realisations for all), the requests (arrivals, births, mobiles, samples), the stations.
    Inside :func:`shared_inputs`, built once and kept for the next policy of the same scenario object and
    replication."""

    def __init__(self, sc: Scenario, replication: int, split: str):
        self.sc, self.replication, self.split_name = sc, replication, split
        self.profile = get_profile(sc.profile)
        self.split = self.profile.splits[split]
        self.reason = scenario_why_not(sc)
        self.network = build_network(sc, self.profile, split, replication) if self.reason is None else None
        self._requests = None
        self._paths: dict = {}

    @classmethod
    def of(cls, sc: Scenario, replication: int, split: str = "eval") -> Condition:
        if not getattr(_SHARED, "on", False):
            return cls(sc, replication, split)
        last = getattr(_SHARED, "last", None)
        if last is None or last.sc is not sc or last.replication != replication or last.split_name != split:
            last = _SHARED.last = cls(sc, replication, split)
        return last

    def requests(self):
        """Arrival, birth time, mobile and sample of every request, in request-id order."""
        if self._requests is None:
            self._requests = self._draw_requests()
        return self._requests

    def _draw_requests(self):
        sc, n = self.sc, self.network.n_mobiles
        parts = []
        for m in range(n):
            t = arrival_times(sc.workload, m, n, stream(sc.seed, self.replication, ARRIVALS, m))
            s = sample_indices(len(t), len(self.split), sc.workload.sample_order, m,
                               stream(sc.seed, self.replication, SAMPLES, m))
            parts.append((np.asarray(t, dtype=float), kernels.born_times(np.asarray(t, dtype=float)),
                          np.full(len(t), m, dtype=np.int64), np.asarray(s, dtype=np.int64)))
        arrival, born, mobile, sample = (np.concatenate([p[i] for p in parts]) for i in range(4))
        order = np.lexsort((mobile, born))  # request ids go in order of birth (mobile order at ties)
        arrival, born, mobile, sample = arrival[order], born[order], mobile[order], sample[order]
        tie = None
        if n > 1 and len(born) > 1:
            same = born[1:] == born[:-1]
            if np.any(same & (mobile[1:] != mobile[:-1])):
                tie = "requests of different mobiles arrive at the same instant"
        return arrival, born, mobile, sample, tie

    @cached_property
    def samples(self) -> np.ndarray:
        """The distinct samples the requests carry, sorted."""
        return np.unique(self.requests()[3])

    @cached_property
    def drops(self) -> bool:
        """Whether a request can be dropped (some tier has a queue capacity)."""
        return any(t.queue_capacity is not None for t in self.sc.tiers.values())

    @cached_property
    def stations(self) -> _Stations:
        return _Stations(self.network)

    def path_arrays(self, kind: int, link: int, paths: list) -> tuple[np.ndarray, ...]:
        """The bandwidth paths of a link direction's channels, concatenated (kept until one grows):
        ``starts``, ``rates``, ``cum`` and the bounds of each path in them."""
        lengths = tuple(len(p.rates) for p in paths)
        key = (kind, link)
        cached = self._paths.get(key)
        if cached is None or cached[0] != lengths:
            starts = np.concatenate([np.asarray(p.starts) for p in paths])
            rates = np.concatenate([np.asarray(p.rates) for p in paths])
            cum = np.concatenate([np.asarray(p.cum) for p in paths])
            n = np.asarray(lengths, dtype=np.int64)
            p_seg = np.concatenate([[0], np.cumsum(n + 1)])
            r_seg = np.concatenate([[0], np.cumsum(n)])
            cached = self._paths[key] = (lengths, (starts, rates, cum, p_seg, r_seg))
        return cached[1]


CHUNK_REQUESTS = 200_000  # requests simulated at once: memory stays ~0.9 KB x this while simulating


class FastSimulation:
    """One policy, one replication of a scenario, on the fast engine (``reason`` says why not, if not)."""

    def __init__(self, sc: Scenario, policy_spec: str | dict, replication: int = 0, split: str = "eval",
                 record_timeline: bool = False):
        self.sc = sc
        self.replication = replication
        self.label = policy_label(policy_spec)
        self.policy = make_policy(policy_spec)
        self.condition = cond = Condition.of(sc, replication, split)
        self.profile, self.split, self.network = cond.profile, cond.split, cond.network
        self.reason = policy_why_not(self.policy, record_timeline) or cond.reason
        if self.reason is not None:
            return
        net = self.network
        start_policy(self.policy, self.profile, self.split, net.tiers, net.cost, stream(sc.seed, replication, POLICY))
        self.decisions = policy_record(self.policy, policy_spec, replication)

    # -- run ----------------------------------------------------------------------------------
    def run(self) -> SimResult:
        wall = time.perf_counter()
        net, sc = self.network, self.sc
        arrival, born, mobile, sample, tie = self.condition.requests()
        if tie:
            raise Unsupported(tie)
        N = len(arrival)
        paths = sample_paths(self.policy, net, self.split, self.condition.samples, self.condition.drops) if N else None
        pid = paths.path_of[sample] if N else np.zeros(0, dtype=np.int64)
        n_hops = (paths.kind >= 0).sum(axis=1)[pid] if N else np.zeros(0, dtype=np.int64)
        n_t = len(net.tiers)
        out = {"finish": np.zeros(N), "dropped_at": np.full(N, -1, dtype=np.int64), "transfer": np.zeros(N),
               "e_comp": np.zeros(N), "e_radio": np.zeros(N), "queue": np.zeros((n_t, N)),
               "compute": np.zeros((n_t, N))}
        books = self._books = self._initial_books()
        lo, last = 0, None
        while lo < N:  # in chunks that start when the network is empty (exactly as one pass; less memory)
            size = CHUNK_REQUESTS
            while True:
                hi = min(N, lo + size)
                res, done = self._chunk(lo, hi, paths, pid, n_hops)
                cut = _empty_before(res["finish"], born[lo:hi]) if hi < N else hi - lo
                if cut:
                    break
                size *= 2  # the network never empties in this stretch: take a longer one
            for k, v in res.items():
                out[k][..., lo:lo + cut] = v[..., :cut]
            if lo + cut < N:
                self._update_books(books, done, cut)
            else:  # the last chunk's books are only needed for the device table: added when it is built
                last = (done, cut)
            lo += cut
        end_s = float(max(out["finish"].max(), born.max())) if N else 0.0
        cols = self._columns(paths, pid, out["dropped_at"], arrival, out["finish"], mobile, sample, out["transfer"],
                             out["e_comp"], out["e_radio"], out["queue"], out["compute"])
        records = RequestRecords(cols, [t.name for t in net.tiers], [lk.name for lk in net.links], self.label,
                                 self.replication, self.split, sc.workload.warmup_s, sc.deadline_ms)
        def devices() -> pd.DataFrame:  # built when read
            if N:
                self._update_books(books, *last)
            return self._device_frame(books, end_s)

        self.decisions["learned"] = self.policy.learned()
        return SimResult(policy=self.label, replication=self.replication, records=records, devices=devices,
                         wall_s=time.perf_counter() - wall, decisions=self.decisions, engine="fast")

    def _chunk(self, lo: int, hi: int, paths: Paths, pid, n_hops_all) -> tuple[dict, tuple]:
        """Requests ``lo..hi``, the network empty when ``lo`` is born: per-request results, and what each
        block of stations did (its visits in service order, for :meth:`_update_books`)."""
        net = self.network
        arrival, born_all, mobile_all, _, _ = self.condition.requests()
        born, mobile = born_all[lo:hi], mobile_all[lo:hi]
        st = self.condition.stations
        att = np.asarray(net.attachment, dtype=np.int64)  # [mobile, tier]
        N = hi - lo
        pid, n_hops = pid[lo:hi], n_hops_all[lo:hi]
        # visits: request-major, hop order
        first = np.concatenate([[0], np.cumsum(n_hops)[:-1]])
        v_req, v_hop, v_kind, v_index, v_amount, v_station = kernels.visits(
            pid, n_hops, mobile, paths.kind, paths.index, paths.amount, st.offset, st.attach, att)

        V = len(v_req)
        t_in, t_start, t_end, t_out = np.zeros(V), np.zeros(V), np.zeros(V), np.zeros(V)
        energy = np.zeros(V)
        processed = np.zeros(V, dtype=bool)
        dropped_at = np.full(N, -1, dtype=np.int64)  # hop at which the request dropped
        done: list = []
        any_drop = False
        key = v_station.astype(np.int16) if len(st.what) < 2**15 else v_station  # small ints: radix sort
        order = np.argsort(key, kind="stable")
        bounds = np.searchsorted(v_station[order], np.arange(len(st.what) + 1))
        for kind, i, s0, n_s in st.blocks:  # the stations of one tier or link direction, upstream first
            idx = order[bounds[s0]:bounds[s0 + n_s]]
            if len(idx) and any_drop:
                idx = idx[dropped_at[v_req[idx]] < 0]
            if not len(idx):
                continue
            sid = v_station[idx]  # grouped by station already (order sorts by station, stably)
            seg = np.searchsorted(sid, np.arange(s0, s0 + n_s + 1))
            idx, arr, hop0 = kernels.arrivals_in_order(idx, seg, v_hop, v_req, born, t_out)
            if len(idx) > 1:
                tie = (arr[1:] == arr[:-1]) & (sid[1:] == sid[:-1]) & ~(hop0[1:] & hop0[:-1])
                if np.any(tie):
                    s_tie = int(sid[1:][tie][0]) - s0
                    raise Unsupported(f"two requests reach {self._name(kind, i, s_tie)} at the same instant")
            t_in[idx] = arr
            processed[idx] = True
            if kind == DEVICE:
                drop = self._serve(i, s0, seg, arr, v_amount[idx], idx, t_start, t_end, energy)
                t_out[idx] = t_end[idx]
                if drop.any():
                    dropped_at[v_req[idx[drop]]] = v_hop[idx[drop]]
                    any_drop = True
            else:
                drop = None
                self._transmit(kind, i, seg, arr, v_amount[idx], idx, t_start, t_end, t_out)
            done.append((kind, i, s0, sid, idx, arr, drop))

        # per request, accumulated in hop order as the SimPy request process does
        alive = processed & ~_dropped_visits(dropped_at, v_req, v_hop) if any_drop else processed
        last = first + n_hops - 1
        finish = np.where(dropped_at >= 0, t_in[first + np.maximum(dropped_at, 0)], t_out[last])
        radio = net.radio
        power = (np.asarray([radio.tx_base_w, radio.tx_w_per_mbps, radio.rx_base_w, radio.rx_w_per_mbps])
                 if radio is not None else np.zeros(4))
        from_mobile = np.asarray([lk.src == 0 and radio is not None for lk in net.links], dtype=np.bool_)
        transfer, e_comp, e_radio, queue, compute = kernels.request_books(
            N, len(net.tiers), v_req, v_kind, v_index, alive, t_in, t_start, t_end, t_out, energy, v_amount,
            from_mobile, power)
        visited = {"req": v_req, "amount": v_amount, "start": t_start, "end": t_end}  # gathered by the books
        return ({"finish": finish, "dropped_at": dropped_at, "transfer": transfer, "e_comp": e_comp,
                 "e_radio": e_radio, "queue": queue, "compute": compute}, (done, visited))

    # -- stations -----------------------------------------------------------------------------
    def _name(self, kind: int, i: int, j: int) -> str:
        net = self.network
        if kind == DEVICE:
            return net.devices[i][j].name
        c = net.channels[i][j]
        return c.name if kind == UP else f"{c.name}-down"

    def _initial_books(self) -> dict:
        """Every station's books before any request: devices ``[energy_j, busy_s, t_last]`` (throttling
        ones ``[energy_j, busy_s, temp_c, t_last, level]``) and drops; link directions ``[busy_s, bits]``."""
        books = {}
        for s, (kind, i, j) in enumerate(self.condition.stations.what):
            if kind == DEVICE:
                th = self.network.devices[i][j].thermal
                if th.enabled:
                    ts = ThermalState(th, 0.0)
                    books[s] = (np.array([0.0, 0.0, ts.temp_c, ts.t_last, float(ts.level)]), 0)
                else:
                    books[s] = (np.array([0.0, 0.0, 0.0]), 0)
            else:
                books[s] = np.array([0.0, 0.0])
        return books

    def _serve(self, tier: int, s0: int, seg, arr, work, idx, t_start, t_end, energy) -> np.ndarray:
        """Serve the visits of the devices of ``tier`` (segment s: device s, idle when its first visit
        comes) in one compiled call; returns which visits dropped."""
        node = self.network.devices[tier][0]  # the devices of a tier share their class and settings
        spec, th = node.spec, node.thermal
        cap = -1 if node.queue_capacity is None else int(node.queue_capacity)
        if th.enabled:
            init = np.stack([self._books[s0 + j][0] for j in range(len(seg) - 1)])
            start, end, e, dropped, _ = kernels.thermal_segments(seg, arr, work, cap, *self._thermal_args(node, init))
        else:
            start, end, dropped = kernels.fifo_segments(seg, arr, work, spec.servers, cap)
            e = np.where(work > 1e-15, spec.request_power_w(1.0, spec.power_exponent) * work, 0.0)
        t_start[idx], t_end[idx], energy[idx] = start, end, e
        return dropped

    @staticmethod
    def _thermal_args(node, init: np.ndarray) -> tuple:
        spec, th = node.spec, node.thermal
        trips = np.asarray([t for t, _ in th.trips], dtype=float).reshape(-1)
        freqs = np.asarray([f for _, f in th.trips], dtype=float).reshape(-1)
        return (spec.power_idle_w, spec.power_active_w, spec.power_exponent, th.ambient_c, th.resistance_k_per_w,
                th.tau_s, init, trips, freqs, th.hysteresis_c)

    def _update_books(self, books: dict, done: list, cut: int) -> None:
        """Add to every station's books its visits of the chunk's first ``cut`` requests (those before the
        network emptied): energy and busy time of devices, drops, busy time and bits of link directions."""
        net = self.network
        done, visited = done
        for kind, i, s0, sid, idx, arr, drop in done:
            req, amount = visited["req"][idx], visited["amount"][idx]
            start, end = visited["start"][idx], visited["end"][idx]
            keep = req < cut
            seg = np.searchsorted(sid, np.arange(s0, s0 + int(sid.max()) - s0 + 2))
            for j in np.flatnonzero(np.diff(seg)):
                m = slice(seg[j], seg[j + 1])
                if not keep[m].all():
                    m = np.flatnonzero(keep & (sid == s0 + j))
                if len(req[m]) == 0:
                    continue
                if kind == DEVICE:
                    node = net.devices[i][j]
                    state, drops = books[s0 + j]
                    ok = ~drop[m]
                    if node.thermal.enabled:  # its state after these visits: the kernel again, on them alone
                        cap = -1 if node.queue_capacity is None else int(node.queue_capacity)
                        one = np.array([0, len(req[m])])
                        *_, states = kernels.thermal_segments(one, arr[m], amount[m], cap,
                                                              *self._thermal_args(node, state[None, :]))
                        state = states[0]
                    else:
                        spec = node.spec
                        state = np.array(kernels.device_books(start[m][ok], end[m][ok], spec.power_idle_w,
                                                              spec.power_active_w, spec.servers, *state))
                    books[s0 + j] = (state, drops + int((~ok).sum()))
                else:  # running sums in visit order, as the channel adds them
                    busy, sent = books[s0 + j]
                    books[s0 + j] = np.array([_sequential_sum(end[m] - start[m], busy),
                                              _sequential_sum(amount[m], sent)])

    def _transmit(self, kind: int, link: int, seg, arr, bits, idx, t_start, t_end, t_out) -> None:
        """Send the visits of every channel of ``link`` in one direction (segment s: channel s)."""
        chans = self.network.channels[link]
        paths = [c.up if kind == UP else c.down for c in chans]
        horizon = [float(arr[seg[s + 1] - 1]) + 1.0 if seg[s + 1] > seg[s] else 0.0 for s in range(len(chans))]
        while True:
            for p, h in zip(paths, horizon, strict=True):
                p.extend_until(h)
            start, end, out, status = kernels.link_segments(seg, arr, bits, chans[0].latency_s,
                                                            *self.condition.path_arrays(kind, link, paths))
            short = np.flatnonzero(status == kernels.NEED_MORE_PATH)
            if not len(short):
                break
            for s in short:
                horizon[s] = 2.0 * max(horizon[s], paths[s].starts[-1]) + 1.0
        t_start[idx], t_end[idx], t_out[idx] = start, end, out

    # -- records --------------------------------------------------------------------------------
    def _columns(self, paths: Paths, pid, dropped_at, arrival, finish, mobile, sample, transfer, e_comp, e_radio,
                 queue, compute) -> dict:
        net = self.network
        N = len(arrival)
        tokens = self.split.tokens[sample].astype(np.int64)
        done = dropped_at < 0
        exit_layer = np.where(done, paths.exit_layer[pid], 0) if N else np.zeros(0, np.int64)
        dh = np.maximum(dropped_at, 0)
        tier_dropped = paths.index[pid, dh] if N else np.zeros(0, np.int64)

        def pick(final, at_drop):
            if not N:
                return final[:0]
            if done.all():
                return final[pid]
            return np.where(done, final[pid], at_drop[pid, dh])

        def pick_text(final, at_drop):  # a str column, built by taking from its distinct values
            values = pick(final, at_drop) if not done.all() else None
            uniq, codes = np.unique(final if values is None else values, return_inverse=True)
            return pd.array(uniq.tolist(), dtype="str").take(codes[pid] if values is None else codes)

        cols = {"request_id": np.arange(N, dtype=np.int64), "mobile": mobile, "sample": sample, "tokens": tokens,
                "arrival_s": arrival, "finish_s": finish, "exit_layer": exit_layer,
                "exit_tier_index": np.where(done, paths.exit_tier[pid], tier_dropped) if N else exit_layer,
                "dropped_tier_index": np.where(done, -1, tier_dropped) if N else exit_layer,
                "transfer_s": transfer, "energy_compute_j": e_comp, "energy_radio_j": e_radio}
        for t, tier in enumerate(net.tiers):
            cols[f"queue_s_{tier.name}"] = queue[t]
        for t, tier in enumerate(net.tiers):
            cols[f"compute_s_{tier.name}"] = compute[t]
        if N and done.all():
            nbytes = paths.nbytes[pid]
        else:
            nbytes = (np.where(done[:, None], paths.nbytes[pid], paths.drop_nbytes[pid, dh]) if N
                      else np.zeros((0, len(net.links)), np.int64))
        for i, link in enumerate(net.links):
            cols[f"bytes_{link.name}"] = nbytes[:, i]
        cols["plan"] = lambda: pick_text(paths.plan, paths.drop_plan)  # built with the table, if ever
        cols["plan_exits"] = lambda: pick_text(paths.plan_exits, paths.drop_exits)
        cols["route"] = lambda: pick_text(paths.route, paths.drop_route)
        cols["explore"] = pick(paths.explore, paths.drop_explore)
        cols["layer_cost"] = np.where(done, paths.layer_cost[pid], 0.0) if N else np.zeros(0)
        cols["offload_cost"] = pick(paths.offload, paths.drop_offload)
        return cols

    def _device_frame(self, books: dict, end_s: float) -> pd.DataFrame:
        net = self.network
        rows, link_rows = [], []
        base = {"policy": self.label, "replication": self.replication}
        for s, (kind, i, j) in enumerate(self.condition.stations.what):
            if kind == DEVICE:
                node = net.devices[i][j]
                state, drops = books[s]
                energy_j, busy_s, temp = _close_books(node, state, end_s)
                rows.append((i, j, {**base, "device": node.name, "tier": net.tiers[i].name, "energy_j": energy_j,
                                    "busy_s": busy_s, "drops": drops, "final_temp_c": temp, "end_s": end_s}))
            else:
                c = net.channels[i][j]
                busy, bits = books[s]
                link_rows.append((i, kind, j, {**base, "device": c.name if kind == UP else f"{c.name}-down",
                                               "tier": net.links[i].name, "busy_s": float(busy),
                                               "bytes": float(bits) / 8, "end_s": end_s}))
        rows.sort(key=lambda x: (x[0], x[1]))
        link_rows.sort(key=lambda x: (x[0], x[1], x[2]))
        return pd.DataFrame([r[-1] for r in rows] + [r[-1] for r in link_rows])


def _empty_before(finish: np.ndarray, born: np.ndarray) -> int:
    """The last k (> 0) such that requests 0..k-1 have all finished when request k is born (the network
    is empty then, so they are independent of what follows), 0 when there is none."""
    if len(born) < 2:
        return 0
    ok = np.flatnonzero(np.maximum.accumulate(finish)[:-1] <= born[1:])
    return int(ok[-1]) + 1 if len(ok) else 0


def _dropped_visits(dropped_at, v_req, v_hop) -> np.ndarray:
    """Visits at or after the hop where their request dropped (the dropping visit itself included)."""
    d = dropped_at[v_req]
    return (d >= 0) & (v_hop >= d)


def _sequential_sum(x: np.ndarray, start: float = 0.0) -> float:
    """``start`` plus the values in order, as a running total adds them (``np.sum`` adds pairwise)."""
    return float(np.cumsum(np.concatenate(([start], x)))[-1]) if len(x) else float(start)


def _close_books(node, state: np.ndarray, end_s: float) -> tuple[float, float, float]:
    """Energy, busy server-seconds and final temperature of a device, its books closed (idle) at ``end_s``."""
    idle, th = node.spec.power_idle_w, node.thermal  # no server busy: idle power, whatever the frequency
    if th.enabled:
        ts = ThermalState(th, 0.0)
        energy_j, busy_s, ts.temp_c, ts.t_last, level = (float(x) for x in state)
        ts.level = int(level)
        dt = end_s - ts.t_last
        if dt > 0:
            energy_j += idle * dt
            ts.advance(end_s, idle)
        return energy_j, busy_s, ts.temp_c
    energy_j, busy_s, t_last = (float(x) for x in state)
    if end_s - t_last > 0:
        energy_j += idle * (end_s - t_last)
    return energy_j, busy_s, float("nan")
