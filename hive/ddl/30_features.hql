-- features: indicators per bar (spark_jobs/features.py documents each definition once).
-- Applied by `tradelake hive apply` (and by the Spark jobs before they write), idempotently.
-- ${hivevar:...} values come from the profile (conf/*.yaml); with beeline pass them yourself:
--   beeline -u "jdbc:hive2://127.0.0.1:10010/default;auth=noSasl" --hivevar lake_root=hdfs://... -f hive/ddl/30_features.hql
-- Columns follow spark_jobs/features.py OUTPUT_COLUMNS (tests/unit/test_hive_ddl.py keeps them in step).

CREATE DATABASE IF NOT EXISTS ${hivevar:features_db}
COMMENT 'model inputs: technical indicators computed from curated bars';

CREATE EXTERNAL TABLE IF NOT EXISTS ${hivevar:features_db}.bar_features (
  `ts` BIGINT COMMENT 'bar open time, UTC ns since epoch',
  `symbol` STRING COMMENT 'instrument symbol',
  `open` DOUBLE COMMENT 'bar open',
  `high` DOUBLE COMMENT 'bar high',
  `low` DOUBLE COMMENT 'bar low',
  `close` DOUBLE COMMENT 'bar close',
  `volume` DOUBLE COMMENT 'bar volume',
  `vwap` DOUBLE COMMENT 'bar VWAP',
  `trade_count` BIGINT COMMENT 'trades in the bar',
  `ret` DOUBLE COMMENT 'simple return close/previous close - 1',
  `log_ret` DOUBLE COMMENT 'log return ln(close/previous close)',
  `sma_10` DOUBLE COMMENT 'simple moving average of 10 closes',
  `sma_20` DOUBLE COMMENT 'simple moving average of 20 closes',
  `sma_50` DOUBLE COMMENT 'simple moving average of 50 closes',
  `bb_mid` DOUBLE COMMENT 'Bollinger middle band (SMA 20)',
  `bb_upper` DOUBLE COMMENT 'Bollinger upper band (SMA 20 + 2 population sd)',
  `bb_lower` DOUBLE COMMENT 'Bollinger lower band (SMA 20 - 2 population sd)',
  `zscore_20` DOUBLE COMMENT '(close - SMA 20) / population sd of 20 closes',
  `obv` DOUBLE COMMENT 'on-balance volume over the warm-up window',
  `vwap_20` DOUBLE COMMENT 'rolling VWAP over 20 bars',
  `rv_20` DOUBLE COMMENT 'realized volatility: sqrt of the sum of 20 squared log returns',
  `ema_10` DOUBLE COMMENT 'exponential moving average, 10 bars (seeded with SMA 10)',
  `ema_20` DOUBLE COMMENT 'exponential moving average, 20 bars',
  `ema_50` DOUBLE COMMENT 'exponential moving average, 50 bars',
  `macd` DOUBLE COMMENT 'MACD line: EMA 12 - EMA 26',
  `macd_signal` DOUBLE COMMENT 'MACD signal: EMA 9 of the MACD line',
  `macd_hist` DOUBLE COMMENT 'MACD histogram: macd - macd_signal',
  `rsi_14` DOUBLE COMMENT 'relative strength index, Wilder smoothing, 14 bars',
  `atr_14` DOUBLE COMMENT 'average true range, Wilder smoothing, 14 bars'
)
COMMENT 'technical indicators per bar; a date depends only on its warm-up window: spark_jobs/features.py'
PARTITIONED BY (
  `interval` STRING COMMENT 'bar length: 1m, 5m, 1h or 1d',
  `dt` DATE COMMENT 'UTC date of ts'
)
STORED AS PARQUET
LOCATION '${hivevar:lake_root}/${hivevar:features_db}/bar_features';
