"""mlsys.modeling.ensembles: the skorch-backed TorchMLPClassifier honours the scikit-learn contract (checks, seeds,
labels, pickling, use inside bagging and stacking), the averaging identity behind `pairwise_gains` holds exactly,
`gain_vs_cost` measures against the best single learner, and bad input gets named errors."""
import importlib.util
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import BaggingClassifier, StackingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks

from mlsys.core import ConfigError, DataError
from mlsys.modeling.ensembles import (TorchMLPClassifier, base_learners, error_correlation, gain_vs_cost, make_ensembles,
                                      pairwise_gains)

HAS_TORCH = importlib.util.find_spec("torch") is not None and importlib.util.find_spec("skorch") is not None
ESTIMATORS = [TorchMLPClassifier(max_epochs=10, random_state=0)]  # for tests/test_estimators.py (needs torch: marker `torch`)


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    if HAS_TORCH:
        import torch
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        yield
        torch.set_num_threads(before)
    else:
        yield


# ---- TorchMLPClassifier --------------------------------------------------------------------------------------------

@pytest.mark.torch
def _expected_failures(estimator) -> dict:
    # float32 forward passes go through different BLAS kernels for a subset and for the whole batch; on some CPUs the
    # probabilities then differ by ~1.5e-7, just over the check's 1e-7 tolerance (seen on 2026-12-02, one row of 60)
    return {"check_methods_subset_invariance": "float32 matmul kernels differ by batch size: predict_proba of a subset "
                                               "differs from the whole batch's by about 1e-7 on some CPUs"}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failures)
def test_sklearn_checks(estimator, check):
    check(estimator)


def _xor(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, np.where(X[:, 0] * X[:, 1] > 0, "same", "opposite")


@pytest.mark.torch
def test_mlp_learns_is_seeded_and_restores_threads():
    import torch
    X, y = _xor()
    torch.set_num_threads(1)
    a = TorchMLPClassifier(hidden=(16, 16), max_epochs=30, random_state=3, n_threads=2).fit(X, y)
    assert torch.get_num_threads() == 1  # the thread count is put back after fitting
    b = TorchMLPClassifier(hidden=(16, 16), max_epochs=30, random_state=3).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))  # same seed, same network
    c = TorchMLPClassifier(hidden=(16, 16), max_epochs=30, random_state=4).fit(X, y)
    assert not np.array_equal(a.predict_proba(X), c.predict_proba(X))
    assert (a.predict(X) == y).mean() > 0.9 and a.loss_curve_[-1] < a.loss_curve_[0]
    assert list(a.classes_) == ["opposite", "same"] and a.n_epochs_ == 30
    np.testing.assert_allclose(a.predict_proba(X).sum(1), 1.0, rtol=1e-6)
    again = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(again.predict_proba(X), a.predict_proba(X))
    bools = TorchMLPClassifier(max_epochs=5, random_state=0).fit(X, X[:, 0] > 0)
    assert bools.predict(X).dtype == bool
    three = TorchMLPClassifier(max_epochs=5, random_state=0).fit(X, np.digitize(X[:, 0], [-0.5, 0.5]))
    assert three.predict_proba(X).shape == (len(X), 3)


@pytest.mark.torch
def test_mlp_inside_bagging_and_stacking():
    X, y = _xor(200)
    net = TorchMLPClassifier(hidden=(8,), max_epochs=5, random_state=0)
    bag = BaggingClassifier(net, n_estimators=3, random_state=0).fit(X, y)
    assert bag.predict_proba(X).shape == (200, 2)
    stack = StackingClassifier([("net", net), ("tree", DecisionTreeClassifier(max_depth=3))], final_estimator=LogisticRegression(),
                               cv=2).fit(X, y)
    assert set(stack.predict(X)) <= {"same", "opposite"}


