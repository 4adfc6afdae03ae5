"""Feature store under concurrency, for real: several processes append to one offline view, read it while others
write, get SIGKILLed mid-write, and share one SQLite online store; an online store whose Redis is down."""
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from mlsys.features.online import RedisOnlineStore, SQLiteOnlineStore, StoreBusyError, StoreUnavailableError
from mlsys.features.store import FeatureStore, FeatureView, OfflineStore

TIMEOUT = 240  # seconds for a child process on a loaded 2-core machine
BASE = pd.Timestamp("2013-06-01", tz="UTC")

# A child appends `n` batches of `batch` rows for entity w<wid> (rows are (w, seq, j), value 10*seq + j), starting when
# the parent writes a line to its stdin, and reports its successes and its errors by type as JSON.
APPENDER = r"""
import collections, json, sys
import pandas as pd
from mlsys.features.store import FeatureView, OfflineStore
path, wid, n, batch, max_parts, retain = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
store = OfflineStore(path, max_parts=max_parts, retain=retain)
view = FeatureView("v", ("w",), ("seq", "x"), "ts")
base = pd.Timestamp("2013-06-01", tz="UTC")
print("ready", flush=True)
sys.stdin.readline()
ok, errors = 0, collections.Counter()
for i in range(n):
    rows = pd.DataFrame({"w": f"w{wid}", "seq": i, "x": [10.0 * i + j for j in range(batch)],
                         "ts": [base + pd.Timedelta(seconds=batch * i + j) for j in range(batch)]})
    try:
        store.write(view, rows, mode="append")
        ok += 1
        if i == 0:
            print("committed", flush=True)
    except Exception as e:
        errors[f"{type(e).__module__}.{type(e).__name__}: {e}"[:300]] += 1
print(json.dumps({"ok": ok, "errors": errors}), flush=True)
"""

# A child reads the view over and over while others write: each read must show, for every writer, complete batches
# 0..k-1 (never a partial batch, never a gap), and an as-of query must return the last value of a complete batch.
READER = r"""
import collections, json, sys, time
import numpy as np, pandas as pd
from mlsys.features.store import FeatureView, OfflineStore
path, writers, n, batch, retain = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
store = OfflineStore(path, retain=retain)
view = FeatureView("v", ("w",), ("seq", "x"), "ts")
store.catalog.register(view)
ent = pd.DataFrame({"w": [f"w{i}" for i in range(writers)], "event_time": pd.Timestamp("2014-01-01", tz="UTC")})
print("ready", flush=True)
sys.stdin.readline()
reads, bad, errors, it, deadline = 0, [], collections.Counter(), 0, time.monotonic() + 200
while time.monotonic() < deadline:
    it += 1
    try:
        if it % 3 == 0:
            got = store.get_historical_features(ent, ["v:x"], engine="duckdb" if it % 2 else "numpy")
            last = got["x"].dropna().to_numpy()
            if ((last % 10) != batch - 1).any():
                bad.append(f"as-of value {last} is not the end of a batch")
            continue
        rows = store.read("v")
    except FileNotFoundError:
        continue  # nothing written yet
    except Exception as e:
        if "has no stored rows" in str(e):
            continue
        errors[f"{type(e).__module__}.{type(e).__name__}: {e}"[:300]] += 1
        continue
    reads += 1
    for w, g in rows.groupby("w"):
        k = g["seq"].max() + 1
        if len(g) != k * batch or sorted(set(g["seq"])) != list(range(k)):
            bad.append(f"{w}: {len(g)} rows, batches {sorted(set(g['seq']))}")
    if len(rows) == writers * n * batch:
        break
print(json.dumps({"reads": reads, "bad": bad[:5], "n_bad": len(bad), "errors": errors}), flush=True)
"""


def _spawn(code, *args):
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _run_together(procs):
    "Wait until every child has imported everything, release them at once, collect their JSON reports."
    for p in procs:
        assert p.stdout.readline().strip() == "ready", p.stderr.read()
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=TIMEOUT)
        assert p.returncode == 0, stderr[-3000:]
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def _check_view(path, writers, n, batch):
    rows = OfflineStore(path).read(FeatureView("v", ("w",), ("seq", "x"), "ts"))
    for w in range(writers):
        g = rows[rows.w == f"w{w}"]
        assert sorted(zip(g.seq, g.x)) == [(i, 10.0 * i + j) for i in range(n) for j in range(batch)]
    return rows


