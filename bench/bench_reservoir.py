"""Reservoir sampling speed: Algorithm L (skip-based) vs Algorithm R over a stream, and the floor.

Baseline: Algorithm R (one random number per item, the book's recipe), and the time merely to
exhaust the same iterator (`collections.deque(it, maxlen=0)`), which no one-pass sampler can
beat. Also the random-access path of Algorithm L, which skips without reading.

Usage: python bench/bench_reservoir.py [--n 10000000] [--k 1000] [--repeat 3]
Prints a markdown table. Not run in tests.
"""
import argparse
import collections
import platform
import time

import numpy as np

from mlsys.sampling import ReservoirSampler, reservoir_sample


def best_of(fn, repeat: int) -> tuple[float, float]:
    "Best wall-clock and best CPU seconds over `repeat` runs (the machine may be shared)."
    walls, cpus = [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus)


def streams(n: int) -> dict:
    "Two kinds of iterator over n items: one that creates each item, one over items already in memory."
    items = list(range(1000)) * (n // 1000)  # 10M references to 1,000 int objects: ~80 MB, not 360 MB
    return {
        "range iterator (creates an int per item)": lambda: iter(range(n)),
        "list iterator (items already in memory)": lambda: iter(items),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    n, k, rep = a.n, a.k, a.repeat
    print(f"n = {n:,} items, k = {k:,}; best of {rep} runs (Algorithm R: best of 2); Python "
          f"{platform.python_version()}, {platform.machine()}; times are CPU seconds (wall in brackets)\n")
    print("| stream | path | CPU s (wall s) | items/s (CPU) | speed-up vs R | time / exhaust |")
    print("|---|---|---:|---:|---:|---:|")
    verdicts = []
    for sname, make in streams(n).items():
        cases = {
            "exhaust iterator (floor)": lambda make=make: collections.deque(make(), maxlen=0),
            "Algorithm R": lambda make=make: reservoir_sample(make(), k, "R", random_state=0),
            "Algorithm L (islice skips)": lambda make=make: reservoir_sample(make(), k, "L", random_state=0),
            "Algorithm L, `ReservoirSampler.update_many`": lambda make=make: ReservoirSampler(k, "L", random_state=0).update_many(make()),
        }
        t = {name: best_of(fn, 2 if name == "Algorithm R" else rep) for name, fn in cases.items()}
        floor, r = t["exhaust iterator (floor)"][1], t["Algorithm R"][1]
        for name, (wall, cpu) in t.items():
            print(f"| {sname} | {name} | {cpu:.3f} ({wall:.3f}) | {n / cpu:,.0f} | {r / cpu:,.1f}x | {cpu / floor:.2f}x |")
        lit = t["Algorithm L (islice skips)"][1]
        verdicts.append(f"- {sname}: L is {r / lit:.1f}x faster than R (target 25x: {'met' if r / lit >= 25 else 'NOT met'}); "
                        f"L takes {lit / floor:.2f}x the time to exhaust the iterator (target <= 2x: "
                        f"{'met' if lit / floor <= 2 else 'NOT met'}); R/exhaust = {r / floor:.1f}x bounds any L/R speed-up")
    arr = np.arange(n)
    ra = {"range object": range(n), "NumPy array": arr}
    for sname, src in ra.items():
        wall, cpu = best_of(lambda src=src: reservoir_sample(src, k, "L", random_state=0), rep)
        print(f"| {sname} (random access) | Algorithm L, jumps by index, reads ~k·(1+ln(n/k)) items | {cpu:.4f} ({wall:.4f}) | {n / cpu:,.0f} | - | - |")
    print("\n" + "\n".join(verdicts))


if __name__ == "__main__":
    main()
