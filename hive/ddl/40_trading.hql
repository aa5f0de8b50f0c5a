-- trading: every order event, execution report, signal and position snapshot, logged back by the
-- order-processing and intelligence layers.
-- Applied by `tradelake hive apply` (and by the Spark jobs before they write), idempotently.
-- ${hivevar:...} values come from the profile (conf/*.yaml); with beeline pass them yourself:
--   beeline -u "jdbc:hive2://127.0.0.1:10010/default;auth=noSasl" --hivevar lake_root=hdfs://... -f hive/ddl/40_trading.hql
-- Column types follow tradelake/schemas.py (tests/unit/test_hive_ddl.py keeps them in step).

CREATE DATABASE IF NOT EXISTS ${hivevar:trading_db}
COMMENT 'orders, executions, signals and positions logged by the trading layers';

CREATE EXTERNAL TABLE IF NOT EXISTS ${hivevar:trading_db}.orders (
  `ts` BIGINT COMMENT 'event time, UTC ns since epoch',
  `symbol` STRING COMMENT 'instrument symbol',
  `cl_ord_id` STRING COMMENT 'client order id (FIX ClOrdID), unique per order',
  `side` STRING COMMENT '\'B\' buy or \'S\' sell',
  `order_type` STRING COMMENT '\'MKT\', \'LMT\', \'STP\' or \'STP_LMT\'',
  `quantity` DOUBLE COMMENT 'order quantity',
  `limit_price` DOUBLE COMMENT 'limit price; null for market orders',
  `time_in_force` STRING COMMENT '\'DAY\', \'GTC\', \'IOC\' or \'FOK\'',
  `strategy_id` STRING COMMENT 'originating strategy; null for manual orders',
  `status` STRING COMMENT 'order state after this event, e.g. \'PENDING_NEW\', \'NEW\'',
  `account` STRING COMMENT 'trading account; null means the default'
)
COMMENT 'An order instruction or state change from the OMS.'
PARTITIONED BY (
  `dt` DATE COMMENT 'UTC date of ts'
)
STORED AS PARQUET
LOCATION '${hivevar:lake_root}/${hivevar:trading_db}/orders';

CREATE EXTERNAL TABLE IF NOT EXISTS ${hivevar:trading_db}.executions (
  `ts` BIGINT COMMENT 'event time, UTC ns since epoch',
  `symbol` STRING COMMENT 'instrument symbol',
  `exec_id` STRING COMMENT 'execution id (FIX ExecID), unique per report',
  `cl_ord_id` STRING COMMENT 'client order id this report is about',
  `order_id` STRING COMMENT 'broker/venue order id; null before acknowledgement',
  `exec_type` STRING COMMENT 'FIX ExecType name, e.g. \'NEW\', \'TRADE\', \'CANCELED\'',
  `order_status` STRING COMMENT 'FIX OrdStatus name after this report',
  `side` STRING COMMENT '\'B\' buy or \'S\' sell',
  `last_qty` DOUBLE COMMENT 'quantity filled by this report; 0 if not a fill',
  `last_price` DOUBLE COMMENT 'price of this fill; 0 if not a fill',
  `cum_qty` DOUBLE COMMENT 'total quantity filled so far',
  `leaves_qty` DOUBLE COMMENT 'quantity still open',
  `avg_price` DOUBLE COMMENT 'average fill price so far; 0 if nothing filled',
  `commission` DOUBLE COMMENT 'commission charged; null if not reported',
  `venue` STRING COMMENT 'broker or venue that sent the report'
)
COMMENT 'An execution report (FIX 35=8) from a broker.'
PARTITIONED BY (
  `dt` DATE COMMENT 'UTC date of ts'
)
STORED AS PARQUET
LOCATION '${hivevar:lake_root}/${hivevar:trading_db}/executions';

CREATE EXTERNAL TABLE IF NOT EXISTS ${hivevar:trading_db}.signals (
  `ts` BIGINT COMMENT 'event time, UTC ns since epoch',
  `symbol` STRING COMMENT 'instrument symbol',
  `strategy_id` STRING COMMENT 'strategy that produced the signal',
  `signal_type` STRING COMMENT 'kind of signal, e.g. \'entry\', \'exit\', \'alpha\'',
  `strength` DOUBLE COMMENT 'conviction; sign gives direction, conventionally in [-1, 1]',
  `target_position` DOUBLE COMMENT 'desired position; null if advisory',
  `model_version` STRING COMMENT 'model that produced it; null for rules'
)
COMMENT 'A strategy signal.'
PARTITIONED BY (
  `dt` DATE COMMENT 'UTC date of ts'
)
STORED AS PARQUET
LOCATION '${hivevar:lake_root}/${hivevar:trading_db}/signals';

CREATE EXTERNAL TABLE IF NOT EXISTS ${hivevar:trading_db}.positions (
  `ts` BIGINT COMMENT 'event time, UTC ns since epoch',
  `symbol` STRING COMMENT 'instrument symbol',
  `account` STRING COMMENT 'trading account',
  `quantity` DOUBLE COMMENT 'signed position; negative is short',
  `avg_price` DOUBLE COMMENT 'average cost of the open position',
  `realized_pnl` DOUBLE COMMENT 'realized profit and loss to date',
  `unrealized_pnl` DOUBLE COMMENT 'mark-to-market P&L; null if no mark'
)
COMMENT 'A position snapshot per account and symbol.'
PARTITIONED BY (
  `dt` DATE COMMENT 'UTC date of ts'
)
STORED AS PARQUET
LOCATION '${hivevar:lake_root}/${hivevar:trading_db}/positions';
