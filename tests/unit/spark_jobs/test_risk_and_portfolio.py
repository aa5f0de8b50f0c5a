"""spark_jobs/risk_metrics.py, portfolio_weights.py and train_risk.py on tiny hand-computed inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spark_jobs import portfolio_weights as pw
from spark_jobs import risk_metrics as rm
from spark_jobs.train_risk import portfolio_model, risk_model
from spark_jobs.walk_forward import folds

TEN = [-0.05, 0.04, -0.03, 0.02, -0.01, 0.0, 0.01, -0.02, 0.03, -0.04]  # losses 0.05, 0.04, ... -0.04
Z95, Z99 = 1.6448536269514722, 2.3263478740408408  # standard normal quantiles
ES95, ES99 = 2.0627128075074257, 2.665214220345806  # phi(z) / (1 - a)


def test_historical_var_is_the_ceil_a_n_th_smallest_loss_and_es_the_mean_beyond():
    # sorted losses: -0.04 -0.03 -0.02 -0.01 0 0.01 0.02 0.03 0.04 0.05
    assert rm.historical_var_es(TEN, 0.9) == pytest.approx((0.04, 0.045))  # 9th; mean(0.04, 0.05)
    assert rm.historical_var_es(TEN, 0.8) == pytest.approx((0.03, 0.04))   # 8th; mean(0.03..0.05)
    assert rm.historical_var_es(TEN, 0.95) == pytest.approx((0.05, 0.05))  # ceil(9.5) = 10th
    assert rm.historical_var_es([0.01, float("nan")], 0.95) == pytest.approx((-0.01, -0.01))  # NaN ignored


def test_gaussian_var_es():
    r = [0.03, -0.01]  # mean 0.01, sample sd sqrt(0.0008) = 0.028284271...
    sd = math.sqrt(0.0008)
    assert rm.gaussian_var_es(r, 0.95) == pytest.approx((-0.01 + Z95 * sd, -0.01 + ES95 * sd), rel=1e-12)
    assert rm.gaussian_var_es(r, 0.99) == pytest.approx((-0.01 + Z99 * sd, -0.01 + ES99 * sd), rel=1e-12)
    assert all(math.isnan(x) for x in rm.gaussian_var_es([0.01], 0.95))


def test_ewma_volatility():
    # s2 = 1e-4; then 0.5 * 1e-4 + 0.5 * 4e-4 = 2.5e-4; then 0.5 * 2.5e-4 + 0.5 * 9e-4 = 5.75e-4
    assert rm.ewma_volatility([0.01, -0.02, 0.03], 0.5) == pytest.approx(math.sqrt(5.75e-4), rel=1e-12)
    assert rm.ewma_volatility([0.02], 0.94) == pytest.approx(0.02)


def test_var_backtest_counts_exceedances():
    got = rm.var_backtest(TEN, [-0.06, 0.0, -0.045, -0.05], [0.9])
    # VaR_90 from TEN: hist 0.04 -> losses 0.06 and 0.045 and 0.05 exceed: 3 of 4
    assert got["exceed_hist_90"] == 0.75 and got["n_test"] == 4


def test_min_variance_weights():
    cov = np.diag([1.0, 4.0]) * 1e-6  # per-bar scale: the solver rescales
    assert pw.min_variance(cov) == pytest.approx([0.8, 0.2], abs=1e-8)  # w ~ 1 / var
    assert pw.min_variance(cov, cap=0.6) == pytest.approx([0.6, 0.4], abs=1e-8)  # the cap binds
    assert pw.min_variance(np.array([[1.0, 0.5], [0.5, 1.0]])) == pytest.approx([0.5, 0.5], abs=1e-8)
    assert pw.min_variance(np.eye(3), cap=0.2) == pytest.approx([1 / 3] * 3, abs=1e-8)  # cap < 1/n: 1/n


def test_risk_parity_weights_equalise_risk_contributions():
    cov = np.diag([1.0, 4.0])
    w = pw.risk_parity(cov)
    assert w == pytest.approx([2 / 3, 1 / 3], abs=1e-8)  # w ~ 1 / sd
    assert pw.risk_contributions(w, cov) == pytest.approx([0.5, 0.5], abs=1e-8)
    assert pw.risk_parity(cov, cap=0.6) == pytest.approx([0.6, 0.4], abs=1e-6)
    rng = np.random.default_rng(3)
    a = rng.normal(size=(400, 4)) * [1.0, 2.0, 3.0, 0.5] * 1e-3
    c = np.cov(a, rowvar=False)
    assert pw.risk_contributions(pw.risk_parity(c), c) == pytest.approx([0.25] * 4, abs=1e-7)


def test_mean_variance_weights():
    # max m'w - gamma/2 w'Sw, S = I, m = (0.1, 0), gamma = 1, w1 + w2 = 1:
    # 0.1 - w1 = -w2  ->  w1 - w2 = 0.1  ->  (0.55, 0.45)
    assert pw.mean_variance(np.array([0.1, 0.0]), np.eye(2), 1.0) == pytest.approx([0.55, 0.45], abs=1e-8)
    assert pw.mean_variance(np.array([0.1, 0.0]), np.eye(2), 1.0, cap=0.52) == pytest.approx([0.52, 0.48],
                                                                                            abs=1e-8)


def test_risk_model_per_symbol_portfolio_and_folds():
    times = np.arange(8)
    matrix = np.array([[0.01, 0.03], [-0.02, 0.0], [0.03, np.nan], [0.0, 0.01],
                       [0.01, -0.01], [-0.01, 0.02], [0.02, -0.03], [0.0, 0.01]])
    got = risk_model(times, ["A", "B"], matrix, folds(list(times), 1, purge=1), [0.9], 0.94,
                     weights={"A": 1.0})
    assert got["symbols"]["B"]["n"] == 7  # its own returns: the NaN bar dropped
    ew = rm.portfolio_returns(matrix, [0.5, 0.5])
    assert ew.tolist() == pytest.approx([0.02, -0.01, 0.005, 0.0, 0.005, -0.005, 0.005])  # bar 2 dropped
    assert got["portfolios"]["equal_weight"]["mean"] == pytest.approx(np.mean(ew))
    assert got["portfolios"]["given"]["weights"] == {"A": 1.0, "B": 0.0}
    # one fold: train on bars 0..3, purge bar 4, test on bars 5..7
    (fold,) = got["folds"]
    assert (fold["train_to"], fold["test_from"]) == (4, 5)
    a_var = rm.historical_var_es([0.01, -0.02, 0.03, 0.0], 0.9)[0]  # 0.02
    assert a_var == pytest.approx(0.02)
    assert fold["subjects"]["A"]["exceed_hist_90"] == 0.0  # test losses 0.01, -0.02, 0.0
    assert got["overall"]["A"]["n_test"] == 3
    with pytest.raises(ValueError, match="sum to 1"):
        risk_model(times, ["A", "B"], matrix, [], [0.9], 0.94, weights={"A": 0.5})


def test_portfolio_model_weights_respect_the_cap_and_sum_to_one():
    rng = np.random.default_rng(5)
    matrix = rng.normal(size=(200, 3)) * [1e-3, 2e-3, 4e-3]
    times = np.arange(200)
    got = portfolio_model(times, ["A", "B", "C"], matrix, folds(list(times), 3, purge=2), cap=0.5,
                          gamma=10.0, levels=[0.95], lam=0.94)
    for method, v in got["methods"].items():
        w = np.array(list(v["weights"].values()))
        assert w.sum() == pytest.approx(1.0) and (w <= 0.5 + 1e-9).all() and (w >= 0).all(), method
        assert sum(v["risk_contributions"].values()) == pytest.approx(1.0)
    assert got["methods"]["min_variance"]["weights"]["A"] == pytest.approx(0.5, abs=1e-6)  # capped
    assert len(got["folds"]) == 3 and got["overall"]["min_variance"]["n"] == sum(
        f["methods"]["min_variance"]["n"] for f in got["folds"])
