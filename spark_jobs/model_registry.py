"""The lake's model registry: versioned models under ``<lake.root>/<models.registry_dir>/``.

Layout (one folder per version, never changed once committed)::

    <lake.root>/models/<name>/v<version>/manifest.json   # written last: the commit point
    <lake.root>/models/<name>/v<version>/spark_model/    # Spark ML PipelineModel (forecast, alpha)

A version is committed when its ``manifest.json`` exists: it is written as ``manifest.json.tmp``
and renamed into place (the lake's rename refuses to overwrite), so a reader never sees half a
manifest and a crashed training run leaves an uncommitted folder that readers ignore. Versions
are whole numbers, the next one being one more than the highest folder present (committed or
not, so a crashed run's folder is never reused).

The manifest is plain JSON (``FORMAT``): name, version, kind, created_at (UTC ISO), the training
range, the features, the label, the validation scheme and metrics, and for linear models the
exported coefficients that live inference uses. No git state is recorded: a version is
identified by its folder, and everything needed to reproduce it is in the manifest.

No pyspark import here: the CLI and live inference read the registry without a JVM.
"""

from __future__ import annotations

import json
import math
import re

from tradelake.config import Config
from tradelake.lakefs import LakeFS, lake_fs

FORMAT = "tradelake.model/1"
MANIFEST = "manifest.json"
SPARK_MODEL = "spark_model"
NAME = re.compile(r"^[a-z0-9][a-z0-9_]*$")
VERSION = re.compile(r"^v([0-9]+)$")


class RegistryError(LookupError):
    """A model or version that is not in the registry (the message says what is)."""


class Registry:
    """Read and commit model versions through the lake filesystem."""

    def __init__(self, fs: LakeFS, registry_dir: str) -> None:
        self.fs = fs
        self.dir = registry_dir.strip("/")

    @classmethod
    def of(cls, cfg: Config) -> Registry:
        return cls(lake_fs(cfg), cfg.models.registry_dir)

    # -- paths --------------------------------------------------------------------------------
    def path(self, name: str, version: int | None = None) -> str:
        check_name(name)
        return f"{self.dir}/{name}" if version is None else f"{self.dir}/{name}/v{version}"

    def uri(self, name: str, version: int, child: str = "") -> str:
        """Fully qualified location (for Spark ML's save/load)."""
        return self.fs.uri(f"{self.path(name, version)}/{child}".rstrip("/"))

    # -- reading ------------------------------------------------------------------------------
    def names(self) -> list[str]:
        return [n for n in self.fs.list(self.dir) if NAME.match(n) and self.versions(n)]

    def _folders(self, name: str) -> list[int]:
        found = (VERSION.match(entry) for entry in self.fs.list(self.path(name)))
        return sorted(int(m.group(1)) for m in found if m)

    def versions(self, name: str) -> list[int]:
        """Committed versions (with a manifest), ascending."""
        return [v for v in self._folders(name) if self.fs.exists(f"{self.path(name, v)}/{MANIFEST}")]

    def manifest(self, name: str, version: int | None = None) -> dict:
        """The manifest of ``version`` (default: the latest committed one)."""
        versions = self.versions(name)
        if not versions:
            known = ", ".join(self.names()) or "none"
            raise RegistryError(f"no model {name!r} in {self.fs.uri(self.dir)} (models: {known})")
        version = versions[-1] if version is None else version
        if version not in versions:
            raise RegistryError(f"model {name!r} has no version {version} (versions: "
                                f"{', '.join(map(str, versions))})")
        return json.loads(self.fs.read_bytes(f"{self.path(name, version)}/{MANIFEST}"))

    # -- writing ------------------------------------------------------------------------------
    def next_version(self, name: str) -> int:
        folders = self._folders(name)
        return folders[-1] + 1 if folders else 1

    def reserve(self, name: str) -> int:
        """Create and return the next version's folder (uncommitted until ``commit``)."""
        version = self.next_version(name)
        self.fs.makedirs(self.path(name, version))
        return version

    def commit(self, manifest: dict) -> str:
        """Write the manifest of ``manifest['name']`` / ``manifest['version']``: the commit point."""
        folder = self.path(manifest["name"], int(manifest["version"]))
        tmp, final = f"{folder}/{MANIFEST}.tmp", f"{folder}/{MANIFEST}"
        body = json.dumps(finite({"format": FORMAT, **manifest}), indent=2, allow_nan=False)
        self.fs.write_bytes(tmp, body.encode())
        self.fs.rename(tmp, final)
        return self.fs.uri(final)


def finite(value):
    """``value`` with every NaN or infinite float replaced by None (JSON has no NaN; a metric
    that is undefined, e.g. the AUC of a test block with one class only, is stored as null)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise RegistryError(f"model name {name!r}: lower-case letters, digits and _ only")
    return name
