"""mlsys.evaluation.behavioral: perturbation, invariance and directional tests on planted properties, the schema
contract of the perturbations, determinism, and named errors for bad input."""
import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from badinput import JUNK, check_named, each, raw_errors
from mlsys.core import ConfigError, DataError, SchemaError
from mlsys.evaluation.behavioral import (
    Blur, CategorySwap, Casing, DirectionalTest, GaussianNoise, ImageNoise, InvarianceTest, MissingValues, NameSwap,
    Perturb, PerturbationTest, Shift, Typos, check_same_schema, directional_pairs, model_scores, plot_robustness_curve,
    robustness_curve, top1_accuracy)
from mlsys.evaluation.suite import BehaviouralSuite, NothingToMeasure

ESTIMATORS = []  # the module adds no scikit-learn estimator (the models below are test doubles without fit)

SECRET = {"N001", "N002", "N003"}


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


class Scorer:
    "A binary 'model' whose positive-class probability is fn(X)."

    def __init__(self, fn):
        self.fn = fn

    def predict_proba(self, X):
        p = np.asarray(self.fn(X), dtype=float)
        return np.c_[1 - p, p]


@pytest.fixture
def table():
    rng = np.random.default_rng(0)
    n = 400
    return pd.DataFrame({
        "a": rng.normal(0, 1, n), "b": rng.normal(5, 2, n), "hour": rng.integers(5, 24, n).astype("int64"),
        "precip": np.abs(rng.normal(0, 0.2, n)),
        "tailnum": rng.choice([f"N{i:03d}" for i in range(30)], n),
        "carrier": pd.Categorical(rng.choice(["AA", "UA", "DL"], n)),
    })


def labels(X):
    return (np.random.default_rng(1).random(len(X)) < sigmoid(2 * X["a"].to_numpy())).astype(int)


reads_a = Scorer(lambda X: sigmoid(2 * X["a"].to_numpy()))
secret_tail = Scorer(lambda X: np.clip(sigmoid(X["a"].to_numpy()) + 0.2 * X["tailnum"].isin(SECRET).to_numpy(), 0, 1))
ignores_tail = Scorer(lambda X: sigmoid(X["a"].to_numpy()))


# ---- robustness curves --------------------------------------------------------------------------------------------

def test_drop_grows_with_strength_for_a_used_feature_and_stays_zero_for_an_unused_one(table):
    from sklearn.metrics import roc_auc_score
    y = labels(table)
    strengths = [0, 0.5, 1, 2, 4]
    used = robustness_curve(reads_a, table, y, GaussianNoise("a"), strengths, roc_auc_score, repeats=4, seed=0)
    unused = robustness_curve(reads_a, table, y, GaussianNoise("b"), strengths, roc_auc_score, repeats=4, seed=0)
    assert used["drop"].iloc[0] == pytest.approx(0, abs=1e-12)
    assert (np.diff(used["drop"]) > 0).all(), used
    assert used["drop"].iloc[-1] > 0.1
    assert (unused["drop"].abs() < 1e-12).all(), unused
    assert (used["lo"] <= used["mean"]).all() and (used["mean"] <= used["hi"]).all()
    assert list(used.columns[:4]) == ["strength", "mean", "lo", "hi"]


def test_curves_and_tests_are_deterministic_with_a_seed(table):
    y = labels(table)
    c1 = robustness_curve(reads_a, table, y, GaussianNoise("a"), [0.5, 1], top1_accuracy, repeats=3, seed=7)
    c2 = robustness_curve(reads_a, table, y, GaussianNoise("a"), [0.5, 1], top1_accuracy, repeats=3, seed=7)
    c3 = robustness_curve(reads_a, table, y, GaussianNoise("a"), [0.5, 1], top1_accuracy, repeats=3, seed=8)
    pd.testing.assert_frame_equal(c1, c2)
    assert not c1["mean"].equals(c3["mean"])
    for p in [GaussianNoise(["a", "b", "hour"], 0.5), MissingValues(["a", "carrier"], 0.3), CategorySwap(["tailnum", "carrier"], 0.5)]:
        pd.testing.assert_frame_equal(p.apply(table, rng=3), p.apply(table, rng=3))
        assert not p.apply(table, rng=3).equals(p.apply(table, rng=4))
    t1 = InvarianceTest("t", CategorySwap("tailnum", 1.0), seed=5).run(secret_tail, table)
    t2 = InvarianceTest("t", CategorySwap("tailnum", 1.0), seed=5).run(secret_tail, table)
    assert t1.value == t2.value and t1.examples.equals(t2.examples)


