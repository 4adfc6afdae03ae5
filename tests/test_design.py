"""design (chapter 2): thresholds against brute force and `imbalance.metrics`, the closed-form threshold, fallbacks,
framings, multilabel scores against scikit-learn, the hierarchical classifier (scikit-learn's estimator checks and
its probability algebra), pair features, hit rates, decoupled objectives (exact for least squares) and bad input."""
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import accuracy_score, average_precision_score, f1_score, hamming_loss
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks

from mlsys.core import ConfigError, DataError, SchemaError
from mlsys.design import (
    DecoupledScorer,
    HierarchicalClassifier,
    bayes_threshold,
    check_task,
    combined_target,
    cost_optimal_threshold,
    delay_target,
    expected_cost,
    front_gap,
    genre_matrix,
    hit_rate_at_k,
    metric_optimal_threshold,
    multilabel_scores,
    pair_features,
    predict_with_fallback,
    threshold_sweep,
)

# the instances the project-wide tests/test_estimators.py should list
ESTIMATORS = [
    HierarchicalClassifier(),
    HierarchicalClassifier(DecisionTreeClassifier(random_state=0), n_groups=2, random_state=0),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_checks(estimator, check):
    check(estimator)


# ---- thresholds -----------------------------------------------------------------------------------------------------


def _case(rng):
    "Labels and scores with ties, duplicates, a single class, booleans, float32 and integer scores."
    n = int(rng.integers(1, 300))
    y = rng.random(n) < rng.uniform(0, 1)
    kind = rng.integers(0, 4)
    s = {0: rng.random(n), 1: np.round(rng.random(n), 1), 2: rng.integers(0, 4, n), 3: rng.random(n).astype(np.float32)}[kind]
    if rng.random() < 0.2:
        y = np.where(y, 1, 0)  # integer labels
    return y, s


def _brute(y, s, cost_fn, cost_fp):
    "Every candidate threshold and its mean cost, by flagging each row against each threshold."
    ts = np.r_[np.inf, np.unique(s)[::-1]]
    yb = np.asarray(y).astype(bool)
    flags = np.asarray(s, float)[None, :] >= ts[:, None]
    return ts, (cost_fn * (~flags & yb).sum(1) + cost_fp * (flags & ~yb).sum(1)) / len(yb)


def test_sweep_and_thresholds_equal_brute_force():
    rng = np.random.default_rng(0)
    for case in range(250):
        y, s = _case(rng)
        cost_fn, cost_fp = float(rng.choice([0, 1, 3, 10])), float(rng.choice([1, 2, 5]))
        sw = threshold_sweep(y, s, cost_fn, cost_fp)
        ts, costs = _brute(y, s, cost_fn, cost_fp)
        np.testing.assert_array_equal(sw["threshold"].to_numpy(), ts)
        np.testing.assert_allclose(sw["cost"].to_numpy(), costs, atol=1e-12)
        yb = np.asarray(y).astype(bool)
        flags = np.asarray(s, float)[None, :] >= ts[:, None]  # (thresholds, rows)
        tp, fp, fn = (flags & yb).sum(1), (flags & ~yb).sum(1), (~flags & yb).sum(1)
        np.testing.assert_allclose(sw["accuracy"], (flags == yb).mean(1))
        np.testing.assert_allclose(sw["f1"], np.where(tp > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0))
        if case < 10:  # and the same as scikit-learn's metrics, on a few cases (they are slow to call per threshold)
            for t, f1, acc in zip(ts, sw["f1"], sw["accuracy"]):
                assert acc == pytest.approx(accuracy_score(yb, flags[list(ts).index(t)]))
                assert f1 == pytest.approx(f1_score(yb, flags[list(ts).index(t)], zero_division=0))
        yb = np.asarray(y).astype(bool)
        if yb.all() or not yb.any():  # a threshold is chosen only where both classes are present
            with pytest.raises(DataError, match="needs both classes"):
                cost_optimal_threshold(y, s, cost_fn + 1, cost_fp)
            with pytest.raises(DataError, match="needs both classes"):
                metric_optimal_threshold(y, s)
            continue
        for t in rng.choice(ts, size=min(3, len(ts)), replace=False):  # expected_cost agrees with the sweep
            assert expected_cost(y, s, t, cost_fn, cost_fp) == pytest.approx(costs[list(ts).index(t)], abs=1e-12)
        t = cost_optimal_threshold(y, s, cost_fn, cost_fp)
        assert expected_cost(y, s, t, cost_fn, cost_fp) == pytest.approx(costs.min(), abs=1e-12)
        assert t == ts[np.flatnonzero(np.isclose(costs, costs.min(), rtol=0, atol=1e-12))[-1]]  # ties: the lowest
        for metric in ("f1", "accuracy"):
            tm = metric_optimal_threshold(y, s, metric)
            assert sw.loc[sw["threshold"] == tm, metric].iloc[0] == pytest.approx(sw[metric].max())


def test_cost_optimal_threshold_equals_imbalance_metrics_min_cost_threshold():
    "The business-facing function and the cost-matrix one (mlsys.imbalance.metrics) agree: one implementation."
    from mlsys.imbalance.metrics import min_cost_threshold
    rng = np.random.default_rng(1)
    for _ in range(200):
        y, s = _case(rng)
        if np.asarray(y).all() or not np.asarray(y).any():
            continue
        fn, fp = float(rng.uniform(0, 10)), float(rng.uniform(0.1, 10))
        t, c = min_cost_threshold(y, s, [[0, fp], [fn, 0]])
        assert cost_optimal_threshold(y, s, fn, fp) == t
        assert expected_cost(y, s, t, fn, fp) == pytest.approx(c)


def test_empirical_optimum_approaches_the_closed_form_for_calibrated_scores():
    rng = np.random.default_rng(2)
    p = rng.random(200_000)
    y = rng.random(len(p)) < p  # p is calibrated by construction
    for fn, fp in [(1, 1), (3, 1), (60, 20), (1, 9)]:
        t = cost_optimal_threshold(y, p, fn, fp)
        assert t == pytest.approx(bayes_threshold(fn, fp), abs=0.02)


@pytest.mark.parametrize("cost_fn, cost_fp, match", [
    (-1, 1, "cost_fn=-1 is negative"), (1, -0.5, "cost_fp=-0.5 is negative"), (0, 0, "both zero"),
    (np.nan, 1, "finite"), (np.inf, 1, "finite"), (True, 1, "finite number"), ("1", 1, "finite number"),
])
def test_bad_costs_are_refused_everywhere(cost_fn, cost_fp, match):
    y, s = np.array([0, 1]), np.array([0.2, 0.8])
    for fn in (lambda: cost_optimal_threshold(y, s, cost_fn, cost_fp), lambda: expected_cost(y, s, 0.5, cost_fn, cost_fp),
               lambda: threshold_sweep(y, s, cost_fn, cost_fp), lambda: bayes_threshold(cost_fn, cost_fp)):
        with pytest.raises(ConfigError, match=match):
            fn()


@pytest.mark.parametrize("y, s, match", [
    ([], [], "empty"), ([0, 1, 2], [0.1, 0.2, 0.3], "binary labels"), (["a", "b"], [0.1, 0.2], "binary labels"),
    ([0, 1], [0.1, np.nan], "NaN"), ([0, 1], [0.1], "has 1"), ([[0, 1]], [[0.1, 0.2]], "1-D"),
    ([0, None], [0.1, 0.2], "missing labels"), ([0, 1], ["a", "b"], "numbers"),
])
def test_bad_labels_and_scores_are_refused(y, s, match):
    with pytest.raises(DataError, match=match):
        cost_optimal_threshold(np.asarray(y, dtype=object if None in y else None), np.asarray(s, dtype=object)
                               if isinstance(s[0] if s else 0, str) else np.asarray(s), 1, 1)


def test_expected_cost_refuses_bad_threshold_and_per():
    with pytest.raises(ConfigError, match="threshold"):
        expected_cost([0, 1], [0.1, 0.9], np.nan, 1, 1)
    with pytest.raises(ConfigError, match="per"):
        expected_cost([0, 1], [0.1, 0.9], 0.5, 1, 1, per=0)
    with pytest.raises(ConfigError, match="metric"):
        metric_optimal_threshold([0, 1], [0.1, 0.9], "recall")
    assert expected_cost([0, 1, 1], [0.9, 0.1, 0.8], 0.5, 10, 1, per=1000) == pytest.approx(1000 * 11 / 3)


# ---- fallback -------------------------------------------------------------------------------------------------------


def test_fallback_takes_missing_inputs_crashes_and_nan_answers():
    X = pd.DataFrame({"a": [1.0, np.nan, 3.0, 4.0], "b": [1.0, 2.0, 3.0, 4.0]}, index=[10, 11, 12, 13])

    def primary(rows):
        assert rows["a"].notna().all()
        return np.where(rows["b"] == 4, np.nan, rows["a"] / 10)

    scores, used = predict_with_fallback(primary, lambda rows: np.full(len(rows), 0.5), X, required=["a"])
    np.testing.assert_allclose(scores, [0.1, 0.5, 0.3, 0.5])
    assert used.tolist() == [False, True, False, True]

    def crash(rows):
        raise RuntimeError("boom")

    scores, used = predict_with_fallback(crash, lambda rows: rows["b"].to_numpy() / 100, X, required=["a"])
    np.testing.assert_allclose(scores, [0.01, 0.02, 0.03, 0.04]) and used.all()
    scores, used = predict_with_fallback(lambda r: r["b"].to_numpy(), lambda r: np.zeros(len(r)), X)
    assert not used.any()


def test_fallback_refuses_bad_setups():
    X = pd.DataFrame({"a": [1.0, np.nan]})
    with pytest.raises(DataError, match="always answer"):
        predict_with_fallback(lambda r: np.ones(len(r)), lambda r: np.full(len(r), np.nan), X, required=["a"])
    with pytest.raises(SchemaError, match="lacks column"):
        predict_with_fallback(lambda r: r, lambda r: r, X, required=["zzz"])
    with pytest.raises(DataError, match="empty"):
        predict_with_fallback(lambda r: r, lambda r: r, X.iloc[:0])
    with pytest.raises(ConfigError, match="callables"):
        predict_with_fallback("model", lambda r: r, X)
    with pytest.raises(DataError, match="DataFrame"):
        predict_with_fallback(lambda r: r, lambda r: r, np.zeros((2, 1)))


# ---- framing --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("y, task, ok", [
    (np.array([0.5, 1.5, 2.0]), "regression", True), (np.array([0, 1, 1]), "binary", True),
    (np.array([0, 1, 2]), "binary", False), (np.array(["a", "b", "c"]), "multiclass", True),
    (np.array([0, 1]), "multiclass", True), (np.array([[0, 1], [1, 1]]), "multilabel", True),
    (np.array([0, 1, 2]), "multilabel", False), (np.array([0.5, 1.5]), "binary", False),
    (np.array(["a", "b"]), "regression", False), (np.array([[0.5, 1.0], [1.0, 0.0]]), "multilabel", False),
    (np.array([[0, 1], [1, 1]]), "regression", False),
])
def test_check_task(y, task, ok):
    if ok:
        assert isinstance(check_task(y, task), str)
    else:
        with pytest.raises(DataError, match=f"do not fit a {task} task"):
            check_task(y, task)


