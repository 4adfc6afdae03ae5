"""Every public entry point of mlsys.sampling refuses bad input with a named mlsys error that names the input.

Issue 9 items 10 and 11 (`mix_distance(None, s)`, `mix_distance` of an empty sample, `importance_estimate` returning
inf), then the same classes over every sampler: None, wrong types, bool-as-int, floats for ints, NaN/inf, empty
frames, missing columns, numbers as strings, sizes that are zero, negative, larger than the population or too large
to allocate, weights that sum to zero or overflow, mismatched lengths. Happy-path outputs are unchanged (a seed
gives the same rows as before: see test_sampling.py).
"""
import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import mlsys.sampling as S
from mlsys.core import ConfigError, DataError, MlsysError, SchemaError

DF = pd.DataFrame({"a": list("xxyyzz"), "b": [1, 2, 3, 4, 5, 6], "t": [0, 1, 0, 1, 1, 0], "w": [1.0] * 6})
S6 = DF["a"]


def _many(df=DF):
    return pd.DataFrame({"a": list("xxyyzz") * 50, "b": range(300), "t": [0, 1] * 150})


# (id, callable, kwargs, error type, message fragment)
CASES = [
    # ---- mix_distance (items 10 and 11)
    ("mix None population", S.mix_distance, dict(population=None, sample=S6), DataError, "population must be a pandas Series of categories, got NoneType"),
    ("mix None sample", S.mix_distance, dict(population=S6, sample=None), DataError, "sample must be a pandas Series"),
    ("mix empty sample", S.mix_distance, dict(population=S6, sample=S6.iloc[:0]), DataError, "sample is empty"),
    ("mix empty population", S.mix_distance, dict(population=S6.iloc[:0], sample=S6), DataError, "population is empty"),
    ("mix list", S.mix_distance, dict(population=list("ab"), sample=S6), DataError, "population must be a pandas Series of categories, got list"),
    ("mix frame", S.mix_distance, dict(population=DF, sample=S6), DataError, "population must be a pandas Series of categories, got DataFrame"),
    ("mix unhashable", S.mix_distance, dict(population=pd.Series([[1], [2]]), sample=S6), DataError, "must hold (comparable, )?hashable category values"),
    # ---- bias_report
    ("bias None", S.bias_report, dict(population=None, samples={"s": DF}), DataError, "population must be a pandas DataFrame"),
    ("bias empty", S.bias_report, dict(population=DF.iloc[:0], samples={"s": DF}, target="t", by="a"), DataError, "population is empty"),
    ("bias samples list", S.bias_report, dict(population=DF, samples=[DF], target="t", by="a"), DataError, "samples must be a non-empty dict"),
    ("bias sample None", S.bias_report, dict(population=DF, samples={"s": None}, target="t", by="a"), DataError, "sample 's' must be a pandas DataFrame"),
    ("bias sample empty", S.bias_report, dict(population=DF, samples={"s": DF.iloc[:0]}, target="t", by="a"), DataError, "sample 's' is empty"),
    ("bias sample lacks by", S.bias_report, dict(population=DF, samples={"s": DF[["t"]]}, target="t", by="a"), SchemaError, r"sample 's': column\(s\) \['a'\]"),
    ("bias target list", S.bias_report, dict(population=DF, samples={"s": DF}, target=["t"], by="a"), DataError, "target must be one column name"),
    ("bias target None", S.bias_report, dict(population=DF, samples={"s": DF}, target=None, by="a"), DataError, "target must be one column name"),
    ("bias target text", S.bias_report, dict(population=DF, samples={"s": DF}, target="a", by="b"), DataError, "target 'a' of population must be 0/1 or boolean"),
    ("bias target all missing", S.bias_report, dict(population=DF.assign(t=np.nan), samples={"s": DF}, target="t", by="a"), DataError, "target 't' of population has no non-missing value"),
    ("bias sample target all NA", S.bias_report, dict(population=DF, samples={"s": DF.assign(t=pd.array([pd.NA] * 6, dtype="boolean"))}, target="t", by="a"), DataError, "target 't' of sample 's' has no non-missing value"),
    ("bias by None", S.bias_report, dict(population=DF, samples={"s": DF}, target="t", by=None), DataError, "by must be a column name"),
    ("bias by empty", S.bias_report, dict(population=DF, samples={"s": DF}, target="t", by=[]), DataError, "by must name at least one column"),
    ("bias by missing", S.bias_report, dict(population=DF, samples={"s": DF}, target="t", by=["nope"]), SchemaError, r"by: column\(s\) \['nope'\]"),
    ("bias by unhashable", S.bias_report, dict(population=DF, samples={"s": DF}, target="t", by=[["a"]]), DataError, "by must hold hashable column names"),
    ("bias by 0-d array", S.bias_report, dict(population=DF, samples={"s": DF}, target="t", by=np.array("a")), DataError, "by must be a column name"),
    # ---- convenience_sample
    ("conv None", S.convenience_sample, dict(df=None, n=2), DataError, "df must be a pandas DataFrame"),
    ("conv empty", S.convenience_sample, dict(df=DF.iloc[:0], n=1), DataError, "df is empty"),
    ("conv n None", S.convenience_sample, dict(df=DF, n=None), DataError, "n must be an integer, got None"),
    ("conv n str", S.convenience_sample, dict(df=DF, n="2"), DataError, "n must be an integer, got '2'"),
    ("conv n bool", S.convenience_sample, dict(df=DF, n=True), DataError, "n must be an integer, got True"),
    ("conv n float", S.convenience_sample, dict(df=DF, n=2.0), DataError, "n must be an integer, got 2.0"),
    ("conv n nan", S.convenience_sample, dict(df=DF, n=float("nan")), DataError, "n must be an integer, got nan"),
    ("conv n 0", S.convenience_sample, dict(df=DF, n=0), DataError, "n must be at least 1, got 0"),
    ("conv n negative", S.convenience_sample, dict(df=DF, n=-3), DataError, "n must be at least 1"),
    ("conv n huge", S.convenience_sample, dict(df=DF, n=10**12), DataError, "n=1000000000000 is larger than the population of 6"),
    ("conv order_by missing", S.convenience_sample, dict(df=DF, n=2, order_by="nope"), SchemaError, r"order_by: column\(s\) \['nope'\]"),
    ("conv order_by mixed", S.convenience_sample, dict(df=DF.assign(m=[1, "a", 2, "b", 3, None]), n=2, order_by="m"), DataError, r"order_by \['m'\] cannot be sorted"),
    # ---- snowball_sample
    ("snow None", S.snowball_sample, dict(df=None, n=2), DataError, "df must be a pandas DataFrame"),
    ("snow n float", S.snowball_sample, dict(df=DF, n=2.5, link_cols=["a"]), DataError, "n must be an integer, got 2.5"),
    ("snow n huge", S.snowball_sample, dict(df=DF, n=10**12, link_cols=["a"]), DataError, "larger than the population"),
    ("snow link_cols missing", S.snowball_sample, dict(df=DF, n=2), SchemaError, r"link_cols: column\(s\) \['tailnum', 'dest'\]"),
    ("snow link_cols None", S.snowball_sample, dict(df=DF, n=2, link_cols=None), DataError, "link_cols must be a column name"),
    ("snow seeds 0", S.snowball_sample, dict(df=DF, n=2, link_cols=["a"], seeds=0), DataError, "seeds must be at least 1"),
    ("snow seeds bool", S.snowball_sample, dict(df=DF, n=2, link_cols=["a"], seeds=True), DataError, "seeds must be an integer, got True"),
    ("snow seeds > n", S.snowball_sample, dict(df=DF, n=2, link_cols=["a"], seeds=3), DataError, "seeds=3 is larger than the sample size n=2"),
    ("snow random_state str", S.snowball_sample, dict(df=DF, n=2, link_cols=["a"], random_state="x"), ConfigError, "random_state must be None, a non-negative integer or a numpy Generator, got 'x'"),
    ("snow random_state float", S.snowball_sample, dict(df=DF, n=2, link_cols=["a"], random_state=2.5), ConfigError, "random_state must be"),
    ("snow random_state bool", S.snowball_sample, dict(df=DF, n=2, link_cols=["a"], random_state=True), ConfigError, "random_state must be"),
    ("snow random_state negative", S.snowball_sample, dict(df=DF, n=2, link_cols=["a"], random_state=-1), ConfigError, "random_state must be"),
    ("snow random_state list", S.snowball_sample, dict(df=DF, n=2, link_cols=["a"], random_state=[]), ConfigError, "random_state must be"),
    # ---- judgement_sample
    ("judge None", S.judgement_sample, dict(df=None, rule="b > 2"), DataError, "df must be a pandas DataFrame"),
    ("judge rule None", S.judgement_sample, dict(df=DF, rule=None), DataError, "rule must be a callable or a query string, got NoneType"),
    ("judge rule bad query", S.judgement_sample, dict(df=DF, rule="nope >"), DataError, "rule 'nope >' could not be evaluated"),
    ("judge rule int", S.judgement_sample, dict(df=DF, rule="b"), DataError, "rule must return one boolean per row"),
    ("judge rule floats", S.judgement_sample, dict(df=DF, rule=lambda d: d["b"] / 2), DataError, "got dtype float64"),
    ("judge rule short", S.judgement_sample, dict(df=DF, rule=lambda d: [True, False]), DataError, r"one boolean per row \(6\), got shape \(2,\)"),
    ("judge rule reordered", S.judgement_sample, dict(df=DF, rule=lambda d: d["b"].sort_values(ascending=False) > 4), DataError, "index is not the frame's"),
    ("judge rule filtered", S.judgement_sample, dict(df=DF, rule=lambda d: (d["b"] > 4)[d["b"] > 1]), DataError, "index is not the frame's"),
    ("judge admits none", S.judgement_sample, dict(df=DF, rule="b > 100"), DataError, "rule admits no rows"),
    ("judge n too many", S.judgement_sample, dict(df=DF, rule="b > 4", n=3), DataError, "n=3 is larger than the population of 2"),
    ("judge n bool", S.judgement_sample, dict(df=DF, rule="b > 4", n=False), DataError, "n must be an integer, got False"),
    # ---- quota_sample
    ("quota None", S.quota_sample, dict(df=None, by="a", quotas=1), DataError, "df must be a pandas DataFrame"),
    ("quota by missing", S.quota_sample, dict(df=DF, by="nope", quotas=1), SchemaError, r"by: column\(s\) \['nope'\]"),
    ("quota quotas None", S.quota_sample, dict(df=DF, by="a", quotas=None), DataError, "quotas must be an integer, got None"),
    ("quota quotas float", S.quota_sample, dict(df=DF, by="a", quotas=1.0), DataError, "quotas must be an integer, got 1.0"),
    ("quota quotas 0", S.quota_sample, dict(df=DF, by="a", quotas=0), DataError, "quotas must be at least 1"),
    ("quota quotas > slice", S.quota_sample, dict(df=DF, by="a", quotas=3), DataError, "quota 3 for slice 'x' is larger than its 2 rows"),
    ("quota dict empty", S.quota_sample, dict(df=DF, by="a", quotas={}), DataError, "quotas is an empty dict"),
    ("quota dict zeros", S.quota_sample, dict(df=DF, by="a", quotas={"x": 0, "y": 0}), DataError, "quotas are all zero"),
    ("quota dict unknown", S.quota_sample, dict(df=DF, by="a", quotas={"q": 1}), DataError, r"quotas name slice\(s\) \['q'\]"),
    ("quota dict bool", S.quota_sample, dict(df=DF, by="a", quotas={"x": True}), DataError, "quota for slice 'x' must be a non-negative integer, got True"),
    ("quota dict float", S.quota_sample, dict(df=DF, by="a", quotas={"x": 1.5}), DataError, "quota for slice 'x' must be a non-negative integer, got 1.5"),
    ("quota dict negative", S.quota_sample, dict(df=DF, by="a", quotas={"x": -1}), DataError, "must be a non-negative integer, got -1"),
    ("quota NaN slice", S.quota_sample, dict(df=DF.assign(c=[1.0, np.nan, 2.0, np.nan, 3.0, 4.0]), by="c", quotas=1), DataError, "by column 'c' has 2 missing values"),
    ("quota order_by mixed", S.quota_sample, dict(df=DF.assign(m=[1, "a", 2, "b", 3, None]), by="a", quotas=1, order_by="m"), DataError, "cannot be sorted"),
    # ---- simple_random_sample
    ("srs None", S.simple_random_sample, dict(df=None, n=2), DataError, "df must be a pandas DataFrame"),
    ("srs empty", S.simple_random_sample, dict(df=DF.iloc[:0], n=1), DataError, "df is empty"),
    ("srs neither", S.simple_random_sample, dict(df=DF), DataError, "give exactly one of n and frac"),
    ("srs both", S.simple_random_sample, dict(df=DF, n=2, frac=0.5), DataError, "give exactly one of n and frac"),
    ("srs n > N", S.simple_random_sample, dict(df=DF, n=7), DataError, "n=7 is larger than the population of 6"),
    ("srs n str", S.simple_random_sample, dict(df=DF, n="2"), DataError, "n must be an integer"),
    ("srs n huge with replacement", S.simple_random_sample, dict(df=DF, n=10**12, replace=True), DataError, "n=1000000000000 draws with replacement is more than MAX_DRAWS"),
    ("srs frac nan", S.simple_random_sample, dict(df=DF, frac=float("nan")), DataError, r"frac must be a number in \(0, 1\], got nan"),
    ("srs frac 0", S.simple_random_sample, dict(df=DF, frac=0.0), DataError, r"frac must be a number in \(0, 1\]"),
    ("srs frac > 1", S.simple_random_sample, dict(df=DF, frac=1.5), DataError, r"frac must be a number in \(0, 1\]"),
    ("srs frac bool", S.simple_random_sample, dict(df=DF, frac=True), DataError, "frac must be a number"),
    ("srs frac str", S.simple_random_sample, dict(df=DF, frac="0.5"), DataError, "frac must be a number"),
    ("srs frac no row", S.simple_random_sample, dict(df=DF, frac=0.01), DataError, "frac=0.01 of 6 rows is no row at all"),
    ("srs replace str", S.simple_random_sample, dict(df=DF, n=2, replace="no"), ConfigError, "replace must be True or False, got 'no'"),
    ("srs replace int", S.simple_random_sample, dict(df=DF, n=2, replace=1), ConfigError, "replace must be True or False"),
    ("srs random_state str", S.simple_random_sample, dict(df=DF, n=2, random_state="x"), ConfigError, "random_state must be"),
    # ---- allocate
    ("alloc None", S.allocate, dict(sizes=None, n=2), DataError, "sizes must be a list of stratum sizes, got None"),
    ("alloc str", S.allocate, dict(sizes="123", n=2), DataError, "sizes must be a list of stratum sizes"),
    ("alloc empty", S.allocate, dict(sizes=[], n=2), DataError, "sizes must be a non-empty 1-d list"),
    ("alloc 2-d", S.allocate, dict(sizes=[[1, 2]], n=2), DataError, r"got shape \(1, 2\)"),
    ("alloc floats", S.allocate, dict(sizes=[2.5, 3.0], n=2), DataError, "sizes must be whole numbers of rows"),
    ("alloc nan", S.allocate, dict(sizes=[np.nan, 3], n=2), DataError, "sizes must be whole numbers of rows"),
    ("alloc strings", S.allocate, dict(sizes=["2", "3"], n=2), DataError, "sizes must be whole numbers of rows"),
    ("alloc bools", S.allocate, dict(sizes=[True, True], n=1), DataError, "sizes must be whole numbers of rows"),
    ("alloc negative", S.allocate, dict(sizes=[-1, 3], n=1), DataError, "non-negative stratum sizes"),
    ("alloc all zero", S.allocate, dict(sizes=[0, 0], n=1), DataError, "n=1 is larger than the population of 0"),
    ("alloc n > N", S.allocate, dict(sizes=[1, 2], n=4), DataError, "n=4 is larger than the population of 3"),
    ("alloc n float", S.allocate, dict(sizes=[1, 2], n=2.0), DataError, "n must be an integer"),
    ("alloc allocation", S.allocate, dict(sizes=[1, 2], n=2, allocation="neyman"), ConfigError, "allocation must be 'proportional' or 'equal', got 'neyman'"),
    ("alloc allocation frame", S.allocate, dict(sizes=[1, 2], n=2, allocation=pd.DataFrame()), ConfigError, "allocation must be"),
    ("alloc labels short", S.allocate, dict(sizes=[1, 2], n=2, labels=["a"]), DataError, "labels must name each of the 2 strata"),
    ("alloc labels str", S.allocate, dict(sizes=[1, 2], n=2, labels="ab"), DataError, "labels must name each of the 2 strata"),
    ("alloc labels 0-d", S.allocate, dict(sizes=[1, 2], n=2, labels=np.array(3)), DataError, "labels must name each"),
    ("alloc equal impossible", S.allocate, dict(sizes=[1, 9], n=4, allocation="equal", labels=["a", "b"]), DataError, "asks 2 rows of stratum 'a', which has only 1"),
    # ---- stratified_sample
    ("strat None", S.stratified_sample, dict(df=None, by="a", n=2), DataError, "df must be a pandas DataFrame"),
    ("strat by missing", S.stratified_sample, dict(df=DF, by=["a", "nope"], n=2), SchemaError, "'nope'"),
    ("strat n > N", S.stratified_sample, dict(df=DF, by="a", n=7), DataError, "larger than the population"),
    ("strat frac no row", S.stratified_sample, dict(df=DF, by="a", frac=0.05), DataError, "no row at all"),
    ("strat weight_col exists", S.stratified_sample, dict(df=DF, by="a", n=3, weight_col="b"), DataError, "weight_col 'b' already exists"),
    ("strat weight_col int", S.stratified_sample, dict(df=DF, by="a", n=3, weight_col=5), DataError, "weight_col must be a non-empty column name"),
    ("strat weight_col empty", S.stratified_sample, dict(df=DF, by="a", n=3, weight_col=""), DataError, "weight_col must be"),
    ("strat random_state", S.stratified_sample, dict(df=DF, by="a", n=3, random_state=1.5), ConfigError, "random_state must be"),
    # ---- weighted_sample
    ("wt None frame", S.weighted_sample, dict(df=None, n=1, weights=[1]), DataError, "df must be a pandas DataFrame"),
    ("wt weights None", S.weighted_sample, dict(df=DF, n=1, weights=None), DataError, "weights must be an array of numbers, got NoneType"),
    ("wt weights strings", S.weighted_sample, dict(df=DF, n=1, weights=np.array(["1"] * 6)), DataError, "weights must be numbers, got dtype <U1"),
    ("wt weights bools", S.weighted_sample, dict(df=DF, n=1, weights=[True, False] * 3), DataError, "weights holds booleans"),
    ("wt weights NA", S.weighted_sample, dict(df=DF, n=1, weights=pd.Series([1.0, None] * 3, dtype="Float64")), DataError, "weights contains 3 missing values"),
    ("wt weights nan", S.weighted_sample, dict(df=DF, n=1, weights=[np.nan] + [1.0] * 5), DataError, "weights must be finite; 1 are NaN or infinite"),
    ("wt weights short", S.weighted_sample, dict(df=DF, n=1, weights=[1.0, 2.0]), DataError, r"one value per row \(6\)"),
    ("wt weights zero", S.weighted_sample, dict(df=DF, n=1, weights=[0.0] * 6), DataError, "weights are all zero"),
    ("wt weights negative", S.weighted_sample, dict(df=DF, n=1, weights=[-1.0] + [1.0] * 5), DataError, "weights must be non-negative"),
    ("wt weights column missing", S.weighted_sample, dict(df=DF, n=1, weights="nope"), SchemaError, "'nope'"),
    ("wt weights column text", S.weighted_sample, dict(df=DF, n=1, weights="a"), DataError, "weights must be numbers, got dtype"),
    ("wt n > positive", S.weighted_sample, dict(df=DF, n=2, weights=[1.0] + [0.0] * 5), DataError, "larger than the 1 rows with positive weight"),
    ("wt n huge with replacement", S.weighted_sample, dict(df=DF, n=10**12, weights="w", replace=True), DataError, "more than MAX_DRAWS"),
    ("wt n float", S.weighted_sample, dict(df=DF, n=1.0, weights="w"), DataError, "n must be an integer"),
    ("wt replace str", S.weighted_sample, dict(df=DF, n=1, weights="w", replace="yes"), ConfigError, "replace must be True or False"),
    ("wt random_state", S.weighted_sample, dict(df=DF, n=1, weights="w", random_state="x"), ConfigError, "random_state must be"),
    # ---- reservoir_sample
    ("res source None", S.reservoir_sample, dict(source=None, k=2), DataError, "source must be an iterable of items, got NoneType"),
    ("res source str", S.reservoir_sample, dict(source="abc", k=2), DataError, "source must be an iterable of items, got str"),
    ("res source int", S.reservoir_sample, dict(source=5, k=2), DataError, "source must be an iterable"),
    ("res source 0-d", S.reservoir_sample, dict(source=np.array(5), k=1), DataError, "source is a 0-d array"),
    ("res source frame", S.reservoir_sample, dict(source=DF, k=1), DataError, "iterates over its column names"),
    ("res k None", S.reservoir_sample, dict(source=range(5), k=None), DataError, "k must be a positive integer, got None"),
    ("res k float", S.reservoir_sample, dict(source=range(5), k=2.0), DataError, "k must be a positive integer, got 2.0"),
    ("res k bool", S.reservoir_sample, dict(source=range(5), k=True), DataError, "k must be a positive integer, got True"),
    ("res k 0", S.reservoir_sample, dict(source=range(5), k=0), DataError, "k must be a positive integer"),
    ("res k > N random access", S.reservoir_sample, dict(source=range(5), k=6), DataError, "k=6 is larger than the population"),
    ("res k > N iterator", S.reservoir_sample, dict(source=iter(range(5)), k=6), DataError, "the stream ended after 5 items"),
    ("res k huge", S.reservoir_sample, dict(source=itertools.count(), k=10**12), DataError, "more than MAX_DRAWS"),
    ("res k huge random access", S.reservoir_sample, dict(source=range(10**13), k=10**12), DataError, "more than MAX_DRAWS"),
    ("res method", S.reservoir_sample, dict(source=range(5), k=2, method="X"), ConfigError, "method must be 'L' or 'R', got 'X'"),
    ("res method frame", S.reservoir_sample, dict(source=range(5), k=2, method=pd.DataFrame()), ConfigError, "method must be"),
    ("res method None", S.reservoir_sample, dict(source=range(5), k=2, method=None), ConfigError, "method must be"),
    ("res random_state str", S.reservoir_sample, dict(source=range(5), k=2, random_state="seed"), ConfigError, "random_state must be an int"),
    ("res random_state float", S.reservoir_sample, dict(source=range(5), k=2, random_state=1.5), ConfigError, "random_state must be"),
    ("res random_state numpy gen", S.reservoir_sample, dict(source=range(5), k=2, random_state=np.random.default_rng(0)), ConfigError, "random_state must be an int, None or a random.Random"),
    # ---- ReservoirSampler
    ("Res k str", S.ReservoirSampler, dict(k="3"), DataError, "k must be a positive integer, got '3'"),
    ("Res k huge", S.ReservoirSampler, dict(k=10**12), DataError, "more than MAX_DRAWS"),
    ("Res method", S.ReservoirSampler, dict(k=3, method="r"), ConfigError, "method must be 'L' or 'R', got 'r'"),
    ("Res method list", S.ReservoirSampler, dict(k=3, method=["L"]), ConfigError, "method must be"),
    ("Res random_state", S.ReservoirSampler, dict(k=3, random_state=True), ConfigError, "random_state must be"),
    ("Res update_many None", lambda items: S.ReservoirSampler(3).update_many(items), dict(items=None), DataError, "source must be an iterable of items, got NoneType"),
    ("Res update_many str", lambda items: S.ReservoirSampler(3).update_many(items), dict(items="abc"), DataError, "got str"),
    ("Res update_many 0-d", lambda items: S.ReservoirSampler(3).update_many(items), dict(items=np.array(3)), DataError, "0-d array"),
    ("Res update_many frame", lambda items: S.ReservoirSampler(3).update_many(items), dict(items=DF), DataError, "column names"),
    # ---- StratifiedSampler
    ("SS X None", lambda **kw: S.StratifiedSampler(n=2).fit_resample(**kw), dict(X=None, y=S6), DataError, "X must be an array-like of rows, got NoneType"),
    ("SS X 0-d", lambda **kw: S.StratifiedSampler(n=2).fit_resample(**kw), dict(X=np.array(3), y=S6), DataError, "got a 0-d ndarray"),
    ("SS X scalar", lambda **kw: S.StratifiedSampler(n=2).fit_resample(**kw), dict(X=3, y=S6), DataError, "X must be an array-like of rows, got int"),
    ("SS y None", lambda **kw: S.StratifiedSampler(n=2).fit_resample(**kw), dict(X=DF, y=None), DataError, "y must be one label per row of X, got NoneType"),
    ("SS y str", lambda **kw: S.StratifiedSampler(n=2).fit_resample(**kw), dict(X=DF, y="xxyyzz"), DataError, "y must be one label per row"),
    ("SS y 2-d", lambda **kw: S.StratifiedSampler(n=2).fit_resample(**kw), dict(X=DF, y=np.ones((6, 2))), DataError, "y must be one-dimensional"),
    ("SS lengths", lambda **kw: S.StratifiedSampler(n=2).fit_resample(**kw), dict(X=DF, y=S6[:5]), DataError, "X has 6 rows but y has 5"),
    ("SS lengths sparse", lambda **kw: S.StratifiedSampler(n=2).fit_resample(**kw), dict(X=sparse.csr_matrix(np.ones((5, 2))), y=S6), DataError, "X has 5 rows but y has 6"),
    ("SS n > N", lambda **kw: S.StratifiedSampler(n=7).fit_resample(**kw), dict(X=DF, y=S6), DataError, "n=7 is larger than the population of 6"),
    ("SS n float", lambda **kw: S.StratifiedSampler(n=2.0).fit_resample(**kw), dict(X=DF, y=S6), DataError, "n must be an integer"),
    ("SS frac", lambda **kw: S.StratifiedSampler(frac=2).fit_resample(**kw), dict(X=DF, y=S6), DataError, r"frac must be a number in \(0, 1\]"),
    ("SS neither", lambda **kw: S.StratifiedSampler().fit_resample(**kw), dict(X=DF, y=S6), DataError, "give exactly one of n and frac"),
    ("SS allocation", lambda **kw: S.StratifiedSampler(n=3, allocation=None).fit_resample(**kw), dict(X=DF, y=S6), ConfigError, "allocation must be"),
    ("SS random_state", lambda **kw: S.StratifiedSampler(n=3, random_state="x").fit_resample(**kw), dict(X=DF, y=S6), ConfigError, "random_state must be"),
    ("SS set_params unknown", lambda **kw: S.StratifiedSampler().set_params(**kw), dict(fraction=0.1), ConfigError, r"no parameter\(s\) \['fraction'\]"),
    # ---- importance_weights
    ("iw None", S.importance_weights, dict(p=None, q=[0.5]), DataError, "p must be an array of numbers, got NoneType"),
    ("iw strings", S.importance_weights, dict(p=["0.5"], q=[0.5]), DataError, "p must be numbers, got dtype <U3"),
    ("iw bools", S.importance_weights, dict(p=[True], q=[0.5]), DataError, "p holds booleans"),
    ("iw mixed objects", S.importance_weights, dict(p=[0.5, None], q=[0.5, 0.5]), DataError, "p must be numbers, got dtype object"),
    ("iw empty", S.importance_weights, dict(p=[], q=[]), DataError, "p must be a non-empty 1-d array"),
    ("iw 2-d", S.importance_weights, dict(p=[[0.5]], q=[[0.5]]), DataError, "p must be a non-empty 1-d array"),
    ("iw ragged", S.importance_weights, dict(p=[[0.5], [0.5, 1]], q=[0.5, 0.5]), DataError, "p must be"),
    ("iw lengths", S.importance_weights, dict(p=[0.5, 0.5], q=[0.5]), DataError, "p has 2 values but q has 1"),
    ("iw nan", S.importance_weights, dict(p=[np.nan], q=[0.5]), DataError, "p contains NaN"),
    ("iw q zero", S.importance_weights, dict(p=[0.5], q=[0.0]), DataError, "q must be positive at every draw"),
    ("iw p inf", S.importance_weights, dict(p=[np.inf], q=[0.5]), DataError, "p and q must be finite"),
    ("iw overflow", S.importance_weights, dict(p=[1.0], q=[1e-320]), DataError, "overflow"),
    ("iw log str", S.importance_weights, dict(p=[0.5], q=[0.5], log="yes"), ConfigError, "log must be True or False, got 'yes'"),
    ("iw log int", S.importance_weights, dict(p=[0.5], q=[0.5], log=1), ConfigError, "log must be True or False"),
    # ---- effective_sample_size
    ("ess None", S.effective_sample_size, dict(weights=None), DataError, "weights must be an array of numbers"),
    ("ess empty", S.effective_sample_size, dict(weights=[]), DataError, "weights must be a non-empty 1-d array"),
    ("ess zero", S.effective_sample_size, dict(weights=[0.0, 0.0]), DataError, "weights are all zero"),
    ("ess inf", S.effective_sample_size, dict(weights=[np.inf, 1.0]), DataError, "weights must be finite; 1 are infinite"),
    ("ess negative", S.effective_sample_size, dict(weights=[-1.0, 1.0]), DataError, "weights must be non-negative"),
    ("ess strings", S.effective_sample_size, dict(weights=np.array(["1", "2"])), DataError, "weights must be numbers"),
    # ---- importance_estimate (item 11: infinite values and overflowing weights returned inf or NaN)
    ("ie values inf", S.importance_estimate, dict(values=[np.inf, 1.0], p=[1.0, 1.0], q=[1.0, 1.0]), DataError, "values must be finite; 1 are infinite"),
    ("ie values -inf", S.importance_estimate, dict(values=[-np.inf, 1.0], p=[1.0, 1.0], q=[1.0, 1.0], self_normalized=False), DataError, "values must be finite"),
    ("ie p inf", S.importance_estimate, dict(values=[1.0, 2.0], p=[np.inf, 1.0], q=[1.0, 1.0]), DataError, "p and q must be finite"),
    ("ie plain overflow", S.importance_estimate, dict(values=[1e308, 1e308], p=[1e300, 1e300], q=[1e-7, 1e-7], self_normalized=False), DataError, "the importance estimate overflows a float"),
    ("ie values None", S.importance_estimate, dict(values=None, p=[1.0], q=[1.0]), DataError, "values must be an array of numbers"),
    ("ie values empty", S.importance_estimate, dict(values=[], p=[], q=[]), DataError, "values must be a non-empty 1-d array"),
    ("ie lengths", S.importance_estimate, dict(values=[1.0, 2.0], p=[0.5], q=[0.5, 0.5]), DataError, "p has 1 values but values has 2"),
    ("ie zero weights", S.importance_estimate, dict(values=[1.0], p=[0.0], q=[0.5]), DataError, "all importance weights are zero"),
    ("ie self_normalized str", S.importance_estimate, dict(values=[1.0], p=[0.5], q=[0.5], self_normalized="no"), ConfigError, "self_normalized must be True or False"),
    ("ie log None", S.importance_estimate, dict(values=[1.0], p=[0.5], q=[0.5], log=None), ConfigError, "log must be True or False"),
]


