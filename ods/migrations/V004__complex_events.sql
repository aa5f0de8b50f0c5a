-- Complex events: rules evaluated inside PostgreSQL as ticks and fills arrive, stored in alerts
-- and announced on a LISTEN/NOTIFY channel (setting alerts_channel). Parameters are settings
-- (synced from conf/ ods.rules by `tradelake ods migrate`). An alert is keyed by
-- (rule, symbol, account, ts): a bar or a fill raises a given rule once, however often it is
-- re-evaluated as more ticks of that minute arrive.

CREATE TABLE alerts (
    id         BIGSERIAL PRIMARY KEY,
    ts         BIGINT NOT NULL,                 -- the bar (minute open) or fill that raised it
    symbol     TEXT NOT NULL,
    account    TEXT NOT NULL DEFAULT '',
    rule       TEXT NOT NULL CHECK (rule IN ('price_move', 'volume_surge', 'vwap_cross',
                                             'position_limit')),
    severity   TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    value      DOUBLE PRECISION,
    threshold  DOUBLE PRECISION,
    detail     JSONB NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (rule, symbol, account, ts)
);

CREATE FUNCTION alerts_notify() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    channel TEXT := coalesce(setting('alerts_channel'), 'tradelake_alerts');
BEGIN
    PERFORM pg_notify(channel, json_build_object(
        'id', a.id, 'ts', a.ts, 'symbol', a.symbol, 'account', a.account, 'rule', a.rule,
        'severity', a.severity, 'value', a.value, 'threshold', a.threshold,
        'detail', a.detail)::TEXT)
    FROM (SELECT * FROM new_rows ORDER BY id) a;
    RETURN NULL;
END
$$;
CREATE TRIGGER alerts_notify AFTER INSERT ON alerts
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION alerts_notify();

-- Market rules over the 1m bars of the touched (symbol, minute) pairs:
--   price_move:   |ln(close / first close within the last W minutes)| > k * sigma * sqrt(W),
--                 sigma = sample std of the previous `lookback_bars` 1m log returns;
--   volume_surge: bar volume > m * mean volume of the previous `lookback_bars` bars;
--   vwap_cross:   the bar's close is on the other side of the session (UTC day) VWAP than the
--                 previous bar's close was of its own running VWAP.
-- Rules need min_lookback_bars earlier bars before they say anything.
CREATE FUNCTION evaluate_market_rules(touched_symbols TEXT[], touched_minutes BIGINT[])
RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    k DOUBLE PRECISION := coalesce(setting('price_move_k_sigma'), '4')::DOUBLE PRECISION;
    w BIGINT := coalesce(setting('price_move_window_minutes'), '5')::BIGINT;
    lookback INTEGER := coalesce(setting('lookback_bars'), '30')::INTEGER;
    min_bars INTEGER := coalesce(setting('min_lookback_bars'), '10')::INTEGER;
    surge DOUBLE PRECISION := coalesce(setting('volume_surge_multiple'), '5')::DOUBLE PRECISION;
    move_on BOOLEAN := coalesce(setting('price_move'), 'true')::BOOLEAN;
    surge_on BOOLEAN := coalesce(setting('volume_surge'), 'true')::BOOLEAN;
    vwap_on BOOLEAN := coalesce(setting('vwap_cross'), 'true')::BOOLEAN;
    minute CONSTANT BIGINT := 60000000000;
    day CONSTANT BIGINT := 86400000000000;
