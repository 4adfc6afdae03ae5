"""mlsys.continual.retrain: the retrain contract (champion never mutated, rows per update, continuation methods,
frozen preprocessing and category encoding), micro-batches, and replay against forgetting.

The retrainers are not scikit-learn estimators (they have no fit: they return fitted models and costs), so this file
has no ESTIMATORS list; every model they train is a scikit-learn or torch model checked by its own library.
"""
import hashlib
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlsys.continual.retrain import (RetrainCost, StatefulRetrainer, StatelessRetrainer, micro_batches)
from mlsys.core import ConfigError, DataError


def checksum(model) -> str:
    return hashlib.sha256(pickle.dumps(model)).hexdigest()


def blobs(n=1200, seed=0, shift=0.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)) + shift
    y = (X[:, 0] + 0.5 * X[:, 1] - shift * 1.5 > 0).astype(int)
    return X, y


def planted_categories(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    c = pd.Categorical(rng.choice(list("abcd"), n), categories=list("abcd"))
    X = pd.DataFrame({"c": c, "x": rng.normal(size=n)})
    y = X["c"].isin(["a", "c"]).to_numpy() ^ (X["x"] > 1).to_numpy()
    return X, y


def hgb(max_iter=15):
    return lambda: HistGradientBoostingClassifier(categorical_features="from_dtype", max_iter=max_iter,
                                                  early_stopping=False, random_state=0)


# --- micro-batches ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n,size", [(1, 1), (10, 3), (1024, 512), (1025, 512), (5, 1024)])
def test_micro_batches_cover_every_row_once_in_order(n, size):
    X = np.arange(n * 2).reshape(n, 2)
    y = np.arange(n)
    batches = list(micro_batches(X, y, size))
    assert np.array_equal(np.concatenate([b for _, b in batches]), y)
    assert np.array_equal(np.vstack([a for a, _ in batches]), X)
    assert all(len(b) == size for _, b in batches[:-1]) and 1 <= len(batches[-1][1]) <= size
    df = pd.DataFrame(X, index=np.arange(n)[::-1])  # order is positional, not by index
    got = pd.concat([a for a, _ in micro_batches(df, pd.Series(y), size)])
    assert got.equals(df)


def test_micro_batches_of_a_sparse_matrix():
    # one-hot preprocessing hands partial_fit a scipy sparse matrix: it is cut like an array
    import scipy.sparse as sp
    X = sp.random(10, 3, density=0.5, format="csr", random_state=0)
    batches = list(micro_batches(X, np.arange(10), 4))
    assert [b.shape[0] for b, _ in batches] == [4, 4, 2]
    assert (sp.vstack([b for b, _ in batches]) != X).nnz == 0


@pytest.mark.parametrize("size", [0, -1, -512, 1.0, 512.5, True, False, "512", None])
def test_micro_batch_size_refused(size):
    with pytest.raises(ConfigError, match="size must be a positive integer"):
        next(micro_batches(np.zeros((4, 1)), np.zeros(4), size))


def test_micro_batches_bad_data():
    with pytest.raises(DataError, match="X has 4 rows but y has 3"):
        next(micro_batches(np.zeros((4, 1)), np.zeros(3), 2))
    with pytest.raises(DataError, match="X is empty"):
        next(micro_batches(np.zeros((0, 1)), np.zeros(0), 2))
    with pytest.raises(DataError, match="X must be a DataFrame or an array"):
        next(micro_batches([[1], [2]], np.zeros(2), 2))


def test_cost_to_dict_is_plain():
    d = RetrainCost(np.float64(1.5), 2.0, np.int64(3)).to_dict()
    assert d == {"cpu_seconds": 1.5, "wall_seconds": 2.0, "rows": 3}
    assert [type(v) for v in d.values()] == [float, float, int]


# --- the champion is never mutated; rows per update ----------------------------------------------------------

CONTINUABLE = {
    "sgd": lambda: SGDClassifier(loss="log_loss", random_state=0),
    "mlp": lambda: MLPClassifier(hidden_layer_sizes=(8,), max_iter=30, random_state=0),
    "pipeline-sgd": lambda: make_pipeline(StandardScaler(), SGDClassifier(random_state=0)),
    "hgb": lambda: HistGradientBoostingClassifier(max_iter=10, early_stopping=False, random_state=0),
}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("name", list(CONTINUABLE))
def test_retrain_never_mutates_the_champion(name):
    X, y = blobs(1200)
    X_new, y_new = blobs(300, seed=1, shift=0.5)
    for retrainer in (StatefulRetrainer(CONTINUABLE[name], batch_size=128), StatelessRetrainer(CONTINUABLE[name])):
        champion, cost0 = retrainer.initial(X, y)
        before = checksum(champion)
        challenger, cost = retrainer.retrain(champion, X_new, y_new, np.vstack([X, X_new]), np.r_[y, y_new])
        assert checksum(champion) == before
        assert challenger is not champion and checksum(challenger) != before
        # data volume: the stateful update reads the new rows only, the stateless one the whole window
        assert cost.rows == (300 if retrainer.stateful else 1500) and cost0.rows == 1200
        assert cost.cpu_seconds >= 0 and cost.wall_seconds >= 0


def test_stateful_costs_fewer_rows_than_stateless_on_a_large_window():
    X, y = blobs(6000)
    X_new, y_new = X[-500:], y[-500:]
    total_less, total_ful = 0, 0
    champion, _ = StatefulRetrainer(CONTINUABLE["sgd"]).initial(X[:1000], y[:1000])
    for k in range(5):  # five updates over a growing window
        window = slice(0, 1000 + 1000 * (k + 1))
        _, c_less = StatelessRetrainer(CONTINUABLE["sgd"]).retrain(champion, X_new, y_new, X[window], y[window])
        champion, c_ful = StatefulRetrainer(CONTINUABLE["sgd"]).retrain(champion, X_new, y_new)
        total_less, total_ful = total_less + c_less.rows, total_ful + c_ful.rows
    assert total_ful == 5 * 500 and total_less == sum(1000 * (k + 2) for k in range(5))
    assert total_less == 8 * total_ful  # a window 4x to 12x the new rows: 8x the rows read over the five updates


def test_partial_fit_runs_one_call_per_micro_batch():
    calls = []

    class Counting(SGDClassifier):
        def partial_fit(self, X, y, classes=None, sample_weight=None):
            calls.append(len(X))
            return super().partial_fit(X, y, classes=classes, sample_weight=sample_weight)

    X, y = blobs(800)
    champion = Counting(random_state=0).fit(X, y)
    StatefulRetrainer(Counting, batch_size=256).retrain(champion, X[:700], y[:700])
    assert calls == [256, 256, 188]


def test_warm_start_adds_step_trees_and_keeps_old_ones():
    X, y = blobs(1500)
    champion = CONTINUABLE["hgb"]().fit(X, y)
    new, cost = StatefulRetrainer(CONTINUABLE["hgb"], step=7).retrain(champion, X[:400], y[:400])
    assert (champion.n_iter_, new.n_iter_, champion.max_iter, cost.rows) == (10, 17, 10, 400)
    assert not champion.warm_start
    # the first 10 stages of the new ensemble are the champion's
    old = list(champion.staged_decision_function(X))[-1]
    assert np.allclose(list(new.staged_decision_function(X))[9], old)


def test_pipeline_preprocessing_stays_frozen():
    X, y = blobs(1000)
    champion = CONTINUABLE["pipeline-sgd"]().fit(X, y)
    X_new, y_new = blobs(400, seed=2, shift=3.0)  # a big shift a refitted scaler would follow
    new, _ = StatefulRetrainer(CONTINUABLE["pipeline-sgd"]).retrain(champion, X_new, y_new)
    assert np.array_equal(new[0].mean_, champion[0].mean_) and np.array_equal(new[0].scale_, champion[0].scale_)
    assert not np.array_equal(new[-1].coef_, champion[-1].coef_)


def test_hgb_category_encoding_frozen_when_a_category_is_missing_or_new():
    X, y = planted_categories()
    champion = hgb()().fit(X, y)
    lacks_a = ~X["c"].eq("a").to_numpy()
    # scikit-learn's own warm start re-encodes the categories and wrecks the old trees (the bug this guards against)
    import copy
    naive = copy.deepcopy(champion).set_params(warm_start=True, max_iter=16).fit(X[lacks_a], y[lacks_a])
    assert (naive.predict(X) == y).mean() < 0.2
    new, cost = StatefulRetrainer(hgb(), step=1).retrain(champion, X[lacks_a], y[lacks_a])
    assert (new.predict(X) == y).mean() > 0.98 and cost.rows == int(lacks_a.sum())
    # a category the champion never saw is treated as missing, not given a code
    X_e = X.copy()
    X_e["c"] = pd.Categorical(np.where(X["c"] == "b", "e", X["c"].astype(str)), categories=list("acde"))
    new2, _ = StatefulRetrainer(hgb(), step=1).retrain(champion, X_e[:500], y[:500])
    assert (new2.predict(X) == y).mean() > 0.98


def test_hgb_single_class_batch_keeps_classes():
    X, y = planted_categories()
    champion = hgb()().fit(X, y)
    only_true = y
    new, cost = StatefulRetrainer(hgb(), step=2).retrain(champion, X[only_true], y[only_true])
    assert list(new.classes_) == [False, True] and cost.rows == int(only_true.sum())
    assert (new.predict(X) == y).mean() > 0.9


# --- refusals ----------------------------------------------------------------------------------------------------

def test_refusals_name_the_input():
    X, y = blobs(200)
    champion = SGDClassifier(random_state=0).fit(X, y)
    with pytest.raises(ConfigError, match="pass X_window and y_window"):
        StatelessRetrainer(SGDClassifier).retrain(champion, X, y)
    with pytest.raises(DataError, match="X_new has 200 rows but y_new has 199"):
        StatefulRetrainer(SGDClassifier).retrain(champion, X, y[:-1])
    with pytest.raises(DataError, match="X_window has 200 rows but y_window has 10"):
        StatelessRetrainer(SGDClassifier).retrain(champion, X, y, X, y[:10])
    with pytest.raises(DataError, match="X_new is empty"):
        StatefulRetrainer(SGDClassifier).retrain(champion, X[:0], y[:0])
    with pytest.raises(DataError, match="X is empty"):
        StatelessRetrainer(SGDClassifier).initial(X[:0], y[:0])
    rf = RandomForestClassifier(n_estimators=3).fit(X, y)
    for est in (rf, LogisticRegression().fit(X, y), make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)):
        with pytest.raises(ConfigError, match="use StatelessRetrainer"):
            StatefulRetrainer(lambda: None).retrain(est, X, y)
    with pytest.raises(ConfigError, match="is not fitted"):
        StatefulRetrainer(SGDClassifier).retrain(SGDClassifier(), X, y)
    with pytest.raises(ConfigError, match="cannot continue training by 'warm_start'"):
        StatefulRetrainer(SGDClassifier, method="warm_start").retrain(champion, X, y)
    with pytest.raises(ConfigError, match="method must be one of"):
        StatefulRetrainer(SGDClassifier, method="sgd")
    with pytest.raises(ConfigError, match="make_model must be a function"):
        StatelessRetrainer(SGDClassifier())
    with pytest.raises(ConfigError, match="neither an estimator with fit nor a torch module"):
        StatelessRetrainer(lambda: 3).initial(X, y)
    for bad in (0, -1, True, 2.5):
        with pytest.raises(ConfigError, match="batch_size must be a positive integer"):
            StatefulRetrainer(SGDClassifier, batch_size=bad)
        with pytest.raises(ConfigError, match="step must be a positive integer"):
            StatefulRetrainer(SGDClassifier, step=bad)


