"""deploy.service against its own OpenAPI spec: schemathesis, all checks, on the service in its own uvicorn process."""
import json
import subprocess
import sys

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("schemathesis")
pytest.importorskip("prometheus_client")

import httpx

from mlsys.deploy.service import OnlineFeatures, feature_spec, save_service, start_service
from mlsys.features.online import SQLiteOnlineStore

MAX_EXAMPLES = 60  # per operation and phase: a few hundred requests over 11 operations on a loaded 2-core machine


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from mlsys.data.service import flight_ids
    from mlsys.datasets import load_flights, load_planes, load_weather
    from mlsys.pipeline import FEATURES, LABEL, ROUTE_RATE, build_features, fit_baseline_models, make_model, time_split

    flights = load_flights("2013-01-01", "2013-01-04")
    feats = build_features(flights, load_weather("2013-01-01", "2013-01-04"), load_planes())
    feats["flight_id"] = flight_ids(flights).to_numpy()
    train, test = time_split(feats, "2013-01-04")
    model = make_model(params={"max_iter": 20}).fit(train[FEATURES], train[LABEL].astype(int))
    spec = feature_spec(train, FEATURES + [ROUTE_RATE], widen=0.5,
                        bounds={"sched_hour": (0, 23), "sched_dow": (0, 6), "route_n": (0, None), "carrier_n": (0, None)})
    tmp = tmp_path_factory.mktemp("svc")
    store = {"kind": "sqlite", "path": str(tmp / "online.sqlite")}
    OnlineFeatures(SQLiteOnlineStore(store["path"]), spec).publish(test)
    # with a shadow and a canary challenger: every route, the admin ones (GET /admin/rollout, PUT /admin/canary,
    # GET /admin/canary/records) included
    folder = save_service(tmp / "svc", {"hgb": model, "route_rate": fit_baseline_models(train)["route_rate"],
                                        "hgb_shadow": model, "hgb_canary": model}, spec,
                          store=store, main_name="hgb", backup_name="route_rate", bench_endpoints=True,
                          example_key=str(test["flight_id"].iloc[0]), shadow_name="hgb_shadow", challenger_name="hgb_canary",
                          canary_fraction=0.5)
    s = start_service(folder)
    yield s
    s.stop()


@pytest.mark.server
def test_schemathesis_all_checks_find_no_violation(server, tmp_path):
    report = tmp_path / "schemathesis.json"
    cmd = [sys.executable, "-m", "schemathesis.cli", "run", f"{server.url}/openapi.json",
           "--checks", "all", "--max-examples", str(MAX_EXAMPLES), "--seed", "2013", "--workers", "1",
           "--continue-on-failure", "--generation-database", "none", "--request-timeout", "20", "--no-color",
           "--report", "json", "--report-json-path", str(report)]
    run = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=900, check=False)
    (tmp_path / "stdout.txt").write_text(run.stdout)
    assert report.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(report.read_text())
    failures = [(f["code"], f["title"], f["operations"]) for f in result["failures"]]
    assert run.returncode == 0 and failures == [] and result["errors"] == [], (failures, run.stdout[-8000:])
    assert result["operations"]["tested"] == result["operations"]["total"] == 12
    assert result["test_cases"]["generated"] >= 2 * MAX_EXAMPLES and result["test_cases"]["errored"] == 0
    # the server kept serving through every bad request, and none of them was a server error
    assert server.alive()
    assert httpx.get(f"{server.url}/ready", timeout=30).status_code == 200
    metrics = httpx.get(f"{server.url}/metrics", timeout=30).text
    assert 'status="5' not in metrics, [l for l in metrics.splitlines() if 'status="5' in l]
    assert "Traceback" not in server.log_path.read_text(errors="replace")
