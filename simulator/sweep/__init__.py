"""Parameter sweeps: a sweep file (base scenario + grid/zip/sample axes) run over a process pool or a
Dask cluster, resumable, with results streamed to a Parquet dataset.

    python run_sim.py sweep scenarios/sweeps/bandwidth_load.yaml --out results/bw-load --workers 2
    python run_sim.py sweep scenarios/sweeps/lhs_2000.yaml --out results/lhs --scheduler tcp://host:8786
    python run_sim.py sweep scenarios/sweeps/lhs_2000.yaml --out results/lhs --resume
    python run_sim.py sweep scenarios/sweeps/lhs_2000.yaml --dry-run

The sweep file format and the seeding (common random numbers) are described in
:mod:`simulator.sweep.spec`. A *run* is one (condition, replication); it simulates every policy on the
same random streams. Output folder:

- ``results.parquet/part-NNNNN-<id>.parquet``: one row per condition x policy x replication: ``run_key``
  (hash of the condition's resolved config and the replication), ``condition``, ``replication``,
  ``policy``, one column per axis named by its dotted key (lists and mappings as JSON text), then the
  summary metrics of :func:`simulator.metrics.summarise`. Parts hold whole runs and are written
  atomically; ``pandas.read_parquet(OUT / "results.parquet")`` or :func:`read_results` reads them.
- ``sweep.yaml`` (the resolved sweep, base included), ``manifest.json`` (kind ``sweep``, axes, counts,
  versions, seed, profile sha256, wall time, status), ``failures.csv`` (runs that raised: parameters
  and error; the command exits with status 1 and says how many).

``--resume`` runs only the runs whose (condition, run_key) is missing; it refuses when the sweep (base,
axes, --set) differs from the folder's ``sweep.yaml``. Without ``--resume`` a non-empty folder is
refused; while a sweep runs its folder is locked (``OUT/.lock``). A lost pool worker is survived (the
pool is restarted, its runs in flight retried once); SIGTERM and SIGINT write every finished run and
leave the manifest ``interrupted``. Dask workers (``--scheduler ADDRESS``) must be able to import
``simulator`` and read the profile, trace and arrival files at the same absolute paths: every path is
resolved on the client (relative to its working directory, the scenario's folder or the repository,
``${VARS}`` expanded) and sent absolute, so a worker's own working directory and environment do not
matter.
"""

from .runner import SweepOutcome, run_sweep
from .spec import SweepSpec, load_sweep, sweep_from_dict
from .store import read_results

__all__ = ["SweepOutcome", "SweepSpec", "load_sweep", "read_results", "run_sweep", "sweep_from_dict"]
