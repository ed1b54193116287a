"""Per-layer forward time on this machine as a function of sequence length."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch

from .model import MultiExitModel

DEFAULT_SEQ_LENS = (8, 16, 32, 64, 128, 256)
DEFAULT_BATCH_SIZES = (1, 8)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine_info() -> dict:
    import transformers

    return {"cpu": cpu_model(), "threads": torch.get_num_threads(), "torch": torch.__version__,
            "transformers": transformers.__version__, "cpu_count": os.cpu_count(),
            "platform": platform.platform(), "python": platform.python_version(), "device": "cpu"}


def _first(x):
    return x[0] if isinstance(x, tuple) else x


@torch.inference_mode()
def measure_timing(model: MultiExitModel, seq_lens: Sequence[int] = DEFAULT_SEQ_LENS,
                   batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES, repeats: int = 9, warmup: int = 2,
                   seed: int = 0) -> dict[str, np.ndarray]:
    """Median wall time (ms) of the embedding layer, each encoder layer and one exit head.

    Inputs are random token ids of exactly ``seq_len`` tokens (no padding, so no attention mask,
    as in single-request inference). Within a repeat the pieces run in model order, so a load spike
    from other processes hits all of them alike; the median over ``repeats`` is kept.
    Returns arrays shaped as in :mod:`simulator.profile` (``layer_ms`` [B, S, L], ...).
    """
    model.eval()
    layers = [lambda h, layer=layer: _first(layer(h)) for layer in model.layers]
    return timing_tables(lambda ids: model.embeddings(input_ids=ids, token_type_ids=torch.zeros_like(ids)),
                         layers, lambda h, ids: model.heads[-1](h, torch.ones_like(ids)),
                         int(model.backbone.config.vocab_size), seq_lens, batch_sizes, repeats, warmup, seed)


def timing_tables(embed: Callable, layers: Sequence[Callable], head: Callable, vocab: int,
                  seq_lens: Sequence[int], batch_sizes: Sequence[int], repeats: int, warmup: int,
                  seed: int) -> dict[str, np.ndarray]:
    """Median ms of ``embed(ids) -> state``, each ``layer(state) -> state`` and ``head(state, ids)``, run
    in model order on random token ids of every batch size x length (the tables of :mod:`simulator.profile`)."""
    seq_lens = [int(s) for s in seq_lens]
    batch_sizes = [int(b) for b in batch_sizes]
    L = len(layers)
    g = torch.Generator().manual_seed(seed)
    layer_ms = np.zeros((len(batch_sizes), len(seq_lens), L))
    head_ms = np.zeros((len(batch_sizes), len(seq_lens)))
    embed_ms = np.zeros((len(batch_sizes), len(seq_lens)))
    clock = time.perf_counter
    for bi, b in enumerate(batch_sizes):
        for si, s in enumerate(seq_lens):
            ids = torch.randint(1000, vocab, (b, s), generator=g)
            samples = np.zeros((repeats, L + 2))
            for r in range(warmup + repeats):
                row = np.zeros(L + 2)
                t = clock()
                h = embed(ids)
                row[0] = clock() - t
                for k, layer in enumerate(layers):
                    t = clock()
                    h = layer(h)
                    row[1 + k] = clock() - t
                t = clock()
                head(h, ids)
                row[L + 1] = clock() - t
                if r >= warmup:
                    samples[r - warmup] = row
            med = np.median(samples, axis=0) * 1e3
            embed_ms[bi, si], layer_ms[bi, si], head_ms[bi, si] = med[0], med[1:L + 1], med[L + 1]
    return {"seq_lens": np.array(seq_lens), "batch_sizes": np.array(batch_sizes), "layer_ms": layer_ms,
            "head_ms": head_ms, "embed_ms": embed_ms}
