"""Partitioning policies: Neurosurgeon, Edgent and ANS (muLinUCB) choose where to cut the model.

They cut the model between the first tier (the mobile) and one ``server`` tier (default the last),
predicting each option's latency from what the mobile can know: the profile's per-layer times for this
request on each device class (scaled by the device's current frequency), the payload size at each cut,
and the throughput measured on past transfers over each link of the route to the server
(``view.link_bandwidth_estimate_bps``, an EWMA; the route is a direct link when the scenario has one). Before
the first transfer there is no measurement and the documented prior ``prior_mbps`` is used. A policy
that stops offloading stops measuring, so every ``probe_interval_s`` without a transfer from a mobile
its next request is offloaded at the best offloading cut (a probe that refreshes the estimate).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..schema import require
from .base import Outcome, Plan, Policy, PolicyContext, Request, SystemView, split_plan
from .registry import register

OBJECTIVES = ("latency", "energy")


@dataclass
class _Partitioner(Policy):
    server: str | int = -1
    prior_mbps: float = 10.0
    probe_interval_s: float = 5.0

    def check(self, path: str) -> None:
        require(self.prior_mbps > 0, f"'{path}.prior_mbps' must be positive")
        require(self.probe_interval_s > 0, f"'{path}.probe_interval_s' must be positive")

    def start(self, ctx: PolicyContext) -> None:
        super().start(ctx)
        self._server = self.tier_index(self.server, "server")
        self._last_tx: dict[int, float] = {}

    # -- predictions (seconds) ---------------------------------------------------------------
    def bandwidth_bps(self, view: SystemView, mobile: int, link: int) -> float:
        est = view.link_bandwidth_estimate_bps(mobile, link)
        return self.prior_mbps * 1e6 if est is None or est <= 0 else float(est)

    def stretch_s(self, view: SystemView, req: Request, tier: int, first: int, last: int,
                  head: bool) -> float:
        """Predicted time of layers first..last on ``tier`` (embedding if first == 1, one head if asked)."""
        if last < first:
            return 0.0
        ls = view.layer_seconds(req, tier)
        t = float(np.sum(ls[first - 1:last]))
        if first == 1:
            t += float(view.embed_seconds(req, tier))
        if head:
            t += float(view.head_seconds(req, tier))
        return t / max(float(view.frequency(req.mobile, tier)), 1e-6)

    def transfer_s(self, view: SystemView, req: Request, cut: int) -> tuple[float, float]:
        """Predicted time to move the state after layer ``cut`` to the server; and the uplink part."""
        nbytes = view.transfer_bytes(req, cut)
        total = first = 0.0
        for i, link in enumerate(view.route_links(req.mobile, 0, self._server)):
            tx = nbytes * 8.0 / self.bandwidth_bps(view, req.mobile, link)
            total += tx + view.link_rtt_s(link)  # up one way + the reply's way back
            if i == 0:
                first = tx
        return total, first

    def latency_s(self, view: SystemView, req: Request, cut: int, exit_layer: int) -> float:
        """Predicted latency with layers 1..cut on the mobile, cut+1..exit_layer on the server."""
        if cut >= exit_layer:
            return self.stretch_s(view, req, 0, 1, exit_layer, True)
        return (self.stretch_s(view, req, 0, 1, cut, False) + self.transfer_s(view, req, cut)[0]
                + self.stretch_s(view, req, self._server, cut + 1, exit_layer, True))

    def needs_probe(self, req: Request, view: SystemView) -> bool:
        last = self._last_tx.get(req.mobile)
        return last is not None and view.now - last >= self.probe_interval_s

    def make_plan(self, req: Request, view: SystemView, cut: int, exit_layer: int, probe: bool = False) -> Plan:
        L = self.ctx.num_layers
        if cut < exit_layer or req.mobile not in self._last_tx:
            self._last_tx[req.mobile] = view.now
        plan = split_plan(L, [min(cut, exit_layer)], [0, self._server], {exit_layer}, exit_layer)
        return dataclasses.replace(plan, explore=True) if probe else plan

    def decisions(self) -> dict:
        return {"server_tier": self.ctx.tiers[self._server].name}


@register("neurosurgeon")
@dataclass
class Neurosurgeon(_Partitioner):
    """Cut where predicted mobile time + transfer at the estimated bandwidth + server time is least.

    Neurosurgeon (Kang et al., ASPLOS 2017, "Neurosurgeon: Collaborative Intelligence Between the Cloud
    and Mobile Edge"): per request, evaluate every partition point 0..L (0 = send the input, L = all on
    the mobile) with per-layer latency predictions and the current bandwidth, pick the minimum of the
    ``objective``: ``latency`` (mobile + transfer + server) or ``energy`` (mobile compute power x time +
    radio energy of the upload). Follows the paper's decision; our reading: the per-layer predictions
    are the profile's measured timings rather than the paper's regression models, server load is not
    modelled (unloaded server time), and the bandwidth is the EWMA of past transfers (with probes).
    """

    objective: str = "latency"

    def check(self, path: str) -> None:
        super().check(path)
        require(self.objective in OBJECTIVES,
                f"'{path}.objective' must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")

    def scores(self, req: Request, view: SystemView) -> np.ndarray:
        """Predicted objective of every cut 0..L."""
        L = self.ctx.num_layers
        out = np.empty(L + 1)
        for k in range(L + 1):
            if self.objective == "latency":
                out[k] = self.latency_s(view, req, k, L)
                continue
            mob = self.stretch_s(view, req, 0, 1, k, k == L)
            e = mob * float(view.request_power_w(req.mobile, 0))
            if k < L:
                _, up = self.transfer_s(view, req, k)
                e += float(view.radio_tx_energy_j(view.transfer_bytes(req, k), up))
            out[k] = e
        return out

    def plan(self, req: Request, view: SystemView) -> Plan:
        L = self.ctx.num_layers
        s = self.scores(req, view)
        cut = int(np.argmin(s))
        probe = cut == L and self.needs_probe(req, view)
        if probe:
            cut = int(np.argmin(s[:L]))
        return self.make_plan(req, view, cut, L, probe)


@register("edgent")
@dataclass
class Edgent(_Partitioner):
    """The most accurate (exit, cut) pair whose predicted latency meets the deadline (least latency on ties).

    Edgent (Li, Zhou & Chen, MECOMM 2018 / IEEE TWC 2019, "Edge Intelligence: On-Demand Deep Learning
    Model Co-Inference with Device-Edge Synergy"): right-sizing (early exit = truncating the model at
    exit e, no later layers) plus partitioning (layers 1..cut on the device, cut+1..e on the server).
    The accuracy of exit e is its accuracy on the calibration split (the paper measures it offline);
    latency is predicted per request at the estimated bandwidth. Follows the paper's rule; our reading:
    when no pair meets the deadline the least-latency pair is used (the paper reports failure), and
    the bandwidth state is the EWMA estimate (the paper's static-environment configuration map is
    replaced by per-request evaluation).
    """

    deadline_ms: float = 100.0

    def check(self, path: str) -> None:
        super().check(path)
        require(self.deadline_ms > 0, f"'{path}.deadline_ms' must be positive")

    def start(self, ctx: PolicyContext) -> None:
        super().start(ctx)
        self.exit_accuracy = ctx.calib.exit_accuracy()

    def decisions(self) -> dict:
        return super().decisions() | {"calib_exit_accuracy": np.round(self.exit_accuracy, 6).tolist()}

    def choose(self, req: Request, view: SystemView, offload_only: bool = False) -> tuple[int, int, float]:
        """(exit layer, cut, predicted latency) of the chosen pair (``offload_only``: cut < exit)."""
        L = self.ctx.num_layers
        deadline = self.deadline_ms / 1e3
        best = None  # (key, exit, cut, latency)
        fallback = None
        for e in range(1, L + 1):
            for k in range(e if offload_only else e + 1):
                lat = self.latency_s(view, req, k, e)
                if fallback is None or lat < fallback[2]:
                    fallback = (e, k, lat)
                if lat <= deadline:
                    key = (self.exit_accuracy[e - 1], -e, -lat)
                    if best is None or key > best[0]:
                        best = (key, e, k, lat)
        if best is None:
            return fallback
        return best[1], best[2], best[3]

    def plan(self, req: Request, view: SystemView) -> Plan:
        e, k, _ = self.choose(req, view)
        probe = k >= e and self.needs_probe(req, view)
        if probe:
            e, k, _ = self.choose(req, view, offload_only=True)
        return self.make_plan(req, view, k, e, probe)


@register("ans")
@dataclass
class ANS(_Partitioner):
    """LinUCB over cuts: known mobile time + a learned linear model of the edge-side delay, optimism first.

    ANS, "Autodidactic Neurosurgeon" (Zhang, Chen & Xu, WWW 2021, "Autodidactic Neurosurgeon:
    Collaborative Deep Inference for Mobile Edge Intelligence via Online Learning"), muLinUCB: the mobile
    knows its own compute time per cut; the edge-side delay (upload + server compute + reply) of cut k
    is learned online as theta . x_k with x_k = [Mbit sent at k, share of the model left to the server,
    1]; the cut minimising mobile time + theta . x_k - beta * ||x_k||_{A^-1} (ms) is played and the
    observed edge delay (latency - predicted mobile time) updates the ridge regression. The all-on-mobile
    cut has no edge delay and teaches nothing, so, as in the paper, forced sampling keeps learning: while
    fewer than t ** ``force_exponent`` of the first t requests were offloaded, an on-device choice is
    replaced by the best offloading cut. Follows the paper's features, optimism and forced sampling;
    our reading: the key-frame weighting of muLinUCB is not modelled (every request weighs 1), the
    forced-sampling schedule is t ** 0.5, and no bandwidth estimate is used (the delay is learned).
    """

    beta: float = 5.0
    ridge: float = 1.0
    force_exponent: float = 0.5

    def start(self, ctx: PolicyContext) -> None:
        super().start(ctx)
        self.A = np.eye(3) * self.ridge
        self.b = np.zeros(3)
        self._pending: dict[int, tuple[np.ndarray, float]] = {}
        self._t = 0
        self._offloaded = 0

    def features(self, req: Request, view: SystemView, k: int) -> np.ndarray:
        L = self.ctx.num_layers
        return np.array([view.transfer_bytes(req, k) * 8.0 / 1e6, (L - k) / L, 1.0])

    def plan(self, req: Request, view: SystemView) -> Plan:
        L = self.ctx.num_layers
        Ainv = np.linalg.inv(self.A)
        theta = Ainv @ self.b
        self._t += 1
        local = self.stretch_s(view, req, 0, 1, L, True) * 1e3
        best_k, best_v, best_x, best_m = L, np.inf, None, 0.0
        for k in range(L):
            x = self.features(req, view, k)
            mob = self.stretch_s(view, req, 0, 1, k, False) * 1e3
            v = mob + float(theta @ x) - self.beta * float(np.sqrt(x @ Ainv @ x))
            if v < best_v:
                best_k, best_v, best_x, best_m = k, v, x, mob
        forced = self._offloaded < self._t ** self.force_exponent
        if local <= best_v and not forced:
            return split_plan(L, [L], [0, self._server], {L})
        self._offloaded += 1
        self._pending[req.id] = (best_x, best_m)
        plan = split_plan(L, [best_k], [0, self._server], {L})
        return dataclasses.replace(plan, explore=True) if local <= best_v else plan

    def learned(self) -> dict:
        theta = np.linalg.solve(self.A, self.b)
        return {"theta_ms": theta.round(6).tolist(), "offloaded": self._offloaded, "requests": self._t}

    def observe(self, req: Request, outcome: Outcome, view: SystemView) -> None:
        p = self._pending.pop(req.id, None)
        if p is None or outcome.dropped:
            return
        x, mob_ms = p
        y = outcome.latency_s * 1e3 - mob_ms
        self.A += np.outer(x, x)
        self.b += x * y
