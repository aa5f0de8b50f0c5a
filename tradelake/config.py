"""Typed, frozen configuration loaded from ``conf/<profile>.yaml`` with environment overrides.

Profile: ``--profile`` on the CLI, else ``TRADELAKE_PROFILE``, else ``local``.
Override any key with ``TRADELAKE_<SECTION>__<KEY>`` (double underscore between levels), e.g.
``TRADELAKE_KAFKA__BOOTSTRAP=broker1:9092``
(lists: comma-separated; mappings: a JSON object). Secrets (passwords) are never read from YAML:
they come only from the environment and are hidden in ``repr``.

Loading validates every key against the dataclasses below: an unknown key, a missing required
key or a value of the wrong type fails with a message naming the key and the file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_SOURCE_ROOT = Path(__file__).resolve().parent.parent
# From the ``make dist`` zip (spark-submit --py-files on a cluster) there is no checkout: relative
# paths are the container's working directory, where --files puts the profile.
PROJECT_ROOT = _SOURCE_ROOT if _SOURCE_ROOT.is_dir() else Path.cwd()
CONF_DIR = Path(os.environ.get("TRADELAKE_CONF_DIR")
                or (PROJECT_ROOT / "conf" if (PROJECT_ROOT / "conf").is_dir() else PROJECT_ROOT))
ENV_PREFIX = "TRADELAKE_"


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message names the key and the source."""


def secret(default: str | None = None) -> Any:
    """A field read only from the environment and masked in repr."""
    return field(default=default, repr=False, metadata={"secret": True})


def masked_dict(obj: Any) -> Any:
    """``dataclasses.asdict`` with every secret that is set shown as ``***`` (any section, any depth)."""
    if not dataclasses.is_dataclass(obj):
        return obj
    out = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.metadata.get("secret"):
            out[f.name] = "***" if value else value
        elif isinstance(value, tuple):
            out[f.name] = [masked_dict(v) for v in value]
        else:
            out[f.name] = masked_dict(value)
    return out


@dataclass(frozen=True)
class StackConfig:
    """The project-managed single-node stack (ignored by profiles that point at clusters)."""

    managed: bool
    var_dir: str
    bind_host: str = "127.0.0.1"
    start_timeout_s: int = 240
    services: tuple[str, ...] = ("postgres", "hdfs", "kafka", "hbase", "hive")


@dataclass(frozen=True)
class PostgresConfig:
    host: str
    port: int
    user: str
    ods_database: str
    metastore_database: str
    password: str | None = secret()

    def dsn(self, database: str | None = None) -> str:
        """libpq DSN; the password, if any, is left to PGPASSWORD-style env handling."""
        db = database or self.ods_database
        dsn = f"host={self.host} port={self.port} user={self.user} dbname={db}"
        return dsn + (f" password={self.password}" if self.password else "")

    def public_dsn(self, database: str | None = None) -> str:
        db = database or self.ods_database
        return f"postgresql://{self.user}@{self.host}:{self.port}/{db}"

    def jdbc_url(self, database: str) -> str:
        return f"jdbc:postgresql://{self.host}:{self.port}/{database}"


@dataclass(frozen=True)
class HdfsConfig:
    namenode_host: str
    rpc_port: int
    http_port: int
    user: str
    datanode_port: int = 19866
    datanode_http_port: int = 19864
    datanode_ipc_port: int = 19867
    heap_mb: int = 384

    @property
    def uri(self) -> str:
        return f"hdfs://{self.namenode_host}:{self.rpc_port}"

    @property
    def webhdfs(self) -> str:
        return f"http://{self.namenode_host}:{self.http_port}"


@dataclass(frozen=True)
class KafkaConfig:
    bootstrap: str
    controller_port: int = 19093
    num_partitions: int = 3
    heap_mb: int = 512


