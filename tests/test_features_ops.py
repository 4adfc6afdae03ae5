"""Feature operations: equality with scikit-learn, simulated missingness, and clear errors on bad input."""
import numpy as np
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import KBinsDiscretizer, MinMaxScaler, StandardScaler

from mlsys.core import ConfigError, DataError, SchemaError
from mlsys.datasets import load_flights, load_weather
from mlsys.features.ops import (
    Discretizer,
    DropMissingColumns,
    Imputer,
    LogScaler,
    RangeScaler,
    Standardizer,
    drop_missing_rows,
    simulate_missing,
)

NUM = ["temp", "dewp", "humid", "wind_speed", "pressure", "visib"]


@pytest.fixture(scope="module")
def weather():
    return load_weather("2013-03-01", "2013-04-30")


@pytest.fixture(scope="module")
def split(weather):
    return weather[weather.time_hour < "2013-04-10"], weather[weather.time_hour >= "2013-04-10"]


@pytest.mark.parametrize("strategy", ["mean", "median", "most_frequent", "constant"])
@pytest.mark.parametrize("add_indicator", [False, True])
def test_imputer_equals_simple_imputer(split, strategy, add_indicator):
    tr, te = split
    ours = Imputer(strategy, fill_value=7.0, add_indicator=add_indicator).fit(tr[NUM])
    ref = SimpleImputer(strategy=strategy, fill_value=7.0, add_indicator=add_indicator).fit(tr[NUM])
    np.testing.assert_allclose(ours.transform(te[NUM]), ref.transform(te[NUM]))
    assert list(ours.get_feature_names_out()) == list(ref.get_feature_names_out())


@pytest.mark.parametrize("ours,ref", [
    (RangeScaler(), MinMaxScaler()),
    (RangeScaler((-3, 5)), MinMaxScaler((-3, 5))),
    (Standardizer(), StandardScaler()),
])
def test_scalers_equal_sklearn_and_fit_on_train_only(split, ours, ref):
    tr, te = split
    np.testing.assert_allclose(ours.fit(tr[NUM]).transform(te[NUM]), ref.fit(tr[NUM]).transform(te[NUM]), rtol=1e-12, atol=1e-12)
    # the statistics come from the training split alone
    out = ours.fit(tr[NUM]).transform(tr[NUM])
    if isinstance(ours, Standardizer):
        np.testing.assert_allclose(np.nanmean(out, axis=0), 0, atol=1e-9)
    else:
        np.testing.assert_allclose(np.nanmin(out, axis=0), ours.feature_range[0])
        np.testing.assert_allclose(np.nanmax(out, axis=0), ours.feature_range[1])


@pytest.mark.parametrize("strategy", ["most_frequent", "constant"])
def test_imputer_text_columns_equal_simple_imputer(strategy):
    fl = load_flights("2013-01-01", "2013-01-15")[["carrier", "tailnum", "distance"]]
    X = fl.astype(object).where(fl.notna(), np.nan)
    ours = Imputer(strategy, add_indicator=True).set_output(transform="pandas").fit(X.iloc[::2])
    ref = SimpleImputer(strategy=strategy, add_indicator=True).set_output(transform="pandas").fit(X.iloc[::2])
    a, b = ours.transform(X.iloc[1::2]), ref.transform(X.iloc[1::2])
    assert list(a.columns) == list(b.columns) and a.isna().sum().sum() == 0
    np.testing.assert_array_equal(a.to_numpy(), b.to_numpy())
    # straight from the typed frame (category and string dtypes) as well
    c = Imputer(strategy).fit(fl.iloc[::2]).transform(fl.iloc[1::2])
    assert not pd.isna(c).any()
    if strategy == "constant":
        assert (c[:, 1][fl.iloc[1::2]["tailnum"].isna().to_numpy()] == "missing_value").all()


def test_pandas_output_and_names(split):
    tr, te = split
    out = Imputer(add_indicator=True).set_output(transform="pandas").fit(tr[NUM]).transform(te[NUM])
    assert isinstance(out, pd.DataFrame) and out.index.equals(te.index)
    assert "missingindicator_pressure" in out.columns


