"""Tokenisation, joint multi-exit fine-tuning (weighted sum of exit losses) and prediction."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .model import MultiExitModel


@dataclass
class Encoded:
    """Tokenised samples (unpadded, truncated to max_length)."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(x) for x in self.input_ids], dtype=np.int64)


def encode(tokenizer, text_a: list[str], text_b: list[str] | None, labels: np.ndarray,
           max_length: int) -> Encoded:
    args = (text_a,) if text_b is None else (text_a, text_b)
    enc = tokenizer(*args, truncation=True, max_length=max_length, padding=False)
    tt = enc.get("token_type_ids")
    return Encoded(list(enc["input_ids"]), None if tt is None else list(tt), np.asarray(labels))


def collate(enc: Encoded, idx: np.ndarray, pad_id: int) -> dict[str, torch.Tensor]:
    """Pad a batch to its longest sample."""
    width = max(len(enc.input_ids[i]) for i in idx)
    ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(idx), width), dtype=torch.long)
    tt = torch.zeros((len(idx), width), dtype=torch.long) if enc.token_type_ids is not None else None
    for r, i in enumerate(idx):
        n = len(enc.input_ids[i])
        ids[r, :n] = torch.tensor(enc.input_ids[i])
        mask[r, :n] = 1
        if tt is not None:
            tt[r, :n] = torch.tensor(enc.token_type_ids[i])
    out = {"input_ids": ids, "attention_mask": mask}
    if tt is not None:
        out["token_type_ids"] = tt
    return out


def exit_weights(num_layers: int) -> torch.Tensor:
    """Loss weight of each exit, proportional to its layer index (PABEE / DIMEE-style)."""
    w = torch.arange(1, num_layers + 1, dtype=torch.float32)
    return w / w.sum()


@dataclass
class TrainStats:
    steps: int
    epochs: float
    samples_seen: int
    wall_time_s: float
    final_loss: float


def train(model: MultiExitModel, enc: Encoded, pad_id: int, *, epochs: float, max_steps: int | None,
          lr: float, batch_size: int, seed: int, warmup: float = 0.06, weight_decay: float = 0.01,
          log: Callable[[str], None] = print, log_every: int = 50) -> TrainStats:
    """Fine-tune backbone and all heads jointly on sum_k w_k * CE(exit_k)."""
    n = len(enc)
    steps_per_epoch = math.ceil(n / batch_size)
    total = math.ceil(epochs * steps_per_epoch)
    if max_steps is not None:
        total = min(total, int(max_steps)) if epochs else int(max_steps)
    total = max(total, 1)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
    groups = [
        {"params": [p for nm, p in model.named_parameters() if not any(k in nm for k in no_decay)],
         "weight_decay": weight_decay},
        {"params": [p for nm, p in model.named_parameters() if any(k in nm for k in no_decay)],
         "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=lr)
    n_warm = max(1, int(warmup * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / n_warm, max(0.0, (total - s) / max(1, total - n_warm))))
    w = exit_weights(model.num_layers)
    ce = nn.CrossEntropyLoss()
    model.train()
    t0 = time.perf_counter()
    step, seen, running = 0, 0, None
    order = np.empty(0, dtype=np.int64)
    pos = 0
    while step < total:
        if pos >= len(order):
            order, pos = rng.permutation(n), 0
        idx = order[pos:pos + batch_size]
        pos += batch_size
        batch = collate(enc, idx, pad_id)
        y = torch.as_tensor(enc.labels[idx], dtype=torch.long)
        logits = model(**batch)  # [B, L, C]
        loss = sum(w[k] * ce(logits[:, k], y) for k in range(model.num_layers))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        step += 1
        seen += len(idx)
        lv = loss.item()
        running = lv if running is None else 0.95 * running + 0.05 * lv
        if step % log_every == 0 or step == total:
            el = time.perf_counter() - t0
            log(f"step {step}/{total} loss {running:.4f} lr {sched.get_last_lr()[0]:.2e} "
                f"{el:.0f}s ({el / step:.2f}s/step)")
    model.eval()
    return TrainStats(step, seen / n, seen, time.perf_counter() - t0, float(running))


@torch.inference_mode()
def predict(model: MultiExitModel, enc: Encoded, pad_id: int, batch_size: int = 64) -> np.ndarray:
    """Exit logits for every sample [N, L, C] (float32), batched by length for speed."""
    model.eval()
    order = np.argsort(enc.lengths, kind="stable")
    out = np.zeros((len(enc), model.num_layers, model.num_classes), dtype=np.float32)
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        out[idx] = model(**collate(enc, idx, pad_id)).float().numpy()
    return out