def test_perturbation_test_passes_and_fails_on_its_criterion(table):
    y = labels(table)
    ok = PerturbationTest("noise on b", GaussianNoise("b", 1.0), top1_accuracy, max_drop=0.0).run(reads_a, table, y)
    bad = PerturbationTest("noise on a", GaussianNoise("a", 2.0), top1_accuracy, max_drop=0.01).run(reads_a, table, y)
    assert ok.passed and ok.value == pytest.approx(0, abs=1e-12)
    assert not bad.passed and bad.value > 0.01 and bad.status == "FAIL"
    assert {"a", "a (perturbed)", "score", "score (perturbed)", "change"} <= set(bad.examples.columns)
    assert bad.examples["change"].abs().is_monotonic_decreasing


def test_plot_robustness_curve_draws_a_band(table):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    c = robustness_curve(reads_a, table, labels(table), GaussianNoise("a"), [0, 1, 2], repeats=3)
    ax = plot_robustness_curve({"a": c})
    assert len(ax.collections) == 1 and ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
    plt.close("all")


# ---- invariance ---------------------------------------------------------------------------------------------------

def test_a_planted_tailnum_dependence_is_found_and_a_model_that_ignores_it_passes(table):
    change = CategorySwap(["tailnum"], rate=1.0)
    found = InvarianceTest("tailnum", change, tolerance=0.01, n_examples=5).run(secret_tail, table)
    clean = InvarianceTest("tailnum", change, tolerance=0.01).run(ignores_tail, table)
    assert found.value > 0 and not found.passed
    assert clean.value == 0 and clean.passed
    ex = found.examples
    assert (ex["tailnum"] != ex["tailnum (perturbed)"]).all()
    # the worst rows are exactly those whose tail number moved into or out of the secret set
    assert (ex["tailnum"].isin(SECRET) != ex["tailnum (perturbed)"].isin(SECRET)).all()
    assert ex["change"].abs().min() > 0.1
    X2 = change.apply(table, rng=np.random.default_rng(0))
    expected = (table["tailnum"].isin(SECRET) != X2["tailnum"].isin(SECRET)).mean()
    assert found.value == pytest.approx(expected)


def test_invariance_accepts_a_user_function_and_refuses_one_that_changes_nothing(table):
    relabel = lambda X: X.assign(tailnum=X["tailnum"].str.replace("N001", "N029"))  # noqa: E731
    r = InvarianceTest("relabel", relabel, tolerance=0.01).run(secret_tail, table)
    assert r.value == 1.0  # every row it touched (N001 ones) moved out of the secret set
    check_named(lambda: InvarianceTest("noop", lambda X: X.copy()).run(secret_tail, table), DataError, "changed none")


def test_invariance_on_text_and_multiclass_images():
    class SpamScorer:
        def predict_proba(self, texts):
            p = np.array([0.9 if "Olga" in t else 0.2 for t in texts])
            return np.c_[1 - p, p]
    texts = ["Hi John, dinner?", "Tell Olga I'm late", "no names here"]
    r = InvarianceTest("names", NameSwap(["John", "Olga"])).run(SpamScorer(), texts)
    assert r.value == 1.0 and r.details["touched"].iloc[0] == 2
    assert set(r.examples["text (perturbed)"].head(2)) == {"Hi Olga, dinner?", "Tell John I'm late"}

    class Bright:  # three classes from the mean pixel: shifting moves mass off the edge only
        def predict_proba(self, X):
            m = np.asarray(X).reshape(len(X), -1).mean(1, keepdims=True)
            z = np.c_[m, 1 - m, np.full_like(m, 0.5)]
            return z / z.sum(1, keepdims=True)
    imgs = np.random.default_rng(0).random((20, 8, 8)).astype("float32")
    r = InvarianceTest("shift", Shift(2), tolerance=1e-3).run(Bright(), imgs)
    assert 0 < r.value <= 1 and {"class", "class (perturbed)"} <= set(r.examples.columns)


