"""The continual-learning stage's pieces (`mlsys.pipeline_continual`) on three days of real flights: policies, the
table, a release through a real HTTP service (shadow then canary), and the update loop on a model store."""
import copy

import pytest

from mlsys.core import ConfigError, DataError, IntegrityError
from mlsys.pipeline import FEATURES, LABEL, ROUTE_RATE, build_features, make_model, time_split
from mlsys.pipeline_continual import continual_loop, continual_table, make_policies, release

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def days():
    from mlsys.datasets import load_flights, load_planes, load_weather
    from mlsys.deploy.service import feature_spec
    from mlsys.pipeline_deploy import backup_model
    flights = load_flights("2013-01-01", "2013-01-04")
    table = continual_table(build_features(flights, load_weather("2013-01-01", "2013-01-04"), load_planes()), flights)
    train, later = time_split(table, "2013-01-04")
    champion = make_model("hgb", params={"max_iter": 20}).fit(train[FEATURES], train[LABEL].astype(int))
    return table, flights, train, later, champion, feature_spec(train, FEATURES + [ROUTE_RATE], widen=0.5), backup_model(train)


def test_table_keys_and_label_times(days):
    table, flights, *_ = days
    assert table["flight_id"].is_unique and len(table) == len(flights)
    landed = table["label_time"].notna()
    assert (table.loc[landed, "label_time"] > table.loc[landed, "sched_dep"]).all()
    assert table.loc[~landed, LABEL].isna().all() or (~landed).sum() < len(table) * 0.05  # cancelled flights: no label
    with pytest.raises(IntegrityError, match="rows"):
        continual_table(table.iloc[1:], flights)


@pytest.mark.parametrize("names, modes, needle", [
    (["hourly"], ("stateless",), "unknown policy 'hourly'"), ("weekly", ("stateless",), "non-empty list"),
    ([], ("stateless",), "non-empty list"), (["weekly", "weekly"], ("stateless",), "repeat"),
    (["weekly"], ("sometimes",), "modes must be"), (["weekly"], "stateless", "modes must be"), ([3], ("stateless",), "non-empty list"),
])
def test_policy_names_are_checked(names, modes, needle):
    with pytest.raises(ConfigError, match=needle):
        make_policies(names, modes)


def test_policies_per_mode():
    got = make_policies(["never", "drift"], ["stateless", "stateful"])
    assert [(p.name, p.stateful) for p in got] == [("never", False), ("drift", False), ("never", True), ("drift", True)]


def _budgets():
    from mlsys.continual.rollout import Budgets
    # latency cannot be judged on a loaded CI machine (p99 of a few dozen requests beside another test worker): these tests
    # are about errors and accuracy, so the latency budget is out of reach
    return Budgets(min_requests=60, min_labels=40, max_latency_ratio=100.0, latency_slack_ms=10_000.0)


def test_a_flaky_challenger_is_rolled_back_and_the_shadow_never_answers(days, tmp_path):
    from mlsys.continual.rollout import FlakyModel
    _, _, _, later, champion, spec, backup = days
    # a planted fault is an object of this process (skops will not rebuild it elsewhere): the thread transport
    r = release(champion, FlakyModel(champion, rate=0.3, seed=1), spec, backup, later, tmp_path, steps=(0.5,),
                budgets=_budgets(), shadow_requests=120, slice_size=150, transport="thread")
    assert r["state"] == "rolled_back" and not r["passed"] and "error rate" in r["reason"]
    assert r["served_by_during_shadow"] == ["champion"]  # every answer of the shadow phase came from the champion
    assert r["shadow"]["rows"] + r["shadow"]["failed"] == 120
    assert (tmp_path / "shadow.jsonl").stat().st_size > 0


def test_a_replica_is_promoted_after_every_step(days, tmp_path):
    _, _, _, later, champion, spec, backup = days
    r = release(champion, copy.deepcopy(champion), spec, backup, later, tmp_path, steps=(0.25, 0.5), budgets=_budgets(),
                shadow_requests=100, slice_size=150)
    assert r["transport"] == "process" and r["state"] == "promoted" and r["passed"], r["reason"]
    assert r["shadow"]["agreement"] == 1.0 and r["served_by_during_shadow"] == ["champion"]
    assert list(r["canary"]["fraction"]) == [0.25, 0.5] and set(r["canary"]["decision"]) == {"pass"}
    assert "accuracy" in r["reason"]  # judged on labels: the per-row records came over GET /admin/canary/records
    assert (tmp_path / "service" / "service.json").is_file() and (tmp_path / "service" / "shadow.jsonl").stat().st_size > 0
    import json
    logged = [json.loads(line) for line in (tmp_path / "service" / "requests.jsonl").read_text().splitlines()]
    predicts = [rec for rec in logged if rec.get("route") == "/predict"]
    assert len(predicts) == r["requests"] and {p["status"] for p in predicts} == {200}  # the service's own request log


