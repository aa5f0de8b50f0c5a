"""``make dist``: the zip that ``spark-submit --py-files`` ships to a cluster.

    .venv/bin/python -m tradelake.dist [--out dist]

It holds the project's packages (tradelake, ingestion, spark_jobs, hive with its ``ddl/*.hql``
and ``queries/*.sql``, and the other layers) so every job's imports and the warehouse DDL resolve
on YARN containers through Python's zipimport. Third-party libraries are not inside: executors
need pandas, pyarrow and numpy (grouped pandas functions), the driver also PyYAML; ship them with
the cluster's Python or a venv-pack archive (see the README).
"""

from __future__ import annotations

import argparse
import sys
import tomllib
import zipfile
from fnmatch import fnmatch
from pathlib import Path

from tradelake.config import PROJECT_ROOT

SKIP_DIRS = {"__pycache__"}


def packages(root: Path) -> list[str]:
    """Top-level package names from pyproject's ``packages.find.include`` patterns."""
    project = tomllib.loads((root / "pyproject.toml").read_text())
    patterns = project["tool"]["setuptools"]["packages"]["find"]["include"]
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / "__init__.py").exists()
                  and any(fnmatch(p.name, pat) for pat in patterns))


def build(root: Path = PROJECT_ROOT, out_dir: Path | None = None) -> Path:
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    out_dir = out_dir or root / "dist"
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{project['name']}-{project['version']}-py.zip"
    tmp = target.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for package in packages(root):
            for path in sorted((root / package).rglob("*")):
                if path.is_file() and not SKIP_DIRS & set(path.relative_to(root).parts) \
                        and path.suffix in {".py", ".hql", ".sql", ".xml", ".template", ".properties"}:
                    zf.write(path, path.relative_to(root).as_posix())
    tmp.replace(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the --py-files zip for cluster deploys.")
    parser.add_argument("--out", type=Path, help="output folder (default: dist/)")
    args = parser.parse_args(argv)
    target = build(out_dir=args.out)
    with zipfile.ZipFile(target) as zf:
        names = zf.namelist()
    print(f"built {target} ({target.stat().st_size / 1024:.0f} KiB, {len(names)} files: "
          f"{', '.join(packages(PROJECT_ROOT))})")
    print("cluster: spark-submit --master yarn --deploy-mode cluster --py-files "
          f"{target.relative_to(PROJECT_ROOT) if target.is_relative_to(PROJECT_ROOT) else target} "
          "--files conf/cluster.yaml --conf spark.yarn.appMasterEnv.TRADELAKE_PROFILE=cluster "
          "spark_jobs/bars.py --from 2026-01-05 --to 2026-01-09   (see the README)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
