"""Exit and offload policies, registered by name.

Adding a policy touches one file: a new module in this package that defines a ``Policy`` dataclass
decorated with ``@register("name")`` (see :mod:`.registry`); every module here is imported on first use.
"""

from __future__ import annotations

from .base import Plan, Policy, PolicyContext, PolicyContractError, Request, SystemView
from .registry import REGISTRY, load_all, make_policy, register

__all__ = ["REGISTRY", "Plan", "Policy", "PolicyContext", "PolicyContractError", "Request", "SystemView",
           "load_all", "make_policy", "register"]
