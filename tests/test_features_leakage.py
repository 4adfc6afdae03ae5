"""Leakage detectors catch planted leaks, stay quiet on the fixed pipeline, and reject bad input clearly."""
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from mlsys.core import ConfigError, DataError, SchemaError
from mlsys.datasets import load_flights, load_planes, load_weather
from mlsys.features.leakage import (
    Finding, LeakageReport, detect_duplicates, detect_fit_on_test, detect_group_leakage, detect_late_timestamps,
    detect_predictive_features, detect_time_overlap, detect_unavailable_features, flight_known_at, group_split,
    leakage_report, single_feature_auc, split_then_fit, time_split,
)
from mlsys.features.store import build_flight_features, flight_feature_columns, flight_feature_known_at

NY = "America/New_York"
NUM = ["hour", "minute", "distance", "temp", "visib"]


@pytest.fixture(scope="module")
def flights():
    fl = load_flights(start="2013-02-01", end="2013-02-20")
    fl = fl[fl.is_late.notna() & fl.tailnum.notna()].sample(4000, random_state=0).sort_values("sched_dep")
    w = load_weather(start="2013-02-01", end="2013-02-20")[["origin", "time_hour", "temp", "visib"]]
    fl = fl.merge(w, on=["origin", "time_hour"], how="left").reset_index(drop=True)
    fl["local_date"] = fl.sched_dep.dt.tz_convert(NY).dt.date.astype(str)
    return fl.join(flight_known_at(fl))


@pytest.fixture(scope="module")
def splits(flights):
    return time_split(flights, "sched_dep", cutoff=pd.Timestamp("2013-02-15", tz=NY))


def test_time_split_and_overlap(flights, splits):
    tr, te = splits
    assert tr.sched_dep.max() < te.sched_dep.min() and len(tr) + len(te) == len(flights)
    assert len(detect_time_overlap(tr, te, "sched_dep")) == 0
    rtr = flights.sample(frac=0.8, random_state=0)
    rep = detect_time_overlap(rtr, flights.drop(rtr.index), "sched_dep")
    assert rep.leaky and rep.findings[0].severity == "high" and rep.findings[0].evidence["train_rows_after_test_start"] > 0
    # a gap removes the rows just before the cut-off
    gtr, gte = time_split(flights, "sched_dep", cutoff=pd.Timestamp("2013-02-15", tz=NY), gap="1D")
    assert gte.sched_dep.min() - gtr.sched_dep.max() >= pd.Timedelta("1D")
    # default cut-off puts the last 20% by time in test
    dtr, dte = time_split(flights, "sched_dep")
    assert abs(len(dte) / len(flights) - 0.2) < 0.01


def test_time_split_bad_input(flights):
    with pytest.raises(SchemaError, match=r"lacks column\(s\) \['when'\]"):
        time_split(flights, "when")
    with pytest.raises(SchemaError, match="'carrier' must hold timestamps"):
        time_split(flights, "carrier")
    with pytest.raises(SchemaError, match="both be tz-aware"):
        time_split(flights, "sched_dep", cutoff="2013-02-15")
    with pytest.raises(DataError, match="both must be non-empty"):
        time_split(flights, "sched_dep", cutoff=pd.Timestamp("2014-01-01", tz="UTC"))
    with pytest.raises(ConfigError, match="test_size=1.5"):
        time_split(flights, "sched_dep", test_size=1.5)
    bad = flights.assign(sched_dep=flights.sched_dep.where(flights.index != 3))
    with pytest.raises(DataError, match="1 missing timestamp"):
        detect_time_overlap(bad, bad, "sched_dep")


def test_group_split_and_group_leakage(flights):
    tr, te = group_split(flights, ["tailnum", "local_date"], test_size=0.3)
    assert len(detect_group_leakage(tr, te, ["tailnum", "local_date"])) == 0
    rtr = flights.sample(frac=0.7, random_state=0)
    rte = flights.drop(rtr.index)
    rep = detect_group_leakage(rtr, rte, ["tailnum", "local_date"])
    shared = set(zip(rtr.tailnum, rtr.local_date))
    expected = sum((t, d) in shared for t, d in zip(rte.tailnum, rte.local_date))
    assert rep.findings[0].evidence["test_rows"] == expected > 0
    # a single entity column works too (the same aircraft on any day)
    assert detect_group_leakage(rtr, rte, "tailnum").findings[0].evidence["test_rows"] >= expected
    with pytest.raises(SchemaError, match=r"lacks column\(s\) \['plane'\]"):
        detect_group_leakage(rtr, rte, ["plane"])