@pytest.mark.parametrize("max_parts,retain", [(16, 600.0), (2, 0.0)])
def test_appends_from_several_processes_all_land(tmp_path, max_parts, retain):
    "3 processes x 40 single-row appends, one view: 120 rows stored, no error (also when every 3rd append compacts)."
    procs = [_spawn(APPENDER, tmp_path, w, 40, 1, max_parts, retain) for w in range(3)]
    reports = _run_together(procs)
    assert [r["errors"] for r in reports] == [{}, {}, {}]
    assert [r["ok"] for r in reports] == [40, 40, 40]
    assert len(_check_view(tmp_path, 3, 40, 1)) == 120
    assert not list((tmp_path / "v__v1").glob("*.tmp"))


def test_readers_never_see_a_partial_write(tmp_path):
    """2 writers append 5-row batches while 2 readers read in a loop (both engines), with parts compacted every third
    append and replaced parts deleted at once (retain=0): every read is a set of complete batches, and no read fails."""
    writers = [_spawn(APPENDER, tmp_path, w, 30, 5, 3, 0.0) for w in range(2)]
    readers = [_spawn(READER, tmp_path, 2, 30, 5, 0.0) for _ in range(2)]
    reports = _run_together(writers + readers)
    assert [r["errors"] for r in reports[:2]] == [{}, {}]
    for r in reports[2:]:
        assert r["errors"] == {} and r["n_bad"] == 0, r
        assert r["reads"] > 0
    _check_view(tmp_path, 2, 30, 5)


KILLED = r"""
import sys
import pandas as pd
from mlsys.features.store import FeatureView, OfflineStore
store = OfflineStore(sys.argv[1], max_parts=3, retain=0)
view = FeatureView("v", ("w",), ("seq", "x"), "ts")
base = pd.Timestamp("2013-06-01", tz="UTC")
for i in range(10**6):
    rows = pd.DataFrame({"w": "w0", "seq": i, "x": [10.0 * i + j for j in range(50)],
                         "ts": [base + pd.Timedelta(seconds=50 * i + j) for j in range(50)]})
    store.write(view, rows, mode="append")
    if i == 0:
        print("committed", flush=True)
"""