# ---- directional --------------------------------------------------------------------------------------------------

def test_a_planted_monotonic_violation_is_found_and_a_monotone_model_passes(table):
    wrong = Scorer(lambda X: sigmoid(-3 * X["precip"].to_numpy()))
    right = Scorer(lambda X: sigmoid(3 * X["precip"].to_numpy()))
    t = DirectionalTest("rain", "precip", "increasing", 0.1)
    bad, good = t.run(wrong, table), t.run(right, table)
    assert bad.value == 1.0 and not bad.passed
    assert good.value == 0.0 and good.passed
    assert (bad.examples["precip (moved)"] > bad.examples["precip"]).all()
    assert (bad.examples["change"] < 0).all() and bad.examples["wrong_way"].is_monotonic_decreasing
    # the same expectation stated the other way round (a negative delta) gives the same verdicts
    assert DirectionalTest("rain", "precip", "increasing", -0.1).run(wrong, table).value == 1.0


def test_a_violation_only_in_the_evening_is_found_by_the_row_filter(table):
    # later is later-prone before 17:00, but the planted model lowers the score as the evening goes on
    evening = Scorer(lambda X: sigmoid(np.where(X["hour"] >= 17, -0.3, 0.3) * X["hour"].to_numpy() / 10))
    all_rows = DirectionalTest("hour", "hour", "increasing", 1, where=None).run(evening, table)
    night = DirectionalTest("hour", "hour", "increasing", 1, where="hour >= 17").run(evening, table)
    morning = DirectionalTest("hour", "hour", "increasing", 1, where=lambda X: X["hour"] < 16).run(evening, table)
    assert night.value == 1.0 and morning.value == 0.0 and 0 < all_rows.value < 1
    pairs = directional_pairs(evening, table, "hour", 1, "hour >= 17")
    assert pairs["hour (moved)"].max() == table["hour"].max()  # clipped to the observed range
    assert (pairs["hour"] < table["hour"].max()).all()  # rows at the top make no pair
    assert night.details["pairs"].iloc[0] == ((table["hour"] >= 17) & (table["hour"] < 23)).sum()


# ---- the schema contract of the perturbations ---------------------------------------------------------------------

def test_tabular_perturbations_keep_columns_dtypes_and_index(table):
    X = table.set_index(pd.RangeIndex(100, 100 + len(table)))
    for p in [GaussianNoise(["a", "hour", "precip"], 2.0), GaussianNoise("b", 1.0, spread="iqr"),
              MissingValues(["a", "carrier", "tailnum"], 0.5), CategorySwap(["carrier", "tailnum", "hour"], 0.5)]:
        out = p.apply(X, rng=0)
        assert list(out.dtypes) == list(X.dtypes) and out.index.equals(X.index)
    out = GaussianNoise(["precip", "hour"], 5.0).apply(X, rng=0)
    assert out["precip"].min() >= X["precip"].min() and out["hour"].max() <= X["hour"].max()
    sw = CategorySwap("carrier", 1.0).apply(X, rng=0)
    assert (sw["carrier"] != X["carrier"]).all() and set(sw["carrier"]) <= set(X["carrier"])
    for p in [GaussianNoise("a", 0), MissingValues("a", 0), CategorySwap("tailnum", 0)]:
        pd.testing.assert_frame_equal(p.apply(X, rng=0), X)


