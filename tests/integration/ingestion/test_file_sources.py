"""Vendor files through validation: into Kafka (ingest --source file) and into the raw zone
(land-files), with rejects quarantined and every line accounted for."""

import json
import os
import subprocess
import sys
import uuid

from kafka import KafkaConsumer

from ingestion import wire
from ingestion.file_landing import land_files
from tradelake.lakefs import lake_fs


def test_land_files_validates_lands_once_and_is_queryable(stack, cfg, tmp_path, thrift_query):
    symbol = f"ZT{uuid.uuid4().hex[:6].upper()}"
    path = tmp_path / f"{symbol}.csv"
    path.write_text(
        "Date,Open,High,Low,Close,Adj Close,Volume\n"
        "2026-01-05,10.0,11.0,9.5,10.5,10.5,1000\n"
        "2026-01-06,10.5,10.8,10.1,10.2,10.2,800\n"
        "2026-01-07,10.2,10.1,9.0,9.5,9.5,900\n"       # high below open
        "2026-01-08,10.0,10.4\n")                       # short row
    result = land_files(cfg, [path])
    assert (result["received"], result["accepted"], result["quarantined"]) == (4, 2, 2)
    assert result["reconciled"] and result["filtered"] == 0
    assert sorted(result["by_reason"]) == ["high_below_open_close", "malformed"]
    rows = thrift_query(f"SELECT dt, open, high, low, close, volume FROM raw.files_bar "
                       f"WHERE symbol = '{symbol}' ORDER BY dt")
    assert rows == [("2026-01-05", 10.0, 11.0, 9.5, 10.5, 1000.0),
                    ("2026-01-06", 10.5, 10.8, 10.1, 10.2, 800.0)]
    again = land_files(cfg, [path])
    assert again["skipped_already_landed"] == [str(path)] and again["received"] == 0
    fs = lake_fs(cfg)
    for written in result["files_written"]:
        fs.delete(written)


def test_ingest_file_source_publishes_accepted_and_quarantines_rejects(stack, cfg, tmp_path):
    run = uuid.uuid4().hex[:8]
    path = tmp_path / "ticks.csv"
    path.write_bytes(
        b"timestamp,symbol,price,size,seq\n"
        b"2026-01-05T14:30:00Z,AAPL,189.50,100,1\n"
        b"2026-01-05T14:30:01Z,AAPL,-1,100,2\n"          # non-positive price
        b"2026-01-05T14:30:02Z,AAPL,189.52,50,3\n"
        b"2026-01-05T14:30:02Z,AAPL,189.52,50,3\n"       # duplicate (symbol, ts, seq)
        b"2026-01-05T14:30:03Z,AAPL,nan,10,4\n"          # not finite
        b"2026-01-05T14:30:04Z,AAPL,\xff\xfe,10,5\n")    # bad UTF-8
    env = {**os.environ, "TRADELAKE_INGEST__TOPICS__TRADES": f"files.{run}.trades",
           "TRADELAKE_INGEST__TOPICS__QUARANTINE": f"files.{run}.quarantine"}
    proc = subprocess.run([sys.executable, "-m", "tradelake.cli", "ingest", "--source", "file",
                           "-q", str(path)], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (report["received"], report["accepted"], report["quarantined"]) == (6, 2, 4)
    assert report["reconciled"]
    assert "received 6 = accepted 2 + quarantined 4 + filtered 0" in proc.stderr

    def consume(topic):
        consumer = KafkaConsumer(topic, bootstrap_servers=cfg.kafka.bootstrap,
                                 auto_offset_reset="earliest", consumer_timeout_ms=8000)
        tables = [wire.decode(m.value) for m in consumer]
        consumer.close()
        return [row for t in tables for row in t.to_pylist()]

    assert [r["seq"] for r in consume(f"files.{run}.trades")] == [1, 3]
    rejects = consume(f"files.{run}.quarantine")
    assert sorted(r["reason"] for r in rejects) == ["bad_encoding", "duplicate", "non_finite",
                                                    "non_positive_price"]
    bad_utf8 = next(r for r in rejects if r["reason"] == "bad_encoding")
    assert bad_utf8["payload"] == b"2026-01-05T14:30:04Z,AAPL,\xff\xfe,10,5"
    assert bad_utf8["line_no"] == 7
