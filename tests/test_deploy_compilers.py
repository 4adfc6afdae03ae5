"""deploy.compilers: the explicit numba kernels against numpy (randomized), torch.compile's checks and fallback, ONNX
Runtime's levels, and the autotuner: its search against brute force, its bad-input errors, and its per-machine cache
(hits, refusals of damaged or crafted entries, a writer killed mid-write)."""
import json
import math
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("numba")

from mlsys.core import ConfigError, DataError, IntegrityError
from mlsys.deploy import compilers as C


# ---------------------------------------------------------------- kernels against numpy

def _close_to_numpy(got, ref, bound):
    "Finite results within the rounding bound of any summation order; NaN and infinities exactly where numpy has them."
    fin = np.isfinite(ref)
    assert np.array_equal(np.isnan(got), np.isnan(ref))
    assert np.array_equal(got[~fin & ~np.isnan(ref)], ref[~fin & ~np.isnan(ref)])
    assert np.all(np.abs(got[fin] - ref[fin]) <= bound[fin])


def _case(rng, special: bool):
    n, k, m = (int(rng.choice([0, 1, 1, 2, 3, 17, 64, 65, 97])) for _ in range(3))
    k = max(k, 1) if rng.random() < 0.9 else k  # a few empty inner dimensions (all-zero products)
    dtype = rng.choice(["float32", "float64"])
    A, B = rng.standard_normal((n, k)).astype(dtype), rng.standard_normal((k, m)).astype(dtype)
    if special and A.size:
        idx = rng.integers(0, A.size, size=max(1, A.size // 20))
        A.flat[idx] = rng.choice([np.nan, np.inf, -np.inf], size=len(idx))
    return A, B, int(rng.integers(1, 70))


def _bound(A, B, extra=0.0):
    eps = np.finfo(A.dtype).eps
    with np.errstate(invalid="ignore"):
        mag = np.abs(A) @ np.abs(B) + extra
    return 2 * (A.shape[1] + 1) * eps * mag + np.finfo(A.dtype).tiny


def test_matmul_equals_numpy_on_random_shapes_dtypes_and_tiles():
    rng = np.random.default_rng(0)
    for case in range(240):
        A, B, tile = _case(rng, special=case % 5 == 0)
        with np.errstate(invalid="ignore"):
            ref = A @ B
        for method in C.MATMUL_METHODS:
            got = C.matmul(A, B, method, tile=tile, threads=1 + case % 2)
            assert got.dtype == A.dtype and got.shape == ref.shape
            _close_to_numpy(got, ref, _bound(A, B))


def test_matmul_accepts_non_contiguous_views():
    rng = np.random.default_rng(1)
    A = rng.standard_normal((40, 30))[::2, ::3]  # strided views are copied to C order first
    B = np.asfortranarray(rng.standard_normal((10, 7)))
    for method in C.MATMUL_METHODS:
        _close_to_numpy(C.matmul(A, B, method, tile=3), A @ B, _bound(A, B))


def test_linear_relu_fused_and_unfused_equal_numpy():
    rng = np.random.default_rng(2)
    for case in range(120):
        X, W, tile = _case(rng, special=case % 6 == 0)
        b = rng.standard_normal(W.shape[1]).astype(W.dtype)
        with np.errstate(invalid="ignore"):
            ref = C.linear_relu_numpy(X, W, b)
        bound = _bound(X, W, np.abs(b))
        for fused in (True, False):
            got = C.linear_relu(X, W, b, fused=fused, tile=tile)
            assert got.dtype == X.dtype
            _close_to_numpy(got, ref, bound)
            assert not (got < 0).any()


@pytest.mark.parametrize("call, exc, words", [
    (lambda A, B: C.matmul(A.tolist(), B), DataError, "A must be a numpy array"),
    (lambda A, B: C.matmul(A[None], B), DataError, "A must be a 2-D matrix"),
    (lambda A, B: C.matmul(A.astype("int64"), B), DataError, "float32 or float64, got int64"),
    (lambda A, B: C.matmul(A.astype("float16"), B.astype("float16")), DataError, "float32 or float64, got float16"),
    (lambda A, B: C.matmul(A, B.astype("float32")), DataError, "same dtype"),
    (lambda A, B: C.matmul(A, B[:-1]), DataError, "A's columns must equal B's rows"),
    (lambda A, B: C.matmul(A, B, tile=0), ConfigError, "tile must be an integer in [1, 4096]"),
    (lambda A, B: C.matmul(A, B, tile=True), ConfigError, "tile must be an integer"),
    (lambda A, B: C.matmul(A, B, tile=2.0), ConfigError, "tile must be an integer"),
    (lambda A, B: C.matmul(A, B, method="blas"), ConfigError, "method must be one of"),
    (lambda A, B: C.matmul(A, B, method=["naive"]), ConfigError, "method must be one of"),
    (lambda A, B: C.matmul(A, B, threads=0), ConfigError, "threads must be an integer in [1,"),
    (lambda A, B: C.matmul(A, B, threads=10_000), ConfigError, "threads must be an integer in [1,"),
    (lambda A, B: C.linear_relu(A, B, np.zeros(B.shape[1] + 1)), DataError, "one per column of W"),
    (lambda A, B: C.linear_relu(A, B, np.zeros(B.shape[1], "float32")), DataError, "1-D float64 array"),
    (lambda A, B: C.linear_relu(A, B, [0.0] * B.shape[1]), DataError, "1-D float64 array"),
    (lambda A, B: C.time_ms(lambda: None, repeats=0), ConfigError, "repeats must be"),
    (lambda A, B: C.time_ms(lambda: None, stat="mean"), ConfigError, "stat must be"),
    (lambda A, B: C.matmul_table(A, B, methods=["fast"]), ConfigError, "methods must be some of"),
])
def test_kernel_bad_input_gets_a_named_error(call, exc, words):
    A, B = np.ones((3, 4)), np.ones((4, 5))
    with pytest.raises(exc, match=None) as e:
        call(A, B)
    assert words in str(e.value)


def test_an_oversized_result_is_refused_before_allocating():
    A = np.broadcast_to(np.float32(1), (1 << 15, 1))  # views of one number: no memory
    B = np.broadcast_to(np.float32(1), (1, 1 << 14))
    with pytest.raises(DataError, match="over MAX_ELEMENTS"):
        C.matmul(A, B)


def test_numba_threads_is_restored():
    numba = pytest.importorskip("numba")
    before = numba.get_num_threads()
    with C.numba_threads(1):
        assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == before
    with pytest.raises(RuntimeError), C.numba_threads(1):
        raise RuntimeError("inside")
    assert numba.get_num_threads() == before


def test_tables_report_every_way_and_equal_outputs():
    rng = np.random.default_rng(3)
    A, B = rng.standard_normal((20, 30)).astype("float32"), rng.standard_normal((30, 10)).astype("float32")
    t = C.matmul_table(A, B, tile=8, threads=1, repeats=1)
    assert list(t.index) == [*C.MATMUL_METHODS, "numpy (BLAS)"] and (t["max |error| vs numpy"] < 1e-4).all()
    f = C.fusion_table(A, B, np.zeros(10, "float32"), tile=8, threads=1, repeats=1)
    assert list(f["passes over the output"]) == [3, 3, 1] and (f["max |error| vs numpy"] < 1e-4).all()


# ---------------------------------------------------------------- torch.compile

TORCH_JIT_DEPRECATION = "ignore:`torch.jit.script_method` is deprecated:DeprecationWarning"  # torch's own import of dynamo


@pytest.mark.torch
@pytest.mark.filterwarnings(TORCH_JIT_DEPRECATION)
def test_compile_torch_reports_failure_and_mismatch_and_keeps_eager():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    x = torch.randn(5, 4)

    def no_compiler(graph, example_inputs):
        raise RuntimeError("no working C++ compiler found")

    def off(graph, example_inputs):
        return lambda *args: tuple(o * 1.01 for o in graph(*args))

    broken = C.compile_torch(model, x, backend=no_compiler)
    assert not broken.ok and broken.module is model and "no working C++ compiler found" in broken.reason
    assert math.isnan(broken.max_abs_diff) and broken.backend == "no_compiler"
    wrong = C.compile_torch(model, x, backend=off)
    assert not wrong.ok and wrong.module is model and "differ from eager" in wrong.reason and wrong.max_abs_diff > 1e-4
    fine = C.compile_torch(model, x, backend="eager")
    assert fine.ok and fine.module is not model and fine.reason == "" and fine.max_abs_diff == 0
    with torch.inference_mode():
        assert torch.equal(fine.module(x), model(x))


@pytest.mark.torch
@pytest.mark.filterwarnings(TORCH_JIT_DEPRECATION)
def test_compile_torch_bad_input():
    torch = pytest.importorskip("torch")
    model, x = torch.nn.Linear(3, 1), torch.randn(2, 3)
    with pytest.raises(ConfigError, match="unknown torch.compile backend 'nope'"):
        C.compile_torch(model, x, backend="nope")
    with pytest.raises(ConfigError, match="model must be a torch.nn.Module"):
        C.compile_torch(lambda t: t, x)
    with pytest.raises(DataError, match="example must be a torch.Tensor"):
        C.compile_torch(model, x.numpy())
    with pytest.raises(ConfigError, match="mode must be one of"):
        C.compile_torch(model, x, mode="fastest")
    with pytest.raises(ConfigError, match="tolerance must be"):
        C.compile_torch(model, x, tolerance=-1)


@pytest.mark.torch
@pytest.mark.slow
@pytest.mark.filterwarnings(TORCH_JIT_DEPRECATION)
def test_compile_torch_inductor_matches_eager():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    x = torch.randn(8, 6)
    r = C.compile_torch(model, x)
    if not r.ok:  # a machine without a working C++ toolchain: the fallback is the behaviour under test
        assert r.module is model and r.reason
        pytest.skip(f"Inductor does not compile here: {r.reason}")
    with torch.inference_mode():
        torch.testing.assert_close(r.module(torch.randn(8, 6) * 0 + x), model(x), atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------- ONNX Runtime

def _mlp_onnx(seed=0) -> bytes:
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(seed)
    inits = [numpy_helper.from_array(rng.standard_normal(s).astype("float32"), n)
             for n, s in [("W1", (6, 16)), ("b1", (16,)), ("W2", (16, 2)), ("b2", (2,))]]
    nodes = [helper.make_node("Gemm", ["input", "W1", "b1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Gemm", ["r", "W2", "b2"], ["output"])]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 6])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [None, 2])], initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10).SerializeToString()