def _worse(champion, train):
    "A planted worse challenger that is still a plain HGB model (so the service process can load it): fitted on flipped labels."
    return make_model("hgb", params={"max_iter": 20}).fit(train[FEATURES], 1 - train[LABEL].astype(int))


def test_a_worse_challenger_is_rolled_back_by_the_canary_of_a_service_process(days, tmp_path):
    import psutil
    _, _, train, later, champion, spec, backup = days
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    r = release(champion, _worse(champion, train), spec, backup, later, tmp_path, steps=(0.5,), budgets=_budgets(),
                shadow_requests=120, slice_size=150)
    assert r["state"] == "rolled_back" and not r["passed"] and "accuracy" in r["reason"], r["reason"]
    assert r["served_by_during_shadow"] == ["champion"]
    assert r["shadow"]["agreement"] < 0.5  # the flipped model disagrees with the champion on most flights
    assert r["canary"]["challenger_accuracy"].iloc[-1] < r["canary"]["champion_accuracy"].iloc[-1]
    after = {p.pid for p in psutil.Process().children(recursive=True) if p.is_running() and p.status() != psutil.STATUS_ZOMBIE}
    assert after <= before  # the service process was stopped


def test_release_refuses_a_canary_its_traffic_cannot_finish(days, tmp_path):
    "A 1% first step on one day of flights holds too few labelled flights: refused before any service starts, naming the fix."
    from mlsys.continual.rollout import Budgets
    _, _, _, later, champion, spec, backup = days
    with pytest.raises(DataError, match=r"canary step 1% puts \d+ of the \d+ labelled flights.*release_days"):
        release(champion, champion, spec, backup, later, tmp_path, steps=(0.01, 0.5), budgets=Budgets(min_labels=50))
    assert not (tmp_path / "service").exists()


def test_a_release_rerun_into_its_folder_starts_new_logs(days, tmp_path):
    _, _, _, later, champion, spec, backup = days
    kw = dict(steps=(0.5,), budgets=_budgets(), shadow_requests=80, slice_size=150)
    first = release(champion, copy.deepcopy(champion), spec, backup, later, tmp_path, **kw)
    again = release(champion, copy.deepcopy(champion), spec, backup, later, tmp_path, **kw)
    assert first["shadow"]["rows"] == again["shadow"]["rows"] == 80  # not the first attempt's rows as well
    assert len((tmp_path / "service" / "requests.jsonl").read_text().splitlines()) >= again["requests"]
    assert (tmp_path / "service" / "server.log").is_file()  # the server's stderr stays with the release


def test_a_small_first_step_finishes_on_traffic_that_has_enough_labels(days, tmp_path):
    "Requests cycle through the flights, so a step whose share holds enough labelled flights always finishes."
    from mlsys.continual.rollout import Budgets
    _, _, _, later, champion, spec, backup = days
    r = release(champion, copy.deepcopy(champion), spec, backup, later, tmp_path, steps=(0.05, 0.5), slice_size=200,
                shadow_requests=50,
                budgets=Budgets(min_requests=50, min_labels=20, max_latency_ratio=100.0, latency_slack_ms=10_000.0))
    assert r["state"] in {"promoted", "rolled_back"} and list(r["canary"]["fraction"])[0] == 0.05, r["reason"]


def test_a_service_that_dies_is_named(days, tmp_path, monkeypatch):
    "The release's service process killed after the shadow phase: a ServiceUnavailableError with its exit, and no child left."
    import psutil

    import mlsys.pipeline_continual as pc
    from mlsys.data.service import ServiceUnavailableError
    _, _, _, later, champion, spec, backup = days
    real, calls = pc._in_thread, []

    def kill_after_first(coro):
        out = real(coro)
        calls.append(1)
        if len(calls) == 1:
            for p in psutil.Process().children(recursive=True):
                if "uvicorn" in " ".join(p.cmdline()):
                    p.kill()
                    p.wait(10)
        return out
    monkeypatch.setattr(pc, "_in_thread", kill_after_first)
    with pytest.raises(ServiceUnavailableError, match="exited with code"):
        release(champion, copy.deepcopy(champion), spec, backup, later, tmp_path, steps=(0.5,), budgets=_budgets(),
                shadow_requests=50)
    assert not [p for p in psutil.Process().children(recursive=True) if "uvicorn" in " ".join(p.cmdline())]


@pytest.mark.parametrize("kw, needle", [
    ({"budgets": {"min_labels": 5}}, "budgets must be"), ({"budgets": "strict"}, "budgets must be"),
    ({"shadow_requests": -1}, "shadow_requests"), ({"shadow_requests": 2.5}, "shadow_requests"),
    ({"shadow_requests": True}, "shadow_requests"), ({"slice_size": -5}, "slice_size"), ({"slice_size": 0}, "slice_size"),
])
def test_release_refuses_bad_arguments_before_starting_a_service(days, tmp_path, kw, needle):
    _, _, _, later, champion, spec, backup = days
    with pytest.raises(ConfigError, match=needle):
        release(champion, champion, spec, backup, later, tmp_path, **kw)
    assert not (tmp_path / "service").exists()


