"""Shared links: one capacity divided among the transfers active on it (processor sharing).

A :class:`SharedLink` is one direction of one shared link (a cell's uplink, a backhaul several edges
share). At each instant its capacity ``C(t)`` (any bandwidth path) is split among the active transfers
in proportion to their weights: equal weights give fair share (egalitarian processor sharing);
a per-user channel quality ``q_u(t)`` (its own bandwidth path) gives transfer i the rate
``C(t) q_i(t) / sum_j q_j(t)``, a proportional-fair-like split.

Exactness without polling: between two events (a transfer starting or ending, a step of any active
user's quality) the shares are constant, so each transfer's remaining bits fall in proportion to the
capacity integral; the next completion is the smallest ``remaining_i / share_i`` converted to time by
:meth:`BandwidthPath.finish_time`, which is exact across capacity steps. At each event the books are
brought up to date and one wake-up is scheduled; a stale wake-up (superseded by a later plan) is
ignored. Completed transfers then propagate for ``rtt/2`` like on a private :class:`Channel`.

Handover (simulator/mobility.py): a transfer uses the phone's *current* cell. When the phone hands over
while a transfer is active, the transfer's remaining bits leave the old cell at that instant (the users
left there share it from then on) and join the new cell, sharing it from the same instant; the phone's
weight is zero on both for the interruption (its blacked-out quality path), so the remaining bits move
but nothing is carried until the interruption ends. :class:`SharedPort` does the move;
:meth:`SharedLink.detach` and :meth:`SharedLink.attach` keep each cell's books exact across it.

Books per shared link (``devices.csv`` has one row per shared link beside the per-user rows): busy time
(time with at least one transfer active, including interrupted ones), bits carried, and the time
integral of the number of active transfers (its mean over the run is ``mean_active``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import simpy

from .bandwidth import BandwidthPath

_REL = 1e-9  # transfers within this relative margin of the earliest completion finish together


@dataclass
class _Transfer:
    user: int
    bits: float
    remaining: float
    start: float
    done: simpy.Event


class SharedLink:
    """One direction of a shared link: capacity ``path`` shared by weight among active transfers."""

    def __init__(self, env: simpy.Environment, name: str, path: BandwidthPath, latency_s: float,
                 quality: list[BandwidthPath] | None = None, record: bool = False, link: str = ""):
        self.env = env
        self.name = name
        self.link = link or name  # the scenario's link this is (one per upper-tier device and direction)
        self.path = path
        self.latency_s = latency_s
        self.quality = quality  # per user (device of the lower tier); None = fair share
        self.active: list[_Transfer] = []
        self.bits_sent = 0.0  # bits of the transfers started on this link
        self.bits_carried = 0.0  # bits this link carried (a transfer moved by a handover: part here)
        self.busy_s = 0.0  # time with at least one transfer active
        self.active_s = 0.0  # integral over time of the number of active transfers
        self._t = 0.0  # time the books were last brought up to date
        self._plan = 0  # generation of the scheduled wake-up
        self.series: list[tuple[float, int, float]] | None = [] if record else None

    # -- shares -------------------------------------------------------------------------------
    def _weights(self, t: float) -> list[float]:
        if self.quality is None:
            return [1.0] * len(self.active)
        return [self.quality[x.user].rate_at(t) for x in self.active]

    def _shares(self, t: float) -> list[float]:
        w = self._weights(t)
        total = sum(w)
        if total <= 0:  # every active user has zero quality: nobody progresses
            return [0.0] * len(w)
        return [x / total for x in w]

    def _next_quality_step(self, t: float) -> float:
        if self.quality is None:
            return math.inf
        return min((self.quality[x.user].next_step(t) for x in self.active), default=math.inf)

    # -- events -------------------------------------------------------------------------------
    def _advance(self, now: float) -> None:
        """Deliver the bits carried in [self._t, now] to the active transfers at their shares."""
        if self.active and now > self._t:
            carried = self.path.bits_until(now) - self.path.bits_until(self._t)
            shares = self._shares(self._t)
            for x, s in zip(self.active, shares, strict=True):
                x.remaining -= s * carried
            if any(shares):
                self.bits_carried += carried
            self.busy_s += now - self._t
            self.active_s += len(self.active) * (now - self._t)
        self._t = now

    def _log(self, t: float) -> None:
        cap = self.path.rate_at(t)
        n = len(self.active)
        self.series.append((t, n, cap / n / 1e6 if n else 0.0))

    def _replan(self) -> None:
        """Finish what is due now, then schedule one wake-up at the next completion or quality step."""
        now = self.env.now
        self._plan += 1
        due = [x for x in self.active if x.remaining <= _REL * x.bits]
        if due:
            self.active = [x for x in self.active if x.remaining > _REL * x.bits]
            for x in due:
                x.done.succeed()
        if self.series is not None:
            self._log(now)
        if not self.active:
            return
        shares = self._shares(now)
        need = [x.remaining / s if s > 0 else math.inf for x, s in zip(self.active, shares, strict=True)]
        first = min(need)
        t_done = self.path.finish_time(now, first) if math.isfinite(first) else math.inf
        wake = min(t_done, self._next_quality_step(now))
        if not math.isfinite(wake):
            return
        finishing = [x for x, n in zip(self.active, need, strict=True) if n <= first * (1 + _REL)]
        plan = self._plan
        ev = self.env.timeout(max(wake - now, 0.0))
        ev.callbacks.append(lambda _ev: self._wake(plan, finishing if t_done <= wake else []))

    def _wake(self, plan: int, finishing: list[_Transfer]) -> None:
        if plan != self._plan:
            return  # superseded by a later start or finish
        self._advance(self.env.now)
        for x in finishing:  # due now by construction: absorb the rounding left in the remainder
            x.remaining = 0.0
        self._replan()

    def attach(self, x: _Transfer) -> None:
        """Start carrying transfer ``x`` (its ``remaining`` bits) from now."""
        self._advance(self.env.now)
        self.active.append(x)
        self._replan()

    def detach(self, x: _Transfer) -> None:
        """Stop carrying ``x`` now (its phone handed over): the books up to now, ``x.remaining`` exact."""
        self._advance(self.env.now)
        self.active = [y for y in self.active if y is not x]
        self._replan()

    def start(self, nbytes: float, user: int = 0) -> _Transfer | None:
        """Begin sending ``nbytes`` for ``user`` now; the transfer (its ``done`` event), None for 0 bytes."""
        bits = nbytes * 8.0
        self.bits_sent += bits
        if bits <= 0:
            return None
        x = _Transfer(user, bits, bits, self.env.now, self.env.event())
        self.attach(x)
        return x

    def transmit(self, nbytes: float, user: int = 0):
        """SimPy process body: send ``nbytes`` for ``user``; returns (0 queue wait, transmission time)."""
        now = self.env.now
        x = self.start(nbytes, user)
        if x is not None:
            yield x.done
        tx = self.env.now - now
        if self.latency_s > 0:
            yield self.env.timeout(self.latency_s)
        return 0.0, tx


class SharedPort:
    """One user's access to the :class:`SharedLink` of its current cell, with a private channel's interface.

    ``cells`` are the shared links of the upper tier's devices; ``cell()`` says which one the user
    reaches now (fixed, or changing with handover); ``moves(t)`` is the user's first handover strictly
    after ``t`` (None: it never moves), where an active transfer moves to the new cell.
    """

    def __init__(self, cells: list[SharedLink], user: int, cell: Callable[[], int] | None = None,
                 ewma_weight: float = 0.3, moves: Callable[[float], float] | None = None):
        self.cells = cells
        self.cell = cell or (lambda: 0)
        self.moves = moves
        self.user = user
        self.name = f"{cells[0].name}[{user}]"
        self.ewma_weight = ewma_weight
        self.estimate_bps: float | None = None
        self.bits_sent = 0.0
        self.busy_s = 0.0  # this user's transmission time (overlapping others')

    @property
    def link(self) -> SharedLink:
        return self.cells[self.cell()]

    @property
    def path(self) -> BandwidthPath:
        return self.link.path

    @property
    def latency_s(self) -> float:
        return self.cells[0].latency_s

    def transmit(self, nbytes: float):
        """SimPy process body: send over the shared link of the current cell, following the phone to its
        new cell at each handover (module docstring); returns (0 queue wait, transmission time) and
        updates this user's throughput estimate."""
        link = self.link
        env = link.env
        now = env.now
        x = link.start(nbytes, self.user)
        while x is not None and not x.done.triggered:
            t_move = self.moves(env.now) if self.moves is not None else math.inf
            if t_move == math.inf:
                yield x.done
                break
            yield x.done | env.timeout(max(t_move - env.now, 0.0))  # done, or the phone hands over
            new = self.link
            if not x.done.triggered and new is not link:  # the rest of it goes on the new cell
                link.detach(x)
                new.attach(x)
                link = new
        tx = env.now - now
        if self.latency_s > 0:
            yield env.timeout(self.latency_s)
        self.bits_sent += nbytes * 8.0
        self.busy_s += tx
        if tx > 0:
            rate = nbytes * 8.0 / tx
            w, old = self.ewma_weight, self.estimate_bps
            self.estimate_bps = rate if old is None else (1 - w) * old + w * rate
        return 0.0, tx


def shared_link(env: simpy.Environment, name: str, chans, record: bool = False,
                link: str = "") -> tuple[SharedLink, SharedLink]:
    """The up and down :class:`SharedLink` of one shared link (``link``, the scenario's name) from its
    channel nodes (capacity in the first)."""
    c0 = chans[0]
    quality = None if c0.quality is None else [c.quality for c in chans]
    return (SharedLink(env, name, c0.up, c0.latency_s, quality, record, link),
            SharedLink(env, f"{name}-down", c0.down, c0.latency_s, quality, record, link))
