"""Scenarios: YAML -> a validated :class:`Scenario` (typed, defaults filled in).

``load_scenario(path, overrides)`` reads a file, applies ``--set dotted.key=value`` overrides (values
parsed as YAML), checks every key and value, and returns the scenario. Errors are one line naming the
key, its path and the closest valid key.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .device import DeviceSpec, resolve_catalogue
from .engines import ENGINES
from .errors import ConfigError, unknown_key
from .mobility import MobilityConfig
from .network import LinkConfig, PayloadConfig
from .policies.registry import make_policy, policy_label
from .profile import ProfileError, get_profile
from .schema import build, positive, require, to_plain
from .thermal import ThermalSpec
from .workload import WorkloadConfig

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class TierConfig:
    """A tier: a device class, how many of them, and the layers it runs (``[first, last]``, 1-based)."""

    device: str
    layers: list[int] = field(default_factory=list)
    count: int = 1
    queue_capacity: int | None = None
    ambient_c: float | None = None
    throttling: bool | None = None

    def check(self, path: str) -> None:
        require(self.count >= 1, f"'{path}.count' must be at least 1, got {self.count}")
        require(len(self.layers) in (0, 2), f"'{path}.layers' must be [first, last] or [] (empty tier)")
        if self.queue_capacity is not None:
            require(self.queue_capacity >= 0, f"'{path}.queue_capacity' must be non-negative")


@dataclass
class CostConfig:
    """The early-exit papers' abstract cost: lambda per layer computed + a cost per link crossed."""

    lambda_per_layer: float = 0.1
    offload: float | list[float] = 1.0

    def check(self, path: str) -> None:
        positive(self.lambda_per_layer, f"{path}.lambda_per_layer", allow_zero=True)
        for i, c in enumerate(self.offload if isinstance(self.offload, list) else [self.offload]):
            positive(c, f"{path}.offload[{i}]", allow_zero=True)


def _policies(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"'{path}' must be a non-empty list of policies")
    labels = set()
    for i, spec in enumerate(value):
        make_policy(spec, f"{path}[{i}]")
        label = policy_label(spec)
        require(label not in labels, f"'{path}[{i}]': policy label {label!r} used twice (set 'label')")
        labels.add(label)
    return list(value)


@dataclass
class Scenario:
    """A complete simulation scenario."""

    profile: str
    tiers: dict[str, TierConfig]
    links: dict[str, LinkConfig]
    policies: list[Any] = field(metadata={"convert": _policies})
    name: str = "scenario"
    description: str = ""
    seed: int = 0
    replications: int = 1
    workload: WorkloadConfig = field(default_factory=WorkloadConfig)
    payload: PayloadConfig = field(default_factory=PayloadConfig)
    cost: CostConfig = field(default_factory=CostConfig)
    deadline_ms: float | None = None
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)
    timeline: bool = True
    engine: str = "simpy"
    mobility: MobilityConfig | None = None  # handover (simulator/mobility.py)

    def check(self, path: str) -> None:
        require(self.replications >= 1, f"'replications' must be at least 1, got {self.replications}")
        require(len(self.tiers) >= 1, "'tiers' must define at least one tier")
        if self.engine not in ENGINES:
            raise unknown_key(self.engine, "engine", ENGINES, what="engine")
        self._resolve_links()
        positive(self.deadline_ms, "deadline_ms")
        catalogue = resolve_catalogue(self.devices)
        for name, t in self.tiers.items():
            if t.device not in catalogue:
                raise unknown_key(t.device, f"tiers.{name}.device", catalogue, what="device class")
        if isinstance(self.cost.offload, list):
            require(len(self.cost.offload) == len(self.links),
                    f"'cost.offload' must have {len(self.links)} entries (one per link)")
        for label, t in self.tiers.items():
            for k in t.layers:
                require(k >= 1, f"'tiers.{label}.layers' must be >= 1")
        if self.mobility is not None:
            counts = [t.count for t in self.tiers.values()]
            require(len(counts) >= 2, "'mobility' needs a second tier to hand over between")
            self.mobility.validate(counts[0], counts[1])

    def _resolve_links(self) -> None:
        """Check ``from``/``to`` of every link and fill them in where omitted (consecutive tiers in order)."""
        names = list(self.tiers)
        index = {n: i for i, n in enumerate(names)}
        chain = " -> ".join(names)
        implicit, pairs = [], {}
        for lname, link in self.links.items():
            if (link.from_tier is None) != (link.to_tier is None):
                raise ConfigError(f"'links.{lname}' must give both 'from' and 'to', or neither")
            if link.from_tier is None:
                implicit.append(link)
                continue
            for key, tier in (("from", link.from_tier), ("to", link.to_tier)):
                if tier not in index:
                    raise unknown_key(tier, f"links.{lname}.{key}", names, what="tier")
            pair = (index[link.from_tier], index[link.to_tier])
            require(pair[0] < pair[1], f"'links.{lname}': 'from' must be a tier before 'to' ({chain}); "
                                       f"got {link.from_tier} -> {link.to_tier}")
            require(pair not in pairs, f"'links.{lname}' joins {link.from_tier} -> {link.to_tier}, "
                                       f"as 'links.{pairs.get(pair)}' already does")
            pairs[pair] = lname
        missing = [(i, i + 1) for i in range(len(names) - 1) if (i, i + 1) not in pairs]
        if not pairs:
            require(len(self.links) == len(names) - 1,
                    f"'links' must define {len(names) - 1} link(s), one between each pair of consecutive "
                    f"tiers ({chain}), got {len(self.links)}")
        elif len(implicit) != len(missing):
            gaps = ", ".join(f"{names[a]} -> {names[b]}" for a, b in missing) or "none"
            raise ConfigError(f"'links': every pair of consecutive tiers needs a link (routes without a direct "
                              f"link climb tier by tier); links without 'from'/'to' fill the gaps in order. "
                              f"Gaps: {gaps}; links without 'from'/'to': {len(implicit)}")
        for link, (a, b) in zip(implicit, missing, strict=True):
            link.from_tier, link.to_tier = names[a], names[b]

    # -- derived -----------------------------------------------------------------------------
    @property
    def tier_names(self) -> list[str]:
        return list(self.tiers)

    def catalogue(self) -> dict[str, DeviceSpec]:
        """Built-in device classes plus this scenario's (resolved once per scenario object)."""
        key = repr(self.devices)
        cached = self.__dict__.get("_catalogue")
        if cached is None or cached[0] != key:
            cached = (key, resolve_catalogue(self.devices))
            self.__dict__["_catalogue"] = cached
        return cached[1]

    def offload_costs(self) -> list[float]:
        o = self.cost.offload
        return list(o) if isinstance(o, list) else [float(o)] * len(self.links)

    def thermal_for(self, tier: str) -> ThermalSpec:
        """The tier's device thermal model with the tier's ambient/throttling overrides."""
        t = self.tiers[tier]
        spec = copy.deepcopy(self.catalogue()[t.device].thermal)
        if t.ambient_c is not None:
            if spec.initial_c is None or spec.initial_c == spec.ambient_c:
                spec.initial_c = t.ambient_c
            spec.ambient_c = t.ambient_c
        if t.throttling is not None:
            spec.enabled = t.throttling
        return spec

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)


