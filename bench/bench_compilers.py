"""Benchmark: inference optimization on one CPU (mlsys.deploy.compilers), each table side by side in one run.

1. `A @ B` (float32) by the explicit numba loops, against the baseline: the naive i-j-k loop (and numpy's BLAS as
   the reference); median ms, GFLOP/s, speed-up over naive, at 1 and 2 threads.
2. relu(X @ W + b): numpy's three passes (the baseline), numba's three passes, numba fused in one loop.
3. ONNX Runtime's graph optimization levels on a ReLU MLP graph (disable_all is the baseline): nodes after
   optimization and median ms at batch 1, 64, 1024.
4. torch.compile (Inductor) against eager on the same MLP (baseline: eager), if `--torch-compile` (it compiles for
   tens of seconds on a loaded machine).
5. The autotuner over onnxruntime's options on that MLP: exhaustive search (the baseline) against the surrogate cost
   model and optuna's TPE with a budget of a fifth of the grid; each choice's regret is looked up in the exhaustive
   table.

Run:
    .venv/bin/python bench/bench_compilers.py [--size 1024] [--repeat 5] [--torch-compile]
"""
import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def mlp_graph(widths=(124, 256, 256, 128, 2), seed=0) -> bytes:
    "A ReLU MLP as an ONNX graph of Gemm and Relu nodes (random weights: latency does not depend on training)."
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(seed)
    nodes, inits, x = [], [], "input"
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        inits += [numpy_helper.from_array((rng.standard_normal((b, a)) / np.sqrt(a)).astype("float32"), f"W{i}"),
                  numpy_helper.from_array(np.zeros(b, "float32"), f"b{i}")]
        nodes.append(helper.make_node("Gemm", [x, f"W{i}", f"b{i}"], [f"h{i}"], transB=1))
        x = f"h{i}"
        if i < len(widths) - 2:
            nodes.append(helper.make_node("Relu", [x], [f"r{i}"]))
            x = f"r{i}"
    nodes[-1].output[0] = "output"
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, widths[0]])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [None, widths[-1]])], initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10).SerializeToString()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1024, help="B is size x size; A has size/4 rows")
    ap.add_argument("--repeat", type=int, default=5, help="timed calls per cell (the median is reported)")
    ap.add_argument("--torch-compile", action="store_true", help="also time torch.compile against eager")
    args = ap.parse_args()
    from threadpoolctl import threadpool_limits

    from mlsys.deploy import compilers as C

    rng = np.random.default_rng(0)
    pd.set_option("display.width", 200)
    A = rng.standard_normal((args.size // 4, args.size)).astype("float32")
    B = rng.standard_normal((args.size, args.size)).astype("float32")
    print(f"## 1. A @ B, {A.shape} @ {B.shape} float32 (baseline: the naive loop)\n")
    for threads in (1, 2):
        print(f"{threads} thread(s):")
        print(C.matmul_table(A, B, tile=64, threads=threads, repeats=args.repeat).round(3).to_markdown(), "\n")

    X = rng.standard_normal((8192, 124)).astype("float32")
    W, b = rng.standard_normal((124, 256)).astype("float32"), rng.standard_normal(256).astype("float32")
    print("## 2. relu(X @ W + b), X 8192 x 124, W 124 x 256 (baseline: numpy's three passes)\n")
    table = pd.concat({t: C.fusion_table(X, W, b, threads=t, repeats=args.repeat) for t in (1, 2)}, names=["threads"])
    print(table.round(3).to_markdown(), "\n")

    graph = mlp_graph()
    Xq = rng.standard_normal((1024, 124)).astype("float32")
    print("## 3. ONNX Runtime optimization levels on a 124-256-256-128-2 ReLU MLP (baseline: disable_all)\n")
    with threadpool_limits(1):
        levels = C.ort_levels_table(graph, {"input": Xq}, batch_sizes=(1, 64, 1024), repeats=20 * args.repeat)
    print(levels.round(4).to_markdown(), "\n")

    if args.torch_compile:
        import torch
        torch.set_num_threads(1)
        from mlsys.deploy.compress import flights_mlp
        mlp = flights_mlp(124).eval()
        r = C.compile_torch(mlp, torch.from_numpy(Xq[:64]))
        print(f"## 4. torch.compile (Inductor): compiled={r.ok} in {r.compile_s:.1f} s {r.reason}\n")
        rows = []
        for b_ in (1, 64, 1024):
            x = torch.from_numpy(Xq[:b_])
            with torch.inference_mode():
                rows.append({"batch": b_, "eager ms (baseline)": C.time_ms(lambda x=x: mlp(x), 20 * args.repeat, warmup=3),
                             "compiled ms": C.time_ms(lambda x=x: r.module(x), 20 * args.repeat, warmup=3)})
        print(pd.DataFrame(rows).set_index("batch").round(4).to_markdown(), "\n")

    print("## 5. Autotuner over onnxruntime's options (baseline: exhaustive search)\n")
    target = C.OrtTarget(graph, {"input": Xq}, repeats=3)
    grid = {"level": list(C.ORT_LEVELS), "execution_mode": list(C.ORT_MODES), "threads": [1, 2],
            "batch_size": [1, 16, 64, 256, 1024]}
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        full = C.Autotuner(target, grid, "exhaustive", cache_dir=Path(d)).tune()
        rows = [{"strategy": "exhaustive (baseline)", "measured": full.n_measured, "regret": 1.0, "s": time.perf_counter() - t0,
                 "best": full.best}]
        table = full.trials.set_index(list(grid))["cost"]
        for strategy in ("surrogate", "optuna"):
            t0 = time.perf_counter()
            r = C.Autotuner(target, grid, strategy, budget=16, cache_dir=Path(d)).tune()
            rows.append({"strategy": strategy, "measured": r.n_measured, "regret": table[tuple(r.best.values())] / table.min(),
                         "s": time.perf_counter() - t0, "best": r.best})
        t0 = time.perf_counter()
        hit = C.Autotuner(target, grid, "exhaustive", cache_dir=Path(d)).tune()
        rows.append({"strategy": f"exhaustive again ({hit.source})", "measured": 0, "regret": 1.0, "s": time.perf_counter() - t0,
                     "best": hit.best})
    print(pd.DataFrame(rows).set_index("strategy").round(3).to_markdown())


if __name__ == "__main__":
    main()
