"Triggers (time, volume, performance on arrived labels, drift) and the champion/challenger workflow on a model store."
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

from mlsys.continual.triggers import (Decision, DriftTrigger, NeverTrigger, PerformanceTrigger, TimeTrigger,
                                      TriggerState, VolumeTrigger, archived, champion_chain, history, history_path,
                                      rollback, start_champion, update)
from mlsys.core import ConfigError, DataError, IntegrityError
from mlsys.deploy.registry import ModelStore, UnknownModelError
from mlsys.monitor.drift import KSDrift

T0 = pd.Timestamp("2013-03-01", tz="UTC")


def _clock(trigger, steps: int, tick: str = "1h", rows_per_tick: int = 0) -> list[pd.Timestamp]:
    last, rows, fired = None, 0, []
    for i in range(steps):
        now = T0 + i * pd.Timedelta(tick)
        if trigger.should_retrain(TriggerState(now, last, rows)).fire:
            fired.append(now); last, rows = now, 0
        rows += rows_per_tick
    return fired


@pytest.mark.parametrize("period", ["12h", "3D", "7D"])
def test_time_trigger_fires_exactly_every_period(period):
    fired = _clock(TimeTrigger(period), 24 * 30, "1h")
    assert fired[0] == T0
    assert set(np.diff(fired)) == {pd.Timedelta(period)}
    assert len(fired) == 24 * 30 // (pd.Timedelta(period) // pd.Timedelta("1h")) + (24 * 30 % (pd.Timedelta(period) // pd.Timedelta("1h")) > 0)


def test_time_trigger_on_a_coarse_clock_fires_at_the_first_tick_past_the_period():
    # decisions once a day, period 36h: every second day (48 h >= 36 h)
    assert set(np.diff(_clock(TimeTrigger("36h"), 20, "1D"))) == {pd.Timedelta("2D")}


def test_volume_trigger_fires_at_n_not_before():
    tr = VolumeTrigger(100)
    last = T0
    assert not tr.should_retrain(TriggerState(T0 + pd.Timedelta("1h"), last, 99)).fire
    assert tr.should_retrain(TriggerState(T0 + pd.Timedelta("1h"), last, 100)).fire
    fired = _clock(VolumeTrigger(100), 200, "1h", rows_per_tick=7)  # 7 * 15 = 105 >= 100 > 98
    assert set(np.diff(fired)) == {pd.Timedelta("15h")}
    assert tr.should_retrain(TriggerState(T0, None, 0)).fire  # no model yet


def test_never_trigger_never_fires():
    assert _clock(NeverTrigger(), 100) == []
    assert not NeverTrigger().should_retrain(TriggerState(T0, T0, 10**9))


@pytest.mark.parametrize("make, match", [
    (lambda: TimeTrigger("weekly"), "period='weekly'"),
    (lambda: TimeTrigger(7), "period=7 is a bare number"),
    (lambda: TimeTrigger("0s"), "period='0s' must be a positive"),
    (lambda: TimeTrigger("-1D"), "period='-1D' must be a positive"),
    (lambda: VolumeTrigger(0), "n must be an integer of at least 1"),
    (lambda: VolumeTrigger(-5), "n must be an integer of at least 1"),
    (lambda: VolumeTrigger(2.5), "n must be an integer"),
    (lambda: VolumeTrigger(True), "n must be an integer"),
    (lambda: PerformanceTrigger(threshold=1.5), r"threshold must be a number in \(0, 1\)"),
    (lambda: PerformanceTrigger(threshold=0.0), r"threshold must be a number in \(0, 1\)"),
    (lambda: PerformanceTrigger(threshold=float("nan")), "threshold must be a number"),
    (lambda: PerformanceTrigger(margin=-0.1), r"margin must be a number in \[0, 1\)"),
    (lambda: PerformanceTrigger(metric="f1", threshold=0.5), "metric must be one of"),
    (lambda: PerformanceTrigger(), "needs a threshold, a margin or both"),
    (lambda: PerformanceTrigger(threshold=0.5, window="soon"), "window='soon'"),
    (lambda: PerformanceTrigger(threshold=0.5, min_labels=0), "min_labels must be an integer of at least 1"),
    (lambda: DriftTrigger(detector="ks"), "detector must be a mlsys.monitor.drift.DriftDetector"),
    (lambda: DriftTrigger(features="temp"), "features must be a list of column names"),
    (lambda: DriftTrigger(min_interval="often"), "min_interval='often'"),
    (lambda: DriftTrigger(min_rows=0), "min_rows must be an integer of at least 1"),
])
def test_bad_configuration_is_a_config_error_naming_it(make, match):
    with pytest.raises(ConfigError, match=match):
        make()


