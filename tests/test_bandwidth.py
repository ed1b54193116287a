"""Bandwidth processes and exact transfer times over piecewise-constant bandwidth."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.bandwidth import BandwidthPath, Constant, Lognormal, Markov, Trace, parse_bandwidth
from simulator.errors import ConfigError
from simulator.traces import TraceError, load_trace


def _steps(pairs):
    def gen():
        yield from pairs
        while True:
            yield 1e9, pairs[-1][1]
    return BandwidthPath(gen())


def test_transfer_within_one_step():
    path = _steps([(10.0, 8.0)])  # 8 Mbit/s
    assert path.finish_time(1.0, 8e6) == pytest.approx(2.0)


def test_transfer_spanning_several_steps_equals_hand_integral():
    # 1 Mbit/s for 2 s, 4 Mbit/s for 1 s, 0.5 Mbit/s for 3 s, then 2 Mbit/s
    path = _steps([(2.0, 1.0), (1.0, 4.0), (3.0, 0.5), (5.0, 2.0)])
    # start at 1.5 s, send 6 Mbit: 0.5 Mbit by 2 s, +4 by 3 s (4.5), +1.5 by 6 s (6.0) -> ends at 6 s
    assert path.finish_time(1.5, 6e6) == pytest.approx(6.0)
    # 7 Mbit: one more Mbit at 2 Mbit/s -> 6.5 s
    assert path.finish_time(1.5, 7e6) == pytest.approx(6.5)
    assert path.bits_until(2.5) == pytest.approx(2e6 + 2e6)


def test_zero_bandwidth_step_stalls_transfer():
    path = _steps([(1.0, 1.0), (2.0, 0.0), (1.0, 1.0)])
    assert path.finish_time(0.5, 1e6) == pytest.approx(3.5)


def test_transfer_over_real_trace_file(tmp_path):
    f = tmp_path / "tr.txt"
    f.write_text("0.0 2.0\n1.0 4.0\n3.0 1.0\n")  # last step lasts the median interval (1.5 s)
    spec = Trace(file=str(f), random_offset=False)
    path = spec.realise(np.random.default_rng(0))
    # from 0.5 s: 1 Mbit by 1 s, 8 more by 3 s, then 1 Mbit/s for 1.5 s, then the trace loops (2 Mbit/s)
    assert path.finish_time(0.5, 9e6) == pytest.approx(3.0)
    assert path.finish_time(0.5, 10.5e6) == pytest.approx(4.5)
    assert path.finish_time(0.5, 12.5e6) == pytest.approx(5.5)  # looped back to 2 Mbit/s


def test_trace_random_offset_differs_between_realisations(tmp_path):
    f = tmp_path / "tr.txt"
    f.write_text("".join(f"{t} {1 + t % 7}\n" for t in range(100)))
    spec = Trace(file=str(f))
    a = spec.realise(np.random.default_rng(1))
    b = spec.realise(np.random.default_rng(2))
    assert [a.rate_at(t) for t in range(20)] != [b.rate_at(t) for t in range(20)]


def test_trace_rejects_non_monotonic_time_with_file_and_line(tmp_path):
    f = tmp_path / "bad.txt"
    f.write_text("0 1.0\n1 2.0\n0.5 3.0\n")
    with pytest.raises(TraceError, match=r"bad\.txt:3: time 0\.5 does not increase"):
        load_trace(str(f))


def test_trace_rejects_negative_throughput(tmp_path):
    f = tmp_path / "neg.txt"
    f.write_text("0 1.0\n1 -2.0\n")
    with pytest.raises(TraceError, match=r"neg\.txt:2: negative"):
        load_trace(str(f))


def test_csv_trace_with_named_columns_and_filter(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text("run,t,mbps\n1,0,5\n2,0,50\n1,2,10\n")
    tr = load_trace(str(f), "csv", "t", "mbps", 1.0, (("run", "1"),))
    assert tr.mbps.tolist() == [5.0, 10.0]
    assert tr.times.tolist() == [0.0, 2.0]


def test_real_shared_traces_parse(shared_data):
    tr = load_trace(str(shared_data / "traces" / "hsdpa_norway_test" / "norway_bus_1"))
    assert len(tr.times) > 50 and 0.1 < tr.mean_mbps < 20
    gophers = shared_data / "traces" / "5gophers" / "All-Carriers" / "01-Throughput" / "data.csv"
    where = (("carrier", "SPRINT"), ("num_tcp_conn", "1"), ("run_num", "1"))
    g = load_trace(str(gophers), "csv", None, "throughput_mbps", 1.0, where)
    assert len(g.times) == 60


def test_markov_long_run_mean_matches_stationary_law():
    spec = Markov(states_mbps=[20.0, 2.0], mean_dwell_s=[10.0, 3.0])
    assert spec.long_run_mbps() == pytest.approx((20 * 10 + 2 * 3) / 13)
    path = spec.realise(np.random.default_rng(3))
    horizon = 20_000.0
    assert path.bits_until(horizon) / horizon / 1e6 == pytest.approx(spec.long_run_mbps(), rel=0.05)


def test_lognormal_mean_and_cv():
    spec = Lognormal(mean_mbps=10.0, cv=0.5, correlation=0.5, interval_s=1.0)
    path = spec.realise(np.random.default_rng(4))
    rates = np.array([path.rate_at(t + 0.5) for t in range(40_000)]) / 1e6
    assert rates.mean() == pytest.approx(10.0, rel=0.03)
    assert rates.std() / rates.mean() == pytest.approx(0.5, rel=0.06)
    lag1 = np.corrcoef(np.log(rates[:-1]), np.log(rates[1:]))[0, 1]
    assert lag1 == pytest.approx(0.5, abs=0.03)


def test_constant_and_bad_specs():
    assert isinstance(parse_bandwidth(5, "x"), Constant)
    with pytest.raises(ConfigError, match="did you mean 'markov'"):
        parse_bandwidth({"model": "markv"}, "links.uplink.bandwidth")
    with pytest.raises(ConfigError, match="'links.u.bandwidth.mbps' must be positive"):
        parse_bandwidth({"model": "constant", "mbps": -1}, "links.u.bandwidth")
    with pytest.raises(ConfigError, match="unknown key 'mean_mpbs'.*did you mean 'mean_mbps'"):
        parse_bandwidth({"model": "lognormal", "mean_mpbs": 3}, "links.u.bandwidth")
