"""The SimPy side of a :class:`~simulator.topology.Network`: a live Device per device, a Channel per link
direction, the health of devices that fail (:mod:`simulator.failures`) and their background load
(:mod:`simulator.background`), and the state policies may observe through the view."""

from __future__ import annotations

import simpy

from .background import run_background
from .batching import BatchingDevice
from .device import Device, Service
from .failures import Health
from .network import Channel
from .topology import DeviceNode, Network


class LiveNetwork:
    """SimPy objects animating one Network: ``devices[tier][j]``, ``up[link][j]``, ``down[link][j]``."""

    def __init__(self, env: simpy.Environment, network: Network, record: bool = False):
        self.env = env
        self.network = network
        self.devices = [[self._device(env, d, record) for d in tier] for tier in network.devices]
        self.up = [[Channel(env, c.name, c.up, c.latency_s, c.ewma_weight) for c in chans]
                   for chans in network.channels]
        self.down = [[Channel(env, f"{c.name}-down", c.down, c.latency_s, c.ewma_weight) for c in chans]
                     for chans in network.channels]
        self.health = {(d.tier, d.index): Health(env, self.devices[d.tier][d.index])
                       for tier in network.devices for d in tier if d.failures is not None}

    @property
    def failing(self) -> bool:
        """True when some device of the scenario can fail."""
        return bool(self.health)

    def start(self, horizon: float) -> None:
        """Start the failure and background processes (until ``horizon``, the last request's arrival)."""
        for tier in self.network.devices:
            for d in tier:
                if d.failures is not None:
                    windows = d.failures.windows(d.failure_rng, horizon)
                    self.env.process(self.health[(d.tier, d.index)].run(windows))
                if d.background is not None:
                    serve = self.health[(d.tier, d.index)].serve if d.failures else self.devices[d.tier][d.index].serve
                    self.env.process(run_background(self.env, serve, d.background, d.background_rng, horizon))

    def serve(self, mobile: int, tier: int, work_s: float, stretch=None):
        """SimPy process body: serve ``work_s`` on the device of ``tier`` on ``mobile``'s path (a Service);
        ``stretch`` describes the work for batching devices."""
        j = self.network.attachment[mobile][tier]
        health = self.health.get((tier, j))
        dev = self.devices[tier][j]
        service: Service = yield from (health.serve(work_s, stretch) if health else dev.serve(work_s, stretch))
        return service

    def _device(self, env: simpy.Environment, d: DeviceNode, record: bool) -> Device:
        if d.batching is None:
            return Device(env, d.name, d.tier, d.spec, d.thermal, d.queue_capacity, record)
        net = self.network
        if d.spec.timing is not None:  # an absolute table measured on the device itself
            timing, scale = d.spec.timing.as_timing(net.tables[0].layer_s.shape[1]), 1e-3
        else:
            timing, scale = net.timing, 1e-3 / d.spec.speed
        return BatchingDevice(env, d.name, d.tier, d.spec, d.thermal, d.queue_capacity, record, d.batching,
                              timing, scale)

    def device(self, mobile: int, tier: int) -> Device:
        """The device of ``tier`` on ``mobile``'s path."""
        return self.devices[tier][self.network.attachment[mobile][tier]]

    def uplink(self, mobile: int, link: int) -> Channel:
        """The upward channel of ``link`` that ``mobile``'s requests use."""
        return self.up[link][self.network.attachment[mobile][self.network.links[link].src]]

    def downlink(self, mobile: int, link: int) -> Channel:
        return self.down[link][self.network.attachment[mobile][self.network.links[link].src]]

    def finish(self) -> None:
        """Close every device's energy and temperature books at the end of the run."""
        for tier in self.devices:
            for d in tier:
                d.finish()
