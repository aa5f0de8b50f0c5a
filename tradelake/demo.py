"""``tradelake demo`` (``make demo``): the whole system end to end on the local stack, as a user
would run it, then one report whose counts reconcile stage by stage.

Stages (each a ``tradelake`` command in a subprocess; its progress shows on stderr):

 1. stack up, hive apply, ods migrate
 2. a simulated market of 10 symbols, 5 days -> validation -> Kafka (`ingest`)
 3. Kafka -> the raw zone on HDFS, exactly once (`land`)
 4. batch layer: ETL -> bars -> features, three spark-submits (`batch`)
 5. model training on those features, walk-forward (`train`)
 6. live day: the simulated exchange (FIX acceptor) and the router (`route`, the trained model's
    strategy) run while a 6th day plays at 1000x real time (`ingest --pace`)
 7. the speed layer over that day into the ODS (`speed --available-now`)
 8. the order journal and the day's ticks into the lake (`land`), then the report: counts per
    stage reconciled, tick->order latency, P&L and the equity curve, an analyst's query.

Exit 0 only if every stage succeeded and every reconciliation holds. The stack keeps running.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

from tradelake.config import PROJECT_ROOT, Config

HISTORY = ("2026-01-05", "2026-01-09")
LIVE_DAY = "2026-01-12"
TRADES_PER_DAY = 5000
PACE = 1000.0


class DemoError(RuntimeError):
    pass


class Demo:
    def __init__(self, cfg: Config, profile: str | None, strategy: str) -> None:
        self.cfg, self.strategy = cfg, strategy
        self.base = [sys.executable, "-m", "tradelake.cli"] + (["--profile", profile] if profile else [])
        self.results: dict[str, Any] = {}
        self.timings: list[tuple[str, float]] = []
        self.checks: list[tuple[str, bool, str]] = []
        self.started = time.monotonic()

    # -- running commands ---------------------------------------------------------------------------
    def say(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def run(self, stage: str, *args: str, json_out: bool = True) -> Any:
        self.say(f"\n== [{time.monotonic() - self.started:5.0f}s] {stage}: tradelake {' '.join(args)}")
        t = time.monotonic()
        proc = subprocess.run([*self.base, *args], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
        self.timings.append((stage, time.monotonic() - t))
        if proc.returncode != 0:
            raise DemoError(
                f"{stage}: `tradelake {' '.join(args)}` exited {proc.returncode}\n{proc.stdout[-2000:]}"
            )
        if not json_out:
            print(proc.stdout, end="", flush=True)
            return proc.stdout
        lines = [line for line in proc.stdout.strip().splitlines() if line.startswith(("{", "["))]
        return json.loads(lines[-1]) if lines else None

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        log = self.cfg.var_dir / "demo"
        log.mkdir(parents=True, exist_ok=True)
        err = (log / f"{name}.log").open("w")
        self.say(
            f"   starting {name} in the background: tradelake {' '.join(args)} (log: var/demo/{name}.log)"
        )
        return subprocess.Popen(
            [*self.base, *args],
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env={**os.environ, **(env or {})},
        )

    def check(self, what: str, ok: bool, detail: str) -> None:
        self.checks.append((what, ok, detail))

    def sql(self, query: str) -> list[dict[str, Any]]:
        out = self.run("query", "sql", query, "--format", "json", json_out=False)
        return [json.loads(line) for line in out.splitlines() if line.startswith("{")]

    # -- the stages ---------------------------------------------------------------------------------
    def stack(self) -> None:
        self.run("stack", "stack", "up", json_out=False)
        self.run("warehouse DDL", "hive", "apply", json_out=False)
        self.run("ODS schema", "ods", "migrate", json_out=False)

    def history(self) -> None:
        self.results["ingest_history"] = self.run(
            "ingest history",
            "ingest",
            "--source",
            "simulator",
            "--days",
            "5",
            "--start-date",
            HISTORY[0],
            "--trades-per-day",
            str(TRADES_PER_DAY),
        )
        self.results["land_history"] = self.run("land history", "land", "--idle-exit", "5", "-q")
        self.results["batch"] = self.run("batch layer", "batch", "--from", HISTORY[0], "--to", HISTORY[1])
        self.results["train"] = self.run(
            "train", "train", "--from", HISTORY[0], "--to", HISTORY[1], "--models", "forecast", "--folds", "2"
        )

    def live_day(self) -> None:
        # The speed layer runs through the live day (a new checkpoint starts at the topics' end, so
        # it streams this day only); the router and the exchange trade it as it plays at PACE x.
        speed = self.start("speed", "speed", env={"TRADELAKE_SPEED__STARTING_OFFSETS": "latest"})
        self.wait_for_log("speed", "speed: started", timeout_s=180, proc=speed)
        exchange = self.start("exchange", "exchange")
        try:
            self.wait_for_log("exchange", "listening on port", timeout_s=60, proc=exchange)
            route = self.start("route", "route", "--strategy", self.strategy, "--idle-exit", "10", "--json")
            self.wait_for_log("route", "logged on", timeout_s=60, proc=route)
            time.sleep(2)  # the route's consumer positions itself at the end of the topic
            self.results["ingest_live"] = self.run(
                "live day (paced)",
                "ingest",
                "--source",
                "simulator",
                "--days",
                "1",
                "--start-date",
                LIVE_DAY,
                "--trades-per-day",
                str(TRADES_PER_DAY),
                "--pace",
                str(PACE),
                "-q",
            )
            out, _ = route.communicate(timeout=300)
            if route.returncode != 0:
                raise DemoError(f"route exited {route.returncode} (see var/demo/route.log)")
            self.results["route"] = json.loads(out.strip().splitlines()[-1])
        finally:
            self.results["exchange"] = self.stop("exchange", exchange)
            self.say(
                f"   the speed layer catches up ({self.cfg.speed.trigger_ms} ms micro-batches), then stops"
            )
            time.sleep(15)
            self.results["speed"] = self.stop("speed", speed, timeout_s=180)
        self.results["land_live"] = self.run(
            "land live day + order journal", "land", "--idle-exit", "5", "-q"
        )

    def wait_for_log(self, name: str, text: str, timeout_s: float, proc: subprocess.Popen) -> None:
        path = self.cfg.var_dir / "demo" / f"{name}.log"
        deadline = time.monotonic() + timeout_s
        while text not in path.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise DemoError(f"{name} did not get to '{text}' (see {path})")
            time.sleep(0.5)

    def stop(self, name: str, proc: subprocess.Popen, timeout_s: float = 60) -> dict[str, Any]:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=timeout_s)
        lines = [line for line in (out or "").splitlines() if line.startswith("{")]
        # 130: the speed layer's "stopped by a signal between micro-batches", a clean stop here
        if proc.returncode not in (0, 130) or not lines:
            raise DemoError(f"{name} did not stop cleanly (exit {proc.returncode}; see var/demo/{name}.log)")
        return json.loads(lines[-1])

    # -- the report ---------------------------------------------------------------------------------
    def reconcile(self) -> None:
        r, wh = self.results, self.cfg.warehouse
        for name in ("ingest_history", "ingest_live"):
            ing = r[name]
            self.check(
                f"{name}: received = accepted + quarantined + filtered",
                ing["reconciled"],
                f"{ing['received']:,} = {ing['accepted']:,} + {ing['quarantined']:,} + {ing['filtered']:,}",
            )
        land, ing = r["land_history"], r["ingest_history"]
        self.check(
            "land (history): rows landed = ticks published (accepted + quarantine records)",
            land["rows"] == ing["accepted"] + ing["quarantined"] and land["undecodable_messages"] == 0,
            f"{land['rows']:,} landed / {ing['accepted'] + ing['quarantined']:,} published",
        )
        etl = r["batch"]["jobs"]["etl_ticks"]
        raw = self.sql(
            f"SELECT count(*) AS n FROM {wh.raw_db}.md_trades "
            f"WHERE dt BETWEEN DATE'{HISTORY[0]}' AND DATE'{HISTORY[1]}'"
        )[0]["n"]
        self.check(
            "batch: curated.ticks written + duplicates removed = raw trades in the window (Hive)",
            etl["rows_written"] + etl["duplicates_removed"] == raw,
            f"{etl['rows_written']:,} + {etl['duplicates_removed']:,} / {raw:,}",
        )
        route, exchange = r["route"], r["exchange"]
        run = route["run"]
        shipped = route["shipped"]["kafka"]["records"]
        land, live = r["land_live"], r["ingest_live"]
        self.check(
            "land (live): rows = live ticks published + OMS journal records shipped",
            land["rows"] == live["accepted"] + live["quarantined"] + shipped,
            f"{land['rows']:,} / {live['accepted'] + live['quarantined']:,} + {shipped:,}",
        )
        prefix = run["prefix"].replace("'", "")
        hive_orders = {
            row["status"]: row["n"]
            for row in self.sql(
                f"SELECT status, count(*) AS n FROM (SELECT cl_ord_id, max_by(status, ts) AS status "
                f"FROM {wh.trading_db}.orders WHERE cl_ord_id LIKE '{prefix}%' GROUP BY cl_ord_id) "
                "GROUP BY status"
            )
        }
        self.check(
            "orders: the router's final states = trading.orders (Hive, this run)",
            hive_orders == run["by_status"],
            f"router {run['by_status']} / Hive {hive_orders}",
        )
        hive_fills = self.sql(
            f"SELECT count(*) AS n FROM {wh.trading_db}.executions "
            f"WHERE exec_type = 'TRADE' AND cl_ord_id LIKE '{prefix}%'"
        )[0]["n"]
        ours = route["reports"].get("TRADE", 0)
        self.check(
            "fills: the exchange's = the router's = trading.executions (Hive, this run)",
            exchange.get("fills") == ours == hive_fills,
            f"exchange {exchange.get('fills')} / router {ours} / Hive {hive_fills}",
        )
        self.check(
            "router: no anomalous report, nothing left open",
            route["anomalies"] == 0
            and all(s in ("FILLED", "REJECTED", "CANCELED") for s in run["by_status"]),
            f"anomalies {route['anomalies']}, states {sorted(run['by_status'])}",
        )
        trades = self.sql(
            f"SELECT count(*) AS n FROM (SELECT DISTINCT ts, symbol, seq FROM {wh.raw_db}.md_trades "
            f"WHERE dt = DATE'{LIVE_DAY}')"
        )[0]["n"]
        ods = self.ods_trades(LIVE_DAY)
        self.check(
            "speed layer: the live day's trades in the ODS = distinct trades landed in the raw zone",
            ods == trades and trades > 0,
            f"ODS {ods:,} / raw {trades:,}",
        )
        speed = r["speed"]
        self.check(
            "speed layer: received = accepted + quarantined + filtered",
            speed["reconciled"],
            f"{speed['received']:,} = {speed['accepted']:,} + {speed['quarantined']:,} + "
            f"{speed['filtered']:,}",
        )

    def ods_trades(self, day: str) -> int:
        from datetime import UTC, datetime

        import psycopg2

        start = int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()) * 1_000_000_000
        with psycopg2.connect(self.cfg.postgres.dsn()) as conn, conn.cursor() as cur:
            cur.execute(
                f"SELECT count(*) FROM {self.cfg.ods.schema}.trades WHERE ts >= %s AND ts < %s",
                (start, start + 86_400_000_000_000),
            )
            return cur.fetchone()[0]

    def report(self) -> int:
        self.reconcile()
        route = self.results["route"]
        pnl, latency = route["pnl"], route.get("tick_to_order_ms")
        vwap = self.sql(
            f"SELECT symbol, dt, round(vwap, 4) AS vwap, volume FROM "
            f"{self.cfg.warehouse.curated_db}.daily_vwap WHERE dt = DATE'{HISTORY[1]}' "
            f"ORDER BY symbol LIMIT 5"
        )
        print("\n" + "=" * 100)
        print(f"tradelake demo: done in {time.monotonic() - self.started:.0f} s")
        for stage, seconds in self.timings:
            print(f"  {stage:<34} {seconds:7.1f} s")
        print("\nreconciliation:")
        for what, ok, detail in self.checks:
            print(f"  [{'ok' if ok else 'FAILED'}] {what}: {detail}")
        run = route["run"]
        print(
            f"\norders routed this run: {run['orders']:,} {run['by_status']}; fills "
            f"{route['reports'].get('TRADE', 0):,}; risk-rejected are REJECTED with venue RISK"
        )
        if latency:
            print(
                f"tick -> order: p50 {latency['p50']:.2f} ms, p99 {latency['p99']:.2f} ms over "
                f"{latency['n']} "
                "orders (Kafka timestamp of the bar's closing tick -> order handed to FIX)"
            )
        print(
            f"P&L (all runs of this account): realized {pnl['realized']:,.2f}, unrealized "
            f"{pnl['unrealized']:,.2f}, commission {pnl['commission']:,.2f}, total {pnl['total']:,.2f}"
        )
        print(f"equity curve (this run): {route.get('chart')}")
        print(f"\nan analyst's query through the Thrift server ({self.cfg.warehouse.curated_db}.daily_vwap):")
        for row in vwap:
            print(f"  {row}")
        print(
            "\nThe stack is still running. Query it:  .venv/bin/tradelake sql "
            '"SELECT * FROM trading.orders LIMIT 10"'
        )
        print(
            "                                       beeline -u 'jdbc:hive2://127.0.0.1:10010/default;auth=noSasl'"
        )
        print(
            "Stop it:                               .venv/bin/tradelake stack down (--purge deletes the data)"
        )
        return 0 if all(ok for _, ok, _ in self.checks) else 1


def run_demo(cfg: Config, profile: str | None, strategy: str) -> int:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    demo = Demo(cfg, profile, strategy)
    try:
        demo.stack()
        # The demo's Spark jobs are tiny (5 days of 10 symbols): their drivers' CPU goes mostly to
        # JVM start-up and JIT compilation, so the client JIT alone (C1) finishes them sooner on 2
        # cores. Set after the stack is up: only the jobs this demo starts get it, never the
        # stack's own JVMs (the Thrift server is started through spark-submit too).
        opts = os.environ.get("SPARK_SUBMIT_OPTS", "")
        os.environ["SPARK_SUBMIT_OPTS"] = f"{opts} -XX:TieredStopAtLevel=1".strip()
        demo.history()
        demo.live_day()
        return demo.report()
    except DemoError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
