"""Sweep files: a base scenario plus axes -> a lazily generated sequence of conditions.

A sweep file is YAML with these top-level keys::

    name: bw-load                      # optional (default: the file's stem)
    base: ../default.yaml              # path relative to this file, or an inline scenario mapping
    set:                               # optional: fixed changes to the base (like --set; the
      workload.requests: 1000          # command line's --set is applied after these)
    seed: 7                            # optional: overrides the base scenario's seed
    replications: 3                    # independent replications per condition (default: the base's)
    policies: [all-mobile, all-cloud]  # optional: overrides the base's policies
    grid:                              # cartesian product of value lists
      links.uplink.bandwidth.mean_mbps: [1, 5, 20]
      workload.rate_per_s: [2, 5, 10]
    zip:                               # lists varied together (equal lengths); a list of such
      tiers.mobile.layers: [[1, 2], [1, 4]]   # mappings gives several groups, crossed
      tiers.edge.layers: [[3, 6], [5, 6]]
    sample:                            # n points over ranges, Latin hypercube or Sobol (scipy.stats.qmc)
      n: 2000
      method: lhs                      # lhs | sobol
      seed: 1
      links.uplink.rtt_ms: {uniform: [10, 120]}
      workload.rate_per_s: {loguniform: [0.5, 20]}
      tiers.mobile.count: {uniform: [1, 8]}  # integer keys: integers lo..hi, each equally likely
      payload.dtype: {choice: [fp16, int8]}

Blocks are crossed: conditions = grid x zip groups x sample points, in that order (the last axis of
the grid varies fastest). Every axis key is a dotted key of the scenario (``a.b.c``; list items by
index, ``policies.1.thresholds``). A value list may be written ``{glob: "${EESIM_SHARED_DATA}/x/*"}``:
the matching files, sorted (relative patterns are relative to the sweep file).

Seeds (common random numbers): every condition uses the same base seed and replication ``r`` is the
engine's ``replication`` argument; the engine draws each random stream from
``SeedSequence(seed, spawn_key=(r, stream, ...))`` -- the children ``SeedSequence(seed).spawn`` would
give -- so conditions and policies see the same arrivals and samples for a given replication, and no
result depends on the number of workers or the order runs finish in.
"""

from __future__ import annotations

import copy
import glob as globmod
import hashlib
import itertools
import json
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import parse_override, read_yaml, scenario_from_dict, set_dotted
from ..errors import ConfigError, closest, unknown_key
from ..traces import expand_path

TOP_KEYS = ("name", "description", "base", "set", "seed", "replications", "policies", "grid", "zip", "sample")
SAMPLE_KEYS = ("n", "method", "seed")
METHODS = ("lhs", "sobol")
DISTS = ("uniform", "loguniform", "choice")


@dataclass
class Axis:
    """One swept key: a list of values (grid, zip) or a distribution (sample)."""

    key: str
    block: str  # grid | zip<i> | sample
    values: list[Any] | None = None  # grid / zip
    dist: str | None = None  # sample: uniform | loguniform | choice
    bounds: list[Any] | None = None  # sample: [lo, hi] or the choices
    integer: bool = False  # sample: the key is an integer in the base scenario
    dtype: str = "object"  # column type in the results: int64 | float64 | bool | string

    def describe(self) -> str:
        if self.values is not None:
            shown = ", ".join(_short(v) for v in self.values[:6]) + (", ..." if len(self.values) > 6 else "")
            return f"{self.key} ({self.block}, {len(self.values)} values: {shown})"
        return f"{self.key} (sample, {self.dist} {self.bounds}{', integer' if self.integer else ''})"


def _short(v: Any) -> str:
    s = cell(v)
    s = s if isinstance(s, str) else repr(s)
    return s if len(s) <= 40 else "..." + s[-37:]


def cell(v: Any) -> Any:
    """A value as it appears in a results column (lists and mappings as JSON text)."""
    if isinstance(v, list | tuple | dict):
        return json.dumps(v, sort_keys=True)
    if isinstance(v, np.generic):
        return v.item()
    return v


