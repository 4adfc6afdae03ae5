"""mlsys.continual.freshness: windows at a fixed training length, the experiment on a planted drifting stream, the
loss curve, and the update-frequency rule on synthetic curves and bad inputs. No estimator is defined here."""
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mlsys.continual.freshness import (UpdateFrequency, freshness_curve, freshness_experiment,
                                       recommend_update_frequency, staleness_windows)
from mlsys.core import ConfigError, DataError, SchemaError


# --- windows ---------------------------------------------------------------------------------------------------------

def test_windows_have_the_same_length_and_end_k_days_before_the_test():
    ks = [60, 0, 3, 1]
    w = staleness_windows("2013-06-03", ks, train_days=21, test_days=5)
    assert list(w["staleness_days"]) == [0, 1, 3, 60]
    assert set((w["train_end"] - w["train_start"]).dt.days) == {21}
    assert list((w["test_start"] - w["train_end"]).dt.days) == [0, 1, 3, 60]
    assert set((w["test_end"] - w["test_start"]).dt.days) == {5}
    assert (w["train_end"] <= w["test_start"]).all()


@pytest.mark.parametrize("kwargs,match", [
    (dict(staleness_days=[]), "non-empty list"),
    (dict(staleness_days="0,1"), "non-empty list"),
    (dict(staleness_days=[0, 1, 1]), "duplicates"),
    (dict(staleness_days=[0, -7]), "non-negative whole number"),
    (dict(staleness_days=[0, 1.5]), "non-negative whole number"),
    (dict(staleness_days=[0, True]), "non-negative whole number"),
    (dict(staleness_days=[0, 10**9]), "more than a century"),
    (dict(train_days=0), "train_days must be a positive"),
    (dict(test_days=-1), "test_days must be a positive"),
    (dict(test_start="2013-06-03 08:00"), "local calendar date"),
    (dict(test_start=pd.Timestamp("2013-06-03", tz="UTC")), "local calendar date"),
    (dict(test_start="not a date"), "is not a date"),
    (dict(test_start=20130603), "must be a local date"),
])
def test_window_refusals(kwargs, match):
    args = dict(test_start="2013-06-03") | kwargs
    with pytest.raises(ConfigError, match=match):
        staleness_windows(**args)


# --- the experiment on a planted drift ---------------------------------------------------------------------------------

def drifting_stream(days=150, per_day=80, seed=0):
    "The label's rule rotates slowly with time: a stale model is measurably worse, and more so the staler it is."
    g = np.random.default_rng(seed)
    t = np.repeat(pd.date_range("2013-01-01", periods=days, freq="D", tz="America/New_York"), per_day)
    day = np.repeat(np.arange(days), per_day)
    X = g.normal(size=(len(t), 2))
    angle = day / days * np.pi  # half a turn over the stream
    y = (X[:, 0] * np.cos(angle) + X[:, 1] * np.sin(angle) + 0.3 * g.normal(size=len(t))) > 0
    seconds = pd.to_timedelta(g.integers(0, 82_800, len(t)), unit="s")  # < 23 h: stays in its local day across DST
    return pd.DataFrame({"t": t + seconds, "a": X[:, 0], "b": X[:, 1], "y": y})


def test_experiment_on_a_planted_drift_loses_more_the_staler():
    df = drifting_stream()
    res = freshness_experiment(df, LogisticRegression, ["2013-04-01", "2013-04-20"], ["a", "b"], "y", time_col="t",
                               staleness_days=[0, 7, 30, 60], train_days=14, test_days=7)
    assert len(res) == 8 and set(res["n_train"]) == {14 * 80} and set(res["n_test"]) == {7 * 80}
    curve = freshness_curve(res)
    assert curve.loc[0, "auc_loss"] == 0 and curve.loc[0, "log_loss_loss"] == 0
    assert curve["auc_loss"].is_monotonic_increasing and curve.loc[60, "auc_loss"] > 0.05
    assert curve.loc[60, "log_loss_loss"] > 0.05 and curve.loc[60, "accuracy_loss"] > 0.05
    assert (curve.loc[[7, 30, 60], "auc_loss_sem"] >= 0).all()
    rec = recommend_update_frequency(curve["auc_loss"], 0.02)
    assert rec.days in (0, 7) and rec.first_breach in (7, 30)


def test_experiment_refusals():
    df = drifting_stream(days=40)
    with pytest.raises(DataError, match="has 0 rows"):
        freshness_experiment(df, LogisticRegression, ["2013-01-20"], ["a", "b"], "y", time_col="t", staleness_days=[0, 30])
    one_class = df.assign(y=True)
    with pytest.raises(DataError, match="1 class"):
        freshness_experiment(one_class, LogisticRegression, ["2013-02-01"], ["a", "b"], "y", time_col="t", train_days=7)
    with pytest.raises(SchemaError):
        freshness_experiment(df, LogisticRegression, ["2013-02-01"], ["a", "zzz"], "y", time_col="t")
    with pytest.raises(DataError, match="must be a datetime column"):
        freshness_experiment(df, LogisticRegression, ["2013-02-01"], ["a"], "y", time_col="b")
    with pytest.raises(ConfigError, match="test_starts must be a non-empty list"):
        freshness_experiment(df, LogisticRegression, "2013-02-01", ["a"], "y", time_col="t")
    with pytest.raises(ConfigError, match="make_model must be a function"):
        freshness_experiment(df, LogisticRegression(), ["2013-02-01"], ["a"], "y", time_col="t")