def test_ort_levels_fuse_and_keep_outputs():
    pytest.importorskip("onnxruntime")
    model = _mlp_onnx()
    X = np.random.default_rng(4).standard_normal((32, 6)).astype("float32")
    t = C.ort_levels_table(model, {"input": X}, batch_sizes=(1, 32), repeats=2)
    assert list(t.index) == list(C.ORT_LEVELS)
    assert (t["max |diff| vs disable_all"] <= 1e-5).all()
    assert C.optimized_ops(model, "disable_all") == {"Gemm": 2, "Relu": 1}
    assert C.optimized_ops(model, "extended") == {"FusedGemm": 1, "Gemm": 1}


def test_ort_bad_input():
    pytest.importorskip("onnxruntime")
    with pytest.raises(ConfigError, match="level must be one of"):
        C.ort_options("max")
    with pytest.raises(ConfigError, match="execution_mode must be one of"):
        C.ort_options(execution_mode="async")
    with pytest.raises(ConfigError, match="threads must be an integer"):
        C.ort_options(threads=0)
    with pytest.raises(IntegrityError, match="onnxruntime cannot load the model"):
        C.ort_session(b"not an onnx graph")
    with pytest.raises(DataError, match="model must be the bytes of an ONNX graph"):
        C.ort_session("model.onnx")
    with pytest.raises(DataError, match="inputs must be"):
        C.ort_levels_table(_mlp_onnx(), {})


