"""The models' inputs: scale-free features derived from ``bar_features`` columns, defined once.

A model trained on several symbols cannot use price levels (``sma_20`` of a $50 and a $500 stock
mean different things), so it reads ratios such as ``close / sma_20 - 1``. Each derived feature
is an operation on bar_features columns, written twice from one table (``OPS``):
- as Spark SQL, for the ``SQLTransformer`` stage of the saved Spark ML pipeline (so the pipeline
  scores raw ``bar_features`` rows on its own);
- as a Python function, for live inference without Spark (``intelligence.models``).
Both do the same IEEE double operations in the same order, so they agree bit for bit; the
registry manifest stores each feature as ``{"name", "op", "args"}`` and the live side rebuilds
it from there. A zero denominator gives null in Spark (``try_divide``) and NaN live: no
prediction for that bar either way.

No pyspark import here: the live side imports this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Op:
    arity: int
    sql: str  # a template over the argument column names {0}, {1}, ...
    py: Callable[..., float]


def _div(a: float, b: float) -> float:
    return a / b if b != 0 else float("nan")


OPS: dict[str, Op] = {
    "col": Op(1, "`{0}`", lambda a: a),
    "rel": Op(2, "try_divide(`{0}`, `{1}`) - 1.0", lambda a, b: _div(a, b) - 1.0),
    "ratio": Op(2, "try_divide(`{0}`, `{1}`)", _div),
    "spread": Op(3, "try_divide(`{0}` - `{1}`, `{2}`)", lambda a, b, c: _div(a - b, c)),
}


@dataclass(frozen=True)
class Feature:
    name: str
    op: str
    args: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"feature {self.name!r}: unknown op {self.op!r} (known: {', '.join(OPS)})")
        if len(self.args) != OPS[self.op].arity:
            raise ValueError(f"feature {self.name!r}: op {self.op!r} takes {OPS[self.op].arity} columns")

    def sql(self) -> str:
        return OPS[self.op].sql.format(*self.args)

    def to_json(self) -> dict:
        return {"name": self.name, "op": self.op, "args": list(self.args)}

    @staticmethod
    def from_json(data: dict) -> Feature:
        return Feature(str(data["name"]), str(data["op"]), tuple(data["args"]))


# The catalogue (all scale-free; ``--features`` picks a subset). log_ret is left out: next to ret
# it is nearly collinear and adds nothing to a linear model.
CATALOGUE: tuple[Feature, ...] = (
    Feature("ret", "col", ("ret",)),
    Feature("zscore_20", "col", ("zscore_20",)),
    Feature("rv_20", "col", ("rv_20",)),
    Feature("rsi_14", "col", ("rsi_14",)),
    Feature("close_sma_10", "rel", ("close", "sma_10")),
    Feature("close_sma_50", "rel", ("close", "sma_50")),
    Feature("close_ema_20", "rel", ("close", "ema_20")),
    Feature("close_vwap_20", "rel", ("close", "vwap_20")),
    Feature("macd_hist_rel", "ratio", ("macd_hist", "close")),
    Feature("atr_rel", "ratio", ("atr_14", "close")),
    Feature("bb_width", "spread", ("bb_upper", "bb_lower", "bb_mid")),
)
BY_NAME = {f.name: f for f in CATALOGUE}


def select(names: Iterable[str] | None = None) -> tuple[Feature, ...]:
    """Catalogue features by name, in the order given (default: the whole catalogue)."""
    if names is None:
        return CATALOGUE
    names = list(names)
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise ValueError(f"unknown feature(s) {unknown}; known: {', '.join(BY_NAME)}")
    if len(set(names)) != len(names):
        raise ValueError(f"feature listed twice in {names}")
    return tuple(BY_NAME[n] for n in names)


def inputs(features: Sequence[Feature]) -> tuple[str, ...]:
    """The bar_features columns the features read, each once, in first-use order."""
    return tuple(dict.fromkeys(a for f in features for a in f.args))


PREFIX = "x_"  # Spark column of a feature: x_<name> (``ret`` is both an input and a feature)


def column(feature: Feature) -> str:
    return PREFIX + feature.name


def sql_statement(features: Sequence[Feature]) -> str:
    """The ``SQLTransformer`` statement adding the features, as ``x_<name>`` columns, to a frame
    of bar_features rows."""
    return ("SELECT *, " + ", ".join(f"{f.sql()} AS `{column(f)}`" for f in features)
            + " FROM __THIS__")


def evaluator(features: Sequence[Feature]) -> Callable[[Sequence[float]], list[float]]:
    """A function from the input values (in ``inputs(features)`` order) to the feature values."""
    position = {name: i for i, name in enumerate(inputs(features))}
    plan = [(OPS[f.op].py, tuple(position[a] for a in f.args)) for f in features]

    def evaluate(values: Sequence[float]) -> list[float]:
        return [fn(*[values[i] for i in idx]) for fn, idx in plan]

    return evaluate