def test_curve_refusals():
    res = pd.DataFrame({"test_start": ["w"] * 2, "staleness_days": [1, 7], "auc": [0.7, 0.6]})
    with pytest.raises(DataError, match="staleness_days = 0 row"):
        freshness_curve(res, ["auc"])
    with pytest.raises(ConfigError, match="unknown metric"):
        freshness_curve(res.assign(f1=0.5), ["f1"])


# --- the update-frequency rule on synthetic curves ---------------------------------------------------------------------

@pytest.mark.parametrize("curve,tol,days,breach", [
    ({0: 0.0, 1: 0.001, 7: 0.002, 30: 0.003}, 0.005, 30, None),          # flat: the stalest point
    ({0: 0.0, 1: 0.001, 3: 0.002, 7: 0.02, 30: 0.03}, 0.005, 3, 7),     # breaks at a week
    ({0: 0.0, 1: 0.001, 3: 0.009, 7: 0.001, 14: 0.0}, 0.005, 1, 3),     # noisy: no trust after a breach
    ({0: 0.0, 1: 0.01}, 0.005, 0, 1),                                   # even a day costs too much
    ({0: 0.0, 1: 0.005}, 0.005, 1, None),                               # the tolerance itself is accepted
    ({60: 0.0, 0: 0.0, 14: 0.006, 7: 0.004}, 0.005, 7, 14),             # unsorted input
    ({0: 0.0, 1: -0.01, 2: -0.02}, 0.0, 2, None),                       # staler is better: nothing breaches
    ({0: 0.50, 1: 0.502, 3: 0.51}, 0.005, 1, 3),                        # raw losses are taken relative to k = 0
])
def test_recommendation_on_synthetic_curves(curve, tol, days, breach):
    for as_series in (False, True):
        got = recommend_update_frequency(pd.Series(curve) if as_series else curve, tol)
        assert isinstance(got, UpdateFrequency) and (got.days, got.first_breach) == (days, breach)
        base = curve[0]
        assert got.loss == pytest.approx(curve[days] - base) and got.loss <= tol + 1e-12
        assert got.to_dict() == {"days": days, "tolerance": float(tol), "loss": got.loss, "first_breach": breach}


def test_recommendation_against_brute_force():
    g = np.random.default_rng(0)
    ks = np.array([0, 1, 3, 7, 14, 30, 60])
    for _ in range(500):
        loss = np.r_[0, np.cumsum(g.normal(0.001, 0.003, len(ks) - 1))]
        tol = float(g.uniform(0, 0.01))
        got = recommend_update_frequency(dict(zip(ks.tolist(), loss.tolist())), tol).days
        want = 0
        for k, v in zip(ks, loss):
            if v > tol:
                break
            want = int(k)
        assert got == want


def test_margin_makes_it_stricter():
    curve = {0: 0.0, 1: 0.001, 3: 0.002, 7: 0.003}
    assert recommend_update_frequency(curve, 0.005).days == 7
    assert recommend_update_frequency(curve, 0.005, margin={0: 0.0, 1: 0.001, 3: 0.004, 7: 0.0}).days == 1
    with pytest.raises(DataError, match="margin must give a non-negative value"):
        recommend_update_frequency(curve, 0.005, margin={0: 0.0, 1: 0.001})
    with pytest.raises(DataError, match="margin must give a non-negative value"):
        recommend_update_frequency(curve, 0.005, margin={0: 0.0, 1: -0.001, 3: 0, 7: 0})


@pytest.mark.parametrize("curve,tol,err,match", [
    ({1: 0.0, 7: 0.01}, 0.005, DataError, "no staleness 0"),
    ({}, 0.005, DataError, "curve is empty"),
    ({0: 0.0, 7: float("nan")}, 0.005, DataError, "missing or infinite"),
    ({0: 0.0, 7: float("inf")}, 0.005, DataError, "missing or infinite"),
    ({0: 0.0, -1: 0.0}, 0.005, DataError, "finite and non-negative"),
    ({0: 0.0, "7": 0.0}, 0.005, DataError, "index must be staleness in days"),
    ({0: 0.0, 7: "high"}, 0.005, DataError, "losses must be numbers"),
    (pd.Series([0.0, 0.1], index=[0, 0]), 0.005, DataError, "duplicate staleness"),
    ([0.0, 0.1], 0.005, DataError, "must be a Series or dict"),
    ({0: 0.0}, -0.1, ConfigError, "tolerance must be"),
    ({0: 0.0}, float("nan"), ConfigError, "tolerance must be"),
    ({0: 0.0}, True, ConfigError, "tolerance must be"),
    ({0: 0.0}, "0.1", ConfigError, "tolerance must be"),
])
def test_recommendation_refusals(curve, tol, err, match):
    with pytest.raises(err, match=match):
        recommend_update_frequency(curve, tol)
