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
    a = p.parse_args(["--task", "QNLI", "--backbone", "mpnet12", "--pair-encoding", "cross"])
    assert (a.backbone, a.pair_encoding) == ("mpnet12", "cross")
    assert p.parse_args(["--task", "QNLI"]).pair_encoding is None
    assert p.parse_args(["--task", "QNLI", "--exit-input", "running-mean"]).exit_input == "running-mean"
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


# --- the two-stage pipeline of the 12-layer profiles (simulator/profiling/frozen.py), on a tiny MPNet ---


@pytest.fixture(scope="module")
def tiny_mpnet():
    """A 3-layer, 32-wide MPNet with random weights and the real all-mpnet-base-v2 tokenizer."""
    from transformers import AutoTokenizer, MPNetConfig, MPNetModel

    from simulator.profiling.mpnet import CheckpointError, checkpoint

    try:
        path = checkpoint()
    except CheckpointError as e:
        pytest.skip(str(e))
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    torch.manual_seed(0)
    cfg = MPNetConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
                      intermediate_size=64)
    return MPNetModel(cfg).eval(), tok


def test_frozen_pair_build_times_the_pair_head(tiny_mpnet, shared_data, tmp_path):
    """A pair task builds end to end through the timing sweep: its exit heads read [u, v, |u-v|, u*v] (4H),
    and the sweep must time them on that, not on an H-wide pooled state (it crashed there)."""
    from conftest import assert_labels_match_glue

    from simulator.profiling.frozen import build_frozen_profile

    model, tok = tiny_mpnet
    kw = dict(max_train_samples=32, calib_size=40, epochs=1, threads=1, cache=tmp_path / "cache", model=model,
              tokenizer=tok, log=lambda m: None)
    p = load_profile(build_frozen_profile("MRPC", tmp_path / "mrpc.npz", shared_data / "glue", **kw))
    assert (p.num_layers, p.hidden_size) == (3, 32) and p.eval.logits.shape == (408, 3, 2)
    assert p.eval.proj.shape == (408, 3, 32)
    assert_labels_match_glue(p, "MRPC", shared_data)
    t = p.timing
    assert t.layer_ms.shape == (6, 5, 3) and (t.layer_ms > 0).all() and (t.head_ms > 0).all()
    man = p.meta["manifest"]
    assert "Linear(128, 256)" in man["route"] and man["pair_encoding"].startswith("bi-encoder")
    assert man["timing"]["source"].startswith("measured in this build") and "two sequences" in man["timing"]["source"]
    # a table passed in is stored as given, and the manifest says where it came from (features from the cache,
    # one of them in the older format: the pair features themselves)
    from simulator.profiling.frozen import pair_features

    f = next((tmp_path / "cache").glob("mrpc-eval-408-*-bi.npz"))
    with np.load(f) as z:
        np.savez(f, x=pair_features(z["u"], z["v"]), tokens=z["tokens"])
    given = {k: getattr(t, k) for k in ("seq_lens", "batch_sizes", "layer_ms", "head_ms", "embed_ms")}
    q = load_profile(build_frozen_profile("MRPC", tmp_path / "mrpc2.npz", shared_data / "glue", timing=given,
                                          timing_source="copied from mrpc.npz", **kw))
    assert np.array_equal(q.timing.layer_ms, t.layer_ms) and np.array_equal(q.eval.logits, p.eval.logits)
    assert man["features_read_from_cache"] == [] and len(q.meta["manifest"]["features_read_from_cache"]) == 3
    assert q.meta["manifest"]["timing"]["source"] == "copied from mrpc.npz"


