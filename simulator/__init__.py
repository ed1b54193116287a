"""eesim: a discrete-event simulator of early-exit transformer inference across mobile, edge and cloud."""

from .version import VERSION as __version__

__all__ = ["__version__"]
