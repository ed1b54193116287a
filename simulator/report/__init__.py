"""Paper-ready figures and tables from ``run`` and ``sweep`` results folders (``run_sim.py report``)."""

from .build import Options, Report, build_report
from .load import Results, aggregate, load_results

__all__ = ["Options", "Report", "Results", "aggregate", "build_report", "load_results"]