def test_nullable_and_float32_columns_keep_their_dtype():
    X = pd.DataFrame({"i": pd.array([1, None, 3, 4] * 25, dtype="Int64"), "f": np.arange(100, dtype="float32"),
                      "g": pd.array(np.r_[np.nan, np.arange(99.0)], dtype="Float64")})
    for p in [GaussianNoise(["i", "f", "g"], 1.0), MissingValues(["i", "f", "g"], 0.5), CategorySwap(["i", "f"], 0.5)]:
        out = p.apply(X, rng=0)
        assert list(out.dtypes) == list(X.dtypes)
        assert out["i"].isna().sum() >= X["i"].isna().sum()
    s = Scorer(lambda X: sigmoid(X["f"].to_numpy(float) / 50 + X["i"].fillna(0).to_numpy(float)))
    assert DirectionalTest("i", "i", "increasing", 1).run(s, X).value == 0.0
    assert DirectionalTest("g", "g", "decreasing", 1.0).run(s, X).passed


def test_text_and_image_perturbations_keep_their_container_and_shape():
    texts = ["Call me later, OK?", "WIN a £1000 prize now", "é ü — non-ASCII\n", ""]
    for X in [texts, tuple(texts), pd.Series(texts, index=[5, 6, 7, 8]), np.array(texts, dtype=object)]:
        for p in [Typos(0.5), Casing("swap"), NameSwap(["Ann", "Bob"])]:
            out = p.apply(X, rng=0)
            assert type(out) is type(X) and len(out) == len(X)
    assert Typos(1.0).apply(["a I x"], rng=0) == ["a I x"]  # one-letter words get no typo
    assert Casing("lower", rate=1).apply(["WIN Now"]) == ["win now"]
    torch = pytest.importorskip("torch")
    imgs = np.random.default_rng(0).integers(0, 17, (5, 8, 8)).astype("float64")
    for p in [ImageNoise(0.2), Blur(1.0), Shift(2)]:
        out = p.apply(imgs, rng=0)
        assert out.shape == imgs.shape and out.dtype == imgs.dtype and out.min() >= 0 and out.max() <= 16
        np.testing.assert_allclose(p.apply(imgs, strength=0, rng=0), imgs, atol=1e-5)
        t = torch.rand(4, 1, 8, 8)
        tout = p.apply(t, rng=1)
        assert isinstance(tout, torch.Tensor) and tout.shape == t.shape and tout.dtype == t.dtype
    assert Blur(2.0).apply(imgs, rng=0).std() < imgs.std()
    u8 = imgs.astype("uint8")
    assert ImageNoise(0.1).apply(u8, rng=0).dtype == np.uint8


def test_a_perturbation_that_changes_the_schema_is_refused(table):
    cases = {
        "adds a column": (lambda X, s, r: X.assign(extra=1), "added ['extra']"),
        "drops a column": (lambda X, s, r: X.drop(columns="b"), "removed ['b']"),
        "changes a dtype": (lambda X, s, r: X.astype({"hour": "float64"}), "hour: int64 -> float64"),
        "drops rows": (lambda X, s, r: X.iloc[1:], "returned 399 inputs for 400"),
        "reindexes": (lambda X, s, r: X.reset_index(drop=True).set_axis(range(1, len(X) + 1)), "changed the row index"),
        "returns an array": (lambda X, s, r: X.to_numpy(), "returned a ndarray for a DataFrame"),
    }
    for label, (fn, fragment) in cases.items():
        check_named(lambda fn=fn, label=label: Perturb(fn, label=label).apply(table), SchemaError, fragment)
    check_named(lambda: Perturb(lambda X, s, r: [t + "!" for t in X[:-1]]).apply(["a", "b"]), SchemaError, "1 inputs for 2")
    check_named(lambda: Perturb(lambda X, s, r: [1, 2]).apply(["a", "b"]), SchemaError, "non-text items")
    check_named(lambda: Perturb(lambda X, s, r: X[:, :4]).apply(np.zeros((3, 8, 8))), SchemaError, "(3, 8, 8) float64 to (3, 4, 8)")
    check_named(lambda: check_same_schema(table, table.astype({"a": "float32"}), "mine"), SchemaError, "mine changed the dtypes")
    # and the tests that use such a perturbation stop with the same error
    check_named(lambda: PerturbationTest("p", Perturb(cases["adds a column"][0]), top1_accuracy, 0.1).run(reads_a, table, labels(table)),
                SchemaError, "added ['extra']")


