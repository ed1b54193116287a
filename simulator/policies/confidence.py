"""Per-layer early-exit rules on the exit logits: max-softmax, entropy (DeeBERT), patience (PABEE), BEEM.

Placement follows the scenario's tier ranges; an exit head is evaluated after every layer (or after the
layers listed in ``layers``), and the request stops at the first evaluated layer where the rule fires.
The last layer always exits. Rules read only the exit outputs computed so far (through the view, up to
the current layer), never labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError
from ..schema import require
from .base import Plan, Policy, PolicyContext, Request, SystemView, scenario_plan
from .registry import register


@dataclass
class _PerLayer(Policy):
    """Scenario placement, exit heads after ``layers`` (default: every layer)."""

    feed_forward = True

    layers: list[int] | None = None

    def start(self, ctx: PolicyContext) -> None:
        super().start(ctx)
        L = ctx.num_layers
        chosen = range(1, L + 1) if self.layers is None else self.layers
        for k in chosen:
            if not 1 <= k <= L:
                raise ConfigError(f"{self.registered_name}.layers: layer {k} is outside 1..{L}")
        base = scenario_plan(ctx.tiers, L)
        self._exits = sorted(set(chosen) | {L})
        self._plan = Plan(tiers=base.tiers, exits=frozenset(self._exits), last_layer=L)

    def plan(self, req: Request, view: SystemView) -> Plan:
        return self._plan

    def decisions(self) -> dict:
        return {"exit_layers": list(self._exits)}

    def _previous(self, layer: int) -> list[int]:
        """Evaluated exit layers up to and including ``layer`` (ascending)."""
        return [k for k in self._exits if k <= layer]


@register("confidence")
@dataclass
class Confidence(_PerLayer):
    """Exit at the first evaluated layer whose max-softmax confidence >= that layer's threshold.

    The classic confidence early exit (BranchyNet-style, Teerapittayanon et al. 2016; used as the rule in
    the Hanawal group's papers). ``threshold`` is one number or a list with one value per layer 1..L
    (use 1.01 to disable a layer). Placement follows the scenario's tiers.
    """

    threshold: float | list[float] = field(default=0.9)

    def start(self, ctx: PolicyContext) -> None:
        super().start(ctx)
        L = ctx.num_layers
        a = self.threshold
        alpha = np.full(L, float(a)) if not isinstance(a, list) else np.asarray(a, dtype=float)
        if alpha.shape != (L,):
            raise ConfigError(f"confidence.threshold: need one value or {L} (one per layer), got {len(a)}")
        self._alpha = alpha

    def decisions(self) -> dict:
        return super().decisions() | {"threshold_at_layer": self._alpha.tolist()}

    def decide(self, req: Request, layer: int, view: SystemView) -> bool:
        return bool(view.exit_confidence(req, layer) >= self._alpha[layer - 1])

    def decide_batch(self, layer: int, exits) -> np.ndarray:
        return exits.confidence(layer) >= self._alpha[layer - 1]


@register("deebert")
@dataclass
class DeeBERT(_PerLayer):
    """Exit at the first evaluated layer whose prediction entropy (nats) < ``entropy``.

    DeeBERT (Xin et al., ACL 2020, "DeeBERT: Dynamic Early Exiting for Accelerating BERT Inference"):
    an off-ramp after every layer, exit when the entropy of its softmax falls below S. Follows the paper;
    entropy is in nats (the paper's S is tuned per task, so the unit only rescales S).
    """

    entropy: float = 0.3

    def check(self, path: str) -> None:
        require(self.entropy >= 0, f"'{path}.entropy' must be non-negative")

    def decide(self, req: Request, layer: int, view: SystemView) -> bool:
        return bool(view.exit_entropy(req, layer) < self.entropy)

    def decide_batch(self, layer: int, exits) -> np.ndarray:
        return exits.entropy(layer) < self.entropy


@register("pabee")
@dataclass
class PABEE(_PerLayer):
    """Exit when the argmax has stayed unchanged across ``patience`` consecutive exits.

    PABEE (Zhou et al., NeurIPS 2020, "BERT Loses Patience"): a counter increases when an exit's
    prediction equals the previous exit's and resets otherwise; the request stops when the counter
    reaches the patience t, i.e. t + 1 consecutive evaluated exits agree. Follows the paper (exits after
    every layer by default).
    """

    patience: int = 2

    def check(self, path: str) -> None:
        require(self.patience >= 1, f"'{path}.patience' must be at least 1")

    def decide(self, req: Request, layer: int, view: SystemView) -> bool:
        prev = self._previous(layer)
        if len(prev) <= self.patience:
            return False
        p = view.exit_predictions(req, layer)
        window = prev[-(self.patience + 1):]
        return bool(np.all(p[np.asarray(window) - 1] == p[layer - 1]))

    def decide_batch(self, layer: int, exits) -> np.ndarray:
        prev = self._previous(layer)
        if len(prev) <= self.patience:
            return np.zeros(len(exits.samples), dtype=bool)
        p = exits.predictions()
        window = np.asarray(prev[-(self.patience + 1):]) - 1
        return np.all(p[:, window] == p[:, layer - 1:layer], axis=1)


@register("beem")
@dataclass
class BEEM(_PerLayer):
    """Exit when the summed confidence of the consecutive exits agreeing with the current one >= threshold.

    BEEM (Bajpai & Hanawal 2024, "BEEM: Boosting Performance of Early Exit DNNs using Multi-Exit
    Classifiers as Experts"): exits act as experts; the score at exit i is the sum of the max-softmax
    confidences of exit i and the immediately preceding exits that predict the same class (a change of
    prediction resets it); the request exits when the score reaches the threshold. Our reading: the
    paper weights each expert by its validation accuracy and tunes per-exit thresholds; here every
    weight is 1 and one threshold is used (``weights`` gives per-layer weights if wanted).
    """

    threshold: float = 1.8
    weights: list[float] | None = None

    def start(self, ctx: PolicyContext) -> None:
        super().start(ctx)
        L = ctx.num_layers
        w = np.ones(L) if self.weights is None else np.asarray(self.weights, dtype=float)
        if w.shape != (L,):
            raise ConfigError(f"beem.weights: need {L} values (one per layer)")
        self._w = w

    def score(self, pred: np.ndarray, conf: np.ndarray, layer: int) -> float:
        """The score at ``layer`` from the predictions and confidences of the exits up to it."""
        p, c = pred, conf
        total = 0.0
        for k in reversed(self._previous(layer)):
            if p[k - 1] != p[layer - 1]:
                break
            total += self._w[k - 1] * c[k - 1]
        return total

    def decide(self, req: Request, layer: int, view: SystemView) -> bool:
        return self.score(view.exit_predictions(req, layer), view.exit_confidences(req, layer),
                          layer) >= self.threshold

    def decide_batch(self, layer: int, exits) -> np.ndarray:
        p, c = exits.predictions(), exits.confidences()
        total = np.zeros(len(p))
        agree = np.ones(len(p), dtype=bool)
        for k in reversed(self._previous(layer)):  # score() for every request, in the same order
            agree &= p[:, k - 1] == p[:, layer - 1]
            total = np.where(agree, total + self._w[k - 1] * c[:, k - 1], total)
        return total >= self.threshold
