-- Continuous views: tables kept equal to an aggregate of the base rows by statement-level
-- AFTER INSERT triggers that read the statement's transition table (only the rows the statement
-- really inserted: re-delivered ticks skipped by ON CONFLICT DO NOTHING never reach a view).
-- Each merge is order-independent, so out-of-order arrivals give the same result as in-order.

-- 1-minute OHLCV per symbol. open/close carry the (ts, seq) of their trade so a late tick can
-- replace them; pv = sum(price * size) keeps the VWAP exact under merging.
CREATE TABLE bars_1m (
    symbol      TEXT NOT NULL,
    ts          BIGINT NOT NULL,             -- minute open, UTC ns
    open        DOUBLE PRECISION NOT NULL CHECK (open > 0),
    high        DOUBLE PRECISION NOT NULL,
    low         DOUBLE PRECISION NOT NULL CHECK (low > 0),
    close       DOUBLE PRECISION NOT NULL CHECK (close > 0),
    volume      DOUBLE PRECISION NOT NULL CHECK (volume >= 0),
    pv          DOUBLE PRECISION NOT NULL,
    trade_count BIGINT NOT NULL CHECK (trade_count > 0),
    open_ts     BIGINT NOT NULL,
    open_seq    BIGINT NOT NULL,
    close_ts    BIGINT NOT NULL,
    close_seq   BIGINT NOT NULL,
    PRIMARY KEY (symbol, ts),
    CONSTRAINT bar_high_low CHECK (high >= low AND high >= open AND high >= close
                                   AND low <= open AND low <= close)
);

CREATE VIEW bars_1m_vwap AS
SELECT symbol, ts, open, high, low, close, volume,
       CASE WHEN volume > 0 THEN pv / volume END AS vwap, trade_count
FROM bars_1m;

CREATE TABLE last_trades (
    symbol TEXT PRIMARY KEY,
    ts     BIGINT NOT NULL,
    seq    BIGINT NOT NULL,
    price  DOUBLE PRECISION NOT NULL,
    size   DOUBLE PRECISION NOT NULL
);

CREATE TABLE latest_quotes (
    symbol    TEXT PRIMARY KEY,
    ts        BIGINT NOT NULL,
    seq       BIGINT NOT NULL,
    bid_price DOUBLE PRECISION NOT NULL,
    bid_size  DOUBLE PRECISION NOT NULL,
    ask_price DOUBLE PRECISION NOT NULL,
    ask_size  DOUBLE PRECISION NOT NULL,
    exchange  TEXT,
    ingest_ts BIGINT
);

-- Volume of the last N one-minute buckets up to each symbol's latest minute
-- (N = setting rolling_volume_minutes).
CREATE TABLE rolling_volume (
    symbol         TEXT PRIMARY KEY,
    as_of_minute   BIGINT NOT NULL,
    window_minutes INTEGER NOT NULL,
    volume         DOUBLE PRECISION NOT NULL,
    trade_count    BIGINT NOT NULL
);

-- Hash aggregation, then one hash join back to the few rows holding each minute's first and
-- last ts: on this machine sorting a 50k-row batch by symbol costs ~3x the aggregation, so the
-- plan never sorts the batch (no merge joins: transition tables have no statistics, and the
-- planner would otherwise sort them for one). Writers should give their session enough work_mem
-- to keep the transition table in memory (PostgresStore sets 64MB).
CREATE FUNCTION trades_continuous_views() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT SET work_mem = '64MB' SET enable_mergejoin = off
AS $$
DECLARE
    minutes INTEGER := coalesce(setting('rolling_volume_minutes'), '5')::INTEGER;
    touched_symbols TEXT[];
    touched_minutes BIGINT[];
