"""Per-policy summary tables (mean [95 % interval] over replications) as booktabs LaTeX, Markdown and HTML."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass

import pandas as pd

from ..intervals import METHOD, few_replications_warning
from .labels import axis_label, metric_info, short_axis
from .load import Results, aggregate

MAIN_METRICS = ["accuracy", "latency_mean_ms", "latency_p95_ms", "latency_p99_ms", "cost_mean",
                "energy_mobile_j_per_req", "bytes_per_req"]


@dataclass
class Table:
    name: str
    title: str
    caption: str
    header: list[str]  # plain text with units
    rows: list[list[str]]  # formatted cells (plain text, 'mean [lo, hi]' for intervals)
    values: pd.DataFrame  # the unformatted means and interval bounds in display units

    def latex(self) -> str:
        align = "l" * self.n_keys + "r" * (len(self.header) - self.n_keys)
        lines = [f"% {self.caption}", f"\\begin{{tabular}}{{{align}}}", "\\toprule",
                 " & ".join(_tex(h) for h in self.header) + " \\\\", "\\midrule"]
        for r in self.rows:
            lines.append(" & ".join(_tex_cell(c) for c in r) + " \\\\")
        lines += ["\\bottomrule", "\\end{tabular}", ""]
        return "\n".join(lines)

    def markdown(self) -> str:
        align = ["---"] * self.n_keys + ["---:"] * (len(self.header) - self.n_keys)
        lines = ["| " + " | ".join(_md(h) for h in self.header) + " |", "| " + " | ".join(align) + " |"]
        lines += ["| " + " | ".join(_md(c) for c in r) + " |" for r in self.rows]
        return "\n".join(lines) + "\n"

    def html(self) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.header)
        body = "".join("<tr>" + "".join(
            f'<td{" class=num" if i >= self.n_keys else ""}>{html.escape(c)}</td>' for i, c in enumerate(r))
            + "</tr>\n" for r in self.rows)
        return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>"

    n_keys: int = 1


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "°": r"\textdegree{}"}


def _tex(s: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in str(s))


def _tex_cell(s: str) -> str:
    if " [" in s and s.endswith("]"):
        m, rest = s.split(" [", 1)
        lo, hi = rest[:-1].split(", ")
        return f"${m}\\ [{lo}, {hi}]$"
    return _tex(s)


def _md(s: str) -> str:
    return str(s).replace("|", "\\|")


def _decimals_for(v: float, sig: int) -> int:
    if not math.isfinite(v) or v == 0:
        return 2
    return max(0, min(6, sig - 1 - math.floor(math.log10(abs(v)))))


def format_mean_ci(mean: float, lo: float, hi: float) -> str:
    """``mean [lo, hi]``: the interval's half-width to two significant digits sets the decimals.

    No interval (one replication, nan bounds) or none needed (identical replications) gives the mean
    alone to three significant digits.
    """
    if not math.isfinite(mean):
        return "–"
    if math.isfinite(lo) and math.isfinite(hi) and hi - lo > 1e-9 * max(abs(mean), 1e-12):
        d = _decimals_for((hi - lo) / 2, 2)
        return f"{mean:.{d}f} [{lo:.{d}f}, {hi:.{d}f}]"
    d = _decimals_for(mean, 3) if mean != 0 else 0
    return f"{mean:.{d}f}"


def _value(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def summary_table(res: Results, metrics: list[str], name: str, title: str) -> Table | None:
    metrics = [m for m in metrics if m in res.metrics]
    if not metrics:
        return None
    keys = [*res.axes, "policy"]
    agg = aggregate(res.per_rep, keys, metrics)
    order = {p: i for i, p in enumerate(res.policies)}
    agg = agg.sort_values(keys, key=lambda c: c.map(order) if c.name == "policy" else c, kind="stable")
    header = [axis_label(a) if len(res.axes) < 3 else short_axis(a) for a in res.axes] + ["Policy"]
    vals = agg[keys].copy()
    for m in metrics:
        nm, unit, k = metric_info(m)
        header.append(f"{nm} ({unit})" if unit else nm)
        vals[m] = agg[m] * k
        vals[f"{m}_lo"] = agg[f"{m}_lo"] * k
        vals[f"{m}_hi"] = agg[f"{m}_hi"] * k
    rows = []
    for _, r in vals.iterrows():
        rows.append([_value(r[a]) for a in res.axes] + [str(r["policy"])]
                    + [format_mean_ci(float(r[m]), float(r[f"{m}_lo"]), float(r[f"{m}_hi"])) for m in metrics])
    n = sorted(set(agg["n"]))
    reps = f"{n[0]}" if len(n) == 1 else f"{n[0]}–{n[-1]}"
    cap = f"{title}: mean [95 % interval] over {reps} replication(s)"
    cap += " per condition" if res.axes else ""
    cap += f"; {METHOD}. A value without an interval had one replication or identical replications."
    warn = few_replications_warning(n[0])
    cap += f" Warning: {warn}." if warn else ""
    t = Table(name, title, cap, header, rows, vals)
    t.n_keys = len(keys)
    return t


def tables_for(res: Results) -> list[Table]:
    out = [summary_table(res, MAIN_METRICS, "summary", "Per-policy summary")]
    extra = [f"exit_frac_{t}" for t in res.tiers] + ["mean_exit_layer", "drop_rate", "deadline_miss_rate",
                                                     "throughput_rps"]
    out.append(summary_table(res, extra, "exits", "Where requests end, drops and deadline misses"))
    return [t for t in out if t is not None]
