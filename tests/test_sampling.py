"""Tests of mlsys.sampling: exact stratified allocation, reservoir uniformity (R vs L), weights, errors."""
import math
from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mlsys.core import ConfigError, DataError
from mlsys.datasets import load_flights
from mlsys.sampling import (
    ReservoirSampler,
    StratifiedSampler,
    allocate,
    bias_report,
    convenience_sample,
    effective_sample_size,
    importance_estimate,
    importance_weights,
    judgement_sample,
    quota_sample,
    reservoir_sample,
    simple_random_sample,
    snowball_sample,
    stratified_sample,
    weighted_sample,
)


@pytest.fixture(scope="module")
def flights():
    return load_flights("2013-01-01", "2013-01-10")


# ---------------------------------------------------------------- nonprobability


def test_convenience_takes_first_rows_in_order(flights):
    s = convenience_sample(flights, 50, order_by="dep_delay")
    assert s.index.tolist() == flights.sort_values("dep_delay", kind="stable").index[:50].tolist()


def test_snowball_is_connected_and_exact_size(flights):
    s = snowball_sample(flights, 400, link_cols=["tailnum", "dest"], random_state=2)
    assert len(s) == 400 and s.index.is_unique
    # every row shares a plane or a destination with at least one other sampled row
    shared = s["tailnum"].map(s["tailnum"].value_counts()).gt(1) | s["dest"].map(s["dest"].value_counts()).gt(1)
    assert shared.all()


def test_snowball_restarts_when_a_component_is_exhausted():
    df = pd.DataFrame({"a": [1, 1, 2, 2, 3, 3], "b": list("xxyyzz")})
    s = snowball_sample(df, 6, link_cols=["a"], random_state=0)
    assert sorted(s.index) == list(range(6))


def test_judgement_and_quota(flights):
    j = judgement_sample(flights, lambda d: d["origin"] == "EWR", n=10)
    assert (j["origin"] == "EWR").all() and len(j) == 10
    q = quota_sample(flights, ["origin", "carrier"], {("EWR", "UA"): 7, ("JFK", "B6"): 3})
    assert q.groupby(["origin", "carrier"], observed=True).size().to_dict() == {("EWR", "UA"): 7, ("JFK", "B6"): 3}
    # quota rows are the first arrivals of their slice
    first = flights[(flights["origin"] == "JFK") & (flights["carrier"] == "B6")].index[:3].tolist()
    assert q[q["carrier"] == "B6"].index.tolist() == first


def test_bias_report_numbers():
    pop = pd.DataFrame({"y": [0, 0, 1, 1], "c": list("aabb")})
    rep = bias_report(pop, {"s": pop.iloc[[2, 3]]}, target="y", by="c")
    assert rep.loc["s", "rate error"] == pytest.approx(0.5)
    assert rep.loc["s", "c mix distance"] == pytest.approx(0.5)


# ---------------------------------------------------------------- stratified


@pytest.mark.parametrize("sizes,n", [([7, 11, 13, 1, 68], 17), ([1000, 3, 3, 3], 10), ([5] * 9, 31)])
def test_allocate_proportional_is_exact(sizes, n):
    a = allocate(sizes, n)
    exact = n * np.array(sizes) / sum(sizes)
    assert a.sum() == n
    assert (np.abs(a - exact) < 1).all()
    assert (a >= np.floor(exact)).all()


def test_stratified_multi_column_exact_proportions(flights):
    by = ["origin", "carrier"]
    s = stratified_sample(flights, by, frac=0.1, random_state=5, weight_col="w")
    pop = flights.groupby(by, observed=True).size()
    got = s.groupby(by, observed=True).size().reindex(pop.index, fill_value=0)
    n = round(0.1 * len(flights))
    assert got.sum() == n
    assert got.tolist() == allocate(pop.to_numpy(), n).tolist()
    assert ((got - n * pop / len(flights)).abs() < 1).all()
    # design weights: every sampled row of stratum h carries N_h / n_h
    w = s.groupby(by, observed=True)["w"].first()
    assert np.allclose(w, (pop / got)[got > 0].reindex(w.index))
    assert s.index.is_monotonic_increasing and s.index.is_unique


def test_stratified_equal_allocation_and_errors(flights):
    s = stratified_sample(flights, "origin", n=300, allocation="equal", random_state=0)
    assert s["origin"].value_counts().tolist() == [100, 100, 100]
    with pytest.raises(DataError, match="which has only"):
        stratified_sample(flights, "carrier", n=2000, allocation="equal")
    with pytest.raises(ConfigError, match="allocation must be"):
        stratified_sample(flights, "origin", n=10, allocation="neyman")
    with pytest.raises(DataError, match="larger than the population"):
        stratified_sample(flights, "origin", n=len(flights) + 1)
    with pytest.raises(DataError, match="'nope'"):
        stratified_sample(flights, ["origin", "nope"], n=10)


