"""Parameter sweeps distributed with Spark: one backtest per task.

``parse_grid(["window=10,20", "entry_z=1.5,2"])`` is the cartesian product of the values, in the
order given (deterministic); keys are those of ``conf/*.yaml`` (``field`` of the strategy's own
section, or ``section.field``). ``run_sweep`` broadcasts the bars once (an Arrow IPC buffer),
parallelises the grid with one partition per combination, and each task rebuilds the bars (once
per Python worker: workers are reused, and the ``Bar`` list is cached by broadcast id), builds the
strategy with its overrides and runs the same pure-Python event-driven backtest as ``tradelake
backtest`` (without the trade log: a sweep keeps only each run's metrics). The driver gets one
summary per combination, in grid order.

On a cluster the same code runs with the profile's master (``spark.master: yarn``): the tasks
spread over executors; each executor's Python needs the project (``make dist`` zip).
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pyarrow as pa

from tradelake.config import Config

_WORKER_BARS: dict[str, list] = {}  # sweep key -> bars, in a (reused) Python worker


def parse_grid(specs: Sequence[str]) -> list[dict[str, str]]:
    """``["a=1,2", "b=x"]`` -> ``[{"a": "1", "b": "x"}, {"a": "2", "b": "x"}]``."""
    axes: list[tuple[str, list[str]]] = []
    for spec in specs:
        key, sep, values = spec.partition("=")
        items = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key.strip() or not items:
            raise ValueError(f"--sweep {spec!r}: expected name=value1,value2,...")
        if any(k == key.strip() for k, _ in axes):
            raise ValueError(f"--sweep names {key.strip()!r} twice")
        axes.append((key.strip(), items))
    if not axes:
        return [{}]
    return [dict(zip([k for k, _ in axes], combo, strict=True))
            for combo in itertools.product(*[v for _, v in axes])]


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _bars(broadcast, key: str) -> list:
    """The broadcast bars as ``Bar`` objects, built once per worker process and sweep (``key``)."""
    from intelligence.sources import bars_from_arrow

    bars = _WORKER_BARS.get(key)
    if bars is None:
        _WORKER_BARS.clear()  # one sweep's bars at a time
        bars = _WORKER_BARS[key] = bars_from_arrow(pa.ipc.open_stream(broadcast.value).read_all())
    return bars


def run_one(strategy: str, cfg: Config, params: Mapping[str, Any], bars: Sequence,
            predictor: Callable | None = None) -> dict:
    """One backtest of the sweep (also usable without Spark): its summary and parameters."""
    from intelligence.backtest import Backtest
    from intelligence.strategies import build_strategy, with_overrides

    icfg = with_overrides(cfg.intelligence, strategy, params)
    strat = build_strategy(strategy, icfg, predictor=predictor)
    result = Backtest.from_config(strat, icfg.backtest, record=False).run(bars)
    return {"params": dict(params), **result.summary()}


def _task(broadcast, key: str, strategy: str, cfg: Config, model: tuple[str, int] | None):
    def run(item: tuple[int, dict]) -> tuple[int, dict]:
        index, params = item
        predictor = None
        if model is not None:
            from intelligence.models import load_predictor

            predictor = lambda: load_predictor(cfg, model[0], model[1] or None)  # noqa: E731
        return index, run_one(strategy, cfg, params, _bars(broadcast, key), predictor)
    return run


def run_sweep(spark, cfg: Config, strategy: str, bars: pa.Table, grid: Sequence[Mapping[str, str]],
              progress: Callable[[int, int], None] | None = None) -> list[dict]:
    """Every combination of ``grid`` backtested over ``bars`` on Spark; summaries in grid order.
    ``progress(done, total)`` is called about once a second while the tasks run."""
    from intelligence.strategies import with_overrides

    for params in grid:  # fail in the driver, before any task starts
        with_overrides(cfg.intelligence, strategy, params)
    uses_model = strategy == "ml_signal" or (strategy == "selector" and "ml_signal" in (
        cfg.intelligence.selector.trend_strategy, cfg.intelligence.selector.range_strategy))
    ml = cfg.intelligence.ml_signal
    model = (ml.model, ml.model_version) if uses_model else None
    sc = spark.sparkContext
    broadcast = sc.broadcast(_ipc(bars))
    rdd = sc.parallelize(list(enumerate(grid)), numSlices=max(1, len(grid)))
    group = f"tradelake-sweep-{uuid.uuid4().hex[:8]}"
    out: list[tuple[int, dict]] = []
    failure: list[BaseException] = []

    def collect() -> None:
        sc.setJobGroup(group, f"backtest sweep of {strategy}: {len(grid)} runs")
        try:
            task = _task(broadcast, group, strategy, cfg, model)
            out.extend(rdd.map(task).collect())
        except BaseException as exc:  # re-raised in the caller's thread
            failure.append(exc)

    worker = threading.Thread(target=collect, name=group, daemon=True)
    worker.start()
    tracker = sc.statusTracker()
    while worker.is_alive():
        worker.join(timeout=1.0)
        if progress:
            done = 0
            for job in tracker.getJobIdsForGroup(group):
                info = tracker.getJobInfo(job)
                for stage in (info.stageIds if info else []):
                    stage_info = tracker.getStageInfo(stage)
                    done += stage_info.numCompletedTasks if stage_info else 0
            progress(min(done, len(grid)), len(grid))
    broadcast.unpersist()
    if failure:
        raise failure[0]
    if progress:
        progress(len(grid), len(grid))
    return [summary for _, summary in sorted(out, key=lambda item: item[0])]


def sweep_id(strategy: str) -> str:
    return f"sweep-{strategy}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:6]}"
