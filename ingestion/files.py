"""Historical file loaders: stream CSV rows as raw, untyped records for the validator.

Nothing here parses prices or timestamps. A loader only recognises the file's layout from its
header and maps each row's cells to canonical field names, keeping the exact bytes of the line,
so that typed validation (written separately) can accept a record or quarantine it together
with its raw payload, file and line number. No row is ever dropped here: a short, long or
undecodable row is still yielded, with ``defect`` saying what was structurally wrong.

FILE_LAYOUTS
------------
Headers are matched case-insensitively after trimming whitespace; column order is free; every
required column must be present and no unknown column may be. Cells map to canonical field
names (``BAR``, ``TRADE``, ``QUOTE`` in ``tradelake.schemas``; ``ts`` is the raw time text).

``yahoo_daily`` -> kind ``bar``. Required ``Date, Open, High, Low, Close, Volume``; optional
``Adj Close`` (field ``adj_close``). The symbol is not in the file: it is the ``symbol``
argument, else the file's stem (``AAPL.csv`` -> ``AAPL``). Interval defaults to ``1d``::

    Date,Open,High,Low,Close,Adj Close,Volume
    2024-01-02,187.15,188.44,183.89,185.64,184.94,82488700

``ohlcv_intraday`` -> kind ``bar``. Required ``timestamp, symbol, open, high, low, close,
volume``; optional ``vwap`` and ``trades`` (or ``trade_count``; field ``trade_count``).
Interval defaults to ``1m``::

    timestamp,symbol,open,high,low,close,volume
    2024-01-02T14:30:00Z,AAPL,187.15,187.40,187.01,187.22,412000

``tick`` -> kind ``trade``. Required ``timestamp, symbol, price, size``; optional ``seq,
trade_id, exchange, side, conditions``::

    timestamp,symbol,price,size,exchange,side
    2024-01-02T14:30:00.000123456Z,AAPL,187.15,100,XNAS,B

``quote`` -> kind ``quote``. Required ``timestamp, symbol, bid_price, bid_size, ask_price,
ask_size``; optional ``exchange, seq``::

    timestamp,symbol,bid_price,bid_size,ask_price,ask_size
    2024-01-02T14:30:00.000123456Z,AAPL,187.14,300,187.16,200

Interval rule: ``read_records(..., interval=None)`` (the default) gives the layout's natural bar
length (``1d`` for ``yahoo_daily``, ``1m`` for ``ohlcv_intraday``); an explicit ``interval``
overrides it for bar layouts and is ignored for ``tick`` and ``quote`` files.

Reading rules: the file is read in binary, one record per physical line (``\\n`` or ``\\r\\n``);
a UTF-8 BOM on the first line is dropped; blank lines are skipped but still counted, so
``line_no`` is always the physical line; cells are split with the ``csv`` module (quotes,
commas inside quotes; not newlines inside quotes). A cell that is empty or only whitespace
becomes ``None``; other cells are kept verbatim (not trimmed).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

__all__ = ["FILE_LAYOUTS", "KINDS", "FileLayout", "RawRecord", "detect_layout", "read_records"]

KINDS = ("bar", "trade", "quote")
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class RawRecord:
    """One CSV row as text, with everything needed to quarantine it.

    ``fields`` maps each canonical field of the layout to the cell's raw text, ``None`` when the
    column is absent or the cell empty. ``payload`` is the line's exact bytes without its line
    ending. ``defect`` is ``None`` for a structurally sound row, else why it is not (wrong
    column count, invalid UTF-8): a long row would otherwise look complete in ``fields``.
    """

    kind: str
    source: str
    line_no: int
    payload: bytes
    fields: dict[str, str | None]
    defect: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if not self.source:
            raise ValueError("source must name the file the record came from")
        if isinstance(self.line_no, bool) or not isinstance(self.line_no, int) or self.line_no < 1:
            raise ValueError(f"line_no is 1-based, got {self.line_no!r}")
        if not isinstance(self.payload, bytes):
            raise ValueError(f"payload must be the raw line bytes, got {type(self.payload).__name__}")


@dataclass(frozen=True)
class FileLayout:
    """A recognised CSV layout: header column -> canonical field, required and optional."""

    name: str
    kind: str
    required: Mapping[str, str]
    optional: Mapping[str, str] = field(default_factory=dict)
    symbol_in_file: bool = True
    default_interval: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"layout {self.name!r}: kind must be one of {KINDS}")
        if set(self.required) & set(self.optional):
            raise ValueError(f"layout {self.name!r}: a column is both required and optional")

    def matches(self, columns: set[str]) -> bool:
        """All required columns present, nothing unknown."""
        return set(self.required) <= columns <= set(self.required) | set(self.optional)

    def output_fields(self) -> tuple[str, ...]:
        """Every field a record of this layout carries, present in the file or not."""
        names = dict.fromkeys([*self.required.values(), *self.optional.values()])
        if not self.symbol_in_file:
            names["symbol"] = None
        if self.kind == "bar":
            names["interval"] = None
        return tuple(names)

    def describe(self) -> str:
        optional = f" [optional: {', '.join(self.optional)}]" if self.optional else ""
        return f"{self.name} ({', '.join(self.required)}){optional}"


_OHLC = {"open": "open", "high": "high", "low": "low", "close": "close", "volume": "volume"}

FILE_LAYOUTS: Mapping[str, FileLayout] = MappingProxyType({layout.name: layout for layout in (
    FileLayout("yahoo_daily", "bar", {"date": "ts", **_OHLC}, {"adj close": "adj_close"},
               symbol_in_file=False, default_interval="1d"),
    FileLayout("ohlcv_intraday", "bar", {"timestamp": "ts", "symbol": "symbol", **_OHLC},
               {"vwap": "vwap", "trades": "trade_count", "trade_count": "trade_count"},
               default_interval="1m"),
    FileLayout("tick", "trade",
               {"timestamp": "ts", "symbol": "symbol", "price": "price", "size": "size"},
               {name: name for name in ("seq", "trade_id", "exchange", "side", "conditions")}),
    FileLayout("quote", "quote",
               {"timestamp": "ts", "symbol": "symbol", "bid_price": "bid_price",
                "bid_size": "bid_size", "ask_price": "ask_price", "ask_size": "ask_size"},
               {"exchange": "exchange", "seq": "seq"}),
)})


def _normalise(column: str) -> str:
    return column.replace("\ufeff", "").strip().lower()


def detect_layout(header: list[str]) -> str:
    """Name of the ``FILE_LAYOUTS`` entry this header row matches; ``ValueError`` if none."""
    columns = [_normalise(column) for column in header]
    if len(set(columns)) != len(columns):
        duplicated = sorted({c for c in columns if columns.count(c) > 1})
        raise ValueError(f"CSV header {header!r} repeats columns {duplicated}")
    for layout in FILE_LAYOUTS.values():
        if layout.matches(set(columns)):
            mapped = [layout.required.get(c) or layout.optional[c] for c in columns]
            if len(set(mapped)) != len(mapped):
                raise ValueError(f"CSV header {header!r} gives a {layout.name} field twice "
                                 f"(e.g. both 'trades' and 'trade_count')")
            return layout.name
    known = "; ".join(layout.describe() for layout in FILE_LAYOUTS.values())
    raise ValueError(f"unrecognised CSV header {header!r}; known layouts: {known}")


def read_records(path: str | Path, symbol: str | None = None,
                 interval: str | None = None) -> Iterator[RawRecord]:
    """Stream a CSV file's data rows as ``RawRecord`` s, one per non-blank line after the header.

    ``symbol`` names the instrument for layouts without a symbol column (default: the file's
    stem) and is ignored otherwise: the file's own column wins. ``interval`` overrides the bar
    layout's natural bar length (see the module docstring). Raises ``ValueError`` for an
    unrecognised header or a file without one; never for a bad data row.
    """
    if interval is not None and (not isinstance(interval, str) or not interval.strip()):
        raise ValueError(f"interval must be a non-empty string such as '1m' or '1d', got {interval!r}")
    source = str(path)
    layout: FileLayout | None = None
    by_position: list[str] = []
    constants: dict[str, str | None] = {}
    with open(path, "rb") as stream:
        for line_no, raw in enumerate(stream, start=1):
            line = _strip_line_ending(raw)
            if line_no == 1 and line.startswith(_BOM):
                line = line[len(_BOM):]
            if not line.strip():
                continue
            cells, defects = _split_cells(line)
            if layout is None:
                try:
                    layout = FILE_LAYOUTS[detect_layout(cells)]
                except ValueError as exc:
                    raise ValueError(f"{source}, line {line_no}: {exc}") from None
                by_position = [layout.required.get(c) or layout.optional[c]
                               for c in map(_normalise, cells)]
                constants = _constants(layout, source, symbol, interval)
                continue
            yield _record(layout, source, line_no, line, cells, defects, by_position, constants)
    if layout is None:
        raise ValueError(f"{source}: no header line (the file is empty or blank)")


def _strip_line_ending(raw: bytes) -> bytes:
    if raw.endswith(b"\r\n"):
        return raw[:-2]
    return raw[:-1] if raw.endswith(b"\n") else raw


def _split_cells(line: bytes) -> tuple[list[str], list[str]]:
    """Cells of one line and any defects; undecodable bytes become U+FFFD, never an error."""
    defects = []
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = line.decode("utf-8", errors="replace")
        defects.append(f"not valid UTF-8 ({exc.reason} at byte {exc.start})")
    try:
        cells = next(csv.reader([text]), [])
    except csv.Error as exc:  # e.g. a cell over the csv module's field size limit
        cells = text.split(",")
        defects.append(f"CSV error: {exc}")
    return cells, defects


def _constants(layout: FileLayout, source: str, symbol: str | None,
               interval: str | None) -> dict[str, str | None]:
    """Fields a record gets from the caller or the file name rather than from its cells."""
    constants: dict[str, str | None] = {}
    if not layout.symbol_in_file:
        constants["symbol"] = symbol if symbol is not None else Path(source).stem
    if layout.kind == "bar":
        constants["interval"] = interval if interval is not None else layout.default_interval
    return constants


def _record(layout: FileLayout, source: str, line_no: int, payload: bytes, cells: list[str],
            defects: list[str], by_position: list[str],
            constants: dict[str, str | None]) -> RawRecord:
    fields: dict[str, str | None] = dict.fromkeys(layout.output_fields())
    for name, cell in zip(by_position, cells, strict=False):
        fields[name] = cell if cell.strip() else None
    fields.update(constants)
    if len(cells) != len(by_position):
        defects = [f"expected {len(by_position)} columns, got {len(cells)}", *defects]
    return RawRecord(layout.kind, source, line_no, payload, fields,
                     "; ".join(defects) if defects else None)
