"""The one filesystem abstraction for all lake I/O.

``hdfs://`` lake roots go through WebHDFS (the ``hdfs`` package: what the stack and clusters
serve); ``file://`` roots use the local filesystem (unit tests, a lite profile). Paths given to
these methods are relative to the lake root (``raw/md.trades/dt=2026-01-05/...``);
``uri(path)`` gives the fully qualified location Spark and Hive need.

``rename`` is the commit point of the lake lander, so both implementations make it atomic and
refuse to overwrite an existing target (HDFS rename semantics).
"""

from __future__ import annotations

import os
import posixpath
import shutil
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from tradelake.config import Config


class LakeError(RuntimeError):
    """A lake operation failed; the message names the path."""


class LakeFS(Protocol):
    root: str

    def uri(self, path: str) -> str: ...
    def write_bytes(self, path: str, data: bytes) -> None: ...
    def read_bytes(self, path: str) -> bytes: ...
    def rename(self, src: str, dst: str) -> None: ...
    def exists(self, path: str) -> bool: ...
    def list(self, path: str) -> list[str]: ...
    def makedirs(self, path: str) -> None: ...
    def delete(self, path: str, recursive: bool = False) -> bool: ...
    def size(self, path: str) -> int: ...


def _clean(path: str) -> str:
    if ".." in path.split("/"):
        raise LakeError(f"path {path!r} leaves the lake root")
    norm = posixpath.normpath("/" + path.lstrip("/")).lstrip("/")
    return "" if norm == "." else norm


class LocalLakeFS:
    """The lake on a local directory (``file:///...``)."""

    def __init__(self, root: str | Path) -> None:
        self.base = Path(urlsplit(str(root)).path if str(root).startswith("file:") else root)
        self.base.mkdir(parents=True, exist_ok=True)
        self.root = f"file://{self.base}"

    def _p(self, path: str) -> Path:
        return self.base / _clean(path)

    def uri(self, path: str) -> str:
        return f"file://{self._p(path)}"

    def write_bytes(self, path: str, data: bytes) -> None:
        target = self._p(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())

    def read_bytes(self, path: str) -> bytes:
        return self._p(path).read_bytes()

    def rename(self, src: str, dst: str) -> None:
        source, target = self._p(src), self._p(dst)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)  # atomic, and fails if the target exists (unlike rename)
        except FileExistsError as exc:
            raise LakeError(f"rename {src} -> {dst}: target exists") from exc
        source.unlink()

    def exists(self, path: str) -> bool:
        return self._p(path).exists()

    def list(self, path: str) -> list[str]:
        folder = self._p(path)
        return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []

    def makedirs(self, path: str) -> None:
        self._p(path).mkdir(parents=True, exist_ok=True)

    def delete(self, path: str, recursive: bool = False) -> bool:
        target = self._p(path)
        if not target.exists():
            return False
        if target.is_dir():
            if recursive:
                shutil.rmtree(target)
            else:
                target.rmdir()
        else:
            target.unlink()
        return True

    def size(self, path: str) -> int:
        return self._p(path).stat().st_size


class WebHdfsLakeFS:
    """The lake on HDFS through WebHDFS (``hdfs://namenode:port/path`` roots)."""

    def __init__(self, root: str, webhdfs_url: str, user: str) -> None:
        from hdfs import InsecureClient

        parts = urlsplit(root)
        if parts.scheme != "hdfs":
            raise LakeError(f"WebHdfsLakeFS needs an hdfs:// root, got {root!r}")
        self.root = root.rstrip("/")
        self.fs_prefix = f"hdfs://{parts.netloc}"
        self.base = parts.path.rstrip("/") or "/"
        self.client = InsecureClient(webhdfs_url, user=user)

    def _p(self, path: str) -> str:
        return posixpath.join(self.base, _clean(path))

    def uri(self, path: str) -> str:
        return self.fs_prefix + self._p(path)

    def write_bytes(self, path: str, data: bytes) -> None:
        self.client.write(self._p(path), data=data, overwrite=True)

    def read_bytes(self, path: str) -> bytes:
        with self.client.read(self._p(path)) as reader:
            return reader.read()

    def rename(self, src: str, dst: str) -> None:
        from hdfs.util import HdfsError

        target = self._p(dst)
        self.client.makedirs(posixpath.dirname(target))
        if self.exists(dst):
            raise LakeError(f"rename {src} -> {dst}: target exists")
        try:
            self.client.rename(self._p(src), target)
        except HdfsError as exc:
            raise LakeError(f"rename {src} -> {dst} failed: {exc}") from exc

    def exists(self, path: str) -> bool:
        return self.client.status(self._p(path), strict=False) is not None

    def list(self, path: str) -> list[str]:
        if not self.exists(path):
            return []
        return sorted(self.client.list(self._p(path)))

    def makedirs(self, path: str) -> None:
        self.client.makedirs(self._p(path))

    def delete(self, path: str, recursive: bool = False) -> bool:
        return bool(self.client.delete(self._p(path), recursive=recursive))

    def size(self, path: str) -> int:
        return int(self.client.status(self._p(path))["length"])


def lake_fs(cfg: Config) -> LakeFS:
    """The lake of a profile: WebHDFS for ``hdfs://`` roots, local for ``file://``."""
    scheme = urlsplit(cfg.lake.root).scheme
    if scheme == "hdfs":
        return WebHdfsLakeFS(cfg.lake.root, cfg.hdfs.webhdfs, cfg.hdfs.user)
    if scheme in ("file", ""):
        return LocalLakeFS(cfg.lake.root)
    raise LakeError(f"lake.root {cfg.lake.root!r}: scheme must be hdfs:// or file://")
