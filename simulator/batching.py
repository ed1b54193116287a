"""Dynamic batching at servers, as inference servers do it.

A :class:`BatchingDevice` queues arriving work; whenever one of its servers is free it dispatches a
batch of up to ``max_batch`` waiting requests as soon as either that many are waiting or the oldest has
waited ``max_wait_ms`` (the rule of Triton's dynamic batcher, ``max_queue_delay_microseconds``, and of
TF-Serving's ``max_batch_size`` / ``batch_timeout_micros``). Every member of a batch finishes when the
batch does.

Batch service time comes from the profile's batch timing table (per layer, per batch size, per
sequence length; linear in batch size between measured sizes, in padded length as for batch 1; divided
by the device's speed). Members run their own stretch of layers, decided when the stretch starts: the
batch computes layer k for the b_k members whose stretch includes it, at the longest member's token
count, so a request that exits leaves the batch after its exit layer (later layers run for fewer
members) but is released with the batch. Embedding and exit heads are charged the same way. A batch of
one costs exactly the member's unbatched work, so ``max_batch: 1`` reproduces the FIFO device.

Energy: the device draws its usual power with one more server busy while a batch runs (a batch occupies
one server); each member is charged an equal share of that server's energy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import simpy

from .device import Device, DeviceSpec, Service
from .profile import Timing
from .schema import positive, require
from .thermal import ThermalSpec


@dataclass
class BatchingConfig:
    """``tiers.<name>.batching``: dynamic batching on that tier's devices."""

    max_batch: int = 8
    max_wait_ms: float = 5.0

    def check(self, path: str) -> None:
        require(self.max_batch >= 1, f"'{path}.max_batch' must be at least 1, got {self.max_batch}")
        positive(self.max_wait_ms, f"{path}.max_wait_ms", allow_zero=True)


@dataclass(frozen=True)
class Stretch:
    """What one request asks of a device: its layers, heads and embedding, and its unbatched work (what a
    batching device batches, and a device with units splits across them)."""

    work_s: float
    tokens: int
    first: int  # first layer (1-based)
    last: int  # last layer computed
    heads: tuple[int, ...]  # the layers whose exit head it evaluates
    sample: int = -1  # the profile sample whose times it takes

    @property
    def embed(self) -> bool:
        """It starts the model, so it computes the embedding."""
        return self.first == 1


class _Member:
    __slots__ = ("stretch", "arrived", "done")

    def __init__(self, stretch: Stretch, arrived: float, done: simpy.Event):
        self.stretch, self.arrived, self.done = stretch, arrived, done


def _interp_batch(table: np.ndarray, sizes: np.ndarray, b: int) -> np.ndarray:
    """Per-batch time at batch size ``b`` along the first axis (linear between measured sizes)."""
    return np.array([np.interp(b, sizes, table[:, j]) for j in range(table.shape[1])])


class BatchingDevice(Device):
    """A device whose servers each run one batch at a time (see the module docstring)."""

    def __init__(self, env: simpy.Environment, name: str, tier: int, spec: DeviceSpec, thermal: ThermalSpec,
                 queue_capacity: int | None, record: bool, batching: BatchingConfig, timing: Timing,
                 scale: float):
        super().__init__(env, name, tier, spec, thermal, queue_capacity, record)
        require(batching.max_batch <= int(timing.batch_sizes[-1]),
                f"'{name}': max_batch {batching.max_batch} is beyond the timing table's largest batch size "
                f"{int(timing.batch_sizes[-1])}")
        self.batching = batching
        self.timing = timing
        self.scale = scale  # seconds per table ms: 1e-3 / speed
        self.waiting: list[_Member] = []
        self.free = spec.servers
        self.serving = 0  # requests in running batches
        self.batches: list[int] = []  # size of every batch dispatched
        self._wake = env.event()
        env.process(self._dispatcher())

    @property
    def in_system(self) -> int:
        return len(self.waiting) + self.serving

    def is_full(self) -> bool:
        """As :meth:`Device.is_full`: every server runs a batch and ``queue_capacity`` requests wait (a
        request waiting for its batch to fill at a free server is never dropped for it)."""
        return self.queue_capacity is not None and self.free == 0 and len(self.waiting) >= self.queue_capacity

    def serve(self, work_s: float, stretch: Stretch | None = None):
        """SimPy process body: queue for a batch; returns this request's Service when its batch ends."""
        if self.is_full():
            self.drops += 1
            return Service(dropped=True)
        if stretch is None:
            raise ValueError(f"{self.name}: a batching device needs the request's stretch")
        member = _Member(stretch, self.env.now, self.env.event())
        self.waiting.append(member)
        if self.record:
            self.update()
        self._poke()
        return (yield member.done)

    # -- the batcher ----------------------------------------------------------------------------
    def _poke(self) -> None:
        if not self._wake.triggered:
            self._wake.succeed()

    def _dispatcher(self):
        env, max_batch = self.env, self.batching.max_batch
        wait = self.batching.max_wait_ms / 1e3
        while True:
            if self.waiting and self.free > 0:
                due = self.waiting[0].arrived + wait
                if len(self.waiting) >= max_batch or env.now >= due:
                    batch, self.waiting = self.waiting[:max_batch], self.waiting[max_batch:]
                    self.free -= 1
                    self.serving += len(batch)
                    env.process(self._run(batch))
                    continue
                yield self._wake | env.timeout(due - env.now)
            else:
                yield self._wake
            if self._wake.triggered:
                self._wake = env.event()

    def batch_seconds(self, batch: list[_Member]) -> float:
        """Full-speed service time of a batch (one member: exactly its unbatched work)."""
        if len(batch) == 1:
            return batch[0].stretch.work_s
        t = self.timing
        sizes = t.batch_sizes.astype(float)
        total = 0.0
        layers = range(min(m.stretch.first for m in batch), max(m.stretch.last for m in batch) + 1)
        for k in layers:
            members = [m for m in batch if m.stretch.first <= k <= m.stretch.last]
            if members:
                row = _interp_batch(t.layer_ms[:, :, k - 1], sizes, len(members))
                total += float(t.at_length(row, max(m.stretch.tokens for m in members)))
        embed = [m for m in batch if m.stretch.embed]
        if embed:
            row = _interp_batch(t.embed_ms, sizes, len(embed))
            total += float(t.at_length(row, max(m.stretch.tokens for m in embed)))
        for r in range(1, max(len(m.stretch.heads) for m in batch) + 1):
            heads = [m for m in batch if len(m.stretch.heads) >= r]
            row = _interp_batch(t.head_ms, sizes, len(heads))
            total += float(t.at_length(row, max(m.stretch.tokens for m in heads)))
        return total * self.scale

    def _run(self, batch: list[_Member]):
        start = self.env.now
        self.batches.append(len(batch))
        energy = yield from self.compute(self.batch_seconds(batch))
        end = self.env.now
        self.free += 1
        self.serving -= len(batch)
        if self.record:
            self.update()
        for m in batch:
            m.done.succeed(Service(False, start - m.arrived, end - start, energy / len(batch)))
        self._poke()