def test_log_scaler_shift_and_reference(split):
    tr, _ = split
    pos = tr[["visib", "pressure"]].dropna() + 0.5
    np.testing.assert_allclose(LogScaler().fit_transform(pos), np.log(pos.to_numpy()))
    x = pd.DataFrame({"d": [-10.0, -1.0, 0.0, 5.0, 120.0]})
    ls = LogScaler().fit(x)
    assert ls.shift_[0] == 11.0
    out = ls.transform(pd.DataFrame({"d": [-50.0, -10.0, 1000.0]}))[:, 0]
    assert out[0] == 0.0 and out[1] == 0.0 and np.isclose(out[2], np.log(1011.0))  # clipped to the train minimum
    with pytest.raises(DataError, match=r"\['d'\] have values <= -shift=5"):
        LogScaler(shift=5).fit(x)


@pytest.mark.parametrize("est", [LogScaler(), RangeScaler(), Standardizer(), Discretizer(n_bins=3)])
def test_missing_values_pass_through_unfilled(split, est):
    "A scaler must not impute: NaN in, NaN out, at exactly the same cells (imputation is Imputer's job)."
    tr, te = split
    cols = ["dewp", "wind_speed", "visib"]
    test = te[cols].copy()
    test.iloc[::7, 0] = np.nan
    out = est.fit(tr[cols]).transform(test)
    np.testing.assert_array_equal(np.isnan(out), test.isna().to_numpy())


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_discretizer_equals_kbins(strategy):
    fl = load_flights("2013-02-01", "2013-02-10")
    X = fl[["distance", "sched_dep_time", "air_time"]].astype(float).dropna()
    ours = Discretizer(7, strategy).fit(X.iloc[::2]).transform(X.iloc[1::2])
    ref = KBinsDiscretizer(7, encode="ordinal", strategy=strategy, quantile_method="averaged_inverted_cdf").fit(X.iloc[::2]).transform(X.iloc[1::2])
    np.testing.assert_array_equal(ours, ref)


def test_discretizer_custom_boundaries_and_nan():
    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 2.5, np.nan, 10.0], "b": [5.0, 6.0, 7.0, 8.0, 9.0, 10.0]})
    d = Discretizer(strategy="custom", boundaries={"a": [1.0, 2.5], "b": [7.0]}).fit(X)
    out = d.transform(X)
    np.testing.assert_array_equal(out[:, 0], [0, 1, 1, 2, np.nan, 2])
    np.testing.assert_array_equal(out[:, 1], [0, 0, 1, 1, 1, 1])
    with pytest.raises(ConfigError, match="no entry for column 'b'"):
        Discretizer(strategy="custom", boundaries={"a": [1.0]}).fit(X)


def test_simulated_mechanisms(weather):
    full = weather.dropna(subset=["temp", "humid"]).reset_index(drop=True)
    n_missing = round(0.2 * len(full))
    mcar = simulate_missing(full, "temp", "mcar", 0.2, random_state=3)
    mar = simulate_missing(full, "temp", "mar", 0.2, depends_on="humid", random_state=3)
    mnar = simulate_missing(full, "temp", "mnar", 0.2, random_state=3)
    for d in (mcar, mar, mnar):
        assert d["temp"].isna().sum() == n_missing
        assert d.drop(columns="temp").equals(full.drop(columns="temp"))  # nothing else touched
    # under MCAR the blanked rows look like the rest; under MAR the driver differs; under MNAR the value itself
    from scipy.stats import ks_2samp
    assert ks_2samp(full.temp[mcar.temp.isna()], full.temp[mcar.temp.notna()]).pvalue > 0.001
    assert full.humid[mar.temp.isna()].mean() > full.humid.mean() + 5
    assert full.temp[mnar.temp.isna()].mean() > full.temp.mean() + 3
    assert full.temp.isna().sum() == 0  # the input is not modified


def test_drop_missing(weather):
    X = weather[NUM + ["wind_gust"]]
    dm = DropMissingColumns(0.5).set_output(transform="pandas").fit(X)
    assert "wind_gust" not in dm.transform(X).columns and list(dm.get_feature_names_out()) == NUM
    Xr, yr = drop_missing_rows(X, weather["origin"], columns=NUM)
    assert Xr[NUM].notna().all().all() and len(yr) == len(Xr) == int(X[NUM].notna().all(axis=1).sum())


# ---- bad input: clear errors that name the argument and the problem ----

