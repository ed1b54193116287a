"""Fixed confidence threshold per tier: exit at a tier's last layer when max-softmax >= threshold."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError, unknown_key
from .base import Policy, PolicyContext, Request, SystemView
from .registry import register


@register("threshold")
@dataclass
class Threshold(Policy):
    """Exit at the end of a tier when max-softmax confidence >= that tier's threshold, else offload.

    ``thresholds`` is one number for every tier or a mapping ``{tier name: threshold}`` (tiers not named
    never exit early). The scenario's tier ranges fix where each layer runs; the last layer always exits.
    This is the per-tier confidence rule of DIMEE's online phase (Bajpai & Hanawal 2024) with fixed
    thresholds.
    """

    feed_forward = True

    thresholds: float | dict[str, float] = field(default=0.9)

    def start(self, ctx: PolicyContext) -> None:
        super().start(ctx)
        by_layer = {}
        for t in ctx.tiers:
            if t.last < t.first:
                continue
            if isinstance(self.thresholds, dict):
                alpha = self.thresholds.get(t.name)
            else:
                alpha = self.thresholds
            if alpha is not None:
                by_layer[t.last] = float(alpha)
        if isinstance(self.thresholds, dict):
            names = {t.name for t in ctx.tiers}
            for name in self.thresholds:
                if name not in names:
                    raise unknown_key(name, "threshold.thresholds", names, what="tier")
        for layer, alpha in by_layer.items():
            if not 0.0 <= alpha <= 1.0:
                raise ConfigError(f"threshold at layer {layer} must be in [0, 1], got {alpha}")
        self._alpha = by_layer

    def decisions(self) -> dict:
        return {"threshold_at_layer": dict(sorted(self._alpha.items()))}

    def decide(self, req: Request, layer: int, view: SystemView) -> bool:
        alpha = self._alpha.get(layer)
        return alpha is not None and view.exit_confidence(req, layer) >= alpha

    def decide_batch(self, layer: int, exits) -> np.ndarray:
        alpha = self._alpha.get(layer)
        return np.zeros(len(exits.samples), dtype=bool) if alpha is None else exits.confidence(layer) >= alpha
