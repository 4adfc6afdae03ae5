"""Ensembles vs the best single base learner on the flights: score, batch and one-row latency, size and training time,
measured side by side in one run (issue 12, item 3: "ensembles are hard to deploy", as numbers).

Run: .venv/bin/python bench/bench_ensembles.py [--train 20000] [--test 10000] [--repeats 15] [--no-neural]
Baseline: the best single base learner (tree, logistic regression, torch MLP) by average precision on March 2013.
Prints a markdown table: score, gain over the baseline, and each cost as a multiple of the baseline's.
"""
import argparse
import time

import pandas as pd
from sklearn.base import clone
from threadpoolctl import threadpool_limits

from mlsys.datasets import load_flights, load_planes, load_weather
from mlsys.modeling.ensembles import base_learners, gain_vs_cost, make_ensembles
from mlsys.pipeline import CATEGORICAL_FEATURES, FEATURES, LABEL, NUMERIC_FEATURES, build_features, time_split


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=20000, help="training flights (a sample of Jan-Feb 2013)")
    ap.add_argument("--test", type=int, default=10000, help="test flights (a sample of March 2013)")
    ap.add_argument("--repeats", type=int, default=15, help="timing repeats (medians are reported)")
    ap.add_argument("--batch", type=int, default=1000, help="rows of the timed batch")
    ap.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads")
    ap.add_argument("--no-neural", action="store_true", help="leave out the torch MLP")
    args = ap.parse_args()
    flights = load_flights("2013-01-01", "2013-03-31")
    feats = build_features(flights, load_weather("2013-01-01", "2013-03-31"), load_planes())
    train, test = time_split(feats, "2013-03-01")
    train = train.sample(min(args.train, len(train)), random_state=0)
    test = test.sample(min(args.test, len(test)), random_state=0)
    Xtr, ytr, Xte, yte = train[FEATURES], train[LABEL].astype(bool), test[FEATURES], test[LABEL].astype(bool)
    if not args.no_neural:
        import skorch  # noqa: F401  (imported before timing, so the first fit does not pay for it)
        import torch  # noqa: F401
    with threadpool_limits(args.threads):
        learners = base_learners(CATEGORICAL_FEATURES, NUMERIC_FEATURES, neural=not args.no_neural)
        models = {**learners, **make_ensembles(CATEGORICAL_FEATURES, NUMERIC_FEATURES, learners=learners)}
        fitted, fit_s = {}, {}
        for name, m in models.items():
            t0 = time.perf_counter()
            fitted[name] = clone(m).fit(Xtr, ytr)
            fit_s[name] = time.perf_counter() - t0
        table = gain_vs_cost(fitted, list(learners), Xte, yte, fit_seconds=fit_s, batch_rows=args.batch, n_repeats=args.repeats)
    print(f"flights: {len(Xtr):,} train (Jan-Feb), {len(Xte):,} test (March); {args.threads} thread(s); "
          f"median of {args.repeats} timings; baseline = best single learner: {table.attrs['reference']!r}\n")
    cols = ["kind", "score", "gain", "latency_batch_ms", "latency_x", "latency_1_row_ms", "size_kib", "size_x", "fit_s", "fit_x"]
    with pd.option_context("display.float_format", "{:.3f}".format):
        print(table[cols].to_markdown(floatfmt=".3f"))


if __name__ == "__main__":
    main()
