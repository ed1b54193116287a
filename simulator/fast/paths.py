"""A feed-forward policy's paths: for each sample, the hops its requests take and what they record.

A feed-forward policy decides from a request's own exit outputs only, so every request of one sample
takes the same path: the same stretches of work on the same tiers, the same transfers, the same exit.
:func:`sample_paths` walks the policy once per sample with :func:`simulator.walk.next_stretch` (the
SimPy engine's walk) and a view that holds exit outputs and nothing else, and returns the paths as
arrays. A policy that reads anything of the system's state gets :class:`~.support.Unsupported`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..policies.base import Policy, Request
from ..records import describe_plan
from ..topology import Network
from ..view import ExitBatch, ExitView
from ..walk import next_stretch
from .support import Unsupported

DEVICE, UP, DOWN = 0, 1, 2  # hop kinds


class SampleView(ExitView):
    """Exit outputs of the request being walked; any read of the system's state is refused."""

    def __getattr__(self, name: str):
        raise Unsupported(f"the policy reads view.{name}, which depends on the system's state")


@dataclass
class Paths:
    """Per-path hops (``[P, H]``, kind -1 past a path's end) and records; ``path_of[s]`` for sample s.

    ``amount`` is a device hop's work (s at full speed) or a link hop's payload (bits); ``index`` its tier
    or link. The ``drop_*`` arrays describe a request dropped at that (device) hop: the plan as it stood,
    the route and offload cost so far, the bytes sent so far per link.
    """

    path_of: np.ndarray
    kind: np.ndarray
    index: np.ndarray
    amount: np.ndarray
    exit_layer: np.ndarray
    exit_tier: np.ndarray
    layer_cost: np.ndarray
    offload: np.ndarray
    nbytes: np.ndarray  # [P, links]
    plan: np.ndarray  # object: plan description, exits, route
    plan_exits: np.ndarray
    route: np.ndarray
    explore: np.ndarray
    drop_plan: np.ndarray  # [P, H] object
    drop_exits: np.ndarray
    drop_route: np.ndarray
    drop_explore: np.ndarray
    drop_offload: np.ndarray
    drop_nbytes: np.ndarray  # [P, H, links]


def sample_paths(policy: Policy, net: Network, split, uniq: np.ndarray, drops: bool = True) -> Paths:
    """Walk ``policy`` for each of the distinct samples ``uniq`` (sorted rows of ``split``): all samples
    together where the policy has a batch form (:meth:`~simulator.policies.base.Policy.decide_batch`),
    else one by one. ``drops``: also describe requests dropped at each device hop."""
    view = SampleView(split)
    names = [t.name for t in net.tiers]
    exit_of = _batch_exits(policy, view, split, uniq)
    if exit_of is None:
        walks = [_walk(policy, net, view, split, int(s), names) for s in uniq]
        groups = [(np.asarray([s]), w) for s, w in zip(uniq, walks, strict=True)]
    else:  # one walk per exit layer, its amounts recomputed for every sample that exits there
        groups = []
        for e in np.unique(exit_of):
            members = uniq[exit_of == e]
            groups.append((members, _walk(_Exiting(policy, int(e)), net, view, split, int(members[0]), names)))
    return _assemble(net, split, uniq, groups, drops)


class _Exiting:
    """A batch-form policy whose requests all exit at ``layer`` (to walk the path they share)."""

    def __init__(self, policy: Policy, layer: int):
        self._policy, self._layer = policy, layer

    def plan(self, req, view):
        return self._policy.plan(req, view)

    def decide(self, req, layer, view) -> bool:
        return layer == self._layer

    def redirect(self, req, layer, view):
        return None


def _batch_exits(policy: Policy, view: SampleView, split, samples: np.ndarray) -> np.ndarray | None:
    """Exit layer of every sample from the policy's batch form (None: it has none)."""
    if not len(samples) or policy.decide_batch(1, ExitBatch(split, samples[:0], 1)) is None:
        return None
    plan = policy.plan(Request(int(samples[0]), 0, int(samples[0]), int(split.tokens[samples[0]]), 0.0), view)
    exit_of = np.full(len(samples), plan.last_layer, dtype=np.int64)
    active = np.arange(len(samples))
    for k in sorted(e for e in plan.exits if e < plan.last_layer):
        if not len(active):
            break
        stop = np.asarray(policy.decide_batch(k, ExitBatch(split, samples[active], k)), dtype=bool)
        exit_of[active[stop]] = k
        active = active[~stop]
    return exit_of


