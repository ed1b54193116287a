"""Background load: another application's jobs sharing a device with the simulated requests.

``tiers.<name>.background: {rate_per_s, service_ms, dist}`` gives every device of the tier its own
Poisson stream of jobs (rate per device), each needing ``service_ms`` of work at full speed on average,
exponentially distributed (``dist: exponential``) or fixed (``dist: deterministic``). Jobs queue FIFO with
the requests on the device's servers, so they delay them and count in ``view.queue_length``; they are not
requests (no records), but their compute shows in the device's busy time and energy, a full queue drops
them (counted in the device's ``drops``), and a failure loses them. Draws come from the ``BACKGROUND``
stream of that device; jobs arrive until the last request has arrived.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import simpy

from .errors import unknown_key
from .schema import positive

DISTS = ("exponential", "deterministic")


@dataclass
class BackgroundSpec:
    """A Poisson stream of jobs per device: ``rate_per_s``, mean work ``service_ms``, its ``dist``."""

    rate_per_s: float
    service_ms: float
    dist: str = "exponential"

    def check(self, path: str) -> None:
        positive(self.rate_per_s, f"{path}.rate_per_s")
        positive(self.service_ms, f"{path}.service_ms")
        if self.dist not in DISTS:
            raise unknown_key(self.dist, f"{path}.dist", DISTS, what="service time distribution")


def _job(serve: Callable, work_s: float, waits: list[float] | None):
    service = yield from serve(work_s)
    if waits is not None and not service.dropped and not getattr(service, "failed", False):
        waits.append(service.queue_s)


def run_background(env: simpy.Environment, serve: Callable, spec: BackgroundSpec, rng: np.random.Generator,
                   horizon: float, waits: list[float] | None = None):
    """SimPy process body: start a job (``serve(work_s)``, a process body) at each arrival up to ``horizon``.

    ``waits``, when given, collects the queueing delay of every job served.
    """
    mean_gap, mean_work = 1.0 / spec.rate_per_s, spec.service_ms / 1e3
    t = 0.0
    while True:
        t += float(rng.exponential(mean_gap))
        if t > horizon:
            return
        yield env.timeout(t - env.now)
        work = float(rng.exponential(mean_work)) if spec.dist == "exponential" else mean_work
        env.process(_job(serve, work, waits))
