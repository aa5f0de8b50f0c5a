"""Live inference for the forecast and alpha models: the exported coefficients, no Spark.

``spark_jobs/train.py`` writes into each manifest the model's features (as operations on
bar_features columns, ``spark_jobs/model_features.py``), its coefficients and intercept. A
prediction is then a few dozen float operations in pure Python (a few microseconds; numpy would
only add call overhead at this size), and gives what Spark's saved ``PipelineModel.transform``
gives on the same row (same operations in the same order; the one difference is the summation
order of the dot product, far below 1e-9): ``tests/integration/intelligence/test_models_registry.py``.

Outputs (``predict``):
- forecast (link ``identity``): the expected next-bar return, Spark's ``prediction``;
- alpha (link ``logistic``): ``2 * P(up) - 1`` in (-1, 1), so that, as the ``Predictor``
  contract says, its sign is the direction (and it can be a signal's strength as it stands);
  ``probability`` gives P(up), Spark's ``probability[1]``.
A feature whose denominator is 0 makes the prediction NaN (Spark gives no prediction there).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from spark_jobs import model_features
from spark_jobs.model_features import Feature
from spark_jobs.model_registry import Registry
from tradelake.config import Config

LINKS = ("identity", "logistic")


class LinearPredictor:
    """A linear (``identity``) or logistic (``logistic``) model over derived features."""

    def __init__(self, features: Sequence[Feature], coefficients: Sequence[float], intercept: float,
                 link: str = "identity", name: str = "", version: int | None = None) -> None:
        if link not in LINKS:
            raise ValueError(f"link must be one of {LINKS}, got {link!r}")
        if len(coefficients) != len(features):
            raise ValueError(f"{len(coefficients)} coefficients for {len(features)} features")
        self.features = tuple(features)
        self.feature_names: tuple[str, ...] = model_features.inputs(self.features)
        self.coefficients = tuple(float(c) for c in coefficients)
        self.intercept = float(intercept)
        self.link = link
        self.name, self.version = name, version
        self._evaluate = model_features.evaluator(self.features)

    def margin(self, features: Mapping[str, float]) -> float:
        """intercept + coefficients . x (x the derived features of ``features``)."""
        x = self._evaluate([features[n] for n in self.feature_names])
        dot = 0.0
        for c, v in zip(self.coefficients, x, strict=True):
            dot += c * v
        return dot + self.intercept

    def probability(self, features: Mapping[str, float]) -> float:
        """P(next return > 0) of a logistic model (Spark: 1 / (1 + exp(-margin)))."""
        if self.link != "logistic":
            raise TypeError(f"{self.name or 'this model'} is a regression: it has no probability")
        try:
            return 1.0 / (1.0 + math.exp(-self.margin(features)))
        except OverflowError:  # margin below about -709: exp overflows, Java gives 1/inf = 0
            return 0.0

    def predict(self, features: Mapping[str, float]) -> float:
        if self.link == "identity":
            return self.margin(features)
        return 2.0 * self.probability(features) - 1.0

    def __repr__(self) -> str:
        return (f"LinearPredictor({self.name or '?'} v{self.version}, link={self.link}, "
                f"{len(self.features)} features from {len(self.feature_names)} inputs)")

    @classmethod
    def from_manifest(cls, manifest: dict) -> LinearPredictor:
        model = manifest.get("model") or {}
        if model.get("link") not in LINKS:
            raise ValueError(f"model {manifest.get('name')!r} (kind {manifest.get('kind')!r}) is not a "
                             "linear or logistic model: it has no exported coefficients to predict with")
        features = [Feature.from_json(f) for f in manifest["features"]]
        if model.get("feature_order") != [f.name for f in features]:
            raise ValueError(f"model {manifest['name']!r}: coefficient order {model.get('feature_order')} "
                             f"differs from its features {[f.name for f in features]}")
        return cls(features, model["coefficients"], model["intercept"], model["link"],
                   manifest["name"], manifest["version"])


def load_manifest(cfg: Config, name: str, version: int | None = None) -> dict:
    """A model's manifest from the lake's registry (latest committed version by default)."""
    return Registry.of(cfg).manifest(name, version)


def load_predictor(cfg: Config, name: str, version: int | None = None) -> LinearPredictor:
    """The live predictor of a forecast or alpha model in the registry (latest version by default)."""
    return LinearPredictor.from_manifest(load_manifest(cfg, name, version))