# --- torch fine-tuning ---------------------------------------------------------------------------------------------

def test_torch_finetune_never_mutates_the_champion():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    X, y = blobs(600)
    X = X.astype(np.float32)

    def net():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))

    r = StatefulRetrainer(net, epochs=2, batch_size=64)
    champion, _ = r.initial(X, y)
    before = checksum(champion.state_dict())
    new, cost = r.retrain(champion, X[:200], y[:200])
    assert checksum(champion.state_dict()) == before and cost.rows == 200
    assert not all(torch.equal(a, b) for a, b in zip(new.state_dict().values(), champion.state_dict().values()))
    with pytest.raises(DataError, match="float32 array"):
        r.retrain(champion, X.astype(np.float64), y)
    with pytest.raises(DataError, match="integer class labels"):
        r.retrain(champion, X, y.astype(float))


# --- replay --------------------------------------------------------------------------------------------------------

def _task(center, sign, n, seed):
    g = np.random.default_rng(seed)
    X = np.c_[g.normal(center, 1, n), g.normal(0, 1, n)]
    return X, (sign * X[:, 1] > 0).astype(int)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_replay_keeps_the_old_task_on_a_planted_forgetting_problem():
    # task A (around x0=-3: label x1 > 0) then task B (around x0=+3: label x1 < 0): fine-tuning on B alone forgets A
    from mlsys.continual.retrain import ReplayBuffer
    XA, yA = _task(-3, 1, 1000, 1)
    XB, yB = _task(3, -1, 4000, 2)
    XT, yT = _task(-3, 1, 500, 3)

    def mlp():
        return MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, max_iter=100, random_state=0)

    acc = {}
    for name, buffer in (("plain", None), ("replay", ReplayBuffer(300, random_state=0))):
        r = StatefulRetrainer(mlp, batch_size=32, replay=buffer)
        model_a, _ = r.initial(XA, yA)
        model_b, cost = r.retrain(model_a, XB, yB)
        assert (model_a.predict(XT) == yT).mean() > 0.98
        acc[name] = (model_b.predict(XT) == yT).mean()
        assert cost.rows == 4000 + (300 if buffer is not None else 0)  # replayed rows are counted
    assert acc["plain"] < 0.85 and acc["replay"] > acc["plain"] + 0.15


