"""Reports from a small run and small sweeps: files, tables, CI numbers, determinism, bad input."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from itertools import product
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from simulator.cli import main
from simulator.errors import UserError
from simulator.intervals import metric_interval
from simulator.report import Options, build_report, load_results
from simulator.report.style import OKABE_ITO, policy_styles

POLICIES = ["all-mobile", "all-edge", "all-cloud", {"name": "threshold", "thresholds": 0.9}]
LABELS = sorted(["all-mobile", "all-edge", "all-cloud", "threshold"])
BW, RATE = [2.0, 20.0], [2.0, 8.0]
AXES = ["links.uplink.bandwidth.mean_mbps", "workload.rate_per_s"]


def scenario(profile: Path) -> dict:
    return {
        "name": "report-test", "profile": str(profile), "seed": 3, "replications": 3, "deadline_ms": 150,
        "tiers": {"mobile": {"device": "phone-cpu", "count": 2, "layers": [1, 2]},
                  "edge": {"device": "jetson-orin", "layers": [3, 4]},
                  "cloud": {"device": "cloud-gpu", "layers": [5, 6]}},
        "links": {"uplink": {"bandwidth": {"model": "lognormal", "mean_mbps": 10, "cv": 0.5}, "rtt_ms": 20},
                  "backhaul": {"bandwidth": {"model": "constant", "mbps": 100}}},
        "workload": {"rate_per_s": 5, "requests": 150},
        "policies": POLICIES,
    }


@pytest.fixture(scope="module")
def scenario_file(synth_profile, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("scenario") / "it.yaml"
    path.write_text(yaml.safe_dump(scenario(synth_profile), sort_keys=False))
    return path


@pytest.fixture(scope="module")
def run_dir(scenario_file, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "r"
    assert main(["run", str(scenario_file), "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def sweep_dir(scenario_file, tmp_path_factory) -> Path:
    """A sweep folder written by hand in the sweep contract's layout (results.parquet/ in two parts)."""
    from simulator.config import load_scenario
    from simulator.runner import run_scenario

    out = tmp_path_factory.mktemp("sweep") / "s"
    parts = out / "results.parquet"
    parts.mkdir(parents=True)
    frames = []
    for cond, (bw, rate) in enumerate(product(BW, RATE)):
        sc = load_scenario(scenario_file, [f"{AXES[0]}={bw}", f"{AXES[1]}={rate}", "workload.requests=80",
                                           "timeline=false"])
        pr = run_scenario(sc).per_replication
        pr.insert(0, "run_key", [f"k{cond}-{r}" for r in pr["replication"]])
        pr.insert(1, "condition", cond)
        pr.insert(4, AXES[0], bw)
        pr.insert(5, AXES[1], rate)
        frames.append(pr)
    df = pd.concat(frames, ignore_index=True)
    half = len(df) // 2
    df.iloc[:half].to_parquet(parts / "part-00000.parquet", index=False)
    df.iloc[half:].to_parquet(parts / "part-00001.parquet", index=False)
    (out / "manifest.json").write_text(json.dumps({"kind": "sweep", "axes": AXES}))
    (out / "sweep.yaml").write_text(yaml.safe_dump({"name": "hand", "grid": {AXES[0]: BW, AXES[1]: RATE}}))
    return out


@pytest.fixture(scope="module")
def run_report(run_dir):
    res = load_results(run_dir)
    return res, build_report(res, run_dir / "report", Options())


@pytest.fixture(scope="module")
def sweep_report(sweep_dir):
    res = load_results(sweep_dir)
    return res, build_report(res, sweep_dir / "report", Options())


def _tabular_rows(tex: str) -> tuple[str, list[list[str]], list[str]]:
    m = re.search(r"\\begin\{tabular\}\{([lrc]+)\}(.*?)\\end\{tabular\}", tex, re.S)
    assert m, "no tabular environment"
    spec, body = m.group(1), m.group(2)
    assert "\\toprule" in body and "\\midrule" in body and "\\bottomrule" in body
    head = body.split("\\toprule")[1].split("\\midrule")[0].strip()
    rows = body.split("\\midrule")[1].split("\\bottomrule")[0].strip().splitlines()
    cells = [[c.strip() for c in r.strip().removesuffix("\\\\").split("&")] for r in rows]
    return spec, cells, [c.strip() for c in head.removesuffix("\\\\").split("&")]


def _md_table(md: str) -> pd.DataFrame:
    lines = [ln for ln in md.strip().splitlines()]
    head = [c.strip() for c in lines[0].strip("|").split(" | ")]
    rows = [[c.strip() for c in ln.strip("|").split(" | ")] for ln in lines[2:]]
    return pd.DataFrame(rows, columns=head)