BEGIN
    WITH g AS MATERIALIZED (
        SELECT symbol, ts - ts % 60000000000 AS minute, max(price) AS high, min(price) AS low,
               sum(size) AS volume, sum(price * size) AS pv, count(*) AS trade_count,
               min(ts) AS open_ts, max(ts) AS close_ts
        FROM new_rows GROUP BY 1, 2
    ), ends AS (
        -- one pass over the batch for the rows at each minute's first or last ts
        SELECT g.*, r.ts, r.seq, r.price, r.size
        FROM g JOIN new_rows r ON r.symbol = g.symbol AND r.ts - r.ts % 60000000000 = g.minute
        WHERE r.ts = g.open_ts OR r.ts = g.close_ts
    ), merged AS MATERIALIZED (
        -- ties on ts are broken by seq; these sorts see two or three rows per minute
        SELECT symbol, minute, high, low, volume, pv, trade_count, open_ts, close_ts,
               min(seq) FILTER (WHERE ts = open_ts) AS open_seq,
               (array_agg(price ORDER BY seq) FILTER (WHERE ts = open_ts))[1] AS open,
               max(seq) FILTER (WHERE ts = close_ts) AS close_seq,
               (array_agg(price ORDER BY seq DESC) FILTER (WHERE ts = close_ts))[1] AS close,
               (array_agg(size ORDER BY seq DESC) FILTER (WHERE ts = close_ts))[1] AS close_size
        FROM ends
        GROUP BY symbol, minute, high, low, volume, pv, trade_count, open_ts, close_ts
    ), last_trade AS (
        INSERT INTO last_trades AS l (symbol, ts, seq, price, size)
        SELECT DISTINCT ON (symbol) symbol, close_ts, close_seq, close, close_size
        FROM merged ORDER BY symbol, close_ts DESC, close_seq DESC
        ON CONFLICT (symbol) DO UPDATE SET
            ts = EXCLUDED.ts, seq = EXCLUDED.seq, price = EXCLUDED.price, size = EXCLUDED.size
        WHERE (EXCLUDED.ts, EXCLUDED.seq) > (l.ts, l.seq)
    ), bars AS (
        INSERT INTO bars_1m AS b (symbol, ts, open, high, low, close, volume, pv, trade_count,
                                  open_ts, open_seq, close_ts, close_seq)
        SELECT symbol, minute, open, high, low, close, volume, pv, trade_count,
               open_ts, open_seq, close_ts, close_seq
        FROM merged
        ON CONFLICT (symbol, ts) DO UPDATE SET
        open = CASE WHEN (EXCLUDED.open_ts, EXCLUDED.open_seq) < (b.open_ts, b.open_seq)
                    THEN EXCLUDED.open ELSE b.open END,
        open_ts = CASE WHEN (EXCLUDED.open_ts, EXCLUDED.open_seq) < (b.open_ts, b.open_seq)
                       THEN EXCLUDED.open_ts ELSE b.open_ts END,
        open_seq = CASE WHEN (EXCLUDED.open_ts, EXCLUDED.open_seq) < (b.open_ts, b.open_seq)
                        THEN EXCLUDED.open_seq ELSE b.open_seq END,
        close = CASE WHEN (EXCLUDED.close_ts, EXCLUDED.close_seq) > (b.close_ts, b.close_seq)
                     THEN EXCLUDED.close ELSE b.close END,
        close_ts = CASE WHEN (EXCLUDED.close_ts, EXCLUDED.close_seq) > (b.close_ts, b.close_seq)
                        THEN EXCLUDED.close_ts ELSE b.close_ts END,
        close_seq = CASE WHEN (EXCLUDED.close_ts, EXCLUDED.close_seq) > (b.close_ts, b.close_seq)
                         THEN EXCLUDED.close_seq ELSE b.close_seq END,
        high = greatest(b.high, EXCLUDED.high),
        low = least(b.low, EXCLUDED.low),
        volume = b.volume + EXCLUDED.volume,
        pv = b.pv + EXCLUDED.pv,
        trade_count = b.trade_count + EXCLUDED.trade_count
    RETURNING symbol, ts
    )
    -- the touched bars: for the rolling volume and the rules (transition tables are visible
    -- only in this function, so the rules get them as arrays)
    SELECT array_agg(symbol), array_agg(ts) INTO touched_symbols, touched_minutes FROM bars;

    INSERT INTO rolling_volume AS r (symbol, as_of_minute, window_minutes, volume, trade_count)
    SELECT b.symbol, latest.minute, minutes, sum(b.volume), sum(b.trade_count)
    FROM (SELECT t.symbol, t.ts - t.ts % 60000000000 AS minute
          FROM last_trades t WHERE t.symbol = ANY (touched_symbols)) latest
    JOIN bars_1m b ON b.symbol = latest.symbol
                  AND b.ts > latest.minute - minutes * 60000000000::BIGINT
                  AND b.ts <= latest.minute
    GROUP BY b.symbol, latest.minute
    ON CONFLICT (symbol) DO UPDATE SET
        as_of_minute = EXCLUDED.as_of_minute, window_minutes = EXCLUDED.window_minutes,
        volume = EXCLUDED.volume, trade_count = EXCLUDED.trade_count;

    PERFORM evaluate_market_rules(touched_symbols, touched_minutes);
    RETURN NULL;
END
$$;

CREATE FUNCTION quotes_continuous_views() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO latest_quotes AS q (symbol, ts, seq, bid_price, bid_size, ask_price, ask_size,
                                    exchange, ingest_ts)
    SELECT DISTINCT ON (symbol) symbol, ts, seq, bid_price, bid_size, ask_price, ask_size,
           exchange, ingest_ts
    FROM new_rows ORDER BY symbol, ts DESC, seq DESC
    ON CONFLICT (symbol) DO UPDATE SET
        ts = EXCLUDED.ts, seq = EXCLUDED.seq, bid_price = EXCLUDED.bid_price,
        bid_size = EXCLUDED.bid_size, ask_price = EXCLUDED.ask_price,
        ask_size = EXCLUDED.ask_size, exchange = EXCLUDED.exchange, ingest_ts = EXCLUDED.ingest_ts
    WHERE (EXCLUDED.ts, EXCLUDED.seq) > (q.ts, q.seq);
    RETURN NULL;
END
$$;

CREATE TRIGGER trades_continuous_views AFTER INSERT ON trades
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION trades_continuous_views();
CREATE TRIGGER quotes_continuous_views AFTER INSERT ON quotes
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION quotes_continuous_views();
