"""Feature validation of the training rows before fitting (mlsys.pipeline_validation, nbs/15h): crafted training frames
with a wrong type, a column full of nulls, a new category format, a missing column or a value outside the physical
domain stop with the named mlsys error; clean frames pass (soft failures recorded); bad parameters are ConfigError;
the champion's suite is read from the model store."""
import json

import numpy as np
import pandas as pd
import pytest

from mlsys.core import ConfigError, DataError, IntegrityError, SchemaError
from mlsys.pipeline_validation import (TrainingValidation, attach_suite, champion_suite, check_mode, domain_suite,
                                       split_reference, suite_path, training_suite, validate_training)

FEATURES = ["carrier", "origin", "sched_hour", "distance", "temp", "humid"]
BOUNDS = {"sched_hour": (0, 23), "distance": (0, 6000), "temp": (-80, 140), "humid": (0, 100)}


def frame(n: int = 400, seed: int = 0, start: str = "2013-01-01") -> pd.DataFrame:
    "A small training table shaped like the pipeline's: categorical codes, integers, floats with a few gaps, a time."
    rng = np.random.default_rng(seed)
    temp = rng.normal(35, 8, n)
    temp[rng.random(n) < 0.02] = np.nan
    return pd.DataFrame({
        "sched_dep": pd.date_range(start, periods=n, freq="17min", tz="UTC"),
        "carrier": pd.Categorical(rng.choice(["AA", "B6", "DL", "UA", "9E"], n)),
        "origin": pd.Categorical(rng.choice(["EWR", "JFK", "LGA"], n)),
        "sched_hour": rng.integers(5, 23, n).astype("int32"),
        "distance": rng.uniform(100, 2500, n),
        "temp": temp,
        "humid": rng.uniform(20, 95, n),
        "is_late": rng.random(n) < 0.2,
    })


def check(df, validate="error", **kw):
    return validate_training(df, validate, features=FEATURES, bounds=BOUNDS, **kw)


def later(df: pd.DataFrame, **cols) -> pd.DataFrame:
    "`df` with columns replaced in its later half only (the rows checked against the suite of the earlier half)."
    out = df.copy()
    half = out["sched_dep"] >= out["sched_dep"].iloc[len(out) // 2]
    for c, f in cols.items():
        out[c] = f(out, half)
    return out


@pytest.fixture
def clean():
    return frame()


def test_clean_frame_passes_and_writes_the_report(clean, tmp_path):
    r = check(clean, out=tmp_path)
    assert isinstance(r, TrainingValidation)
    assert r.hard.empty and r.reference["kind"] == "earliest" and r.reference["rows"] == 200
    assert r.checked_rows == 200 and set(r.report["source"]) == {"suite", "contract", "domain"} and r.rows == 400
    got = json.loads((tmp_path / "validation.json").read_text())
    assert got["hard"] == 0 and got["checks"] == len(r.report) and got["mode"] == "error"
    assert r.table().empty or set(r.table()["severity"]) <= {"soft"}


def test_wrong_type_is_a_schema_error_naming_the_column(clean, tmp_path):
    bad = clean.assign(distance=clean["distance"].round().astype(str))
    with pytest.raises(SchemaError, match=r"column 'distance' failed 'numeric type' \(400 rows, 100.0%"):
        check(bad, out=tmp_path)  # the whole window: the earliest half has text too, the type contract sees it
    got = json.loads((tmp_path / "validation.json").read_text())  # the report is written before the stage stops
    assert got["hard"] == 1 and [r["column"] for r in got["report"] if r["severity"] == "hard"] == ["distance"]


def test_a_column_full_of_nulls_is_a_data_error(clean):
    bad = later(clean, temp=lambda d, h: d["temp"].where(~h))
    with pytest.raises(DataError, match=r"column 'temp' failed 'null_fraction' \(200 rows, 100.0%"):
        check(bad)


def test_null_fraction_somewhat_over_is_soft_far_over_is_hard(clean):
    rng = np.random.default_rng(1)
    some = later(clean, temp=lambda d, h: d["temp"].mask(h & (rng.random(len(d)) < 0.12)))
    r = check(some)
    assert r.hard.empty and "null_fraction" in set(r.soft["kind"])
    far = later(clean, temp=lambda d, h: d["temp"].mask(h & (rng.random(len(d)) < 0.6)))
    with pytest.raises(DataError, match="'temp' failed 'null_fraction'"):
        check(far)
    with pytest.raises(ConfigError, match="null_margin"):
        check(some, null_margin=-0.1)


def test_a_new_category_format_is_a_data_error(clean):
    lower = later(clean, carrier=lambda d, h: pd.Categorical(d["carrier"].astype(str).where(~h, d["carrier"].astype(str).str.lower())))
    with pytest.raises(DataError, match=r"column 'carrier' failed 'format'") as e:
        check(lower)
    assert not isinstance(e.value, SchemaError)  # the type is still categorical: the values changed


def test_new_categories_in_the_same_format_are_soft(clean):
    new = later(clean, carrier=lambda d, h: pd.Categorical(d["carrier"].astype(str).where(~h, "WN")))
    r = check(new)
    assert r.hard.empty and set(r.soft["column"]) >= {"carrier"} and "allowed" in set(r.soft["kind"])


def test_values_outside_the_suite_range_are_soft_outside_the_domain_hard(clean):
    warm = later(clean, temp=lambda d, h: d["temp"].where(~h, d["temp"] + 40))  # July after January: a new range
    r = check(warm)
    assert r.hard.empty and ("temp", "range") in set(zip(r.soft["column"], r.soft["kind"]))
    wet = clean.assign(humid=clean["humid"].where(clean.index != 3, 140.0))  # humidity of 140%: impossible
    with pytest.raises(DataError, match=r"column 'humid' failed 'range' \(1 row, 0.2%, e.g. \[140.0\]"):
        check(wet)
    hard = check(wet, "warn").hard
    assert hard[["column", "source"]].values.tolist() == [["humid", "domain"]]


def test_faults_over_the_whole_window_need_no_reference(clean):
    with pytest.raises(DataError, match="'temp' failed 'not all null'"):
        check(clean.assign(temp=np.nan))
    with pytest.raises(SchemaError, match="'carrier' failed 'categorical type'"):
        check(clean.assign(carrier=np.arange(len(clean))))
    with pytest.raises(ConfigError, match="types has keys"):
        check(clean, types={"text": ["carrier"]})


def test_a_missing_feature_is_a_schema_error(clean):
    with pytest.raises(SchemaError, match="humid"):
        check(clean.drop(columns="humid"))


def test_warn_records_hard_failures_and_off_skips(clean, tmp_path):
    bad = clean.assign(distance=clean["distance"].astype(str))
    r = check(bad, "warn", out=tmp_path)
    assert r.hard["column"].tolist() == ["distance"] and r.error() is not None
    assert json.loads((tmp_path / "validation.json").read_text())["hard"] == 1
    off = check(bad, "off", out=tmp_path)
    assert off.report.empty and json.loads((tmp_path / "validation.json").read_text())["mode"] == "off"


@pytest.mark.parametrize("bad", ["Error", "strict", "", None, True, 1, ["error"]])
def test_bad_validate_values_are_config_errors(clean, bad):
    with pytest.raises(ConfigError, match="validate must be one of"):
        check_mode(bad)
    with pytest.raises(ConfigError, match="validate must be one of"):
        check(clean, bad)


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.2, True, "half"])
def test_bad_reference_fraction_is_a_config_error(clean, bad):
    with pytest.raises(ConfigError, match="reference_fraction"):
        check(clean, reference_fraction=bad)


