"""docs/policies.md's generated tables match what the shipped files give (so they cannot go stale)."""

from simulator import doctables


def test_dimee_table_task_cells_match_the_shipped_profiles():
    rows = [r for r in doctables.current("dimee-per-task").splitlines() if r.startswith("| ") and "(" in r]
    assert [r.split(" | ")[0][2:] for r in rows[1:]] == [doctables.task_cell(t) for t in doctables.TASKS]


def test_dimee_table_row_matches_a_fresh_run():
    # the smallest task, run end to end as `run_sim.py doc-tables` does (all six take about a minute)
    row = doctables._dimee_row("rte")
    assert row in doctables.current("dimee-per-task").splitlines()
