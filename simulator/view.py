"""What policies may observe of the running system (the SimPy engine's implementation of SystemView).

Everything here is something a real device could know at decision time: throughput measured on its
own past transfers, queue lengths it is told, device frequency, predicted compute times from the
profile, and the exit outputs the model has computed so far for a request. Nothing reads the future
(bandwidth ahead, other requests' outcomes, exits of layers not yet computed, labels): reading an exit
beyond the layers computed raises :class:`~simulator.policies.base.PolicyContractError`.
"""

from __future__ import annotations

import numpy as np

from .live import LiveNetwork
from .policies.base import PolicyContractError, Request
from .profile import Split


class ExitView:
    """The exit outputs the model has computed for each request, and nothing beyond them.

    The engine calls :meth:`reach` as a request's exits become available; a policy reading a later
    exit gets :class:`PolicyContractError`. Usable alone as the view of policy unit tests.
    """

    def __init__(self, split: Split):
        self._split = split
        self._reached: dict[int, int] = {}  # request id -> layers whose exits may be read

    # -- the engine's side of the exit-output contract -----------------------------------------
    def reach(self, req: Request, layer: int) -> None:
        """Engine only: ``req``'s exits up to ``layer`` are now available to the policy."""
        self._reached[req.id] = layer

    def forget(self, req: Request) -> None:
        """Engine only: ``req`` is finished; its exits may no longer be read."""
        self._reached.pop(req.id, None)

    def _check(self, req: Request, layer: int) -> int:
        reached = self._reached.get(req.id, 0)
        if not 1 <= layer <= reached:
            raise PolicyContractError(
                f"request {req.id}: exit of layer {layer} read, but only layers 1..{reached} are computed")
        return layer - 1

    # -- exit outputs computed so far ----------------------------------------------------------
    def exit_confidence(self, req: Request, layer: int) -> float:
        """Max-softmax confidence of the exit after ``layer`` (computed layers only)."""
        return self._split.confidence[req.sample, self._check(req, layer)]

    def exit_entropy(self, req: Request, layer: int) -> float:
        """Prediction entropy (nats) of the exit after ``layer``."""
        return self._split.entropy[req.sample, self._check(req, layer)]

    def exit_prediction(self, req: Request, layer: int) -> int:
        """Predicted class of the exit after ``layer``."""
        return int(self._split.pred[req.sample, self._check(req, layer)])

    def exit_representation(self, req: Request, layer: int) -> np.ndarray:
        """The low-dimensional projection of the pooled representation at the exit after ``layer``
        (profiles that store one: ``Split.proj``)."""
        if self._split.proj is None:
            raise PolicyContractError("this profile stores no representations (<split>_proj)")
        return self._split.proj[req.sample, self._check(req, layer)].astype(np.float64)

    def exit_confidences(self, req: Request, upto: int) -> np.ndarray:
        """Confidences of the exits after layers 1..``upto`` (a read-only copy)."""
        self._check(req, upto)
        return self._split.confidence[req.sample, :upto].copy()

    def exit_predictions(self, req: Request, upto: int) -> np.ndarray:
        """Predicted classes of the exits after layers 1..``upto`` (a copy)."""
        self._check(req, upto)
        return self._split.pred[req.sample, :upto].copy()



class ExitBatch:
    """The exit outputs of many requests' samples at once, up to the layer being decided: what
    :meth:`~simulator.policies.base.Policy.decide_batch` may read (reading further raises
    :class:`PolicyContractError`). ``samples`` are rows of the split, for hindsight policies."""

    def __init__(self, split: Split, samples: np.ndarray, upto: int):
        self._split, self.samples, self.upto = split, samples, upto

    def _check(self, layer: int) -> int:
        if not 1 <= layer <= self.upto:
            raise PolicyContractError(f"exit of layer {layer} read, but only layers 1..{self.upto} are computed")
        return layer - 1

    def confidence(self, layer: int) -> np.ndarray:
        """Max-softmax confidence of the exit after ``layer``, per request."""
        return self._split.confidence[self.samples, self._check(layer)]

    def entropy(self, layer: int) -> np.ndarray:
        """Prediction entropy (nats) of the exit after ``layer``, per request."""
        return self._split.entropy[self.samples, self._check(layer)]

    def confidences(self) -> np.ndarray:
        """Confidences of the exits after layers 1..``upto`` [requests, upto]."""
        return self._split.confidence[self.samples, :self.upto]

    def predictions(self) -> np.ndarray:
        """Predicted classes of the exits after layers 1..``upto`` [requests, upto]."""
        return self._split.pred[self.samples, :self.upto]


class EngineView(ExitView):
    """What policies may observe in the SimPy engine (see :class:`simulator.policies.base.SystemView`)."""

    def __init__(self, live: LiveNetwork, split: Split):
        super().__init__(split)
        self._live = live
        self._net = live.network

    @property
    def now(self) -> float:
        return self._live.env.now

    def route_links(self, mobile: int, a: int, b: int) -> tuple[int, ...]:
        """Links a request from ``mobile`` crosses moving up from tier ``a`` to tier ``b``."""
        return self._net.route(a, b)

    def link_bandwidth_estimate_bps(self, mobile: int, link: int) -> float | None:
        """EWMA of throughput measured on past uploads over ``link`` (this mobile's channel of it)."""
        return self._live.uplink(mobile, link).estimate_bps

    def link_rtt_s(self, link: int) -> float:
        """Configured round-trip time of ``link``."""
        return 2 * self._net.channels[link][0].latency_s

    def bandwidth_estimate_bps(self, mobile: int, hop: int) -> float | None:
        return self.link_bandwidth_estimate_bps(mobile, self._net.chain[hop])

    def rtt_s(self, hop: int) -> float:
        return self.link_rtt_s(self._net.chain[hop])

    def queue_length(self, mobile: int, tier: int) -> int:
        return self._live.device(mobile, tier).in_system

    def frequency(self, mobile: int, tier: int) -> float:
        return self._live.device(mobile, tier).frequency

    def layer_seconds(self, req: Request, tier: int) -> np.ndarray:
        return self._net.tables[tier].layer_s[req.sample]

    def head_seconds(self, req: Request, tier: int) -> float:
        return float(self._net.tables[tier].head_s[req.sample])

    def embed_seconds(self, req: Request, tier: int) -> float:
        return float(self._net.tables[tier].embed_s[req.sample])

    def transfer_bytes(self, req: Request, after_layer: int) -> int:
        return self._net.transfer_bytes(req.tokens, after_layer)

    def request_power_w(self, mobile: int, tier: int) -> float:
        return float(self._live.device(mobile, tier).request_power_w())

    def radio_tx_energy_j(self, nbytes: float, seconds: float) -> float:
        radio = self._net.radio
        return 0.0 if radio is None else float(radio.energy_j(nbytes * 8.0, seconds, sending=True))