def test_bad_state_is_a_data_error():
    tr = TimeTrigger("1D")
    with pytest.raises(DataError, match="must be a TriggerState"):
        tr.should_retrain({"now": T0})
    with pytest.raises(DataError, match="time zone-aware"):
        tr.should_retrain(TriggerState(pd.Timestamp("2013-03-01"), None))
    with pytest.raises(DataError, match="clock went backwards"):
        tr.should_retrain(TriggerState(T0, T0 + pd.Timedelta("1s")))
    with pytest.raises(DataError, match="rows_since_retrain"):
        VolumeTrigger(5).should_retrain(TriggerState(T0, T0, -1))
    with pytest.raises(DataError, match="state.labels is None"):
        PerformanceTrigger(threshold=0.5).should_retrain(TriggerState(T0, T0))


def _labels(n_right: int, n_wrong: int, right_at, wrong_at, predicted=T0) -> pd.DataFrame:
    "Served predictions: n_right correct ones whose labels arrive at right_at, n_wrong wrong ones arriving at wrong_at."
    y = np.r_[np.ones(n_right), np.ones(n_wrong)]
    s = np.r_[np.full(n_right, 0.9), np.full(n_wrong, 0.1)]
    lt = pd.DatetimeIndex([right_at] * n_right + [wrong_at] * n_wrong)
    return pd.DataFrame({"time": predicted, "label_time": lt, "label": y, "score": s})


def test_performance_trigger_counts_only_labels_that_have_arrived():
    arrive_ok, arrive_bad = T0 + pd.Timedelta("2h"), T0 + pd.Timedelta("10h")
    labels = _labels(300, 900, arrive_ok, arrive_bad)  # accuracy 0.25 once everything is in, 1.0 before the bad ones
    tr = PerformanceTrigger("accuracy", threshold=0.8, window="1D", min_labels=100)
    before = tr.should_retrain(TriggerState(arrive_bad - pd.Timedelta("1s"), T0, labels=labels))
    assert not before.fire and "accuracy 1.0000 on 300 arrived labels" in before.reason
    at = tr.should_retrain(TriggerState(arrive_bad, T0, labels=labels))  # arrived AT the decision time: counts
    assert at.fire and "1200 arrived labels" in at.reason
    # too few arrived: no decision
    assert "only 0 labels arrived" in tr.should_retrain(TriggerState(arrive_ok - pd.Timedelta("1s"), T0, labels=labels)).reason


def test_performance_trigger_ignores_the_previous_champion_and_old_predictions():
    labels = _labels(0, 500, T0 + pd.Timedelta("1h"), T0 + pd.Timedelta("1h"))  # all wrong, predicted at T0
    tr = PerformanceTrigger("accuracy", threshold=0.8, window="1D", min_labels=100)
    now = T0 + pd.Timedelta("2h")
    assert tr.should_retrain(TriggerState(now, T0, labels=labels)).fire
    assert not tr.should_retrain(TriggerState(now, T0 + pd.Timedelta("1s"), labels=labels)).fire  # made by the old champion
    far = T0 + pd.Timedelta("3D")
    assert not tr.should_retrain(TriggerState(far, T0, labels=labels)).fire  # outside the 1-day window


def test_performance_trigger_margin_and_auc():
    rng = np.random.default_rng(0)
    y = rng.random(2000) < 0.3
    s = np.where(y, rng.beta(3, 2, 2000), rng.beta(2, 3, 2000))
    labels = pd.DataFrame({"time": T0, "label_time": T0 + pd.Timedelta("1h"), "label": y.astype(float), "score": s})
    from sklearn.metrics import roc_auc_score
    auc = roc_auc_score(y, s)
    tr = PerformanceTrigger("roc_auc", margin=0.05, window="1D")
    now = T0 + pd.Timedelta("2h")
    assert not tr.should_retrain(TriggerState(now, T0, labels=labels, baseline=auc + 0.049)).fire
    d = tr.should_retrain(TriggerState(now, T0, labels=labels, baseline=auc + 0.051))
    assert d.fire and f"{auc:.4f}" in d.reason
    with pytest.raises(DataError, match="state.baseline"):
        tr.should_retrain(TriggerState(now, T0, labels=labels))