@dataclass(frozen=True)
class HBaseConfig:
    thrift_host: str
    thrift_port: int
    zookeeper_port: int = 12181
    master_port: int = 16100
    master_info_port: int = 16110
    regionserver_port: int = 16120
    regionserver_info_port: int = 16130
    thrift_info_port: int = 19095
    root_dir: str = ""  # empty: <var_dir>/hbase on the local filesystem
    table_prefix: str = "tradelake"
    heap_mb: int = 768


@dataclass(frozen=True)
class HiveConfig:
    """HiveServer2-protocol endpoint (Spark Thrift Server) and the metastore it shares."""

    host: str
    port: int
    auth: str
    username: str
    metastore_uri: str = ""  # empty: JDBC metastore in PostgreSQL (postgres.metastore_database)
    password: str | None = secret()


@dataclass(frozen=True)
class SparkConfig:
    master: str
    driver_memory: str = "1g"
    shuffle_partitions: int = 4
    extra_conf: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LakeConfig:
    root: str  # hdfs://host:port/path or file:///path


@dataclass(frozen=True)
class FlumeConfig:
    """The optional Flume agent (Kafka source -> HDFS sink), started by `stack up --with flume`."""

    agent_name: str = "tradelake"
    topics: tuple[str, ...] = ("md.trades", "md.quotes")
    hdfs_subdir: str = "raw/flume"  # under the lake root: raw/flume/<topic>/dt=YYYY-MM-DD/
    monitor_port: int = 19410  # Flume's JSON metrics over HTTP: the health check
    roll_interval_s: int = 60  # close an HDFS file after this many seconds
    heap_mb: int = 256


@dataclass(frozen=True)
class TopicsConfig:
    """Kafka topic names; keys are symbols."""

    trades: str = "md.trades"
    quotes: str = "md.quotes"
    bars: str = "md.bars"
    quarantine: str = "md.quarantine"


@dataclass(frozen=True)
class IngestConfig:
    """Feeds -> validation -> Kafka."""

    topics: TopicsConfig = field(default_factory=TopicsConfig)
    ticks_per_message: int = 10000  # ticks of one symbol per Kafka message (Arrow IPC batch)
    wire_compression: str = "lz4"  # Arrow IPC body compression: lz4, zstd or none
    universe: tuple[str, ...] = ()  # symbols accepted; empty: every symbol
    sessions: dict[str, str] = field(default_factory=dict)  # symbol|* -> "09:30-16:00 Area/City"
    max_clock_skew_s: int = 5  # a tick later than now + skew is FUTURE_TIMESTAMP
    simulator_symbols: tuple[str, ...] = (
        "AAPL", "MSFT", "AMZN", "GOOG", "META", "NVDA", "TSLA", "JPM", "XOM", "UNH")
    simulator_seed: int = 7
    simulator_start_date: str = "2026-01-05"
    simulator_days: int = 1
    simulator_trades_per_symbol_per_day: int = 20_000


@dataclass(frozen=True)
class LanderConfig:
    """Kafka -> immutable Parquet in the lake, exactly once."""

    group_id: str = "tradelake-lander"
    # Static group membership: a restarted lander with the same id takes its partitions back at
    # once, instead of waiting out the dead one's session. Give each lander process its own id.
    instance_id: str = "lander-1"
    session_timeout_s: int = 10
    roll_bytes: int = 64 * 1024 * 1024  # close a file once this much Arrow data is buffered
    roll_seconds: int = 30  # ... or once its oldest message is this old
    raw_zone: str = "raw"
    quarantine_zone: str = "quarantine"
    compression: str = "snappy"  # Parquet codec: fast to write; zstd packs tighter
    register_partitions: bool = True  # ALTER TABLE ADD PARTITION through the Thrift server


