"""monitor.feedback: the exposure metrics against direct formulas, the click model against scikit-learn's estimator
checks and a known position effect, the feedback loop's direction on a small real MovieLens sample, seeds, bad input."""
import itertools

import numpy as np
import pandas as pd
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from mlsys.core import ConfigError, DataError
from mlsys.datasets import load_movielens
from mlsys.monitor.feedback import (
    ClickFM, FeedbackLoop, GroundTruth, aggregate_diversity, chaney_measures, compare_loops, encode_log, examination,
    fit_ground_truth, gini, homogenization, ideal_slates, item_exposure, long_tail_share, mean_jaccard, mean_set_jaccard,
    relevance_logits, round_metrics, top_k,
)

ESTIMATORS = [ClickFM(max_iter=40), ClickFM(n_factors=0, max_iter=40, l2=0.0)]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible(estimator, check):
    check(estimator)


# ---- metrics ------------------------------------------------------------------------------------------------------

def gini_direct(x):
    "The O(n^2) definition: mean absolute difference over all ordered pairs, over twice the mean."
    x = np.asarray(x, float)
    return np.abs(x[:, None] - x[None, :]).sum() / (2 * len(x) ** 2 * x.mean())


def test_gini_equals_the_direct_formula():
    rng = np.random.default_rng(0)
    for case in range(600):
        n = int(rng.integers(1, 40))
        kind = case % 4
        if kind == 0:
            x = rng.integers(0, 4, n).astype(float)  # many ties and zeros
        elif kind == 1:
            x = rng.exponential(1.0, n) * (rng.random(n) < 0.5)  # half zeros
        elif kind == 2:
            x = rng.random(n).astype(np.float32)
        else:
            x = np.full(n, float(rng.integers(1, 5)))  # all tied
        if x.sum() == 0:
            x[0] = 1.0
        assert gini(x) == pytest.approx(gini_direct(x), abs=1e-6), x


def test_gini_bounds():
    assert gini(np.ones(100)) == pytest.approx(0.0, abs=1e-12)
    assert gini([5]) == pytest.approx(0.0, abs=1e-12)
    for n in (2, 10, 1000, 100000):
        x = np.zeros(n)
        x[3 % n] = 7.0
        assert gini(x) == pytest.approx((n - 1) / n)
    assert gini(np.r_[1.0, np.zeros(99999)]) > 0.9999


@pytest.mark.parametrize("bad,msg", [([], "empty"), ([0, 0, 0], "undefined"), ([1, -1], "non-negative"),
                                     ([1, np.nan], "finite")])
def test_gini_bad_input(bad, msg):
    with pytest.raises(DataError, match=msg):
        gini(bad)


def random_slates(rng, n_users, n_items, k):
    return np.argsort(rng.random((n_users, n_items)), axis=1)[:, :k]


def test_diversity_long_tail_and_jaccard_against_direct():
    rng = np.random.default_rng(1)
    for _ in range(100):
        n_users, n_items = int(rng.integers(2, 12)), int(rng.integers(3, 30))
        k = int(rng.integers(1, n_items + 1))
        s = random_slates(rng, n_users, n_items, k)
        if rng.random() < 0.3:
            s[:] = s[0]  # everyone gets the same slate
        div = aggregate_diversity(s, n_items)
        assert div == pytest.approx(len(set(s.ravel())) / n_items)
        assert k / n_items <= div <= min(1.0, n_users * k / n_items)
        tail = rng.random(n_items) < 0.5
        assert long_tail_share(s, tail) == pytest.approx(np.mean([tail[row].mean() for row in s]))
        sets = [set(row) for row in s]
        jac = np.mean([len(a & b) / len(a | b) for a, b in itertools.combinations(sets, 2)])
        assert mean_jaccard(s, n_items) == pytest.approx(jac)
        assert item_exposure(s, n_items).sum() == s.size


