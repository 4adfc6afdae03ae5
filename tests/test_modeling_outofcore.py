"""modeling.outofcore: streamed, mergeable statistics equal to pandas over randomized chunkings and merge trees, and the
budgeted Parquet shuffler (a permutation per epoch, shards that cover the file, the memory budget)."""
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from mlsys.core import ConfigError, DataError, SchemaError
import mlsys.modeling.outofcore as O


# --- out-of-core statistics and shuffling -------------------------------------------------------------------------------


def _random_frame(rng, n, n_cols):
    cols = {}
    for j in range(n_cols):
        kind = rng.integers(6)
        if kind == 0:
            v = rng.normal(size=n)
        elif kind == 1:
            v = 1e9 + rng.normal(size=n)  # a large offset: naive sum-of-squares would cancel
        elif kind == 2:
            v = np.full(n, 3.25)  # constant
        elif kind == 3:
            v = rng.integers(0, 3, size=n).astype(float)  # ties
        elif kind == 4:
            v = rng.normal(size=n).astype(np.float32).astype(float)
        else:
            v = rng.exponential(1e-6, size=n)  # tiny scale
        nan = rng.random(n) < rng.choice([0.0, 0.1, 0.9])
        cols[f"c{j}"] = np.where(nan, np.nan, v)
    return pd.DataFrame(cols)


def _check_against_pandas(stats, df):
    np.testing.assert_array_equal(stats.count_, df.count().to_numpy())
    for got, want in [(stats.mean, df.mean()), (stats.var(), df.var()), (stats.var(0), df.var(ddof=0))]:
        want = want.to_numpy()
        scale = np.maximum(np.abs(want), 1e-300)
        close = np.isclose(got, want, rtol=1e-7, atol=0) | (np.isnan(got) & np.isnan(want))
        # variance of the offset columns: pandas itself only keeps ~1e-7 of it
        offset = (df.abs().max() > 1e8).to_numpy()
        close |= offset & (np.abs(got - want) <= 1e-6 * np.maximum(scale, 1))
        assert close.all(), (got, want)


def test_running_moments_equal_pandas_over_random_chunkings():
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.choice([1, 2, 3, 10, 57, 400]))
        df = _random_frame(rng, n, int(rng.integers(1, 5)))
        cuts = np.sort(rng.choice(np.arange(0, n + 1), size=int(rng.integers(0, 6)), replace=True))
        pieces = np.split(df.to_numpy(), cuts)
        if rng.random() < 0.5:  # chunk by chunk
            stats = O.RunningMoments()
            for p in pieces:
                stats.update(p)
        else:  # one RunningMoments per piece (per process, say), merged in a random tree
            parts = [O.RunningMoments().update(p) for p in pieces]
            while len(parts) > 1:
                i = int(rng.integers(len(parts) - 1))
                parts[i:i + 2] = [parts[i].merge(parts[i + 1])]
            stats = parts[0]
        _check_against_pandas(stats, df)


def test_streaming_moments_from_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(1)
    df = _random_frame(rng, 5000, 4)
    df["ints"] = pd.array(rng.integers(-5, 5, 5000), dtype="Int64")
    df.loc[rng.random(5000) < 0.2, "ints"] = pd.NA
    df["flag"] = rng.random(5000) < 0.3
    path = tmp_path / "x.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=int(rng.integers(100, 900)))
    for chunk_rows in [3, 7, 333, 10_000]:
        stats = O.streaming_moments(path, chunk_rows=chunk_rows)
        _check_against_pandas(stats, df.astype({"ints": "float64", "flag": "float64"}))
    df["text"] = "a"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "t.parquet")
    with pytest.raises(SchemaError, match="column 'text' of .* is (large_)?string, not numeric"):
        O.streaming_moments(tmp_path / "t.parquet")
    with pytest.raises(SchemaError, match=r"lacks column \['nope'\]"):
        O.streaming_moments(path, ["nope"])
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(DataError, match="is not a readable Parquet file"):
        O.streaming_moments(tmp_path / "bad.parquet")


@pytest.fixture(scope="module")
def id_file(tmp_path_factory):
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 10_007
    path = tmp_path_factory.mktemp("ooc") / "ids.parquet"
    pq.write_table(pa.table({"id": np.arange(n, dtype=np.int64), "x": np.arange(n) % 7 * 1.0}), path, row_group_size=700)
    return path, n


