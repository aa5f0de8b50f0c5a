-- Orders, executions and positions, with the business rules enforced here, not in clients:
-- an order moves only along order_transitions; an execution names an existing order (foreign
-- key) of the same symbol and side; order_states and order_transitions are written by
-- `tradelake ods migrate` from ods/store.py ORDER_TRANSITIONS, the one definition of the graph; a position is the sum of its fills, maintained by the
-- executions trigger and refused to anyone else.

CREATE TABLE order_states (
    status   TEXT PRIMARY KEY,
    initial  BOOLEAN NOT NULL,   -- an order may be created in this state
    terminal BOOLEAN NOT NULL
);

CREATE TABLE order_transitions (
    from_status TEXT NOT NULL REFERENCES order_states,
    to_status   TEXT NOT NULL REFERENCES order_states,
    PRIMARY KEY (from_status, to_status)
);

CREATE TABLE orders (
    cl_ord_id     TEXT PRIMARY KEY,
    ts            BIGINT NOT NULL,                  -- last change
    created_ts    BIGINT NOT NULL,
    symbol        TEXT NOT NULL,
    side          TEXT NOT NULL CHECK (side IN ('B', 'S')),
    order_type    TEXT NOT NULL CHECK (order_type IN ('MKT', 'LMT', 'STP', 'STP_LMT')),
    quantity      DOUBLE PRECISION NOT NULL,
    limit_price   DOUBLE PRECISION,
    time_in_force TEXT NOT NULL CHECK (time_in_force IN ('DAY', 'GTC', 'IOC', 'FOK')),
    strategy_id   TEXT,
    status        TEXT NOT NULL REFERENCES order_states,
    account       TEXT NOT NULL DEFAULT 'default',
    CONSTRAINT order_values CHECK (quantity > 0 AND quantity < 'Infinity' AND
        (limit_price IS NULL OR (limit_price > 0 AND limit_price < 'Infinity')))
);

-- Every state an order went through, in order of arrival.
CREATE TABLE order_events (
    id          BIGSERIAL PRIMARY KEY,
    cl_ord_id   TEXT NOT NULL REFERENCES orders,
    ts          BIGINT NOT NULL,
    status      TEXT NOT NULL,
    limit_price DOUBLE PRECISION
);

CREATE FUNCTION orders_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NOT EXISTS (SELECT 1 FROM order_states WHERE status = NEW.status AND initial) THEN
            RAISE EXCEPTION 'order % cannot start in state %', NEW.cl_ord_id, NEW.status
                USING ERRCODE = 'check_violation', CONSTRAINT = 'order_transition';
        END IF;
        NEW.created_ts := NEW.ts;
    ELSE
        IF (NEW.symbol, NEW.side, NEW.order_type, NEW.quantity, NEW.account, NEW.created_ts)
           IS DISTINCT FROM
           (OLD.symbol, OLD.side, OLD.order_type, OLD.quantity, OLD.account, OLD.created_ts) THEN
            RAISE EXCEPTION 'order %: symbol, side, type, quantity and account cannot change',
                NEW.cl_ord_id USING ERRCODE = 'check_violation', CONSTRAINT = 'order_immutable';
        END IF;
        IF NOT EXISTS (SELECT 1 FROM order_transitions
                       WHERE from_status = OLD.status AND to_status = NEW.status) THEN
            RAISE EXCEPTION 'order % cannot move from % to %', NEW.cl_ord_id, OLD.status, NEW.status
                USING ERRCODE = 'check_violation', CONSTRAINT = 'order_transition';
        END IF;
    END IF;
    RETURN NEW;
END
$$;

CREATE FUNCTION orders_history() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO order_events (cl_ord_id, ts, status, limit_price)
    VALUES (NEW.cl_ord_id, NEW.ts, NEW.status, NEW.limit_price);
    RETURN NULL;
END
$$;

CREATE TRIGGER orders_guard BEFORE INSERT OR UPDATE ON orders
    FOR EACH ROW EXECUTE FUNCTION orders_guard();
CREATE TRIGGER orders_history AFTER INSERT OR UPDATE ON orders
    FOR EACH ROW EXECUTE FUNCTION orders_history();

