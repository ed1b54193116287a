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
            if link.shared:  # one shared link per device of the upper tier (a cell, a shared backhaul)
                n_up = len(network.devices[link.dst])
                pairs = [shared_link(env, link.name if n_up == 1 else f"{link.name}{d}", chans, record)
                         for d in range(n_up)]
                self.shared += [x for pair in pairs for x in pair]
                self.up.append([SharedPort([p[0] for p in pairs], c.index, self._cell(link.index, c.index),
                                           c.ewma_weight) for c in chans])
                self.down.append([SharedPort([p[1] for p in pairs], c.index, self._cell(link.index, c.index),
                                             c.ewma_weight) for c in chans])
            else:
                self.up.append([Channel(env, c.name, c.up, c.latency_s, c.ewma_weight) for c in chans])
                self.down.append([Channel(env, f"{c.name}-down", c.down, c.latency_s, c.ewma_weight)
                                  for c in chans])

        rrc = network.radio.rrc if network.radio is not None else None
        self.rrc = [RadioState(rrc) for _ in network.devices[0]] if rrc is not None else None  # per mobile

    def _cell(self, link: int, j: int):
        """Which upper-tier device device ``j`` of ``link``'s lower tier reaches now (changes on handover)."""
        return lambda: self.network.upper(link, j, self.env.now)

    def device(self, mobile: int, tier: int, path: list[int] | None = None) -> Device:
        """The device of ``tier`` on ``mobile``'s path: ``path`` (pinned by a request), else its current one."""
        return self.devices[tier][(path or self.network.attachment_at(mobile, self.env.now))[tier]]

    def uplink(self, mobile: int, link: int, path: list[int] | None = None) -> Channel:
        """The upward channel of ``link`` that ``mobile``'s requests use."""
        return self.up[link][(path or self.network.attachment_at(mobile, self.env.now))[self.network.links[link].src]]

    def downlink(self, mobile: int, link: int, path: list[int] | None = None) -> Channel:
        return self.down[link][(path or self.network.attachment_at(mobile, self.env.now))[self.network.links[link].src]]

    def finish(self) -> None:
        """Close every device's energy and temperature books at the end of the run."""
        for tier in self.devices:
            for d in tier:
                d.finish()
