"""``run_sim.py report DIR``: figures and tables from a ``run`` or ``sweep`` results folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import UserError
from .build import KINDS, Options, build_report
from .load import load_results
from .style import FORMATS, STYLES


def _list(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", help="a results folder written by 'run' or 'sweep'")
    p.add_argument("--x", help="swept axis (dotted scenario key, or its unique suffix) for the x axis")
    p.add_argument("--y", help="metric column(s) to plot, comma-separated (e.g. latency_p95_ms)")
    p.add_argument("--hue", default="policy", help="lines per 'policy' (default) or per value of a swept axis")
    p.add_argument("--facet", help="one panel per value of this swept axis")
    p.add_argument("--figures", help=f"comma-separated figures to draw: {', '.join(KINDS)} (default: chosen "
                                     "from what the results contain)")
    p.add_argument("--compare", metavar="A,B", help="policies for the margin heatmap (A minus B)")
    p.add_argument("--policy", action="append", default=[], help="policy for the timeline; repeatable")
    p.add_argument("--format", default="pdf,png", help=f"figure formats, comma-separated ({', '.join(FORMATS)})")
    p.add_argument("--style", choices=sorted(STYLES), default="paper",
                   help="paper: single column (3.3 in), serif; slides: 16:9, large sans-serif")
    p.add_argument("--out", help="report folder (default DIR/report)")
    p.add_argument("--allow-incomplete", action="store_true",
                   help="report a folder that lacks its manifest or config (refused otherwise)")


def options(args: argparse.Namespace) -> Options:
    compare = None
    if args.compare:
        parts = _list(args.compare)
        if len(parts) != 2:
            raise UserError(f"--compare takes two policies 'A,B', got {args.compare!r}")
        compare = (parts[0], parts[1])
    return Options(x=args.x, y=_list(args.y), hue=args.hue or "policy", facet=args.facet,
                   figures=_list(args.figures) if args.figures else None, formats=_list(args.format),
                   style=args.style, compare=compare, policies=list(args.policy))


def run(args: argparse.Namespace) -> int:
    opt = options(args)
    res = load_results(args.folder, allow_incomplete=args.allow_incomplete)
    for w in res.warnings:
        print(f"warning: {w}", file=sys.stderr)
    out = Path(args.out) if args.out else Path(args.folder) / "report"
    rep = build_report(res, out, opt)
    print(f"report: {rep.index}  ({len(rep.figures)} figures, {len(rep.tables)} tables)")
    return 0
