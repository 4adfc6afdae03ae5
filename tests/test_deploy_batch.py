"""mlsys.deploy.batch: chunked scoring equals whole-table predict_proba, atomic output under SIGKILL, Dask out of core,
the prediction store's lookups, and named errors for bad input."""
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlsys.core import ConfigError, DataError, SchemaError
from mlsys.deploy.batch import (RESULT_COLUMNS, DuckDBSource, DuckDBTable, MissingPredictionError, PredictionStore,
                                model_version, score_table, score_table_dask)

duckdb = pytest.importorskip("duckdb")
ROOT = Path(__file__).resolve().parents[1]
FEATS = ["num", "f32", "cat", "cnt"]
CATS = ["a", "b", "ç", "日本", "", "z\n"]


def make_table(n: int, rng: np.random.Generator, key_kind: str = "int") -> pd.DataFrame:
    "Generated rows: NaN in a float column, float32, a categorical with non-ASCII/empty/newline values, ties, keys."
    num = rng.choice([0.0, 1.0, 2.5, np.nan, -3.0], n) + (rng.random(n) < 0.5) * rng.standard_normal(n)
    keys = {"int": np.arange(n) * 7 - 3, "str": np.array([f"k{i}-é" for i in range(n)], dtype=object)}[key_kind]
    return pd.DataFrame({
        "id": keys, "num": num, "f32": rng.standard_normal(n).astype(np.float32),
        "cat": pd.Categorical(rng.choice(CATS, n), categories=CATS), "cnt": rng.integers(0, 4, n),
        "other": rng.random(n)})


@pytest.fixture(scope="module")
def models():
    "Fitted on named columns: a boosted-tree classifier (categorical, NaN), a logistic pipeline, a regressor."
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(1)
    df = make_table(400, rng)
    y = ((df["num"].fillna(0) + df["f32"] + (df["cat"] == "ç")) > 0.5).astype(int)
    hgb = HistGradientBoostingClassifier(max_iter=15, categorical_features="from_dtype", random_state=0).fit(df[FEATS], y)
    pre = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), ["cat"]),
                             ("num", SimpleImputer(), ["num", "f32", "cnt"])])
    logreg = make_pipeline(pre, LogisticRegression()).fit(df[FEATS], y)
    reg = HistGradientBoostingRegressor(max_iter=10, categorical_features="from_dtype").fit(df[FEATS], df["f32"])
    return {"hgb": hgb, "logreg": logreg, "reg": reg}


def reference(model, df: pd.DataFrame) -> np.ndarray:
    if hasattr(model, "predict_proba"):
        return model.predict_proba(df[FEATS])[:, 1]
    return model.predict(df[FEATS])