def test_stratified_sampler_fit_resample_keeps_class_ratios():
    y = np.array([0] * 900 + [1] * 90 + [2] * 10)
    X = np.arange(1000).reshape(-1, 1)
    sampler = StratifiedSampler(n=100, random_state=0)
    Xr, yr = sampler.fit_resample(X, y)
    assert np.bincount(yr).tolist() == [90, 9, 1]
    assert (Xr[:, 0] == sampler.sample_indices_).all()


def test_stratified_sampler_clones_and_runs_in_an_imblearn_pipeline(flights):
    from imblearn.pipeline import Pipeline
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression

    s = StratifiedSampler(frac=0.2, random_state=3)
    c = clone(s)
    assert c is not s and c.get_params() == s.get_params()
    df = flights.dropna(subset=["dep_delay"])
    X, y = df[["dep_delay", "distance"]].astype(float), df["origin"].astype(str)
    pipe = Pipeline([("sample", s), ("model", LogisticRegression(max_iter=200))]).fit(X, y)
    kept = pipe.named_steps["sample"].sample_indices_
    assert len(kept) == round(0.2 * len(df))
    assert ((y.iloc[kept].value_counts() - 0.2 * y.value_counts()).abs() < 1).all()  # exact proportions inside the pipeline
    assert s.set_params(frac=0.1).frac == 0.1
    with pytest.raises(ConfigError, match=r"no parameter\(s\) \['fraction'\]"):
        s.set_params(fraction=0.1)


# ---------------------------------------------------------------- simple random / weighted


def test_simple_random_errors(flights):
    with pytest.raises(DataError, match=r"n=\d+ is larger than the population"):
        simple_random_sample(flights, len(flights) + 1)
    assert len(simple_random_sample(flights, len(flights) + 1, replace=True)) == len(flights) + 1
    with pytest.raises(DataError, match="empty"):
        simple_random_sample(flights.iloc[:0], 1)


def test_weighted_with_replacement_matches_weights():
    df = pd.DataFrame({"i": range(5)})
    w = np.array([1, 2, 3, 4, 0], dtype=float)
    s = weighted_sample(df, 20_000, w, replace=True, random_state=1)
    counts = np.bincount(s["i"], minlength=5)
    assert counts[4] == 0
    assert stats.chisquare(counts[:4], w[:4] / w.sum() * len(s)).pvalue > 1e-3


def test_weighted_single_draw_follows_weights():
    # a single draw without replacement picks row i with probability w_i / sum(w)
    df = pd.DataFrame({"i": range(4)})
    w = [1.0, 1.0, 2.0, 4.0]
    inc = np.zeros(4)
    for s in range(3000):
        inc[weighted_sample(df, 1, w, random_state=s)["i"].to_numpy()] += 1
    assert stats.chisquare(inc, np.array(w) / sum(w) * 3000).pvalue > 1e-3


@pytest.mark.parametrize(
    "weights,n,replace,msg",
    [
        ([1, -1, 1], 1, False, "negative"),
        ([0, 0, 0], 1, False, "all zero"),
        ([0, 0, 0], 1, True, "all zero"),
        ([1, np.inf, 1], 1, False, "finite"),
        ([1, 0, 0], 2, False, "larger than the 1 rows with positive weight"),
        ([1, 1], 1, False, "one value per row"),
        ("missing_col", 1, False, "'missing_col'"),
        (["a", "b", "c"], 1, False, "must be numbers"),
    ],
)
def test_weighted_bad_input(weights, n, replace, msg):
    df = pd.DataFrame({"x": [1, 2, 3]})
    with pytest.raises(DataError, match=msg):
        weighted_sample(df, n, weights, replace=replace)


def test_weighted_from_column():
    df = pd.DataFrame({"x": range(10), "w": [0] * 9 + [1]})
    assert weighted_sample(df, 1, "w")["x"].tolist() == [9]


# ---------------------------------------------------------------- reservoir


N_ITEMS, K, RUNS = 7, 3, 7000
SUBSETS = {s: i for i, s in enumerate(combinations(range(N_ITEMS), K))}


def _subset_counts(draw):
    c = np.zeros(len(SUBSETS), dtype=int)
    for r in range(RUNS):
        c[SUBSETS[tuple(sorted(draw(r)))]] += 1
    return c


