"""The derived representations of each event schema must agree with each other and with an
independent, hand-written type table (not the module's own mapping)."""

from __future__ import annotations

import re

import pyarrow as pa
import pytest
from chispa import assert_df_equality
from hypothesis import given, settings
from hypothesis import strategies as st
from pyspark.sql import SparkSession
from pyspark.sql import types as T

from tradelake.schemas import (
    LOGICAL_TYPES,
    SCHEMAS,
    EventSchema,
    FieldSpec,
    arrow_schema,
    get_schema,
    spark_schema,
    sql_ddl,
)

# logical type -> (Spark type, Arrow type, Postgres type, Hive type), written out by hand.
EXPECTED_TYPES = {
    "timestamp_ns": (T.LongType(), pa.int64(), "BIGINT", "BIGINT"),
    "int64": (T.LongType(), pa.int64(), "BIGINT", "BIGINT"),
    "int32": (T.IntegerType(), pa.int32(), "INTEGER", "INT"),
    "float64": (T.DoubleType(), pa.float64(), "DOUBLE PRECISION", "DOUBLE"),
    "string": (T.StringType(), pa.string(), "TEXT", "STRING"),
    "bool": (T.BooleanType(), pa.bool_(), "BOOLEAN", "BOOLEAN"),
    "date": (T.DateType(), pa.date32(), "DATE", "DATE"),
}

PG_COLUMN = re.compile(r'^\s+"(?P<name>\w+)" (?P<type>[A-Z ]+?)(?P<nn> NOT NULL)?,?$')
HIVE_COLUMN = re.compile(r"^\s+`(?P<name>\w+)` (?P<type>\w+) COMMENT '.*',?$")


def parse_columns(ddl: str, pattern: re.Pattern[str]) -> list[tuple[str, str, bool]]:
    """(name, sql type, has NOT NULL) for each column line of a generated DDL statement."""
    return [(m["name"], m["type"], bool(m.groupdict().get("nn")))
            for line in ddl.splitlines() if (m := pattern.match(line))]


def check_agreement(schema: EventSchema) -> None:
    sp, ar = spark_schema(schema), arrow_schema(schema)
    names = [f.name for f in schema.fields]
    assert sp.fieldNames() == names
    assert ar.names == names
    assert [f.nullable for f in sp.fields] == [f.nullable for f in ar]
    assert [f.nullable for f in sp.fields] == [f.nullable for f in schema.fields]

    pg = parse_columns(sql_ddl(schema, "postgres"), PG_COLUMN)
    hive = parse_columns(sql_ddl(schema, "hive"), HIVE_COLUMN)
    assert [c[0] for c in pg] == names
    assert [c[0] for c in hive] == names
    # every non-nullable field, and only those, carries NOT NULL in postgres
    assert [c[2] for c in pg] == [not f.nullable for f in schema.fields]

    for f, sf, af, pc, hc in zip(schema.fields, sp.fields, ar, pg, hive, strict=True):
        spark_t, arrow_t, pg_t, hive_t = EXPECTED_TYPES[f.type]
        assert sf.dataType == spark_t, f.name
        assert af.type == arrow_t, f.name
        assert pc[1] == pg_t, f.name
        assert hc[1] == hive_t, f.name


@pytest.mark.unit
def test_expected_type_table_covers_every_logical_type() -> None:
    assert set(EXPECTED_TYPES) == set(LOGICAL_TYPES)


@pytest.mark.unit
def test_registry_has_every_event_type() -> None:
    expected = {"trade", "quote", "bar", "order", "execution", "signal", "position"}
    assert set(SCHEMAS) == expected
    assert all(get_schema(n).name == n for n in expected)


@pytest.mark.unit
def test_get_schema_unknown_lists_known_names() -> None:
    with pytest.raises(KeyError, match="known: trade, quote"):
        get_schema("tick")


@pytest.mark.unit
@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_derivations_agree(name: str) -> None:
    schema = SCHEMAS[name]
    assert schema.names[:2] == ("ts", "symbol")
    assert schema.key[:2] == ("ts", "symbol")
    check_agreement(schema)


@pytest.mark.unit
@pytest.mark.parametrize("lead", [
    [("symbol", "string"), ("ts", "timestamp_ns")],
    [("ts", "timestamp_ns"), ("price", "float64")],
    [("ts", "int64"), ("symbol", "string")],
    [("ts", "timestamp_ns")],
])
def test_schema_must_lead_with_ts_and_symbol(lead: list[tuple[str, str]]) -> None:
    fields = tuple(FieldSpec(n, t) for n, t in lead) + (FieldSpec("qty", "float64"),)
    with pytest.raises(ValueError, match="must lead with ts"):
        EventSchema("bad", fields, key=())


