"""Reading a ``run`` or ``sweep`` results folder into one shape, and statistics over replications."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from ..errors import UserError, closest
from ..intervals import metric_interval

KEY_COLUMNS = ("run_key", "condition", "replication", "policy", "seed", "error")
# Metrics where a larger value is better; every other metric is taken as lower-is-better.
HIGHER_IS_BETTER = ("accuracy", "throughput_rps", "completed", "deadline_met")


@dataclass
class Results:
    """A results folder: per-replication rows for every (condition,) policy, plus run-only extras."""

    folder: Path
    kind: str  # "run" or "sweep"
    per_rep: pd.DataFrame  # one row per (condition x) policy x replication
    axes: list[str]  # swept dotted keys (empty for a run)
    policies: list[str]  # sorted
    metrics: list[str]  # numeric metric columns
    requests: pd.DataFrame | None = None  # run only
    timeline: pd.DataFrame | None = None  # run only
    config: dict[str, Any] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)
    point_axes: list[str] = field(default_factory=list)  # axes whose values are unrelated conditions (traces)
    warnings: list[str] = field(default_factory=list)  # the folder is incomplete or its results partial
    categories: dict[str, list[str]] = field(default_factory=dict)  # non-numeric axis -> values, sweep order

    @property
    def deadline_ms(self) -> float | None:
        d = self.config.get("deadline_ms")
        return float(d) if d is not None else None

    @property
    def tiers(self) -> list[str]:
        tiers = list(self.config.get("tiers") or {})
        if tiers:
            return tiers
        return [c[len("exit_frac_"):] for c in self.per_rep if c.startswith("exit_frac_")]

    @property
    def name(self) -> str:
        return str(self.manifest.get("scenario") or self.config.get("name") or self.folder.name)

    # -- validation of user-named columns -------------------------------------------------------
    def metric(self, name: str) -> str:
        """``name`` if it is a metric column, else a UserError suggesting the closest one."""
        if name in self.metrics:
            return name
        if name in self.per_rep.columns:
            raise UserError(f"column '{name}' is not a numeric metric; metrics: {', '.join(self.metrics)}")
        hint = closest(name, self.metrics)
        msg = f"no metric column '{name}' in {self.folder}"
        raise UserError(msg + (f"; did you mean '{hint}'?" if hint else f"; metrics: {', '.join(self.metrics)}"))

    def axis(self, name: str) -> str:
        """The swept axis ``name`` names (exactly or as a dotted suffix), else a UserError."""
        if self.kind != "sweep":
            raise UserError(f"'{name}' was not swept: {self.folder} is a single run (no axes); "
                            "sweep it with 'run_sim.py sweep' to plot against it")
        if name in self.axes:
            return name
        hits = [a for a in self.axes if a.endswith("." + name)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise UserError(f"axis '{name}' is ambiguous: {', '.join(hits)}")
        hint = closest(name, self.axes)
        msg = f"'{name}' was not swept in {self.folder}"
        msg += f"; did you mean '{hint}'?" if hint else ""
        raise UserError(msg + f" (swept axes: {', '.join(self.axes) or 'none'})")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"cannot read {path}: {e}") from None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) if path.is_file() else {}
    except (OSError, yaml.YAMLError) as e:
        raise UserError(f"cannot read {path}: {str(e).splitlines()[0]}") from None
    return data if isinstance(data, dict) else {}


def _read_table(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the user's folder, not our bug
        raise UserError(f"cannot read {path}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") \
            from None


def load_results(folder: str | Path, allow_incomplete: bool = False) -> Results:
    """Read a run folder (per_replication.csv, requests.parquet, ...) or a sweep folder (results.parquet);
    a folder missing its manifest or config is refused unless ``allow_incomplete``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"results folder not found: {folder}")
    manifest = _read_json(folder / "manifest.json")
    kind = manifest.get("kind")
    if kind is None:
        kind = "sweep" if (folder / "results.parquet").exists() else "run"
    if kind == "sweep":
        res = _load_sweep(folder, manifest)
    elif kind == "run":
        res = _load_run(folder, manifest)
    else:
        raise UserError(f"{folder}/manifest.json: unknown kind {kind!r} (expected 'run' or 'sweep')")
    res.warnings = completeness_warnings(folder, kind, manifest)
    if not allow_incomplete and res.warnings and res.warnings[0].endswith(INCOMPLETE):
        raise UserError(f"{res.warnings[0]}; refusing to report it (--allow-incomplete reports it anyway)")
    return res


INCOMPLETE = ": the report may be incomplete and its provenance is unknown"


def completeness_warnings(folder: Path, kind: str, manifest: dict[str, Any]) -> list[str]:
    """What makes a results folder incomplete: files a finished ``run`` or ``sweep`` writes that are
    missing (an interrupted write, a folder copied in part, an older version), or a sweep that has not
    finished (its manifest's status)."""
    needed = ["manifest.json", "config.yaml"] if kind == "run" else ["manifest.json", "sweep.yaml"]
    missing = [n for n in needed if not (folder / n).is_file()]
    out = []
    if missing:
        out.append(f"{folder} has no {' or '.join(missing)}: not a complete '{kind}' folder (interrupted "
                   f"while writing, copied in part, or from an older version){INCOMPLETE}")
    status = manifest.get("status")
    if kind == "sweep" and status not in (None, "complete"):
        runs = manifest.get("runs")
        have = ""
        if isinstance(manifest.get("runs_done"), int) and isinstance(runs, int):
            have = f" ({manifest['runs_done'] + manifest.get('runs_skipped', 0)} of {runs} runs)"
        if status == "running":
            from ..sweep.lock import is_held

            if is_held(folder):
                out.append(f"the sweep in {folder} is still running: the report shows the runs finished so far")
            else:
                out.append(f"the sweep in {folder} was killed before it finished (its manifest says "
                           "'running'): the results are partial; finish it with 'sweep ... --resume'")
        elif status in ("interrupted", "aborted"):
            out.append(f"the sweep in {folder} was {status}{have}: the results are partial; finish it with "
                       "'sweep ... --resume'")
        elif status == "failed":
            out.append(f"{manifest.get('runs_failed', 'some')} runs of the sweep in {folder} failed (see "
                       f"{folder / 'failures.csv'}): their conditions are missing from the report")
    return out


