"""Fixed placements: the whole model on one tier, no early exit (the reference points)."""

from __future__ import annotations

from dataclasses import dataclass

from .base import Plan, Policy, PolicyContext, Request, SystemView, all_on, register


@dataclass
class _AllOn(Policy):
    tier: str | int = 0

    def start(self, ctx: PolicyContext) -> None:
        super().start(ctx)
        self._plan = all_on(self.tier_index(self.tier), ctx.num_layers)

    def plan(self, req: Request, view: SystemView) -> Plan:
        return self._plan


@register("all-mobile")
@dataclass
class AllMobile(_AllOn):
    """Every layer on the first tier (the mobile); nothing is sent."""

    tier: str | int = 0


@register("all-edge")
@dataclass
class AllEdge(_AllOn):
    """Raw input sent to the second tier (the edge), which runs the full model."""

    tier: str | int = 1


@register("all-cloud")
@dataclass
class AllCloud(_AllOn):
    """Raw input sent to the last tier (the cloud), which runs the full model: the papers' reference."""

    tier: str | int = -1
