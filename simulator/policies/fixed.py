"""Fixed placements: the whole model on one tier, or a fixed split point; no early exit (references)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..schema import require
from .base import Plan, Policy, PolicyContext, Request, SystemView, all_on, split_plan
from .registry import register


@dataclass
class _AllOn(Policy):
    feed_forward = True

    tier: str | int = 0

    def start(self, ctx: PolicyContext) -> None:
        super().start(ctx)
        self._plan = all_on(self.tier_index(self.tier), ctx.num_layers)

    def plan(self, req: Request, view: SystemView) -> Plan:
        return self._plan

    def decisions(self) -> dict:
        return {"tier": self.ctx.tiers[self._plan.tiers[0]].name}


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


@register("fixed-split")
@dataclass
class FixedSplit(Policy):
    """Layers 1..``split`` on the first tier, the rest on ``tier``; no early exit (a fixed partition).

    The static partition point of split computing (Kang et al. 2017 evaluate every such point; SplitEE,
    Bajpai et al. 2023, uses fixed splits as baselines). ``split: 0`` sends the raw input, ``split: L`` is
    all-mobile. ``exit_at_split: true`` adds the exit head at the split with confidence ``threshold``
    (exit on the device when max-softmax >= threshold, else offload).
    """

    feed_forward = True

    split: int = 2
    tier: str | int = -1
    exit_at_split: bool = False
    threshold: float = 0.9

    def check(self, path: str) -> None:
        require(self.split >= 0, f"'{path}.split' must be >= 0, got {self.split}")
        require(0.0 <= self.threshold <= 1.0, f"'{path}.threshold' must be in [0, 1]")

    def start(self, ctx: PolicyContext) -> None:
        super().start(ctx)
        L = ctx.num_layers
        if self.split > L:
            raise ConfigError(f"fixed-split: split {self.split} is beyond the model's {L} layers")
        k = self.split
        exits = {L}
        if self.exit_at_split and 0 < k < L:
            exits.add(k)
        self._plan = split_plan(L, [k], [0, self.tier_index(self.tier)], exits)

    def plan(self, req: Request, view: SystemView) -> Plan:
        return self._plan

    def decide(self, req: Request, layer: int, view: SystemView) -> bool:
        if not self.exit_at_split or layer != self.split:
            return False
        return bool(view.exit_confidence(req, layer) >= self.threshold)

    def decide_batch(self, layer: int, exits) -> np.ndarray:
        if not self.exit_at_split or layer != self.split:
            return np.zeros(len(exits.samples), dtype=bool)
        return exits.confidence(layer) >= self.threshold