def as_source(df: pd.DataFrame, kind: str, where: Path):
    "The same rows as a DataFrame, a Parquet file, a folder of Parquet parts, or a DuckDB table."
    if kind == "frame":
        return df
    if kind == "file":
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), where / "src.parquet", row_group_size=max(1, len(df) // 3 + 1))
        return where / "src.parquet"
    if kind == "folder":
        (where / "parts").mkdir()
        bounds = np.linspace(0, len(df), 4).astype(int)
        for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
            pq.write_table(pa.Table.from_pandas(df.iloc[a:b], preserve_index=False), where / "parts" / f"p{i}.parquet")
        return where / "parts"
    con = duckdb.connect(str(where / "src.duckdb"))
    con.register("df", df)
    con.execute("CREATE TABLE t AS SELECT * FROM df")
    con.close()
    return DuckDBSource(where / "src.duckdb", table="t")


def read_out(out) -> pd.DataFrame:
    if isinstance(out, DuckDBTable):
        with duckdb.connect(str(out.database), read_only=True) as con:
            return con.execute(f'SELECT * FROM "{out.table}"').df()
    return pd.read_parquet(out)


# ---------------------------------------------------------------- differential: chunked == whole table

@pytest.mark.parametrize("kind", ["frame", "file", "folder", "duckdb"])
def test_chunked_scores_equal_whole_table_predict(models, kind, tmp_path):
    rng = np.random.default_rng({"frame": 0, "file": 1, "folder": 2, "duckdb": 3}[kind])
    for case in range(12):
        n = int(rng.choice([1, 2, 3, 17, 64, 250]))
        df = make_table(n, rng, key_kind="str" if case % 2 else "int")
        chunk = int(rng.choice([1, 2, max(1, n // 3), n, n + 1, 10 * n + 5]))
        where = tmp_path / f"c{case}"
        where.mkdir()
        src = as_source(df, kind, where)
        out = DuckDBTable(where / "out.duckdb", "scores") if case % 3 == 0 else where / "out"
        for name, model in models.items():
            target = DuckDBTable(out.database, f"s_{name}") if isinstance(out, DuckDBTable) else out.with_name(f"out_{name}")
            res = score_table(model, src, target, key="id", chunk_rows=chunk, model_name=name, progress=False)
            got = read_out(target)
            assert res.rows == n and res.chunks >= -(-n // chunk)  # Parquet batches also end at row-group and file ends
            assert kind != "frame" or res.chunks == -(-n // chunk)
            assert list(got.columns) == ["id", *RESULT_COLUMNS]
            assert list(got["id"]) == list(df["id"]), (kind, case, name)
            # trees score each row on its own: bit for bit; a linear model's BLAS call differs by batch shape: a few ulps
            np.testing.assert_allclose(got["score"].to_numpy(), reference(model, df), rtol=1e-13 if name == "logreg" else 0,
                                       atol=0, err_msg=f"{kind} {case} {name} chunk={chunk}")
            assert set(got["model"]) == {name} and set(got["model_version"]) == {model_version(model)}


def test_progress_bar_reports_rows(models, tmp_path, capsys):
    score_table(models["hgb"], make_table(50, np.random.default_rng(0)), tmp_path / "o", key="id", chunk_rows=10)
    err = capsys.readouterr().err
    assert "100%" in err and "rows/s" in err and "50" in err


def test_parquet_is_read_by_batches_not_whole(models, tmp_path, monkeypatch):
    "Each chunk scored holds at most chunk_rows rows, and the whole file is never read at once."
    import mlsys.deploy.batch as batch
    df = make_table(300, np.random.default_rng(5))
    src = as_source(df, "file", tmp_path)
    seen, real = [], batch.score_frame

    def spy(model, chunk, *a, **kw):
        seen.append(len(chunk))
        return real(model, chunk, *a, **kw)
    monkeypatch.setattr(batch, "score_frame", spy)
    monkeypatch.setattr(pq, "read_table", lambda *a, **k: pytest.fail("read the whole table"))
    monkeypatch.setattr(pd, "read_parquet", lambda *a, **k: pytest.fail("read the whole table"))
    score_table(models["hgb"], src, tmp_path / "o", key="id", chunk_rows=7, progress=False)
    assert sum(seen) == 300 and max(seen) <= 7


# ---------------------------------------------------------------- bad input gets named errors

@pytest.mark.parametrize("kind", ["frame", "file", "folder", "duckdb"])
def test_empty_table_is_a_named_error_and_leaves_nothing(models, kind, tmp_path):
    src = as_source(make_table(5, np.random.default_rng(0)).iloc[:0], kind, tmp_path) if kind != "folder" else None
    if kind == "folder":
        (tmp_path / "parts").mkdir()
        pq.write_table(pa.Table.from_pandas(make_table(3, np.random.default_rng(0)).iloc[:0], preserve_index=False),
                       tmp_path / "parts" / "p0.parquet")
        src = tmp_path / "parts"
    for out in [tmp_path / "out", DuckDBTable(tmp_path / "o.duckdb", "s")]:
        with pytest.raises(DataError, match="no rows"):
            score_table(models["hgb"], src, out, key="id", progress=False)
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]
    with duckdb.connect(str(tmp_path / "o.duckdb")) as con:
        assert con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name='s'").fetchone()[0] == 0


@pytest.mark.parametrize("kind", ["frame", "file", "folder", "duckdb"])
def test_missing_feature_or_key_is_a_schema_error_naming_it(models, kind, tmp_path):
    df = make_table(20, np.random.default_rng(0))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    src = as_source(df.drop(columns="f32"), kind, tmp_path / "a")
    with pytest.raises(SchemaError, match="'f32'"):
        score_table(models["hgb"], src, tmp_path / "out", key="id", progress=False)
    src = as_source(df.drop(columns="id"), kind, tmp_path / "b")
    with pytest.raises(SchemaError, match="'id'"):
        score_table(models["hgb"], src, tmp_path / "out", key="id", progress=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("chunk_rows", [0, -1, -10**9, True, False, 1.5, "10", None, 10**12])
def test_bad_chunk_rows(models, chunk_rows, tmp_path):
    with pytest.raises(ConfigError, match="chunk_rows"):
        score_table(models["hgb"], make_table(5, np.random.default_rng(0)), tmp_path / "o", key="id",
                    chunk_rows=chunk_rows, progress=False)


@pytest.mark.parametrize("source", [[1, 2], 3, {"id": [1]}, None, b"x.parquet", np.zeros((3, 2))])
def test_unknown_source_type(models, source, tmp_path):
    with pytest.raises(ConfigError, match="source must be"):
        score_table(models["hgb"], source, tmp_path / "o", key="id", progress=False)


def test_other_bad_inputs_are_named(models, tmp_path):
    m, df = models["hgb"], make_table(10, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="key"):
        score_table(m, df, tmp_path / "o", key=[], progress=False)
    with pytest.raises(ConfigError, match="collide"):
        score_table(m, df.rename(columns={"id": "score"}), tmp_path / "o", key="score", progress=False)
    with pytest.raises(ConfigError, match="out must be"):
        score_table(m, df, 42, key="id", progress=False)
    with pytest.raises(DataError, match="not found"):
        score_table(m, tmp_path / "nope.parquet", tmp_path / "o", key="id", progress=False)
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="not a readable Parquet"):
        score_table(m, tmp_path / "junk.parquet", tmp_path / "o", key="id", progress=False)
    with pytest.raises(DataError, match="missing values"):
        score_table(m, df.assign(id=[None] + list(df["id"][1:])), tmp_path / "o", key="id", progress=False)
    with pytest.raises(ConfigError, match="exactly one"):
        score_table(m, DuckDBSource(tmp_path / "x.duckdb"), tmp_path / "o", key="id", progress=False)
    with pytest.raises(DataError, match="cannot be read"):
        duckdb.connect(str(tmp_path / "x.duckdb")).close()
        score_table(m, DuckDBSource(tmp_path / "x.duckdb", table="nope"), tmp_path / "o", key="id", progress=False)
    with pytest.raises(ConfigError, match="feature_names_in_"):
        from sklearn.linear_model import LogisticRegression
        bare = LogisticRegression().fit(df[["num"]].fillna(0).to_numpy(), df["cnt"] > 1)
        score_table(bare, df, tmp_path / "o", key="id", progress=False)
    with pytest.raises(DataError, match="failed on"):  # the model refuses a chunk: named, with the cause
        score_table(m, df.assign(num=["x"] * len(df)), tmp_path / "o", key="id", progress=False)
    score_table(m, df, tmp_path / "o", key="id", progress=False)
    with pytest.raises(ConfigError, match="already exists"):
        score_table(m, df, tmp_path / "o", key="id", progress=False)
    with pytest.raises(ConfigError, match="overwrite"):
        score_table(m, df, tmp_path / "o", key="id", progress=False, overwrite="yes")
    res = score_table(m, df.iloc[:4], tmp_path / "o", key="id", progress=False, overwrite=True)
    assert res.rows == 4 and len(pd.read_parquet(tmp_path / "o")) == 4
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".o.")]
    assert not (tmp_path / "nope").exists()


# ---------------------------------------------------------------- atomic output under SIGKILL

WRITER = textwrap.dedent("""
    import sys, pickle
    from pathlib import Path
    from mlsys.deploy.batch import DuckDBTable, score_table
    model = pickle.loads(Path(sys.argv[1]).read_bytes())
    out = DuckDBTable(sys.argv[3], "scores") if sys.argv[4] == "duckdb" else Path(sys.argv[3])
    print("ready", flush=True)
    score_table(model, Path(sys.argv[2]), out, key="id", chunk_rows=int(sys.argv[5]), progress=False, overwrite=True)
    print("done", flush=True)
""")


def _run_writer(tmp_path, model_file, src, out, target, chunk, kill_after=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    p = subprocess.Popen([sys.executable, "-c", WRITER, str(model_file), str(src), str(out), target, str(chunk)],
                         stdout=subprocess.PIPE, text=True, env=env)
    assert p.stdout.readline().strip() == "ready"
    if kill_after is None:
        assert p.stdout.readline().strip() == "done"
        assert p.wait(timeout=300) == 0
        return True
    time.sleep(kill_after)
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=60)
    return p.returncode == 0


def _complete_or_absent(out, target, expected: pd.DataFrame) -> bool:
    "The output is either not there or holds every row; never a part."
    if target == "duckdb":
        if not Path(out).exists():
            return False
        with duckdb.connect(str(out)) as con:
            if not con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name='scores'").fetchone()[0]:
                return False
            got = con.execute("SELECT * FROM scores").df()
    else:
        if not Path(out).exists():
            return False
        got = pd.read_parquet(out)
    assert list(got["id"]) == list(expected["id"])
    np.testing.assert_array_equal(got["score"].to_numpy(), expected["score"].to_numpy())
    return True


@pytest.mark.parametrize("target", ["parquet", "duckdb"])
def test_sigkilled_writer_leaves_no_partial_output_and_a_rerun_completes(models, target, tmp_path):
    import pickle
    rng, rnd = np.random.default_rng(7), random.Random(7)
    df = make_table(3000, rng)
    src = as_source(df, "file", tmp_path)
    model_file = tmp_path / "model.pkl"
    model_file.write_bytes(pickle.dumps(models["hgb"]))
    expected = pd.DataFrame({"id": df["id"], "score": reference(models["hgb"], df)})
    out = tmp_path / ("scores.duckdb" if target == "duckdb" else "scores")
    t0 = time.perf_counter()
    _run_writer(tmp_path, model_file, src, out, target, 25)  # a full run, to time the kills
    full = time.perf_counter() - t0
    assert _complete_or_absent(out, target, expected)
    if target == "parquet":
        import shutil
        shutil.rmtree(out)
    else:
        out.unlink()
    kills = 0
    for _ in range(5):
        finished = _run_writer(tmp_path, model_file, src, out, target, 25, kill_after=rnd.uniform(0, full))
        kills += not finished
        _complete_or_absent(out, target, expected)  # asserts: absent, or complete and equal
    _run_writer(tmp_path, model_file, src, out, target, 25)
    assert _complete_or_absent(out, target, expected)
    if target == "parquet":  # the rerun removed what the killed writers left
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".scores")] == []
    assert kills >= 1


# ---------------------------------------------------------------- Dask

LIMIT = 600 * 2**20  # bytes per worker; a worker of this stack (pandas, pyarrow, sklearn, dask) starts near 250-400 MiB


@pytest.fixture(scope="module")
def dask_client():
    "Two worker processes capped at LIMIT: the nanny kills one past 95% of it. No pausing or spilling (nothing is kept)."
    dask = pytest.importorskip("dask")
    distributed = pytest.importorskip("distributed")
    with dask.config.set({"distributed.worker.memory.pause": False, "distributed.worker.memory.target": False,
                          "distributed.worker.memory.spill": False}):
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit=LIMIT,
                                           dashboard_address=":0", death_timeout=120)
    client = distributed.Client(cluster, timeout=120)
    yield client
    client.close()
    cluster.close()


def test_dask_equals_in_memory_scoring(models, dask_client, tmp_path):
    rng = np.random.default_rng(11)
    df = make_table(2000, rng)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "src.parquet", row_group_size=300)
    for name, model in models.items():
        res = score_table_dask(model, tmp_path / "src.parquet", tmp_path / f"o_{name}", key="id", model_name=name,
                               scheduler=dask_client.scheduler.address)
        got = pd.read_parquet(tmp_path / f"o_{name}")
        assert res.chunks == 7 and res.rows == 2000
        assert list(got["id"]) == list(df["id"])
        np.testing.assert_allclose(got["score"].to_numpy(), reference(model, df), rtol=1e-13 if name == "logreg" else 0, atol=0)
        assert set(got["model"]) == {name}
        assert set(res.peak_memory) == set(dask_client.scheduler_info()["workers"])
    meta = json.loads((tmp_path / "o_hgb" / "_batch.json").read_text())
    assert meta["rows"] == 2000 and len(meta["peak_memory"]) == 2


