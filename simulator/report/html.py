"""``index.html``: every figure (PNG, with links to the other formats) and table, with captions."""

from __future__ import annotations

import html
from pathlib import Path

CSS = """body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em;color:#222}
figure{margin:2em 0;border-top:1px solid #ddd;padding-top:1em}figure img{max-width:100%;height:auto}
figcaption{font-size:.92em;color:#444;margin-top:.4em}table{border-collapse:collapse;font-size:.88em;margin:.5em 0}
th,td{padding:.2em .6em;border-bottom:1px solid #ddd;text-align:left}td.num{text-align:right;
font-variant-numeric:tabular-nums}th{border-bottom:2px solid #444}.files{font-size:.85em}"""


def _links(paths: list[Path], root: Path) -> str:
    return " · ".join(f'<a href="{html.escape(p.relative_to(root).as_posix())}">{p.suffix[1:]}</a>'
                      for p in paths)


def write_index(root: Path, title: str, meta: list[tuple[str, str]], tables: list, figures: list) -> Path:
    """``tables``: (Table, [paths]); ``figures``: (Fig, [paths]) with paths inside ``root``."""
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>"]
    if meta:
        parts.append("<dl>" + "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in meta)
                     + "</dl>")
    if tables:
        parts.append("<h2>Tables</h2>")
        for i, (t, paths) in enumerate(tables, 1):
            parts.append(f'<section id="{html.escape(t.name)}"><h3>Table {i}. {html.escape(t.title)}</h3>')
            parts.append(t.html())
            parts.append(f'<p class="files">{html.escape(t.caption)} Files: {_links(paths, root)}</p></section>')
    if figures:
        parts.append("<h2>Figures</h2>")
        for i, (f, paths) in enumerate(figures, 1):
            img = next((p for p in paths if p.suffix in (".png", ".svg")), None)
            parts.append(f'<figure id="{html.escape(f.name)}">')
            if img is not None:
                parts.append(f'<img src="{html.escape(img.relative_to(root).as_posix())}" '
                             f'alt="{html.escape(f.title)}">')
            else:
                pdf = next(p for p in paths if p.suffix == ".pdf")
                parts.append(f'<object data="{html.escape(pdf.relative_to(root).as_posix())}" '
                             'type="application/pdf" width="100%" height="480"></object>')
            parts.append(f"<figcaption><b>Figure {i}. {html.escape(f.title)}.</b> {html.escape(f.caption)} "
                         f'<span class="files">{_links(paths, root)}</span></figcaption></figure>')
    parts.append("</body></html>\n")
    path = root / "index.html"
    path.write_text("\n".join(parts))
    return path
