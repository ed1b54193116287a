"""Keyed random streams: every random draw of a simulation comes from one of these.

A stream is keyed by ``(seed, replication, stream id, index...)`` through ``SeedSequence`` spawn keys,
so the same scenario and seed give the same arrivals, samples and bandwidth for every policy and every
engine, whatever order or process runs them.
"""

from __future__ import annotations

import numpy as np

ARRIVALS, SAMPLES, UPLINK, DOWNLINK, POLICY, FAILURES, BACKGROUND, QUALITY, MOBILITY, OFFLOAD, LINK_FAILURES = \
    range(1, 12)


def stream(seed: int, replication: int, *key: int) -> np.random.Generator:
    """An independent generator for one named stream of one replication."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(replication, *key)))
