"The policy replay: retrain counts per trigger, labels used only after they arrive, drift-triggered retraining on a planted shift, the table."
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mlsys.continual.policy import Policy, compare_policies, policy_table, replay_policy
from mlsys.continual.triggers import DriftTrigger, NeverTrigger, TimeTrigger, VolumeTrigger
from mlsys.core import ConfigError, DataError
from mlsys.monitor.drift import KSDrift
from mlsys.pipeline import FEATURES, LABEL, make_model

SMALL = dict(make_model=lambda: make_model("hgb", params={"max_iter": 5}))

TZ = "America/New_York"


def synthetic(days=20, per_day=150, delay="6h", shift_day=None, drift_day=None, seed=0):
    "A flights-shaped feature table: the label follows `distance` (reversed from `shift_day`), labels arrive `delay` later."
    rng = np.random.default_rng(seed)
    n = days * per_day
    day = np.repeat(np.arange(days), per_day)
    local = (pd.Timestamp("2013-03-01").tz_localize(TZ) + pd.to_timedelta(day, "D")
             + pd.to_timedelta(rng.integers(5 * 60, 23 * 60, n), "min"))
    local = pd.DatetimeIndex(local).sort_values()
    distance = rng.normal(1000, 300, n) + (np.where(day >= drift_day, 400.0, 0.0) if drift_day is not None else 0.0)
    z = (distance - 1000) / 300
    if shift_day is not None:
        z = np.where(day >= shift_day, -z, z)
    y = rng.random(n) < 1 / (1 + np.exp(-2.5 * z))
    f = pd.DataFrame({c: 0.0 for c in FEATURES}, index=range(n))
    for c in ["carrier", "origin", "dest"]:
        f[c] = pd.Categorical(rng.choice(["A", "B", "C"], n), categories=["A", "B", "C"])
    f["distance"], f["sched_hour"], f["sched_dow"] = distance, local.hour, local.day_of_week
    f["sched_dep"] = local.tz_convert("UTC")
    f["local_date"] = local.strftime("%Y-%m-%d")
    f[LABEL] = pd.array(y, dtype="boolean")
    f["label_time"] = f["sched_dep"] + pd.Timedelta(delay)
    return f


def days(f, k):
    return sorted(f["local_date"].unique())[k]


def test_time_triggers_retrain_the_expected_number_of_times():
    f = synthetic(days=16)
    t = compare_policies(f, [Policy("never", NeverTrigger()), Policy("weekly", TimeTrigger("7D")),
                             Policy("daily", TimeTrigger("1D")), Policy("daily", TimeTrigger("1D"), stateful=True)],
                         days(f, 2), days(f, 15), **SMALL)
    # the first model is trained at the first served day's midnight; 10 March (daylight saving) is a day like the others
    assert t["retrains"].tolist() == [0, 1, 13, 13]
    assert t.loc[0, "cpu_seconds"] == 0 and (t.loc[1:, "cpu_seconds"] > 0).all()
    d = t.attrs["daily"]
    assert len(d) == 4 * 14 and set(d["mode"]) == {"stateless", "stateful"}
    weekly = d[(d["policy"] == "weekly")]
    assert weekly.loc[weekly["retrained"], "date"].tolist() == [days(f, 9)]
    assert d["failed"].isna().all()


class Recorder:
    "A model factory that records what each fit saw."
    def __init__(self):
        self.fits = []

    def __call__(self):
        rec = self
        class M(LogisticRegression):
            def fit(self, X, y, **kw):
                rec.fits.append(X["distance"].to_numpy().copy())
                return super().fit(X[["distance"]], y)
            def predict_proba(self, X):
                return super().predict_proba(X[["distance"]])
        return M()


def test_training_rows_are_only_those_whose_label_arrived_before_the_decision():
    f = synthetic(days=12, delay="30h")  # a label arrives the day after tomorrow's early morning
    rec = Recorder()
    replay_policy(f, Policy("daily", TimeTrigger("1D")), days(f, 5), days(f, 8), make_model=rec, window="28D")
    for k, seen in zip(range(5, 9), rec.fits):
        now = pd.Timestamp(days(f, k)).tz_localize(TZ).tz_convert("UTC")
        ok = (f["label_time"] < now) & (f["sched_dep"] >= now - pd.Timedelta("28D"))
        assert len(seen) == int(ok.sum())
        np.testing.assert_array_equal(np.sort(seen), np.sort(f.loc[ok, "distance"].to_numpy()))
    assert len(rec.fits) == 4


def test_volume_counts_only_arrived_labels():
    f = synthetic(days=12, per_day=100, delay="30h")
    # 100 rows a day, labels 30 h late: at each midnight about a day's labels have arrived since the last one
    r = replay_policy(f, Policy("vol", VolumeTrigger(250)), days(f, 3), days(f, 11))
    fired = r.daily.index[r.daily["retrained"]].tolist()
    assert np.diff(fired).tolist() == [3] * (len(fired) - 1) and len(fired) >= 2


