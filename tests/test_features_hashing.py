"""Hashing trick: stateless encoding, unseen categories, collisions vs the ideal rate, crosses, bad input."""
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from mlsys.core import ConfigError, DataError, SchemaError
from mlsys.datasets import load_flights
from mlsys.features.hashing import (
    HashingEncoder,
    collision_rate,
    expected_collision_rate,
    hash_strings,
    mix64,
    value_hashes,
)

COLS = ["carrier", "tailnum", "route"]


@pytest.fixture(scope="module")
def flights():
    f = load_flights("2013-03-01", "2013-04-30")
    f["route"] = f["origin"].astype(str) + "-" + f["dest"].astype(str)
    return f


def test_unseen_categories_and_statelessness(flights):
    mar, apr = flights[flights.month == 3], flights[flights.month == 4]
    new = set(apr.tailnum.dropna()) - set(mar.tailnum.dropna())
    assert new, "April should bring tail numbers unseen in March"
    a = HashingEncoder().fit(mar[COLS]).transform(apr[COLS])
    b = HashingEncoder().fit(apr[COLS]).transform(apr[COLS])
    assert (a != b).nnz == 0
    # row-by-row equals batch
    enc = HashingEncoder().fit(mar[COLS])
    idx = np.flatnonzero(apr.tailnum.isin(new).fillna(False).to_numpy())[:5]
    for i in idx:
        np.testing.assert_array_equal(enc.transform(apr[COLS].iloc[[i]]).toarray(), a[i].toarray())


def test_output_structure(flights):
    X = flights[COLS].head(2000)
    enc = HashingEncoder(n_features=2**12).fit(X)
    M = enc.transform(X)
    assert M.shape == (2000, 2**12) and M.format == "csr"
    assert set(np.unique(M.data)) <= {-2.0, -1.0, 1.0, 2.0}
    assert (np.abs(M).sum(axis=1) <= 3).all()
    slots, signs = enc.hash_tokens(X)
    assert slots.shape == (2000, 3) and slots.min() >= 0 and slots.max() < 2**12
    assert 0.3 < (signs == -1).mean() < 0.7  # signed: about half the tokens are negative
    dense = HashingEncoder(n_features=2**6, sparse_output=False).set_output(transform="pandas").fit(X).transform(X)
    assert list(dense.columns[:2]) == ["hash_0", "hash_1"] and dense.shape == (2000, 64)
    np.testing.assert_array_equal(dense.to_numpy(), HashingEncoder(n_features=2**6).fit(X).transform(X).toarray())
    unsigned = HashingEncoder(n_features=2**12, signed=False).fit(X).transform(X)
    assert (unsigned.data > 0).all() and unsigned.sum() == 3 * 2000


def test_dtype_and_missing_consistency():
    s = pd.DataFrame({"c": ["AA", "UA", None, "AA"]})
    cat = s.astype("category")
    e = HashingEncoder(2**10).fit(s)
    np.testing.assert_array_equal(e.transform(s).toarray(), e.transform(cat).toarray())
    slots, _ = e.hash_tokens(s)
    assert slots[0, 0] == slots[3, 0] and len({slots[0, 0], slots[1, 0], slots[2, 0]}) == 3
    codes, h = value_hashes(pd.Series([1, 2, 1]))
    np.testing.assert_array_equal(codes, [0, 1, 0])
    np.testing.assert_array_equal(h[:2], hash_strings(["1", "2"]))


def test_int_column_turned_float_by_a_missing_value_keeps_its_slots(flights):
    "Serving rows often arrive as float64 (a NaN upcasts int columns): the same category must land in the same slot."
    X = flights[["hour", "carrier"]].head(500)
    served = X.astype({"hour": "float64"})
    served.iloc[0, 0] = np.nan
    enc = HashingEncoder(2**16, crosses=[("hour", "carrier")]).fit(X)
    a, b = enc.hash_tokens(X)[0], enc.hash_tokens(served)[0]
    np.testing.assert_array_equal(a[1:], b[1:])
    assert (a[0] != b[0])[0]  # the missing hour has its own slot
    np.testing.assert_array_equal(enc.hash_tokens(X.astype({"hour": str}))[0], a)
    assert hash_strings([2.5])[0] != hash_strings([2])[0] and hash_strings([2.0])[0] == hash_strings([2])[0]