def test_dask_scores_a_dataset_larger_than_worker_memory(dask_client, tmp_path):
    "Workers capped at LIMIT score data 3.25x LIMIT (decoded) with each worker's peak memory under the cap."
    from sklearn.linear_model import LogisticRegression
    ncol, part_rows, parts = 128, 32768, 120  # 120 partitions of 16.3 MiB decoded: 1.95 GiB
    cols = [f"x{i}" for i in range(ncol)]
    rng = np.random.default_rng(0)
    (tmp_path / "data").mkdir()
    for p in range(parts):  # small integers as float32: dictionary-encoded on disk (fast to write), full size in memory
        X = rng.integers(-8, 8, (part_rows, ncol), dtype=np.int8).astype(np.float32)
        table = pa.table({"id": np.arange(p * part_rows, (p + 1) * part_rows), **{c: X[:, i] for i, c in enumerate(cols)}})
        pq.write_table(table, tmp_path / "data" / f"part-{p:03d}.parquet")
    decoded = parts * part_rows * (ncol * 4 + 8)
    on_disk = sum(f.stat().st_size for f in (tmp_path / "data").iterdir())
    assert decoded > 3 * LIMIT
    small = pd.DataFrame(rng.standard_normal((2000, ncol), dtype=np.float32), columns=cols)
    model = LogisticRegression().fit(small, (small["x0"] + small["x1"] > 0).astype(int))
    res = score_table_dask(model, tmp_path / "data", tmp_path / "out", key="id", scheduler=dask_client)
    assert res.rows == parts * part_rows and res.chunks == parts
    peaks = res.peak_memory
    print(f"\npeak RSS per worker (MiB): { {w: round(b / 2**20) for w, b in peaks.items()} }; cap {LIMIT / 2**20:.0f} MiB; "
          f"data {decoded / 2**20:.0f} MiB decoded, {on_disk / 2**20:.0f} MiB on disk")
    assert len(peaks) == 2 and all(0 < b < LIMIT for b in peaks.values())
    # identical to the in-memory (chunked, in-process) scoring, read back part by part
    res2 = score_table(model, tmp_path / "data", tmp_path / "out_local", key="id", chunk_rows=part_rows, progress=False)
    got, want = pd.read_parquet(tmp_path / "out", columns=["id", "score"]), pd.read_parquet(tmp_path / "out_local", columns=["id", "score"])
    assert res2.rows == len(got) == len(want)
    np.testing.assert_array_equal(got["id"].to_numpy(), want["id"].to_numpy())
    np.testing.assert_array_equal(got["score"].to_numpy(), want["score"].to_numpy())