def _assemble(net: Network, split, uniq: np.ndarray, groups: list, drops: bool) -> Paths:
    """Paths arrays from walks, each shared by a group of samples whose amounts are recomputed here
    (the ``drop_*`` arrays only when requests can drop: ``drops``)."""
    P, n_links = len(uniq), len(net.links)
    H = max(len(w[0]) for _, w in groups)
    group_of = np.empty(P, dtype=np.int64)
    kind = np.full((P, H), -1, dtype=np.int64)
    index = np.zeros((P, H), dtype=np.int64)
    amount = np.zeros((P, H))
    nbytes = np.zeros((P, n_links), dtype=np.int64)
    if drops:
        drop = {k: np.empty((P, H), dtype=object) for k in ("plan", "exits", "route")}
        drop_explore, drop_offload = np.zeros((P, H), dtype=bool), np.zeros((P, H))
        drop_nbytes = np.zeros((P, H, n_links), dtype=np.int64)
    for g, (members, (hops, _)) in enumerate(groups):
        rows = np.searchsorted(uniq, members)
        group_of[rows] = g
        kind[rows, :len(hops)] = [k for k, *_ in hops]
        index[rows, :len(hops)] = [i for _, i, *_ in hops]
        tokens = split.tokens[members].astype(np.int64)
        block = np.zeros((len(members), H))
        sent = np.zeros((len(members), n_links), dtype=np.int64)
        for h, (k, i, _, snap, meta) in enumerate(hops):
            if k == UP:
                nb = net.transfer_bytes(tokens, meta)  # integer arithmetic, element by element
                block[:, h] = nb * 8.0
                sent[:, i] += nb
            elif k == DOWN:
                block[:, h] = net.payload.reply_bytes * 8.0
            else:
                block[:, h] = _stretch_work(net.tables[i], members, *meta)
                if drops:
                    (drop["plan"][rows, h], drop["exits"][rows, h]) = snap[0]
                    drop["route"][rows, h], drop_explore[rows, h], drop_offload[rows, h] = snap[1:4]
                    drop_nbytes[rows, h] = sent
        amount[rows] = block
        nbytes[rows] = sent
    fins = [fin for _, (_, fin) in groups]

    def final(key: str, dtype=None) -> np.ndarray:
        values = np.empty(len(fins), dtype=object) if dtype is None else np.empty(len(fins), dtype=dtype)
        values[:] = [f[key] for f in fins]
        return values[group_of]

    path_of = np.full(len(split), -1, dtype=np.int64)
    path_of[uniq] = np.arange(P)
    return Paths(path_of, kind, index, amount, final("exit_layer", np.int64), final("exit_tier", np.int64),
                 final("layer_cost", float), final("offload", float), nbytes, final("plan"), final("plan_exits"),
                 final("route"), final("explore", bool), *((drop["plan"], drop["exits"], drop["route"], drop_explore,
                                                           drop_offload, drop_nbytes) if drops else (None,) * 6))


def _stretch_work(table, samples: np.ndarray, first: int, stop: int, heads_at: tuple[int, ...]) -> np.ndarray:
    """A stretch's work for many samples, added in :func:`~simulator.walk.next_stretch`'s order: the
    embedding on layer 1, then each layer ``first..stop`` and a head after those in ``heads_at``."""
    work = table.embed_s[samples].astype(float) if first == 1 else np.zeros(len(samples))
    hs = table.head_s[samples]
    for k in range(first, stop + 1):
        work = work + table.layer_s[samples, k - 1]
        if k in heads_at:
            work = work + hs
    return work


def _walk(policy: Policy, net: Network, view: SampleView, split, sample: int, names: list[str]):
    """One sample's hops ``(kind, tier or link, work s or bits, drop snapshot, what the amount depends
    on)`` and final record, as the SimPy engine's request process walks them."""
    tokens = int(split.tokens[sample])
    req = Request(sample, 0, sample, tokens, 0.0)
    plan = policy.plan(req, view)
    cost, links = net.cost, net.links
    hops, route = [], []
    cur, layer, exit_layer, offload = 0, 1, 0, 0.0
    seen = set()
    while not exit_layer:
        tier = plan.tiers[layer - 1]
        if tier != cur:
            if tier < cur:
                raise Unsupported("a plan moves a request's state down a tier")
            nbytes = net.transfer_bytes(tokens, layer - 1)
            offload += cost.route_offload.get((cur, tier), 0.0)
            for link in net.route(cur, tier):
                hops.append((UP, link, nbytes * 8.0, None, layer - 1))
                offload += cost.link_offload[link]
                route.append(links[link].name)
            cur = tier
        work, heads, end, exit_layer, plan = next_stretch(policy, req, view, plan, layer, net.tables[tier])
        if tier in seen:
            raise Unsupported("a request returns to a device it has left (a redirect within one tier)")
        seen.add(tier)
        desc = describe_plan(plan.tiers, plan.exits, plan.last_layer, names)
        stop = exit_layer or end
        hops.append((DEVICE, tier, work, (desc, ">".join(route), plan.explore, offload), (layer, stop, heads)))
        layer = end + 1
    if cur > 0:
        bits = net.payload.reply_bytes * 8.0
        for link in reversed(net.route(0, cur)):
            hops.append((DOWN, link, bits, None, None))
    view.forget(req)
    plan_desc, plan_exits = describe_plan(plan.tiers, plan.exits, plan.last_layer, names)
    return hops, {"exit_layer": exit_layer, "exit_tier": cur, "layer_cost": cost.layers(plan.tiers, exit_layer),
                  "offload": offload, "plan": plan_desc, "plan_exits": plan_exits,
                  "route": ">".join(route), "explore": plan.explore}