def _stream_sampler(method):
    def draw(r):
        s = ReservoirSampler(K, method, random_state=r)
        for x in range(N_ITEMS):
            s.update(x)
        return s.sample_
    return draw


VARIANTS = {
    "R iterator": lambda r: reservoir_sample(iter(range(N_ITEMS)), K, "R", random_state=r),
    "L iterator": lambda r: reservoir_sample(iter(range(N_ITEMS)), K, "L", random_state=r),
    "L random access": lambda r: reservoir_sample(np.arange(N_ITEMS), K, "L", random_state=r),
    "R update": _stream_sampler("R"),
    "L update": _stream_sampler("L"),
    "L update_many": lambda r: ReservoirSampler(K, "L", random_state=r).update_many(iter(range(N_ITEMS))).sample_,
}


@pytest.fixture(scope="module")
def subset_counts():
    return {name: _subset_counts(draw) for name, draw in VARIANTS.items()}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_reservoir_every_subset_equally_likely(subset_counts, name):
    # 35 possible 3-of-7 reservoirs; chi-squared goodness of fit against uniform
    assert stats.chisquare(subset_counts[name]).pvalue > 1e-3


def test_reservoir_r_and_l_identical_in_distribution(subset_counts):
    table = np.vstack([subset_counts["R iterator"], subset_counts["L iterator"], subset_counts["L random access"]])
    assert stats.chi2_contingency(table).pvalue > 1e-3


@pytest.mark.parametrize("method,source", [("R", "iter"), ("L", "iter"), ("L", "array")])
def test_reservoir_inclusion_uniform_on_long_stream(method, source):
    # long stream (many skips): each of N items is included with probability k/N.
    # Inclusion indicators within a run are negatively correlated, so the usual statistic is
    # rescaled by N/(N-1) * (1-p) to follow chi2(N-1).
    N, k, runs = 300, 6, 3000
    counts = np.zeros(N)
    for r in range(runs):
        src = iter(range(N)) if source == "iter" else np.arange(N)
        counts[np.asarray(reservoir_sample(src, k, method, random_state=1000 + r))] += 1
    p = k / N
    e = runs * p
    stat = ((counts - e) ** 2).sum() / (e * (1 - p) * N / (N - 1))
    assert stats.chi2.sf(stat, N - 1) > 1e-3
    # the last items are not favoured nor starved (a classic off-by-one symptom)
    assert abs(counts[-30:].mean() - e) < 4 * math.sqrt(e / 30)