BEGIN
    IF touched_symbols IS NULL OR NOT (move_on OR surge_on OR vwap_on) THEN
        RETURN;
    END IF;
    WITH touched AS (
        SELECT DISTINCT * FROM unnest(touched_symbols, touched_minutes) AS t(symbol, ts)
    ), span AS (
        SELECT symbol, least(min(ts) - min(ts) % day, min(ts) - (lookback + w) * minute) AS lo,
               max(ts) AS hi
        FROM touched GROUP BY symbol
    ), b AS (
        SELECT b.symbol, b.ts, b.close, b.volume, b.pv,
               ln(b.close / lag(b.close) OVER (PARTITION BY b.symbol ORDER BY b.ts)) AS r
        FROM bars_1m b JOIN span s ON b.symbol = s.symbol AND b.ts BETWEEN s.lo AND s.hi
    ), stats AS (
        SELECT symbol, ts, close, volume,
               ln(close / first_value(close) OVER moved) AS move,
               stddev_samp(r) OVER before AS sigma, count(r) OVER before AS n_returns,
               avg(volume) OVER before AS mean_volume, count(*) OVER before AS n_bars,
               sign(close - sum(pv) OVER session / nullif(sum(volume) OVER session, 0)) AS side,
               sum(pv) OVER session / nullif(sum(volume) OVER session, 0) AS vwap
        FROM b
        WINDOW moved AS (PARTITION BY symbol ORDER BY ts RANGE BETWEEN w * minute PRECEDING
                         AND CURRENT ROW),
               before AS (PARTITION BY symbol ORDER BY ts ROWS BETWEEN lookback PRECEDING
                          AND 1 PRECEDING),
               session AS (PARTITION BY symbol, ts - ts % day ORDER BY ts
                           ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
    ), judged AS (
        SELECT s.*, lag(side) OVER (PARTITION BY symbol, ts - ts % day ORDER BY ts) AS prev_side
        FROM stats s
    )
    INSERT INTO alerts (ts, symbol, rule, severity, value, threshold, detail)
    SELECT j.ts, j.symbol, v.rule, 'warning', v.value, v.threshold, v.detail
    FROM judged j
    JOIN touched USING (symbol, ts)
    CROSS JOIN LATERAL (VALUES
        ('price_move', j.move, k * j.sigma * sqrt(w::DOUBLE PRECISION),
         move_on AND j.n_returns >= min_bars AND j.sigma > 0
             AND abs(j.move) > k * j.sigma * sqrt(w::DOUBLE PRECISION),
         jsonb_build_object('sigma', j.sigma, 'window_minutes', w, 'k', k, 'close', j.close)),
        ('volume_surge', j.volume, surge * j.mean_volume,
         surge_on AND j.n_bars >= min_bars AND j.volume > surge * j.mean_volume,
         jsonb_build_object('mean_volume', j.mean_volume, 'multiple', surge)),
        ('vwap_cross', j.close, j.vwap,
         vwap_on AND j.prev_side IS NOT NULL AND j.side <> 0 AND j.prev_side <> 0
             AND j.side <> j.prev_side,
         jsonb_build_object('direction', CASE WHEN j.side > 0 THEN 'up' ELSE 'down' END))
    ) AS v(rule, value, threshold, fired, detail)
    WHERE v.fired
    ON CONFLICT (rule, symbol, account, ts) DO NOTHING;
END
$$;

-- position_limit: |position| above the account's limit for the symbol (or its '*' limit).
CREATE FUNCTION executions_position_limits() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF NOT coalesce(setting('position_limit'), 'true')::BOOLEAN THEN
        RETURN NULL;
    END IF;
    INSERT INTO alerts (ts, symbol, account, rule, severity, value, threshold, detail)
    SELECT p.last_fill_ts, p.symbol, p.account, 'position_limit', 'critical', p.quantity,
           lim.max_position,
           jsonb_build_object('limit_symbol', lim.symbol, 'fills', p.fills)
    FROM positions p
    JOIN (SELECT DISTINCT o.account, e.symbol FROM new_rows e JOIN orders o USING (cl_ord_id)
          WHERE e.last_qty > 0) touched USING (account, symbol)
    CROSS JOIN LATERAL (
        SELECT r.symbol, r.max_position FROM risk_limits r
        WHERE r.account = p.account AND r.symbol IN (p.symbol, '*')
        ORDER BY r.symbol = '*' LIMIT 1
    ) lim
    WHERE abs(p.quantity) > lim.max_position
    ON CONFLICT (rule, symbol, account, ts) DO NOTHING;
    RETURN NULL;
END
$$;
-- Fires after executions_positions (triggers of one event fire in name order).
CREATE TRIGGER executions_quantity_limits AFTER INSERT ON executions
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION executions_position_limits();
