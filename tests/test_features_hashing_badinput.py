"""Bad input to every public entry point of mlsys.features.hashing is refused with a named mlsys error.

One row per case: (callable, arguments, the mlsys error expected, a fragment of its message that names the input).
A sweep then feeds every entry point generic bad values and fails on any raw library error.
"""

import numpy as np
import pandas as pd
import pytest
from badinput import raw_errors

from mlsys.core import ConfigError, DataError, MlsysError, SchemaError
from mlsys.features.hashing import HashingEncoder, collision_rate, expected_collision_rate, hash_strings, mix64, value_hashes

DF = pd.DataFrame({"a": ["x", "y", "z", "x"], "b": [1, 2, 3, 4]})


def fit(**params):
    return lambda X=DF: HashingEncoder(**params).fit(X)


def fitted(method):
    enc = HashingEncoder(n_features=64, crosses=[("a", "b")]).fit(DF)
    return lambda *a: getattr(enc, method)(*a)


CASES = [
    # the issue's own cases (items 10 and 11)
    ("hash_strings(None)", hash_strings, (None,), DataError, "values must be a 1-D list"),
    ("expected_collision_rate(10, 0)", expected_collision_rate, (10, 0), ConfigError, "n_features must be an integer >= 1"),
    ("expected_collision_rate(-10, 5)", expected_collision_rate, (-10, 5), ConfigError, "n_distinct must be an integer >= 0"),
    ("mix64(floats)", mix64, (np.array([1.5, 2.5]),), DataError, "h must hold unsigned 64-bit integers"),
    # the same classes elsewhere
    ("mix64(float scalar)", mix64, (1.5,), DataError, "got dtype float64"),
    ("mix64(negative)", mix64, (np.array([-1, 2]),), DataError, "h must hold non-negative"),
    ("mix64(-1)", mix64, (-1,), DataError, "h must hold non-negative"),
    ("mix64(None)", mix64, (None,), DataError, "h must hold unsigned"),
    ("mix64(strings)", mix64, (np.array(["a"]),), DataError, "h must hold unsigned"),
    ("mix64(bool)", mix64, (np.array([True]),), DataError, "got dtype bool"),
    ("hash_strings(one string)", hash_strings, ("abc",), DataError, "values must be a 1-D collection of values, got a single str"),
    ("hash_strings(bytes)", hash_strings, (b"ab",), DataError, "got a single bytes"),
    ("hash_strings(5)", hash_strings, (5,), DataError, "values must be a 1-D list, array, Series or Index of values, got int"),
    ("hash_strings(dict)", hash_strings, ({"a": 1},), DataError, "got dict"),
    ("hash_strings(set)", hash_strings, ({"a"},), DataError, "got set"),
    ("hash_strings(2-D)", hash_strings, (np.array([[1, 2]]),), DataError, "values must be 1-D, got shape (1, 2)"),
    ("hash_strings(frame)", hash_strings, (DF,), DataError, "got DataFrame"),
    ("hash_strings(seed=None)", hash_strings, (["a"], None), ConfigError, "seed must be an integer in [0, 4294967296)"),
    ("hash_strings(seed=1.5)", hash_strings, (["a"], 1.5), ConfigError, "seed must be an integer"),  # was truncated to 1
    ("hash_strings(seed=True)", hash_strings, (["a"], True), ConfigError, "seed must be an integer"),
    ("hash_strings(seed=-1)", hash_strings, (["a"], -1), ConfigError, "seed must be an integer"),
    ("hash_strings(seed=2**70)", hash_strings, (["a"], 2**70), ConfigError, "seed must be an integer"),  # aliased smaller seeds
    ("hash_strings(seed='x')", hash_strings, (["a"], "x"), ConfigError, "seed must be an integer"),
    ("value_hashes(None)", value_hashes, (None,), DataError, "column must be a 1-D list"),
    ("value_hashes(one string)", value_hashes, ("abc",), DataError, "column must be a 1-D collection"),
    ("value_hashes(2-D)", value_hashes, (np.array([[1, 2]]),), DataError, "column must be 1-D"),
    ("value_hashes(frame)", value_hashes, (DF,), DataError, "column must be a 1-D list, array, Series or Index of values, got DataFrame"),
    ("value_hashes(seed=nan)", value_hashes, (DF["a"], float("nan")), ConfigError, "seed must be an integer"),
    ("expected_collision_rate(None, 5)", expected_collision_rate, (None, 5), ConfigError, "n_distinct must be an integer"),
    ("expected_collision_rate(10.5, 5)", expected_collision_rate, (10.5, 5), ConfigError, "n_distinct must be an integer"),
    ("expected_collision_rate(nan, 5)", expected_collision_rate, (float("nan"), 5), ConfigError, "n_distinct"),
    ("expected_collision_rate(10, True)", expected_collision_rate, (10, True), ConfigError, "n_features must be an integer"),
    ("expected_collision_rate(10, -5)", expected_collision_rate, (10, -5), ConfigError, "n_features"),  # was -4.16
    ("expected_collision_rate(10, 1.5)", expected_collision_rate, (10, 1.5), ConfigError, "n_features"),
    ("expected_collision_rate(10, 'x')", expected_collision_rate, (10, "x"), ConfigError, "n_features"),
    ("collision_rate(None)", collision_rate, (None,), DataError, "buckets must be a 1-D list"),
    ("collision_rate(5)", collision_rate, (5,), DataError, "buckets must be a 1-D list"),
    ("collision_rate(2-D)", collision_rate, (np.array([[1, 2], [2, 3]]),), DataError, "buckets must be 1-D"),
    ("collision_rate(floats)", collision_rate, (np.array([1.5, np.nan]),), DataError, "buckets must hold integer slot numbers"),
    ("collision_rate(mixed)", collision_rate, ([1, "a"],), DataError, "buckets must hold integer slot numbers"),
    ("HashingEncoder(n_features=0)", fit(n_features=0), (), ConfigError, "n_features must be an integer in [1, 2**31 - 1]"),
    ("HashingEncoder(n_features=2.0)", fit(n_features=np.float64(4.0)), (), ConfigError, "n_features"),
    ("HashingEncoder(signed='x')", fit(signed="x"), (), ConfigError, "signed must be True or False"),
    ("HashingEncoder(signed=None)", fit(signed=None), (), ConfigError, "signed must be True or False"),
    ("HashingEncoder(include_columns=2)", fit(include_columns=2), (), ConfigError, "include_columns must be True or False"),
    ("HashingEncoder(sparse_output=None)", fit(sparse_output=None), (), ConfigError, "sparse_output must be True or False"),
    ("HashingEncoder(seed=None)", fit(seed=None), (), ConfigError, "seed must be an integer"),
    ("HashingEncoder(seed=1.5)", fit(seed=1.5), (), ConfigError, "seed must be an integer"),
    ("HashingEncoder(crosses=5)", fit(crosses=5), (), ConfigError, "crosses must be a list of column tuples"),
    ("HashingEncoder(crosses='ab')", fit(crosses="ab"), (), ConfigError, "crosses must be a list of column tuples"),
    ("HashingEncoder(crosses=[None])", fit(crosses=[None]), (), ConfigError, "crosses: each cross needs two or more columns"),
    ("HashingEncoder(crosses=[('a',)])", fit(crosses=[("a",)]), (), ConfigError, "crosses: each cross needs two or more"),
    ("HashingEncoder(crosses=[('a', 'q')])", fit(crosses=[("a", "q")]), (), SchemaError, "crosses: unknown column 'q'"),
    ("HashingEncoder(crosses=[('a', 'a')])", fit(crosses=[("a", "a")]), (), ConfigError, "names a column twice"),
    ("HashingEncoder(crosses=[(0, 'a')])", fit(crosses=[(0, "a")]), (), ConfigError, "names a column twice"),
    ("HashingEncoder.fit(empty)", fit(), (DF.iloc[:0],), DataError, "X: HashingEncoder needs at least one row"),
    ("HashingEncoder.fit(no columns)", fit(), (DF[[]],), DataError, "X: HashingEncoder needs at least one row and one column"),
    ("HashingEncoder.fit(None)", fit(), (None,), DataError, "X"),
    ("HashingEncoder.fit(1-D)", fit(), (np.array(["a", "b"]),), DataError, "X"),
    ("transform(other columns)", fitted("transform"), (pd.DataFrame({"a": [1], "q": [2]}),), SchemaError, "X: columns do not match"),
    ("transform(fewer columns)", fitted("transform"), (DF[["a"]],), SchemaError, "X: columns do not match"),
    ("transform(empty)", fitted("transform"), (DF.iloc[:0],), DataError, "X: HashingEncoder needs at least one row"),
    ("hash_tokens(reordered)", fitted("hash_tokens"), (DF[["b", "a"]],), SchemaError, "X: columns do not match"),
    ("collision_report(None)", fitted("collision_report"), (None,), DataError, "X"),
    ("get_feature_names_out(wrong names)", fitted("get_feature_names_out"), (["q", "r"],), SchemaError, "input_features"),
    ("get_feature_names_out(wrong length)", fitted("get_feature_names_out"), (["a"],), SchemaError, "input_features"),
]


