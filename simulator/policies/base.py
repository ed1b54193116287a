"""The policy interface: where each layer runs, and when a request stops computing.

A policy is a small dataclass registered by name. The engine asks it, per request:

1. ``plan(req, view)`` at arrival: a :class:`Plan` giving the tier of every layer (non-decreasing:
   hidden states only move up, mobile -> edge -> cloud), the layers after which an exit head is
   evaluated, and the last layer computed.
2. ``decide(req, layer, view)`` after each exit layer of the plan: True stops the request there;
   otherwise ``redirect(req, layer, view)`` may give a new plan for the layers after it (e.g. a hard
   sample sent straight to the cloud once the mobile exit has been seen).
   Decisions inside one tier's stretch of layers are taken when the device starts that stretch
   (the state a real device would see then); the compute time of every layer and every evaluated exit
   head is charged.
3. ``observe(req, outcome, view)`` when the request ends, completed or dropped (``outcome.dropped``),
   so online learners can release what they hold for it.

``start(ctx)`` is called once per replication, before any request: online policies start cold.
Policies see the model only through what a real system observes, and the engine enforces it: the exit
outputs computed so far for a request (``view.exit_confidence(req, k)`` for k up to the layer being
decided, or the exit layer in ``observe``; reading further raises :class:`PolicyContractError`), past
transfer throughput, queue lengths and device state via the :class:`SystemView`. Only policies marked
``hindsight = True`` (the oracle) get the evaluation split itself (``ctx.split``, labels included);
every policy may tune on the calibration split (``ctx.calib``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar, Protocol

import numpy as np

from ..errors import ConfigError, unknown_key
from ..profile import Profile, Split
from ..records import CostModel
from ..topology import TierInfo

__all__ = ["Outcome", "Plan", "Policy", "PolicyContext", "PolicyContractError", "Request", "SystemView",
           "TierInfo", "all_on", "every_layer_plan", "scenario_plan", "split_plan"]


class PolicyContractError(RuntimeError):
    """A policy read something a real system could not know at that point (a bug in the policy)."""


@dataclass(frozen=True)
class Plan:
    """Per-request placement: ``tiers[k-1]`` runs layer k; exits evaluated after ``exits``.

    ``explore`` marks a plan chosen to learn rather than as the policy's best guess (a bandit's
    exploration step, a partitioner's bandwidth probe, a forced sample); it is recorded per request.
    """

    tiers: tuple[int, ...]
    exits: frozenset[int]
    last_layer: int
    explore: bool = False


@dataclass(frozen=True)
class Request:
    """What a policy knows about a request when it arrives."""

    id: int
    mobile: int
    sample: int  # row in ctx.split
    tokens: int
    arrival_s: float


@dataclass(frozen=True)
class Outcome:
    """What the system observed when a request ended (no labels); ``exit_layer`` is 0 when dropped.

    ``dropped``: it ended without a result (a full queue, or a failure: then ``failed`` too)."""

    exit_layer: int
    exit_tier: int
    latency_s: float
    transfer_s: float
    queue_s: float
    dropped: bool = False
    failed: bool = False


class SystemView(Protocol):
    """Live, observable state of the simulated system (implemented by the engine)."""

    now: float

    def bandwidth_estimate_bps(self, mobile: int, hop: int) -> float | None:
        """EWMA of throughput measured on past uploads over link ``hop`` on this mobile's path."""

    def rtt_s(self, hop: int) -> float:
        """Configured round-trip time of link ``hop``."""

    def queue_length(self, mobile: int, tier: int) -> int:
        """Requests queued or in service at the device of ``tier`` on this mobile's path."""

    def frequency(self, mobile: int, tier: int) -> float:
        """Current frequency factor of that device (1.0 = not throttled)."""

    def layer_seconds(self, req: Request, tier: int) -> np.ndarray:
        """Predicted unloaded compute time of each layer [L] of this request on ``tier``'s device class."""

    def head_seconds(self, req: Request, tier: int) -> float:
        """Predicted time of one exit head on ``tier``."""

    def transfer_bytes(self, req: Request, after_layer: int) -> int:
        """Bytes sent when offloading after ``after_layer`` (0 = raw input)."""

    def embed_seconds(self, req: Request, tier: int) -> float:
        """Predicted time of the embedding layer of this request on ``tier``."""

    def request_power_w(self, mobile: int, tier: int) -> float:
        """Power attributed to one request computing on that device now."""

    def radio_tx_energy_j(self, nbytes: float, seconds: float) -> float:
        """Mobile radio energy of sending ``nbytes`` over ``seconds`` (0 without a radio model)."""

    def route_links(self, mobile: int, a: int, b: int) -> tuple[int, ...]:
        """Links crossed moving up from tier ``a`` to tier ``b`` (a direct link, or the chain)."""

    def link_bandwidth_estimate_bps(self, mobile: int, link: int) -> float | None:
        """EWMA of throughput measured on past uploads over ``link`` (this mobile's channel of it)."""

    def link_rtt_s(self, link: int) -> float:
        """Configured round-trip time of ``link``."""

    def exit_confidence(self, req: Request, layer: int) -> float:
        """Max-softmax confidence of the exit after ``layer`` (computed layers only)."""

    def exit_entropy(self, req: Request, layer: int) -> float:
        """Prediction entropy (nats) of the exit after ``layer`` (computed layers only)."""

    def exit_prediction(self, req: Request, layer: int) -> int:
        """Predicted class of the exit after ``layer`` (computed layers only)."""

    def exit_representation(self, req: Request, layer: int) -> np.ndarray:
        """Projection of the pooled representation at the exit after ``layer`` (computed layers only)."""

    def exit_confidences(self, req: Request, upto: int) -> np.ndarray:
        """Confidences of the exits after layers 1..``upto`` (computed layers only)."""

    def exit_predictions(self, req: Request, upto: int) -> np.ndarray:
        """Predicted classes of the exits after layers 1..``upto`` (computed layers only)."""