def test_diversity_extremes_and_homogenization():
    same = np.tile(np.arange(5), (8, 1))
    assert aggregate_diversity(same, 100) == pytest.approx(0.05)
    assert mean_jaccard(same, 100) == 1.0
    disjoint = np.arange(40).reshape(8, 5)
    assert aggregate_diversity(disjoint, 40) == 1.0
    assert mean_jaccard(disjoint, 40) == 0.0
    assert homogenization(same, disjoint, 100) == 1.0
    assert homogenization(disjoint, disjoint, 100) == 0.0


def test_top_k_is_the_sorted_order():
    rng = np.random.default_rng(2)
    scores = rng.random((20, 50))
    np.testing.assert_array_equal(top_k(scores, 7), np.argsort(-scores, axis=1)[:, :7])


# ---- the click model ----------------------------------------------------------------------------------------------

def simulated_log(rng, n_users=150, n_items=200, k=8, n_slates=3000, eta=1.0):
    users = rng.integers(0, n_users, n_slates)
    slates = random_slates(rng, n_slates, n_items, k)
    rel = 1 / (1 + np.exp(-rng.normal(-0.5, 1.0, n_items)))
    clicks = rng.random(slates.shape) < examination(k, eta) * rel[slates]
    log = pd.DataFrame({"round": 0, "user": np.repeat(users, k), "item": slates.ravel(),
                        "rank": np.tile(np.arange(k), n_slates), "click": clicks.ravel().astype(int)})
    return log, rel


def confounded_log(rng, n_users=150, n_items=200, k=8, n_slates=8000, eta=1.0):
    "Clicks under a known position effect, logged by a policy that puts the truly better items higher."
    users = rng.integers(0, n_users, n_slates)
    z = rng.normal(-0.5, 1.0, n_items)
    slates = random_slates(rng, n_slates, n_items, k)
    slates = np.take_along_axis(slates, np.argsort(-(z[slates] + rng.normal(0, 1.0, slates.shape)), 1), 1)
    clicks = rng.random(slates.shape) < examination(k, eta) / (1 + np.exp(-z[slates]))
    log = pd.DataFrame({"round": 0, "user": np.repeat(users, k), "item": slates.ravel(),
                        "rank": np.tile(np.arange(k), n_slates), "click": clicks.ravel().astype(int)})
    return log, z


def test_position_debiasing_recovers_a_known_position_effect():
    rng = np.random.default_rng(3)
    for eta in (1.0, 0.5):
        log, z = confounded_log(rng, eta=eta)
        X, y = encode_log(log, 150, 200, position=True)
        model = ClickFM(n_factors=0, position_column=-1, max_iter=300, learning_rate=0.1).fit(X, y)
        err = np.abs(model.examination_ - examination(8, eta)).max()
        ctr = log.groupby("rank")["click"].mean().to_numpy()
        naive = np.abs(ctr / ctr[0] - examination(8, eta)).max()  # click-through rate by rank confounds the two
        assert err < 0.05 and naive > 2 * err, (err, naive)
        # scored at the fixed top position, the item weights follow the true item logits
        assert np.corrcoef(model.coef_[150:], z)[0, 1] > 0.9
        top = model.predict_proba(X)[:, 1]
        np.testing.assert_allclose(top, 1 / (1 + np.exp(-model.decision_function(X))))


def test_warm_start_continues_the_previous_fit():
    rng = np.random.default_rng(4)
    log, _ = simulated_log(rng, n_slates=500)
    X, y = encode_log(log, 150, 200)
    a = ClickFM(max_iter=60, warm_start=True).fit(X, y)
    before = a.coef_.copy()
    a.set_params(max_iter=1).fit(X, y)  # one more small step from where it was
    cold = ClickFM(max_iter=1).fit(X, y)
    assert np.abs(a.coef_ - before).max() <= 0.06
    assert np.abs(cold.coef_ - before).max() > 0.2


# ---- the loop on a small real sample -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def truth():
    ratings = load_movielens()
    return fit_ground_truth(ratings[ratings["user_id"] <= 120], min_ratings=15, n_iter=5)


