"""modeling.distributed: real multi-process runs (DDP = single process, model/pipeline parallel = single process, parameter
server staleness), rendezvous errors instead of hangs (spawned and under torchrun), and the out-of-core statistics and shuffler
against pandas over randomized chunkings."""
import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from mlsys.core import ConfigError, DataError, SchemaError

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

import mlsys.modeling.distributed as D

torch.set_num_threads(1)
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def data():
    X, y = D.digits_tensors()
    return X[:1400], y[:1400], X[1400:], y[1400:]


@pytest.fixture(scope="module")
def pool2():
    with D.Workers(world_size=2, rendezvous_timeout_s=120, timeout_s=300) as w:
        yield w


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- data parallelism -------------------------------------------------------------------------------------------------


def test_ddp_weights_equal_single_process(pool2, data):
    X, y, _, _ = data
    cfg = dict(steps=12, global_batch=48, lr=0.2, width=24, depth=2, seed=3)
    out = pool2.run(D.ddp_train, X, y, **cfg)
    ref = D.single_process_train(X, y, **cfg)
    assert [o["rank"] for o in out] == [0, 1]
    assert D.max_abs_diff(out[0]["state"], out[1]["state"]) == 0.0
    assert D.max_abs_diff(out[0]["state"], ref["state"]) < 1e-5
    np.testing.assert_allclose((np.array(out[0]["losses"]) + np.array(out[1]["losses"])) / 2, ref["losses"], rtol=1e-5)
    # and the weights did move: the equality is not that of two untrained models
    init = D.single_process_train(X, y, **{**cfg, "steps": 1})["state"]
    assert D.max_abs_diff(init, ref["state"]) > 1e-3


def test_straggler_run_records_per_rank_times(pool2, data):
    X, y, _, _ = data
    out = pool2.run(D.ddp_train, X, y, steps=5, global_batch=32, delays={1: 0.01})
    for o in out:
        assert len(o["step_s"]) == len(o["work_s"]) == 5
        assert all(s >= w > 0 for s, w in zip(o["step_s"], o["work_s"]))
    assert min(out[1]["work_s"]) >= 0.01  # the straggler did its extra work


def test_model_parallel_and_pipeline_equal_single_process(pool2, data):
    X, y, _, _ = data
    cfg = dict(steps=3, global_batch=48, lr=0.2, width=16, depth=4, seed=1)
    ref = D.single_process_train(X, y, **cfg)
    parts = pool2.run(D.model_parallel_train, X, y, **cfg)
    assert set(parts[0]["state"]).isdisjoint(parts[1]["state"])
    assert D.max_abs_diff({**parts[0]["state"], **parts[1]["state"]}, ref["state"]) < 1e-5
    for m, schedule in [(1, "gpipe"), (3, "gpipe"), (4, "1f1b")]:
        res = pool2.run(D.pipeline_train, X, y, microbatches=m, schedule=schedule, **cfg)
        assert D.max_abs_diff({**res[0]["state"], **res[1]["state"]}, ref["state"]) < 1e-5, (m, schedule)
        np.testing.assert_allclose(res[1]["losses"], ref["losses"], rtol=1e-4)
        bubble = D.measured_bubble(res)
        assert len(bubble) == 2 and bubble["bubble"].between(0, 1, inclusive="left").all()
        events = res[0]["timings"][-1]["events"]
        assert sum(e[0] == "forward" for e in events) == m and sum(e[0] == "backward end" for e in events) == m


def test_task_errors_keep_the_pool_when_every_rank_refused(pool2, data):
    X, y, _, _ = data
    with pytest.raises(ConfigError, match=r"^rank 0: global_batch=33 does not split evenly over 2 processes"):
        pool2.run(D.ddp_train, X, y, global_batch=33)
    assert [o["sum of ranks"] for o in pool2.run(D.hello)] == [1, 1]
    with pytest.raises(ConfigError, match="module-level function"):
        pool2.run(lambda rank, world_size: rank)
    with pytest.raises(ConfigError, match="cannot be sent to the workers"):
        pool2.run(D.hello, lambda: 1)