# ---------------------------------------------------------------- the autotuner's search

def _table_target(rng, n_options=3, ties=False):
    "A FunctionTarget over a random grid whose cost is a fixed random table (deterministic)."
    grid = {f"o{i}": list(range(int(rng.integers(1, 5)))) for i in range(n_options)}
    grid["kind"] = ["a", "b", "c"][: int(rng.integers(1, 4))]
    table = {}

    def cost(c):
        key = tuple(c[k] for k in grid)
        if key not in table:
            table[key] = float(rng.integers(1, 4) if ties else rng.random() + 0.01)
        return table[key]

    return C.FunctionTarget(cost, grid, name=f"table-{rng.integers(1 << 30)}"), grid


def _brute_force(target, grid):
    import itertools
    points = [dict(zip(grid, v)) for v in itertools.product(*grid.values())]
    costs = [target.cost(p) for p in points]
    i = min(range(len(points)), key=lambda j: (costs[j], j))
    return points[i], costs[i]


@pytest.mark.parametrize("ties", [False, True])
def test_exhaustive_equals_brute_force(ties):
    rng = np.random.default_rng(5 + ties)
    for _ in range(30):
        target, grid = _table_target(rng, ties=ties)
        r = C.Autotuner(target, grid, "exhaustive", use_cache=False).tune()
        best, cost = _brute_force(target, grid)
        assert (r.best, r.cost) == (best, cost)
        assert r.n_measured == math.prod(len(v) for v in grid.values()) and r.source == "measured"