CREATE TABLE executions (
    exec_id      TEXT PRIMARY KEY,
    ts           BIGINT NOT NULL,
    symbol       TEXT NOT NULL,
    cl_ord_id    TEXT NOT NULL CONSTRAINT execution_order REFERENCES orders,
    order_id     TEXT,
    exec_type    TEXT NOT NULL,
    order_status TEXT NOT NULL REFERENCES order_states,
    side         TEXT NOT NULL CHECK (side IN ('B', 'S')),
    last_qty     DOUBLE PRECISION NOT NULL CHECK (last_qty >= 0 AND last_qty < 'Infinity'),
    last_price   DOUBLE PRECISION NOT NULL CHECK (last_price >= 0 AND last_price < 'Infinity'),
    cum_qty      DOUBLE PRECISION NOT NULL CHECK (cum_qty >= 0),
    leaves_qty   DOUBLE PRECISION NOT NULL CHECK (leaves_qty >= 0),
    avg_price    DOUBLE PRECISION NOT NULL CHECK (avg_price >= 0),
    commission   DOUBLE PRECISION CHECK (commission >= 0 AND commission < 'Infinity'),
    venue        TEXT NOT NULL,
    CONSTRAINT execution_values CHECK (last_qty = 0 OR last_price > 0)
);
CREATE INDEX executions_by_order ON executions (cl_ord_id);

CREATE TABLE positions (
    account       TEXT NOT NULL,
    symbol        TEXT NOT NULL,
    quantity      DOUBLE PRECISION NOT NULL,   -- signed: negative is short
    buy_qty       DOUBLE PRECISION NOT NULL,
    sell_qty      DOUBLE PRECISION NOT NULL,
    buy_notional  DOUBLE PRECISION NOT NULL,
    sell_notional DOUBLE PRECISION NOT NULL,
    commission    DOUBLE PRECISION NOT NULL,
    fills         BIGINT NOT NULL,
    last_fill_ts  BIGINT NOT NULL,
    PRIMARY KEY (account, symbol)
);

-- Only the executions trigger (trigger depth 2) may write positions.
CREATE FUNCTION positions_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF pg_trigger_depth() < 2 THEN
        RAISE EXCEPTION 'positions are the sum of their executions: write executions instead'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'position_from_executions';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;
CREATE TRIGGER positions_guard BEFORE INSERT OR UPDATE OR DELETE ON positions
    FOR EACH ROW EXECUTE FUNCTION positions_guard();

CREATE FUNCTION executions_positions() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    bad RECORD;
BEGIN
    SELECT e.exec_id, e.symbol, e.side, o.symbol AS order_symbol, o.side AS order_side INTO bad
    FROM new_rows e JOIN orders o USING (cl_ord_id)
    WHERE (e.symbol, e.side) IS DISTINCT FROM (o.symbol, o.side) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'execution % is % %, its order is % %', bad.exec_id, bad.side, bad.symbol,
            bad.order_side, bad.order_symbol
            USING ERRCODE = 'check_violation', CONSTRAINT = 'execution_order';
    END IF;

    INSERT INTO positions AS p (account, symbol, quantity, buy_qty, sell_qty, buy_notional,
                                sell_notional, commission, fills, last_fill_ts)
    SELECT o.account, e.symbol,
           sum(CASE e.side WHEN 'B' THEN e.last_qty ELSE -e.last_qty END),
           coalesce(sum(e.last_qty) FILTER (WHERE e.side = 'B'), 0),
           coalesce(sum(e.last_qty) FILTER (WHERE e.side = 'S'), 0),
           coalesce(sum(e.last_qty * e.last_price) FILTER (WHERE e.side = 'B'), 0),
           coalesce(sum(e.last_qty * e.last_price) FILTER (WHERE e.side = 'S'), 0),
           sum(coalesce(e.commission, 0)), count(*), max(e.ts)
    FROM new_rows e JOIN orders o USING (cl_ord_id)
    WHERE e.last_qty > 0
    GROUP BY o.account, e.symbol
    ON CONFLICT (account, symbol) DO UPDATE SET
        quantity = p.quantity + EXCLUDED.quantity,
        buy_qty = p.buy_qty + EXCLUDED.buy_qty,
        sell_qty = p.sell_qty + EXCLUDED.sell_qty,
        buy_notional = p.buy_notional + EXCLUDED.buy_notional,
        sell_notional = p.sell_notional + EXCLUDED.sell_notional,
        commission = p.commission + EXCLUDED.commission,
        fills = p.fills + EXCLUDED.fills,
        last_fill_ts = greatest(p.last_fill_ts, EXCLUDED.last_fill_ts);
    RETURN NULL;
END
$$;
CREATE TRIGGER executions_positions AFTER INSERT ON executions
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION executions_positions();

-- Mark to market at the last trade. cash = what the fills paid and received; total PnL =
-- cash + position * mark, which does not depend on the order the fills arrived in.
CREATE VIEW position_pnl AS
SELECT p.account, p.symbol, p.quantity, p.buy_qty, p.sell_qty, p.buy_notional, p.sell_notional,
       p.commission, p.fills,
       p.sell_notional - p.buy_notional - p.commission AS cash,
       t.price AS last_price,
       p.sell_notional - p.buy_notional - p.commission + p.quantity * t.price AS pnl
FROM positions p LEFT JOIN last_trades t USING (symbol);
