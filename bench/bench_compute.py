"""The machine table: dense matmul FLOP/s (numpy's BLAS vs torch, float32/float64, one thread vs every core) against the
CPU's theoretical peak, and STREAM-like memory bandwidth (a slice copy and the triads vs the `np.copyto` baseline).

Run: .venv/bin/python bench/bench_compute.py [--n 2048] [--repeats 5] [--size-mb 512] [--datapath-bits 256]
                                             [--clock-ghz 3.7] [--disk FOLDER]
Prints markdown tables. The peak's assumptions (clock, datapath width, FMA units) are printed first and can be
overridden; a utilization above 1 means they are wrong for this machine, and the table says so. Run it on an idle
machine: on a shared one, 'all cores' includes cores other processes hold.
"""
import argparse
import os

from mlsys.platform.compute import cpu_info, disk_throughput, matmul_flops, matmul_table, memory_bandwidth


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2048, help="matrix size")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--size-mb", type=float, default=512, help="MiB per array of the memory kernels")
    ap.add_argument("--datapath-bits", type=int, default=None, help="override the FP datapath width (e.g. 256 for Zen 4)")
    ap.add_argument("--clock-ghz", type=float, default=None, help="override the assumed clock")
    ap.add_argument("--fma-units", type=int, default=2)
    ap.add_argument("--disk", default=None, help="also measure disk throughput in this folder")
    args = ap.parse_args()

    info = cpu_info(clock_ghz=args.clock_ghz, datapath_bits=args.datapath_bits, fma_units=args.fma_units)
    print(f"## CPU and peak assumptions (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')})\n")
    print(info.to_frame().to_markdown(index=False))

    try:
        import torch  # noqa: F401
        backends = ["numpy", "torch"]
    except ImportError:
        backends = ["numpy"]
    runs = [matmul_flops(args.n, dt, th, args.repeats, be, info)
            for dt in ["float32", "float64"] for th in [1, "all"] for be in backends]
    print(f"\n## Dense matmul, n={args.n} (best of {args.repeats}; baseline: numpy's BLAS)\n")
    t = matmul_table(runs)
    base = {(r.dtype, r.threads): r.gflops for r in runs if r.backend == "numpy"}
    t["vs numpy"] = [round(r.gflops / base[(r.dtype, r.threads)], 2) for r in runs]
    one = {(r.backend, r.dtype): r.gflops for r in runs if r.threads == 1}
    t["speed-up vs 1 thread"] = [round(r.gflops / one[(r.backend, r.dtype)], 2) for r in runs]
    print(t.to_markdown(index=False))
    for r in runs:
        if r.note:
            print(f"- {r.backend} {r.dtype} {r.threads} threads: {r.note}")

    print(f"\n## Memory bandwidth, {args.size_mb:.0f} MiB per array, one thread (baseline: np.copyto)\n")
    bw = memory_bandwidth(args.size_mb, args.repeats, info=info)
    ref = float(bw.loc[bw.kernel == "copyto", "best GB/s"].iloc[0])
    bw["vs copyto"] = (bw["best GB/s"] / ref).round(2)
    print(bw.drop(columns=["MiB/array"]).to_markdown(index=False))

    if args.disk:
        d = disk_throughput(args.disk, size_mb=min(args.size_mb, 1024))
        print(f"\n## Disk, {d.size_mb:.0f} MiB file in {d.folder} ({d.filesystem})\n")
        print(d.to_frame().to_markdown(index=False))
        if d.note:
            print(f"- {d.note}")


if __name__ == "__main__":
    main()
