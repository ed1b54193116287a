"""Table of the exit profiles in a folder (``python run_sim.py profiles``); numpy/pandas only."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .profile import ProfileError, load_profile

COLUMNS = ["file", "task", "model", "layers", "n_eval", "n_calib", "eval_acc_per_exit",
           "calib_acc_per_exit", "last_exit_acc", "build_wall_s"]


def _fmt(acc) -> str:
    return "/".join(f"{100 * a:.1f}" for a in acc)


def profiles_table(folder: str | Path = "profiles") -> pd.DataFrame:
    """One row per ``*.npz`` profile in ``folder``: task, model, layers, split sizes, per-exit
    accuracy (percent, recomputed from the stored logits), last-exit accuracy and build wall time.
    Unreadable files get a row whose ``task`` column says why."""
    rows = []
    for path in sorted(Path(folder).glob("*.npz")):
        try:
            p = load_profile(path)
        except ProfileError as e:
            rows.append({"file": path.name, "task": f"unreadable: {e}"})
            continue
        ev, ca = p.eval.exit_accuracy(), p.calib.exit_accuracy()
        man = p.meta.get("manifest", {})
        rows.append({"file": path.name, "task": p.task, "model": p.model_name, "layers": p.num_layers,
                     "n_eval": len(p.eval), "n_calib": len(p.calib), "eval_acc_per_exit": _fmt(ev),
                     "calib_acc_per_exit": _fmt(ca), "last_exit_acc": round(100 * float(ev[-1]), 1),
                     "build_wall_s": man.get("wall_time_s")})
    return pd.DataFrame(rows, columns=COLUMNS)
