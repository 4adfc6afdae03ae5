"""The run report's checks, readings and page on small planted examples: each number against a hand count or scikit-learn, each sentence against the numbers it states."""
import json
import re

import matplotlib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from mlsys.core import ConfigError, DataError, save_json
from mlsys.report.checks import (average_precision, best_threshold, calibration_summary, calibration_table, cost_threshold,
                                 importance_table, model_checks, operating_point, paired_bootstrap, plot_calibration, plot_curves, pr_points,
                                 rate_shift, shift_table, slice_metrics)
from mlsys.report.run import (append_history, history_entry, previous_runs, read_history, render_run_report, run_environment,
                              write_run_report)
from mlsys.report.text import (html_table, interpret_baselines, interpret_calibration, interpret_metrics, interpret_operating_point,
                               interpret_selection, interpret_shift, interpret_slices, report_sections, summarize)

matplotlib.use("Agg")


# --- precision-recall -------------------------------------------------------------------------------------------------

def test_constant_scorer_pr_curve_is_the_flat_line_at_the_positive_rate():
    y = np.array([1, 0, 0, 0, 1, 0, 0, 0, 0, 0] * 3, bool)
    pts = pr_points(y, np.full(len(y), 0.37))
    assert pts["recall"].tolist() == [0.0, 1.0]
    assert pts["precision"].tolist() == [0.2, 0.2]
    assert average_precision(y, np.full(len(y), 0.37)) == pytest.approx(0.2)
    preds = pd.DataFrame({"is_late": y, "zero_rule": 0.37, "model": np.linspace(0, 1, len(y))})
    fig = plot_curves(preds, ["zero_rule", "model"])
    line = fig.axes[0].lines[0]
    assert line.get_drawstyle() == "steps-pre"
    assert np.allclose(np.asarray(line.get_xdata(), float), [0, 1]) and np.allclose(np.asarray(line.get_ydata(), float), 0.2)
    assert "AP 0.200" in line.get_label()
    matplotlib.pyplot.close(fig)


def test_ap_roc_and_step_area_equal_sklearn_with_ties_and_weights():
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(600):
        n = int(rng.integers(2, 80))
        y = rng.random(n) < rng.uniform(0.05, 0.95)
        s = rng.integers(0, int(rng.integers(1, 9)), n) / 7.0  # few distinct values: many ties
        if rng.random() < 0.5:
            s = s.astype(np.float32).astype(float)
        if y.all() or not y.any():
            continue
        assert average_precision(y, s) == pytest.approx(average_precision_score(y, s), abs=1e-12)
        w = rng.integers(0, 4, n).astype(float)
        if w[y].sum() > 0 and w[~y].sum() > 0:
            assert average_precision(y, s, sample_weight=w) == pytest.approx(average_precision_score(y, s, sample_weight=w), abs=1e-12)
        pts = pr_points(y, s)
        area = float(np.sum(np.diff(pts["recall"]) * pts["precision"].to_numpy()[1:]))
        assert area == pytest.approx(average_precision_score(y, s), abs=1e-12)
        checked += 1
    assert checked > 400


@pytest.mark.parametrize("y,s,needle", [
    ([1, 0], [0.5], "y_true has 2 labels but scores has 1"),
    ([1, 0], [0.5, np.nan], "1 missing or infinite values"),
    ([1, 0], ["a", "b"], "scores must be numbers"),
    ([1, 2], [0.1, 0.2], "must hold only 0/1 or True/False"),
    ([1, None], [0.1, 0.2], "1 missing labels"),
    ([], [], "y_true is empty"),
    ("10", [0.1, 0.2], "1-D sequence"),
    ([0, 0], [0.1, 0.2], "no positive label"),
])
def test_pr_points_names_bad_input(y, s, needle):
    with pytest.raises(DataError, match=re.escape(needle)):
        pr_points(y, s)


# --- calibration, threshold, cost -------------------------------------------------------------------------------------

def test_calibration_table_on_a_planted_example():
    y = [0] * 9 + [1] + [1] * 8 + [0] * 2 + [1] * 5
    p = [0.1] * 10 + [0.7] * 10 + [0.9] * 5
    t = calibration_table(y, p, n_bins=3)
    assert t["rows"].tolist() == [10, 10, 5]
    assert t["mean_predicted"].round(6).tolist() == [0.1, 0.7, 0.9]
    assert t["observed_rate"].round(6).tolist() == [0.1, 0.8, 1.0]
    s = calibration_summary(y, p, n_bins=3)
    assert s["ece"] == pytest.approx((10 * 0 + 10 * 0.1 + 5 * 0.1) / 25)
    assert s["worst_bin"]["rows"] in (10, 5) and s["bins"] == 3
    assert len(calibration_table(y, np.full(25, 0.3))) == 1  # a constant scorer is one point
    with pytest.raises(DataError, match=r"proba must lie in \[0, 1\]"):
        calibration_table([0, 1], [-0.1, 0.5])
    with pytest.raises(ConfigError, match="n_bins must be an integer"):
        calibration_table([0, 1], [0.1, 0.5], n_bins=0)


