"""Fetch each JVM service's jars from Maven Central into ``var/jvm/<service>/lib`` (idempotent).

One small Maven project per service (tradelake/stack/jvm/<service>/pom.xml) keeps each
classpath separate. A service is fetched again only when its pom changes (a hash is kept
beside its jars). Jars are fetched here, at setup, never at run time.

    python -m tradelake.stack.setup_jvm [--force] [SERVICE ...]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tradelake.config import load_config

POM_ROOT = Path(__file__).resolve().parent / "jvm"


def services() -> list[str]:
    return sorted(p.parent.name for p in POM_ROOT.glob("*/pom.xml"))


def fetch(service: str, var_dir: Path, force: bool = False) -> str:
    pom = POM_ROOT / service / "pom.xml"
    target = var_dir / "jvm" / service
    lib, stamp = target / "lib", target / "pom.sha256"
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    if not force and stamp.exists() and stamp.read_text() == digest and any(lib.glob("*.jar")):
        return "up to date"
    mvn = shutil.which("mvn")
    if not mvn:
        raise SystemExit("setup: mvn not found; run tradelake/stack/setup_system.sh first")
    shutil.rmtree(lib, ignore_errors=True)
    started = time.monotonic()
    result = subprocess.run(
        [mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
         "-DincludeScope=runtime", f"-DoutputDirectory={lib}"],
        capture_output=True, text=True,
    )
    if result.returncode != 0:
        raise SystemExit(f"setup: fetching {service} jars failed:\n{result.stdout[-4000:]}"
                         f"{result.stderr[-2000:]}")
    stamp.write_text(digest)
    jars = list(lib.glob("*.jar"))
    size = sum(j.stat().st_size for j in jars) / 2**20
    return f"{len(jars)} jars, {size:.0f} MB in {time.monotonic() - started:.0f}s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fetch the stack's JVM services from Maven Central.")
    parser.add_argument("services", nargs="*", help=f"default: all of {services()}")
    parser.add_argument("--force", action="store_true", help="fetch again even if up to date")
    args = parser.parse_args(argv)
    var_dir = load_config().var_dir
    chosen = args.services or services()
    for i, service in enumerate(chosen, 1):
        print(f"setup: [{i}/{len(chosen)}] jvm/{service} ...", end=" ", flush=True)
        print(fetch(service, var_dir, args.force), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
