"""Policies by name: ``@register("name")`` on a Policy dataclass; ``make_policy(spec)`` builds one.

Every module of this package is imported on first use (:func:`load_all`), so adding a policy touches
one file: a new module that defines a decorated class.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, unknown_key
from ..failures import parse_failover
from ..schema import build, convert

if TYPE_CHECKING:
    from .base import Policy

REGISTRY: dict[str, type[Policy]] = {}
_PACKAGE = __name__.rsplit(".", 1)[0]
_loaded = False


def register(name: str):
    """Class decorator: make a policy available under ``name`` in scenarios."""

    def deco(cls: type[Policy]) -> type[Policy]:
        if name in REGISTRY:
            raise ValueError(f"policy name {name!r} registered twice")
        REGISTRY[name] = cls
        cls.registered_name = name
        return cls

    return deco


def load_all() -> dict[str, type[Policy]]:
    """Import every policy module of this package; returns the registry."""
    global _loaded
    if not _loaded:
        for mod in pkgutil.iter_modules([str(Path(__file__).parent)]):
            if mod.name not in ("base", "registry"):
                importlib.import_module(f"{_PACKAGE}.{mod.name}")
        _loaded = True
    return REGISTRY


def policy_label(spec: str | dict) -> str:
    """The name a policy spec appears under in results (``label`` if given)."""
    if isinstance(spec, str):
        return spec
    return str(spec.get("label") or spec.get("name"))


def make_policy(spec: str | dict[str, Any], path: str = "policies") -> Policy:
    """Build a policy from ``name`` or ``{name: ..., label: ..., <params>}``."""
    load_all()
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, dict) or "name" not in spec:
        raise ConfigError(f"'{path}' must be a policy name or a mapping with a 'name' key, got {spec!r}")
    name = spec["name"]
    if name not in REGISTRY:
        raise unknown_key(str(name), path, REGISTRY, what="policy")
    if spec.get("failover") is not None:
        parse_failover(spec["failover"], f"{path}({name}).failover")
    if spec.get("units") is not None:
        convert(dict[str, dict[str, list[int]]], spec["units"], f"{path}({name}).units")
    params = {k: v for k, v in spec.items() if k not in ("name", "label", *AROUND)}
    return build(REGISTRY[name], params, f"{path}({name})")


# keys of a policy entry that set the simulation around the policy, not the policy itself: its own
# failover rule (simulator/failures.py) and unit placement per tier (simulator/units.py)
AROUND = ("failover", "units")


def describe(cls: type[Policy]) -> str:
    """First line of a policy's docstring (for ``run_sim.py list``)."""
    doc = (cls.__doc__ or "").strip().splitlines()
    return doc[0] if doc else ""


def resolved_spec(policy: Policy, label: str | None = None, entry: str | dict | None = None) -> dict[str, Any]:
    """The spec that rebuilds ``policy``: its name, label and every parameter with defaults filled in, and
    what its scenario ``entry`` sets around it (its own ``failover`` rule, its ``units`` placement)."""
    from ..schema import to_plain

    spec: dict[str, Any] = {"name": policy.registered_name}
    if label and label != policy.registered_name:
        spec["label"] = label
    spec |= to_plain(policy)
    if isinstance(entry, dict):
        if entry.get("failover") is not None:
            spec["failover"] = to_plain(parse_failover(entry["failover"], "failover"))
        if entry.get("units") is not None:
            spec["units"] = entry["units"]
    return spec


def parameters(cls: type[Policy]) -> list[str]:
    """The policy's parameter names (its init fields)."""
    return [f.name for f in dataclasses.fields(cls) if f.init]
