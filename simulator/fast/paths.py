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
from ..view import ExitView
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


def sample_paths(policy: Policy, net: Network, split, samples: np.ndarray) -> Paths:
    """Walk ``policy`` once for each distinct sample in ``samples`` (rows of ``split``)."""
    view = SampleView(split)
    names = [t.name for t in net.tiers]
    uniq = np.unique(samples)
    n_links = len(net.links)
    walks = [_walk(policy, net, view, split, int(s), names) for s in uniq]
    P, H = len(walks), max(len(w[0]) for w in walks)
    kind = np.full((P, H), -1, dtype=np.int64)
    index = np.zeros((P, H), dtype=np.int64)
    amount = np.zeros((P, H))
    drop = {k: np.empty((P, H), dtype=object) for k in ("plan", "exits", "route")}
    drop_explore = np.zeros((P, H), dtype=bool)
    drop_offload = np.zeros((P, H))
    drop_nbytes = np.zeros((P, H, n_links), dtype=np.int64)
    final = {k: [] for k in ("exit_layer", "exit_tier", "layer_cost", "offload", "nbytes", "plan", "plan_exits",
                             "route", "explore")}
    for p, (hops, fin) in enumerate(walks):
        for h, (k, i, a, snap) in enumerate(hops):
            kind[p, h], index[p, h], amount[p, h] = k, i, a
            if snap is not None:
                (drop["plan"][p, h], drop["exits"][p, h]), drop["route"][p, h], drop_explore[p, h], \
                    drop_offload[p, h], drop_nbytes[p, h] = snap
        for key, v in fin.items():
            final[key].append(v)
    path_of = np.full(len(split), -1, dtype=np.int64)
    path_of[uniq] = np.arange(P)
    obj = {k: _objects(final[k]) for k in ("plan", "plan_exits", "route")}
    return Paths(path_of, kind, index, amount, np.asarray(final["exit_layer"], dtype=np.int64),
                 np.asarray(final["exit_tier"], dtype=np.int64), np.asarray(final["layer_cost"], dtype=float),
                 np.asarray(final["offload"], dtype=float), np.asarray(final["nbytes"], dtype=np.int64).reshape(P, n_links),
                 obj["plan"], obj["plan_exits"], obj["route"], np.asarray(final["explore"], dtype=bool),
                 drop["plan"], drop["exits"], drop["route"], drop_explore, drop_offload, drop_nbytes)


def _objects(values: list) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _walk(policy: Policy, net: Network, view: SampleView, split, sample: int, names: list[str]):
    """One sample's hops ``(kind, tier or link, work s or bits, drop snapshot)`` and final record, as the
    SimPy engine's request process walks them."""
    tokens = int(split.tokens[sample])
    req = Request(sample, 0, sample, tokens, 0.0)
    plan = policy.plan(req, view)
    cost, links = net.cost, net.links
    nbytes_link = [0] * len(links)
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
                hops.append((UP, link, nbytes * 8.0, None))
                nbytes_link[link] += nbytes
                offload += cost.link_offload[link]
                route.append(links[link].name)
            cur = tier
        work, _, end, exit_layer, plan = next_stretch(policy, req, view, plan, layer, net.tables[tier])
        if tier in seen:
            raise Unsupported("a request returns to a device it has left (a redirect within one tier)")
        seen.add(tier)
        desc = describe_plan(plan.tiers, plan.exits, plan.last_layer, names)
        hops.append((DEVICE, tier, work, (desc, ">".join(route), plan.explore, offload, list(nbytes_link))))
        layer = end + 1
    if cur > 0:
        bits = net.payload.reply_bytes * 8.0
        for link in reversed(net.route(0, cur)):
            hops.append((DOWN, link, bits, None))
    view.forget(req)
    plan_desc, plan_exits = describe_plan(plan.tiers, plan.exits, plan.last_layer, names)
    return hops, {"exit_layer": exit_layer, "exit_tier": cur, "layer_cost": cost.layers(plan.tiers, exit_layer),
                  "offload": offload, "nbytes": nbytes_link, "plan": plan_desc, "plan_exits": plan_exits,
                  "route": ">".join(route), "explore": plan.explore}
