"""continual.rollout + the service's shadow and canary: shadow answers never reach a client (a raising or hanging shadow
changes no response), sticky monotone assignment, a worse challenger rolled back early with the champion alias
untouched, an equal one promoted after every step, bad configurations refused."""
import asyncio
import time

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
pytest.importorskip("prometheus_client")

import httpx
from sklearn.linear_model import LogisticRegression

from mlsys.continual.rollout import (Budgets, CanaryRelease, FlakyModel, HttpCanary, check_steps, compare_shadow,
                                     judge_step, read_shadow_log)
from mlsys.continual.triggers import champion_chain, history
from mlsys.core import ConfigError, IntegrityError
from mlsys.deploy.registry import ModelStore, UnknownModelError
from mlsys.deploy.service import (CanaryRouter, DelayedModel, app_from_folder, create_app, feature_spec, save_service,
                                  serve_in_thread, sticky_bucket)


@pytest.fixture(scope="module")
def toy():
    "Two numeric features, a label that follows them, a fitted model, one with the label inverted, the spec, rows and labels."
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.uniform(0, 1, 3000), "b": rng.uniform(0, 1, 3000)})
    y = ((X["a"] + 0.5 * X["b"] + rng.normal(0, 0.15, len(X))) > 0.75).astype(int)
    good = LogisticRegression().fit(X, y)
    flipped = LogisticRegression().fit(X, 1 - y)
    spec = feature_spec(X, widen=0.5)
    rows = X.to_dict("records")
    ids = [f"u{i}" for i in range(len(X))]
    return good, flipped, spec, rows, ids, dict(zip(ids, y.tolist()))


def app_of(toy, **kw):
    good, _, spec, *_ = toy
    return create_app(good, spec, backup=good, main_name="champ", backup_name="spare", budget=5.0, **kw)


def labels_for(truth, ids):
    ids = list(dict.fromkeys(ids))
    return pd.DataFrame({"prediction_id": ids, "label": [truth[k] for k in ids],
                         "label_time": pd.Timestamp.now(tz="UTC") + pd.Timedelta("1s")})


def exchange(url, toy, n=25):
    "The same sequence of requests (good and bad, keyed and not, single and batch): (status, body bytes) of each."
    *_, rows, ids, _ = toy
    out = []
    with httpx.Client(base_url=url, timeout=60) as c:
        for i in range(n):
            out.append(c.post("/predict", json=rows[i], headers={"X-Stable-Id": ids[i]}))
            out.append(c.post("/predict", json=rows[i]))
        out.append(c.post("/predict/batch", json={"flights": rows[:7]}, headers={"X-Stable-Id": "batch-1"}))
        out.append(c.post("/predict", json={**rows[0], "a": "far"}))
        out.append(c.post("/predict", json={"a": 0.5}))
    return [(r.status_code, r.content) for r in out]


@pytest.mark.parametrize("kind", ["flipped", "raising", "hanging"])
def test_shadow_never_changes_a_response(toy, tmp_path, kind):
    good, flipped, spec, *_ = toy
    with serve_in_thread(app_of(toy)) as srv:
        plain = exchange(srv.url, toy)
    shadow = {"flipped": flipped, "raising": DelayedModel(good, error=RuntimeError("shadow broke")),
              "hanging": DelayedModel(good, delay=3.0)}[kind]
    app = app_of(toy, shadow=shadow, shadow_log=str(tmp_path / "s.jsonl"), shadow_queue=2)
    with serve_in_thread(app) as srv:
        shadowed = exchange(srv.url, toy)
        summary = httpx.get(f"{srv.url}/admin/rollout", timeout=30).json()["shadow"]
    assert shadowed == plain  # statuses and body bytes, request by request
    assert all(b'"model":"champ"' in body for s, body in plain if s == 200)
    assert summary["offered"] + summary["dropped"] == 51  # every answered request was handed over (25 + 25 + 1 batch)
    if kind == "raising":
        assert summary["failed"] > 0 and summary["scored"] == 0 and summary["errors"] > 0
        _, failures = read_shadow_log(tmp_path / "s.jsonl")
        assert len(failures) == summary["errors"] and failures["error"].str.contains("shadow broke").all()
    if kind == "hanging":  # the queue of 2 filled while the shadow slept: later samples dropped, none waited for
        assert summary["dropped"] >= 45 and summary["scored"] <= 6