def test_performance_trigger_refuses_naive_label_times():
    labels = _labels(200, 0, T0, T0).assign(label_time=pd.Timestamp("2013-03-01"))
    with pytest.raises(DataError, match="time zone-aware"):
        PerformanceTrigger(threshold=0.5).should_retrain(TriggerState(T0, T0, labels=labels))


def _frame(rng, n, shift=0.0):
    return pd.DataFrame({"a": rng.normal(shift, 1, n), "b": rng.normal(0, 1, n)})


def test_drift_trigger_keeps_alpha_without_a_shift_and_fires_on_a_planted_one():
    # each draw: a fresh reference and window from the same distribution (one feature, no correction)
    rng = np.random.default_rng(2)
    alpha, draws = 0.1, 200
    tr = DriftTrigger(KSDrift(alpha=alpha, correction=None), min_rows=10)
    ago = T0 - pd.Timedelta("1D")
    fires = sum(tr.should_retrain(TriggerState(T0, ago, recent=_frame(rng, 97)[["a"]], reference=_frame(rng, 113)[["a"]])).fire
                for _ in range(draws))
    # the exact two-sample KS test is discrete, so its level is at most alpha: within a binomial tolerance of it
    lo, hi = stats.binom.ppf([0.001, 0.999], draws, alpha)
    assert 0.5 * lo <= fires <= hi
    ref = _frame(rng, 300)
    shifted = [tr.should_retrain(TriggerState(T0, ago, recent=_frame(rng, 200, 0.5)[["a"]], reference=ref[["a"]]))
               for _ in range(20)]
    assert all(d.fire for d in shifted) and "drift in a" in shifted[0].reason


def test_drift_trigger_refits_on_a_new_reference_and_waits_min_interval():
    rng = np.random.default_rng(3)
    shifted = _frame(rng, 300, 1.0)
    tr = DriftTrigger(KSDrift(alpha=0.01), min_rows=50, min_interval="2D")
    assert tr.should_retrain(TriggerState(T0, T0 - pd.Timedelta("3D"), recent=shifted, reference=_frame(rng, 300))).fire
    assert not tr.should_retrain(TriggerState(T0, T0 - pd.Timedelta("1D"), recent=shifted, reference=_frame(rng, 300))).fire
    # after a retrain on the shifted data, the same window is no drift
    assert not tr.should_retrain(TriggerState(T0, T0 - pd.Timedelta("3D"), recent=_frame(rng, 300, 1.0), reference=shifted)).fire
    assert "only 10 recent rows" in tr.should_retrain(TriggerState(T0, T0 - pd.Timedelta("3D"), recent=shifted[:10], reference=shifted)).reason
    with pytest.raises(DataError, match="state.reference"):
        tr.should_retrain(TriggerState(T0, T0, recent=shifted))
    with pytest.raises(DataError, match=r"state.recent lacks column \['zzz'\]"):
        DriftTrigger(features=["a", "zzz"]).should_retrain(TriggerState(T0, T0 - pd.Timedelta("3D"), recent=shifted, reference=shifted))


def test_decision_is_truthy():
    assert Decision(True, "x") and not Decision(False, "y")


# --- the update workflow -------------------------------------------------------------------------------------------

def _data(rng, n):
    X = pd.DataFrame(rng.normal(size=(n, 3)), columns=["x0", "x1", "x2"])
    y = (X["x0"] + 0.5 * X["x1"] + rng.normal(0, 0.5, n)) > 0
    return X, y.to_numpy()


