"""Assemble a report: pick figures from what the results contain (or from options), write files, index."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import UserError, closest
from . import figures as F
from .html import write_index
from .load import Results, aggregate, higher_is_better
from .style import FORMATS, get_style, policy_styles, save, style_context
from .tables import tables_for

KINDS = ("tables", "tradeoff", "cdf", "exits", "timeline", "lines", "bars", "heatmap", "margin")
TRADEOFF_X = ("cost_mean", "latency_mean_ms", "energy_mobile_j_per_req")
LINE_METRICS = ("accuracy", "latency_p95_ms", "cost_mean", "energy_mobile_j_per_req")
HEAT_METRICS = ("latency_p95_ms", "energy_mobile_j_per_req")
MAX_LEVELS = 12  # an axis with more distinct values (e.g. a Latin-hypercube sample) is binned


@dataclass
class Options:
    x: str | None = None
    y: list[str] = field(default_factory=list)
    hue: str = "policy"
    facet: str | None = None
    figures: list[str] | None = None
    formats: list[str] = field(default_factory=lambda: ["pdf", "png"])
    style: str = "paper"
    compare: tuple[str, str] | None = None
    policies: list[str] = field(default_factory=list)  # timeline policies


@dataclass
class Report:
    folder: Path
    files: list[Path]
    figures: list[str]  # figure names (file stems)
    tables: list[str]
    index: Path


def _check_policy(res: Results, p: str) -> str:
    if p in res.policies:
        return p
    hint = closest(p, res.policies)
    raise UserError(f"no policy '{p}' in {res.folder}" + (f"; did you mean '{hint}'?" if hint
                                                           else f"; policies: {', '.join(res.policies)}"))


def _binned(res: Results, axes: list[str]) -> Results:
    """Replace axes with many distinct numeric values by the median of their quantile bins."""
    df = res.per_rep
    changed = False
    for a in axes:
        vals = df[a]
        if vals.nunique() > MAX_LEVELS and pd.api.types.is_numeric_dtype(vals):
            if not changed:
                df = df.copy()
                changed = True
            bins = pd.qcut(vals, 8, duplicates="drop")
            df[a] = vals.groupby(bins, observed=True).transform("median").astype(float)
            df[a] = df[a].map(lambda v: float(f"{v:.3g}"))
    return replace(res, per_rep=df) if changed else res


def _default_axes(res: Results) -> list[str]:
    """Swept axes ordered for plotting: numeric ones with most levels first."""
    def key(a):
        v = res.per_rep[a]
        return (not pd.api.types.is_numeric_dtype(v), -min(v.nunique(), MAX_LEVELS), res.axes.index(a))
    return sorted([a for a in res.axes if res.per_rep[a].nunique() > 1], key=key)


def _ranked(res: Results, metric: str) -> list[str]:
    """Policies by how often they are best in a condition, then by mean metric."""
    agg = aggregate(res.per_rep, [*res.axes, "policy"], [metric]).dropna(subset=[metric])
    if agg.empty:
        return list(res.policies)
    hib = higher_is_better(metric)
    wins = {p: 0 for p in res.policies}
    for _, g in agg.groupby(res.axes, sort=True) if res.axes else [(None, agg)]:
        g = g.sort_values(metric, ascending=not hib)
        wins[g["policy"].iloc[0]] += 1
    mean = agg.groupby("policy")[metric].mean()
    return sorted(res.policies, key=lambda p: (-wins[p], (-1 if hib else 1) * mean.get(p, np.inf), p))


def _margin_pair(res: Results, x: str, y: str, metric: str, top: int = 4) -> tuple[str, str] | None:
    """The two policies (among the ``top`` ranked) whose margin heatmap shows the most signal, best first;
    None when every pair differs by no more than numerical noise."""
    ranked = _ranked(res, metric)[:top]
    agg = aggregate(res.per_rep, [x, y, "policy"], [metric])
    best, pair = 0.0, None
    for i, a in enumerate(ranked):
        for b in ranked[i + 1:]:
            sig = F.margin_signal(agg, x, y, metric, a, b)
            if sig > best:
                best, pair = sig, (a, b)
    return pair


def plan(res: Results, opt: Options) -> list[tuple[str, dict]]:
    """The figures to draw, as (kind, arguments)."""
    for y in opt.y:
        res.metric(y)
    x = res.axis(opt.x) if opt.x else None
    facet = res.axis(opt.facet) if opt.facet else None
    hue = "policy" if opt.hue == "policy" else res.axis(opt.hue)
    if opt.compare:
        for p in opt.compare:
            _check_policy(res, p)
    for p in opt.policies:
        _check_policy(res, p)
    kinds = opt.figures
    explicit = kinds is not None
    if kinds is None:
        if x or facet or hue != "policy":
            kinds = ["tables", "lines"]
        elif opt.y and res.kind == "run":
            kinds = ["tables", "bars"]
        elif res.kind == "run":
            kinds = ["tables", "tradeoff", "cdf", "exits", "timeline"]
        else:
            kinds = ["tables", "tradeoff", "lines", "heatmap", "margin", "exits"]
    axes = _default_axes(res)
    out: list[tuple[str, dict]] = []
    for kind in kinds:
        if kind == "tables":
            continue
        if kind == "tradeoff":
            for xm in ([m for m in opt.y if m != "accuracy"] or TRADEOFF_X):
                if xm in res.metrics and "accuracy" in res.metrics:
                    out.append((kind, {"xmetric": xm}))
        elif kind in ("cdf", "timeline") and (res.requests is None if kind == "cdf" else res.timeline is None):
            if explicit:
                what = "requests.parquet" if kind == "cdf" else "timeline.parquet"
                raise UserError(f"figure '{kind}' needs {what} from a 'run' folder; {res.folder} has none")
        elif kind == "cdf":
            out.append((kind, {}))
        elif kind == "timeline":
            pols = opt.policies or res.policies
            tl = res.timeline
            if len(pols) > 1 and (tl["series"] == "temperature_c").any():
                out.append(("timeline_thermal", {"policies": list(pols)}))
            for p in pols:
                out.append((kind, {"policy": p}))
        elif kind == "exits":
            if res.requests is not None and "exit_layer" in res.requests:
                out.append(("exit_layers", {}))
            if any(f"exit_frac_{t}" in res.metrics for t in res.tiers):
                out.append(("exit_tiers", {}))
        elif kind == "bars":
            for y in opt.y or ["accuracy", "latency_p95_ms"]:
                if y in res.metrics:
                    out.append((kind, {"y": y}))
        elif kind == "lines":
            if res.kind != "sweep" or not axes:
                if explicit or x:
                    raise UserError(f"figure 'lines' plots a metric against a swept axis; {res.folder} "
                                    "is not a sweep with a varying axis")
                continue
            xa = x or next((a for a in axes if a not in (facet, hue)), axes[0])
            fa = facet
            if fa is None and opt.facet is None and not x:
                rest = [a for a in axes if a not in (xa, hue)]
                fa = rest[0] if rest and res.per_rep[rest[0]].nunique() <= 6 else None
            if fa == xa:
                raise UserError(f"--facet and --x name the same axis '{xa}'")
            for y in opt.y or [m for m in LINE_METRICS if m in res.metrics]:
                out.append((kind, {"x": xa, "y": y, "hue": hue, "facet": fa}))
        elif kind in ("heatmap", "margin"):
            two = [a for a in axes if a != facet]
            if x:
                two = [x] + [a for a in two if a != x]
            if len(two) < 2 or len(res.policies) < (2 if kind == "margin" else 1):
                if explicit:
                    raise UserError(f"figure '{kind}' needs a sweep over two axes"
                                    + (" and two policies" if kind == "margin" else "")
                                    + f"; {res.folder} has axes: {', '.join(axes) or 'none'}")
                continue
            metrics = opt.y or [m for m in HEAT_METRICS if m in res.metrics]
            for y in metrics:
                if kind == "heatmap":
                    out.append((kind, {"x": two[0], "y": two[1], "metric": y}))
                else:
                    pair = opt.compare or _margin_pair(res, two[0], two[1], y)
                    if pair is None:  # no two policies differ beyond numerical noise: nothing to show
                        continue
                    a, b = pair
                    if a == b:
                        raise UserError("--compare needs two different policies")
                    out.append((kind, {"x": two[0], "y": two[1], "metric": y, "a": a, "b": b}))
        else:
            raise AssertionError(kind)
    return out


DRAW = {"tradeoff": F.tradeoff, "cdf": F.latency_cdf, "timeline": F.timeline,
        "timeline_thermal": F.timeline_thermal, "exit_layers": F.exit_layers,
        "exit_tiers": F.exit_tiers, "bars": F.metric_bars, "lines": F.metric_vs_axis,
        "heatmap": F.heatmap_best, "margin": F.heatmap_margin}


def build_report(res: Results, out: Path, opt: Options) -> Report:
    """Write figures, tables and index.html for ``res`` into ``out``."""
    bad = [f for f in opt.formats if f not in FORMATS]
    if bad or not opt.formats:
        raise UserError(f"unknown figure format '{bad[0] if bad else ''}'; choose from {', '.join(FORMATS)}")
    if opt.figures is not None:
        for k in opt.figures:
            if k not in KINDS:
                hint = closest(k, KINDS)
                raise UserError(f"unknown figure '{k}'" + (f"; did you mean '{hint}'?" if hint
                                                            else f"; choose from {', '.join(KINDS)}"))
    todo = plan(res, opt)
    binned = _binned(res, res.axes) if res.kind == "sweep" else res
    was_binned = [a for a in res.axes if binned.per_rep[a].nunique() < res.per_rep[a].nunique()]
    st = get_style(opt.style)
    styles = policy_styles(res.policies)
    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    fig_entries, table_entries = [], []
    names: set[str] = set()
    want_tables = opt.figures is None or "tables" in opt.figures
    if want_tables:
        for t in tables_for(res):
            tex, md = out / f"table_{t.name}.tex", out / f"table_{t.name}.md"
            tex.write_text(t.latex())
            md.write_text(t.markdown())
            files += [tex, md]
            table_entries.append((t, [tex, md]))
    with style_context(st):
        for kind, kw in todo:
            lines_binned = kind == "lines" and kw.get("x") not in res.point_axes  # each trace its own point
            src = binned if kind in ("heatmap", "margin") or lines_binned else res
            fig = DRAW[kind](src, styles, st, **kw)
            shown = [a for a in was_binned if a in kw.values()]
            if src is binned and shown:
                fig.caption += (f" Values of {', '.join(shown)} are grouped into quantile bins, each drawn at "
                                "its median.")
            name = fig.name
            i = 2
            while name in names:
                name, i = f"{fig.name}_{i}", i + 1
            names.add(name)
            paths = save(fig.figure, out / name, opt.formats)
            fig.name = name
            files += paths
            fig_entries.append((fig, paths))
    meta = [("Results", str(res.folder)), ("Kind", res.kind)]
    meta += [("Warning", w) for w in res.warnings]
    if res.axes:
        meta.append(("Swept axes", ", ".join(res.axes)))
    meta.append(("Policies", ", ".join(res.policies)))
    for k in ("seed", "git_revision"):
        if res.manifest.get(k) is not None:
            meta.append((k.replace("_", " ").capitalize(), str(res.manifest[k])))
    index = write_index(out, f"Report: {res.name}", meta, table_entries, fig_entries)
    return Report(out, files + [index], [f.name for f, _ in fig_entries], [t.name for t, _ in table_entries],
                  index)