def test_shadow_log_and_comparison(toy, tmp_path):
    good, flipped, spec, rows, ids, truth = toy
    app = app_of(toy, shadow=flipped, shadow_name="flip", shadow_log=str(tmp_path / "s.jsonl"))
    with serve_in_thread(app) as srv, httpx.Client(base_url=srv.url, timeout=60) as c:
        for i in range(40):
            assert c.post("/predict", json=rows[i], headers={"X-Stable-Id": ids[i]}).status_code == 200
        assert c.post("/predict/batch", json={"flights": rows[40:43]}, headers={"X-Stable-Id": "b7"}).status_code == 200
    scored, failures = read_shadow_log(tmp_path / "s.jsonl")
    assert len(scored) == 43 and len(failures) == 0
    assert list(scored["id"]) == ids[:40] + ["b7:0", "b7:1", "b7:2"]
    X = pd.DataFrame(rows[:40])
    np.testing.assert_allclose(scored["served"][:40], good.predict_proba(X)[:, 1], rtol=1e-12)
    np.testing.assert_allclose(scored["shadow"][:40], flipped.predict_proba(X)[:, 1], rtol=1e-12)
    labels = labels_for({**truth, "b7:0": 1, "b7:1": 0, "b7:2": 1}, scored["id"])
    rep = compare_shadow(scored, labels)
    assert rep["rows"] == rep["labelled"] == 43 and rep["agreement"] < 0.2
    assert rep["served_accuracy"] > 0.65 > 0.35 > rep["shadow_accuracy"]


def test_shadow_summary_never_counts_a_batch_half_way(toy):
    "While a batch's log is written, the summary shows the batch either whole or not at all: agreement stays in [0, 1]."
    from mlsys.deploy.service import ShadowScorer
    good, flipped, spec, rows, ids, _ = toy
    app = app_of(toy, shadow=good, shadow_name="same")
    shadow = app.state.service.shadow
    during = []
    shadow._write = lambda records: during.append(shadow.summary())  # read the summary at the moment the log is written
    with serve_in_thread(app) as srv, httpx.Client(base_url=srv.url, timeout=60) as c:
        for i in range(30):
            assert c.post("/predict", json=rows[i], headers={"X-Stable-Id": ids[i]}).status_code == 200
    assert during and all(d["agreement"] is None or 0 <= d["agreement"] <= 1 for d in during), during
    assert shadow.summary()["agreement"] == 1.0 and isinstance(shadow, ShadowScorer)


def test_a_sampled_shadow_scores_exactly_the_sampled_stable_ids(toy, tmp_path):
    from mlsys.deploy.service import sticky_bucket
    good, flipped, spec, rows, ids, _ = toy
    folder = save_service(tmp_path / "svc", {"champ": good, "spare": good, "flip": flipped}, spec, main_name="champ",
                          backup_name="spare", shadow_name="flip", shadow_sample=0.3, shadow_log="s.jsonl")
    app = app_from_folder(folder)
    with serve_in_thread(app) as srv, httpx.Client(base_url=srv.url, timeout=60) as c:
        for i in range(200):
            assert c.post("/predict", json=rows[i], headers={"X-Stable-Id": ids[i]}).status_code == 200
        for _ in range(50):
            time.sleep(0.05)
            if (sm := c.get("/admin/rollout").json()["shadow"])["scored"] == sm["offered"]:
                break
    want = [k for k in ids[:200] if sticky_bucket(k) < 0.3]
    scored, _ = read_shadow_log(folder / "s.jsonl")
    assert scored["id"].tolist() == want and 40 < len(want) < 80
    assert sm["sample"] == 0.3 and sm["sampled_out"] == 200 - len(want) and sm["offered"] == len(want)
    for bad, needle in [(0, "scores nothing"), (1.5, "shadow sample"), ("half", "shadow sample")]:
        with pytest.raises(ConfigError, match=needle):
            app_of(toy, shadow=flipped, shadow_sample=bad)
    with pytest.raises(ConfigError, match="needs a shadow model"):
        app_of(toy, shadow_sample=0.5)


