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

from .background import BackgroundSpec
from .batching import BatchingConfig
from .device import DeviceSpec, resolve_catalogue
from .engines import ENGINES
from .errors import ConfigError, unknown_key
from .failures import FailoverSpec, FailureSpec
from .mobility import MobilityConfig
from .network import LinkConfig, PayloadConfig
from .offload import OffloadConfig
from .policies.registry import make_policy, policy_label, resolved_spec
from .profile import ProfileError, get_profile
from .schema import build, positive, require, to_plain
from .thermal import ThermalSpec
from .units import check_placement, policy_placements
from .workload import MAX_REQUESTS, WorkloadConfig

REPO_ROOT = Path(__file__).resolve().parent.parent
MAX_YAML_BYTES = 10 * 2**20
MAX_MESSAGE_S = 3600.0  # the longest the smallest message (a header, a reply) may take over a link
# Bounds on what one run may cost, checked before anything is allocated: simulated time (the last arrival;
# beyond it float seconds lose sub-millisecond precision), expected counts of requests and of other events
# (background jobs, failures, handovers: MAX_REQUESTS each), and bandwidth steps generated over the run.
MAX_HORIZON_S = 1e9
MAX_BANDWIDTH_STEPS = 5 * 10**7


@dataclass
class TierConfig:
    """A tier: a device class, how many of them, and the layers it runs (``[first, last]``, 1-based).

    ``queue_capacity`` (per device; None: unlimited) is its waiting room: an arrival is dropped when every
    server of the device is busy and ``queue_capacity`` requests already wait; 0 means no waiting room, so a
    request is dropped exactly when no server is free (a loss system), never at an idle device. On a
    batching device "busy" means running a batch: requests gathering into a batch at a free server are
    never dropped for it.
    """

    device: str
    layers: list[int] = field(default_factory=list)
    count: int = 1
    queue_capacity: int | None = None
    ambient_c: float | None = None
    throttling: bool | None = None
    batching: BatchingConfig | None = None
    failures: FailureSpec | None = None  # down windows (simulator/failures.py)
    background: BackgroundSpec | None = None  # another application's jobs (simulator/background.py)
    offload: OffloadConfig | None = None  # a busy device sends stretches to peers (simulator/offload.py)
    units: dict[str, list[int]] | None = None  # layers per unit of the device class (simulator/units.py)

    def check(self, path: str) -> None:
        require(1 <= self.count <= 100_000, f"'{path}.count' must be in 1..100000, got {self.count}")
        require(len(self.layers) in (0, 2), f"'{path}.layers' must be [first, last] or [] (empty tier)")
        if self.queue_capacity is not None:
            require(self.queue_capacity >= 0, f"'{path}.queue_capacity' must be non-negative")


COST_PRESETS: dict[str, dict[str, Any]] = {
    # today's formula (and the default): lambda for every layer computed wherever it runs, and an
    # offload cost for every link a request's state crosses
    "per-link": {"lambda_per_layer": 0.1, "offload": 1.0},
    # the SplitEE authors' code (Bajpai, Trivedi & Hanawal 2023; github.com/Div290/SplitEE, SplitEE.py,
    # reward_cost_yPred_generator): cost = lambda * (layers on the device) + o when offloaded; layers on
    # the server are free; lambda = 1/10, o swept over 0.1..0.6 (0.5 here); one o per offload, whatever
    # the route from the device
    "splitee-code": {"lambda_per_layer": {"@first": 0.1, "@others": 0.0}, "offload": {"@first->*": 0.5}},
}


