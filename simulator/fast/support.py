"""What the fast engine covers: feed-forward policies on networks of FIFO stations.

:func:`why_not` gives the first reason a simulation is outside it (None when it is inside); the engine
raises :class:`Unsupported` for it, and for what only shows while simulating (requests arriving at a
station at the same instant, whose order SimPy breaks by its event queue). ``engine: auto`` then runs
the SimPy engine and records the reason.
"""

from __future__ import annotations

from ..config import Scenario
from ..errors import UserError
from ..policies.registry import make_policy


class Unsupported(UserError):
    """The fast engine cannot give the SimPy engine's exact answer for this simulation."""


def why_not(sc: Scenario, policy_spec: str | dict, record_timeline: bool = False) -> str | None:
    """Why the fast engine does not simulate ``policy_spec`` on ``sc`` (None: it does)."""
    return policy_why_not(make_policy(policy_spec), record_timeline) or scenario_why_not(sc)


def policy_why_not(policy, record_timeline: bool = False) -> str | None:
    """What of the policy (or of what is recorded) keeps the fast engine out (None: nothing)."""
    if not policy.feed_forward:
        return (f"policy {policy.registered_name!r} decides from the system's state (an online learner or "
                f"a partitioner)")
    if record_timeline:
        return "a timeline is recorded (set timeline: false)"
    return None


def scenario_why_not(sc: Scenario) -> str | None:
    """What of the scenario itself keeps the fast engine out (None: nothing)."""
    if sc.mobility is not None:
        return "mobility (handover) is set"
    catalogue = sc.catalogue()
    for name, t in sc.tiers.items():
        if t.failures is not None:
            return f"tiers.{name} fails"
        if t.background is not None:
            return f"tiers.{name} has background load"
        if t.batching is not None:
            return f"tiers.{name} batches"
        if t.offload is not None:
            return f"tiers.{name} offloads to peers"
        spec = catalogue[t.device]
        if spec.units:
            return f"tiers.{name} runs on a device with units ({t.device})"
        throttles = spec.thermal.enabled if t.throttling is None else t.throttling  # as Scenario.thermal_for
        if throttles and spec.servers > 1:
            return f"tiers.{name} throttles with {spec.servers} servers"
    for name, link in sc.links.items():
        if link.shared:
            return f"links.{name} is shared"
        if link.from_tier == link.to_tier:
            return f"links.{name} is a peer link"
        if link.failures is not None:
            return f"links.{name} fails"
    radio = catalogue[next(iter(sc.tiers.values())).device].radio
    if radio is not None and radio.rrc is not None:
        return "the mobiles' radio has RRC states"
    return None