# -- run folders ------------------------------------------------------------------------------------
def test_run_report_files(run_report):
    res, rep = run_report
    assert res.kind == "run" and res.policies == LABELS
    expected = {"tradeoff_accuracy_vs_cost-mean", "tradeoff_accuracy_vs_latency-mean-ms",
                "tradeoff_accuracy_vs_energy-mobile-j-per-req", "latency_cdf", "exit_layers", "exit_tiers",
                *(f"timeline_{p}" for p in LABELS)}
    assert expected <= set(rep.figures), expected - set(rep.figures)
    for name in rep.figures:
        for ext in ("pdf", "png"):
            f = rep.folder / f"{name}.{ext}"
            assert f.is_file() and f.stat().st_size > 1000, f
        assert (rep.folder / f"{name}.pdf").read_bytes().startswith(b"%PDF")
        assert (rep.folder / f"{name}.png").read_bytes().startswith(b"\x89PNG")
    assert set(rep.tables) == {"summary", "exits"}
    for t in rep.tables:
        for ext in ("tex", "md"):
            assert (rep.folder / f"table_{t}.{ext}").stat().st_size > 100


def test_index_references_every_figure_and_table(run_report):
    _, rep = run_report
    html = rep.index.read_text()
    srcs = set(re.findall(r'<img src="([^"]+)"', html))
    assert srcs == {f"{n}.png" for n in rep.figures}
    for n in rep.figures:
        assert f'href="{n}.pdf"' in html
    for t in rep.tables:
        assert f'href="table_{t}.tex"' in html and f'href="table_{t}.md"' in html
    assert html.count("<figcaption>") == len(rep.figures)
    assert "deadline" in html  # the latency CDF caption names the deadline


def test_latex_table_is_booktabs_tabular_with_one_row_per_policy(run_report):
    res, rep = run_report
    spec, rows, head = _tabular_rows((rep.folder / "table_summary.tex").read_text())
    assert len(rows) == len(res.policies)
    assert len(spec) == len(head) == 8  # policy + 7 metrics
    assert all(len(r) == len(spec) for r in rows)
    assert [r[0] for r in rows] == res.policies
    assert all(re.fullmatch(r"\$-?[\d.]+\\ \[[\d.]+, [\d.]+\]\$|-?[\d.]+", c) for r in rows for c in r[1:]), rows
    assert any("[" in c for r in rows for c in r[1:])
    assert "Latency" not in spec and "\\%" in " ".join(head)  # '%' escaped in headers


def _check_ci(table: pd.DataFrame, per_rep: pd.DataFrame, keys: list[str], col: str, metric: str,
              scale: float) -> int:
    checked = 0
    for _, row in table.iterrows():
        sel = np.ones(len(per_rep), bool)
        for k in keys:
            want = row[k]
            sel &= per_rep[k].astype(str).map(lambda v: v if not v.replace(".", "").isdigit() else f"{float(v):g}")\
                .to_numpy() == want
        vals = per_rep.loc[sel, metric].to_numpy(float) * scale
        assert len(vals) == 3
        mean = vals.mean()
        lo, hi = metric_interval(vals / scale, metric)
        lo, hi = lo * scale, hi * scale
        if " [" not in row[col]:  # identical replications: the mean alone
            assert lo == hi and float(row[col]) == pytest.approx(mean, rel=5e-3)
            checked += 1
            continue
        m, rest = row[col].split(" [")
        clo, chi = rest.rstrip("]").split(", ")
        half_ulp = 0.5 * 10 ** -len(m.split(".")[1]) if "." in m else 0.5
        assert abs(float(m) - mean) <= half_ulp + 1e-9, (row[k], metric, m, mean)
        assert abs(float(clo) - lo) <= half_ulp + 1e-9, (row[k], metric, clo, lo)
        assert abs(float(chi) - hi) <= half_ulp + 1e-9, (row[k], metric, chi, hi)
        assert float(clo) >= 0
        checked += 1
    return checked


def test_table_interval_equals_support_respecting_interval_from_per_replication(run_report, run_dir):
    res, rep = run_report
    table = _md_table((rep.folder / "table_summary.md").read_text())
    per_rep = pd.read_csv(run_dir / "per_replication.csv")
    n = 0
    for col, metric, scale in [("Accuracy (%)", "accuracy", 100), ("p95 latency (ms)", "latency_p95_ms", 1),
                               ("Mean latency (ms)", "latency_mean_ms", 1), ("Cost (abstract units)", "cost_mean", 1),
                               ("Mobile energy (mJ/request)", "energy_mobile_j_per_req", 1e3)]:
        n += _check_ci(table.rename(columns={"Policy": "policy"}), per_rep, ["policy"], col, metric, scale)
    assert n == 5 * len(LABELS)
    # and the simulator's own summary agrees where it computed CIs
    summary = pd.read_csv(run_dir / "summary.csv").set_index("policy")
    cell = table.set_index("Policy")["p95 latency (ms)"].str.extract(r"\[([\d.]+), ([\d.]+)\]").astype(float)
    for p in LABELS:
        for i, side in enumerate(("lo", "hi")):
            assert cell.loc[p, i] == pytest.approx(summary.loc[p, f"latency_p95_ms_ci95_{side}"],
                                                   abs=0.5 * 10 ** -2 + 1e-6, rel=0.01)
    assert "log scale" in (rep.folder / "index.html").read_text()  # the method is stated


