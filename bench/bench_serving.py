"""Serving bench (issue 14 item 4): throughput and p50/p99 latency of the flights prediction service on loopback.

One uvicorn process serves three endpoints side by side, measured in one run at concurrency 1, 8, 32 and 128:
(a) `/predict/naive`: one model call per request on a one-row DataFrame (FastAPI's thread pool), the baseline;
(a') `/predict/naive-records`: the same, on the service's input path (an ONNX model reads the request dicts directly);
(b) `/predict`: the micro-batched service (`mlsys.deploy.service`);
(c) `/empty`: no work at all, the physical limit of the server and this load generator.
The load generator is our own: asyncio streams, one keep-alive HTTP/1.1 connection per client, each client sending
its next request when the previous answer arrived (closed loop), bounded by a request count and a time limit.
Each is measured twice: the main model served as scikit-learn ("native") and as its verified ONNX export.
Targets: (b) >= 3x (a)'s throughput with p99 < 20 ms at concurrency 32, and (b) within 2x of (c)'s request rate.

    python bench/bench_serving.py            # 4 s or 4000 requests per cell
    python bench/bench_serving.py --small    # 1.5 s or 600 requests per cell
"""
import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")


def build(folder: Path, main_format: str = "native") -> tuple[object, list]:
    "Fit the pipeline model on the first week of January and write the service folder; returns request bodies."
    from mlsys.datasets import load_flights, load_planes, load_weather
    from mlsys.deploy.service import feature_spec, save_service
    from mlsys.pipeline import FEATURES, LABEL, ROUTE_RATE, build_features, fit_baseline_models, make_model, time_split

    flights = load_flights("2013-01-01", "2013-01-10")
    feats = build_features(flights, load_weather("2013-01-01", "2013-01-10"), load_planes())
    train, test = time_split(feats, "2013-01-08")
    model = make_model().fit(train[FEATURES], train[LABEL].astype(int))
    bounds = {"sched_hour": (0, 23), "sched_dow": (0, 6), "distance": (0, None), "route_n": (0, None),
              "carrier_n": (0, None), "origin_deps_2h": (0, None), "origin_dep_delay_2h": (-60, None),
              **{c: (0, 1) for c in ["route_late_rate", "carrier_late_rate", ROUTE_RATE]}}
    spec = feature_spec(train, FEATURES + [ROUTE_RATE], widen=0.5, bounds=bounds)
    save_service(folder, {"hgb": model, "route_rate": fit_baseline_models(train)["route_rate"]}, spec,
                 main_name="hgb", backup_name="route_rate", bench_endpoints=True, budget=0.25, max_batch_size=64,
                 max_wait=0.002, max_queue=4096, main_format=main_format, example=train)
    rows = test[spec.names].astype(object).where(test[spec.names].notna(), None).to_dict("records")
    return spec, rows


def request_bytes(host: str, port: int, path: str, body: dict, key: str | None = None) -> bytes:
    "One POST as raw HTTP/1.1 bytes; `key` goes in the X-Stable-Id header (a canary's or a sampled shadow's stable id)."
    data = json.dumps(body).encode()
    sticky = f"X-Stable-Id: {key}\r\n" if key is not None else ""
    return (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n{sticky}"
            f"Content-Length: {len(data)}\r\n\r\n").encode() + data


