"""Building exit profiles with PyTorch (needs the ``profile`` extra: torch, transformers, the model).

Nothing outside this package imports torch. :mod:`.build` is the pipeline (``python run_sim.py
profile``), :mod:`.model` the multi-exit wrapper, :mod:`.train` joint fine-tuning, :mod:`.measure`
per-layer timing.
"""

MISSING_TORCH = "profile building needs the 'profile' extra: pip install -e '.[profile]'"
