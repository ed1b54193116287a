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
