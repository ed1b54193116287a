"""Arrival processes and sample order."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.errors import ConfigError
from simulator.schema import build
from simulator.workload import WorkloadConfig, arrival_times, sample_indices


def _cfg(**kw) -> WorkloadConfig:
    return build(WorkloadConfig, kw, "workload")


def test_poisson_rate_and_exponential_gaps():
    t = arrival_times(_cfg(rate_per_s=10.0, requests=40_000), 0, 1, np.random.default_rng(0))
    gaps = np.diff(t)
    assert len(t) == 40_000
    assert gaps.mean() == pytest.approx(0.1, rel=0.02)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, rel=0.03)  # exponential: cv = 1


def test_requests_are_split_over_mobiles_and_duration_stops():
    cfg = _cfg(rate_per_s=5.0, requests=10)
    counts = [len(arrival_times(cfg, m, 3, np.random.default_rng(m))) for m in range(3)]
    assert counts == [4, 3, 3]
    t = arrival_times(_cfg(rate_per_s=5.0, requests=None, duration_s=100.0), 0, 1, np.random.default_rng(1))
    assert t.max() < 100.0 and len(t) == pytest.approx(500, rel=0.15)


def test_deterministic_is_periodic():
    t = arrival_times(_cfg(arrival="deterministic", rate_per_s=4.0, requests=100), 0, 1, np.random.default_rng(2))
    assert np.allclose(np.diff(t), 0.25)
    assert 0 <= t[0] < 0.25


def test_mmpp_long_run_rate():
    cfg = _cfg(arrival="mmpp", requests=50_000, mmpp={"rates_per_s": [20.0, 2.0], "mean_dwell_s": [2.0, 8.0]})
    t = arrival_times(cfg, 0, 1, np.random.default_rng(3))
    expected = (20 * 2 + 2 * 8) / 10  # time-average rate
    assert len(t) / t[-1] == pytest.approx(expected, rel=0.05)
    gaps = np.diff(t)
    assert gaps.std() / gaps.mean() > 1.2  # burstier than Poisson


def test_file_arrivals(tmp_path):
    f = tmp_path / "a.csv"
    f.write_text("time_s,device\n0.5,0\n1.0,1\n1.5,0\n")
    cfg = _cfg(arrival="file", file=str(f), requests=None)
    assert arrival_times(cfg, 0, 2, np.random.default_rng(0)).tolist() == [0.5, 1.5]
    assert arrival_times(cfg, 1, 2, np.random.default_rng(0)).tolist() == [1.0]
    bad = tmp_path / "b.txt"
    bad.write_text("1\n0.5\n")
    with pytest.raises(ConfigError, match="non-decreasing"):
        _cfg(arrival="file", file=str(bad))


def test_sample_order_is_a_seeded_permutation():
    s = sample_indices(250, 100, "random", 0, np.random.default_rng(4))
    assert sorted(s[:100]) == list(range(100)) and sorted(s[100:200]) == list(range(100))
    assert not np.array_equal(s[:100], np.arange(100))
    assert sample_indices(5, 3, "sequential", 0, np.random.default_rng(0)).tolist() == [0, 1, 2, 0, 1]


@pytest.mark.parametrize("content, message", [
    ("0.5\nnan\n1.0\n", r"b\.txt:2: expected a finite arrival time in seconds, got nan"),
    ("0.5\ninf\n", r"b\.txt:2: expected a finite arrival time"),
    ("0.5\n1e400\n", r"b\.txt:2: expected a finite arrival time"),
    ("time_s,device\n0.5,0\nnan,1\n", r"b\.txt:3: expected a finite arrival time"),
    ("time_s,device\n0.5,0\n0.7,-1\n", r"b\.txt:3: expected a non-negative device index"),
    ("0.5\nsecret-token 1 2\n", r"b\.txt:2: expected one arrival time in seconds per line$"),
    ("1\n2\n0.5\n", r"b\.txt:3: arrival times must be non-negative and non-decreasing"),
    (b"\x00\xff\xfe\x89PNG\r\n", r"b\.txt: not a text \(UTF-8\) file"),
])
def test_bad_arrival_files_are_one_line_naming_file_and_line(tmp_path, content, message):
    f = tmp_path / "b.txt"
    f.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ConfigError, match=message) as e:
        _cfg(arrival="file", file=str(f))
    assert "\n" not in str(e.value) and "secret" not in str(e.value)


def test_arrival_file_errors_do_not_expand_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_ARRIVALS", str(tmp_path / "private"))
    with pytest.raises(ConfigError) as e:
        _cfg(arrival="file", file="${MY_ARRIVALS}/a.txt")
    assert str(e.value) == "arrival file not found: ${MY_ARRIVALS}/a.txt"