@dataclass
class PolicyContext:
    """Everything a policy may use to prepare for a replication."""

    profile: Profile
    tiers: list[TierInfo]
    num_layers: int
    cost: CostModel
    rng: np.random.Generator
    hindsight_split: Split | None = None  # the evaluation split, only for hindsight policies

    @property
    def calib(self) -> Split:
        return self.profile.calib

    @property
    def split(self) -> Split:
        """The evaluation split with its labels: hindsight policies only (others use the view)."""
        if self.hindsight_split is None:
            raise PolicyContractError("only hindsight policies may read the evaluation split; read exit "
                                      "outputs through the view (view.exit_confidence(req, layer))")
        return self.hindsight_split



def start_policy(policy: Policy, profile: Profile, split: Split, tiers: list[TierInfo], cost: CostModel,
                 rng: np.random.Generator) -> None:
    """Start ``policy`` for one replication with what it may see: the profile with its calibration split
    only (so labels of the evaluation split cannot leak), and the evaluation ``split`` itself only when
    the policy is ``hindsight``. Every engine starts policies through this."""
    visible = profile if policy.hindsight else replace(profile, splits={"calib": profile.calib})
    policy.start(PolicyContext(profile=visible, tiers=tiers, num_layers=profile.num_layers, cost=cost, rng=rng,
                               hindsight_split=split if policy.hindsight else None))


