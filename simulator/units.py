"""Heterogeneous compute units inside one device: a Jetson's CPU, GPU and DLA; a phone's CPU and NPU.

This module holds what units are and where a tier's layers run on them; the live device that serves a
stretch unit by unit is :class:`simulator.unit_device.UnitDevice`.

A device class may list ``units`` (``devices.<class>.units.<unit>``), each with its own speed (or measured
timing table), servers and power, and the ``copy`` cost of moving a hidden state between two of them
over the device's shared memory. A tier running that class places layers on units
(``tiers.<tier>.units: {unit: [first, last]}``); layers not named run on the class's first unit.

A stretch of layers a request computes on such a device runs unit by unit: it queues first come first
served for each unit's servers in turn, and between two units its hidden state is copied (``latency_us``
plus bytes / ``gbps``) holding neither unit. The embedding runs on the unit of layer 1, an exit head on
the unit of the layer it follows. Copy time counts as the tier's compute time; a copy draws no power
beyond the board's idle (ASSUMPTION: a DMA over shared memory).

The units share the device's thermal budget: one RC thermal state heated by the sum of their powers, one
throttle factor slowing all of them (their work is planned together whenever one starts or ends,
exactly as several servers of one throttling device are, :meth:`Device._compute_together`). The device's
power is its class's ``power_idle_w`` (the rest of the board) plus, for each unit,
``P_idle + (P_active - P_idle) * busy/servers * f**power_exponent``; a request is charged its unit
server's share of its unit's power, as on a device without units. ``queue_capacity`` applies to the
waiting room of the unit a stretch starts on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ConfigError, unknown_key
from .profile import TimingTable
from .schema import build, positive, require

if TYPE_CHECKING:
    from .device import DeviceSpec


@dataclass
class UnitSpec:
    """One compute unit of a device class (and what every device class is at least): speed relative to
    the profile's machine (or an absolute ``timing`` table measured on it), servers, and power while
    idle and busy."""

    description: str = ""
    source: str = ""
    speed: float = 1.0
    servers: int = 1
    power_idle_w: float = 0.0
    power_active_w: float = 0.0
    timing: TimingTable | None = None

    def check(self, path: str) -> None:
        positive(self.speed, f"{path}.speed")
        require(self.servers >= 1, f"'{path}.servers' must be at least 1, got {self.servers}")
        positive(self.power_idle_w, f"{path}.power_idle_w", allow_zero=True)
        require(self.power_active_w >= self.power_idle_w, f"'{path}.power_active_w' must be at least power_idle_w")

    def request_power_w(self, frequency: float, exponent: float) -> float:
        """Power charged to one request computing on this unit: its server's share of the unit."""
        return (self.power_idle_w + (self.power_active_w - self.power_idle_w) * frequency ** exponent) / self.servers


@dataclass
class CopySpec:
    """Moving a hidden state between two units of a device: a fixed latency plus bytes over a bandwidth."""

    gbps: float = 10.0
    latency_us: float = 0.0
    source: str = ""

    def check(self, path: str) -> None:
        positive(self.gbps, f"{path}.gbps")
        positive(self.latency_us, f"{path}.latency_us", allow_zero=True)

    def seconds(self, nbytes: float) -> float:
        return self.latency_us * 1e-6 + nbytes * 8.0 / (self.gbps * 1e9)


def parse_units(value: Any, path: str) -> dict[str, UnitSpec] | None:
    """``devices.<class>.units``: an ordered mapping of unit name -> UnitSpec (the first is the default)."""
    if value is None:
        return None
    if not isinstance(value, dict) or not value:
        raise ConfigError(f"'{path}' must be a non-empty mapping of unit name -> unit")
    return {str(k): build(UnitSpec, v, f"{path}.{k}") for k, v in value.items()}


def parse_copy(value: Any, path: str) -> CopySpec | None:
    return None if value is None else build(CopySpec, value, path)


