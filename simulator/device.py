"""Compute devices: FIFO servers with speed, power, energy accounting and thermal throttling.

A :class:`Device` serves requests first come first served on ``servers`` parallel servers (a SimPy
resource). Work is given in seconds at full speed on the device; it runs at the current frequency
factor, and a computation is split exactly where the thermal model changes the throttle level.
Power is ``P_idle + (P_active - P_idle) * busy/servers * f**power_exponent``; energy is its integral.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import simpy
import yaml

from .errors import ConfigError, unknown_key
from .radio import RadioSpec, parse_radio
from .schema import build, require
from .thermal import ThermalSpec, ThermalState
from .units import CopySpec, UnitSpec, parse_units


@dataclass
class DeviceSpec(UnitSpec):
    """A device class from the catalogue (``devices.yaml``) or a scenario's ``devices:``: one compute unit
    (speed or timing table, servers, power) with its DVFS exponent, radio and thermal model, or several
    ``units`` (simulator/units.py) sharing them."""

    power_exponent: float = 3.0
    radio: RadioSpec | None = field(default=None, metadata={"convert": parse_radio})  # radio.py
    thermal: ThermalSpec = field(default_factory=ThermalSpec)
    # heterogeneous compute units and the copy between them (simulator/units.py)
    units: dict[str, UnitSpec] | None = field(default=None, metadata={"convert": parse_units})
    copy: CopySpec | None = None

    def check(self, path: str) -> None:
        if self.units is not None and len(self.units) > 1:
            require(self.copy is not None, f"'{path}.copy' is needed with several units: "
                                           f"{{gbps: ..., latency_us: ..., source: ...}} (moving a hidden state "
                                           f"between them)")
        super().check(path)


@lru_cache(maxsize=1)
def _builtin_raw() -> dict[str, Any]:
    text = resources.files("simulator").joinpath("devices.yaml").read_text()
    return yaml.safe_load(text)


def builtin_catalogue() -> dict[str, DeviceSpec]:
    """The device classes shipped with the package."""
    return {name: build(DeviceSpec, raw, f"devices.{name}") for name, raw in _builtin_raw().items()}


def resolve_catalogue(extra: dict[str, Any] | None, path: str = "devices") -> dict[str, DeviceSpec]:
    """Built-in classes plus a scenario's additions; ``base: name`` inherits and overrides keys. The
    classes are built once per distinct ``extra`` (a sweep's conditions share them; nothing mutates
    them: a tier's thermal overrides work on a copy)."""
    try:
        key = (json.dumps(extra, sort_keys=True, default=repr), path)
    except (TypeError, ValueError):
        return _resolve_catalogue(extra, path)
    built = _CATALOGUES.get(key)
    if built is None:
        if len(_CATALOGUES) >= 32:
            _CATALOGUES.clear()
        built = _CATALOGUES[key] = _resolve_catalogue(extra, path)
    return dict(built)


_CATALOGUES: dict[tuple[str, str], dict[str, DeviceSpec]] = {}


def _resolve_catalogue(extra: dict[str, Any] | None, path: str) -> dict[str, DeviceSpec]:
    raw = copy.deepcopy(_builtin_raw())
    for name, entry in (extra or {}).items():
        if not isinstance(entry, dict):
            raise ConfigError(f"'{path}.{name}' must be a mapping")
        entry = dict(entry)
        base = entry.pop("base", None)
        if base is not None:
            if base not in raw:
                raise unknown_key(str(base), f"{path}.{name}.base", raw, what="device class")
            entry = _merged(copy.deepcopy(raw[base]), entry)
        raw[name] = entry
    return {name: build(DeviceSpec, e, f"{path}.{name}") for name, e in raw.items()}


def _merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` applied key by key, mappings merged at every depth (so ``units: {gpu:
    {speed: 2}}`` changes one unit's speed and keeps its power); anything else replaced. A mapping that
    names a ``preset`` (``radio: {preset: 5g-sa}``) replaces the base's whole value: the preset is the
    new starting point, so the base's explicit keys (which would override the preset) do not leak in."""
    for k, v in changes.items():
        merge = isinstance(v, dict) and isinstance(base.get(k), dict) and "preset" not in v
        base[k] = _merged(base[k], v) if merge else v
    return base


@dataclass
class _Job:
    """Work in progress on a throttling multi-server device: full-speed seconds left, joules so far."""

    work: float
    done: simpy.Event
    unit: int = 0  # the unit it runs on, on a device with units (simulator/units.py)
    remaining: float = -1.0
    energy: float = 0.0

    def __post_init__(self) -> None:
        self.remaining = self.work


@dataclass
class Service:
    """What serving one stretch of work at a device took; ``dropped`` when its queue was full, ``failed``
    when the device failed with the work inside (:mod:`simulator.failures`)."""

    dropped: bool
    queue_s: float = 0.0
    compute_s: float = 0.0
    energy_j: float = 0.0
    failed: bool = False


class Device:
    """One physical device in the simulation (a phone, an edge box, a cloud server pool)."""

    def __init__(self, env: simpy.Environment, name: str, tier: int, spec: DeviceSpec,
                 thermal: ThermalSpec | None = None, queue_capacity: int | None = None,
                 record: bool = False):
        self.env = env
        self.name = name
        self.tier = tier
        self.spec = spec
        self.resource = simpy.Resource(env, capacity=spec.servers)
        self.queue_capacity = queue_capacity
        tspec = thermal if thermal is not None else spec.thermal
        self.thermal = ThermalState(tspec, env.now) if tspec.enabled else None
        self.busy = 0
        self.energy_j = 0.0
        self.busy_s = 0.0  # server-seconds spent computing
        self.drops = 0
        self._t_last = env.now
        self.record = record
        self.trace: list[tuple[float, int, float, float]] = []  # time, in system, temp C, freq

    # -- state ------------------------------------------------------------------------------
    @property
    def frequency(self) -> float:
        return self.thermal.frequency if self.thermal else 1.0

    @property
    def temperature_c(self) -> float:
        return self.thermal.temp_c if self.thermal else math.nan

    @property
    def in_system(self) -> int:
        """Requests queued or in service."""
        return len(self.resource.queue) + self.resource.count

    def power_w(self, busy: int | None = None) -> float:
        s = self.spec
        busy = self.busy if busy is None else busy
        dyn = (s.power_active_w - s.power_idle_w) * busy / s.servers * self.frequency ** s.power_exponent
        return s.power_idle_w + dyn

    def request_power_w(self) -> float:
        """Power attributed to one request in service: its server's share of the device."""
        return self.spec.request_power_w(self.frequency, self.spec.power_exponent)

    def update(self) -> None:
        """Account energy and temperature from the last update to now (power was constant)."""
        now = self.env.now
        dt = now - self._t_last
        if dt > 0:
            p = self.power_w()
            self.energy_j += p * dt
            self.busy_s += self.busy * dt
            if self.thermal:
                self.thermal.advance(now, p)
            self._t_last = now
        if self.record:
            self.trace.append((now, self.in_system, self.temperature_c, self.frequency))

    def is_full(self, resource: simpy.Resource | None = None) -> bool:
        """True when a new arrival would be dropped: every server (of ``resource``, default the device's) is
        busy and ``queue_capacity`` requests already wait (0: no waiting room, so an arrival is dropped
        exactly when no server is free)."""
        r = self.resource if resource is None else resource
        return self.queue_capacity is not None and r.count >= r.capacity and len(r.queue) >= self.queue_capacity

    # -- actions ----------------------------------------------------------------------------
    batching = None  # a BatchingConfig on devices that batch (simulator/batching.py)

    def serve(self, work_s: float, stretch=None):
        """SimPy process body: admit (or drop), queue for a server, compute ``work_s``; returns a Service.

        The whole service discipline of a device lives here, so a subclass can change it (batching,
        failures) without touching the engine.
        """
        if self.is_full():
            self.drops += 1
            return Service(dropped=True)
        t0, t1 = self.env.now, None
        with self.resource.request() as r:
            if self.record:
                self.update()
            try:
                yield r
                t1 = self.env.now
                energy = yield from self.compute(work_s)
            except simpy.Interrupt:  # the device failed (simulator/failures.py): the work is lost
                return self._lost(t0, t1)
            t2 = self.env.now
        if self.record:
            self.update()
        return Service(False, t1 - t0, t2 - t1, energy)

    def _lost(self, t0: float, t1: float | None) -> Service:
        """Book work interrupted by a failure: its server is free again, nothing was delivered."""
        self.update()
        if t1 is not None:  # it was computing
            self.busy -= 1
            self.update()
            self._replan()
        now = self.env.now
        return Service(False, (now if t1 is None else t1) - t0, 0.0 if t1 is None else now - t1, failed=True)

    def compute(self, work_s: float):
        """SimPy process body: run ``work_s`` seconds of full-speed work; returns joules used.

        Call while holding a server of ``self.resource``. On a throttling device with several servers the
        work of all of them is planned together (:meth:`_compute_together`), because a server starting or
        ending changes the power, hence when the frequency of every server changes.
        """
        if self._together():
            return (yield from self._compute_together(work_s))
        self.update()
        self.busy += 1
        energy = 0.0
        remaining = work_s
        while remaining > 1e-15:
            f = self.frequency
            dt = remaining / f
            if self.thermal:
                dt = min(dt, self.thermal.time_to_change(self.power_w()))
            p_req = self.request_power_w()
            yield self.env.timeout(dt)
            self.update()
            energy += p_req * dt
            remaining -= dt * f
        self.busy -= 1
        self.update()
        return energy

    # -- several servers sharing one thermal state -----------------------------------------------
    def _together(self) -> bool:
        """True when concurrent work shares one throttle state, so it must be planned together."""
        return self.thermal is not None and self.spec.servers > 1

    def _occupy(self, unit: int, delta: int) -> None:
        """A server (of ``unit``, on a device with units) starts (+1) or ends (-1) computing."""
        self.busy += delta

    def _job_power(self, job: _Job) -> float:
        """Power charged to a job in progress."""
        return self.request_power_w()

    def _compute_together(self, work_s: float, unit: int = 0):
        """Exact service on a throttling multi-server device: every job in progress advances at the
        device's frequency, and whenever a job starts or ends, or the temperature reaches a trip, every job
        is re-planned at the new power and frequency (one timer for the whole device)."""
        job = _Job(work_s, self.env.event(), unit)
        self._progress()
        self._occupy(unit, +1)
        self._jobs.append(job)
        self._replan()
        try:
            yield job.done
        except simpy.Interrupt:  # lost to a failure: stop its work; _lost frees its server and re-plans
            self._progress()
            self._jobs.remove(job)
            raise
        return job.energy

    @property
    def _jobs(self) -> list[_Job]:
        jobs = self.__dict__.get("_jobs_list")
        if jobs is None:
            jobs = self.__dict__["_jobs_list"] = []
        return jobs

    def _progress(self) -> None:
        """Advance the jobs in progress and the books from the last event to now (nothing changed since)."""
        now = self.env.now
        t = self.__dict__.get("_t_jobs", now)
        if now > t and self._jobs:
            f = self.frequency
            for j in self._jobs:
                j.remaining -= (now - t) * f
                j.energy += self._job_power(j) * (now - t)
        self.__dict__["_t_jobs"] = now
        self.update()

    def _replan(self) -> None:
        """Schedule the device's next event: the first job to end, or the next change of frequency."""
        if not self._together():
            return
        self.__dict__["_plan"] = plan = object()  # earlier timers become stale
        if not self._jobs:
            return
        f = self.frequency
        dt = min(j.remaining for j in self._jobs) / f
        dt = max(min(dt, self.thermal.time_to_change(self.power_w())), 0.0)
        self.env.process(self._wake(dt, plan))

    def _wake(self, dt: float, plan: object):
        yield self.env.timeout(dt)
        if self.__dict__.get("_plan") is not plan:
            return
        self._progress()
        done = [j for j in self._jobs if j.remaining <= 1e-12 * max(1.0, j.work)]
        for j in done:
            self._jobs.remove(j)
            self._occupy(j.unit, -1)
        if done:
            self.update()
        for j in done:
            j.done.succeed()
        self._replan()

    def finish(self) -> None:
        """Close the energy/temperature books at the end of the run."""
        self.update()
