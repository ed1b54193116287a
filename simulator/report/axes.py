"""Swept axes whose values are not numbers (trace files, bandwidth models) shown on a numeric scale.

A sweep over trace files, or an axis mixing constant bandwidths and a trace, stores paths or JSON
strings. Plotted as such they give unreadable, alphabetically sorted tick labels and lines joining
unrelated traces. Each value is mapped instead to the mean bandwidth it offers (Mbit/s): a trace file's
time-weighted mean, a constant model's rate, a lognormal model's mean, a Markov model's states averaged.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

MEAN_MBPS = ".mean_mbps"  # suffix of the derived numeric axis


def _trace_mean(path: str, **options: Any) -> float:
    """Mean Mbit/s of a trace file read with the trace model's options (units, separator, columns...)."""
    from ..bandwidth import Trace
    from ..config import REPO_ROOT
    from ..schema import build
    from ..traces import expand_path

    p = expand_path(path)
    if not p.is_file() and (REPO_ROOT / p).is_file():
        p = REPO_ROOT / p
    return build(Trace, {**options, "file": str(p)}).long_run_mbps()


def mean_mbps(value: Any) -> float | None:
    """Mean bandwidth (Mbit/s) a swept value stands for, or None when it is not a bandwidth."""
    if isinstance(value, str):
        s = value.strip()
        if s.startswith("{"):
            try:
                value = json.loads(s)
            except json.JSONDecodeError:
                return None
        else:
            try:
                return _trace_mean(s)
            except Exception:  # noqa: BLE001 - not a readable trace: not a bandwidth axis
                return None
    if not isinstance(value, dict):
        return None
    model = value.get("model")
    try:
        if model == "constant":
            return float(value["mbps"])
        if model == "lognormal":
            return float(value["mean_mbps"])
        if model == "markov":
            return float(np.mean(value["states_mbps"]))
        if model == "trace":
            return _trace_mean(value["file"], **{k: v for k, v in value.items() if k not in ("model", "file")})
    except Exception:  # noqa: BLE001
        return None
    return None


def bandwidth_axis(values: pd.Series) -> pd.Series | None:
    """The column's values as mean Mbit/s when every value is a bandwidth (trace or model), else None."""
    if pd.api.types.is_numeric_dtype(values):
        return None
    uniq = values.dropna().unique()
    means = {}
    for v in uniq:
        m = mean_mbps(v)
        if m is None:
            return None
        means[v] = round(m, 4)
    return values.map(means).astype(float)


def derive_numeric_axes(df: pd.DataFrame, axes: list[str]) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Replace non-numeric bandwidth axes by ``<axis>.mean_mbps`` columns.

    Returns the frame, the new axis list, and the derived axes (whose points are separate conditions,
    so figures draw them as points, not joined lines).
    """
    out, derived = [], []
    for a in axes:
        num = bandwidth_axis(df[a])
        if num is None:
            out.append(a)
            continue
        name = a.removesuffix(".file") + MEAN_MBPS
        df[name] = num
        out.append(name)
        derived.append(name)
    return df, out, derived


# -- categorical axes (profiles, device names, layer lists, mappings) ----------------------------------
_PATH_SUFFIXES = (".npz", ".csv", ".txt", ".log", ".json", ".yaml", ".yml", ".parquet", ".dat", ".gz")


def _looks_like_path(s: str) -> bool:
    return ("/" in s or s.lower().endswith(_PATH_SUFFIXES)) and not s.lstrip().startswith(("{", "["))


def _short_mapping(d: dict) -> str:
    """``{"model": "markov", "states_mbps": [2, 20]}`` -> ``markov states_mbps=[2, 20]``."""
    from pathlib import Path

    if isinstance(d.get("file"), str):
        return Path(d["file"]).stem
    parts = [str(d["model"])] if "model" in d else []
    for k, v in d.items():
        if k == "model":
            continue
        v = Path(v).stem if isinstance(v, str) and _looks_like_path(v) else v
        parts.append(f"{k}={json.dumps(v) if isinstance(v, list | dict) else v}")
    return " ".join(parts)


def _short(value: Any, limit: int, parents: int = 0) -> str:
    from pathlib import Path

    s = str(value)
    if value is None or s == "null":  # a swept key set to null (e.g. batching off)
        return "none"
    if isinstance(value, str) and s.lstrip().startswith("{"):
        try:
            d = json.loads(s)
        except json.JSONDecodeError:
            d = None
        if isinstance(d, dict):
            s = _short_mapping(d)
    elif isinstance(value, str) and _looks_like_path(s):
        p = Path(s)
        s = "/".join([*p.parent.parts[len(p.parent.parts) - parents:], p.stem] if parents else [p.stem])
    return s if len(s) <= limit else s[: limit - 1] + "…"


def category_labels(values: list[Any], limit: int = 28) -> dict[Any, str]:
    """Short, distinct tick labels for the values of a categorical axis: a path's file stem (with as many
    parent folders as it takes to tell two files apart), a mapping's leading keys, long text cut."""
    for parents in range(4):
        labels = {v: _short(v, limit, parents) for v in values}
        if len(set(labels.values())) == len(labels):
            return labels
    return {v: str(v) for v in values}


def _as_cells(values: list[Any]) -> list[str]:
    from ..sweep.spec import to_column

    return [str(c) for c in to_column(list(values), "string")]


def category_orders(df: pd.DataFrame, axes: list[str], sweep: dict[str, Any]) -> dict[str, list[str]]:
    """For each non-numeric swept axis, its values in the order the sweep file gives them.

    The order is the sweep's own value list (``grid``, ``zip`` or a ``sample``'s choices, as stored in
    ``sweep.yaml``), then any other value in the order of the conditions it first appears in (conditions
    are numbered in the sweep file's order), then in the order of the rows.
    """
    given: dict[str, list[Any]] = {}
    for block in ("grid", "zip"):
        groups = sweep.get(block)
        for g in groups if isinstance(groups, list) else [groups]:
            if isinstance(g, dict):
                for k, v in g.items():
                    if isinstance(v, list):
                        given.setdefault(str(k), v)
    sample = sweep.get("sample")
    if isinstance(sample, dict):
        for k, v in sample.items():
            if isinstance(v, dict) and isinstance(v.get("choice"), list):
                given.setdefault(str(k), v["choice"])
    out: dict[str, list[str]] = {}
    rows = df.sort_values("condition", kind="stable") if "condition" in df else df
    for a in axes:
        if a not in df or pd.api.types.is_numeric_dtype(df[a]):
            continue
        present = list(dict.fromkeys(rows[a].dropna().astype(str)))
        try:
            listed = _as_cells(given.get(a, []))
        except Exception:  # noqa: BLE001 - an odd sweep file only loses its order
            listed = []
        out[a] = [v for v in dict.fromkeys(listed) if v in set(present)] + \
            [v for v in present if v not in set(listed)]
    return out