def test_figures_are_deterministic_and_embed_truetype(run_dir, tmp_path):
    res = load_results(run_dir)
    opt = Options(figures=["tradeoff", "cdf"], formats=["pdf", "png"])
    a = build_report(res, tmp_path / "a", opt)
    b = build_report(res, tmp_path / "b", opt)
    assert a.figures == b.figures and len(a.figures) == 4
    for name in a.figures:
        for ext in ("pdf", "png"):
            assert (a.folder / f"{name}.{ext}").read_bytes() == (b.folder / f"{name}.{ext}").read_bytes()
        pdf = (a.folder / f"{name}.pdf").read_bytes()
        assert b"/CreationDate" not in pdf and b"/FontFile2" in pdf and b"/Type3" not in pdf
    assert (a.folder / "index.html").read_text() == (b.folder / "index.html").read_text()


def test_slides_style_and_single_format(run_dir, tmp_path):
    res = load_results(run_dir)
    rep = build_report(res, tmp_path / "s", Options(figures=["exits"], formats=["png"], style="slides"))
    assert set(rep.figures) == {"exit_layers", "exit_tiers"}
    assert not list(rep.folder.glob("*.pdf")) and len(list(rep.folder.glob("*.png"))) == 2
    from matplotlib import image

    h, w = image.imread(rep.folder / "exit_tiers.png").shape[:2]
    assert w == pytest.approx(8.0 * 150, rel=0.02)  # slides: 8 in at 150 dpi


def test_policy_styles_consistent_and_colour_blind_safe():
    s1 = policy_styles(["b", "a", "c"])
    s2 = policy_styles(["c", "b", "a", "a"])
    assert s1 == s2
    assert all(s.colour in OKABE_ITO for s in s1.values())
    # fixed by name: the same policy looks the same in reports that plot different sets of policies
    a = policy_styles(["all-mobile", "dimee", "confidence-0.6"])
    b = policy_styles(["all-cloud", "all-mobile", "confidence-0.6", "splitee", "zz"])
    assert a["all-mobile"] == b["all-mobile"] and a["confidence-0.6"] == b["confidence-0.6"]
    assert policy_styles(["all-mobile"])["all-mobile"] != policy_styles(["all-edge"])["all-edge"]
    from simulator.report.style import FIXED_STYLES

    assert len(set(FIXED_STYLES.values())) == len(FIXED_STYLES)
    many = policy_styles([f"p{i:02d}" for i in range(10)])
    assert len({(s.colour, s.marker, s.dash) for s in many.values()}) == 10


def test_same_policy_same_colour_across_figures(sweep_dir):
    from matplotlib import pyplot as plt

    from simulator.report import figures as F
    from simulator.report.style import get_style, style_context

    res = load_results(sweep_dir)
    styles = policy_styles(res.policies)
    st = get_style("paper")
    with style_context(st):
        lines = F.metric_vs_axis(res, styles, st, AXES[0], "latency_mean_ms")
        trade = F.tradeoff(res, styles, st, "cost_mean")
    seen = 0
    for fig in (lines.figure, trade.figure):
        for ax in fig.axes:
            for ln in ax.get_lines():
                if ln.get_label() in styles:
                    assert ln.get_color() == styles[ln.get_label()].colour
                    assert ln.get_marker() == styles[ln.get_label()].marker
                    seen += 1
            for c in ax.containers:  # error bars of the trade-off plot
                if c.get_label() in styles:
                    assert c.lines[0].get_color() == styles[c.get_label()].colour
                    assert c.lines[0].get_marker() == styles[c.get_label()].marker
                    seen += 1
        plt.close(fig)
    assert seen >= len(LABELS) * 2