@pytest.mark.parametrize("fn, kwargs, exc, fragment", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_named(fn, kwargs, exc, fragment):
    with pytest.raises(exc, match=fragment) as info:
        fn(**kwargs)
    assert isinstance(info.value, MlsysError)


def test_every_public_entry_point_is_in_the_table():
    covered = set()
    for _, fn, *_ in CASES:
        covered.add(getattr(fn, "__name__", ""))
    covered |= {"ReservoirSampler", "StratifiedSampler"}  # through lambdas above
    public = {n for n in S.__all__ if callable(getattr(S, n)) and n not in ("ImportanceEstimate",)}
    assert public <= covered, sorted(public - covered)


# ---------------------------------------------------------------- values that used to come back wrong


def test_importance_estimate_with_overflowing_weight_sums_is_finite_and_right():
    # each weight is finite (1e308) but their sum overflows: before, estimate and ess were NaN, weights 0
    est = S.importance_estimate([1.0, 3.0], [1e308, 1e308], [1.0, 1.0])
    assert est.estimate == pytest.approx(2.0) and est.ess == pytest.approx(2.0)
    assert est.weights.tolist() == [0.5, 0.5]
    # weights whose squares overflow or underflow: ESS is scale-free
    assert S.effective_sample_size([1e200, 1e200]) == pytest.approx(2.0)
    assert S.effective_sample_size([1e-200, 1e-200, 1e-200]) == pytest.approx(3.0)
    assert S.effective_sample_size([1e200, 0.0]) == pytest.approx(1.0)
    # a plain (not self-normalized) estimate whose products overflow but whose mean fits
    f, p = np.zeros(1000), np.ones(1000)
    f[0], p[0] = 1e300, 1e9  # w f = 1e309 overflows; the mean, 1e306, does not
    plain = S.importance_estimate(f, p, np.ones(1000), self_normalized=False)
    assert plain.estimate == pytest.approx(1e306, rel=1e-12)


def test_weighted_sample_with_a_weight_sum_that_overflows_still_draws():
    df = pd.DataFrame({"i": range(4)})
    s = S.weighted_sample(df, 2, [1e308, 1e308, 0.0, 0.0], random_state=0)
    assert sorted(s["i"]) == [0, 1]


def test_stratified_sampler_takes_sparse_rows():
    X = sparse.csr_matrix(np.arange(12).reshape(6, 2))
    Xr, yr = S.StratifiedSampler(n=3, random_state=0).fit_resample(X, S6)
    assert sparse.issparse(Xr) and Xr.shape == (3, 2)
    assert (Xr.toarray()[:, 0] == 2 * np.asarray(S.StratifiedSampler(n=3, random_state=0).fit_resample(np.arange(6), S6)[0])).all()


def test_numeric_object_arrays_and_nullable_numbers_are_numbers():
    assert S.effective_sample_size(np.array([1, 2.0], dtype=object)) == pytest.approx(9 / 5)
    assert S.effective_sample_size(pd.Series([1, 2], dtype="Int64")) == pytest.approx(9 / 5)
    df = pd.DataFrame({"w": pd.array([1, 0, 0], dtype="Int64")})
    assert S.weighted_sample(df, 1, "w").index.tolist() == [0]


def test_samplers_accept_numpy_generators_and_ints():
    a = S.simple_random_sample(DF, 3, random_state=np.int64(4))
    b = S.simple_random_sample(DF, 3, random_state=4)
    pd.testing.assert_frame_equal(a, b)
    assert len(S.snowball_sample(DF, 2, link_cols=["a"], random_state=np.random.default_rng(1))) == 2
