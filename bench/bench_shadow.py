"""Shadow bench (issue 16 item 4): the latency a shadow model adds to the champion's requests.

Three uvicorn processes serve the same champion (the pipeline's model, fitted on the first week of January), measured
side by side in one run, alternating at each concurrency:
(a) the service without a shadow, the baseline;
(b) the same service with a shadow: the pipeline's model fitted on the inverted label (the same cost per call), scoring
    every answered request in a thread of its own behind a bounded queue (`mlsys.deploy.service.ShadowScorer`);
(c) the same shadow scoring a 10% sample of the requests, by stable id (`shadow_sample=0.1`).
The load generator is bench_serving's (closed loop, keep-alive connections). The table gives p50/p99 and throughput of
each, the added p50/p99, and how many shadow samples were scored or dropped (a full queue drops, never waits).

    python bench/bench_shadow.py            # 4 s or 4000 requests per cell, concurrency 1, 8, 32
    python bench/bench_shadow.py --small    # 1.5 s or 600 requests per cell
"""
import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_serving import load, request_bytes  # noqa: E402  (the same load generator as the serving bench)


def build(tmp: Path) -> tuple[Path, Path, list]:
    "Fit the champion and the shadow, write the two service folders; returns them and the request bodies."
    from mlsys.datasets import load_flights, load_planes, load_weather
    from mlsys.deploy.service import feature_spec, save_service
    from mlsys.pipeline import FEATURES, LABEL, ROUTE_RATE, build_features, fit_baseline_models, make_model, time_split

    flights = load_flights("2013-01-01", "2013-01-10")
    feats = build_features(flights, load_weather("2013-01-01", "2013-01-10"), load_planes())
    train, test = time_split(feats, "2013-01-08")
    y = train[LABEL].astype(int)
    models = {"hgb": make_model().fit(train[FEATURES], y), "route_rate": fit_baseline_models(train)["route_rate"],
              "hgb_shadow": make_model().fit(train[FEATURES], 1 - y)}
    bounds = {"sched_hour": (0, 23), "sched_dow": (0, 6), "distance": (0, None), "route_n": (0, None),
              "carrier_n": (0, None), "origin_deps_2h": (0, None), "origin_dep_delay_2h": (-60, None),
              **{c: (0, 1) for c in ["route_late_rate", "carrier_late_rate", ROUTE_RATE]}}
    spec = feature_spec(train, FEATURES + [ROUTE_RATE], widen=0.5, bounds=bounds)
    common = dict(main_name="hgb", backup_name="route_rate", budget=0.25, max_batch_size=64, max_wait=0.002, max_queue=4096)
    plain = save_service(tmp / "plain", models, spec, **common)
    shadow = save_service(tmp / "shadow", models, spec, shadow_name="hgb_shadow", shadow_queue=256, **common)
    sampled = save_service(tmp / "sampled", models, spec, shadow_name="hgb_shadow", shadow_queue=256, shadow_sample=0.1,
                           **common)
    rows = test[spec.names].astype(object).where(test[spec.names].notna(), None).to_dict("records")
    keys = test["flight_id"].astype(str).tolist() if "flight_id" in test else [f"f{i}" for i in range(len(test))]
    return plain, shadow, sampled, rows[:1000], keys[:1000]


def main() -> int:
    import httpx
    import pandas as pd

    from mlsys.deploy.service import start_service
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="short cells (1.5 s or 600 requests each)")
    ap.add_argument("--concurrency", default="1,8,32", help="comma-separated client counts")
    args = ap.parse_args()
    seconds, max_requests = (1.5, 600) if args.small else (4.0, 4000)
    levels = [int(c) for c in args.concurrency.split(",")]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        plain, shadow, sampled, rows, keys = build(Path(tmp))
        with start_service(plain) as a, start_service(shadow) as b, start_service(sampled) as d:
            servers = {"(a) no shadow": a, "(b) shadow": b, "(c) shadow 10%": d}
            reqs = {}
            for name, s in servers.items():
                host, port = s.url.removeprefix("http://").split(":")
                reqs[name] = (host, int(port), [request_bytes(host, int(port), "/predict", r, key) for r, key in zip(rows, keys)])
                asyncio.run(load(*reqs[name], 4, 200, 1.0))  # warm up
            for c in levels:
                for name, s in servers.items():
                    before = None if name.startswith("(a)") else httpx.get(f"{s.url}/admin/rollout").json()["shadow"]
                    r = asyncio.run(load(*reqs[name], c, max_requests, seconds))
                    if before is not None:
                        after = httpx.get(f"{s.url}/admin/rollout").json()["shadow"]
                        r["shadow_scored"] = after["scored"] - before["scored"]
                        r["shadow_dropped"] = after["dropped"] - before["dropped"]
                    results.append({"service": name, "concurrency": c, **r})
                    print(f"  {name:<14} c={c:<4} {r['rps']:8.0f} req/s  p50 {r['p50_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms",
                          file=sys.stderr)
    df = pd.DataFrame(results)
    print(f"Shadow bench (loopback, two uvicorn processes, {os.cpu_count()} CPUs, OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS')}); baseline: (a) the same service without a shadow")
    print(df.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    by = df.set_index(["service", "concurrency"])
    print()
    for c in levels:
        a = by.loc[("(a) no shadow", c)]
        for name in ("(b) shadow", "(c) shadow 10%"):
            b = by.loc[(name, c)]
            print(f"concurrency {c}: {name[4:]} adds {b['p50_ms'] - a['p50_ms']:+.1f} ms at p50, {b['p99_ms'] - a['p99_ms']:+.1f} ms "
                  f"at p99; throughput {b['rps'] / a['rps']:.2f}x the baseline")
    return 0


if __name__ == "__main__":
    sys.exit(main())
