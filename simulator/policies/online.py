"""Online bandit policies that learn without labels: SplitEE, SplitEE-S, CeeBERT, queue-aware thresholds.

Each replication starts cold (``start`` resets every statistic). Arms are chosen when a request arrives
and the reward is credited when it completes (``observe``), so feedback is delayed as it would be on a
device. Rewards use only exit confidences the system computed for that request, the abstract cost and
observed latency; ties and first pulls are broken with ``ctx.rng``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError
from ..schema import require
from .base import (
    Outcome,
    Plan,
    Policy,
    PolicyContext,
    Request,
    SystemView,
    every_layer_plan,
    scenario_plan,
    split_plan,
)
from .registry import register


class UCB:
    """UCB1 over ``n`` arms: mean + c * sqrt(2 ln t / n_i); every arm is pulled once first."""

    def __init__(self, n: int, c: float, rng: np.random.Generator):
        self.counts = np.zeros(n)
        self.sums = np.zeros(n)
        self.c = c
        self.rng = rng
        self.t = 0
        self.explored = False  # was the last selection an exploration step (not the greedy arm)?

    @property
    def means(self) -> np.ndarray:
        return np.divide(self.sums, self.counts, out=np.zeros_like(self.sums), where=self.counts > 0)

    def select(self) -> int:
        self.t += 1
        untried = np.flatnonzero(self.counts == 0)
        if untried.size:
            self.explored = True
            return int(self.rng.choice(untried))
        means = self.means
        idx = means + self.c * np.sqrt(2.0 * math.log(self.t) / self.counts)
        best = np.flatnonzero(idx >= idx.max() - 1e-12)
        arm = int(best[0] if best.size == 1 else self.rng.choice(best))
        self.explored = bool(means[arm] < means.max() - 1e-12)
        return arm

    def state(self) -> dict:
        """Plays and mean reward per arm (plain data)."""
        return {"plays": self.counts.astype(int).tolist(), "mean_reward": self.means.round(6).tolist()}

    def update(self, arm: int, reward: float) -> None:
        self.counts[arm] += 1
        self.sums[arm] += reward


# -- SplitEE -----------------------------------------------------------------------------------
@register("splitee")
@dataclass
class SplitEE(Policy):
    """UCB over the split layer i: run 1..i on the mobile, exit there if C_i >= alpha, else offload the rest.

    SplitEE (Bajpai, Trivedi & Hanawal 2023, "SplitEE: Early Exit in Deep Neural Networks with Split
    Computing"). Arm i puts layers 1..i on the first tier with an exit after layer i; if its max-softmax
    C_i >= ``alpha`` the request exits there with reward C_i - lam*i, else layers i+1..L run on ``tier``
    (default the last tier) and the reward is C_L - lam*i - o. No labels are used. Follows the paper;
    our choices: lam defaults to the scenario's lambda per layer, o to the scenario's offload costs of
    the links crossed scaled by ``offload_scale``; the UCB index is UCB1 with exploration ``c``.
    """

    alpha: float = 0.9
    lam: float | None = None
    offload: float | None = None
    offload_scale: float = 1.0
    tier: str | int = -1
    c: float = 1.0
    arms: list[int] | None = None
    side_info: bool = field(default=False, init=False)

    def check(self, path: str) -> None:
        require(0.0 <= self.alpha <= 1.0, f"'{path}.alpha' must be in [0, 1]")
        require(self.c >= 0, f"'{path}.c' must be non-negative")

    def start(self, ctx: PolicyContext) -> None:
        super().start(ctx)
        L = ctx.num_layers
        self._arms = list(range(1, L + 1)) if self.arms is None else list(self.arms)
        for a in self._arms:
            if not 1 <= a <= L:
                raise ConfigError(f"{self.registered_name}.arms: {a} is outside 1..{L}")
        self._target = self.tier_index(self.tier)
        self._lam = ctx.cost.lambda_per_tier[0] if self.lam is None else self.lam
        o = ctx.cost.move(0, self._target) if self.offload is None else self.offload
        self._o = o * self.offload_scale
        self.bandit = UCB(len(self._arms), self.c, ctx.rng)
        self.played = np.zeros(len(self._arms), dtype=int)  # plays (bandit.counts also has side updates)
        self._pending: dict[int, int] = {}
        self._plans = []
        for i in self._arms:
            exits = set(range(1, i + 1)) if self.side_info else {i}
            self._plans.append(split_plan(L, [i], [0, self._target], exits | {L}))
        self._explore_plans = [dataclasses.replace(p, explore=True) for p in self._plans]

    def plan(self, req: Request, view: SystemView) -> Plan:
        arm = self.bandit.select()
        self.played[arm] += 1
        self._pending[req.id] = arm
        return self._explore_plans[arm] if self.bandit.explored else self._plans[arm]

    def decisions(self) -> dict:
        return {"arms": list(self._arms), "target_tier": self.ctx.tiers[self._target].name, "lam": self._lam,
                "offload_cost": self._o}

    def learned(self) -> dict:
        return {"played": self.played.tolist(), **self.bandit.state()}

    def decide(self, req: Request, layer: int, view: SystemView) -> bool:
        arm = self._pending.get(req.id)
        return arm is not None and layer == self._arms[arm] and bool(
            view.exit_confidence(req, layer) >= self.alpha)

    def reward(self, conf: np.ndarray, i: int, final_conf: float | None) -> float:
        """Reward of split i given a request's exit confidences ``conf`` (those computed: up to i, and
        C_L when the request was offloaded); ``final_conf`` replaces C_L when given."""
        L = self.ctx.num_layers
        c = conf
        if c[i - 1] >= self.alpha or i == L:
            return float(c[i - 1] - self._lam * i)
        fc = c[L - 1] if final_conf is None else final_conf
        return float(fc - self._lam * i - self._o)

    def observe(self, req: Request, outcome: Outcome, view: SystemView) -> None:
        arm = self._pending.pop(req.id, None)
        if arm is None or outcome.dropped:
            return
        conf = view.exit_confidences(req, outcome.exit_layer)
        self.bandit.update(arm, self.reward(conf, self._arms[arm], None))


@register("splitee-s")
@dataclass
class SplitEES(SplitEE):
    """SplitEE with side observations: exits after every layer up to the split, all lower arms updated.

    SplitEE-S (Bajpai, Trivedi & Hanawal 2023): playing split i computes the exits of layers 1..i on the
    mobile (their heads are charged), so the rewards of every arm j <= i are observed and updated. The
    request still exits only at i. Our reading for an arm j < i with C_j < alpha: its reward needs the
    final confidence, taken as C_L when the request was offloaded (the cloud returns it) and as the best
    confidence seen on the mobile, C_i, when the request exited at i.
    """

    side_info: bool = field(default=True, init=False)

    def observe(self, req: Request, outcome: Outcome, view: SystemView) -> None:
        arm = self._pending.pop(req.id, None)
        if arm is None or outcome.dropped:
            return
        i = self._arms[arm]
        L = self.ctx.num_layers
        c = view.exit_confidences(req, outcome.exit_layer)
        final = c[L - 1] if outcome.exit_layer == L else c[outcome.exit_layer - 1]
        for a, j in enumerate(self._arms):
            if j <= i:
                self.bandit.update(a, self.reward(c, j, float(final)))


# -- CeeBERT -----------------------------------------------------------------------------------
def _grid(values: list[float] | None) -> np.ndarray:
    return np.asarray(values if values is not None else np.round(np.arange(0.5, 1.0001, 0.05), 4), float)


@register("ceebert")
@dataclass
class CeeBERT(Policy):
    """UCB over a threshold grid: exit at the first evaluated exit with max-softmax >= alpha.

    CeeBERT-style online threshold selection (Bajpai & Hanawal 2024, "CeeBERT: Cross-Domain Inference
    in Early Exit BERT"). Placement follows the scenario's tiers, exits at the end of each tier (or
    every layer with ``every_layer``). Reward, relative to the first exit i: 0 if the request exited at
    i, else C_exit - C_i - mu * (cost(exit) - cost(i)) (the confidence gained by going on minus the
    abstract cost of the extra layers and links; ``overhead`` fixes that cost instead). Our reading:
    the paper learns thresholds per exit with a similar label-free reward; one shared threshold here.
    """

    grid: list[float] | None = None
    mu: float = 0.05
    overhead: float | None = None
    every_layer: bool = False
    c: float = 1.0

    def start(self, ctx: PolicyContext) -> None:
        super().start(ctx)
        L = ctx.num_layers
        self._plan = every_layer_plan(ctx.tiers, L) if self.every_layer else scenario_plan(ctx.tiers, L)
        self._first = min(self._plan.exits)
        self._explore_plan = dataclasses.replace(self._plan, explore=True)
        self._grid = _grid(self.grid)
        self._tier = {k + 1: t for k, t in enumerate(self._plan.tiers)}
        self.bandit = UCB(len(self._grid), self.c, ctx.rng)
        self._pending: dict[int, int] = {}

    def plan(self, req: Request, view: SystemView) -> Plan:
        self._pending[req.id] = self.bandit.select()
        return self._explore_plan if self.bandit.explored else self._plan

    def decisions(self) -> dict:
        return {"grid": self._grid.tolist(), "first_exit": self._first, "exits": sorted(self._plan.exits)}

    def learned(self) -> dict:
        return self.bandit.state()

    def decide(self, req: Request, layer: int, view: SystemView) -> bool:
        arm = self._pending.get(req.id)
        return arm is not None and bool(view.exit_confidence(req, layer) >= self._grid[arm])

    def observe(self, req: Request, outcome: Outcome, view: SystemView) -> None:
        arm = self._pending.pop(req.id, None)
        if arm is None or outcome.dropped:
            return
        i, e = self._first, outcome.exit_layer
        if e == i:
            r = 0.0
        else:
            c = view.exit_confidences(req, e)
            if self.overhead is not None:
                extra = self.overhead
            else:
                owner = self._plan.tiers
                extra = self.mu * (self.ctx.cost.plan_cost(owner, e) - self.ctx.cost.plan_cost(owner, i))
            r = float(c[e - 1] - c[i - 1] - extra)
        self.bandit.update(arm, r)


# -- queue-aware thresholds --------------------------------------------------------------------
@register("queue-aware")
@dataclass
class QueueAware(Policy):
    """Per observed queue length q, UCB over a threshold grid; exit where max-softmax >= alpha(q).

    After the buffer-aware early-exit work of Bajpai & Hanawal (thresholds that adapt to the number of
    waiting requests). At arrival the mobile reads the queue length of ``queue_tier`` (default the
    mobile itself; capped at ``max_queue``), which selects an independent UCB over ``grid``. Placement
    and exits as in CeeBERT (scenario tiers). Reward when the request completes (no labels):
    C_exit - mu * cost - kappa * latency_s. Our reading: the paper's reward and state are simplified to
    this form; the latency term is what makes long queues favour lower thresholds.
    """

    grid: list[float] | None = None
    queue_tier: str | int = 0
    max_queue: int = 8
    mu: float = 0.05
    kappa: float = 1.0
    every_layer: bool = False
    c: float = 1.0

    def check(self, path: str) -> None:
        require(self.max_queue >= 0, f"'{path}.max_queue' must be non-negative")

    def start(self, ctx: PolicyContext) -> None:
        super().start(ctx)
        L = ctx.num_layers
        self._plan = every_layer_plan(ctx.tiers, L) if self.every_layer else scenario_plan(ctx.tiers, L)
        self._grid = _grid(self.grid)
        self._qt = self.tier_index(self.queue_tier, "queue_tier")
        self._explore_plan = dataclasses.replace(self._plan, explore=True)
        self.bandits = [UCB(len(self._grid), self.c, ctx.rng) for _ in range(self.max_queue + 1)]
        self._pending: dict[int, tuple[int, int]] = {}

    def plan(self, req: Request, view: SystemView) -> Plan:
        q = min(int(view.queue_length(req.mobile, self._qt)), self.max_queue)
        self._pending[req.id] = (q, self.bandits[q].select())
        return self._explore_plan if self.bandits[q].explored else self._plan

    def decisions(self) -> dict:
        return {"grid": self._grid.tolist(), "queue_tier": self.ctx.tiers[self._qt].name,
                "exits": sorted(self._plan.exits)}

    def learned(self) -> dict:
        return {"by_queue_length": [b.state() for b in self.bandits]}

    def decide(self, req: Request, layer: int, view: SystemView) -> bool:
        qa = self._pending.get(req.id)
        return qa is not None and bool(view.exit_confidence(req, layer) >= self._grid[qa[1]])

    def observe(self, req: Request, outcome: Outcome, view: SystemView) -> None:
        qa = self._pending.pop(req.id, None)
        if qa is None or outcome.dropped:
            return
        e = outcome.exit_layer
        cost = self.ctx.cost.plan_cost(self._plan.tiers, e)
        r = float(view.exit_confidence(req, e)) - self.mu * cost - self.kappa * outcome.latency_s
        self.bandits[qa[0]].update(qa[1], r)