def test_dask_bad_inputs(models, dask_client, tmp_path):
    df = make_table(30, np.random.default_rng(0))
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "s.parquet")
    with pytest.raises(ConfigError, match="scheduler must be"):
        score_table_dask(models["hgb"], tmp_path / "s.parquet", tmp_path / "o", key="id", scheduler=3)
    with pytest.raises(ConfigError, match="no Dask scheduler answered"):
        score_table_dask(models["hgb"], tmp_path / "s.parquet", tmp_path / "o", key="id", scheduler="tcp://127.0.0.1:9", timeout=2)
    with pytest.raises(SchemaError, match="'cat'"):
        pq.write_table(pa.Table.from_pandas(df.drop(columns="cat"), preserve_index=False), tmp_path / "nocat.parquet")
        score_table_dask(models["hgb"], tmp_path / "nocat.parquet", tmp_path / "o", key="id", scheduler=dask_client)
    with pytest.raises(ConfigError, match="n_workers"):
        score_table_dask(models["hgb"], tmp_path / "s.parquet", tmp_path / "o", key="id", n_workers=0)
    assert not (tmp_path / "o").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".o.")]


# ---------------------------------------------------------------- PredictionStore

def _preds(n: int, rng) -> pd.DataFrame:
    return pd.DataFrame({"id": np.arange(n), "score": rng.random(n), "model": "m", "model_version": "v1"})