def test_ground_truth(truth):
    assert isinstance(truth, GroundTruth)
    assert truth.relevance.shape == (truth.n_users, truth.n_items)
    assert ((truth.relevance > 0) & (truth.relevance < 1)).all()
    assert set(np.unique(truth.bucket)) == {"head", "mid", "tail"}
    assert truth.popularity[truth.bucket == "head"].min() >= truth.popularity[truth.bucket == "tail"].max()


@pytest.fixture(scope="module")
def runs(truth):
    model = ClickFM(max_iter=40)
    return {name: FeedbackLoop(truth, model=model, random_state=0, **kw).run(4) for name, kw in
            [("none", {}), ("epsilon", {"exploration": "epsilon", "epsilon": 0.2}),
             ("thompson", {"exploration": "thompson"})]}


def test_diversity_falls_without_correction_and_exploration_keeps_more(runs):
    m = runs["none"].metrics
    warm = m[m.index <= 0]
    model_rounds = m[m.index >= 1]
    assert model_rounds["diversity"].max() < warm["diversity"].min()
    assert m.loc[4, "gini"] > m.loc[0, "gini"]
    for name in ("epsilon", "thompson"):
        assert runs[name].metrics.loc[4, "diversity"] > m.loc[4, "diversity"], name
        assert runs[name].metrics.loc[1:, "diversity"].mean() > model_rounds["diversity"].mean(), name
    # the same seed: identical warm-up rounds
    pd.testing.assert_frame_equal(runs["epsilon"].metrics.loc[:0], warm)
    table = compare_loops(runs)
    assert table.shape[0] == 6


def test_seeds_reproducible(truth):
    a = FeedbackLoop(truth, model=ClickFM(max_iter=20), exploration="thompson", warmup_rounds=1, random_state=5).run(2)
    b = FeedbackLoop(truth, model=ClickFM(max_iter=20), exploration="thompson", warmup_rounds=1, random_state=5).run(2)
    c = FeedbackLoop(truth, model=ClickFM(max_iter=20), exploration="thompson", warmup_rounds=1, random_state=6).run(2)
    pd.testing.assert_frame_equal(a.log, b.log)
    pd.testing.assert_frame_equal(a.metrics, b.metrics)
    assert not a.log["item"].equals(c.log["item"])


def test_initial_log_and_position_model(truth):
    log, _ = simulated_log(np.random.default_rng(7), n_users=truth.n_users, n_items=truth.n_items, k=10, n_slates=300)
    res = FeedbackLoop(truth, model=ClickFM(max_iter=20, position_column=-1), warmup_rounds=0,
                       initial_log=log).run(2)
    assert list(res.metrics.index) == [1, 2]
    assert len(res.log) == len(log) + 2 * truth.n_users * 10


def test_round_metrics_on_ideal_slates(truth):
    ideal = ideal_slates(truth, 5)
    m = round_metrics(truth, ideal, np.zeros_like(ideal), ideal)
    assert m["homogenization"] == 0.0 and m["ctr"] == 0.0
    assert 0 < m["diversity"] <= 1 and 0 <= m["long_tail"] <= 1 and 0 <= m["gini"] < 1


# ---- bad input -------------------------------------------------------------------------------------------------------

def test_bad_k(truth):
    for k in (0, -3, 2.5, True):
        with pytest.raises(DataError, match="k must be a positive integer"):
            FeedbackLoop(truth, k=k).run(1)
    with pytest.raises(DataError, match="k must be a positive integer"):
        examination(0)
    with pytest.raises(DataError, match="k must be a positive integer"):
        top_k(np.ones((2, 3)), 0)
    with pytest.raises(DataError, match="more than the catalog"):
        FeedbackLoop(truth, k=truth.n_items + 1).run(1)
    with pytest.raises(DataError, match="rounds must be a positive integer"):
        FeedbackLoop(truth).run(0)


