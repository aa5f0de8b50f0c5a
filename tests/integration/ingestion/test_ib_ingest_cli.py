"""`tradelake ingest --source ib` end to end: fake TWS (the test double) -> validation -> Kafka."""

import json
import os
import subprocess
import sys
import uuid

from doubles.fake_tws import FakeTws
from kafka import KafkaConsumer

from ingestion import wire

T0 = 1_767_623_400  # 2026-01-05 14:30:00 UTC


def test_ingest_ib_publishes_validated_ticks(stack, cfg):
    run = uuid.uuid4().hex[:8]
    ticks = {"AAPL": [(T0, 189.5, 100, "NASDAQ"), (T0 + 1, 0.0, 10, "NASDAQ"), (T0 + 2, 189.6, 5, "ARCA")],
             "MSFT": [(T0, 401.0, 7, "NASDAQ")]}
    with FakeTws(ticks=ticks) as tws:
        env = {**os.environ, "TRADELAKE_IB__ENABLED": "true", "TRADELAKE_IB__PORT": str(tws.port),
               "TRADELAKE_IB__SYMBOLS": "AAPL,MSFT",
               "TRADELAKE_INGEST__TOPICS__TRADES": f"ib.{run}.trades",
               "TRADELAKE_INGEST__TOPICS__QUARANTINE": f"ib.{run}.quarantine"}
        proc = subprocess.run([sys.executable, "-m", "tradelake.cli", "ingest", "--source", "ib",
                               "--max-ticks", "4", "-q"], env=env, capture_output=True, text=True,
                              timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (report["received"], report["accepted"], report["quarantined"]) == (4, 3, 1)
    assert report["by_reason"] == {"non_positive_price": 1} and report["reconciled"]

    consumer = KafkaConsumer(f"ib.{run}.trades", bootstrap_servers=cfg.kafka.bootstrap,
                             auto_offset_reset="earliest", consumer_timeout_ms=8000)
    rows = [r for m in consumer for r in wire.decode(m.value).to_pylist()]
    consumer.close()
    got = sorted((r["symbol"], r["ts"], r["price"], r["size"], r["exchange"]) for r in rows)
    assert got == [("AAPL", T0 * 10**9, 189.5, 100.0, "NASDAQ"),
                   ("AAPL", (T0 + 2) * 10**9, 189.6, 5.0, "ARCA"),
                   ("MSFT", T0 * 10**9, 401.0, 7.0, "NASDAQ")]


def test_ingest_ib_refuses_when_disabled(stack):
    proc = subprocess.run([sys.executable, "-m", "tradelake.cli", "ingest", "--source", "ib", "-q"],
                          env={**os.environ, "TRADELAKE_IB__ENABLED": "false"},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "the IB source is disabled" in proc.stderr