def _column_dtype(values: list[Any]) -> str:
    cells = [cell(v) for v in values]
    if all(isinstance(c, bool) for c in cells):
        return "bool"
    if all(isinstance(c, int) and not isinstance(c, bool) for c in cells):
        return "int64"
    if all(isinstance(c, int | float) and not isinstance(c, bool) for c in cells):
        return "float64"
    return "string"


def _missing(c: Any) -> bool:
    return c is None or (isinstance(c, float) and c != c)


def to_column(values: list[Any], dtype: str) -> list[Any]:
    """Cells converted to one consistent type (so every parquet part has the same schema)."""
    cells = [cell(v) for v in values]
    if dtype == "float64":
        return [float(c) for c in cells]
    if dtype == "string":  # a missing value (None, or NaN once a frame held it) is JSON's null
        return [c if isinstance(c, str) else json.dumps(None if _missing(c) else c) for c in cells]
    return cells


def flatten_keys(data: Any, prefix: str = "") -> set[str]:
    """Every dotted key (inner and leaf) of plain data; list items by index."""
    out: set[str] = set()
    if isinstance(data, dict):
        items = [(str(k), v) for k, v in data.items()]
    elif isinstance(data, list):
        items = [(str(i), v) for i, v in enumerate(data)]
    else:
        return out
    for k, v in items:
        key = f"{prefix}.{k}" if prefix else k
        out.add(key)
        out |= flatten_keys(v, key)
    return out


def get_dotted(data: Any, key: str) -> Any:
    node = data
    for part in key.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def run_key(condition: dict[str, Any], replication: int) -> str:
    """Hash of a condition's resolved config (without ``replications``) and the replication index."""
    cfg = {k: v for k, v in condition.items() if k != "replications"}
    text = json.dumps(cfg, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(f"{text}|replication={replication}".encode()).hexdigest()[:20]


@dataclass
class SweepSpec:
    """A validated sweep: the resolved base scenario and its axes."""

    name: str
    source: str
    base: dict[str, Any]  # resolved base scenario (plain data, defaults filled in, --set applied)
    base_dir: Path
    replications: int
    seed: int
    policies: list[Any]
    axes: list[Axis]
    blocks: list[list[Axis]]  # grid (one block per grid key), zip groups, sample
    sample: dict[str, Any] | None = None
    raw: dict[str, Any] = field(default_factory=dict)  # the sweep file's own keys (for sweep.yaml)
    _points: np.ndarray | None = None

    # -- sizes ------------------------------------------------------------------------------
    def block_sizes(self) -> list[int]:
        sizes = []
        for block in self.blocks:
            if block[0].block == "sample":
                sizes.append(int(self.sample["n"]))
            else:
                sizes.append(len(block[0].values))
        return sizes

    @property
    def n_conditions(self) -> int:
        return math.prod(self.block_sizes())

    @property
    def n_runs(self) -> int:
        return self.n_conditions * self.replications

    @property
    def axis_keys(self) -> list[str]:
        return [a.key for a in self.axes]

    # -- conditions -------------------------------------------------------------------------
    def points(self) -> np.ndarray:
        """The sample's unit-cube points, n x d (drawn once, seeded)."""
        if self._points is None:
            from scipy.stats import qmc

            s = self.sample
            d = len(self.blocks[-1])
            if s["method"] == "lhs":
                engine = qmc.LatinHypercube(d=d, seed=s["seed"])
            else:
                engine = qmc.Sobol(d=d, scramble=True, seed=s["seed"])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Sobol: "n is not a power of 2" (balance warning only)
                self._points = engine.random(int(s["n"]))
        return self._points

    def _block_values(self, block: list[Axis], i: int) -> dict[str, Any]:
        if block[0].block != "sample":
            return {a.key: a.values[i] for a in block}
        u = self.points()[i]
        return {a.key: map_unit(a, float(u[j])) for j, a in enumerate(block)}

    def conditions(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(index, {axis key: value})`` for every condition, generated lazily."""
        sizes = self.block_sizes()
        for idx, combo in enumerate(itertools.product(*(range(n) for n in sizes))):
            values: dict[str, Any] = {}
            for block, i in zip(self.blocks, combo, strict=True):
                values.update(self._block_values(block, i))
            yield idx, values

    def condition_config(self, values: dict[str, Any]) -> dict[str, Any]:
        """The base scenario with a condition's axis values applied (plain data)."""
        return with_values(self.base, values)

    def build(self, values: dict[str, Any]):
        """Validate a condition into a Scenario (ConfigError names the key)."""
        return scenario_from_dict(self.condition_config(values), self.base_dir)

    def resolved(self) -> dict[str, Any]:
        """The sweep as it runs: resolved base, seed, replications, policies and the axes."""
        out: dict[str, Any] = {"name": self.name, "source": self.source, "seed": self.seed,
                               "replications": self.replications, "policies": self.policies}
        if "set" in self.raw:
            out["set"] = self.raw["set"]
        for k in ("grid", "zip"):
            if k in self.raw:
                out[k] = _expanded_block(self, k)
        if self.sample is not None:
            out["sample"] = {**self.sample, **{a.key: {a.dist: a.bounds} for a in self.blocks[-1]}}
        out["conditions"] = self.n_conditions
        out["base"] = self.base
        return out


def _expanded_block(spec: SweepSpec, kind: str) -> Any:
    if kind == "grid":
        return {a.key: a.values for a in spec.axes if a.block == "grid"}
    groups: dict[str, dict[str, Any]] = {}
    for a in spec.axes:
        if a.block.startswith("zip"):
            groups.setdefault(a.block, {})[a.key] = a.values
    return list(groups.values()) if len(groups) > 1 else next(iter(groups.values()))


def map_unit(axis: Axis, u: float) -> Any:
    """A unit-interval coordinate -> a value of the axis's distribution."""
    if axis.dist == "choice":
        k = len(axis.bounds)
        return axis.bounds[min(int(u * k), k - 1)]
    lo, hi = axis.bounds
    if axis.dist == "uniform":
        if axis.integer:
            return int(min(math.floor(lo + u * (hi - lo + 1)), hi))
        return float(lo + u * (hi - lo))
    x = math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))
    return int(min(max(round(x), lo), hi)) if axis.integer else float(x)


