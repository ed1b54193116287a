"""Exit profiles: what a real multi-exit model did on real samples, replayed by the simulator.

A profile is one ``.npz`` file per task x model, written by :mod:`simulator.profiling` (which needs
torch) and read here with numpy alone. Layout (``FORMAT_VERSION`` 1):

===========================  =========  ==============================================================
key                          shape      meaning
===========================  =========  ==============================================================
``meta``                     0-d str    JSON: task, model, num_layers, hidden_size, num_classes,
                                        label_names, machine, manifest (training, data hashes, ...)
``<split>_logits``           [N, L, C]  exit-head logits after every layer (float16)
``<split>_labels``           [N]        true label (int)
``<split>_tokens``           [N]        token count incl. special tokens (int)
``<split>_ids``              [N]        row index of the sample in its source file (int)
``<split>_proj`` (optional)  [N, L, D]  low-dimensional projection of the pooled representation at
                                        every exit (for clustering policies; float16)
``timing_seq_lens``          [S]        sequence lengths at which timings were measured (increasing)
``timing_batch_sizes``       [B]        batch sizes measured (first is 1)
``timing_layer_ms``          [B, S, L]  median forward time of each encoder layer for a whole batch
``timing_head_ms``           [B, S]     median time of one exit head (pool + classifier)
``timing_embed_ms``          [B, S]     median time of the embedding layer
===========================  =========  ==============================================================

Splits are ``eval`` (where simulations run; GLUE dev where it exists) and ``calib`` (held out from
training; used by policies that tune thresholds).
"""

from __future__ import annotations

import hashlib
import json
import zipfile
import zlib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from .errors import UserError
from .schema import convert, require

FORMAT_VERSION = 1
SPLITS = ("eval", "calib")
_SPLIT_KEYS = ("logits", "labels", "tokens", "ids")
_TIMING_KEYS = ("timing_seq_lens", "timing_batch_sizes", "timing_layer_ms", "timing_head_ms",
                "timing_embed_ms")


class ProfileError(UserError, ValueError):
    """A profile file is missing, corrupt or inconsistent."""


@dataclass(frozen=True, eq=False)
class Split:
    """Per-sample model behaviour on one split."""

    logits: np.ndarray  # [N, L, C]
    labels: np.ndarray  # [N]
    tokens: np.ndarray  # [N]
    ids: np.ndarray  # [N]
    proj: np.ndarray | None = None  # [N, L, D] low-dimensional projection of each exit's pooled input

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @cached_property
    def probs(self) -> np.ndarray:
        """Softmax over classes at every exit, float64 [N, L, C]."""
        z = self.logits.astype(np.float64)
        z -= z.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=-1, keepdims=True)

    @cached_property
    def confidence(self) -> np.ndarray:
        """Max-softmax confidence at every exit [N, L]."""
        return self.probs.max(axis=-1)

    @cached_property
    def entropy(self) -> np.ndarray:
        """Prediction entropy (nats) at every exit [N, L]."""
        p = self.probs
        return -(p * np.log(np.clip(p, 1e-300, None))).sum(axis=-1)

    @cached_property
    def pred(self) -> np.ndarray:
        """Predicted class at every exit [N, L]."""
        return self.logits.argmax(axis=-1)

    @cached_property
    def correct(self) -> np.ndarray:
        """Whether the prediction at each exit is right [N, L] (bool)."""
        return self.pred == self.labels[:, None]

    def exit_accuracy(self) -> np.ndarray:
        """Accuracy at every exit [L]."""
        return self.correct.mean(axis=0)


