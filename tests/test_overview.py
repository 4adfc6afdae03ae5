"""overview (chapter 1): percentiles and their bootstrap intervals against numpy, the latency profile on a fake clock,
the winner's curse on synthetic leaderboards, the when-to-use-ML checklist's logic, and bad input."""
import numpy as np
import pandas as pd
import pytest

from mlsys.core import ConfigError, DataError
from mlsys.overview import (
    METRICS,
    PERCENTILE_METHOD,
    flights_table,
    latency_profile,
    percentile_ci,
    score,
    when_to_use_ml,
    winners_curse,
)

# ---- percentiles ---------------------------------------------------------------------------------------------------


def _samples(rng):
    "Latency-like samples: ties, a single value, heavy tails, float32, integers."
    n = int(rng.integers(1, 400))
    kind = rng.integers(0, 5)
    if kind == 0:
        return rng.lognormal(0, 1, n)
    if kind == 1:
        return np.round(rng.exponential(3, n), 1)  # many ties
    if kind == 2:
        return np.full(n, 2.5)
    if kind == 3:
        return rng.normal(10, 2, n).astype(np.float32)
    return rng.integers(0, 20, n)


def test_percentile_equals_numpy_nearest_rank():
    rng = np.random.default_rng(0)
    for _ in range(500):
        x = _samples(rng)
        q = float(rng.choice([1, 10, 50, 90, 95, 99, 99.9, 100, rng.uniform(0.1, 100)]))
        est, lo, hi = percentile_ci(x, q, n_boot=50, random_state=1)
        assert est == np.percentile(np.asarray(x, float), q, method="inverted_cdf")
        assert est in set(np.asarray(x, float).tolist())  # nearest rank: always an observed value
        assert lo <= hi


def test_interval_contains_estimate_and_is_seeded():
    rng = np.random.default_rng(1)
    for _ in range(200):
        x = rng.lognormal(0, 1, int(rng.integers(20, 300)))
        for q in (50, 90, 99):
            est, lo, hi = percentile_ci(x, q, n_boot=200, random_state=3)
            assert lo <= est <= hi
    x = rng.lognormal(size=100)
    assert percentile_ci(x, 90, random_state=7) == percentile_ci(x, 90, random_state=7)
    assert percentile_ci(x, 90, random_state=np.random.default_rng(7)) == percentile_ci(x, 90, random_state=7)


def test_interval_covers_the_true_percentile_about_as_often_as_stated():
    "Coverage of the percentile bootstrap for the median of a known distribution (n=200): near 95%."
    rng = np.random.default_rng(2)
    hits = [lo <= 0.0 <= hi for lo, hi in (percentile_ci(rng.normal(size=200), 50, n_boot=300, random_state=s)[1:]
                                           for s in range(300))]
    assert 0.88 <= np.mean(hits) <= 0.99


@pytest.mark.parametrize("bad, kwargs, match", [
    ([], {}, "non-empty"), ([[1.0, 2.0]], {}, "1-D"), ([1.0, np.nan], {}, "NaN"), ([1.0, np.inf], {}, "NaN or infinite"),
    ([1.0], {"q": 0}, r"\(0, 100\]"), ([1.0], {"q": 101}, r"\(0, 100\]"), ([1.0], {"q": True}, "percentile"),
    ([1.0], {"n_boot": 0}, "n_boot"), ([1.0], {"n_boot": 10**9}, "n_boot"), ([1.0], {"level": 1.0}, "level"),
    ([1.0], {"random_state": -1}, "random_state"), ([1.0], {"random_state": "a"}, "random_state"),
])
def test_percentile_ci_refuses_bad_input(bad, kwargs, match):
    kwargs = {"q": 50, **kwargs}
    exc = DataError if match in ("non-empty", "1-D", "NaN", "NaN or infinite") else ConfigError
    with pytest.raises(exc, match=match):
        percentile_ci(bad, **kwargs)


# ---- latency profile on a fake clock ----------------------------------------------------------------------------------


class FakeClock:
    "A clock where each predict call takes a known time: `cost(batch size)` seconds, plus a spike every 10th call."

    def __init__(self, cost):
        self.t, self.cost, self.calls = 0.0, cost, 0

    def __call__(self):
        return self.t

    def predict(self, rows):
        self.calls += 1
        self.t += self.cost(len(rows)) * (5.0 if self.calls % 10 == 0 else 1.0)
        return np.zeros(len(rows))


