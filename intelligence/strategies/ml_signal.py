"""ML-signal strategy: a trained model's forecast, thresholded into a position.

Per symbol the strategy keeps a ``FeatureSet`` (every online feature, the same definitions as
the batch feature table the models are trained on), and once every feature the predictor names
has a value, calls ``predictor.predict(features)`` each bar: long when the forecast exceeds
``threshold``, short when it is below ``-threshold`` (if ``allow_short``), flat in between.

Any object with ``feature_names`` and ``predict`` works (``intelligence.models.Predictor``); the
CLI loads the configured model from the lake's registry (``intelligence.models.load_predictor``).
"""

from __future__ import annotations

from collections.abc import Iterable

from intelligence.domain import Bar
from intelligence.indicators import BAR_INPUTS, EXTRA_COLUMNS, FEATURE_COLUMNS, FeatureSet
from intelligence.models import Predictor
from intelligence.strategies.base import Strategy


class MlSignal(Strategy):
    name = "ml_signal"
    __slots__ = ("predictor", "threshold", "allow_short", "_features", "last_prediction")

    def __init__(self, predictor: Predictor, threshold: float = 0.0, allow_short: bool = True, *,
                 strategy_id: str | None = None, symbols: Iterable[str] | None = None,
                 qty: float = 100.0) -> None:
        super().__init__(strategy_id, symbols, qty)
        if not isinstance(predictor, Predictor):
            raise TypeError(f"{type(predictor).__name__} is not a Predictor (feature_names + predict)")
        known = (*BAR_INPUTS, *FEATURE_COLUMNS, *EXTRA_COLUMNS)
        unknown = set(predictor.feature_names) - set(known)
        if unknown:
            raise ValueError(f"the model reads column(s) {sorted(unknown)} the online FeatureSet does not "
                             f"compute; known: {', '.join(known)}")
        if threshold < 0:
            raise ValueError("ml_signal.threshold must be >= 0")
        self.predictor, self.threshold, self.allow_short = predictor, threshold, allow_short
        version = getattr(predictor, "version", None)
        self.model_version = None if version is None else str(version)
        self._features: dict[str, FeatureSet] = {}
        self.last_prediction: dict[str, float] = {}

    def on_bar(self, bar: Bar) -> None:
        symbol = bar.symbol
        features = self._features.get(symbol)
        if features is None:
            features = self._features[symbol] = FeatureSet()
        values = features.update(bar)
        if any(values[name] is None for name in self.predictor.feature_names):
            return
        forecast = self.predictor.predict(values)
        self.last_prediction[symbol] = forecast
        if forecast > self.threshold:  # NaN (a model's undefined input) compares False: flat
            wanted = 1.0
        elif forecast < -self.threshold and self.allow_short:
            wanted = -1.0
        else:
            wanted = 0.0
        if wanted != self.direction.get(symbol, 0.0):
            self.decide(symbol, wanted, "exit" if wanted == 0.0 else "alpha")