def test_sticky_and_monotone_assignment():
    ids = [f"user-{i}" for i in range(20_000)]
    router, canary = CanaryRouter(), {}
    for f in (0.01, 0.05, 0.25, 0.5, 1.0):
        router.set_fraction(f)
        canary[f] = {k for k in ids if router.side(k) == "challenger"}
        assert all(router.side(k) == "challenger" for k in list(canary[f])[:500])  # the same id, the same side
        assert abs(len(canary[f]) - f * len(ids)) < 4 * np.sqrt(len(ids) * f * (1 - f)) + 1
    fs = sorted(canary)
    assert all(canary[a] <= canary[b] for a, b in zip(fs, fs[1:]))
    assert router.side(None) == "champion" and sticky_bucket("x") == sticky_bucket("x")
    assert CanaryRouter(0.0).side("user-1") == "champion"


def drive_in_process(service, toy, n=400, seed=0):
    "A callable sending `n` keyed requests at a time straight to the service (no HTTP), returning the labels so far."
    *_, rows, ids, truth = toy
    rng, seen = np.random.default_rng(seed), []

    def drive():
        picks = rng.integers(0, len(ids), n)

        async def go():
            await asyncio.gather(*(service.predict_rows([rows[i]], ids[i]) for i in picks))
        asyncio.run(go())
        seen.extend(ids[i] for i in picks)
        return labels_for(truth, seen)
    return drive


def store_with(tmp_path, champion, challenger):
    store = ModelStore(tmp_path / "store")
    v1 = store.register("m", champion).version
    store.set_alias("m", "champion", v1)
    v2 = store.register("m", challenger).version
    store.set_alias("m", "challenger", v2)
    return store, v1, v2


BUDGETS = Budgets(min_requests=100, min_labels=60, latency_slack_ms=200.0)
STEPS = (0.05, 0.25, 0.5)


@pytest.mark.parametrize("worse", ["errors", "accuracy"])
def test_a_worse_challenger_is_rolled_back_early(toy, tmp_path, worse):
    good, flipped, *_ = toy
    served = FlakyModel(good, rate=0.2, seed=3) if worse == "errors" else flipped
    store, v1, v2 = store_with(tmp_path, good, flipped)
    app = app_of(toy, challenger=served, challenger_name="chall")
    service = app.state.service
    release = CanaryRelease(service.router, store, "m", steps=STEPS, budgets=BUDGETS)
    assert release.run(drive_in_process(service, toy)) == "rolled_back"
    assert release.step == 0 and service.router.fraction == 0.0  # at the first step, and traffic back to the champion
    assert store.get("m", "champion").version == v1
    assert ("error rate" if worse == "errors" else "accuracy") in release.reason
    h = history(store, "m")
    assert list(h["event"]) == ["canary_rollback"] and h["version"].iloc[0] == v2 and release.reason in h["reason"].iloc[0]
    assert service.router.side("u1") == "champion"


def test_an_equal_challenger_is_promoted_after_every_step(toy, tmp_path):
    good, *_ = toy
    store, v1, v2 = store_with(tmp_path, good, LogisticRegression().fit(*_fit_data(toy)))
    app = app_of(toy, challenger=LogisticRegression().fit(*_fit_data(toy)), challenger_name="chall")
    service = app.state.service
    release = CanaryRelease(service.router, store, "m", steps=STEPS, budgets=BUDGETS)
    assert release.run(drive_in_process(service, toy, seed=1)) == "promoted"
    assert list(release.report()["fraction"]) == list(STEPS) and set(release.report()["decision"]) == {"pass"}
    assert store.get("m", "champion").version == v2 and service.router.fraction == 1.0
    assert champion_chain(store, "m") == [v2]
    with pytest.raises(ConfigError, match="already promoted"):
        release.check()


