"""The report's figures. Each function returns :class:`Fig` objects (a matplotlib figure and its caption).

Every figure draws a policy with the same colour, marker and line style (see :func:`style.policy_styles`)
and puts its legend outside the axes, above the plot, so that it never covers data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib import colors as mcolors
from matplotlib import pyplot as plt
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ..intervals import MIN_REPLICATIONS
from .axes import category_labels, category_orders
from .labels import axis_label, metric_info, metric_label, metric_name, scale, short_axis, slug
from .load import Results, aggregate, higher_is_better
from .style import TIER_COLOURS, PolicyStyle, Style, figure_legend


@dataclass
class Fig:
    name: str  # file stem inside the report folder
    title: str
    caption: str
    figure: plt.Figure


# -- helpers ---------------------------------------------------------------------------------------
def _figure(st: Style, rows: int = 1, cols: int = 1, row_height: float | None = None, **kw):
    fig, axes = plt.subplots(rows, cols, figsize=st.size(rows, cols, row_height), layout="constrained",
                             squeeze=False, **kw)
    return fig, axes


def _legend(fig: plt.Figure, handles: list, st: Style, title: str | None = None) -> None:
    if not handles:
        return
    labels = [h.get_label() for h in handles]
    figure_legend(fig, handles, st.legend_cols(labels), title=title, handletextpad=0.4, borderaxespad=0.2)


def _policy_handle(p: str, s: PolicyStyle, line: bool = True) -> Line2D:
    return Line2D([], [], color=s.colour, marker=s.marker, linestyle=s.dash if line else "none", label=p)


def _is_log(values: np.ndarray, ratio: float = 30.0) -> bool:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return len(v) > 1 and bool((v > 0).all()) and v.max() / v.min() >= ratio


def _fmt(v) -> str:
    if isinstance(v, float | np.floating):
        return f"{v:g}"
    return str(v)


def _positions(values: pd.Series) -> tuple[np.ndarray, list, bool]:
    """Sorted distinct values of an axis and whether the axis is numeric."""
    uniq = sorted(values.dropna().unique(), key=lambda v: (isinstance(v, str), v))
    numeric = pd.api.types.is_numeric_dtype(values)
    return np.asarray(uniq, dtype=float if numeric else object), uniq, numeric


def _categorical(res: Results | None, key: str, values: pd.Series) -> bool:
    """Whether a swept axis holds unrelated categories (profiles, device names, layer lists, mappings):
    not numbers, and not traces or bandwidth models (those are placed at their mean bandwidth)."""
    return (key != "policy" and not pd.api.types.is_numeric_dtype(values)
            and (res is None or key not in res.point_axes))


def _levels(res: Results | None, key: str, values: pd.Series) -> list:
    """Distinct values of an axis in plotting order: numbers ascending; categories in the order the sweep
    file gives them (then in order of appearance); policies sorted."""
    if not _categorical(res, key, values):
        return _positions(values)[1]
    present = list(dict.fromkeys(values.dropna()))
    given = (res.categories.get(key) if res is not None else None) or []
    if not given and res is not None and key in res.per_rep:
        given = category_orders(res.per_rep, [key], {}).get(key, [])
    head = [v for v in given if v in set(present)]
    return head + [v for v in present if v not in set(head)]


def _value_labels(res: Results | None, key: str, levels: list) -> dict:
    """Tick and legend text for each value of an axis: short for categories (a path's file stem)."""
    if levels and _categorical(res, key, pd.Series(levels)):
        return category_labels(levels)
    return {v: _fmt(v) for v in levels}


def _fits(labels: list[str], room_in: float) -> bool:
    """Whether tick labels set side by side fit in ``room_in`` inches (an estimate from the font size)."""
    char_in = 0.6 * float(plt.rcParams["xtick.labelsize"]) / 72
    return sum(len(t) * char_in + 0.08 for t in labels) <= room_in


def _wrapped(text: str, room_in: float) -> str:
    """``text`` broken into lines that fit ``room_in`` inches at the legend's font size (panel titles)."""
    import textwrap

    fs = plt.rcParams["legend.fontsize"]
    size = fs if isinstance(fs, int | float) else plt.rcParams["font.size"]
    width = max(8, int(room_in / (0.55 * float(size) / 72)))
    return "\n".join(textwrap.wrap(text, width)) or text


def _signed(v: float) -> str:
    """A short signed number without exponent notation: +1215, +38, +4.2, -0.013."""
    if abs(v) >= 10 or v == 0:
        return f"{v:+.0f}"
    return f"{float(f'{v:.2g}'):+g}"


def _nan0(a) -> np.ndarray:
    a = np.asarray(a, dtype=float)
    return np.where(np.isfinite(a), a, 0.0)


def _err(agg: pd.DataFrame, m: str, k: float = 1.0) -> np.ndarray:
    """Asymmetric error-bar lengths (2 x n) from ``<m>_lo``/``<m>_hi``; 0 where there is no interval or
    too few replications (< MIN_REPLICATIONS) for it to mean anything."""
    mean = agg[m].to_numpy(float)
    if "n" in agg and (agg["n"] < MIN_REPLICATIONS).all():
        return np.zeros((2, len(agg)))
    lo = np.where(np.isfinite(agg[f"{m}_lo"]), mean - agg[f"{m}_lo"].to_numpy(float), 0.0)
    hi = np.where(np.isfinite(agg[f"{m}_hi"]), agg[f"{m}_hi"].to_numpy(float) - mean, 0.0)
    return np.vstack([np.maximum(lo, 0), np.maximum(hi, 0)]) * k



CI_NOTE = "95 % confidence intervals over replications (Student t on the log scale, logit for proportions)"


def _ci_note(agg: pd.DataFrame) -> str:
    """What the error bars or bands are, or why there are none."""
    n = int(agg["n"].min()) if "n" in agg and len(agg) else 0
    if n < MIN_REPLICATIONS:
        return (f"not drawn: {n} replication(s) per point are too few for an interval to say anything "
                f"(at least {MIN_REPLICATIONS} needed)")
    return CI_NOTE


def _value_ticks(axis, values: np.ndarray, panel_in: float, log: bool = True) -> None:
    """Ticks at the swept values (thinned so that their labels cannot collide), plain labels."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

    values = np.asarray(sorted(set(np.asarray(values, float))))
    chars = max(len(f"{v:g}") for v in values)
    char_in = 0.6 * float(plt.rcParams["xtick.labelsize"]) / 72
    room = max(2, int((panel_in - 0.15) / (chars * char_in + 0.06)))
    if len(values) > room:
        step = int(np.ceil(len(values) / room))
        values = values[::step]
    axis.set_major_locator(FixedLocator(values))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    if log:
        axis.set_minor_locator(NullLocator())
    axis.set_minor_formatter(NullFormatter())


# -- accuracy vs cost --------------------------------------------------------------------------------
def pareto_mask(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Points not dominated by another (lower or equal x and higher or equal y, one strictly)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    mask = np.zeros(len(x), bool)
    for i in np.flatnonzero(ok):
        dom = ok & (x <= x[i]) & (y >= y[i]) & ((x < x[i]) | (y > y[i]))
        mask[i] = not dom.any()
    return mask


def _note_coincident(ax, xn: np.ndarray, yn: np.ndarray, x: np.ndarray, labels: list[str]) -> None:
    """Name policies whose points fall on top of each other (within 1 % of the axis spans)."""
    ok = np.isfinite(xn) & np.isfinite(yn)
    if ok.sum() < 2:
        return
    sx = max(np.ptp(xn[ok]), 1e-12)
    sy = max(np.ptp(yn[ok]), 1e-12)
    groups: dict[tuple[int, int], list[int]] = {}
    for i in np.flatnonzero(ok):
        groups.setdefault((round(xn[i] / sx * 100), round(yn[i] / sy * 100)), []).append(i)
    for idx in groups.values():
        if len(idx) > 1:
            i = idx[0]
            right = xn[i] > np.nanmin(xn[ok]) + sx / 2  # keep the note inside the axes
            ax.annotate(" = ".join(labels[j] for j in idx), xy=(x[i], yn[i]), xytext=(-6 if right else 6, -9),
                        textcoords="offset points", ha="right" if right else "left",
                        fontsize=plt.rcParams["legend.fontsize"] - 1, color="0.25")


def _over_conditions(agg: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Per policy: the mean over conditions of each metric, with the interquartile range across them."""
    rows = []
    for p, g in agg.groupby("policy", sort=False):
        row = {"policy": p, "n": len(g)}
        for m in metrics:
            v = g[m].to_numpy(float)
            v = v[np.isfinite(v)]
            row[m] = float(v.mean()) if len(v) else float("nan")
            q1, q3 = np.percentile(v, [25, 75]) if len(v) else (float("nan"),) * 2
            row[f"{m}_lo"], row[f"{m}_hi"] = min(q1, row[m]), max(q3, row[m])
        rows.append(row)
    return pd.DataFrame(rows)


MAX_TRADEOFF_PANELS = 6  # a sweep with at most this many conditions gets one trade-off panel per condition


def _condition_title(axes: list[str], values: tuple) -> str:
    """``sst2-minilm6`` (a profile), ``1.23 Mbit/s`` (one axis with a unit) or ``rate=4, mbps=10``."""
    parts = []
    for a, v in zip(axes, values, strict=True):
        if isinstance(v, str):  # a path's file stem, a mapping's leading keys
            v = category_labels([v])[v]
        elif isinstance(v, float | np.floating):
            v = f"{float(f'{v:.3g}'):g}"
        label = axis_label(a)
        unit = label.rsplit("(", 1)[-1].rstrip(")") if label.endswith(")") else ""
        if len(axes) == 1:
            parts.append(f"{v} {unit}".strip() if unit else f"{short_axis(a).split('.')[-1]} = {v}")
        else:
            parts.append(f"{short_axis(a).split('.')[-1]}={v}")
    return ", ".join(parts)


def tradeoff_by_condition(res: Results, styles: dict[str, PolicyStyle], st: Style, xmetric: str,
                          ymetric: str = "accuracy") -> Fig:
    """One trade-off panel per swept condition (few conditions), each with its own Pareto front."""
    agg = aggregate(res.per_rep, [*res.axes, "policy"], [xmetric, ymetric])
    groups = list(agg.groupby(res.axes, sort=True))
    rank = {a: {v: i for i, v in enumerate(_levels(res, a, agg[a]))} for a in res.axes}
    groups.sort(key=lambda kv: tuple(rank[a][v] for a, v in zip(res.axes, kv[0] if isinstance(kv[0], tuple)
                                                                  else (kv[0],), strict=True)))
    ncols = min(len(groups), 2 if st.name == "paper" else 3)
    nrows = int(np.ceil(len(groups) / ncols))
    fig, axs = _figure(st, nrows, ncols, row_height=st.height * 0.8)
    sx, sy = scale(xmetric), scale(ymetric)
    hib = higher_is_better(ymetric)
    for i, (vals, g) in enumerate(groups):
        ax = axs[i // ncols, i % ncols]
        vals = vals if isinstance(vals, tuple) else (vals,)
        g = g[g["policy"].isin(res.policies)]
        x, y = g[xmetric].to_numpy(float) * sx, g[ymetric].to_numpy(float) * sy
        xe, ye = _err(g, xmetric, sx), _err(g, ymetric, sy)
        for j, p in enumerate(g["policy"]):
            s = styles[p]
            ax.errorbar(x[j:j + 1], y[j:j + 1], xerr=xe[:, j:j + 1], yerr=ye[:, j:j + 1], fmt=s.marker,
                        color=s.colour, markerfacecolor=mcolors.to_rgba(s.colour, 0.45),
                        markeredgecolor=s.colour, markeredgewidth=0.8, elinewidth=0.6,
                        capsize=1.2 if (xe.any() or ye.any()) else 0,
                        markersize=plt.rcParams["lines.markersize"] * 0.85, zorder=3, label=p)
        front = pareto_mask(x, y) if hib else pareto_mask(x, -y)
        if front.any():
            o = np.argsort(x[front])
            ax.step(x[front][o], y[front][o], where="post", color="0.35", linestyle="--", linewidth=0.7,
                    zorder=2)
        if _is_log(x, 50):
            ax.set_xscale("log")
        ax.set_title(_condition_title(res.axes, vals), fontsize=plt.rcParams["legend.fontsize"])
    for j in range(len(groups), nrows * ncols):
        axs[j // ncols, j % ncols].set_visible(False)
    fig.supxlabel(metric_label(xmetric), fontsize=plt.rcParams["axes.labelsize"])
    fig.supylabel(metric_label(ymetric), fontsize=plt.rcParams["axes.labelsize"])
    handles = [_policy_handle(p, styles[p], line=False) for p in res.policies]
    handles.append(Line2D([], [], color="0.35", linestyle="--", label="Pareto front"))
    _legend(fig, handles, st)
    cap = (f"{metric_name(ymetric)} against {metric_name(xmetric).lower()}, one panel per swept condition "
           f"({', '.join(map(short_axis, res.axes))}); error bars are {_ci_note(agg)}; the dashed line is each "
           "condition's Pareto front.")
    return Fig(f"tradeoff_{slug(ymetric)}_vs_{slug(xmetric)}",
               f"{metric_name(ymetric)} vs {metric_name(xmetric).lower()}", cap, fig)


def tradeoff(res: Results, styles: dict[str, PolicyStyle], st: Style, xmetric: str,
             ymetric: str = "accuracy") -> Fig:
    """Accuracy (or ``ymetric``) against a cost metric, one marker per policy, with the Pareto front.

    For a sweep, each condition is a small faint point in its policy's colour, and each policy's mean over
    conditions is one large marker whose bars span the interquartile range across conditions, so that
    policies stay distinguishable however many conditions were swept.
    """
    sweep = res.kind == "sweep"
    metrics = [xmetric, ymetric]
    if sweep and 1 < res.per_rep.groupby(res.axes).ngroups <= MAX_TRADEOFF_PANELS:
        return tradeoff_by_condition(res, styles, st, xmetric, ymetric)
    cond = aggregate(res.per_rep, [*res.axes, "policy"], metrics)
    agg = _over_conditions(cond, metrics) if sweep else cond
    agg = agg.set_index("policy").loc[[p for p in res.policies if p in set(agg["policy"])]].reset_index()
    sx, sy = scale(xmetric), scale(ymetric)
    x, y = agg[xmetric].to_numpy() * sx, agg[ymetric].to_numpy() * sy
    xe, ye = _err(agg, xmetric, sx), _err(agg, ymetric, sy)
    front = pareto_mask(x, y) if higher_is_better(ymetric) else pareto_mask(x, -y)
    fig, axs = _figure(st)
    ax = axs[0, 0]
    for i, p in enumerate(agg["policy"]):
        s = styles[p]
        if sweep:
            c = cond[cond["policy"] == p]
            ax.scatter(c[xmetric] * sx, c[ymetric] * sy, s=(plt.rcParams["lines.markersize"] * 0.55) ** 2,
                       marker=s.marker, color=mcolors.to_rgba(s.colour, 0.25), linewidths=0, zorder=2)
        # half-transparent fills keep policies with (near) identical results visible on top of each other
        ax.errorbar(x[i:i + 1], y[i:i + 1], xerr=xe[:, i:i + 1], yerr=ye[:, i:i + 1], fmt=s.marker,
                    color=s.colour, markerfacecolor=mcolors.to_rgba(s.colour, 0.45), markeredgecolor=s.colour,
                    markeredgewidth=1.0, ecolor=s.colour, elinewidth=0.9 if sweep else 0.7,
                    capsize=1.5 if (xe.any() or ye.any()) else 0,
                    markersize=plt.rcParams["lines.markersize"] * (1.3 if sweep else 1.0), zorder=3, label=p)
    handles = [_policy_handle(p, styles[p], line=False) for p in agg["policy"]]
    for h in handles:
        h.set_markerfacecolor(mcolors.to_rgba(h.get_color(), 0.45))
        h.set_markeredgecolor(h.get_color())
    if front.any():
        order = np.argsort(x[front])
        fx, fy = x[front][order], y[front][order]
        ax.step(fx, fy, where="post", color="0.35", linestyle="--", linewidth=0.8, zorder=2)
        ax.scatter(fx, fy, s=(plt.rcParams["lines.markersize"] * 2.2) ** 2, facecolors="none",
                   edgecolors="0.2", linewidths=0.7, zorder=4)
        handles.append(Line2D([], [], color="0.35", linestyle="--", marker="o", markerfacecolor="none",
                              markeredgecolor="0.2", label="Pareto front"))
    allx = np.concatenate([x, cond[xmetric].to_numpy(float) * sx]) if sweep else x
    logx = _is_log(allx, 50)
    if logx:
        ax.set_xscale("log")
    _note_coincident(ax, np.log10(x) if logx else x, y, x, list(agg["policy"]))
    ax.set_xlabel(metric_label(xmetric))
    ax.set_ylabel(metric_label(ymetric))
    _legend(fig, handles, st)
    if sweep:
        cap = (f"{metric_name(ymetric)} against {metric_name(xmetric).lower()}: large markers are each "
               f"policy's mean over the {len(cond) // max(1, len(agg))} swept conditions, bars the "
               "interquartile range across conditions; small faint points are the individual conditions "
               "(means over replications).")
    else:
        cap = (f"{metric_name(ymetric)} against {metric_name(xmetric).lower()} for each policy; "
               f"error bars are {_ci_note(agg)}.")
    cap += (f" Circled points joined by the dashed line form the Pareto front "
            f"({'higher' if higher_is_better(ymetric) else 'lower'} {metric_name(ymetric).lower()} at lower "
            f"{metric_name(xmetric).lower()}).")
    return Fig(f"tradeoff_{slug(ymetric)}_vs_{slug(xmetric)}",
               f"{metric_name(ymetric)} vs {metric_name(xmetric).lower()}", cap, fig)


# -- latency distribution ----------------------------------------------------------------------------
def _completed(res: Results) -> pd.DataFrame:
    r = res.requests
    keep = np.ones(len(r), bool)
    if "warmup" in r:
        keep &= ~r["warmup"].to_numpy(bool)
    for col in ("dropped", "failed"):  # failed: lost to a device failure (scenarios with failures)
        if col in r:
            keep &= ~r[col].to_numpy(bool)
    return r[keep]


def latency_cdf(res: Results, styles: dict[str, PolicyStyle], st: Style) -> Fig:
    done = _completed(res)
    fig, axs = _figure(st)
    ax = axs[0, 0]
    q = np.concatenate([np.linspace(0, 0.99, 991), np.linspace(0.99, 1, 101)[1:]])
    lo, hi = [], []
    for p in res.policies:
        lat = done.loc[done["policy"] == p, "latency_ms"].to_numpy(float)
        if not len(lat):
            continue
        s = styles[p]
        xs = np.quantile(lat, q)
        ax.plot(xs, q, color=s.colour, linestyle=s.dash, zorder=3)
        p95, p99 = np.percentile(lat, [95, 99])
        ax.plot([p95], [0.95], marker=s.marker, color=s.colour, linestyle="none", zorder=4)
        ax.plot([p99], [0.99], marker=s.marker, markerfacecolor="white", color=s.colour, linestyle="none",
                zorder=4)
        lo.append(xs[0])
        hi.append(xs[-1])
    handles = [_policy_handle(p, styles[p]) for p in res.policies]
    handles += [Line2D([], [], color="0.3", marker="o", linestyle="none", label="p95"),
                Line2D([], [], color="0.3", marker="o", markerfacecolor="white", linestyle="none",
                       label="p99")]
    for level in (0.95, 0.99):
        ax.axhline(level, color="0.6", linewidth=0.5, linestyle=":", zorder=1)
    if lo and _is_log([min(lo), max(hi)], 30):
        ax.set_xscale("log")
    dl = res.deadline_ms
    if dl is not None:
        ax.axvline(dl, color="black", linestyle="--", linewidth=0.9, zorder=2)
        ax.annotate(f"deadline {dl:g} ms", xy=(dl, 0.02), xytext=(3, 0), textcoords="offset points",
                    ha="left", va="bottom", fontsize=plt.rcParams["legend.fontsize"])
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("Latency (ms)")
    ax.set_ylabel("Fraction of requests")
    _legend(fig, handles, st)
    cap = ("Empirical CDF of the end-to-end latency of completed requests (all replications pooled, "
           "warm-up excluded); filled markers at the 95th and open markers at the 99th percentile"
           + (f"; the dashed line is the {dl:g} ms deadline." if dl is not None else "."))
    return Fig("latency_cdf", "Latency distribution", cap, fig)


# -- metric vs a swept axis --------------------------------------------------------------------------
def metric_vs_axis(res: Results, styles: dict[str, PolicyStyle], st: Style, x: str, y: str,
                   hue: str = "policy", facet: str | None = None) -> Fig:
    """A metric against a swept axis, one line per policy (or value of ``hue``), a panel per ``facet``.

    A numeric axis is drawn as lines with confidence bands; an axis of traces or bandwidth models as
    unjoined points at each value's mean bandwidth; a categorical axis (profiles, device names, layer
    lists, mappings) as unjoined points per category, policies side by side within a category, the
    categories in the sweep file's order and labelled short (a path's file stem).
    """
    keys = [k for k in (facet, x, hue) if k]
    agg = aggregate(res.per_rep, keys, [y])
    k = scale(y)
    facets = _levels(res, facet, agg[facet]) if facet else [None]
    flabel = _value_labels(res, facet, facets) if facet else {}
    ncols = min(len(facets), 3 if st.name == "paper" else 4)
    nrows = int(np.ceil(len(facets) / ncols))
    row_h = st.height * (0.75 if nrows > 1 or ncols > 1 else 1.0)
    fig, axs = _figure(st, nrows, ncols, row_height=row_h, sharex=True, sharey=True)
    hues = _levels(res, hue, agg[hue])
    hlabel = _value_labels(res, hue, hues)
    if hue == "policy":
        hstyle = {h: styles[h] for h in hues}
    else:
        cmap = plt.get_cmap("viridis")
        hstyle = {h: PolicyStyle(mcolors.to_hex(cmap(i / max(1, len(hues) - 1) * 0.9)),
                                 "osD^v"[i % 5], "-") for i, h in enumerate(hues)}
    categorical = _categorical(res, x, agg[x])
    xlabels = _levels(res, x, agg[x])
    numeric = pd.api.types.is_numeric_dtype(agg[x])
    xs_all = np.asarray(xlabels, dtype=float if numeric else object)
    xtext = _value_labels(res, x, xlabels)
    points = x in res.point_axes
    pos = {v: (float(v) if numeric else i) for i, v in enumerate(xlabels)}
    # categories: each hue gets its own slot within a category, so that markers do not hide each other
    spread = min(0.8, 0.1 * len(hues)) if categorical and len(hues) > 1 else 0.0
    dodge = {h: (j / (len(hues) - 1) - 0.5) * spread if len(hues) > 1 else 0.0 for j, h in enumerate(hues)}
    vals = agg[y].to_numpy(float) * k
    logy = _is_log(vals, 30)
    funit = (axis_label(facet).rsplit("(", 1)[-1].rstrip(")")
                                                if facet and "(" in axis_label(facet) else "")
    panel_in = st.width / ncols - (0.6 if ncols == 1 else 0.25)
    for i, fv in enumerate(facets):
        ax = axs[i // ncols, i % ncols]
        sub = agg if fv is None else agg[agg[facet] == fv]
        for h in hues:
            g = sub[sub[hue] == h]
            g = g.iloc[np.argsort([pos[v] for v in g[x]], kind="stable")]
            if g.empty:
                continue
            s = hstyle[h]
            xv = np.array([pos[v] for v in g[x]], float)
            m = g[y].to_numpy(float) * k
            blo, bhi = g[f"{y}_lo"].to_numpy(float) * k, g[f"{y}_hi"].to_numpy(float) * k
            if categorical:  # unrelated categories: one marker per category, never joined
                ax.errorbar(xv + dodge[h], m, yerr=_err(g, y, k), fmt=s.marker, linestyle="none",
                            color=s.colour, markerfacecolor=mcolors.to_rgba(s.colour, 0.45),
                            markeredgecolor=s.colour, markeredgewidth=0.8, elinewidth=0.6, capsize=0,
                            markersize=plt.rcParams["lines.markersize"] * 0.8, label=hlabel[h])
                continue
            if points:  # unrelated conditions (e.g. different traces): points with error bars, no lines
                ax.errorbar(xv, m, yerr=_err(g, y, k), fmt=s.marker, color=s.colour, elinewidth=0.5,
                            capsize=0, markersize=plt.rcParams["lines.markersize"] * 0.6, alpha=0.8,
                            label=hlabel[h])
                continue
            ax.plot(xv, m, color=s.colour, marker=s.marker, linestyle=s.dash,
                    markersize=plt.rcParams["lines.markersize"] * 0.85, label=hlabel[h])
            if np.isfinite(blo).any() and (g["n"] >= MIN_REPLICATIONS).all():
                ax.fill_between(xv, np.where(np.isfinite(blo), blo, m), np.where(np.isfinite(bhi), bhi, m),
                                color=s.colour, alpha=0.18, linewidth=0)
        if fv is not None:
            title = (f"{flabel[fv]} {funit}" if funit
                     else f"{short_axis(facet).split('.')[-1]} = {flabel[fv]}")
            ax.set_title(_wrapped(title, panel_in), fontsize=plt.rcParams["legend.fontsize"])
        if points:  # many irregular values: ordinary ticks, not one per value
            if _is_log(xs_all, 20):
                ax.set_xscale("log")
                from matplotlib.ticker import FuncFormatter

                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        elif numeric and _is_log(xs_all, 20):
            ax.set_xscale("log")
            _value_ticks(ax.xaxis, xs_all, st.width / ncols)
        elif numeric:
            _value_ticks(ax.xaxis, xs_all, st.width / ncols, log=False)
        if logy:
            ax.set_yscale("log")
        if not numeric:
            text = [xtext[v] for v in xlabels]
            flat = _fits(text, panel_in)
            ax.set_xticks(range(len(xlabels)), text, rotation=0 if flat else 30, ha="center" if flat else "right",
                          rotation_mode="anchor")
            ax.set_xlim(-0.5, len(xlabels) - 0.5)
            if categorical:  # a faint rule between categories instead of a grid line through each
                ax.grid(axis="x", visible=False)
                for b in range(1, len(xlabels)):
                    ax.axvline(b - 0.5, color="0.85", linewidth=0.5, zorder=0)
    for j in range(len(facets), nrows * ncols):
        axs[j // ncols, j % ncols].set_visible(False)
    if nrows * ncols > 1:
        fig.supxlabel(axis_label(x), fontsize=plt.rcParams["axes.labelsize"])
        fig.supylabel(metric_label(y), fontsize=plt.rcParams["axes.labelsize"])
    else:
        axs[0, 0].set_xlabel(axis_label(x))
        axs[0, 0].set_ylabel(metric_label(y))
    unjoined = categorical or points
    handles = [Line2D([], [], color=hstyle[h].colour, marker=hstyle[h].marker,
                      linestyle="none" if unjoined else hstyle[h].dash, label=hlabel[h]) for h in hues]
    _legend(fig, handles, st, title=None if hue == "policy" else axis_label(hue))
    others = [a for a in res.axes if a not in keys]
    what = "policy" if hue == "policy" else short_axis(hue)
    if categorical:
        cap = (f"{metric_name(y)} for each {axis_label(x).lower()}, one marker per {what} (side by side "
               "within each value; values are unrelated categories, so points are not joined, and appear in "
               f"the sweep file's order); error bars are {_ci_note(agg)}")
    else:
        cap = (f"{metric_name(y)} against {axis_label(x).lower()}, one line per {what}; shaded bands are "
               f"{_ci_note(agg)}")
    if points:
        cap += ("; each point is one swept trace or bandwidth model placed at its mean bandwidth (points "
                "are not joined: neighbouring values are unrelated traces), bars are its interval")
    cap += f"; one panel per value of {short_axis(facet)}" if facet else ""
    cap += f"; averaged over {', '.join(map(short_axis, others))}." if others else "."
    name = f"{slug(y)}_vs_{slug(short_axis(x))}" + (f"_by_{slug(short_axis(facet))}" if facet else "")
    if hue != "policy":
        name += f"_hue_{slug(short_axis(hue))}"
    return Fig(name, f"{metric_name(y)} vs {short_axis(x)}", cap, fig)


def metric_bars(res: Results, styles: dict[str, PolicyStyle], st: Style, y: str) -> Fig:
    agg = aggregate(res.per_rep, ["policy"], [y])
    k = scale(y)
    fig, axs = _figure(st)
    ax = axs[0, 0]
    for i, p in enumerate(res.policies):
        row = agg[agg["policy"] == p]
        s = styles[p]
        ax.bar(i, row[y].iloc[0] * k, yerr=_err(row, y, k), color=s.colour,
               edgecolor="black", linewidth=0.4, capsize=2, label=p)
    ax.set_xticks(range(len(res.policies)), res.policies, rotation=30 if len(res.policies) > 3 else 0,
                  ha="right" if len(res.policies) > 3 else "center")
    ax.grid(axis="x", visible=False)
    ax.set_ylabel(metric_label(y))
    cap = f"{metric_name(y)} per policy; error bars are {_ci_note(agg)}."
    return Fig(f"bars_{slug(y)}", f"{metric_name(y)} per policy", cap, fig)


# -- heatmaps ------------------------------------------------------------------------------------------
def _grid(agg: pd.DataFrame, x: str, y: str, res: Results | None = None):
    return _levels(res, x, agg[x]), _levels(res, y, agg[y])


def _heat_axes(ax, xv, yv, x, y, res: Results | None = None, room_in: float = 2.0) -> None:
    xt, yt = _value_labels(res, x, xv), _value_labels(res, y, yv)
    text = [xt[v] for v in xv]
    flat = _fits(text, room_in)
    ax.set_xticks(range(len(xv)), text, rotation=0 if flat else 45, ha="center" if flat else "right",
                  rotation_mode="anchor")
    ax.set_yticks(range(len(yv)), [yt[v] for v in yv])
    ax.set_xlabel(axis_label(x))
    ax.set_ylabel(axis_label(y))
    ax.grid(False)
    for sp in ax.spines.values():
        sp.set_visible(False)


def heatmap_best(res: Results, styles: dict[str, PolicyStyle], st: Style, x: str, y: str, metric: str) -> Fig:
    agg = aggregate(res.per_rep, [x, y, "policy"], [metric])
    xv, yv = _grid(agg, x, y, res)
    hib = higher_is_better(metric)
    idx = {p: i for i, p in enumerate(res.policies)}
    best = np.full((len(yv), len(xv)), np.nan)
    tie = np.zeros_like(best, bool)
    for (xi, a), (yi, b) in ((pa, pb) for pa in enumerate(xv) for pb in enumerate(yv)):
        cell = agg[(agg[x] == a) & (agg[y] == b)].dropna(subset=[metric])
        if cell.empty:
            continue
        cell = cell.sort_values(metric, ascending=not hib)
        best[yi, xi] = idx[cell["policy"].iloc[0]]
        if len(cell) > 1:
            m0, c0 = cell[metric].iloc[0], _nan0(cell[f"{metric}_ci"].iloc[0])
            m1, c1 = cell[metric].iloc[1], _nan0(cell[f"{metric}_ci"].iloc[1])
            tie[yi, xi] = abs(m0 - m1) <= c0 + c1
    w, h = st.size()
    fig, axs = _figure(st, row_height=max(h - 0.35, 0.28 * len(yv) + 1.1))
    ax = axs[0, 0]
    cmap = mcolors.ListedColormap([styles[p].colour for p in res.policies])
    ax.imshow(np.ma.masked_invalid(best), cmap=cmap, vmin=-0.5, vmax=len(res.policies) - 0.5, aspect="auto",
              origin="lower", interpolation="nearest")
    ms = min(plt.rcParams["lines.markersize"], 80 / max(len(xv), len(yv)))
    for yi in range(len(yv)):
        for xi in range(len(xv)):
            if np.isnan(best[yi, xi]):
                continue
            p = res.policies[int(best[yi, xi])]
            ax.plot(xi, yi, marker=styles[p].marker, color="white", markeredgecolor="black",
                    markeredgewidth=0.4, markersize=ms, linestyle="none")
            if tie[yi, xi]:
                ax.add_patch(plt.Rectangle((xi - 0.5, yi - 0.5), 1, 1, fill=False, hatch="////",
                                           edgecolor="white", linewidth=0))
    _heat_axes(ax, xv, yv, x, y, res, st.width - 1.2)
    present = sorted({res.policies[int(v)] for v in best[np.isfinite(best)]}, key=res.policies.index)
    handles = [Patch(facecolor=styles[p].colour, label=p) for p in present]
    if tie.any():
        handles.append(Patch(facecolor="0.6", hatch="////", edgecolor="white", label="within CI"))
    _legend(fig, handles, st)
    cap = (f"Best policy by {metric_name(metric).lower()} ({'highest' if hib else 'lowest'} mean over "
           f"replications) for each {short_axis(x)} × {short_axis(y)} cell; the marker repeats the policy's "
           "colour code. Hatched cells: the runner-up is within the 95 % confidence intervals.")
    others = [a for a in res.axes if a not in (x, y)]
    cap += f" Averaged over {', '.join(map(short_axis, others))}." if others else ""
    return Fig(f"best_policy_{slug(metric)}_{slug(short_axis(x))}_{slug(short_axis(y))}",
               f"Best policy ({metric_name(metric).lower()})", cap, fig)


NOISE_REL = 1e-9  # differences below this fraction of the values compared are floating-point noise


def margin_grid(agg: pd.DataFrame, x: str, y: str, metric: str, a: str, b: str, res: Results | None = None):
    """(x values, y values, a − b per cell, whether each cell differs beyond numerical noise)."""
    xv, yv = _grid(agg, x, y, res)
    diff = np.full((len(yv), len(xv)), np.nan)
    real = np.zeros_like(diff, bool)
    for xi, xa in enumerate(xv):
        for yi, yb in enumerate(yv):
            cell = agg[(agg[x] == xa) & (agg[y] == yb)].set_index("policy")[metric]
            if a in cell and b in cell and np.isfinite(cell[a]) and np.isfinite(cell[b]):
                diff[yi, xi] = cell[a] - cell[b]
                noise = NOISE_REL * max(abs(cell[a]), abs(cell[b])) + 1e-15
                real[yi, xi] = abs(diff[yi, xi]) > noise
    diff[np.isfinite(diff) & ~real] = 0.0
    return xv, yv, diff, real


def margin_signal(agg: pd.DataFrame, x: str, y: str, metric: str, a: str, b: str) -> float:
    """How much a margin heatmap of ``a`` over ``b`` would show: the mean |a − b| over cells in units of the
    two policies' interval half-widths (noise-level differences count as 0; 0 when nothing differs)."""
    _, _, diff, real = margin_grid(agg, x, y, metric, a, b)
    if not real.any():
        return 0.0
    ci = agg.groupby("policy")[f"{metric}_ci"].mean()
    spread = float(np.nan_to_num(ci.get(a, 0.0)) + np.nan_to_num(ci.get(b, 0.0)))
    scale_ = spread if spread > 0 else float(np.nanmean(np.abs(diff[real])))
    return float(np.nanmean(np.abs(diff)) / scale_) if scale_ > 0 else 0.0


def heatmap_margin(res: Results, styles: dict[str, PolicyStyle], st: Style, x: str, y: str, metric: str,
                   a: str, b: str) -> Fig:
    """``a`` minus ``b`` in each cell of two swept axes; cells within numerical noise read "no difference"."""
    agg = aggregate(res.per_rep, [x, y, "policy"], [metric])
    k = scale(metric)
    xv, yv, diff, real = margin_grid(agg, x, y, metric, a, b, res)
    diff = diff * k
    w, h = st.size()
    fig, axs = _figure(st, row_height=max(h - 0.35, 0.28 * len(yv) + 1.1))
    ax = axs[0, 0]
    vmax = np.nanmax(np.abs(diff[real])) if real.any() else 1.0
    vmax = vmax if vmax > 0 else 1.0
    cmap = plt.get_cmap("PuOr" if higher_is_better(metric) else "PuOr_r").copy()
    shown = np.where(real, diff, np.nan)
    ax.imshow(np.where(np.isfinite(diff) & ~real, 0.0, np.nan), cmap=mcolors.ListedColormap(["0.85"]),
              aspect="auto", origin="lower", interpolation="nearest")
    im = ax.imshow(np.ma.masked_invalid(shown), cmap=cmap, vmin=-vmax, vmax=vmax, aspect="auto",
                   origin="lower", interpolation="nearest")
    labels = [[_signed(v) if r else "=" for v, r in zip(row, rrow, strict=True)] for row, rrow in zip(diff, real,
                                                                                                   strict=True)]
    chars = max((len(t) for row in labels for t in row), default=1)
    cell_in = (st.width - 1.2) / max(1, len(xv))
    fs = min(plt.rcParams["xtick.labelsize"], cell_in * 72 / (0.62 * chars + 0.5))
    if fs >= 4.5 and len(yv) <= 20:  # only when the numbers fit their cells
        for yi in range(len(yv)):
            for xi in range(len(xv)):
                v = diff[yi, xi]
                if np.isfinite(v):
                    ax.text(xi, yi, labels[yi][xi], ha="center", va="center", fontsize=fs,
                            color="white" if real[yi, xi] and abs(v) > 0.6 * vmax else "black")
    _heat_axes(ax, xv, yv, x, y, res, st.width - 1.6)
    _, unit, _ = metric_info(metric)
    cb = fig.colorbar(im, ax=ax, shrink=0.9, pad=0.02)
    cb.set_label(f"Δ {metric_name(metric).lower()}" + (f" ({unit})" if unit else ""))
    better = "positive" if higher_is_better(metric) else "negative"
    cap = (f"Margin of {a} over {b}: mean {metric_name(metric).lower()} of {a} minus that of {b} in each "
           f"{short_axis(x)} × {short_axis(y)} cell; {better} values (purple) favour {a}, orange ones {b}; "
           "grey cells marked '=' differ by less than numerical noise (no difference).")
    fig.suptitle(f"{a} − {b}", fontsize=plt.rcParams["axes.titlesize"])
    return Fig(f"margin_{slug(metric)}_{slug(a)}_vs_{slug(b)}", f"Margin of {a} over {b}", cap, fig)


# -- where requests end ------------------------------------------------------------------------------
def exit_layers(res: Results, styles: dict[str, PolicyStyle], st: Style) -> Fig:
    done = _completed(res)
    deepest = [int(t["layers"][1]) for t in (res.config.get("tiers") or {}).values()
               if isinstance(t, dict) and t.get("layers")]
    top = max([*deepest, *(int(v) for v in done["exit_layer"].unique())], default=1)
    layers = list(range(1, top + 1))
    fig, axs = _figure(st)
    ax = axs[0, 0]
    n = len(res.policies)
    width = 0.8 / n
    for i, p in enumerate(res.policies):
        lay = done.loc[done["policy"] == p, "exit_layer"]
        frac = lay.value_counts(normalize=True).reindex(layers, fill_value=0.0).to_numpy() * 100
        s = styles[p]
        ax.bar(np.arange(len(layers)) + (i - (n - 1) / 2) * width, frac, width=width, color=s.colour,
               edgecolor="black", linewidth=0.3, label=p)
    ax.set_xticks(range(len(layers)), [str(v) for v in layers])
    ax.grid(axis="x", visible=False)
    ax.set_xlabel("Exit layer")
    ax.set_ylabel("Requests (%)")
    ax.set_ylim(0, 105)
    _legend(fig, [Patch(facecolor=styles[p].colour, edgecolor="black", linewidth=0.3, label=p)
                  for p in res.policies], st)
    cap = "Share of completed requests that exit at each layer, per policy (all replications pooled)."
    return Fig("exit_layers", "Exit layer distribution", cap, fig)


def exit_tiers(res: Results, styles: dict[str, PolicyStyle], st: Style) -> Fig:
    tiers = [t for t in res.tiers if f"exit_frac_{t}" in res.per_rep]
    agg = aggregate(res.per_rep, ["policy"], [f"exit_frac_{t}" for t in tiers]).set_index("policy")
    fig, axs = _figure(st, row_height=max(1.2, 0.32 * len(res.policies) + 0.9))
    ax = axs[0, 0]
    hatches = ["", "///", "...", "xxx", "\\\\\\", "ooo"]
    ypos = np.arange(len(res.policies))[::-1]
    left = np.zeros(len(res.policies))
    for j, t in enumerate(tiers):
        v = agg.loc[res.policies, f"exit_frac_{t}"].to_numpy(float) * 100
        v = _nan0(v)
        ax.barh(ypos, v, left=left, color=TIER_COLOURS[j % len(TIER_COLOURS)], hatch=hatches[j % len(hatches)],
                edgecolor="white", linewidth=0.4, label=t, height=0.7)
        for yy, lf, vv in zip(ypos, left, v, strict=True):
            if vv >= 12:
                ax.text(lf + vv / 2, yy, f"{vv:.0f}", ha="center", va="center", color="white",
                        fontsize=plt.rcParams["xtick.labelsize"],
                        bbox={"boxstyle": "round,pad=0.1", "facecolor": "black", "alpha": 0.35, "linewidth": 0})
        left += v
    ax.set_yticks(ypos, res.policies)
    for lab in ax.get_yticklabels():
        lab.set_color(styles[lab.get_text()].colour if lab.get_text() in styles else "black")
    ax.set_xlim(0, 100)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel("Requests (%)")
    _legend(fig, [Patch(facecolor=TIER_COLOURS[j % len(TIER_COLOURS)], hatch=hatches[j % len(hatches)],
                        edgecolor="white", label=t) for j, t in enumerate(tiers)], st)
    over = "replications" if res.kind == "run" else "replications and all swept conditions"
    cap = f"Tier at which completed requests exit, per policy (mean over {over}); labels in %."
    return Fig("exit_tiers", "Exit tier distribution", cap, fig)


# -- one run over time -------------------------------------------------------------------------------
def _step_sum(g: pd.DataFrame, grid: np.ndarray) -> np.ndarray:
    """Sum over entities of step functions (value held from each sample until the next) on ``grid``."""
    total = np.zeros(len(grid))
    for _, e in g.groupby("entity", sort=True):
        e = e.sort_values("time_s", kind="stable")
        t, v = e["time_s"].to_numpy(float), e["value"].to_numpy(float)
        i = np.searchsorted(t, grid, side="right") - 1
        total += np.where(i >= 0, v[np.maximum(i, 0)], 0.0)
    return total


def _step_mean(g: pd.DataFrame, edges: np.ndarray) -> np.ndarray:
    """Time-weighted mean per bin of ``edges`` of the sum over entities of their step functions."""
    times = np.unique(np.concatenate([g["time_s"].to_numpy(float), edges]))
    total = _step_sum(g, times)
    area = np.concatenate([[0.0], np.cumsum(total[:-1] * np.diff(times))])
    return np.diff(np.interp(edges, times, area)) / np.diff(edges)


def trip_temperatures(res: Results) -> list[float]:
    """Thermal trip temperatures (°C) of the devices of the run's tiers (scenario overrides first)."""
    from ..device import builtin_catalogue

    cat = builtin_catalogue()
    own = res.config.get("devices") or {}
    temps: set[float] = set()
    for t in (res.config.get("tiers") or {}).values():
        name = t.get("device") if isinstance(t, dict) else None
        if name is None or (isinstance(t, dict) and t.get("throttling") is False):
            continue
        spec = own.get(name) if isinstance(own.get(name), dict) else None
        trips = (spec.get("thermal") or {}).get("trips") if spec else None
        if trips is None and name in cat and cat[name].thermal.enabled:
            trips = cat[name].thermal.trips
        temps.update(float(tr[0]) for tr in trips or [])
    return sorted(temps)


def initial_thermal(res: Results, tier: str) -> dict[str, float] | None:
    """Temperature (°C) and frequency factor of a tier's devices at time 0, from the scenario (a device
    is only sampled when it changes, so one that stays idle has no sample before the end of the run)."""
    from ..device import builtin_catalogue

    t = (res.config.get("tiers") or {}).get(tier)
    if not isinstance(t, dict) or t.get("device") is None:
        return None
    own = res.config.get("devices") or {}
    spec = own.get(t["device"]) if isinstance(own.get(t["device"]), dict) else None
    th = (spec or {}).get("thermal") if spec else None
    if th is None:
        cat = builtin_catalogue()
        if t["device"] not in cat:
            return None
        c = cat[t["device"]].thermal
        th = {"ambient_c": c.ambient_c, "initial_c": c.initial_c, "trips": c.trips}
    ambient, initial = th.get("ambient_c", 25.0), th.get("initial_c")
    if t.get("ambient_c") is not None and (initial is None or initial == ambient):
        initial = t["ambient_c"]
    temp = float(ambient if initial is None else initial)
    freq = 1.0
    for trip_c, factor in th.get("trips") or []:
        if temp >= trip_c - 1e-6:
            freq = float(factor)
    return {"temperature_c": temp, "frequency": freq}


def _from_start(res: Results, g: pd.DataFrame, series: str) -> pd.DataFrame:
    """A device's temperature or frequency series with its state at time 0 added where its first sample
    comes later (the scenario gives that state)."""
    if g.empty:
        return g
    first = g.sort_values("time_s", kind="stable").groupby(["policy", "entity"], sort=False).head(1)
    first = first[first["time_s"] > 0]
    starts = {t: (initial_thermal(res, t) or {}).get(series) for t in first["tier"].unique()}
    first = first[first["tier"].map(starts).notna()]
    if first.empty:
        return g
    first = first.assign(time_s=0.0, value=first["tier"].map(starts).astype(float))
    return pd.concat([first, g], ignore_index=True)


def _trip_lines(ax, res: Results) -> None:
    """Dotted lines at the trip temperatures near the plotted range, each labelled at the left (devices
    start near ambient, below their trips, so the left end is where lines are least likely)."""
    fs = plt.rcParams["legend.fontsize"]
    lo, hi = ax.get_ylim()
    for trip in trip_temperatures(res):
        if lo - 5 <= trip <= hi + 5:
            ax.axhline(trip, color="0.4", linestyle=":", linewidth=0.7, zorder=1)
            ax.annotate(f"trip {trip:g} °C", xy=(0, trip), xycoords=("axes fraction", "data"),
                        xytext=(2, 1), textcoords="offset points", ha="left", va="bottom",
                        fontsize=fs - 1, color="0.3", zorder=5,
                        bbox={"boxstyle": "square,pad=0.05", "facecolor": "white", "alpha": 0.75,
                              "linewidth": 0})


def _shown_note(shown: int, total: int) -> str:
    return f" ({shown} of {total} shown)" if total > shown else ""


def timeline(res: Results, styles: dict[str, PolicyStyle], st: Style, policy: str,
             max_entities: int = 4) -> Fig:
    tl = res.timeline
    tl = tl[(tl["policy"] == policy) & (tl["replication"] == tl["replication"].min())]
    req = res.requests
    req = req[(req["policy"] == policy) & (req["replication"] == tl["replication"].min())] \
        if req is not None and len(tl) else None
    end = float(tl["time_s"].max()) if len(tl) else 1.0
    if req is not None and len(req):
        end = max(end, float(req["finish_s"].max()))
    tiers = res.tiers or sorted(tl["tier"].unique())
    tcol = {t: TIER_COLOURS[i % len(TIER_COLOURS)] for i, t in enumerate(tiers)}
    panels = []
    bw = tl[tl["series"] == "bandwidth_mbps"]
    if len(bw):
        panels.append("bw")
    if (tl["series"] == "in_system").any():
        panels.append("queue")
    therm = tl[(tl["series"] == "temperature_c")]
    if len(therm):
        panels += ["temp", "freq"]
    if req is not None and len(req):
        panels.append("lat")
    rows = max(1, len(panels))
    fig, axs = _figure(st, rows, 1, row_height=st.height * (0.5 if st.name == "paper" else 0.42), sharex=True)
    fs = plt.rcParams["legend.fontsize"]

    def entity_lines(ax, g, label_fmt, linear=False):
        ents = sorted(g["entity"].unique(), key=lambda e: (tiers.index(g.loc[g["entity"] == e, "tier"].iloc[0])
                                                           if g.loc[g["entity"] == e, "tier"].iloc[0] in tiers
                                                           else 99, len(e), e))
        shown = ents[:max_entities]
        alphas = np.linspace(1.0, 0.45, max(1, len(shown)))
        by_tier: dict[str, int] = {}
        for e in shown:
            ge = g[g["entity"] == e].sort_values("time_s", kind="stable")
            t = ge["tier"].iloc[0]
            n = by_tier.get(t, 0)
            by_tier[t] = n + 1
            tt = np.append(ge["time_s"].to_numpy(float), end)
            vv = np.append(ge["value"].to_numpy(float), ge["value"].iloc[-1])
            ax.plot(tt, vv, drawstyle="default" if linear else "steps-post", color=tcol.get(t, "0.3"),
                    alpha=float(alphas[min(n, len(alphas) - 1)]),
                    linewidth=0.8, label=label_fmt(e))
        return _shown_note(len(shown), len(ents))

    for ax, kind in zip(axs[:, 0], panels, strict=False):
        if kind == "bw":
            first = tiers[0] if tiers else None
            g = bw[bw["tier"] == first] if first is not None and (bw["tier"] == first).any() else bw
            link = next(iter(res.config.get("links") or {"uplink": None}))
            note = entity_lines(ax, g, lambda e: e)
            ax.set_ylabel("Mbit/s")
            ax.set_title(f"{link.capitalize()} bandwidth per {first or ''} device{note}".replace("  ", " "),
                         loc="left", fontsize=fs)
            ax.set_ylim(bottom=0)
        elif kind == "queue":
            q = tl[tl["series"] == "in_system"]
            edges = np.linspace(0, end, 201)
            mids = np.repeat(edges, 2)[1:-1]
            for t in [t for t in tiers if (q["tier"] == t).any()]:
                v = _step_mean(q[q["tier"] == t], edges)
                ax.plot(mids, np.repeat(v, 2), color=tcol[t], linewidth=0.8, label=t)
            ax.set_ylabel("Requests")
            ax.set_title(f"Requests in system per tier (mean per {end / 200:.2g} s)", loc="left", fontsize=fs)
            ax.set_ylim(bottom=0)
        elif kind == "temp":
            note = entity_lines(ax, _from_start(res, therm, "temperature_c"), lambda e: e, linear=True)
            _trip_lines(ax, res)
            ax.set_ylabel("°C")
            ax.set_title(f"Device temperature{note}", loc="left", fontsize=fs)
        elif kind == "freq":
            note = entity_lines(ax, _from_start(res, tl[tl["series"] == "frequency"], "frequency"), lambda e: e)
            ax.set_ylabel("Relative")
            ax.set_title(f"Device clock frequency{note}", loc="left", fontsize=fs)
            lo, hi = ax.get_ylim()
            ax.set_ylim(min(lo, 0.0), max(hi, 1.05))
        elif kind == "lat":
            s = styles[policy]
            ok = req["exit_layer"].to_numpy() > 0 if "exit_layer" in req else np.ones(len(req), bool)
            ax.scatter(req["arrival_s"].to_numpy()[ok], req["latency_ms"].to_numpy()[ok], s=2, color=s.colour,
                       marker=".", linewidths=0, rasterized=len(req) > 5000)
            if res.deadline_ms is not None:
                ax.axhline(res.deadline_ms, color="black", linestyle="--", linewidth=0.8)
                ax.annotate(f"deadline {res.deadline_ms:g} ms", xy=(1, res.deadline_ms),
                            xycoords=("axes fraction", "data"), xytext=(0, 2), textcoords="offset points",
                            ha="right", va="bottom", fontsize=fs - 1)
            ax.set_ylabel("ms")
            ax.set_title("Per-request latency (by arrival time)", loc="left", fontsize=fs)
            if _is_log(req["latency_ms"].to_numpy()[ok], 100):
                ax.set_yscale("log")
    used = sorted(set(tl["tier"]) & set(tiers), key=tiers.index)
    handles = [Line2D([], [], color=tcol[t], label=t) for t in used]
    if "lat" in panels:
        handles.append(Line2D([], [], color=styles[policy].colour, marker=".", linestyle="none",
                              label="request"))
    figure_legend(fig, handles, len(handles), title=f"Policy: {policy}", handletextpad=0.4, borderaxespad=0.2,
                  handlelength=1.2)
    axs[-1, 0].set_xlabel("Simulated time (s)")
    axs[-1, 0].set_xlim(0, end)
    cap = (f"One run over time (policy {policy}, replication 0): uplink bandwidth, requests in the system "
           "per tier, device temperature (joined linearly between the samples taken when the device's state "
           "changes) and clock frequency (throttling), and per-request latency.")
    return Fig(f"timeline_{slug(policy)}", f"Timeline: {policy}", cap, fig)


def _values_at(g: pd.DataFrame, grid: np.ndarray, linear: bool) -> np.ndarray:
    """Mean over entities of their series on ``grid``: held from sample to sample (a step), or joined
    linearly (temperature, a continuous quantity sampled only when the device's state changes); each
    entity keeps its first value before its first sample and its last after its last."""
    total = np.zeros(len(grid))
    ents = list(g.groupby("entity", sort=True))
    for _, e in ents:
        e = e.sort_values("time_s", kind="stable")
        t, v = e["time_s"].to_numpy(float), e["value"].to_numpy(float)
        if linear:
            total += np.interp(grid, t, v)
        else:
            total += v[np.maximum(np.searchsorted(t, grid, side="right") - 1, 0)]
    return total / max(1, len(ents))


THERMAL_SERIES = {"temperature_c": ("Temperature", "°C"), "frequency": ("Clock frequency", "Relative")}


def timeline_thermal(res: Results, styles: dict[str, PolicyStyle], st: Style, policies: list[str],
                     points: int = 600, markers: int = 6) -> Fig:
    """Device temperature and clock frequency over time, every policy overlaid (one line each).

    One device per policy is drawn from its own samples; several devices (of the first tier that heats)
    as their mean, on ``points`` times. Temperature is joined linearly between samples, frequency held
    (it moves in steps). ``markers`` markers per line, at times shifted per policy, tell overlapping lines
    apart; the dotted lines are the devices' trip temperatures.
    """
    tl = res.timeline
    rep0 = tl["replication"].min()
    tl = tl[tl["policy"].isin(policies) & (tl["replication"] == rep0)]
    heats = tl[tl["series"] == "temperature_c"]
    tiers = [t for t in res.tiers if (heats["tier"] == t).any()] or sorted(heats["tier"].unique())
    tier = tiers[0]
    tl = tl[tl["tier"] == tier]
    series = [s for s in THERMAL_SERIES if (tl["series"] == s).any()]
    shown = [p for p in policies if ((heats["policy"] == p) & (heats["tier"] == tier)).any()]
    req = res.requests
    ends = {}
    for p in shown:
        end = float(tl.loc[tl["policy"] == p, "time_s"].max())
        if req is not None and len(req):
            r = req.loc[(req["policy"] == p) & (req["replication"] == rep0), "finish_s"]
            end = max(end, float(r.max())) if len(r) else end
        ends[p] = end
    end_all = max(ends.values(), default=1.0) or 1.0
    fig, axs = _figure(st, len(series), 1, row_height=st.height * (0.62 if st.name == "paper" else 0.5),
                       sharex=True)
    fs = plt.rcParams["legend.fontsize"]
    th = tl[tl["series"].isin(series)]
    n_dev = int(th.groupby("policy")["entity"].nunique().max()) if len(th) else 1
    for ax, name in zip(axs[:, 0], series, strict=True):
        sub = _from_start(res, tl[tl["series"] == name], name)
        linear = name == "temperature_c"
        for j, p in enumerate(shown):
            g = sub[sub["policy"] == p]
            if g.empty:
                continue
            end = ends[p]
            s = styles[p]
            if g["entity"].nunique() == 1:
                g = g.sort_values("time_s", kind="stable")
                tt = np.append(g["time_s"].to_numpy(float), end)
                vv = np.append(g["value"].to_numpy(float), g["value"].iloc[-1])
            else:
                tt = np.linspace(0.0, end, points)
                vv = _values_at(g, tt, linear)
            if linear:
                ax.plot(tt, vv, color=s.colour, linestyle=s.dash, linewidth=0.9, zorder=3)
            else:
                ax.step(tt, vv, where="post", color=s.colour, linestyle=s.dash, linewidth=0.9, zorder=3)
            mt = end_all * (np.arange(markers) + (j + 0.5) / max(1, len(shown))) / markers
            mt = mt[mt <= end]
            ax.plot(mt, _values_at(g, mt, linear), linestyle="none", marker=s.marker, color=s.colour,
                    markersize=plt.rcParams["lines.markersize"] * 0.75, markerfacecolor="white",
                    markeredgecolor=s.colour, markeredgewidth=0.8, zorder=4, label=p)
        what, unit = THERMAL_SERIES[name]
        ax.set_ylabel(unit)
        who = f"mean of {n_dev} {tier} devices" if n_dev > 1 else f"{tier} device"
        ax.set_title(f"{what} ({who})", loc="left", fontsize=fs)
        if name == "temperature_c":
            _trip_lines(ax, res)
        else:
            lo, hi = ax.get_ylim()
            ax.set_ylim(min(lo, 0.0), max(hi, 1.05))
    axs[-1, 0].set_xlabel("Simulated time (s)")
    axs[-1, 0].set_xlim(0, end_all)
    handles = [_policy_handle(p, styles[p]) for p in shown]
    for h in handles:
        h.set_markerfacecolor("white")
    _legend(fig, handles, st)
    devices = f"the mean over the {n_dev} {tier} devices" if n_dev > 1 else f"the {tier} device"
    cap = (f"Temperature and clock frequency (throttling) of {devices} over one run (replication 0), one "
           "line per policy (temperature joined linearly between the samples taken when the device's state "
           "changes); dotted lines are the trip temperatures at which the device slows down.")
    return Fig("timeline_thermal", "Timeline: temperature and frequency, all policies", cap, fig)