def test_check_task_refuses_unknown_framings_and_missing_targets():
    for bad in ("ranking", None, 3):
        with pytest.raises(ConfigError, match="unknown framing"):
            check_task([0, 1], bad)
    with pytest.raises(DataError, match="missing"):
        check_task(np.array([0.5, np.nan]), "regression")
    with pytest.raises(DataError, match="missing"):
        check_task(np.array(["a", None], dtype=object), "multiclass")
    with pytest.raises(DataError, match="empty"):
        check_task(np.array([]), "binary")


def test_delay_target_buckets_at_the_edges():
    d = np.array([-5, 15, 15.5, 60, 60.5, 300])
    assert delay_target(d, "binary").tolist() == [False, False, True, True, True, True]
    assert delay_target(d, "multiclass", bins=(15, 60)).tolist() == [0, 0, 1, 1, 2, 2]
    np.testing.assert_array_equal(delay_target(d, "regression"), d)
    with pytest.raises(ConfigError, match="unknown framing"):
        delay_target(d, "ordinal")
    with pytest.raises(DataError, match="missing delays"):
        delay_target(np.array([1.0, np.nan]), "binary")
    with pytest.raises(ConfigError, match="increasing"):
        delay_target(d, "multiclass", bins=(60, 15))
    with pytest.raises(DataError, match="non-empty"):
        delay_target(np.array([]), "binary")


