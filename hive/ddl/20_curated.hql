-- curated: the batch layer's typed, deduplicated tables (written by spark_jobs/etl_ticks.py and bars.py).
-- Applied by `tradelake hive apply` (and by the Spark jobs before they write), idempotently.
-- ${hivevar:...} values come from the profile (conf/*.yaml); with beeline pass them yourself:
--   beeline -u "jdbc:hive2://127.0.0.1:10010/default;auth=noSasl" --hivevar lake_root=hdfs://... -f hive/ddl/20_curated.hql
-- Column types follow tradelake/schemas.py (tests/unit/test_hive_ddl.py keeps them in step).

CREATE DATABASE IF NOT EXISTS ${hivevar:curated_db}
COMMENT 'batch layer: typed, deduplicated trades and OHLCV bars';

-- ticks: no Parquet dictionary for the columns unique per row (TBLPROPERTIES: the writer built one
-- for every column chunk and threw it away); an existing table needs ALTER TABLE ... SET TBLPROPERTIES.
CREATE EXTERNAL TABLE IF NOT EXISTS ${hivevar:curated_db}.ticks (
  `ts` BIGINT COMMENT 'event time, UTC ns since epoch',
  `symbol` STRING COMMENT 'instrument symbol',
  `price` DOUBLE COMMENT 'trade price',
  `size` DOUBLE COMMENT 'traded quantity',
  `trade_id` STRING COMMENT 'venue-assigned trade id',
  `exchange` STRING COMMENT 'executing venue; null if the feed omits it',
  `seq` BIGINT COMMENT 'feed sequence number, orders events sharing a ts',
  `side` STRING COMMENT 'aggressor: \'B\' buyer or \'S\' seller; null if unknown',
  `conditions` STRING COMMENT 'sale condition codes as sent by the feed',
  `ingest_ts` BIGINT COMMENT 'when the lake received it, UTC ns'
)
COMMENT 'trades, typed and deduplicated by (symbol, ts, seq): spark_jobs/etl_ticks.py'
PARTITIONED BY (
  `dt` DATE COMMENT 'UTC date of ts'
)
STORED AS PARQUET
LOCATION '${hivevar:lake_root}/${hivevar:curated_db}/ticks'
TBLPROPERTIES ('parquet.enable.dictionary#ts' = 'false', 'parquet.enable.dictionary#seq' = 'false',
               'parquet.enable.dictionary#trade_id' = 'false', 'parquet.enable.dictionary#ingest_ts' = 'false');

CREATE EXTERNAL TABLE IF NOT EXISTS ${hivevar:curated_db}.bars (
  `ts` BIGINT COMMENT 'bar open time, UTC ns since epoch',
  `symbol` STRING COMMENT 'instrument symbol',
  `open` DOUBLE COMMENT 'first trade price',
  `high` DOUBLE COMMENT 'highest trade price',
  `low` DOUBLE COMMENT 'lowest trade price',
  `close` DOUBLE COMMENT 'last trade price',
  `volume` DOUBLE COMMENT 'total traded quantity',
  `vwap` DOUBLE COMMENT 'volume-weighted average price; null if the bar\'s volume is 0',
  `trade_count` BIGINT COMMENT 'number of trades in the bar'
)
COMMENT 'OHLCV bars from curated ticks, clock-aligned in UTC, no bar for an interval without trades: spark_jobs/bars.py'
PARTITIONED BY (
  `interval` STRING COMMENT 'bar length: 1m, 5m, 1h or 1d',
  `dt` DATE COMMENT 'UTC date of ts'
)
STORED AS PARQUET
LOCATION '${hivevar:lake_root}/${hivevar:curated_db}/bars';

-- The speed layer's real-time tables (spark_jobs/speed_layer.py): every tick it accepted, as it
-- arrived, one partition per (event date, micro-batch). A replayed micro-batch rewrites exactly its
-- own partitions (dynamic partition overwrite), so a restart from the checkpoint never duplicates.
-- The batch layer's curated.ticks supersedes them; old partitions can be dropped once it covers a day.
-- No Parquet dictionary for the columns unique per row, as for ticks (the writer's CPU is shared with
-- the ODS query's on a small machine).
CREATE EXTERNAL TABLE IF NOT EXISTS ${hivevar:curated_db}.${hivevar:rt_trades_table} (
  `ts` BIGINT COMMENT 'event time, UTC ns since epoch',
  `symbol` STRING COMMENT 'instrument symbol',
  `price` DOUBLE COMMENT 'trade price',
  `size` DOUBLE COMMENT 'traded quantity',
  `trade_id` STRING COMMENT 'venue-assigned trade id',
  `exchange` STRING COMMENT 'executing venue; null if the feed omits it',
  `seq` BIGINT COMMENT 'feed sequence number, orders events sharing a ts',
  `side` STRING COMMENT 'aggressor: \'B\' buyer or \'S\' seller; null if unknown',
  `conditions` STRING COMMENT 'sale condition codes as sent by the feed',
  `ingest_ts` BIGINT COMMENT 'when the lake received it, UTC ns'
)
COMMENT 'real-time trades from Kafka topic ${hivevar:trades_topic}, one row per (symbol, ts, seq): spark_jobs/speed_layer.py'
PARTITIONED BY (
  `dt` DATE COMMENT 'UTC date of ts',
  `batch_id` BIGINT COMMENT 'the speed layer\'s micro-batch that wrote the rows'
)
STORED AS PARQUET
LOCATION '${hivevar:lake_root}/${hivevar:curated_db}/${hivevar:rt_trades_table}'
TBLPROPERTIES ('parquet.enable.dictionary#ts' = 'false', 'parquet.enable.dictionary#seq' = 'false',
               'parquet.enable.dictionary#trade_id' = 'false', 'parquet.enable.dictionary#ingest_ts' = 'false');

CREATE EXTERNAL TABLE IF NOT EXISTS ${hivevar:curated_db}.${hivevar:rt_quotes_table} (
  `ts` BIGINT COMMENT 'event time, UTC ns since epoch',
  `symbol` STRING COMMENT 'instrument symbol',
  `bid_price` DOUBLE COMMENT 'best bid price',
  `bid_size` DOUBLE COMMENT 'quantity at the best bid',
  `ask_price` DOUBLE COMMENT 'best ask price',
  `ask_size` DOUBLE COMMENT 'quantity at the best ask',
  `exchange` STRING COMMENT 'quoting venue; null for consolidated quotes',
  `seq` BIGINT COMMENT 'feed sequence number, orders events sharing a ts',
  `ingest_ts` BIGINT COMMENT 'when the lake received it, UTC ns'
)
COMMENT 'real-time quotes from Kafka topic ${hivevar:quotes_topic}, one row per (symbol, ts, seq): spark_jobs/speed_layer.py'
PARTITIONED BY (
  `dt` DATE COMMENT 'UTC date of ts',
  `batch_id` BIGINT COMMENT 'the speed layer\'s micro-batch that wrote the rows'
)
STORED AS PARQUET
LOCATION '${hivevar:lake_root}/${hivevar:curated_db}/${hivevar:rt_quotes_table}'
TBLPROPERTIES ('parquet.enable.dictionary#ts' = 'false', 'parquet.enable.dictionary#seq' = 'false',
               'parquet.enable.dictionary#ingest_ts' = 'false');
