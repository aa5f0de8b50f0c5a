"""The kill switch's shared state: one row in the ODS's PostgreSQL (migration V006).

``tradelake risk kill --reason ...`` engages it; every running router watches the row from a
background thread (a poll every ``interval_s``; no query on the order path) and flips its
in-process ``KillSwitch`` (``order_routing.risk``), which refuses every new order while engaged.
Cancels still pass: a kill switch stops new risk, it must not trap working orders.
The row lives in PostgreSQL whichever operational store the profile uses (the stack always
runs PostgreSQL); every change is kept in ``kill_switch_log``.
"""

from __future__ import annotations

import getpass
import logging
import threading
from typing import Any

import psycopg2

from tradelake.config import Config

log = logging.getLogger(__name__)

SCOPE = "global"


class KillSwitchStore:
    def __init__(self, cfg: Config) -> None:
        self._conn = psycopg2.connect(cfg.postgres.dsn(), application_name="tradelake-kill-switch",
                                      options=f"-c search_path={cfg.ods.schema}")

    def set(self, engaged: bool, reason: str, by: str | None = None) -> None:
        with self._conn, self._conn.cursor() as cur:
            cur.execute("INSERT INTO kill_switch (scope, engaged, reason, changed_by) "
                        "VALUES (%s, %s, %s, %s) "
                        "ON CONFLICT (scope) DO UPDATE SET engaged = EXCLUDED.engaged, "
                        "reason = EXCLUDED.reason, changed_by = EXCLUDED.changed_by, changed_at = now()",
                        (SCOPE, engaged, reason, by or getpass.getuser()))

    def state(self) -> dict[str, Any]:
        with self._conn, self._conn.cursor() as cur:
            cur.execute("SELECT engaged, reason, changed_by, changed_at FROM kill_switch WHERE scope = %s",
                        (SCOPE,))
            row = cur.fetchone()
        if row is None:
            return {"engaged": False, "reason": "never engaged", "changed_by": None, "changed_at": None}
        return {"engaged": row[0], "reason": row[1], "changed_by": row[2], "changed_at": row[3].isoformat()}

    def history(self, limit: int = 20) -> list[dict[str, Any]]:
        with self._conn, self._conn.cursor() as cur:
            cur.execute("SELECT engaged, reason, changed_by, changed_at FROM kill_switch_log "
                        "WHERE scope = %s ORDER BY id DESC LIMIT %s", (SCOPE, limit))
            return [{"engaged": e, "reason": r, "changed_by": b, "changed_at": t.isoformat()}
                    for e, r, b, t in cur.fetchall()]

    def close(self) -> None:
        self._conn.close()


def watch(cfg: Config, switch: Any, interval_s: float = 0.25) -> threading.Event:
    """Keep ``switch`` (a ``risk.KillSwitch``) in step with the shared row; returns the stop event.
    A database that cannot be reached leaves the switch as it was and is logged once per outage."""
    stop = threading.Event()

    def loop() -> None:
        store, failing = None, False
        while not stop.is_set():
            try:
                store = store or KillSwitchStore(cfg)
                state = store.state()
                if state["engaged"] and not switch.engaged:
                    log.warning("kill switch ENGAGED by %s: %s", state["changed_by"], state["reason"])
                    switch.engage(state["reason"])
                elif not state["engaged"] and switch.engaged and state["changed_at"] is not None:
                    log.warning("kill switch released by %s: %s", state["changed_by"], state["reason"])
                    switch.release()
                failing = False
            except psycopg2.Error as exc:
                if not failing:
                    log.error("kill switch state unreadable (%s); keeping %s", exc,
                              "ENGAGED" if switch.engaged else "released")
                failing, store = True, None
            stop.wait(interval_s)
        if store:
            store.close()

    threading.Thread(target=loop, name="kill-switch-watch", daemon=True).start()
    return stop