def test_operating_point_cost_and_hindsight_threshold_on_a_planted_example():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 0], bool)
    p = np.array([0.9, 0.6, 0.15, 0.7, 0.3, 0.25, 0.1, 0.1, 0.05, 0.05])
    assert cost_threshold(4, 1) == pytest.approx(0.2)
    op = operating_point(y, p, 0.2, cost_fn=4, cost_fp=1)
    assert (op["tp"], op["fn"], op["fp"], op["tn"]) == (2, 1, 3, 4)
    assert op["cost"] == 4 * 1 + 1 * 3 and op["cost_per_row"] == pytest.approx(0.7)
    assert op["recall"] == pytest.approx(2 / 3) and op["precision"] == pytest.approx(2 / 5) and op["flagged_share"] == pytest.approx(0.5)
    assert op["cost_flag_none"] == pytest.approx(4 * 3 / 10) and op["cost_flag_all"] == pytest.approx(7 / 10)
    none = operating_point(y, p, 0.95, 4, 1)
    assert none["precision"] is None and none["tp"] + none["fp"] == 0  # no flag: precision undefined, not 0 or NaN
    best = best_threshold(y, p, 4, 1)
    brute = min((4 * ((p < t) & y).sum() + ((p >= t) & ~y).sum()) / 10 for t in [*np.unique(p), 2.0])
    assert best["cost_per_row"] == pytest.approx(brute)
    for bad in [0, -1, float("nan"), "4", True]:
        with pytest.raises(ConfigError, match="cost_fn must be a positive number"):
            cost_threshold(bad, 1)


def test_slice_metrics_counts_and_values_on_planted_slices():
    rng = np.random.default_rng(1)
    g = np.array(["AA"] * 300 + ["B6"] * 150 + ["HA"] * 12 + ["ZZ"] * 5)
    y = rng.random(len(g)) < np.where(g == "AA", 0.3, 0.15)
    y[-5:] = False  # ZZ: one class only
    p = np.clip(0.2 + 0.3 * y + rng.normal(0, 0.15, len(g)), 0.01, 0.99)
    t = slice_metrics(y, p, g, threshold=0.3, min_rows=100)
    assert t.index.tolist() == ["AA", "B6", "HA", "ZZ"]
    assert t["rows"].tolist() == [300, 150, 12, 5]
    for s in ["AA", "B6"]:
        m = g == s
        assert t.loc[s, "positives"] == y[m].sum()
        assert t.loc[s, "pr_auc"] == pytest.approx(average_precision_score(y[m], p[m]))
        assert t.loc[s, "roc_auc"] == pytest.approx(roc_auc_score(y[m], p[m]))
        assert t.loc[s, "recall"] == pytest.approx(((p[m] >= 0.3) & y[m]).sum() / y[m].sum())
    assert np.isnan(t.loc["ZZ", "roc_auc"]) and "one class only" in t.loc["ZZ", "note"] and "fewer than 100 rows" in t.loc["HA", "note"]
    text = interpret_slices(t.reset_index().to_dict(orient="records"), "carrier", 100)
    assert "Over the 2 values of carrier with at least 100 test flights" in text
    assert "2 values have fewer than 100 test flights (HA and ZZ)" in text
    with pytest.raises(DataError, match="groups has 1 missing values"):
        slice_metrics([1, 0], [0.2, 0.3], ["a", None], 0.5)