def _metrics(df: pd.DataFrame, exclude: list[str]) -> list[str]:
    return [c for c in df.columns if c not in exclude and c not in KEY_COLUMNS
            and pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]


def _load_run(folder: Path, manifest: dict[str, Any]) -> Results:
    path = folder / "per_replication.csv"
    if not path.is_file():
        raise UserError(f"no results in {folder}: expected per_replication.csv (a 'run' folder) "
                        "or results.parquet (a 'sweep' folder)")
    per_rep = _read_table(path)
    if per_rep.empty or "policy" not in per_rep:
        raise UserError(f"no results in {folder}: {path.name} has no rows")
    per_rep["policy"] = per_rep["policy"].astype(str)
    if "replication" not in per_rep:
        per_rep["replication"] = 0
    requests = _read_table(folder / "requests.parquet") if (folder / "requests.parquet").is_file() else None
    timeline = _read_table(folder / "timeline.parquet") if (folder / "timeline.parquet").is_file() else None
    if requests is not None:
        requests["policy"] = requests["policy"].astype(str)
    if timeline is not None:
        timeline["policy"] = timeline["policy"].astype(str)
    return Results(folder=folder, kind="run", per_rep=per_rep, axes=[],
                   policies=sorted(per_rep["policy"].unique()), metrics=_metrics(per_rep, []),
                   requests=requests, timeline=timeline, config=_read_yaml(folder / "config.yaml"),
                   manifest=manifest)


def _load_sweep(folder: Path, manifest: dict[str, Any]) -> Results:
    path = folder / "results.parquet"
    if not path.exists():
        raise UserError(f"no results in {folder}: a sweep folder needs results.parquet")
    if path.is_dir():  # the sweep's own reader unifies the parts' columns
        from ..sweep.store import part_files, read_results

        if not part_files(folder):
            raise UserError(f"no results in {folder}: {path.name}/ holds no parquet parts yet")
        try:
            df = read_results(folder)
        except Exception as e:  # noqa: BLE001 - an unreadable part is the user's folder, not our bug
            raise UserError(f"cannot read {path}: {type(e).__name__}: {e}") from None
    else:
        df = _read_table(path)
    if df.empty or "policy" not in df:
        raise UserError(f"no results in {folder}: {path.name} has no rows")
    df["policy"] = df["policy"].astype(str)
    axes = [str(a) for a in manifest.get("axes") or []]
    if not axes:  # fall back to the dotted columns (scenario keys) when the manifest has no list
        axes = [c for c in df.columns if "." in c]
    missing = [a for a in axes if a not in df]
    if missing:
        raise UserError(f"{folder}: manifest lists axes missing from results.parquet: {', '.join(missing)}")
    for a in axes:  # lists and mixed values are stored stringified; keep numbers numeric
        if not pd.api.types.is_numeric_dtype(df[a]):
            conv = pd.to_numeric(df[a], errors="coerce")
            df[a] = conv if conv.notna().all() else df[a].astype(str)
    if "replication" not in df:
        df["replication"] = 0
    from .axes import category_orders, derive_numeric_axes

    orig = list(axes)
    df, axes, point_axes = derive_numeric_axes(df, axes)
    sweep = _read_yaml(folder / "sweep.yaml")
    categories = category_orders(df, [a for a in axes if a not in point_axes], sweep)
    base = sweep.get("base") if isinstance(sweep.get("base"), dict) else {}
    config = dict(base.get("scenario", base)) if isinstance(base, dict) else {}
    return Results(folder=folder, kind="sweep", per_rep=df, axes=axes,
                   policies=sorted(df["policy"].unique()), metrics=_metrics(df, [*axes, *orig]),
                   config=config, manifest=manifest, point_axes=point_axes, categories=categories)


# -- statistics over replications (the interval itself is intervals.metric_interval) -------------------
def aggregate(per_rep: pd.DataFrame, keys: list[str], metrics: list[str]) -> pd.DataFrame:
    """Mean, 95 % interval and count (``n``) of each metric per group of ``keys``.

    ``<m>_lo``/``<m>_hi`` bound the interval (log/logit-scale Student t, so it stays within the metric's
    support; nan with one replication); ``<m>_ci`` is its larger distance from the mean, for callers
    that need one number (e.g. whether two policies are distinguishable).
    """
    rows = []
    for k, g in per_rep.groupby(keys, sort=True, dropna=False):
        k = k if isinstance(k, tuple) else (k,)
        row = dict(zip(keys, k, strict=True))
        row["n"] = len(g)
        for m in metrics:
            vals = g[m].to_numpy(dtype=float)
            mean = float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan")
            lo, hi = metric_interval(vals, m)
            row[m] = mean
            row[f"{m}_lo"], row[f"{m}_hi"] = lo, hi
            row[f"{m}_ci"] = max(mean - lo, hi - mean) if np.isfinite(lo) else float("nan")
        rows.append(row)
    cols = [*keys, "n"] + [c for m in metrics for c in (m, f"{m}_lo", f"{m}_hi", f"{m}_ci")]
    return pd.DataFrame(rows, columns=cols)


def higher_is_better(metric: str) -> bool:
    return metric.startswith(HIGHER_IS_BETTER)