@pytest.mark.parametrize("params, match", [
    (dict(hidden=()), "hidden"), (dict(hidden=(8, 0)), "hidden layer width"), (dict(hidden="8"), "hidden"),
    (dict(max_epochs=0), "max_epochs"), (dict(batch_size=1.5), "batch_size"), (dict(n_threads=0), "n_threads"),
    (dict(lr=0.0), "lr"), (dict(lr=True), "lr"), (dict(weight_decay=-1.0), "weight_decay"), (dict(dropout=1.0), "dropout"),
    (dict(random_state=-1), "random_state"), (dict(random_state=1.5), "random_state")])
def test_mlp_bad_parameters(params, match):
    X, y = _xor(40)
    with pytest.raises(ConfigError, match=match):
        TorchMLPClassifier(**params).fit(X, y)  # refused before torch is even imported


@pytest.mark.torch
def test_mlp_bad_data():
    X, y = _xor(40)
    with pytest.raises(DataError, match="Unknown label type"):
        TorchMLPClassifier().fit(X, X[:, 0])
    with pytest.raises(DataError, match="two classes"):
        TorchMLPClassifier().fit(X, np.zeros(40))
    with pytest.raises(DataError, match="NaN"):
        TorchMLPClassifier().fit(np.c_[X, np.full(40, np.nan)], y)
    with pytest.raises(DataError, match="0 sample"):
        TorchMLPClassifier().fit(X[:0], y[:0])
    bad = X.astype(object)
    bad[0, 0] = {"a": 1}
    with pytest.raises(TypeError) as e:
        TorchMLPClassifier().fit(bad, y)
    assert isinstance(e.value, DataError)
    m = TorchMLPClassifier(max_epochs=2, random_state=0).fit(X, y)
    with pytest.raises(DataError, match="features"):
        m.predict(X[:, :2])


# ---- the averaging identity ---------------------------------------------------------------------------------------------

def test_pairwise_gains_identity_on_generated_probabilities():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(2, 200))
        y = rng.random(n) < rng.uniform(0.05, 0.95)
        k = int(rng.integers(2, 5))
        probas = {f"m{i}": np.clip(y * rng.uniform(0, 1) + rng.normal(0, rng.uniform(0.05, 0.5), n), 0, 1) for i in range(k)}
        probas["m0"] = np.round(probas["m0"], 1)  # ties
        pairs = pairwise_gains(probas, y)
        assert len(pairs) == k * (k - 1) // 2
        np.testing.assert_allclose(pairs["gain_vs_mean"], pairs["diversity"], atol=1e-12)
        np.testing.assert_allclose(pairs["gain_vs_best"], pairs["diversity"] - pairs["quality_gap"], atol=1e-12)
        assert (pairs["gain_vs_mean"] >= -1e-15).all()
        r = pairs.iloc[0]
        assert r["brier_a"] == pytest.approx(brier_score_loss(y, probas[r["a"]]))
        avg = (probas[r["a"]] + probas[r["b"]]) / 2
        assert r["brier_average"] == pytest.approx(brier_score_loss(y, avg))


def test_error_correlation_matrix():
    rng = np.random.default_rng(1)
    y = rng.random(300) < 0.3
    probas = {"a": rng.random(300), "b": rng.random(300), "c": np.clip(y + rng.normal(0, 0.3, 300), 0, 1)}
    m = error_correlation(probas, y)
    E = np.column_stack([probas[k] - y for k in "abc"])
    np.testing.assert_allclose(m.to_numpy(), np.corrcoef(E, rowvar=False))
    np.testing.assert_allclose(np.diag(m), 1.0)
    labels = np.where(y, "late", "on time")  # the positive class can be any label
    np.testing.assert_allclose(error_correlation(probas, labels, pos_label="late").to_numpy(), m.to_numpy())
    perfect = pairwise_gains({"a": y.astype(float), "b": probas["c"]}, y)  # a perfect model's error is constant (0)
    assert np.isnan(perfect.loc[0, "error_corr"]) and perfect.loc[0, "brier_a"] == 0


