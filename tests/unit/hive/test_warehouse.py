"""hive/warehouse.py and hive/ddl/*.hql: rendering, splitting, and the DDL agreeing with the one
definition of each event (tradelake/schemas.py) and with what the jobs and the lander write."""

from __future__ import annotations

import dataclasses
import re

import pytest

from hive.warehouse import hive_vars, render, split_statements, statements
from ingestion.landing import topic_specs
from spark_jobs.bars import BAR_COLUMNS
from spark_jobs.etl_ticks import CURATED_COLUMNS
from tradelake.config import load_config
from tradelake.schemas import BAR, EXECUTION, ORDER, POSITION, SIGNAL, TRADE

HIVE_TYPES = {"timestamp_ns": "BIGINT", "int64": "BIGINT", "int32": "INT", "float64": "DOUBLE",
              "string": "STRING", "bool": "BOOLEAN", "date": "DATE"}
ARROW_TO_HIVE = {"int64": "BIGINT", "int32": "INT", "double": "DOUBLE", "string": "STRING",
                 "binary": "BINARY"}
COLUMN = re.compile(r"^\s*`(\w+)`\s+(\w+)", re.MULTILINE)


def columns(sql: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(data columns, partition columns) of a CREATE TABLE statement."""
    body, _, rest = sql.partition("PARTITIONED BY")
    return COLUMN.findall(body), COLUMN.findall(rest.split("STORED AS")[0])


def tables(cfg) -> dict[str, str]:
    return {s.name: s.sql for s in statements(cfg) if s.kind == "TABLE"}


def test_render_substitutes_and_refuses_unknown_variables():
    assert render("x ${hivevar:a}.${hivevar:b}", {"a": "raw", "b": "t"}) == "x raw.t"
    with pytest.raises(KeyError, match=r"no value for \$\{hivevar:c\}"):
        render("${hivevar:c}", {"a": "1"}, "f.hql")


def test_split_keeps_semicolons_inside_strings_and_drops_comment_lines():
    text = ("-- a comment; with a semicolon\nCREATE DATABASE x COMMENT 'a; b';\n\n"
            "CREATE VIEW v\nAS SELECT 1;\n")
    assert split_statements(text) == ["CREATE DATABASE x COMMENT 'a; b'", "CREATE VIEW v\nAS SELECT 1"]


def test_every_statement_is_rendered_and_named(cfg):
    sts = statements(cfg)
    assert all("${" not in s.sql for s in sts)
    assert {s.name for s in sts if s.kind == "DATABASE"} == {"raw", "curated", "features", "trading"}
    assert {"curated.ticks", "curated.bars", "features.bar_features", "trading.orders", "trading.executions",
            "trading.signals", "trading.positions", "raw.md_trades", "raw.md_quotes", "raw.md_bars",
            "raw.md_quarantine", "raw.files_trade", "raw.files_quarantine"} <= set(tables(cfg))
    assert {s.name for s in sts if s.kind == "VIEW"} == {
        "curated.daily_ohlcv", "curated.daily_vwap", "curated.daily_returns"}
    for sql in tables(cfg).values():  # external Parquet over the lake, never managed tables
        assert sql.startswith("CREATE EXTERNAL TABLE IF NOT EXISTS") and "STORED AS PARQUET" in sql
        assert f"LOCATION '{cfg.lake.root}/" in sql


def test_database_names_and_locations_follow_the_profile(cfg):
    other = dataclasses.replace(cfg, warehouse=dataclasses.replace(cfg.warehouse, curated_db="b_curated"))
    ticks = tables(other)["b_curated.ticks"]
    assert f"LOCATION '{cfg.lake.root}/b_curated/ticks'" in ticks
    views = [s.sql for s in statements(other) if s.kind == "VIEW"]
    assert all("FROM b_curated.bars" in v for v in views)
    assert hive_vars(other)["trades_table"] == "md_trades"


def test_curated_tables_match_the_jobs_output_columns(cfg):
    data, parts = columns(tables(cfg)["curated.ticks"])
    assert [n for n, _ in data + parts] == CURATED_COLUMNS
    assert data == [(f.name, HIVE_TYPES[f.type]) for f in TRADE.fields]
    assert parts == [("dt", "DATE")]
    data, parts = columns(tables(cfg)["curated.bars"])
    assert [n for n, _ in data + parts] == BAR_COLUMNS
    assert data == [(f.name, HIVE_TYPES[f.type]) for f in BAR.fields if f.name != "interval"]
    assert parts == [("interval", "STRING"), ("dt", "DATE")]


@pytest.mark.parametrize("schema", [ORDER, EXECUTION, SIGNAL, POSITION], ids=lambda s: s.name)
def test_trading_tables_are_the_event_schemas(cfg, schema):
    data, parts = columns(tables(cfg)[f"trading.{schema.name}s"])
    assert data == [(f.name, HIVE_TYPES[f.type]) for f in schema.fields]
    assert parts == [("dt", "DATE")]


def test_raw_tables_are_what_the_lander_writes(cfg):
    from ingestion.raw_tables import HiveRegistrar

    all_tables, registrar = tables(cfg), HiveRegistrar(cfg)
    journal = {cfg.routing.topics.orders, cfg.routing.topics.executions}
    for spec in topic_specs(cfg):
        name = registrar.table(spec.topic)
        data, parts = columns(all_tables[name])
        if spec.topic in journal:  # trading.orders/executions: the event's columns, provenance unlisted
            assert name.startswith("trading.")
            assert data == [(f.name, ARROW_TO_HIVE[str(f.type)]) for f in spec.schema], name
        else:
            assert name == f"raw.{spec.topic.replace('.', '_')}"
            assert data == [(f.name, ARROW_TO_HIVE[str(f.type)]) for f in spec.file_schema], name
        assert parts == [("dt", "DATE")]


def test_features_table_is_the_jobs_output():
    from spark_jobs.features import OUTPUT_COLUMNS

    data, parts = columns(next(s.sql for s in statements(load_config()) if s.name.endswith(".bar_features")))
    assert [n for n, _ in data + parts] == OUTPUT_COLUMNS
    assert parts == [("interval", "STRING"), ("dt", "DATE")]
    assert all(t == "DOUBLE" for n, t in data if n not in ("ts", "symbol", "trade_count"))


def test_real_time_tables_are_what_the_speed_layer_writes(cfg):
    from ingestion.quarantine import QUARANTINE_SCHEMA
    from spark_jobs.speed_layer import realtime_tables, table_columns
    from tradelake.schemas import QUOTE

    all_tables = tables(cfg)
    names = realtime_tables(cfg)
    assert names == {"trade": "curated.rt_trades", "quote": "curated.rt_quotes",
                     "quarantine": "raw.speed_quarantine"}
    for kind, schema in (("trade", TRADE), ("quote", QUOTE)):
        data, parts = columns(all_tables[names[kind]])
        assert [n for n, _ in data + parts] == table_columns(kind)
        assert data == [(f.name, HIVE_TYPES[f.type]) for f in schema.fields]
        assert parts == [("dt", "DATE"), ("batch_id", "BIGINT")]
        assert f"LOCATION '{cfg.lake.root}/curated/rt_{kind}s'" in all_tables[names[kind]]
    assert f"LOCATION '{cfg.lake.root}/quarantine/speed_layer/raw'" in all_tables[names["quarantine"]]
    data, parts = columns(all_tables[names["quarantine"]])
    assert data == [(f.name, ARROW_TO_HIVE[str(f.type)]) for f in QUARANTINE_SCHEMA]
    assert [n for n, _ in data + parts] == table_columns("quarantine")
    assert parts == [("dt", "DATE"), ("batch_id", "BIGINT")]
