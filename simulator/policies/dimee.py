"""DIMEE: mobile / edge / cloud early exits with thresholds chosen on the calibration split."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError
from ..profile import Split
from ..schema import require
from .base import Outcome, Plan, Policy, PolicyContext, Request, SystemView, scenario_plan, split_plan
from .registry import register

MODES = ("tolerance", "cost")
POOLS = ("threshold", "cluster")


def kmeans(x: np.ndarray, k: int, rng: np.random.Generator, n_init: int = 4,
           iters: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means with k-means++ seeding, best of ``n_init``: (centroids [k, D], labels [N])."""
    k = min(k, len(x))
    best = None
    for _ in range(n_init):
        centres = [x[rng.integers(len(x))]]
        for _ in range(k - 1):
            d2 = np.min(((x[:, None, :] - np.asarray(centres)[None]) ** 2).sum(-1), axis=1)
            p = d2 / d2.sum() if d2.sum() > 0 else None
            centres.append(x[rng.choice(len(x), p=p)])
        c = np.asarray(centres, dtype=np.float64)
        for _ in range(iters):
            labels = np.argmin(((x[:, None, :] - c[None]) ** 2).sum(-1), axis=1)
            new = np.array([x[labels == j].mean(0) if np.any(labels == j) else c[j] for j in range(k)])
            if np.allclose(new, c):
                break
            c = new
        labels = np.argmin(((x[:, None, :] - c[None]) ** 2).sum(-1), axis=1)
        inertia = float(((x - c[labels]) ** 2).sum())
        if best is None or inertia < best[0]:
            best = (inertia, c, labels)
    return best[1], best[2]


@dataclass
class Choice:
    """What DIMEE picked on the calibration split."""

    cuts: tuple[int, ...]  # last layer of each exit tier
    exit_layers: tuple[int, ...]
    tier_ids: tuple[int, ...]  # tier of each exit layer, then the final tier
    thresholds: tuple[float, ...]
    calib_accuracy: float
    calib_cost: float
    full_accuracy: float
    full_cost: float


