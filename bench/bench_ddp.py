"""DistributedDataParallel on the CPU (gloo): samples/s of 1 vs 2 processes and the scaling efficiency.

Weak scaling, as Horovod reports it: every process keeps its batch, so 2 processes train on a global batch twice as large.
The task is the flights delay classifier (standardized pre-departure features, an MLP). Rows of the table:

- plain loop: one process, no torch.distributed at all (the baseline);
- DDP x1: the same loop under DistributedDataParallel with one process (the cost of the wrapper alone);
- DDP x2: two processes on this machine, gradients all-reduced by gloo over loopback.

Scaling efficiency = samples/s with 2 processes / (2 x samples/s of the plain loop). Horovod's published CPU figure for
2 processes on one machine is about 55%. Step times are medians over the steps after a warm-up, measured by each rank.

Run: .venv/bin/python bench/bench_ddp.py [--steps 80] [--batch 256] [--width 256] [--depth 3]
"""
import argparse
import os

import numpy as np
import pandas as pd

import mlsys.modeling.distributed as D

HOROVOD_CPU_2PROC = 0.55


def flights_tensors():
    import torch

    from mlsys.datasets import load_flights

    fl = load_flights()
    fl = fl[fl["is_late"].notna()]
    cols = ["month", "day", "hour", "minute", "sched_dep_time", "sched_arr_time", "distance"]
    X = fl[cols].to_numpy(dtype=np.float64)
    X = (X - X.mean(0)) / X.std(0)
    return torch.tensor(X, dtype=torch.float32), torch.tensor(fl["is_late"].astype(int).to_numpy(), dtype=torch.int64)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--batch", type=int, default=256, help="rows per process per step")
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--depth", type=int, default=3)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    X, y = flights_tensors()
    cfg = dict(steps=args.steps, lr=0.05, width=args.width, depth=args.depth, seed=0)
    rows = []
    plain = D.single_process_train(X, y, global_batch=args.batch, **cfg)
    rows.append(("plain loop (baseline)", 1, args.batch, np.median(plain["step_s"][args.warmup:])))
    for world in (1, 2):
        with D.Workers(world_size=world) as w:
            res = w.run(D.ddp_train, X, y, global_batch=args.batch * world, **cfg)
        step = max(np.median(r["step_s"][args.warmup:]) for r in res)
        rows.append((f"DDP x{world}", world, args.batch * world, step))
    df = pd.DataFrame(rows, columns=["setup", "processes", "global batch", "median step (s)"]).set_index("setup")
    df["samples/s"] = df["global batch"] / df["median step (s)"]
    base = df.loc["plain loop (baseline)", "samples/s"]
    df["scaling efficiency"] = df["samples/s"] / (df["processes"] * base)
    df["median step (s)"] *= 1000
    df = df.rename(columns={"median step (s)": "median step (ms)"})
    print(f"MLP {X.shape[1]}-{'-'.join([str(args.width)] * args.depth)}-2 on {len(X)} flights, {args.steps} steps "
          f"({args.warmup} warm-up), 1 torch thread per process, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(df.round({"median step (ms)": 2, "samples/s": 0, "scaling efficiency": 3}).to_string())
    eff = df.loc["DDP x2", "scaling efficiency"]
    print(f"\n2-process scaling efficiency: {eff:.0%} (Horovod's published CPU figure, 2 processes on one machine: "
          f"~{HOROVOD_CPU_2PROC:.0%})")


if __name__ == "__main__":
    main()