@pytest.mark.parametrize("strategy", ["random", "surrogate", "optuna"])
def test_a_budget_covering_the_grid_finds_the_brute_force_optimum(strategy):
    if strategy == "optuna":
        pytest.importorskip("optuna")
    rng = np.random.default_rng(7)
    for _ in range(6):
        target, grid = _table_target(rng)
        size = math.prod(len(v) for v in grid.values())
        r = C.Autotuner(target, grid, strategy, budget=size + 5, use_cache=False).tune()
        assert (r.best, r.cost) == _brute_force(target, grid)
        assert r.n_measured == size == target.calls  # each configuration measured once


def _smooth(c):
    "A synthetic machine: optimum at tile 64, 2 threads, batch 256, method 'tiled'."
    method = {"naive": 8.0, "vectorized": 2.0, "parallel": 1.5, "tiled": 1.0}[c["method"]]
    tile = 1 + 0.15 * math.log2(c["tile"] / 64) ** 2
    threads = 0.55 if c["threads"] == 2 else 1.0
    batch = 1 + 4 / c["batch"] + 1e-3 * max(0, c["batch"] - 256) ** 0.8
    return 1e-6 * method * tile * threads * batch


SMOOTH_GRID = {"method": ["naive", "vectorized", "parallel", "tiled"], "tile": [4, 8, 16, 32, 64, 128, 256, 512],
               "threads": [1, 2], "batch": [1, 16, 64, 256, 1024, 4096]}


@pytest.mark.parametrize("strategy", ["surrogate", "optuna"])
def test_model_guided_search_finds_the_synthetic_optimum_within_budget(strategy):
    if strategy == "optuna":
        pytest.importorskip("optuna")
    for seed in range(3):
        target = C.FunctionTarget(_smooth, SMOOTH_GRID, name="smooth")
        r = C.Autotuner(target, SMOOTH_GRID, strategy, budget=64, seed=seed, use_cache=False).tune()
        assert r.best == {"method": "tiled", "tile": 64, "threads": 2, "batch": 256}, (seed, r.best)
        assert r.n_measured <= 64 and target.calls == r.n_measured


def test_searches_are_deterministic_for_a_seed():
    a = C.Autotuner(C.FunctionTarget(_smooth, SMOOTH_GRID), SMOOTH_GRID, "surrogate", budget=20, seed=3, use_cache=False).tune()
    b = C.Autotuner(C.FunctionTarget(_smooth, SMOOTH_GRID), SMOOTH_GRID, "surrogate", budget=20, seed=3, use_cache=False).tune()
    assert a.trials.equals(b.trials)


class _Canonical(C.FunctionTarget):
    "A target for which option 'x' does not matter when 'kind' is 'plain'."

    def canonical(self, config):
        c = dict(config)
        if c["kind"] == "plain":
            c["x"] = None
        return c


