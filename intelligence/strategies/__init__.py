"""Strategies, and building one by name from the profile's ``intelligence:`` section.

``build_strategy("mean_reversion", cfg.intelligence, ...)`` is how the CLI, the backtester and
parameter sweeps make a strategy; ``with_overrides`` applies ``section.field=value`` (or
``field=value`` for the strategy's own section) on top of the profile, type-checked against the
config dataclasses, so a sweep's grid and ``--param`` speak the same names as ``conf/*.yaml``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from intelligence.models import Predictor
from intelligence.strategies.base import Strategy
from intelligence.strategies.mean_reversion import MeanReversion
from intelligence.strategies.ml_signal import MlSignal
from intelligence.strategies.pairs import Pairs
from intelligence.strategies.selector import RegimeSelector
from intelligence.strategies.trend import TrendFollowing
from tradelake.config import IntelligenceConfig

__all__ = ["STRATEGIES", "MeanReversion", "MlSignal", "Pairs", "RegimeSelector", "Strategy", "TrendFollowing",
           "build_strategy", "parse_value", "with_overrides"]

STRATEGIES = ("mean_reversion", "trend", "pairs", "ml_signal", "selector")
_SECTIONS = {f.name for f in dataclasses.fields(IntelligenceConfig)} - {"backtest"}


def parse_value(text: str, like: Any) -> Any:
    """A command-line string as the type of ``like`` (the config default it replaces)."""
    if isinstance(like, bool):
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected true/false, got {text!r}")
    if isinstance(like, int):
        return int(text)
    if isinstance(like, float):
        return float(text)
    if isinstance(like, tuple):
        return tuple(p.strip() for p in text.split("/") if p.strip())
    return text


def with_overrides(icfg: IntelligenceConfig, strategy: str,
                   overrides: Mapping[str, Any]) -> IntelligenceConfig:
    """``icfg`` with ``overrides`` applied: keys ``field`` (the strategy's own section) or
    ``section.field``; string values are parsed as the field's type. Unknown keys raise ValueError."""
    sections: dict[str, dict[str, Any]] = {}
    for key, value in overrides.items():
        section, _, name = key.rpartition(".")
        section = section or strategy
        if section not in _SECTIONS and section != "backtest":
            known = ", ".join(sorted({*_SECTIONS, "backtest"}))
            raise ValueError(f"unknown section {section!r} in {key!r}; known: {known}")
        current = getattr(icfg, section)
        if name not in {f.name for f in dataclasses.fields(current)}:
            known = ", ".join(f.name for f in dataclasses.fields(current))
            raise ValueError(f"unknown parameter {key!r}; {section} has: {known}")
        like = getattr(current, name)
        if isinstance(value, str) and not isinstance(like, str):
            value = parse_value(value, like)
        elif isinstance(like, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        sections.setdefault(section, {})[name] = value
    try:
        return dataclasses.replace(icfg, **{s: dataclasses.replace(getattr(icfg, s), **kw)
                                            for s, kw in sections.items()})
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bad parameters {dict(overrides)}: {exc}") from exc


def build_strategy(name: str, icfg: IntelligenceConfig, *, symbols: Iterable[str] | None = None,
                   predictor: Predictor | Callable[[], Predictor] | None = None,
                   strategy_id: str | None = None) -> Strategy:
    """The strategy ``name`` with the parameters of ``icfg`` (see ``STRATEGIES``). ``ml_signal``
    (alone or under the selector) needs ``predictor``: the model, or a function loading it."""
    qty = icfg.backtest.order_qty
    if name == "mean_reversion":
        c = icfg.mean_reversion
        return MeanReversion(c.window, c.entry_z, c.exit_z, strategy_id=strategy_id, symbols=symbols, qty=qty)
    if name == "trend":
        c = icfg.trend
        return TrendFollowing(c.fast, c.slow, c.average, c.momentum_window, c.min_momentum, c.allow_short,
                              strategy_id=strategy_id, symbols=symbols, qty=qty)
    if name == "pairs":
        c = icfg.pairs
        return Pairs(c.legs, c.window, c.entry_z, c.exit_z, strategy_id=strategy_id, qty=qty)
    if name == "ml_signal":
        if predictor is None:
            raise ValueError("ml_signal needs a predictor (intelligence.models.load_predictor)")
        model = predictor if isinstance(predictor, Predictor) else predictor()
        c = icfg.ml_signal
        return MlSignal(model, c.threshold, c.allow_short, strategy_id=strategy_id, symbols=symbols, qty=qty)
    if name == "selector":
        c = icfg.selector
        subs = []
        for sub in (c.trend_strategy, c.range_strategy):
            if sub in ("selector", "pairs"):
                raise ValueError(f"selector: {sub!r} cannot be a regime's strategy (one-symbol ones only)")
            subs.append(build_strategy(sub, icfg, symbols=symbols, predictor=predictor,
                                       strategy_id=f"selector.{sub}"))
        return RegimeSelector(subs[0], subs[1], c.adx_window, c.trend_threshold, strategy_id=strategy_id,
                              symbols=symbols, qty=qty)
    raise ValueError(f"unknown strategy {name!r}; known: {', '.join(STRATEGIES)}")