# ---- multilabel -----------------------------------------------------------------------------------------------------


def test_genre_matrix_and_multilabel_scores_match_scikit_learn():
    G = genre_matrix(pd.Series(["A|B", "B", "C|A|B", "(no genres listed)", "B|D"]), min_count=2)
    assert list(G.columns) == ["A", "B"] and G.to_numpy().tolist() == [[1, 1], [0, 1], [1, 1], [0, 0], [0, 1]]
    rng = np.random.default_rng(0)
    Y = (rng.random((200, 5)) < 0.3).astype(int)
    P = np.clip(Y * 0.4 + rng.random((200, 5)) * 0.6, 0, 1)
    got = multilabel_scores(Y, P)
    Yp = (P >= 0.5).astype(int)
    assert got["micro_f1"] == pytest.approx(f1_score(Y, Yp, average="micro"))
    assert got["macro_f1"] == pytest.approx(f1_score(Y, Yp, average="macro"))
    assert got["macro_ap"] == pytest.approx(average_precision_score(Y, P, average="macro"))
    assert got["hamming_loss"] == pytest.approx(hamming_loss(Y, Yp))
    assert got["exact_set"] == pytest.approx(accuracy_score(Y, Yp))
    with pytest.raises(DataError, match="shape"):
        multilabel_scores(Y, P[:, :4])
    with pytest.raises(DataError, match="multilabel"):
        multilabel_scores(Y[:, 0], P[:, 0])
    with pytest.raises(DataError, match="missing"):
        genre_matrix(pd.Series(["A", None]))
    with pytest.raises(DataError, match="Series"):
        genre_matrix(["A|B"])


