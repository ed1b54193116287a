"""Engines by name: what simulates one policy for one replication of a scenario.

A scenario picks one with ``engine:`` (default ``simpy``). Every engine takes the same arguments and
returns the same :class:`~simulator.records.SimResult`, so runs, sweeps and reports do not care which
one ran. Entries are import paths, loaded on first use, so this module imports no engine.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from .errors import unknown_key

ENGINES: dict[str, str] = {
    "simpy": "simulator.engine:simulate",  # the discrete-event reference engine
    "fast": "simulator.fast.engine:simulate",  # its exact answers for feed-forward scenarios, compiled
    "auto": "simulator.fast.engine:simulate_auto",  # fast where it applies, simpy otherwise (says why)
}


def get_engine(name: str) -> Callable:
    """``simulate(sc, policy_spec, replication, record_timeline)`` of the engine called ``name``."""
    if name not in ENGINES:
        raise unknown_key(name, "engine", ENGINES, what="engine")
    module, func = ENGINES[name].split(":")
    return getattr(importlib.import_module(module), func)