@pytest.mark.parametrize("fn, args, error, fragment", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_named(fn, args, error, fragment):
    with pytest.raises(error) as info:
        fn(*args)
    assert isinstance(info.value, MlsysError)
    assert fragment in str(info.value), str(info.value)


def test_good_input_still_hashes_as_before():
    "The checks change no result: integer dtypes, numpy integers and lists hash exactly as they did."
    h = hash_strings(["a", "b"], seed=3)
    np.testing.assert_array_equal(hash_strings(pd.Series(["a", "b"]), seed=np.int64(3)), h)
    np.testing.assert_array_equal(mix64(np.arange(5)), mix64(np.arange(5, dtype=np.uint64)))
    codes, hs = value_hashes(["a", "b", "a"])
    np.testing.assert_array_equal(codes, [0, 1, 0])
    np.testing.assert_array_equal(hs[:2], hash_strings(["a", "b"]))
    assert expected_collision_rate(np.int64(10), np.int64(5)) == expected_collision_rate(10, 5)
    assert collision_rate([]) == 0.0 and collision_rate(np.array([1, 2, 2], dtype=np.uint64)) == 2 / 3
    assert HashingEncoder(n_features=64, signed=np.bool_(False)).fit(DF).transform(DF).shape == (4, 64)




def test_sweep_no_entry_point_raises_a_raw_error():
    "Every entry point and parameter, every generic bad value: refused by an mlsys error, or accepted."
    enc = HashingEncoder(n_features=64, crosses=[("a", "b")]).fit(DF)
    calls = {
        "mix64": lambda v: mix64(v),
        "hash_strings.values": lambda v: hash_strings(v), "hash_strings.seed": lambda v: hash_strings(["a"], v),
        "value_hashes.column": lambda v: value_hashes(v), "value_hashes.seed": lambda v: value_hashes(DF["a"], v),
        "expected_collision_rate.n_distinct": lambda v: expected_collision_rate(v, 5),
        "expected_collision_rate.n_features": lambda v: expected_collision_rate(5, v),
        "collision_rate": lambda v: collision_rate(v),
        "HashingEncoder.fit": lambda v: HashingEncoder().fit(v),
        **{f"HashingEncoder.{p}": (lambda v, p=p: HashingEncoder(**{p: v}).fit(DF).transform(DF))
           for p in ("n_features", "signed", "crosses", "include_columns", "seed", "sparse_output")},
        **{f"HashingEncoder.{m}": (lambda v, m=m: getattr(enc, m)(v)) for m in ("transform", "hash_tokens", "collision_report")},
        "HashingEncoder.get_feature_names_out": lambda v: enc.get_feature_names_out(v),
    }
    assert raw_errors(calls) == []