# ---- hierarchical classifier ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def blobs():
    from sklearn.datasets import make_blobs
    X, y = make_blobs(n_samples=900, centers=9, cluster_std=1.5, random_state=0)
    names = np.array([f"c{i}" for i in range(9)])
    return X, names[y]


def test_probabilities_are_group_times_member(blobs):
    X, y = blobs
    hierarchy = {f"c{i}": ("low" if i < 3 else "mid" if i < 6 else "high") for i in range(9)}
    h = HierarchicalClassifier(LogisticRegression(max_iter=500), hierarchy=hierarchy).fit(X, y)
    P = h.predict_proba(X)
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    pg = h.top_.predict_proba(X)
    for j, gi in enumerate(h.top_.classes_):
        g = h.group_names_[gi]
        member = h.members_[g]
        cols = [list(h.classes_).index(c) for c in member.classes_]
        np.testing.assert_allclose(P[:, cols], pg[:, [j]] * member.predict_proba(X))
        np.testing.assert_allclose(P[:, cols].sum(axis=1), pg[:, j])
    assert (h.predict(X) == h.classes_[P.argmax(axis=1)]).all()
    assert set(h.predict_group(X)) <= {"low", "mid", "high"}
    # an arbitrary hierarchy (each group a union of far-apart blobs) is hard for a linear group model ...
    flat = (LogisticRegression(max_iter=500).fit(X, y).predict(X) == y).mean()
    assert (h.predict(X) == y).mean() < flat - 0.1
    # ... groups learned from the classes' means are not, and come within a few points of the flat model
    learned = HierarchicalClassifier(LogisticRegression(max_iter=500), n_groups=3, random_state=0).fit(X, y)
    assert (learned.predict(X) == y).mean() > flat - 0.05