def test_shuffler_is_a_permutation_per_epoch_and_shards_cover(id_file):
    path, n = id_file
    s = O.ParquetShuffler(path, ["id", "x"], batch_size=64, buffer_rows=500, chunk_rows=128, seed=4)
    e0 = np.concatenate([b[:, 0] for b in s.batches(0)])
    e1 = np.concatenate([b[:, 0] for b in s.batches(1)])
    assert np.array_equal(np.sort(e0), np.arange(n)) and np.array_equal(np.sort(e1), np.arange(n))
    assert not np.array_equal(e0, e1) and not np.array_equal(e0, np.arange(n))
    again = np.concatenate([b[:, 0] for b in O.ParquetShuffler(path, ["id", "x"], batch_size=64, buffer_rows=500,
                                                                chunk_rows=128, seed=4).batches(0)])
    assert np.array_equal(e0, again)  # deterministic for a seed
    sizes = [len(b) for b in s.batches(0)]
    assert set(sizes[:-1]) == {64} and sizes[-1] == n % 64
    assert all(len(b) == 64 for b in O.ParquetShuffler(path, ["id"], batch_size=64, drop_last=True).batches(0))
    shards = [np.concatenate([b[:, 0] for b in O.ParquetShuffler(path, ["id"], batch_size=50, rank=r, world_size=3).batches(2)])
              for r in range(3)]
    assert np.array_equal(np.sort(np.concatenate(shards)), np.arange(n))
    assert sum(len(x) for x in shards) == n
    assert abs(np.corrcoef(e0, np.arange(n))[0, 1]) < 0.5  # far from the file order
    assert s.peak_bytes <= s.held_bytes


def test_shuffler_budget_and_transform(id_file):
    path, n = id_file
    s = O.ParquetShuffler(path, ["id", "x"], batch_size=32, buffer_rows=256, chunk_rows=64, memory_budget_bytes=20_000,
                          transform=lambda b: b * 2)
    out = np.concatenate(list(s.batches(0)))
    assert np.array_equal(np.sort(out[:, 0]), 2 * np.arange(n))
    assert s.peak_bytes <= s.held_bytes <= 20_000
    with pytest.raises(ConfigError, match="over memory_budget_bytes=10000"):
        O.ParquetShuffler(path, ["id", "x"], batch_size=32, buffer_rows=256, chunk_rows=64, memory_budget_bytes=10_000)


# --- bad input ------------------------------------------------------------------------------------------------------------


def test_bad_input_gets_named_errors(id_file, tmp_path):
    path, _ = id_file
    cases = [
        (lambda: O.RunningMoments().update("abc"), DataError, "chunk must be numeric"),
        (lambda: O.RunningMoments().update(np.zeros((2, 2, 2))), DataError, "must have shape (rows, columns)"),
        (lambda: O.RunningMoments().merge(3), DataError, "can only merge another RunningMoments"),
        (lambda: O.RunningMoments().update(np.ones((3, 2))).merge(O.RunningMoments().update(np.ones(3))), DataError, "cannot merge"),
        (lambda: O.RunningMoments().update(np.ones(3)).var(ddof=-1), ConfigError, "ddof must be an integer >= 0"),
        (lambda: O.streaming_moments(tmp_path / "none.parquet"), DataError, "Parquet file not found"),
        (lambda: O.streaming_moments(None), DataError, "parquet path must be a str or os.PathLike"),
        (lambda: list(O.parquet_chunks(path, "id")), ConfigError, "columns must be a non-empty list"),
        (lambda: list(O.parquet_chunks(path, ["id"], row_groups=[99])), ConfigError, "a row group must be an integer in [0, 14]"),
        (lambda: list(O.parquet_chunks(path, ["id"], chunk_rows=0)), ConfigError, "chunk_rows must be an integer in [1, "),
        (lambda: O.ParquetShuffler(path, ["id"], rank=2, world_size=2), ConfigError, "rank must be an integer in [0, 1]"),
        (lambda: O.ParquetShuffler(path, ["id"], drop_last="no"), ConfigError, "drop_last must be True or False"),
        (lambda: O.ParquetShuffler(path, ["id"], transform=3), ConfigError, "transform must be callable"),
        (lambda: O.ParquetShuffler(path, ["id"], world_size=100), ConfigError, "fewer than the 100 ranks"),
        (lambda: O.ParquetShuffler(path, ["id"], seed=-1), ConfigError, "seed must be an integer >= 0"),
    ]
    for call, err, text in cases:
        with pytest.raises(err) as info:
            call()
        assert text in str(info.value), (text, str(info.value))


def test_import_stays_light():
    code = ("import sys, mlsys.modeling.outofcore; "
            "print(','.join(m for m in ('torch', 'pyarrow.parquet') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
