-- Market data base tables, reference data and settings.
-- Every table lives in the ODS schema (search_path is set by the migration runner). Times are
-- BIGINT UTC nanoseconds since the epoch, as everywhere in tradelake (tradelake/schemas.py).
-- "finite" checks: NaN compares greater than every number in PostgreSQL, so "x < 'Infinity'"
-- refuses both NaN and infinities.

CREATE TABLE instruments (
    symbol      TEXT PRIMARY KEY,
    asset_class TEXT NOT NULL DEFAULT 'equity',
    currency    TEXT NOT NULL DEFAULT 'USD',
    exchange    TEXT,
    tick_size   DOUBLE PRECISION NOT NULL DEFAULT 0.01 CHECK (tick_size > 0 AND tick_size < 'Infinity'),
    lot_size    DOUBLE PRECISION NOT NULL DEFAULT 1 CHECK (lot_size > 0 AND lot_size < 'Infinity'),
    active      BOOLEAN NOT NULL DEFAULT true
);

-- Trade ticks: the base rows of the continuous views. A re-delivered tick has the same key.
CREATE TABLE trades (
    ts         BIGINT NOT NULL,
    symbol     TEXT NOT NULL,
    price      DOUBLE PRECISION NOT NULL CONSTRAINT trade_price_positive CHECK (price > 0 AND price < 'Infinity'),
    size       DOUBLE PRECISION NOT NULL CONSTRAINT trade_size_non_negative CHECK (size >= 0 AND size < 'Infinity'),
    trade_id   TEXT NOT NULL,
    exchange   TEXT,
    seq        BIGINT NOT NULL,
    side       TEXT CHECK (side IN ('B', 'S')),
    conditions TEXT,
    ingest_ts  BIGINT,
    PRIMARY KEY (symbol, ts, seq)
);

CREATE TABLE quotes (
    ts        BIGINT NOT NULL,
    symbol    TEXT NOT NULL,
    bid_price DOUBLE PRECISION NOT NULL CONSTRAINT quote_bid_positive CHECK (bid_price > 0 AND bid_price < 'Infinity'),
    bid_size  DOUBLE PRECISION NOT NULL CHECK (bid_size >= 0 AND bid_size < 'Infinity'),
    ask_price DOUBLE PRECISION NOT NULL CONSTRAINT quote_ask_positive CHECK (ask_price > 0 AND ask_price < 'Infinity'),
    ask_size  DOUBLE PRECISION NOT NULL CHECK (ask_size >= 0 AND ask_size < 'Infinity'),
    exchange  TEXT,
    seq       BIGINT NOT NULL,
    ingest_ts BIGINT,
    PRIMARY KEY (symbol, ts, seq)
);

CREATE TABLE signals (
    ts              BIGINT NOT NULL,
    symbol          TEXT NOT NULL,
    strategy_id     TEXT NOT NULL,
    signal_type     TEXT NOT NULL,
    strength        DOUBLE PRECISION NOT NULL CHECK (strength > '-Infinity' AND strength < 'Infinity'),
    target_position DOUBLE PRECISION CHECK (target_position > '-Infinity' AND target_position < 'Infinity'),
    model_version   TEXT,
    PRIMARY KEY (ts, symbol, strategy_id, signal_type)
);

-- symbol '*' is the account's limit for every symbol without a row of its own.
CREATE TABLE risk_limits (
    account       TEXT NOT NULL,
    symbol        TEXT NOT NULL,
    max_position  DOUBLE PRECISION NOT NULL CHECK (max_position > 0),
    max_order_qty DOUBLE PRECISION CHECK (max_order_qty > 0),
    max_notional  DOUBLE PRECISION CHECK (max_notional > 0),
    PRIMARY KEY (account, symbol)
);

-- Named values the views and rules read (synced from conf/ by `tradelake ods migrate`).
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE FUNCTION setting(key TEXT) RETURNS TEXT
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT value FROM settings WHERE name = key
$$;
