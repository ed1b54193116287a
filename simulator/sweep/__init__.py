"""Parameter sweeps: a sweep file (base scenario + grid/zip/sample axes) run over a process pool or a
Dask cluster, resumable, with results streamed to a Parquet dataset. See :mod:`simulator.sweep.spec`.
"""

from .runner import SweepOutcome, run_sweep
from .spec import SweepSpec, load_sweep, sweep_from_dict
from .store import read_results

__all__ = ["SweepOutcome", "SweepSpec", "load_sweep", "read_results", "run_sweep", "sweep_from_dict"]