def _fit_data(toy):
    *_, rows, ids, truth = toy
    return pd.DataFrame(rows), np.array([truth[k] for k in ids])


def test_bad_configurations_are_refused(toy, tmp_path):
    good, flipped, spec, *_ = toy
    for steps, what in [([], "non-empty"), ([0.05, 0.01], "must increase"), ([0.1, 1.5], "steps[1]=1.5"),
                        ([0.0, 0.5], "steps[0]=0.0"), ([0.5, 1.0], "steps[1]=1.0"), ([0.1, float("nan")], "steps[1]=nan"),
                        ("0.1", "sequence"), ([True], "steps[0]=True")]:
        with pytest.raises(ConfigError, match=what.replace("[", r"\[").replace("]", r"\]")):
            check_steps(steps)
    for k in ("max_error_increase", "max_latency_ratio", "latency_slack_ms", "max_metric_drop"):
        for bad in (0, -1, float("inf"), "1"):
            with pytest.raises(ConfigError, match=k):
                Budgets(**{k: bad})
    for k in ("min_requests", "min_labels"):
        with pytest.raises(ConfigError, match=k):
            Budgets(**{k: 0})
    with pytest.raises(ConfigError, match="metric"):
        Budgets(metric="auc")
    store = ModelStore(tmp_path / "store")
    store.set_alias("m", "champion", store.register("m", good).version)
    router = CanaryRouter()
    with pytest.raises(UnknownModelError, match="challenger"):
        CanaryRelease(router, store, "m")
    with pytest.raises(UnknownModelError, match="'nope'"):
        CanaryRelease(router, store, "nope")
    with pytest.raises(ConfigError, match="router"):
        CanaryRelease(object())
    with pytest.raises(ConfigError, match="canary_fraction"):
        app_of(toy, canary_fraction=0.1)  # no challenger
    with pytest.raises(ConfigError, match="canary fraction"):
        app_of(toy, challenger=flipped, canary_fraction=1.1)
    with pytest.raises(ConfigError, match="challenger_name"):
        app_of(toy, challenger=flipped, challenger_name="champ")
    with pytest.raises(ConfigError, match="shadow_name"):
        app_of(toy, shadow=flipped, shadow_name="spare")
    with pytest.raises(ConfigError, match="canary fraction"):
        router.set_fraction(-0.1)
    release = CanaryRelease(router)
    with pytest.raises(ConfigError, match="start"):
        release.check()


def test_admin_routes(toy):
    _, flipped, *_ = toy
    with serve_in_thread(app_of(toy, challenger=flipped, challenger_name="chall")) as srv, \
            httpx.Client(base_url=srv.url, timeout=30) as c:
        for body in ({"fraction": 1.5}, {"fraction": -0.1}, {"fraction": "x"}, {"fraction": True}, {}, {"fraction": 0.1, "x": 1}):
            r = c.put("/admin/canary", json=body)
            assert r.status_code == 422 and r.json()["error"] == "invalid_request", (body, r.text)
        assert c.post("/predict", json={"a": 0.5, "b": 0.5}, headers={"X-Stable-Id": "bad id"}).status_code == 422
        r = c.put("/admin/canary", json={"fraction": 1})
        assert r.status_code == 200 and r.json()["fraction"] == 1.0 and r.json()["step"] == 1
        assert c.post("/predict", json={"a": 0.5, "b": 0.5}, headers={"X-Stable-Id": "k"}).json()["model"] == "chall"
        assert c.post("/predict", json={"a": 0.5, "b": 0.5}).json()["model"] == "champ"  # no id: the champion
        st = c.get("/admin/rollout").json()
        assert st["canary"]["challenger"]["requests"] == 1 and st["shadow"] is None
    with serve_in_thread(app_of(toy)) as srv:  # no challenger, no shadow: no admin routes, the plain API
        assert httpx.put(f"{srv.url}/admin/canary", json={"fraction": 0.1}).status_code == 404
        paths = httpx.get(f"{srv.url}/openapi.json").json()["paths"]
        assert set(paths) == {"/predict", "/predict/batch", "/health", "/ready", "/metrics"}
        assert "parameters" not in paths["/predict"]["post"]