def test_empty_logs(truth):
    empty = pd.DataFrame({c: pd.Series(dtype="int64") for c in ("round", "user", "item", "rank", "click")})
    with pytest.raises(DataError, match="log is empty"):
        encode_log(empty, 3, 3)
    with pytest.raises(DataError, match="log is empty"):
        FeedbackLoop(truth, warmup_rounds=0, initial_log=empty).run(1)
    with pytest.raises(DataError, match="the log is empty"):
        FeedbackLoop(truth, warmup_rounds=0).run(1)
    with pytest.raises(DataError, match="slates must be a non-empty"):
        aggregate_diversity(np.zeros((0, 3), int), 5)


def test_unknown_items_and_users(truth):
    log = pd.DataFrame({"round": [0, 0], "user": [0, 1], "item": [2, 99], "rank": [0, 1], "click": [1, 0]})
    with pytest.raises(DataError, match="unknown item id 99"):
        encode_log(log, 5, 10)
    with pytest.raises(DataError, match="unknown user id 7"):
        encode_log(log.assign(user=[0, 7], item=[1, 2]), 5, 10)
    with pytest.raises(DataError, match="unknown item id 12"):
        aggregate_diversity(np.array([[1, 12]]), 10)
    with pytest.raises(DataError, match="unknown item id"):
        long_tail_share(np.array([[1, 12]]), np.zeros(10, bool))
    with pytest.raises(DataError, match="repeat an item"):
        mean_jaccard(np.array([[1, 1], [2, 3]]), 10)
    model = ClickFM(max_iter=5).fit(*encode_log(log.assign(item=[2, 3]), 5, 10))
    with pytest.raises(DataError, match="unknown user id 9"):
        relevance_logits(model, [9], 5)
    with pytest.raises(DataError, match="unknown user id"):
        ideal_slates(truth, 3, users=[truth.n_users])


def test_other_bad_input(truth):
    log = pd.DataFrame({"round": [0, 0], "user": [0, 1], "item": [2, 3], "rank": [0, 1], "click": [1, 2]})
    with pytest.raises(DataError, match="click"):
        encode_log(log, 5, 10)
    with pytest.raises(DataError, match="rank"):
        encode_log(log.assign(click=[1, 0], rank=[0, -1]), 5, 10)
    with pytest.raises(DataError, match="position column"):
        ClickFM(position_column=-1).fit(np.c_[np.ones(4), [0, 1.5, 2, 3]], [0, 1, 0, 1])
    with pytest.raises(ConfigError, match="exploration"):
        FeedbackLoop(truth, exploration="softmax").run(1)
    with pytest.raises(ConfigError, match="position_column"):
        FeedbackLoop(truth, model=ClickFM(position_column=0)).run(1)
    with pytest.raises(DataError, match="GroundTruth"):
        FeedbackLoop("truth").run(1)
    with pytest.raises(DataError, match="1 class"):
        ClickFM().fit(np.eye(3), [1, 1, 1])
    with pytest.raises(DataError, match="ratings is empty"):
        fit_ground_truth(pd.DataFrame({"user_id": [], "movie_id": [], "rating": []}))
    with pytest.raises(DataError, match="missing or non-numeric"):
        fit_ground_truth(pd.DataFrame({"user_id": [1, 2], "movie_id": [1, 1], "rating": [4.0, np.nan]}))
    with pytest.raises(DataError, match="need at least 2"):
        fit_ground_truth(pd.DataFrame({"user_id": [1, 2], "movie_id": [1, 1], "rating": [4.0, 3.0]}), min_ratings=1)
    with pytest.raises(DataError, match="results is empty"):
        compare_loops({})


