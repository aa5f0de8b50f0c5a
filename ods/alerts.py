"""Complex events as they happen: LISTEN on the ODS alerts channel (``ods.alerts_channel``).

The rules themselves run inside PostgreSQL (ods/migrations/V004__complex_events.sql); every
alert they store is also sent with NOTIFY as a JSON object, which ``listen`` yields.
"""

from __future__ import annotations

import json
import select
import time
from collections.abc import Iterator
from typing import Any

import psycopg2
import psycopg2.extensions
from psycopg2 import sql

from tradelake.config import Config


def listen(cfg: Config, *, timeout_s: float | None = None, max_alerts: int | None = None,
           ready: Any = None) -> Iterator[dict[str, Any]]:
    """Yield alerts as they are notified, until ``max_alerts`` or ``timeout_s`` seconds of
    listening (None: forever). ``ready``, if given, is called once the LISTEN is in place."""
    conn = psycopg2.connect(cfg.postgres.dsn(), application_name="tradelake-ods-listen")
    conn.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    seen = 0
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("LISTEN {}").format(sql.Identifier(cfg.ods.alerts_channel)))
        if ready is not None:
            ready()
        while max_alerts is None or seen < max_alerts:
            wait = 1.0 if deadline is None else deadline - time.monotonic()
            if wait <= 0:
                return
            if select.select([conn], [], [], min(wait, 1.0)) == ([], [], []):
                continue
            conn.poll()
            while conn.notifies and (max_alerts is None or seen < max_alerts):
                note = conn.notifies.pop(0)
                seen += 1
                yield json.loads(note.payload)
    finally:
        conn.close()


def format_alert(alert: dict[str, Any]) -> str:
    """One line per alert, for people watching a terminal."""
    from datetime import UTC, datetime

    when = datetime.fromtimestamp(alert["ts"] / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S")
    who = alert["symbol"] + (f" [{alert['account']}]" if alert.get("account") else "")
    value, threshold = alert.get("value"), alert.get("threshold")
    figures = ""
    if value is not None and threshold is not None:
        figures = f" value={value:.6g} threshold={threshold:.6g}"
    return f"{when} {alert['severity']:<8} {alert['rule']:<14} {who}{figures}"
