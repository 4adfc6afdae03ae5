"""Bad input to the public functions of `mlsys.pipeline`: each gives a named mlsys error that names the input."""
import re

import matplotlib
import numpy as np
import pandas as pd
import pytest

from mlsys.core import ConfigError, DataError
from mlsys.pipeline import (CATEGORICAL_FEATURES, FEATURES, LABEL, NUMERIC_FEATURES, RouteRateHeuristic, build_features, check_budget,
                            check_leakage, evaluate_models, ingest, make_model, model_space, select_model, time_split, train_models,
                            validate_flights, write_parquet)
from mlsys.report.checks import fig_to_png, model_checks, plot_curves
from mlsys.report.run import write_run_report

matplotlib.use("Agg")


def flights_frame(n: int = 50) -> pd.DataFrame:
    dep = pd.date_range("2013-01-01 12:00", periods=n, freq="h", tz="UTC")
    return pd.DataFrame({"sched_dep": dep, "sched_dep_local": dep.tz_convert("America/New_York"),
                         "carrier": pd.Categorical(["AA"] * n), "origin": pd.Categorical(["JFK"] * n),
                         "dest": pd.Categorical(["LAX"] * n), "distance": np.full(n, 2475), "tailnum": pd.array(["N1"] * n, dtype="string"),
                         "is_late": pd.array([i % 3 == 0 for i in range(n)], dtype="boolean"), "cancelled": np.zeros(n, bool)})


def feature_frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dep = pd.date_range("2013-01-01", periods=n, freq="40min", tz="UTC")
    df = pd.DataFrame({c: pd.Categorical(rng.choice(["A", "B", "C"], n)) for c in CATEGORICAL_FEATURES})
    for c in NUMERIC_FEATURES:
        df[c] = rng.random(n) if c.endswith("_rate") else rng.normal(size=n)  # late rates lie in [0, 1]
    df["route_30d_late_rate"] = np.where(rng.random(n) < 0.1, np.nan, rng.random(n))  # the heuristic's input (no history: NaN)
    local = dep.tz_convert("America/New_York")
    df = df.assign(sched_dep=dep, sched_dep_local=local, local_date=local.strftime("%Y-%m-%d"), as_of=dep,
                   tailnum=pd.array(rng.choice(["N1", "N2", "N3"], n), dtype="string"))
    df[LABEL] = pd.array((df["distance"] + rng.normal(size=n)) > 0.5, dtype="boolean")
    return df


@pytest.fixture(scope="module")
def fitted():
    feats = feature_frame()
    train, test = time_split(feats, "2013-01-12")
    return feats, train, test, train_models(train, "logreg")


@pytest.mark.parametrize("make,needle", [
    (lambda f: None, "flights must be a pandas DataFrame, got NoneType"),
    (lambda f: f.drop(columns=["origin"]), "flights lacks column ['origin']"),
    (lambda f: f.iloc[:0], "flights table is empty"),
    (lambda f: f.assign(sched_dep=f["sched_dep"].dt.tz_localize(None)), "flights['sched_dep'] has no time zone"),
    (lambda f: f.assign(carrier=pd.Categorical([None] * len(f), categories=["AA"])), "flights column 'carrier' has 50 missing values"),
    (lambda f: f.assign(distance="far"), "flights column 'distance' must be numeric, got dtype"),
    (lambda f: f.assign(distance=0), "non-positive"),
    (lambda f: f.assign(is_late=1), "flights column 'is_late' must be boolean, got dtype int64"),
])
def test_validate_flights(make, needle):
    with pytest.raises(DataError) as e:
        validate_flights(make(flights_frame()))
    assert needle in str(e.value)


def test_validate_flights_summary():
    s = validate_flights(flights_frame())
    assert s["rows"] == 50 and s["labelled"] == 50 and s["first_day"] == "2013-01-01"