@dataclass(frozen=True)
class WarehouseConfig:
    """Hive databases over the lake (hive/ddl/*.hql) and the batch jobs' settings.

    Database names are settings so a benchmark or a test can build a whole warehouse of its own
    beside the real one.
    """

    raw_db: str = "raw"
    curated_db: str = "curated"
    features_db: str = "features"
    trading_db: str = "trading"
    # Features of a bar dated D use only its symbol's bars of the same interval dated
    # D - warmup .. D (calendar days): see spark_jobs/features.py.
    feature_warmup_days: dict[str, int] = field(
        default_factory=lambda: {"1m": 4, "5m": 4, "1h": 14, "1d": 120})

    def __post_init__(self) -> None:
        for name in (self.raw_db, self.curated_db, self.features_db, self.trading_db):
            if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
                raise ValueError(f"warehouse database name {name!r}: use lower-case letters, digits, _")
        bad = {k: v for k, v in self.feature_warmup_days.items() if not isinstance(v, int) or v < 0}
        if bad:
            raise ValueError(f"warehouse.feature_warmup_days must be whole days >= 0, got {bad}")


@dataclass(frozen=True)
class OdsRulesConfig:
    """Complex-event rules evaluated inside PostgreSQL as ticks and fills arrive (ods/rules)."""

    price_move: bool = True  # each rule can be switched off on its own
    volume_surge: bool = True
    price_move_k_sigma: float = 4.0  # |log move over the window| > k * sigma of 1m log returns
    price_move_window_minutes: int = 5
    lookback_bars: int = 30  # 1m bars before the current one that sigma and mean volume use
    min_lookback_bars: int = 10  # fewer bars than this: no price-move / surge verdict yet
    volume_surge_multiple: float = 5.0  # a 1m bar's volume > multiple * mean of the lookback
    vwap_cross: bool = True  # last trade crosses the symbol's session (UTC day) VWAP
    position_limit: bool = True  # |position| above ods.risk_limits.max_position

    def __post_init__(self) -> None:
        if self.price_move_k_sigma <= 0 or self.volume_surge_multiple <= 0:
            raise ValueError("ods.rules: price_move_k_sigma and volume_surge_multiple must be > 0")
        if not 2 <= self.min_lookback_bars <= self.lookback_bars:
            raise ValueError("ods.rules: need 2 <= min_lookback_bars <= lookback_bars")
        if self.price_move_window_minutes < 1:
            raise ValueError("ods.rules: price_move_window_minutes must be >= 1")


@dataclass(frozen=True)
class OdsConfig:
    """The operational data store: PostgreSQL (default) or HBase behind one interface."""

    store: str = "postgres"  # postgres | hbase
    schema: str = "ods"  # PostgreSQL schema holding the ODS tables
    alerts_channel: str = "tradelake_alerts"  # LISTEN/NOTIFY channel for complex events
    rolling_volume_minutes: int = 5  # rolling_volume: the last N 1-minute buckets per symbol
    rules: OdsRulesConfig = field(default_factory=OdsRulesConfig)

    def __post_init__(self) -> None:
        if self.store not in ("postgres", "hbase"):
            raise ValueError(f"ods.store must be postgres or hbase, got {self.store!r}")
        for name in (self.schema, self.alerts_channel):
            if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
                raise ValueError(f"ods: {name!r} must be a lower-case SQL identifier")
        if self.rolling_volume_minutes < 1:
            raise ValueError("ods.rolling_volume_minutes must be >= 1")


@dataclass(frozen=True)
class SpeedConfig:
    """The streaming speed layer (spark_jobs/speed_layer.py): Kafka -> real-time tables + ODS."""

    checkpoint_dir: str = "checkpoints/speed_layer"  # under the lake root
    trigger_ms: int = 250  # micro-batch interval
    max_offsets_per_trigger: int = 2000  # Kafka messages per micro-batch at most
    starting_offsets: str = "earliest"  # for a new checkpoint only: earliest | latest
    realtime_trades_table: str = "rt_trades"  # in warehouse.curated_db, partitioned (dt, batch)
    realtime_quotes_table: str = "rt_quotes"


