"""Sweep results on disk: a folder of Parquet parts written atomically, failures, resume keys.

``OUT/results.parquet/`` holds ``part-00000-<id>.parquet``, ``part-00001-<id>.parquet``, ... (a
sequence number, then a random id, so two writers can never pick the same name; parts of older sweeps
named ``part-00000.parquet`` are read too); each part holds whole runs (every policy of a (condition,
replication)) and is written to a hidden temporary file and renamed into place, so a killed sweep
never leaves a partial part, and Parquet readers skip the hidden temporaries
(``pandas.read_parquet(OUT / "results.parquet")`` reads the dataset).
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from ..errors import UserError
from ..output import atomic_write, write_csv
from .spec import Axis, to_column

RESULTS = "results.parquet"
FAILURES = "failures.csv"
PART = re.compile(r"^part-(\d{5,})(?:-[0-9a-f]+)?\.parquet$")
KEY_COLUMNS = ["run_key", "condition", "replication", "policy"]
INT_METRICS = ("requests", "completed", "dropped")


def part_files(out: str | Path) -> list[Path]:
    """The finished parts, in order (temporary files are ignored)."""
    d = Path(out) / RESULTS
    if not d.is_dir():
        return []
    return sorted((p for p in d.iterdir() if PART.match(p.name)),
                  key=lambda p: (int(PART.match(p.name)[1]), p.name))


def read_results(out: str | Path) -> pd.DataFrame:
    """Every row of a sweep folder.

    ``pandas.read_parquet(OUT / "results.parquet")`` gives the same rows when every part has the same
    columns (the usual case); a sweep whose conditions change the metric columns (an axis that renames
    tiers, or sets ``deadline_ms`` in some conditions only) needs this function, which reads the parts
    under the union of their schemas (columns missing from a part are null there).
    """
    import pyarrow as pa
    import pyarrow.dataset as ds

    parts = part_files(Path(out))
    if not parts:
        return pd.DataFrame(columns=KEY_COLUMNS)
    schema = pa.unify_schemas([pq.read_schema(p) for p in parts])
    return ds.dataset([str(p) for p in parts], schema=schema, format="parquet").to_table().to_pandas()


class ResultStore:
    """Buffers finished runs and writes them as Parquet parts; records failures."""

    def __init__(self, out: Path, axes: list[Axis], chunk_runs: int = 50, flush_s: float = 30.0):
        self.out = out
        self.dir = out / RESULTS
        self.axes = axes
        self.chunk_runs = max(1, chunk_runs)
        self.flush_s = flush_s
        self.rows: list[dict[str, Any]] = []
        self.buffered_runs = 0
        self.failures: list[dict[str, Any]] = []
        self.rows_written = 0
        self.parts_written = 0
        self._last_flush = time.monotonic()
        parts = part_files(out)
        self._next = int(PART.match(parts[-1].name)[1]) + 1 if parts else 0

    def done_runs(self) -> set[tuple[int, str]]:
        """``(condition, run_key)`` of every run already on disk."""
        done: set[tuple[int, str]] = set()
        for p in part_files(self.out):
            try:
                t = pq.read_table(p, columns=["condition", "run_key"])
            except Exception as e:  # noqa: BLE001 - any unreadable part is a user-facing problem
                raise UserError(f"cannot read {p}: {e}; move it away and rerun with --resume") from None
            done.update(zip(t.column("condition").to_pylist(), t.column("run_key").to_pylist(),
                            strict=True))
        return done

    def add(self, rows: list[dict[str, Any]]) -> None:
        self.rows += rows
        self.buffered_runs += 1
        if (self.buffered_runs >= self.chunk_runs
                or time.monotonic() - self._last_flush >= self.flush_s):
            self.flush()

    def fail(self, record: dict[str, Any]) -> None:
        self.failures.append(record)

    def frame(self, rows: list[dict[str, Any]]) -> pd.DataFrame:
        """Rows -> a frame with a fixed column order and types (the same schema in every part)."""
        df = pd.DataFrame(rows)
        axis_keys = [a.key for a in self.axes]
        for a in self.axes:
            df[a.key] = pd.Series(to_column(df[a.key].tolist(), a.dtype), index=df.index,
                                  dtype=_pandas_dtype(a.dtype))
        rest = [c for c in df.columns if c not in KEY_COLUMNS and c not in axis_keys]
        df = df[KEY_COLUMNS + axis_keys + rest]
        df["condition"] = df["condition"].astype("int64")
        df["replication"] = df["replication"].astype("int64")
        for c in rest:
            if c in INT_METRICS:
                df[c] = df[c].astype("int64")
            elif pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]):
                df[c] = df[c].astype("float64")
        return df

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        if not self.rows:
            return
        df = self.frame(self.rows)
        path = self.dir / f"part-{self._next:05d}-{uuid.uuid4().hex[:12]}.parquet"
        atomic_write(path, lambda p: df.to_parquet(p, index=False))
        self._next += 1
        self.parts_written += 1
        self.rows_written += len(df)
        self.rows = []
        self.buffered_runs = 0

    def write_failures(self) -> Path:
        cols = ["condition", "replication", "run_key", *[a.key for a in self.axes], "error"]
        df = pd.DataFrame(self.failures, columns=cols) if self.failures else pd.DataFrame(columns=cols)
        return write_csv(self.out / FAILURES, df)


def _pandas_dtype(dtype: str) -> str:
    return {"int64": "int64", "float64": "float64", "bool": "bool", "string": "object"}.get(dtype, "object")
