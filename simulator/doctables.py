"""Tables of ``docs/policies.md`` generated from the shipped files, so that they cannot go stale.

``python run_sim.py doc-tables`` prints them; ``--write`` replaces each one in the document between its
``<!-- BEGIN generated: NAME -->`` and ``<!-- END generated: NAME -->`` markers.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "policies.md"
TASKS = ["sst2", "mrpc", "qnli", "qqp", "cola", "rte"]
DIMEE_POLICIES = [
    "all-cloud",
    {"name": "dimee", "label": "tol"},
    {"name": "dimee", "label": "mu", "mode": "cost", "mu": 0.05},
    {"name": "dimee", "label": "splits", "search_splits": True},
]


def _profile(task: str) -> Path:
    return REPO / "profiles" / f"{task}-minilm6.npz"


def task_cell(task: str) -> str:
    """``SST-2 (872, 1000, 87.8)``: task, eval and calib sizes, full-model eval accuracy (%)."""
    from .profile import load_profile

    p = load_profile(_profile(task))
    return f"{p.task} ({len(p.eval)}, {len(p.calib)}, {100 * p.eval.exit_accuracy()[-1]:.1f})"


def _dimee_row(task: str) -> str:
    from .config import load_scenario
    from .runner import run_scenario

    cell = task_cell(task)
    n = int(cell.split("(")[1].split(",")[0])
    sc = load_scenario(REPO / "scenarios" / "dimee_glue.yaml",
                       [f"profile=profiles/{task}-minilm6.npz", f"workload.requests={4 * n}",
                        f"policies={DIMEE_POLICIES!r}".replace("True", "true")])
    s = run_scenario(sc).summary.set_index("policy")
    ref = s.loc["all-cloud", "cost_mean"]
    cells = []
    for p in ("tol", "mu", "splits"):
        r = s.loc[p]
        cells.append(f"{100 * (1 - r['cost_mean'] / ref):.1f} % / {r['acc_drop_pts']:.2f} "
                     f"[{r['acc_drop_ci95_lo']:.2f}, {r['acc_drop_ci95_hi']:.2f}]".replace("-", "−"))
    return f"| {cell} | " + " | ".join(cells) + " |"


def dimee_table() -> str:
    """DIMEE on every shipped profile (runs ``scenarios/dimee_glue.yaml`` once per task)."""
    head = ["| task (eval N, calib N, full-model acc) | dimee tolerance 0.3 | dimee μ = 0.05 | "
            "dimee + split search |", "|---|---|---|---|"]
    return "\n".join(head + [_dimee_row(t) for t in TASKS]) + "\n"


TABLES = {"dimee-per-task": dimee_table}


def _pattern(name: str) -> re.Pattern:
    return re.compile(rf"(<!-- BEGIN generated: {re.escape(name)} -->\n)(.*?)(<!-- END generated: "
                      rf"{re.escape(name)} -->)", re.S)


def current(name: str, doc: Path = DOC) -> str:
    """The table ``name`` as the document holds it now."""
    m = _pattern(name).search(doc.read_text())
    if m is None:
        raise KeyError(f"{doc}: no generated table '{name}'")
    return m.group(2)


def write(doc: Path = DOC) -> list[str]:
    """Regenerate every table in ``doc``; returns the names that changed."""
    text, changed = doc.read_text(), []
    for name, fn in TABLES.items():
        new = fn()
        if current(name, doc) != new:
            changed.append(name)
            text = _pattern(name).sub(lambda m, new=new: m.group(1) + new + m.group(3), text)
    doc.write_text(text)
    return changed