@dataclass(frozen=True)
class ModelsConfig:
    """Model training (spark_jobs/train.py) and the lake's model registry.

    Registry: ``<lake.root>/<registry_dir>/<name>/v<version>/`` (a setting, so a test or a
    benchmark keeps a registry of its own beside the real one).
    """

    registry_dir: str = "models"  # under lake.root
    folds: int = 4  # walk-forward folds (test blocks)
    purge_bars: int = 10  # bar times dropped between each train and test block (>= the 1-bar label)
    train_blocks: int = 0  # 0: expanding (anchored) training windows; k: the last k blocks only
    reg_param: float = 0.001  # L2 penalty of the linear and logistic models (standardised features)
    max_iter: int = 100  # logistic regression iterations
    ewma_lambda: float = 0.94  # RiskMetrics decay of the EWMA volatility forecast
    var_levels: tuple[float, ...] = (0.95, 0.99)  # VaR / ES confidence levels
    max_weight: float = 0.4  # position cap per symbol (long-only weights summing to 1)
    risk_aversion: float = 10.0  # mean-variance gamma, in per-bar return units

    def __post_init__(self) -> None:
        if self.folds < 1 or self.purge_bars < 1 or self.train_blocks < 0:
            raise ValueError("models: need folds >= 1, purge_bars >= 1 (the label is the next bar), "
                             "train_blocks >= 0")
        if not 0 < self.ewma_lambda < 1:
            raise ValueError(f"models.ewma_lambda must be in (0, 1), got {self.ewma_lambda}")
        if not self.var_levels or not all(0.5 < a < 1 for a in self.var_levels):
            raise ValueError(f"models.var_levels must be in (0.5, 1), got {self.var_levels}")
        if not 0 < self.max_weight <= 1 or self.risk_aversion <= 0 or self.reg_param < 0:
            raise ValueError("models: need 0 < max_weight <= 1, risk_aversion > 0, reg_param >= 0")
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_./-]*", self.registry_dir) or ".." in self.registry_dir:
            raise ValueError(f"models.registry_dir {self.registry_dir!r}: a relative path under lake.root")


@dataclass(frozen=True)
class IbConfig:
    """Interactive Brokers live market data (``ingestion.ib_source``); off unless enabled, so a
    checkout never dials a broker by accident. Ports: 7497 TWS paper, 4002 IB Gateway paper."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 7497
    client_id: int = 17  # unique per API connection to one TWS/Gateway
    symbols: tuple[str, ...] = ()  # US stocks, subscribed as Stock(symbol, "SMART", "USD")
    quotes: bool = False  # also subscribe to tick-by-tick bid/ask (one more IB tick-by-tick line)


@dataclass(frozen=True)
class BacktestConfig:
    """Backtests (intelligence/backtest.py, ``tradelake backtest``): the simulated account and venue."""

    initial_cash: float = 1_000_000.0
    interval: str = "1m"  # bars of <warehouse.curated_db>.bars a backtest reads
    order_qty: float = 100.0  # units of a full position (a strategy's direction 1)
    fill_on: str = "next_open"  # next_open: market orders fill at the next bar's open | quote
    commission_model: str = "per_share"  # per_share | bps | fixed | none
    commission_rate: float = 0.005  # per unit, basis points of notional, or per fill
    commission_min: float = 1.0  # per fill
    slippage_model: str = "bps"  # bps | fixed (price units) | none
    slippage: float = 1.0
    max_position: float = 0.0  # risk check: |position| per symbol in units; 0 = no limit
    report_dir: str = "reports/backtests"  # under stack.var_dir: PNG charts

    def __post_init__(self) -> None:
        if self.initial_cash <= 0 or self.order_qty <= 0 or self.max_position < 0:
            raise ValueError("intelligence.backtest: need initial_cash > 0, order_qty > 0, max_position >= 0")
        if self.fill_on not in ("next_open", "quote"):
            raise ValueError("intelligence.backtest.fill_on must be next_open or quote, "
                             f"got {self.fill_on!r}")
        if self.commission_model not in ("per_share", "bps", "fixed", "none"):
            raise ValueError("intelligence.backtest.commission_model must be per_share, bps, fixed or none")
        if self.slippage_model not in ("bps", "fixed", "none"):
            raise ValueError("intelligence.backtest.slippage_model must be bps, fixed or none")
        if self.commission_rate < 0 or self.commission_min < 0 or self.slippage < 0:
            raise ValueError("intelligence.backtest: commission and slippage must be >= 0")


@dataclass(frozen=True)
class MeanReversionConfig:
    window: int = 20  # closes in the rolling mean and sd
    entry_z: float = 2.0  # enter when |z| > entry_z (short above, long below)
    exit_z: float = 0.5  # exit when z is back within exit_z of the mean


@dataclass(frozen=True)
class TrendConfig:
    fast: int = 10
    slow: int = 50
    average: str = "ema"  # ema | sma
    momentum_window: int = 20  # momentum = close / close n bars ago - 1
    min_momentum: float = 0.0  # a position opens only with momentum beyond this
    allow_short: bool = True


@dataclass(frozen=True)
class PairsConfig:
    legs: tuple[str, ...] = ("AAPL", "MSFT")  # (y, x): y = alpha + beta * x
    window: int = 120  # bars in the rolling OLS
    entry_z: float = 2.0
    exit_z: float = 0.5


@dataclass(frozen=True)
class MlSignalConfig:
    model: str = "forecast_1m"  # a model in the lake's registry (spark_jobs/train.py: <kind>_<interval>)
    model_version: int = 0  # 0: the latest committed version
    threshold: float = 0.0002  # |forecast| beyond this opens a position
    allow_short: bool = True


@dataclass(frozen=True)
class SelectorConfig:
    adx_window: int = 14
    trend_threshold: float = 25.0  # ADX at or above: trend regime; below: range
    trend_strategy: str = "trend"  # strategies the two regimes run
    range_strategy: str = "mean_reversion"


@dataclass(frozen=True)
class IntelligenceConfig:
    """Strategies and backtests (intelligence/): each strategy's parameters, the backtest account."""

    backtest: BacktestConfig = field(default_factory=BacktestConfig)
    mean_reversion: MeanReversionConfig = field(default_factory=MeanReversionConfig)
    trend: TrendConfig = field(default_factory=TrendConfig)
    pairs: PairsConfig = field(default_factory=PairsConfig)
    ml_signal: MlSignalConfig = field(default_factory=MlSignalConfig)
    selector: SelectorConfig = field(default_factory=SelectorConfig)