def test_canary_records_route_gives_the_routers_rows(toy):
    "GET /admin/canary/records: what a canary judged on labels reads from a service in another process, step by step."
    good, flipped, *_, rows, ids, truth = toy
    app = app_of(toy, challenger=flipped, challenger_name="chall", canary_fraction=0.5)
    router = app.state.service.router
    with serve_in_thread(app) as srv, httpx.Client(base_url=srv.url, timeout=30) as c:
        for i in range(120):
            assert c.post("/predict", json=rows[i], headers={"X-Stable-Id": ids[i]}).status_code == 200
        remote = HttpCanary(srv.url)
        for side in ("champion", "challenger"):
            got, want = remote.records(side), router.records(side)
            assert len(got) > 0 and got["prediction_id"].tolist() == want["prediction_id"].tolist()
            np.testing.assert_array_equal(got["score"].to_numpy(), want["score"].to_numpy())  # floats survive JSON exactly
            assert (got["timestamp"] - want["timestamp"]).abs().max() < pd.Timedelta("1ms")
            assert list(got.columns) == list(want.columns) and str(got["timestamp"].dtype) == str(want["timestamp"].dtype)
        assert set(remote.records("challenger")["model"]) == {"chall"}
        for bad in ({"side": "both"}, {}, {"side": ""}):
            r = c.get("/admin/canary/records", params=bad)
            assert r.status_code == 422 and r.json()["error"] == "invalid_request", (bad, r.text)
        with pytest.raises(ConfigError, match="side"):
            remote.records("both")
        remote.set_fraction(0.25)  # a new step: each side's rows start again
        assert len(remote.records("challenger")) == 0 and c.get("/admin/canary/records?side=champion").json()["step"] == 1
        # judged on labels through HTTP: the flipped challenger loses on accuracy
        release = CanaryRelease(remote, steps=(0.5,), budgets=Budgets(min_requests=40, min_labels=30, latency_slack_ms=500.0))
        seen = []

        def drive():
            for i in np.random.default_rng(len(seen)).integers(0, len(ids), 150):
                assert c.post("/predict", json=rows[i], headers={"X-Stable-Id": ids[i]}).status_code == 200
                seen.append(ids[i])
            return labels_for(truth, seen)
        assert release.run(drive) == "rolled_back" and "accuracy" in release.reason, release.reason
    with serve_in_thread(app_of(toy, shadow=flipped)) as srv:  # a shadow but no challenger: no canary to read
        assert httpx.get(f"{srv.url}/admin/canary/records?side=champion").status_code == 404
        with pytest.raises(ConfigError, match="without a challenger"):
            HttpCanary(srv.url).records("champion")


def test_canary_records_are_read_incrementally_and_of_the_step_judged(toy):
    good, flipped, *_, rows, ids, truth = toy
    app = app_of(toy, challenger=flipped, challenger_name="chall", canary_fraction=0.5)
    router = app.state.service.router
    with serve_in_thread(app) as srv, httpx.Client(base_url=srv.url, timeout=30) as c:
        remote = HttpCanary(srv.url)
        remote.status()
        for batch in (range(0, 60), range(60, 130)):
            for i in batch:
                assert c.post("/predict", json=rows[i], headers={"X-Stable-Id": ids[i]}).status_code == 200
            for side in ("champion", "challenger"):
                assert remote.records(side)["prediction_id"].tolist() == router.records(side)["prediction_id"].tolist()
        n = router.sides["champion"].total
        page = c.get("/admin/canary/records", params={"side": "champion", "offset": n - 5}).json()
        assert page["first"] == n - 5 and page["total"] == n and len(page["records"]) == 5
        assert c.get("/admin/canary/records", params={"side": "champion", "offset": n + 10}).json()["records"] == []
        for bad in ({"side": "champion", "offset": -1}, {"side": "champion", "offset": "x"}):
            assert c.get("/admin/canary/records", params=bad).status_code == 422
        c.put("/admin/canary", json={"fraction": 0.25})  # another client moves the canary behind this one's back
        with pytest.raises(ConfigError, match="another client moved it"):
            remote.records("challenger")
    with serve_in_thread(app_of(toy, shadow=flipped)) as srv:  # a shadow alone: the 404 names only the routes it has
        routes = httpx.get(f"{srv.url}/admin/canary/records?side=champion").json()["detail"].split("the routes are ")[1]
        assert routes == "/predict, /predict/batch, /health, /ready, /metrics, /admin/rollout", routes


