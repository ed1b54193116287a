"""Links between tiers: FIFO transmission over variable bandwidth, then propagation delay.

A :class:`Channel` is one direction of one link (a mobile's uplink, an edge's backhaul, ...). Messages
are transmitted one at a time in arrival order; transmission ends exactly when the bandwidth integral
from its start covers the message's bits; the message then propagates for ``rtt/2``. The sender only
learns throughput from its own past transfers (:attr:`Channel.estimate_bps`, an EWMA), which is what
policies may use to predict transfer times.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import simpy

from .bandwidth import BandwidthPath, BandwidthSpec, check_capacity, parse_bandwidth
from .failures import FailureSpec
from .schema import positive, require

BYTES_PER_VALUE = {"fp32": 4, "fp16": 2, "int8": 1}


def _bandwidth(value: Any, path: str) -> BandwidthSpec:
    return parse_bandwidth(value, path)


def _optional_bandwidth(value: Any, path: str) -> BandwidthSpec | None:
    return None if value is None else parse_bandwidth(value, path)


@dataclass
class LinkConfig:
    """A link between two tiers (``from`` below ``to``); one channel per device of the lower tier.

    With ``shared: true`` the link is one capacity (``bandwidth`` up, ``downlink`` down, separate
    resources) divided among the active transfers of all devices of the lower tier: fair share, or in
    proportion to each device's ``quality`` (its own realisation of that bandwidth model, both directions).

    Without ``from``/``to``, links join consecutive tiers in scenario order; the scenario fills them in.
    """

    bandwidth: BandwidthSpec = field(metadata={"convert": _bandwidth})
    downlink: BandwidthSpec | None = field(default=None, metadata={"convert": _optional_bandwidth})
    rtt_ms: float = 20.0
    same_realisation: bool = False
    shared: bool = False  # one capacity shared by all lower-tier devices (simulator/sharing.py)
    quality: BandwidthSpec | None = field(default=None, metadata={"convert": _optional_bandwidth})
    ewma_weight: float = 0.3
    from_tier: str | None = field(default=None, metadata={"key": "from"})
    to_tier: str | None = field(default=None, metadata={"key": "to"})
    failures: FailureSpec | None = None  # down windows of each channel (simulator/failures.py)

    def check(self, path: str) -> None:
        require(self.failures is None or not self.shared,
                f"'{path}.failures': a shared link cannot fail (only a link with a channel per device)")
        positive(self.rtt_ms, f"{path}.rtt_ms", allow_zero=True)
        require(self.rtt_ms <= 3.6e6, f"'{path}.rtt_ms' must be at most 3.6e6 (one hour), got {self.rtt_ms}")
        require(0 < self.ewma_weight <= 1, f"'{path}.ewma_weight' must be in (0, 1]")
        require(self.quality is None or self.shared,
                f"'{path}.quality' (a per-user weight) needs a shared link: set '{path}.shared: true'")
        check_capacity(self.bandwidth, f"{path}.bandwidth")
        if self.downlink is not None:
            check_capacity(self.downlink, f"{path}.downlink")

    @property
    def down_spec(self) -> BandwidthSpec:
        """The downlink model: its own, or the uplink's model (an independent realisation)."""
        return self.downlink if self.downlink is not None else self.bandwidth


@dataclass
class PayloadConfig:
    """What crosses a link: hidden states after a layer, token ids before any, small replies."""

    dtype: str = "fp16"
    header_bytes: int = 64
    input_bytes_per_token: int = 4
    reply_bytes: int = 64

    def check(self, path: str) -> None:
        require(self.dtype in BYTES_PER_VALUE,
                f"'{path}.dtype' must be one of {', '.join(BYTES_PER_VALUE)}, got {self.dtype!r}")
        for k in ("header_bytes", "input_bytes_per_token", "reply_bytes"):
            positive(getattr(self, k), f"{path}.{k}", allow_zero=True)
            require(getattr(self, k) <= 10**9, f"'{path}.{k}' must be at most 1e9 bytes")

    def hidden_bytes(self, tokens: int, hidden_size: int) -> int:
        """Bytes to send a hidden state of ``tokens`` x ``hidden_size`` values plus the header."""
        return tokens * hidden_size * BYTES_PER_VALUE[self.dtype] + self.header_bytes

    def input_bytes(self, tokens: int) -> int:
        """Bytes to send the raw input (token ids) plus the header."""
        return tokens * self.input_bytes_per_token + self.header_bytes


