"""eesim: a discrete-event simulator of early-exit transformer inference across mobile, edge and cloud."""

__version__ = "0.1.0"