@pytest.mark.parametrize("strategy", ["exhaustive", "random", "surrogate", "optuna"])
def test_configurations_that_run_alike_are_measured_once(strategy):
    if strategy == "optuna":
        pytest.importorskip("optuna")
    grid = {"kind": ["plain", "tiled"], "x": [1, 2, 4, 8]}
    target = _Canonical(lambda c: 2.0 if c["kind"] == "plain" else 1.0 + abs(math.log2(c["x"]) - 2), grid)
    budget = None if strategy == "exhaustive" else 50
    r = C.Autotuner(target, grid, strategy, budget=budget, use_cache=False).tune()
    assert target.calls == r.n_measured == 5  # 'plain' once, 'tiled' with each x
    assert r.best == {"kind": "tiled", "x": 4}


@pytest.mark.parametrize("bad", [math.nan, -1.0, 0.0, math.inf, "1", None, True])
def test_a_cost_that_is_not_positive_finite_seconds_is_refused(bad):
    grid = {"a": [1, 2]}
    t = C.FunctionTarget(lambda c: bad if c["a"] == 2 else 1.0, grid)
    with pytest.raises(DataError, match="costs must be positive finite seconds"):
        C.Autotuner(t, grid, "exhaustive", use_cache=False).tune()


@pytest.mark.parametrize("grid, words", [
    ({}, "grid must be a non-empty dict"),
    ([("a", [1])], "grid must be a non-empty dict"),
    ({"a": []}, "grid['a'] is empty"),
    ({"zz": [1]}, "unknown option(s) ['zz'] for the function target; its options are ['a', 'b']"),
    ({"a": [1, 1]}, "repeats a value"),
    ({"a": [7]}, "does not allow: a must be one of [1, 2, 3]"),
    ({"a": [True]}, "does not allow"),
    ({"a": "123"}, "must be a list of candidate values"),
    ({"a": 3}, "must be a list of candidate values"),
    ({"a": [[1]]}, "candidate values must be None, bools"),
    ({"b": [math.nan]}, "candidate values must be None, bools"),
])
def test_bad_grids_get_a_named_config_error(grid, words):
    t = C.FunctionTarget(lambda c: 1.0, {"a": [1, 2, 3], "b": ["x", 0.5]})
    with pytest.raises(ConfigError) as e:
        C.Autotuner(t, grid, use_cache=False)
    assert words in str(e.value)


def test_other_bad_arguments_get_a_named_config_error():
    t = C.FunctionTarget(lambda c: 1.0, {"a": [1, 2]})
    for kwargs, words in [({"strategy": "annealing"}, "strategy must be one of"),
                          ({"strategy": "exhaustive", "budget": 3}, "leave budget=None"),
                          ({"budget": 0}, "budget must be an integer"), ({"budget": 2.5}, "budget must be an integer"),
                          ({"seed": -1}, "seed must be an integer"), ({"use_cache": "yes"}, "use_cache must be")]:
        with pytest.raises(ConfigError, match=None) as e:
            C.Autotuner(t, {"a": [1, 2]}, **kwargs)
        assert words in str(e.value), (kwargs, str(e.value))
    with pytest.raises(ConfigError, match="target must be a TuningTarget"):
        C.Autotuner(lambda c: 1.0, {"a": [1]})
    with pytest.raises(ConfigError, match="cost must be a function"):
        C.FunctionTarget(3, {"a": [1]})
    with pytest.raises(ConfigError, match="narrow it"):
        C.Autotuner(C.FunctionTarget(lambda c: 1.0, {k: list(range(20)) for k in "abcd"}), {k: list(range(20)) for k in "abcd"})


def test_numpy_scalars_in_a_grid_become_plain_values():
    t = C.FunctionTarget(lambda c: 1.0 + c["a"], {"a": [1, 2]})
    r = C.Autotuner(t, {"a": np.array([2, 1])}, "exhaustive", use_cache=False).tune()
    assert r.best == {"a": 1} and type(r.best["a"]) is int


