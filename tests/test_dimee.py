"""DIMEE with pools by clustering (the paper's easy / medium / hard pools from representations)."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.config import scenario_from_dict
from simulator.engine import Simulation
from simulator.errors import ConfigError
from simulator.policies.dimee import kmeans
from simulator.profile import Split, Timing, save_profile

L = 6
CENTRES = {"easy": (10.0, 0.0), "medium": (0.0, 10.0), "hard": (-10.0, -10.0)}
FIRST_RIGHT = {"easy": 1, "medium": 3, "hard": 5}  # first layer whose exit is right


def clustered_split(n_per: int, rng) -> tuple[Split, np.ndarray]:
    logits, labels, proj, kinds = [], [], [], []
    for i, kind in enumerate(CENTRES):
        y = rng.integers(0, 2, n_per)
        lg = np.zeros((n_per, L, 2))
        for k in range(L):
            right = k + 1 >= FIRST_RIGHT[kind]
            cls = y if right else 1 - y
            lg[np.arange(n_per), k, cls] = 3.0 + rng.uniform(0, 1, n_per)
        p = np.zeros((n_per, L, 4))
        p[:, :, :2] = np.asarray(CENTRES[kind]) + rng.normal(0, 0.5, (n_per, L, 2))
        logits.append(lg)
        labels.append(y)
        proj.append(p)
        kinds += [i] * n_per
    split = Split(np.concatenate(logits), np.concatenate(labels), np.full(3 * n_per, 16),
                  np.arange(3 * n_per), np.concatenate(proj))
    return split, np.asarray(kinds)


@pytest.fixture(scope="module")
def clustered(tmp_path_factory):
    rng = np.random.default_rng(0)
    ev, kinds = clustered_split(60, rng)
    cal, _ = clustered_split(100, rng)
    seq = np.array([8, 16, 64])
    timing = Timing(seq, np.array([1]), np.full((1, 3, L), 1.0), np.full((1, 3), 0.05), np.full((1, 3), 0.1))
    meta = {"task": "SYNTH", "model": "synthetic", "num_layers": L, "hidden_size": 64, "num_classes": 2,
            "label_names": ["0", "1"], "machine": {}, "manifest": {}}
    path = save_profile(tmp_path_factory.mktemp("p") / "clustered.npz", meta, {"eval": ev, "calib": cal}, timing)
    return path, kinds


def scenario(profile, direct=False, **over):
    links = {"uplink": {"from": "mobile", "to": "edge", "bandwidth": 20, "rtt_ms": 20},
             "backhaul": {"from": "edge", "to": "cloud", "bandwidth": 200, "rtt_ms": 40}}
    if direct:
        links["direct"] = {"from": "mobile", "to": "cloud", "bandwidth": 10, "rtt_ms": 60}
    d = {"name": "pools", "profile": str(profile), "seed": 2,
         "tiers": {"mobile": {"device": "phone-cpu", "layers": [1, 2]},
                   "edge": {"device": "jetson-orin", "layers": [3, 4]},
                   "cloud": {"device": "cloud-gpu", "layers": [5, 6]}},
         "links": links, "workload": {"rate_per_s": 2, "requests": 180, "sample_order": "sequential"},
         "policies": [{"name": "dimee", "pools": "cluster", "clusters": 3}]}
    d.update(over)
    return scenario_from_dict(d)


def test_kmeans_recovers_separated_clusters():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(c, 0.3, (50, 2)) for c in ((0, 0), (5, 5), (-5, 5))])
    _, labels = kmeans(x, 3, np.random.default_rng(2))
    for block in range(3):
        assert len(set(labels[block * 50:(block + 1) * 50])) == 1
    assert len(set(labels)) == 3


@pytest.mark.parametrize("direct", [False, True])
def test_cluster_pools_send_easy_medium_hard_to_mobile_edge_cloud(clustered, direct):
    path, kinds = clustered
    sim = Simulation(scenario(path, direct), {"name": "dimee", "pools": "cluster", "clusters": 3})
    choice = sim.policy.decisions()
    assert sorted(choice["cluster_tier"]) == ["cloud", "edge", "mobile"]
    df = sim.run().requests
    want = np.array(["mobile", "edge", "cloud"])[kinds[df["sample"].to_numpy()]]
    assert (df["exit_tier"].to_numpy() == want).all()  # every eval sample in its pool, exactly
    assert df["correct"].all()
    hard = df[df["exit_tier"] == "cloud"]
    assert (hard["plan"] == "mobile 1-2, cloud 3-6").all()  # straight to the cloud after the mobile exit
    assert set(hard["route"]) == ({"direct"} if direct else {"uplink>backhaul"})
    assert (df.loc[df["exit_tier"] == "edge", "exit_layer"] == 4).all()


def test_cluster_pools_need_representations(synth_profile):
    with pytest.raises(ConfigError, match="needs a profile that stores representations"):
        Simulation(scenario(synth_profile), {"name": "dimee", "pools": "cluster"})