def test_one_group_is_the_flat_model(blobs):
    X, y = blobs
    base = LogisticRegression(max_iter=500)
    h = HierarchicalClassifier(base, hierarchy={c: "all" for c in np.unique(y)}).fit(X, y)
    assert h.top_ is None
    np.testing.assert_allclose(h.predict_proba(X), LogisticRegression(max_iter=500).fit(X, y).predict_proba(X))


def test_single_class_groups_and_learned_groups(blobs):
    X, y = blobs
    h = HierarchicalClassifier(LogisticRegression(max_iter=500), hierarchy={c: c for c in np.unique(y)}).fit(X, y)
    assert all(isinstance(m, str) for m in h.members_.values())  # nothing to learn inside a one-class group
    np.testing.assert_allclose(h.predict_proba(X), h.top_.predict_proba(X))
    learned = HierarchicalClassifier(DecisionTreeClassifier(random_state=0), n_groups=3, random_state=0).fit(X, y)
    assert len(set(learned.groups_)) == 3 and set(learned.group_of_) == set(np.unique(y))


def test_hierarchical_refuses_bad_setups(blobs):
    X, y = blobs
    with pytest.raises(ConfigError, match="no group for classes"):
        HierarchicalClassifier(hierarchy={"c0": "a"}).fit(X, y)
    with pytest.raises(ConfigError, match="mapping"):
        HierarchicalClassifier(hierarchy=["c0"]).fit(X, y)
    with pytest.raises(ConfigError, match="n_groups"):
        HierarchicalClassifier(n_groups=0).fit(X, y)
    with pytest.raises(DataError, match="Unknown label type"):
        HierarchicalClassifier().fit(X, np.linspace(0, 1, len(X)))


# ---- pair features and hit rates ------------------------------------------------------------------------------------


def test_pair_features_and_refusals():
    ctx = pd.DataFrame({"a": [0.5, 1.0], "b": [0.5, 0.0]})
    items = pd.DataFrame({"a": [1, 0], "b": [1, 1]})
    f = pair_features(ctx, items)
    assert list(f.columns) == ["match_a", "match_b", "match", "item_a", "item_b"]
    assert f.to_numpy().tolist() == [[0.5, 0.5, 1.0, 1, 1], [0.0, 0.0, 0.0, 0, 1]]
    with pytest.raises(SchemaError, match="same columns"):
        pair_features(ctx, items[["b", "a"]])
    with pytest.raises(DataError, match="rows"):
        pair_features(ctx, items.iloc[:1])
    with pytest.raises(DataError, match="NaN"):
        pair_features(ctx.assign(a=np.nan), items)
    with pytest.raises(DataError, match="DataFrame"):
        pair_features(ctx.to_numpy(), items)


def test_hit_rate_equals_brute_force_and_counts_ties_against():
    rng = np.random.default_rng(0)
    S = np.round(rng.random((300, 20)), 1)
    S[rng.random(300) < 0.1, 0] = np.nan
    for k in (1, 5, 20):
        brute = np.mean([(not np.isnan(r[0])) and np.sum(np.nan_to_num(r[1:], nan=-np.inf) >= r[0]) < k for r in S])
        assert hit_rate_at_k(S, k) == pytest.approx(brute)
    assert hit_rate_at_k(np.array([[1.0, 1.0, 0.0]]), 1) == 0.0  # a tie at the top is not a hit
    assert hit_rate_at_k(np.array([[1.0, np.nan, 0.0]]), 1) == 1.0  # an unscorable candidate ranks last
    with pytest.raises(ConfigError, match="k must be"):
        hit_rate_at_k(S, 0)
    with pytest.raises(DataError, match="at least 2 candidates"):
        hit_rate_at_k(S[:, :1], 1)


