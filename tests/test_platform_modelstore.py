"""The model store on MLflow's registry (mlsys.platform.modelstore): the book's table, aliases, search, checksums kept
in the registry, named errors, and two processes registering at once."""
import hashlib
import inspect
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mlsys.core import ConfigError, DataError, IntegrityError, file_sha256
from mlsys.deploy.registry import UnknownModelError
from mlsys.deploy.serialize import save_model
from mlsys.modeling.tracking import git_info
from test_modeling_tracking import postgres_database  # noqa: F401  (the fixture: a fresh database on the real server)

from mlsys.platform.modelstore import (ENTRY_FILE, TAG_ENTRY_SHA, TAG_SHA, DanglingAliasError, MlflowModelStore,
                                       data_pointer, dependencies)

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated")  # MLflow 3.17's import, not a call


def featurize(df: pd.DataFrame) -> pd.DataFrame:
    "A toy featurizer whose source the store records."
    return df[["a", "b"]] * 2


def predict(model, X):
    "A toy predict function."
    return model.predict_proba(X)[:, 1]


def toy(seed: int, n: int = 60):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 2)), columns=["a", "b"])
    y = (X["a"] + 0.3 * rng.normal(size=n) > 0).astype(int)
    return X, y, LogisticRegression().fit(X, y)


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    "A store holding two versions of one model: v1 champion, v2 challenger."
    root = tmp_path_factory.mktemp("modelstore")
    X, y, m1 = toy(0)
    _, _, m2 = toy(1)
    table = X.assign(t=pd.date_range("2013-01-01", periods=len(X), freq="h", tz="UTC"))
    table.to_parquet(root / "features.parquet")
    ptr = data_pointer(root / "features.parquet", "features", time_column="t")
    store = MlflowModelStore(root / "store")
    kw = dict(task="toy-task", owner="tester", data=[ptr], featurize=featurize, predict=predict, notebook="tests/x.ipynb")
    v1 = store.register("toy", m1, metrics={"auc": 0.9, "loss": 0.3}, alias="champion", log_code=False, **kw)
    v2 = store.register("toy", m2, metrics={"auc": 0.7, "loss": 0.5}, alias="challenger", log_code=False, **kw)
    return store, X, m1, m2, v1, v2, ptr, root


def test_every_field_of_the_books_table_is_recorded(filled):
    store, X, m1, _, v1, _, ptr, root = filled
    rec = store.record("toy", "champion")
    assert {"model_definition", "parameters", "code", "dependencies", "data", "generation", "experiment", "tags"} <= set(rec)
    assert rec["model_definition"]["class"] == "sklearn.linear_model._logistic.LogisticRegression"
    assert rec["model_definition"]["hyperparameters"]["C"] == m1.C
    assert rec["parameters"]["sha256"] == v1.sha256 == file_sha256(store.artifact_path("toy", 1))
    src = inspect.getsource(featurize)
    assert rec["code"]["featurize"]["sha256"] == hashlib.sha256(src.encode()).hexdigest()
    assert store.artifact_path("toy", 1, "code/featurize.py").read_text() == src
    assert rec["code"]["predict"]["object"].endswith(".predict")
    assert rec["dependencies"]["python"] == sys.version.split()[0]
    assert rec["dependencies"]["packages"]["scikit-learn"]
    assert rec["data"][0]["sha256"] == file_sha256(root / "features.parquet") and rec["data"][0]["rows"] == len(X)
    assert rec["data"][0]["date_from"].startswith("2013-01-01 00:00") and rec["data"][0]["date_to"].startswith("2013-01-03 11:00")
    assert rec["generation"]["commit"] in (git_info().commit, None) or len(rec["generation"]["commit"]) == 40  # HEAD may move meanwhile
    assert rec["generation"]["dirty"] in (True, False, None) and rec["generation"]["notebook"] == "tests/x.ipynb"
    assert rec["experiment"]["metrics"] == {"auc": 0.9, "loss": 0.3} and rec["experiment"]["run_id"] == v1.run_id
    assert rec["tags"] == {"task": "toy-task", "owner": "tester"}
    run = store.client.get_run(v1.run_id)
    assert run.data.metrics == {"auc": 0.9, "loss": 0.3} and run.data.params["C"] == "1.0"
    assert list(store.book_table("toy", 1).index)[0] == "model definition"


def test_load_returns_the_same_model(filled):
    store, X, m1, m2, *_ = filled
    np.testing.assert_array_equal(store.load("toy", "champion").predict_proba(X), m1.predict_proba(X))
    np.testing.assert_array_equal(store.load("toy").predict_proba(X), m2.predict_proba(X))  # None: the latest