# ---- bad input ----------------------------------------------------------------------------------------------------

def test_an_unknown_feature_in_a_declaration_is_a_schema_error_naming_it(table):
    y = labels(table)
    for p in [GaussianNoise(["a", "no_such"]), MissingValues("no_such"), CategorySwap("no_such")]:
        check_named(lambda p=p: p.apply(table), SchemaError, "['no_such'] that the data lacks")
        check_named(lambda p=p: PerturbationTest("t", p, top1_accuracy, 0.1).run(reads_a, table, y), SchemaError, "no_such")
        check_named(lambda p=p: InvarianceTest("t", p).run(reads_a, table), SchemaError, "no_such")
    check_named(lambda: DirectionalTest("dir", "no_such", "increasing", 1).run(reads_a, table), SchemaError,
                "test 'dir' names feature ['no_such']")
    check_named(lambda: DirectionalTest("dir", "a", "increasing", 1, where="no_such > 1").run(reads_a, table), SchemaError,
                "row filter 'no_such > 1' failed")
    check_named(lambda: GaussianNoise("tailnum").apply(table), SchemaError, "'tailnum' must be numeric")
    check_named(lambda: DirectionalTest("dir", "carrier", "increasing", 1).run(reads_a, table), SchemaError, "'carrier' must be numeric")
    check_named(lambda: MissingValues("hour").apply(table), SchemaError, "'hour' is int64, which cannot hold a missing value")

    class Fitted:
        feature_names_in_ = np.array(["a", "zzz"])

        def predict_proba(self, X):
            return np.c_[np.zeros(len(X)), np.ones(len(X))]
    check_named(lambda: model_scores(Fitted(), table), SchemaError, "['zzz']")


def test_zero_rows_and_empty_slices_are_data_errors(table):
    empty = table.iloc[:0]
    y0 = np.array([], dtype=int)
    check_named(lambda: PerturbationTest("p", GaussianNoise("a"), top1_accuracy, 0.1).run(reads_a, empty, y0), DataError, "no rows")
    check_named(lambda: InvarianceTest("i", CategorySwap("tailnum")).run(reads_a, empty), DataError, "no rows")
    check_named(lambda: DirectionalTest("d", "a", "increasing", 1).run(reads_a, empty), DataError, "no rows")
    check_named(lambda: robustness_curve(reads_a, empty, y0, GaussianNoise("a"), [1]), DataError, "no rows")
    check_named(lambda: GaussianNoise("a").apply(empty), DataError, "no rows")
    check_named(lambda: Typos().apply([]), DataError, "no rows")
    check_named(lambda: DirectionalTest("d", "a", "increasing", 1, where="a > 100").run(reads_a, table), DataError,
                "keeps none of the 400 rows")
    const = table.assign(a=1.0)
    check_named(lambda: DirectionalTest("d", "a", "increasing", 1).run(reads_a, const), DataError, "changes none")


def test_strengths_and_rates_out_of_range_are_config_errors(table):
    for bad in [-0.1, 1.5, float("nan"), float("inf"), True, "0.5", None]:
        for make in [lambda v: MissingValues("a", v), lambda v: CategorySwap("a", v), lambda v: Typos(v),
                     lambda v: Casing("upper", v), lambda v: ImageNoise(v)]:
            check_named(lambda make=make, bad=bad: make(bad), ConfigError, "must be")
        if bad is not None:  # None is the declared strength
            check_named(lambda bad=bad: MissingValues("a", 0.1).apply(table, strength=bad), ConfigError, "rate must be a number in [0, 1]")
    check_named(lambda: GaussianNoise("a", 1000), ConfigError, "scale must be a number in [0, 100]")
    check_named(lambda: Shift(1.5), ConfigError, "pixels must be an integer")
    check_named(lambda: Blur(11), ConfigError, "sigma must be a number in [0, 10]")
    check_named(lambda: robustness_curve(reads_a, table, labels(table), MissingValues("a"), [0, 2]), ConfigError, "got 2")
    check_named(lambda: robustness_curve(reads_a, table, labels(table), MissingValues("a"), []), ConfigError, "strengths")
    check_named(lambda: PerturbationTest("p", MissingValues("a"), top1_accuracy, max_drop=-1), ConfigError, "max_drop")
    check_named(lambda: InvarianceTest("i", MissingValues("a"), max_flip_rate=2), ConfigError, "max_flip_rate")
    check_named(lambda: DirectionalTest("d", "a", "up", 1), ConfigError, "direction must be")
    check_named(lambda: DirectionalTest("d", "a", "increasing", 0), ConfigError, "delta must be a non-zero")
    check_named(lambda: DirectionalTest("d", "hour", "increasing", 0.5).run(reads_a, table), ConfigError, "delta must be an integer")
    check_named(lambda: GaussianNoise([]), ConfigError, "features must be")
    check_named(lambda: NameSwap(["Ann"]), ConfigError, "two or more")
    check_named(lambda: GaussianNoise("a").apply(table, rng="seed"), ConfigError, "rng must be")