def test_matmul_and_ort_targets_tune_their_options():
    rng = np.random.default_rng(8)
    mm = C.MatmulTarget(rng.standard_normal((16, 24)).astype("float32"), rng.standard_normal((24, 8)).astype("float32"), repeats=1)
    r = C.Autotuner(mm, {"method": ["naive", "tiled"], "tile": [4, 8], "threads": [1]}, "exhaustive", use_cache=False).tune()
    assert r.n_measured == 3 and r.best["method"] in ("naive", "tiled")  # naive's tile does not matter
    with pytest.raises(ConfigError, match="threads must be an integer in"):
        C.Autotuner(mm, {"threads": [1000]})
    pytest.importorskip("onnxruntime")
    X = rng.standard_normal((8, 6)).astype("float32")
    ort = C.OrtTarget(_mlp_onnx(), {"input": X}, repeats=1)
    r = C.Autotuner(ort, {"level": ["basic", "all"], "batch_size": [2, 8]}, "exhaustive", use_cache=False).tune()
    assert r.n_measured == 4 and r.cost > 0
    with pytest.raises(ConfigError, match=r"batch_size must be an integer in \[1, 8\]"):
        C.Autotuner(ort, {"batch_size": [9]})
    with pytest.raises(DataError, match="same, non-zero number of rows"):
        C.OrtTarget(_mlp_onnx(), {"input": X[:0]})


# ---------------------------------------------------------------- the cache

def _tuner(tmp_path, target=None, **kw):
    grid = {"a": [1, 2, 3, 4], "b": ["x", "y"]}
    target = target or C.FunctionTarget(lambda c: 1.0 + abs(c["a"] - 3) + (c["b"] == "y"), grid, name="cache-test")
    return C.Autotuner(target, grid, kw.pop("strategy", "exhaustive"), cache_dir=tmp_path / "cache", **kw), target


def test_a_cache_hit_measures_nothing(tmp_path):
    tuner, target = _tuner(tmp_path)
    first = tuner.tune()
    assert first.source == "measured" and target.calls == 8 and first.path.is_file()
    again = tuner.tune()
    assert again.source == "cache" and target.calls == 8
    assert (again.best, again.cost) == (first.best, first.cost) == ({"a": 3, "b": "x"}, 1.0)
    assert again.trials.equals(first.trials)
    assert tuner.tune(refresh=True).source == "measured" and target.calls == 16
    entry = json.loads(first.path.read_text())
    assert entry["material"]["machine"]["cpus"] == os.cpu_count() and entry["key"] == tuner.cache_key()


def test_a_cached_result_keeps_the_grid_order(tmp_path):
    grid = {"zeta": [1, 2], "alpha": ["x", "y"]}  # not in sorted order: JSON writes keys sorted
    tuner = C.Autotuner(C.FunctionTarget(lambda c: c["zeta"] + (c["alpha"] == "y"), grid), grid, "exhaustive",
                        cache_dir=tmp_path)
    first, again = tuner.tune(), tuner.tune()
    assert again.source == "cache"
    assert list(again.best) == list(first.best) == ["zeta", "alpha"]
    assert list(again.trials.columns) == list(first.trials.columns) == ["zeta", "alpha", "cost"]


def test_another_machine_or_library_version_misses(tmp_path, monkeypatch):
    tuner, target = _tuner(tmp_path)
    tuner.tune()
    real = C.machine_fingerprint
    monkeypatch.setattr(C, "machine_fingerprint", lambda libs=(): {**real(libs), "cpu": "another CPU"})
    assert tuner.load_cached() is None
    assert tuner.tune().source == "measured" and target.calls == 16
    monkeypatch.setattr(C, "machine_fingerprint", lambda libs=(): {**real(libs), "libraries": {"numba": "9.9"}})
    assert tuner.load_cached() is None


def test_the_default_cache_dir_is_the_mlsys_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MLSYS_CACHE_DIR", str(tmp_path / "c"))
    grid = {"a": [1, 2]}
    tuner = C.Autotuner(C.FunctionTarget(lambda c: 1.0, grid), grid, "exhaustive")
    assert tuner.cache_path().parent == tmp_path / "c" / "autotune"
    assert tuner.tune().path.is_file()
    off = C.Autotuner(C.FunctionTarget(lambda c: 1.0, grid), grid, "exhaustive", use_cache=False)
    assert off.cache_path() is None and off.tune().path is None


