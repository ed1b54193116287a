"""Horizontal offload: a busy device of a tier hands a request's stretch to a peer of the same tier.

The second seed's edge-edge mode (b). A tier with several devices (``count`` >= 2) may carry
``offload: {rule, when_queue_at_least, link}``:

- ``link`` names a *peer link* of the tier, a link whose ``from`` and ``to`` are that tier (``{from:
  edge, to: edge}``); every device of the tier has its own channel of it (up: to the peer, down: back),
  with the link's bandwidth model, ``rtt_ms`` and offload cost like any other link. It is never part of a
  route between tiers; one that no tier's offload uses carries nothing (``--set tiers.edge.offload=null``
  turns offload off); it may not be ``shared``.
- When a request's state reaches device j of the tier to compute a stretch of layers there, and j holds
  at least ``when_queue_at_least`` requests (queued or in service, as :attr:`Device.in_system` counts
  them; default 1: j is busy), ``rule`` picks a peer k != j of the tier from their counts at that
  instant (requests in flight on a peer link are not counted):

  ``least-queue``  the peer holding the fewest requests (the lowest index among equals);
  ``power-of-two`` two distinct peers drawn at random, the one holding fewer (the first drawn among
                   equals; with two peers or fewer, all of them, lowest index among equals);
  ``random``       one peer drawn uniformly.

  ``least-queue`` and ``power-of-two`` send only when the chosen peer holds fewer requests than j
  (otherwise the stretch stays on j); ``random`` always sends.
- Sent, the stretch's input state (the hidden state after the previous layer, or the raw input before
  layer 1) crosses j's channel of the peer link up; k serves the stretch as any device does (its queue,
  drops, failures, energy); then the result comes back over the same channel down to j: the hidden state
  after the stretch when the request continues, the reply (``payload.reply_bytes``) when it exited on k.
  The request then carries on from j exactly as if j had computed the stretch (its route, its devices
  above and its reply path are j's). Latency pays both transfers (``transfer_s``); ``bytes_<peer link>``
  counts the bytes of both directions; the ``route`` column shows the peer link where a stretch went to
  a peer; the link's offload cost (``cost.offload`` per link) is paid once per stretch sent (a
  per-route cost has no entry for it). Queue and compute times count under the tier, as on j.

Every random choice draws from a stream keyed by (seed, replication, OFFLOAD, tier, j)
(:mod:`simulator.streams`), so every policy of a run sees the same draws in the same order of events
and the choice is reproducible. The fast engine does not simulate offload (``engine: auto`` falls back
to SimPy).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import unknown_key
from .schema import require

RULES = ("least-queue", "power-of-two", "random")


@dataclass
class OffloadConfig:
    """``tiers.<name>.offload``: when a busy device sends a stretch to a peer, which peer, over which link."""

    rule: str
    link: str | None = None
    when_queue_at_least: int = 1

    def check(self, path: str) -> None:
        if self.rule not in RULES:
            raise unknown_key(self.rule, f"{path}.rule", RULES, what="offload rule")
        require(1 <= self.when_queue_at_least <= 10**9,
                f"'{path}.when_queue_at_least' must be at least 1, got {self.when_queue_at_least}")


def choose_peer(rule: str, own: int, loads: list[int], rng: np.random.Generator) -> int | None:
    """The peer device ``own`` sends its stretch to (None: keep it), given every device's request count."""
    others = [k for k in range(len(loads)) if k != own]
    if rule == "random":
        return others[int(rng.integers(len(others)))]
    if rule == "power-of-two" and len(others) > 2:
        cands = [others[int(i)] for i in rng.choice(len(others), size=2, replace=False)]
    else:
        cands = others
    k = min(cands, key=lambda c: loads[c])  # min keeps the first among equals
    return k if loads[k] < loads[own] else None
