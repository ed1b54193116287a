"""Links: payload sizes, FIFO transmission over bandwidth, propagation, throughput estimates."""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from simulator.bandwidth import Constant
from simulator.network import Channel, PayloadConfig


def test_payload_sizes():
    p = PayloadConfig(dtype="int8", header_bytes=40, input_bytes_per_token=4)
    assert p.hidden_bytes(tokens=10, hidden_size=384) == 10 * 384 + 40
    assert PayloadConfig(dtype="fp32").hidden_bytes(10, 384) == 10 * 384 * 4 + 64
    assert p.input_bytes(10) == 80


def test_fifo_transmission_then_propagation():
    env = simpy.Environment()
    ch = Channel(env, "up", Constant(mbps=8.0).realise(np.random.default_rng(0)), latency_s=0.01)
    done = {}

    def send(name, at, nbytes):
        yield env.timeout(at)
        wait, tx = yield from ch.transmit(nbytes)
        done[name] = (env.now, wait, tx)

    env.process(send("a", 0.0, 1_000_000))  # 1 s at 8 Mbit/s
    env.process(send("b", 0.5, 500_000))  # waits 0.5 s for a, then 0.5 s
    env.run()
    assert done["a"] == pytest.approx((1.01, 0.0, 1.0))
    assert done["b"] == pytest.approx((1.51, 0.5, 0.5))
    assert ch.estimate_bps == pytest.approx(8e6)
