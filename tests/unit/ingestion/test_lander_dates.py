import pyarrow as pa

from ingestion.lander import _dt_of

LAST_NS_OF_2026_01_05 = 1_767_657_599_999_999_999  # 2026-01-05T23:59:59.999999999Z


def test_a_message_goes_to_the_utc_date_of_its_first_row_to_the_nanosecond():
    assert _dt_of(pa.table({"ts": [LAST_NS_OF_2026_01_05, LAST_NS_OF_2026_01_05 + 5]}), 0) == "2026-01-05"
    assert _dt_of(pa.table({"ts": [LAST_NS_OF_2026_01_05 + 1]}), 0) == "2026-01-06"


def test_an_empty_message_goes_to_the_date_of_its_kafka_timestamp():
    empty = pa.table({"ts": pa.array([], pa.int64())})
    assert _dt_of(empty, 1_767_657_599_999) == "2026-01-05"  # ms