def test_lock_files_are_hashed_and_their_absence_said(tmp_path):
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements" / "core.txt").write_text("numpy==2\n")
    (tmp_path / "uv.lock").write_text("x\n")
    got = dependencies(tmp_path)["lock_files"]
    assert got == {"requirements/core.txt": file_sha256(tmp_path / "requirements/core.txt"),
                   "uv.lock": file_sha256(tmp_path / "uv.lock")}
    empty = dependencies(tmp_path / "requirements")
    assert empty["lock_files"] == {} and "no lock file" in empty["lock_note"]


def test_the_expected_hash_lives_in_the_registry_not_beside_the_file(filled):
    store, X, m1, *_ = filled
    mv = store.client.get_model_version("toy", "1")
    assert mv.tags[TAG_SHA] == file_sha256(store.artifact_path("toy", 1))
    assert mv.tags[TAG_ENTRY_SHA] == file_sha256(store.artifact_path("toy", 1, ENTRY_FILE))


@pytest.mark.parametrize("rel", ["model/model.zip", ENTRY_FILE, "code/featurize.py"])
def test_a_tampered_artifact_is_refused(filled, rel):
    store, X, m1, *_ = filled
    path = store.artifact_path("toy", 1, rel)
    original = path.read_bytes()
    try:
        if rel == "model/model.zip":  # a forged but self-consistent archive: its own manifest checks out
            save_model(LogisticRegression().fit(X, 1 - (X["a"] > 0).astype(int)), path)
            with pytest.raises(IntegrityError, match="SHA-256 in the registry"):
                store.load("toy", 1)
        else:
            path.write_bytes(original.replace(b"tester", b"mallory").replace(b"* 2", b"* 3"))
            with pytest.raises(IntegrityError, match="changed after registration|SHA-256 in the registry"):
                store.record("toy", 1)
    finally:
        path.write_bytes(original)
    assert store.record("toy", 1)["tags"]["owner"] == "tester"


def test_a_missing_artifact_is_refused(filled):
    store, *_ = filled
    path = store.artifact_path("toy", 2)
    moved = path.with_suffix(".away")
    path.rename(moved)
    try:
        with pytest.raises(IntegrityError, match="missing from the store"):
            store.load("toy", 2)
    finally:
        moved.rename(path)


def test_promote_and_rollback_move_aliases(filled):
    store = filled[0]
    for seed in range(3):
        store.register("m", toy(seed)[2], task="t", owner="o", metrics={"auc": 0.5 + seed / 10}, log_code=False)
    store.set_alias("m", "champion", 1)
    store.set_alias("m", "challenger", 2)
    assert store.promote("m").aliases == ["champion"]
    with pytest.raises(UnknownModelError, match="no alias 'challenger'"):
        store.get("m", "challenger")
    store.set_alias("m", "champion", 3)
    assert [store.rollback("m").version, store.rollback("m").version] == [2, 1]
    with pytest.raises(UnknownModelError, match="nothing to roll back"):
        store.rollback("m")
    assert store.delete_alias("m", "champion") and not store.delete_alias("m", "champion")


def test_aliases_that_name_no_version_are_named_errors(filled):
    store = filled[0]
    for seed in range(2):
        store.register("n", toy(seed)[2], task="t", owner="o", metrics={}, log_code=False)
    with pytest.raises(UnknownModelError, match="has no version 99"):
        store.set_alias("n", "champion", 99)
    with pytest.raises(UnknownModelError, match="no model 'nope'"):
        store.get("nope", "champion")
    with pytest.raises(UnknownModelError, match="no alias 'production'"):
        store.load("n", "production")
    store.set_alias("n", "champion", 1)
    store.set_alias("n", "champion", 2)
    store.client.delete_model_version("n", "1")  # the version the alias named before is gone
    with pytest.raises(DanglingAliasError, match="named v1 before"):
        store.rollback("n")
    with pytest.raises(ConfigError):
        store.set_alias("n", "123", 2)  # an alias that reads as a version number


def test_search_by_tag_and_metric(filled):
    store, *_ = filled
    got = store.search(task="toy-task", metric="auc", min_value=0.8)
    assert got[["name", "version", "aliases", "auc"]].to_dict("records") == [{"name": "toy", "version": 1, "aliases": "champion", "auc": 0.9}]
    low = store.search(owner="tester", metric="loss", higher_is_better=False)
    assert list(low["version"]) == [1, 2]
    assert list(store.search(task="toy-task", metric="auc", max_value=0.8)["version"]) == [2]
    assert store.search(task="other").empty
    with pytest.raises(DataError, match="no version found records metric 'recall'"):
        store.search(task="toy-task", metric="recall")
    with pytest.raises(ConfigError, match="metric name"):
        store.search(metric="a uc?")
    with pytest.raises(ConfigError, match="without quotes"):
        store.search(task="x' OR '1'='1")