def test_store_lookups_report_missing_keys(tmp_path):
    rng = np.random.default_rng(0)
    preds = _preds(500, rng)
    store = PredictionStore(tmp_path / "p.sqlite")
    assert store.write(preds, key="id") == 500
    ask = list(rng.integers(-50, 600, 300))
    hit = store.get(ask)
    want = [k for k in ask if 0 <= k < 500]
    assert list(hit.found["id"]) == want and hit.missing == [k for k in ask if not 0 <= k < 500]
    np.testing.assert_array_equal(hit.found["score"].to_numpy(), preds["score"].to_numpy()[want])
    assert not hit.found["score"].isna().any()
    with pytest.raises(MissingPredictionError, match="have no prediction") as e:
        store.get(ask, missing="raise")
    assert e.value.missing == hit.missing
    # another instance (another process would do the same) reads the same file
    again = PredictionStore(tmp_path / "p.sqlite").get([3, 1.0, np.int64(2)])
    np.testing.assert_array_equal(again.found["score"].to_numpy(), preds["score"].to_numpy()[[3, 1, 2]])
    assert store.get([]).found.empty


def test_store_refuses_bad_writes_whole(tmp_path):
    rng = np.random.default_rng(1)
    store = PredictionStore(tmp_path / "p.sqlite")
    store.write(_preds(10, rng), key="id")
    before = store.get(list(range(10))).found
    dup = pd.concat([_preds(20, rng), _preds(20, rng).iloc[[5]]])
    with pytest.raises(DataError, match="repeat"):
        store.write(dup, key="id")
    with pytest.raises(DataError, match="missing or non-numeric"):
        store.write(_preds(20, rng).assign(score=[np.nan] + [0.5] * 19), key="id")
    with pytest.raises(DataError, match="missing values"):
        store.write(_preds(20, rng).assign(id=[None] + list(range(1, 20))), key="id")
    with pytest.raises(SchemaError, match="'flight'"):
        store.write(_preds(20, rng), key="flight")
    with pytest.raises(DataError, match="no rows"):
        store.write(_preds(0, rng), key="id")
    with pytest.raises(ConfigError, match="keyed by"):
        store.write(_preds(5, rng).assign(other=1), key=["id", "other"])
    after = store.get(list(range(20)))
    pd.testing.assert_frame_equal(after.found, before)  # nothing of the refused writes landed
    assert after.missing == list(range(10, 20))
    with pytest.raises(ConfigError, match="missing must be"):
        store.get([1], missing="nan")
    with pytest.raises(DataError, match="holds no predictions"):
        PredictionStore(tmp_path / "empty.sqlite").get([1])
    with pytest.raises(ConfigError, match="store must be"):
        PredictionStore(42)


