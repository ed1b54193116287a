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

from .config import Scenario
from .live import LiveNetwork
from .policies.base import Outcome, Plan, Policy, PolicyContext, Request
from .policies.registry import make_policy, policy_label
from .profile import Profile, get_profile
from .radio import RrcCharge, rrc_columns
from .records import RequestLog, SimResult, device_frame, timeline_frame
from .streams import ARRIVALS, POLICY, SAMPLES, stream
from .topology import build_network
from .view import EngineView
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
        self.network = net = build_network(sc, self.profile, split, replication)
        self.live = LiveNetwork(self.env, net, record_timeline)
        self.view = EngineView(self.live, self.split)
        self.policy: Policy = make_policy(policy_spec)
        self.policy.start(PolicyContext(
            profile=self.profile, tiers=net.tiers, num_layers=self.profile.num_layers, cost=net.cost,
            rng=stream(sc.seed, replication, POLICY),
            hindsight_split=self.split if self.policy.hindsight else None))
        self.log = RequestLog([t.name for t in net.tiers], [link.name for link in net.links])
        self.rrc: dict[int, RrcCharge] = {}  # per request, when the mobiles' radio has RRC states
        self._next_id = 0

    @property
    def tiers(self):
        return self.network.tiers

    @property
    def devices(self):
        return self.live.devices

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
        radio, links = net.radio, net.links
        tokens = int(self.split.tokens[sample])
        req = Request(rid, m, sample, tokens, arrival)
        plan: Plan = policy.plan(req, view)
        n_t = len(net.tiers)
        queue_s, compute_s = [0.0] * n_t, [0.0] * n_t
        nbytes_link = [0] * len(links)
        transfer_s = e_compute = e_radio = offload = 0.0
        cur, layer, exit_layer, dropped_at = 0, 1, 0, -1
        rrc = self.rrc.setdefault(rid, RrcCharge()) if live.rrc is not None else None
        path = net.attachment_at(m, arrival)  # pinned at birth (simulator/mobility.py)
        last, owner = plan.last_layer, plan.tiers
        while not exit_layer:
            tier = owner[layer - 1]
            if tier != cur:
                nbytes = net.transfer_bytes(tokens, layer - 1)
                for link in net.route(cur, tier):
                    t0 = env.now
                    ch = live.uplink(m, link, path)
                    _, tx = yield from (live.rrc[m].transmit(env, ch, nbytes, rrc, True)
                                        if rrc is not None and links[link].src == 0 else ch.transmit(nbytes))
                    transfer_s += env.now - t0
                    nbytes_link[link] += nbytes
                    offload += net.cost.link_offload[link]
                    if links[link].src == 0 and radio is not None:
                        e_radio += radio.energy_j(nbytes * 8.0, tx, sending=True)
                cur = tier
            end = layer
            while end < last and owner[end] == tier:
                end += 1
            table = net.tables[tier]
            ls, hs = table.layer_s[sample], float(table.head_s[sample])
            work = float(table.embed_s[sample]) if layer == 1 else 0.0
            k = layer
            while k <= end:  # decisions for the stretch are taken when the device starts it
                work += ls[k - 1]
                if k == last:
                    work += hs
                    exit_layer = k
                    break
                if k in plan.exits:
                    work += hs
                    view.reach(req, k)
                    if policy.decide(req, k, view):
                        exit_layer = k
                        break
                k += 1
            service = yield from live.device(m, tier, path).serve(float(work))
            if service.dropped:
                dropped_at, exit_layer = tier, 0
                break
            queue_s[tier] += service.queue_s
            compute_s[tier] += service.compute_s
            if tier == 0:
                e_compute += service.energy_j
            layer = end + 1
        if dropped_at < 0 and cur > 0:
            reply = net.payload.reply_bytes
            for link in reversed(net.route(0, cur)):
                t0 = env.now
                ch = live.downlink(m, link, path)
                _, tx = yield from (live.rrc[m].transmit(env, ch, reply, rrc, False)
                                    if rrc is not None and links[link].src == 0 else ch.transmit(reply))
                transfer_s += env.now - t0
                if links[link].src == 0 and radio is not None:
                    e_radio += radio.energy_j(reply * 8.0, tx, sending=False)
        finish = env.now
        e_radio += rrc.energy_j if rrc is not None else 0.0
        self.log.append(rid, m, sample, tokens, arrival, finish, exit_layer, cur, dropped_at, transfer_s,
                        e_compute, e_radio, queue_s, compute_s, nbytes_link, offload)
        view.reach(req, exit_layer if dropped_at < 0 else layer - 1)
        policy.observe(req, Outcome(exit_layer, cur, finish - arrival, transfer_s, sum(queue_s),
                                    dropped=dropped_at >= 0), view)
        view.forget(req)

    # -- run --------------------------------------------------------------------------------
    def run(self) -> SimResult:
        """Simulate until every request has ended; return flat records."""
        wall = time.perf_counter()
        sc, n = self.sc, self.network.n_mobiles
        for m in range(n):
            times = arrival_times(sc.workload, m, n, stream(sc.seed, self.replication, ARRIVALS, m))
            samples = sample_indices(len(times), len(self.split), sc.workload.sample_order, m,
                                     stream(sc.seed, self.replication, SAMPLES, m))
            self.env.process(self._source(m, times, samples))
        self.env.run()
        self.live.finish()
        end = self.env.now
        requests = self.log.frame(self.label, self.replication, self.split, self.network.cost,
                                  sc.workload.warmup_s, sc.deadline_ms)
        if self.live.rrc is not None:
            requests = rrc_columns(requests, self.rrc)
        timeline = timeline_frame(self.live, self.label, self.replication, end) if self.record else None
        return SimResult(policy=self.label, replication=self.replication, requests=requests,
                         timeline=timeline, devices=device_frame(self.live, self.label, self.replication, end),
                         wall_s=time.perf_counter() - wall)


def simulate(sc: Scenario, policy_spec: str | dict, replication: int = 0,
             record_timeline: bool = False) -> SimResult:
    """Run one policy for one replication of a scenario."""
    return Simulation(sc, policy_spec, replication, record_timeline=record_timeline).run()