def test_mix64_is_a_bijection_on_a_sample():
    x = np.arange(200_000, dtype=np.uint64)
    assert len(np.unique(mix64(x))) == len(x)
    bits = ((mix64(x)[:, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)).mean(axis=0)
    assert np.all(np.abs(bits - 0.5) < 0.01)  # every output bit is balanced


def test_collision_rate_near_ideal_on_real_categories():
    year = load_flights()
    year["route"] = year["origin"].astype(str) + "-" + year["dest"].astype(str)
    rep = HashingEncoder().fit(year[["tailnum", "route"]]).collision_report(year[["tailnum", "route"]])
    assert rep.loc["tailnum", "distinct"] >= 4000  # 4043 planes + missing
    assert (100 * rep["collision rate"] <= 100 * rep["ideal rate"] + 0.2).all()
    # a small space: the measured rate follows the ideal one
    small = HashingEncoder(2**12).fit(year[["tailnum"]]).collision_report(year[["tailnum"]])
    assert abs(small.loc["tailnum", "collision rate"] - small.loc["tailnum", "ideal rate"]) < 0.03
    assert collision_rate([]) == 0.0 and expected_collision_rate(1, 10) == 0.0


def test_crosses(flights):
    X = flights[["carrier", "origin", "hour"]].astype({"hour": str})
    enc = HashingEncoder(crosses=[("carrier", "origin", "hour")], include_columns=False).fit(X)
    slots, _ = enc.hash_tokens(X)
    combos = X["carrier"].astype(str) + "|" + X["origin"].astype(str) + "|" + X["hour"]
    by_combo = pd.Series(slots[:, 0]).groupby(combos.to_numpy()).nunique()
    assert (by_combo == 1).all()  # one slot per combination
    assert len(np.unique(slots[:, 0])) >= 0.99 * combos.nunique()
    assert enc.token_names_ == ["carrier&origin&hour"]
    # indices work as well as names
    enc2 = HashingEncoder(crosses=[(0, 1, 2)], include_columns=False).fit(X)
    np.testing.assert_array_equal(enc2.hash_tokens(X)[0], slots)


def test_crossing_helps_a_linear_model():
    f = load_flights("2013-06-01", "2013-07-31").dropna(subset=["is_late"]).sample(25_000, random_state=1)
    X = f[["carrier", "origin", "hour"]].astype({"hour": str})
    y = f["is_late"].to_numpy(bool)
    tr = f["day"].to_numpy() <= 15
    losses = {}
    for name, crosses in {"plain": None, "crossed": [("carrier", "origin", "hour")]}.items():
        M = HashingEncoder(2**14, crosses=crosses).fit(X).transform(X)
        p = LogisticRegression(C=0.1, solver="liblinear").fit(M[tr], y[tr]).predict_proba(M[~tr])[:, 1]
        losses[name] = log_loss(y[~tr], p)
    assert losses["crossed"] < losses["plain"]


def test_bad_input(flights):
    X = flights[COLS].head(100)
    enc = HashingEncoder().fit(X)
    with pytest.raises(SchemaError, match="Feature names unseen at fit time:\n- dest"):
        enc.transform(X.rename(columns={"route": "dest"}))
    with pytest.raises(SchemaError, match="crosses: unknown column 'hour'"):
        HashingEncoder(crosses=[("carrier", "hour")]).fit(X)
    with pytest.raises(ConfigError, match="two or more columns"):
        HashingEncoder(crosses=[("carrier",)]).fit(X)
    with pytest.raises(ConfigError, match="n_features must be an integer"):
        HashingEncoder(n_features=0).fit(X)
    with pytest.raises(ConfigError, match="nothing to hash"):
        HashingEncoder(include_columns=False).fit(X)
    with pytest.raises(DataError, match="at least one row"):
        HashingEncoder().fit(X.head(0))
