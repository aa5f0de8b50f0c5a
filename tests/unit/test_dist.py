"""``make dist``: the --py-files zip imports and finds its DDL and profile without a checkout."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile

from tradelake.config import PROJECT_ROOT
from tradelake.dist import build

PROBE = """
import json, spark_jobs.bars, spark_jobs.features, spark_jobs.etl_ticks, spark_jobs.speed_layer
from hive.warehouse import ddl_files, statements
from tradelake.config import load_config, PROJECT_ROOT, CONF_DIR
cfg = load_config()
print(json.dumps({"bars": spark_jobs.bars.__file__, "ddl": [n for n, _ in ddl_files()],
                  "profile": cfg.profile, "root": str(PROJECT_ROOT), "conf": str(CONF_DIR),
                  "tables": len([s for s in statements(cfg) if s.kind == "TABLE"])}))
"""


def test_the_zip_runs_from_a_bare_working_directory_like_a_yarn_container(tmp_path):
    target = build(out_dir=tmp_path / "dist")
    with zipfile.ZipFile(target) as zf:
        names = set(zf.namelist())
    assert {"spark_jobs/bars.py", "hive/ddl/20_curated.hql", "hive/queries/daily_vwap.sql",
            "tradelake/config.py", "ingestion/wire.py"} <= names
    assert not any("__pycache__" in n or n.startswith("tests/") for n in names)

    container = tmp_path / "container"  # what YARN gives the driver: the zip and --files
    container.mkdir()
    shutil.copy(PROJECT_ROOT / "conf" / "cluster.yaml", container / "cluster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADELAKE_")}
    env.update({"PYTHONPATH": str(target), "TRADELAKE_PROFILE": "cluster"})
    proc = subprocess.run([sys.executable, "-c", PROBE], cwd=container, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert seen["bars"].startswith(str(target))  # imported from the zip, not the checkout
    ddl = sorted((PROJECT_ROOT / "hive" / "ddl").glob("*.hql"))
    assert seen["ddl"] == [p.name for p in ddl]  # every DDL file travels in the zip
    assert seen["profile"] == "cluster" and seen["root"] == str(container) and seen["conf"] == str(container)
    tables = sum(len(re.findall(r"^CREATE (?:EXTERNAL )?TABLE", p.read_text(), re.M)) for p in ddl)
    assert seen["tables"] == tables > 0
