"""Query results as a plain text table, the way beeline prints them (``tradelake sql``,
``tradelake bars``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime


def _cell(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.10g}"
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)


def format_table(columns: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A plain text table, numbers right-aligned, like beeline's output."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    numeric = [all(isinstance(row[i], int | float) or row[i] is None for row in rows) and bool(rows)
               for i in range(len(columns))]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.rjust(w) if num else v.ljust(w)
                                 for v, w, num in zip(values, widths, numeric, strict=True)) + " |"

    return "\n".join([rule, line(columns), rule, *(line(r) for r in cells), rule])