@dataclass
class CostConfig:
    """The early-exit papers' abstract cost: lambda per layer computed + a cost per offload.

    ``preset`` (``per-link``, the default, or ``splitee-code``) fills what is not given.
    ``lambda_per_layer``: one number, or ``{tier: lambda}`` (tiers not named cost 0).
    ``offload``: one number per link crossed, a list with one per link (``links`` order), or per route
    ``{"mobile->edge": o, "mobile->cloud": o, "edge->cloud": o}`` (paid once per move between those
    tiers, whatever links it crosses; routes not named cost 0).
    """

    preset: str = "per-link"
    lambda_per_layer: float | dict[str, float] | None = None
    offload: float | list[float] | dict[str, float] | None = None

    def check(self, path: str) -> None:
        if self.preset not in COST_PRESETS:
            raise unknown_key(self.preset, f"{path}.preset", COST_PRESETS, what="cost preset")
        lam = self.lambda_per_layer
        for k, v in (lam.items() if isinstance(lam, dict) else [("", lam)]):
            positive(v, f"{path}.lambda_per_layer" + (f".{k}" if k else ""), allow_zero=True)
        o = self.offload
        items = o.items() if isinstance(o, dict) else enumerate(o) if isinstance(o, list) else [("", o)]
        for k, v in items:
            positive(v, f"{path}.offload" + (f"[{k}]" if isinstance(k, int) else f".{k}" if k else ""),
                     allow_zero=True)

    def resolve(self, tiers: list[str], n_links: int, path: str = "cost") -> None:
        """Fill ``lambda_per_layer`` and ``offload`` from the preset and check names against the tiers."""
        preset = COST_PRESETS[self.preset]
        if self.lambda_per_layer is None:
            lam = preset["lambda_per_layer"]
            self.lambda_per_layer = ({t: lam["@first"] if i == 0 else lam["@others"] for i, t in enumerate(tiers)}
                                     if isinstance(lam, dict) else lam)
        if self.offload is None:
            o = preset["offload"]
            self.offload = {f"{tiers[0]}->{t}": o["@first->*"] for t in tiers[1:]} if isinstance(o, dict) else o
        if isinstance(self.lambda_per_layer, dict):
            for t in self.lambda_per_layer:
                if t not in tiers:
                    raise unknown_key(t, f"{path}.lambda_per_layer", tiers, what="tier")
        if isinstance(self.offload, list):
            require(len(self.offload) == n_links, f"'{path}.offload' must have {n_links} entries (one per link)")
        elif isinstance(self.offload, dict):
            for route in self.offload:
                a, _, b = route.partition("->")
                a, b = a.strip(), b.strip()
                require(a in tiers and b in tiers and tiers.index(a) < tiers.index(b),
                        f"'{path}.offload': route {route!r} must be 'lower->higher' between tiers "
                        f"({' -> '.join(tiers)})")

    def per_tier_lambda(self, tiers: list[str]) -> list[float]:
        lam = self.lambda_per_layer
        return [float(lam.get(t, 0.0)) for t in tiers] if isinstance(lam, dict) else [float(lam)] * len(tiers)

    def per_route_offload(self, tiers: list[str]) -> dict[tuple[int, int], float]:
        """(from tier index, to tier index) -> cost, when the offload cost is given per route."""
        if not isinstance(self.offload, dict):
            return {}
        out = {}
        for route, v in self.offload.items():
            a, _, b = route.partition("->")
            out[(tiers.index(a.strip()), tiers.index(b.strip()))] = float(v)
        return out


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
    failover: FailoverSpec | None = None  # default failover rule of the policies (drop after 500 ms)
    mobility: MobilityConfig | None = None  # handover (simulator/mobility.py)

    def check(self, path: str) -> None:
        require(1 <= self.replications <= 10_000, f"'replications' must be in 1..10000, got {self.replications}")
        require(0 <= self.seed < 2**63, f"'seed' must be a non-negative integer below 2**63, got {self.seed}")
        require(len(self.tiers) >= 1, "'tiers' must define at least one tier")
        if self.engine not in ENGINES:
            raise unknown_key(self.engine, "engine", ENGINES, what="engine")
        self._resolve_links()
        self._check_offload()
        self._check_message_times()
        positive(self.deadline_ms, "deadline_ms")
        catalogue = resolve_catalogue(self.devices)
        for name, t in self.tiers.items():
            if t.device not in catalogue:
                raise unknown_key(t.device, f"tiers.{name}.device", catalogue, what="device class")
            if t.units is not None:
                check_placement(t.units, catalogue[t.device], t.device, f"tiers.{name}.units")
            if catalogue[t.device].units and t.batching is not None:
                raise ConfigError(f"'tiers.{name}.batching': device class '{t.device}' has units; batching "
                                  f"on a device with units is not supported")
        self._check_policy_units(catalogue)
        self.cost.resolve(list(self.tiers), len(self.links))
        for label, t in self.tiers.items():
            for k in t.layers:
                require(k >= 1, f"'tiers.{label}.layers' must be >= 1")
        if self.mobility is not None:
            counts = [t.count for t in self.tiers.values()]
            require(len(counts) >= 2, "'mobility' needs a second tier to hand over between")
            self.mobility.validate(counts[0], counts[1])
        self._check_costs()

    def _check_policy_units(self, catalogue: dict[str, DeviceSpec], num_layers: int | None = None) -> None:
        """A policy's own ``units`` placement names tiers of the scenario and units their classes have."""
        for i, spec in enumerate(self.policies):
            for tier, placement in policy_placements(spec).items():
                path = f"policies[{i}]({policy_label(spec)}).units"
                if tier not in self.tiers:
                    raise unknown_key(tier, path, self.tiers, what="tier")
                device = self.tiers[tier].device
                check_placement(placement, catalogue[device], device, f"{path}.{tier}", num_layers)

    def _check_costs(self) -> None:
        """Refuse, before anything is allocated, a run whose expected size is beyond the bounds above."""
        wl, mobiles = self.workload, next(iter(self.tiers.values())).count
        horizon, expected = wl.expected_horizon_s(mobiles)
        if expected > MAX_REQUESTS:  # only without 'requests' (bounded by itself)
            raise ConfigError(f"'workload.duration_s' {wl.duration_s:g} s at {wl.mean_rate_per_s():g} requests/s "
                              f"per mobile ({mobiles} mobile(s)) means about {expected:.3g} requests, more than "
                              f"{MAX_REQUESTS:.0e}: shorten it or set 'workload.requests'")
        require(horizon <= MAX_HORIZON_S,
                f"requests would arrive over about {horizon:.3g} s of simulated time, more than "
                f"{MAX_HORIZON_S:.0e} s: check 'workload' (rate_per_s, requests, duration_s)")

        def bound(count: float, key: str, what: str) -> None:
            if count > MAX_REQUESTS:
                raise ConfigError(f"'{key}' means about {count:.3g} {what} over the {horizon:.3g} s of arrivals, "
                                  f"more than {MAX_REQUESTS:.0e}")

        for name, t in self.tiers.items():
            if t.background is not None:
                bound(t.background.rate_per_s * horizon * t.count, f"tiers.{name}.background.rate_per_s",
                      "background jobs")
            if t.failures is not None and t.failures.mtbf_s is not None:
                bound(horizon / (t.failures.mtbf_s + t.failures.mttr_s) * t.count, f"tiers.{name}.failures.mtbf_s",
                      "failures")
        for lname, link in self.links.items():
            if link.failures is not None and link.failures.mtbf_s is not None:
                bound(horizon / (link.failures.mtbf_s + link.failures.mttr_s) * self.tiers[link.from_tier].count,
                      f"links.{lname}.failures.mtbf_s", "link failures")
        if self.mobility is not None and self.mobility.mean_dwell_s is not None:
            bound(horizon / self.mobility.mean_dwell_s * mobiles, "mobility.mean_dwell_s", "handovers")
        steps = 0.0
        for link in self.links.values():
            paths = 1 if link.same_realisation else self.tiers[link.from_tier].count
            for spec in (link.bandwidth, link.down_spec, link.quality):
                if spec is not None:
                    steps += paths * horizon / spec.shortest_mean_step_s()
        require(steps <= MAX_BANDWIDTH_STEPS,
                f"the links' bandwidth paths would take about {steps:.3g} steps over the {horizon:.3g} s of "
                f"arrivals, more than {MAX_BANDWIDTH_STEPS:.0e}: shorten the run or lengthen the steps "
                f"(interval_s, mean_dwell_s)")

    def _check_message_times(self) -> None:
        """Bound what a run may cost: every message carries ``header_bytes`` up and ``reply_bytes`` down;
        each must cross every link within :data:`MAX_MESSAGE_S` at the link's long-run mean bandwidth."""
        for lname, link in self.links.items():
            for key, spec, what in (("bandwidth", link.bandwidth, "header_bytes"),
                                    ("downlink" if link.downlink is not None else "bandwidth", link.down_spec,
                                     "reply_bytes")):
                nbytes = getattr(self.payload, what)
                seconds = nbytes * 8 / (spec.long_run_mbps() * 1e6)
                require(seconds <= MAX_MESSAGE_S,
                        f"'payload.{what}' {nbytes} takes {seconds:.3g} s over 'links.{lname}.{key}' at its "
                        f"long-run mean; a message may take at most {MAX_MESSAGE_S:g} s")

    def _check_offload(self) -> None:
        """Horizontal offload (simulator/offload.py): a tier above the first with several devices, and its
        peer link (``from`` and ``to`` that tier). A peer link no tier offloads over carries nothing (so
        ``--set tiers.edge.offload=null`` turns offload off); it may not be shared."""
        for i, (name, t) in enumerate(self.tiers.items()):
            o, path = t.offload, f"tiers.{name}.offload"
            if o is None:
                continue
            require(i > 0, f"'{path}': the first tier's devices are the requests' own; offload is for the tiers "
                           f"above it")
            require(t.count >= 2, f"'{path}' needs peers: 'tiers.{name}.count' is {t.count}, at least 2 needed")
            peers = [n for n, link in self.links.items() if link.from_tier == name and link.to_tier == name]
            hint = (f"this scenario has '{peers[0]}'" if peers else
                    f"none yet: add one, e.g. links: {{peer: {{from: {name}, to: {name}, rtt_ms: 1, "
                    f"bandwidth: {{model: constant, mbps: 1000}}}}}}")
            require(o.link is not None, f"missing required key '{path}.link': name the peer link, a link with "
                                        f"from: {name}, to: {name} ({hint})")
            if o.link not in self.links:
                raise unknown_key(o.link, f"{path}.link", self.links, what="link")
            link = self.links[o.link]
            require(link.from_tier == name and link.to_tier == name,
                    f"'{path}.link' '{o.link}' joins {link.from_tier} -> {link.to_tier}; a peer link of "
                    f"'{name}' must have from: {name}, to: {name}")
        for lname, link in self.links.items():
            if link.from_tier is not None and link.from_tier == link.to_tier:
                require(not link.shared, f"'links.{lname}': a peer link cannot be shared")
                require(link.failures is None, f"'links.{lname}.failures': a peer link cannot fail")

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
            require(pair[0] <= pair[1], f"'links.{lname}': 'from' must be a tier before 'to' ({chain}), or the "
                                        f"same tier for a peer link (tiers.<name>.offload); "
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
        """Offload cost of each link (zero when the cost is given per route)."""
        o = self.cost.offload
        if isinstance(o, dict):
            return [0.0] * len(self.links)
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

    def resolved(self) -> dict[str, Any]:
        """Plain data that rebuilds this scenario from a run folder alone: every default filled in, the
        device classes the tiers use (and any the scenario defines) written out in full, and every policy
        with all its parameters."""
        d = self.to_dict()
        catalogue = self.catalogue()
        names = sorted({t.device for t in self.tiers.values()} | set(self.devices))
        d["devices"] = {name: to_plain(catalogue[name]) for name in names}
        d["policies"] = [resolved_spec(make_policy(spec), policy_label(spec), spec) for spec in self.policies]
        return d


def check_against_profile(sc: Scenario, num_layers: int) -> None:
    """Tier ranges must be inside the model, contiguous and in order; unit placements inside the model."""
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
    catalogue = sc.catalogue()
    for name, t in sc.tiers.items():
        if t.units is not None:
            check_placement(t.units, catalogue[t.device], t.device, f"tiers.{name}.units", num_layers)
    sc._check_policy_units(catalogue, num_layers)


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
    if p.stat().st_size > MAX_YAML_BYTES:
        raise ConfigError(f"{p}: {p.stat().st_size} bytes is too large for a scenario (limit {MAX_YAML_BYTES})")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not a text (UTF-8) file") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{p}{where}: not valid YAML ({getattr(e, 'problem', e)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: a scenario must be a YAML mapping")
    return data


