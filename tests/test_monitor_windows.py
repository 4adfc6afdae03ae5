"""mlsys.monitor.windows: mergeable summaries, windows, detection delay and change points.

Randomized differential tests (fixed seeds): hourly windows merged into days equal the direct daily computation
(exactly for counts, histograms and category tables, to rounding for moments, within the sketch's stated error for
quantiles); the KLL sketch's rank error stays within its bound on real flights, merged or not; the change-point scan
picks the same split as a brute-force search; bad input raises named `DataError`s.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlsys.core import ConfigError, DataError, SchemaError
from mlsys.monitor.windows import (
    Counts, Frequencies, Histogram, Moments, QuantileSketch, Summary, Windows, calibrate_threshold, change_points,
    detection_delay, false_alarm_rate, find_change, psi, tumbling,
)

TZ = "America/New_York"


def _json(s: Summary) -> Summary:
    return Summary.from_dict(json.loads(json.dumps(s.to_dict(), ensure_ascii=False)))


def _rank_gap(values: np.ndarray, q: np.ndarray, v: np.ndarray) -> np.ndarray:
    "How far q lies outside [fraction < v, fraction <= v] of the exact values."
    s = np.sort(values)
    lo, hi = np.searchsorted(s, v, side="left") / len(s), np.searchsorted(s, v, side="right") / len(s)
    return np.maximum(np.maximum(lo - q, q - hi), 0.0)


def _frame(rng: np.random.Generator, n: int, days: int = 3) -> pd.DataFrame:
    "Random events over `days` days (local time, across a DST change) with gaps, ties, NaN, float32 and text."
    start = pd.Timestamp("2013-03-09", tz=TZ)
    if n == 0:
        t = pd.DatetimeIndex([], tz=TZ)
    else:  # clustered times leave empty hours; some exact ties
        grid = int(rng.choice([1, 60, 3600]))
        secs = np.sort(rng.choice(days * 86400 - 3600, size=n) // grid * grid)
        t = start + pd.to_timedelta(secs, unit="s")
    kind = rng.integers(4)
    if kind == 0:
        x = rng.normal(10, 3, n)
    elif kind == 1:
        x = rng.integers(-3, 4, n).astype("float64")  # many ties
    elif kind == 2:
        x = (rng.normal(0, 1, n) * 1e3).astype("float32").astype("float64")
    else:
        x = np.full(n, 7.5)  # a single value repeated
    x[rng.random(n) < 0.1] = np.nan
    cats = np.array(["a", "Zürich", "東京", "", "b"], dtype=object)[rng.integers(0, 5, n)]
    cats[rng.random(n) < 0.05] = None
    col = pd.Series(x.astype("float32") if rng.random() < 0.3 else x)
    return pd.DataFrame({"t": t, "x": col.to_numpy(), "c": cats})


def _direct(frame: pd.DataFrame, start, end, col="x") -> pd.Series:
    t = frame["t"]
    return frame.loc[(t >= start) & (t < end), col]


# ---------- summaries ----------------------------------------------------------------------------------------


def test_moments_equal_numpy_over_random_batches_and_merge_orders():
    rng = np.random.default_rng(0)
    for trial in range(300):
        n = int(rng.integers(1, 200))
        x = rng.normal(rng.choice([0, 1e6, 1e9]), rng.choice([1e-3, 1, 100]), n)
        if trial % 5 == 0:
            x = x.astype("float32")
        cuts = np.sort(rng.integers(0, n + 1, rng.integers(0, 6)))
        parts = [Moments().update(p) for p in np.split(x, cuts)]
        order = rng.permutation(len(parts))
        m = parts[order[0]]
        for i in order[1:]:
            m = m.merge(parts[i])
        xd = x.astype("float64")
        assert m.count == n
        np.testing.assert_allclose(m.mean, xd.mean(), rtol=1e-12, atol=1e-12 * abs(xd).max())
        if n > 1:
            np.testing.assert_allclose(m.var(), xd.var(ddof=1), rtol=1e-6, atol=1e-9 * xd.var() + 1e-300)
        assert (m.min, m.max) == (xd.min(), xd.max())
        assert _json(m) == m


def test_moments_merge_returns_new_and_leaves_inputs():
    a, b = Moments().update([1.0, 2.0]), Moments().update([10.0])
    before = (a.to_dict(), b.to_dict())
    c = a.merge(b)
    assert c is not a and (a.to_dict(), b.to_dict()) == before and c.count == 3


def test_histogram_equals_numpy_and_counts_outside():
    rng = np.random.default_rng(1)
    for _ in range(200):
        ref = rng.normal(size=int(rng.integers(1, 100)))
        h = Histogram.from_reference(ref, bins=int(rng.integers(1, 12)), strategy=rng.choice(["quantile", "uniform"]))
        x = np.round(rng.normal(size=int(rng.integers(0, 300))) * 1.5, 1)
        h.update(x)
        inside = x[(x >= h.edges[0]) & (x <= h.edges[-1])]
        np.testing.assert_array_equal(h.counts, np.histogram(inside, bins=h.edges)[0])
        assert h.below == (x < h.edges[0]).sum() and h.above == (x > h.edges[-1]).sum()
        assert _json(h) == h


def test_frequencies_equal_value_counts_non_ascii_json():
    rng = np.random.default_rng(2)
    vocab = np.array(["a", "Zürich", "東京", "", "line\n", "🙂"], dtype=object)
    for _ in range(100):
        v = vocab[rng.integers(0, len(vocab), int(rng.integers(0, 60)))].copy()
        v[rng.random(len(v)) < 0.1] = None
        f = Frequencies().update(v)
        s = pd.Series(v, dtype=object)
        assert f.table == s.dropna().value_counts().to_dict() and f.nulls == s.isna().sum()
        assert _json(f) == f


def test_frequencies_of_a_categorical_count_only_seen_categories():
    s = pd.Series(["b", None, "a", "b"], dtype=pd.CategoricalDtype(["a", "b", "unused"]))
    f = Frequencies().update(s)
    assert f.table == {"b": 2, "a": 1} and f.nulls == 1 and f.stats()["distinct"] == 2
    assert Frequencies().update(s.iloc[:0]).table == {}


def test_counts_nulls_of_every_kind():
    c = Counts().update(pd.Series([1, None, np.nan, 3], dtype="Int64"))
    assert (c.count, c.nulls) == (2, 2)
    c2 = Counts().update(["a", None, float("nan")])
    assert (c2.count, c2.nulls) == (1, 2)


def test_psi_zero_for_same_and_positive_for_shift():
    rng = np.random.default_rng(3)
    ref = rng.normal(size=5000)
    h = Histogram.from_reference(ref, 10)
    assert psi(h.empty().update(ref), h.empty().update(ref)) == 0
    assert psi(h.empty().update(ref), h.empty().update(ref + 1)) > 0.25
    assert np.isnan(psi(h.empty(), h.empty().update(ref)))


# ---------- the quantile sketch ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flights():
    from mlsys.datasets import load_flights
    return load_flights(start="2013-01-01", end="2013-02-28")


def test_kll_rank_error_within_bound_on_real_data(flights):
    x = flights["dep_delay"].dropna().to_numpy("float64")
    qs = np.linspace(0.001, 0.999, 999)
    for seed in range(4):
        sk = QuantileSketch(100, seed=seed)
        for part in np.array_split(flights["dep_delay"], 300):  # streamed in small batches
            sk.update(part)
        assert sk.count == len(x) and sk.nulls == flights["dep_delay"].isna().sum()
        assert sum(len(b) for b in sk.levels) < 4 * 100
        assert _rank_gap(x, qs, sk.quantile(qs)).max() <= sk.rank_error()
        est = sk.rank(np.unique(x))  # rank queries too, at every distinct value (ties)
        true = np.searchsorted(np.sort(x), np.unique(x), side="right")
        assert np.abs(est - true).max() <= sk.rank_error() * len(x)
        assert 0 < sk.rank_error() < 0.05
        assert _json(sk) == sk


def test_kll_merged_hourly_sketches_within_bound_of_direct_daily(flights):
    hours = tumbling(flights, "sched_dep_local", "dep_delay", QuantileSketch(64, seed=7), "1h")
    days = hours.coarsen("1D")
    qs = np.linspace(0.01, 0.99, 99)
    t = flights["sched_dep_local"]
    for a, b, s in zip(days.start, days.end, days.summaries):
        raw = flights.loc[(t >= a) & (t < b), "dep_delay"].dropna().to_numpy("float64")
        assert s.count == len(raw)
        assert _rank_gap(raw, qs, s.quantile(qs)).max() <= s.rank_error()
    first = hours.between(end=hours.start[0] + pd.Timedelta("8D"))
    for s, a, b in zip((w := first.sliding(24 * 7)).summaries, w.start, w.end):
        raw = flights.loc[(t >= a) & (t < b), "dep_delay"].dropna().to_numpy("float64")
        assert s.count == len(raw) and _rank_gap(raw, qs, s.quantile(qs)).max() <= s.rank_error()


def test_kll_edge_cases():
    empty = QuantileSketch()
    assert np.isnan(empty.quantile([0.5])).all() and empty.rank_error() == 0 and _json(empty) == empty
    one = QuantileSketch().update([3.0, np.nan])
    assert one.quantile([0, 0.5, 1]).tolist() == [3.0, 3.0, 3.0] and one.nulls == 1
    ties = QuantileSketch(8).update(np.zeros(10_000, dtype="float32"))
    assert ties.quantile([0.1, 0.9]).tolist() == [0.0, 0.0]
    big = QuantileSketch(16).update(np.arange(10_000.0))
    assert big.quantile([0.0, 1.0]).tolist() == [0.0, 9999.0]  # min and max are exact
    assert int(big.rank([1e9])[0]) == 10_000  # total weight is conserved exactly


def test_kll_reproducible_by_seed_and_distinct_per_window():
    x = np.random.default_rng(5).normal(size=20_000)
    a, b = QuantileSketch(32, seed=1).update(x), QuantileSketch(32, seed=1).update(x)
    assert a == b
    p = QuantileSketch(32, seed=1)
    assert p.empty(0).seed != p.empty(1).seed
    c, d = QuantileSketch(32, seed=1).update(x[::-1]), QuantileSketch(32, seed=1).update(x + 1)
    assert len({a._coin, c._coin, d._coin}) == 3  # same seed and sizes, other data: coin streams differ


def test_kll_same_seed_sketches_merge_within_bound():
    "Many sketches made with the default seed and the same batch sizes, merged: still within the stated bound."
    rng = np.random.default_rng(12)
    x = rng.normal(size=64 * 2000)
    parts = [QuantileSketch(16).update(x[i * 2000:(i + 1) * 2000]) for i in range(64)]
    while len(parts) > 1:
        parts = [parts[i].merge(parts[i + 1]) for i in range(0, len(parts), 2)]
    qs = np.linspace(0.01, 0.99, 99)
    assert _rank_gap(x, qs, parts[0].quantile(qs)).max() <= parts[0].rank_error()


# ---------- windows: merged equals direct -------------------------------------------------------------------


def _equal_windows(a: Windows, b: Windows):
    assert a.start.equals(b.start) and a.end.equals(b.end)


def test_hourly_merged_into_daily_equals_direct_randomized():
    rng = np.random.default_rng(6)
    for trial in range(40):
        f = _frame(rng, int(rng.choice([0, 1, 2, 50, 400])))
        ref = f["x"].dropna()
        protos = [(Counts(), "x"), (Moments(), "x"), (Frequencies(), "c"),
                  (Histogram.from_reference(ref if len(ref) else [0.0], bins=int(rng.integers(1, 8))), "x")]
        for proto, col in protos:
            hours = tumbling(f, "t", col, proto, "1h")
            merged, direct = hours.coarsen("1D"), tumbling(f, "t", col, proto, "1D")
            _equal_windows(merged, direct)
            assert sum(s.nulls for s in direct.summaries) == f[col].isna().sum()
            if isinstance(proto, Moments):
                for m, d in zip(merged.summaries, direct.summaries):
                    assert (m.count, m.nulls, m.min, m.max) == (d.count, d.nulls, d.min, d.max)
                    np.testing.assert_allclose([m.mean, m.m2], [d.mean, d.m2], rtol=1e-9, atol=1e-9)
                for a, b, d in zip(direct.start, direct.end, direct.summaries):
                    raw = _direct(f, a, b).dropna().astype("float64")
                    if len(raw):
                        np.testing.assert_allclose(d.mean, raw.mean(), rtol=1e-12, atol=1e-9)
            else:
                assert merged.summaries == direct.summaries
        sk = tumbling(f, "t", "x", QuantileSketch(16, seed=trial), "1h").coarsen("1D")
        for a, b, s in zip(sk.start, sk.end, sk.summaries):
            raw = _direct(f, a, b).dropna().to_numpy("float64")
            assert s.count == len(raw)
            if len(raw):
                qs = np.linspace(0, 1, 21)
                assert _rank_gap(raw, qs, s.quantile(qs)).max() <= s.rank_error() + 1e-12


def test_sliding_and_cumulative_equal_direct():
    rng = np.random.default_rng(7)
    f = _frame(rng, 600, days=4)
    hours = tumbling(f, "t", "x", Moments(), "1h")
    for n in (1, 3, 24):
        sl = hours.sliding(n)
        assert len(sl) == len(hours) - n + 1
        for a, b, s in zip(sl.start, sl.end, sl.summaries):
            raw = _direct(f, a, b).dropna()
            assert s.count == len(raw)
            if len(raw):
                np.testing.assert_allclose(s.mean, raw.mean(), rtol=1e-9, atol=1e-9)
    cum = hours.cumulative()
    assert cum.summaries[-1].count == f["x"].notna().sum()
    np.testing.assert_allclose(cum.summaries[-1].mean, f["x"].mean(), rtol=1e-9)
    assert cum.summaries[0] is not hours.summaries[0]


def test_tumbling_month_windows_and_empty_frame():
    t = pd.date_range("2013-01-15", "2013-04-10", freq="1D", tz="UTC")
    w = tumbling(pd.DataFrame({"t": t, "x": 1.0}), "t", "x", Counts(), "MS")
    assert [s.count for s in w.summaries] == [17, 28, 31, 10]
    e = tumbling(pd.DataFrame({"t": pd.DatetimeIndex([], tz="UTC"), "x": []}), "t", "x", Counts(), "1h")
    assert len(e) == 0 and len(e.coarsen("1D")) == 0 and len(e.cumulative()) == 0


# ---------- detection delay ---------------------------------------------------------------------------------


def test_detection_delay_and_false_alarms():
    rng = np.random.default_rng(8)
    t = pd.date_range("2013-01-01", periods=24 * 56, freq="1h", tz="UTC")
    x = rng.normal(size=len(t))
    change = t[24 * 42]
    x[24 * 42:] += 3
    w = tumbling(pd.DataFrame({"t": t, "x": x}), "t", "x", Moments(), "1D")
    mean = lambda s: s.mean  # noqa: E731
    thr = calibrate_threshold(w.between(end=t[24 * 28]), mean, alarms_per_week=0.5)
    assert false_alarm_rate(w.between(end=change), mean, thr) < 2
    assert detection_delay(w, mean, thr, change) == pd.Timedelta("1D")
    assert pd.isna(detection_delay(w, mean, 1e9, change))
    with pytest.raises(DataError, match="no window to detect"):
        detection_delay(w, mean, thr, t[-1] + pd.Timedelta("2D"))
    with pytest.raises(DataError, match="no time zone"):
        detection_delay(w, mean, thr, pd.Timestamp("2013-02-01"))
    with pytest.raises(ConfigError, match="alarms_per_week"):
        calibrate_threshold(w, mean, 0)


# ---------- change points -----------------------------------------------------------------------------------


def _brute(x: np.ndarray, cost: str, min_size: int) -> tuple[int, np.ndarray]:
    floor = 1e-12 * max(np.var(x), 1e-300)

    def seg(a):
        m2 = np.sum((a - a.mean()) ** 2)
        return m2 if cost == "mean" else len(a) * np.log(max(m2 / len(a), floor))
    costs = np.array([seg(x[:i]) + seg(x[i:]) for i in range(min_size, len(x) - min_size + 1)])
    return int(np.argmin(costs)) + min_size, costs


def test_find_change_equals_brute_force_randomized():
    rng = np.random.default_rng(9)
    for trial in range(600):
        n = int(rng.integers(2, 80))
        cost, min_size = ("mean", int(rng.integers(1, 4))) if trial % 2 else ("meanvar", int(rng.integers(2, 4)))
        if n < 2 * min_size:
            continue
        x = rng.normal(size=n) * rng.choice([1e-3, 1, 1e3]) + rng.choice([0, 1e6])
        if rng.random() < 0.5:
            x[int(rng.integers(1, n)):] += rng.choice([1, 5]) * x.std()
        if trial % 3 == 0:
            x = np.round(x, 1)  # ties
        if trial % 7 == 0:
            x = x.astype("float32").astype("float64")
        i, costs = _brute(x, cost, min_size)
        got = find_change(x, cost, min_size)["index"]
        if got != i:  # only a tie in cost (to rounding) may pick another split
            assert np.isclose(costs[got - min_size], costs[i - min_size], rtol=1e-9, atol=1e-9 * abs(costs).max())


def test_find_change_over_windows_equals_raw_search_at_boundaries():
    rng = np.random.default_rng(10)
    t = pd.date_range("2013-01-01", periods=24 * 20, freq="1h", tz="UTC")
    x = rng.normal(size=len(t))
    x[24 * 13 + 5:] += 1.5
    w = tumbling(pd.DataFrame({"t": t, "x": x}), "t", "x", Moments(), "1D")
    got = find_change(w)
    raw = [np.sum((x[: 24 * i] - x[: 24 * i].mean()) ** 2) + np.sum((x[24 * i:] - x[24 * i:].mean()) ** 2) for i in range(1, 20)]
    assert got["index"] == int(np.argmin(raw)) + 1 == 13 and got["start"] == w.start[13]


def test_change_points_planted_and_none():
    rng = np.random.default_rng(11)
    x = np.r_[rng.normal(0, 1, 200), rng.normal(3, 1, 150), rng.normal(0, 1, 150)]
    cp = change_points(x, max_changes=5)
    assert len(cp) == 2 and abs(cp["index"].iloc[0] - 200) <= 3 and abs(cp["index"].iloc[1] - 350) <= 3
    assert len(change_points(rng.normal(size=500))) == 0
    v = np.r_[rng.normal(0, 1, 300), rng.normal(0, 5, 300)]
    assert abs(find_change(v, "meanvar", min_size=2)["index"] - 300) <= 10


def test_change_point_on_rainfall_row_12000():
    from mlsys.datasets import load_rainfall
    rain = load_rainfall()
    rain["t"] = pd.Timestamp("2000-01-01", tz="UTC") + pd.to_timedelta(rain["day"], unit="D")
    w = tumbling(rain, "t", "dew_point", Moments(), "30D")
    got = find_change(w, cost="meanvar")
    assert abs(int((rain["t"] < got["start"]).sum()) - 12_000) <= 30


# ---------- bad input ----------------------------------------------------------------------------------------


def _events():
    return pd.DataFrame({"t": pd.date_range("2013-01-01", periods=10, freq="17min", tz="UTC"), "x": np.arange(10.0)})


@pytest.mark.parametrize("freq", ["0h", "0D", "-1h", "-2D"])
def test_zero_or_negative_window_refused(freq):
    with pytest.raises(DataError, match="zero or negative length"):
        tumbling(_events(), "t", "x", Moments(), freq)


def test_bad_windows_input():
    e = _events()
    with pytest.raises(DataError, match="not sorted: row 1"):
        tumbling(e.iloc[[1, 0, 2]], "t", "x", Moments())
    with pytest.raises(DataError, match="1 missing timestamp"):
        tumbling(e.assign(t=e.t.where(e.index != 3)), "t", "x", Moments())
    with pytest.raises(DataError, match="no time zone"):
        tumbling(e.assign(t=e.t.dt.tz_localize(None)), "t", "x", Moments())
    with pytest.raises(SchemaError, match="lacks column"):
        tumbling(e, "t", "y", Moments())
    with pytest.raises(ConfigError, match="not a pandas offset"):
        tumbling(e, "t", "x", Moments(), "fortnight")
    with pytest.raises(ConfigError, match="must be a Summary"):
        tumbling(e, "t", "x", Moments, "1h")
    w = tumbling(e, "t", "x", Moments(), "1h")
    for n in (0, -1, True, 1.5):
        with pytest.raises(DataError, match="zero length"):
            w.sliding(n)
    with pytest.raises(DataError, match="do not nest"):
        tumbling(e, "t", "x", Moments(), "90min").coarsen("1h")
    with pytest.raises(DataError, match="zero or negative"):
        w.coarsen("0D")


def test_bad_merges_and_dicts():
    h1 = Histogram([0, 1, 2]).update([0.5])
    with pytest.raises(DataError, match="different edges"):
        h1.merge(Histogram([0, 1, 3]))
    with pytest.raises(DataError, match="different types"):
        Moments().merge(Counts())
    with pytest.raises(DataError, match="different types"):
        QuantileSketch().merge(Moments())
    with pytest.raises(DataError, match="different k"):
        QuantileSketch(100).merge(QuantileSketch(200))
    with pytest.raises(DataError, match="different bins|different types"):
        psi(h1, Moments())
    with pytest.raises(DataError, match="cannot be read as Moments"):
        Moments.from_dict(Counts().to_dict())
    with pytest.raises(DataError, match="'kind' key"):
        Summary.from_dict({"count": 1})
    with pytest.raises(DataError, match="malformed"):
        Summary.from_dict({"kind": "moments", "count": 1})
    deep = QuantileSketch().to_dict()
    deep["levels"] = [[]] * 70
    with pytest.raises(DataError, match="70 levels"):
        Summary.from_dict(deep)
    neg = Counts().to_dict()
    neg["nulls"] = -1
    with pytest.raises(DataError, match="negative"):
        Summary.from_dict(neg)
    bad = QuantileSketch().update([1.0, 2.0]).to_dict()
    bad["count"] = 5
    with pytest.raises(DataError, match="weight 2 for a count of 5"):
        Summary.from_dict(bad)
    hd = h1.to_dict()
    hd["counts"] = [1]
    with pytest.raises(DataError, match="1 counts .* for 2 bins"):
        Summary.from_dict(hd)


def test_bad_values_refused():
    with pytest.raises(DataError, match="must be numbers"):
        Moments().update(["a", 1.0])
    with pytest.raises(DataError, match="booleans"):
        Moments().update(np.array([True, False]))
    with pytest.raises(DataError, match="infinite"):
        QuantileSketch().update([1.0, -np.inf])
    with pytest.raises(DataError, match="1-D"):
        Histogram([0, 1]).update(np.zeros((2, 2)))
    with pytest.raises(DataError, match="1-D"):
        Counts().update(pd.DataFrame({"a": [1]}))
    with pytest.raises(DataError, match="1-D"):
        Moments().update(3.0)
    for bad in ([(1, 2), "a"], [b"bytes"], [{"a": 1}], [[1, 2], "a"]):
        with pytest.raises(DataError, match="a category must be"):
            Frequencies().update(bad)
    with pytest.raises(DataError, match=r"q must lie in \[0, 1\]"):
        QuantileSketch().update([1.0]).quantile([1.5])
    with pytest.raises(ConfigError, match="strictly increasing"):
        Histogram([0, 0, 1])
    with pytest.raises(DataError, match="no non-null values"):
        Histogram.from_reference([np.nan])
    with pytest.raises(ConfigError, match="k must be"):
        QuantileSketch(4)
    with pytest.raises(DataError, match="needs Moments"):
        find_change([Counts().update([1.0]), Counts().update([2.0])])
    with pytest.raises(DataError, match="must not hold nulls"):
        find_change([1.0, np.nan, 2.0])
    with pytest.raises(DataError, match="leave no split"):
        find_change([5.0])
    with pytest.raises(ConfigError, match="cost="):
        find_change([1.0, 2.0], cost="median")
