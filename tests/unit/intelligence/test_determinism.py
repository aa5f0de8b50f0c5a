"""Determinism: the same bars give the same run, bit for bit, twice in a process and across
processes with different hash seeds (no set or dict-of-str iteration order leaks into results)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

from intelligence.backtest import Backtest
from intelligence.execution import Commission, Slippage
from intelligence.sources import bars_from_arrow
from intelligence.strategies import build_strategy
from intelligence.synthetic import synthetic_bars
from tradelake.config import load_config

SCRIPT = """
import hashlib, sys
sys.path.insert(0, {tests!r})
from test_determinism import digest
print(digest())
"""


def digest() -> str:
    bars = bars_from_arrow(synthetic_bars(["AAA", "BBB", "CCC"], 2, seed=3))
    h = hashlib.sha256()
    icfg = load_config("local").intelligence
    for name in ("mean_reversion", "trend", "selector"):
        r = Backtest(build_strategy(name, icfg), commission=Commission("per_share", 0.005, 1.0),
                     slippage=Slippage("bps", 1.0)).run(bars)
        h.update(repr((r.decisions(), [tuple(f) for f in r.fills], list(r.ts), list(r.equity), list(r.cash),
                       list(r.gross), r.metrics)).encode())
    return h.hexdigest()


def test_same_input_same_output_twice():
    assert digest() == digest()


def test_same_output_under_other_hash_seeds():
    here = os.path.dirname(__file__)
    outputs = set()
    for seed in ("1", "2"):
        proc = subprocess.run([sys.executable, "-c", SCRIPT.format(tests=here)], capture_output=True,
                              text=True, env={**os.environ, "PYTHONHASHSEED": seed}, check=True)
        outputs.add(proc.stdout.strip())
    assert outputs == {digest()}