def test_shift_table_flags_the_planted_shift_and_rate_shift_tests_it():
    rng = np.random.default_rng(2)
    train = pd.DataFrame({"temp": rng.normal(30, 5, 2000), "dist": rng.normal(1000, 300, 2000),
                          "carrier": rng.choice(["AA", "B6"], 2000, p=[0.7, 0.3]), "late": rng.random(2000) < 0.18})
    test = pd.DataFrame({"temp": rng.normal(45, 5, 1000), "dist": rng.normal(1000, 300, 1000),
                         "carrier": rng.choice(["AA", "B6"], 1000, p=[0.7, 0.3]), "late": rng.random(1000) < 0.23})
    t = shift_table(train, test, ["temp", "dist", "carrier"])
    assert t.loc["temp", "shift"] == "major" and t.loc["dist", "shift"] == "stable" and t.loc["carrier", "shift"] == "stable"
    assert (t.loc["temp", "reference"], t.loc["temp", "current"]) == (f"mean {train['temp'].mean():.4g}", f"mean {test['temp'].mean():.4g}")
    share = (train["carrier"] == "AA").mean()
    assert t.loc["carrier", "reference"] == f"AA {share:.0%}" and t.loc["carrier", "current"] == f"AA {(test['carrier'] == 'AA').mean():.0%}"
    rs = rate_shift(train["late"], test["late"])
    assert rs["reference_rate"] == pytest.approx(train["late"].mean()) and rs["current_rate"] == pytest.approx(test["late"].mean())
    pooled = (train["late"].sum() + test["late"].sum()) / 3000
    z = (test["late"].mean() - train["late"].mean()) / np.sqrt(pooled * (1 - pooled) * (1 / 2000 + 1 / 1000))
    assert rs["z"] == pytest.approx(z)
    text = interpret_shift(t.reset_index().to_dict(orient="records"), rs)
    assert text.startswith("Between the training and the test period, temp shifted by a PSI of 0.25 or more (major)")


def test_paired_bootstrap_equals_a_reference_bootstrap_with_sklearn_weights():
    rng = np.random.default_rng(3)
    y = rng.random(400) < 0.25
    preds = pd.DataFrame({"m": np.clip(0.25 + 0.3 * (y - 0.25) + rng.normal(0, 0.2, 400), 0.01, 0.99), "zero": 0.25})
    got = paired_bootstrap(y, preds, "m", ["zero"], n_boot=30, seed=5).set_index("metric")
    ref_rng, diffs = np.random.default_rng(5), {k: [] for k in ["pr_auc", "roc_auc", "log_loss", "brier"]}
    for _ in range(30):
        w = np.bincount(ref_rng.integers(0, 400, 400), minlength=400)
        for k, f in [("pr_auc", average_precision_score), ("roc_auc", roc_auc_score), ("brier", brier_score_loss)]:
            diffs[k].append(f(y, preds["m"], sample_weight=w) - f(y, preds["zero"], sample_weight=w))
        diffs["log_loss"].append(log_loss(y, preds["m"], sample_weight=w) - log_loss(y, preds["zero"], sample_weight=w))
    for k, d in diffs.items():
        assert got.loc[k, "ci_low"] == pytest.approx(np.quantile(d, 0.025), abs=1e-9), k
        assert got.loc[k, "ci_high"] == pytest.approx(np.quantile(d, 0.975), abs=1e-9), k
    assert got.loc["roc_auc", "diff"] == pytest.approx(roc_auc_score(y, preds["m"]) - 0.5)
    with pytest.raises(DataError, match=r"preds lacks column \['nope'\]"):
        paired_bootstrap(y, preds, "m", ["nope"])
    with pytest.raises(DataError, match="one class only"):
        paired_bootstrap(np.zeros(400, bool), preds, "m", ["zero"])


def test_batched_importance_equals_a_feature_by_feature_loop():
    rng = np.random.default_rng(4)
    X = pd.DataFrame({"a": rng.normal(size=600), "b": rng.normal(size=600), "c": pd.Categorical(rng.choice(["x", "y", "z"], 600))})
    y = (X["a"] + 0.5 * (X["c"] == "x") + rng.normal(0, 1, 600)) > 0.8
    model = LogisticRegression().fit(pd.get_dummies(X, dtype=float), y)

    class OnFrames:  # the pipeline's models take frames with categorical columns
        def predict_proba(self, F):
            return model.predict_proba(pd.get_dummies(F, dtype=float))

    got = importance_table(OnFrames(), X, y, n_repeats=4, seed=9)
    r = np.random.default_rng(9)
    perms = [r.permutation(600) for _ in range(4)]
    base = average_precision_score(y, OnFrames().predict_proba(X)[:, 1])
    for c in X.columns:
        drops = []
        for perm in perms:
            Xp = X.copy()
            Xp[c] = X[c].iloc[perm].set_axis(X.index)
            drops.append(base - average_precision_score(y, OnFrames().predict_proba(Xp)[:, 1]))
        assert got.loc[c, "mean"] == pytest.approx(np.mean(drops), abs=1e-12), c
        assert got.loc[c, "std"] == pytest.approx(np.std(drops, ddof=1), abs=1e-12), c
    assert got.index[0] == "a" and bool(got.loc["a", "significant"]) and not bool(got.loc["b", "significant"])
    with pytest.raises(DataError, match="y holds one class only"):
        importance_table(OnFrames(), X, np.zeros(600, bool))
    with pytest.raises(DataError, match="model could not predict X"):
        importance_table(OnFrames(), X.rename(columns={"a": "q"}), y)


