"""Figure styles (paper / slides), the policy -> colour/marker mapping, and deterministic saving."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# Okabe & Ito (2008), ordered so that the first colours are the most distinct on white (yellow last).
OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7", "#56B4E9", "#000000", "#F0E442"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
DASHES = ["-", "--", "-.", ":"]
# Paul Tol's 'muted' colours, for tiers and devices (kept apart from the policy colours).
TIER_COLOURS = ["#332288", "#117733", "#AA4499", "#88CCEE", "#999933", "#882255", "#44AA99", "#DDCC77"]

STYLES = {
    "paper": {
        "width": 3.3, "height": 2.3, "font": 8,
        "rc": {"font.family": "serif", "font.serif": ["DejaVu Serif"], "mathtext.fontset": "dejavuserif",
               "lines.linewidth": 1.1, "lines.markersize": 4.5, "axes.linewidth": 0.6,
               "grid.linewidth": 0.4, "xtick.major.width": 0.6, "ytick.major.width": 0.6},
    },
    "slides": {
        "width": 8.0, "height": 4.5, "font": 14,
        "rc": {"font.family": "sans-serif", "font.sans-serif": ["DejaVu Sans"], "mathtext.fontset": "dejavusans",
               "lines.linewidth": 2.0, "lines.markersize": 8, "axes.linewidth": 1.0,
               "grid.linewidth": 0.6},
    },
}


@dataclass(frozen=True)
class Style:
    name: str
    width: float
    height: float
    font: float

    def size(self, rows: int = 1, cols: int = 1, row_height: float | None = None) -> tuple[float, float]:
        """Figure size: full style width; height grows with the number of rows of panels."""
        h = row_height if row_height is not None else (self.height if rows == 1 else self.height * 0.62)
        return self.width, h * rows + (0.35 if rows == 1 else 0.3)

    def legend_cols(self, labels: Iterable[str], width: float | None = None) -> int:
        """How many legend columns fit across the figure without overlapping."""
        labels = list(labels)
        if not labels:
            return 1
        char_w = 0.55 * (self.font - 1) / 72
        per = max(len(s) for s in labels) * char_w + 0.45
        return max(1, min(len(labels), int((width or self.width) // per)))


def get_style(name: str) -> Style:
    s = STYLES[name]
    return Style(name, s["width"], s["height"], s["font"])


@contextmanager
def style_context(style: Style) -> Iterator[None]:
    """Matplotlib settings shared by every figure of a report."""
    f = style.font
    rc = {
        "pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "none", "svg.hashsalt": "eesim",
        "font.size": f, "axes.labelsize": f, "axes.titlesize": f, "legend.fontsize": f - 1,
        "xtick.labelsize": f - 1, "ytick.labelsize": f - 1, "figure.titlesize": f,
        "legend.frameon": False, "legend.handlelength": 1.8, "legend.columnspacing": 1.0,
        "axes.grid": True, "grid.alpha": 0.35, "axes.spines.top": False, "axes.spines.right": False,
        "savefig.dpi": 300 if style.name == "paper" else 150, "figure.dpi": 100,
        "path.simplify": True, "image.cmap": "viridis", "axes.axisbelow": True,
        "hatch.linewidth": 0.5,
        **STYLES[style.name]["rc"],
    }
    with plt.rc_context(rc):
        yield


@dataclass(frozen=True)
class PolicyStyle:
    colour: str
    marker: str
    dash: str


# Shipped policies keep these in every report, whatever else is plotted next to them.
FIXED_STYLES = {
    "all-mobile": ("#009E73", "o", "-"), "all-edge": ("#E69F00", "s", "-"),
    "all-cloud": ("#0072B2", "D", "-"), "fixed-split": ("#56B4E9", "v", "-"),
    "dimee": ("#D55E00", "*", "-"), "threshold": ("#CC79A7", "^", "-"),
    "confidence": ("#000000", "P", "-"), "deebert": ("#000000", "X", "--"),
    "pabee": ("#CC79A7", "v", "--"), "beem": ("#56B4E9", "^", "--"),
    "splitee": ("#009E73", "s", "--"), "splitee-s": ("#009E73", "D", "-."),
    "ceebert": ("#E69F00", "P", "--"), "queue-aware": ("#0072B2", "X", "--"),
    "neurosurgeon": ("#D55E00", "o", "--"), "edgent": ("#E69F00", "^", "-."),
    "ans": ("#56B4E9", "P", "-."), "oracle": ("#000000", "*", ":"),
}
_COMBOS = [(c, m, d) for d in DASHES for m in MARKERS for c in OKABE_ITO[:7]]


def _hashed(name: str) -> int:
    import hashlib

    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")


def _family(name: str) -> str | None:
    """The shipped policy a label such as ``threshold-0.6`` or ``dimee-tol1`` varies, if any."""
    for base in sorted(FIXED_STYLES, key=len, reverse=True):
        if name.startswith(base + "-") or name.startswith(base + " "):
            return base
    return None


def _candidates(name: str) -> list[PolicyStyle]:
    """Styles to try for a non-shipped name, in order: its family's colour with each marker (so that the
    variants of one policy read as one family), else every colour x marker; the start is a hash of the name."""
    fam = _family(name)
    if fam is not None:
        colour = FIXED_STYLES[fam][0]
        combos = [(colour, m, d) for d in DASHES for m in MARKERS]
    else:
        combos = _COMBOS
    i = _hashed(name) % len(combos)
    return [PolicyStyle(*combos[(i + j) % len(combos)]) for j in range(len(combos))]


def policy_style(name: str) -> PolicyStyle:
    """The style of one policy, independent of any other: a fixed table for the shipped policy names,
    a hash of the name for others (labels such as ``confidence-0.6`` keep their family's colour)."""
    if name in FIXED_STYLES:
        return PolicyStyle(*FIXED_STYLES[name])
    return _candidates(name)[0]


def policy_styles(policies: Iterable[str]) -> dict[str, PolicyStyle]:
    """A colour, marker and line style per policy, fixed by its name across every report.

    Shipped names use :data:`FIXED_STYLES`; other names :func:`policy_style`. Only when two names of the
    same report would share a colour and marker does the later one (in sorted order) move to the next
    free style, so markers alone always tell policies apart.
    """
    out: dict[str, PolicyStyle] = {}
    names = sorted(set(map(str, policies)))
    for p in names:
        if p in FIXED_STYLES:
            out[p] = policy_style(p)
    used = {(v.colour, v.marker) for v in out.values()}
    for p in names:
        if p in out:
            continue
        cands = _candidates(p)
        out[p] = next((c for c in cands if (c.colour, c.marker) not in used), cands[0])
        used.add((out[p].colour, out[p].marker))
    return {p: out[p] for p in names}


FORMATS = ("pdf", "png", "svg")
MIN_SHRINK = 0.85  # a text is made at most this much smaller to fit; beyond that it is wrapped instead


def figure_legend(fig: plt.Figure, handles: list, ncols: int, **kw):
    """A legend above the plot with at most ``ncols`` columns, fewer when they would not fit across the
    figure (measured with the renderer, so long labels never run past the figure's edges)."""
    r = fig.canvas.get_renderer()
    for n in range(max(1, min(ncols, len(handles))), 0, -1):
        leg = fig.legend(handles=handles, loc="outside upper center", ncols=n, **kw)
        if n == 1 or leg.get_window_extent(r).width <= fig.bbox.width - 4:
            return leg
        leg.remove()
    return None


def _wrapped(text: str) -> str | None:
    """``text`` broken at the space nearest its middle (None when it has no space left to break at)."""
    lines = text.split("\n")
    i = max(range(len(lines)), key=lambda k: len(lines[k]))
    line = lines[i]
    spaces = [k for k, c in enumerate(line) if c == " "]
    if not spaces:
        return None
    k = min(spaces, key=lambda k: abs(k - len(line) / 2))
    lines[i:i + 1] = [line[:k], line[k + 1:]]
    return "\n".join(lines)


def _fit_candidates(fig: plt.Figure) -> list:
    """Titles, labels and annotations of a figure (not tick labels: figures size and rotate those)."""
    out = [getattr(fig, k, None) for k in ("_suptitle", "_supxlabel")] + list(fig.texts)
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        out += [ax.title, getattr(ax, "_left_title", None), getattr(ax, "_right_title", None),
                ax.xaxis.label, *ax.texts]
    return [t for t in out if t is not None and t.get_visible() and t.get_text()]


def fit_text(fig: plt.Figure, rounds: int = 6) -> None:
    """Keep text inside the figure: a title, label or annotation that runs past the left or right edge is
    made slightly smaller, or wrapped onto two lines (figure legends fit by their columns, see
    :func:`figure_legend`)."""
    for _ in range(rounds):
        engine = fig.get_layout_engine()  # lay the figure out (constrained layout) as saving will
        if engine is not None:
            engine.execute(fig)
        r = fig.canvas.get_renderer()
        width = fig.bbox.width
        changed = False
        for t in _fit_candidates(fig):
            bb = t.get_window_extent(r)
            over = max(0.0, -bb.x0) + max(0.0, bb.x1 - width)
            if over <= 0.5 or bb.width <= 0:
                continue
            factor = (bb.width - over - 2) / bb.width
            if factor >= MIN_SHRINK:
                t.set_fontsize(t.get_fontsize() * factor)
                changed = True
                continue
            text = _wrapped(t.get_text())
            if text is not None:
                t.set_text(text)
                changed = True
            elif factor > 0.5:
                t.set_fontsize(t.get_fontsize() * factor)
                changed = True
        if not changed:
            return


def save(fig: plt.Figure, stem: Path, formats: Iterable[str]) -> list[Path]:
    """Write ``stem.<fmt>`` for each format with fixed metadata (no timestamps), then close ``fig``;
    text that would run past the figure's edges is fitted first (:func:`fit_text`)."""
    fit_text(fig)
    paths = []
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        if fmt == "pdf":
            meta = {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": "eesim report"}
        elif fmt == "png":
            meta = {"Software": None}
        elif fmt == "svg":
            meta = {"Date": None, "Creator": "eesim report"}
        else:
            meta = {}
        fig.savefig(path, format=fmt, metadata=meta)
        paths.append(path)
    plt.close(fig)
    return paths
