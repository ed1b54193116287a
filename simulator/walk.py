"""How a request walks its plan's layers: one compute stretch on one tier at a time.

A stretch is the run of consecutive layers a request computes on one tier before its state moves on
(or it exits). Its exit decisions are taken when the device starts it, so the whole stretch, and the
work it costs, is known then. Both engines walk requests with :func:`next_stretch`, so a policy's
decisions, the work charged and the records mean the same whichever engine runs.
"""

from __future__ import annotations

from .policies.base import Plan, Policy, Request, SystemView, checked_redirect
from .topology import ComputeTable


def next_stretch(policy: Policy, req: Request, view: SystemView, plan: Plan, layer: int, table: ComputeTable
                 ) -> tuple[float, tuple[int, ...], int, int, Plan]:
    """The stretch that starts at ``layer`` on the tier of ``plan.tiers[layer - 1]`` (whose compute
    table is ``table``): ``(work_s, heads, end, exit_layer, plan)``; ``heads`` are the layers whose exit
    head it evaluates.

    ``end`` is the last layer of the stretch (computed up to ``exit_layer`` when the request exits in
    it: its plan's last layer, or a ``decide`` that said stop; else ``exit_layer`` is 0); ``plan`` is the
    plan for the rest of the request (a ``redirect`` may have replaced it, which ends the stretch at that
    exit). Work is the embedding (on layer 1), every layer and every evaluated exit head, in seconds at
    full speed.
    """
    owner, last = plan.tiers, plan.last_layer
    tier = owner[layer - 1]
    end = layer
    while end < last and owner[end] == tier:
        end += 1
    sample = req.sample
    ls, hs = table.layer_s[sample], float(table.head_s[sample])
    work = float(table.embed_s[sample]) if layer == 1 else 0.0
    k, heads, exit_layer = layer, [], 0
    while k <= end:
        work += ls[k - 1]
        if k == last:
            work += hs
            heads.append(k)
            exit_layer = k
            break
        if k in plan.exits:
            work += hs
            heads.append(k)
            view.reach(req, k)
            if policy.decide(req, k, view):
                exit_layer = k
                break
            new = policy.redirect(req, k, view)
            if new is not None:  # the rest of the request follows the new plan
                plan = checked_redirect(plan, new, k)
                last, end = plan.last_layer, k
        k += 1
    return float(work), tuple(heads), end, exit_layer, plan
