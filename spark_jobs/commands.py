"""``tradelake batch``: the batch layer's jobs in order (etl_ticks -> bars -> features), each with
``spark-submit`` exactly as a user would run it, with a progress line per job and a summary."""

from __future__ import annotations

import argparse
import json
import sys
import time

from spark_jobs.window_args import add_window_arguments
from tradelake.config import PROJECT_ROOT, load_config

JOBS = {"etl_ticks": "ETL_RESULT", "bars": "BARS_RESULT", "features": "FEATURES_RESULT"}


def run_job(cfg, job: str, args: list[str]) -> tuple[int, dict | None, str]:
    """spark-submit one job; (exit code, its JSON summary or None, stderr tail)."""
    from tradelake.spark import spark_submit

    # the job loads its own config: hand it the profile this command was given
    proc = spark_submit(cfg, PROJECT_ROOT / "spark_jobs" / f"{job}.py", args,
                        env={"TRADELAKE_PROFILE": cfg.profile})
    marker = JOBS[job] + " "
    summary = next((json.loads(line[len(marker):]) for line in proc.stdout.splitlines()
                    if line.startswith(marker)), None)
    errors = "\n".join(ln for ln in proc.stderr.splitlines()
                       if "Error" in ln or "Exception" in ln or "error:" in ln)[-3000:]
    return proc.returncode, summary, errors


def cmd_batch(args: argparse.Namespace) -> int:
    cfg = load_config(args.profile)
    jobs = [j.strip() for j in args.jobs.split(",") if j.strip()]
    unknown = [j for j in jobs if j not in JOBS]
    if unknown:
        print(f"error: unknown job(s) {unknown}; known: {', '.join(JOBS)}", file=sys.stderr)
        return 2
    window = ["--from", args.date_from.isoformat(), "--to", args.date_to.isoformat()]
    if args.symbols:
        window += ["--symbols", args.symbols]
    results = {}
    started = time.monotonic()
    for i, job in enumerate(jobs, 1):
        print(f"[{i}/{len(jobs)}] spark-submit spark_jobs/{job}.py {' '.join(window)}", file=sys.stderr,
              flush=True)
        t = time.monotonic()
        code, summary, errors = run_job(cfg, job, window)
        if code != 0 or summary is None:
            print(f"  {job} failed (exit {code}):\n{errors}", file=sys.stderr)
            return 1
        results[job] = summary
        print(f"  done in {time.monotonic() - t:.0f}s: {json.dumps(summary)}", file=sys.stderr, flush=True)
    print(json.dumps({"from": window[1], "to": window[3], "jobs": results,
                      "seconds": round(time.monotonic() - started, 1)}))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    batch = sub.add_parser(
        "batch", help="run the batch layer (etl_ticks, bars, features) with spark-submit",
        description="Runs each job of spark_jobs/ in turn with spark-submit over --from..--to; a job "
                    "replaces exactly its partitions, so a rerun is idempotent. Prints each job's "
                    "summary and one JSON line at the end. Exit 1 if a job fails.")
    add_window_arguments(batch)
    batch.add_argument("--jobs", default=",".join(JOBS), help=f"subset, in order (default {','.join(JOBS)})")
    batch.set_defaults(func=cmd_batch)