@dataclass(frozen=True)
class FixSessionConfig:
    """Our FIX 4.4 initiator (order_routing/fix_route.py) toward the venue. The password is a
    secret: environment only (``TRADELAKE_ROUTING__FIX__PASSWORD``), sent as Password (554)."""

    host: str = "127.0.0.1"
    port: int = 19880
    sender_comp_id: str = "TRADELAKE"
    target_comp_id: str = "SIMEX"
    heartbeat_s: int = 30
    username: str = ""  # Username (553) on Logon; empty: none sent
    password: str | None = secret()
    store_dir: str = "fix/initiator"  # under stack.var_dir: FileStore (sequence numbers, resend) and logs
    reset_on_logon: bool = False  # keep sequence numbers across restarts: resend/gap-fill recovers


@dataclass(frozen=True)
class ExchangeConfig:
    """The simulated exchange ``tradelake exchange`` (QuickFIX acceptor, a limit order book per
    symbol). A password set (``TRADELAKE_ROUTING__EXCHANGE__PASSWORD``) makes logons need it."""

    host: str = "127.0.0.1"
    port: int = 19880
    comp_id: str = "SIMEX"
    symbols: tuple[str, ...] = ()  # listed symbols; empty: ingest.simulator_symbols
    username: str = ""  # required Username (553) when set
    password: str | None = secret()
    store_dir: str = "fix/exchange"  # under stack.var_dir
    tick_size: float = 0.01  # limit prices must be multiples of it
    price_band_pct: float = 10.0  # limit prices further than this from the mark are rejected
    liquidity_qty: float = 1000.0  # size the exchange's market maker shows each side of the mark
    half_spread_bps: float = 2.0  # where it shows it: mark -/+ this
    marks_from_kafka: bool = True  # follow ingest.topics.trades for marks (else only own trades)