def test_parameter_server_async_and_sync(data):
    X, y, Xv, yv = data
    cfg = dict(gradients=40, batch=16, lr=0.2, width=16, depth=1, seed=0, snapshot_every=5)
    with D.Workers(world_size=3, backend="gloo", rendezvous_timeout_s=120) as w:
        a = w.run(D.parameter_server_train, X, y, mode="async", delays={2: 0.005}, **cfg)
        s = w.run(D.parameter_server_train, X, y, mode="sync", **cfg)
        with pytest.raises(ConfigError, match="gradients=41 does not split into synchronous rounds"):
            w.run(D.parameter_server_train, X, y, mode="sync", **{**cfg, "gradients": 41})
    srv = a[0]
    assert len(srv["staleness"]) == len(srv["worker"]) == 40 == srv["updates"]
    assert (srv["staleness"] >= 0).all() and set(srv["worker"]) <= {1, 2}
    assert sum(r["gradients"] for r in a[1:]) == 40 + srv["discarded"] and srv["discarded"] <= 1
    assert s[0]["updates"] == 20 and (s[0]["staleness"] == 0).all() and [r["gradients"] for r in s[1:]] == [20, 20]
    for res in (a, s):
        curve = D.snapshot_curve(res[0], Xv, yv, width=16, depth=1)
        assert curve["updates"].is_monotonic_increasing and curve["samples"].iloc[-1] == 40 * 16
        assert curve["accuracy"].iloc[-1] > max(0.3, curve["accuracy"].iloc[0])  # it learned (chance is 0.1)


# --- rendezvous errors, not hangs ---------------------------------------------------------------------------------------


def test_fewer_processes_than_world_size_is_a_named_error():
    t0 = time.monotonic()
    with pytest.raises(D.WorldSizeError, match="world_size=2 but only 1 of 2 processes joined the rendezvous"):
        D.Workers(world_size=2, nprocs=1, rendezvous_timeout_s=2).start()
    assert time.monotonic() - t0 < 200


def test_workers_do_not_outlive_a_killed_parent(tmp_path):
    code = ("import os, signal, mlsys.modeling.distributed as D\n"
            "w = D.Workers(2).start()\n"
            "print(' '.join(str(p.pid) for p in w._procs), flush=True)\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=300, cwd=tmp_path)
    assert p.returncode == -9
    pids = [int(x) for x in p.stdout.split()]
    assert len(pids) == 2

    def alive(pid):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        with open(f"/proc/{pid}/stat") as f:  # a zombie waiting to be reaped is gone too
            return f.read().split(")")[-1].split()[0] != "Z"

    deadline = time.monotonic() + 60
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(pid) for pid in pids)