def test_latency_profile_on_a_known_clock():
    clock = FakeClock(lambda b: 0.001 + 0.0001 * b)
    X = np.zeros((1000, 3))
    prof = latency_profile(clock.predict, X, batch_sizes=(1, 10, 100), repeats=50, timer=clock, n_boot=100)
    assert list(prof["batch_size"]) == [1, 10, 100] and (prof["calls"] == 50).all()
    for _, row in prof.iterrows():
        b = row["batch_size"]
        base = 1e3 * (0.001 + 0.0001 * b)
        lat = np.r_[np.full(45, base), np.full(5, 5 * base)]  # 50 timed calls, every 10th call overall a 5x spike
        for q in (50, 90, 99):
            assert row[f"p{q}_ms"] == pytest.approx(np.percentile(lat, q, method=PERCENTILE_METHOD))
            assert row[f"p{q}_lo"] <= row[f"p{q}_ms"] <= row[f"p{q}_hi"]
        assert row["throughput_rows_s"] == pytest.approx(b * 50 / (lat.sum() / 1e3))
        assert row["mean_ms"] == pytest.approx(lat.mean())
    assert clock.calls == 3 * 51  # one untimed warm-up per batch size


def test_latency_profile_real_clock_structure():
    "On the real clock only what load cannot break: ordered percentiles, intervals around the estimates."
    X = pd.DataFrame({"a": np.arange(500.0)})
    prof = latency_profile(lambda rows: rows["a"].to_numpy() * 2, X, batch_sizes=(1, 50), repeats=30, n_boot=50)
    assert (prof["p50_ms"] <= prof["p90_ms"]).all() and (prof["p90_ms"] <= prof["p99_ms"]).all()
    for q in (50, 90, 99):
        assert ((prof[f"p{q}_lo"] <= prof[f"p{q}_ms"]) & (prof[f"p{q}_ms"] <= prof[f"p{q}_hi"])).all()


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"batch_sizes": (0,)}, ConfigError, "positive integers"), ({"batch_sizes": (-4,)}, ConfigError, "positive integers"),
    ({"batch_sizes": (1.5,)}, ConfigError, "positive integers"), ({"batch_sizes": (True,)}, ConfigError, "positive integers"),
    ({"batch_sizes": ()}, ConfigError, "non-empty"), ({"batch_sizes": 8}, ConfigError, "non-empty sequence"),
    ({"batch_sizes": (2000,)}, DataError, "larger than X"), ({"repeats": 0}, ConfigError, "repeats"),
    ({"percentiles": ()}, ConfigError, "percentiles"), ({"timer": 3}, ConfigError, "timer"),
])
def test_latency_profile_refuses_bad_input(kwargs, exc, match):
    kwargs = {"batch_sizes": (1,), **kwargs}
    with pytest.raises(exc, match=match):
        latency_profile(lambda r: r, np.zeros((100, 2)), **kwargs)


def test_latency_profile_refuses_empty_x_bad_predict_and_a_backward_clock():
    with pytest.raises(DataError, match="empty"):
        latency_profile(lambda r: r, np.zeros((0, 2)))
    with pytest.raises(ConfigError, match="callable"):
        latency_profile("model", np.zeros((10, 2)), batch_sizes=(1,))
    ticks = iter(np.arange(1000.0)[::-1])
    with pytest.raises(DataError, match="backwards"):
        latency_profile(lambda r: r, np.zeros((10, 2)), batch_sizes=(1,), repeats=3, timer=lambda: next(ticks))


# ---- winner's curse -------------------------------------------------------------------------------------------------


def _equal_candidates(M=30, n=3000, acc=0.8, seed=0):
    "M candidates with the same true accuracy: any gap between them on a test set is luck."
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.5
    right = rng.random((M, n)) < acc
    return np.where(right, y, ~y).astype(float), y


def test_winner_regresses_only_when_chosen():
    S, y = _equal_candidates()
    out = winners_curse(S, y, n_candidates=(1, 5, 30), test_size=200, n_repeats=300, random_state=0).set_index("N")
    assert abs(out.loc[1, "regression"]) < 3 * out.loc[1, "regression_se"] + 1e-12
    assert out.loc[5, "regression"] > 3 * out.loc[5, "regression_se"]
    assert out.loc[30, "regression"] > out.loc[5, "regression"] > 0
    # the expected maximum of 30 accuracies on 200 rows is about 2 standard errors above the mean: sqrt(.8*.2/200)=0.028
    assert 0.03 < out.loc[30, "regression"] < 0.08
    assert (out["winner_fresh_acc"] - 0.8).abs().max() < 0.01  # on fresh data every winner is an average candidate


