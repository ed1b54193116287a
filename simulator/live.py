"""The SimPy side of a :class:`~simulator.topology.Network`: a live Device per device, a Channel per link
direction, the health of devices that fail (:mod:`simulator.failures`) and their background load
(:mod:`simulator.background`), and the state policies may observe through the view."""

from __future__ import annotations

import simpy

from .background import run_background
from .batching import BatchingDevice
from .device import Device, Service
from .failures import Health, LinkHealth
from .network import Channel, Lost
from .offload import choose_peer
from .radio import RadioState
from .sharing import SharedPort, shared_link
from .topology import DeviceNode, Network
from .unit_device import UnitDevice


class LiveNetwork:
    """SimPy objects animating one Network: ``devices[tier][j]``, ``up[link][j]``, ``down[link][j]``."""

    def __init__(self, env: simpy.Environment, network: Network, record: bool = False):
        self.env = env
        self.network = network
        self.devices = [[self._device(env, d, record) for d in tier] for tier in network.devices]
        self.up, self.down, self.shared = [], [], []
        for link, chans in zip(network.links, network.channels, strict=True):
            if link.shared:  # one shared link per device of the upper tier (a cell, a shared backhaul)
                n_up = len(network.devices[link.dst])
                pairs = [shared_link(env, link.name if n_up == 1 else f"{link.name}{d}", chans, record, link.name)
                         for d in range(n_up)]
                self.shared += [x for pair in pairs for x in pair]
                self.up.append([SharedPort([p[0] for p in pairs], c.index, self._cell(link.index, c.index),
                                           c.ewma_weight, self._moves(link.index, c.index)) for c in chans])
                self.down.append([SharedPort([p[1] for p in pairs], c.index, self._cell(link.index, c.index),
                                             c.ewma_weight, self._moves(link.index, c.index)) for c in chans])
            else:
                self.up.append([Channel(env, c.name, c.up, c.latency_s, c.ewma_weight) for c in chans])
                self.down.append([Channel(env, f"{c.name}-down", c.down, c.latency_s, c.ewma_weight)
                                  for c in chans])

        rrc = network.radio.rrc if network.radio is not None else None
        self.rrc = [RadioState(rrc) for _ in network.devices[0]] if rrc is not None else None  # per mobile
        self.health = {(d.tier, d.index): Health(env, self.devices[d.tier][d.index])
                       for tier in network.devices for d in tier if d.failures is not None}
        self.link_health: dict[tuple[int, int], LinkHealth] = {}  # (link, channel) of links that fail
        for link, chans in zip(network.links, network.channels, strict=True):
            for c in chans:
                if c.failures is not None:
                    pair = [self.up[link.index][c.index], self.down[link.index][c.index]]
                    h = self.link_health[(link.index, c.index)] = LinkHealth(env, pair)
                    for ch in pair:
                        ch.health = h

    @property
    def failing(self) -> bool:
        """True when some device or link of the scenario can fail."""
        return bool(self.health) or bool(self.link_health)

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
        for chans in self.network.channels:
            for c in chans:
                if c.failures is not None:
                    windows = c.failures.windows(c.failure_rng, horizon)
                    self.env.process(self.link_health[(c.link, c.index)].run(windows))

    def serve(self, mobile: int, tier: int, work_s: float, stretch=None, path: list[int] | None = None):
        """SimPy process body: serve ``work_s`` on the device of ``tier`` on ``mobile``'s path (a Service);
        ``stretch`` describes the work for batching devices, ``path`` is the request's pinned path."""
        j = (path or self.network.attachment_at(mobile, self.env.now))[tier]
        health = self.health.get((tier, j))
        dev = self.devices[tier][j]
        service: Service = yield from (health.serve(work_s, stretch) if health else dev.serve(work_s, stretch))
        return service

    def peer_for(self, tier: int, j: int) -> int | None:
        """The peer of device ``j`` of ``tier`` that its next stretch goes to now (simulator/offload.py);
        None: ``j`` computes it (its tier does not offload, ``j`` is not busy enough, or the rule keeps it)."""
        spec = self.network.offload[tier] if self.network.offload is not None else None
        if spec is None:
            return None
        devices = self.devices[tier]
        if devices[j].in_system < spec[0].when_queue_at_least:
            return None
        return choose_peer(spec[0].rule, j, [d.in_system for d in devices], self.network.devices[tier][j].offload_rng)

    def serve_on_peer(self, mobile: int, tier: int, peer: int, work_s: float, stretch, path: list[int], rrc,
                      nbytes: int, back_bytes: int):
        """SimPy process body: horizontal offload (simulator/offload.py). The stretch's input (``nbytes``)
        goes over the tier's peer link to device ``peer``, runs there, and its result (``back_bytes``)
        comes back unless it was dropped or lost; returns ``(service, seconds there, seconds back, bytes
        on the peer link)``."""
        link = self.network.offload[tier][1]
        t0 = self.env.now
        yield from self.send(mobile, link, nbytes, path, rrc, True)
        there_s = self.env.now - t0
        service: Service = yield from self.serve(mobile, tier, work_s, stretch, [*path[:tier], peer, *path[tier + 1:]])
        if service.failed or service.dropped:
            return service, there_s, 0.0, nbytes
        t0 = self.env.now
        yield from self.send(mobile, link, back_bytes, path, rrc, False)
        return service, there_s, self.env.now - t0, nbytes + back_bytes

    def _device(self, env: simpy.Environment, d: DeviceNode, record: bool) -> Device:
        if d.spec.units:
            return UnitDevice(env, d.name, d.tier, d.spec, d.thermal, d.queue_capacity, record,
                              self.network.units[d.tier], self.network.state_bytes)
        if d.batching is None:
            return Device(env, d.name, d.tier, d.spec, d.thermal, d.queue_capacity, record)
        net = self.network
        if d.spec.timing is not None:  # an absolute table measured on the device itself
            timing, scale = d.spec.timing.as_timing(net.tables[0].layer_s.shape[1]), 1e-3
        else:
            timing, scale = net.timing, 1e-3 / d.spec.speed
        return BatchingDevice(env, d.name, d.tier, d.spec, d.thermal, d.queue_capacity, record, d.batching,
                              timing, scale)

    def _cell(self, link: int, j: int):
        """Which upper-tier device device ``j`` of ``link``'s lower tier reaches now (changes on handover)."""
        return lambda: self.network.upper(link, j, self.env.now)

    def _moves(self, link: int, j: int):
        """When device ``j`` of ``link``'s lower tier next hands over (None: never; only phones move)."""
        handovers = self.network.handovers
        if handovers is None or self.network.links[link].src != 0:
            return None
        return handovers[j].after

    def device(self, mobile: int, tier: int, path: list[int] | None = None) -> Device:
        """The device of ``tier`` on ``mobile``'s path: ``path`` (pinned by a request), else its current one."""
        return self.devices[tier][(path or self.network.attachment_at(mobile, self.env.now))[tier]]

    def uplink(self, mobile: int, link: int, path: list[int] | None = None) -> Channel:
        """The upward channel of ``link`` that ``mobile``'s requests use."""
        return self.up[link][(path or self.network.attachment_at(mobile, self.env.now))[self.network.links[link].src]]

    def downlink(self, mobile: int, link: int, path: list[int] | None = None) -> Channel:
        return self.down[link][(path or self.network.attachment_at(mobile, self.env.now))[self.network.links[link].src]]

    def send(self, mobile: int, link: int, nbytes: float, path: list[int], rrc, up: bool):
        """SimPy process body: ``nbytes`` over ``link`` (up or down) on the request's path, through the
        mobile's RRC state machine when the link leaves the mobile and the radio has one; (wait, tx), or
        a :class:`~simulator.network.Lost` when the message is lost to a failure of the link
        (simulator/failures.py)."""
        ch = self.uplink(mobile, link, path) if up else self.downlink(mobile, link, path)
        if rrc is not None and self.network.links[link].src == 0:
            return (yield from self.rrc[mobile].transmit(self.env, ch, nbytes, rrc, up))
        return (yield from ch.transmit(nbytes))

    def radio_j(self, link: int, nbytes: float, sent, up: bool) -> float:
        """The mobile's radio energy for one message over ``link`` that :meth:`send` returned ``sent`` for:
        0 unless the link leaves the mobile (and it has a radio); else its bits over its time on air, or,
        for a lost message, what went on air before the loss."""
        radio = self.network.radio
        if radio is None or self.network.links[link].src != 0:
            return 0.0
        if isinstance(sent, Lost):
            return radio.energy_j(sent.bits, sent.tx_s, sending=up)
        return radio.energy_j(nbytes * 8.0, sent[1], sending=up)

    def finish(self) -> None:
        """Close every device's energy and temperature books at the end of the run."""
        for tier in self.devices:
            for d in tier:
                d.finish()