@pytest.mark.parametrize("probas, match", [
    ({"a": np.full(5, 0.5)}, "at least two"), ({"a": np.full(5, 0.5), "b": np.full(4, 0.5)}, "shape"),
    ({"a": np.full(5, 0.5), "b": np.full(5, 1.5)}, "probabilities"), ({"a": np.full(5, np.nan), "b": np.full(5, 0.5)}, "probabilities")])
def test_pairwise_gains_bad_input(probas, match):
    with pytest.raises((ConfigError, DataError), match=match):
        pairwise_gains(probas, np.array([True, False, True, False, True]))


# ---- ensembles and their cost ----------------------------------------------------------------------------------------------

def _frame(n=300, seed=2):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"cat": pd.Categorical(rng.choice(list("abc"), n)), "x": rng.normal(size=n), "z": rng.normal(size=n)})
    X.loc[::11, "x"] = np.nan
    y = (X["z"] + (X["cat"] == "a") + rng.normal(0, 0.5, n)) > 0.5
    return X, y


def test_make_ensembles_fit_on_mixed_columns():
    X, y = _frame()
    learners = base_learners(["cat"], ["x", "z"], neural=False)
    assert set(learners) == {"tree", "linear"}
    ens = make_ensembles(["cat"], ["x", "z"], learners=learners, n_bagged_trees=3, n_boosted=5)
    assert {k.split(":")[0] for k in ens} == {"bagging", "boosting", "stacking", "averaging"}
    assert not any("MLP" in k for k in ens)  # no neural member: no bagged MLPs
    for name, m in ens.items():
        p = m.fit(X, y).predict_proba(X)
        assert p.shape == (len(X), 2), name
    fitted = {**{k: v.fit(X, y) for k, v in learners.items()}, **ens}
    table = gain_vs_cost(fitted, list(learners), X, y, scoring="roc_auc", n_repeats=1, batch_rows=50)
    ref = table.attrs["reference"]
    assert ref in learners and table.loc[ref, "gain"] == 0 and table.loc[ref, "latency_x"] == 1 and table.loc[ref, "size_x"] == 1
    assert (table.loc[list(learners), "score"] <= table.loc[ref, "score"]).all()
    assert set(table["kind"]) == {"single", "ensemble"} and table["fit_s"].isna().all()


@pytest.mark.torch
def test_base_learners_include_the_torch_mlp():
    learners = base_learners(["cat"], ["x", "z"], max_epochs=2)
    assert set(learners) == {"tree", "linear", "neural"}
    X, y = _frame(120)
    ens = make_ensembles(["cat"], ["x", "z"], learners=learners, n_bagged_trees=2, n_bagged_nets=2, n_boosted=3)
    assert "bagging: 2 MLPs" in ens
    assert ens["bagging: 2 MLPs"].fit(X, y).predict_proba(X).shape == (120, 2)


def test_ensembles_bad_input():
    X, y = _frame(60)
    learners = base_learners(["cat"], ["x", "z"], neural=False)
    for name in ("n_bagged_trees", "n_bagged_nets", "n_boosted"):
        with pytest.raises(ConfigError, match=name):
            make_ensembles(["cat"], ["x", "z"], learners=learners, **{name: 0})
    with pytest.raises(ConfigError, match="learners"):
        make_ensembles(["cat"], ["x", "z"], learners={"a": "tree"})
    fitted = {k: v.fit(X, y) for k, v in learners.items()}
    with pytest.raises(ConfigError, match="single must list"):
        gain_vs_cost(fitted, ["forest"], X, y)
    with pytest.raises(ConfigError, match="single must list"):
        gain_vs_cost(fitted, "tree", X, y)
    with pytest.raises(ConfigError, match="unknown scoring"):
        gain_vs_cost(fitted, ["tree"], X, y, scoring="auc")
    with pytest.raises(ConfigError, match="batch_rows"):
        gain_vs_cost(fitted, ["tree"], X, y, batch_rows=0)
    with pytest.raises(ConfigError, match="non-empty"):
        gain_vs_cost({}, ["tree"], X, y)
