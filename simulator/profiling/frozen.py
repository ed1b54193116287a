"""Two-stage exit profiles for a large backbone on a CPU: frozen backbone, exit heads on cached features.

Fine-tuning a 110 M-parameter backbone takes hours on a 2-core CPU, so, as DeeBERT trains its off-ramps
in a second stage, the backbone stays frozen: it runs once over train / calib / eval, caching the
attention-masked mean of every layer's hidden state (float16), and one exit head per layer is trained
on the cache: a small MLP (LayerNorm, Linear(D, 256), GELU, dropout 0.1, Linear(256, C)), AdamW,
cross-entropy, the same number of epochs for every head. Sentence pairs are encoded as the backbone was
trained (a bi-encoder: each sentence on its own), and the head at layer k reads SBERT's pair features
[u, v, |u - v|, u * v] of the two sentences' pooled layer-k states (D = 4H); feeding the frozen
sentence-embedding model "[CLS] a [SEP] b" and mean-pooling the whole sequence left its deeper exits near
chance on MRPC (67.9 % at layer 12, 77.9 % at layer 5). A pair's token count is the two sentences'
together. Option ``pair_encoding="cross"``: the pair as one sequence, so attention sees both, and the head
reads the pair features of the two segments' means (QNLI: better than bi on calib at every exit). Option
``exit_input="running-mean"``: the head at exit k reads the running mean over layers 1..k of the pooled
states (a frozen sentence-embedding model's top layers can be worse than its middle ones; everything up to
layer k is computed when exit k is reached). Per-task choices: :data:`TASK_CHOICES`. Stored with the
logits: a PCA projection of every exit's pooled input (fitted on calib, per layer), so clustering
policies run without torch. Timing tables are measured on the backbone itself per layer, batch size and
sequence length, each piece on the input it takes at inference (a bi-encoder pair as its two sentences,
its exit head on their pair features); the manifest's ``timing.source`` says how the table was made.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from ..glue import LABEL_NAMES, normalize_task, task_splits

SEQ_LENS = (8, 16, 32, 64, 128)
BATCH_SIZES = (1, 2, 4, 8, 16, 32)
HEAD_HIDDEN = 256
PROJ_DIMS = 32
# how a sentence pair reaches the frozen backbone; both give the head [u, v, |u-v|, u*v] at every layer:
PAIR_ENCODINGS = {
    "bi": "bi-encoder: each sentence encoded alone; head input [u, v, |u-v|, u*v] of the two sentences' pooled "
          "layer-k states; tokens = both sentences'",
    "cross": "cross-encoder: the pair as one sequence (<s> a </s></s> b </s>), so attention sees both; head input "
             "[u, v, |u-v|, u*v] of the two segments' pooled layer-k states (u: up to the first separator)",
}
# what the head at exit k reads: that layer's pooled state(s), or their running mean over layers 1..k (all
# computed by the time exit k is reached; a frozen backbone's top layers can be worse than its middle ones)
EXIT_INPUTS = {
    "layer": "the pooled state(s) of layer k",
    "running-mean": "the running mean over layers 1..k of the pooled state(s) (one add per layer at inference)",
}
# per task, the choices made on calib (profiles/README.md); otherwise pair_encoding "bi", exit_input "layer"
TASK_CHOICES: dict[str, dict[str, str]] = {"QNLI": {"pair_encoding": "cross", "exit_input": "running-mean"}}


@torch.inference_mode()
def pooled_features(model, tokenizer, text_a: list[str], text_b: list[str] | None, max_length: int,
                    batch: int = 32, log: Callable[[str], None] | None = None,
                    segments: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Masked-mean pooled hidden state after every layer [N, L, H] (float16) and token counts [N].

    ``segments`` (a pair encoded as one sequence, ``<s> a </s></s> b </s>``): the mean of each segment
    separately, ``a`` = the tokens up to and including the first separator, ``b`` = the rest, as
    [N, L, 2, H]; the two see each other through attention."""
    if segments and text_b is None:
        raise ValueError("segment pooling needs sentence pairs")
    enc = tokenizer(text_a, text_b, truncation=True, max_length=max_length)
    ids = enc["input_ids"]
    lengths = np.array([len(x) for x in ids])
    order = np.argsort(lengths, kind="stable")
    L, H = model.config.num_hidden_layers, model.config.hidden_size
    out = np.zeros((len(ids), L, 2, H) if segments else (len(ids), L, H), dtype=np.float16)
    pad = tokenizer.pad_token_id or 0
    t0 = time.perf_counter()
    for start in range(0, len(ids), batch):
        idx = order[start:start + batch]
        width = int(lengths[idx].max())
        x = torch.full((len(idx), width), pad, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for r, i in enumerate(idx):
            x[r, :lengths[i]] = torch.tensor(ids[i])
            mask[r, :lengths[i]] = 1
        hs = model(input_ids=x, attention_mask=mask, output_hidden_states=True).hidden_states[1:]
        if segments:
            first_sep = (x == tokenizer.sep_token_id).int().argmax(1, keepdim=True)
            in_a = (torch.arange(width)[None] <= first_sep).long()
            masks = [(mask * in_a).unsqueeze(-1).float(), (mask * (1 - in_a)).unsqueeze(-1).float()]
            pooled = torch.stack([torch.stack([(h * m).sum(1) / m.sum(1) for m in masks], dim=1) for h in hs],
                                 dim=1)
        else:
            m = mask.unsqueeze(-1).float()
            pooled = torch.stack([(h * m).sum(1) / m.sum(1) for h in hs], dim=1)
        out[idx] = pooled.numpy().astype(np.float16)
        if log and (start // batch) % 50 == 0:
            log(f"  features {start + len(idx)}/{len(ids)} ({time.perf_counter() - t0:.0f}s)")
    return out, lengths


def pair_features(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """SBERT's classification features per layer: [u, v, |u - v|, u * v] ([N, L, 4H], float16)."""
    u32, v32 = u.astype(np.float32), v.astype(np.float32)
    return np.concatenate([u32, v32, np.abs(u32 - v32), u32 * v32], axis=-1).astype(np.float16)


def pair_features_torch(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """:func:`pair_features` at inference time, on the pooled states [B, H] of one layer ([B, 4H])."""
    return torch.cat([u, v, (u - v).abs(), u * v], dim=-1)


def exit_head(dim: int, classes: int) -> torch.nn.Module:
    """One exit head: LayerNorm, Linear(dim, 256), GELU, dropout 0.1, Linear(256, classes)."""
    return torch.nn.Sequential(torch.nn.LayerNorm(dim), torch.nn.Linear(dim, HEAD_HIDDEN), torch.nn.GELU(),
                               torch.nn.Dropout(0.1), torch.nn.Linear(HEAD_HIDDEN, classes))


def train_heads(x: np.ndarray, y: np.ndarray, classes: int, epochs: int = 30, lr: float = 1e-3,
                batch: int = 128, seed: int = 0) -> list[torch.nn.Module]:
    """One MLP exit head per layer on cached features ``x`` [N, L, H]."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    n, L, H = x.shape
    heads = []
    xt, yt = torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.int64))
    for k in range(L):
        head = exit_head(H, classes)
        opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=0.01)
        steps = epochs * ((n + batch - 1) // batch)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
        head.train()
        for _ in range(epochs):
            perm = torch.randperm(n, generator=g)
            for s in range(0, n, batch):
                b = perm[s:s + batch]
                loss = torch.nn.functional.cross_entropy(head(xt[b, k]), yt[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
        heads.append(head.eval())
    return heads


@torch.inference_mode()
def head_logits(heads: list[torch.nn.Module], x: np.ndarray) -> np.ndarray:
    xt = torch.from_numpy(x.astype(np.float32))
    return np.stack([h(xt[:, k]).numpy() for k, h in enumerate(heads)], axis=1)


def pca_projection(calib: np.ndarray, others: Sequence[np.ndarray], dims: int = PROJ_DIMS) -> list[np.ndarray]:
    """Per layer, PCA fitted on ``calib`` [N, L, H]; returns the projections of calib and each other."""
    L = calib.shape[1]
    outs = [np.zeros((a.shape[0], L, dims), dtype=np.float32) for a in (calib, *others)]
    for k in range(L):
        c = calib[:, k].astype(np.float64)
        mean = c.mean(0)
        _, _, vt = np.linalg.svd(c - mean, full_matrices=False)
        comp = vt[:dims]
        for out, a in zip(outs, (calib, *others), strict=True):
            out[:, k] = (a[:, k].astype(np.float64) - mean) @ comp.T
    return outs


TIMED_AS = {
    None: "one sequence of s tokens, the head on its pooled state",
    "bi": "a pair of s tokens run as two sequences of s/2 (one batch of 2B), the head on [u, v, |u-v|, u*v] of "
          "their pooled states",
    "cross": "a pair of s tokens run as one sequence, the head on [u, v, |u-v|, u*v] of its two halves' pooled "
             "states",
}


def timing_pieces(model, head: torch.nn.Module, pair_encoding: str | None = None,
                  exit_input: str = "layer") -> tuple[Callable, list, Callable]:
    """``embed``, ``layers`` and ``head`` callables for :func:`.measure.timing_tables`, each fed what it really
    takes at inference. A request of ``s`` tokens is, for ``pair_encoding``:

    * ``None`` (single sentence): one sequence of ``s`` tokens; the head reads its mean-pooled state [B, H];
    * ``"bi"`` (bi-encoder pair, ``s`` = both sentences' tokens): two sequences of ``s / 2`` tokens run as
      one batch of 2B (the layers' real work); the head reads ``[u, v, |u-v|, u*v]`` of the two sentences'
      mean-pooled states [B, 4H], as in training;
    * ``"cross"`` (the pair as one sequence of ``s`` tokens): one sequence; the head reads ``[u, v, |u-v|,
      u*v]`` of the mean-pooled first and second halves [B, 4H] (the segments' real split varies by pair;
      the cost does not).

    ``exit_input="running-mean"``: the pooled states are first added into the running sum over layers and
    scaled (see :data:`EXIT_INPUTS`).
    """
    if pair_encoding not in TIMED_AS:
        raise ValueError(f"pair_encoding must be None, 'bi' or 'cross', not {pair_encoding!r}")
    if exit_input not in EXIT_INPUTS:
        raise ValueError(f"exit_input must be one of {', '.join(EXIT_INPUTS)}, not {exit_input!r}")
    n_layers = len(model.encoder.layer)

    def embed(ids):
        if pair_encoding == "bi":
            b, s = ids.shape
            if s % 2:
                raise ValueError(f"a bi-encoder pair is timed as two halves: sequence length {s} is odd")
            ids = ids.reshape(2 * b, s // 2)  # rows 2i, 2i + 1: the two sentences of pair i
        h = model.embeddings(input_ids=ids)
        return h, model.encoder.compute_position_bias(h)  # MPNet's relative position bias, shared by layers

    layers = [lambda state, layer=layer: (layer(state[0], None, state[1])[0], state[1])
              for layer in model.encoder.layer]

    def run_head(state, ids):
        h = state[0]
        if pair_encoding == "bi":
            pooled = [h[0::2].mean(1), h[1::2].mean(1)]
        elif pair_encoding == "cross":
            half = h.shape[1] // 2
            pooled = [h[:, :half].mean(1), h[:, half:].mean(1)]
        else:
            pooled = [h.mean(1)]
        if exit_input == "running-mean":  # add into the running sum of the earlier layers, scale by 1 / k
            pooled = [(torch.zeros_like(q) + q) / n_layers for q in pooled]
        return head(pair_features_torch(*pooled) if pair_encoding else pooled[0])

    return embed, layers, run_head


@torch.inference_mode()
def measure_backbone(model, heads: list[torch.nn.Module], seq_lens: Sequence[int] = SEQ_LENS,
                     batch_sizes: Sequence[int] = BATCH_SIZES, repeats: int = 5, warmup: int = 1,
                     seed: int = 0, pair_encoding: str | None = None,
                     exit_input: str = "layer") -> dict[str, np.ndarray]:
    """Median ms of the embeddings, each encoder layer and one exit head (pool + MLP), per batch and length;
    the head is the last trained one, on the input of ``pair_encoding`` (see :func:`timing_pieces`)."""
    from .measure import timing_tables

    embed, layers, head = timing_pieces(model, heads[-1], pair_encoding, exit_input)
    return timing_tables(embed, layers, head, int(model.config.vocab_size), seq_lens, batch_sizes, repeats,
                         warmup, seed)


def cached_features(model, tok, text_a: list[str], text_b: list[str] | None, max_length: int,
                    encoding: str | None, cache_file: Path, log: Callable[[str], None] | None = None
                    ) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """The pooled states of one split, each [N, L, H] (float16), and its token counts [N], computed once and
    kept in ``cache_file``: ``(x,)`` for single sentences, the two sentences' ``(u, v)`` ("bi"), or the two
    segments' means of the joint sequence ("cross", stored as ``x`` [N, L, 2, H]). A "bi" cache holding the
    pair features ``x`` [N, L, 4H] (older builds) is read as well."""
    if cache_file.is_file():
        z = np.load(cache_file)
        if encoding == "bi" and "x" in z.files:
            H = z["x"].shape[-1] // 4
            u, v = z["x"][..., :H], z["x"][..., H:2 * H]
        elif encoding == "bi":
            u, v = z["u"], z["v"]
        else:
            x = z["x"]
        tokens = z["tokens"]
    elif encoding == "bi":  # each sentence alone; a pair's tokens are both sentences'
        u, tu = pooled_features(model, tok, text_a, None, max_length, log=log)
        v, tv = pooled_features(model, tok, text_b, None, max_length, log=log)
        tokens = tu + tv
        np.savez(cache_file, u=u, v=v, tokens=tokens)
    else:
        x, tokens = pooled_features(model, tok, text_a, text_b, max_length, log=log, segments=encoding == "cross")
        np.savez(cache_file, x=x, tokens=tokens)
    if encoding == "bi":
        return (u, v), tokens
    if encoding == "cross":
        return (x[:, :, 0], x[:, :, 1]), tokens
    return (x,), tokens


def running_mean(x: np.ndarray) -> np.ndarray:
    """Mean over layers 1..k at every layer k (axis 1), float32."""
    k = np.arange(1, x.shape[1] + 1, dtype=np.float32).reshape(1, -1, *([1] * (x.ndim - 2)))
    return np.cumsum(x.astype(np.float32), axis=1) / k


def exit_inputs(states: tuple[np.ndarray, ...], exit_input: str = "layer") -> np.ndarray:
    """The heads' inputs [N, L, D] (float16) from the pooled states: one state as it is, two as pair features."""
    if exit_input == "running-mean":
        states = tuple(running_mean(s) for s in states)
    elif exit_input != "layer":
        raise ValueError(f"exit_input must be one of {', '.join(EXIT_INPUTS)}, not {exit_input!r}")
    return pair_features(*states) if len(states) == 2 else states[0].astype(np.float16)


def build_frozen_profile(task: str, out: str | Path, data_dir: str | Path, *, max_length: int = 128,
                         max_train_samples: int | None = 8000, calib_size: int | None = None,
                         epochs: int = 30, seed: int = 0, threads: int = 2, cache: Path | None = None,
                         pair_encoding: str | None = None, exit_input: str | None = None,
                         timing: dict[str, np.ndarray] | None = None, timing_source: str | None = None,
                         model=None, tokenizer=None, log: Callable[[str], None] | None = None) -> Path:
    """Features (cached as .npz in ``cache``), heads, projections and timing -> one profile file.

    ``pair_encoding`` (pair tasks): ``"bi"`` or ``"cross"`` (:data:`PAIR_ENCODINGS`); ``exit_input``:
    ``"layer"`` or ``"running-mean"`` (:data:`EXIT_INPUTS`); defaults: the task's entry in
    :data:`TASK_CHOICES`, else ``"bi"`` and ``"layer"``.
    ``timing``: a timing table to store instead of measuring one (``timing_source`` says where it came from;
    recorded in the manifest). ``model`` / ``tokenizer``: use these instead of all-mpnet-base-v2 (tests)."""
    from transformers import AutoModel, AutoTokenizer

    from ..profile import Split, Timing, save_profile
    from .measure import machine_info
    from .mpnet import checkpoint

    def say(msg: str) -> None:
        (log or (lambda m: print(m, flush=True)))(f"[{task}] {msg}")

    t_start = time.perf_counter()
    task = normalize_task(task)
    torch.set_num_threads(int(threads))
    model_name = "all-mpnet-base-v2" if model is None else f"custom ({type(model).__name__}, passed in)"
    if model is None or tokenizer is None:
        path = checkpoint()
        tok = tokenizer or AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = model or AutoModel.from_pretrained(path, local_files_only=True)
    else:
        tok = tokenizer
    model = model.eval()
    names = LABEL_NAMES[task]
    lengths = None
    if task == "SST-2":
        from ..glue import read_file

        lengths = {p: np.array([len(x) for x in tok(read_file(data_dir, task, p).text_a, truncation=True,
                                                     max_length=max_length)["input_ids"]]) for p in ("train", "dev")}
    sp = task_splits(data_dir, task, seed=seed, calib_size=calib_size, lengths=lengths)
    train = sp.train
    if max_train_samples is not None and len(train) > max_train_samples:
        pick = np.random.default_rng(seed + 1).permutation(len(train))[:max_train_samples]
        train = train.subset(np.sort(pick))
    parts = {"train": train, "calib": sp.calib, "eval": sp.eval}
    say(f"train {len(train)} (of {len(sp.train)}), calib {len(sp.calib)}, eval {len(sp.eval)}")
    cache = Path(cache) if cache is not None else Path("profiles") / ".features"
    cache.mkdir(parents=True, exist_ok=True)
    feats, toks = {}, {}
    t = time.perf_counter()
    pairs = parts["eval"].text_b is not None
    choices = TASK_CHOICES.get(task, {})
    encoding = (pair_encoding or choices.get("pair_encoding", "bi")) if pairs else None
    exit_input = exit_input or choices.get("exit_input", "layer")
    if encoding not in (None, *PAIR_ENCODINGS):
        raise ValueError(f"pair_encoding must be one of {', '.join(PAIR_ENCODINGS)}, not {pair_encoding!r}")
    if exit_input not in EXIT_INPUTS:
        raise ValueError(f"exit_input must be one of {', '.join(EXIT_INPUTS)}, not {exit_input!r}")
    from_cache = []
    for name, g in parts.items():
        f = cache / f"{task.lower()}-{name}-{len(g)}-s{seed}-L{max_length}{'-' + encoding if pairs else ''}.npz"
        if f.is_file():
            from_cache.append(f.name)
        states, toks[name] = cached_features(model, tok, g.text_a, g.text_b, max_length, encoding, f, say)
        feats[name] = exit_inputs(states, exit_input)
        say(f"{name}: features {feats[name].shape} (mean {toks[name].mean():.1f} tokens)")
    extract_s = time.perf_counter() - t
    t = time.perf_counter()
    heads = train_heads(feats["train"], train.labels, len(names), epochs=epochs, seed=seed)
    train_s = time.perf_counter() - t
    logits = {name: head_logits(heads, feats[name]) for name in ("eval", "calib")}
    proj_calib, proj_eval = pca_projection(feats["calib"], [feats["eval"]])
    splits = {name: Split(logits=logits[name].astype(np.float16), labels=parts[name].labels,
                          tokens=toks[name].astype(np.int32), ids=parts[name].ids, proj=p.astype(np.float16))
              for name, p in (("eval", proj_eval), ("calib", proj_calib))}
    acc = {n: [float(a) for a in (s.logits.argmax(-1) == s.labels[:, None]).mean(0)] for n, s in splits.items()}
    say("eval accuracy per exit: " + " ".join(f"{100 * a:.1f}" for a in acc["eval"]))
    t = time.perf_counter()
    if timing is None:
        tm = measure_backbone(model, heads, pair_encoding=encoding, exit_input=exit_input)
        timing_source = "measured in this build on this backbone: " + TIMED_AS[encoding] + \
            ("; running mean: one add and one scale before the head" if exit_input == "running-mean" else "")
    else:
        tm, timing_source = timing, timing_source or "passed in by the caller (source not stated)"
    timing_s = time.perf_counter() - t
    meta = {
        "task": task, "model": model_name, "model_path": "all-mpnet-base-v2 (PyPI parts, extra 'mpnet')"
        if model_name == "all-mpnet-base-v2" else model_name,
        "num_layers": model.config.num_hidden_layers, "hidden_size": model.config.hidden_size,
        "num_classes": len(names), "label_names": list(names),
        "pooling": "attention-masked mean of each layer's hidden state", "machine": machine_info(),
        "manifest": {
            "route": "frozen backbone, two-stage exit heads (DeeBERT-style second stage): per-layer MLP "
                     f"(LayerNorm, Linear({feats['eval'].shape[-1]}, {HEAD_HIDDEN}), GELU, dropout 0.1, "
                     f"Linear({HEAD_HIDDEN}, {len(names)})) on cached pooled features; no GPU was available",
            "pair_encoding": PAIR_ENCODINGS[encoding] if pairs else None,
            "exit_input": f"{exit_input}: {EXIT_INPUTS[exit_input]}",
            "sources": dict(sp.sha256), "split_sources": dict(sp.sources), "split_description": sp.description,
            "ids": "row index of the sample in its source file (0-based, header excluded)",
            "hyperparameters": {"epochs": epochs, "optimizer": "AdamW", "lr": 1e-3, "schedule": "one-cycle",
                                "batch_size": 128, "weight_decay": 0.01, "max_length": max_length,
                                "max_train_samples": max_train_samples, "threads": int(threads)},
            "seed": seed, "train_samples": len(train), "train_pool": len(sp.train),
            "projection": f"PCA to {PROJ_DIMS} dims per layer, fitted on calib (<split>_proj, float16)",
            "feature_wall_time_s": round(extract_s, 1), "features_read_from_cache": from_cache,
            "head_train_wall_time_s": round(train_s, 1),
            "timing_wall_time_s": round(timing_s, 1), "wall_time_s": round(time.perf_counter() - t_start, 1),
            "accuracy": acc, "mean_tokens": {n: float(v.mean()) for n, v in toks.items()},
            "timing": {"source": timing_source,
                       "repeats": 5, "statistic": "median", "inputs": "random token ids, exact length, no mask",
                       "units": "ms per batch", "conditions": "shared 2-core VM, other processes running"},
        },
    }
    path = save_profile(out, meta, splits, Timing(tm["seq_lens"], tm["batch_sizes"], tm["layer_ms"],
                                                  tm["head_ms"], tm["embed_ms"]))
    say(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB) in {time.perf_counter() - t_start:.0f}s")
    return path