@pytest.mark.parametrize("trial", range(4))
def test_writer_killed_mid_append_leaves_a_readable_store(tmp_path, trial):
    "SIGKILL an appending process at a random moment: the view reads back as whole batches, and the next append works."
    p = subprocess.Popen([sys.executable, "-c", KILLED, str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "committed", p.stderr.read()
        time.sleep(random.Random(trial).uniform(0.0, 0.6))  # not a synchronisation: a random moment to kill it
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=TIMEOUT)
    store = OfflineStore(tmp_path, lock_timeout=30)  # the dead writer's file lock was released by the kernel
    view = FeatureView("v", ("w",), ("seq", "x"), "ts")
    rows = store.read(view)
    k = rows.seq.max() + 1
    assert sorted(zip(rows.seq, rows.x)) == [(i, 10.0 * i + j) for i in range(k) for j in range(50)]
    store.write(view, pd.DataFrame({"w": ["w0"], "seq": [k], "x": [10.0 * k], "ts": [BASE + pd.Timedelta(days=400)]}),
                mode="append")
    assert len(store.read(view)) == 50 * k + 1
    assert not list((tmp_path / "v__v1").glob("*.tmp"))  # the next writer removed what the dead one left


def test_lock_timeout_is_a_named_error(tmp_path):
    "A writer that cannot get the lock in time raises StoreBusyError and writes nothing."
    from filelock import FileLock
    store = OfflineStore(tmp_path, lock_timeout=0.2)
    view = FeatureView("v", ("w",), ("seq", "x"), "ts")
    rows = pd.DataFrame({"w": ["w0"], "seq": [0], "x": [1.0], "ts": [BASE]})
    store.write(view, rows)
    with FileLock(str(tmp_path / "v__v1" / "_write.lock")):
        with pytest.raises(StoreBusyError, match=r"view 'v' .* lock_timeout=0.2s; nothing was written"):
            store.write(view, rows.assign(seq=1, ts=BASE + pd.Timedelta("1h")), mode="append")
    assert len(store.read(view)) == 1


# A SQLite writer: `n` single-row upserts of its own keys, plus a shared "hot" key whose newest write must win.
SQLITE_WRITER = r"""
import collections, json, sys
from mlsys.features.online import SQLiteOnlineStore
path, wid, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ok, errors = 0, collections.Counter()
try:
    store = SQLiteOnlineStore(path)
except Exception as e:
    print(json.dumps({"ok": 0, "errors": {type(e).__name__: 1}, "attempts": 0, "retried": 0})); sys.exit()
print("ready", flush=True)
sys.stdin.readline()
for i in range(n):
    rows = [(f'["w{wid}", "{i}"]', i, json.dumps({"x": wid * 1000 + i})), ('["hot"]', 3 * i + wid, json.dumps({"x": 3 * i + wid}))]
    try:
        store.write_rows("v", rows)
        ok += 1
    except Exception as e:
        errors[f"{type(e).__module__}.{type(e).__name__}: {e}"[:200]] += 1
print(json.dumps({"ok": ok, "errors": errors, "attempts": store.attempts, "retried": store.retried}), flush=True)
"""

SQLITE_READER = r"""
import collections, json, random, sys
from mlsys.features.online import SQLiteOnlineStore
path, n = sys.argv[1], int(sys.argv[2])
store = SQLiteOnlineStore(path)
print("ready", flush=True)
sys.stdin.readline()
ok, errors, rng = 0, collections.Counter(), random.Random(0)
for i in range(n):
    keys = [f'["w{rng.randrange(3)}", "{rng.randrange(300)}"]' for _ in range(20)] + ['["hot"]']
    try:
        store.read_rows("v", keys)
        ok += 1
    except Exception as e:
        errors[f"{type(e).__module__}.{type(e).__name__}: {e}"[:200]] += 1
print(json.dumps({"ok": ok, "errors": errors, "attempts": store.attempts, "retried": store.retried}), flush=True)
"""


def test_sqlite_online_store_three_writer_processes_and_a_reader(tmp_path):
    "3 writer processes x 300 upserts and a reading process on one SQLite file: no error, every write stored."
    path = tmp_path / "online.db"
    procs = [_spawn(SQLITE_WRITER, path, w, 300) for w in range(3)] + [_spawn(SQLITE_READER, path, 600)]
    reports = _run_together(procs)
    assert [r["errors"] for r in reports] == [{}, {}, {}, {}], reports
    assert [r["ok"] for r in reports] == [300, 300, 300, 600]
    store = SQLiteOnlineStore(path)
    for w in range(3):
        got = store.read_rows("v", [f'["w{w}", "{i}"]' for i in range(300)])
        assert [json.loads(p)["x"] for _, p in got] == [w * 1000 + i for i in range(300)]
    assert store.read_rows("v", ['["hot"]'])[0][0] == 3 * 299 + 2  # the newest write won, whichever process made it
    assert store.con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_sqlite_busy_beyond_the_retries_is_a_named_error(tmp_path):
    "A database held by another connection's write transaction: StoreBusyError after the bounded retries."
    import sqlite3
    path = tmp_path / "online.db"
    store = SQLiteOnlineStore(path, timeout=0.05, retries=3)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreBusyError, match=r"online.db: writing 1 rows of view 'v' found the database locked .* 3 times"):
            store.write_rows("v", [('["a"]', 1, "{}")])
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert store.write_rows("v", [('["a"]', 1, "{}")]) == 1
    assert store.read_rows("v", ['["a"]']) == [(1, "{}")]


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_redis_down_is_a_named_error(tmp_path):
    "A client pointed at a closed port: StoreUnavailableError naming the URL and the operation, never redis' own error."
    redis = pytest.importorskip("redis")
    port = _closed_port()
    from redis.backoff import NoBackoff
    from redis.retry import Retry
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))  # fail fast
    online = RedisOnlineStore(client, prefix="test:down")
    with pytest.raises(StoreUnavailableError, match=rf"Redis online store at redis://127.0.0.1:{port}/0 is unreachable while writing 1 rows"):
        online.write_rows("v", [('["a"]', 1, "{}")])
    with pytest.raises(StoreUnavailableError, match=rf"127.0.0.1:{port}/0 is unreachable while reading 2 keys of view 'v'"):
        online.read_rows("v", ['["a"]', '["b"]'])
    store = FeatureStore(OfflineStore(tmp_path), online)
    view = FeatureView("w", ("k",), ("x",), "ts")
    store.ingest(view, pd.DataFrame({"k": ["a"], "ts": [BASE], "x": [1.0]}))
    for call in (lambda: store.materialize(BASE), lambda: store.push(view, pd.DataFrame({"k": ["a"], "ts": [BASE], "x": [2.0]})),
                 lambda: store.get_online_features({"k": "a"}, ["w:x"])):
        with pytest.raises(StoreUnavailableError) as err:
            call()
        assert isinstance(err.value.__cause__, redis.exceptions.ConnectionError)
    assert np.isnan(store.get_historical_features(pd.DataFrame({"k": ["a"], "event_time": [BASE]}), ["w:x"])["x"]).sum() == 0