@dataclass(frozen=True)
class RiskConfig:
    """Pre-trade risk limits (order_routing/risk.py); 0 disables a numeric limit."""

    max_order_qty: float = 10000.0
    max_order_notional: float = 1000000.0
    max_position: float = 50000.0  # |units| per symbol, working orders included
    max_gross_exposure: float = 10000000.0  # sum over symbols of |position| * mark, working included
    price_collar_pct: float = 5.0  # a limit price further than this from the last trade is refused
    max_orders_per_s: float = 5000.0  # order-rate throttle (token bucket, 1 s burst)
    daily_loss_limit: float = 100000.0  # realized + unrealized PnL of the UTC day below -this: no new orders
    risk_model: str = ""  # a registry model (e.g. risk_ewma) vetoing orders in high-risk regimes; "": off
    risk_model_max_vol: float = 0.0  # veto when the model's volatility forecast exceeds it; 0: off
    kill_switch: bool = False  # true: refuse every new order (also `tradelake risk kill`)

    def __post_init__(self) -> None:
        for name in ("max_order_qty", "max_order_notional", "max_position", "max_gross_exposure",
                     "price_collar_pct", "max_orders_per_s", "daily_loss_limit", "risk_model_max_vol"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"routing.risk.{name} must be >= 0 (0 disables it), "
                                 f"got {getattr(self, name)!r}")


@dataclass(frozen=True)
class RoutingTopicsConfig:
    """Kafka topics the OMS journals to; the lake lander lands them into trading.* tables."""

    orders: str = "trading.orders"
    executions: str = "trading.executions"


@dataclass(frozen=True)
class RoutingConfig:
    """Order processing (order_routing/): the route, the FIX session, the exchange, risk."""

    route: str = "fix"  # fix | ib
    account: str = "DEFAULT"
    journal_dir: str = "oms"  # under stack.var_dir: the OMS write-ahead journal
    fix: FixSessionConfig = field(default_factory=FixSessionConfig)
    exchange: ExchangeConfig = field(default_factory=ExchangeConfig)
    risk: RiskConfig = field(default_factory=RiskConfig)
    topics: RoutingTopicsConfig = field(default_factory=RoutingTopicsConfig)
    ib_account: str = ""  # IB route: the account orders go to (empty: TWS's only account)
    ib_client_id: int = 18  # IB route's API client id (market data uses ib.client_id)
    market_data_client: str = "librdkafka"  # the router's Kafka consumer: librdkafka | kafka-python
    pending_timeout_s: float = 10.0  # an order pending this long unanswered: status request (0: off)

    def __post_init__(self) -> None:
        if not 0 <= self.pending_timeout_s < math.inf:
            raise ValueError("routing.pending_timeout_s must be >= 0 (0: no watch), "
                             f"got {self.pending_timeout_s!r}")
        if self.route not in ("fix", "ib"):
            raise ValueError(f"routing.route must be fix or ib, got {self.route!r}")
        if self.market_data_client not in ("librdkafka", "kafka-python"):
            raise ValueError("routing.market_data_client must be librdkafka or kafka-python, "
                             f"got {self.market_data_client!r}")


