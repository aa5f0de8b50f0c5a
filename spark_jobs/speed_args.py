"""The speed layer's command-line arguments, shared by ``spark_jobs/speed_layer.py`` and
``tradelake speed`` (no pyspark import here: the ``tradelake`` CLI loads this for ``--help``)."""

from __future__ import annotations

import argparse

MODES = ("split", "single")
DEFAULT_HIVE_TRIGGER_MS = 30_000


def add_speed_arguments(parser: argparse.ArgumentParser) -> None:
    how_long = parser.add_mutually_exclusive_group()
    how_long.add_argument("--duration", type=float, metavar="SECONDS",
                          help="stop (between micro-batches) after this many seconds; default: run "
                               "until interrupted (SIGTERM/SIGINT), then stop between micro-batches")
    how_long.add_argument("--available-now", action="store_true",
                          help="process what the topics hold now, in micro-batches, then stop")
    parser.add_argument("--mode", choices=MODES, default="split",
                        help="split (default): a fast ODS query and a slower Hive query, each with its "
                             "own checkpoint; single: one query writing the ODS, then Hive")
    parser.add_argument("--trigger-ms", type=int, metavar="MS",
                        help="micro-batch interval of the ODS (or single) query (default: speed.trigger_ms)")
    parser.add_argument("--hive-trigger-ms", type=int, metavar="MS", default=DEFAULT_HIVE_TRIGGER_MS,
                        help=f"micro-batch interval of the Hive query in split mode "
                             f"(default {DEFAULT_HIVE_TRIGGER_MS})")
    parser.add_argument("--max-offsets", type=int, metavar="N",
                        help="Kafka messages per micro-batch at most "
                             "(default: speed.max_offsets_per_trigger)")


def speed_argument_error(args: argparse.Namespace) -> str | None:
    """What is wrong with parsed ``args``, or None."""
    for name in ("duration", "trigger_ms", "hive_trigger_ms", "max_offsets"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            return f"--{name.replace('_', '-')} must be > 0"
    return None


def speed_job_arguments(args: argparse.Namespace) -> list[str]:
    """The job's command line for parsed ``args`` (what ``tradelake speed`` passes on)."""
    out = ["--mode", args.mode, "--hive-trigger-ms", str(args.hive_trigger_ms)]
    if args.duration is not None:
        out += ["--duration", f"{args.duration:g}"]
    if args.available_now:
        out.append("--available-now")
    if args.trigger_ms is not None:
        out += ["--trigger-ms", str(args.trigger_ms)]
    if args.max_offsets is not None:
        out += ["--max-offsets", str(args.max_offsets)]
    return out
