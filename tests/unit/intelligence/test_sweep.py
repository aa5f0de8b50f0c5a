"""intelligence/sweep.py: the grid, and a sweep on a local Spark session giving exactly the numbers
of the same backtests run one by one in this process."""

from __future__ import annotations

import pytest

from intelligence.sources import bars_from_arrow
from intelligence.sweep import parse_grid, run_one, run_sweep
from intelligence.synthetic import synthetic_bars
from tradelake.config import load_config


def test_parse_grid_is_the_ordered_product():
    assert parse_grid(["window=10,20", "entry_z=1.5,2"]) == [
        {"window": "10", "entry_z": "1.5"}, {"window": "10", "entry_z": "2"},
        {"window": "20", "entry_z": "1.5"}, {"window": "20", "entry_z": "2"}]
    assert parse_grid([]) == [{}]
    for bad in (["window"], ["=1"], ["window="], ["a=1", "a=2"]):
        with pytest.raises(ValueError):
            parse_grid(bad)


def test_a_spark_sweep_equals_the_local_runs(local_spark):
    cfg = load_config("local")
    table = synthetic_bars(["AAA", "BBB"], 2, seed=5, bars_per_day=200)
    grid = parse_grid(["window=10,30", "entry_z=1.5,2.5"])
    seen = []
    summaries = run_sweep(local_spark, cfg, "mean_reversion", table, grid,
                          lambda done, total: seen.append(total))
    bars = bars_from_arrow(table)
    local = [run_one("mean_reversion", cfg, params, bars) for params in grid]
    strip = [{k: v for k, v in s.items() if k != "seconds"} for s in summaries]
    assert strip == [{k: v for k, v in s.items() if k != "seconds"} for s in local]
    assert [s["params"] for s in summaries] == grid
    assert len({s["final_equity"] for s in summaries}) == 4  # the parameters did change something
    assert seen and seen[-1] == 4
    with pytest.raises(ValueError, match="unknown parameter"):
        run_sweep(local_spark, cfg, "mean_reversion", table, [{"nope": "1"}])
