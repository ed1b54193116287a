"""The SimPy engine: one policy, one replication of a scenario, request by request.

The network (devices, links, routes, compute tables) comes from :mod:`simulator.topology`, its live
SimPy objects from :mod:`simulator.live`, the service discipline from :meth:`Device.serve`, the records
from :mod:`simulator.records`. What is left here is the request process: a request is born on a mobile,
carries one profile sample, and walks the layers of its policy's plan: compute stretches on devices,
its state up the route between tiers, a small reply back down to the mobile.
"""

from __future__ import annotations

import time

import simpy

from .batching import Stretch
from .config import Scenario
from .failures import failed_reason, failover_plan, policy_failover
from .live import LiveNetwork
from .network import Lost
from .policies.base import Outcome, Plan, Policy, Request, start_policy
from .policies.registry import make_policy, policy_label
from .profile import Profile, get_profile
from .radio import RrcCharge, rrc_columns
from .records import RequestLog, SimResult, device_frame, policy_record, timeline_frame
from .streams import ARRIVALS, POLICY, SAMPLES, stream
from .topology import build_network
from .view import EngineView
from .walk import next_stretch
from .workload import arrival_times, sample_indices


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
        self.env = simpy.Environment()
        self.network = net = build_network(sc, self.profile, split, replication, policy_spec)
        self.live = LiveNetwork(self.env, net, record_timeline)
        self.view = EngineView(self.live, self.split)
        self.policy: Policy = make_policy(policy_spec)
        start_policy(self.policy, self.profile, self.split, net.tiers, net.cost, stream(sc.seed, replication, POLICY))
        self.failover = policy_failover(policy_spec, sc.failover)
        self.log = RequestLog([t.name for t in net.tiers], [link.name for link in net.links], self.live.failing)
        self.decisions = policy_record(self.policy, policy_spec, replication)
        self._described = [tier[0].reads_stretch for tier in net.devices]
        self._offloads = [o[1] if o is not None else None for o in (net.offload or [None] * len(net.tiers))]
        self._next_id, self._total, self._done = 0, 0, None
        self.rrc: dict[int, RrcCharge] = {}  # per request, when the mobiles' radio has RRC states

    # -- workload ---------------------------------------------------------------------------
    def _source(self, m: int, times, samples):
        env = self.env
        for t, s in zip(times.tolist(), samples.tolist(), strict=True):
            if t > env.now:
                yield env.timeout(t - env.now)
            rid = self._next_id
            self._next_id += 1
            env.process(self._serve(rid, m, s, t))

    # -- one request ------------------------------------------------------------------------
    def _serve(self, rid: int, m: int, sample: int, arrival: float):
        env, policy, view, net, live = self.env, self.policy, self.view, self.network, self.live
        links, described, offloads = net.links, self._described, self._offloads
        tokens = int(self.split.tokens[sample])
        req = Request(rid, m, sample, tokens, arrival)
        plan: Plan = policy.plan(req, view)
        n_t = len(net.tiers)
        queue_s, compute_s = [0.0] * n_t, [0.0] * n_t
        nbytes_link = [0] * len(links)
        transfer_s = e_compute = e_radio = offload = 0.0
        cur, layer, exit_layer, dropped_at = 0, 1, 0, -1
        base, failovers, reason, tried = 0, 0, "", set()  # base: layers the mobile holds the state of
        route, lost, at = [], "", 0  # lost: the device or link that lost the request's work, at: its tier
        rrc = self.rrc.setdefault(rid, RrcCharge()) if live.rrc is not None else None
        path = net.attachment_at(m, arrival)  # pinned at birth (simulator/mobility.py)
        owner = plan.tiers
        while True:  # the walk; work lost to a failure resumes from the mobile's state (failures.py)
            while not exit_layer:
                tier = owner[layer - 1]
                if tier != cur:
                    nbytes = net.transfer_bytes(tokens, layer - 1)
                    offload += net.cost.route_offload.get((cur, tier), 0.0)
                    for link in net.route(cur, tier):
                        t0 = env.now
                        sent = yield from live.send(m, link, nbytes, path, rrc, True)
                        transfer_s += env.now - t0
                        nbytes_link[link] += nbytes
                        e_radio += live.radio_j(link, nbytes, sent, True)
                        if isinstance(sent, Lost):  # lost on a failed link: as if ``tier`` had failed
                            lost, at = links[link].name, tier
                            break
                        offload += net.cost.link_offload[link]
                        route.append(links[link].name)
                    if lost:
                        break
                    cur = tier
                work, heads, end, exit_layer, plan = next_stretch(policy, req, view, plan, layer, net.tables[tier])
                owner = plan.tiers
                stretch = Stretch(work, tokens, layer, exit_layer or end, heads, sample) if described[tier] else None
                peer = live.peer_for(tier, path[tier]) if offloads[tier] is not None else None
                if peer is None:
                    service = yield from live.serve(m, tier, work, stretch, path)
                else:  # horizontal offload: the stretch runs on a peer of the tier and comes back (offload.py)
                    link = offloads[tier]
                    back = net.payload.reply_bytes if exit_layer else net.transfer_bytes(tokens, end)
                    service, there_s, back_s, nbytes = yield from live.serve_on_peer(
                        m, tier, peer, work, stretch, path, rrc, net.transfer_bytes(tokens, layer - 1), back)
                    transfer_s += there_s
                    transfer_s += back_s
                    nbytes_link[link] += nbytes
                    offload += net.cost.link_offload[link]
                    route.append(links[link].name)
                if service.failed:  # lost to a failure of the device
                    queue_s[tier] += service.queue_s
                    compute_s[tier] += service.compute_s
                    lost, at, exit_layer = net.tiers[tier].name, tier, 0
                    break
                if service.dropped:
                    dropped_at, exit_layer = tier, 0
                    break
                queue_s[tier] += service.queue_s
                compute_s[tier] += service.compute_s
                if tier == 0:
                    e_compute += service.energy_j
                    base = end
                layer = end + 1
            if not lost and dropped_at < 0 and cur > 0:
                for link in reversed(net.route(0, cur)):
                    t0 = env.now
                    sent = yield from live.send(m, link, net.payload.reply_bytes, path, rrc, False)
                    transfer_s += env.now - t0
                    e_radio += live.radio_j(link, net.payload.reply_bytes, sent, False)
                    if isinstance(sent, Lost):  # the reply is lost: as if ``cur`` had failed after computing
                        lost, at, exit_layer = links[link].name, cur, 0
                        break
            if not lost:
                break
            yield env.timeout(self.failover.timeout_s)  # the client notices the loss, applies its rule
            new = failover_plan(self.failover.rule, plan, at, base, tried, n_t)
            if new is None:
                reason = failed_reason(lost, self.failover.rule, at)
                break
            plan, owner, layer, cur, exit_layer, failovers, lost = new, new.tiers, base + 1, 0, 0, failovers + 1, ""
        finish = env.now
        e_radio += rrc.energy_j if rrc is not None else 0.0
        self.log.append(rid, m, sample, tokens, arrival, finish, exit_layer, cur, dropped_at, transfer_s,
                        e_compute, e_radio, queue_s, compute_s, nbytes_link, self.log.describe(plan), ">".join(route),
                        plan.explore, net.cost.layers(plan.tiers, exit_layer), offload, reason, failovers)
        if self._done is not None and len(self.log) == self._total:  # a device's repair may come later
            self._done.succeed()
        view.reach(req, exit_layer if dropped_at < 0 else layer - 1)
        policy.observe(req, Outcome(exit_layer, cur, finish - arrival, transfer_s, sum(queue_s),
                                    dropped=dropped_at >= 0 or bool(reason), failed=bool(reason)), view)
        view.forget(req)

    # -- run --------------------------------------------------------------------------------
    def run(self) -> SimResult:
        """Simulate until every request has ended; return flat records."""
        wall = time.perf_counter()
        sc, n, horizon = self.sc, self.network.n_mobiles, 0.0
        for m in range(n):
            times = arrival_times(sc.workload, m, n, stream(sc.seed, self.replication, ARRIVALS, m))
            samples = sample_indices(len(times), len(self.split), sc.workload.sample_order, m,
                                     stream(sc.seed, self.replication, SAMPLES, m))
            self.env.process(self._source(m, times, samples))
            horizon, self._total = (max(horizon, float(times[-1])) if len(times) else horizon), self._total + len(times)
        self.live.start(horizon)
        self._done = self.env.event() if self.live.failing and self._total else None
        self.env.run(self._done)
        self.live.finish()
        end = self.env.now
        records = self.log.records(self.label, self.replication, self.split, sc.workload.warmup_s, sc.deadline_ms)
        requests = rrc_columns(records.frame(), self.rrc) if self.live.rrc is not None else None
        timeline = timeline_frame(self.live, self.label, self.replication, end) if self.record else None
        self.decisions["learned"] = self.policy.learned()
        return SimResult(policy=self.label, replication=self.replication, requests=requests, records=records,
                         timeline=timeline, devices=device_frame(self.live, self.label, self.replication, end),
                         wall_s=time.perf_counter() - wall, decisions=self.decisions)


def simulate(sc: Scenario, policy_spec: str | dict, replication: int = 0,
             record_timeline: bool = False) -> SimResult:
    """Run one policy for one replication of a scenario."""
    return Simulation(sc, policy_spec, replication, record_timeline=record_timeline).run()