def resolve_paths(data: dict[str, Any], base: Path | None, absolute: bool = False,
                  written: dict[str, str] | None = None) -> dict[str, Any]:
    """Resolve, in place, the file paths of plain scenario data (profile, trace files, arrival file) as
    :func:`resolve_file` does; ``absolute``: also make them absolute, so the data means the same files
    in a process with another working directory, environment or installation (a sweep's workers);
    ``written`` collects resolved path -> the path as written (for error messages)."""
    def fix(value: str) -> str:
        p = resolve_file(value, base)
        out = str(p.absolute() if absolute else p)
        if written is not None and out != value:
            written[out] = value
        return out

    if isinstance(data.get("profile"), str):
        data["profile"] = fix(data["profile"])
    links = data.get("links")
    for link in (links.values() if isinstance(links, dict) else ()):
        for direction in ("bandwidth", "downlink", "quality"):
            spec = link.get(direction) if isinstance(link, dict) else None
            if isinstance(spec, dict) and spec.get("model") == "trace" and isinstance(spec.get("file"), str):
                spec["file"] = fix(spec["file"])
    wl = data.get("workload")
    if isinstance(wl, dict) and isinstance(wl.get("file"), str):
        wl["file"] = fix(wl["file"])
    mob = data.get("mobility")
    if isinstance(mob, dict) and isinstance(mob.get("file"), str):
        mob["file"] = fix(mob["file"])
    return data


