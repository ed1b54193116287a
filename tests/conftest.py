"""Shared fixtures: small profiles built in code in the shipped format."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from simulator.profile import Split, Timing, save_profile

REPO = Path(__file__).resolve().parent.parent


def make_profile(path: Path, n: int = 300, layers: int = 6, classes: int = 2, seed: int = 0,
                 layer_ms: float = 2.0) -> Path:
    """A small profile whose exits get more accurate with depth (for engine tests only)."""
    rng = np.random.default_rng(seed)
    splits = {}
    for name, size in (("eval", n), ("calib", n // 2)):
        labels = rng.integers(0, classes, size)
        difficulty = rng.uniform(0, 1, size)
        logits = np.zeros((size, layers, classes))
        for k in range(layers):
            margin = (k + 1) / layers * 4.0 - difficulty * 3.0
            logits[:, k, :] = rng.normal(0, 0.3, (size, classes))
            logits[np.arange(size), k, labels] += margin
        splits[name] = Split(logits=logits, labels=labels, tokens=rng.integers(8, 64, size),
                             ids=np.arange(size))
    seq = np.array([8, 16, 32, 64, 128])
    layer = np.broadcast_to((layer_ms * seq / 32.0)[None, :, None], (2, len(seq), layers)).copy()
    layer[1] *= 4
    timing = Timing(seq_lens=seq, batch_sizes=np.array([1, 8]), layer_ms=layer,
                    head_ms=np.tile(0.05 * seq / 32.0, (2, 1)), embed_ms=np.tile(0.1 * seq / 32.0, (2, 1)))
    meta = {"task": "SYNTH", "model": "synthetic", "num_layers": layers, "hidden_size": 384,
            "num_classes": classes, "label_names": [str(c) for c in range(classes)],
            "machine": {"cpu": "synthetic"}, "manifest": {}}
    return save_profile(path, meta, splits, timing)


def linear_profile(path: Path, tokens: np.ndarray, layers: int = 2, ms_per_token: float = 0.1,
                   head_ms: float = 0.0, hidden_size: int = 4) -> Path:
    """A profile whose every request takes exactly ``ms_per_token * tokens`` ms at speed 1, split equally
    over its layers (plus ``head_ms`` per exit head; no embedding time); every exit predicts class 0,
    which is right (for hand-computed timelines and queueing theory)."""
    n = len(tokens)
    logits = np.zeros((n, layers, 2))
    logits[:, :, 0] = 1.0
    split = Split(logits=logits, labels=np.zeros(n, dtype=int), tokens=np.asarray(tokens), ids=np.arange(n))
    seq = np.array([1, 1000])
    timing = Timing(seq_lens=seq, batch_sizes=np.array([1]),
                    layer_ms=np.repeat((ms_per_token * seq / layers)[None, :, None], layers, axis=2),
                    head_ms=np.full((1, 2), head_ms), embed_ms=np.zeros((1, 2)))
    meta = {"task": "LINEAR", "model": "linear", "num_layers": layers, "hidden_size": hidden_size,
            "num_classes": 2, "label_names": ["a", "b"], "machine": {}, "manifest": {}}
    return save_profile(path, meta, {"eval": split, "calib": split}, timing)


@pytest.fixture(scope="session")
def synth_profile(tmp_path_factory) -> Path:
    return make_profile(tmp_path_factory.mktemp("profiles") / "synth.npz")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder (GLUE, traces); tests that need it fail when it is missing."""
    root = os.environ.get("EESIM_SHARED_DATA")
    if not root:
        candidate = REPO.parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
        pytest.fail("EESIM_SHARED_DATA is not set and ../shared/data does not exist")
    p = Path(root)
    if not p.is_dir():
        pytest.fail(f"EESIM_SHARED_DATA={root} is not a folder")
    return p


def assert_labels_match_glue(p, task: str, shared_data: Path) -> None:
    """A profile's labels are those of the GLUE rows it names, and the source files are unchanged."""
    from simulator.glue import FILES, read_file

    man = p.meta["manifest"]
    for name in ("eval", "calib"):
        rel = man["split_sources"][name]
        part = next(k for k, v in FILES[task].items() if v == rel)
        src = read_file(shared_data / "glue", task, part)
        assert src.sha256 == man["sources"][rel], f"{rel} changed since the profile was built"
        s = p.splits[name]
        assert np.array_equal(s.labels, src.labels[s.ids])
