"""modeling.parallelism: model-parallel and pipeline runs on real processes equal to one process, the GPipe bubble
formula against its schedule, and gradient checkpointing's peak memory with equal gradients."""
import json
import subprocess
import sys

import numpy as np
import pytest

from mlsys.core import ConfigError, DataError

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

import mlsys.modeling.distributed as D
import mlsys.modeling.parallelism as P

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def data():
    X, y = D.digits_tensors()
    return X[:1400], y[:1400], X[1400:], y[1400:]


@pytest.fixture(scope="module")
def pool2():
    with D.Workers(world_size=2, rendezvous_timeout_s=120, timeout_s=300) as w:
        yield w


# --- model and pipeline parallelism ------------------------------------------------------------------------------------


def test_model_parallel_and_pipeline_equal_single_process(pool2, data):
    X, y, _, _ = data
    cfg = dict(steps=3, global_batch=48, lr=0.2, width=16, depth=4, seed=1)
    ref = D.single_process_train(X, y, **cfg)
    parts = pool2.run(P.model_parallel_train, X, y, **cfg)
    assert set(parts[0]["state"]).isdisjoint(parts[1]["state"])
    assert D.max_abs_diff({**parts[0]["state"], **parts[1]["state"]}, ref["state"]) < 1e-5
    for m, schedule in [(1, "gpipe"), (3, "gpipe"), (4, "1f1b")]:
        res = pool2.run(P.pipeline_train, X, y, microbatches=m, schedule=schedule, **cfg)
        assert D.max_abs_diff({**res[0]["state"], **res[1]["state"]}, ref["state"]) < 1e-5, (m, schedule)
        np.testing.assert_allclose(res[1]["losses"], ref["losses"], rtol=1e-4)
        bubble = P.measured_bubble(res)
        assert len(bubble) == 2 and bubble["bubble"].between(0, 1, inclusive="left").all()
        events = res[0]["timings"][-1]["events"]
        assert sum(e[0] == "forward" for e in events) == m and sum(e[0] == "backward end" for e in events) == m


# --- pipeline theory, checkpointing ------------------------------------------------------------------------------------


def test_gpipe_theory_matches_its_schedule():
    for p in range(1, 6):
        fractions = []
        for m in range(1, 13):
            tl = P.gpipe_timeline(p, m)
            busy = tl[tl["phase"] != "idle"]
            assert len(busy) == 2 * m * p and not busy.duplicated(["stage", "phase", "microbatch"]).any()
            # a stage runs micro-batch i forward only after the stage before did
            f = busy[busy["phase"] == "forward"].set_index(["stage", "microbatch"])["slot"]
            assert all(f[(s, i)] > f[(s - 1, i)] for s in range(1, p) for i in range(m))
            fractions.append(P.gpipe_bubble_fraction(p, m))
            assert abs((tl["phase"] == "idle").mean() - fractions[-1]) < 1e-12
        assert all(0 <= a < 1 for a in fractions)
        assert all(a > b for a, b in zip(fractions, fractions[1:])) or p == 1


def test_stage_bounds_cover_the_model():
    for depth in range(1, 9):
        for stages in range(1, depth + 1):
            b = P.stage_bounds(depth, stages)
            assert b[0][0] == 0 and b[-1][1] == 2 * depth + 1 and len(b) == stages
            assert all(x[1] == y[0] for x, y in zip(b, b[1:])) and all(hi > lo for lo, hi in b)


def test_checkpointing_lowers_peak_memory_with_equal_gradients(capsys):
    # a fresh process: in the suite's process, memory freed by earlier tests (TensorFlow's, torch's) is reused without
    # raising the resident size, so the in-process peaks read the same 0.25 MiB with and without checkpointing
    df = P.checkpoint_cost(depth=8, width=256, batch=256, segments=(0, 4), repeats=2, fresh_process=True)
    assert list(df.index) == [0, 4]
    assert (df["max_grad_diff"] == 0).all()
    assert df.loc[4, "peak_mib"] < df.loc[0, "peak_mib"]
    assert df.loc[0, "activations at the peak (theory, MiB)"] == 8 * 0.25
    assert D.main(["checkpoint-cost", "--depth", "4", "--width", "64", "--batch", "64", "--segments", "0", "2", "--repeats", "1"]) == 0
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [r["segments"] for r in rows] == [0, 2] and all(r["max_grad_diff"] == 0 for r in rows)


# --- bad input ------------------------------------------------------------------------------------------------------------


def test_bad_input_gets_named_errors(data):
    X, y, _, _ = data
    cases = [
        (lambda: P.pipeline_train(0, 2, X, y, microbatches=5, global_batch=64), ConfigError, "microbatches=5 does not divide"),
        (lambda: P.pipeline_train(0, 2, X, y, microbatches=2.0), ConfigError, "microbatches must be an integer"),
        (lambda: P.pipeline_train(0, 2, X, y, schedule=None), ConfigError, "schedule must be one of"),
        (lambda: P.pipeline_train(0, 2, X, y, schedule="interleaved"), ConfigError, "schedule must be one of"),
        (lambda: P.pipeline_train(0, 1, X, y), D.WorldSizeError, "at least 2 processes"),
        (lambda: P.model_parallel_train(0, 3, X, y, depth=2), ConfigError, "cannot be split over 3 stages"),
        (lambda: P.stage_bounds(0, 1), ConfigError, "depth must be an integer >= 1"),
        (lambda: P.gpipe_bubble_fraction(2, 0), ConfigError, "microbatches must be an integer >= 1"),
        (lambda: P.gpipe_timeline(0, 4), ConfigError, "stages must be an integer in [1, 64]"),
        (lambda: P.checkpoint_cost(depth=2, segments=[6]), ConfigError, "a segment count must be an integer in [0, 5]"),
        (lambda: P.checkpoint_cost(segments=[]), ConfigError, "non-empty list"),
        (lambda: P.checkpoint_step_cost(depth=512, width=8192, batch=1024), ConfigError, "too large"),
        (lambda: P.measured_bubble([{"timings": []}]), DataError, "at least 2 ranks"),
    ]
    for call, err, text in cases:
        with pytest.raises(err) as info:
            call()
        assert text in str(info.value), (text, str(info.value))


def test_import_stays_light():
    code = ("import sys, mlsys.modeling.parallelism; "
            "print(','.join(m for m in ('torch', 'pyarrow.parquet') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