# --- the readings, on a planted base-rate shift -----------------------------------------------------------------------

class Overconfident(ClassifierMixin, BaseEstimator):
    "A logistic regression whose log-odds are tripled: it ranks as well, but its probabilities are too extreme."

    def fit(self, X, y):
        self.lr_ = LogisticRegression().fit(X, y)
        self.classes_ = self.lr_.classes_
        return self

    def predict_proba(self, X):
        z = 3 * self.lr_.decision_function(X)
        p = 1 / (1 + np.exp(-z))
        return np.c_[1 - p, p]


def planted(shift, n_train=3000, n_test=1500, seed=0):
    rng = np.random.default_rng(seed)

    def draw(n, s):
        x = rng.normal(size=(n, 2))
        p = 1 / (1 + np.exp(-(-1.6 + 0.9 * x[:, 0] + s)))
        return pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "seg": rng.choice(["a", "b"], n), "late": rng.random(n) < p})

    return draw(n_train, 0.0), draw(n_test, shift)


def checks_for(shift, model_cls=LogisticRegression, **kw):
    train, test = planted(shift, **kw)
    X = ["x1", "x2"]
    models = {"zero_rule": DummyClassifier(strategy="prior").fit(train[X], train["late"]), "model": model_cls().fit(train[X], train["late"])}
    preds = pd.DataFrame({"late": test["late"].to_numpy(), **{m: e.predict_proba(test[X])[:, 1] for m, e in models.items()}})
    return model_checks(models, train, test, preds, "model", X, label="late", slices=["seg"], n_boot=100), train, test


def test_interpretation_names_a_planted_base_rate_shift_and_the_log_loss_loss():
    checks, train, test = checks_for(0.6, Overconfident)
    a, b = train["late"].mean(), test["late"].mean()
    text = interpret_metrics(checks)
    assert f"The late rate moved from {a:.1%} in training to {b:.1%} in the test period ({(b - a) * 100:+.1f} points" in text
    assert "a base-rate shift" in text
    comp = {r["metric"]: r for r in checks["comparison"]}
    assert comp["log_loss"]["model"] > comp["log_loss"]["baseline_value"] and comp["log_loss"]["ci_low"] > 0  # planted: it loses
    zero = text.split("against the zero rule, model is ")[2]  # the probabilities sentence
    assert zero.startswith("worse on log loss") or "worse on log loss" in zero.split(".")[0]
    assert f"log loss ({comp['log_loss']['model']:.3f} against {comp['log_loss']['baseline_value']:.3f}, {comp['log_loss']['diff']:+.3f}" in text
    assert "better on PR-AUC" in text.split("Ranking late flights above on-time ones:")[1].split(".")[0]
    head = summarize(checks)
    assert head.startswith("model beats the zero rule at ranking late flights") and "loses to it on probability quality" in head
    assert "the late rate moved from" in head


def test_no_shift_no_caveat_and_a_calibrated_model_reads_calibrated():
    checks, _, _ = checks_for(0.0, n_train=6000, n_test=4000)
    text = interpret_metrics(checks)
    assert "base-rate shift" not in text and "recalibration" not in text
    assert interpret_calibration(checks).startswith("model is calibrated within noise")


def test_small_test_set_caveat():
    checks, _, _ = checks_for(0.0, n_test=300)
    assert "The test set is small (300 rows" in interpret_metrics(checks)


def test_operating_point_reading_when_the_model_does_not_pay():
    checks, _, _ = checks_for(0.0)
    op = checks["operating_points"]["model"]
    op.update(cost_per_row=1.0, cost_flag_none=0.9, cost_flag_all=0.8)
    text = interpret_operating_point(checks)
    assert "25% more than flagging everything, so at these costs the model does not pay" in text
    assert "The costs are assumptions (cost_fn = 4, cost_fp = 1)" in text


# --- sections and the page --------------------------------------------------------------------------------------------