def _damage(path, how):
    text = path.read_text()
    entry = json.loads(text)
    if how == "truncated":
        path.write_text(text[: len(text) // 2])
    elif how == "binary":
        path.write_bytes(b"\xff\xfe\x00garbage")
    elif how == "empty":
        path.write_text("")
    elif how == "edited cost":
        entry["result"]["cost"] /= 2
        path.write_text(json.dumps(entry))
    elif how == "not an entry":
        path.write_text(json.dumps([1, 2, 3]))
    elif how == "NaN":
        path.write_text(text.replace('"cost": 1.0', '"cost": NaN', 1))
    elif how in ("crafted best", "crafted cost", "crafted key"):  # a consistent checksum: only the other checks can refuse it
        if how == "crafted best":
            entry["result"]["best"] = {"a": 99, "b": "x"}
        elif how == "crafted cost":
            entry["result"]["cost"] = -1.0
        else:
            entry["material"]["machine"]["cpu"] = "elsewhere"
            entry["key"] = C._digest(entry["material"])
        body = {k: v for k, v in entry.items() if k != "sha256"}
        path.write_text(json.dumps({**body, "sha256": C._digest(body)}))


@pytest.mark.parametrize("how, words", [
    ("truncated", "not valid JSON"), ("binary", "not UTF-8"), ("empty", "not valid JSON"),
    ("edited cost", "SHA-256 does not match"), ("not an entry", "not an mlsys autotune entry"),
    ("NaN", "not valid JSON"), ("crafted best", "not a point of the grid"), ("crafted cost", "malformed"),
    ("crafted key", "holds the result for key"),
])
def test_a_damaged_or_crafted_cache_is_refused_and_retuned(tmp_path, how, words):
    tuner, target = _tuner(tmp_path)
    path = tuner.tune().path
    _damage(path, how)
    with pytest.raises(IntegrityError) as e:
        tuner.load_cached()
    assert words in str(e.value) and str(path) in str(e.value)
    r = tuner.tune()
    assert r.source == "re-tuned" and words in r.note and target.calls == 16
    assert (r.best, r.cost) == ({"a": 3, "b": "x"}, 1.0)
    assert tuner.load_cached().source == "cache"  # rewritten whole


def test_an_entry_copied_from_another_grid_is_refused(tmp_path):
    tuner, _ = _tuner(tmp_path)
    other = C.Autotuner(C.FunctionTarget(lambda c: 1.0, {"a": [1, 2, 3, 4], "b": ["x", "y"]}, name="cache-test"),
                        {"a": [1, 2], "b": ["x"]}, "exhaustive", cache_dir=tmp_path / "cache")
    other.tune().path.replace(tuner.cache_path())
    with pytest.raises(IntegrityError, match="holds the result for key"):
        tuner.load_cached()


WRITER = r"""
import sys
from mlsys.deploy.compilers import Autotuner, FunctionTarget
grid = {"a": list(range(6)), "b": ["x", "y"]}
def cost(c):
    return 1.0 + c["a"] + (c["b"] == "y")
tuner = Autotuner(FunctionTarget(cost, grid, name="killed"), grid, "exhaustive", cache_dir=sys.argv[2])
if sys.argv[1] == "check":
    try:
        r = tuner.load_cached()
    except Exception as e:
        print("refused", type(e).__name__, e)
    else:
        print("none" if r is None else f"ok {r.best} {r.cost}")
else:
    print("ready", flush=True)
    while True:
        tuner.tune(refresh=True)
"""


def test_a_writer_killed_at_random_moments_never_leaves_a_bad_entry(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    rnd = random.Random(0)
    seen = set()
    for _ in range(4):
        child = subprocess.Popen([sys.executable, str(script), "write", str(tmp_path / "cache")], stdout=subprocess.PIPE,
                                 text=True, env=env)
        try:
            assert child.stdout.readline().strip() == "ready"
            time.sleep(rnd.uniform(0.05, 0.6))
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=60)
        out = subprocess.run([sys.executable, str(script), "check", str(tmp_path / "cache")], capture_output=True,
                             text=True, env=env, timeout=300).stdout.strip()
        assert out in ("none", "ok {'a': 0, 'b': 'x'} 1.0"), out
        seen.add(out.split()[0])
    assert "ok" in seen