def test_fit_on_test_detects_scaler_and_imputer(splits):
    tr, te = splits
    both = pd.concat([tr, te])
    leaky = Pipeline([("imp", SimpleImputer(strategy="median")), ("sc", StandardScaler())]).fit(both[NUM])
    rep = detect_fit_on_test(leaky, tr, te)
    assert [f.severity for f in rep.findings] == ["high", "high"]
    assert rep.findings[1].evidence["n_samples_seen"] == [len(both)]
    # split-then-fit is quiet, for a pipeline with a final model too
    fixed, auc = split_then_fit(Pipeline([("imp", SimpleImputer()), ("sc", MinMaxScaler()),
                                          ("m", LogisticRegression(max_iter=300))]), tr, te, NUM, "is_late")
    assert 0.5 < auc < 0.9
    assert len(detect_fit_on_test(fixed, tr, te)) == 0
    assert len(detect_fit_on_test(StandardScaler().fit(tr[NUM].fillna(0)), tr.fillna({c: 0 for c in NUM}), te)) == 0
    # fitted on something else than train (but not train+test): medium
    other = StandardScaler().fit(te[NUM])
    assert detect_fit_on_test(other, tr, te).findings[0].severity == "medium"
    with pytest.raises(Exception, match="not fitted"):
        detect_fit_on_test(StandardScaler(), tr, te, columns=NUM)
    with pytest.raises(ConfigError, match="columns must be given"):
        detect_fit_on_test(StandardScaler().fit(tr[NUM].to_numpy()), tr, te)


def test_duplicates_exact_and_near(splits):
    tr, te = splits
    cols = ["sched_dep", "flight", "tailnum", *NUM]
    assert len(detect_duplicates(tr, te, cols)) == 0
    planted = pd.concat([te, tr.iloc[:40], tr.iloc[40:65].assign(temp=lambda d: d.temp + 1e-5)])
    ev = detect_duplicates(tr, planted, cols).findings[0].evidence
    assert (ev["exact"], ev["near"]) == (40, 25)
    assert detect_duplicates(tr, planted, cols, near=False).findings[0].evidence["near"] == 0
    # a different category is never a near duplicate
    moved = tr.iloc[:10].assign(tailnum="N0NE")
    assert len(detect_duplicates(tr, moved, cols)) == 0
    with pytest.raises(ConfigError, match="columns is empty"):
        detect_duplicates(tr, te, [])


def test_unavailable_features_declared_and_timestamps(splits):
    tr, te = splits
    rep = detect_unavailable_features(["temp", "dep_delay", "arr_time", "air_time", "arr_delay", "dep_time"])
    assert sorted(f.feature for f in rep.findings if f.severity == "high") == \
        ["air_time", "arr_delay", "arr_time", "dep_delay", "dep_time"]
    assert len(detect_unavailable_features(["temp", "distance", "route_late_rate"])) == 0
    assert detect_unavailable_features(["x_new"], {"temp": "before"}).findings[0].severity == "low"
    rep = detect_late_timestamps(te, "sched_dep", {"dep_delay": "dep_known_at", "arr_delay": "arr_known_at",
                                                   "temp": "time_hour"})
    by = {f.feature: f.evidence for f in rep.findings}
    assert set(by) == {"dep_delay", "arr_delay"}
    assert by["dep_delay"]["rows"] == int((te.dep_delay.astype(float) > 0).sum())
    with pytest.raises(ConfigError, match="must be one of"):
        detect_unavailable_features(["temp"], {"temp": "later"})
    with pytest.raises(ConfigError, match="must map each feature"):
        detect_late_timestamps(te, "sched_dep", {})
    with pytest.raises(SchemaError, match="must hold timestamps"):
        detect_late_timestamps(te, "sched_dep", {"dep_delay": "dep_delay"})


