"""Where runs execute: in-process, a local process pool, or a Dask distributed cluster.

Every executor has ``imap_unordered(fn, tasks, window)``: it pulls tasks lazily from an iterator,
keeps at most ``window`` in flight (so memory does not grow with the number of conditions) and yields
``(task, result, error)`` as runs finish, in any order. ``error`` is the exception text when the task
could not run (a worker died); exceptions inside a run are caught by the task itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..errors import UserError


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def _fmt(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}".replace("\n", " ")


class InProcess:
    """Runs tasks one by one in this process (``--workers 1``)."""

    workers = 1
    description = "in-process (1 worker)"

    def imap_unordered(self, fn: Callable, tasks: Iterable[Any], window: int | None = None
                       ) -> Iterator[tuple[Any, Any, str | None]]:
        for t in tasks:
            try:
                yield t, fn(t), None
            except Exception as e:  # noqa: BLE001 - recorded as a failed run
                yield t, None, _fmt(e)

    def close(self) -> None:
        pass


class LocalPool:
    """A ``concurrent.futures.ProcessPoolExecutor`` of ``workers`` processes."""

    def __init__(self, workers: int):
        from concurrent.futures import ProcessPoolExecutor

        self.workers = workers
        self.description = f"local process pool ({workers} workers)"
        self.pool = ProcessPoolExecutor(workers)

    def imap_unordered(self, fn: Callable, tasks: Iterable[Any], window: int | None = None
                       ) -> Iterator[tuple[Any, Any, str | None]]:
        from concurrent.futures import FIRST_COMPLETED, wait

        window = window or 4 * self.workers
        it = iter(tasks)
        pending: dict[Any, Any] = {}
        exhausted = False
        while True:
            while not exhausted and len(pending) < window:
                try:
                    t = next(it)
                except StopIteration:
                    exhausted = True
                    break
                pending[self.pool.submit(fn, t)] = t
            if not pending:
                return
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for f in finished:
                t = pending.pop(f)
                try:
                    yield t, f.result(), None
                except Exception as e:  # noqa: BLE001 - e.g. BrokenProcessPool: recorded as failed
                    yield t, None, _fmt(e)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor:
    """Runs tasks on a Dask distributed cluster: ``address`` of a running scheduler, or ``"local"``
    for a ``LocalCluster`` of ``workers`` single-threaded worker processes."""

    def __init__(self, address: str, workers: int | None = None, processes: bool = True):
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise UserError("--scheduler needs dask.distributed: pip install 'dask[distributed]'") from None
        self.cluster = None
        try:
            if address == "local":
                self.cluster = LocalCluster(n_workers=workers or default_workers(), threads_per_worker=1,
                                            processes=processes, dashboard_address=None)
                self.client = Client(self.cluster)
            else:
                self.client = Client(address, timeout="20s")
        except OSError as e:
            raise UserError(f"cannot connect to the Dask scheduler at {address}: {e}") from None
        n = sum(w.get("nthreads", 1) for w in self.client.scheduler_info()["workers"].values())
        self.workers = max(1, n)
        self.description = f"Dask {'LocalCluster' if self.cluster else address} ({self.workers} threads)"

    def imap_unordered(self, fn: Callable, tasks: Iterable[Any], window: int | None = None
                       ) -> Iterator[tuple[Any, Any, str | None]]:
        from distributed import as_completed

        window = window or 4 * self.workers
        it = iter(tasks)
        futures: dict[Any, Any] = {}

        def submit() -> bool:
            try:
                t = next(it)
            except StopIteration:
                return False
            # pure=False: every run is its own task even if two conditions are identical
            f = self.client.submit(fn, t, pure=False)
            futures[f.key] = t
            ac.add(f)
            return True

        ac = as_completed()
        for _ in range(window):
            if not submit():
                break
        for f in ac:
            t = futures.pop(f.key)
            try:
                yield t, f.result(), None
            except Exception as e:  # noqa: BLE001 - a lost worker etc.: recorded as failed
                yield t, None, _fmt(e)
            f.release()
            submit()

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def make_executor(workers: int | None = None, scheduler: str | None = None):
    """``scheduler`` (an address or ``local``) selects Dask; otherwise a local pool of ``workers``."""
    if scheduler:
        return DaskExecutor(scheduler, workers)
    n = workers or default_workers()
    if n < 1:
        raise UserError(f"--workers must be at least 1, got {n}")
    return InProcess() if n == 1 else LocalPool(n)