def test_a_broken_model_is_named(table):
    outside = Scorer(lambda X: np.full(len(X), 1.7))
    nan = Scorer(lambda X: np.full(len(X), np.nan))
    for t in [InvarianceTest("i", CategorySwap("tailnum")), DirectionalTest("d", "a", "increasing", 1),
              PerturbationTest("p", GaussianNoise("a"), top1_accuracy, 0.1)]:
        check_named(lambda t=t: t.run(outside, table, labels(table)), DataError, "probabilities outside [0, 1], e.g. 1.7")
        check_named(lambda t=t: t.run(nan, table, labels(table)), DataError, "non-finite")
    check_named(lambda: model_scores(Scorer(lambda X: np.full(len(X), -0.2)), table, "my model"), DataError, "my model")
    multi = type("M", (), {"predict_proba": lambda self, X: np.full((len(X), 3), 1 / 3)})()
    check_named(lambda: DirectionalTest("d", "a", "increasing", 1).run(multi, table), DataError, "one score per row")
    check_named(lambda: PerturbationTest("p", GaussianNoise("a"), lambda y, s: float("nan"), 0.1).run(reads_a, table, labels(table)),
                DataError, "returned nan")
    check_named(lambda: PerturbationTest("p", GaussianNoise("a"), top1_accuracy, 0.1).run(reads_a, table), DataError, "needs the labels")


def test_junk_arguments_never_leak_a_raw_library_error(table):
    calls = {}
    calls |= each(lambda **k: GaussianNoise(**k).apply(table), features="a", scale=0.1, spread="std", clip=True)
    calls |= each(lambda **k: CategorySwap(**k).apply(table), features="tailnum", rate=0.1)
    calls |= each(lambda **k: Typos(**k).apply(["a text"]), rate=0.1)
    calls |= each(lambda **k: NameSwap(**k).apply(["a text"]), names=["Ann", "Bob"], rate=1.0)
    calls |= each(lambda **k: ImageNoise(**k).apply(np.zeros((2, 4, 4))), std=0.1, max_value=None)
    calls |= each(lambda **k: DirectionalTest(**k).run(reads_a, table), name="d", feature="a", direction="increasing",
                  delta=1.0, where=None, tolerance=0.0, max_violation_rate=0.0, n_examples=3, must_pass=True)
    calls |= each(lambda **k: InvarianceTest(**k).run(reads_a, table), name="i", change=CategorySwap("tailnum"), tolerance=0.01,
                  max_flip_rate=0.0, strength=None, seed=0, n_examples=3, must_pass=True)
    calls |= each(lambda **k: robustness_curve(**k), model=reads_a, X=table, y=labels(table), perturbation=GaussianNoise("a"),
                  strengths=[0, 1], metric=top1_accuracy, repeats=2, seed=0, level=0.95)
    calls |= each(lambda **k: GaussianNoise("a").apply(**k), X=table, strength=0.1, rng=0)
    assert raw_errors(calls, JUNK) == []


# ---- review fixes: loss metrics, nothing to measure, copies, nullable filters -------------------------------------

