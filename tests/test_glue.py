"""GLUE readers and deterministic splits (torch-free)."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.glue import (
    FILES,
    TASKS,
    GlueError,
    length_matched_sample,
    normalize_task,
    read_file,
    task_splits,
)

# official GLUE sizes (SOURCES.md) and the QQP re-split file
SIZES = {("SST-2", "train"): 67349, ("SST-2", "dev"): 872, ("MRPC", "train"): 3668, ("MRPC", "dev"): 408,
         ("RTE", "train"): 2490, ("RTE", "dev"): 277, ("CoLA", "train"): 8551, ("CoLA", "dev"): 1043,
         ("QNLI", "dev"): 5463, ("QQP", "all"): 23497}
SHA = {"SST-2/train.tsv": "48eac26399f8456935f81dd9e3a745c1430adb6c62e233ccfe22db4a0d15d1d1",
       "MRPC/dev.tsv": "81c8a1a9e1dfe461dd2c1a4f98f43fe18bece44d2bf9e3d0b245b88e5aa5eaf7",
       "QQP/dev_resplit_nonofficial.tsv": "9b6abc7c5798b857f8218d9ba46d0e678c2859369a9802cbdc336421e5e8d239"}


@pytest.fixture(scope="module")
def glue(shared_data):
    return shared_data / "glue"


@pytest.mark.parametrize("task,part", sorted(SIZES))
def test_read_sizes_and_fields(glue, task, part):
    d = read_file(glue, task, part)
    assert len(d) == SIZES[(task, part)]
    assert len(d.text_a) == len(d) and d.ids.tolist() == list(range(len(d)))
    assert d.is_pair == (task not in ("SST-2", "CoLA"))
    if d.is_pair:
        assert len(d.text_b) == len(d)
    assert set(np.unique(d.labels)) == {0, 1}
    assert d.label_names and len(d.label_names) == 2
    assert all(t.strip() for t in d.text_a[:50])
    if d.source in SHA:
        assert d.sha256 == SHA[d.source]


def test_label_balances(glue):
    """Official GLUE label counts (SOURCES.md)."""
    assert np.bincount(read_file(glue, "SST-2", "train").labels).tolist() == [29780, 37569]
    assert np.bincount(read_file(glue, "MRPC", "dev").labels).tolist() == [129, 279]
    assert np.bincount(read_file(glue, "CoLA", "dev").labels).tolist() == [322, 721]
    assert np.bincount(read_file(glue, "RTE", "train").labels).tolist() == [1249, 1241]
    qnli = read_file(glue, "QNLI", "dev")
    assert qnli.label_names[0] == "entailment" and np.bincount(qnli.labels).tolist() == [2702, 2761]


def test_first_rows(glue):
    mrpc = read_file(glue, "MRPC", "dev")  # starts with a BOM, and has bare quotes
    assert mrpc.labels[0] == 1 and mrpc.text_b[0].startswith('"The foodservice pie business')
    cola = read_file(glue, "CoLA", "dev")  # no header
    assert cola.text_a[0] == "The sailors rode the breeze clear of the rocks." and cola.labels[0] == 1
    qqp = read_file(glue, "QQP", "all")  # row 0 is malformed: label fused into question2
    assert qqp.text_b[0] == "Which level of prepration is enough for the exam jlpt5?" and qqp.labels[0] == 0
    rte = read_file(glue, "RTE", "dev")
    assert rte.label_names[rte.labels[0]] == "not_entailment"


def test_unknown_task_and_missing_file(tmp_path, glue):
    assert normalize_task("sst2") == "SST-2" and normalize_task("cola") == "CoLA"
    with pytest.raises(GlueError, match="unknown GLUE task"):
        normalize_task("MNLI")
    with pytest.raises(GlueError, match="not found"):
        read_file(tmp_path, "RTE", "dev")
    with pytest.raises(GlueError, match="no 'train' file"):
        read_file(glue, "QNLI", "train")
    (tmp_path / "RTE").mkdir()
    (tmp_path / "RTE" / "dev.tsv").write_text("index\ts1\ts2\tlabel\n0\ta\tb\tmaybe\n")
    with pytest.raises(GlueError, match="bad label"):
        read_file(tmp_path, "RTE", "dev")


@pytest.mark.parametrize("task", TASKS)
def test_splits_deterministic_and_disjoint(glue, task):
    a = task_splits(glue, task, seed=0)
    b = task_splits(glue, task, seed=0)
    for s in ("train", "calib", "eval"):
        assert np.array_equal(getattr(a, s).ids, getattr(b, s).ids)
    assert len(a.calib) > 0 and len(a.eval) > 0 and len(a.train) > len(a.calib)
    assert not set(a.calib.ids) & set(a.train.ids)
    if a.sources["eval"] == a.sources["train"]:  # re-split single file
        assert not set(a.eval.ids) & set(a.train.ids) and not set(a.eval.ids) & set(a.calib.ids)
        assert len(a.train) + len(a.calib) + len(a.eval) == SIZES[(task, next(iter(FILES[task])))]
        c = task_splits(glue, task, seed=1)
        assert not np.array_equal(a.eval.ids, c.eval.ids)
    else:
        assert len(a.eval) == SIZES[(task, "dev")]
        assert len(a.train) + len(a.calib) == SIZES[(task, "train")]
    assert a.description and set(a.sources.values()) == set(a.sha256)


def test_length_matched_sample():
    rng = np.random.default_rng(0)
    pool = np.concatenate([rng.integers(3, 12, 20000), rng.integers(12, 60, 3000)])
    target = rng.integers(10, 50, 800)
    idx = length_matched_sample(pool, target, 500, seed=3)
    assert len(idx) == 500 and len(np.unique(idx)) == 500
    assert np.array_equal(idx, length_matched_sample(pool, target, 500, seed=3))
    q = np.linspace(0.1, 0.9, 9)
    assert np.max(np.abs(np.quantile(pool[idx], q) - np.quantile(target, q))) <= 3
    # a pool short of long items still yields n items
    assert len(length_matched_sample(pool[:20000], target, 500, seed=1)) == 500


def test_sst2_calibration_matches_eval_lengths(glue):
    sp = task_splits(glue, "SST-2", seed=0)
    ev, ca, tr = sp.eval.word_counts(), sp.calib.word_counts(), sp.train.word_counts()
    assert abs(np.median(ca) - np.median(ev)) <= 1
    assert np.median(tr) < np.median(ev) - 5  # train is mostly short phrases