def test_bad_input_is_named(filled, tmp_path):
    store, X, m1, *_ = filled
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="exists and is not a folder"):
        MlflowModelStore(tmp_path / "file")
    with pytest.raises(DataError, match="finite"):
        store.register("toy", m1, task="t", owner="o", metrics={"auc": float("inf")})
    with pytest.raises(ConfigError, match="model name"):
        store.register("bad name!", m1, task="t", owner="o", metrics={})
    with pytest.raises(ConfigError, match="DataPointer"):
        store.register("toy", m1, task="t", owner="o", metrics={}, data=["features.parquet"])
    with pytest.raises(DataError, match="is not a file"):
        data_pointer(tmp_path / "missing.parquet")
    with pytest.raises(DataError, match="needs a .parquet or .csv"):
        data_pointer(tmp_path / "file", time_column="t")
    assert len(store.search(name="toy")) == 2  # nothing was registered by the refused calls


def test_no_deprecation_warning_and_no_stages(filled):
    store, X, m1, *_ = filled
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        v = store.register("warn", m1, task="w", owner="o", metrics={"auc": 0.5}, alias="champion", log_code=False)
        store.set_alias("warn", "challenger", v.version)
        store.promote("warn")
        store.load("warn", "champion")
        store.search(task="w", metric="auc")
    assert not [w for w in caught if issubclass(w.category, (DeprecationWarning, FutureWarning))], [str(w.message) for w in caught]
    assert store.client.get_model_version("warn", str(v.version)).current_stage in (None, "None")


def test_a_moved_store_loads_from_its_own_folder(filled, tmp_path):
    store, X, m1, *_ = filled
    shutil.copytree(store.root, tmp_path / "copy")
    copy = MlflowModelStore(tmp_path / "copy")
    assert copy.artifact_path("toy", 1).is_relative_to(tmp_path / "copy")
    np.testing.assert_array_equal(copy.load("toy", "champion").predict_proba(X), m1.predict_proba(X))
    copy.artifact_path("toy", 1).write_bytes(b"tampered")
    with pytest.raises(IntegrityError):
        copy.load("toy", 1)
    store.load("toy", 1)  # the original is untouched


def _worker(root: str, seed: int, barrier, out) -> None:
    "Register three versions of the shared model once both processes are ready."
    store = MlflowModelStore(root)
    X = np.random.default_rng(seed).normal(size=(40, 2))
    model = LogisticRegression(C=seed + 1.0).fit(X, (X[:, 0] > 0).astype(int))
    barrier.wait(timeout=120)
    out.put([store.register("shared", model, task="race", owner=str(seed), metrics={"auc": 0.5}, log_code=False).version
             for _ in range(3)])


def _race(root: Path, worker) -> list:
    "Run `worker(root, i, barrier, out)` in two forked processes at once; what each put on `out`."
    import multiprocessing as mp
    ctx = mp.get_context("fork")  # the children share the parent's imports: seconds instead of a fresh interpreter each
    MlflowModelStore(root)  # the store exists; both workers then race on the registry
    barrier, out = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=worker, args=(str(root), i, barrier, out)) for i in range(2)]
    for p in procs:
        p.start()
    got = [out.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0, 0]
    return got


def test_two_processes_register_at_once(tmp_path):
    got = _race(tmp_path / "s", _worker)
    assert sorted(v for g in got for v in g) == [1, 2, 3, 4, 5, 6]
    store = MlflowModelStore(tmp_path / "s")
    owners = {int(r.version): r.owner for r in store.search(task="race").itertuples()}
    assert sorted(owners) == [1, 2, 3, 4, 5, 6] and set(owners.values()) == {"0", "1"}
    for v in owners:  # every version loads the model its own process registered
        assert store.load("shared", v).C == int(owners[v]) + 1


def test_register_once_finds_the_version_it_registered(filled):
    store, X, m1, *_ = filled
    key = {"run": "r-1", "mlsys.digest": "abc123"}
    a = store.register_once("once", m1, key, task="t", owner="o", metrics={"auc": 0.6}, log_code=False)
    b = store.register_once("once", m1, key, alias="champion", task="t", owner="o", metrics={"auc": 0.6}, log_code=False)
    c = store.register_once("once", m1, {**key, "run": "r-2"}, task="t", owner="o", metrics={"auc": 0.6}, log_code=False)
    assert (a.version, b.version, c.version) == (1, 1, 2) and b.aliases == ["champion"]
    with pytest.raises(ConfigError, match="at least one tag"):
        store.register_once("once", m1, {}, task="t", owner="o", metrics={})


