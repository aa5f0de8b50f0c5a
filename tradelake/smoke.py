"""``tradelake smoke``: spark-submit the smoke job, then read its table as an analyst would.

The expected figures are computed here from the job's arguments alone (row count; sum of the
sequence 0..n-1), not from the job's output, so a table that is missing, stale or partial fails.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

from tradelake.config import PROJECT_ROOT, Config
from tradelake.hive_client import connect_hive
from tradelake.spark import spark_submit


def run_smoke(cfg: Config, table: str = "default.tradelake_smoke", rows: int = 1000) -> dict[str, Any]:
    script = PROJECT_ROOT / "spark_jobs" / "smoke.py"
    args = ["--table", table, "--rows", str(rows)]
    started = time.monotonic()
    proc = spark_submit(cfg, script, args)
    submit_seconds = round(time.monotonic() - started, 1)
    job = next((json.loads(line.split(" ", 1)[1]) for line in proc.stdout.splitlines()
                if line.startswith("SMOKE_RESULT ")), None)
    if proc.returncode != 0 or job is None:
        return {"ok": False, "step": "spark-submit", "exit_code": proc.returncode,
                "command": f"spark-submit {script} {' '.join(args)}", "stdout_tail": proc.stdout[-3000:],
                "stderr_errors": [ln for ln in proc.stderr.splitlines()
                                  if "Exception" in ln or "ERROR" in ln][:20]}
    with contextlib.closing(connect_hive(cfg.hive)) as conn, contextlib.closing(conn.cursor()) as cur:
        cur.execute(f"SELECT count(*), sum(seq), count(DISTINCT symbol) FROM {table}")
        count, seq_sum, symbols = cur.fetchone()
        cur.execute(f"SHOW PARTITIONS {table}")
        partitions = sorted(r[0] for r in cur.fetchall())
    expected = {"rows": rows, "seq_sum": rows * (rows - 1) // 2, "symbols": min(rows, 4)}
    seen = {"rows": count, "seq_sum": seq_sum, "symbols": symbols}
    return {
        "ok": seen == expected and partitions == sorted(job["partitions"]),
        "spark_submit": {"command": f"spark-submit {script} {' '.join(args)}", "seconds": submit_seconds,
                         "job_summary": job},
        "thrift_server": {"endpoint": f"{cfg.hive.host}:{cfg.hive.port}", "seen": seen,
                          "partitions": partitions},
        "expected": expected,
    }
