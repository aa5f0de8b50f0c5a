"""``tradelake batch``: the batch layer's jobs in order (etl_ticks -> bars -> features), each with
``spark-submit`` exactly as a user would run it, with a progress line per job and a summary.
``tradelake speed``: the speed layer (spark_jobs/speed_layer.py) with ``spark-submit``, its progress
line per micro-batch on stderr and its summary at the end."""

from __future__ import annotations

import argparse
import json
import sys
import time

from spark_jobs.speed_args import add_speed_arguments, speed_argument_error, speed_job_arguments
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


def _forward(proc, log, state: dict) -> None:
    """Read the job's stdout (its Python driver's stdout and stderr): progress lines to our stderr,
    markers into ``state``, everything into the log."""
    for line in proc.stdout:
        log.write(line)
        if line.startswith("SPEED_STARTED "):
            state["pid"] = json.loads(line.split(" ", 1)[1])["pid"]
        elif line.startswith("SPEED_RESULT "):
            state["summary"] = json.loads(line.split(" ", 1)[1])
        elif line.startswith("speed"):
            print(line.rstrip(), file=sys.stderr, flush=True)
        elif line.strip():
            state["tail"] = [*state["tail"][-40:], line.rstrip()]
    log.flush()


def cmd_speed(args: argparse.Namespace) -> int:
    """spark-submit the speed layer, relay its progress, stop it between micro-batches on Ctrl-C
    or SIGTERM (a second one kills it: the checkpoint makes that safe too)."""
    import os
    import signal
    import subprocess
    import threading

    from tradelake.spark import spark_submit_command

    if error := speed_argument_error(args):
        print(f"error: {error}", file=sys.stderr)
        return 2
    cfg = load_config(args.profile)
    job_args = speed_job_arguments(args)
    argv, env = spark_submit_command(cfg, PROJECT_ROOT / "spark_jobs" / "speed_layer.py", job_args,
                                     env={"TRADELAKE_PROFILE": cfg.profile})
    log_path = cfg.var_dir / "log" / "speed_layer.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    print(f"spark-submit spark_jobs/speed_layer.py {' '.join(job_args)}   (full log: {log_path})",
          file=sys.stderr, flush=True)

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    state: dict = {"pid": None, "summary": None, "tail": []}
    interrupted = False
    with open(log_path, "w") as log:
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=log, text=True,
                                start_new_session=True)  # Ctrl-C reaches us only: we stop it cleanly
        reader = threading.Thread(target=_forward, args=(proc, log, state), daemon=True)
        reader.start()
        try:
            proc.wait()
        except KeyboardInterrupt:
            interrupted = True
            print("speed: interrupted; stopping between micro-batches (again to kill)", file=sys.stderr,
                  flush=True)
            try:
                os.kill(state["pid"], signal.SIGTERM) if state["pid"] else os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=300)
            except (KeyboardInterrupt, subprocess.TimeoutExpired, ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        finally:
            signal.signal(signal.SIGTERM, previous)
        reader.join(timeout=30)
    summary = state["summary"]
    if summary is not None:
        c = summary
        print(f"speed: {c['ended']} after {c['seconds']}s: received {c['received']:,} = accepted "
              f"{c['accepted']:,} + quarantined {c['quarantined']:,} + filtered {c['filtered']:,} "
              f"({'reconciled' if c['reconciled'] else 'NOT reconciled'}); publish->ODS "
              f"p50/p99 {c['publish_to_ods_ms']['p50']}/{c['publish_to_ods_ms']['p99']} ms",
              file=sys.stderr, flush=True)
        print(json.dumps(summary))
    if interrupted:
        return 130
    if proc.returncode == 2:
        return 2
    if proc.returncode != 0 or summary is None:
        print(f"speed layer failed (exit {proc.returncode}); last output:\n" + "\n".join(state["tail"][-15:])
              + f"\nsee {log_path}", file=sys.stderr)
        return 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    speed = sub.add_parser(
        "speed", help="run the speed layer (Kafka -> ODS + real-time Hive tables) with spark-submit",
        description="Runs spark_jobs/speed_layer.py with spark-submit: Kafka trades and quotes are "
                    "decoded, validated (rejects quarantined with a reason) and written to the "
                    "operational store, then to the real-time Hive tables, exactly once in effect "
                    "across restarts (checkpoint under <lake.root>/<speed.checkpoint_dir>). Prints "
                    "a line per micro-batch and, at the end, a summary and one JSON line. Exit 0 "
                    "done, 1 the job failed, 2 bad usage or configuration, 130 interrupted (it is "
                    "stopped between micro-batches; the next run resumes from the checkpoint).")
    add_speed_arguments(speed)
    speed.set_defaults(func=cmd_speed)

    batch = sub.add_parser(
        "batch", help="run the batch layer (etl_ticks, bars, features) with spark-submit",
        description="Runs each job of spark_jobs/ in turn with spark-submit over --from..--to; a job "
                    "replaces exactly its partitions, so a rerun is idempotent. Prints each job's "
                    "summary and one JSON line at the end. Exit 1 if a job fails.")
    add_window_arguments(batch)
    batch.add_argument("--jobs", default=",".join(JOBS), help=f"subset, in order (default {','.join(JOBS)})")
    batch.set_defaults(func=cmd_batch)
