"""mlsys.modeling.tracking: the local store, buffered metrics, named errors, failures, kills, concurrency and the
PostgreSQL-backed tracking server."""
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mlflow")
# MLflow 3.17's SQLAlchemy store configures a loader SQLAlchemy 2.1 deprecates; that is MLflow's, not ours
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated")

from mlsys.core import ConfigError, DataError, IntegrityError, MlsysError
from mlsys.modeling.tracking import (MetricBuffer, Tracker, TrackingError, TrackingUnavailableError, UnknownRunError,
                                     code_snapshot, git_info, load_model, local_store, log_model, log_predictions,
                                     metric_history, run_table)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def tracker(tmp_path):
    return Tracker(tmp_path / "store", experiment=f"t-{uuid.uuid4().hex[:8]}")


def _history(tracker, run_id, key):
    return list(metric_history(tracker, run_id, key)[["step", "value"]].itertuples(index=False, name=None))


def test_import_mlsys_stays_light():
    code = "import sys, mlsys, mlsys.modeling.tracking, mlsys.modeling.versioning; print('mlflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_run_records_params_metrics_and_artifacts(tracker, tmp_path):
    params = {"model": {"lr": 0.1, "layers": [8, 4]}, "seed": 3, "note": "x", "flag": True, "none": None}
    with tracker.start_run("r", params=params, system_interval=0.05) as run:
        for step in range(2500):  # more than two batches
            run.log_metric("loss", 1.0 / (step + 1))
        run.log_metrics({"auc": 0.7, "n": 12})
        with run.timer("fit", n_samples=100):
            time.sleep(0.01)
        sample = log_predictions(run, np.arange(300) % 2, np.linspace(0, 1, 300), n=50)
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression().fit(np.arange(20.0).reshape(-1, 1), np.arange(20) >= 10)
        log_model(run, model)
    rec = tracker.get_run(run.run_id)
    assert rec.info.status == "FINISHED"
    assert rec.data.params == {"model.lr": "0.1", "model.layers": "[8, 4]", "seed": "3", "note": "x", "flag": "true",
                               "none": "null"}
    assert _history(tracker, run.run_id, "loss") == [(s, 1.0 / (s + 1)) for s in range(2500)]
    assert rec.data.metrics["auc"] == 0.7 and rec.data.metrics["speed/fit_samples_per_s"] > 0
    assert any(k.startswith("system/") for k in rec.data.metrics)
    assert len(sample) == 50 and sample["row"].is_monotonic_increasing
    local = Path(tracker.client.download_artifacts(run.run_id, "params.json", str(tmp_path)))
    assert json.loads(local.read_text()) == {"model.lr": 0.1, "model.layers": [8, 4], "seed": 3, "note": "x",
                                             "flag": True, "none": None}
    back = load_model(tracker, run.run_id)
    assert (back.predict_proba([[3.0], [15.0]]) == model.predict_proba([[3.0], [15.0]])).all()
    names = {f.path for f in tracker.client.list_artifacts(run.run_id, "code")}
    written = rec.data.tags["mlsys.code.snapshot"]
    assert {f"code/{n}" for n in written.split(", ") if not n.startswith("none")} <= names
    table = run_table(tracker, [run.run_id])
    assert table.loc[0, "params.model.lr"] == "0.1" and table.loc[0, "status"] == "FINISHED"
    assert not (Path.cwd() / "mlruns").exists()


def test_buffer_sends_every_value_once_in_order_despite_failures():
    "Randomized: batches of at most 1,000, in order, nothing lost or doubled when requests fail at random."
    rng = random.Random(0)
    for case in range(300):
        sent, fail_p = [], rng.choice([0.0, 0.2, 0.5])

        def send(batch, sent=sent, fail_p=fail_p):
            assert 1 <= len(batch) <= 1000
            if rng.random() < fail_p:
                raise TrackingUnavailableError("down")
            sent.extend(batch)

        buf = MetricBuffer(send, flush_every=rng.choice([1, 7, 500, 1000, 5000]), flush_seconds=1e9)
        n = rng.choice([0, 1, 999, 1000, 1001, 2500])
        for i in range(n):
            try:
                buf.add("k", float(i), i, timestamp_ms=0)
            except TrackingUnavailableError:
                pass
        for _ in range(100):
            try:
                buf.flush()
                break
            except TrackingUnavailableError:
                continue
        assert len(buf) == 0, case
        assert [m.step for m in sent] == list(range(n)), case
        assert buf.sent == n