# -- sweep folders ----------------------------------------------------------------------------------
def test_sweep_report_files_and_table(sweep_report, sweep_dir):
    res, rep = sweep_report
    assert res.kind == "sweep" and res.axes == AXES
    names = set(rep.figures)
    for y in ("accuracy", "latency-p95-ms", "cost-mean", "energy-mobile-j-per-req"):
        assert f"{y}_vs_bandwidth-mean-mbps_by_workload-rate-per-s" in names
    assert any(n.startswith("best_policy_latency-p95-ms") for n in names)
    assert any(n.startswith("margin_latency-p95-ms") for n in names)
    assert "exit_tiers" in names and "latency_cdf" not in names
    for name in rep.figures:
        assert (rep.folder / f"{name}.pdf").stat().st_size > 1000
        assert (rep.folder / f"{name}.png").stat().st_size > 1000
    spec, rows, head = _tabular_rows((rep.folder / "table_summary.tex").read_text())
    assert len(rows) == len(BW) * len(RATE) * len(LABELS)
    assert len(spec) == len(head) == 2 + 1 + 7
    html = rep.index.read_text()
    assert set(re.findall(r'<img src="([^"]+)"', html)) == {f"{n}.png" for n in rep.figures}
    table = _md_table((rep.folder / "table_summary.md").read_text())
    table = table.rename(columns={table.columns[0]: AXES[0], table.columns[1]: AXES[1], "Policy": "policy"})
    per_rep = pd.read_parquet(sweep_dir / "results.parquet")
    n = _check_ci(table, per_rep, [*AXES, "policy"], "p95 latency (ms)", "latency_p95_ms", 1)
    assert n == len(rows)


def test_sweep_lines_with_chosen_axes(sweep_dir, tmp_path):
    res = load_results(sweep_dir)
    rep = build_report(res, tmp_path / "r", Options(x="rate_per_s", y=["accuracy"], facet=AXES[0]))
    assert rep.figures == ["accuracy_vs_workload-rate-per-s_by_bandwidth-mean-mbps"]
    rep = build_report(res, tmp_path / "h", Options(x="rate_per_s", y=["latency_mean_ms"], hue=AXES[0],
                                                    figures=["lines"]))
    assert rep.figures == ["latency-mean-ms_vs_workload-rate-per-s_by_bandwidth-mean-mbps_hue_bandwidth-mean-mbps"
                           ] or rep.figures[0].endswith("_hue_bandwidth-mean-mbps")
    rep = build_report(res, tmp_path / "m", Options(figures=["margin"], y=["latency_mean_ms"],
                                                    compare=("threshold", "all-edge")))
    assert rep.figures == ["margin_latency-mean-ms_threshold_vs_all-edge"]


def test_sweep_with_list_axis_and_binned_sample(tmp_path):
    """Stringified list values are categories; an axis sampled at many values is binned."""
    rng = np.random.default_rng(0)
    rows = []
    layers = ["[1, 2]", "[1, 3]", "[2, 4]"]
    for cond in range(60):
        lay, rate = layers[cond % 3], float(rng.uniform(1, 20))
        for p, rep in product(["a", "b"], range(2)):
            rows.append({"run_key": f"{cond}-{p}-{rep}", "condition": cond, "replication": rep, "policy": p,
                         "tiers.mobile.layers": lay, "workload.rate_per_s": rate,
                         "accuracy": rng.uniform(0.8, 0.9), "latency_p95_ms": rate * (2 if p == "a" else 3),
                         "cost_mean": rng.uniform(1, 2), "energy_mobile_j_per_req": 0.01,
                         "exit_frac_mobile": 0.5, "exit_frac_edge": 0.5})
    out = tmp_path / "lhs"
    (out / "results.parquet").mkdir(parents=True)
    pd.DataFrame(rows).to_parquet(out / "results.parquet" / "part-00000.parquet", index=False)
    (out / "manifest.json").write_text(json.dumps({"kind": "sweep", "axes": ["tiers.mobile.layers",
                                                                               "workload.rate_per_s"]}))
    assert main(["report", str(out), "--format", "png", "--figures", "lines,heatmap,tables", "--allow-incomplete",
                 "--y", "latency_p95_ms"]) == 0
    rep = out / "report"
    pngs = sorted(p.name for p in rep.glob("*.png"))
    assert len(pngs) == 2 and any(n.startswith("best_policy") for n in pngs)
    html = (rep / "index.html").read_text()
    assert html.count("grouped into quantile bins") == 2 and "[1, 3]" in html
    _, rows_tex, _ = _tabular_rows((rep / "table_summary.tex").read_text())
    assert len(rows_tex) == 60 * 2