@dataclass(frozen=True)
class Config:
    stack: StackConfig
    postgres: PostgresConfig
    hdfs: HdfsConfig
    kafka: KafkaConfig
    hbase: HBaseConfig
    hive: HiveConfig
    spark: SparkConfig
    lake: LakeConfig
    flume: FlumeConfig = field(default_factory=FlumeConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    lander: LanderConfig = field(default_factory=LanderConfig)
    ib: IbConfig = field(default_factory=IbConfig)
    warehouse: WarehouseConfig = field(default_factory=WarehouseConfig)
    ods: OdsConfig = field(default_factory=OdsConfig)
    speed: SpeedConfig = field(default_factory=SpeedConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)
    intelligence: IntelligenceConfig = field(default_factory=IntelligenceConfig)
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    profile: str = ""  # filled by load_config
    source: str = ""  # the YAML file this came from

    @property
    def var_dir(self) -> Path:
        path = Path(self.stack.var_dir)
        return path if path.is_absolute() else PROJECT_ROOT / path

    @property
    def warehouse_dir(self) -> str:
        return self.lake.root.rstrip("/") + "/warehouse"


def _coerce(value: Any, typ: Any, key: str, source: str) -> Any:
    """Check (and for env strings, convert) ``value`` against the annotated type."""
    origin = typing.get_origin(typ)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(typ)
        if value is None and type(None) in options:
            return None
        inner = [t for t in options if t is not type(None)]
        return _coerce(value, inner[0], key, source)
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"1", "true", "yes", "on", "0", "false", "no", "off"}:
            return value.lower() in {"1", "true", "yes", "on"}
    elif typ is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
    elif typ is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return float(value)
    elif typ is str and isinstance(value, str):
        return value
    elif origin is tuple:
        items = value.split(",") if isinstance(value, str) else value
        if isinstance(items, list | tuple):
            return tuple(_coerce(v, typing.get_args(typ)[0], key, source) for v in items)
    elif origin is dict:
        if isinstance(value, str):  # from the environment: a JSON object
            with contextlib.suppress(json.JSONDecodeError):
                value = json.loads(value)
        if isinstance(value, dict):
            value_type = (typing.get_args(typ) or (str, str))[1]
            return {str(k): _coerce(v, value_type, f"{key}.{k}", source) if value_type is not str
                    else str(v) for k, v in value.items()}
    raise ConfigError(f"{source}: key '{key}' must be {_type_name(typ)}, got {value!r}")


def _type_name(typ: Any) -> str:
    return getattr(typ, "__name__", str(typ))


def _build(cls: type, data: dict[str, Any], prefix: str, source: str, env: dict[str, str]) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: key '{prefix.rstrip('.')}' must be a mapping")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in known:
            raise ConfigError(f"{source}: unknown key '{prefix}{key}'")
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if cls is Config and f.name in ("profile", "source"):
            continue
        dotted = f"{prefix}{f.name}"
        env_name = ENV_PREFIX + dotted.upper().replace(".", "__")
        typ = hints[f.name]
        is_secret = f.metadata.get("secret", False)
        if is_secret and f.name in data:
            raise ConfigError(
                f"{source}: key '{dotted}' is a secret; set it in the environment as {env_name}"
            )
        if dataclasses.is_dataclass(typ):
            sub = data.get(f.name, {} if f.default_factory is not dataclasses.MISSING else None)
            if sub is None:
                raise ConfigError(f"{source}: required key '{dotted}' is missing")
            kwargs[f.name] = _build(typ, sub, dotted + ".", source, env)
            continue
        if env_name in env:
            kwargs[f.name] = _coerce(env[env_name], typ, dotted, f"environment {env_name}")
        elif f.name in data:
            kwargs[f.name] = _coerce(data[f.name], typ, dotted, source)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{source}: required key '{dotted}' is missing")
    try:
        return cls(**kwargs)
    except ValueError as exc:  # a section's own checks (__post_init__)
        raise ConfigError(f"{source}: {exc}") from exc


def resolve_profile(profile: str | None = None, env: dict[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    return profile or env.get("TRADELAKE_PROFILE") or "local"


def load_config(
    profile: str | None = None, path: Path | str | None = None, env: dict[str, str] | None = None
) -> Config:
    """Load and validate a profile. ``path`` overrides the file; ``env`` the process environment."""
    env = dict(os.environ if env is None else env)
    name = resolve_profile(profile, env)
    file = Path(path) if path else CONF_DIR / f"{name}.yaml"
    if not file.exists():
        available = sorted(p.stem for p in CONF_DIR.glob("*.yaml"))
        raise ConfigError(f"profile '{name}': no file {file} (available: {', '.join(available)})")
    try:
        data = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML: {exc}") from exc
    data = dict(data)
    declared = data.pop("profile", name)
    cfg = _build(Config, data, "", str(file), env)
    return dataclasses.replace(cfg, profile=str(declared), source=str(file))
