"""mlsys.monitor.online: differential tests against river, the ERT calibration on real data, bad input."""
import math

import numpy as np
import pytest

from mlsys.core import ConfigError, DataError
from mlsys.monitor.online import (
    ADWIN, DDM, LSDDDriftOnline, MMDDriftOnline, PageHinkley, delay_and_false_alarms, ert_thresholds, tolerance_f1)

drift = pytest.importorskip("river.drift")


def _river(det, xs):
    out = []
    for i, x in enumerate(xs):
        det.update(x)
        if det.drift_detected:
            out.append(i)
    return out


def _streams(seed=0, n_cases=120):
    "Generated streams: binary error streams with a rate change, Gaussian mean/scale shifts, rounded (tied) values."
    rng = np.random.default_rng(seed)
    for case in range(n_cases):
        n, kind = int(rng.integers(40, 2500)), case % 4
        cp = int(rng.integers(1, n))
        if kind == 0:
            p0, p1 = rng.uniform(0, 0.5, 2)
            xs = np.r_[rng.random(cp) < p0, rng.random(n - cp) < p1].astype(int)
        elif kind == 1:
            xs = np.r_[rng.normal(0, 1, cp), rng.normal(rng.normal(0, 1), rng.uniform(0.2, 2), n - cp)]
        elif kind == 2:
            xs = np.round(np.r_[rng.normal(0, 1, cp), rng.normal(1, 1, n - cp)], 1)
        else:  # constant stretches, float32 values, large offsets
            xs = np.r_[np.zeros(cp), np.full(n - cp, 3.0)].astype(np.float32) + 1e4 * (case % 2)
        yield kind, xs


def test_ddm_equals_river():
    checked = 0
    for kind, xs in _streams(1, 200):
        if kind != 0:
            continue
        ints = [int(v) for v in xs]
        assert DDM().run(ints).tolist() == _river(drift.binary.DDM(), ints)
        assert DDM(warm_start=5, drift_threshold=2.5).run(ints).tolist() == _river(
            drift.binary.DDM(warm_start=5, drift_threshold=2.5), ints)
        checked += 1
    assert checked >= 40


def test_page_hinkley_equals_river():
    for _, xs in _streams(2):
        xl = [float(v) for v in xs]
        assert PageHinkley().run(xl).tolist() == _river(drift.PageHinkley(), xl)
        for mode in ("up", "down"):
            kw = dict(threshold=5.0, delta=0.01, mode=mode, alpha=0.999)
            assert PageHinkley(**kw).run(xl).tolist() == _river(drift.PageHinkley(**kw), xl)


def test_adwin_with_reset_equals_river_and_the_paper_agrees_until_the_first_detection():
    for _, xs in _streams(3):
        xl = [float(v) for v in xs]
        ref = _river(drift.ADWIN(), xl)
        assert ADWIN(reset_on_drift=True).run(xl).tolist() == ref
        assert ADWIN().run(xl).tolist()[:1] == ref[:1]  # they differ only in what is kept after a detection
        kw = dict(delta=0.05, clock=1, max_buckets=3, min_window_length=2, grace_period=3)
        assert ADWIN(reset_on_drift=True, **kw).run(xl).tolist() == _river(drift.ADWIN(**kw), xl)


def test_adwin_paper_keeps_the_recent_window_river_empties_it():
    xs = [0.0] * 1000 + [1.0] * 200
    paper, reset = ADWIN(), ADWIN(reset_on_drift=True)
    paper.run(xs); reset.run(xs)
    assert paper.detections_[0] == reset.detections_[0]
    assert paper.width_ > reset.width_  # river's window restarted after its last detection


def test_detections_are_recorded_and_run_counts_from_its_start():
    ph = PageHinkley(threshold=5)
    first = ph.run([0.0] * 100 + [5.0] * 50)
    second = ph.run([5.0] * 50 + [0.0] * 100)  # the state carries over: a stream continues
    assert len(first) and len(second)
    assert ph.detections_ == first.tolist() + (second + 150).tolist()
    assert ph.n_seen_ == 300
    assert type(ph)(**ph.get_params()).get_params() == ph.get_params()