@dataclass(frozen=True, eq=False)
class Timing:
    """Per-layer compute time on the measuring machine as a function of sequence length."""

    seq_lens: np.ndarray  # [S]
    batch_sizes: np.ndarray  # [B]
    layer_ms: np.ndarray  # [B, S, L]
    head_ms: np.ndarray  # [B, S]
    embed_ms: np.ndarray  # [B, S]

    def _interp(self, table: np.ndarray, tokens: np.ndarray | float) -> np.ndarray:
        """Linear interpolation in sequence length (linear extrapolation beyond the table)."""
        x = self.seq_lens.astype(np.float64)
        t = np.asarray(tokens, dtype=np.float64)
        y = np.interp(t, x, table)
        lo_slope = (table[1] - table[0]) / (x[1] - x[0]) if len(x) > 1 else 0.0
        hi_slope = (table[-1] - table[-2]) / (x[-1] - x[-2]) if len(x) > 1 else 0.0
        y = np.where(t < x[0], table[0] + (t - x[0]) * lo_slope, y)
        y = np.where(t > x[-1], table[-1] + (t - x[-1]) * hi_slope, y)
        return np.maximum(y, 0.0)

    def at_length(self, row: np.ndarray, tokens: np.ndarray | float) -> np.ndarray:
        """A table row over sequence lengths, interpolated at ``tokens`` (as every lookup here)."""
        return self._interp(row, tokens)

    def layer_seconds(self, tokens: np.ndarray | float) -> np.ndarray:
        """Time of each layer at batch size 1 for the given token count(s): [..., L] seconds."""
        t = np.asarray(tokens, dtype=np.float64)
        cols = [self._interp(self.layer_ms[0, :, k], t) for k in range(self.layer_ms.shape[2])]
        return np.stack(cols, axis=-1) / 1e3

    def head_seconds(self, tokens: np.ndarray | float) -> np.ndarray:
        """Time of one exit head at batch size 1 (seconds)."""
        return self._interp(self.head_ms[0], tokens) / 1e3

    def embed_seconds(self, tokens: np.ndarray | float) -> np.ndarray:
        """Time of the embedding layer at batch size 1 (seconds)."""
        return self._interp(self.embed_ms[0], tokens) / 1e3


def _ms_rows(value: Any, path: str) -> list[float] | list[list[float]]:
    """Milliseconds per seq len (batch size 1), or one such row per batch size."""
    nested = isinstance(value, list) and bool(value) and isinstance(value[0], list)
    return convert(list[list[float]] if nested else list[float], value, path)


@dataclass
class TimingTable:
    """Absolute per-layer times measured on a device (or a unit of one) itself, as a scenario or the
    device catalogue writes them (overrides the class's ``speed``).

    ``layer_ms``, ``head_ms`` and ``embed_ms`` give one value per ``seq_lens`` entry (batch size 1), or,
    with ``batch_sizes`` (starting at 1), one such row per batch size: the batch timing table a batching
    device reads (simulator/batching.py). Every layer takes ``layer_ms``. Lengths between and beyond
    ``seq_lens`` interpolate linearly, as the profiles' tables do."""

    seq_lens: list[int] = field(default_factory=list)
    layer_ms: list = field(default_factory=list, metadata={"convert": _ms_rows})
    head_ms: list = field(default_factory=list, metadata={"convert": _ms_rows})
    embed_ms: list = field(default_factory=list, metadata={"convert": _ms_rows})
    batch_sizes: list[int] | None = None
    source: str = ""

    def check(self, path: str) -> None:
        n = len(self.seq_lens)
        require(n >= 1, f"'{path}.seq_lens' must not be empty")
        require(all(a < b for a, b in zip([0, *self.seq_lens], self.seq_lens, strict=False)),
                f"'{path}.seq_lens' must be positive and increasing, got {self.seq_lens}")
        b = self.batch_sizes
        if b is not None:
            require(b[:1] == [1] and all(x < y for x, y in zip(b, b[1:], strict=False)),
                    f"'{path}.batch_sizes' must start at 1 and increase, got {b}")
        for k in ("layer_ms", "head_ms", "embed_ms"):
            rows = getattr(self, k)
            if b is None:
                require(len(rows) == n and not any(isinstance(r, list) for r in rows),
                        f"'{path}.{k}' must have {n} numbers (one per seq_lens)")
                values = rows
            else:
                require(len(rows) == len(b) and all(isinstance(r, list) and len(r) == n for r in rows),
                        f"'{path}.{k}' must have {len(b)} rows (one per batch_sizes) of {n} numbers (one per seq_lens)")
                values = [v for r in rows for v in r]
            require(all(v >= 0 for v in values), f"'{path}.{k}' must be non-negative")

    def as_timing(self, num_layers: int) -> Timing:
        def rows(v: list) -> np.ndarray:
            a = np.asarray(v, dtype=float)
            return a if a.ndim == 2 else a[None, :]

        layer = np.repeat(rows(self.layer_ms)[:, :, None], num_layers, axis=2)
        return Timing(seq_lens=np.asarray(self.seq_lens), batch_sizes=np.asarray(self.batch_sizes or [1]),
                      layer_ms=layer, head_ms=rows(self.head_ms), embed_ms=rows(self.embed_ms))


