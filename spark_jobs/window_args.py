"""The batch window's command-line arguments, shared by every job and ``tradelake batch``
(no pyspark import here: the ``tradelake`` CLI loads this for ``--help``)."""

from __future__ import annotations

import argparse
from datetime import date


def iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {text!r}") from exc


def add_window_arguments(parser: argparse.ArgumentParser) -> None:
    """``--from``, ``--to`` (UTC dates) and ``--symbols`` (comma-separated, default all)."""
    parser.add_argument("--from", dest="date_from", type=iso_date, required=True, help="first date (UTC)")
    parser.add_argument("--to", dest="date_to", type=iso_date, required=True, help="last date (UTC)")
    parser.add_argument("--symbols", default="", help="comma-separated; default: all")