# -- loading ---------------------------------------------------------------------------------------
def load_sweep(path: str | Path, overrides: list[str] | None = None) -> SweepSpec:
    """Read and validate a sweep file; ``overrides`` (``key=value``) apply to the base scenario."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"sweep file not found: {p}")
    data = read_yaml(p)
    return sweep_from_dict(data, p.resolve().parent, overrides, source=str(p), name=p.stem)


def sweep_from_dict(data: dict[str, Any], sweep_dir: Path, overrides: list[str] | None = None,
                    source: str = "<inline>", name: str = "sweep") -> SweepSpec:
    for k in data:
        if k not in TOP_KEYS:
            raise unknown_key(str(k), "", TOP_KEYS, where="the top level of the sweep file")
    if "base" not in data:
        raise ConfigError("missing required key 'base' (a scenario file path or an inline scenario mapping)")
    base_raw, base_dir = _load_base(data["base"], sweep_dir)
    fixed = data.get("set") or {}
    if not isinstance(fixed, dict):
        raise ConfigError(f"'set' must be a mapping of dotted scenario key: value, got {fixed!r}")
    for key, value in fixed.items():
        set_dotted(base_raw, str(key), value)
    for item in overrides or []:
        key, value = parse_override(item)
        set_dotted(base_raw, key, value)
    if "policies" in data:
        base_raw["policies"] = data["policies"]
    if "seed" in data:
        base_raw["seed"] = data["seed"]
    replications = data.get("replications", base_raw.get("replications", 1))
    if not isinstance(replications, int) or isinstance(replications, bool) or replications < 1:
        raise ConfigError(f"'replications' must be a positive integer, got {replications!r}")
    base_raw["replications"] = replications
    try:
        base_sc = scenario_from_dict(base_raw, base_dir)
    except ConfigError as e:
        raise ConfigError(f"base scenario: {e}") from None
    base = base_sc.to_dict()
    valid = flatten_keys(base)

    axes: list[Axis] = []
    blocks: list[list[Axis]] = []
    if "grid" in data:
        grid = _mapping(data["grid"], "grid")
        for key, values in grid.items():
            ax = Axis(str(key), "grid", values=_value_list(values, f"grid.{key}", sweep_dir))
            axes.append(ax)
            blocks.append([ax])
    if "zip" in data:
        groups = data["zip"] if isinstance(data["zip"], list) else [data["zip"]]
        if not groups:
            raise ConfigError("'zip' must not be empty")
        for g, group in enumerate(groups):
            where = "zip" if len(groups) == 1 else f"zip[{g}]"
            group = _mapping(group, where)
            block = [Axis(str(k), f"zip{g}", values=_value_list(v, f"{where}.{k}", sweep_dir))
                     for k, v in group.items()]
            lengths = {a.key: len(a.values) for a in block}
            if len(set(lengths.values())) > 1:
                raise ConfigError(f"'{where}' lists must have equal lengths, got "
                                  + ", ".join(f"{k}: {n}" for k, n in lengths.items()))
            axes += block
            blocks.append(block)
    sample = None
    if "sample" in data:
        sample, block = _sample(data["sample"], base)
        axes += block
        blocks.append(block)
    seen: set[str] = set()
    for a in axes:
        if a.key in seen:
            raise ConfigError(f"axis key '{a.key}' is swept twice")
        seen.add(a.key)
    for block in blocks:
        if block[0].block == "sample":
            for a in block:
                _check_block([a], base, base_dir, valid)
        else:
            _check_block(block, base, base_dir, valid)
    for a in axes:
        if a.values is not None:
            a.dtype = _column_dtype(a.values)
            if a.dtype == "int64" and isinstance(get_dotted(base, a.key), float):
                a.dtype = "float64"  # a float key swept over whole numbers
        elif a.dist == "choice":
            a.dtype = _column_dtype(a.bounds)
        else:
            a.dtype = "int64" if a.integer else "float64"
    raw = {k: data[k] for k in ("set", "grid", "zip", "sample") if k in data}
    return SweepSpec(name=str(data.get("name") or name), source=source, base=base, base_dir=base_dir,
                     replications=replications, seed=base_sc.seed, policies=base["policies"], axes=axes,
                     blocks=blocks, sample=sample, raw=raw)


def _mapping(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(f"'{where}' must be a mapping of dotted scenario key: values, got {value!r}")
    if not value:
        raise ConfigError(f"'{where}' must not be empty")
    return value


def _load_base(value: Any, sweep_dir: Path) -> tuple[dict[str, Any], Path]:
    if isinstance(value, str):
        p = expand_path(value)
        if not p.is_absolute():
            p = sweep_dir / p
        if not p.is_file():
            raise ConfigError(f"'base': scenario file not found: {p}")
        return read_yaml(p), p.resolve().parent
    if isinstance(value, dict):
        return copy.deepcopy(value), sweep_dir
    raise ConfigError(f"'base' must be a scenario file path or a scenario mapping, got {value!r}")


def _value_list(values: Any, where: str, sweep_dir: Path) -> list[Any]:
    if isinstance(values, dict) and set(values) == {"glob"}:
        pattern = str(values["glob"])
        p = expand_path(pattern)
        if not p.is_absolute():
            p = sweep_dir / p
        files = sorted(f for f in globmod.glob(str(p)) if Path(f).is_file())
        if not files:
            raise ConfigError(f"'{where}': glob {pattern!r} matched no files ({p})")
        return files
    if isinstance(values, dict):
        raise ConfigError(f"'{where}' must be a list of values or {{glob: pattern}}, got {values!r}")
    if not isinstance(values, list):
        raise ConfigError(f"'{where}' must be a list of values, got {values!r}")
    if not values:
        raise ConfigError(f"'{where}' is an empty list; give at least one value")
    return list(values)


def _sample(value: Any, base: dict[str, Any]) -> tuple[dict[str, Any], list[Axis]]:
    s = _mapping(value, "sample")
    n = s.get("n")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ConfigError(f"'sample.n' must be a positive integer, got {n!r}")
    method = s.get("method", "lhs")
    if method not in METHODS:
        raise ConfigError(f"'sample.method' must be one of {', '.join(METHODS)}, got {method!r}")
    seed = s.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"'sample.seed' must be a non-negative integer, got {seed!r}")
    block = []
    for key, spec in s.items():
        if key in SAMPLE_KEYS:
            continue
        where = f"sample.{key}"
        if not isinstance(spec, dict) or len(spec) != 1:
            raise ConfigError(f"'{where}' must be one of {{uniform: [lo, hi]}}, {{loguniform: [lo, hi]}}, "
                              f"{{choice: [...]}}, got {spec!r}")
        (dist, bounds), = spec.items()
        if dist not in DISTS:
            raise unknown_key(str(dist), where, DISTS)
        if not isinstance(bounds, list) or not bounds:
            raise ConfigError(f"'{where}.{dist}' must be a non-empty list, got {bounds!r}")
        integer = False
        if dist != "choice":
            if len(bounds) != 2 or not all(isinstance(b, int | float) and not isinstance(b, bool)
                                           for b in bounds):
                raise ConfigError(f"'{where}.{dist}' must be [lo, hi] (two numbers), got {bounds!r}")
            lo, hi = bounds
            if not lo < hi:
                raise ConfigError(f"'{where}.{dist}': lo must be less than hi, got [{lo}, {hi}]")
            if dist == "loguniform" and lo <= 0:
                raise ConfigError(f"'{where}.loguniform': lo must be positive, got {lo}")
            current = get_dotted(base, str(key))
            integer = isinstance(current, int) and not isinstance(current, bool)
            if integer and math.ceil(lo) > math.floor(hi):
                raise ConfigError(f"'{where}.{dist}': integer key '{key}' has no integer in [{lo}, {hi}]")
            if integer:
                bounds = [math.ceil(lo), math.floor(hi)]
        block.append(Axis(str(key), "sample", dist=dist, bounds=list(bounds), integer=integer))
    if not block:
        raise ConfigError("'sample' has no axes: add dotted scenario keys with {uniform|loguniform|choice}")
    return {"n": n, "method": method, "seed": seed}, block


def with_values(base: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A copy of the plain scenario ``base`` with dotted-key ``values`` applied."""
    data = copy.deepcopy(base)
    for key, v in values.items():
        set_dotted(data, key, copy.deepcopy(v))
    return data