def test_unknown_columns(split, weather):
    tr, te = split
    with pytest.raises(SchemaError, match=r"unknown column\(s\) \['nope'\]"):
        simulate_missing(weather, "nope")
    with pytest.raises(SchemaError, match=r"\['tmp'\]"):
        drop_missing_rows(weather, columns=["temp", "tmp"])
    for est in (Imputer(), RangeScaler(), Standardizer(), LogScaler(), Discretizer(), DropMissingColumns()):
        est.fit(tr[NUM])
        with pytest.raises(SchemaError, match="Feature names unseen at fit time:\n- tmp"):
            est.transform(te[NUM].rename(columns={"temp": "tmp"}))
        with pytest.raises(SchemaError, match="Feature names seen at fit time, yet now missing"):
            est.transform(te[NUM[1:]])


def test_all_missing_columns(split):
    tr, _ = split
    X = tr[NUM].assign(dewp=np.nan)
    for est in (Imputer("mean"), Imputer("median"), Imputer("most_frequent"), RangeScaler(), Standardizer(), LogScaler(), Discretizer()):
        with pytest.raises(DataError, match=r"\['dewp'\] (are|is) entirely missing"):
            est.fit(X)
    assert np.all(Imputer("constant", fill_value=-1).fit_transform(X)[:, 1] == -1)  # a default still works


@pytest.mark.parametrize("est", [RangeScaler(), Standardizer(), LogScaler(), Imputer(), Discretizer()])
def test_non_numeric_to_scaler(weather, est):
    with pytest.raises(DataError, match=r"needs numeric columns, but 1 are not: 'origin' \(category\)"):
        est.fit(weather[["temp", "origin"]])
    with pytest.raises(DataError, match="'label' \\(object\\)|'label' \\(str\\)|'label' \\(string\\)"):
        est.fit(pd.DataFrame({"x": [1.0, 2.0], "label": ["a", "b"]}))


def test_bad_parameters(split):
    tr, _ = split
    with pytest.raises(ConfigError, match="strategy must be one of"):
        Imputer("avg").fit(tr[NUM])
    with pytest.raises(ConfigError, match="fill_value must be a number"):
        Imputer("constant", fill_value="none").fit(tr[NUM])
    with pytest.raises(DataError, match=r"strategy='median' needs numeric columns, but 1 are not: 'origin'"):
        Imputer("median").fit(tr[["temp", "origin"]])
    with pytest.raises(ConfigError, match="low < high"):
        RangeScaler((2, 2)).fit(tr[NUM])
    with pytest.raises(ConfigError, match="n_bins must be an integer >= 2"):
        Discretizer(n_bins=1).fit(tr[NUM])
    with pytest.raises(ConfigError, match="mechanism must be one of"):
        simulate_missing(tr, "temp", "random")
    with pytest.raises(ConfigError, match=r"rate must be in \(0, 1\)"):
        simulate_missing(tr, "temp", rate=1.5)


def test_deletion_and_imputation_bias_by_mechanism(weather):
    from sklearn.linear_model import LinearRegression
    full = weather.dropna(subset=["temp", "dewp", "humid"]).reset_index(drop=True)
    true_mean = full["temp"].mean()
    out = {}
    for m in ("mcar", "mar", "mnar"):
        d = simulate_missing(full, "temp", m, 0.3, depends_on="humid" if m == "mar" else None, random_state=2)
        kept = drop_missing_rows(d, columns=["temp"])
        imputed = Imputer("mean").fit_transform(d[["temp"]])
        with_ind = Imputer("mean", add_indicator=True).fit_transform(d[["temp"]])
        rmse = [np.sqrt(np.mean((LinearRegression().fit(X, d["dewp"]).predict(X) - d["dewp"]) ** 2)) for X in (imputed, with_ind)]
        out[m] = {"deletion bias": kept["temp"].mean() - true_mean, "imputed std ratio": imputed.std() / full["temp"].std(),
                  "indicator gain": rmse[0] - rmse[1]}
    assert abs(out["mcar"]["deletion bias"]) < 0.5  # MCAR: deletion is unbiased
    assert out["mnar"]["deletion bias"] < -3  # MNAR: the hot hours are gone
    for m in out:  # imputing one value shrinks the spread under every mechanism
        assert out[m]["imputed std ratio"] < 0.9
    # the missing indicator carries information only when missingness does
    assert out["mnar"]["indicator gain"] > 0.3
    assert out["mcar"]["indicator gain"] < 0.05
