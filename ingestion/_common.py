"""Units, integer limits, the reason priority and the kind -> schema map.

Parsing (``ingestion.parsing``) and the typed rules (``ingestion.rules``, ``ingestion.validation``)
must rank reasons by the same ``PRIORITY`` and read the same schemas, or a record could be
quarantined for a different reason depending on the path it came in by. They live here, below
all of those modules, so that each can import them without importing the others. Why the
priority runs in this order: see the ``ingestion.validation`` module doc.
"""

from __future__ import annotations

from datetime import date

import pyarrow as pa

from ingestion.quarantine import Reason
from tradelake.schemas import BAR, QUOTE, TRADE, EventSchema, arrow_schema

NS = 1_000_000_000
DAY_NS = 86_400 * NS
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

PRIORITY: tuple[Reason, ...] = (
    Reason.BAD_ENCODING, Reason.MALFORMED, Reason.MISSING_FIELD, Reason.BAD_TYPE,
    Reason.BAD_VALUE,
    Reason.NON_FINITE, Reason.OUT_OF_RANGE, Reason.NON_POSITIVE_PRICE, Reason.NEGATIVE_SIZE,
    Reason.HIGH_BELOW_LOW, Reason.HIGH_BELOW_OPEN_CLOSE, Reason.LOW_ABOVE_OPEN_CLOSE,
    Reason.CROSSED_QUOTE, Reason.FUTURE_TIMESTAMP, Reason.OUTSIDE_SESSION, Reason.DUPLICATE,
)
_RANK = {reason: i for i, reason in enumerate(PRIORITY)}
assert set(_RANK) == set(Reason), "PRIORITY must list every Reason exactly once"

_SCHEMAS: dict[str, EventSchema] = {"trade": TRADE, "quote": QUOTE, "bar": BAR}
_ARROW: dict[str, pa.Schema] = {kind: arrow_schema(s) for kind, s in _SCHEMAS.items()}


def _schema_for(kind: str) -> EventSchema:
    """The event schema validated for ``kind``; a clear error for anything else."""
    if kind not in _SCHEMAS:
        raise ValueError(f"cannot validate kind {kind!r}; expected one of {', '.join(_SCHEMAS)}")
    return _SCHEMAS[kind]