def test_replay_buffer_mixes_new_rows_and_the_reservoir():
    from mlsys.continual.retrain import ReplayBuffer
    buf = ReplayBuffer(50, random_state=0)
    X_new, y_new = np.arange(20, dtype=float).reshape(10, 2), np.arange(10)
    X, y = buf.mix(X_new, y_new)
    assert X is X_new and y is y_new  # nothing to replay yet
    buf.add(np.full((500, 2), -1.0), np.full(500, -1))
    assert (len(buf), buf.n_seen_) == (50, 500)
    X, y = buf.mix(X_new, y_new)
    assert len(X) == 60 and sorted(y[y >= 0].tolist()) == list(range(10)) and (y == -1).sum() == 50
    assert {tuple(r) for r in X[y >= 0]} == {tuple(r) for r in X_new}
    df = pd.DataFrame({"c": pd.Categorical(["a", "b"] * 50), "x": np.arange(100.0)})
    dbuf = ReplayBuffer(10, random_state=1).add(df, np.zeros(100))
    Xd, _ = dbuf.mix(df.iloc[:5], np.ones(5))
    assert list(Xd.dtypes) == list(df.dtypes) and len(Xd) == 15
    with pytest.raises(DataError, match="buffer holds DataFrame rows"):
        dbuf.add(np.zeros((2, 2)), np.zeros(2))
    with pytest.raises(DataError, match="but the buffer holds rows of"):
        dbuf.add(df.rename(columns={"x": "z"}), np.zeros(100))
    with pytest.raises(DataError, match="buffer holds DataFrame rows"):
        ReplayBuffer(5).add(df, np.zeros(100)).add(np.zeros((2, 2)), np.zeros(2))
    for bad in (0, -3, True, 2.5):
        with pytest.raises(ConfigError, match="k must be a positive integer"):
            ReplayBuffer(bad)
    with pytest.raises(ConfigError, match="replay must be a ReplayBuffer"):
        StatefulRetrainer(SGDClassifier, replay=[1, 2])