def test_manual_launch_with_missing_peer_times_out(tmp_path):
    env = {**ENV, "RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())}
    p = subprocess.run([sys.executable, "-m", "mlsys.modeling.distributed", "ddp", "--rendezvous-timeout", "2"],
                       capture_output=True, text=True, env={**env, "TMPDIR": str(tmp_path)}, timeout=300, cwd=tmp_path)
    assert p.returncode == 2, p.stderr[-2000:]
    assert "WorldSizeError: world_size=2 but only 1 of 2 processes joined" in p.stderr


def test_torchrun_ddp_equals_single_process(tmp_path, data):
    X, y, _, _ = data
    out = tmp_path / "result.pt"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port",
           str(_free_port()), "-m", "mlsys.modeling.distributed", "ddp", "--steps", "6", "--world-size", "2", "--out", str(out)]
    p = subprocess.run(cmd, capture_output=True, text=True, env={**ENV, "TMPDIR": str(tmp_path)}, timeout=600, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    got = torch.load(out, weights_only=False)
    ref = D.single_process_train(X, y, steps=6, global_batch=64, lr=0.2, width=32, depth=2, seed=0)
    assert got["rank"] == 0 and D.max_abs_diff(got["state"], ref["state"]) < 1e-5
    assert p.stdout.count('"world_size": 2') == 2


def test_env_process_group_errors(monkeypatch, capsys):
    for k in ["RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"]:
        monkeypatch.delenv(k, raising=False)
    with pytest.raises(ConfigError, match="RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT not set: launch with torchrun"):
        D.env_process_group()
    assert D.main(["ddp"]) == 2 and "ConfigError: RANK, WORLD_SIZE" in capsys.readouterr().err
    monkeypatch.setenv("RANK", "0"); monkeypatch.setenv("WORLD_SIZE", "two")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1"); monkeypatch.setenv("MASTER_PORT", "1")
    with pytest.raises(ConfigError, match="WORLD_SIZE='two' is not an integer"):
        D.env_process_group()
    monkeypatch.setenv("WORLD_SIZE", "2")  # what torchrun --nproc_per_node 2 sets, against an expected 4
    monkeypatch.setenv("TORCHELASTIC_USE_AGENT_STORE", "True")
    with pytest.raises(D.WorldSizeError, match="world size 4 was asked for but 2 processes were launched"):
        D.env_process_group(world_size=4)
    assert D.main(["ddp", "--world-size", "4"]) == 2
    assert "WorldSizeError: world size 4 was asked for but 2 processes were launched (WORLD_SIZE=2)" in capsys.readouterr().err


# --- pipeline theory, checkpointing ------------------------------------------------------------------------------------


def test_gpipe_theory_matches_its_schedule():
    for p in range(1, 6):
        fractions = []
        for m in range(1, 13):
            tl = D.gpipe_timeline(p, m)
            busy = tl[tl["phase"] != "idle"]
            assert len(busy) == 2 * m * p and not busy.duplicated(["stage", "phase", "microbatch"]).any()
            # a stage runs micro-batch i forward only after the stage before did
            f = busy[busy["phase"] == "forward"].set_index(["stage", "microbatch"])["slot"]
            assert all(f[(s, i)] > f[(s - 1, i)] for s in range(1, p) for i in range(m))
            fractions.append(D.gpipe_bubble_fraction(p, m))
            assert abs((tl["phase"] == "idle").mean() - fractions[-1]) < 1e-12
        assert all(0 <= a < 1 for a in fractions)
        assert all(a > b for a, b in zip(fractions, fractions[1:])) or p == 1


def test_stage_bounds_cover_the_model():
    for depth in range(1, 9):
        for stages in range(1, depth + 1):
            b = D.stage_bounds(depth, stages)
            assert b[0][0] == 0 and b[-1][1] == 2 * depth + 1 and len(b) == stages
            assert all(x[1] == y[0] for x, y in zip(b, b[1:])) and all(hi > lo for lo, hi in b)


def test_checkpointing_lowers_peak_memory_with_equal_gradients(capsys):
    df = D.checkpoint_cost(depth=8, width=256, batch=256, segments=(0, 4), repeats=2, fresh_process=False)
    assert list(df.index) == [0, 4]
    assert (df["max_grad_diff"] == 0).all()
    assert df.loc[4, "peak_mib"] < df.loc[0, "peak_mib"]
    assert df.loc[0, "activations at the peak (theory, MiB)"] == 8 * 0.25
    assert D.main(["checkpoint-cost", "--depth", "4", "--width", "64", "--batch", "64", "--segments", "0", "2", "--repeats", "1"]) == 0
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [r["segments"] for r in rows] == [0, 2] and all(r["max_grad_diff"] == 0 for r in rows)


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
            stats = D.RunningMoments()
            for p in pieces:
                stats.update(p)
        else:  # one RunningMoments per piece (per process, say), merged in a random tree
            parts = [D.RunningMoments().update(p) for p in pieces]
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
        stats = D.streaming_moments(path, chunk_rows=chunk_rows)
        _check_against_pandas(stats, df.astype({"ints": "float64", "flag": "float64"}))
    df["text"] = "a"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "t.parquet")
    with pytest.raises(SchemaError, match="column 'text' of .* is (large_)?string, not numeric"):
        D.streaming_moments(tmp_path / "t.parquet")
    with pytest.raises(SchemaError, match=r"lacks column \['nope'\]"):
        D.streaming_moments(path, ["nope"])
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(DataError, match="is not a readable Parquet file"):
        D.streaming_moments(tmp_path / "bad.parquet")


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
    s = D.ParquetShuffler(path, ["id", "x"], batch_size=64, buffer_rows=500, chunk_rows=128, seed=4)
    e0 = np.concatenate([b[:, 0] for b in s.batches(0)])
    e1 = np.concatenate([b[:, 0] for b in s.batches(1)])
    assert np.array_equal(np.sort(e0), np.arange(n)) and np.array_equal(np.sort(e1), np.arange(n))
    assert not np.array_equal(e0, e1) and not np.array_equal(e0, np.arange(n))
    again = np.concatenate([b[:, 0] for b in D.ParquetShuffler(path, ["id", "x"], batch_size=64, buffer_rows=500,
                                                                chunk_rows=128, seed=4).batches(0)])
    assert np.array_equal(e0, again)  # deterministic for a seed
    sizes = [len(b) for b in s.batches(0)]
    assert set(sizes[:-1]) == {64} and sizes[-1] == n % 64
    assert all(len(b) == 64 for b in D.ParquetShuffler(path, ["id"], batch_size=64, drop_last=True).batches(0))
    shards = [np.concatenate([b[:, 0] for b in D.ParquetShuffler(path, ["id"], batch_size=50, rank=r, world_size=3).batches(2)])
              for r in range(3)]
    assert np.array_equal(np.sort(np.concatenate(shards)), np.arange(n))
    assert sum(len(x) for x in shards) == n
    assert abs(np.corrcoef(e0, np.arange(n))[0, 1]) < 0.5  # far from the file order
    assert s.peak_bytes <= s.held_bytes


