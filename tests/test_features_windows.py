"""Window features: zero train/serve skew (batch == stream, bit for bit) on flights and random floats, eviction, bad input."""
import numpy as np
import pandas as pd
import pytest

from mlsys.core import ConfigError, DataError, SchemaError
from mlsys.datasets import load_flights
from mlsys.features.windows import WindowAggregate, departure_events

BASE = pd.Timestamp("2013-11-03 04:00", tz="UTC")  # the night New York leaves daylight saving time


def _replay(defn, events, queries, qtime, exclude):
    "Serve the feature from a stream: events and queries interleaved in time order."
    state = defn.stream()
    log = pd.concat([events.assign(kind_=1, t_=events[defn.timestamp]),
                     queries.assign(kind_=0, t_=queries[qtime])]).sort_values(["t_", "kind_"], kind="stable")
    out = {}
    for r in log.to_dict("records"):
        if r["kind_"] == 1:
            state.update(r, id=r[exclude])
        else:
            out[r[exclude]] = state.get(r[defn.entity], r[qtime], exclude=r[exclude])
    return pd.Series(out).reindex(queries[exclude]).to_numpy()


@pytest.mark.parametrize("agg", ["mean", "sum", "count"])
def test_zero_skew_on_flights(agg):
    day = load_flights(start="2013-11-02", end="2013-11-03").reset_index(names="fid")
    defn = WindowAggregate("f", "origin", "dep_delay", "dep_actual", "2h", agg)
    ev = departure_events(day)
    batch = defn.compute(ev, day, "sched_dep", exclude="fid").to_numpy()
    served = _replay(defn, ev, day, "sched_dep", "fid")
    np.testing.assert_array_equal(batch, served)  # bit-identical, NaN where no departures


@pytest.mark.parametrize("seed", range(5))
def test_zero_skew_random_floats_and_eviction(seed):
    rng = np.random.default_rng(seed)
    n = 400
    ev = pd.DataFrame({"fid": np.arange(n), "k": rng.choice(list("ab"), n), "v": rng.normal(size=n) * 1e3,
                       "t": BASE + pd.to_timedelta(np.sort(rng.integers(0, 2000, n)), unit="min")})
    q = ev.assign(qt=ev.t + pd.to_timedelta(rng.integers(-30, 30, n), unit="min"))
    defn = WindowAggregate("f", "k", "v", "t", "45min", "mean")
    batch = defn.compute(ev, q, "qt", exclude="fid").to_numpy()
    served = _replay(defn, ev, q, "qt", "fid")
    np.testing.assert_array_equal(batch, served)
    # brute-force check of the batch path itself
    for i in rng.choice(n, 30, replace=False):
        row = q.iloc[i]
        m = (ev.k == row.k) & (ev.t >= row.qt - pd.Timedelta("45min")) & (ev.t < row.qt) & (ev.fid != row.fid)
        assert np.isclose(batch[i], ev.v[m].mean(), equal_nan=True)
    # eviction forgets old events without changing answers for later queries
    state = defn.stream()
    for r in ev.to_dict("records"):
        state.update(r)
    at = ev.t.iloc[-1]
    before = [state.get(k, at) for k in "ab"]
    assert state.evict(at) > 0
    assert [state.get(k, at) for k in "ab"] == before


def test_stream_bad_input():
    state = WindowAggregate("f", "k", "v", "t", "1h").stream()
    state.update({"k": "a", "v": 1.0, "t": BASE})
    with pytest.raises(DataError, match="arrived after a later one"):
        state.update({"k": "a", "v": 1.0, "t": BASE - pd.Timedelta("1min")})
    with pytest.raises(SchemaError, match="event lacks field 'v'"):
        state.update({"k": "a", "t": BASE})
    with pytest.raises(SchemaError, match="must be tz-aware"):
        state.get("a", pd.Timestamp("2013-01-01"))
    with pytest.raises(ConfigError, match="agg='median'"):
        WindowAggregate("f", "k", "v", "t", "1h", "median")
    with pytest.raises(ConfigError, match="window=.*must be positive"):
        WindowAggregate("f", "k", "v", "t", "0s")


def test_names_moved_from_features_store_are_still_importable_from_it():
    import mlsys.features.store as store
    import mlsys.features.windows as windows
    from mlsys.features.store import RECENT_DEP_DELAY, WindowAggregate as Moved, WindowState, departure_events as moved_events
    assert Moved is WindowAggregate and moved_events is departure_events and WindowState is windows.WindowState
    assert RECENT_DEP_DELAY is windows.RECENT_DEP_DELAY and store._ns_scalar is windows._ns_scalar
    with pytest.raises(AttributeError, match="has no attribute 'NoSuchName'"):
        _ = store.NoSuchName
