import json
import subprocess
import sys

import pytest

from tradelake.cli import EXIT_USAGE, build_parser, main

SUBCOMMANDS = [
    [], ["stack"], ["stack", "up"], ["stack", "down"], ["stack", "status"],
    ["config"], ["config", "show"], ["smoke"], ["ingest"], ["land"], ["land-files"],
    ["hive"], ["hive", "apply"], ["sql"], ["batch"], ["speed"],
    ["ods"], ["ods", "migrate"], ["ods", "status"], ["ods", "listen"], ["bars"],
    ["models"], ["models", "list"], ["models", "show"], ["train"], ["backtest"],
    ["risk"], ["risk", "kill"], ["risk", "release"], ["risk", "status"], ["exchange"], ["route"],
    ["oms"], ["oms", "status"], ["oms", "recover"], ["demo"], ["replay"], ["ods", "checksum"],
]


def all_leaf_commands(parser, prefix=()):
    """Walk the argparse tree so a new subcommand without --help cannot slip through."""
    found = [list(prefix)]
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            for name, sub in action.choices.items():
                found += all_leaf_commands(sub, (*prefix, name))
    return found


def test_every_subcommand_is_covered():
    assert sorted(map(tuple, all_leaf_commands(build_parser()))) == sorted(map(tuple, SUBCOMMANDS))


@pytest.mark.parametrize("words", SUBCOMMANDS, ids=lambda w: " ".join(w) or "tradelake")
def test_help_on_every_subcommand(words):
    result = subprocess.run([sys.executable, "-m", "tradelake.cli", *words, "--help"],
                            capture_output=True, text=True)
    assert result.returncode == 0
    assert "usage: tradelake" in result.stdout


def test_config_error_exits_2_with_message(capsys):
    assert main(["--profile", "does-not-exist", "config", "show"]) == EXIT_USAGE
    assert "no file" in capsys.readouterr().err


def test_config_show_masks_secrets(monkeypatch, capsys):
    monkeypatch.setenv("TRADELAKE_HIVE__PASSWORD", "s3cret")
    monkeypatch.setenv("TRADELAKE_ROUTING__FIX__PASSWORD", "fixpw1")  # a nested section's secret too
    monkeypatch.setenv("TRADELAKE_ROUTING__EXCHANGE__PASSWORD", "fixpw2")
    assert main(["config", "show", "--json"]) == 0
    out = capsys.readouterr().out
    assert "s3cret" not in out and "fixpw" not in out
    data = json.loads(out)
    assert data["hive"]["password"] == data["routing"]["fix"]["password"] == "***"
    assert data["routing"]["exchange"]["password"] == "***" and data["postgres"]["password"] is None
    assert main(["config", "show"]) == 0
    assert "fixpw" not in capsys.readouterr().out


def test_cluster_profile_refuses_to_manage_a_stack(capsys):
    assert main(["--profile", "cluster", "stack", "down"]) == 1
    assert "points at external services" in capsys.readouterr().err