def test_report_sections_html_is_escaped_and_every_table_scrolls():
    checks, _, _ = checks_for(0.6)
    checks["slices"]["seg"][0]["slice"] = "<script>x</script>"
    sections = report_sections({"evaluate": {"models": {"model": {"pr_auc": 0.4, "roc_auc": 0.7, "log_loss": 0.5, "brier": 0.2}}}},
                               checks, title="t")
    json.dumps(sections, allow_nan=False)
    page = "".join(s["html"] for s in sections["sections"])
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert page.count("<table>") == page.count('<div class="scroll"><table>') > 5
    assert ">nan<" not in page.lower()
    with pytest.raises(DataError, match="title must be a non-empty string"):
        report_sections({}, checks, title="")
    with pytest.raises(DataError, match=r"rows lack column \['x'\]"):
        html_table(pd.DataFrame({"a": [1]}), {"x": "x"})


def test_report_sections_show_the_planted_numbers():
    checks, train, test = checks_for(0.6)
    sections = {s["id"]: s["html"] for s in report_sections({}, checks, title="t")["sections"]}
    op = checks["operating_points"]["model"]
    cm = sections["threshold"].split("confusion matrix</h3>")[1].split("</table>")[0]
    assert re.findall(r'<td class="num">([\d,]+)</td>', cm) == [f"{op['tp']:,}", f"{op['fn']:,}", f"{op['fp']:,}", f"{op['tn']:,}"]
    assert f"{op['cost_per_row']:.3f}" in sections["threshold"] and f"{op['cost_flag_none']:.3f}" in sections["threshold"]
    for b in checks["calibration"]["model"]["table"]:
        assert f"{b['low']:.3f} to {b['high']:.3f}</td><td class=\"num\">{b['rows']:,}</td><td class=\"num\">{b['mean_predicted']:.1%}" in sections["calibration"]
    for r in checks["slices"]["seg"]:
        m = (test["seg"] == r["slice"]).to_numpy()
        assert r["rows"] == m.sum() and r["positives"] == test["late"][m].sum()
        assert f'<td class="txt">{r["slice"]}</td><td class="num">{r["rows"]:,}</td><td class="num">{r["positives"]:,}</td>' in sections["slices"]
    for r in checks["shift"]:
        assert f'<td class="txt">{r["feature"]}</td><td class="txt">{r["reference"]}</td><td class="txt">{r["current"]}</td><td class="num">{r["psi"]:.3f}</td>' in sections["shift"]
    assert sections["metrics"].count("<tr>") == 1 + 4  # the comparison table: heading and four metrics (no metrics table given)


def planted_selection(cross: bool = True, chosen_on_front: bool = True) -> dict:
    "A train stage's selection.json: trial 0 is today's hgb, logreg wins; the curves cross later when `cross`."
    later = (0.50, 0.52) if cross else (0.50, 0.40)
    return {"model": "logreg", "params": {"C": 0.01}, "valid_score": 0.45,
            "split": {"train_rows": 9000, "valid_rows": 2417, "valid_from": "2013-01-12 06:00:00-05:00", "valid_to": "2013-01-14 23:59:00-05:00"},
            "trials": [{"number": 0, "state": "COMPLETE", "value": 0.34, "model": "hgb", "C": None, "max_iter": 300, "seconds": 0.7, "mlflow_run_id": "a" * 32},
                       {"number": 1, "state": "COMPLETE", "value": 0.45, "model": "logreg", "C": 0.01, "max_iter": None, "seconds": 0.2, "mlflow_run_id": "b" * 32},
                       {"number": 2, "state": "FAIL", "value": None, "model": "<b>x</b>", "C": None, "max_iter": None, "seconds": None, "mlflow_run_id": "f" * 32}],
            "extrapolation": [{"model": "logreg", "n_now": 9000, "score_now": 0.45, "predicted_at_36000": later[0], "identified": True,
                               "rank_now": 1, "rank_later": 2 if cross else 1},
                              {"model": "hgb", "n_now": 9000, "score_now": 0.34, "predicted_at_36000": later[1], "identified": True,
                               "rank_now": 2, "rank_later": 1 if cross else 2}],
            "tradeoffs": [{"model": "logreg", "score": 0.45, "latency_1_row_ms": 4.5, "latency_batch_ms": 5.8, "batch_rows": 1000,
                           "size_bytes": 7288, "pareto": chosen_on_front},
                          {"model": "hgb", "score": 0.34, "latency_1_row_ms": 5.2, "latency_batch_ms": 11.7, "batch_rows": 1000,
                           "size_bytes": 642714, "pareto": not chosen_on_front}],
            "tracking": {"path": "train/mlruns", "uri": "sqlite:////r/smoke/train/mlruns/mlflow.db", "experiment": "flights-train",
                         "parent_run_id": "c" * 32, "chosen_run_id": "d" * 32, "study": "train-" + "c" * 32,
                         "artifacts": "artifacts/flights-train-0000"},
            "data": {"features": {"digest": "e" * 64}}}


