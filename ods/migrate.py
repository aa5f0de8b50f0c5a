"""Versioned, idempotent migrations of the PostgreSQL operational data store.

``ods/migrations/V<NNN>__<name>.sql`` are applied in version order, each once, recorded in
``<schema>.schema_migrations`` with a checksum; an already-applied file whose text changed is an
error (write a new migration instead). Everything runs in one transaction under an advisory lock,
so two processes migrating at once cannot interleave and a failure leaves nothing half-applied.

After the files, reference data is synced from their one definition: ``settings`` from the
profile's ``ods`` section and the order state graph from ``ods.store.ORDER_TRANSITIONS``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

from psycopg2 import sql

from ods.store import INITIAL_ORDER_STATES, ORDER_TRANSITIONS
from tradelake.config import OdsConfig

_FILE = re.compile(r"V(\d{3,})__([a-z0-9_]+)\.sql")


class MigrationError(RuntimeError):
    """The database's migration history does not match ods/migrations/."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def migrations() -> list[Migration]:
    """The migration files shipped with the package, by version."""
    found = []
    for entry in resources.files("ods").joinpath("migrations").iterdir():
        if match := _FILE.fullmatch(entry.name):
            found.append(Migration(int(match[1]), match[2], entry.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a version: {sorted(versions)}")
    return sorted(found, key=lambda m: m.version)


def settings(ods: OdsConfig) -> dict[str, str]:
    """What the views and rules read from the ``settings`` table."""
    rules = ods.rules
    return {
        "alerts_channel": ods.alerts_channel,
        "rolling_volume_minutes": str(ods.rolling_volume_minutes),
        "price_move_k_sigma": repr(rules.price_move_k_sigma),
        "price_move_window_minutes": str(rules.price_move_window_minutes),
        "lookback_bars": str(rules.lookback_bars),
        "min_lookback_bars": str(rules.min_lookback_bars),
        "volume_surge_multiple": repr(rules.volume_surge_multiple),
        "price_move": str(rules.price_move).lower(),
        "volume_surge": str(rules.volume_surge).lower(),
        "vwap_cross": str(rules.vwap_cross).lower(),
        "position_limit": str(rules.position_limit).lower(),
    }


def migrate(conn, ods: OdsConfig, schema: str | None = None) -> list[Migration]:
    """Apply the pending migrations to ``schema`` (default ``ods.schema``); returns them."""
    schema = schema or ods.schema
    ident = sql.Identifier(schema)
    applied_now: list[Migration] = []
    with conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"tradelake-ods:{schema}",))
        cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident))
        # Functions capture this search_path (SET search_path FROM CURRENT).
        cur.execute(sql.SQL("SET LOCAL search_path TO {}").format(ident))
        cur.execute("""CREATE TABLE IF NOT EXISTS schema_migrations (
                           version    INTEGER PRIMARY KEY,
                           name       TEXT NOT NULL,
                           checksum   TEXT NOT NULL,
                           applied_at TIMESTAMPTZ NOT NULL DEFAULT now())""")
        cur.execute("SELECT version, name, checksum FROM schema_migrations")
        history = {version: (name, checksum) for version, name, checksum in cur.fetchall()}
        files = migrations()
        known = {m.version for m in files}
        if unknown := sorted(set(history) - known):
            raise MigrationError(f"schema {schema} has migrations {unknown} that this checkout "
                                 "does not know: is it older than the database?")
        for m in files:
            if m.version in history:
                if history[m.version][1] != m.checksum:
                    raise MigrationError(
                        f"migration V{m.version:03d}__{m.name}.sql changed after it was applied "
                        f"to schema {schema}; add a new migration instead of editing it")
                continue
            cur.execute(m.sql)
            cur.execute("INSERT INTO schema_migrations (version, name, checksum) "
                        "VALUES (%s, %s, %s)", (m.version, m.name, m.checksum))
            applied_now.append(m)
        _sync_reference_data(cur, ods)
    return applied_now


def _sync_reference_data(cur, ods: OdsConfig) -> None:
    cur.execute("DELETE FROM settings")
    cur.executemany("INSERT INTO settings (name, value) VALUES (%s, %s)",
                    sorted(settings(ods).items()))
    terminal = {state for state, nexts in ORDER_TRANSITIONS.items() if not nexts}
    cur.executemany(
        "INSERT INTO order_states (status, initial, terminal) VALUES (%s, %s, %s) "
        "ON CONFLICT (status) DO UPDATE SET initial = EXCLUDED.initial, "
        "terminal = EXCLUDED.terminal",
        [(s, s in INITIAL_ORDER_STATES, s in terminal) for s in ORDER_TRANSITIONS])
    cur.execute("DELETE FROM order_transitions")
    cur.executemany("INSERT INTO order_transitions (from_status, to_status) VALUES (%s, %s)",
                    [(a, b) for a, nexts in ORDER_TRANSITIONS.items() for b in nexts])


def applied(conn, schema: str) -> list[tuple[int, str, str]]:
    """(version, name, applied_at) of the schema's applied migrations; [] if none."""
    with conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s)", (f"{schema}.schema_migrations",))
        if cur.fetchone()[0] is None:
            return []
        cur.execute(sql.SQL("SELECT version, name, applied_at::TEXT FROM {}.schema_migrations "
                            "ORDER BY version").format(sql.Identifier(schema)))
        return cur.fetchall()