def check_against_profile(sc: Scenario, num_layers: int) -> None:
    """Tier ranges must be inside the model, contiguous and in order."""
    nxt = 1
    for name, t in sc.tiers.items():
        if not t.layers:
            continue
        first, last = t.layers
        require(1 <= first <= last <= num_layers,
                f"'tiers.{name}.layers' {t.layers} is outside the model's layers 1..{num_layers}")
        require(first == nxt, f"'tiers.{name}.layers' must start at layer {nxt} (tiers run contiguous "
                              f"ranges in order), got {first}")
        nxt = last + 1
    require(nxt == num_layers + 1, f"the tiers cover layers 1..{nxt - 1} but the model has {num_layers}")


def resolve_file(value: str, base: Path | None) -> Path:
    """A relative path is tried against the working directory, the scenario's folder, the repo root."""
    from .traces import expand_path

    p = expand_path(value)
    if p.is_absolute() or p.exists():
        return p
    for root in (base, REPO_ROOT):
        if root is not None and (root / p).exists():
            return root / p
    return p


def set_dotted(data: dict, key: str, value: Any) -> None:
    """Set ``a.b.c`` (list items by index: ``a.0.b``) in nested plain data."""
    parts = key.split(".")
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        path = ".".join(parts[: i + 1])
        if isinstance(node, list):
            try:
                node = node[int(part)]
            except (ValueError, IndexError):
                raise ConfigError(f"--set {key}: '{path}' is not an index of the list") from None
            continue
        if not isinstance(node, dict):
            raise ConfigError(f"--set {key}: '{'.'.join(parts[:i])}' is not a mapping")
        node = node.setdefault(part, {})
    last = parts[-1]
    if isinstance(node, list):
        try:
            node[int(last)] = value
        except (ValueError, IndexError):
            raise ConfigError(f"--set {key}: '{last}' is not an index of the list") from None
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise ConfigError(f"--set {key}: parent is not a mapping")


def parse_override(item: str) -> tuple[str, Any]:
    """``key=value`` with the value parsed as YAML."""
    if "=" not in item:
        raise ConfigError(f"--set expects dotted.key=value, got {item!r}")
    key, raw = item.split("=", 1)
    try:
        return key.strip(), yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {key}: value is not valid YAML: {e}") from None


def read_yaml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"scenario file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{p}{where}: not valid YAML ({getattr(e, 'problem', e)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: a scenario must be a YAML mapping")
    return data


def scenario_from_dict(data: dict[str, Any], base: Path | None = None,
                       overrides: list[str] | dict[str, Any] | None = None) -> Scenario:
    """Validate plain data (after applying overrides) into a Scenario, resolving file paths."""
    data = copy.deepcopy(data)
    items = overrides.items() if isinstance(overrides, dict) else map(parse_override, overrides or [])
    for key, value in items:
        set_dotted(data, key, value)
    if isinstance(data.get("profile"), str):
        data["profile"] = str(resolve_file(data["profile"], base))
    for link in (data.get("links") or {}).values():
        for direction in ("bandwidth", "downlink", "quality"):
            spec = link.get(direction) if isinstance(link, dict) else None
            if isinstance(spec, dict) and spec.get("model") == "trace" and isinstance(spec.get("file"), str):
                spec["file"] = str(resolve_file(spec["file"], base))
    wl = data.get("workload")
    if isinstance(wl, dict) and isinstance(wl.get("file"), str):
        wl["file"] = str(resolve_file(wl["file"], base))
    sc = build(Scenario, data)
    try:
        profile = get_profile(sc.profile)
    except ProfileError as e:
        raise ConfigError(f"'profile': {e}") from None
    check_against_profile(sc, profile.num_layers)
    return sc


def load_scenario(path: str | Path, overrides: list[str] | dict[str, Any] | None = None) -> Scenario:
    """Read, override and validate a scenario file."""
    p = Path(path)
    return scenario_from_dict(read_yaml(p), p.resolve().parent, overrides)