def test_store_composite_keys_and_score_table_output(models, tmp_path):
    df = make_table(60, np.random.default_rng(3)).assign(day=lambda d: d["id"] % 3)
    score_table(models["hgb"], df, tmp_path / "o", key=["id", "day"], progress=False)
    store = PredictionStore(tmp_path / "p.sqlite", name="hgb")
    store.write(tmp_path / "o", key=["id", "day"])
    assert store.key == ["id", "day"]
    ask = [(int(df["id"].iloc[4]), int(df["day"].iloc[4])), (10**6, 0)]
    hit = store.get(ask)
    assert hit.missing == [(10**6, 0)]
    assert hit.found["score"].iloc[0] == reference(models["hgb"], df)[4]
    assert hit.found["model_version"].iloc[0] == model_version(models["hgb"])
    with pytest.raises(ConfigError, match="tuples"):
        store.get([1, 2])


def test_store_on_redis(redis_client):
    import uuid

    from mlsys.features.online import RedisOnlineStore
    prefix = f"mlsys:test:{uuid.uuid4().hex}"
    try:
        store = PredictionStore(RedisOnlineStore(redis_client, prefix=prefix))
        store.write(_preds(50, np.random.default_rng(0)), key="id")
        hit = store.get([1, 49, 50])
        assert list(hit.found["id"]) == [1, 49] and hit.missing == [50]
    finally:
        for k in redis_client.scan_iter(f"{prefix}:*"):
            redis_client.delete(k)


def _child_peak(q):
    from mlsys.deploy.batch import _peak_rss

    q.put(_peak_rss())


def test_worker_peak_memory_is_the_workers_own_not_its_parents():
    "ru_maxrss carries a parent's maximum over fork and exec, so a spawned worker of a big process reported the parent's size."
    import multiprocessing as mp

    ballast = np.ones(500 * 2**20 // 8)  # 500 MiB resident in this (the parent) process
    ballast += 1
    ctx = mp.get_context("spawn")  # how distributed starts its worker processes
    q = ctx.Queue()
    p = ctx.Process(target=_child_peak, args=(q,))
    p.start()
    peak = q.get(timeout=120)
    p.join(60)
    assert 0 < peak < 400 * 2**20, peak / 2**20  # a fresh interpreter with mlsys imported, far below the parent's 500 MiB
    del ballast