def _check_block(block: list[Axis], base: dict[str, Any], base_dir: Path, valid: set[str]) -> None:
    """Axis keys must be scenario keys, and the values valid on the base: each grid value and sample
    range end alone, each zip row together."""
    kind = block[0].block
    where = "sample" if kind == "sample" else ("grid" if kind == "grid" else "zip")
    if kind.startswith("zip"):
        probes = [{a.key: a.values[i] for a in block} for i in range(len(block[0].values))]
    else:
        probes = []
        for a in block:
            if a.values is not None:
                vals = a.values
            elif a.dist == "choice":
                vals = a.bounds
            else:
                vals = [map_unit(a, 0.0), map_unit(a, 1.0 - 1e-12)]
            probes += [{a.key: v} for v in vals]
    unknown = [a.key for a in block if a.key not in valid]
    for values in probes[:1] if unknown else probes:
        try:
            scenario_from_dict(with_values(base, values), base_dir)
        except ConfigError as e:
            if unknown:
                hint = closest(unknown[0], sorted(valid))
                raise ConfigError(f"unknown axis key '{unknown[0]}' in '{where}': not a scenario key"
                                  + (f"; did you mean '{hint}'?" if hint else "")) from None
            shown = ", ".join(f"{k}={_short(v)}" for k, v in values.items())
            raise ConfigError(f"'{where}' value {shown}: {e}") from None
