"""Trace files as researchers publish them: separators, time formats, throughput units, stray spaces."""

from __future__ import annotations

import pytest

from simulator.bandwidth import parse_bandwidth
from simulator.errors import ConfigError
from simulator.traces import TraceError, load_trace


def _write(tmp_path, name: str, text: str | bytes):
    f = tmp_path / name
    f.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(f)


def _trace(tmp_path, name, text, **options):
    return parse_bandwidth({"model": "trace", "file": _write(tmp_path, name, text), **options}, "bw").load()


@pytest.mark.parametrize("name, text, options, times, mbps", [
    # separators
    ("a.csv", "time_s,throughput_mbps\n0,1.5\n1,2.5\n", {"time_column": "time_s"}, [0, 1], [1.5, 2.5]),
    ("a.csv", "time_s;throughput_mbps\n0;1.5\n1;2.5\n", {"time_column": "time_s"}, [0, 1], [1.5, 2.5]),
    ("a.tsv", "time_s\tthroughput_mbps\n0\t1.5\n1\t2.5\n", {"time_column": "time_s"}, [0, 1], [1.5, 2.5]),
    ("a.txt", "0,1.5\n1,2.5\n", {}, [0, 1], [1.5, 2.5]),  # no header, commas
    ("a.txt", "0;1.5\n1;2.5\n", {"separator": ";"}, [0, 1], [1.5, 2.5]),
    ("a.csv", "t;mbps\n0;1,5\n1;2,5\n", {"time_column": "t"}, [0, 1], [1.5, 2.5]),  # decimal comma
    ("a.txt", "0\t1,5\n1\t2,5\n", {"separator": "tab"}, [0, 1], [1.5, 2.5]),
    # trailing and surrounding spaces, blank and comment lines, a BOM
    ("a.csv", "\ufefftime_s , mbps \n# measured\n0 , 1.5 \n\n1 , 2.5   \n", {"time_column": "time_s"},
     [0, 1], [1.5, 2.5]),
    ("a.txt", "0.0 1.5   \n1.0\t2.5 \t\n", {}, [0, 1], [1.5, 2.5]),
    # time formats
    ("a.csv", "time_ms,mbps\n0,1\n500,2\n1500,3\n", {"time_column": "time_ms"}, [0, 0.5, 1.5], [1, 2, 3]),
    ("a.csv", "timestamp (ms)\tmbps\n0\t1\n250\t2\n", {"time_column": "timestamp (ms)"}, [0, 0.25], [1, 2]),
    ("a.txt", "0 1\n500 2\n", {"time_format": "ms"}, [0, 0.5], [1, 2]),
    ("a.txt", "1609459200 1\n1609459201.5 2\n", {}, [1609459200, 1609459201.5], [1, 2]),  # Unix s
    ("a.txt", "1609459200000 1\n1609459200250 2\n", {}, [1609459200, 1609459200.25], [1, 2]),  # Unix ms
    ("a.csv", "clock,mbps\n23:59:58,1\n23:59:59.5,2\n00:00:01,3\n", {"time_column": "clock"},
     [86398, 86399.5, 86401], [1, 2, 3]),  # wall clock, past midnight
    ("a.txt", "12:00:00,1\n12:00:02,2\n", {}, [43200, 43202], [1, 2]),
    ("a.csv", "when,mbps\n2021-03-04 12:00:00,1\n2021-03-04 12:00:02.5,2\n", {"time_column": "when"},
     [1614859200, 1614859202.5], [1, 2]),
    ("a.csv", "when,mbps\n2021-03-04T12:00:00Z,1\n2021-03-04T12:00:01Z,2\n",
     {"time_column": "when", "time_format": "clock"}, [1614859200, 1614859201], [1, 2]),
    # throughput units
    ("a.csv", "t,throughput_kbps\n0,1500\n1,2500\n", {"time_column": "t"}, [0, 1], [1.5, 2.5]),
    ("a.csv", "t,rate (Mbit/s)\n0,1.5\n1,2.5\n", {"time_column": "t"}, [0, 1], [1.5, 2.5]),
    ("a.csv", "t,bits_per_second\n0,1500000\n1,2500000\n", {"time_column": "t"}, [0, 1], [1.5, 2.5]),
    ("a.csv", "t,dl_gbps\n0,0.0015\n1,0.0025\n", {"time_column": "t"}, [0, 1], [1.5, 2.5]),
    ("a.csv", "t,tput\n0,1500\n1,2500\n", {"time_column": "t", "kbps_column": "tput"}, [0, 1], [1.5, 2.5]),
    ("a.csv", "t,tput\n0,1500000\n1,2500000\n", {"time_column": "t", "bps_column": "tput"}, [0, 1], [1.5, 2.5]),
    ("a.csv", "t,tput\n0,1500\n1,2500\n", {"time_column": "t", "throughput_column": "tput",
                                           "throughput_unit": "kbit/s"}, [0, 1], [1.5, 2.5]),
    ("a.txt", "0 1500000\n1 2500000\n", {"throughput_unit": "bps"}, [0, 1], [1.5, 2.5]),
    ("a.csv", "throughput_kbps\n1500\n2500\n", {"interval_s": 2.0}, [0, 2], [1.5, 2.5]),  # no time column
])
def test_published_trace_forms(tmp_path, name, text, options, times, mbps):
    tr = _trace(tmp_path, name, text, **options)
    assert tr.times.tolist() == pytest.approx(times, abs=1e-9)
    assert tr.mbps.tolist() == pytest.approx(mbps, rel=1e-12)


