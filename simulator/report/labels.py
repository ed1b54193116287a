"""Human-readable labels with units for metric columns and swept axes, and display scaling."""

from __future__ import annotations

import re

_METRICS = {
    "accuracy": ("Accuracy", "%", 100.0),
    "latency_mean_ms": ("Mean latency", "ms", 1.0),
    "latency_p50_ms": ("Median latency", "ms", 1.0),
    "latency_p95_ms": ("p95 latency", "ms", 1.0),
    "latency_p99_ms": ("p99 latency", "ms", 1.0),
    "cost_mean": ("Cost", "abstract units", 1.0),
    "energy_mobile_j_per_req": ("Mobile energy", "mJ/request", 1e3),
    "energy_compute_j_per_req": ("Mobile compute energy", "mJ/request", 1e3),
    "energy_radio_j_per_req": ("Mobile radio energy", "mJ/request", 1e3),
    "bytes_per_req": ("Data sent", "kB/request", 1e-3),
    "drop_rate": ("Dropped", "%", 100.0),
    "deadline_miss_rate": ("Deadline misses", "%", 100.0),
    "throughput_rps": ("Throughput", "requests/s", 1.0),
    "mean_exit_layer": ("Mean exit layer", "", 1.0),
    "requests": ("Requests", "", 1.0),
    "completed": ("Completed requests", "", 1.0),
    "dropped": ("Dropped requests", "", 1.0),
    "fail_rate": ("Failed (device failures)", "%", 100.0),
    "failed": ("Failed requests", "", 1.0),
}
_UNITS = [("_mbps", "Mbit/s"), ("_ms", "ms"), ("_per_s", "1/s"), ("_c", "°C"), ("_s", "s"), ("_w", "W"),
          ("_j", "J"), ("_bytes", "B")]


def metric_info(metric: str) -> tuple[str, str, float]:
    """(name, unit, scale) for a metric column: display value = stored value * scale."""
    if metric in _METRICS:
        return _METRICS[metric]
    m = re.fullmatch(r"exit_frac_(.+)", metric)
    if m:
        return (f"Exits at {m.group(1)}", "%", 100.0)
    m = re.fullmatch(r"queue_ms_(.+)", metric)
    if m:
        return (f"Queueing at {m.group(1)}", "ms", 1.0)
    return _generic(metric)


_LEAVES = {"rate_per_s": ("arrival rate", "requests/s"), "rtt_ms": ("RTT", "ms"), "cv": ("CV", ""),
           "mean_mbps": ("mean", "Mbit/s"), "count": ("devices", ""), "ambient_c": ("ambient temperature", "°C"),
           "mbps": ("", "Mbit/s"), "lambda_per_layer": ("lambda per layer", "")}


def _generic(key: str) -> tuple[str, str, float]:
    if key in _LEAVES:
        return (*_LEAVES[key], 1.0)
    unit = ""
    for suffix, u in _UNITS:
        if key.endswith(suffix):
            key, unit = key[: -len(suffix)], u
            break
    return key.replace("_", " ").strip() or key, unit, 1.0


def metric_label(metric: str) -> str:
    name, unit, _ = metric_info(metric)
    return f"{name} ({unit})" if unit else name


def metric_name(metric: str) -> str:
    return metric_info(metric)[0]


def scale(metric: str) -> float:
    return metric_info(metric)[2]


def axis_label(key: str) -> str:
    """``links.uplink.bandwidth.mean_mbps`` -> ``Uplink bandwidth mean (Mbit/s)``."""
    parts = key.split(".")
    skip = {"links", "tiers", "workload", "bandwidth", "cost", "payload", "devices", "thermal"}
    leaf_name, unit, _ = _generic(parts[-1])
    leaf_name = leaf_name if leaf_name.isupper() else leaf_name.lower()
    context = [p for p in parts[:-1] if p not in skip]
    if parts[:-1] and parts[-2] == "bandwidth":
        context.append("bandwidth")
    words = " ".join([*context, leaf_name]).strip()
    words = words[:1].upper() + words[1:]
    return f"{words} ({unit})" if unit else words


def short_axis(key: str) -> str:
    """A compact name for captions and file names."""
    return ".".join(key.split(".")[-2:])


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", str(text)).strip("-").lower() or "x"
