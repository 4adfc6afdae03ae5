"mlsys.deploy.registry: concurrent writers, killed writers, hostile index and artifacts, bad names."
import json
import multiprocessing as mp
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from mlsys.core import ConfigError, DataError, IntegrityError
from mlsys.deploy.registry import ModelStore, UnknownModelError


def _model(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(60, 3))
    return LogisticRegression().fit(X, (X[:, 0] > 0).astype(int)), X


def _register_many(root, worker, n, q):
    store = ModelStore(root, lock_timeout=120)
    m, _ = _model(worker)
    got = [store.register("m", m, metrics={"w": worker, "i": i}).version for i in range(n)]
    q.put(got)


def test_concurrent_registrations_get_distinct_versions_and_none_is_lost(tmp_path):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_register_many, args=(str(tmp_path), w, 4, q)) for w in range(4)]
    for p in procs:
        p.start()
    got = [v for _ in procs for v in q.get(timeout=300)]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert sorted(got) == list(range(1, 17))
    store = ModelStore(tmp_path)
    table = store.versions("m")
    assert list(table.index) == list(range(1, 17))
    assert sorted(zip(table["w"], table["i"])) == sorted((w, i) for w in range(4) for i in range(4))
    for k in (1, 8, 16):
        store.load("m", k)


def _promote_many(root, worker, q):
    store = ModelStore(root, lock_timeout=120)
    for i in range(5):
        store.set_alias("m", f"a{worker}", 1 + (i % 2))
    q.put(worker)


def test_concurrent_alias_writers_keep_every_alias(tmp_path):
    store = ModelStore(tmp_path)
    m, _ = _model()
    store.register("m", m)
    store.register("m", m)
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_promote_many, args=(str(tmp_path), w, q)) for w in range(3)]
    for p in procs:
        p.start()
    assert sorted(q.get(timeout=300) for _ in procs) == [0, 1, 2]
    for p in procs:
        p.join(timeout=60)
    assert {a: store.get("m", a).version for a in ("a0", "a1", "a2")} == {"a0": 1, "a1": 1, "a2": 1}


KILLED_WRITER = """
import sys, numpy as np
from sklearn.linear_model import LogisticRegression
from mlsys.deploy.registry import ModelStore
X = np.random.default_rng(0).normal(size=(60, 3))
m = LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))
s = ModelStore(sys.argv[1])
print("ready", flush=True)
while True:
    s.register("m", m, metrics={"x": 1.0})
"""


def test_a_killed_writer_leaves_every_listed_version_loadable(tmp_path):
    rng = random.Random(0)
    ModelStore(tmp_path).register("m", _model()[0])  # a loaded machine may kill every writer before its first version
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(tmp_path)], stdout=subprocess.PIPE)
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.05, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    store = ModelStore(tmp_path)
    listed = list(store.versions("m").index)
    assert listed == sorted(set(listed))
    for k in listed:
        store.load("m", k)  # every version the index lists is whole and verified
    after = store.register("m", _model()[0]).version
    on_disk = [int(p.stem[1:]) for p in (tmp_path / "m").glob("v*.zip")]
    assert after == max(on_disk) and after > max(listed)  # a killed writer's number is never reused


def test_tampered_artifacts_and_index_are_refused(tmp_path):
    store = ModelStore(tmp_path)
    m, X = _model()
    v = store.register("m", m, example=X[:2])
    art = tmp_path / v.artifact
    data = art.read_bytes()
    art.write_bytes(data[:-3] + b"xyz")
    with pytest.raises(IntegrityError, match="changed since it was registered"):
        store.load("m", 1)
    art.unlink()
    with pytest.raises(IntegrityError, match="missing"):
        store.load("m", 1)
    idx = tmp_path / "registry.json"
    for bad in (b"{not json", b"[]", b'{"format": 2, "models": {}}', b'{"format": 1, "models": {"m": 3}}',
                b"\xff\xfe"):
        idx.write_bytes(bad)
        with pytest.raises(IntegrityError, match="registry.json"):
            store.versions("m")


