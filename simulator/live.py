"""The SimPy side of a :class:`~simulator.topology.Network`: a live Device per device, a Channel per link
direction, and the state policies may observe through the view."""

from __future__ import annotations

import simpy

from .batching import BatchingDevice
from .device import Device
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
