"""What policies may observe of the running system (the engine's implementation of SystemView).

Everything here is something a real device could know at decision time: throughput measured on its
own past transfers, queue lengths it is told, device frequency, and predicted compute times from the
profile. Nothing reads the future (bandwidth ahead, other requests' outcomes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .policies.base import Request

if TYPE_CHECKING:
    from .engine import Simulation


class EngineView:
    """What policies may observe (see :class:`simulator.policies.base.SystemView`)."""

    def __init__(self, sim: Simulation):
        self._sim = sim

    @property
    def now(self) -> float:
        return self._sim.env.now

    def bandwidth_estimate_bps(self, mobile: int, hop: int) -> float | None:
        s = self._sim
        return s.up[hop][s.paths[mobile][hop]].estimate_bps

    def rtt_s(self, hop: int) -> float:
        return 2 * self._sim.up[hop][0].latency_s

    def queue_length(self, mobile: int, tier: int) -> int:
        s = self._sim
        return s.devices[tier][s.paths[mobile][tier]].in_system

    def frequency(self, mobile: int, tier: int) -> float:
        s = self._sim
        return s.devices[tier][s.paths[mobile][tier]].frequency

    def layer_seconds(self, req: Request, tier: int) -> np.ndarray:
        return self._sim.layer_s[tier][req.sample]

    def head_seconds(self, req: Request, tier: int) -> float:
        return float(self._sim.head_s[tier][req.sample])

    def transfer_bytes(self, req: Request, after_layer: int) -> int:
        s = self._sim
        if after_layer == 0:
            return s.payload.input_bytes(req.tokens)
        return s.payload.hidden_bytes(req.tokens, s.profile.hidden_size)

    # -- additive: what energy-aware partitioners (Neurosurgeon) may know ----------------------
    def request_power_w(self, mobile: int, tier: int) -> float:
        """Power attributed to one request computing on that device now (at its current frequency)."""
        s = self._sim
        return float(s.devices[tier][s.paths[mobile][tier]].request_power_w())

    def radio_tx_energy_j(self, nbytes: float, seconds: float) -> float:
        """Mobile radio energy of sending ``nbytes`` over ``seconds`` (0 without a radio model)."""
        radio = self._sim.radio
        return 0.0 if radio is None else float(radio.energy_j(nbytes * 8.0, seconds, sending=True))

    def embed_seconds(self, req: Request, tier: int) -> float:
        """Predicted unloaded time of the embedding layer of this request on ``tier``'s device class."""
        return float(self._sim.embed_s[tier][req.sample])