def test_write_parquet(tmp_path):
    with pytest.raises(DataError, match="needs a pandas DataFrame, got dict"):
        write_parquet({"a": [1]}, tmp_path / "x.parquet")
    with pytest.raises(DataError, match="Parquet path must be a str or os.PathLike, got NoneType"):
        write_parquet(pd.DataFrame({"a": [1]}), None)
    mixed = pd.DataFrame({"a": pd.Series([1, "two", 3.0], dtype=object)})
    with pytest.raises(DataError, match=r"cannot write .*mixed\.parquet as Parquet"):
        write_parquet(mixed, tmp_path / "mixed.parquet")
    assert not (tmp_path / "mixed.parquet").exists()


@pytest.mark.parametrize("kw,err,needle", [
    (dict(start=5), DataError, "start must be a date string like '2013-01-01' or None, got int"),
    (dict(start="garbage"), DataError, "start='garbage' is not a date"),
    (dict(end=""), DataError, "end='' is not a date"),
    (dict(start="2013-02-01", end="2013-01-01"), DataError, "start='2013-02-01' is after end='2013-01-01'"),
    (dict(out=None), ConfigError, "out must be a dict of output name -> path, got NoneType"),
    (dict(out={"flights": "f.parquet"}), ConfigError, "out lacks paths for ['weather', 'planes', 'warehouse']"),
    (dict(out={"flights": None, "weather": "w", "planes": "p", "warehouse": "d"}), DataError, "out['flights'] must be a str"),
    (dict(start="2014-01-01", end="2014-01-02"), DataError, "no flights between start='2014-01-01' and end='2014-01-02'"),
])
def test_ingest(kw, err, needle, tmp_path):
    out = {k: tmp_path / f"{k}.parquet" for k in ["flights", "weather", "planes"]} | {"warehouse": tmp_path / "w.duckdb"}
    args = {"start": "2013-01-01", "end": "2013-01-01", "out": out, **kw}
    with pytest.raises(err) as e:
        ingest(args["start"], args["end"], args["out"])
    assert needle in str(e.value)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("kw,needle", [
    (dict(flights=None), "flights must be a pandas DataFrame, got NoneType"),
    (dict(weather=None), "weather must be a pandas DataFrame, got NoneType"),
    (dict(planes=[]), "planes must be a pandas DataFrame, got list"),
    (dict(flights=flights_frame().drop(columns=["tailnum"])), "flights lacks column ['tailnum']"),
    (dict(flights=flights_frame().iloc[:0]), "flights is empty"),
    (dict(flights=flights_frame().assign(sched_dep=pd.NaT)), "every flight needs a 'sched_dep' timestamp"),
    (dict(lead="not-a-duration"), "lead='not-a-duration' is not a duration"),
    (dict(lead=None), "lead=None is not a duration"),
    (dict(lead="-1h"), "lead='-1h' must be a non-negative duration"),
    (dict(recent_window="0min"), "recent_window='0min' must be a positive duration"),
    (dict(recent_window=2), "recent_window=2 is a bare number"),
    (dict(store_path=""), "store_path must be a non-empty file path"),
])
def test_build_features(kw, needle):
    args = {"flights": flights_frame(), "weather": pd.DataFrame(), "planes": pd.DataFrame(), **kw}
    with pytest.raises(DataError) as e:
        build_features(**args)
    assert needle in str(e.value)


@pytest.mark.parametrize("make,split,needle", [
    (lambda f: None, "2013-01-10", "features must be a pandas DataFrame"),
    (lambda f: f.drop(columns=[LABEL]), "2013-01-10", "features lacks column ['is_late']"),
    (lambda f: f.assign(sched_dep_local=f["sched_dep_local"].dt.tz_localize(None)), "2013-01-10", "has no time zone"),
    (lambda f: f, None, "split_date must be a local date like '2013-10-01', got None"),
    (lambda f: f, 20130110, "split_date must be a local date"),
    (lambda f: f, "garbage", "split_date='garbage' is not a date"),
    (lambda f: f, "", "split_date='' must be a local date without a time zone"),
    (lambda f: f, "2013-01-10T00:00Z", "must be a local date without a time zone"),
    (lambda f: f, "2014-01-01", "leaves"),
    (lambda f: f.assign(is_late=pd.array([None] * len(f), dtype="boolean")), "2013-01-10", "no row has a label"),
])
def test_time_split(make, split, needle):
    with pytest.raises(DataError) as e:
        time_split(make(feature_frame()), split)
    assert needle in str(e.value)