def test_reference_and_checked_rows_do_not_overlap(clean):
    shuffled = clean.sample(frac=1, random_state=0)
    ref, rest = split_reference(shuffled, 0.25)
    assert ref["sched_dep"].max() < rest["sched_dep"].min() and len(ref) == 100 and len(rest) == 300
    same = clean.assign(sched_dep=clean["sched_dep"].iloc[0])  # one timestamp: no earlier part to infer from
    with pytest.raises(DataError, match="too few sched_dep values"):
        split_reference(same)
    with pytest.raises(DataError, match="at least 4"):
        split_reference(clean.head(3))


def test_given_suite_checks_every_row(clean):
    suite = training_suite(clean, FEATURES)
    nxt = frame(seed=2, start="2013-02-01")
    r = check(nxt, suite=suite, reference={"kind": "champion", "rows": suite.n_rows})
    assert r.checked_rows == len(nxt) and r.hard.empty
    with pytest.raises(SchemaError, match="champion's suite"):
        check(nxt.assign(sched_hour=nxt["sched_hour"].astype("float64")), suite=suite, reference={"kind": "champion"})
    with pytest.raises(ConfigError, match="ExpectationSuite"):
        check(nxt, suite={"columns": FEATURES})


def test_domain_suite_open_sides():
    s = domain_suite({"a": (0, None), "b": (None, None), "c": (None, 5)})
    assert s.columns == ["a", "c"] and s.expectations[0].params["min"] == 0 and s.expectations[1].params["max"] == 5


def test_champion_suite_from_the_model_store(clean, tmp_path):
    from sklearn.linear_model import LogisticRegression

    from mlsys.deploy.registry import ModelStore
    assert champion_suite(tmp_path / "nowhere", "m")[0] is None
    store = ModelStore(tmp_path / "store")
    mv = store.register("m", LogisticRegression().fit(clean[["distance"]], clean["is_late"]))
    assert "no model" in champion_suite(store.root, "other")[1]["reason"]
    assert "no alias" in champion_suite(store.root, "m")[1]["reason"]
    store.set_alias("m", "champion", mv.version)
    assert "has no suite" in champion_suite(store.root, "m")[1]["reason"]
    attach_suite(store, mv, training_suite(clean, FEATURES))
    suite, where = champion_suite(store.root, "m")
    assert suite.columns == FEATURES and where == {"kind": "champion", "model": "m", "version": 1, "rows": len(clean)}
    nxt = frame(seed=3, start="2013-02-01")
    assert check(nxt, suite=suite, reference=where).hard.empty
    suite_path(store, mv).write_text('{"format": "mlsys.expectation_suite/1"}')
    with pytest.raises(IntegrityError, match="damaged"):
        champion_suite(store.root, "m")
    with pytest.raises(ConfigError, match="ExpectationSuite"):
        attach_suite(store, mv, {"columns": []})
