"""Where runs execute: in-process, a local process pool, or a Dask distributed cluster.

Every executor has ``imap_unordered(fn, tasks, window)``: it pulls tasks lazily from an iterator,
keeps at most ``window`` in flight (so memory does not grow with the number of conditions) and yields
``(task, result, error)`` as runs finish, in any order. ``error`` is the exception text when the task
could not run (a worker died); exceptions inside a run are caught by the task itself. ``terminate()``
stops at once (on a signal: runs in flight are lost), ``close()`` waits for the workers to exit.
"""

from __future__ import annotations

import os
import sys
from collections import deque
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

    def terminate(self) -> None:
        pass

    def close(self) -> None:
        pass


def worker_init(parent: int) -> None:
    """Start of a pool worker: Ctrl-C is left to the parent (which records what finished and stops the
    pool; a worker must not turn it into a failed run), and the worker exits when its parent is gone
    (even after a SIGKILL of the parent, which cannot clean up)."""
    import signal
    import threading
    import time

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler (inherited by fork): end now

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(0.5)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def terminate_pool(pool) -> None:
    """Stop a ``ProcessPoolExecutor`` at once: cancel what is queued, end the workers (SIGTERM, then
    SIGKILL), so neither they nor the interpreter's exit wait for the runs in flight."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(timeout=5)
        if p.is_alive():
            p.kill()
            p.join(timeout=5)


WORKER_DIED = ("the worker process running it died (killed, out of memory, or a crash in native code)")


class LocalPool:
    """A ``concurrent.futures.ProcessPoolExecutor`` of ``workers`` processes that survives a lost worker.

    When a worker dies (SIGKILL, the OOM killer, a crash in native code) the pool is broken and every
    run in flight on it fails with ``BrokenProcessPool``. The pool is then rebuilt and the rest go on;
    the runs that were in flight are retried once each (``retries``), one at a time in a separate
    one-worker pool, so a run that kills its worker every time is told apart from the runs that were
    only beside it: it fails alone, with :data:`WORKER_DIED`. At most ``workers + 1`` runs are handed to
    the pool at once (the ones running and one queued), so only those are retried.
    """

    def __init__(self, workers: int, retries: int = 1):
        self.workers = workers
        self.retries = retries
        self.description = f"local process pool ({workers} workers)"
        self.restarts = 0  # times a broken pool was rebuilt
        self.pool = self._new(workers)
        self.retry_pool = None
        self._closed = False

    @staticmethod
    def _new(n: int):
        from concurrent.futures import ProcessPoolExecutor

        return ProcessPoolExecutor(n, initializer=worker_init, initargs=(os.getpid(),))

    def _rebuild(self, pool) -> None:
        """Replace ``pool`` (broken) by a fresh one, once (its other futures fail the same way)."""
        if pool is self.pool:
            self.pool = self._new(self.workers)
        elif pool is self.retry_pool:
            self.retry_pool = self._new(1)
        else:
            return
        self.restarts += 1
        pool.shutdown(wait=False, cancel_futures=True)
        print("warning: a worker process died; the pool was restarted and the runs it had in flight "
              "are retried once", file=sys.stderr)

    def _submit(self, retry: bool, fn: Callable, t: Any):
        from concurrent.futures.process import BrokenProcessPool

        if retry and self.retry_pool is None:
            self.retry_pool = self._new(1)
        for _ in range(3):
            pool = self.retry_pool if retry else self.pool
            try:
                return pool.submit(fn, t), pool
            except BrokenProcessPool:  # it broke before one of its futures told us
                self._rebuild(pool)
        raise RuntimeError("the process pool keeps breaking")  # pragma: no cover

    def imap_unordered(self, fn: Callable, tasks: Iterable[Any], window: int | None = None
                       ) -> Iterator[tuple[Any, Any, str | None]]:
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        window = window or self.workers + 1
        it = iter(tasks)
        pending: dict[Any, tuple[Any, int, Any]] = {}  # future -> (task, attempt, pool)
        retry: deque[tuple[Any, int]] = deque()
        exhausted = False
        while True:
            in_main = sum(1 for _, _, pool in pending.values() if pool is not self.retry_pool)
            while not exhausted and in_main < window:
                try:
                    t = next(it)
                except StopIteration:
                    exhausted = True
                    break
                f, pool = self._submit(False, fn, t)
                pending[f] = (t, 1, pool)
                in_main += 1
            if retry and not any(pool is self.retry_pool for _, _, pool in pending.values()):
                t, attempt = retry.popleft()
                f, pool = self._submit(True, fn, t)
                pending[f] = (t, attempt, pool)
            if not pending:
                return
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for f in finished:
                t, attempt, pool = pending.pop(f)
                # a future cancelled when its broken pool was shut down shares the pool's fate
                exc = BrokenProcessPool("cancelled with its pool") if f.cancelled() else f.exception()
                if exc is None:
                    yield t, f.result(), None
                elif isinstance(exc, BrokenProcessPool):
                    self._rebuild(pool)
                    if attempt <= self.retries:
                        retry.append((t, attempt + 1))
                    else:
                        yield t, None, WORKER_DIED + (f" ({attempt} times)" if attempt > 1 else "")
                else:
                    yield t, None, _fmt(exc)

    def terminate(self) -> None:
        """Stop now: cancel what is queued and kill the workers (runs in flight are lost)."""
        for pool in (self.pool, self.retry_pool):
            if pool is not None:
                terminate_pool(pool)
        self._closed = True

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for pool in (self.pool, self.retry_pool):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)


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

    def terminate(self) -> None:
        """Stop now: closing the client releases its tasks (a LocalCluster's workers are stopped)."""
        self.close()

    def close(self) -> None:
        if getattr(self, "_closed", False):
            return
        self._closed = True
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
