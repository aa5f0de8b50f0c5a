-- The trading kill switch (`tradelake risk kill|release|status`): one row per scope ('global'),
-- read by every running router (order_routing/kill_switch.py) and announced on a channel so a
-- listener learns of a change at once. Every change is kept in kill_switch_log for audit.
CREATE TABLE kill_switch (
    scope      TEXT PRIMARY KEY,
    engaged    BOOLEAN NOT NULL,
    reason     TEXT NOT NULL,
    changed_by TEXT NOT NULL,
    changed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE kill_switch_log (
    id         BIGSERIAL PRIMARY KEY,
    scope      TEXT NOT NULL,
    engaged    BOOLEAN NOT NULL,
    reason     TEXT NOT NULL,
    changed_by TEXT NOT NULL,
    changed_at TIMESTAMPTZ NOT NULL
);

CREATE FUNCTION kill_switch_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO kill_switch_log (scope, engaged, reason, changed_by, changed_at)
    VALUES (NEW.scope, NEW.engaged, NEW.reason, NEW.changed_by, NEW.changed_at);
    PERFORM pg_notify('tradelake_kill_switch', json_build_object(
        'scope', NEW.scope, 'engaged', NEW.engaged, 'reason', NEW.reason)::text);
    RETURN NEW;
END $$;

CREATE TRIGGER kill_switch_changed AFTER INSERT OR UPDATE ON kill_switch
    FOR EACH ROW EXECUTE FUNCTION kill_switch_changed();
