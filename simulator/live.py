"""The SimPy side of a :class:`~simulator.topology.Network`: a live Device per device, a Channel per link
direction, and the state policies may observe through the view."""

from __future__ import annotations

import simpy

from .device import Device
from .network import Channel
from .radio import RadioState
from .sharing import SharedPort, shared_link
from .topology import Network


class LiveNetwork:
    """SimPy objects animating one Network: ``devices[tier][j]``, ``up[link][j]``, ``down[link][j]``."""

    def __init__(self, env: simpy.Environment, network: Network, record: bool = False):
        self.env = env
        self.network = network
        self.devices = [[Device(env, d.name, d.tier, d.spec, d.thermal, d.queue_capacity, record) for d in tier]
                        for tier in network.devices]
        self.up, self.down, self.shared = [], [], []
        for link, chans in zip(network.links, network.channels, strict=True):
            if link.shared:
                up, down = shared_link(env, link.name, chans, record)
                self.shared += [up, down]
                self.up.append([SharedPort(up, c.index, c.ewma_weight) for c in chans])
                self.down.append([SharedPort(down, c.index, c.ewma_weight) for c in chans])
            else:
                self.up.append([Channel(env, c.name, c.up, c.latency_s, c.ewma_weight) for c in chans])
                self.down.append([Channel(env, f"{c.name}-down", c.down, c.latency_s, c.ewma_weight)
                                  for c in chans])

        rrc = network.radio.rrc if network.radio is not None else None
        self.rrc = [RadioState(rrc) for _ in network.devices[0]] if rrc is not None else None  # per mobile

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
