"`mlsys models`, `mlsys score` and `mlsys serve` on a real registered flights model, through the console script."
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from mlsys.cli import main
from mlsys.data.service import free_port
from mlsys.datasets import load_flights, load_planes, load_weather
from mlsys.deploy.registry import ModelStore
from mlsys.deploy.service import feature_spec, save_service
from mlsys.pipeline import FEATURES, LABEL, TRUSTED_MODEL_TYPES, build_features, make_model
from mlsys.pipeline_deploy import FLIGHT_BOUNDS, flight_keys

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    flights = load_flights(start="2013-01-01", end="2013-01-04")
    feats = build_features(flights, load_weather(), load_planes()).assign(flight_id=lambda d: flight_keys(d, flights))
    lab = feats[feats[LABEL].notna()]
    model = make_model("logreg").fit(lab[FEATURES], lab[LABEL].astype(int))
    store = ModelStore(root / "registry")
    v = store.register("flights-late", model, metrics={"pr_auc": 0.5}, trusted=TRUSTED_MODEL_TYPES, example=feats[FEATURES].head())
    store.promote("flights-late", v.version, 0.5)
    feats[["flight_id", *FEATURES]].to_parquet(root / "in.parquet")
    spec = feature_spec(feats[FEATURES], bounds=FLIGHT_BOUNDS, nullable=[f for f in FEATURES if f in FLIGHT_BOUNDS])
    save_service(root / "service", {"main": model}, spec)
    return root, feats, model


def test_models_and_score(registered, capsys):
    root, feats, model = registered
    assert main(["models", "--registry", str(root / "registry")]) == 0
    assert "champion" in capsys.readouterr().out
    assert main(["score", str(root / "in.parquet"), str(root / "out"), "--registry", str(root / "registry"), "--no-progress"]) == 0
    assert f"{len(feats):,} rows scored by flights-late v1" in capsys.readouterr().out
    scores = pd.read_parquet(root / "out")
    assert (scores["score"].to_numpy() == model.predict_proba(feats[FEATURES])[:, 1]).all()
    assert set(scores["model_version"]) == {"1"}
    # the output exists now: refused without --overwrite, named in the message
    assert main(["score", str(root / "in.parquet"), str(root / "out"), "--registry", str(root / "registry")]) == 2
    assert "out" in capsys.readouterr().err
    assert main(["score", str(root / "missing.parquet"), str(root / "o2"), "--registry", str(root / "registry")]) == 2
    assert "missing.parquet" in capsys.readouterr().err
    assert main(["score", str(root / "in.parquet"), str(root / "o3"), "--registry", str(root / "registry"), "--ref", "7"]) == 2
    assert "no version 7" in capsys.readouterr().err
    assert main(["score", str(root / "in.parquet"), str(root / "o4"), "--registry", str(root / "registry"),
                 "--key", "no_such_column"]) == 2
    assert "no_such_column" in capsys.readouterr().err


@pytest.mark.server
def test_serve_answers_then_stops_on_ctrl_c(registered):
    root, feats, model = registered
    port = free_port()
    proc = subprocess.Popen([str(BIN / "mlsys"), "serve", str(root / "service"), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        row = {k: (None if pd.isna(v) else v.item() if hasattr(v, "item") else v)
               for k, v in feats[FEATURES].astype(object).iloc[0].items()}
        r = httpx.post(f"{url}/predict", json=row, timeout=30)
        assert r.status_code == 200 and r.json()["probability"] == pytest.approx(model.predict_proba(feats[FEATURES].head(1))[0, 1])
        bad = httpx.post(f"{url}/predict", json={**row, "humid": 140.0}, timeout=30)
        assert bad.status_code == 422 and "humid" in bad.text
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert f"on http://127.0.0.1:{port}" in out and "Traceback" not in err


@pytest.mark.redis
def test_stream_predicts_events_from_redis(registered, redis_client, capsys):
    import uuid

    from mlsys.data.transport import RedisTransport
    from mlsys.deploy.streaming import flight_stream, replay_stream
    root, feats, model = registered
    flights = load_flights(start="2013-01-01", end="2013-01-04")
    day = feats[feats["local_date"] == "2013-01-03"]
    events = flight_stream(flights, start=day["sched_dep"].min(), end=day["sched_dep"].min() + pd.Timedelta("3h"))
    feats.to_parquet(root / "feats.parquet")
    prefix = f"mlsys-test-{uuid.uuid4().hex[:8]}"
    url = os.environ.get("MLSYS_REDIS_URL", "redis://127.0.0.1:6379/0")
    bus = RedisTransport(url, prefix=prefix)
    try:
        replay_stream(bus, "flights", events)
        code = main(["stream", "--features", str(root / "feats.parquet"), "--registry", str(root / "registry"),
                     "--redis", url, "--prefix", prefix, "--max-messages", str(len(events)), "--idle-timeout", "10"])
        out = capsys.readouterr().out
        assert code == 0, out
        assert "model_version=1" in out
        assert bus.length("predictions") == sum(e["kind"] == "scheduled" for e in events) > 0
        assert main(["stream", "--features", str(root / "missing.parquet"), "--registry", str(root / "registry"),
                     "--redis", url, "--prefix", prefix]) == 2
        assert "features file not found" in capsys.readouterr().err
    finally:
        for key in redis_client.scan_iter(f"{prefix}*"):
            redis_client.delete(key)
        bus.close()
