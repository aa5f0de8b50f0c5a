"""Models used by strategies at run time.

``Predictor`` is the one contract between model training (``spark_jobs/train.py``, which exports
models here) and the strategies that use them (``intelligence.strategies.ml_signal``): a
strategy hands the model one bar's features by name and gets one number back. Anything with
these two members is a predictor; no base class is needed.

``load_predictor(cfg, name, version=None)`` reads one from the lake's model registry
(``intelligence/models/linear.py``: exported coefficients, no Spark, a few microseconds a call).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from intelligence.models.linear import LinearPredictor, load_manifest, load_predictor

__all__ = ["LinearPredictor", "Predictor", "load_manifest", "load_predictor"]


@runtime_checkable
class Predictor(Protocol):
    """A trained model as the live path sees it.

    ``feature_names``: the inputs it reads, in its own order (names of the online features,
    e.g. ``"rsi_14"``). ``predict``: one bar's features by name -> one number (a forecast
    return, or a score whose sign is the direction); a missing or None feature is the caller's
    problem: the ML strategy does not call ``predict`` until every named feature has a value.
    """

    feature_names: tuple[str, ...]

    def predict(self, features: Mapping[str, float]) -> float: ...