def test_real_sweep_command(scenario_file, tmp_path):
    sweep = tmp_path / "tiny.yaml"
    sweep.write_text(yaml.safe_dump({"name": "tiny", "base": str(scenario_file), "replications": 2,
                                     "set": {"workload.requests": 60},
                                     "grid": {AXES[0]: [2, 20], AXES[1]: [2, 8]}}))
    out = tmp_path / "out"
    assert main(["sweep", str(sweep), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    assert main(["report", str(out), "--format", "png", "--out", str(tmp_path / "rep")]) == 0
    rep = tmp_path / "rep"
    html = (rep / "index.html").read_text()
    pngs = sorted(p.name for p in rep.glob("*.png"))
    assert len(pngs) >= 8 and all(f'src="{n}"' in html for n in pngs)
    assert any(n.startswith("latency-p95-ms_vs_bandwidth-mean-mbps") for n in pngs)
    _, rows, _ = _tabular_rows((rep / "table_summary.tex").read_text())
    assert len(rows) == 2 * 2 * len(LABELS)


# -- bad input --------------------------------------------------------------------------------------
def _error(capsys, argv: list[str]) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


def test_bad_input_one_line_errors(capsys, tmp_path, run_dir, sweep_dir):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no results" in _error(capsys, ["report", str(empty)])
    assert "not found" in _error(capsys, ["report", str(tmp_path / "missing")])
    parts = tmp_path / "nosweep" / "results.parquet"
    parts.mkdir(parents=True)
    (parts.parent / "manifest.json").write_text(json.dumps({"kind": "sweep", "axes": AXES}))
    assert "no results" in _error(capsys, ["report", str(parts.parent)])
    err = _error(capsys, ["report", str(run_dir), "--y", "latncy_p95_ms", "--out", str(tmp_path / "x")])
    assert "latncy_p95_ms" in err and "did you mean 'latency_p95_ms'" in err
    err = _error(capsys, ["report", str(run_dir), "--x", "workload.rate_per_s", "--out", str(tmp_path / "x")])
    assert "was not swept" in err
    err = _error(capsys, ["report", str(sweep_dir), "--x", "links.uplink.rtt_ms", "--out", str(tmp_path / "x")])
    assert "was not swept" in err and AXES[0] in err
    err = _error(capsys, ["report", str(sweep_dir), "--x", "workload.rate_per_sec", "--out", str(tmp_path / "x")])
    assert "did you mean 'workload.rate_per_s'" in err
    err = _error(capsys, ["report", str(run_dir), "--figures", "tradof", "--out", str(tmp_path / "x")])
    assert "did you mean 'tradeoff'" in err
    err = _error(capsys, ["report", str(sweep_dir), "--figures", "cdf", "--out", str(tmp_path / "x")])
    assert "requests.parquet" in err
    err = _error(capsys, ["report", str(run_dir), "--figures", "heatmap", "--out", str(tmp_path / "x")])
    assert "two axes" in err
    err = _error(capsys, ["report", str(sweep_dir), "--compare", "threshhold,all-edge", "--out",
                          str(tmp_path / "x")])
    assert "did you mean 'threshold'" in err
    assert "format" in _error(capsys, ["report", str(run_dir), "--format", "jpg", "--out", str(tmp_path / "x")])
    with pytest.raises(UserError, match="not a numeric metric"):
        load_results(run_dir).metric("policy")


def _synthetic_sweep(tmp_path):
    from simulator.report.load import Results

    rows = []
    for bw, rate, rep in product([1.0, 10.0, 100.0], [1.0, 5.0], range(3)):
        noise = 1e-13 * (rep - 1)
        rows += [{"a.bw": bw, "b.rate": rate, "replication": rep, "policy": "all-edge",
                  "energy_mobile_j_per_req": 0.5 + noise, "latency_mean_ms": 50 + rep},
                 {"a.bw": bw, "b.rate": rate, "replication": rep, "policy": "all-cloud",
                  "energy_mobile_j_per_req": 0.5 - noise, "latency_mean_ms": 80 + rep},
                 {"a.bw": bw, "b.rate": rate, "replication": rep, "policy": "all-mobile",
                  "energy_mobile_j_per_req": 0.9 + 0.01 * rep + 0.1 / bw, "latency_mean_ms": 30 + rep}]
    df = pd.DataFrame(rows)
    return Results(folder=tmp_path, kind="sweep", per_rep=df, axes=["a.bw", "b.rate"],
                   policies=sorted(df["policy"].unique()),
                   metrics=["energy_mobile_j_per_req", "latency_mean_ms"])


def test_margin_heatmap_never_picks_a_degenerate_comparison(tmp_path):
    from simulator.report import figures as F
    from simulator.report.build import _margin_pair
    from simulator.report.load import aggregate

    res = _synthetic_sweep(tmp_path)
    m = "energy_mobile_j_per_req"
    agg = aggregate(res.per_rep, ["a.bw", "b.rate", "policy"], [m])
    assert F.margin_signal(agg, "a.bw", "b.rate", m, "all-edge", "all-cloud") == 0.0
    pair = _margin_pair(res, "a.bw", "b.rate", m)
    assert pair is not None and set(pair) != {"all-edge", "all-cloud"}
    _, _, diff, real = F.margin_grid(agg, "a.bw", "b.rate", m, "all-edge", "all-cloud")
    assert not real.any() and (diff == 0).all()  # shown as "no difference", not coloured noise
    only_two = replace(res, per_rep=res.per_rep[res.per_rep.policy != "all-mobile"],
                       policies=["all-cloud", "all-edge"])
    assert _margin_pair(only_two, "a.bw", "b.rate", m) is None


def test_trace_and_mixed_bandwidth_axes_are_numeric(shared_data, monkeypatch):
    import json as _json

    from simulator.report.axes import bandwidth_axis, derive_numeric_axes
    from simulator.traces import load_trace

    monkeypatch.setenv("EESIM_SHARED_DATA", str(shared_data))
    trace = str(shared_data / "traces" / "hsdpa_norway_test" / "norway_bus_1")
    mixed = pd.Series([_json.dumps({"model": "constant", "mbps": 5}),
                       _json.dumps({"model": "trace", "file": trace, "random_offset": True})])
    num = bandwidth_axis(mixed)
    assert num is not None and num[0] == 5
    assert num[1] == pytest.approx(load_trace(trace).mean_mbps, rel=1e-3)
    df = pd.DataFrame({"links.uplink.bandwidth.file": [trace, trace], "policy": ["a", "b"]})
    df, axes, points = derive_numeric_axes(df, ["links.uplink.bandwidth.file"])
    assert axes == points == ["links.uplink.bandwidth.mean_mbps"]
    assert pd.api.types.is_numeric_dtype(df[axes[0]])
    assert bandwidth_axis(pd.Series(["fp16", "int8"])) is None  # not a bandwidth: left alone


def test_timeline_trip_temperatures_come_from_the_tier_devices(tmp_path):
    from simulator.report.figures import trip_temperatures
    from simulator.report.load import Results

    res = Results(folder=tmp_path, kind="run", per_rep=pd.DataFrame(), axes=[], policies=[], metrics=[],
                  config={"tiers": {"mobile": {"device": "phone-cpu"}, "cloud": {"device": "cloud-gpu"}}})
    assert trip_temperatures(res) == [45.0, 52.0, 60.0]
    res.config["tiers"]["mobile"]["throttling"] = False
    assert trip_temperatures(res) == []


def test_incomplete_folders_are_reported_with_a_warning(capsys, tmp_path, run_dir, sweep_dir):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(run_dir, run, ignore=shutil.ignore_patterns("report"))
    (run / "manifest.json").unlink()
    (run / "config.yaml").unlink()
    assert main(["report", str(run), "--figures", "tables", "--out", str(tmp_path / "r1")]) == 2  # refused
    assert "not a complete 'run' folder" in capsys.readouterr().err
    assert main(["report", str(run), "--figures", "tables", "--out", str(tmp_path / "r1"), "--allow-incomplete"]) == 0
    err = capsys.readouterr().err
    assert f"warning: {run} has no manifest.json or config.yaml: not a complete 'run' folder" in err
    assert "not a complete" in (tmp_path / "r1" / "index.html").read_text()

    sweep = tmp_path / "sweep"
    shutil.copytree(sweep_dir, sweep, ignore=shutil.ignore_patterns("report"))
    for status, says in [("running", "was killed before it finished"), ("interrupted", "was interrupted (5 of 8"),
                         ("failed", "2 runs of the sweep"), ("complete", None)]:
        (sweep / "manifest.json").write_text(json.dumps({"kind": "sweep", "axes": AXES, "status": status,
                                                         "runs": 8, "runs_done": 3, "runs_skipped": 2,
                                                         "runs_failed": 2}))
        assert main(["report", str(sweep), "--figures", "tables", "--out", str(tmp_path / "r2")]) == 0
        err = capsys.readouterr().err
        assert (says in err) if says else "warning" not in err, (status, err)
    (sweep / "sweep.yaml").unlink()
    assert main(["report", str(sweep), "--figures", "tables", "--out", str(tmp_path / "r2")]) == 2
    assert "has no sweep.yaml: not a complete 'sweep' folder" in capsys.readouterr().err


def _categorical_sweep(tmp_path) -> Path:
    """A sweep over profile paths (given in non-alphabetical order) and a mapping-valued axis."""
    profiles = ["profiles/sst2-minilm6.npz", "profiles/mrpc-minilm6.npz", "other/dir/cola-minilm6.npz"]
    batching = [{"max_batch": 4, "timeout_ms": 5}, {"max_batch": 1, "timeout_ms": 0}]
    cells = [json.dumps(b, sort_keys=True) for b in batching]
    rows = []
    for cond, ((i, prof), (j, bat)) in enumerate(product(enumerate(profiles), enumerate(cells))):
        for p, rep in product(["all-cloud", "threshold-0.9"], range(3)):
            rows.append({"run_key": f"{cond}-{p}-{rep}", "condition": cond, "replication": rep, "policy": p,
                         "profile": prof, "tiers.mobile.batching": bat,
                         "accuracy": 0.9 - 0.1 * i + 0.01 * rep, "latency_p95_ms": 50.0 + 10 * i + j + rep,
                         "cost_mean": 1.0 + i, "energy_mobile_j_per_req": 0.01 * (1 + j),
                         "exit_frac_mobile": 0.5, "exit_frac_edge": 0.5})
    out = tmp_path / "cat"
    (out / "results.parquet").mkdir(parents=True)
    pd.DataFrame(rows).to_parquet(out / "results.parquet" / "part-00000.parquet", index=False)
    (out / "manifest.json").write_text(json.dumps({"kind": "sweep", "axes": ["profile", "tiers.mobile.batching"]}))
    (out / "sweep.yaml").write_text(yaml.safe_dump({"name": "cat", "grid": {"profile": profiles,
                                                                            "tiers.mobile.batching": batching}}))
    return out


def test_categorical_axis_unjoined_short_labels_in_sweep_order(tmp_path):
    from matplotlib import pyplot as plt

    from simulator.report import figures as F
    from simulator.report.style import get_style, style_context

    res = load_results(_categorical_sweep(tmp_path))
    assert res.categories["profile"][0] == "profiles/sst2-minilm6.npz"  # the sweep file's order
    styles = policy_styles(res.policies)
    st = get_style("paper")
    with style_context(st):
        figs = [F.metric_vs_axis(res, styles, st, "profile", "accuracy"),
                F.metric_vs_axis(res, styles, st, "profile", "latency_p95_ms", facet="tiers.mobile.batching"),
                F.metric_vs_axis(res, styles, st, "tiers.mobile.batching", "accuracy")]
        heat = F.heatmap_best(res, styles, st, "profile", "tiers.mobile.batching", "latency_p95_ms")
    for fig in figs:
        for ax in fig.figure.axes:
            if not ax.get_visible():
                continue
            for ln in ax.get_lines():  # nothing joins two categories: any drawn line stays at one x
                if ln.get_linestyle() not in ("None", "none", "") and len(ln.get_xdata()) > 1:
                    assert len(set(np.round(np.asarray(ln.get_xdata(), float), 9))) == 1, ln.get_label()
            series = [c.lines[0] for c in ax.containers if c.get_label() in styles]
            assert series and all(ln.get_linestyle() == "None" for ln in series)
    ticks = [t.get_text() for t in figs[0].figure.axes[0].get_xticklabels()]
    assert ticks == ["sst2-minilm6", "mrpc-minilm6", "cola-minilm6"]
    assert [t.get_text() for t in heat.figure.axes[0].get_xticklabels()] == ticks
    titles = [ax.get_title() for ax in figs[1].figure.axes if ax.get_visible()]
    assert [t.replace("\n", " ") for t in titles] == ["batching = max_batch=4 timeout_ms=5",
                                                      "batching = max_batch=1 timeout_ms=0"]
    assert all("\n" in t for t in titles)  # wrapped to the panel's width: side by side they overlapped
    mticks = [t.get_text() for t in figs[2].figure.axes[0].get_xticklabels()]
    assert mticks == ["max_batch=4 timeout_ms=5", "max_batch=1 timeout_ms=0"]
    assert all(len(t) <= 28 for t in ticks + mticks)
    # the markers of one category sit near its tick, policies side by side
    ax = figs[0].figure.axes[0]
    xs = sorted(float(x) for c in ax.containers if c.get_label() in styles for x in c.lines[0].get_xdata())
    assert len(xs) == 2 * 3 and all(abs(x - round(x)) < 0.45 for x in xs) and xs[0] != xs[1]
    assert "not joined" in figs[0].caption
    for f in [*figs, heat]:
        plt.close(f.figure)
    from simulator.report.axes import category_labels

    assert category_labels(["a/x.csv", "b/x.csv"]) == {"a/x.csv": "a/x", "b/x.csv": "b/x"}  # still distinct


# -- timelines: policies overlaid, many phones --------------------------------------------------------
@pytest.fixture(scope="module")
def many_phones_dir(synth_profile, tmp_path_factory) -> Path:
    """A warm (40 °C ambient, near the 45 °C trip) run with 12 phones and four policies."""
    sc = scenario(synth_profile)
    sc["replications"] = 1
    sc["tiers"]["mobile"].update(count=12, ambient_c=40.0)
    sc["workload"] = {"rate_per_s": 20, "requests": 200}
    path = tmp_path_factory.mktemp("phones") / "phones.yaml"
    path.write_text(yaml.safe_dump(sc, sort_keys=False))
    out = path.parent / "r"
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 0
    return out


def _outside(fig) -> list[str]:
    """Visible texts (titles, labels, tick labels, legends, annotations) not inside the figure."""
    from matplotlib.text import Text

    fig.draw_without_rendering()
    r = fig.canvas.get_renderer()
    w, h = fig.bbox.width, fig.bbox.height
    bad = []

    def check(what: str, bb) -> None:
        if bb.x0 < -1 or bb.x1 > w + 1 or bb.y0 < -1 or bb.y1 > h + 1:
            bad.append(f"{what} {bb.x0:.0f}..{bb.x1:.0f} x {bb.y0:.0f}..{bb.y1:.0f} in {w:.0f} x {h:.0f}")

    ticks = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                ticks.update((id(tick.label1), id(tick.label2)))
            if ax.get_visible() and axis.get_visible():  # the drawn ticks and their labels only
                bb = axis.get_tightbbox(r)
                if bb is not None:
                    check(f"tick labels of {axis.axis_name} axis of {ax.get_title(loc='left')!r}", bb)
    for t in fig.findobj(Text):
        if id(t) in ticks or not t.get_visible() or not t.get_text() or not t.get_in_layout():
            continue
        if t.axes is not None and not t.axes.get_visible():
            continue
        check(repr(t.get_text()), t.get_window_extent(r))
    return bad


def test_report_text_fits_the_figure_with_many_phones(many_phones_dir, tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    checked: dict[str, list[str]] = {}
    titles: list[str] = []
    original = Figure.savefig

    def checking_savefig(self, fname, *a, **kw):
        if str(fname).endswith(".png"):
            checked[Path(fname).stem] = _outside(self)
            titles.extend(ax.get_title(loc="left") for ax in self.axes)
        return original(self, fname, *a, **kw)

    monkeypatch.setattr(Figure, "savefig", checking_savefig)
    res = load_results(many_phones_dir)
    for style in ("paper", "slides"):
        rep = build_report(res, tmp_path / style, Options(style=style, formats=["png"]))
        assert {f"timeline_{p}" for p in LABELS} | {"timeline_thermal"} <= set(rep.figures)
    assert any("of 12" in t for t in titles), titles  # the many-phone note is there, and fits
    assert len(checked) >= 10
    assert not {k: v for k, v in checked.items() if v}, {k: v for k, v in checked.items() if v}


def test_fit_text_shrinks_or_wraps_long_titles_and_legends():
    from matplotlib import pyplot as plt
    from matplotlib.lines import Line2D

    from simulator.report.style import figure_legend, fit_text, get_style, style_context

    st = get_style("paper")
    handles = [Line2D([], [], label=f"policy-with-a-long-name-{i}") for i in range(6)]
    with style_context(st):
        fig, axs = plt.subplots(2, 1, figsize=st.size(2), layout="constrained")
        axs[0].set_title("Uplink bandwidth per mobile device (4 of 16 shown) over the whole simulated run",
                         loc="left")
        axs[1].set_title("Device temperature of the mobile phones (4 of 16 shown)", loc="left")  # ~9 % over
        fig.legend(handles=handles, loc="outside upper center", ncols=6)
        before = " ".join(_outside(fig))
        assert "Uplink" in before and "Device" in before and "long-name-5" in before  # all run past the edges
        fig.legends[0].remove()
        figure_legend(fig, handles, 6)
        fit_text(fig)
        assert _outside(fig) == []
        assert "\n" in axs[0].get_title(loc="left")  # too long to shrink a little: wrapped
        assert "\n" not in axs[1].get_title(loc="left")  # a little too long: slightly smaller instead
        assert 0.85 * st.font <= axs[1]._left_title.get_fontsize() < st.font
        plt.close(fig)


def test_timeline_overlays_policies_on_temperature_and_frequency(many_phones_dir):
    from matplotlib import pyplot as plt

    from simulator.report import figures as F
    from simulator.report.style import get_style, style_context

    res = load_results(many_phones_dir)
    styles = policy_styles(res.policies)
    st = get_style("paper")
    with style_context(st):
        fig = F.timeline_thermal(res, styles, st, res.policies)
    temp, freq = fig.figure.axes[:2]
    assert "Temperature" in temp.get_title(loc="left") and "frequency" in freq.get_title(loc="left")
    assert "12" in temp.get_title(loc="left")  # the mean of the 12 phones
    for ax in (temp, freq):
        marked = {ln.get_label(): ln for ln in ax.get_lines() if ln.get_label() in styles}
        assert sorted(marked) == res.policies  # one line per policy
        for p, ln in marked.items():
            assert ln.get_color() == styles[p].colour and ln.get_marker() == styles[p].marker
        traces = [ln for ln in ax.get_lines() if len(ln.get_xdata()) > 2 and ln.get_linestyle() != "None"]
        assert len(traces) == len(res.policies)
        assert sorted((ln.get_color(), ln.get_linestyle()) for ln in traces) == sorted(
            (styles[p].colour, {"-": "-", "--": "--", "-.": "-.", ":": ":"}[styles[p].dash]) for p in res.policies)
    trips = [ln for ln in temp.get_lines() if ln.get_linestyle() == ":" and len(set(ln.get_ydata())) == 1]
    assert [float(ln.get_ydata()[0]) for ln in trips] == [45.0]  # the phone's first trip, near 40 °C
    assert any(t.get_text() == "trip 45 °C" for t in temp.texts)
    legend = [t.get_text() for t in fig.figure.legends[0].get_texts()]
    assert legend == res.policies
    plt.close(fig.figure)
