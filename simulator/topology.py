"""The network a scenario describes, as plain structure any engine can walk.

Tiers are in order (mobile, edge, cloud, ...); tier t has ``count`` devices. Device j of a tier is
attached to device ``j % count`` of the next tier, so N mobiles share edges and edges share the cloud:
``attachment[m][t]`` is the device of tier t on mobile m's path.

Links are edges between tiers (``from``/``to``; by default the consecutive tiers in order). A link has
one channel per device of its lower tier (that device's own uplink/backhaul, one realisation of the
link's bandwidth model each, or one shared realisation with ``same_realisation``); a ``shared`` link is
one capacity all of them divide (:mod:`simulator.sharing`). A *peer link* joins a tier to itself
(``from`` = ``to``): it is on no route, only a tier's horizontal offload uses it
(:mod:`simulator.offload`). A request moving up
from tier a to tier b takes the direct link a -> b when the scenario has one, otherwise the chain of
consecutive links; replies come back down the same route.

Nothing here runs: :class:`Network` holds the device classes, compute tables, realised bandwidth paths
and routes of one replication; an engine (``engine.py`` with ``live.py`` for SimPy) animates them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .background import BackgroundSpec
from .bandwidth import BandwidthPath
from .batching import BatchingConfig
from .device import DeviceSpec, RadioSpec
from .failures import FailureSpec
from .mobility import Handovers, constant_one, with_blackouts
from .network import PayloadConfig
from .offload import OffloadConfig
from .profile import Profile, Timing
from .records import CostModel
from .streams import BACKGROUND, DOWNLINK, FAILURES, LINK_FAILURES, MOBILITY, OFFLOAD, QUALITY, UPLINK, stream
from .thermal import ThermalSpec
from .units import UnitPlan, UnitSpec, effective_table, policy_placements, unit_plan


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
class DeviceNode:
    """One device: its class, thermal model (with the tier's overrides), queue capacity, and when set its
    failures and background load with their random streams."""

    name: str
    tier: int
    index: int
    spec: DeviceSpec
    thermal: ThermalSpec
    queue_capacity: int | None
    batching: BatchingConfig | None = None
    failures: FailureSpec | None = None
    background: BackgroundSpec | None = None
    failure_rng: np.random.Generator | None = None
    background_rng: np.random.Generator | None = None
    offload_rng: np.random.Generator | None = None  # its peer choices, when its tier offloads

    @property
    def reads_stretch(self) -> bool:
        """Its device is told what a stretch computes (a ``Stretch``), not only its work: it batches, or
        runs on units."""
        return self.batching is not None or bool(self.spec.units)


@dataclass(frozen=True)
class LinkEdge:
    """A link between two tiers (``src`` below ``dst``), in scenario order."""

    index: int
    name: str
    src: int
    dst: int
    rtt_ms: float
    ewma_weight: float
    shared: bool = False  # one capacity for all its channels (channels[link][0] holds its paths)


@dataclass(frozen=True)
class ChannelNode:
    """The channels of one link at one device of its lower tier: both directions' bandwidth paths."""

    link: int
    index: int
    name: str
    up: BandwidthPath
    down: BandwidthPath
    latency_s: float
    ewma_weight: float
    quality: BandwidthPath | None = None  # this device's weight on a shared link (None: fair share)
    failures: FailureSpec | None = None  # its down windows, when the link fails (simulator/failures.py)
    failure_rng: np.random.Generator | None = None


@dataclass(frozen=True)
class ComputeTable:
    """Per-sample seconds on one device class: layers [N, L], one exit head [N], embedding [N]."""

    layer_s: np.ndarray
    head_s: np.ndarray
    embed_s: np.ndarray


def compute_table(profile: Profile, split_name: str, spec: DeviceSpec | UnitSpec) -> ComputeTable:
    """A device class's (or a unit's) compute times for every sample of a split (measured table or profile / speed);
    kept for the next network built on the same profile and class (a sweep's conditions)."""
    if not profile.sha256:  # a profile built in memory: nothing identifies it
        return _compute_table(profile, split_name, spec)
    key = (str(profile.path), profile.sha256, split_name, spec.speed, repr(spec.timing))
    table = _TABLES.get(key)
    if table is None:
        if len(_TABLES) >= 64:
            _TABLES.clear()
        table = _TABLES[key] = _compute_table(profile, split_name, spec)
    return table


_TABLES: dict[tuple, ComputeTable] = {}


def _compute_table(profile: Profile, split_name: str, spec: DeviceSpec | UnitSpec) -> ComputeTable:
    split = profile.splits[split_name]
    if spec.timing is not None:
        timing, scale = spec.timing.as_timing(profile.num_layers), 1.0
    else:
        timing, scale = profile.timing, 1.0 / spec.speed
    tok = split.tokens
    return ComputeTable(timing.layer_seconds(tok) * scale, timing.head_seconds(tok) * scale,
                        timing.embed_seconds(tok) * scale)


@dataclass
class Network:
    """Devices, links, channels, compute tables and routes of one replication of a scenario."""

    tiers: list[TierInfo]
    devices: list[list[DeviceNode]]
    links: list[LinkEdge]
    channels: list[list[ChannelNode]]
    tables: list[ComputeTable]  # per tier (shared between tiers of the same device class)
    attachment: list[list[int]]  # [mobile][tier] -> device index on that mobile's path
    routes: dict[tuple[int, int], tuple[int, ...]]  # (from tier, to tier) -> link indices, upward
    chain: list[int]  # chain[i]: the link from tier i to tier i + 1
    payload: PayloadConfig
    hidden_size: int
    radio: RadioSpec | None  # the mobiles' radio (first tier's device class)
    cost: CostModel
    timing: Timing | None = None  # the profile's timing tables (batch sizes for batching devices)
    handovers: list[Handovers] | None = None  # per mobile, when it has mobility (simulator/mobility.py)
    # per tier: (its offload rule, the index of its peer link) when it offloads (simulator/offload.py)
    offload: list[tuple[OffloadConfig, int] | None] | None = None
    units: list[UnitPlan | None] | None = None  # per tier, when its device class has units (units.py)

    @property
    def n_mobiles(self) -> int:
        return len(self.devices[0])

    def route(self, a: int, b: int) -> tuple[int, ...]:
        """Links crossed moving up from tier ``a`` to tier ``b`` (empty when a == b)."""
        return () if a == b else self.routes[(a, b)]

    def attachment_at(self, mobile: int, t: float) -> list[int]:
        """``mobile``'s path (device index per tier) at time t: its current cell, then the chain above."""
        if self.handovers is None:
            return self.attachment[mobile]
        p = [mobile, self.handovers[mobile].cell_at(t)]
        for i in range(2, len(self.devices)):
            p.append(p[-1] % len(self.devices[i]))
        return p

    def upper(self, link: int, j: int, t: float = 0.0) -> int:
        """The device of ``link``'s upper tier that device ``j`` of its lower tier reaches at time t."""
        src, dst = self.links[link].src, self.links[link].dst
        if src == 0:
            return self.attachment_at(j, t)[dst]
        p = j
        for i in range(src + 1, dst + 1):
            p = p % len(self.devices[i])
        return p

    def device(self, mobile: int, tier: int) -> DeviceNode:
        return self.devices[tier][self.attachment[mobile][tier]]

    def channel(self, mobile: int, link: int) -> ChannelNode:
        """The channel of ``link`` that ``mobile``'s requests use."""
        return self.channels[link][self.attachment[mobile][self.links[link].src]]

    def state_bytes(self, tokens: int) -> int:
        """Bytes of a request's hidden state in memory (no message header): what a copy between two
        units of a device moves (simulator/units.py)."""
        return self.payload.hidden_bytes(tokens, self.hidden_size) - self.payload.header_bytes

    def transfer_bytes(self, tokens: int, after_layer: int) -> int:
        """Bytes sent when a request's state moves after ``after_layer`` layers (0 = raw input)."""
        if after_layer == 0:
            return self.payload.input_bytes(tokens)
        return self.payload.hidden_bytes(tokens, self.hidden_size)


def link_tiers(sc) -> list[tuple[int, int]]:
    """(from tier, to tier) of every link of a validated scenario, in scenario order."""
    index = {name: i for i, name in enumerate(sc.tiers)}
    return [(index[link.from_tier], index[link.to_tier]) for link in sc.links.values()]


def build_routes(n_tiers: int, edges: list[tuple[int, int]]) -> tuple[dict, list[int]]:
    """Routes between every pair of tiers a < b: the direct link if any, else the consecutive chain."""
    by_pair = {pair: i for i, pair in enumerate(edges)}
    chain = [by_pair[(i, i + 1)] for i in range(n_tiers - 1)]
    routes = {}
    for a in range(n_tiers):
        for b in range(a + 1, n_tiers):
            routes[(a, b)] = (by_pair[(a, b)],) if (a, b) in by_pair else tuple(chain[a:b])
    return routes, chain


def build_network(sc, profile: Profile, split: str = "eval", replication: int = 0,
                  policy: str | dict | None = None) -> Network:
    """The network of ``sc`` (a validated :class:`~simulator.config.Scenario`) for one replication, as
    ``policy`` (its scenario entry) sees it: with its own unit placements, when it has them."""
    placements = policy_placements(policy) if policy is not None else {}
    catalogue = sc.catalogue()
    L = profile.num_layers
    tiers, devices, tables = [], [], []
    units: list[UnitPlan | None] | None = None
    by_class: dict[str, ComputeTable] = {}
    for i, (name, t) in enumerate(sc.tiers.items()):
        first, last = t.layers if t.layers else (L + 1, L)
        tiers.append(TierInfo(i, name, first, last, t.device))
        spec = catalogue[t.device]
        thermal = sc.thermal_for(name)
        devices.append([DeviceNode(f"{name}{j}", i, j, spec, thermal, t.queue_capacity, batching=t.batching,
                                   failures=t.failures, background=t.background,
                                   failure_rng=stream(sc.seed, replication, FAILURES, i, j) if t.failures else None,
                                   background_rng=stream(sc.seed, replication, BACKGROUND, i, j)
                                   if t.background else None,
                                   offload_rng=stream(sc.seed, replication, OFFLOAD, i, j) if t.offload else None)
                        for j in range(t.count)])
        if spec.units:
            placement = placements.get(name, t.units)
            plan = unit_plan(placement, spec, L, [compute_table(profile, split, u) for u in spec.units.values()])
            units = (units or [None] * len(sc.tiers))
            units[i] = plan
            tables.append(effective_table(plan, ComputeTable))
            continue
        if t.device not in by_class:
            by_class[t.device] = compute_table(profile, split, spec)
        tables.append(by_class[t.device])

    edges = link_tiers(sc)
    links, channels = [], []
    for i, ((lname, link), (src, dst)) in enumerate(zip(sc.links.items(), edges, strict=True)):
        links.append(LinkEdge(i, lname, src, dst, link.rtt_ms, link.ewma_weight, link.shared))
        lat = link.rtt_ms / 2e3
        chans = []
        for j in range(len(devices[src])):
            k = 0 if link.same_realisation or link.shared else j
            up = link.bandwidth.realise(stream(sc.seed, replication, UPLINK, i, k))
            down = link.down_spec.realise(stream(sc.seed, replication, DOWNLINK, i, k))
            q = None if link.quality is None else link.quality.realise(stream(sc.seed, replication, QUALITY, i, j))
            frng = stream(sc.seed, replication, LINK_FAILURES, i, j) if link.failures is not None else None
            chans.append(ChannelNode(i, j, f"{lname}{j}", up, down, lat, link.ewma_weight, q, link.failures, frng))
        channels.append(chans)

    attachment = []
    for m in range(len(devices[0])):
        p = [m]
        for i in range(1, len(devices)):
            p.append(p[-1] % len(devices[i]))
        attachment.append(p)

    handovers = None
    if sc.mobility is not None:
        mob, n_cells = sc.mobility, len(devices[1])
        handovers = [Handovers(attachment[m][1], (mob.schedule or {}).get(m, []) if mob.schedule is not None
                               else None, n_cells, mob.mean_dwell_s, stream(sc.seed, replication, MOBILITY, m))
                     for m in range(len(devices[0]))]
        for i, link in enumerate(links):
            if link.src == 0:  # the phone's access link: blacked out while it hands over
                channels[i] = [blackout(c, handovers[c.index], mob.interruption_s, link.shared)
                               for c in channels[i]]

    routes, chain = build_routes(len(tiers), edges)
    names = list(sc.tiers)
    link_index = {name: i for i, name in enumerate(sc.links)}
    offload = [(t.offload, link_index[t.offload.link]) if t.offload is not None else None for t in sc.tiers.values()]
    cost = CostModel(tuple(sc.cost.per_tier_lambda(names)), tuple(sc.offload_costs()), tuple(chain),
                     routes, sc.cost.per_route_offload(names))
    return Network(tiers=tiers, devices=devices, links=links, channels=channels, tables=tables,
                   attachment=attachment, routes=routes, chain=chain, payload=sc.payload,
                   hidden_size=profile.hidden_size, radio=devices[0][0].spec.radio, cost=cost,
                   timing=profile.timing, handovers=handovers, offload=offload, units=units)


def blackout(c: ChannelNode, handovers: Handovers, h: float, shared: bool) -> ChannelNode:
    """A phone's access channel with its handover interruptions: its own paths, or its weight if shared."""
    if shared:
        return replace(c, quality=with_blackouts(c.quality or constant_one(), handovers, h))
    return replace(c, up=with_blackouts(c.up, handovers, h), down=with_blackouts(c.down, handovers, h))
