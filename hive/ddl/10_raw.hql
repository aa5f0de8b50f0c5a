-- raw: exactly what arrived, as the lander wrote it (one table per landed Kafka topic).
-- Applied by `tradelake hive apply` (and by the Spark jobs before they write), idempotently.
-- ${hivevar:...} values come from the profile (conf/*.yaml); with beeline pass them yourself:
--   beeline -u "jdbc:hive2://127.0.0.1:10010/default;auth=noSasl" --hivevar lake_root=hdfs://... -f hive/ddl/10_raw.hql
-- Column types follow tradelake/schemas.py (tests/unit/test_hive_ddl.py keeps them in step).

CREATE DATABASE IF NOT EXISTS ${hivevar:raw_db}
COMMENT 'immutable raw zone: landed Kafka topics, exactly once, with Kafka provenance';

CREATE EXTERNAL TABLE IF NOT EXISTS ${hivevar:raw_db}.${hivevar:trades_table} (
  `ts` BIGINT COMMENT 'event time, UTC ns since epoch',
  `symbol` STRING COMMENT 'instrument symbol',
  `price` DOUBLE COMMENT 'trade price',
  `size` DOUBLE COMMENT 'traded quantity',
  `trade_id` STRING COMMENT 'venue-assigned trade id',
  `exchange` STRING COMMENT 'executing venue; null if the feed omits it',
  `seq` BIGINT COMMENT 'feed sequence number, orders events sharing a ts',
  `side` STRING COMMENT 'aggressor: \'B\' buyer or \'S\' seller; null if unknown',
  `conditions` STRING COMMENT 'sale condition codes as sent by the feed',
  `ingest_ts` BIGINT COMMENT 'when the lake received it, UTC ns',
  `kafka_partition` INT COMMENT 'Kafka partition the message came from',
  `kafka_offset` BIGINT COMMENT 'Kafka offset of the message'
)
COMMENT 'landed from Kafka topic ${hivevar:trades_topic}'
PARTITIONED BY (
  `dt` DATE COMMENT 'the lander\'s date folder: UTC date of the first row of each Kafka message'
)
STORED AS PARQUET
LOCATION '${hivevar:lake_root}/${hivevar:raw_zone}/${hivevar:trades_topic}';

CREATE EXTERNAL TABLE IF NOT EXISTS ${hivevar:raw_db}.${hivevar:quotes_table} (
  `ts` BIGINT COMMENT 'event time, UTC ns since epoch',
  `symbol` STRING COMMENT 'instrument symbol',
  `bid_price` DOUBLE COMMENT 'best bid price',
  `bid_size` DOUBLE COMMENT 'quantity at the best bid',
  `ask_price` DOUBLE COMMENT 'best ask price',
  `ask_size` DOUBLE COMMENT 'quantity at the best ask',
  `exchange` STRING COMMENT 'quoting venue; null for consolidated quotes',
  `seq` BIGINT COMMENT 'feed sequence number, orders events sharing a ts',
  `ingest_ts` BIGINT COMMENT 'when the lake received it, UTC ns',
  `kafka_partition` INT COMMENT 'Kafka partition the message came from',
  `kafka_offset` BIGINT COMMENT 'Kafka offset of the message'
)
COMMENT 'landed from Kafka topic ${hivevar:quotes_topic}'
PARTITIONED BY (
  `dt` DATE COMMENT 'the lander\'s date folder: UTC date of the first row of each Kafka message'
)
STORED AS PARQUET
LOCATION '${hivevar:lake_root}/${hivevar:raw_zone}/${hivevar:quotes_topic}';

CREATE EXTERNAL TABLE IF NOT EXISTS ${hivevar:raw_db}.${hivevar:bars_table} (
  `ts` BIGINT COMMENT 'bar open time, UTC ns since epoch',
  `symbol` STRING COMMENT 'instrument symbol',
  `interval` STRING COMMENT 'bar length, e.g. \'1m\', \'1h\', \'1d\'',
  `open` DOUBLE COMMENT 'first trade price',
  `high` DOUBLE COMMENT 'highest trade price',
  `low` DOUBLE COMMENT 'lowest trade price',
  `close` DOUBLE COMMENT 'last trade price',
  `volume` DOUBLE COMMENT 'total traded quantity',
  `vwap` DOUBLE COMMENT 'volume-weighted average price; null if not supplied',
  `trade_count` BIGINT COMMENT 'number of trades in the bar',
  `kafka_partition` INT COMMENT 'Kafka partition the message came from',
  `kafka_offset` BIGINT COMMENT 'Kafka offset of the message'
)
COMMENT 'landed from Kafka topic ${hivevar:bars_topic}'
PARTITIONED BY (
  `dt` DATE COMMENT 'the lander\'s date folder: UTC date of the first row of each Kafka message'
)
STORED AS PARQUET
LOCATION '${hivevar:lake_root}/${hivevar:raw_zone}/${hivevar:bars_topic}';

-- Historical files (tradelake land-files): one table per record kind, no Kafka provenance.
CREATE EXTERNAL TABLE IF NOT EXISTS ${hivevar:raw_db}.files_trade (
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
COMMENT 'historical trade files landed by tradelake land-files'
PARTITIONED BY (
  `dt` DATE COMMENT 'UTC date of ts (event date)'
)
STORED AS PARQUET
LOCATION '${hivevar:lake_root}/${hivevar:raw_zone}/files.trade';

CREATE EXTERNAL TABLE IF NOT EXISTS ${hivevar:raw_db}.files_quote (
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
COMMENT 'historical quote files landed by tradelake land-files'
PARTITIONED BY (
  `dt` DATE COMMENT 'UTC date of ts (event date)'
)
STORED AS PARQUET
LOCATION '${hivevar:lake_root}/${hivevar:raw_zone}/files.quote';

CREATE EXTERNAL TABLE IF NOT EXISTS ${hivevar:raw_db}.files_bar (
  `ts` BIGINT COMMENT 'bar open time, UTC ns since epoch',
  `symbol` STRING COMMENT 'instrument symbol',
  `interval` STRING COMMENT 'bar length, e.g. \'1m\', \'1h\', \'1d\'',
  `open` DOUBLE COMMENT 'first trade price',
  `high` DOUBLE COMMENT 'highest trade price',
  `low` DOUBLE COMMENT 'lowest trade price',
  `close` DOUBLE COMMENT 'last trade price',
  `volume` DOUBLE COMMENT 'total traded quantity',
  `vwap` DOUBLE COMMENT 'volume-weighted average price; null if not supplied',
  `trade_count` BIGINT COMMENT 'number of trades in the bar'
)
COMMENT 'historical bar files landed by tradelake land-files'
PARTITIONED BY (
  `dt` DATE COMMENT 'UTC date of ts (event date)'
)
STORED AS PARQUET
LOCATION '${hivevar:lake_root}/${hivevar:raw_zone}/files.bar';

-- Rejected records with their reason code (ingestion/quarantine.py): from the quarantine topic,
-- and from land-files.
CREATE EXTERNAL TABLE IF NOT EXISTS ${hivevar:raw_db}.${hivevar:quarantine_table} (
  `ts` BIGINT COMMENT 'when the record was rejected, UTC ns',
  `event_ts` BIGINT COMMENT 'the record\'s own ts, if it could be parsed',
  `kind` STRING COMMENT '\'trade\', \'quote\' or \'bar\'',
  `symbol` STRING COMMENT 'the record\'s symbol, if it had one',
  `reason` STRING COMMENT 'a Reason value',
  `detail` STRING COMMENT 'human-readable explanation',
  `source` STRING COMMENT 'file path, topic or feed name',
  `line_no` BIGINT COMMENT 'line in the source file; null for typed rows',
  `payload` BINARY COMMENT 'raw bytes as received; JSON of the row for typed batches',
  `kafka_partition` INT COMMENT 'Kafka partition the message came from',
  `kafka_offset` BIGINT COMMENT 'Kafka offset of the message'
)
COMMENT 'rejected records landed from Kafka topic ${hivevar:quarantine_topic}'
PARTITIONED BY (
  `dt` DATE COMMENT 'the lander\'s date folder'
)
STORED AS PARQUET
LOCATION '${hivevar:lake_root}/${hivevar:quarantine_zone}/${hivevar:quarantine_topic}';

CREATE EXTERNAL TABLE IF NOT EXISTS ${hivevar:raw_db}.files_quarantine (
  `ts` BIGINT COMMENT 'when the record was rejected, UTC ns',
  `event_ts` BIGINT COMMENT 'the record\'s own ts, if it could be parsed',
  `kind` STRING COMMENT '\'trade\', \'quote\' or \'bar\'',
  `symbol` STRING COMMENT 'the record\'s symbol, if it had one',
  `reason` STRING COMMENT 'a Reason value',
  `detail` STRING COMMENT 'human-readable explanation',
  `source` STRING COMMENT 'file path, topic or feed name',
  `line_no` BIGINT COMMENT 'line in the source file; null for typed rows',
  `payload` BINARY COMMENT 'raw bytes as received; JSON of the row for typed batches'
)
COMMENT 'records refused by tradelake land-files'
PARTITIONED BY (
  `dt` DATE COMMENT 'UTC date the file was landed'
)
STORED AS PARQUET
LOCATION '${hivevar:lake_root}/${hivevar:quarantine_zone}/files';

-- Records the speed layer (spark_jobs/speed_layer.py) refused, with their reason code: one
-- partition per (UTC date of the rejection, micro-batch), rewritten whole when a batch is replayed.
-- One folder per warehouse (raw_db), so a scratch warehouse never writes into the real one's files.
CREATE EXTERNAL TABLE IF NOT EXISTS ${hivevar:raw_db}.speed_quarantine (
  `ts` BIGINT COMMENT 'when the record was rejected (the Kafka timestamp it was judged against), UTC ns',
  `event_ts` BIGINT COMMENT 'the record\'s own ts, if it could be parsed',
  `kind` STRING COMMENT '\'trade\' or \'quote\'',
  `symbol` STRING COMMENT 'the record\'s symbol, if it had one',
  `reason` STRING COMMENT 'a Reason value',
  `detail` STRING COMMENT 'human-readable explanation',
  `source` STRING COMMENT 'kafka:<topic> (kafka:<topic>/<partition>@<offset> for an undecodable message)',
  `line_no` BIGINT COMMENT 'always null (typed rows)',
  `payload` BINARY COMMENT 'JSON of the row; the message bytes for an undecodable message'
)
COMMENT 'records refused by the speed layer'
PARTITIONED BY (
  `dt` DATE COMMENT 'UTC date of ts',
  `batch_id` BIGINT COMMENT 'the speed layer\'s micro-batch that refused them'
)
STORED AS PARQUET
LOCATION '${hivevar:lake_root}/${hivevar:quarantine_zone}/speed_layer/${hivevar:raw_db}';