@dataclass(frozen=True)
class Lost:
    """A message lost to a failure of its link (simulator/failures.py): what had gone on air before the
    loss (its sender's, or for a reply its receiver's, radio spent energy on that)."""

    tx_s: float = 0.0
    bits: float = 0.0


class Channel:
    """One direction of a link: FIFO transmission over a bandwidth path, then propagation.

    With one transmitter and an exogenous bandwidth path, a message's transmission interval is known
    when it is queued: it starts when the previous message ends (or now) and ends when the bandwidth
    integral covers it. So the channel keeps the time it becomes free instead of a SimPy resource, and
    a transfer costs one event.
    """

    def __init__(self, env: simpy.Environment, name: str, path: BandwidthPath, latency_s: float,
                 ewma_weight: float = 0.3):
        self.env = env
        self.name = name
        self.path = path
        self.latency_s = latency_s
        self.ewma_weight = ewma_weight
        self.estimate_bps: float | None = None
        self.bits_sent = 0.0
        self.busy_s = 0.0
        self.free_at = 0.0
        self.health = None  # a LinkHealth when the link fails (simulator/failures.py)

    def transmit(self, nbytes: float):
        """SimPy process body: send ``nbytes``; returns (queue wait, transmission time) in seconds, or a
        :class:`Lost` when the message is lost to a failure of the link (at the instant of the loss).

        The sender's throughput estimate is updated when the transfer is acknowledged, one propagation
        delay after it ends.
        """
        if self.health is not None:
            return (yield from self._transmit_lossy(nbytes))
        now = self.env.now
        start, end, bits, tx = self._queue(now, nbytes)
        delay = end - now + self.latency_s
        if delay > 0:
            yield self.env.timeout(delay)
        if tx > 0:
            rate = bits / tx
            w, old = self.ewma_weight, self.estimate_bps
            self.estimate_bps = rate if old is None else (1 - w) * old + w * rate
        return start - now, tx

    def _queue(self, now: float, nbytes: float) -> tuple[float, float, float, float]:
        """Take a message in at ``now``: when its transmission starts and ends, its bits and time on air
        (booked on the channel, which is busy until then)."""
        start = now if self.free_at < now else self.free_at
        bits = nbytes * 8.0
        end = self.path.finish_time(start, bits)
        self.free_at = end
        tx = end - start
        self.bits_sent += bits
        self.busy_s += tx
        return start, end, bits, tx

    def _transmit_lossy(self, nbytes: float):
        """``transmit`` on a channel that fails: lost when down now, or when it fails before arrival."""
        env, health = self.env, self.health
        if health.is_down():
            return Lost()
        now = env.now
        start, end, bits, tx = self._queue(now, nbytes)
        arrive = end + self.latency_s
        if arrive > now:
            yield env.timeout(arrive - now) | health.lost
            if env.now < arrive:  # the link failed first: lost (a failure at the arrival instant is not)
                cut = min(max(env.now, start), end)  # what was on air: from its start to the loss
                on_air = self.path.bits_until(cut) - self.path.bits_until(start) if cut > start else 0.0
                return Lost(cut - start, on_air)
        if tx > 0:
            rate = bits / tx
            w, old = self.ewma_weight, self.estimate_bps
            self.estimate_bps = rate if old is None else (1 - w) * old + w * rate
        return start - now, tx

    def cut(self, t: float) -> None:
        """The link fails at ``t``: every message in the channel is lost, the transmitter is free."""
        if self.free_at > t:
            self.busy_s -= self.free_at - t
            self.free_at = t