def test_daily_retraining_recovers_from_a_concept_shift_that_never_does_not():
    f = synthetic(days=20, shift_day=8)
    t = compare_policies(f, [Policy("never", NeverTrigger()), Policy("daily", TimeTrigger("1D"))], days(f, 2), days(f, 19),
                         eval_start=days(f, 14), window="4D", **SMALL)
    never, daily = t["accuracy"].tolist()
    assert never < 0.4 < 0.6 < daily  # reversed concept: the old model is worse than chance, the retrained one learns it


def test_the_drift_trigger_fires_after_a_planted_covariate_shift_not_before():
    f = synthetic(days=20, drift_day=10)
    tr = DriftTrigger(KSDrift(alpha=0.001), features=["distance"], min_rows=100)
    r = replay_policy(f, Policy("drift", tr), days(f, 2), days(f, 19), recent="2D", **SMALL)
    fired = r.daily.loc[r.daily["retrained"], "date"].tolist()
    assert fired and all(d > days(f, 10) for d in fired) and fired[0] <= days(f, 12)


def test_policy_table_pools_accuracy_over_flights():
    f = synthetic(days=10)
    r = replay_policy(f, Policy("weekly", TimeTrigger("7D")), days(f, 1), days(f, 9))
    t = policy_table([r], eval_start=days(f, 3))
    d = r.daily[r.daily["date"] >= days(f, 3)]
    assert t.loc[0, "accuracy"] == pytest.approx((d["accuracy"] * d["n"]).sum() / d["n"].sum())
    assert t.loc[0, "days"] == 7 and t.loc[0, "mode"] == "stateless"


def test_bad_input_is_named():
    f = synthetic(days=6)
    with pytest.raises(ConfigError, match="trigger must be a mlsys.continual.triggers.Trigger"):
        Policy("x", "weekly")
    with pytest.raises(ConfigError, match="non-empty name"):
        Policy("", NeverTrigger())
    with pytest.raises(ConfigError, match="policy names must be unique"):
        compare_policies(f, [Policy("a", NeverTrigger()), Policy("a", NeverTrigger())], days(f, 1), days(f, 2))
    with pytest.raises(DataError, match="no flights between"):
        replay_policy(f, Policy("a", NeverTrigger()), "2014-01-01", "2014-02-01")
    with pytest.raises(ConfigError, match="start='soon'"):
        replay_policy(f, Policy("a", NeverTrigger()), "soon", "2014-02-01")
    with pytest.raises(DataError, match="too few for the first model"):
        replay_policy(f, Policy("a", NeverTrigger()), days(f, 0), days(f, 2))
    with pytest.raises(ConfigError, match="window='a month'"):
        replay_policy(f, Policy("a", NeverTrigger()), days(f, 1), days(f, 2), window="a month")
    with pytest.raises(DataError, match=r"features\['label_time'\] must be time zone-aware"):
        replay_policy(f.assign(label_time=f["label_time"].dt.tz_localize(None)), Policy("a", NeverTrigger()), days(f, 1), days(f, 2))
    with pytest.raises(DataError, match="lacks column"):
        replay_policy(f.drop(columns="label_time"), Policy("a", NeverTrigger()), days(f, 1), days(f, 2))


def test_a_rare_stateful_update_trains_only_on_the_window_unless_asked_for_all():
    "After a quiet spell, 'window' continues on the new rows of the window only; 'all' on every row since the last update."
    f = synthetic(days=20)
    kw = dict(window="3D", **SMALL)
    got = {}
    for rows in ("window", "all"):
        r = replay_policy(f, Policy("weekly", TimeTrigger("7D"), stateful=True), days(f, 4), days(f, 19), stateful_rows=rows, **kw)
        d = r.daily[r.daily["retrained"]]
        assert len(d) == 2 and (d["train_rows"] > 0).all()
        got[rows] = d["train_rows"].tolist()
        t = policy_table([r])
        assert t.loc[0, "train_rows"] == sum(got[rows])
    # each update sees about 3 of the 7 days with 'window', 7 with 'all' (plus the flights before the last update whose labels
    # arrived after it)
    for w, a in zip(got["window"], got["all"]):
        assert 2 * 150 <= w <= 3 * 150 < 6 * 150 <= a <= 8 * 150  # "all" also takes the labels that arrived late
    stateless = replay_policy(f, Policy("weekly", TimeTrigger("7D")), days(f, 4), days(f, 19), stateful_rows="window", **kw)
    assert (stateless.daily.loc[stateless.daily["retrained"], "train_rows"] > 2 * 150).all()  # the window, from scratch
    with pytest.raises(ConfigError, match="stateful_rows"):
        replay_policy(f, Policy("w", TimeTrigger("7D"), stateful=True), days(f, 4), days(f, 5), stateful_rows="some", **kw)
