"""The exit profiles shipped in profiles/: format, labels against the GLUE files, manifest, targets."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_labels_match_glue

from simulator.profile import ProfileError, load_profile
from simulator.profiles_table import COLUMNS, profiles_table

PROFILES = Path(__file__).resolve().parent.parent / "profiles"
# file, task, eval size, calib size, last-exit eval accuracy target (RTE: above its majority class)
SHIPPED = [
    ("sst2-minilm6.npz", "SST-2", 872, 1000, 0.87),
    ("mrpc-minilm6.npz", "MRPC", 408, 367, 0.72),
    ("rte-minilm6.npz", "RTE", 277, 249, 146 / 277),
    ("cola-minilm6.npz", "CoLA", 1043, 855, 0.69),
    ("qnli-minilm6.npz", "QNLI", 1200, 400, 0.78),
    ("qqp-minilm6.npz", "QQP", 3000, 1000, 0.78),
]
IDS = [s[1] for s in SHIPPED]


@pytest.fixture(scope="module", params=SHIPPED, ids=IDS)
def shipped(request):
    name, task, n_eval, n_calib, target = request.param
    path = PROFILES / name
    assert path.is_file(), f"shipped profile missing: {path}"
    return load_profile(path), task, n_eval, n_calib, target


def test_shapes_and_meta(shipped):
    p, task, n_eval, n_calib, _ = shipped
    assert p.task == task and p.model_name == "all-MiniLM-L6-v2"
    assert (p.num_layers, p.hidden_size, p.num_classes) == (6, 384, 2)
    assert len(p.meta["label_names"]) == 2
    for name, n in (("eval", n_eval), ("calib", n_calib)):
        s = p.splits[name]
        assert s.logits.shape == (n, 6, 2) and s.logits.dtype == np.float16
        assert s.labels.shape == s.tokens.shape == s.ids.shape == (n,)
        assert len(np.unique(s.ids)) == n
        assert s.tokens.min() >= 3 and s.tokens.max() <= p.meta["manifest"]["hyperparameters"]["max_length"]
    m = p.meta["machine"]
    assert m["cpu"] and m["threads"] >= 1 and m["torch"]
    man = p.meta["manifest"]
    for k in ("sources", "split_sources", "split_description", "hyperparameters", "seed", "wall_time_s",
              "accuracy", "train_samples"):
        assert k in man, k
    assert all(len(h) == 64 for h in man["sources"].values())
    assert p.path.stat().st_size < 400 * 1024  # small: float16 logits, no hidden states


def test_labels_match_glue_files(shipped, shared_data):
    p, task, *_ = shipped
    man = p.meta["manifest"]
    assert_labels_match_glue(p, task, shared_data)
    if man["split_sources"]["eval"] == man["split_sources"]["calib"]:  # re-split file: disjoint
        assert not set(p.eval.ids) & set(p.calib.ids)


def test_accuracy_matches_manifest_and_target(shipped):
    p, task, _, _, target = shipped
    acc = p.meta["manifest"]["accuracy"]
    np.testing.assert_allclose(p.eval.exit_accuracy(), acc["eval"], atol=1e-12)
    np.testing.assert_allclose(p.calib.exit_accuracy(), acc["calib"], atol=1e-12)
    last = p.eval.exit_accuracy()[-1]
    assert last > target if task == "RTE" else last >= target, f"{task} last exit {last:.3f} < {target}"
    assert p.eval.exit_accuracy()[-1] >= p.eval.exit_accuracy()[0]


def test_timing_positive_and_increasing(shipped):
    t = shipped[0].timing
    assert t.batch_sizes[0] == 1 and len(t.batch_sizes) >= 2 and len(t.seq_lens) >= 5
    assert np.all(t.layer_ms > 0) and np.all(t.head_ms > 0) and np.all(t.embed_ms > 0)
    total = t.layer_ms.sum(axis=2)  # [B, S]
    # rises with length: strictly from the shortest to the longest, and step to step within noise
    assert np.all(total[:, -1] > 2 * total[:, 0])
    assert np.all(np.diff(total, axis=1) > -0.1 * total[:, :-1])
    assert np.all(total[1:] > total[0])  # a larger batch takes longer
    assert np.all(np.diff(t.layer_seconds(np.array([10, 50, 200])).sum(-1)) > 0)


def test_profiles_table():
    df = profiles_table(PROFILES)
    assert list(df.columns) == COLUMNS
    assert {s[0] for s in SHIPPED} <= set(df["file"])
    row = df[df["file"] == "sst2-minilm6.npz"].iloc[0]
    assert row["task"] == "SST-2" and row["layers"] == 6 and row["n_eval"] == 872
    assert len(row["eval_acc_per_exit"].split("/")) == 6


def test_corrupt_and_wrong_files(tmp_path):
    src = PROFILES / "sst2-minilm6.npz"
    bad = tmp_path / "garbage.npz"
    bad.write_bytes(b"this is not a zip file")
    with pytest.raises(ProfileError, match="not a readable profile"):
        load_profile(bad)
    cut = tmp_path / "truncated.npz"
    cut.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    with pytest.raises(ProfileError, match="truncated.npz"):
        load_profile(cut)
    with pytest.raises(ProfileError, match="not found"):
        load_profile(tmp_path / "nope.npz")
    # a valid npz with the wrong contents
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(ProfileError, match="missing arrays"):
        load_profile(other)
    # a shipped profile whose logits disagree with its meta
    with np.load(src) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"]))
    meta["num_classes"] = 3
    arrays["meta"] = np.array(json.dumps(meta))
    wrong = tmp_path / "wrong.npz"
    np.savez_compressed(wrong, **arrays)
    with pytest.raises(ProfileError, match="eval_logits has shape"):
        load_profile(wrong)
    assert zipfile.is_zipfile(wrong)


def test_bit_flipped_file_gives_profile_error(tmp_path):
    """A corrupted deflate stream (zlib.error inside numpy) must surface as ProfileError too."""
    data = bytearray((PROFILES / "sst2-minilm6.npz").read_bytes())
    for i in range(2000, 2064):
        data[i] ^= 0xFF
    flipped = tmp_path / "flipped.npz"
    flipped.write_bytes(bytes(data))
    with pytest.raises(ProfileError):
        load_profile(flipped)
