"""Benchmark: the flights behavioural suite with the scores its tests share within one run, against every test scoring its
own inputs (the naive way: what `BehaviouralSuite.run` did before the content-keyed score cache).

The pipeline's boosting model is fitted on the first months and the suite (`mlsys.pipeline_suite.flights_suite`, the one
the evaluate stage runs) is run on the month after, twice per way, interleaved; the table gives the best time, the
model's predict_proba calls, and whether the two ways' results are identical.
Run:
    .venv/bin/python bench/bench_suite.py [--train-months 2] [--repeat 2]
"""
import argparse
import time


def markdown(rows) -> str:
    cols = list(rows[0])
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append("| " + " | ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in r.values()) + " |")
    return "\n".join(out)


class Counting:
    "The model, counting its predict_proba calls."

    def __init__(self, model):
        self.model, self.calls = model, 0
        self.feature_names_in_ = model.feature_names_in_

    def predict_proba(self, X):
        self.calls += 1
        return self.model.predict_proba(X)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train-months", type=int, default=2, help="months of 2013 to train on; the next month is the test set")
    ap.add_argument("--repeat", type=int, default=2, help="runs per way (the best is reported)")
    args = ap.parse_args()
    from threadpoolctl import threadpool_limits

    import mlsys.evaluation.suite as S
    from mlsys.datasets import load_flights, load_planes, load_weather
    from mlsys.pipeline import FEATURES, LABEL, _labels, build_features, make_model, time_split
    from mlsys.pipeline_suite import flights_suite

    threadpool_limits(1)
    m = args.train_months
    end = f"2013-{m + 2:02d}-01" if m + 2 <= 12 else "2013-12-31"
    feats = build_features(load_flights("2013-01-01", end), load_weather("2013-01-01", end), load_planes()).dropna(subset=[LABEL])
    train, test = time_split(feats, f"2013-{m + 1:02d}-01")
    model = Counting(make_model().fit(train[FEATURES], _labels(train, "train")))
    y, suite = _labels(test, "test"), flights_suite()
    fingerprint = S._fingerprint
    ways = {"shared scores (mlsys)": fingerprint, "each test scores its own inputs (naive)": lambda X: None}
    best, calls, out = {k: float("inf") for k in ways}, {}, {}
    for _ in range(args.repeat):
        for name, fp in ways.items():
            S._fingerprint, model.calls = fp, 0
            t = time.perf_counter()
            out[name] = suite.run(model, test, y).to_json()
            best[name] = min(best[name], time.perf_counter() - t)
            calls[name] = model.calls
    S._fingerprint = fingerprint
    naive = best["each test scores its own inputs (naive)"]
    same = len(set(out.values())) == 1
    rows = [{"way": k, "seconds (best)": v, "vs naive": f"{naive / v:.2f}x faster" if v < naive else "1.00x",
             "predict_proba calls": calls[k], "results identical": same} for k, v in best.items()]
    print(f"flights suite ({len(suite.tests)} tests) on {len(test):,} test flights, model trained on {len(train):,}\n")
    print(markdown(rows))


if __name__ == "__main__":
    main()
