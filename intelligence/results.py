"""Backtest results into the warehouse (``<trading_db>.backtest_runs|trades|equity``) and a PNG.

The tables are defined once, in hive/ddl/40_trading.hql. A run's rows are written as Parquet
files into the tables' folders through the lake filesystem and their partitions added through
the Thrift server (as the lake lander does): no Spark session needed, so ``tradelake backtest``
stays quick. A single run writes its trade log and equity curve as partition ``run_id=<id>`` and
one ``backtest_runs`` row into ``dt=<UTC date>`` (file ``<run_id>.parquet``); a sweep writes one
``backtest_runs`` row per combination (file ``<sweep_id>.parquet``). Run ids are unique, so
nothing is ever overwritten.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from hive.warehouse import statements
from intelligence.backtest import BacktestResult
from intelligence.metrics import METRIC_NAMES, drawdown_series
from intelligence.sources import table_location
from tradelake.config import Config
from tradelake.lakefs import LakeFS, lake_fs

RUNS, TRADES, EQUITY = "backtest_runs", "backtest_trades", "backtest_equity"

RUNS_SCHEMA = pa.schema([
    ("ts", pa.int64()), ("run_id", pa.string()), ("sweep_id", pa.string()), ("strategy", pa.string()),
    ("params", pa.string()), ("symbols", pa.string()), ("interval", pa.string()),
    ("date_from", pa.date32()), ("date_to", pa.date32()), ("bars", pa.int64()), ("fills", pa.int64()),
    ("round_trips", pa.int64()), ("initial_cash", pa.float64()), ("final_equity", pa.float64()),
    ("commissions", pa.float64()), *[(m, pa.float64()) for m in METRIC_NAMES], ("seconds", pa.float64()),
])
TRADES_SCHEMA = pa.schema([
    ("ts", pa.int64()), ("symbol", pa.string()), ("exec_id", pa.string()), ("cl_ord_id", pa.string()),
    ("strategy_id", pa.string()), ("side", pa.string()), ("last_qty", pa.float64()),
    ("last_price", pa.float64()), ("commission", pa.float64()), ("position", pa.float64()),
    ("cash", pa.float64()), ("realized_pnl", pa.float64()),
])
EQUITY_SCHEMA = pa.schema([
    ("ts", pa.int64()), ("equity", pa.float64()), ("cash", pa.float64()), ("gross_exposure", pa.float64()),
    ("net_exposure", pa.float64()), ("drawdown", pa.float64()),
])


def new_run_id(strategy: str) -> str:
    """``<strategy>-<UTC yyyymmddThhmmss>-<6 hex>``: sortable by time, unique, safe as a partition value."""
    return f"{strategy}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def run_row(result: BacktestResult, *, run_id: str, params: Mapping, symbols: Sequence[str],
            interval: str, date_from: date, date_to: date, sweep_id: str | None = None,
            finished_ns: int | None = None) -> dict:
    """A ``backtest_runs`` row of a result."""
    return {"ts": finished_ns or time.time_ns(), "run_id": run_id, "sweep_id": sweep_id,
            "strategy": result.strategy, "params": json.dumps(params, sort_keys=True, default=str),
            "symbols": ",".join(symbols), "interval": interval, "date_from": date_from, "date_to": date_to,
            "bars": result.bars, "fills": result.fill_count, "round_trips": result.round_trips,
            "initial_cash": result.initial_cash, "final_equity": result.final_equity,
            "commissions": result.commissions, **{m: result.metrics.get(m) for m in METRIC_NAMES},
            "seconds": result.seconds}


def trades_table(result: BacktestResult) -> pa.Table:
    rows = result.fills
    return pa.table({
        "ts": [r.fill.ts for r in rows], "symbol": [r.fill.symbol for r in rows],
        "exec_id": [r.fill.exec_id for r in rows], "cl_ord_id": [r.fill.cl_ord_id for r in rows],
        "strategy_id": [r.fill.strategy_id for r in rows], "side": [r.fill.side for r in rows],
        "last_qty": [r.fill.last_qty for r in rows], "last_price": [r.fill.last_price for r in rows],
        "commission": [r.fill.commission for r in rows], "position": [r.position for r in rows],
        "cash": [r.cash for r in rows], "realized_pnl": [r.realized_pnl for r in rows],
    }, schema=TRADES_SCHEMA)


def equity_table(result: BacktestResult) -> pa.Table:
    equity = np.frombuffer(result.equity, dtype="float64") if result.equity else np.zeros(0)
    cash = np.frombuffer(result.cash, dtype="float64") if result.cash else np.zeros(0)
    return pa.table({
        "ts": np.frombuffer(result.ts, dtype="int64") if result.ts else np.zeros(0, "int64"),
        "equity": equity, "cash": cash,
        "gross_exposure": np.frombuffer(result.gross, dtype="float64") if result.gross else np.zeros(0),
        "net_exposure": equity - cash, "drawdown": drawdown_series(equity, result.initial_cash),
    }, schema=EQUITY_SCHEMA)


def _parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="snappy")
    return sink.getvalue()


class ResultWriter:
    """Writes result tables into the warehouse of ``cfg`` (a scratch one in tests)."""

    def __init__(self, cfg: Config, fs: LakeFS | None = None) -> None:
        self.cfg = cfg
        self.db = cfg.warehouse.trading_db
        self.fs = fs or lake_fs(cfg)
        self._ddl = {s.name: s.sql for s in statements(cfg) if s.kind in ("DATABASE", "TABLE")}

    def table(self, name: str) -> str:
        return f"{self.db}.{name}"

    def _execute(self, sqls: Iterable[str]) -> None:
        from tradelake.hive_client import connect_hive

        conn = connect_hive(self.cfg.hive)
        with contextlib.closing(conn), contextlib.closing(conn.cursor()) as cur:
            for sql in sqls:
                cur.execute(sql)

    def _write(self, name: str, partition: str, file: str, table: pa.Table) -> str:
        folder = f"{table_location(self.cfg, self.table(name))}/{partition}"
        self.fs.write_bytes(f"{folder}/{file}", _parquet(table))
        return folder

    def _register(self, partitions: Mapping[str, str]) -> None:
        """Create the database and tables if missing, add the partitions, refresh Spark's cache."""
        sqls = [self._ddl[self.db], *(self._ddl[self.table(t)] for t in partitions)]
        for name, value in partitions.items():
            column = "dt" if name == RUNS else "run_id"
            sqls.append(f"ALTER TABLE {self.table(name)} ADD IF NOT EXISTS PARTITION ({column}='{value}')")
            sqls.append(f"REFRESH TABLE {self.table(name)}")
        self._execute(sqls)

    def write_run(self, row: Mapping, result: BacktestResult | None = None) -> dict[str, str]:
        """One run: its ``backtest_runs`` row and, given ``result``, its trades and equity curve.
        Returns table -> partition folder written."""
        run_id = row["run_id"]
        _check_id(run_id)
        dt = datetime.fromtimestamp(row["ts"] / 1e9, UTC).date().isoformat()
        written = {self.table(RUNS): self._write(RUNS, f"dt={dt}", f"{run_id}.parquet",
                                                 pa.Table.from_pylist([dict(row)], schema=RUNS_SCHEMA))}
        partitions = {RUNS: dt}
        if result is not None:
            written[self.table(TRADES)] = self._write(TRADES, f"run_id={run_id}", "part-00000.parquet",
                                                      trades_table(result))
            written[self.table(EQUITY)] = self._write(EQUITY, f"run_id={run_id}", "part-00000.parquet",
                                                      equity_table(result))
            partitions.update({TRADES: run_id, EQUITY: run_id})
        self._register(partitions)
        return written

    def write_sweep(self, sweep_id: str, rows: Sequence[Mapping]) -> str:
        """A sweep's ``backtest_runs`` rows, one file ``<sweep_id>.parquet``."""
        _check_id(sweep_id)
        dt = datetime.fromtimestamp(rows[0]["ts"] / 1e9, UTC).date().isoformat()
        folder = self._write(RUNS, f"dt={dt}", f"{sweep_id}.parquet",
                             pa.Table.from_pylist([dict(r) for r in rows], schema=RUNS_SCHEMA))
        self._register({RUNS: dt})
        return folder


def _check_id(run_id: str) -> None:
    if not run_id or not all(c.isalnum() or c in "-_." for c in run_id):
        raise ValueError(f"run id {run_id!r}: use letters, digits, '-', '_' and '.' only")


def save_chart(result: BacktestResult, path: Path, title: str) -> Path:
    """Equity curve and drawdown as a PNG (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ts = np.frombuffer(result.ts, dtype="int64") if result.ts else np.zeros(0, "int64")
    equity = np.frombuffer(result.equity, dtype="float64") if result.equity else np.zeros(0)
    step = max(1, len(ts) // 5000)  # a year of 1m samples would only slow the drawing down
    when = (ts[::step].astype("datetime64[ns]"))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 1]})
    top.plot(when, equity[::step], lw=1.0, color="tab:blue")
    top.axhline(result.initial_cash, color="grey", lw=0.6, ls="--")
    top.set_ylabel("equity")
    top.set_title(title, fontsize=10)
    bottom.fill_between(when, -drawdown_series(equity, result.initial_cash)[::step], 0, color="tab:red", lw=0)
    bottom.set_ylabel("drawdown")
    bottom.set_xlabel("UTC")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
