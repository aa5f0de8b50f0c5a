-- Analysts' views over curated bars. Views are stored in the shared metastore, so spark-submit
-- jobs, the Spark Thrift Server (pyhive, beeline) and notebooks all see the same definitions.
-- Re-applying replaces them (CREATE OR REPLACE VIEW).

-- One row per symbol and UTC day from the 1d bars.
CREATE OR REPLACE VIEW ${hivevar:curated_db}.daily_ohlcv
COMMENT 'daily OHLCV per symbol (1d bars)'
AS SELECT symbol, dt, `open`, high, low, `close`, volume, vwap, trade_count
FROM ${hivevar:curated_db}.bars
WHERE `interval` = '1d';

-- Daily VWAP from the 1-minute bars: sum(vwap * volume) / sum(volume) equals the VWAP of the
-- day's trades (each 1m bar's vwap * volume is its turnover).
CREATE OR REPLACE VIEW ${hivevar:curated_db}.daily_vwap
COMMENT 'VWAP per symbol and UTC day, from 1m bars'
AS SELECT symbol, dt,
       sum(vwap * volume) / sum(volume) AS vwap,
       sum(volume) AS volume,
       sum(trade_count) AS trade_count
FROM ${hivevar:curated_db}.bars
WHERE `interval` = '1m' AND volume > 0
GROUP BY symbol, dt;

-- Close-to-close returns per symbol from the 1d bars; the first day of a symbol has null returns.
CREATE OR REPLACE VIEW ${hivevar:curated_db}.daily_returns
COMMENT 'daily close-to-close simple and log returns per symbol'
AS SELECT symbol, dt, `close`,
       `close` / lag(`close`) OVER (PARTITION BY symbol ORDER BY dt) - 1 AS ret,
       ln(`close` / lag(`close`) OVER (PARTITION BY symbol ORDER BY dt)) AS log_ret
FROM ${hivevar:curated_db}.bars
WHERE `interval` = '1d';