def test_an_artifact_swapped_for_another_valid_one_is_refused(tmp_path):
    store = ModelStore(tmp_path)
    a, b = _model(0)[0], _model(1)[0]
    va, vb = store.register("m", a), store.register("m", b)
    (tmp_path / va.artifact).write_bytes((tmp_path / vb.artifact).read_bytes())  # a valid artifact, the wrong one
    with pytest.raises(IntegrityError, match="SHA-256"):
        store.load("m", va.version)


@pytest.mark.parametrize("name", ["", " m", "a/b", "../x", "m" * 65, 3, None, "é"])
def test_bad_model_names(tmp_path, name):
    with pytest.raises(ConfigError, match="model name"):
        ModelStore(tmp_path).register(name, _model()[0])


@pytest.mark.parametrize("alias", ["3", "", "a b", 7])
def test_bad_aliases(tmp_path, alias):
    store = ModelStore(tmp_path)
    store.register("m", _model()[0])
    with pytest.raises(ConfigError, match="alias"):
        store.set_alias("m", alias, 1)


@pytest.mark.parametrize("metrics", [{"a": float("nan")}, {"a": float("inf")}, {"a": "0.5"}, {"a": True}, [1]])
def test_bad_metrics(tmp_path, metrics):
    with pytest.raises((DataError, ConfigError), match="metric"):
        ModelStore(tmp_path).register("m", _model()[0], metrics=metrics)
    assert not (tmp_path / "m").exists() or not list((tmp_path / "m").glob("*.zip"))


def test_unknown_names_versions_and_aliases(tmp_path):
    store = ModelStore(tmp_path)
    with pytest.raises(UnknownModelError, match="no model 'm'"):
        store.get("m")
    store.register("m", _model()[0])
    with pytest.raises(UnknownModelError, match="no version 9"):
        store.load("m", 9)
    with pytest.raises(UnknownModelError, match="no alias"):
        store.get("m", "champion")
    with pytest.raises(ConfigError, match="version"):
        store.set_alias("m", "champion", "1")
    assert store.delete_alias("m", "champion") is False


def test_promotion_rules(tmp_path):
    store = ModelStore(tmp_path)
    m = _model()[0]
    for _ in range(3):
        store.register("m", m)
    assert store.promote("m", 1, 0.40).promoted
    with pytest.raises(ConfigError, match="champion_score"):
        store.promote("m", 2, 0.50)
    assert not store.promote("m", 2, 0.40, champion_score=0.40).promoted  # a tie keeps the champion
    assert not store.promote("m", 2, 0.41, champion_score=0.40, min_gain=0.02).promoted
    p = store.promote("m", 2, 0.45, champion_score=0.40, min_gain=0.02)
    assert p.promoted and p.champion_before == 1 and store.get("m", "champion").version == 2
    lower = store.promote("m", 3, 0.30, champion_score=0.35, higher_is_better=False)
    assert lower.promoted and store.get("m", "champion").aliases == ["champion"]
    with pytest.raises(DataError, match="finite"):
        store.promote("m", 1, float("nan"), champion_score=0.3)
    assert not store.promote("m", 3, 0.9, champion_score=0.1).promoted  # already the champion


def test_the_store_folder_must_be_a_folder(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ConfigError, match="not a folder"):
        ModelStore(f)
    with pytest.raises(ConfigError, match="lock_timeout"):
        ModelStore(tmp_path, lock_timeout=0)


def test_index_is_plain_json_a_person_can_read(tmp_path):
    store = ModelStore(tmp_path)
    store.register("m", _model()[0], metrics={"pr_auc": 0.5}, data={"features": "abc"}, tags={"run": "r1"})
    idx = json.loads((tmp_path / "registry.json").read_text())
    assert idx["models"]["m"]["versions"]["1"]["metrics"] == {"pr_auc": 0.5}
    assert os.path.basename(idx["models"]["m"]["versions"]["1"]["artifact"]) == "v1.zip"