def test_warm_start_passes_weights_only_when_rows_were_padded():
    # zero-weight rows freeze the category encoding; without them no weights are passed, because scikit-learn's
    # weighted binning is several times slower than its unweighted one
    seen = []

    class Spy(HistGradientBoostingClassifier):
        def fit(self, X, y, sample_weight=None, **kw):
            seen.append(None if sample_weight is None else float(np.min(sample_weight)))
            return super().fit(X, y, sample_weight=sample_weight, **kw)

    X, y = blobs(800)
    numeric = Spy(max_iter=5, early_stopping=False).fit(X, y)
    StatefulRetrainer(Spy, step=2).retrain(numeric, X[:300], y[:300])
    Xc, yc = planted_categories()
    cats = Spy(categorical_features="from_dtype", max_iter=5, early_stopping=False).fit(Xc, yc)
    StatefulRetrainer(Spy, step=2).retrain(cats, Xc[:500], yc[:500])  # every category present: no padding
    lacks_a = ~Xc["c"].eq("a").to_numpy()
    StatefulRetrainer(Spy, step=2).retrain(cats, Xc[lacks_a], yc[lacks_a])  # 'a' absent: one zero-weight row
    assert seen == [None, None, None, None, 0.0]


def test_warm_start_names_a_numeric_column_without_values_in_the_new_rows():
    "scikit-learn re-bins the new rows and raised a raw ValueError ('window shape cannot be larger than input array shape')."
    from sklearn.ensemble import HistGradientBoostingClassifier

    from mlsys.continual.retrain import StatefulRetrainer
    from mlsys.core import DataError
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=300), "wind_gust": rng.normal(size=300)})
    y = (X["a"] > 0).astype(int)
    r = StatefulRetrainer(lambda: HistGradientBoostingClassifier(max_iter=5))
    model, _ = r.initial(X, y)
    new = X.iloc[:80].assign(wind_gust=np.nan)
    with pytest.raises(DataError, match=r"\['wind_gust'\] have no value in the new rows"):
        r.retrain(model, new, y.iloc[:80])
