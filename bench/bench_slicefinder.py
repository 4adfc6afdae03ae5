"""Slice finding on the flights model's errors: mlsys's SliceLine search vs the `sliceline` package vs exhaustive search.

Data: the 2013 flights with the pipeline's features (`mlsys.pipeline.build_features`, all 21 `FEATURES`), split by
`time_split` at --split (default 2013-04-01: the model trains on January-March, the slice finders search the
April-December test rows, the largest test period that leaves a quarter to train on). Errors: the per-row log loss of
`make_model()`. Every method gets the same input: the features encoded by `mlsys.evaluation.slicefinder.fit_column`
(categories, or 5 equal-frequency bins for numeric features with more distinct values), as integer codes.

- mlsys: `sliceline_search` on the codes (the search alone), and `SliceFinder.fit` on the DataFrame (encoding, search,
  p-values and corrections over every tested slice).
- sliceline: `sliceline.Slicefinder` 0.3.0 (numpy fallback: numba is not installed) on the same codes, in a child
  process stopped after --timeout seconds and capped at --mem-gib GiB of address space (the row says which). Its
  evaluation materialises the (rows x candidates) product of the one-hot data with the candidates, and its join a
  dense (slices x slices) matrix, so on the full test period it runs out of memory at the default 6 GiB cap.
- exhaustive: every conjunction of up to `max_l` features grouped with one `np.bincount` per feature combination,
  every group scored; the reference top-k (ties with the k-th kept).

"top-k = exhaustive" compares the sets of slices. Run: python bench/bench_slicefinder.py [--small] [--levels 2 3]
(--small: January only, split at 2013-01-22, about 8,400 test rows).
"""
import argparse
import itertools
import multiprocessing as mp
import queue
import time

import numpy as np

from mlsys.evaluation.slicefinder import SCORE_EPS, SliceFinder, fit_column, slice_scores, sliceline_search


def flights_errors(small: bool, split: str):
    "(test features, per-row log loss) of the pipeline's model."
    from mlsys.datasets import load_flights, load_planes, load_weather
    from mlsys.pipeline import FEATURES, LABEL, build_features, make_model, time_split
    start, end = ("2013-01-01", "2013-01-31") if small else ("2013-01-01", "2013-12-31")
    feats = build_features(load_flights(start, end), load_weather(start, end), load_planes()).dropna(subset=[LABEL])
    train, test = time_split(feats, "2013-01-22" if small else split)
    model = make_model().fit(train[FEATURES], train[LABEL].astype(int))
    p = model.predict_proba(test[FEATURES])[:, 1]
    y = test[LABEL].astype(int).to_numpy()
    return test[FEATURES].reset_index(drop=True), -np.log(np.clip(np.where(y == 1, p, 1 - p), 1e-15, 1)), len(train)


def exhaustive(codes, domains, errors, alpha, k, max_l, min_sup):
    "{((feature, code), ...): score} of the top-k over every slice of up to max_l predicates."
    n, F = codes.shape
    ebar = errors.mean()
    best = {}
    for L in range(1, max_l + 1):
        for fs in itertools.combinations(range(F), L):
            dims = domains[list(fs)]
            key = np.ravel_multi_index(tuple(codes[:, f] for f in fs), dims)
            size = np.bincount(key, minlength=int(np.prod(dims)))
            err = np.bincount(key, weights=errors, minlength=len(size))
            sc = slice_scores(size, err, n, ebar, alpha)
            ok = np.flatnonzero((size >= min_sup) & (err > 0) & (sc > SCORE_EPS))
            if len(ok) > k:
                ok = ok[sc[ok] >= np.sort(sc[ok])[::-1][k - 1]]
            for i, z in zip(ok, sc[ok]):
                best[tuple(zip(fs, map(int, np.unravel_index(i, dims))))] = float(z)
            if len(best) > 4 * k:  # keep the running top-k small
                kth = sorted(best.values(), reverse=True)[k - 1]
                best = {p: z for p, z in best.items() if z >= kth}
    if len(best) > k:
        kth = sorted(best.values(), reverse=True)[k - 1]
        best = {p: z for p, z in best.items() if z >= kth}
    return best


