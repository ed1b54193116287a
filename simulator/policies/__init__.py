"""Exit and offload policies, registered by name.

Adding a policy touches one file: a new module in this package that defines a ``Policy`` dataclass
decorated with ``@register("name")``; every module here is imported on first use.
"""

from __future__ import annotations

import importlib
import pkgutil

from .base import REGISTRY, Plan, Policy, PolicyContext, Request, SystemView, make_policy, register

_loaded = False


def load_all() -> dict[str, type[Policy]]:
    """Import every policy module in this package; returns the registry."""
    global _loaded
    if not _loaded:
        for mod in pkgutil.iter_modules(__path__):
            if mod.name != "base":
                importlib.import_module(f"{__name__}.{mod.name}")
        _loaded = True
    return REGISTRY


__all__ = ["REGISTRY", "Plan", "Policy", "PolicyContext", "Request", "SystemView", "load_all",
           "make_policy", "register"]