class Planted:
    "A retrainer whose challenger is planted: 'good' fits the data, 'bad' predicts the prior; it records what it was given."
    def __init__(self, kind):
        self.kind, self.seen = kind, []

    def initial(self, X, y):
        return LogisticRegression().fit(X[["x1"]].assign(x0=0.0, x2=0.0)[["x0", "x1", "x2"]], y), {"cpu_seconds": 0.01, "rows": len(X)}

    def retrain(self, model, X_new, y_new, X_window, y_window):
        self.seen.append(model)
        m = LogisticRegression().fit(X_window, y_window) if self.kind == "good" else DummyClassifier(strategy="prior").fit(X_window, y_window)
        return m, {"cpu_seconds": 0.02, "wall_seconds": 0.02, "rows": len(X_window)}


@pytest.fixture
def store(tmp_path):
    rng = np.random.default_rng(0)
    st = ModelStore(tmp_path / "store")
    X, y = _data(rng, 400)
    start_champion(st, "m", Planted("good"), X, y)
    return st, rng


def test_a_better_challenger_is_promoted_and_recorded(store):
    st, rng = store
    (X, y), (Xe, ye) = _data(rng, 400), _data(rng, 300)
    before = st.get("m", "champion")
    champ_pred = st.load("m", "champion").predict_proba(Xe)
    r = Planted("good")
    out = update(st, "m", r, X, y, X, y, Xe, ye)
    assert out.promoted and out.challenger_score > out.champion_score
    assert st.get("m", "champion").version == out.version == before.version + 1
    # the champion handed to the retrainer was a loaded copy, never the stored one changed
    assert st.get("m", before.version).sha256 == before.sha256
    np.testing.assert_allclose(st.load("m", before.version).predict_proba(Xe), champ_pred)
    with pytest.raises(UnknownModelError, match="no alias 'challenger'"):
        st.get("m", "challenger")  # the trial is over
    h = history(st, "m")
    assert h["event"].tolist() == ["champion", "challenger", "promote"]
    assert h.iloc[-1]["version"] == out.version and h.iloc[-1]["champion_before"] == before.version
    assert out.cost["cpu_seconds"] == 0.02 and st.get("m", out.version).metrics["cost_cpu_seconds"] == 0.02


def test_a_worse_challenger_is_archived_with_its_reason(store):
    st, rng = store
    (X, y), (Xe, ye) = _data(rng, 400), _data(rng, 300)
    update(st, "m", Planted("good"), X, y, X, y, Xe, ye)
    champ = st.get("m", "champion").version
    out = update(st, "m", Planted("bad"), X, y, X, y, Xe, ye)
    assert not out.promoted and st.get("m", "champion").version == champ == out.champion_after
    a = archived(st, "m")
    assert a["version"].tolist() == [out.version]
    assert f"v{champ} stays champion" in a.iloc[0]["reason"] and "0.5000" in a.iloc[0]["reason"]
    assert st.get("m", out.version).tags["stage"] == "challenger"  # registered, then archived
    assert history(st, "m")["event"].tolist()[-2:] == ["challenger", "archive"]


def test_the_online_check_can_veto_and_is_only_asked_after_an_offline_win(store):
    st, rng = store
    (X, y), (Xe, ye) = _data(rng, 400), _data(rng, 300)
    asked = []
    def veto(champion, challenger):
        asked.append((champion, challenger))
        return False, "canary: error rate 3% over budget"
    out = update(st, "m", Planted("good"), X, y, X, y, Xe, ye, online_check=veto)
    assert not out.promoted and len(asked) == 1 and "canary: error rate" in out.reason
    assert archived(st, "m").iloc[-1]["reason"] == "online check failed: canary: error rate 3% over budget"
    update(st, "m", Planted("bad"), X, y, X, y, Xe, ye, online_check=veto)
    assert len(asked) == 1  # an offline loser is not sent to production
    ok = update(st, "m", Planted("good"), X, y, X, y, Xe, ye, online_check=lambda a, b: (True, "canary within budget"))
    assert ok.promoted and ok.online == "canary within budget"


