-- Recompute the market-data continuous views from the base rows in one set-based pass:
-- refresh_trade_views() (bars_1m, last_trades, rolling_volume, then the market rules) and
-- refresh_quote_views() (latest_quotes) touch different tables, so a bulk load runs them on two
-- connections at once; refresh_continuous_views() runs both.
--
-- The triggers of V002 fold each statement's rows into the views, which is right for a live
-- store. A from-scratch bulk load (ods/bulk_load.py, the DR rebuild) disables them while it COPYs
-- and calls these once at the end instead: the same aggregates over the whole of `trades` and
-- `quotes` (hash aggregation, then a hash join back to each minute's first and last rows, as in
-- the trigger), so the views hold exactly what the triggers would have built, up to the
-- addition order of the summed doubles. The market rules are then judged once on every bar,
-- complete; the live store judged each bar as its ticks arrived, which is why `alerts` is
-- arrival-dependent (ods/checksum.py).
--
-- Right after a bulk load the tables have no column statistics: merge and nested-loop joins are
-- ruled out so the plan stays two hash aggregations and a hash join, whatever the estimates.
-- JIT is off: the cost of a disabled join method (or of the market rules' plan) passes the JIT
-- threshold, and compiling the expressions took 1.7 s of a statement that runs in 0.3 s.
CREATE FUNCTION refresh_trade_views() RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT SET work_mem = '256MB' SET enable_mergejoin = off
    SET enable_nestloop = off SET jit = off
AS $$
DECLARE
    minutes INTEGER := coalesce(setting('rolling_volume_minutes'), '5')::INTEGER;
    all_symbols TEXT[];
    all_minutes BIGINT[];
BEGIN
    TRUNCATE bars_1m, last_trades, rolling_volume;

    CREATE TEMPORARY TABLE refresh_bars ON COMMIT DROP AS
    WITH g AS MATERIALIZED (
        SELECT symbol, ts - ts % 60000000000 AS minute, max(price) AS high, min(price) AS low,
               sum(size) AS volume, sum(price * size) AS pv, count(*) AS trade_count,
               min(ts) AS open_ts, max(ts) AS close_ts
        FROM trades GROUP BY 1, 2
    ), ends AS (
        SELECT g.*, r.ts, r.seq, r.price, r.size
        FROM g JOIN trades r ON r.symbol = g.symbol AND r.ts - r.ts % 60000000000 = g.minute
        WHERE r.ts = g.open_ts OR r.ts = g.close_ts
    )
    SELECT symbol, minute, high, low, volume, pv, trade_count, open_ts, close_ts,
           min(seq) FILTER (WHERE ts = open_ts) AS open_seq,
           (array_agg(price ORDER BY seq) FILTER (WHERE ts = open_ts))[1] AS open,
           max(seq) FILTER (WHERE ts = close_ts) AS close_seq,
           (array_agg(price ORDER BY seq DESC) FILTER (WHERE ts = close_ts))[1] AS close,
           (array_agg(size ORDER BY seq DESC) FILTER (WHERE ts = close_ts))[1] AS close_size
    FROM ends
    GROUP BY symbol, minute, high, low, volume, pv, trade_count, open_ts, close_ts;

    INSERT INTO bars_1m (symbol, ts, open, high, low, close, volume, pv, trade_count,
                         open_ts, open_seq, close_ts, close_seq)
    SELECT symbol, minute, open, high, low, close, volume, pv, trade_count,
           open_ts, open_seq, close_ts, close_seq
    FROM refresh_bars;

    INSERT INTO last_trades (symbol, ts, seq, price, size)
    SELECT DISTINCT ON (symbol) symbol, close_ts, close_seq, close, close_size
    FROM refresh_bars ORDER BY symbol, close_ts DESC, close_seq DESC;

    INSERT INTO rolling_volume (symbol, as_of_minute, window_minutes, volume, trade_count)
    SELECT b.symbol, latest.minute, minutes, sum(b.volume), sum(b.trade_count)
    FROM (SELECT t.symbol, t.ts - t.ts % 60000000000 AS minute FROM last_trades t) latest
    JOIN bars_1m b ON b.symbol = latest.symbol
                  AND b.ts > latest.minute - minutes * 60000000000::BIGINT
                  AND b.ts <= latest.minute
    GROUP BY b.symbol, latest.minute;

    SELECT array_agg(symbol), array_agg(minute) INTO all_symbols, all_minutes FROM refresh_bars;
    PERFORM evaluate_market_rules(all_symbols, all_minutes);
    DROP TABLE refresh_bars;
END
$$;

CREATE FUNCTION refresh_quote_views() RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT SET work_mem = '256MB' SET enable_mergejoin = off
    SET enable_nestloop = off SET jit = off
AS $$
BEGIN
    TRUNCATE latest_quotes;
    INSERT INTO latest_quotes (symbol, ts, seq, bid_price, bid_size, ask_price, ask_size,
                               exchange, ingest_ts)
    SELECT DISTINCT ON (q.symbol) q.symbol, q.ts, q.seq, q.bid_price, q.bid_size, q.ask_price,
           q.ask_size, q.exchange, q.ingest_ts
    FROM quotes q
    JOIN (SELECT symbol, max(ts) AS ts FROM quotes GROUP BY symbol) latest USING (symbol, ts)
    ORDER BY q.symbol, q.seq DESC;
END
$$;

CREATE FUNCTION refresh_continuous_views() RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM refresh_trade_views();
    PERFORM refresh_quote_views();
END
$$;