@dataclass(frozen=True, eq=False)
class Profile:
    """A loaded, validated exit profile."""

    meta: dict
    splits: dict[str, Split]
    timing: Timing
    path: Path | None = None
    sha256: str = field(default="")

    @property
    def task(self) -> str:
        return str(self.meta.get("task", "?"))

    @property
    def model_name(self) -> str:
        return str(self.meta.get("model", "?"))

    @property
    def num_layers(self) -> int:
        return int(self.meta["num_layers"])

    @property
    def hidden_size(self) -> int:
        return int(self.meta["hidden_size"])

    @property
    def num_classes(self) -> int:
        return int(self.meta["num_classes"])

    @property
    def eval(self) -> Split:
        return self.splits["eval"]

    @property
    def calib(self) -> Split:
        return self.splits["calib"]


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes (recorded in run manifests)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_profile(path: str | Path, meta: dict, splits: dict[str, Split], timing: Timing) -> Path:
    """Write a profile (validated first) atomically."""
    path = Path(path)
    meta = {**meta, "format_version": FORMAT_VERSION}
    arrays: dict[str, np.ndarray] = {"meta": np.array(json.dumps(meta, sort_keys=True))}
    for name, s in splits.items():
        arrays[f"{name}_logits"] = np.asarray(s.logits, dtype=np.float16)
        arrays[f"{name}_labels"] = np.asarray(s.labels, dtype=np.int64)
        arrays[f"{name}_tokens"] = np.asarray(s.tokens, dtype=np.int32)
        arrays[f"{name}_ids"] = np.asarray(s.ids, dtype=np.int64)
        if s.proj is not None:
            arrays[f"{name}_proj"] = np.asarray(s.proj, dtype=np.float16)
    arrays["timing_seq_lens"] = np.asarray(timing.seq_lens, dtype=np.int64)
    arrays["timing_batch_sizes"] = np.asarray(timing.batch_sizes, dtype=np.int64)
    arrays["timing_layer_ms"] = np.asarray(timing.layer_ms, dtype=np.float64)
    arrays["timing_head_ms"] = np.asarray(timing.head_ms, dtype=np.float64)
    arrays["timing_embed_ms"] = np.asarray(timing.embed_ms, dtype=np.float64)
    _validate(arrays, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    tmp.replace(path)
    return path


def load_profile(path: str | Path) -> Profile:
    """Read and validate a profile; raises :class:`ProfileError` with a one-line reason."""
    path = Path(path)
    if not path.is_file():
        raise ProfileError(f"profile file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError, zlib.error) as e:
        raise ProfileError(f"{path}: not a readable profile (.npz) file: {e}") from None
    meta = _validate(arrays, str(path))
    splits = {s: Split(*(arrays[f"{s}_{k}"] for k in _SPLIT_KEYS), proj=arrays.get(f"{s}_proj")) for s in SPLITS}
    timing = Timing(*(arrays[k] for k in _TIMING_KEYS))
    return Profile(meta=meta, splits=splits, timing=timing, path=path, sha256=file_sha256(path))


def _validate(arrays: dict[str, np.ndarray], where: str) -> dict:
    def fail(msg: str) -> ProfileError:
        return ProfileError(f"{where}: {msg}")

    missing = [k for k in ("meta", *_TIMING_KEYS, *(f"{s}_{k}" for s in SPLITS for k in _SPLIT_KEYS))
               if k not in arrays]
    if missing:
        raise fail(f"missing arrays {missing}")
    try:
        meta = json.loads(str(arrays["meta"]))
    except json.JSONDecodeError as e:
        raise fail(f"meta is not valid JSON: {e}") from None
    for k in ("num_layers", "hidden_size", "num_classes"):
        if not isinstance(meta.get(k), int) or meta[k] <= 0:
            raise fail(f"meta.{k} must be a positive integer, got {meta.get(k)!r}")
    n_layers, n_classes = meta["num_layers"], meta["num_classes"]
    for s in SPLITS:
        lg, lb, tk, ids = (arrays[f"{s}_{k}"] for k in _SPLIT_KEYS)
        if lg.ndim != 3 or lg.shape[1:] != (n_layers, n_classes):
            raise fail(f"{s}_logits has shape {lg.shape}, expected [N, {n_layers}, {n_classes}]")
        n = lg.shape[0]
        if n == 0:
            raise fail(f"split {s!r} is empty")
        for name, a in (("labels", lb), ("tokens", tk), ("ids", ids)):
            if a.shape != (n,):
                raise fail(f"{s}_{name} has shape {a.shape}, expected ({n},)")
            if not np.issubdtype(a.dtype, np.integer):
                raise fail(f"{s}_{name} must be integers, got {a.dtype}")
        if lb.min() < 0 or lb.max() >= n_classes:
            raise fail(f"{s}_labels outside 0..{n_classes - 1}")
        if tk.min() <= 0:
            raise fail(f"{s}_tokens must be positive")
        if not np.all(np.isfinite(lg.astype(np.float32))):
            raise fail(f"{s}_logits contain NaN or infinity")
        proj = arrays.get(f"{s}_proj")
        if proj is not None and (proj.ndim != 3 or proj.shape[:2] != (n, n_layers)
                                 or not np.all(np.isfinite(proj.astype(np.float32)))):
            raise fail(f"{s}_proj has shape {proj.shape} or non-finite values, expected finite [{n}, {n_layers}, D]")
    sl, bs = arrays["timing_seq_lens"], arrays["timing_batch_sizes"]
    if sl.ndim != 1 or len(sl) < 1 or np.any(np.diff(sl) <= 0):
        raise fail("timing_seq_lens must be a non-empty increasing vector")
    if bs.ndim != 1 or len(bs) < 1 or bs[0] != 1:
        raise fail("timing_batch_sizes must start with batch size 1")
    shapes = {"timing_layer_ms": (len(bs), len(sl), n_layers), "timing_head_ms": (len(bs), len(sl)),
              "timing_embed_ms": (len(bs), len(sl))}
    for k, shape in shapes.items():
        if arrays[k].shape != shape:
            raise fail(f"{k} has shape {arrays[k].shape}, expected {list(shape)}")
        if not np.all(np.isfinite(arrays[k])) or np.any(arrays[k] < 0):
            raise fail(f"{k} must be finite and non-negative")
    return meta


_CACHE: dict[tuple[str, int, int], Profile] = {}


def get_profile(path: str | Path) -> Profile:
    """:func:`load_profile`, cached per process by path, size and modification time (sweeps load a
    profile once per worker)."""
    p = Path(path).resolve()
    try:
        st = p.stat()
    except OSError:
        raise ProfileError(f"profile file not found: {path}") from None
    key = (str(p), st.st_size, st.st_mtime_ns)
    if key not in _CACHE:
        if len(_CACHE) > 16:
            _CACHE.clear()
        _CACHE[key] = load_profile(p)
    return _CACHE[key]
