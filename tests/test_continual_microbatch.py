"""Micro-batch deployment (12i) and the service's hot swap (10c): the loop's records, guarded vs unguarded updates on a
planted concept change, refusals, and a model swapped under concurrent HTTP traffic."""
import threading

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import SGDClassifier

from mlsys.continual.microbatch import MicroBatchDeployment
from mlsys.continual.retrain import StatefulRetrainer
from mlsys.continual.triggers import archived, start_champion
from mlsys.core import ConfigError, DataError
from mlsys.deploy.registry import ModelStore


def _stream(n: int, flip: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    "Two informative features; after row `flip` the sign of the first one's effect flips (a planted concept change)."
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    sign = np.where(np.arange(n) < flip, 1.0, -1.0)
    p = 1 / (1 + np.exp(-(3 * sign * X["a"] + X["b"])))
    return X, (rng.random(n) < p).astype(int)


def _model():
    return SGDClassifier(loss="log_loss", learning_rate="constant", eta0=0.05, random_state=0)


def _start(tmp_path, X, y, name="m"):
    store = ModelStore(tmp_path / "store")
    r = StatefulRetrainer(_model, batch_size=64)
    start_champion(store, name, r, X, y)
    return store, r


def test_records_and_served_by(tmp_path):
    X, y = _stream(3000, flip=1000)
    store, r = _start(tmp_path, X.iloc[:500], y[:500])
    log = MicroBatchDeployment(store, "m", r, size=256).run(X.iloc[500:], y[500:])
    assert len(log) == -(-2500 // 256) and int(log["rows"].iloc[-1]) == 2500
    after = np.where(log["promoted"].iloc[:-1], log["challenger"].iloc[:-1], log["served_by"].iloc[:-1]).astype(int)
    assert log["served_by"].iloc[1:].astype(int).tolist() == after.tolist()
    assert len(archived(store, "m")) == int((~log["promoted"]).sum())
    promoted = log.loc[log["promoted"], "challenger"].astype(int)
    assert store.get("m", "champion").version == (promoted.iloc[-1] if len(promoted) else 1)


def test_updates_follow_a_concept_change_and_the_guard_helps(tmp_path):
    X, y = _stream(6000, flip=1500)
    frozen_store, r = _start(tmp_path / "a", X.iloc[:1000], y[:1000])
    frozen = frozen_store.load("m", "champion").predict_proba(X.iloc[1000:])[:, 1]
    never = float(((frozen >= 0.5) == y[1000:]).mean())
    logs = {}
    for k, gain in (("guarded", 0.0), ("unguarded", -1e9)):
        store, r = _start(tmp_path / k, X.iloc[:1000], y[:1000])
        logs[k] = MicroBatchDeployment(store, "m", r, size=256, min_gain=gain).run(X.iloc[1000:], y[1000:])
    acc = {k: float((v["served_accuracy"] * v["rows"].diff().fillna(v["rows"].iloc[0])).sum() / 5000) for k, v in logs.items()}
    assert acc["guarded"] > never + 0.1  # the frozen model keeps the old sign of `a` after the flip
    assert logs["unguarded"]["promoted"].all()
    assert acc["guarded"] >= acc["unguarded"] - 0.02


def test_bad_input(tmp_path):
    X, y = _stream(600, flip=600)
    store, r = _start(tmp_path, X.iloc[:300], y[:300])
    for kw, word in (({"size": 0}, "size"), ({"holdout": 0.0}, "holdout"), ({"metric": "f1"}, "metric"),
                     ({"min_gain": float("nan")}, "min_gain"), ({"eval_batches": -1}, "eval_batches")):
        with pytest.raises(ConfigError, match=word):
            MicroBatchDeployment(store, "m", r, **kw)
    with pytest.raises(ConfigError, match="retrainer"):
        MicroBatchDeployment(store, "m", object())
    mb = MicroBatchDeployment(store, "m", r, size=100)
    with pytest.raises(DataError, match="DataFrame"):
        mb.run(X.to_numpy(), y)
    with pytest.raises(DataError, match="0/1"):
        mb.run(X, np.where(y == 1, 2, 0))
    with pytest.raises(DataError, match="probabilities"):
        mb.run(X, y, serve=lambda Xb: np.full(len(Xb), np.nan))
    with pytest.raises(ConfigError, match="deploy"):
        mb.run(X, y, deploy="yes")


def test_swap_refusals_and_cache():
    from mlsys.deploy.service import FallbackPredictor, PredictionService, feature_spec
    X, y = _stream(400, flip=400)
    a, b = _model().fit(X, y), _model().fit(X, 1 - y)
    fp = FallbackPredictor(a, main_name="champion")
    with pytest.raises(ConfigError, match="predict_proba"):
        fp.swap(object())
    assert fp.swap(b) is a and fp.main is b and fp.main_name == "champion"
    svc = PredictionService(feature_spec(X), FallbackPredictor(a, main_name="champion"))
    svc.cache.put("k", {"probability": 0.1})
    svc.swap_model(b)
    assert len(svc.cache) == 0 and svc.generation == 1


def test_swap_under_concurrent_traffic():
    import httpx

    from mlsys.deploy.service import create_app, feature_spec, serve_in_thread
    X, y = _stream(500, flip=500)
    models = [_model().fit(X, y if i % 2 == 0 else 1 - y) for i in range(6)]
    spec = feature_spec(X)
    body = {"a": float(X["a"].iloc[0]), "b": float(X["b"].iloc[0])}
    want = [float(m.predict_proba(X.iloc[:1])[0, 1]) for m in models]
    app = create_app(models[0], spec, main_name="champion")
    statuses, probs, stop = [], [], threading.Event()

    def client(url):
        with httpx.Client(base_url=url, timeout=30) as c:
            while not stop.is_set():
                r = c.post("/predict", json=body)
                statuses.append(r.status_code)
                if r.status_code == 200:
                    probs.append(r.json()["probability"])

    with serve_in_thread(app) as srv:
        threads = [threading.Thread(target=client, args=(srv.url,)) for _ in range(3)]
        for t in threads:
            t.start()
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            for i, m in enumerate(models[1:], start=1):
                app.state.service.swap_model(m)
                got = c.post("/predict", json=body).json()  # sent after the swap returned: the new model answers
                assert got["probability"] == pytest.approx(want[i], abs=1e-12) and got["model"] == "champion"
        stop.set()
        for t in threads:
            t.join()
    assert statuses and set(statuses) == {200}
    assert all(min(abs(p - w) for w in want) < 1e-12 for p in probs)  # every answer came wholly from one of the models


def test_one_class_batches_and_tiny_batches_do_not_break_the_loop(tmp_path):
    "A window whose held-out labels are one class (a quiet hour, size=2) is compared by log loss with both classes named."
    X, y = _stream(600, flip=600)
    store, r = _start(tmp_path, X.iloc[:300], y[:300])
    ones = np.ones(256, dtype=int)
    log = MicroBatchDeployment(store, "m", r, size=256).run(X.iloc[300:556], ones)
    assert len(log) == 1 and np.isfinite(log["challenger_score"]).all()
    log2 = MicroBatchDeployment(store, "m", r, size=2).run(X.iloc[300:310], y[300:310])
    assert len(log2) == 5


def test_a_failed_deploy_moves_the_alias_back(tmp_path):
    "The service still serves the old model when deploy() raises: the store's champion is rolled back and recorded."
    from mlsys.continual.triggers import history
    from mlsys.core import PipelineError
    X, y = _stream(3000, flip=1000)
    store, r = _start(tmp_path, X.iloc[:500], y[:500])

    def broken(model):
        raise RuntimeError("service unreachable")
    with pytest.raises(PipelineError, match="back on v1"):
        MicroBatchDeployment(store, "m", r, size=256, min_gain=-1e9).run(X.iloc[500:], y[500:], deploy=broken)
    assert store.get("m", "champion").version == 1
    assert history(store, "m")["event"].tolist()[-1] == "rollback"


def test_warm_does_not_cache_the_old_models_answers_across_a_swap():
    "A warm() running while the model is swapped must not refill the cache the swap cleared."
    import asyncio

    from mlsys.deploy.service import DelayedModel, FallbackPredictor, PredictionService, feature_spec
    X, y = _stream(200, flip=200)
    a, b = _model().fit(X, y), _model().fit(X, 1 - y)
    svc = PredictionService(feature_spec(X), FallbackPredictor(DelayedModel(a, delay=0.5), main_name="champion"))
    rows = {str(i): {"a": float(X["a"].iloc[i]), "b": float(X["b"].iloc[i])} for i in range(3)}

    class Features:  # the online store's one method warm() uses
        view = "v"

        def get(self, key):
            return rows.get(key)
    svc.features = Features()

    async def scenario():
        task = asyncio.ensure_future(svc.warm(list(rows)))
        await asyncio.sleep(0.2)
        svc.swap_model(b)
        return await task
    assert asyncio.run(scenario()) == 0
    assert len(svc.cache) == 0