def policy_placements(spec: str | dict) -> dict[str, dict[str, list[int]]]:
    """A policy entry's own placement per tier (``{name: all-mobile, units: {mobile: {gpu: [1, 12]}}}``),
    which replaces those tiers' ``units`` for that policy; {} when it has none."""
    return (spec.get("units") or {}) if isinstance(spec, dict) else {}


def check_placement(placement: dict[str, list[int]], spec: DeviceSpec, device: str, path: str,
                    num_layers: int | None = None) -> None:
    """A tier's ``units`` must name units its device class has, with disjoint ``[first, last]`` ranges
    (inside the model's layers when ``num_layers`` is known)."""
    if not spec.units:
        raise ConfigError(f"'{path}': device class '{device}' has no units (give it 'units' under "
                          f"devices.{device})")
    taken: dict[int, str] = {}
    for name, rng in placement.items():
        if name not in spec.units:
            raise unknown_key(name, path, spec.units, what="unit",
                              where=f"'{path}' (the units of device class '{device}')")
        require(len(rng) == 2 and 1 <= rng[0] <= rng[1], f"'{path}.{name}' must be [first, last] with "
                                                         f"1 <= first <= last, got {rng}")
        if num_layers is not None:
            require(rng[1] <= num_layers, f"'{path}.{name}' {rng} is outside the model's layers 1..{num_layers}")
        for k in range(rng[0], rng[1] + 1):
            require(k not in taken, f"'{path}.{name}' and '{path}.{taken.get(k)}' both place layer {k}")
            taken[k] = name


@dataclass(frozen=True)
class UnitPlan:
    """Where a tier's device runs each layer: ``unit_of[k - 1]`` is the unit of layer k; ``tables`` are the
    per-unit compute tables (seconds per sample, as :class:`~simulator.topology.ComputeTable`)."""

    names: tuple[str, ...]
    unit_of: np.ndarray
    tables: tuple[Any, ...]
    copy: CopySpec

    def segments(self, sample: int, first: int, last: int, heads: tuple[int, ...], nbytes: float
                 ) -> list[tuple[int, float, float]]:
        """A stretch (layers ``first..last``, exit heads after the layers in ``heads``) as ``(unit, work_s,
        copy_s)`` per run of consecutive layers on one unit; ``copy_s`` is the copy into that unit
        (``nbytes`` of hidden state; 0 for the first). Work adds up in :func:`~simulator.walk.next_stretch`'s
        order, so a single unit gives exactly the work a device without units computes."""
        segs: list[list] = []
        for k in range(first, last + 1):
            u = int(self.unit_of[k - 1])
            t = self.tables[u]
            if not segs or segs[-1][0] != u:
                segs.append([u, float(t.embed_s[sample]) if k == 1 else 0.0,
                             self.copy.seconds(nbytes) if segs else 0.0])
            w = segs[-1][1] + t.layer_s[sample, k - 1]
            if k in heads:
                w += t.head_s[sample]
            segs[-1][1] = float(w)
        return [(u, w, c) for u, w, c in segs]


def unit_plan(placement: dict[str, list[int]] | None, spec: DeviceSpec, num_layers: int, tables: list) -> UnitPlan:
    """The plan of a tier's units (``tables``: one compute table per unit of ``spec``, in its order)."""
    names = tuple(spec.units or ())
    unit_of = np.zeros(num_layers, dtype=np.int64)
    for name, (a, b) in (placement or {}).items():
        unit_of[a - 1:b] = names.index(name)
    return UnitPlan(names, unit_of, tuple(tables), spec.copy or CopySpec())


def effective_table(plan: UnitPlan, table_type: type):
    """One compute table for the tier as policies read it (their predictions of compute time): each layer
    at its unit's time, the embedding at layer 1's unit, an exit head at the last layer's unit; the
    copies between units and the queues at each are not in it."""
    cols = [plan.tables[int(u)].layer_s[:, k] for k, u in enumerate(plan.unit_of)]
    return table_type(np.stack(cols, axis=1), plan.tables[int(plan.unit_of[-1])].head_s,
                      plan.tables[int(plan.unit_of[0])].embed_s)
