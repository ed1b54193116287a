"""Device failures and the failover rule that recovers (or ends) the requests they hit.

A device fails and recovers on a deterministic schedule of down windows (``failures: {schedule:
[[start_s, end_s], ...]}``) or by an alternating renewal process with exponential times to failure and
to repair (``failures: {mtbf_s, mttr_s}``, drawn from the ``FAILURES`` stream of that device). While a
device is down, the work in it (queued or computing) is lost at the instant it fails, and work arriving
at it is lost on arrival. The client notices ``timeout_ms`` after the loss and applies its policy's
failover rule (``failover: {rule, timeout_ms}`` on the policy, else the scenario's ``failover``):

* ``drop``: the request ends ``failed`` (reason ``down:<tier>``);
* ``local``: the mobile computes the rest itself, from the last hidden state it holds (the layers it
  computed before sending the request up; the input when it computed none);
* ``retry``: the mobile resends that state to another tier, which runs the rest: the tiers above the
  failed one nearest first, then those below it (never the mobile); a tier is tried at most once per
  request, and when none is left the request ends ``failed`` (reason ``down:<tier>;no_retry_target``).

The client cannot see whether a device is up: a retry may land on a device that is down as well, and
costs another timeout. A failure of the mobile itself always ends the request (nowhere to fall back).

Links fail the same way (``links.<name>.failures``, the same keys): each channel of the link (the link at
one device of its lower tier, both directions together) has its own down windows, its MTBF/MTTR drawn
from its own stream (``LINK_FAILURES``, link and device index). A message is lost when the channel is
down when it is handed to it, or goes down before the message has arrived (while it waits behind
earlier messages, is transmitted or propagates): everything in a channel is lost at the instant it
fails, and the transmitter is free again when it recovers. A lost message loses the request's work at
the tier the message was going to, or, for the reply on its way down to the mobile, at the tier that
sent it: the client notices ``timeout_ms`` after the loss and applies its rule exactly as if that tier
had failed, with reason ``down:<link>`` (``down:<link>;no_retry_target`` under ``retry``). So a lost
reply is recomputed: on the mobile (``local``), on another tier (``retry``, which counts the sending tier
as tried), or the request fails (``drop``). A retry's route may cross the same down link again and
cost another timeout. A lost message books the phone's radio energy for what went on air before the
loss (its time on air and the bits carried then); the channel's ``bits_sent`` counts it in full, its
``busy_s`` only up to the loss. Shared links and peer links cannot fail (refused).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy

from .device import Device, Service
from .errors import ConfigError, unknown_key
from .schema import build, positive, require

if TYPE_CHECKING:
    from .policies.base import Plan

RULES = ("drop", "local", "retry")


@dataclass
class FailureSpec:
    """When a device is down: a ``schedule`` of ``[start_s, end_s]`` windows, or ``mtbf_s`` + ``mttr_s``."""

    schedule: list[list[float]] = field(default_factory=list)
    mtbf_s: float | None = None
    mttr_s: float | None = None

    def check(self, path: str) -> None:
        if self.mttr_s is not None and self.mtbf_s is None:
            raise ConfigError(f"'{path}.mttr_s' needs '{path}.mtbf_s' (mean time between failures)")
        if self.mtbf_s is not None and self.mttr_s is None:
            raise ConfigError(f"'{path}.mtbf_s' needs '{path}.mttr_s' (mean time to repair)")
        require(not (self.schedule and self.mtbf_s is not None),
                f"'{path}': give either 'schedule' or 'mtbf_s'/'mttr_s', not both")
        require(bool(self.schedule) or self.mtbf_s is not None,
                f"'{path}' needs 'schedule' ([[start_s, end_s], ...]) or 'mtbf_s' and 'mttr_s'")
        positive(self.mtbf_s, f"{path}.mtbf_s")
        positive(self.mttr_s, f"{path}.mttr_s")
        prev = 0.0
        for i, w in enumerate(self.schedule):
            require(len(w) == 2 and 0 <= w[0] < w[1] and w[0] >= prev,
                    f"'{path}.schedule[{i}]' must be [start_s, end_s] with 0 <= start < end, after the "
                    f"previous window; got {w}")
            prev = w[1]

    def windows(self, rng: np.random.Generator | None, horizon: float):
        """Down windows ``(start, end)`` in time order, those starting by ``horizon``."""
        if self.mtbf_s is None:
            yield from ((float(a), float(b)) for a, b in self.schedule if a <= horizon)
            return
        assert rng is not None and self.mttr_s is not None
        t = 0.0
        while True:
            t += float(rng.exponential(self.mtbf_s))
            if t > horizon:
                return
            end = t + float(rng.exponential(self.mttr_s))
            yield t, end
            t = end


@dataclass
class FailoverSpec:
    """What a client does when its request is lost to a failure: ``rule`` after ``timeout_ms``."""

    rule: str = "drop"
    timeout_ms: float = 500.0

    def check(self, path: str) -> None:
        if self.rule not in RULES:
            raise unknown_key(self.rule, f"{path}.rule", RULES, what="failover rule")
        positive(self.timeout_ms, f"{path}.timeout_ms", allow_zero=True)

    @property
    def timeout_s(self) -> float:
        return self.timeout_ms / 1e3


def parse_failover(value: Any, path: str) -> FailoverSpec:
    """A validated FailoverSpec from plain data."""
    return build(FailoverSpec, value, path)


def policy_failover(spec: str | dict, default: FailoverSpec | None) -> FailoverSpec:
    """The failover rule of one policy spec: its own ``failover`` key, else the scenario's, else drop."""
    if isinstance(spec, dict) and spec.get("failover") is not None:
        return parse_failover(spec["failover"], "failover")
    return default or FailoverSpec()