@pytest.mark.parametrize("value, match", [
    (float("nan"), "only finite"), (float("inf"), "only finite"), (-np.inf, "only finite"), (np.float32("nan"), "only finite"),
    (True, "must be a number"), ("0.5", "must be a number"), (None, "must be a number"), ([1.0], "must be a number"),
])
def test_bad_metric_values_are_data_errors(tracker, value, match):
    with tracker.start_run(system_interval=None, log_code=False) as run:
        with pytest.raises(DataError, match=match):
            run.log_metric("loss", value, step=4)
        with pytest.raises(DataError, match=match):
            run.log_metrics({"ok": 1.0, "loss": value})
        assert len(run.buffer) == 0  # nothing of a refused call was queued


def test_bad_names_params_steps_and_ids(tracker, tmp_path):
    with tracker.start_run(system_interval=None, log_code=False) as run:
        for key in ["", "a/../b", "/abs", "x" * 251, "semi;colon", 3, None]:
            with pytest.raises(ConfigError):
                run.log_metric(key, 1.0)
        for step in [-1, 1.5, True, "3", 2**63]:
            with pytest.raises(DataError, match="step"):
                run.log_metric("ok", 1.0, step=step)
        run.log_params({"lr": 0.1})
        run.log_params({"lr": 0.1})  # the same value again is fine
        with pytest.raises(ConfigError, match="cannot change"):
            run.log_params({"lr": 0.2})
        for bad in [{"w": np.zeros(3)}, {"x": float("nan")}, {"x": "y" * 7000}, {"x": object()}]:
            with pytest.raises(DataError):
                run.log_params(bad)
        with pytest.raises(ConfigError):
            run.log_params(["lr", 0.1])
        with pytest.raises(DataError, match="does not exist"):
            run.log_artifact(tmp_path / "missing.txt")
        with pytest.raises(DataError, match="same length|one length"):
            log_predictions(run, [0, 1], [0.5])
        with pytest.raises(ConfigError):
            run.end("DONE")
    for bad in ["0" * 32, "f" * 32]:
        with pytest.raises(UnknownRunError, match="no run"):
            tracker.get_run(bad)
        with pytest.raises(UnknownRunError):
            run_table(tracker, [run.run_id, bad])
    for bad in [None, 3, "", "../x", "a b"]:
        with pytest.raises(DataError, match="run id"):
            tracker.get_run(bad)
    with pytest.raises(UnknownRunError):
        tracker.start_run(parent="0" * 32)
    with pytest.raises(DataError, match="has no metric"):
        metric_history(tracker, run.run_id, "nope")
    with pytest.raises(DataError, match="no model"):
        load_model(tracker, run.run_id)


