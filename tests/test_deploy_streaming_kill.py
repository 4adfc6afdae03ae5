"""mlsys.deploy.streaming under SIGKILL: a real predictor process (run_stream on Redis Streams) killed at random moments
and restarted loses no event; every flight gets a prediction equal to the batch pipeline's, duplicates identified by key."""
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlsys.deploy.batch import score_frame
from mlsys.deploy.streaming import audit_predictions, flight_stream, read_topic, replay_stream

ROOT = Path(__file__).resolve().parents[1]
WORKER = r"""
import json, sys
from mlsys.deploy.streaming import run_stream
model, feats, url, prefix, checkpoint, consumer, idle = sys.argv[1:]
out = run_stream(model, feats, url, prefix=prefix, checkpoint=checkpoint, consumer=consumer, batch_size=5,
                 claim_idle_ms=300, max_deliveries=20, idle_timeout=float(idle))
print(json.dumps(out), flush=True)
"""


def redis_url() -> str:
    return os.environ.get("MLSYS_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    "A small model as an artifact, the batch features as Parquet, and a stream of a real morning of flights."
    from mlsys.data.service import flight_ids
    from mlsys.datasets import load_flights, load_planes, load_weather
    from mlsys.deploy.serialize import save_model
    from mlsys.pipeline import FEATURES, LABEL, build_features, make_model, time_split

    d = tmp_path_factory.mktemp("deployed")
    flights = load_flights("2013-07-08", "2013-07-10")
    feats = build_features(flights, load_weather("2013-07-08", "2013-07-10"), load_planes())
    feats["flight_id"] = flight_ids(flights).to_numpy()
    train, _ = time_split(feats, "2013-07-10")
    model = make_model(params={"max_iter": 15}).fit(train[FEATURES], train[LABEL].astype(int))
    day = feats[feats["local_date"] == "2013-07-10"]
    events = flight_stream(flights, start=day["sched_dep"].min(), end=day["sched_dep"].max() + pd.Timedelta("1s"))[:700]
    feats.to_parquet(d / "feats.parquet")
    return {"model": model, "artifact": save_model(model, d / "model.zip"), "parquet": d / "feats.parquet", "feats": feats,
            "events": events, "features": FEATURES}


def start(deployed, prefix, checkpoint, consumer, idle, log):
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", WORKER, str(deployed["artifact"]), str(deployed["parquet"]), redis_url(),
                             prefix, checkpoint, consumer, str(idle)], stdout=subprocess.PIPE, stderr=log, text=True, env=env)


@pytest.mark.redis
@pytest.mark.parametrize("where, kills", [("file", 3), ("redis", 2)])
def test_a_predictor_process_killed_at_random_moments_loses_nothing(redis_client, tmp_path, deployed, where, kills):
    from mlsys.data.transport import RedisTransport

    prefix = f"test-kill-{uuid.uuid4().hex[:10]}"
    bus = RedisTransport(redis_url(), prefix=prefix, client=redis_client)
    checkpoint = str(tmp_path / "state.json") if where == "file" else "redis"
    events = deployed["events"]
    requests = sum(e["kind"] == "scheduled" for e in events)
    rng = random.Random(f"{where}-{kills}")
    out_key = bus.key("predictions")
    log = open(tmp_path / "workers.log", "w")
    try:
        bus.queue_consumer("flights", "predictor", "setup")  # the group exists before anything is published
        replay_stream(bus, "flights", events)
        moments = []
        for k in range(kills):  # killed once it has published a random number of predictions
            threshold = redis_client.xlen(out_key) + rng.randint(1, 40)
            p = start(deployed, prefix, checkpoint, f"victim{k}", 120, log)
            deadline = time.monotonic() + 240
            while redis_client.xlen(out_key) < threshold and p.poll() is None and time.monotonic() < deadline:
                time.sleep(0.002)
            assert p.poll() is None, f"the predictor exited early: {(tmp_path / 'workers.log').read_text()[-3000:]}"
            os.kill(p.pid, signal.SIGKILL)
            p.wait(timeout=60)
            moments.append(redis_client.xlen(out_key))
        p = start(deployed, prefix, checkpoint, "victim-early", 120, log)  # and once at a random moment of its start
        time.sleep(rng.uniform(0.3, 3.0))
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=60)
        last = start(deployed, prefix, checkpoint, "survivor", 3, log)
        out, _ = last.communicate(timeout=300)
        assert last.returncode == 0, (tmp_path / "workers.log").read_text()[-3000:]
        stats = json.loads(out.strip().splitlines()[-1])
        preds, rejected = read_topic(bus, "predictions"), read_topic(bus, "flights-rejected")
        audit = audit_predictions(events, preds, rejected)
        print(f"\n{where} checkpoint, killed after {moments} predictions and once while starting: {audit}; "
              f"{int((preds['deliveries'] > 1).sum())} predictions from redelivered messages; survivor: {stats}")
        assert (audit["missing"], audit["rejected"], audit["unexpected_keys"], len(rejected)) == (0, 0, 0, 0), audit
        assert audit["predicted"] == requests and audit["duplicates_agree"], audit
        assert audit["duplicate_messages"] <= 5 * (kills + 1)  # at most one batch in flight per kill
        assert stats["messages"] > 0  # the survivor recovered and carried on
        assert len(bus.queue_consumer("flights", "predictor", "survivor").pending()) == 0
        batch = deployed["feats"].set_index("flight_id").loc[preds["key"]]
        for c in ["origin_dep_delay_2h", "origin_deps_2h"]:
            np.testing.assert_array_equal(preds[c].to_numpy(float), batch[c].to_numpy(float), err_msg=c)
        scores = score_frame(deployed["model"], batch.reset_index(), ["flight_id"], deployed["features"], "m", "v")["score"]
        np.testing.assert_array_equal(preds["score"].to_numpy(), scores.to_numpy())
    finally:
        log.close()
        keys = list(redis_client.scan_iter(f"{prefix}:*"))
        if keys:
            redis_client.delete(*keys)