@dataclass
class Policy:
    """Base class. Subclasses are dataclasses whose fields are the policy's parameters."""

    registered_name: ClassVar[str] = ""
    hindsight: ClassVar[bool] = False
    # True when plan/decide/redirect read only the request's own exit outputs (never the system's state)
    # and observe learns nothing: every request of a sample then takes the same path (simulator/fast).
    feed_forward: ClassVar[bool] = False

    def start(self, ctx: PolicyContext) -> None:
        self.ctx = ctx

    def plan(self, req: Request, view: SystemView) -> Plan:
        return self.default_plan()

    def decide(self, req: Request, layer: int, view: SystemView) -> bool:
        return False

    def observe(self, req: Request, outcome: Outcome, view: SystemView) -> None:
        return None

    def decide_batch(self, layer: int, exits) -> np.ndarray | None:
        """``decide`` for many requests at once (``exits``: a :class:`simulator.view.ExitBatch` up to
        ``layer``), as a bool array; None when the policy has no batch form. A policy that gives one
        promises that its plan is the same for every request and that it never redirects, so the fast
        engine can walk all samples together (it must agree with ``decide`` request by request)."""
        if type(self).decide is Policy.decide and type(self).redirect is Policy.redirect:
            return np.zeros(len(exits.samples), dtype=bool)
        return None

    def redirect(self, req: Request, layer: int, view: SystemView) -> Plan | None:
        """After an evaluated exit at ``layer`` that did not stop the request: a new plan whose layers
        1..``layer`` are unchanged, for the rest of the request; None keeps the plan."""
        return None

    # -- what the policy decided (recorded in a run's policies.yaml) -----------------------------
    def decisions(self) -> dict[str, Any]:
        """What ``start()`` chose for this replication beyond the parameters (tuned thresholds, cuts,
        arms, pools), as plain data."""
        return {}

    def learned(self) -> dict[str, Any]:
        """What an online policy learned by the end of the replication (plays per arm, estimates)."""
        return {}

    # -- helpers for subclasses ------------------------------------------------------------
    def default_plan(self) -> Plan:
        """The scenario's tier ranges, exits at the end of each non-empty tier."""
        return scenario_plan(self.ctx.tiers, self.ctx.num_layers)

    def tier_index(self, name_or_index: str | int, key: str = "tier") -> int:
        """Resolve a tier given by name or index (0 the mobile; negative counts from the cloud end, -1 the
        last); ``key`` names the parameter in errors. An index outside the tiers is a ConfigError."""
        tiers = self.ctx.tiers
        if isinstance(name_or_index, int):
            n = len(tiers)
            if not -n <= name_or_index < n:
                raise ConfigError(f"policy {self.registered_name}: '{key}' {name_or_index} is not a tier: give a "
                                  f"name ({', '.join(t.name for t in tiers)}) or an index in {-n}..{n - 1}")
            return name_or_index % n
        for t in tiers:
            if t.name == name_or_index:
                return t.index
        raise unknown_key(str(name_or_index), f"policy {self.registered_name}", [t.name for t in tiers],
                          what="tier")


def checked_redirect(old: Plan, new: Plan, layer: int) -> Plan:
    """``new`` if it keeps layers 1..``layer`` where ``old`` ran them and has layers left to run."""
    if new.tiers[:layer] != old.tiers[:layer] or new.last_layer <= layer:
        raise PolicyContractError(f"redirect after layer {layer} must keep layers 1..{layer} where they ran "
                                  f"and leave layers to run")
    return new


def scenario_plan(tiers: list[TierInfo], num_layers: int) -> Plan:
    """Layers on the tiers the scenario assigns; an exit is evaluated at the end of every tier."""
    owner = [0] * num_layers
    exits = set()
    for t in tiers:
        for k in t.layers:
            owner[k - 1] = t.index
        if t.last >= t.first:
            exits.add(t.last)
    return Plan(tiers=tuple(owner), exits=frozenset(exits), last_layer=num_layers)


def all_on(tier: int, num_layers: int) -> Plan:
    """Every layer on one tier, no early exit."""
    return Plan(tiers=(tier,) * num_layers, exits=frozenset({num_layers}), last_layer=num_layers)


def every_layer_plan(tiers: list[TierInfo], num_layers: int) -> Plan:
    """The scenario's tier ranges with an exit head evaluated after every layer."""
    base = scenario_plan(tiers, num_layers)
    return Plan(tiers=base.tiers, exits=frozenset(range(1, num_layers + 1)), last_layer=num_layers)


def split_plan(num_layers: int, cuts: list[int], tier_ids: list[int] | None = None,
               exits: set[int] | frozenset[int] | None = None, last_layer: int | None = None) -> Plan:
    """Layers 1..cuts[0] on tier_ids[0], cuts[0]+1..cuts[1] on tier_ids[1], ..., the rest on the last.

    ``tier_ids`` defaults to 0, 1, 2, ...; a cut equal to the previous one leaves that tier empty.
    """
    tier_ids = list(range(len(cuts) + 1)) if tier_ids is None else list(tier_ids)
    if len(tier_ids) != len(cuts) + 1:
        raise ValueError("split_plan needs one more tier than cuts")
    owner, prev = [], 0
    for cut, t in zip([*cuts, num_layers], tier_ids, strict=True):
        cut = min(max(cut, prev), num_layers)
        owner += [t] * (cut - prev)
        prev = cut
    last = num_layers if last_layer is None else last_layer
    return Plan(tiers=tuple(owner), exits=frozenset(exits if exits is not None else {last}), last_layer=last)


