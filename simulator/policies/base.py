"""The policy interface: where each layer runs, and when a request stops computing.

A policy is a small dataclass registered by name. The engine asks it, per request:

1. ``plan(req, view)`` at arrival: a :class:`Plan` giving the tier of every layer (non-decreasing:
   hidden states only move up, mobile -> edge -> cloud), the layers after which an exit head is
   evaluated, and the last layer computed.
2. ``decide(req, layer, view)`` after each exit layer of the plan: True stops the request there.
   Decisions inside one tier's stretch of layers are taken when the device starts that stretch
   (the state a real device would see then); the compute time of every layer and every evaluated exit
   head is charged.
3. ``observe(req, outcome, view)`` when the request completes (online-learning policies update here).

``start(ctx)`` is called once per replication, before any request: online policies start cold.
Policies see the model only through what a real system observes: the exit logits computed so far
(``ctx.split`` arrays indexed by ``req.sample`` up to the current layer), past transfer throughput,
queue lengths and device state via the :class:`SystemView`. Only policies marked ``hindsight = True``
(the oracle) may read labels.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np

from ..errors import ConfigError, unknown_key
from ..profile import Profile, Split
from ..schema import build

REGISTRY: dict[str, type[Policy]] = {}


def register(name: str):
    """Class decorator: make a policy available under ``name`` in scenarios."""

    def deco(cls: type[Policy]) -> type[Policy]:
        if name in REGISTRY:
            raise ValueError(f"policy name {name!r} registered twice")
        REGISTRY[name] = cls
        cls.registered_name = name
        return cls

    return deco


@dataclass(frozen=True)
class TierInfo:
    """A tier as the scenario defines it (layers are 1-based, inclusive; empty when first > last)."""

    index: int
    name: str
    first: int
    last: int
    device: str

    @property
    def layers(self) -> range:
        return range(self.first, self.last + 1)


@dataclass(frozen=True)
class Plan:
    """Per-request placement: ``tiers[k-1]`` runs layer k; exits evaluated after ``exits``."""

    tiers: tuple[int, ...]
    exits: frozenset[int]
    last_layer: int


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
    """What the system observed when a request completed (no labels)."""

    exit_layer: int
    exit_tier: int
    latency_s: float
    transfer_s: float
    queue_s: float


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


@dataclass
class PolicyContext:
    """Everything a policy may use to prepare for a replication."""

    profile: Profile
    split: Split  # the split requests are drawn from
    tiers: list[TierInfo]
    num_layers: int
    lambda_per_layer: float
    offload_costs: list[float]  # cost of crossing link i (between tier i and i+1)
    rng: np.random.Generator

    @property
    def calib(self) -> Split:
        return self.profile.calib


@dataclass
class Policy:
    """Base class. Subclasses are dataclasses whose fields are the policy's parameters."""

    registered_name: ClassVar[str] = ""
    hindsight: ClassVar[bool] = False

    def start(self, ctx: PolicyContext) -> None:
        self.ctx = ctx

    def plan(self, req: Request, view: SystemView) -> Plan:
        return self.default_plan()

    def decide(self, req: Request, layer: int, view: SystemView) -> bool:
        return False

    def observe(self, req: Request, outcome: Outcome, view: SystemView) -> None:
        return None

    # -- helpers for subclasses ------------------------------------------------------------
    def default_plan(self) -> Plan:
        """The scenario's tier ranges, exits at the end of each non-empty tier."""
        return scenario_plan(self.ctx.tiers, self.ctx.num_layers)

    def tier_index(self, name_or_index: str | int) -> int:
        """Resolve a tier given by name or index (negative counts from the cloud end)."""
        tiers = self.ctx.tiers
        if isinstance(name_or_index, int):
            return name_or_index % len(tiers)
        for t in tiers:
            if t.name == name_or_index:
                return t.index
        raise unknown_key(str(name_or_index), f"policy {self.registered_name}", [t.name for t in tiers],
                          what="tier")


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


def abstract_cost(ctx: PolicyContext, exit_layer, exit_tier) -> np.ndarray:
    """The engine's per-request cost: lambda * exit layer + offload costs of the links crossed."""
    cum = np.concatenate([[0.0], np.cumsum(ctx.offload_costs)])
    return ctx.lambda_per_layer * np.asarray(exit_layer, dtype=float) + cum[np.asarray(exit_tier)]


def policy_label(spec: str | dict) -> str:
    """The name a policy spec appears under in results (``label`` if given)."""
    if isinstance(spec, str):
        return spec
    return str(spec.get("label") or spec.get("name"))


def make_policy(spec: str | dict[str, Any], path: str = "policies") -> Policy:
    """Build a policy from ``name`` or ``{name: ..., label: ..., <params>}``."""
    from . import load_all

    load_all()
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, dict) or "name" not in spec:
        raise ConfigError(f"'{path}' must be a policy name or a mapping with a 'name' key, got {spec!r}")
    name = spec["name"]
    if name not in REGISTRY:
        raise unknown_key(str(name), path, REGISTRY, what="policy")
    params = {k: v for k, v in spec.items() if k not in ("name", "label")}
    return build(REGISTRY[name], params, f"{path}({name})")


def describe(cls: type[Policy]) -> str:
    """First line of a policy's docstring (for ``run_sim.py list``)."""
    doc = (cls.__doc__ or "").strip().splitlines()
    return doc[0] if doc else ""


def parameters(cls: type[Policy]) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.init]
