"""Torch-free readers for the GLUE task files in ``shared/data/glue`` and deterministic splitting.

Every reader returns a :class:`GlueData`: the texts (one sentence or a pair), integer labels, the
row index of each sample in its source file (0-based, header excluded), the label names and the
sha256 of the file. Files are read with quoting off (``csv.QUOTE_NONE``): sentences contain bare
double quotes. See ``shared/data/glue/SOURCES.md`` for where the files come from.

Splits used for exit profiles (:func:`task_splits`):

* ``eval`` -- the GLUE dev set where one exists here (SST-2, MRPC, RTE, CoLA);
* ``calib`` -- held out from training; drawn from the training file;
* ``train`` -- the rest of the training file.

QNLI has only its dev file here and QQP only a labelled re-split file: those are split
deterministically (seeded permutation) into train / calib / eval and the manifest says so.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .profile import file_sha256

TASKS = ("SST-2", "MRPC", "RTE", "CoLA", "QNLI", "QQP")

LABEL_NAMES = {
    "SST-2": ["negative", "positive"],
    "MRPC": ["not_equivalent", "equivalent"],
    "RTE": ["entailment", "not_entailment"],
    "CoLA": ["unacceptable", "acceptable"],
    "QNLI": ["entailment", "not_entailment"],
    "QQP": ["not_duplicate", "duplicate"],
}

# source files of each task, relative to the glue folder
FILES = {
    "SST-2": {"train": "SST-2/train.tsv", "dev": "SST-2/dev.tsv"},
    "MRPC": {"train": "MRPC/train.tsv", "dev": "MRPC/dev.tsv"},
    "RTE": {"train": "RTE/train.tsv", "dev": "RTE/dev.tsv"},
    "CoLA": {"train": "CoLA/train.tsv", "dev": "CoLA/dev.tsv"},
    "QNLI": {"dev": "QNLI/dev.tsv"},
    "QQP": {"all": "QQP/dev_resplit_nonofficial.tsv"},
}

# fixed eval / calib sizes for the tasks that are re-split from a single file
RESPLIT_SIZES = {"QNLI": {"eval": 1200, "calib": 400}, "QQP": {"eval": 3000, "calib": 1000}}


class GlueError(ValueError):
    """A GLUE file is missing or not in the expected format."""


@dataclass(frozen=True, eq=False)
class GlueData:
    """Labelled samples of one task read from one source file (or a subset of them)."""

    task: str
    text_a: list[str]
    text_b: list[str] | None  # None for single-sentence tasks
    labels: np.ndarray  # [N] int64
    ids: np.ndarray  # [N] row index in the source file (0-based, header excluded)
    label_names: list[str]
    source: str  # path relative to the glue folder
    sha256: str = field(default="")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def is_pair(self) -> bool:
        return self.text_b is not None

    def subset(self, idx: np.ndarray | list[int]) -> GlueData:
        idx = np.asarray(idx, dtype=np.int64)
        return GlueData(self.task, [self.text_a[i] for i in idx],
                        None if self.text_b is None else [self.text_b[i] for i in idx],
                        self.labels[idx], self.ids[idx], self.label_names, self.source, self.sha256)

    def word_counts(self) -> np.ndarray:
        """Whitespace word count of each sample (both texts for pairs): a torch-free length proxy."""
        a = np.array([len(t.split()) for t in self.text_a], dtype=np.int64)
        if self.text_b is not None:
            a = a + np.array([len(t.split()) for t in self.text_b], dtype=np.int64)
        return a


def normalize_task(task: str) -> str:
    key = task.upper().replace("_", "-").replace("SST2", "SST-2")
    for t in TASKS:
        if t.upper() == key:
            return t
    raise GlueError(f"unknown GLUE task {task!r}; known: {', '.join(TASKS)}")


def _rows(path: Path) -> list[list[str]]:
    if not path.is_file():
        raise GlueError(f"GLUE file not found: {path}")
    with open(path, encoding="utf-8-sig", newline="") as f:  # utf-8-sig drops MRPC's BOM
        return [r for r in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE) if r]


def _label(value: str, names: list[str], where: str) -> int:
    v = value.strip()
    if v in names:
        return names.index(v)
    try:
        k = int(v)
    except ValueError:
        raise GlueError(f"{where}: bad label {value!r}") from None
    if not 0 <= k < len(names):
        raise GlueError(f"{where}: label {k} outside 0..{len(names) - 1}")
    return k


def read_file(data_dir: str | Path, task: str, part: str) -> GlueData:
    """Read one source file of a task (``part`` is a key of ``FILES[task]``: train, dev or all)."""
    task = normalize_task(task)
    if part not in FILES[task]:
        raise GlueError(f"{task} has no {part!r} file here (available: {', '.join(FILES[task])})")
    rel = FILES[task][part]
    path = Path(data_dir) / rel
    rows = _rows(path)
    names = LABEL_NAMES[task]
    a: list[str] = []
    b: list[str] = []
    labels: list[int] = []
    if task == "SST-2":
        body, ncol = rows[1:], 2
    elif task == "MRPC":
        body, ncol = rows[1:], 5
    elif task in ("RTE", "QNLI"):
        body, ncol = rows[1:], 4
    elif task == "CoLA":
        body, ncol = rows, 4  # no header
    else:  # QQP: no header; id, qid1, qid2, question1, question2, is_duplicate
        body, ncol = rows, 6
    for i, r in enumerate(body):
        where = f"{path} data row {i}"
        if task == "QQP" and len(r) == 5 and r[4][-2:] in (" 0", " 1"):
            # the file's first row is malformed: its label is fused into question2 after a space
            r = [*r[:4], r[4][:-2], r[4][-1]]
        if len(r) != ncol:
            raise GlueError(f"{where}: expected {ncol} tab-separated fields, got {len(r)}")
        if task == "SST-2":
            a.append(r[0].strip())
            labels.append(_label(r[1], names, where))
        elif task == "MRPC":
            a.append(r[3])
            b.append(r[4])
            labels.append(_label(r[0], names, where))
        elif task in ("RTE", "QNLI"):
            a.append(r[1])
            b.append(r[2])
            labels.append(_label(r[3], names, where))
        elif task == "CoLA":
            a.append(r[3])
            labels.append(_label(r[1], names, where))
        else:
            a.append(r[3])
            b.append(r[4])
            labels.append(_label(r[5], names, where))
    if not labels:
        raise GlueError(f"{path}: no samples")
    return GlueData(task, a, b if task not in ("SST-2", "CoLA") else None,
                    np.asarray(labels, dtype=np.int64), np.arange(len(labels), dtype=np.int64),
                    list(names), rel, file_sha256(path))


def length_matched_sample(pool_lengths: np.ndarray, target_lengths: np.ndarray, n: int, seed: int,
                          bins: int = 10) -> np.ndarray:
    """Indices of ``n`` pool items whose length distribution matches ``target_lengths``.

    Stratified sampling: the target's length quantiles define ``bins`` bins; each bin gets a share
    of ``n`` equal to the target's share (largest-remainder rounding) and is sampled without
    replacement from the pool items in that bin. A bin short of pool items takes all it has and
    the shortfall goes to the neighbouring bins. Deterministic for a given seed.
    """
    pool_lengths = np.asarray(pool_lengths)
    target_lengths = np.asarray(target_lengths)
    n = int(min(n, len(pool_lengths)))
    rng = np.random.default_rng(seed)
    edges = np.unique(np.quantile(target_lengths, np.linspace(0, 1, bins + 1)))
    inner = edges[1:-1]
    t_bin = np.searchsorted(inner, target_lengths, side="right")
    p_bin = np.searchsorted(inner, pool_lengths, side="right")
    nb = len(inner) + 1
    share = np.bincount(t_bin, minlength=nb) / len(target_lengths) * n
    want = np.floor(share).astype(int)
    for k in np.argsort(-(share - want))[: n - want.sum()]:
        want[k] += 1
    members = [rng.permutation(np.flatnonzero(p_bin == k)) for k in range(nb)]
    take = np.minimum(want, [len(m) for m in members])
    short = int(want.sum() - take.sum())
    while short > 0:  # move the shortfall to the nearest bins that still have items
        spare = np.array([len(m) for m in members]) - take
        if spare.sum() == 0:
            break
        centre = np.argmax(want - take) if np.any(want > take) else 0
        order = np.argsort(np.abs(np.arange(nb) - centre), kind="stable")
        for k in order:
            if spare[k] > 0:
                take[k] += 1
                short -= 1
                break
    idx = np.concatenate([m[:t] for m, t in zip(members, take, strict=True)]).astype(np.int64)
    return np.sort(idx)


@dataclass(frozen=True, eq=False)
class TaskSplits:
    train: GlueData
    calib: GlueData
    eval: GlueData
    description: str
    sources: dict[str, str]  # split -> source file (relative to the glue folder)
    sha256: dict[str, str]  # source file -> sha256


def default_calib_size(task: str, n_train_file: int) -> int:
    task = normalize_task(task)
    if task in RESPLIT_SIZES:
        return RESPLIT_SIZES[task]["calib"]
    return int(min(1000, round(0.1 * n_train_file)))


def task_splits(data_dir: str | Path, task: str, seed: int = 0, calib_size: int | None = None,
                lengths: dict[str, np.ndarray] | None = None) -> TaskSplits:
    """Deterministic train / calib / eval splits of a task.

    ``lengths`` (optional, SST-2 only) gives the token counts of the train and dev files
    (``{"train": ..., "dev": ...}``) used to draw a calibration split whose length distribution
    matches the evaluation split's; without it whitespace word counts are used.
    """
    task = normalize_task(task)
    rng = np.random.default_rng(seed)
    if task in RESPLIT_SIZES:
        part = "dev" if task == "QNLI" else "all"
        full = read_file(data_dir, task, part)
        n_eval = RESPLIT_SIZES[task]["eval"]
        n_cal = RESPLIT_SIZES[task]["calib"] if calib_size is None else int(calib_size)
        perm = rng.permutation(len(full))
        ev, ca, tr = perm[:n_eval], perm[n_eval:n_eval + n_cal], perm[n_eval + n_cal:]
        what = "GLUE QNLI dev (no QNLI train file here)" if task == "QNLI" else \
            "the non-official labelled QQP re-split file (no official QQP train/dev here)"
        desc = (f"{what} split by a seeded permutation (numpy default_rng({seed})): eval = first "
                f"{len(ev)}, calib = next {len(ca)}, train = remaining {len(tr)} rows; "
                f"ids are row indices in {full.source}")
        return TaskSplits(full.subset(np.sort(tr)), full.subset(np.sort(ca)), full.subset(np.sort(ev)),
                          desc, {"train": full.source, "calib": full.source, "eval": full.source},
                          {full.source: full.sha256})
    train = read_file(data_dir, task, "train")
    dev = read_file(data_dir, task, "dev")
    n_cal = default_calib_size(task, len(train)) if calib_size is None else int(calib_size)
    if task == "SST-2":
        if lengths is not None:
            pool_len, target_len, unit = lengths["train"], lengths["dev"], "token"
        else:
            pool_len, target_len, unit = train.word_counts(), dev.word_counts(), "word"
        ca = length_matched_sample(pool_len, target_len, n_cal, seed)
        desc = (f"eval = GLUE SST-2 dev ({len(dev)}); calib = {len(ca)} rows of SST-2 train drawn "
                f"stratified by {unit}-count decile bins of the dev split so that the calibration "
                f"length distribution matches eval (train is mostly short phrases); train = the other "
                f"train rows")
    else:
        ca = np.sort(rng.permutation(len(train))[:n_cal])
        desc = (f"eval = GLUE {task} dev ({len(dev)}); calib = {len(ca)} rows of {task} train drawn by a "
                f"seeded permutation (numpy default_rng({seed})); train = the other train rows")
    mask = np.ones(len(train), dtype=bool)
    mask[ca] = False
    return TaskSplits(train.subset(np.flatnonzero(mask)), train.subset(ca), dev, desc,
                      {"train": train.source, "calib": train.source, "eval": dev.source},
                      {train.source: train.sha256, dev.source: dev.sha256})
