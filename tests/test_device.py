"""Device catalogue: every class carries its sources; scenario overrides; absolute timing tables."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.config import scenario_from_dict
from simulator.device import builtin_catalogue, resolve_catalogue
from simulator.engine import simulate
from simulator.errors import ConfigError


def test_every_device_class_cites_a_source():
    cat = builtin_catalogue()
    assert {"phone-cpu", "jetson-nano", "jetson-orin", "edge-gpu-server", "cloud-gpu"} <= set(cat)
    for name, spec in cat.items():
        assert len(spec.source) > 20, name
    assert cat["phone-cpu"].radio is not None and cat["phone-cpu"].thermal.enabled


def test_base_inherits_and_overrides():
    cat = resolve_catalogue({"hot-phone": {"base": "phone-cpu", "thermal": {"ambient_c": 40.0}, "speed": 0.2}})
    assert cat["hot-phone"].speed == 0.2
    assert cat["hot-phone"].thermal.ambient_c == 40.0
    assert cat["hot-phone"].thermal.trips == cat["phone-cpu"].thermal.trips
    with pytest.raises(ConfigError, match="did you mean 'phone-cpu'"):
        resolve_catalogue({"x": {"base": "phone-cp"}})


def test_speed_and_timing_table_set_compute_time(synth_profile):
    raw = {
        "profile": str(synth_profile),
        "tiers": {"mobile": {"device": "slow", "layers": [1, 6]}}, "links": {},
        "devices": {"slow": {"base": "profile-host", "speed": 0.5},
                    "table": {"base": "profile-host",
                              "timing": {"seq_lens": [1, 100], "layer_ms": [1.0, 1.0], "head_ms": [0.5, 0.5],
                                         "embed_ms": [0.25, 0.25]}}},
        "workload": {"rate_per_s": 0.1, "requests": 40}, "policies": ["all-mobile"],
    }
    slow = simulate(scenario_from_dict(raw), "all-mobile").requests
    host = simulate(scenario_from_dict(raw, overrides={"tiers.mobile.device": "profile-host"}),
                    "all-mobile").requests
    assert np.allclose(slow["compute_s_mobile"], 2 * host["compute_s_mobile"])
    table = simulate(scenario_from_dict(raw, overrides={"tiers.mobile.device": "table"}), "all-mobile").requests
    assert np.allclose(table["compute_s_mobile"], (6 * 1.0 + 0.5 + 0.25) / 1e3)


def test_sustained_load_throttles_the_phone(synth_profile):
    raw = {
        "profile": str(synth_profile), "timeline": True,
        "tiers": {"mobile": {"device": "phone-cpu", "layers": [1, 6], "ambient_c": 35.0}}, "links": {},
        "workload": {"rate_per_s": 30, "duration_s": 600, "requests": None}, "policies": ["all-mobile"],
    }
    hot = simulate(scenario_from_dict(raw), "all-mobile", record_timeline=True)
    cool = simulate(scenario_from_dict(raw, overrides={"tiers.mobile.throttling": False}), "all-mobile")
    tl = hot.timeline
    assert tl.loc[tl["series"] == "frequency", "value"].min() < 1.0
    late_hot = hot.requests[hot.requests["arrival_s"] > 300]["compute_s_mobile"].mean()
    late_cool = cool.requests[cool.requests["arrival_s"] > 300]["compute_s_mobile"].mean()
    assert late_hot > 1.2 * late_cool