def _sliceline_child(q, codes, errors, params, mem_gib):
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (int(mem_gib * 2**30),) * 2)  # fail with MemoryError, not the machine
    from sliceline import Slicefinder
    t0 = time.perf_counter()
    try:
        est = Slicefinder(verbose=False, **params).fit(codes, errors)
    except MemoryError:
        q.put(("oom", None))
        return
    q.put((time.perf_counter() - t0, {tuple((f, int(v)) for f, v in enumerate(row) if v is not None)
                                      for row in est.top_slices_}))


def run_sliceline(codes, errors, params, timeout, mem_gib):
    "(seconds, set of slices) from the package in a child process; (None, None) past `timeout`, ('oom', None) past `mem_gib`."
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    proc = ctx.Process(target=_sliceline_child, args=(q, codes, errors, params, mem_gib))
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.terminate()
        proc.join()
        return None, None
    try:
        return q.get(timeout=5)
    except queue.Empty:  # the child died without an answer (killed for memory)
        return "killed", None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="January only (about 8,400 test rows)")
    ap.add_argument("--split", default="2013-04-01", help="time_split date of the full run")
    ap.add_argument("--levels", type=int, nargs="+", default=[2, 3], help="max_l values to run")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--alpha", type=float, default=0.95)
    ap.add_argument("--min-sup", type=int, default=100)
    ap.add_argument("--timeout", type=float, default=600, help="seconds before the sliceline package is stopped")
    ap.add_argument("--mem-gib", type=float, default=6, help="address-space cap of the sliceline package's process")
    a = ap.parse_args()
    X, errors, n_train = flights_errors(a.small, a.split)
    cols = [fit_column(X[f], f, 5) for f in X.columns]
    codes = np.column_stack([c.encode(X[c.name]) for c in cols])
    domains = np.array([len(c.labels) for c in cols])
    offsets, feat_of = np.concatenate([[0], np.cumsum(domains)]), np.repeat(np.arange(len(domains)), domains)
    print(f"flights: {n_train:,} training rows, {len(X):,} test rows x {X.shape[1]} features = {domains.sum()} predicates; "
          f"alpha={a.alpha}, k={a.k}, min_sup={a.min_sup}, mean log loss {errors.mean():.4f}")
    print(f"{'method':<22}{'rows':>9}{'features':>9}{'levels':>7}{'time (s)':>10}  top-k = exhaustive?")
    for L in a.levels:
        params = dict(alpha=a.alpha, k=a.k, max_l=L, min_sup=a.min_sup)
        t0 = time.perf_counter(); ref = exhaustive(codes, domains, errors, **params); t_ex = time.perf_counter() - t0
        t0 = time.perf_counter(); res = sliceline_search(codes, domains, errors, **params); t_s = time.perf_counter() - t0
        ours = {tuple((int(feat_of[c]), int(c - offsets[feat_of[c]])) for c in row if c >= 0) for row in res.cols}
        t0 = time.perf_counter(); sf = SliceFinder(n_bins=5, **params).fit(X, errors); t_f = time.perf_counter() - t0
        t_sl, theirs = run_sliceline(codes, errors, params, a.timeout, a.mem_gib)
        rows = [("exhaustive", t_ex, "(reference)"),
                ("mlsys search", t_s, str(ours == set(ref))),
                ("mlsys SliceFinder.fit", t_f, f"{len(sf.top_slices_) == len(ref)} ({sf.n_tested_:,} slices tested)"),
                ("sliceline 0.3.0", t_sl, str(theirs == set(ref)) if theirs is not None else
                 (f"out of memory at the {a.mem_gib:g} GiB address-space cap" if t_sl == "oom" else
                  "killed" if t_sl == "killed" else "stopped"))]
        for name, t, eq in rows:
            ts = f"> {a.timeout:.0f}" if t is None else (t if isinstance(t, str) else f"{t:.3f}")
            print(f"{name:<22}{len(X):>9,}{X.shape[1]:>9}{L:>7}{ts:>10}  {eq}")
        ev = res.levels
        print("  mlsys levels: " + "; ".join(f"L{r.level}: {r.evaluated:,} of {r.candidates:,} evaluated" for r in ev.itertuples()))


if __name__ == "__main__":
    main()