def comparison(model_score: float, best: float = 0.40) -> dict:
    from mlsys.pipeline import compare_with_baselines
    m = pd.DataFrame({"pr_auc": [model_score, 0.23, best], "roc_auc": [0.7, 0.5, 0.6], "log_loss": [0.5, 0.55, 0.54],
                      "brier": [0.16, 0.18, 0.17]}, index=["model", "zero_rule", "route_rate"])
    return compare_with_baselines(m, "model")


def test_interpret_selection_states_the_planted_search():
    text = interpret_selection(planted_selection())
    assert text.startswith("3 HPO trials chose logreg (C=0.01) with a validation PR-AUC of 0.450 on the last 2,417 flights of the "
                           "training period (2013-01-12 to 2013-01-14); the test period played no part.")
    assert "Today's fixed model (trial 0) scored 0.340." in text and "The best hgb reached 0.340." in text
    assert "predict hgb would overtake at 36,000 training rows: more data could change the choice" in text
    assert "logreg predicts 1,000 flights in 5.8 ms and takes 7 KiB; it is on the Pareto front" in text
    other = interpret_selection(planted_selection(cross=False, chosen_on_front=False))
    assert "keep logreg ahead at 36,000 training rows" in other and "it is off the Pareto front" in other
    with pytest.raises(DataError, match=r"selection lacks \['params'"):
        interpret_selection({"model": "m"})


def test_baseline_comparison_flags_a_model_that_does_not_beat_the_best_baseline():
    from mlsys.pipeline import compare_with_baselines
    loses, wins, tie = comparison(0.35), comparison(0.45), comparison(0.40)
    assert loses["best_baseline"] == "route_rate" and loses["beats_best_baseline"] is False and loses["gain"] == pytest.approx(-0.05)
    assert tie["beats_best_baseline"] is False  # a tie does not beat it
    assert wins["beats_best_baseline"] is True and [r["name"] for r in wins["table"]] == ["model", "route_rate", "zero_rule"]
    assert interpret_baselines(loses) == ("FLAG: model does not beat the best baseline on PR-AUC, the primary metric: 0.350 against 0.400 "
                                          "for the route-late-rate heuristic (-0.050). Do not ship it in place of that baseline.")
    assert interpret_baselines(wins).startswith("model beats every baseline on PR-AUC, the primary metric: 0.450 against 0.400")
    m = pd.DataFrame({"pr_auc": [0.3, 0.2]}, index=["model", "zero_rule"])
    for f, err, needle in [(lambda: compare_with_baselines(m, "svm"), DataError, "with a row for model 'svm'"),
                           (lambda: compare_with_baselines(m.loc[["model"]], "model"), DataError, "holds no baseline beside 'model'"),
                           (lambda: compare_with_baselines(m, "model", primary="accuracy"), ConfigError, "primary='accuracy' is not one of"),
                           (lambda: compare_with_baselines(None, "model"), DataError, "metrics must be a frame"),
                           (lambda: interpret_baselines({"model": "m"}), DataError, "baseline comparison lacks")]:
        with pytest.raises(err, match=re.escape(needle)):
            f()


