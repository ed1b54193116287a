"""Building exit profiles with PyTorch (needs the ``profile`` extra: torch, transformers, the model).

Nothing outside this package imports torch. :mod:`.build` is the pipeline (``python run_sim.py
profile``), :mod:`.model` the multi-exit wrapper, :mod:`.train` joint fine-tuning, :mod:`.measure`
per-layer timing.
"""

from .extras import MISSING_TORCH

__all__ = ["MISSING_TORCH"]
