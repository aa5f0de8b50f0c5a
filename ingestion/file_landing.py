"""End-of-day vendor files into the raw zone (the FTP-drop role), through the same validation.

Per file, identified by name and content hash (``<stem>-<sha256[:16]>``):
  raw/files.<kind>/dt=YYYY-MM-DD/<stem>-<hash>.parquet   accepted rows, one file per event date
  quarantine/files/dt=<today>/<stem>-<hash>.parquet      rejected rows with reason and raw line
  raw/files/_landed/<stem>-<hash>.json                   the commit point, written last
A file whose manifest exists is skipped, so dropping the same file twice lands it once; each
part is written under a temporary name and renamed into place, as the lander does.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from ingestion.lake_layout import write_parquet_atomically
from ingestion.pipeline import file_batches, make_validator
from ingestion.quarantine import Counts
from ingestion.raw_tables import HiveRegistrar
from tradelake.config import Config
from tradelake.lakefs import LakeFS, lake_fs


def _write(fs: LakeFS, path: str, table: pa.Table, compression: str) -> None:
    temp = f"{path.rsplit('/', 1)[0]}/_tmp.{uuid.uuid4().hex[:12]}"
    write_parquet_atomically(fs, temp, path, table, compression)


def _by_date(table: pa.Table) -> dict[str, pa.Table]:
    days = pc.strftime(pc.cast(table.column("ts"), pa.timestamp("ns", tz="UTC")), format="%Y-%m-%d")
    out = {}
    for day in pc.unique(days).to_pylist():
        out[day] = table.filter(pc.equal(days, day))
    return out


def land_files(cfg: Config, paths: list[Path], symbol: str | None = None,
               interval: str | None = None, register: bool = True,
               fs: LakeFS | None = None) -> dict:
    fs = fs or lake_fs(cfg)
    raw, quarantine = cfg.lander.raw_zone, cfg.lander.quarantine_zone
    validator = make_validator(cfg.ingest, "land-files")
    registrar = HiveRegistrar(cfg) if register else None
    parse_counts = Counts()
    landed, skipped, written = [], [], []
    for path in paths:
        name = f"{path.stem}-{hashlib.sha256(path.read_bytes()).hexdigest()[:16]}"
        manifest = f"{raw}/files/_landed/{name}.json"
        if fs.exists(manifest):
            skipped.append(str(path))
            continue
        rejected: list[pa.Table] = []
        for kind, table in file_batches([path], symbol, interval, parse_counts):
            if kind == "quarantine":
                rejected.append(table)
                continue
            result = validator.validate(kind, table)
            if result.quarantined.num_rows:
                rejected.append(result.quarantined)
            for day, part in _by_date(result.accepted).items():
                target = f"{raw}/files.{kind}/dt={day}/{name}.parquet"
                _write(fs, target, part, cfg.lander.compression)
                written.append(target)
                if registrar:
                    registrar.ensure_table(f"files.{kind}")
                    registrar.add_partition(f"files.{kind}", day)
        if rejected:
            today = datetime.now(UTC).strftime("%Y-%m-%d")
            target = f"{quarantine}/files/dt={today}/{name}.parquet"
            _write(fs, target, pa.concat_tables(rejected), cfg.lander.compression)
            written.append(target)
            if registrar:  # raw.files_quarantine, over quarantine/files/
                registrar.ensure_table("files.quarantine")
                registrar.add_partition("files.quarantine", today)
        fs.write_bytes(manifest, json.dumps({"source": str(path), "landed_at_ns": time.time_ns(),
                                             "files": written}).encode())
        landed.append(str(path))
    counts = Counts().add(validator.counts).add(parse_counts)
    if registrar:
        registrar.close()
    return {"landed": landed, "skipped_already_landed": skipped, "files_written": written,
            "received": counts.received, "accepted": counts.accepted,
            "quarantined": counts.quarantined, "filtered": counts.filtered,
            "by_reason": counts.by_reason, "reconciled": counts.reconciles(),
            "counts_summary": counts.summary()}
