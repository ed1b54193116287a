"""docs/reproduction.md is generated from the shipped profiles and stays in step with them."""

from __future__ import annotations

from simulator.config import REPO_ROOT
from simulator.reproduction import markdown, rows


def test_the_shipped_table_matches_a_fresh_run(tmp_path):
    (tmp_path / "sst2-minilm6.npz").symlink_to(REPO_ROOT / "profiles" / "sst2-minilm6.npz")
    fresh = [line for line in markdown(rows(tmp_path)).splitlines() if line.startswith("| sst2-minilm6")]
    assert len(fresh) == 2  # one per cost preset
    doc = (REPO_ROOT / "docs" / "reproduction.md").read_text().splitlines()
    for line in fresh:
        assert line in doc, f"docs/reproduction.md is stale: regenerate it ({line})"
