"""mlsys.monitor.metrics: windowed metrics equal direct computation over generated logs; label delay; bad input."""
import numpy as np
import pandas as pd
import pytest

from mlsys.core import ConfigError, DataError
from mlsys.monitor.metrics import (SLO, accuracy_by_window, error_budget, feature_distribution, join_labels,
                                   labels_after, operational_metrics, prediction_distribution, time_per_1000, uptime,
                                   window_width)

T0 = pd.Timestamp("2024-03-31 00:00", tz="UTC")


def random_log(rng, n=None, width=pd.Timedelta("1h")):
    n = int(rng.integers(1, 400)) if n is None else n
    span = float(rng.uniform(0.01, 30)) * width.total_seconds()  # up to 30 windows
    ts = T0 + pd.to_timedelta(np.sort(rng.uniform(0, span, n)), unit="s")
    lat = rng.lognormal(2, 1, n).astype(rng.choice(["float64", "float32"]))
    lat[rng.random(n) < 0.1] = 5.0  # ties
    return pd.DataFrame({"timestamp": ts, "latency_ms": lat,
                         "status": rng.choice([200, 200, 200, 404, 500, 503], n),
                         "model_version": rng.choice(["v1", "v2"], n),
                         "prediction_id": [f"id{i}" for i in rng.permutation(n)]})


def direct(log, width):
    "The per-window numbers computed one window at a time."
    start = log["timestamp"].min().floor(width)
    out = {}
    t = start
    while t <= log["timestamp"].max():
        w = log[(log["timestamp"] >= t) & (log["timestamp"] < t + width)]
        out[t] = w
        t += width
    return out


def test_operational_metrics_equal_direct_computation():
    rng = np.random.default_rng(0)
    for _ in range(60):
        width = pd.Timedelta(rng.choice(["10min", "1h", "6h"]))
        log = random_log(rng, width=width)
        ops = operational_metrics(log, width, percentiles=(50, 99, 100))
        ref = direct(log, width)
        assert list(ops.index) == list(ref)
        for t, w in ref.items():
            row = ops.loc[t]
            assert row["requests"] == len(w)
            assert row["errors"] == int((w["status"] >= 500).sum())
            assert row["throughput_rps"] == pytest.approx(len(w) / width.total_seconds())
            if len(w):
                lat = w["latency_ms"].astype("float64").to_numpy()
                assert row["latency_p99_ms"] == pytest.approx(np.percentile(lat, 99))
                assert row["latency_p100_ms"] == pytest.approx(lat.max())
                assert row["error_rate"] == pytest.approx((w["status"] >= 500).mean())
            else:
                assert np.isnan(row["latency_p50_ms"]) and np.isnan(row["error_rate"])


def test_error_budget_and_uptime_equal_direct_computation():
    rng = np.random.default_rng(1)
    for _ in range(40):
        log = random_log(rng, width=pd.Timedelta("3h"))
        slo = SLO(objective=float(rng.choice([0.9, 0.99, 0.999])), latency_ms=rng.choice([None, 10.0]),
                  period=rng.choice([None, "1D"]))
        b = error_budget(log, slo, "1h")
        good = (log["status"] < 500) & ((log["latency_ms"] <= slo.latency_ms) if slo.latency_ms else True)
        for t in b.index[rng.integers(0, len(b), 5)]:
            p0 = t.floor("1D") if slo.period else log["timestamp"].min().floor("1h")
            upto = (log["timestamp"] >= p0) & (log["timestamp"] < t + pd.Timedelta("1h"))
            if upto.sum():
                spent = (~good[upto]).sum() / ((1 - slo.objective) * upto.sum())
                assert b.loc[t, "budget_spent"] == pytest.approx(spent)
            inw = (log["timestamp"] >= t) & (log["timestamp"] < t + pd.Timedelta("1h"))
            assert b.loc[t, "bad"] == int((~good[inw]).sum())
            if inw.sum():
                assert b.loc[t, "burn_rate"] == pytest.approx((~good[inw]).mean() / (1 - slo.objective))
        up = uptime(log, slo, "1D", "10min")
        per = (~good).groupby(log["timestamp"].dt.floor("10min")).mean()
        for day, grp in per.groupby(per.index.floor("1D")):
            assert up.loc[day, "active"] == len(grp)
            assert up.loc[day, "down"] == int((grp > 0.5).sum())
            assert up.loc[day, "idle"] == 144 - len(grp)