def test_http_canary_rolls_back_without_labels(toy):
    good, *_, rows, ids, _ = toy
    app = app_of(toy, challenger=FlakyModel(good, rate=0.5, seed=5), challenger_name="chall")
    with serve_in_thread(app) as srv:
        release = CanaryRelease(HttpCanary(srv.url), steps=(0.5, 0.75), budgets=Budgets(min_requests=40, latency_slack_ms=500.0),
                                use_labels=False)

        def drive():
            with httpx.Client(base_url=srv.url, timeout=60) as c:
                for i in np.random.default_rng(len(release.history)).integers(0, len(ids), 100):
                    assert c.post("/predict", json=rows[i], headers={"X-Stable-Id": ids[i]}).status_code == 200
        assert release.run(drive) == "rolled_back"
        assert httpx.get(f"{srv.url}/admin/rollout").json()["canary"]["fraction"] == 0.0


def test_a_saved_service_carries_its_shadow_and_challenger(toy, tmp_path):
    good, flipped, spec, rows, *_ = toy
    folder = save_service(tmp_path / "svc", {"champ": good, "spare": good, "flip": flipped, "chall": flipped}, spec,
                          main_name="champ", backup_name="spare", shadow_name="flip", challenger_name="chall",
                          canary_fraction=0.5)
    service = app_from_folder(folder).state.service
    assert service.shadow.name == "flip" and service.router.fraction == 0.5 and service.challenger.main_name == "chall"
    np.testing.assert_allclose(service.shadow.model.predict_proba(pd.DataFrame(rows[:5])), flipped.predict_proba(pd.DataFrame(rows[:5])))
    with pytest.raises(ConfigError, match="flip"):
        save_service(tmp_path / "svc2", {"champ": good}, spec, main_name="champ", shadow_name="flip")
    data = bytearray((folder / "models.skops").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "models.skops").write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="checksum"):
        app_from_folder(folder)


def test_judge_step_waits_then_judges():
    side = {"requests": 50, "errors": 0, "error_rate": 0.0, "p50_ms": 5.0, "p99_ms": 9.0}
    status = {"fraction": 0.05, "step": 1, "champion": {**side, "requests": 1000}, "challenger": side}
    assert judge_step(status, Budgets(min_requests=100))[0] == "wait"
    status["challenger"] = {**side, "requests": 200}
    assert judge_step(status, Budgets(min_requests=100))[0] == "pass"  # no metrics asked for: errors and latency only
    nolabels = {"champion": (None, 0, None), "challenger": (None, 0, None)}
    assert judge_step(status, Budgets(min_requests=100), nolabels)[0] == "wait"
    status["challenger"] = {**side, "requests": 200, "p99_ms": 40.0}
    d, why, _ = judge_step(status, Budgets(min_requests=100))
    assert d == "breach" and "p99 40.0 ms" in why


def test_start_service_names_a_bad_log_path(toy, tmp_path):
    "`start_service(log=)` takes a file path; anything else is a DataError naming it, before any process starts."
    from mlsys.core import DataError
    from mlsys.deploy.service import start_service
    good, _, spec, *_ = toy
    folder = save_service(tmp_path / "svc", {"champ": good}, spec, main_name="champ")
    for bad in (3, "", "a\x00b"):
        with pytest.raises(DataError, match="server log"):
            start_service(folder, log=bad)