@pytest.fixture(scope="module")
def rain_pre():
    from mlsys.datasets import load_rainfall
    d = load_rainfall()
    X = d[[c for c in d.columns if c not in ("day", "rain")]].to_numpy()[:12000]  # before the documented drift
    return X[np.random.default_rng(0).permutation(len(X))]


@pytest.mark.parametrize("cls", [MMDDriftOnline, LSDDDriftOnline])
def test_run_length_under_no_drift_is_near_the_target(cls, rain_pre):
    "Bootstrap streams from the real (pre-change) rainfall rows: the mean gap between detections is about ERT."
    ert = 40
    det = cls(ert=ert, window_size=8, n_bootstraps=1500, seed=3).fit(rain_pre[:500])
    pool = rain_pre[500:]
    hits = det.run(pool[np.random.default_rng(4).integers(0, len(pool), 6000)])
    runs = np.diff(np.r_[-1, hits])
    assert len(runs) > 60
    # geometric run lengths: sd ~ ERT, so the mean of len(runs) runs has a standard error ~ ERT / sqrt(runs)
    assert abs(runs.mean() - ert) < 3.5 * ert / math.sqrt(len(runs)), runs.mean()


@pytest.mark.parametrize("cls", [MMDDriftOnline, LSDDDriftOnline])
def test_kernel_detectors_see_a_real_shift(cls, rain_pre):
    det = cls(ert=200, window_size=20, n_bootstraps=1000).fit(rain_pre[:600])
    shifted = rain_pre[600:1400].copy()
    shifted[:, 0] += 1.5  # temperature 1.5 sd higher
    assert det.run(shifted)[0] < 100


def test_ert_thresholds_memoryless_rate():
    rng = np.random.default_rng(0)
    stats = rng.normal(size=(20000, 5))  # independent steps: every threshold is the 1 - 1/ert quantile
    th = ert_thresholds(stats, 20)
    np.testing.assert_allclose(th, 1.6449, atol=0.06)
    with pytest.raises(ConfigError, match="n_bootstraps"):
        ert_thresholds(stats[:30], 100)


def test_incremental_mmd_equals_the_direct_statistic(rain_pre):
    det = MMDDriftOnline(ert=10, window_size=6, n_bootstraps=100, seed=0).fit(rain_pre[:200])
    Z = lambda X: (X - det.mean_) / det.scale_  # noqa: E731
    sig = det.sigma_
    k = lambda A, B: np.exp(-((A[:, None] - B[None]) ** 2).sum(-1) / (2 * sig**2))  # noqa: E731
    for x in rain_pre[300:340]:
        ref = det._refZ
        if det.update(x):
            continue
        win = det._win
        R, W = len(ref), len(win)
        direct = ((k(ref, ref).sum() - R) / (R * (R - 1)) + (k(win, win).sum() - W) / (W * (W - 1))
                  - 2 * k(ref, win).mean())
        assert math.isclose(det.statistic_, direct, rel_tol=1e-9, abs_tol=1e-12)
        assert np.allclose(win[(det._pos - 1) % W], Z(x))


def test_evaluation_helpers():
    assert delay_and_false_alarms([5, 120, 130], 100, 200) == {
        "false_alarms": 1, "false_alarms_per_1000": 10.0, "delay": 20, "detections_after": 2}
    assert delay_and_false_alarms([5], 100, 200)["delay"] is None
    f = tolerance_f1([10, 12, 205], [10, 200], margin=5)
    assert (f["precision"], f["recall"]) == (2 / 3, 1.0)
    with pytest.raises(ConfigError, match="change_at"):
        delay_and_false_alarms([], 300, 200)


@pytest.fixture(scope="module")
def small_mmd(rain_pre):
    return MMDDriftOnline(ert=20, window_size=5, n_bootstraps=200).fit(rain_pre[:100])


@pytest.mark.parametrize("bad, match", [
    (float("nan"), "NaN"), (float("inf"), "infinite"), ("3", "number"), (None, "number")])
def test_univariate_bad_values(bad, match):
    for det in (DDM(), PageHinkley(), ADWIN()):
        with pytest.raises(DataError, match=match):
            det.update(bad)
    with pytest.raises(DataError, match="0 \\(correct\\) or 1"):
        DDM().update(0.5)