def predictions_and_labels(rng, n):
    log = random_log(rng, n)
    preds = log[["prediction_id", "timestamp"]].assign(score=rng.random(n))
    preds.loc[preds.index[: n // 10], "score"] = 0.5  # ties at the threshold
    delay = pd.to_timedelta(rng.exponential(3, n), unit="h").to_series().reset_index(drop=True)
    delay[rng.random(n) < 0.2] = pd.NaT  # never labelled
    labels = labels_after(preds, rng.integers(0, 2, n), delay.to_numpy())
    return preds, labels.sample(frac=1, random_state=0)  # labels arrive in any order


def test_accuracy_by_window_equals_direct_computation():
    rng = np.random.default_rng(2)
    for _ in range(40):
        preds, labels = predictions_and_labels(rng, int(rng.integers(1, 300)))
        lag = pd.Timedelta(rng.choice(["0s", "2h", "1D"]))
        acc = accuracy_by_window(preds, labels, "6h", lag=lag)
        lab = labels.set_index("prediction_id")
        for t, row in acc.iterrows():
            w = preds[preds["timestamp"].dt.floor("6h") == t]
            known = lab.reindex(w["prediction_id"])
            arrived = (known["label_time"] <= t + pd.Timedelta("6h") + lag).to_numpy()
            assert row["predictions"] == len(w) and row["labelled"] == int(arrived.sum())
            assert row["coverage"] == pytest.approx(arrived.mean())
            if arrived.any():
                y, s = known["label"].to_numpy()[arrived], w["score"].to_numpy()[arrived]
                assert row["accuracy"] == pytest.approx(((s >= 0.5) == (y == 1)).mean())
                assert row["brier"] == pytest.approx(((s - y) ** 2).mean())
            else:
                assert np.isnan(row["accuracy"])


def test_distributions_equal_direct_computation():
    rng = np.random.default_rng(3)
    for _ in range(20):
        preds, _ = predictions_and_labels(rng, int(rng.integers(2, 300)))
        d = prediction_distribution(preds, "12h")
        for t, row in d.iterrows():
            s = preds.loc[preds["timestamp"].dt.floor("12h") == t, "score"]
            assert row["predictions"] == len(s)
            assert row["p90"] == pytest.approx(np.percentile(s, 90))
            assert row["positive_rate"] == pytest.approx((s >= 0.5).mean())
        frame = preds.assign(x=rng.normal(size=len(preds)), c=rng.choice(["a", "b", "é", ""], len(preds)))
        frame.loc[frame.index[::7], "x"] = np.nan
        fd = feature_distribution(frame, ["x", "c"], "12h").set_index(["window", "feature"])
        for t, w in frame.groupby(frame["timestamp"].dt.floor("12h")):
            assert fd.loc[(t, "x"), "null_fraction"] == pytest.approx(w["x"].isna().mean())
            if w["x"].notna().any():
                assert fd.loc[(t, "x"), "p50"] == pytest.approx(w["x"].median())
            vc = w["c"].value_counts(normalize=True)
            assert fd.loc[(t, "c"), "top_share"] == pytest.approx(vc.iloc[0])
            assert fd.loc[(t, "c"), "values"] == w["c"].nunique()


def test_bad_input_is_named():
    rng = np.random.default_rng(4)
    log = random_log(rng, 50)
    preds, labels = predictions_and_labels(rng, 50)
    for col in ["timestamp", "latency_ms", "status", "model_version", "prediction_id"]:
        with pytest.raises(DataError, match=col):
            operational_metrics(log.drop(columns=col))
    for w in ["0s", "-1h", "soon", None]:
        with pytest.raises(DataError, match="window"):
            operational_metrics(log, w)
    with pytest.raises(DataError, match="zero"):
        accuracy_by_window(preds, labels, "0min")
    with pytest.raises(DataError, match="no rows"):
        operational_metrics(log.head(0))
    with pytest.raises(DataError, match="time zone"):
        operational_metrics(log.assign(timestamp=log["timestamp"].dt.tz_localize(None)))
    with pytest.raises(DataError, match="latency_ms"):
        operational_metrics(log.assign(latency_ms=np.where(np.arange(50) == 3, np.nan, 1.0)))
    with pytest.raises(DataError, match="latency_ms"):
        operational_metrics(log.assign(latency_ms=-1.0))
    with pytest.raises(DataError, match="HTTP status"):
        error_budget(log.assign(status="ok"))
    with pytest.raises(DataError, match="negative"):
        labels_after(preds, np.ones(50), "-1min")
    with pytest.raises(DataError, match="negative"):
        labels_after(preds, np.ones(50), np.array([pd.Timedelta("1h")] * 49 + [pd.Timedelta("-1s")]))
    with pytest.raises(DataError, match="before their prediction"):
        join_labels(preds, labels.assign(label_time=labels["label_time"] - pd.Timedelta("30D")))
    with pytest.raises(DataError, match="negative"):
        accuracy_by_window(preds, labels, lag="-1h")
    with pytest.raises(DataError, match="repeats"):
        join_labels(preds, pd.concat([labels, labels.head(1)]))
    with pytest.raises(DataError, match="outside"):
        join_labels(preds.assign(score=2.0), labels)
    with pytest.raises(DataError, match="label"):
        join_labels(preds, labels.assign(label=7))
    with pytest.raises(DataError, match="missing"):
        join_labels(preds, labels.assign(label=np.nan))
    for bad in (["late"] * 50, [0.5] * 50, [2] * 50):
        with pytest.raises(DataError, match="0/1"):
            labels_after(preds, bad, "1h")
    got = labels_after(preds, pd.Series([True, False] * 24 + [pd.NA, pd.NA], dtype="boolean"), "1h")
    assert len(got) == 48 and set(got["label"]) == {0, 1}
    with pytest.raises(DataError, match="one value per prediction"):
        labels_after(preds, np.ones(3), "1h")
    with pytest.raises(DataError, match="multiple"):
        uptime(log, SLO(), "1h", "7min")
    with pytest.raises(DataError, match="feature"):
        feature_distribution(preds, [], "1h")
    with pytest.raises(DataError, match="nope"):
        feature_distribution(preds, ["nope"], "1h")
    with pytest.raises(ConfigError, match="objective"):
        SLO(objective=1)
    with pytest.raises(ConfigError, match="latency_ms"):
        SLO(latency_ms=0)
    with pytest.raises(DataError, match="zero"):
        SLO(period="0D")
    with pytest.raises(ConfigError, match="percentiles"):
        operational_metrics(log, "1h", percentiles=(50, 120))
    with pytest.raises(DataError, match="n_requests"):
        time_per_1000(lambda: None, 0)
    assert window_width("90min") == pd.Timedelta("90min")