def evaluate_grid(conf: np.ndarray, correct: np.ndarray, exit_layers: list[int], grids: list[np.ndarray],
                  costs: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy and mean cost of every threshold combination (one grid per exit; the last layer is final).

    ``conf``/``correct`` are [N, L]; ``costs`` has one entry per exit plus the final one. Returns arrays
    of shape [len(g) for g in grids].
    """
    n = conf.shape[0]
    L = conf.shape[1]
    layers = [*exit_layers, L]
    shape = tuple(len(g) for g in grids)
    acc = np.empty(shape)
    cost = np.empty(shape)
    k = len(exit_layers)
    last_grid = grids[-1] if k else None
    heads = list(itertools.product(*[range(len(g)) for g in grids[:-1]])) if k else [()]
    for head in heads:
        remaining = np.ones(n, dtype=bool)
        a = np.zeros(1) if k == 0 else np.zeros(len(last_grid))
        c = np.zeros_like(a)
        for j, gi in enumerate(head):
            ex = remaining & (conf[:, layers[j] - 1] >= grids[j][gi])
            a += correct[ex, layers[j] - 1].sum()
            c += costs[j] * ex.sum()
            remaining &= ~ex
        if k:
            j = k - 1
            ex = remaining[None, :] & (conf[None, :, layers[j] - 1] >= last_grid[:, None])  # [G, N]
            a += (ex & correct[None, :, layers[j] - 1]).sum(axis=1)
            c += costs[j] * ex.sum(axis=1)
            rest = remaining[None, :] & ~ex
        else:
            rest = remaining[None, :]
        a += (rest & correct[None, :, L - 1]).sum(axis=1)
        c += costs[k] * rest.sum(axis=1)
        if k:
            acc[head] = a / n
            cost[head] = c / n
        else:
            return a / n, c / n
    return acc, cost


def threshold_grid(conf_at_layer: np.ndarray, size: int) -> np.ndarray:
    """Candidate thresholds: calibration confidence quantiles, plus +inf (never exit here)."""
    q = np.quantile(conf_at_layer, np.linspace(0.0, 1.0, size))
    return np.unique(np.concatenate([q, [np.inf]]))


@register("dimee")
@dataclass
class DIMEE(Policy):
    """Exit at the end of the mobile / edge stretch when max-softmax >= a tuned threshold, else move up.

    Bajpai & Hanawal 2024, "Distributed Inference on Mobile Edge and Cloud: An Early Exit based
    Clustering Approach" (DIMEE). Online rule: a sample is run on the mobile; if the confidence of the
    exit at the mobile's last layer is >= alpha_mobile it exits there ("easy"), else its hidden state
    goes to the edge, which exits when its last exit's confidence >= alpha_edge ("medium"), else to the
    cloud, which runs the rest of the model ("hard").

    Follows the paper: the three-tier placement (first layers on the mobile, more on the edge, the full
    model in the cloud) with an exit classifier at the end of the mobile and edge stretches, easy /
    medium / hard samples finishing on mobile / edge / cloud, the abstract cost (lambda per layer
    computed + an offload cost per link crossed, the scenario's ``cost``), and choosing the operating
    point offline on held-out labelled data (``ctx.calib``).

    Differs from the paper: DIMEE forms its easy / medium / hard pools with a clustering step (the
    title's "clustering approach", on the model's representations from training); the profiles store
    exit logits, not representations, so here the pool is decided by the exit's max-softmax confidence
    against a threshold (the rule of the authors' follow-up, DIMEC-DC, which picks thresholds by
    expected reward under processing and offloading costs, and of SplitEE).

    Our reading (the paper's selection step is not specified in enough detail to copy):
      * ``mode: tolerance`` (default): the cheapest threshold pair (mean calibration cost) whose
        calibration accuracy is within ``tolerance_points`` (default 0.3) percentage points of the full
        model run in the cloud; ties go to the more accurate pair.
      * ``mode: cost``: maximise calibration accuracy (a fraction in [0, 1]) - ``mu`` * mean cost. With
        mu = 1 and lambda = 0.1/layer, the optimum on SST-2 sent every sample out at the mobile and lost
        7 points; mu around 0.03-0.1 keeps accuracy (default 0.05).
      * thresholds are searched over ``grid`` quantiles of the calibration confidence at each exit
        (plus "never exit"), jointly for all exit tiers.
      * ``search_splits: true`` also searches the split layers (every cut with at least one layer per
        tier), otherwise the scenario's tier ranges are used.

    ``pools: cluster`` forms the pools as the paper does, from representations (profiles that store
    ``<split>_proj``, e.g. the 12-layer ones): k-means (``clusters``, k-means++ seeded from the policy's
    stream) on the calibration split's representation at the mobile exit; each cluster goes to the
    cheapest tier whose exit is accurate enough on that cluster's calibration samples (``tolerance``:
    within ``tolerance_points`` of the full model on the cluster; ``cost``: max accuracy - mu * cost);
    online, a request computes the mobile layers and goes to the pool of its nearest centroid: it exits
    on the mobile, goes to the edge and exits there, or goes straight to the cloud (over a direct link
    when the scenario has one) for the rest of the model.
    """

    feed_forward = True

    mode: str = "tolerance"
    tolerance_points: float = 0.3
    mu: float = 0.05
    grid: int = 41
    search_splits: bool = False
    pools: str = "threshold"
    clusters: int = 8
    choice: Choice | None = field(default=None, init=False, repr=False)

    def check(self, path: str) -> None:
        require(self.pools in POOLS, f"'{path}.pools' must be one of {', '.join(POOLS)}, got {self.pools!r}")
        require(self.clusters >= 1, f"'{path}.clusters' must be at least 1")
        require(not (self.pools == "cluster" and self.search_splits),
                f"'{path}': pools: cluster uses the scenario's tiers (search_splits must be false)")
        require(self.mode in MODES, f"'{path}.mode' must be one of {', '.join(MODES)}, got {self.mode!r}")
        require(self.tolerance_points >= 0, f"'{path}.tolerance_points' must be non-negative")
        require(self.mu >= 0, f"'{path}.mu' must be non-negative")
        require(self.grid >= 2, f"'{path}.grid' must be at least 2")

    # -- calibration ------------------------------------------------------------------------
    def _candidates(self, ctx: PolicyContext) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
        """(cuts, tier ids) of the layouts to try; cuts are the last layers of the exit tiers."""
        L = ctx.num_layers
        used = [t for t in ctx.tiers if t.last >= t.first]
        if not self.search_splits:
            return [(tuple(t.last for t in used[:-1]), tuple(t.index for t in used))]
        ids = tuple(t.index for t in ctx.tiers)
        n_exit = len(ids) - 1
        return [(cuts, ids) for cuts in itertools.combinations(range(1, L), n_exit)]

    def calibrate(self, ctx: PolicyContext, calib: Split) -> Choice:
        L = ctx.num_layers
        conf, correct = calib.confidence, calib.correct
        full_acc = float(correct[:, L - 1].mean())
        best: tuple[float, float, Choice] | None = None
        for cuts, ids in self._candidates(ctx):
            exit_layers = list(cuts)
            owner = split_plan(L, list(cuts), list(ids)).tiers
            costs = [ctx.cost.plan_cost(owner, k) for k in [*exit_layers, L]]
            grids = [threshold_grid(conf[:, k - 1], self.grid) for k in exit_layers]
            if not grids:
                grids = [np.array([np.inf])]
            acc, cost = evaluate_grid(conf, correct, exit_layers, grids, costs)
            full_cost = costs[-1]
            if self.mode == "tolerance":
                ok = acc >= full_acc - self.tolerance_points / 100.0 - 1e-12
                key = np.where(ok, -cost, -np.inf)
            else:
                key = acc - self.mu * cost
            # best key, ties -> higher accuracy
            top = np.flatnonzero(key.ravel() >= key.max() - 1e-12)
            idx = top[np.argmax(acc.ravel()[top])]
            pos = np.unravel_index(idx, acc.shape)
            score = float(key.ravel()[idx])
            thr = tuple(float(grids[j][pos[j]]) for j in range(len(exit_layers)))
            ch = Choice(tuple(cuts), tuple(exit_layers), tuple(ids), thr, float(acc[pos]), float(cost[pos]),
                        full_acc, float(full_cost))
            if best is None or score > best[0] + 1e-12 or (abs(score - best[0]) <= 1e-12
                                                            and ch.calib_accuracy > best[1]):
                best = (score, ch.calib_accuracy, ch)
        assert best is not None
        return best[2]

    # -- pools by clustering -----------------------------------------------------------------
    def _pool_plans(self, ctx: PolicyContext) -> list[tuple[int, int, Plan]]:
        """(tier, exit layer, plan) of each pool: mobile exit, edge exit, ..., the rest on the last tier."""
        L = ctx.num_layers
        used = [t for t in ctx.tiers if t.last >= t.first]
        first = used[0].last
        base = scenario_plan(ctx.tiers, L)
        out = [(t.index, t.last, base) for t in used[:-1]]
        straight = split_plan(L, [first], [used[0].index, used[-1].index], {first, L})
        return out + [(used[-1].index, L, straight)]

    def calibrate_pools(self, ctx: PolicyContext, calib: Split) -> dict:
        if calib.proj is None:
            raise ConfigError("dimee: pools: cluster needs a profile that stores representations "
                              "(<split>_proj, e.g. profiles/*-mpnet12.npz)")
        L = ctx.num_layers
        pools = self._pool_plans(ctx)
        first = pools[0][1]
        x = calib.proj[:, first - 1, :].astype(np.float64)
        centroids, labels = kmeans(x, self.clusters, ctx.rng)
        correct = calib.correct
        costs = [ctx.cost.plan_cost(plan.tiers, e) for _, e, plan in pools]
        tier_of = []
        for c in range(len(centroids)):
            m = labels == c
            acc = np.array([correct[m, e - 1].mean() if m.any() else 1.0 for _, e, _ in pools])
            if self.mode == "tolerance":
                ok = np.flatnonzero(acc >= acc[-1] - self.tolerance_points / 100.0 - 1e-12)
                j = int(ok[np.argmin(np.asarray(costs)[ok])])
            else:
                j = int(np.argmax(acc - self.mu * np.asarray(costs)))
            tier_of.append(j)
        pick = np.asarray(tier_of)[labels]
        exit_idx = np.array([e - 1 for _, e, _ in pools])[pick]
        self._centroids, self._pool_of_cluster, self._pools = centroids, tier_of, pools
        self._pool: dict[int, int] = {}
        names = [t.name for t in ctx.tiers]
        return {"pools": "cluster", "clusters": len(centroids), "cluster_tier": [names[pools[j][0]] for j in tier_of],
                "cluster_size": np.bincount(labels, minlength=len(centroids)).tolist(),
                "calib_accuracy": float(correct[np.arange(len(pick)), exit_idx].mean()),
                "calib_cost": float(np.asarray(costs)[pick].mean()),
                "calib_full_accuracy": float(correct[:, L - 1].mean()), "calib_full_cost": float(costs[-1])}

    def _nearest_pool(self, req: Request, layer: int, view: SystemView) -> int:
        x = view.exit_representation(req, layer)
        c = int(np.argmin(((self._centroids - x[None]) ** 2).sum(-1)))
        return self._pool_of_cluster[c]

    def start(self, ctx: PolicyContext) -> None:
        super().start(ctx)
        L = ctx.num_layers
        if len(ctx.calib) == 0:
            raise ConfigError("dimee needs a non-empty calibration split in the profile")
        if self.pools == "cluster":
            self._cluster_choice = self.calibrate_pools(ctx, ctx.calib)
            self._plan = self._pools[0][2]
            return
        ch = self.choice = self.calibrate(ctx, ctx.calib)
        if self.search_splits:
            self._plan = split_plan(L, list(ch.cuts), list(ch.tier_ids), {*ch.exit_layers, L})
        else:
            self._plan = scenario_plan(ctx.tiers, L)
        self._alpha = dict(zip(ch.exit_layers, ch.thresholds, strict=True))

    def plan(self, req: Request, view: SystemView) -> Plan:
        return self._plan

    def decisions(self) -> dict:
        if self.pools == "cluster":
            return self._cluster_choice
        ch = self.choice
        names = [t.name for t in self.ctx.tiers]
        return {"cuts": list(ch.cuts), "exit_layers": list(ch.exit_layers),
                "exit_tiers": [names[t] for t in ch.tier_ids[:-1]], "final_tier": names[ch.tier_ids[-1]],
                "thresholds": list(ch.thresholds), "calib_accuracy": ch.calib_accuracy,
                "calib_cost": ch.calib_cost, "calib_full_accuracy": ch.full_accuracy,
                "calib_full_cost": ch.full_cost}

    def decide(self, req: Request, layer: int, view: SystemView) -> bool:
        if self.pools == "cluster":
            if layer == self._pools[0][1]:
                self._pool[req.id] = self._nearest_pool(req, layer, view)
            j = self._pool.get(req.id)
            return j is not None and j < len(self._pools) - 1 and self._pools[j][1] == layer
        alpha = self._alpha.get(layer)
        return alpha is not None and bool(view.exit_confidence(req, layer) >= alpha)

    def decide_batch(self, layer: int, exits) -> np.ndarray | None:
        if self.pools == "cluster":  # pools are chosen per request and may redirect: no batch form
            return None
        alpha = self._alpha.get(layer)
        return np.zeros(len(exits.samples), dtype=bool) if alpha is None else exits.confidence(layer) >= alpha

    def redirect(self, req: Request, layer: int, view: SystemView) -> Plan | None:
        if self.pools == "cluster" and layer == self._pools[0][1] and self._pool.get(req.id) == len(self._pools) - 1:
            return self._pools[-1][2]  # hard: straight to the last tier for the rest of the model
        return None

    def observe(self, req: Request, outcome: Outcome, view: SystemView) -> None:
        if self.pools == "cluster":
            self._pool.pop(req.id, None)