def test_timing_pieces_feed_each_head_its_real_input(tiny_mpnet):
    from simulator.profiling.frozen import exit_head, pair_features, timing_pieces

    model, _ = tiny_mpnet
    H = model.config.hidden_size
    ids = torch.randint(1000, 2000, (2, 8), generator=torch.Generator().manual_seed(0))
    for encoding, dim, rows in ((None, H, 2), ("bi", 4 * H, 4), ("cross", 4 * H, 2)):
        seen = []
        head = exit_head(dim, 2).eval()
        head.register_forward_pre_hook(lambda m, a, seen=seen: seen.append(a[0]))
        embed, layers, run_head = timing_pieces(model, head, encoding)
        with torch.inference_mode():
            state = embed(ids)
            for layer in layers:
                state = layer(state)
            assert state[0].shape == (rows, 8 * 2 // rows, H)
            assert run_head(state, ids).shape == (2, 2)
        assert seen[0].shape == (2, dim)
        h = state[0].numpy()
        if encoding == "bi":  # the features the heads were trained on, of the two sentences' pooled states
            want = pair_features(h[0::2].mean(1)[:, None], h[1::2].mean(1)[:, None])[:, 0]
        elif encoding == "cross":  # ... of the two halves of the one sequence
            want = pair_features(h[:, :4].mean(1)[:, None], h[:, 4:].mean(1)[:, None])[:, 0]
        if encoding is not None:
            np.testing.assert_allclose(seen[0].numpy(), want.astype(np.float32), rtol=2e-3, atol=2e-3)
    with pytest.raises(ValueError, match="odd"):
        timing_pieces(model, exit_head(4 * H, 2), "bi")[0](ids[:, :7])
    embed, layers, run_head = timing_pieces(model, exit_head(4 * H, 2).eval(), "cross", "running-mean")
    with torch.inference_mode():
        state = embed(ids)
        for layer in layers:
            state = layer(state)
        assert run_head(state, ids).shape == (2, 2)
    with pytest.raises(ValueError, match="exit_input"):
        timing_pieces(model, head, None, "max")


def test_exit_inputs_running_mean():
    from simulator.profiling.frozen import exit_inputs, pair_features, running_mean

    rng = np.random.default_rng(0)
    u, v = rng.normal(size=(5, 4, 3)).astype(np.float16), rng.normal(size=(5, 4, 3)).astype(np.float16)
    r = running_mean(u)
    np.testing.assert_allclose(r[:, 0], u[:, 0].astype(np.float32))
    np.testing.assert_allclose(r[:, 3], u.astype(np.float32).mean(1), rtol=1e-6)
    np.testing.assert_array_equal(exit_inputs((u, v)), pair_features(u, v))
    np.testing.assert_array_equal(exit_inputs((u, v), "running-mean"), pair_features(r, running_mean(v)))
    np.testing.assert_array_equal(exit_inputs((u,), "running-mean"), r.astype(np.float16))
    assert exit_inputs((u,)).dtype == np.float16 and exit_inputs((u, v)).shape == (5, 4, 12)
    with pytest.raises(ValueError, match="exit_input"):
        exit_inputs((u,), "max")


def test_cross_encoding_segment_means_and_build(tiny_mpnet, shared_data, tmp_path):
    """--pair-encoding cross: one sequence per pair; the head reads the pair features of its two segments'
    means (question part up to the first separator, the rest), checked against a plain forward pass."""
    from simulator.profiling.frozen import build_frozen_profile, pooled_features

    model, tok = tiny_mpnet
    a, b = ["What is the capital of France?", "Who?"], ["Paris is the capital of France.", "Nobody at all knows."]
    x, n = pooled_features(model, tok, a, b, 128, segments=True)
    assert x.shape == (2, 3, 2, 32)
    with torch.inference_mode():
        for i in range(2):
            enc = tok(a[i], b[i], return_tensors="pt")
            assert n[i] == enc["input_ids"].shape[1]
            hs = model(**enc, output_hidden_states=True).hidden_states[1:]
            cut = int((enc["input_ids"][0] == tok.sep_token_id).nonzero()[0]) + 1
            assert cut == len(tok(a[i])["input_ids"])  # <s> a </s>
            for k, h in enumerate(hs):
                np.testing.assert_allclose(x[i, k, 0], h[0, :cut].mean(0).numpy(), atol=2e-3, rtol=2e-3)
                np.testing.assert_allclose(x[i, k, 1], h[0, cut:].mean(0).numpy(), atol=2e-3, rtol=2e-3)
    with pytest.raises(ValueError, match="pairs"):
        pooled_features(model, tok, a, None, 128, segments=True)
    p = load_profile(build_frozen_profile("MRPC", tmp_path / "m.npz", shared_data / "glue", pair_encoding="cross",
                                          max_train_samples=32, calib_size=40, epochs=1, threads=1,
                                          cache=tmp_path / "cache", model=model, tokenizer=tok, log=lambda m: None))
    man = p.meta["manifest"]
    assert man["pair_encoding"].startswith("cross-encoder") and "one sequence" in man["timing"]["source"]
    assert "Linear(128, 256)" in man["route"] and (p.timing.head_ms > 0).all()
    src = read_file(shared_data / "glue", "MRPC", "dev")
    i = int(p.eval.ids[0])
    assert p.eval.tokens[0] == len(tok(src.text_a[i], src.text_b[i], truncation=True, max_length=128)["input_ids"])
    assert list((tmp_path / "cache").glob("*-cross.npz")) and man["exit_input"].startswith("layer:")
    with pytest.raises(ValueError, match="pair_encoding"):
        build_frozen_profile("MRPC", tmp_path / "x.npz", shared_data / "glue", pair_encoding="late",
                             max_train_samples=32, calib_size=40, cache=tmp_path / "cache", model=model,
                             tokenizer=tok, log=lambda m: None)


def test_qnli_defaults_to_the_choices_made_on_calib(tiny_mpnet, shared_data, tmp_path):
    from simulator.profiling.frozen import TASK_CHOICES, build_frozen_profile

    model, tok = tiny_mpnet
    assert TASK_CHOICES["QNLI"] == {"pair_encoding": "cross", "exit_input": "running-mean"}
    p = load_profile(build_frozen_profile("QNLI", tmp_path / "q.npz", shared_data / "glue", max_train_samples=32,
                                          epochs=1, threads=1, cache=tmp_path / "cache", model=model,
                                          tokenizer=tok, log=lambda m: None))
    man = p.meta["manifest"]
    assert man["pair_encoding"].startswith("cross-encoder") and man["exit_input"].startswith("running-mean:")
    assert "running mean" in man["timing"]["source"] and (len(p.eval), len(p.calib)) == (1200, 400)