def test_single_feature_auc_and_predictive(splits):
    _, te = splits
    y = te.is_late
    auc = single_feature_auc(te[["arr_delay", "dep_delay", "distance", "carrier"]], y)
    assert auc["arr_delay"] == 1.0 and 0.8 < auc["dep_delay"] < 0.95 and auc["distance"] < 0.65
    from sklearn.metrics import roc_auc_score
    raw = roc_auc_score(y.astype(int), te.distance)
    assert np.isclose(auc["distance"], max(raw, 1 - raw))
    rep = detect_predictive_features(te[["arr_delay", "dep_delay", "distance", "carrier", "tailnum"]], y)
    assert sorted((f.feature, f.severity) for f in rep.findings) == [("arr_delay", "high"), ("dep_delay", "medium")]
    # a planted copy of the label is caught even as a category
    assert detect_predictive_features(te[["carrier"]].assign(leak=y.map({True: "L", False: "N"})), y).findings[0].feature == "leak"
    with pytest.raises(DataError, match="1 missing labels"):
        single_feature_auc(te[["distance"]], y.astype(float).where(te.index != te.index[0]))
    with pytest.raises(DataError, match="binary with both classes"):
        single_feature_auc(te[["distance"]], np.zeros(len(te)))
    with pytest.raises(ConfigError, match="threshold"):
        detect_predictive_features(te[["distance"]], y, threshold=0.3)


def test_report_roundtrip(tmp_path):
    rep = LeakageReport([Finding("x", "high", "bad", "f", {"n": np.int64(3)})], ["x"]) + LeakageReport([], ["y"])
    assert rep.checks_run == ["x", "y"] and rep.leaky and len(rep.for_check("y")) == 0
    d = json.loads(rep.save(tmp_path / "r.json").read_text())
    assert d["counts"] == {"high": 1, "medium": 0, "low": 0} and d["findings"][0]["evidence"] == {"n": 3}
    assert list(rep.to_frame().columns) == ["check", "severity", "feature", "message", "evidence"]
    with pytest.raises(ConfigError, match="severity='fatal'"):
        Finding("x", "fatal", "m")


def test_leakage_report_quiet_on_store_features_and_loud_on_leaky():
    fl = load_flights(start="2013-05-01", end="2013-05-10")
    feats = build_flight_features(fl, load_weather(start="2013-05-01", end="2013-05-10"), load_planes())
    feats = feats[feats.is_late.notna()].assign(local_date=lambda d: d.sched_dep.dt.tz_convert(NY).dt.date.astype(str))
    known = flight_feature_known_at()
    tr, te = time_split(feats, "sched_dep", cutoff=pd.Timestamp("2013-05-08", tz=NY))
    rep = leakage_report(tr, te, flight_feature_columns(), "is_late", time_col="sched_dep",
                         groups=["tailnum", "local_date"], prediction_time_col="as_of", known_at=known)
    assert len(rep) == 0 and len(rep.checks_run) == 6
    bad = feats.assign(dep_delay=fl.loc[feats.index, "dep_delay"].astype(float)).join(flight_known_at(fl)[["dep_known_at"]])
    btr = bad.sample(frac=0.8, random_state=0)
    rep = leakage_report(btr, bad.drop(btr.index), flight_feature_columns() + ["dep_delay"], "is_late",
                         time_col="sched_dep", groups=["tailnum", "local_date"], prediction_time_col="as_of",
                         known_at={**known, "dep_delay": "dep_known_at"},
                         fitted=StandardScaler().fit(bad[["route_n", "carrier_n"]]))
    assert {f.check for f in rep.findings if f.severity == "high"} >= {
        "time_overlap", "group_leakage", "unavailable_declared", "unavailable_timestamp", "fit_on_test"}
    with pytest.raises(SchemaError, match=r"train lacks column\(s\) \['nope'\]"):
        leakage_report(tr, te, ["nope"], "is_late")


def test_near_duplicates_not_fooled_by_category_scaling():
    "Regression: with category codes scaled by 1e6, brute-force distances lost precision and flagged distinct rows."
    from mlsys.features.leakage import detect_duplicates
    rng = np.random.default_rng(0)
    n = 400
    train = pd.DataFrame({"cat": rng.choice(list("abcdefghij"), n), "x": rng.normal(size=n), "y": rng.normal(size=n), "label": 0})
    far = train.assign(x=train["x"] + 1.0)  # same categories, one standard deviation away: not duplicates
    assert len(detect_duplicates(train, far, ["cat", "x", "y"])) == 0
    near = train.head(50).assign(x=lambda d: d["x"] + 1e-6)  # a hair away: near duplicates
    rep = detect_duplicates(train, near, ["cat", "x", "y"])
    assert rep.findings and rep.findings[0].evidence["near"] == 50