def scenario_from_dict(data: dict[str, Any], base: Path | None = None,
                       overrides: list[str] | dict[str, Any] | None = None) -> Scenario:
    """Validate plain data (after applying overrides) into a Scenario, resolving file paths."""
    data = copy.deepcopy(data)
    items = overrides.items() if isinstance(overrides, dict) else map(parse_override, overrides or [])
    for key, value in items:
        set_dotted(data, key, value)
    written: dict[str, str] = {}  # resolved path -> as written (what error messages show)
    resolve_paths(data, base, written=written)
    try:
        sc = build(Scenario, data)
        try:
            profile = get_profile(sc.profile)
        except ProfileError as e:
            raise ConfigError(f"'profile': {e}") from None
        check_against_profile(sc, profile.num_layers)
    except ConfigError as e:
        raise ConfigError(as_written(str(e), written)) from None
    return sc


def as_written(message: str, written: dict[str, str]) -> str:
    """``message`` with every resolved file path put back as the scenario wrote it (``${VAR}``s not
    expanded, relative paths relative)."""
    for resolved in sorted(written, key=len, reverse=True):
        message = message.replace(resolved, written[resolved])
    return message


def load_scenario(path: str | Path, overrides: list[str] | dict[str, Any] | None = None) -> Scenario:
    """Read, override and validate a scenario file."""
    p = Path(path)
    return scenario_from_dict(read_yaml(p), p.resolve().parent, overrides)