def test_bad_stores_are_named(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("x")
    with pytest.raises(TrackingUnavailableError, match="not a folder"):
        Tracker(tmp_path / "file")
    with pytest.raises(ConfigError, match="deprecated"):
        Tracker("file:///tmp/mlruns")
    with pytest.raises(ConfigError, match="unsupported scheme"):
        Tracker("ftp://host/x")
    with pytest.raises(TrackingUnavailableError, match="existing folder"):
        Tracker(f"sqlite:///{tmp_path}/no/such/dir/mlflow.db")
    for bad in ["", None, 3]:
        with pytest.raises(ConfigError):
            Tracker(tmp_path / "s", experiment=bad)
    with pytest.raises(ConfigError):
        Tracker(tmp_path / "s", timeout=0)
    # a store file that is not a SQLite database
    bad = tmp_path / "garbage"
    bad.mkdir()
    (bad / "mlflow.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises((IntegrityError, TrackingError)):
        Tracker(bad)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_stores_fail_fast_with_a_named_error(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    with pytest.raises(TrackingUnavailableError, match="no tracking server answers"):
        Tracker(f"http://127.0.0.1:{_free_port()}")
    with pytest.raises(TrackingUnavailableError, match="cannot be reached") as e:
        Tracker("postgresql://mlsys:hunter2@127.0.0.1:1/mlsys", timeout=2)
    assert "hunter2" not in str(e.value)


def test_failed_run_is_marked_failed_and_keeps_its_steps(tracker):
    with pytest.raises(ZeroDivisionError):
        with tracker.start_run("fails", system_interval=None) as run:
            for s in range(30):
                run.log_metric("loss", 1.0, s)
            raise ZeroDivisionError("division by zero")
    rec = tracker.get_run(run.run_id)
    assert rec.info.status == "FAILED" and "ZeroDivisionError" in rec.data.tags["mlsys.error"]
    assert len(_history(tracker, run.run_id, "loss")) == 30
    with pytest.raises(KeyboardInterrupt):
        with tracker.start_run("interrupted", system_interval=None, log_code=False) as r2:
            raise KeyboardInterrupt
    assert tracker.get_run(r2.run_id).info.status == "KILLED"
    with tracker.start_run("next", system_interval=None, log_code=False) as ok:
        ok.log_metric("x", 1.0)
    assert tracker.get_run(ok.run_id).info.status == "FINISHED"


WRITER = textwrap.dedent("""
    import sys, time
    from mlsys.modeling.tracking import Tracker
    store, exp, name, batches, size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    tracker = Tracker(store, experiment=exp)
    print("ready", flush=True)
    with tracker.start_run(name, params={"writer": name}, system_interval=None, log_code=False, flush_every=size) as run:
        print("run", run.run_id, flush=True)
        for b in range(batches):
            for i in range(size):
                run.log_metric("loss", float(b * size + i), b * size + i)
    print("done", run.run_id, flush=True)
""")


def _writer(tmp_path, *args, env=None):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    return subprocess.Popen([sys.executable, str(script), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=tmp_path, env={**os.environ, **(env or {})})


def test_processes_create_and_log_to_one_local_store_at_once(tmp_path):
    "Three processes race to create the store (and, with an empty cache, its schema template) and log into it."
    store, exp = tmp_path / "shared", "concurrent"
    env = {"MLSYS_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    procs = [_writer(tmp_path, store, exp, f"w{k}", 12, 100, env=env) for k in range(3)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    tracker = Tracker(store, experiment=exp)
    table = run_table(tracker)
    assert sorted(table["name"]) == ["w0", "w1", "w2"] and set(table["status"]) == {"FINISHED"}
    for rid in table["run_id"]:
        assert _history(tracker, rid, "loss") == [(s, float(s)) for s in range(1200)]
    assert len(tracker.client.search_experiments(filter_string=f"name = '{exp}'")) == 1


def test_killed_writers_never_corrupt_the_store(tmp_path):
    "SIGKILL writers at random moments: the database passes SQLite's integrity check, and each batch is all or nothing."
    store, exp = tmp_path / "killed", "kills"
    local_store(store)
    rng = random.Random(1)
    killed = []
    for k in range(3):
        p = _writer(tmp_path, store, exp, f"k{k}", 1000, 50, env={"OMP_NUM_THREADS": "1"})
        assert p.stdout.readline().startswith("ready")
        line = p.stdout.readline()
        assert line.startswith("run"), p.stderr.read()[-2000:]
        time.sleep(rng.uniform(0.0, 1.5))
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=60)
        killed.append(line.split()[1])
    con = sqlite3.connect(store / "mlflow.db")
    assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    con.close()
    tracker = Tracker(store, experiment=exp)
    for rid in killed:
        rec = tracker.get_run(rid)
        assert rec.info.status == "RUNNING"  # nobody ended it; what it sent is intact
        n = len(tracker.client.get_metric_history(rid, "loss"))
        assert n % 50 == 0  # whole batches only
    with tracker.start_run("after", system_interval=None, log_code=False) as run:
        run.log_metric("x", 1.0)
    assert tracker.get_run(run.run_id).info.status == "FINISHED"


def _git(repo, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t"})


@pytest.mark.skipif(subprocess.run(["which", "git"], capture_output=True).returncode != 0, reason="git not installed")
def test_git_info_and_code_snapshot(tmp_path):
    import zipfile

    outside = git_info(tmp_path)
    assert outside.commit is None and outside.dirty is None and outside.reason.startswith("not a git checkout")
    assert git_info(tmp_path / "missing").reason.startswith("not a git checkout")
    repo = tmp_path / "repo"
    pkg = repo / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "a.py").write_text("x = 1\n")
    # outside a checkout the snapshot is the files themselves
    files = code_snapshot(tmp_path / "snap0", package=pkg)
    assert [p.name for p in files] == ["code.zip"] and zipfile.ZipFile(files[0]).namelist() == ["pkg/a.py"]
    _git(repo, "init", "-q", "-b", "main")
    empty = git_info(repo)
    assert empty.commit is None and "no commit" in empty.reason
    (repo / ".gitignore").write_text("*.log\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "one")
    clean = git_info(pkg)
    assert len(clean.commit) == 40 and clean.dirty is False and clean.branch == "main" and clean.changed == ()
    assert code_snapshot(tmp_path / "snap1", package=pkg, git=clean) == []  # the commit is the code
    (pkg / "a.py").write_text("x = 2\n")
    (pkg / "new module.py").write_text("y = 1\n")  # untracked: not dirty (as in git), but part of the snapshot
    (pkg / "debug.log").write_text("ignored\n")
    dirty = git_info(pkg)
    assert dirty.dirty is True and dirty.commit == clean.commit and dirty.changed == (".M pkg/a.py",)
    files = code_snapshot(tmp_path / "snap2", package=pkg, git=dirty)
    assert [p.name for p in files] == ["git.diff", "untracked.zip"]
    assert "+x = 2" in files[0].read_text()
    assert zipfile.ZipFile(files[1]).namelist() == ["pkg/new module.py"]
    _git(repo, "checkout", "-q", "--detach")
    assert git_info(pkg).branch is None


def test_run_records_the_git_state_in_the_background(tracker):
    with tracker.start_run("code", system_interval=None) as run:
        pass
    tags = tracker.get_run(run.run_id).data.tags
    here = git_info()
    assert tags.get("mlflow.source.git.commit") == here.commit
    assert tags["mlsys.git.dirty"] == {True: "true", False: "false", None: "unknown"}[here.dirty]
    assert tags["mlsys.code.snapshot"]
    assert "mlsys.code.error" not in tags


def test_load_model_refuses_a_tampered_file(tracker, tmp_path):
    from sklearn.linear_model import LogisticRegression

    with tracker.start_run(system_interval=None, log_code=False) as run:
        log_model(run, LogisticRegression().fit([[0.0], [1.0]], [0, 1]))
    art = Path(tracker.client.get_run(run.run_id).info.artifact_uri.removeprefix("file://")) / "model" / "model.skops"
    art.write_bytes(art.read_bytes() + b"\0")
    with pytest.raises(IntegrityError, match="checksum"):
        load_model(tracker, run.run_id)


# ---------------------------------------------------------------------------------------------------------------------
# the option: a tracking server with a PostgreSQL backend, started here against the real server that CI runs

SERVER_WRITER = textwrap.dedent("""
    import sys
    from mlsys.modeling.tracking import Tracker
    uri, exp, name = sys.argv[1], sys.argv[2], sys.argv[3]
    tracker = Tracker(uri, experiment=exp)
    with tracker.start_run(name, params={"writer": name}, system_interval=None, log_code=False, flush_every=200) as run:
        for s in range(600):
            run.log_metric("loss", float(s), s)
    print(run.run_id)
""")


@pytest.fixture
def postgres_database(postgres_url_or_skip):
    "A fresh database on the real server (the role may create databases), dropped afterwards."
    import psycopg2

    name = f"mlsys_test_{uuid.uuid4().hex[:12]}"
    con = psycopg2.connect(postgres_url_or_skip, connect_timeout=5)
    con.autocommit = True
    try:
        con.cursor().execute(f'CREATE DATABASE "{name}"')
    except psycopg2.Error as e:
        con.close()
        pytest.skip(f"the PostgreSQL role cannot create a test database: {e}")
    base = postgres_url_or_skip.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    try:
        con.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        con.close()


@pytest.mark.postgres
@pytest.mark.server
def test_tracking_server_with_postgres_backend(postgres_database, tmp_path, monkeypatch):
    from mlsys.modeling.tracking import _postgres_uri

    port, artifacts = _free_port(), tmp_path / "server-artifacts"
    artifacts.mkdir()
    mlflow_cli = Path(sys.executable).parent / "mlflow"
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen([str(mlflow_cli), "server", "--backend-store-uri", _postgres_uri(postgres_database),
                               "--artifacts-destination", str(artifacts), "--host", "127.0.0.1", "--port", str(port),
                               "--workers", "1"], stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
                              start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300  # migrations of a fresh database take a while on a loaded machine
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "mlflow server did not answer /health"
            time.sleep(0.5)
        tracker = Tracker(uri, experiment="pg")
        with tracker.start_run("main", params={"lr": 0.1}, system_interval=0.1) as run:
            for s in range(1500):
                run.log_metric("loss", 1.0 / (s + 1), s)
            log_predictions(run, [0, 1, 1], [0.2, 0.9, 0.4])
        assert tracker.get_run(run.run_id).info.status == "FINISHED"
        assert len(tracker.client.get_metric_history(run.run_id, "loss")) == 1500
        assert any(artifacts.rglob("sample.csv"))  # proxied to the server's artifact destination
        # two processes logging to the same server at once
        script = tmp_path / "server_writer.py"
        script.write_text(SERVER_WRITER)
        procs = [subprocess.Popen([sys.executable, str(script), uri, "pg", f"w{k}"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, cwd=tmp_path) for k in range(2)]
        ids = []
        for p in procs:
            out, err = p.communicate(timeout=600)
            assert p.returncode == 0, err[-3000:]
            ids.append(out.strip().splitlines()[-1])
        for rid in ids:
            assert [m.step for m in sorted(tracker.client.get_metric_history(rid, "loss"), key=lambda m: m.step)] == list(range(600))
        # the same database read directly, without the server
        direct = Tracker(postgres_database, experiment="pg")
        assert set(run_table(direct)["run_id"]) == {run.run_id, *ids}
        # the server goes away in the middle of a run: a named error, fast, with retries turned low
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
        late = tracker.start_run("orphan", system_interval=None, log_code=False)
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
        late.log_metric("x", 1.0)
        with pytest.raises(TrackingUnavailableError, match="cannot be reached"):
            late.flush()
        with pytest.raises(MlsysError):
            Tracker(uri, experiment="pg")
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
        log.close()


def test_a_store_with_another_schema_is_refused_by_name(tmp_path):
    "The schema head is cached per process (issue 12 item 4: ~12 ms per Tracker), but each store's own revision is still checked."
    from mlflow.store.db import utils as db_utils

    Tracker(tmp_path / "ok")  # installs the cache
    cached = db_utils._get_latest_schema_revision
    assert getattr(cached, "_mlsys_cached", False) and cached() == cached.__wrapped__()
    local_store(tmp_path / "old")
    con = sqlite3.connect(tmp_path / "old" / "mlflow.db")
    with con:
        con.execute("UPDATE alembic_version SET version_num = '0a8213491aaa'")  # an old revision of MLflow's history
    con.close()
    with pytest.raises(TrackingError, match="out-of-date database schema"):
        Tracker(tmp_path / "old")


def test_log_metrics_checks_all_then_queues_like_log_metric(tracker):
    "A batch with one bad value queues nothing; without a step each key continues its own count."
    with tracker.start_run("batch", log_code=False, system_interval=None) as run:
        run.log_metric("a", 5.0)
        with pytest.raises(DataError, match="'b'"):
            run.log_metrics({"a": 1.0, "b": float("nan")})
        assert len(run.buffer) == 1
        run.log_metrics({"a": 1.0, "b": 2.0})
        run.log_metrics({"a": 3.0, "b": 4.0}, step=np.int64(7))
        run.log_metrics({"a": 9.0})
    assert _history(tracker, run.run_id, "a") == [(0, 5.0), (1, 1.0), (7, 3.0), (8, 9.0)]
    assert _history(tracker, run.run_id, "b") == [(0, 2.0), (7, 4.0)]


def test_a_new_store_creates_the_experiment_and_a_second_tracker_finds_it(tmp_path):
    "A store created by this Tracker skips the lookup (issue 12 item 4); MLflow's own Default and a reopened store still work."
    first = Tracker(tmp_path / "s", experiment="exp")
    assert first._fresh and Tracker(tmp_path / "s", experiment="exp").experiment_id == first.experiment_id
    assert not Tracker(tmp_path / "s", experiment="exp")._fresh
    default = Tracker(tmp_path / "d", experiment="Default")  # exists in every new store: found after the create fails
    assert default._fresh and default.experiment_id == "0"


def test_artifacts_go_to_the_root_mlflow_reports(tracker, tmp_path):
    "Run writes through the artifact repository of the URI create_run returned (no get_run per run), or reads it once."
    from mlsys.modeling.tracking import Run

    with tracker.start_run("art", log_code=False, system_interval=None) as run:
        run.log_text("a\n", "notes/a.txt")
    again = Run(tracker, run.run_id, system_interval=None)  # an object for an existing run: the URI is read from the store
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b.txt").write_text("b\n")
    again.log_artifact(tmp_path / "d", "dir")
    listed = {f.path for f in tracker.client.list_artifacts(run.run_id, "notes")} | {
        f.path for f in tracker.client.list_artifacts(run.run_id, "dir")}
    assert listed == {"notes/a.txt", "dir/b.txt"}
    root = Path(tracker.get_run(run.run_id).info.artifact_uri.removeprefix("file://"))
    assert (root / "notes" / "a.txt").read_text() == "a\n" and (root / "dir" / "b.txt").read_text() == "b\n"
