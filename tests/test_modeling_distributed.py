"""modeling.distributed: real multi-process runs (DDP = single process, parameter server staleness), rendezvous errors
instead of hangs (spawned and under torchrun), and the names that moved to modeling.parallelism and modeling.outofcore
staying importable from here."""
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from mlsys.core import ConfigError, DataError

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


# --- bad input ------------------------------------------------------------------------------------------------------------


def test_bad_input_gets_named_errors(data, tmp_path):
    X, y, _, _ = data
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
        (lambda: D.parameter_server_train(0, 2, X, y, mode="ASYNC"), ConfigError, "mode must be one of"),
        (lambda: D.parameter_server_train(0, 2, X, y, mode=["async"]), ConfigError, "mode must be one of"),
        (lambda: D.parameter_server_train(0, 2, X, y, batch=5000), ConfigError, "batch must be an integer in [1, 1400]"),
        (lambda: D.parameter_server_train(0, 2, X, y, gradients=0), ConfigError, "gradients must be an integer >= 1"),
        (lambda: D.batch_schedule(10, 11, 1), ConfigError, "global_batch=11 is larger than the 10 training rows"),
        (lambda: D.batch_schedule(10, 5, 10**8), ConfigError, "too many"),
        (lambda: D.linear_scaled_lr(0.1, 0, 64), ConfigError, "base_batch must be an integer >= 1"),
        (lambda: D.warmup_lr(-1, 0.1, 1.0, 10), ConfigError, "step must be an integer >= 0"),
        (lambda: D.warmup_lr(0, 0.1, float("nan"), 10), ConfigError, "peak_lr must be a finite number > 0"),
        (lambda: D.large_batch_run(X, y, X, y, batch=0), ConfigError, "batch must be an integer in [1, 1400]"),
        (lambda: D.large_batch_run(X, y, X, y, batch=32, momentum=1.0), ConfigError, "momentum must be"),
        (lambda: D.max_abs_diff({"a": torch.zeros(1)}, {"b": torch.zeros(1)}), DataError, "different parameters"),
        (lambda: D.max_abs_diff({"a": torch.zeros(1)}, {"a": torch.zeros(2)}), DataError, "has shape (1,) in one and (2,)"),
        (lambda: D.max_abs_diff([], {}), DataError, "compares two state dicts"),
        (lambda: D.snapshot_curve({}, X, y), DataError, "rank 0's result of parameter_server_train"),
        (lambda: D.Workers(world_size=2, nprocs=3), ConfigError, "nprocs must be an integer in [1, 2]"),
        (lambda: D.Workers(world_size=True), ConfigError, "world_size must be an integer"),
        (lambda: D.Workers(rendezvous_timeout_s=0), ConfigError, "rendezvous_timeout_s must be a finite number > 0"),
        (lambda: D.Workers(backend="nccl") if not torch.cuda.is_available() else D.Workers(backend="x"), ConfigError, "backend"),
        (lambda: closed.run(D.hello), ConfigError, "the workers are not running"),
        (lambda: D.join_process_group(3, 2), D.WorldSizeError, "rank 3 is outside a world of 2 processes"),
        (lambda: D.join_process_group(0, 2, master_port=70000), ConfigError, "master_port must be an integer in [0, 65535]"),
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


# --- names that moved --------------------------------------------------------------------------------------------------


OLD_ALL = ["BACKENDS", "PS_MODES", "SCHEDULES", "WorldSizeError", "DistributedError", "free_port", "default_backend",
           "join_process_group", "env_process_group", "Workers", "hello", "batch_schedule", "ddp_train",
           "single_process_train", "max_abs_diff", "parameter_server_train", "snapshot_curve", "linear_scaled_lr",
           "warmup_lr", "large_batch_run", "stage_bounds", "model_parallel_train", "gpipe_bubble_fraction",
           "gpipe_timeline", "pipeline_train", "measured_bubble", "checkpoint_step_cost", "checkpoint_cost",
           "RunningMoments", "parquet_chunks", "streaming_moments", "ParquetShuffler", "digits_tensors", "main"]


def test_every_old_name_stays_importable_from_distributed():
    import pickle

    import mlsys.modeling.outofcore as O
    import mlsys.modeling.parallelism as P

    assert set(OLD_ALL) == set(D.__all__) | set(P.__all__) | set(O.__all__)
    for module in (P, O):
        for name in module.__all__:
            assert getattr(D, name) is getattr(module, name), name
            assert name in dir(D)
    # a task sent to the workers is pickled by its new, importable name
    assert pickle.loads(pickle.dumps(D.pipeline_train)) is P.pipeline_train
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        _ = D.nope


def test_moved_names_import_in_a_fresh_process_either_way_round():
    for code, want in [
        ("from mlsys.modeling.distributed import pipeline_train, ParquetShuffler; print(pipeline_train.__module__)",
         "mlsys.modeling.parallelism"),
        ("import mlsys.modeling.parallelism as P, mlsys.modeling.distributed as D; print(D.pipeline_train is P.pipeline_train)",
         "True"),
        ("import mlsys.modeling.outofcore as O, mlsys.modeling.distributed as D; print(D.RunningMoments is O.RunningMoments)",
         "True"),
    ]:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
        assert out == want, (code, out)