def test_report_sections_show_the_selection_runs_curves_and_the_flag():
    import matplotlib.pyplot as plt
    from mlsys.report.checks import fig_to_png
    fig, ax = plt.subplots(figsize=(2, 2)); ax.plot([0, 1])
    png = fig_to_png(fig); plt.close(fig)
    checks, _, _ = checks_for(0.6)
    checks["baseline_comparison"] = comparison(0.35)
    out = report_sections({}, checks, {"learning_curves": png, "tradeoffs": png}, title="t", selection=planted_selection())
    json.dumps(out, allow_nan=False)
    ids = [s["id"] for s in out["sections"]]
    assert ids[:4] == ["metrics", "baselines", "selection", "tradeoffs"]
    secs = {s["id"]: s["html"] for s in out["sections"]}
    assert secs["baselines"].startswith('<p class="flag">FLAG: model does not beat the best baseline on PR-AUC')
    assert "FLAG: model does not beat the best baseline" in out["summary"]
    assert re.findall(r'<td class="txt">(route-late-rate heuristic|zero rule|model)</td>', secs["baselines"]) == ["model", "route-late-rate heuristic", "zero rule"]
    sel = secs["selection"]
    for rid in ["a" * 32, "b" * 32, "f" * 32, "c" * 32, "d" * 32, "e" * 64, "train/mlruns"]:
        assert rid in sel, rid
    assert "<pre>mlflow ui --backend-store-uri sqlite:////r/smoke/train/mlruns/mlflow.db</pre>" in sel
    assert "&lt;b&gt;x&lt;/b&gt;" in sel and "<b>x</b>" not in sel  # escaped
    assert '<td class="wrap">max_iter=300</td>' in sel and '<td class="wrap">C=0.01</td>' in sel  # only the trial's own hyperparameters
    assert re.search(r'<code>' + "b" * 32 + r'</code></a></td><td class="txt">best</td>', sel)  # the best trial is marked
    for rid in ["a" * 32, "d" * 32]:  # each run links to its artifact folder in the store, relative to the run folder
        assert f'<a href="train/mlruns/artifacts/flights-train-0000/{rid}/artifacts"><code>{rid}</code></a>' in sel
    assert '<a href="train/mlruns"><code>train/mlruns</code></a>' in sel
    assert secs["tradeoffs"].count("<img ") == 2 and "predicted at 36,000 rows" in secs["tradeoffs"]
    page = "".join(secs.values())
    assert page.count("<table>") == page.count('<div class="scroll"><table>') and ">nan<" not in page.lower()
    checks["baseline_comparison"] = comparison(0.45)
    won = report_sections({}, checks, title="t", selection=planted_selection())
    assert {s["id"]: s["html"] for s in won["sections"]}["baselines"].startswith('<p class="reading">model beats every baseline')
    assert "It beats every baseline on PR-AUC, the best of them the route-late-rate heuristic." in won["summary"]
    with pytest.raises(DataError, match="selection must be the train stage's selection.json as a dict, got str"):
        report_sections({}, checks, title="t", selection="x")


def record_for(run_id, started, lead, status="ok", failed=None):
    return {"run_id": run_id, "profile": "smoke", "status": status, "failed_stage": failed, "started": started, "finished": started,
            "error": "stage 'train': raised DataError: planted" if failed else None, "traceback": "Traceback\nDataError: planted" if failed else None,
            "params": {"features": {"lead": lead}, "train": {"seed": 0}},
            "param_sources": {"features": {"lead": "--param"}, "train": {"seed": "default"}},
            "environment": run_environment("/"),
            "stages": [{"stage": "ingest", "status": "ran", "seconds": 1.2, "reason": "no earlier successful run", "started": started,
                        "finished": started, "upstream": [], "products": {"flights": "ingest/flights.parquet"}},
                       {"stage": "train", "status": "failed" if failed else "ran", "seconds": 2.5, "reason": "parameters changed",
                        "started": started, "finished": started, "upstream": ["ingest"], "products": {"models": "train/m.skops"}},
                       {"stage": "report", "status": "not run" if failed else "ran", "seconds": 0.0, "reason": "", "started": None,
                        "finished": None, "upstream": ["train"], "products": {"report_sections": "report/sections.json"}}]}


def write_run(root, run_id, started, lead, pr_auc, **kw):
    rec = record_for(run_id, started, lead, **kw)
    save_json(rec, root / run_id / "run.json")
    (root / run_id / "ingest").mkdir(parents=True, exist_ok=True)
    (root / run_id / "ingest/flights.parquet").write_bytes(b"x" * 2048)
    save_json({"status": "ok", "products": {"flights": "a" * 64}, "finished": started, "seconds": 1.2}, root / run_id / ".state/ingest.json")
    append_history(root / run_id, history_entry(rec, {"evaluate": {"pr_auc": pr_auc, "roc_auc": 0.6, "log_loss": 0.5}}))
    return rec


def test_previous_runs_table_after_two_runs(tmp_path):
    write_run(tmp_path, "smoke", "2026-03-01T08:43:42+00:00", "0min", 0.41)
    write_run(tmp_path, "lead30", "2026-03-01T09:01:07+00:00", "30min", 0.38)
    with open(tmp_path / "smoke/history.jsonl", "a") as f:
        f.write('{"run_id": "smoke", "finished": "2026')  # a line cut by a crash is skipped
    hist = read_history(tmp_path)
    assert [h["run_id"] for h in hist] == ["smoke", "lead30"]
    table = previous_runs(hist, hist[-1])
    assert table["run"].tolist() == ["lead30", "smoke"]
    assert table["differs"].tolist() == ["this run", "lead='0min'"]
    assert table["PR-AUC"].tolist() == [0.38, 0.41]
    page = render_run_report(tmp_path / "lead30")
    hist_html = page.split('<h2 id="history">')[1]
    assert hist_html.count("<tr>") == 3 and "0.410" in hist_html and "0.380" in hist_html and "this run" in hist_html