def test_check_leakage_and_make_model(fitted):
    feats, train, test, _ = fitted
    with pytest.raises(DataError, match=r"train lacks column \['as_of'\]"):
        check_leakage(train.drop(columns=["as_of"]), test)
    with pytest.raises(DataError, match="test must be a pandas DataFrame"):
        check_leakage(train, None)
    for bad in ["x", 0.3, 1.5, True, float("nan")]:
        with pytest.raises(DataError, match="auc_threshold must be a number in"):
            check_leakage(train, test, auc_threshold=bad)
    for kind in [None, "svm", 3]:
        with pytest.raises(DataError, match="is not one of 'hgb', 'logreg'"):
            make_model(kind)
    for seed in [-1, 1.5, True, "0"]:
        with pytest.raises(DataError, match="seed must be a non-negative int"):
            make_model("hgb", seed)


@pytest.mark.parametrize("make,needle", [
    (lambda t: None, "train must be a pandas DataFrame"),
    (lambda t: t.drop(columns=["temp"]), "train lacks column ['temp']"),
    (lambda t: t.iloc[:0], "train has no rows"),
    (lambda t: t.assign(is_late=True), "train holds only is_late=True rows; both classes are needed"),
    (lambda t: t.assign(is_late=pd.array([None] + [True, False] * ((len(t) - 1) // 2) + [True] * ((len(t) - 1) % 2), dtype="boolean")),
     "train column 'is_late' has 1 missing labels"),
])
def test_train_models(fitted, make, needle):
    _, train, _, _ = fitted
    with pytest.raises(DataError) as e:
        train_models(make(train), "logreg")
    assert needle in str(e.value)


def test_evaluate_models(fitted):
    from sklearn.dummy import DummyClassifier
    _, _, test, models = fitted
    cases = [
        (lambda: evaluate_models(None, test), "models must be a non-empty dict"),
        (lambda: evaluate_models({}, test), "models must be a non-empty dict"),
        (lambda: evaluate_models({"m": "model"}, test), "models['m'] is a str, which has no predict_proba"),
        (lambda: evaluate_models(models, test.drop(columns=["dest"])), "test lacks column ['dest']"),
        (lambda: evaluate_models(models, test.iloc[:0]), "test has no rows"),
        (lambda: evaluate_models(models, test[test[LABEL].astype(bool)]), "both classes are needed"),
        (lambda: evaluate_models({"unfitted": DummyClassifier()}, test), "model 'unfitted' could not predict the test rows (NotFittedError"),
    ]
    for f, needle in cases:
        with pytest.raises(DataError) as e:
            f()
        assert needle in str(e.value), str(e.value)
    metrics, preds = evaluate_models(models, test)
    assert list(metrics.index) == list(models) and len(preds) == len(test)


def test_plot_and_report_inputs(fitted, tmp_path):
    _, _, test, models = fitted
    _, preds = evaluate_models(models, test)
    with pytest.raises(DataError, match=r"preds lacks column \['svm'\]"):
        plot_curves(preds, ["svm"])
    for bad in ["hgb", [], None]:
        with pytest.raises(DataError, match="models must be a non-empty list of prediction columns"):
            plot_curves(preds, bad)
    with pytest.raises(DataError, match="fig must be a matplotlib figure, got NoneType"):
        fig_to_png(None)
    with pytest.raises(DataError, match="has no run.json: it is not a run folder"):
        write_run_report(tmp_path)
    with pytest.raises(DataError, match="report path must be a str"):
        (tmp_path / "run.json").write_text("{}")
        write_run_report(tmp_path, 3)
    assert write_run_report(tmp_path).exists()  # a bare run record still gives a page
    feats, train, _, _ = fitted
    cases = [
        (lambda: model_checks(models, train, test, preds, "svm", FEATURES), "models must be a dict holding the model 'svm'"),
        (lambda: model_checks(models, train, test.drop(columns=["carrier"]), preds.iloc[:0], "logreg", FEATURES), "preds has 0 rows"),
        (lambda: model_checks(models, train, test.drop(columns=["carrier"]), preds, "logreg", FEATURES), "test lacks column ['carrier']"),
        (lambda: model_checks(models, train, test, preds.assign(is_late=~preds["is_late"]), "logreg", FEATURES), "disagree on the labels"),
        (lambda: model_checks(models, train, test, preds, "logreg", FEATURES, cost_fn=0), "cost_fn must be a positive number"),
    ]
    for f, needle in cases:
        with pytest.raises((DataError, ConfigError)) as e:
            f()
        assert needle in str(e.value), str(e.value)
    assert set(FEATURES) <= set(test.columns)


def test_make_model_hyperparameters_and_the_space_agree():
    space = model_space()
    for kind in ("hgb", "logreg"):
        names = [k for k, d in space.items() if k != "model" and d.active({"model": kind})]
        m = make_model(kind, params={k: d.low for k, d in space.items() if k in names})  # every name of the space is a parameter
        assert m.get_params()  # builds
        other = "logreg" if kind == "hgb" else "hgb"
        with pytest.raises(ConfigError, match=rf"unknown hyperparameter\(s\) \[.*\] for model='{other}'"):
            make_model(other, params={names[0]: 1})
    assert make_model("logreg", params={"C": 0.5}).steps[-1][1].C == 0.5
    with pytest.raises(ConfigError, match="params must be a dict"):
        make_model("hgb", params=[("max_iter", 3)])
    with pytest.raises(DataError, match="model='zero_rule' is not one of 'hgb', 'logreg'"):
        train_models(feature_frame(), "zero_rule")


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "3", None])
def test_trial_budget_must_be_a_positive_integer(bad, tmp_path):
    _, train, _, _ = feature_frame(), *time_split(feature_frame(), "2013-01-12"), None
    with pytest.raises(ConfigError, match=re.escape(f"n_trials (the HPO trial budget) must be a positive integer, got {bad!r}")):
        check_budget(bad)
    with pytest.raises(ConfigError, match=re.escape("n_trials (the HPO trial budget)")):
        select_model(train, bad, tmp_path / "mlruns")
    assert not (tmp_path / "mlruns").exists()  # refused before a store was made


def test_select_model_refuses_bad_input_before_any_trial(fitted, tmp_path):
    from mlsys.modeling.versioning import dataset_version
    _, train, _, _ = fitted
    (tmp_path / "d").mkdir(); (tmp_path / "d/f.txt").write_text("x")
    version = dataset_version(tmp_path / "d")
    cases = [
        (lambda: select_model(train, 2, tmp_path / "m", threads=0), ConfigError, "threads must be a positive integer or None, got 0"),
        (lambda: select_model(train, 2, tmp_path / "m", curve_points=2), ConfigError, "curve_points must be an integer in [3, 20]"),
        (lambda: select_model(train, 2, tmp_path / "m", data={"d": "v1"}), ConfigError, "data['d'] must be a DatasetVersion"),
        (lambda: select_model(train.drop(columns=["sched_dep"]), 2, tmp_path / "m", data={"d": version}), DataError, "train lacks column ['sched_dep']"),
        (lambda: select_model(train.assign(sched_dep=train["sched_dep"].dt.tz_localize(None)), 2, tmp_path / "m"), DataError, "has no time zone"),
        (lambda: select_model(train, 2, tmp_path / "m", validation=1.5), ConfigError, "validation must be a fraction in (0, 1)"),
        # the latest rows are all on time: the validation weeks hold one class
        (lambda: select_model(train.assign(is_late=train[LABEL].where(np.arange(len(train)) < len(train) * 0.7, False)), 2, tmp_path / "m"),
         DataError, "the HPO validation part holds only is_late=False rows"),
    ]
    for f, err, needle in cases:
        with pytest.raises(err) as e:
            f()
        assert needle in str(e.value), str(e.value)
    assert not (tmp_path / "m").exists()


def test_route_rate_heuristic_gives_the_route_rate_as_its_probability(fitted):
    from sklearn.utils.estimator_checks import check_estimators_unfitted
    _, train, test, models = fitted
    h, col = models["route_rate"], "route_30d_late_rate"
    assert isinstance(h, RouteRateHeuristic) and 0 <= h.threshold_ <= 1 and h.column == col
    assert list(h.feature_names_in_) == [col]  # it reads one column, which no model reads
    rate = test[col].fillna(h.fill_)
    np.testing.assert_allclose(h.predict_proba(test[[col]])[:, 1], rate.clip(0, 1), atol=1e-12)
    np.testing.assert_array_equal(h.predict(test[[col]]), (rate > h.threshold_).to_numpy())
    check_estimators_unfitted("route_rate", RouteRateHeuristic())
    with pytest.raises(DataError, match=col):
        RouteRateHeuristic().fit(train[FEATURES], train[LABEL].astype(bool))
    with pytest.raises(DataError, match=re.escape("train lacks column ['route_30d_late_rate']")):
        train_models(train.drop(columns=[col]), "logreg")
    # a rate outside [0, 1] is not a rate: refused in fit and in predict_proba, never clipped into one
    for where in (train.index[:1], train.index[-1:]):
        X = train[[col]].copy(); X.loc[where, col] = 1.5
        with pytest.raises(DataError, match=r"column 'route_30d_late_rate' must hold late rates in \[0, 1\]; 1 values lie outside \(e.g. 1.5\)"):
            RouteRateHeuristic().fit(X, train[LABEL].astype(bool))
    X = test[[col]].copy(); X.loc[X.index[0], col] = -0.2
    with pytest.raises(DataError, match="e.g. -0.2"):
        h.predict_proba(X)
    # evaluate_models gives each model the columns it was fitted on
    metrics, _ = evaluate_models(models, test)
    assert set(metrics.index) == {"zero_rule", "random", "route_rate", "logreg"}
    with pytest.raises(DataError, match=re.escape("test lacks column ['route_30d_late_rate']")):
        evaluate_models(models, test.drop(columns=[col]))


@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated")  # inside MLflow 3.17
def test_select_model_in_a_copied_run_folder_keeps_its_artifacts_in_the_copy(fitted, tmp_path):
    "MLflow stores an experiment's artifact location as an absolute path; a copied run folder must not write into the original."
    import shutil
    from mlsys.modeling.tracking import Tracker, run_table
    _, train, _, _ = fitted
    first = select_model(train, 2, tmp_path / "a/mlruns", curve_points=3)
    assert first.tracking["experiment"] == "flights-train" and first.tracking["artifacts"].startswith("artifacts/")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    again = select_model(train, 2, tmp_path / "b/mlruns", curve_points=3)
    assert again.tracking["experiment"].startswith("flights-train-")  # a sibling experiment whose artifacts live in the copy
    model_dir = tmp_path / "b/mlruns" / again.tracking["artifacts"] / again.tracking["chosen_run_id"] / "artifacts/model"
    assert model_dir.is_dir() and not list((tmp_path / "a").rglob(again.tracking["chosen_run_id"]))
    # the copy still holds the first runs too, and the first folder only its own
    assert len(run_table(Tracker(tmp_path / "b/mlruns", experiment="flights-train"))) == 2 + 2
    assert len(run_table(Tracker(tmp_path / "a/mlruns", experiment="flights-train"))) == 2 + 2
    assert first.params and again.model in ("hgb", "logreg") and len(again.trials) == 2


def test_model_selection_names_moved_to_pipeline_selection_are_the_same_objects():
    "`select_model` and its helpers moved to `mlsys.pipeline_selection` (15d); `mlsys.pipeline` still gives the same objects."
    import mlsys.pipeline as P
    import mlsys.pipeline_selection as S
    assert {"select_model", "model_space", "check_budget", "ModelSelection", "_tradeoffs", "_family_bests"} <= set(P._SELECTION)
    for name in P._SELECTION:
        assert getattr(P, name) is getattr(S, name), name
    assert select_model is S.select_model and model_space is S.model_space and check_budget is S.check_budget
    # what the models file and the evaluate stage read stays in the pipeline: the skops type names do not change
    assert S.model_inputs is P.model_inputs and S._records is P._records
    assert RouteRateHeuristic.__module__ == "mlsys.pipeline" and "mlsys.pipeline.RouteRateHeuristic" in P.TRUSTED_MODEL_TYPES
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        P.no_such_name  # noqa: B018
