"""The profile pipeline end to end on a tiny subset: real tokenizer, real weights, real forward pass."""

from __future__ import annotations

import argparse
import subprocess
import sys

import numpy as np
import pytest

from simulator.glue import read_file
from simulator.profile import load_profile

torch = pytest.importorskip("torch", reason="needs the 'profile' extra")

from simulator.profiling.build import add_arguments, build_profile, run  # noqa: E402
from simulator.profiling.measure import measure_timing  # noqa: E402

REPO_ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def built(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("prof") / "mrpc-tiny.npz"
    return build_profile("MRPC", out, shared_data / "glue", epochs=100, max_steps=3, batch_size=8,
                         max_train_samples=32, max_eval_samples=16, seed=0, threads=1,
                         timing_seq_lens=(8, 32), timing_batch_sizes=(1, 2), timing_repeats=2,
                         log=lambda m: None)


@pytest.mark.slow
def test_pipeline_shapes_and_round_trip(built):
    p = load_profile(built.path)
    L = built.loaded.model.num_layers
    assert p.num_layers == L == 6 and p.hidden_size == 384 and p.num_classes == 2
    assert p.meta["task"] == "MRPC" and p.meta["label_names"] == ["not_equivalent", "equivalent"]
    for name in ("eval", "calib"):
        s = p.splits[name]
        assert s.logits.shape == (16, L, 2) and s.logits.dtype == np.float16
        assert np.array_equal(s.logits, built.logits[name].astype(np.float16))
        assert np.allclose(s.exit_accuracy(), p.meta["manifest"]["accuracy"][name])
    man = p.meta["manifest"]
    assert man["train_steps"] == 3 and man["train_samples"] == 32 and man["seed"] == 0
    assert set(man["sources"]) == {"MRPC/train.tsv", "MRPC/dev.tsv"}
    assert man["split_sources"] == {"train": "MRPC/train.tsv", "calib": "MRPC/train.tsv",
                                    "eval": "MRPC/dev.tsv"}
    assert p.meta["machine"]["threads"] == 1 and p.meta["machine"]["torch"] == torch.__version__
    assert p.timing.layer_ms.shape == (2, 2, L)


@pytest.mark.slow
def test_labels_ids_and_tokens_match_source(built, shared_data):
    p = load_profile(built.path)
    tok = built.loaded.tokenizer
    for name, part in (("eval", "dev"), ("calib", "train")):
        src = read_file(shared_data / "glue", "MRPC", part)
        s = p.splits[name]
        assert np.array_equal(s.labels, src.labels[s.ids])
        n = [len(tok(src.text_a[i], src.text_b[i], truncation=True, max_length=128)["input_ids"])
             for i in s.ids]
        assert s.tokens.tolist() == n


@pytest.mark.slow
def test_last_exit_equals_plain_forward(built, shared_data):
    """Recompute the last exit one sample at a time with the plain encoder (no padding, no hidden-state
    capture): mean of the last hidden state, then the last head's linear layer."""
    p = load_profile(built.path)
    model, tok = built.loaded.model, built.loaded.tokenizer
    src = read_file(shared_data / "glue", "MRPC", "dev")
    model.eval()
    with torch.inference_mode():
        for row, i in enumerate(p.eval.ids):
            enc = tok(src.text_a[i], src.text_b[i], truncation=True, max_length=128, return_tensors="pt")
            h = model.backbone(**enc).last_hidden_state[0]  # [T, H]
            z = model.heads[-1].classifier(h.mean(dim=0)).numpy()
            np.testing.assert_allclose(p.eval.logits[row, -1].astype(np.float32), z, atol=2e-2, rtol=1e-2)


def test_timing_positive_and_increasing(built):
    t = measure_timing(built.loaded.model, seq_lens=(8, 64, 256), batch_sizes=(1, 4), repeats=3, warmup=1)
    assert t["layer_ms"].shape == (2, 3, 6) and t["head_ms"].shape == (2, 3) and t["embed_ms"].shape == (2, 3)
    assert np.all(t["layer_ms"] > 0) and np.all(t["head_ms"] > 0) and np.all(t["embed_ms"] > 0)
    total = t["layer_ms"].sum(axis=2)
    assert np.all(np.diff(total, axis=1) > 0)  # longer sequences take longer
    assert np.all(total[1] > total[0])  # a larger batch takes longer


def test_cli_flags_and_errors(shared_data, capsys):
    p = argparse.ArgumentParser()
    add_arguments(p)
    a = p.parse_args(["--task", "RTE", "--epochs", "3", "--max-steps", "10", "--lr", "1e-4", "--batch-size",
                      "8", "--max-length", "64", "--max-train-samples", "100", "--calib-size", "50",
                      "--seed", "7", "--threads", "1", "--out", "x.npz", "--model", "/m"])
    assert (a.task, a.epochs, a.max_steps, a.lr, a.batch_size, a.max_length, a.max_train_samples,
            a.calib_size, a.seed, a.threads, a.out, a.model) == \
        ("RTE", 3.0, 10, 1e-4, 8, 64, 100, 50, 7, 1, "x.npz", "/m")
    assert p.parse_args(["--task", "SST-2"]).data_dir == "../shared/data/glue"
    assert run(p.parse_args(["--task", "MNLI", "--data-dir", str(shared_data / "glue")])) == 1
    assert "unknown GLUE task" in capsys.readouterr().err


def test_missing_torch_message():
    code = ("import sys, argparse; sys.modules['torch'] = None\n"
            "from simulator.profiling.build import add_arguments, run\n"
            "p = argparse.ArgumentParser(); add_arguments(p)\n"
            "sys.exit(run(p.parse_args(['--task', 'SST-2'])))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT)
    assert r.returncode != 0
    assert r.stderr.strip() == "profile building needs the 'profile' extra: pip install -e '.[profile]'"