@pytest.mark.unit
def test_invalid_field_and_key_refused() -> None:
    with pytest.raises(ValueError, match="unknown type"):
        FieldSpec("px", "float32")
    lead = (FieldSpec("ts", "timestamp_ns"), FieldSpec("symbol", "string"))
    with pytest.raises(ValueError, match=r"key columns \['venue'\] must be non-nullable"):
        EventSchema("bad", lead + (FieldSpec("venue", "string", nullable=True),),
                    key=("ts", "venue"))
    with pytest.raises(ValueError, match="duplicate"):
        EventSchema("bad", lead + (FieldSpec("symbol", "string"),), key=())


@pytest.mark.unit
def test_postgres_ddl_for_bar() -> None:
    ddl = sql_ddl(get_schema("bar"), "postgres", table="lake.bar")
    assert ddl.startswith('CREATE TABLE "lake"."bar" (')
    assert 'PRIMARY KEY ("ts", "symbol", "interval")' in ddl
    assert '"vwap" DOUBLE PRECISION,' in ddl  # nullable: no NOT NULL
    for f in get_schema("bar").fields:
        if not f.nullable:
            assert re.search(rf'"{f.name}" [A-Z ]+ NOT NULL', ddl), f.name


@pytest.mark.unit
def test_hive_ddl_options() -> None:
    ddl = sql_ddl(get_schema("order"), "hive", table="lake.orders", partitioned_by=("dt DATE",),
                  location="hdfs:///lake/orders", if_not_exists=True)
    assert ddl.startswith("CREATE TABLE IF NOT EXISTS `lake`.`orders` (")
    assert "NOT NULL" not in ddl and "PRIMARY KEY" not in ddl
    assert ddl.endswith("PARTITIONED BY (dt DATE)\nSTORED AS PARQUET\n"
                        "LOCATION 'hdfs:///lake/orders'")


@pytest.mark.unit
def test_ddl_rejects_unknown_dialect_and_misplaced_options() -> None:
    with pytest.raises(ValueError, match="unknown SQL dialect 'mysql'.*postgres, hive"):
        sql_ddl(get_schema("trade"), "mysql")
    with pytest.raises(ValueError, match="hive"):
        sql_ddl(get_schema("trade"), "postgres", partitioned_by=("dt DATE",))


_names = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True).filter(
    lambda n: n not in ("ts", "symbol"))
_fields = st.lists(
    st.builds(FieldSpec, name=_names, type=st.sampled_from(sorted(EXPECTED_TYPES)),
              nullable=st.booleans()),
    max_size=8, unique_by=lambda f: f.name)


@pytest.mark.unit
@settings(max_examples=60, deadline=None)
@given(extra=_fields)
def test_any_valid_schema_derivations_agree(extra: list[FieldSpec]) -> None:
    lead = (FieldSpec("ts", "timestamp_ns"), FieldSpec("symbol", "string"))
    schema = EventSchema("generated", lead + tuple(extra), key=("ts", "symbol"))
    check_agreement(schema)
    empty = arrow_schema(schema).empty_table()
    assert empty.num_rows == 0 and empty.column_names == spark_schema(schema).fieldNames()


@pytest.mark.unit
def test_trade_arrow_to_spark_round_trip(local_spark: SparkSession) -> None:
    spark = local_spark
    trade = get_schema("trade")
    rows = [
        (1_700_000_000_123_456_789, "AAPL", 189.5, 100.0, "t1", "XNAS", 1, "B", "@", None),
        (1_700_000_000_123_456_790, "AAPL", 189.51, 25.5, "t2", None, 2, None, None,
         1_700_000_000_200_000_001),
        (1_700_000_001_000_000_000, "MSFT", 371.0, 3.0, "t3", "ARCX", 3, "S", "@ F", None),
    ]
    table = pa.Table.from_pylist([dict(zip(trade.names, r, strict=True)) for r in rows],
                                 schema=arrow_schema(trade))
    assert table.column("ts").type == pa.int64()
    assert table.schema.field("ts").metadata[b"unit"] == b"ns_utc"
    # Arrow goes to Spark directly (through pandas the nullable int64 ingest_ts would become
    # float64 and lose its last nanosecond digits).
    actual = spark.createDataFrame(table, schema=spark_schema(trade))

    expected = spark.createDataFrame(rows, schema=(
        "ts BIGINT NOT NULL, symbol STRING NOT NULL, price DOUBLE NOT NULL, "
        "size DOUBLE NOT NULL, trade_id STRING NOT NULL, exchange STRING, seq BIGINT NOT NULL, "
        "side STRING, conditions STRING, ingest_ts BIGINT"))
    assert_df_equality(actual, expected, ignore_metadata=True)