async def read_response(reader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


async def load(host: str, port: int, requests: list, concurrency: int, max_requests: int, max_seconds: float) -> dict:
    "Closed-loop load: `concurrency` clients on keep-alive connections until `max_requests` or `max_seconds`."
    latencies, statuses = [], []
    budget = [max_requests]
    t_end = time.perf_counter() + max_seconds

    async def client(i: int):
        reader, writer = await asyncio.open_connection(host, port)
        k = i
        try:
            while budget[0] > 0 and time.perf_counter() < t_end:
                budget[0] -= 1
                t0 = time.perf_counter()
                writer.write(requests[k % len(requests)])
                await writer.drain()
                statuses.append(await read_response(reader))
                latencies.append(time.perf_counter() - t0)
                k += concurrency
        finally:
            writer.close()
    t0 = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(concurrency)))
    wall = time.perf_counter() - t0
    lat = np.array(latencies) * 1000
    return {"requests": len(lat), "rps": len(lat) / wall, "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99)), "errors": sum(s != 200 for s in statuses)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="short cells (1.5 s or 600 requests each)")
    ap.add_argument("--concurrency", default="1,8,32,128", help="comma-separated client counts")
    ap.add_argument("--formats", default="native,onnx",
                    help="how the main model is served: native (scikit-learn) and/or onnx (its verified ONNX export)")
    args = ap.parse_args()
    seconds, max_requests = (1.5, 600) if args.small else (4.0, 4000)
    levels = [int(c) for c in args.concurrency.split(",")]
    formats = [f for f in args.formats.split(",") if f]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in formats:
            results += measure_format(Path(tmp) / fmt, fmt, levels, seconds, max_requests)
    return report(results)


def measure_format(folder: Path, fmt: str, levels: list, seconds: float, max_requests: int) -> list:
    "Every endpoint at every concurrency, for one service whose main model is served as `fmt`."
    import httpx

    from mlsys.deploy.service import start_service
    spec, rows = build(folder, fmt)
    results = []
    with start_service(folder) as server:
        host, port = server.url.removeprefix("http://").split(":")
        port = int(port)
        bodies = rows[:1000]
        endpoints = {"(a) naive": "/predict/naive", "(a') naive, no DataFrame": "/predict/naive-records",
                     "(b) micro-batched": "/predict", "(c) empty": "/empty"}
        reqs = {name: [request_bytes(host, port, path, b) for b in bodies] for name, path in endpoints.items()}
        for name in endpoints:  # warm up every path (imports, thread pool, connection setup)
            asyncio.run(load(host, port, reqs[name], 4, 200, 1.0))
        for c in levels:
            for name in endpoints:
                before = httpx.get(f"{server.url}/metrics").text
                r = asyncio.run(load(host, port, reqs[name], c, max_requests, seconds))
                after = httpx.get(f"{server.url}/metrics").text
                r["mean_batch"] = _mean_batch(before, after) if name.startswith("(b)") else None
                results.append({"model": fmt, "endpoint": name, "concurrency": c, **r})
                print(f"  {fmt:<6} {name:<18} c={c:<4} {r['rps']:8.0f} req/s  p50 {r['p50_ms']:6.1f} ms  "
                      f"p99 {r['p99_ms']:6.1f} ms  errors {r['errors']}", file=sys.stderr)
    return results


def _mean_batch(before: str, after: str) -> float | None:
    def grab(text, name):
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
        return 0.0
    n = grab(after, "mlsys_batch_size_count") - grab(before, "mlsys_batch_size_count")
    s = grab(after, "mlsys_batch_size_sum") - grab(before, "mlsys_batch_size_sum")
    return s / n if n else None


def report(results: list) -> int:
    import pandas as pd
    df = pd.DataFrame(results)
    print(f"\nServing bench (loopback, one uvicorn process, {os.cpu_count()} CPUs, OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS')}); model: how the main model is served (scikit-learn, or its ONNX export)")
    print(df.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    if 32 not in df["concurrency"].values:
        return 0
    for fmt, part in df.groupby("model", sort=False):
        by = part.set_index(["endpoint", "concurrency"])
        a, a2, b, c = (by.loc[(e, 32)] for e in ("(a) naive", "(a') naive, no DataFrame", "(b) micro-batched", "(c) empty"))
        print()
        for name, base in (("(a)", a), ("(a')", a2)):
            t1 = b["rps"] >= 3 * base["rps"] and b["p99_ms"] < 20
            print(f"[{fmt}] Target 1, concurrency 32: (b) {b['rps']:.0f} req/s = {b['rps'] / base['rps']:.2f}x {name} "
                  f"{base['rps']:.0f} req/s (need >= 3x), p99 {b['p99_ms']:.1f} ms (need < 20 ms): "
                  f"{'MET' if t1 else 'NOT MET'}")
        t2 = b["rps"] >= c["rps"] / 2
        print(f"[{fmt}] Target 2, concurrency 32: (b) {b['rps']:.0f} req/s vs (c) {c['rps']:.0f} req/s = "
              f"{c['rps'] / b['rps']:.2f}x slower (need <= 2x): {'MET' if t2 else 'NOT MET'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
