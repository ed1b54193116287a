"""Hindsight reference: the earliest correct exit (reads labels; not a deployable policy)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Plan, Policy, PolicyContext, Request, SystemView, every_layer_plan, scenario_plan
from .registry import register


@register("oracle")
@dataclass
class Oracle(Policy):
    """Exit at the earliest evaluated exit whose prediction is correct; samples never right go to the end.

    A hindsight bound (it reads labels): the lowest depth, hence cost, at the best accuracy any exit
    rule on these exits could reach; its accuracy is the fraction of samples correct at some exit. Used
    as a reference in the early-exit literature (e.g. the "oracle" rows of PABEE/BERxiT-style analyses);
    not from a single paper. Placement follows the scenario's tiers; ``every_layer: false`` restricts
    the exits to the ends of the tiers (the DIMEE exit points).
    """

    feed_forward = True

    hindsight = True
    every_layer: bool = True

    def start(self, ctx: PolicyContext) -> None:
        super().start(ctx)
        L = ctx.num_layers
        self._plan = every_layer_plan(ctx.tiers, L) if self.every_layer else scenario_plan(ctx.tiers, L)
        self._correct = ctx.split.correct

    def plan(self, req: Request, view: SystemView) -> Plan:
        return self._plan

    def decisions(self) -> dict:
        return {"exit_layers": sorted(self._plan.exits)}

    def decide(self, req: Request, layer: int, view: SystemView) -> bool:
        return bool(self._correct[req.sample, layer - 1])

    def decide_batch(self, layer: int, exits) -> np.ndarray:
        return self._correct[exits.samples, layer - 1].copy()