def test_winners_curse_is_deterministic_per_seed():
    S, y = _equal_candidates(M=10, n=800)
    a = winners_curse(S, y, n_candidates=(1, 10), test_size=100, n_repeats=20, random_state=4)
    b = winners_curse(S, y, n_candidates=(1, 10), test_size=100, n_repeats=20, random_state=4)
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("scores, y, kwargs, exc, match", [
    (np.zeros((0, 5)), np.zeros(5), {}, DataError, "non-empty 2-D"),
    (np.zeros(5), np.zeros(5), {}, DataError, "2-D"),
    (np.full((3, 5), np.nan), np.zeros(5), {}, DataError, "NaN"),
    (np.zeros((3, 5)), np.zeros(4), {}, DataError, "one label per column"),
    (np.zeros((3, 5)), np.array([0, 1, 2, 0, 1]), {}, DataError, "binary labels"),
    (np.zeros((3, 5)), np.array([0, 1, np.nan, 0, 1]), {}, DataError, "missing labels"),
    (np.zeros((3, 5)), np.zeros(5), {"test_size": 5}, ConfigError, "test_size"),
    (np.zeros((3, 5)), np.zeros(5), {"test_size": 0}, ConfigError, "test_size"),
    (np.zeros((3, 5)), np.zeros(5), {"n_candidates": (4,)}, ConfigError, "n_candidates"),
    (np.zeros((3, 5)), np.zeros(5), {"n_candidates": ()}, ConfigError, "n_candidates"),
    (np.zeros((3, 5)), np.zeros(5), {"n_repeats": 1}, ConfigError, "n_repeats"),
])
def test_winners_curse_refuses_bad_input(scores, y, kwargs, exc, match):
    kwargs = {"n_candidates": (1, 2), "test_size": 2, **kwargs}
    with pytest.raises(exc, match=match):
        winners_curse(scores, y, **kwargs)


# ---- the checklist ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def task():
    rng = np.random.default_rng(0)
    n = 4000
    x = rng.normal(size=n)
    y = rng.random(n) < 1 / (1 + np.exp(-(2 * x - 1)))
    model = 1 / (1 + np.exp(-(2 * x - 1)))  # the true probabilities
    simple = (x > 0).astype(float)  # a one-line rule
    times = pd.date_range("2024-01-01", periods=n, freq="432s", tz="UTC")  # 200 a day, 20 whole days
    return y, model, simple, times


def test_a_learnable_pattern_gets_use_ml(task):
    y, model, simple, times = task
    history = pd.Series(np.r_[np.zeros(500), np.ones(500)], index=pd.date_range("2023-01-01", periods=1000, freq="D"))
    c = when_to_use_ml("toy", y[2000:], model[2000:], simple[2000:], "average_precision", y_train=y[:2000],
                       y_valid=y[:2000], model_valid=model[:2000], simple_valid=simple[:2000], times=times[2000:],
                       history=history, cost_fn=5, cost_fp=1, ml_cost_per_day=0, ethical=True)
    assert c.verdict == "use ML", c.to_frame()
    assert c["at scale: many decisions a day"].answer and c["changing patterns"].answer
    assert "200 decisions a day" in c["at scale: many decisions a day"].evidence


def test_a_lookup_that_is_exact_means_no_ml(task):
    y, model, simple, _ = task
    truth = np.arange(1000.0)
    c = when_to_use_ml("lookup", truth, truth + np.random.default_rng(0).normal(0, 3, 1000), truth, "neg_mae",
                       y_train=truth, ethical=True)
    assert c["predictive: the answer is not already known"].answer is False
    assert c["a simpler solution does it"].answer is True
    assert c.verdict.startswith("do not use ML")


def test_open_questions_stay_open(task):
    y, model, simple, _ = task
    c = when_to_use_ml("toy", y, model, simple, "average_precision", y_train=y)
    assert c["unethical"].answer is None and c["changing patterns"].answer is None
    assert c["unseen data like seen data"].answer is None and c["not cost-effective"].answer is None
    assert c.verdict.startswith("use ML once answered") and "unethical" in c.verdict
    assert when_to_use_ml("toy", y, model, simple, "average_precision", y_train=y, ethical=False).verdict == \
        "do not use ML: unethical"
    table = c.to_frame()
    assert list(table.columns) == ["group", "question", "answer", "evidence"] and set(table["answer"]) <= {"yes", "no", "?"}
    with pytest.raises(KeyError, match="no question"):
        c["is it fun?"]


