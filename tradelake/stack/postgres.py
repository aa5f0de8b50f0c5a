"""A project-owned PostgreSQL 15 cluster under var/: the ODS and the Hive metastore database.

PostgreSQL refuses to run as root, so when the stack is started as root the server runs as the
unprivileged ``postgres`` system user (created if missing) and owns only ``var/data/postgres``.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import psycopg2

from tradelake.stack.base import Service
from tradelake.stack.process import ManagedProcess, StackError, run_checked

POSTGRES_USER_WHEN_ROOT = "postgres"
POSTGRES_JDBC_JAR = Path("/usr/share/java/postgresql.jar")


def pg_bin_dir() -> Path:
    for version in ("15", "16", "17"):
        candidate = Path(f"/usr/lib/postgresql/{version}/bin")
        if (candidate / "postgres").exists():
            return candidate
    raise StackError("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: "
                     "run `make setup` (installs postgresql-15)")


class Postgres(Service):
    name = "postgres"

    @property
    def data_dir(self) -> Path:
        return self.paths.data("postgres") / "pgdata"

    @property
    def socket_dir(self) -> Path:
        return self.paths.data("postgres") / "socket"

    def _processes(self) -> list[ManagedProcess]:
        # The postmaster's command line names its data directory: that is its marker.
        return [ManagedProcess("postgres", self.paths.run, self.paths.logs, f"-D {self.data_dir}")]

    def ports(self) -> list[int]:
        return [self.cfg.postgres.port]

    def _run_as(self) -> dict[str, Any]:
        """Popen keyword arguments that drop root privileges for PostgreSQL."""
        if os.geteuid() != 0:
            return {}
        try:
            pwd.getpwnam(POSTGRES_USER_WHEN_ROOT)
        except KeyError:
            run_checked(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                         POSTGRES_USER_WHEN_ROOT], "creating the postgres system user")
        return {"user": POSTGRES_USER_WHEN_ROOT, "group": POSTGRES_USER_WHEN_ROOT,
                "extra_groups": []}

    def _check_traversable(self) -> None:
        """The unprivileged server user must be able to reach var/ through its parents."""
        if os.geteuid() != 0:
            return
        for parent in reversed(self.data_dir.parents):
            if parent.exists() and not (parent.stat().st_mode & 0o001):
                raise StackError(
                    f"postgres: {parent} is not searchable by other users, so the unprivileged "
                    f"'{POSTGRES_USER_WHEN_ROOT}' user cannot reach {self.data_dir}. "
                    f"Run `chmod o+x {parent}` or set TRADELAKE_STACK__VAR_DIR to a reachable path."
                )

    def prepare(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        self._check_traversable()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        run_as = self._run_as()
        if run_as:
            uid = pwd.getpwnam(run_as["user"]).pw_uid
            gid = grp.getgrnam(run_as["group"]).gr_gid
            for path in (self.paths.data("postgres"), self.data_dir, self.socket_dir):
                os.chown(path, uid, gid)
        self.data_dir.chmod(0o700)
        subprocess_result = subprocess.run(
            [str(pg_bin_dir() / "initdb"), "-D", str(self.data_dir), "-U", self.cfg.postgres.user,
             "--auth=trust", "--encoding=UTF8", "--locale=C"],
            capture_output=True, text=True, **run_as,
        )
        if subprocess_result.returncode != 0:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            raise StackError(f"postgres: initdb failed:\n{subprocess_result.stderr[-2000:]}")

    def launch(self) -> None:
        self.processes()[0].start(
            [str(pg_bin_dir() / "postgres"), "-D", str(self.data_dir),
             "-p", str(self.cfg.postgres.port),
             "-c", f"listen_addresses={self.host}",
             "-c", f"unix_socket_directories={self.socket_dir}",
             "-c", "max_connections=200",
             "-c", "shared_buffers=256MB",
             "-c", "fsync=on"],
            **self._run_as(),
        )

    def connect(self, database: str = "postgres"):
        return psycopg2.connect(self.cfg.postgres.dsn(database), connect_timeout=3)

    def healthy(self) -> bool:
        with contextlib.closing(self.connect()) as conn, conn.cursor() as cur:
            cur.execute("select 1")
            return cur.fetchone() == (1,)

    def after_healthy(self) -> None:
        pg = self.cfg.postgres
        with contextlib.closing(self.connect()) as conn:
            conn.autocommit = True
            with conn.cursor() as cur:
                for db in (pg.ods_database, pg.metastore_database):
                    cur.execute("select 1 from pg_database where datname = %s", (db,))
                    if cur.fetchone() is None:
                        cur.execute(f'create database "{db}"')
        self.ensure_metastore_schema()

    def ensure_metastore_schema(self) -> None:
        """Create the Hive metastore schema once, with DataNucleus SchemaTool (see DESIGN.md)."""
        pg = self.cfg.postgres
        with contextlib.closing(self.connect(pg.metastore_database)) as conn, conn.cursor() as cur:
            cur.execute("select to_regclass('public.\"DBS\"') is not null")
            if cur.fetchone()[0]:
                return
        from tradelake.spark import spark_home  # local import: pyspark is heavy

        if not POSTGRES_JDBC_JAR.exists():
            raise StackError(f"{POSTGRES_JDBC_JAR} missing: run `make setup` "
                             "(installs libpostgresql-jdbc-java)")
        work = self.paths.tmp / "metastore-schema"
        work.mkdir(parents=True, exist_ok=True)
        metastore_jar = next((spark_home() / "jars").glob("hive-metastore-*.jar"))
        with zipfile.ZipFile(metastore_jar) as jar:
            (work / "package.jdo").write_bytes(jar.read("package.jdo"))
        props = {
            "javax.jdo.option.ConnectionURL": pg.jdbc_url(pg.metastore_database),
            "javax.jdo.option.ConnectionDriverName": "org.postgresql.Driver",
            "javax.jdo.option.ConnectionUserName": pg.user,
            "javax.jdo.option.ConnectionPassword": pg.password or "",
            "datanucleus.schema.autoCreateAll": "true",
            # Hive's metastore runs DataNucleus with the "datanucleus1" naming (list index column
            # INTEGER_IDX); SchemaTool's default ("datanucleus2") would name it IDX and every
            # CREATE TABLE would then fail on COLUMNS_V2.
            "datanucleus.identifierFactory": "datanucleus1",
            "datanucleus.rdbms.useLegacyNativeValueStrategy": "true",
        }
        (work / "dn.properties").write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        run_checked(
            ["java", f"-Djava.io.tmpdir={work}", "-cp",
             f"{POSTGRES_JDBC_JAR}:{spark_home() / 'jars'}/*",
             "org.datanucleus.store.schema.SchemaTool", "-create", "-api", "JDO",
             "-props", "dn.properties", "package.jdo"],
            "creating the Hive metastore schema (DataNucleus SchemaTool)", cwd=work,
        )
        # Hive 2.3 clients expect a VERSION row when verification is on; keep it consistent.
        with contextlib.closing(self.connect(pg.metastore_database)) as conn, conn.cursor() as cur:
            cur.execute('select count(*) from "VERSION"')
            if cur.fetchone()[0] == 0:
                cur.execute('insert into "VERSION" ("VER_ID", "SCHEMA_VERSION", "VERSION_COMMENT") '
                            "values (1, '2.3.0', 'created by tradelake stack')")
            conn.commit()

    def endpoint(self) -> dict[str, Any]:
        return {"dsn": self.cfg.postgres.public_dsn()}

    def stop(self) -> list[str]:
        # SIGTERM is PostgreSQL's "smart" shutdown, which waits for clients; SIGINT is "fast".
        proc = self.processes()[0]
        return [proc.name] if proc.stop(signal_name="SIGINT") else []
