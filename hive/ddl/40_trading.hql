-- trading: every order event, execution report, signal and position snapshot, logged back by the
-- order-processing and intelligence layers.
-- Applied by `tradelake hive apply` (and by the Spark jobs before they write), idempotently.
-- ${hivevar:...} values come from the profile (conf/*.yaml); with beeline pass them yourself:
--   beeline -u "jdbc:hive2://127.0.0.1:10010/default;auth=noSasl" --hivevar lake_root=hdfs://... -f hive/ddl/40_trading.hql
-- orders and executions are the OMS journal's Kafka topics (routing.topics) as the lake lander lands
-- them: <lake>/<raw zone>/<topic>/dt=.../ (immutable; each file also carries its Kafka provenance
-- columns, which these tables do not list). The lander registers their partitions.
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
LOCATION '${hivevar:lake_root}/${hivevar:raw_zone}/${hivevar:orders_topic}';

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
  `venue` STRING COMMENT 'broker or venue that sent the report',
  `orig_cl_ord_id` STRING COMMENT 'order a cancel/replace acted on (FIX OrigClOrdID)',
  `text` STRING COMMENT 'free text, e.g. a reject reason (FIX Text)'
)
COMMENT 'An execution report (FIX 35=8) from a broker.'
PARTITIONED BY (
  `dt` DATE COMMENT 'UTC date of ts'
)
STORED AS PARQUET
LOCATION '${hivevar:lake_root}/${hivevar:raw_zone}/${hivevar:executions_topic}';

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

-- Backtests (intelligence/backtest.py, `tradelake backtest`): one row per run (a sweep writes one
-- per parameter combination, sharing a sweep_id), and each single run's trade log and equity curve.
-- Written by intelligence/results.py: Parquet files into these folders, partitions added here.
CREATE EXTERNAL TABLE IF NOT EXISTS ${hivevar:trading_db}.backtest_runs (
  `ts` BIGINT COMMENT 'when the run finished, UTC ns since epoch',
  `run_id` STRING COMMENT 'unique run id; a run\'s trades and equity are partition run_id of the two tables below',
  `sweep_id` STRING COMMENT 'the parameter sweep it belongs to; null for a single run',
  `strategy` STRING COMMENT 'strategy name, e.g. \'mean_reversion\'',
  `params` STRING COMMENT 'JSON: the strategy\'s and the backtest\'s parameters',
  `symbols` STRING COMMENT 'comma-separated symbols of the bars read (empty: all)',
  `interval` STRING COMMENT 'bar length',
  `date_from` DATE COMMENT 'first UTC date of the bars',
  `date_to` DATE COMMENT 'last UTC date of the bars',
  `bars` BIGINT COMMENT 'bars processed',
  `fills` BIGINT COMMENT 'fills (trades) executed',
  `round_trips` BIGINT COMMENT 'closed round trips (flat -> position -> flat)',
  `initial_cash` DOUBLE COMMENT 'equity at the start',
  `final_equity` DOUBLE COMMENT 'equity at the end',
  `commissions` DOUBLE COMMENT 'commissions paid',
  `total_return` DOUBLE COMMENT 'final / initial equity - 1',
  `cagr` DOUBLE COMMENT 'compound annual growth rate over the span of the run; null for a zero span',
  `sharpe` DOUBLE COMMENT 'annualised Sharpe ratio of per-step returns (risk-free 0)',
  `sortino` DOUBLE COMMENT 'annualised Sortino ratio of per-step returns',
  `max_drawdown` DOUBLE COMMENT 'largest fall from a running equity peak, as a fraction',
  `turnover` DOUBLE COMMENT 'traded notional / mean equity',
  `hit_rate` DOUBLE COMMENT 'winning round trips / round trips (net of commissions)',
  `exposure` DOUBLE COMMENT 'fraction of steps with an open position',
  `seconds` DOUBLE COMMENT 'wall time of the backtest itself'
)
COMMENT 'backtest runs and their metrics: intelligence/metrics.py defines each'
PARTITIONED BY (
  `dt` DATE COMMENT 'UTC date the run finished'
)
STORED AS PARQUET
LOCATION '${hivevar:lake_root}/${hivevar:trading_db}/backtest_runs';

CREATE EXTERNAL TABLE IF NOT EXISTS ${hivevar:trading_db}.backtest_trades (
  `ts` BIGINT COMMENT 'fill time (the filling bar\'s open), UTC ns since epoch',
  `symbol` STRING COMMENT 'instrument symbol',
  `exec_id` STRING COMMENT 'execution id, unique per fill of the run',
  `cl_ord_id` STRING COMMENT 'client order id of the filled order',
  `strategy_id` STRING COMMENT 'strategy that sent the order',
  `side` STRING COMMENT '\'B\' buy or \'S\' sell',
  `last_qty` DOUBLE COMMENT 'quantity filled',
  `last_price` DOUBLE COMMENT 'fill price, slippage included',
  `commission` DOUBLE COMMENT 'commission charged',
  `position` DOUBLE COMMENT 'the symbol\'s signed position after the fill',
  `cash` DOUBLE COMMENT 'account cash after the fill',
  `realized_pnl` DOUBLE COMMENT 'the symbol\'s realized P&L to date, before commissions'
)
COMMENT 'the trade log of a backtest run'
PARTITIONED BY (
  `run_id` STRING COMMENT 'the run (backtest_runs.run_id)'
)
STORED AS PARQUET
LOCATION '${hivevar:lake_root}/${hivevar:trading_db}/backtest_trades';

CREATE EXTERNAL TABLE IF NOT EXISTS ${hivevar:trading_db}.backtest_equity (
  `ts` BIGINT COMMENT 'event time of the sample (a bar close), UTC ns since epoch',
  `equity` DOUBLE COMMENT 'cash + sum of position values',
  `cash` DOUBLE COMMENT 'account cash',
  `gross_exposure` DOUBLE COMMENT 'sum of |position value|',
  `net_exposure` DOUBLE COMMENT 'sum of position values (equity - cash)',
  `drawdown` DOUBLE COMMENT '1 - equity / running peak'
)
COMMENT 'the equity curve of a backtest run: one sample per event time'
PARTITIONED BY (
  `run_id` STRING COMMENT 'the run (backtest_runs.run_id)'
)
STORED AS PARQUET
LOCATION '${hivevar:lake_root}/${hivevar:trading_db}/backtest_equity';
