"""Historical CSV loaders: layout detection and raw records, checked field by field on tiny
hand-written files, including the awkward ones (BOM, CRLF, short rows, bad UTF-8)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingestion.files import FILE_LAYOUTS, RawRecord, detect_layout, read_records

pytestmark = pytest.mark.unit


def write(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(("header", "layout"), [
    (["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"], "yahoo_daily"),
    (["date", "open", "high", "low", "close", "volume"], "yahoo_daily"),
    ([" Volume ", "DATE", "Close", "Low", "High", "Open", "adj close"], "yahoo_daily"),
    (["timestamp", "symbol", "open", "high", "low", "close", "volume"], "ohlcv_intraday"),
    (["timestamp", "symbol", "open", "high", "low", "close", "volume", "vwap", "trades"],
     "ohlcv_intraday"),
    (["symbol", "timestamp", "close", "open", "low", "high", "volume", "trade_count"],
     "ohlcv_intraday"),
    (["timestamp", "symbol", "price", "size"], "tick"),
    (["Timestamp", "Symbol", "Price", "Size", "Seq", "Trade_ID", "Exchange", "Side", "Conditions"],
     "tick"),
    (["timestamp", "symbol", "bid_price", "bid_size", "ask_price", "ask_size", "exchange"], "quote"),
    (["\ufeffDate", "Open", "High", "Low", "Close", "Adj Close", "Volume"], "yahoo_daily"),
])
def test_detect_layout_recognises_known_headers(header: list[str], layout: str) -> None:
    assert detect_layout(header) == layout


@pytest.mark.parametrize("header", [
    ["Date", "Open", "High", "Low", "Close"],  # no volume
    ["timestamp", "symbol", "price"],  # no size
    ["timestamp", "symbol", "price", "size", "venue_fee"],  # unknown column
    ["timestamp", "symbol", "open", "high", "low", "close", "volume", "price"],  # mixed layouts
])
def test_detect_layout_refuses_unknown_headers_naming_them_and_the_known_layouts(
        header: list[str]) -> None:
    with pytest.raises(ValueError) as excinfo:
        detect_layout(header)
    message = str(excinfo.value)
    assert repr(header) in message
    for name in FILE_LAYOUTS:
        assert name in message


def test_detect_layout_refuses_repeated_columns() -> None:
    with pytest.raises(ValueError, match="repeats columns"):
        detect_layout(["timestamp", "symbol", "price", "size", "Price"])
    with pytest.raises(ValueError, match="twice"):
        detect_layout(["timestamp", "symbol", "open", "high", "low", "close", "volume", "trades",
                       "trade_count"])


def test_yahoo_daily_symbol_from_the_file_stem_and_interval_1d(tmp_path: Path) -> None:
    path = write(tmp_path, "AAPL.csv", b"Date,Open,High,Low,Close,Adj Close,Volume\n"
                                       b"2024-01-02,187.15,188.44,183.89,185.64,184.94,82488700\n"
                                       b"2024-01-03,184.22,185.88,183.43,184.25,183.55,58414500\n")
    records = list(read_records(path))
    assert records[0] == RawRecord(
        kind="bar", source=str(path), line_no=2,
        payload=b"2024-01-02,187.15,188.44,183.89,185.64,184.94,82488700",
        fields={"ts": "2024-01-02", "open": "187.15", "high": "188.44", "low": "183.89",
                "close": "185.64", "volume": "82488700", "adj_close": "184.94",
                "symbol": "AAPL", "interval": "1d"})
    assert records[1].line_no == 3
    assert records[1].fields["ts"] == "2024-01-03"
    assert records[1].defect is None


def test_yahoo_daily_symbol_argument_wins_and_adj_close_may_be_absent(tmp_path: Path) -> None:
    path = write(tmp_path, "download.csv", b"Date,Open,High,Low,Close,Volume\n"
                                           b"2024-01-02,1,2,0.5,1.5,100\n")
    (record,) = read_records(path, symbol="MSFT")
    assert record.fields["symbol"] == "MSFT"
    assert record.fields["adj_close"] is None
    assert record.fields["volume"] == "100"


def test_ohlcv_intraday_defaults_to_1m_and_honours_an_explicit_interval(tmp_path: Path) -> None:
    path = write(tmp_path, "bars.csv",
                 b"symbol,timestamp,open,high,low,close,volume,vwap\n"
                 b"AAPL,2024-01-02T14:30:00Z,187.15,187.40,187.01,187.22,412000,187.2\n")
    (record,) = read_records(path)
    assert record.kind == "bar"
    assert record.fields == {"ts": "2024-01-02T14:30:00Z", "symbol": "AAPL", "open": "187.15",
                             "high": "187.40", "low": "187.01", "close": "187.22",
                             "volume": "412000", "vwap": "187.2", "trade_count": None,
                             "interval": "1m"}
    (record_5m,) = read_records(path, interval="5m", symbol="IGNORED")
    assert record_5m.fields["interval"] == "5m"
    assert record_5m.fields["symbol"] == "AAPL"


def test_tick_file_with_quoted_fields_and_empty_optional_cells(tmp_path: Path) -> None:
    path = write(tmp_path, "ticks.csv",
                 b"timestamp,symbol,price,size,exchange,side,conditions\n"
                 b'2024-01-02T14:30:00.000123456Z,AAPL,187.15,100,XNAS,B,"@,F"\n'
                 b"2024-01-02T14:30:00.000200000Z,AAPL,187.16,7,,S,\n")
    first, second = read_records(path)
    assert first.kind == "trade"
    assert first.fields == {"ts": "2024-01-02T14:30:00.000123456Z", "symbol": "AAPL",
                            "price": "187.15", "size": "100", "seq": None, "trade_id": None,
                            "exchange": "XNAS", "side": "B", "conditions": "@,F"}
    assert first.payload == b'2024-01-02T14:30:00.000123456Z,AAPL,187.15,100,XNAS,B,"@,F"'
    assert second.fields["exchange"] is None
    assert second.fields["conditions"] is None
    assert second.fields["size"] == "7"
    assert second.defect is None


def test_quote_file(tmp_path: Path) -> None:
    path = write(tmp_path, "quotes.csv",
                 b"timestamp,symbol,bid_price,bid_size,ask_price,ask_size,seq\n"
                 b"2024-01-02T14:30:00Z,AAPL,187.14,300,187.16,200,42\n")
    (record,) = read_records(path)
    assert record.kind == "quote"
    assert record.fields == {"ts": "2024-01-02T14:30:00Z", "symbol": "AAPL", "bid_price": "187.14",
                             "bid_size": "300", "ask_price": "187.16", "ask_size": "200",
                             "exchange": None, "seq": "42"}


def test_bom_and_crlf_are_not_part_of_fields_or_payload(tmp_path: Path) -> None:
    path = write(tmp_path, "SPY.csv", b"\xef\xbb\xbfDate,Open,High,Low,Close,Adj Close,Volume\r\n"
                                      b"2024-01-02,472.16,473.67,470.49,472.65,466.46,123623700\r\n")
    (record,) = read_records(path)
    assert record.payload == b"2024-01-02,472.16,473.67,470.49,472.65,466.46,123623700"
    assert record.fields["ts"] == "2024-01-02"
    assert record.fields["volume"] == "123623700"
    assert record.fields["symbol"] == "SPY"


def test_blank_lines_are_skipped_but_counted(tmp_path: Path) -> None:
    path = write(tmp_path, "ticks.csv", b"\n"
                                        b"timestamp,symbol,price,size\n"
                                        b"t1,AAPL,1.00,1\n"
                                        b"\n"
                                        b"   \r\n"
                                        b"t2,AAPL,1.01,2\n")
    records = list(read_records(path))
    assert [r.line_no for r in records] == [3, 6]
    assert [r.fields["ts"] for r in records] == ["t1", "t2"]


def test_rows_with_the_wrong_column_count_are_yielded_with_a_defect(tmp_path: Path) -> None:
    path = write(tmp_path, "AAPL.csv", b"Date,Open,High,Low,Close,Adj Close,Volume\n"
                                       b"2024-01-02,187.15,188.44\n"
                                       b"2024-01-03,1,2,3,4,5,6,EXTRA\n"
                                       b"2024-01-04,1,2,3,4,5,6\n")
    short, long, fine = read_records(path)
    assert short.line_no == 2
    assert short.payload == b"2024-01-02,187.15,188.44"
    assert short.fields == {"ts": "2024-01-02", "open": "187.15", "high": "188.44", "low": None,
                            "close": None, "volume": None, "adj_close": None, "symbol": "AAPL",
                            "interval": "1d"}
    assert short.defect == "expected 7 columns, got 3"
    assert long.defect == "expected 7 columns, got 8"
    assert long.fields["volume"] == "6"
    assert fine.defect is None


def test_invalid_utf8_does_not_crash_and_the_payload_keeps_the_original_bytes(tmp_path: Path) -> None:
    bad_line = b"2024-01-02T14:30:00Z,AB\xff\xfeC,1.00,100"
    path = write(tmp_path, "ticks.csv", b"timestamp,symbol,price,size\n" + bad_line + b"\n"
                                        b"2024-01-02T14:30:01Z,ABC,1.01,100\n")
    bad, good = read_records(path)
    assert bad.payload == bad_line
    assert bad.fields["symbol"] == "AB\ufffd\ufffdC"
    assert bad.fields["price"] == "1.00"
    assert bad.defect is not None and "UTF-8" in bad.defect
    assert good.defect is None
    assert good.line_no == 3


def test_unknown_header_error_names_the_file_and_its_header(tmp_path: Path) -> None:
    path = write(tmp_path, "mystery.csv", b"when,what,how_much\n1,2,3\n")
    with pytest.raises(ValueError) as excinfo:
        list(read_records(path))
    message = str(excinfo.value)
    assert str(path) in message
    assert "['when', 'what', 'how_much']" in message
    assert "yahoo_daily" in message and "ohlcv_intraday" in message and "tick" in message


def test_a_file_without_a_header_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "empty.csv", b"\r\n\n")
    with pytest.raises(ValueError, match="no header"):
        list(read_records(path))


def test_a_blank_interval_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "AAPL.csv", b"Date,Open,High,Low,Close,Volume\n")
    with pytest.raises(ValueError, match="interval"):
        list(read_records(path, interval=" "))


def test_raw_record_refuses_bad_states() -> None:
    with pytest.raises(ValueError, match="kind"):
        RawRecord("order", "f.csv", 1, b"", {})
    with pytest.raises(ValueError, match="line_no"):
        RawRecord("bar", "f.csv", 0, b"", {})
    with pytest.raises(ValueError, match="payload"):
        RawRecord("bar", "f.csv", 1, "text", {})  # type: ignore[arg-type]