def test_failed_run_page_names_the_stage_the_error_and_links_the_notebook(tmp_path):
    write_run(tmp_path, "smoke", "2026-03-01T08:43:42+00:00", "0min", 0.41, status="failed", failed="train")
    run = tmp_path / "smoke"
    (run / "failed/train/notebooks").mkdir(parents=True)
    (run / "failed/train/notebooks/train.ipynb").write_text("{}")
    (run / "failed/train/notebooks/train.kernel.log").write_text("")
    save_json({"title": "Late flights", "summary": "old summary", "sections": [{"id": "metrics", "title": "Test metrics", "html": "<p>old</p>"}]},
              run / "report/sections.json")
    page = write_run_report(run).read_text()
    banner = page.split('<div class="banner failed">')[1].split("</div>")[0]
    assert "FAILED at stage train" in banner and "raised DataError: planted" in banner
    assert 'href="failed/train/notebooks/train.ipynb"' in banner and 'href="failed/train/notebooks/train.kernel.log"' in banner
    assert "<pre>Traceback\nDataError: planted</pre>" in banner
    # the sections of the last complete run are kept, folded away and marked as not this run's
    assert "<details><summary>Results of the last run that completed stage report" in page and "<p>old</p>" in page
    assert "<h1>Late flights</h1>" in page
    assert re.search(r"<td class=\"txt\">train</td><td class=\"txt\">failed</td><td class=\"txt\">08:43:42</td>", page)
    assert "not run" in page
    # data fingerprints: the source stage's product, its size and recorded hash
    assert "ingest/flights.parquet" in page and "2.0 KiB" in page and "a" * 16 in page
    assert not re.search(r'(src|href)="(https?:)?//', page)


def test_run_report_refuses_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(DataError, match="has no run.json: it is not a run folder"):
        render_run_report(tmp_path)


def test_run_environment_outside_a_checkout(tmp_path, monkeypatch):
    import mlsys
    env = run_environment(tmp_path)  # a pipeline folder outside any checkout: the library's commit, if it has one
    assert env["git"]["root"] == run_environment()["git"]["root"] and env["versions"]["numpy"] == np.__version__  # (others may commit meanwhile)
    monkeypatch.setattr(mlsys, "__file__", str(tmp_path / "site" / "mlsys" / "__init__.py"))  # mlsys installed from a wheel
    assert run_environment(tmp_path)["git"] == {"commit": None, "dirty": None, "changed_files": None, "root": None}


def test_plot_calibration_draws_a_constant_scorer_as_one_point():
    y = np.array([0, 1] * 50, bool)
    preds = pd.DataFrame({"is_late": y, "zero_rule": 0.3, "m": np.linspace(0.05, 0.95, 100)})
    fig = plot_calibration(preds, ["zero_rule", "m"])
    first = fig.axes[0].lines[0]
    assert len(first.get_xdata()) == 1 and first.get_xdata()[0] == pytest.approx(0.3) and first.get_ydata()[0] == pytest.approx(0.5)
    matplotlib.pyplot.close(fig)


def test_cli_report_rewrites_the_page_of_a_run_folder(tmp_path, capsys):
    from mlsys.cli import main
    write_run(tmp_path, "smoke", "2026-03-01T08:43:42+00:00", "0min", 0.41)
    assert main(["report", "--run-id", "smoke", "--runs-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == f"report: {(tmp_path / 'smoke/report.html').absolute()}"
    assert "Run smoke succeeded" in (tmp_path / "smoke/report.html").read_text()
    assert main(["report", "--run-id", "nope", "--runs-dir", str(tmp_path)]) == 2
    assert "no run folder" in capsys.readouterr().err


def test_data_section_shows_the_training_validation_hard_failures_first():
    from mlsys.report.text import _data_section

    report = [{"column": "temp", "check": "range", "severity": "soft", "fraction": 0.4, "passed": False, "examples": [51.1, 52.0]},
              {"column": "carrier", "check": "regex", "severity": "hard", "fraction": 0.1, "passed": False, "examples": ["ua"]},
              {"column": "dep_hour", "check": "dtype", "severity": "", "fraction": 0.0, "passed": True, "examples": []}]
    v = {"mode": "warn", "checks": 3, "checked_rows": 600, "rows": 1200, "hard": 1, "soft": 1,
         "reference": {"kind": "champion"}, "report": report}
    html = _data_section({}, None, v)["html"]
    assert "against the suite of the rows the champion was trained on" in html and "1 hard and 1 soft failure(s)" in html
    assert '<p class="flag">' in html  # a hard failure is flagged
    assert html.index(">carrier<") < html.index(">temp<") and ">dep_hour<" not in html  # failed checks only, hard first