def test_reservoir_paths_agree_exactly():
    # same seed -> same reservoir whether items come one by one, in chunks, as an iterator or by index
    for n in [5, 6, 97, 5000]:
        one = ReservoirSampler(5, "L", random_state=9)
        for x in range(n):
            one.update(x)
        chunks = ReservoirSampler(5, "L", random_state=9).update_many(range(n // 3)).update_many(range(n // 3, n))
        assert one.sample_ == chunks.sample_ == reservoir_sample(iter(range(n)), 5, "L", random_state=9)
        assert one.sample_ == reservoir_sample(range(n), 5, "L", random_state=9)
        assert one.n_seen_ == chunks.n_seen_ == n


def test_reservoir_random_access_reads_few_items():
    class Counting:
        def __init__(self, n):
            self.n, self.reads = n, 0

        def __len__(self):
            return self.n

        def __getitem__(self, i):
            self.reads += 1
            return i

    from collections.abc import Sequence
    Sequence.register(Counting)
    src = Counting(1_000_000)
    out = reservoir_sample(src, 100, "L", random_state=0)
    assert len(out) == 100
    assert src.reads < 100 * (2 + math.log(1_000_000 / 100)) * 1.5  # ~k(1+ln(N/k)), not N


def test_reservoir_bad_input():
    with pytest.raises(DataError, match="k=6 is larger than the population"):
        reservoir_sample(iter(range(5)), 6)
    with pytest.raises(DataError, match="k=6 is larger than the population"):
        reservoir_sample(iter(range(5)), 6, method="R")
    with pytest.raises(DataError, match="positive integer"):
        reservoir_sample(range(5), 0)
    with pytest.raises(DataError, match="positive integer"):
        ReservoirSampler(2.5)
    with pytest.raises(ConfigError, match="method must be"):
        ReservoirSampler(3, method="X")
    with pytest.raises(ConfigError, match="random_state"):
        reservoir_sample(range(5), 2, random_state="seed")
    with pytest.raises(DataError, match="column names"):
        reservoir_sample(pd.DataFrame({"a": range(5)}), 2)
    with pytest.raises(DataError, match="iterable of items"):
        ReservoirSampler(2).update_many("abc")
    small = ReservoirSampler(10).update_many(range(4))
    assert sorted(small.sample_) == [0, 1, 2, 3] and small.n_seen_ == 4  # a short stream keeps everything


# ---------------------------------------------------------------- importance sampling


def test_importance_gaussian_second_moment():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 2, 200_000)  # Q = N(0, 2^2), P = N(1, 1): E_P[x^2] = 2
    logp, logq = stats.norm.logpdf(x, 1, 1), stats.norm.logpdf(x, 0, 2)
    est = importance_estimate(x**2, logp, logq, log=True)
    plain = importance_estimate(x**2, np.exp(logp), np.exp(logq), self_normalized=False)
    assert est.estimate == pytest.approx(2.0, abs=0.05)
    assert plain.estimate == pytest.approx(2.0, abs=0.05)
    assert 0 < est.ess < len(x)
    assert est.weights.sum() == pytest.approx(1.0)


def test_self_normalized_ignores_constants():
    f, p, q = np.array([1.0, 2.0, 3.0]), np.array([0.2, 0.3, 0.5]), np.array([0.3, 0.3, 0.4])
    a = importance_estimate(f, p, q).estimate
    b = importance_estimate(f, 7 * p, 3 * q).estimate
    assert a == pytest.approx(b)


def test_effective_sample_size_values():
    assert effective_sample_size(np.ones(10)) == pytest.approx(10)
    assert effective_sample_size([1, 0, 0, 0]) == pytest.approx(1)


def test_importance_bad_input():
    with pytest.raises(DataError, match="q must be positive"):
        importance_weights([0.5], [0.0])
    with pytest.raises(DataError, match="p must be non-negative"):
        importance_weights([-0.5], [0.5])
    with pytest.raises(DataError, match="p has 1 values but values has 2"):
        importance_estimate([1.0, 2.0], [0.5], [0.5, 0.5])
    with pytest.raises(DataError, match="all importance weights are zero"):
        importance_estimate([1.0], [0.0], [0.5])
    with pytest.raises(DataError, match="NaN"):
        importance_estimate([1.0], [np.nan], [0.5])
    # silent NaN/inf estimates are refused: infinite densities, overflowing weights
    with pytest.raises(DataError, match="finite"):
        importance_weights([np.inf, 0.5], [0.5, 0.5])
    with pytest.raises(DataError, match="overflow"):
        importance_weights([1.0], [1e-320])
    with pytest.raises(DataError, match="overflow"):
        importance_estimate([1.0, 2.0], [800.0, 0.0], [0.0, 0.0], log=True)
    with pytest.raises(DataError, match=r"\+inf"):
        importance_weights([np.inf], [0.0], log=True)
    with pytest.raises(DataError, match="finite"):
        effective_sample_size([np.inf, 1.0])


def test_nonprobability_bad_input(flights):
    with pytest.raises(DataError, match=r"one boolean per row \(\d+\), got shape \(3,\)"):
        judgement_sample(flights, lambda d: np.ones(3, dtype=bool))
    with pytest.raises(DataError, match="got dtype int64"):
        judgement_sample(flights, lambda d: d["hour"].astype("int64"))
    with pytest.raises(DataError, match="non-empty dict"):
        bias_report(flights, {})


# ---------------------------------------------------------------- sample weights into scikit-learn


def test_design_weights_pass_through_to_sklearn(flights):
    from sklearn.linear_model import LogisticRegression

    df = flights.dropna(subset=["is_late"]).astype({"is_late": int})
    bal = stratified_sample(df, "is_late", n=1000, allocation="equal", random_state=0, weight_col="w")
    X = np.ones((len(bal), 1))
    m = LogisticRegression().fit(X, bal["is_late"], sample_weight=bal["w"])
    # an intercept-only model with design weights predicts the population rate
    assert m.predict_proba(X[:1])[0, 1] == pytest.approx(df["is_late"].mean(), abs=0.01)
    m0 = LogisticRegression().fit(X, bal["is_late"])
    assert m0.predict_proba(X[:1])[0, 1] == pytest.approx(0.5, abs=0.01)


def test_snowball_more_seeds_than_sample_size_is_named():
    df = pd.DataFrame({"a": [1, 1, 2, 2, 3, 3], "b": list("xxyyzz")})
    with pytest.raises(DataError, match="seeds=4 is larger than the sample size n=3"):
        snowball_sample(df, 3, link_cols=["a"], seeds=4)