def test_wrong_types_are_named_errors(truth):
    "Strings, None and objects where numbers belong: a named mlsys error, never a raw TypeError/ValueError."
    cases = [
        (lambda: gini(["a", "b"]), DataError, "exposure must be numbers"),
        (lambda: gini(None), DataError, "exposure"),
        (lambda: top_k([["x", "y"]], 1), DataError, "scores must be"),
        (lambda: examination(3, eta="fast"), ConfigError, "eta must be a number"),
        (lambda: FeedbackLoop(truth, exploration="epsilon", epsilon="0.1").run(1), ConfigError, "epsilon must be"),
        (lambda: FeedbackLoop(truth, warmup_rounds=1.5).run(1), DataError, "warmup_rounds"),
        (lambda: FeedbackLoop(truth).run("3"), DataError, "rounds must be a positive integer"),
        (lambda: fit_ground_truth(pd.DataFrame({"user_id": [1], "movie_id": [1], "rating": [4.0]}), scale="x"),
         ConfigError, "scale must be a number"),
        (lambda: fit_ground_truth(pd.DataFrame({"user_id": [1], "movie_id": [1], "rating": [4.0]}), n_factors=2.5),
         DataError, "n_factors must be a positive integer"),
        (lambda: fit_ground_truth([1, 2, 3]), DataError, "ratings must be a pandas DataFrame"),
        (lambda: encode_log("log", 3, 3), DataError, "log must be a pandas DataFrame"),
        (lambda: ClickFM(l2="big").fit(np.eye(4), [0, 1, 0, 1]), ConfigError, "l2 must be a number"),
        (lambda: ClickFM(n_factors=1.5).fit(np.eye(4), [0, 1, 0, 1]), ConfigError, "n_factors must be an integer"),
        (lambda: ClickFM().fit(np.array([["a", "b"], ["c", "d"]]), [0, 1]), DataError, "X"),
        (lambda: aggregate_diversity(np.array([[0.5, 1.5]]), 3), DataError, "integer item ids"),
        (lambda: mean_jaccard(np.array([[0, 1]]), 3), DataError, "at least 2 users"),
        (lambda: homogenization(np.array([[0], [1]]), np.array([[0]]), 3), DataError, "same users"),
        (lambda: round_metrics(truth, ideal_slates(truth, 3), np.zeros((2, 3)), ideal_slates(truth, 3)), DataError,
         "clicks has shape"),
    ]
    for call, kind, msg in cases:
        with pytest.raises(kind, match=msg):
            call()


def test_mean_set_jaccard_against_python_sets():
    rng = np.random.default_rng(8)
    for _ in range(100):
        n_users, n_items = int(rng.integers(2, 10)), int(rng.integers(1, 15))
        M = rng.random((n_users, n_items)) < rng.random()
        sets = [set(np.flatnonzero(row)) for row in M]
        pairs = [(a, b) for a, b in itertools.combinations(sets, 2) if a | b]
        want = np.mean([len(a & b) / len(a | b) for a, b in pairs]) if pairs else 0.0
        assert mean_set_jaccard(M) == pytest.approx(want)
    with pytest.raises(DataError, match="at least 2 users"):
        mean_set_jaccard(np.ones((1, 3), bool))


def test_ideal_run_and_chaney_measures(truth, runs):
    ideal = FeedbackLoop(truth, model=ClickFM(max_iter=40), ideal=True, random_state=0).run(4)
    m = ideal.metrics
    assert (m.loc[1:, "homogenization"] == 0).all()
    assert (m.loc[1:, "expected_clicks"] >= runs["none"].metrics.loc[1:, "expected_clicks"]).all()
    pd.testing.assert_frame_equal(m.loc[:0], runs["none"].metrics.loc[:0])  # the same warm-up
    assert m["consumed_jaccard"].is_monotonic_increasing  # the ideal's users keep consuming the same favourites
    own = chaney_measures(ideal, ideal)
    assert (own["jaccard_change"] == 0).all() and np.allclose(own["utility_vs_ideal"], 1.0)
    c = chaney_measures(runs["none"], ideal)
    assert (c.loc[1:, "utility_vs_ideal"] < 1).all()
    with pytest.raises(DataError, match="same warmup_rounds and rounds"):
        chaney_measures(runs["none"], FeedbackLoop(truth, model=ClickFM(max_iter=5), ideal=True).run(2))
