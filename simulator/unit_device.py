"""The live device of a class with heterogeneous units (:mod:`simulator.units` says what they are): each
unit its own FIFO servers, one thermal state and one throttle factor for all of them."""

from __future__ import annotations

from collections.abc import Callable

import simpy

from .batching import Stretch
from .device import Device, DeviceSpec, Service
from .thermal import ThermalSpec
from .units import UnitPlan


class UnitDevice(Device):
    """A device whose work runs on heterogeneous units (see the module docstring)."""

    def __init__(self, env: simpy.Environment, name: str, tier: int, spec: DeviceSpec, thermal: ThermalSpec,
                 queue_capacity: int | None, record: bool, plan: UnitPlan, state_bytes: Callable[[int], int]):
        self.unit_specs = list((spec.units or {}).values())
        self.unit_busy = [0] * len(self.unit_specs)
        super().__init__(env, name, tier, spec, thermal, queue_capacity, record)
        self.unit_resources = [simpy.Resource(env, capacity=u.servers) for u in self.unit_specs]
        self.plan = plan
        self.state_bytes = state_bytes  # bytes of a hidden state of so many tokens (what a copy moves)
        self.inside = 0
        self.unit_busy_s = dict.fromkeys(spec.units or (), 0.0)  # server-seconds computing, per unit

    def update(self) -> None:
        dt = self.env.now - self._t_last
        if dt > 0:
            for name, b in zip(self.unit_busy_s, self.unit_busy, strict=True):
                self.unit_busy_s[name] += b * dt
        super().update()

    @property
    def in_system(self) -> int:
        """Requests anywhere in the device: waiting for a unit, computing, or being copied."""
        return self.inside

    def power_w(self, busy: int | None = None) -> float:
        f, x = self.frequency, self.spec.power_exponent
        return self.spec.power_idle_w + sum(
            u.power_idle_w + (u.power_active_w - u.power_idle_w) * b / u.servers * f ** x
            for u, b in zip(self.unit_specs, self.unit_busy, strict=True))

    def request_power_w(self, unit: int = 0) -> float:
        return self.unit_specs[unit].request_power_w(self.frequency, self.spec.power_exponent)

    def _together(self) -> bool:
        return self.thermal is not None

    def _occupy(self, unit: int, delta: int) -> None:
        self.busy += delta
        self.unit_busy[unit] += delta

    def _job_power(self, job) -> float:
        return self.request_power_w(job.unit)

    def is_full(self, resource: simpy.Resource | None = None) -> bool:
        """As :meth:`Device.is_full`, for the first unit unless told which unit's servers."""
        return super().is_full(self.unit_resources[0] if resource is None else resource)

    def serve(self, work_s: float, stretch: Stretch | None = None):
        """SimPy process body: the stretch unit by unit (work without a stretch, such as background load,
        runs on the first unit); returns one Service for the whole stretch."""
        if stretch is None:
            segs = [(0, work_s, 0.0)]
        else:
            segs = self.plan.segments(stretch.sample, stretch.first, stretch.last, stretch.heads,
                                      self.state_bytes(stretch.tokens))
        return (yield from self.serve_segments(segs))

    def serve_segments(self, segs: list[tuple[int, float, float]]):
        """SimPy process body: ``(unit, work_s, copy_s)`` segments in order (:meth:`UnitPlan.segments`)."""
        if self.is_full(self.unit_resources[segs[0][0]]):
            self.drops += 1
            return Service(dropped=True)
        env = self.env
        self.inside += 1
        queue_s = compute_s = energy = 0.0
        since, waiting = env.now, False  # start of the current copy, wait or computation
        try:
            for u, work, copy_s in segs:
                if copy_s > 0:
                    since = env.now
                    yield env.timeout(copy_s)
                    compute_s += copy_s
                since, waiting = env.now, True
                with self.unit_resources[u].request() as r:
                    if self.record:
                        self.update()
                    yield r
                    queue_s += env.now - since
                    since, waiting = env.now, False
                    energy += yield from self._compute_on(u, work)
                    compute_s += env.now - since
        except simpy.Interrupt:  # the device failed (simulator/failures.py): the work is lost
            self.inside -= 1
            self.update()
            if waiting:
                queue_s += env.now - since
            else:
                compute_s += env.now - since
            return Service(False, queue_s, compute_s, failed=True)
        self.inside -= 1
        if self.record:
            self.update()
        return Service(False, queue_s, compute_s, energy)

    def _compute_on(self, u: int, work_s: float):
        """SimPy process body: ``work_s`` full-speed seconds on unit ``u`` (holding one of its servers)."""
        if self._together():
            try:
                return (yield from self._compute_together(work_s, u))
            except simpy.Interrupt:
                self._occupy(u, -1)
                self.update()
                self._replan()
                raise
        self.update()
        self._occupy(u, +1)
        try:
            yield self.env.timeout(work_s)
        finally:
            self.update()
            self._occupy(u, -1)
            self.update()
        return self.request_power_w(u) * work_s