def test_a_loss_metric_is_lower_is_better_and_refused_without_saying_so(table):
    from sklearn.metrics import brier_score_loss, log_loss
    y = labels(table)
    for metric in (log_loss, brier_score_loss):
        r = PerturbationTest("noise", GaussianNoise("a", 5.0), metric, max_drop=0.01, greater_is_better=False).run(reads_a, table, y)
        d = r.details.iloc[0]
        assert d["perturbed"] > d["clean"] and r.value == pytest.approx(d["perturbed"] - d["clean"]) and r.value > 0.01
        assert r.status == "FAIL" and "rises" in r.summary
        fine = PerturbationTest("noise b", GaussianNoise("b", 5.0), metric, max_drop=0.0, greater_is_better=False).run(reads_a, table, y)
        assert fine.passed and fine.value == pytest.approx(0, abs=1e-12)
        check_named(lambda metric=metric: PerturbationTest("noise", GaussianNoise("a"), metric, 0.01), ConfigError,
                    "greater_is_better=False")
        check_named(lambda metric=metric: robustness_curve(reads_a, table, y, GaussianNoise("a"), [1], metric), ConfigError,
                    "greater_is_better=False")
        c = robustness_curve(reads_a, table, y, GaussianNoise("a"), [0, 1, 4], metric, repeats=2, greater_is_better=False)
        assert c["drop"].iloc[0] == pytest.approx(0, abs=1e-12) and (np.diff(c["drop"]) > 0).all()
        np.testing.assert_allclose(c["drop"], c["mean"] - c.attrs["clean"])
    check_named(lambda: PerturbationTest("p", GaussianNoise("a"), top1_accuracy, 0.1, greater_is_better="no"), ConfigError,
                "greater_is_better must be True or False")


def test_a_perturbation_that_changes_no_row_has_nothing_to_measure(table):
    X = table.assign(allnan=np.nan, const=1.0)
    y = labels(X)
    for p in [GaussianNoise("allnan", 1.0), MissingValues("allnan", 1.0), GaussianNoise("const", 1.0),
              CategorySwap("const", 1.0), GaussianNoise(["allnan", "const"], 2.0)]:
        t = PerturbationTest("vacuous", p, top1_accuracy, max_drop=0.0)
        check_named(lambda t=t: t.run(reads_a, X, y), NothingToMeasure, "test 'vacuous'")
        check_named(lambda t=t: t.run(reads_a, X, y), DataError, "changed none of the 400 inputs")
        check_named(lambda t=t, p=p: t.run(reads_a, X, y), DataError, repr(p.features))
        r = BehaviouralSuite([t]).run(reads_a, X, y).results[0]
        assert r.status == "n/a" and not r.measured
    # a perturbation that changes rows the model does not read is measured (drop 0), not 'nothing to measure'
    assert PerturbationTest("b", GaussianNoise("b", 1.0), top1_accuracy, 0.0).run(reads_a, X, y).measured


def test_directional_and_invariance_with_nothing_to_measure_are_na_in_a_suite(table):
    const = table.assign(a=1.0)
    cases = [(DirectionalTest("empty filter", "a", "increasing", 1, where="a > 100"), table, "keeps none of the 400 rows"),
             (DirectionalTest("constant", "a", "increasing", 1), const, "changes none"),
             (DirectionalTest("all clipped", "hour", "increasing", 1, where="hour == 23"), table, "changes none"),
             (InvarianceTest("noop", lambda X: X.copy()), table, "changed none")]
    for t, X, fragment in cases:
        check_named(lambda t=t, X=X: t.run(reads_a, X), NothingToMeasure, fragment)
        r = BehaviouralSuite([t, InvarianceTest("tail", CategorySwap("tailnum", 1.0))]).run(ignores_tail, X)
        assert [x.status for x in r.results] == ["n/a", "pass"], r.results