def test_kbps_column_scales_the_long_run_mean(tmp_path):
    f = _write(tmp_path, "k.csv", "t,k\n0,1000\n1,3000\n")
    spec = parse_bandwidth({"model": "trace", "file": f, "time_column": "t", "kbps_column": "k", "scale": 2}, "bw")
    assert spec.long_run_mbps() == pytest.approx(4.0)


@pytest.mark.parametrize("text, options, message", [
    ("t,throughput\n0,1\n1,2\n", {"time_column": "t"},
     "column 'throughput' does not say its unit: set throughput_unit"),
    ("t,x\n0,1\n", {}, "set throughput_column (or mbps_column, kbps_column, bps_column)"),
    ("t,mbps\n0,1\n", {"mbps_column": "mbps", "kbps_column": "mbps"}, "give one of mbps_column or kbps_column"),
    ("t,k\n0,1\n", {"kbps_column": "k", "throughput_unit": "mbps"}, "kbps_column holds kbps"),
    ("0 1\n", {"separator": "|"}, "'bw.separator' must be auto"),
    ("0 1\n", {"time_format": "hours"}, "'bw.time_format' must be auto, s, ms, clock"),
    ("0 1\n", {"throughput_unit": "MB/s"}, "'bw.throughput_unit' must be auto, bps, kbps, mbps or gbps"),
    ("0 1\n1 2\n", {"time_column": "t"}, "no header row, so columns cannot be chosen by name"),
    ("clock,mbps\n12:00:00,1\n11:00:00,2\n", {"time_column": "clock"}, ":3: time 39600.0 does not increase"),
    ("t,mbps\n0,1\nsecret-value,2\n", {"time_column": "t"}, "a.csv:3: expected a time in column 't'"),
    ("t,mbps\n0,1\n1,secret-value\n", {"time_column": "t"}, "a.csv:3: expected a number in column 'mbps'"),
    ("t,mbps\n0,1\n1\n", {"time_column": "t"}, "a.csv:3: expected 2 fields (as in the header), got 1"),
    ("t,mbps\n0,1\n1,nan\n", {"time_column": "t"}, "a.csv:3: negative or invalid throughput nan"),
    ("t,mbps\n0,1\ninf,2\n", {"time_column": "t"}, "a.csv:3: expected a finite time, got inf"),
])
def test_bad_trace_options_and_rows_are_one_clear_line(tmp_path, text, options, message):
    with pytest.raises(ConfigError) as e:
        _trace(tmp_path, "a.csv", text, **options)
    assert message in str(e.value)
    assert "\n" not in str(e.value) and "secret" not in str(e.value)


@pytest.mark.parametrize("content, message", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "not a text (UTF-8) file"),
    (b"0 1\n\x00\x00\x00\x001 2\n", "not a text file (it contains NUL bytes)"),
    (b"0 1\nsecret 2\n", "b.txt:2: expected a time in the first field"),
    (b"0 1\n1\n", "b.txt:2: expected two fields, time and throughput"),
])
def test_unreadable_trace_files_are_one_line_without_their_content(tmp_path, content, message):
    f = _write(tmp_path, "b.txt", content)
    with pytest.raises(TraceError) as e:
        load_trace(f)
    assert message in str(e.value) and "\n" not in str(e.value) and "secret" not in str(e.value)


def test_trace_errors_do_not_expand_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_TRACES", str(tmp_path / "private"))
    with pytest.raises(TraceError) as e:
        load_trace("${MY_TRACES}/a.txt")
    assert str(e.value) == "trace file not found: ${MY_TRACES}/a.txt"