def test_rollback_restores_the_previous_champion_and_is_recorded(store):
    st, rng = store
    (X, y), (Xe, ye) = _data(rng, 400), _data(rng, 300)
    v1 = st.get("m", "champion").version
    v2 = update(st, "m", Planted("good"), X, y, X, y, Xe, ye).version
    update(st, "m", Planted("bad"), X, y, X, y, Xe, ye)  # archived: not a champion
    v4 = update(st, "m", Planted("good"), X, y, X, y, Xe, ye, min_gain=-1.0).version  # promoted (tolerates a tie)
    assert champion_chain(st, "m") == [v1, v2, v4]
    assert rollback(st, "m", reason="bad canary").version == v2
    assert st.get("m", "champion").version == v2
    assert rollback(st, "m").version == v1
    with pytest.raises(ConfigError, match="only one recorded champion"):
        rollback(st, "m")
    h = history(st, "m")
    rb = h[h["event"] == "rollback"]
    assert rb["version"].tolist() == [v2, v1] and rb["champion_before"].tolist() == [v4, v2]
    assert rb.iloc[0]["reason"] == "bad canary"


def test_rollback_refuses_an_alias_moved_outside_the_workflow(store):
    st, rng = store
    (X, y), (Xe, ye) = _data(rng, 400), _data(rng, 300)
    update(st, "m", Planted("good"), X, y, X, y, Xe, ye)
    st.set_alias("m", "champion", 1)
    with pytest.raises(IntegrityError, match="moved outside this workflow"):
        rollback(st, "m")


def test_an_alias_pointing_to_no_model_is_a_clear_error(tmp_path):
    rng = np.random.default_rng(0)
    st = ModelStore(tmp_path / "s")
    X, y = _data(rng, 200)
    with pytest.raises(UnknownModelError, match="has no model 'm'"):
        update(st, "m", Planted("good"), X, y, X, y, X, y)
    st.register("m", LogisticRegression().fit(X, y))
    with pytest.raises(UnknownModelError, match="has no alias 'champion'"):
        update(st, "m", Planted("good"), X, y, X, y, X, y)
    with pytest.raises(ConfigError, match="no recorded champion"):
        rollback(st, "m")
    start_champion(st, "m2", Planted("good"), X, y)
    with pytest.raises(ConfigError, match="already has a champion"):
        start_champion(st, "m2", Planted("good"), X, y)


def test_evaluation_data_is_checked(store):
    st, rng = store
    X, y = _data(rng, 200)
    with pytest.raises(DataError, match="same number"):
        update(st, "m", Planted("good"), X, y, X, y, X, y[:10])
    with pytest.raises(DataError, match="all one class"):
        update(st, "m", Planted("good"), X, y, X, y, X, np.ones(len(X), bool))
    with pytest.raises(ConfigError, match="metric must be one of"):
        update(st, "m", Planted("good"), X, y, X, y, X, y, metric="f1")


def test_a_damaged_history_is_an_integrity_error(store):
    st, _ = store
    with open(history_path(st, "m"), "ab") as fh:
        fh.write(b'{"event": "prom')
    with pytest.raises(IntegrityError, match="line 2 is not JSON"):
        history(st, "m")


_WRITER = textwrap.dedent("""
    import sys
    from mlsys.continual.triggers import record_event
    from mlsys.deploy.registry import ModelStore
    st, tag = ModelStore(sys.argv[1]), sys.argv[2]
    print("ready", flush=True)
    for i in range(int(sys.argv[3])):
        record_event(st, "m", "promote", version=i, reason=tag + " " + "x" * 2000)
""")


def test_history_writers_in_parallel_lose_nothing_and_killed_ones_leave_whole_lines(tmp_path):
    root = tmp_path / "s"
    ModelStore(root)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    start = lambda tag, n: subprocess.Popen([sys.executable, "-c", _WRITER, str(root), tag, str(n)], stdout=subprocess.PIPE, env=env)
    writers = [start(f"w{k}", 25) for k in range(2)]
    victims = [start(f"k{k}", 100_000) for k in range(2)]
    rng = np.random.default_rng(0)
    for p in victims:  # SIGKILL each at a random moment while it (and the others) write
        assert p.stdout.readline().strip() == b"ready"
        try:
            p.wait(timeout=float(rng.uniform(0.05, 0.5)))
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGKILL)
        p.wait(timeout=60)
        history(ModelStore(root), "m")  # parses after every kill
    for p in writers:
        assert p.wait(timeout=120) == 0
    h = history(ModelStore(root), "m")
    assert (h["reason"].str.len() == 2003).all()  # every line whole
    assert h["reason"].str[:2].value_counts()[["w0", "w1"]].tolist() == [25, 25]  # no writer lost an event