def test_a_function_that_edits_in_place_gets_a_copy(table):
    X, before = table.copy(), table.copy()

    def zero_a(D):
        D["a"] = 0.0
        return D

    r = InvarianceTest("zero a", zero_a, tolerance=0.01).run(reads_a, X)
    pd.testing.assert_frame_equal(X, before)  # the caller's frame is untouched
    assert r.value > 0.9 and r.details["touched"].iloc[0] == (before["a"] != 0).sum()
    assert (r.examples["score (perturbed)"] == 0.5).all()

    def zero_in_place(D, s, rng):
        D.loc[:, "a"] = 0.0
        return D

    y = labels(X)
    p = PerturbationTest("zero", Perturb(zero_in_place), top1_accuracy, max_drop=0.01).run(reads_a, X, y)
    pd.testing.assert_frame_equal(X, before)
    assert not p.passed and p.value > 0.1
    texts, imgs = ["Hi Ann", "Bob here"], np.zeros((3, 4, 4))

    def shout(T, s, rng):
        T[0] = T[0].upper()
        return T

    def brighten(A, s, rng):
        A += 1.0
        return A

    assert Perturb(shout).apply(texts) == ["HI ANN", "Bob here"] and texts == ["Hi Ann", "Bob here"]
    assert Perturb(brighten, strength_range=(0, 1)).apply(imgs).max() == 1.0 and imgs.max() == 0.0


def test_a_row_filter_over_a_nullable_column_excludes_missing_rows():
    rng = np.random.default_rng(0)
    n = 200
    X = pd.DataFrame({"h": pd.array(rng.integers(0, 24, n), dtype="Int64"), "x": rng.normal(size=n),
                      "flag": pd.array(rng.choice([True, False], n), dtype="boolean")})
    X.loc[::10, "h"] = pd.NA
    X.loc[::7, "flag"] = pd.NA
    s = Scorer(lambda X: sigmoid(X["x"].to_numpy() + X["h"].fillna(0).to_numpy(float) / 10))
    hna, fna = int(X["h"].isna().sum()), int(X["flag"].isna().sum())
    for where, keep, missing in [("h >= 17", (X["h"] >= 17).fillna(False), hna), ("flag", X["flag"].fillna(False), fna),
                                 (lambda X: X["h"] >= 17, (X["h"] >= 17).fillna(False), hna),
                                 (lambda X: [bool(v) if pd.notna(v) else None for v in X["flag"]], X["flag"].fillna(False), fna)]:
        r = DirectionalTest("eve", "x", "increasing", 0.1, where=where).run(s, X)
        assert r.details["pairs"].iloc[0] == int((keep & (X["x"] < X["x"].max())).sum()) and r.passed  # the top x makes no pair
        assert r.details["filter_missing"].iloc[0] == missing
    pairs = directional_pairs(s, X, "x", 0.1, "h >= 17")
    assert pairs.attrs["filter_missing"] == int(X["h"].isna().sum())
    check_named(lambda: DirectionalTest("d", "x", "increasing", 0.1, where=lambda X: np.where(X["x"] > 0, "yes", "no")).run(s, X),
                ConfigError, "one True/False per row")


# ---- integration --------------------------------------------------------------------------------------------------

def test_the_tests_run_in_a_behavioural_suite_with_json_reports(table):
    y = labels(table)
    suite = BehaviouralSuite([
        PerturbationTest("noise", GaussianNoise("a", 1.0), top1_accuracy, max_drop=0.5),
        InvarianceTest("tailnum", CategorySwap("tailnum", 1.0)),
        DirectionalTest("rain", "a", "increasing", 0.5, must_pass=False),
    ])
    res = suite.run(secret_tail, table, y, name="planted")
    assert [r.kind for r in res.results] == ["perturbation", "invariance", "directional"]
    assert not res.passed and [r.name for r in res.failures] == ["tailnum"]
    d = json.loads(res.to_json())
    assert d["results"][1]["examples"][0]["tailnum"] != d["results"][1]["examples"][0]["tailnum (perturbed)"]
    assert "tailnum" in res.to_markdown()
    assert all(math.isfinite(r["value"]) for r in d["results"])


def test_import_is_light():
    code = "import sys, mlsys.evaluation.behavioral; print(sorted(m for m in ('torch', 'matplotlib.pyplot') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"