# ---- decoupled objectives -------------------------------------------------------------------------------------------


def test_decoupling_is_exact_for_least_squares():
    "(1-w) f1 + w f2 of two least-squares fits equals one least-squares fit to the blended target, for every w."
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(500, 4)), columns=list("abcd"))
    goals = {"q": X @ [1, 2, 0, 0] + rng.normal(size=500), "e": X @ [0, -1, 3, 1] + rng.normal(size=500)}
    scorer = DecoupledScorer({k: LinearRegression().fit(X, v) for k, v in goals.items()}, {"q": 1, "e": 0})
    outputs = scorer.objectives(X)
    for w in np.linspace(0, 1, 11):
        one = LinearRegression().fit(X, combined_target(goals, {"q": 1 - w, "e": w}))
        b = scorer.with_weights({"q": 1 - w, "e": w})
        np.testing.assert_allclose(b.score(X), one.predict(X), atol=1e-9)
        np.testing.assert_allclose(b.score(objectives=outputs), one.predict(X), atol=1e-9)
        assert b.models["q"] is scorer.models["q"]  # nothing retrained


def test_decoupled_scorer_uses_probabilities_of_classifiers():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 2))
    m = LogisticRegression().fit(X, X[:, 0] > 0)
    s = DecoupledScorer({"a": m, "b": m}, {"a": 2.0, "b": 1.0})
    np.testing.assert_allclose(s.score(X), 3 * m.predict_proba(X)[:, 1])


def test_combined_target_and_scorer_refuse_bad_input():
    y = np.ones(4)
    with pytest.raises(ConfigError, match="same objectives"):
        combined_target({"a": y}, {"b": 1})
    with pytest.raises(ConfigError, match=">= 0"):
        combined_target({"a": y}, {"a": -1})
    with pytest.raises(ConfigError, match="all zero"):
        combined_target({"a": y, "b": y}, {"a": 0, "b": 0.0})
    with pytest.raises(ConfigError, match=">= 0"):
        combined_target({"a": y}, {"a": np.nan})
    with pytest.raises(DataError, match="has 3 values"):
        combined_target({"a": y, "b": y[:3]}, {"a": 1, "b": 1})
    with pytest.raises(DataError, match="missing"):
        combined_target({"a": np.array([1.0, np.nan])}, {"a": 1})
    with pytest.raises(DataError, match="numbers"):
        combined_target({"a": np.array(["x"])}, {"a": 1})
    with pytest.raises(ConfigError, match="non-empty mapping"):
        combined_target({}, {})
    with pytest.raises(ConfigError, match="not fitted"):
        DecoupledScorer({"a": LinearRegression()}, {"a": 1})
    with pytest.raises(ConfigError, match="neither predict"):
        DecoupledScorer({"a": object()}, {"a": 1})
    fitted = LinearRegression().fit(np.zeros((3, 1)) + [[0], [1], [2]], [0, 1, 2])
    s = DecoupledScorer({"a": fitted}, {"a": 1})
    with pytest.raises(ConfigError, match="either X"):
        s.score()
    with pytest.raises(SchemaError, match="lacks columns"):
        s.score(objectives=pd.DataFrame({"b": [1.0]}))


def test_front_gap_is_the_additive_epsilon_indicator():
    A = np.array([[0.1, 0.9], [0.5, 0.5], [0.9, 0.1]])
    assert front_gap(A, A) == 0
    assert front_gap(A + 0.05, A) == pytest.approx(-0.05)  # a dominating front
    assert front_gap(A - 0.03, A) == pytest.approx(0.03)
    assert front_gap(A[[0, 2]], A) == pytest.approx(0.4)  # the middle trade-off is missing
    with pytest.raises(DataError, match="shape"):
        front_gap(A[:, 0], A)
    with pytest.raises(DataError, match="finite"):
        front_gap(np.array([[np.nan, 1.0]]), A)
