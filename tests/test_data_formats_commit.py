"""data.formats: the data file and its sidecar change together, or not at all.

- a writer SIGKILLed at random moments (>= 20 trials per format, alternating two frames of different schemas)
  always leaves a table that reads back as exactly the old or exactly the new frame;
- a writer killed at each step of the commit leaves the state the protocol promises;
- several writer processes and a reader process on one path: every read is one of the written frames;
- a deleted, edited, re-sealed or inconsistent sidecar is an IntegrityError unless the caller opts out.
"""
import hashlib
import json
import multiprocessing as mp
import os
import pickle
import signal
import time

import numpy as np
import pandas as pd
import pytest

import mlsys.data.formats as F
from mlsys.core import BusyError, DataError, IntegrityError
from mlsys.data.formats import FORMATS, meta_path, read_table, write_table

TRIALS = 20
CTX = mp.get_context("forkserver")  # fork-safe (pyarrow keeps threads) and far cheaper than spawning per trial
CTX.set_forkserver_preload(["mlsys.data.formats", "pytest"])  # the children import this test module


def frames(n: int = 600):
    "Two tables of different schemas; the same column name 'x' changes dtype between them."
    rng = np.random.default_rng(0)
    a = pd.DataFrame({"x": rng.integers(0, 100, n), "s": pd.array([f"é{i}\n" for i in range(n)], dtype="string"),
                      "t": pd.Series(pd.to_datetime(rng.integers(1.3e9, 1.4e9, n), unit="s", utc=True)).dt.tz_convert("America/New_York")})
    b = pd.DataFrame({"y": rng.random(n // 2), "x": pd.array([None if i % 7 == 0 else i for i in range(n // 2)], dtype="Int64"),
                      "c": pd.Categorical(rng.choice(["AA", "UA", "B6"], n // 2), categories=["AA", "UA", "B6", "ZZ"])})
    return a, b


def _writer(path, fmt, started, a, b, hook_step=None):
    "Child process: write B, A, B, A ... over `path` until killed (or kill itself at `hook_step`)."
    import mlsys.data.formats as F
    warm = f"{path}.warm{os.path.splitext(path)[1]}"  # first calls import codecs lazily: do them before the clock starts
    F.write_table(b, warm, format=fmt)
    F.write_table(a, warm, format=fmt)
    if hook_step is not None:
        F._COMMIT_HOOK = lambda step: os.kill(os.getpid(), signal.SIGKILL) if step == hook_step else None
    started.set()
    i = 0
    while True:
        F.write_table(b if i % 2 == 0 else a, path, format=fmt, durable=bool(i % 3 == 0))
        i += 1
        if hook_step is not None:
            return


def which(df, a, b):
    for name, ref in (("old/A", a), ("new/B", b)):
        try:
            pd.testing.assert_frame_equal(df, ref, check_exact=True)
            return name
        except AssertionError:
            pass
    return None


KILL_TABLE = {}


@pytest.mark.parametrize("fmt", FORMATS)
def test_sigkill_at_random_moments_leaves_old_or_new(fmt, tmp_path):
    a, b = frames()
    path = tmp_path / f"t.{fmt}"
    write_table(a, path, format=fmt)
    times = []
    for ref in (b, a, b, a):  # a typical write, measured the way the child will run it
        t0 = time.perf_counter()
        write_table(ref, path, format=fmt)
        times.append(time.perf_counter() - t0)
    write_s = max(sorted(times)[1], 0.002)
    rng = np.random.default_rng(7)
    seen, intact = {"old/A": 0, "new/B": 0}, 0
    for trial in range(TRIALS):
        started = CTX.Event()
        p = CTX.Process(target=_writer, args=(str(path), fmt, started, a, b))
        p.start()
        assert started.wait(120), "writer did not start"
        # anywhere within the first few writes; where the kills land depends on the machine's load, so every step of
        # the commit is also hit deterministically by test_killed_at_each_commit_step
        time.sleep(rng.uniform(0, 4 * write_s))
        os.kill(p.pid, signal.SIGKILL)
        p.join(60)
        assert p.exitcode == -signal.SIGKILL
        got = which(read_table(path, allow_pickle=True), a, b)
        assert got is not None, f"trial {trial}: the table is neither the old nor the new frame"
        seen[got] += 1
        intact += 1
    KILL_TABLE[fmt] = (intact, TRIALS, seen)
    print(f"\nkill test {fmt}: {intact}/{TRIALS} intact ({seen})")
    write_table(a, path, format=fmt)  # the next write cleans what killed writers left behind
    left = sorted(x.name for x in tmp_path.iterdir() if ".warm" not in x.name)
    assert left == [f".t.{fmt}.lock", f"t.{fmt}", f"t.{fmt}.meta.json"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_killed_at_each_commit_step(fmt, tmp_path):
    a, b = frames()
    path = tmp_path / f"t.{fmt}"
    expect = {"written": ("old/A", 1), "listed": ("old/A", 2), "renamed": ("new/B", 2), "committed": ("new/B", 1)}
    for step, (state, n_versions) in expect.items():
        write_table(a, path, format=fmt)
        started = CTX.Event()
        p = CTX.Process(target=_writer, args=(str(path), fmt, started, a, b, step))
        p.start()
        p.join(120)
        assert p.exitcode == -signal.SIGKILL, f"the writer did not reach step {step!r}"
        assert len(json.loads(meta_path(path).read_text())["versions"]) == n_versions, step
        assert which(read_table(path, allow_pickle=True), a, b) == state, step
        # a reader may also skip hashing: the version is then told apart by size
        assert which(read_table(path, allow_pickle=True, verify=False), a, b) == state, step


def _concurrent_writer(path, k, rounds, go):
    import mlsys.data.formats as F
    a, b = frames(500)
    df = [a, b, a.iloc[::-1].reset_index(drop=True)][k]
    go.wait(60)
    for _ in range(rounds):
        F.write_table(df, path)


def _concurrent_reader(path, rounds, go, out):
    import mlsys.data.formats as F
    a, b = frames(500)
    refs = [a, b, a.iloc[::-1].reset_index(drop=True)]
    go.wait(60)
    counts = {"ok": 0, "errors": []}
    for _ in range(rounds):
        try:
            df = F.read_table(path)
            assert any(which(df, r, r) for r in refs), "a read returned a frame nobody wrote"
            counts["ok"] += 1
        except Exception as e:  # collected and reported by the parent
            counts["errors"].append(f"{type(e).__name__}: {e}")
    out.put(counts)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_concurrent_writers_and_a_reader(fmt, tmp_path):
    path = str(tmp_path / f"t.{fmt}")
    write_table(frames(500)[0], path)
    go, out = CTX.Event(), CTX.Queue()
    procs = [CTX.Process(target=_concurrent_writer, args=(path, k, 15, go)) for k in range(3)]
    procs.append(CTX.Process(target=_concurrent_reader, args=(path, 40, go, out)))
    for p in procs:
        p.start()
    go.set()
    result = out.get(timeout=300)
    for p in procs:
        p.join(300)
        assert p.exitcode == 0
    assert result["errors"] == [] and result["ok"] == 40
    assert len(json.loads(meta_path(path).read_text())["versions"]) == 1


def test_lock_timeout_is_a_busy_error(tmp_path):
    import filelock
    path = tmp_path / "t.parquet"
    with filelock.FileLock(tmp_path / ".t.parquet.lock"):
        with pytest.raises(BusyError, match="held the write lock"):
            write_table(frames(10)[0], path, lock_timeout=0.2)
    assert not path.exists()
    with pytest.raises(DataError, match="lock_timeout"):
        write_table(frames(10)[0], path, lock_timeout=-1)


# --- crafted sidecars ------------------------------------------------------------------------------------------


def _sidecar(path):
    return json.loads(meta_path(path).read_text())


def _save(path, meta, reseal=False):
    if reseal:  # a forger who recomputes the seal: the cross-checks against the file must still catch it
        for v in meta["versions"]:
            v["seal"] = F._seal(v)
    meta_path(path).write_text(json.dumps(meta))


@pytest.mark.parametrize("fmt", FORMATS)
def test_deleted_sidecar_is_refused(fmt, tmp_path):
    a, b = frames(50)
    path = write_table(a, tmp_path / f"t.{fmt}")
    F._write_raw(b, path, fmt)  # data replaced behind the table's back ...
    meta_path(path).unlink()  # ... and the sidecar deleted: before, this loaded b without a word
    with pytest.raises(IntegrityError, match="has no sidecar .* pass require_sidecar=False"):
        read_table(path, allow_pickle=True)
    back = read_table(path, allow_pickle=True, require_sidecar=False, schema=b if fmt in ("csv", "jsonl") else None)
    pd.testing.assert_frame_equal(back, b)  # an explicit opt-out still reads a foreign file


@pytest.mark.parametrize("fmt", FORMATS)
def test_edited_sidecar_schema_is_refused(fmt, tmp_path):
    b = frames(50)[1]
    path = write_table(b, tmp_path / f"t.{fmt}")
    meta = _sidecar(path)
    meta["versions"][0]["schema"]["x"] = "float64"  # Int64 -> float64: before, the dtype changed silently
    _save(path, meta)
    with pytest.raises(IntegrityError, match="was edited: version 0's seal does not match"):
        read_table(path, allow_pickle=True)
    if fmt not in ("csv", "jsonl"):  # binary files carry their own schema: even a re-sealed edit is caught
        _save(path, meta, reseal=True)
        with pytest.raises(IntegrityError, match="disagrees with the (schema stored inside|dtypes)"):
            read_table(path, allow_pickle=True)


@pytest.mark.parametrize("fmt", FORMATS)
def test_phantom_column_is_refused(fmt, tmp_path):
    b = frames(50)[1]
    path = write_table(b, tmp_path / f"t.{fmt}")
    meta = _sidecar(path)
    meta["versions"][0]["schema"]["ghost"] = "int64"
    _save(path, meta)
    with pytest.raises(IntegrityError, match="seal does not match"):
        read_table(path, allow_pickle=True)
    _save(path, meta, reseal=True)
    with pytest.raises(IntegrityError, match=r"names columns \['ghost'\] that the file lacks"):
        read_table(path, allow_pickle=True)
    meta["versions"][0]["schema"].pop("ghost")
    meta["versions"][0]["schema"].pop("c")  # and a column the sidecar forgets
    _save(path, meta, reseal=True)
    with pytest.raises(IntegrityError, match=r"does not list columns \['c'\] that the file has"):
        read_table(path, allow_pickle=True)


@pytest.mark.parametrize("fmt", FORMATS)
def test_wrong_row_count_is_refused(fmt, tmp_path):
    path = write_table(frames(50)[1], tmp_path / f"t.{fmt}")
    meta = _sidecar(path)
    meta["versions"][0]["rows"] = 24
    _save(path, meta, reseal=True)
    with pytest.raises(IntegrityError, match="records 24 rows but the file holds 25"):
        read_table(path, allow_pickle=True)


def test_legacy_sidecar_still_reads_and_is_checked(tmp_path):
    "Sidecars written before the two-phase commit (one version, no seal) are read, and cross-checked."
    a = frames(50)[0]
    path = tmp_path / "t.parquet"
    a.to_parquet(path, index=False)  # the old writer: no mlsys schema inside the file
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    legacy = {"format": "parquet", "rows": len(a), "schema": F.table_schema(a), "sha256": sha}
    meta_path(path).write_text(json.dumps(legacy))
    pd.testing.assert_frame_equal(read_table(path), a)
    meta_path(path).write_text(json.dumps({**legacy, "schema": {**legacy["schema"], "x": "float64"}}))
    with pytest.raises(IntegrityError, match="column 'x': sidecar float64, file int64"):
        read_table(path)
    meta_path(path).write_text(json.dumps(legacy))
    write_table(frames(50)[1], path)  # the first new write upgrades the sidecar
    assert _sidecar(path)["layout"] == "mlsys.table/2"


def test_crafted_pickle_that_is_not_a_frame(tmp_path):
    for i, obj in enumerate([[1, 2, 3], {"x": [1]}, pd.Series([1, 2]), "text"]):
        path = tmp_path / f"evil{i}.pkl"
        path.write_bytes(pickle.dumps(obj))
        with pytest.raises(IntegrityError, match="has no sidecar"):
            read_table(path, allow_pickle=True)
        with pytest.raises(IntegrityError, match=f"the pickle holds a .*{type(obj).__name__}, not a pandas DataFrame"):
            read_table(path, allow_pickle=True, require_sidecar=False)
        # with a sidecar crafted to match it (checksum and seal recomputed), still refused
        v = F._version("pickle", hashlib.sha256(path.read_bytes()).hexdigest(), 3, path.stat().st_size, {"x": "int64"})
        F._write_sidecar(path, [v])
        with pytest.raises(IntegrityError, match="not a pandas DataFrame"):
            read_table(path, allow_pickle=True)


def test_sidecar_version_of_another_format(tmp_path):
    path = write_table(frames(20)[0], tmp_path / "t.csv")
    with pytest.raises(DataError, match="was written as 'csv' but is being read as 'jsonl'"):
        read_table(path, format="jsonl")


def test_tampered_data_is_refused_in_every_format(tmp_path):
    a = frames(50)[0]
    for fmt in FORMATS:
        path = write_table(a, tmp_path / f"t.{fmt}")
        raw = bytearray(path.read_bytes())
        raw[len(raw) // 2] ^= 0x01  # one flipped bit
        path.write_bytes(bytes(raw))
        with pytest.raises(IntegrityError, match="does not match the SHA-256"):
            read_table(path, allow_pickle=True)