def test_a_copied_store_registers_into_its_own_folder(filled, tmp_path):
    store, X, m1, *_ = filled
    shutil.copytree(store.root, tmp_path / "copy")
    copy = MlflowModelStore(tmp_path / "copy")
    v = copy.register("copied", m1, task="t", owner="o", metrics={}, log_code=False)
    assert copy.artifact_path("copied", v.version).is_relative_to(tmp_path / "copy")
    np.testing.assert_array_equal(copy.load("copied", v.version).predict_proba(X), m1.predict_proba(X))
    with pytest.raises(UnknownModelError):
        store.get("copied")


@pytest.mark.postgres
def test_a_postgres_registry_checks_the_same_hashes(postgres_database, tmp_path):  # noqa: F811
    store = MlflowModelStore(postgres_database, artifact_location=tmp_path / "artifacts")
    X, _, m = toy(0)
    store.register("pg", m, task="pg", owner="o", metrics={"auc": 0.7}, alias="champion", featurize=featurize, log_code=False)
    assert store.root is None and store.tracker.kind == "database"
    np.testing.assert_array_equal(store.load("pg", "champion").predict_proba(X), m.predict_proba(X))
    assert store.record("pg", 1)["code"]["featurize"]["object"].endswith(".featurize")
    assert store.search(task="pg", metric="auc")["version"].tolist() == [1]
    with pytest.raises(ConfigError, match="not a local store"):
        store.artifact_path("pg", 1)
    next((tmp_path / "artifacts").rglob("model.zip")).write_bytes(b"tampered")  # the artifact root, not the database
    with pytest.raises(IntegrityError, match="SHA-256 in the registry"):
        store.load("pg", 1)


def _once_worker(root: str, seed: int, barrier, out) -> None:
    "Call register_once with the same key as the other process, at the same moment."
    store = MlflowModelStore(root)
    X = np.random.default_rng(0).normal(size=(40, 2))
    model = LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))
    barrier.wait(timeout=120)
    out.put(store.register_once("m", model, {"run": "r1", "digest": "abc"}, alias="champion", task="race", owner="o",
                                metrics={"auc": 0.5}, log_code=False).version)


def test_two_processes_register_once_get_one_version(tmp_path):
    got = _race(tmp_path / "s", _once_worker)
    assert got == [1, 1]  # both processes get the one version; the second found it under the lock
    store = MlflowModelStore(tmp_path / "s")
    assert store.search(name="m")["version"].tolist() == [1] and store.get("m", "champion").version == 1


def test_a_rewritten_registry_tag_with_the_model_is_refused(filled):
    store, X, m1, *_ = filled
    path, before = store.artifact_path("toy", 1), store.get("toy", 1).sha256
    original = path.read_bytes()
    try:  # the attacker replaces the model and rewrites its tag in mlflow.db, beside it; entry.json still disagrees
        save_model(LogisticRegression().fit(X, 1 - (X["a"] > 0).astype(int)), path)
        store.client.set_model_version_tag("toy", "1", TAG_SHA, file_sha256(path))
        with pytest.raises(IntegrityError, match="that entry.json recorded"):
            store.load("toy", 1)
        with pytest.raises(IntegrityError, match="that entry.json recorded"):
            store.book_table("toy", 1)  # the table no longer reports the original hash as if all were well
        with pytest.raises(IntegrityError, match="is not the expected"):
            store.load("toy", 1, expected_sha256=before)
    finally:
        store.client.set_model_version_tag("toy", "1", TAG_SHA, before)
        path.write_bytes(original)
    np.testing.assert_array_equal(store.load("toy", 1, expected_sha256=before).predict_proba(X), m1.predict_proba(X))


def test_load_checks_an_expected_hash(filled):
    store, X, m1, m2, v1, v2, *_ = filled
    with pytest.raises(IntegrityError, match="is not the expected"):
        store.load("toy", 1, expected_sha256=v2.sha256)
    for bad in ("abc", v1.sha256.upper(), 7):
        with pytest.raises(ConfigError, match="64 lowercase hex"):
            store.load("toy", 1, expected_sha256=bad)
    np.testing.assert_array_equal(store.load("toy", "champion", expected_sha256=v1.sha256).predict_proba(X),
                                  m1.predict_proba(X))
