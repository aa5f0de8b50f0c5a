"""``tradelake smoke``: spark-submit the smoke job, then read its table as an analyst would.

The expected figures are computed here from the job's arguments alone (row count; sum of the
sequence 0..n-1), not from the job's output, so a table that is missing, stale or partial fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from typing import Any

from tradelake.config import PROJECT_ROOT, Config
from tradelake.spark import spark_env, spark_home, write_spark_defaults
from tradelake.stack.hive import HiveThriftServer


def run_smoke(cfg: Config, table: str = "default.tradelake_smoke", rows: int = 1000) -> dict[str, Any]:
    conf_dir = write_spark_defaults(cfg)
    argv = [str(spark_home() / "bin" / "spark-submit"), str(PROJECT_ROOT / "spark_jobs" / "smoke.py"),
            "--table", table, "--rows", str(rows)]
    started = time.monotonic()
    env = {**os.environ, **spark_env(), "SPARK_CONF_DIR": str(conf_dir)}
    proc = subprocess.run(argv, capture_output=True, text=True, env=env)
    submit_seconds = round(time.monotonic() - started, 1)
    job = next((json.loads(line.split(" ", 1)[1]) for line in proc.stdout.splitlines()
                if line.startswith("SMOKE_RESULT ")), None)
    if proc.returncode != 0 or job is None:
        return {"ok": False, "step": "spark-submit", "exit_code": proc.returncode,
                "command": " ".join(argv), "stdout_tail": proc.stdout[-3000:],
                "stderr_errors": [ln for ln in proc.stderr.splitlines()
                                  if "Exception" in ln or "ERROR" in ln][:20]}
    hive = HiveThriftServer(cfg)
    with contextlib.closing(hive.connect()) as conn, contextlib.closing(conn.cursor()) as cur:
        cur.execute(f"SELECT count(*), sum(seq), count(DISTINCT symbol) FROM {table}")
        count, seq_sum, symbols = cur.fetchone()
        cur.execute(f"SHOW PARTITIONS {table}")
        partitions = sorted(r[0] for r in cur.fetchall())
    expected = {"rows": rows, "seq_sum": rows * (rows - 1) // 2, "symbols": min(rows, 4)}
    seen = {"rows": count, "seq_sum": seq_sum, "symbols": symbols}
    return {
        "ok": seen == expected and partitions == sorted(job["partitions"]),
        "spark_submit": {"command": " ".join(argv), "seconds": submit_seconds,
                         "job_summary": job},
        "thrift_server": {"endpoint": f"{cfg.hive.host}:{cfg.hive.port}", "seen": seen,
                          "partitions": partitions},
        "expected": expected,
    }