def test_shuffler_budget_and_transform(id_file):
    path, n = id_file
    s = D.ParquetShuffler(path, ["id", "x"], batch_size=32, buffer_rows=256, chunk_rows=64, memory_budget_bytes=20_000,
                          transform=lambda b: b * 2)
    out = np.concatenate(list(s.batches(0)))
    assert np.array_equal(np.sort(out[:, 0]), 2 * np.arange(n))
    assert s.peak_bytes <= s.held_bytes <= 20_000
    with pytest.raises(ConfigError, match="over memory_budget_bytes=10000"):
        D.ParquetShuffler(path, ["id", "x"], batch_size=32, buffer_rows=256, chunk_rows=64, memory_budget_bytes=10_000)


# --- bad input ------------------------------------------------------------------------------------------------------------


def test_bad_input_gets_named_errors(data, id_file, tmp_path):
    X, y, _, _ = data
    path, _ = id_file
    closed = D.Workers(2)
    cases = [
        (lambda: D.ddp_train(0, 2, X, y, global_batch=63), ConfigError, "global_batch=63 does not split evenly over 2 processes"),
        (lambda: D.ddp_train(0, 2, X, y, global_batch=-4), ConfigError, "global_batch must be an integer >= 1"),
        (lambda: D.ddp_train(0, 2, X, y, steps=0), ConfigError, "steps must be an integer >= 1"),
        (lambda: D.ddp_train(0, 2, X, y, lr=float("inf")), ConfigError, "lr must be a finite number > 0"),
        (lambda: D.ddp_train(0, 2, X.numpy(), y), DataError, "X must be a non-empty 2-d float tensor"),
        (lambda: D.ddp_train(0, 2, X[:0], y[:0]), DataError, "X must be a non-empty 2-d float tensor"),
        (lambda: D.ddp_train(0, 2, X * float("nan"), y), DataError, "NaN or infinite"),
        (lambda: D.ddp_train(0, 2, X, y[:10]), DataError, "y must be an int64 tensor of shape (1400,)"),
        (lambda: D.ddp_train(0, 2, X, y - 5), DataError, "class indices >= 0"),
        (lambda: D.ddp_train(0, 2, X, y, delays=[0.1]), ConfigError, "delays must map ranks to seconds"),
        (lambda: D.ddp_train(0, 2, X, y, delays={1: -1}), ConfigError, "delays[1] must be a finite number >= 0"),
        (lambda: D.pipeline_train(0, 2, X, y, microbatches=5, global_batch=64), ConfigError, "microbatches=5 does not divide"),
        (lambda: D.pipeline_train(0, 2, X, y, microbatches=2.0), ConfigError, "microbatches must be an integer"),
        (lambda: D.pipeline_train(0, 2, X, y, schedule=None), ConfigError, "schedule must be one of"),
        (lambda: D.pipeline_train(0, 2, X, y, schedule="interleaved"), ConfigError, "schedule must be one of"),
        (lambda: D.pipeline_train(0, 1, X, y), D.WorldSizeError, "at least 2 processes"),
        (lambda: D.model_parallel_train(0, 3, X, y, depth=2), ConfigError, "cannot be split over 3 stages"),
        (lambda: D.parameter_server_train(0, 2, X, y, mode="ASYNC"), ConfigError, "mode must be one of"),
        (lambda: D.parameter_server_train(0, 2, X, y, mode=["async"]), ConfigError, "mode must be one of"),
        (lambda: D.parameter_server_train(0, 2, X, y, batch=5000), ConfigError, "batch must be an integer in [1, 1400]"),
        (lambda: D.parameter_server_train(0, 2, X, y, gradients=0), ConfigError, "gradients must be an integer >= 1"),
        (lambda: D.batch_schedule(10, 11, 1), ConfigError, "global_batch=11 is larger than the 10 training rows"),
        (lambda: D.batch_schedule(10, 5, 10**8), ConfigError, "too many"),
        (lambda: D.stage_bounds(0, 1), ConfigError, "depth must be an integer >= 1"),
        (lambda: D.gpipe_bubble_fraction(2, 0), ConfigError, "microbatches must be an integer >= 1"),
        (lambda: D.gpipe_timeline(0, 4), ConfigError, "stages must be an integer in [1, 64]"),
        (lambda: D.linear_scaled_lr(0.1, 0, 64), ConfigError, "base_batch must be an integer >= 1"),
        (lambda: D.warmup_lr(-1, 0.1, 1.0, 10), ConfigError, "step must be an integer >= 0"),
        (lambda: D.warmup_lr(0, 0.1, float("nan"), 10), ConfigError, "peak_lr must be a finite number > 0"),
        (lambda: D.large_batch_run(X, y, X, y, batch=0), ConfigError, "batch must be an integer in [1, 1400]"),
        (lambda: D.large_batch_run(X, y, X, y, batch=32, momentum=1.0), ConfigError, "momentum must be"),
        (lambda: D.checkpoint_cost(depth=2, segments=[6]), ConfigError, "a segment count must be an integer in [0, 5]"),
        (lambda: D.checkpoint_cost(segments=[]), ConfigError, "non-empty list"),
        (lambda: D.checkpoint_step_cost(depth=512, width=8192, batch=1024), ConfigError, "too large"),
        (lambda: D.max_abs_diff({"a": torch.zeros(1)}, {"b": torch.zeros(1)}), DataError, "different parameters"),
        (lambda: D.max_abs_diff({"a": torch.zeros(1)}, {"a": torch.zeros(2)}), DataError, "has shape (1,) in one and (2,)"),
        (lambda: D.max_abs_diff([], {}), DataError, "compares two state dicts"),
        (lambda: D.measured_bubble([{"timings": []}]), DataError, "at least 2 ranks"),
        (lambda: D.snapshot_curve({}, X, y), DataError, "rank 0's result of parameter_server_train"),
        (lambda: D.Workers(world_size=2, nprocs=3), ConfigError, "nprocs must be an integer in [1, 2]"),
        (lambda: D.Workers(world_size=True), ConfigError, "world_size must be an integer"),
        (lambda: D.Workers(rendezvous_timeout_s=0), ConfigError, "rendezvous_timeout_s must be a finite number > 0"),
        (lambda: D.Workers(backend="nccl") if not torch.cuda.is_available() else D.Workers(backend="x"), ConfigError, "backend"),
        (lambda: closed.run(D.hello), ConfigError, "the workers are not running"),
        (lambda: D.join_process_group(3, 2), D.WorldSizeError, "rank 3 is outside a world of 2 processes"),
        (lambda: D.join_process_group(0, 2, master_port=70000), ConfigError, "master_port must be an integer in [0, 65535]"),
        (lambda: D.RunningMoments().update("abc"), DataError, "chunk must be numeric"),
        (lambda: D.RunningMoments().update(np.zeros((2, 2, 2))), DataError, "must have shape (rows, columns)"),
        (lambda: D.RunningMoments().merge(3), DataError, "can only merge another RunningMoments"),
        (lambda: D.RunningMoments().update(np.ones((3, 2))).merge(D.RunningMoments().update(np.ones(3))), DataError, "cannot merge"),
        (lambda: D.RunningMoments().update(np.ones(3)).var(ddof=-1), ConfigError, "ddof must be an integer >= 0"),
        (lambda: D.streaming_moments(tmp_path / "none.parquet"), DataError, "Parquet file not found"),
        (lambda: D.streaming_moments(None), DataError, "parquet path must be a str or os.PathLike"),
        (lambda: list(D.parquet_chunks(path, "id")), ConfigError, "columns must be a non-empty list"),
        (lambda: list(D.parquet_chunks(path, ["id"], row_groups=[99])), ConfigError, "a row group must be an integer in [0, 14]"),
        (lambda: list(D.parquet_chunks(path, ["id"], chunk_rows=0)), ConfigError, "chunk_rows must be an integer in [1, "),
        (lambda: D.ParquetShuffler(path, ["id"], rank=2, world_size=2), ConfigError, "rank must be an integer in [0, 1]"),
        (lambda: D.ParquetShuffler(path, ["id"], drop_last="no"), ConfigError, "drop_last must be True or False"),
        (lambda: D.ParquetShuffler(path, ["id"], transform=3), ConfigError, "transform must be callable"),
        (lambda: D.ParquetShuffler(path, ["id"], world_size=100), ConfigError, "fewer than the 100 ranks"),
        (lambda: D.ParquetShuffler(path, ["id"], seed=-1), ConfigError, "seed must be an integer >= 0"),
    ]
    for call, err, text in cases:
        with pytest.raises(err) as info:
            call()
        assert text in str(info.value), (text, str(info.value))


def test_import_stays_light():
    code = ("import sys, mlsys.modeling.distributed, mlsys.modeling.debugging; "
            "print(','.join(m for m in ('torch', 'pyarrow.parquet') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