def test_multivariate_bad_points(small_mmd, rain_pre):
    x = rain_pre[500]
    with pytest.raises(DataError, match="9 feature"):
        small_mmd.update(np.r_[x, 1.0])
    with pytest.raises(DataError, match="NaN"):
        small_mmd.update(np.where(np.arange(8) == 2, np.nan, x))
    with pytest.raises(DataError, match="one row"):
        small_mmd.update(rain_pre[:2])
    with pytest.raises(DataError, match="not a numeric row"):
        small_mmd.update(["a"] * 8)
    n = small_mmd.n_seen_
    small_mmd.update(x)
    assert small_mmd.n_seen_ == n + 1  # refused points were not counted


def test_bad_reference():
    X = np.random.default_rng(0).normal(size=(300, 3))
    with pytest.raises(DataError, match="needs at least"):
        MMDDriftOnline(window_size=50).fit(X[:100])
    with pytest.raises(DataError, match="NaN"):
        MMDDriftOnline(window_size=5, ert=10, n_bootstraps=100).fit(np.where(X == X[7, 1], np.nan, X))
    with pytest.raises(DataError, match="2-D"):
        LSDDDriftOnline(window_size=5, ert=10, n_bootstraps=100).fit(X[:, 0])
    with pytest.raises(DataError, match="identical"):
        MMDDriftOnline(window_size=5, ert=10, n_bootstraps=100).fit(np.ones((100, 3)))
    with pytest.raises(Exception, match="not fitted"):
        MMDDriftOnline().update(X[0])


@pytest.mark.parametrize("make, match", [
    (lambda: MMDDriftOnline(window_size=0), "window_size"),
    (lambda: LSDDDriftOnline(window_size=-3), "window_size"),
    (lambda: MMDDriftOnline(window_size=2.5), "window_size"),
    (lambda: MMDDriftOnline(ert=0), "ert"),
    (lambda: LSDDDriftOnline(ert=-10), "ert"),
    (lambda: MMDDriftOnline(ert=float("nan")), "ert"),
    (lambda: MMDDriftOnline(ert=1000, n_bootstraps=500), "n_bootstraps"),
    (lambda: MMDDriftOnline(window_size=50, n_reference=100), "n_reference"),
    (lambda: LSDDDriftOnline(lambda_rd_max=0), "lambda_rd_max"),
    (lambda: ADWIN(delta=0), "delta"),
    (lambda: ADWIN(clock=0), "clock"),
    (lambda: PageHinkley(mode="sideways"), "mode"),
    (lambda: PageHinkley(alpha=1.5), "alpha"),
    (lambda: DDM(warning_threshold=3, drift_threshold=2), "drift_threshold"),
])
def test_bad_parameters(make, match):
    with pytest.raises(ConfigError, match=match):
        make()


def test_dataframe_reference_checks_names_of_rows_and_series():
    import pandas as pd
    rng = np.random.default_rng(1)
    ref = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"]).assign(flag=rng.random(200) < 0.5)
    det = LSDDDriftOnline(ert=10, window_size=5, n_bootstraps=100).fit(ref)  # a bool column is a number
    assert det.feature_names_in_ == ["a", "b", "c", "flag"]
    det.update(ref.iloc[0])
    det.update(ref.iloc[[1]])
    with pytest.raises(DataError, match="fields"):
        det.update(ref.iloc[0].rename({"a": "z"}))
    with pytest.raises(DataError, match="columns"):
        det.update(ref.iloc[[1]].rename(columns={"b": "y"}))
    with pytest.raises(DataError, match="non-numeric"):
        LSDDDriftOnline(ert=10, window_size=5, n_bootstraps=100).fit(ref.assign(s="x"))
    with pytest.raises(DataError, match="not a numeric row"):
        det.update([[1.0, 2.0], [3.0]])
    assert det.n_seen_ == 2


def test_one_feature_detector_takes_scalars():
    x = np.random.default_rng(2).normal(size=(300, 1))
    det = MMDDriftOnline(ert=20, window_size=5, n_bootstraps=200).fit(x)
    assert isinstance(det.update(0.3), bool) and isinstance(det.update(np.float32(0.1)), bool)
    assert det.n_seen_ == 2