def test_a_model_no_better_than_the_rule(task):
    y, model, simple, _ = task
    c = when_to_use_ml("toy", y, simple, simple, "average_precision", y_train=y, ethical=True)
    assert c["complex patterns: the model beats the simple solution"].answer is False
    assert c["a simpler solution does it"].answer is True


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"metric": "accuracy"}, ConfigError, "metric must be one of"),
    ({"task": " "}, ConfigError, "task"),
    ({"model_pred": np.full(10, np.nan)}, DataError, "NaN"),
    ({"model_pred": np.zeros(9)}, DataError, "has 9"),
    ({"y_true": np.arange(10)}, DataError, "binary labels"),
    ({"y_true": np.array([], float), "model_pred": np.array([]), "simple_pred": np.array([])}, DataError, "empty"),
    ({"y_train": np.array([0, 1, 2])}, DataError, "binary labels"),
    ({"y_valid": np.zeros(10)}, ConfigError, "together"),
    ({"cost_fn": -1, "cost_fp": 1}, ConfigError, "negative"),
    ({"cost_fn": 0, "cost_fp": 0}, ConfigError, "both zero"),
    ({"ethical": "yes"}, ConfigError, "ethical"),
    ({"margin": -0.1}, ConfigError, "margin"),
    ({"history": np.zeros(10)}, DataError, "DatetimeIndex"),
    ({"history": pd.Series([1.0], index=pd.DatetimeIndex(["2024-01-01"]))}, DataError, "single"),
    ({"history": pd.Series([1.0, 2.0], index=pd.DatetimeIndex(["2024-01-01", "2024-03-01"])), "period": "fortnight"},
     ConfigError, "period"),
    ({"times": pd.Series([pd.NaT] * 10)}, DataError, "missing timestamps"),
])
def test_checklist_refuses_bad_input(kwargs, exc, match):
    rng = np.random.default_rng(0)
    args = {"task": "t", "y_true": rng.random(10) < 0.5, "model_pred": rng.random(10), "simple_pred": rng.random(10),
            "metric": "average_precision", "y_train": rng.random(10) < 0.5, **kwargs}
    with pytest.raises(exc, match=match):
        when_to_use_ml(**args)


def test_costs_need_a_classification_metric_and_a_constant_cannot_be_perfect():
    with pytest.raises(ConfigError, match="classification"):
        when_to_use_ml("t", np.arange(5.0), np.arange(5.0), np.arange(5.0), "neg_mae", y_train=np.arange(5.0), cost_fn=1,
                       cost_fp=1)
    with pytest.raises(DataError, match="nothing to predict"):
        when_to_use_ml("t", np.ones(5), np.ones(5), np.ones(5), "neg_mae", y_train=np.ones(5))


def test_score_matches_scikit_learn_and_refuses_unknown_metrics():
    from sklearn.metrics import average_precision_score, f1_score, roc_auc_score
    rng = np.random.default_rng(0)
    y, s = rng.random(300) < 0.3, rng.random(300)
    assert score("average_precision", y, s) == pytest.approx(average_precision_score(y, s))
    assert score("roc_auc", y, s) == pytest.approx(roc_auc_score(y, s))
    assert score("f1", y, s) == pytest.approx(f1_score(y, s >= 0.5))
    assert score("neg_mae", [1.0, 2.0], [2.0, 4.0]) == -1.5
    assert set(METRICS) == {"average_precision", "roc_auc", "f1", "neg_mae"}
    with pytest.raises(ConfigError, match="metric must be one of"):
        score("mape", y, s)
    with pytest.raises(DataError, match="binary"):
        score("roc_auc", np.arange(300), s)


# ---- the flights table ----------------------------------------------------------------------------------------------


def test_flights_table_keeps_each_flights_outcomes_in_row_order():
    from mlsys.datasets import load_flights
    t = flights_table("2013-01-02", "2013-01-03")
    f = load_flights("2013-01-02", "2013-01-03")
    assert len(t) == len(f)
    np.testing.assert_array_equal(t["cancelled"].to_numpy(), f["cancelled"].to_numpy())
    np.testing.assert_array_equal(t["arr_delay"].to_numpy(), f["arr_delay"].astype("float64").to_numpy())
    assert (t["sched_block_min"].between(0, 1439)).all()
    assert (t["is_late"].isna() == f["is_late"].isna()).all()


def test_flights_table_names_an_empty_window():
    with pytest.raises(DataError):
        flights_table("2013-01-05", "2013-01-04")