def test_release_refuses_an_unknown_transport(days, tmp_path):
    _, _, _, later, champion, spec, backup = days
    with pytest.raises(ConfigError, match="transport"):
        release(champion, champion, spec, backup, later, tmp_path, transport="carrier pigeon")


def test_release_needs_servable_rows(days, tmp_path):
    _, _, _, later, champion, spec, backup = days
    with pytest.raises(DataError, match="valid requests"):
        release(champion, champion, spec, backup, later.iloc[:1], tmp_path)


def test_the_loop_records_each_update_in_the_store(days, tmp_path):
    from mlsys.continual.triggers import history
    from mlsys.deploy.registry import ModelStore
    table, _, _, _, champion, spec, backup = days
    store = ModelStore(tmp_path / "store")
    store.set_alias("f", "champion", store.register("f", champion).version)
    with pytest.raises(ConfigError, match="max_challengers"):
        continual_loop(table, ["2013-01-04"], store, "f", spec, backup, tmp_path, max_challengers=-1)
    for bad in (0, -1, 1.5, True, "7"):
        with pytest.raises(ConfigError, match="release_days"):
            continual_loop(table, ["2013-01-04"], store, "f", spec, backup, tmp_path, release_days=bad)
    out = continual_loop(table, ["2013-01-04", "2013-01-05"], store, "f", spec, backup, tmp_path / "rel", window_days=3,
                         max_challengers=1, steps=(0.5,), budgets=_budgets(), max_iter=20)
    assert len(out) == 1 and out["version"].iloc[0] == 2  # one challenger, registered as v2
    events = history(store, "f")["event"].tolist()
    assert events[0] == "challenger" and events[-1] in {"promote", "archive"}
    assert store.get("f", "champion").version == (2 if out["promoted"].iloc[0] else 1)
    if not out["promoted"].iloc[0]:
        assert out["reason"].iloc[0]  # archived with its reason


def _traffic(url: str, bodies: dict, stop) -> None:
    "Live requests with stable ids until `stop` is set (what a canary judges)."
    import itertools

    import httpx
    with httpx.Client(base_url=url, timeout=30) as client:
        for k in itertools.cycle(list(bodies)):
            if stop.is_set():
                return
            client.post("/predict", json=bodies[k], headers={"X-Stable-Id": k})


@pytest.mark.parametrize("kind, code, word", [("replica", 0, "promoted"), ("flaky", 1, "rolled_back")])
def test_mlsys_canary_drives_a_running_service(days, kind, code, word, capsys):
    import threading

    from mlsys.cli import main
    from mlsys.continual.rollout import FlakyModel
    from mlsys.deploy.service import create_app, serve_in_thread
    from mlsys.pipeline_continual import request_bodies
    _, _, _, later, champion, spec, backup = days
    challenger = copy.deepcopy(champion) if kind == "replica" else FlakyModel(champion, rate=0.5, seed=3)
    app = create_app(champion, spec, backup=backup, budget=2.0, challenger=challenger)
    stop = threading.Event()
    with serve_in_thread(app) as srv:
        t = threading.Thread(target=_traffic, args=(srv.url, request_bodies(later, spec), stop), daemon=True)
        t.start()
        try:
            got = main(["canary", srv.url, "--steps", "0.5", "--min-requests", "40", "--interval", "0.2", "--timeout", "120",
                        "--max-latency-ratio", "100", "--latency-slack-ms", "10000"])  # see _budgets
        finally:
            stop.set()
            t.join(30)
        fraction = app.state.service.router.fraction
    out = capsys.readouterr().out
    assert got == code and out.strip().splitlines()[-1].startswith(word), out
    assert fraction == (1.0 if kind == "replica" else 0.0)  # promoted: all traffic to it; rolled back: none


def test_mlsys_canary_names_a_service_without_a_challenger(days, capsys):
    from mlsys.cli import main
    from mlsys.deploy.service import create_app, serve_in_thread
    _, _, _, _, champion, spec, backup = days
    with serve_in_thread(create_app(champion, spec, backup=backup)) as srv:
        assert main(["canary", srv.url]) == 2
    assert "has no /admin/rollout" in capsys.readouterr().err


def test_every_retrain_goes_through_when_max_challengers_is_none(days, tmp_path):
    "None (the stage's 0) takes every retrain day: here days with no flights, each recorded as not released."
    from mlsys.deploy.registry import ModelStore
    table, _, _, _, champion, spec, backup = days
    store = ModelStore(tmp_path / "store")
    store.set_alias("f", "champion", store.register("f", champion).version)
    empty = ["2013-03-01", "2013-03-02", "2013-03-03"]
    out = continual_loop(table, empty, store, "f", spec, backup, tmp_path / "rel", max_challengers=None)
    assert out["day"].tolist() == empty and not out["promoted"].any()
    assert len(continual_loop(table, empty, store, "f", spec, backup, tmp_path / "rel", max_challengers=2)) == 2
