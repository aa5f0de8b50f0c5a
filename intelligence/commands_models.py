"""``tradelake models list|show`` (the lake's model registry) and ``tradelake train`` (runs
``spark_jobs/train.py`` with spark-submit, as a user would)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from collections import deque

from spark_jobs.window_args import add_window_arguments
from tradelake.config import PROJECT_ROOT, load_config
from tradelake.text_table import format_table

MARKER, ERROR, PROGRESS = "TRAIN_RESULT ", "TRAIN_ERROR ", "[train] "


def _headline(manifest: dict) -> str:
    return ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                     for k, v in (manifest.get("headline") or {}).items())


def cmd_models_list(args: argparse.Namespace) -> int:
    from spark_jobs.model_registry import Registry

    registry = Registry.of(load_config(args.profile))
    rows = []
    for name in registry.names():
        versions = registry.versions(name)
        m = registry.manifest(name, versions[-1])
        span = m.get("training_range", {})
        rows.append({"name": name, "latest": versions[-1], "versions": len(versions), "kind": m.get("kind"),
                     "interval": m.get("interval"), "trained_on": f"{span.get('from')}..{span.get('to')}",
                     "created_at": m.get("created_at"), "headline": _headline(m)})
    if args.json:
        print(json.dumps(rows, indent=2))
    elif rows:
        print(format_table(list(rows[0]), [list(r.values()) for r in rows]))
    print(f"{len(rows)} model{'s' if len(rows) != 1 else ''} in {registry.fs.uri(registry.dir)}",
          file=sys.stderr)
    return 0


def cmd_models_show(args: argparse.Namespace) -> int:
    from spark_jobs.model_registry import Registry, RegistryError

    registry = Registry.of(load_config(args.profile))
    try:
        manifest = registry.manifest(args.name, args.version)
    except RegistryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(manifest, indent=2))
        return 0
    span, val = manifest.get("training_range", {}), manifest.get("validation", {})
    print(f"{manifest['name']} v{manifest['version']}  ({manifest['kind']}, {manifest.get('interval')} bars)")
    print(f"  created_at   {manifest.get('created_at')}   run {manifest.get('run_id')}")
    print(f"  trained on   {span.get('from')}..{span.get('to')}: {span.get('bar_times')} bar times"
          + (f", {manifest['rows_trained']} rows" if "rows_trained" in manifest else ""))
    print(f"  validation   {val.get('scheme')}, {val.get('folds')} folds, "
          f"purge {val.get('purge_bars')} bar times")
    print(f"  headline     {_headline(manifest)}")
    if "features" in manifest:
        print(f"  features     {', '.join(f['name'] for f in manifest['features'])}")
        model = manifest["model"]
        print(f"  model        {model['type']} ({model['link']}): {model['predicts']}")
        folds = manifest["metrics"]["folds"]
        keys = [k for k in ("n_train", "n", "rmse", "r2", "ic", "accuracy", "auc", "up_rate") if k in
                manifest["metrics"]["overall"] or k == "n_train"]
        table = [[f.get("index"), *[f.get(k) for k in keys]] for f in folds]
        table.append(["overall", *[manifest["metrics"]["overall"].get(k) for k in keys]])
        print(format_table(["fold", *keys], table))
    if "weights" in manifest:
        methods = list(manifest["weights"])
        print(format_table(["symbol", *methods], [[s, *[manifest["weights"][m][s] for m in methods]]
                                                  for s in manifest["symbols"]]))
    if manifest["kind"] == "risk":
        subjects = manifest["metrics"]["symbols"] | manifest["metrics"]["portfolios"]
        keys = [k for k in next(iter(subjects.values())) if k != "weights"]
        print(format_table(["subject", *keys], [[s, *[v.get(k) for k in keys]] for s, v in subjects.items()]))
    print(f"  full manifest: tradelake models show {manifest['name']} --version {manifest['version']} --json")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from tradelake.spark import spark_submit_command

    cfg = load_config(args.profile)
    argv = ["--from", args.date_from.isoformat(), "--to", args.date_to.isoformat(),
            "--interval", args.interval, "--models", args.models]
    optional = (("--symbols", args.symbols), ("--features", args.features), ("--weights", args.weights),
                ("--folds", args.folds), ("--purge-bars", args.purge_bars))
    for flag, value in optional:
        if value:
            argv += [flag, str(value)]
    script = PROJECT_ROOT / "spark_jobs" / "train.py"
    print(f"spark-submit spark_jobs/train.py {' '.join(argv)}", file=sys.stderr, flush=True)
    command, env = spark_submit_command(cfg, script, argv, env={"TRADELAKE_PROFILE": cfg.profile})
    started, summary, error, tail = time.monotonic(), None, None, deque(maxlen=60)
    # spark-submit hands the Python driver's stdout and stderr, merged, to its own stdout, and
    # writes the JVM's logs to stderr; the two are read apart (the logs on a thread, so neither
    # pipe fills up), which keeps a log line from landing inside the job's JSON line
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=env) as proc:
        logs = threading.Thread(target=lambda: tail.extend(ln.rstrip() for ln in proc.stderr), daemon=True)
        logs.start()
        for line in proc.stdout:  # the job's progress shows as it happens
            if line.startswith(MARKER):
                summary = json.loads(line[len(MARKER):])
            elif line.startswith(ERROR):
                error = line[len(ERROR):].strip()
            elif line.startswith(PROGRESS):
                print("  " + line.rstrip(), file=sys.stderr, flush=True)
            else:
                tail.append(line.rstrip())
        logs.join()
    if proc.returncode != 0 or summary is None:
        details = error or "\n".join(ln for ln in tail if "Error" in ln or "Exception" in ln or "error" in ln)
        print(f"train failed (exit {proc.returncode}): {details or chr(10).join(tail)}", file=sys.stderr)
        return 1
    print(f"trained in {time.monotonic() - started:.0f}s (spark-submit included)", file=sys.stderr)
    print(json.dumps(summary))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    models = sub.add_parser("models", help="the lake's model registry",
                            description="Models trained by spark_jobs/train.py (tradelake train), versioned "
                                        "under <lake.root>/<models.registry_dir>/<name>/v<version>/.")
    models_sub = models.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = models_sub.add_parser("list", help="every model with its latest version",
                                    description="One line per model: latest version, kind, interval, "
                                                "training range and headline walk-forward metrics.")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(func=cmd_models_list)
    show = models_sub.add_parser("show", help="one model version: range, features, metrics per fold",
                                 description="Exit 1 if the model or version is not in the registry.")
    show.add_argument("name", help="model name, e.g. alpha_1m")
    show.add_argument("--version", type=int, help="version number (default: the latest)")
    show.add_argument("--json", action="store_true", help="print the whole manifest as JSON")
    show.set_defaults(func=cmd_models_show)

    train = sub.add_parser(
        "train", help="train forecast, alpha, risk and portfolio models with spark-submit",
        description="Runs spark_jobs/train.py with spark-submit over the bar features of --from..--to: "
                    "walk-forward validation, then one new registry version per model and its metrics "
                    "in <trading_db>.model_metrics. Prints the job's progress and its JSON summary; exit 1 "
                    "if it fails.")
    add_window_arguments(train)
    train.add_argument("--interval", default="1m", help="bar interval (default 1m)")
    train.add_argument("--models", default="forecast,alpha,risk,portfolio", help="subset to train")
    train.add_argument("--features", default="", help="model features (default: the whole catalogue)")
    train.add_argument("--weights", default="", help="also report risk for this portfolio: SYM=W,...")
    train.add_argument("--folds", type=int, help="walk-forward folds (default: models.folds)")
    train.add_argument("--purge-bars", type=int, help="purge gap in bar times (default: models.purge_bars)")
    train.set_defaults(func=cmd_train)