class Health:
    """Up/down state of one live device; serves work through it and loses that work when it fails."""

    def __init__(self, env: simpy.Environment, device: Device):
        self.env = env
        self.device = device
        self.down = False
        self.failures = 0
        self.windows: list[tuple[float, float]] = []  # down windows so far (the last may be open)
        self._inflight: set[simpy.Process] = set()

    def serve(self, work_s: float, stretch=None):
        """SimPy process body: like ``Device.serve``, but failed (``Service.failed``) when the device is
        down on arrival or fails before the work is done."""
        if self.down:
            return Service(dropped=False, failed=True)
        proc = self.env.process(self.device.serve(work_s, stretch))
        self._inflight.add(proc)
        try:
            return (yield proc)
        finally:
            self._inflight.discard(proc)

    def run(self, windows):
        """SimPy process body: go down and back up at each window; a failure loses all work inside."""
        env = self.env
        for start, end in windows:
            if start > env.now:
                yield env.timeout(start - env.now)
            self.down = True
            self.failures += 1
            self.windows.append((start, end))
            for proc in list(self._inflight):
                if proc.is_alive:
                    proc.interrupt("failure")
            yield env.timeout(end - env.now)
            self.down = False

    def down_s(self, until: float) -> float:
        """Seconds spent down up to ``until``."""
        return sum(min(b, until) - a for a, b in self.windows if a < until)


class LinkHealth:
    """Up/down state of one channel of a link (both directions); a failure loses every message in it."""

    def __init__(self, env: simpy.Environment, channels: list):
        self.env = env
        self.channels = channels  # the up and down Channel of this link at one device of its lower tier
        self.down = False
        self.up_at = 0.0  # end of the current down window
        self.failures = 0
        self.windows: list[tuple[float, float]] = []
        self.lost = env.event()  # succeeds at the next failure (then replaced)

    def is_down(self) -> bool:
        """True while inside a down window ``[start, end)``."""
        return self.down and self.env.now < self.up_at

    def run(self, windows):
        """SimPy process body: go down and back up at each window; a failure empties the channels."""
        env = self.env
        for start, end in windows:
            if start > env.now:
                yield env.timeout(start - env.now)
            self.down, self.up_at = True, end
            self.failures += 1
            self.windows.append((start, end))
            event, self.lost = self.lost, env.event()
            event.succeed()
            for ch in self.channels:
                ch.cut(env.now)
            yield env.timeout(end - env.now)
            self.down = False

    def down_s(self, until: float) -> float:
        """Seconds spent down up to ``until``."""
        return sum(min(b, until) - a for a, b in self.windows if a < until)


def failover_plan(rule: str, plan: Plan, failed_tier: int, base: int, tried: set[int],
                  n_tiers: int) -> Plan | None:
    """The plan a request follows after losing its work at ``failed_tier`` (None: it fails).

    Layers ``1..base`` stay where they ran (on the mobile); the rest go to the mobile (``local``) or to
    the next untried tier (``retry``; ``tried`` is updated).
    """
    if rule == "drop" or failed_tier == 0:
        return None
    if rule == "local":
        target = 0
    else:
        tried.add(failed_tier)
        order = [*range(failed_tier + 1, n_tiers), *range(failed_tier - 1, 0, -1)]
        left = [t for t in order if t not in tried]
        if not left:
            return None
        target = left[0]
    tiers = plan.tiers[:base] + (target,) * (len(plan.tiers) - base)
    return replace(plan, tiers=tiers)


def failed_reason(tier_name: str, rule: str, tier: int) -> str:
    """The ``reason`` of a request that failed at tier ``tier`` (``tier_name``) under ``rule``."""
    return f"down:{tier_name}" + (";no_retry_target" if rule == "retry" and tier > 0 else "")
