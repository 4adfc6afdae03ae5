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
    with pytest.raises(SchemaError, match=r"column: X lacks column \['nope'\]"):
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
    with pytest.raises(ConfigError, match="fill_value must be a finite number"):
        Imputer("constant", fill_value="none").fit(tr[NUM])
    with pytest.raises(DataError, match=r"strategy='median' needs numeric columns, but 1 are not: 'origin'"):
        Imputer("median").fit(tr[["temp", "origin"]])
    with pytest.raises(ConfigError, match="low < high"):
        RangeScaler((2, 2)).fit(tr[NUM])
    with pytest.raises(ConfigError, match="n_bins must be an integer >= 2"):
        Discretizer(n_bins=1).fit(tr[NUM])
    with pytest.raises(ConfigError, match="mechanism must be one of"):
        simulate_missing(tr, "temp", "random")
    with pytest.raises(ConfigError, match=r"rate must be a finite number in \(0, 1\)"):
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


# ---- randomized differential tests against scikit-learn ----
# Generated cases mix ties, duplicates, constant and near-constant columns (the np.full(n, log 2)),
# large and tiny magnitudes, cancellation (1e9 + noise), NaN, float32 and a single row. Equality is bitwise:
# same dtype, same NaN cells, same values. One documented difference: a training column that is entirely
# missing is refused with DataError (scikit-learn returns NaN statistics or drops the column).

_KINDS = ("normal", "ties", "duplicates", "constant", "near_constant", "log2", "large", "tiny", "huge_offset", "nan_heavy")


def _column(rng, n, kind, f32, nan_ok):
    big = 1e30 if f32 else 1e150  # within float32's range when the case is float32
    if kind == "normal":
        c = rng.normal(rng.uniform(-5, 5), rng.uniform(0.1, 10), n)
    elif kind == "ties":
        c = rng.integers(-3, 4, n).astype(float)
    elif kind == "duplicates":
        c = rng.choice(rng.normal(size=3), n)
    elif kind == "constant":
        c = np.full(n, rng.choice([0.0, 1.0, -2.5, 1e6]))
    elif kind == "near_constant":  # a constant plus a few ulps of noise
        base = rng.choice([np.log(2), 0.1, 1e3, -7.3])
        c = base + np.spacing(base) * rng.integers(-2, 3, n)
    elif kind == "log2":  # floating std ~1e-16
        c = np.full(n, np.log(2))
    elif kind == "large":
        c = rng.normal(0, 1, n) * big
    elif kind == "tiny":
        c = rng.normal(0, 1, n) / big
    elif kind == "huge_offset":  # large magnitude, small spread: cancellation
        c = 1e9 + rng.normal(0, 1e-3, n)
    else:  # nan_heavy: mostly missing (often entirely, in small samples)
        c = rng.normal(size=n)
        c[rng.random(n) < 0.8] = np.nan
    if nan_ok and kind != "nan_heavy" and rng.random() < 0.3:
        c = c.copy()
        c[rng.random(n) < rng.uniform(0.05, 0.5)] = np.nan
    return c


def _case(rng, nan_ok=True):
    "(X_train, X_test): the same generated column kinds, float64 or float32, 1 to 200 training rows."
    f32 = rng.random() < 0.3
    kinds = rng.choice([k for k in _KINDS if nan_ok or k != "nan_heavy"], size=int(rng.integers(1, 5)))
    n, m = int(rng.choice([1, 2, 3, 5, 10, 40, 200])), int(rng.integers(1, 20))
    X = [np.column_stack([_column(rng, size, k, f32, nan_ok) for k in kinds]) for size in (n, m)]
    return [x.astype(np.float32) if f32 else x for x in X]


def _outcome(est, Xtr, Xte, inverse=False):
    "The transformed train and test sets (and the inverse of the test set), or the exception raised."
    import warnings
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scikit-learn warns about constant and all-missing columns
            est.fit(Xtr)
            out = [est.transform(Xtr), est.transform(Xte)]
            if inverse:
                out.append(est.inverse_transform(out[1]))
        return out
    except Exception as e:  # noqa: B902 - the exception is the outcome being compared
        return e


def _differential(make_ours, make_ref, n_cases, seed, nan_ok=True, inverse=False):
    "Count of cases, mismatches, and refusals of an all-missing training column (the documented difference)."
    rng = np.random.default_rng(seed)
    mismatches, refused = [], 0
    for i in range(n_cases):
        Xtr, Xte = _case(rng, nan_ok)
        ours, ref = _outcome(make_ours(i), Xtr, Xte, inverse), _outcome(make_ref(i), Xtr, Xte, inverse)
        empty = np.isnan(Xtr).all(axis=0).any()
        if isinstance(ours, Exception) or isinstance(ref, Exception):
            if empty and isinstance(ours, DataError) and "entirely missing" in str(ours) and not isinstance(ref, Exception):
                refused += 1
            elif not (isinstance(ours, DataError) and isinstance(ref, ValueError)):  # both refuse: fine
                mismatches.append((i, repr(ours)[:80], repr(ref)[:80]))
            continue
        for a, b in zip(ours, ref):
            if a.dtype != b.dtype or a.shape != b.shape or not np.array_equal(a, b, equal_nan=True):
                mismatches.append((i, Xtr.dtype, a.dtype, b.dtype))
                break
    return mismatches, refused


_RANGES = [(0.0, 1.0), (-1.0, 1.0), (-3.0, 5.0), (0.5, 0.75)]


def test_standardizer_equals_standard_scaler_on_generated_data():
    bad, refused = _differential(lambda i: Standardizer(), lambda i: StandardScaler(), 2000, seed=1, inverse=True)
    assert bad == [] and refused > 0


def test_range_scaler_equals_min_max_scaler_on_generated_data():
    bad, refused = _differential(lambda i: RangeScaler(_RANGES[i % 4]), lambda i: MinMaxScaler(_RANGES[i % 4]), 2000,
                                 seed=2, inverse=True)
    assert bad == [] and refused > 0


def test_imputer_equals_simple_imputer_on_generated_data():
    strategies = ["mean", "median", "most_frequent", "constant"]
    ours = lambda i: Imputer(strategies[i % 4], fill_value=-1.5, add_indicator=i % 3 == 0)
    # strategy="constant" fills an all-missing column, which SimpleImputer does with keep_empty_features=True
    ref = lambda i: SimpleImputer(strategy=strategies[i % 4], fill_value=-1.5, add_indicator=i % 3 == 0,
                                  keep_empty_features=strategies[i % 4] == "constant")
    bad, refused = _differential(ours, ref, 2000, seed=3)
    assert bad == [] and refused > 0


def test_discretizer_equals_kbins_on_generated_data():
    # KBinsDiscretizer refuses NaN (Discretizer passes it through), so these cases have none
    ours = lambda i: Discretizer(2 + i % 7, ["uniform", "quantile"][i % 2])
    ref = lambda i: KBinsDiscretizer(2 + i % 7, encode="ordinal", strategy=["uniform", "quantile"][i % 2],
                                     quantile_method="averaged_inverted_cdf", subsample=None)
    bad, refused = _differential(ours, ref, 2000, seed=4, nan_ok=False)
    assert bad == [] and refused == 0


def test_near_constant_column_is_constant():
    "np.full(1000, log 2) has a floating std of 1.1e-16: scikit-learn keeps a scale of 1, so it maps to ~0 (was -1.0)."
    X = np.full((1000, 1), np.log(2))
    st = Standardizer().fit(X)
    out = st.transform(X)
    np.testing.assert_array_equal(out, StandardScaler().fit_transform(X))
    assert st.scale_[0] == 1.0 and np.abs(out).max() < 1e-15  # the mean is one ulp off log 2
    X2 = np.array([[1.0], [1.0 + 2**-52]])  # a span of one ulp: MinMaxScaler treats it as constant too
    np.testing.assert_array_equal(RangeScaler().fit_transform(X2), MinMaxScaler().fit_transform(X2))


@pytest.mark.parametrize("est", [Imputer(), Imputer("median", add_indicator=True), RangeScaler(), Standardizer(),
                                 LogScaler(), Discretizer(3), Discretizer(3, "quantile")])
def test_float32_stays_float32(est):
    X = np.array([[1.0, 2.0], [np.nan, 3.0], [4.0, 5.0], [2.0, np.nan]], dtype=np.float32)
    assert est.fit(X).transform(X).dtype == np.float32
    assert est.fit(pd.DataFrame(X, columns=["a", "b"])).transform(pd.DataFrame(X, columns=["a", "b"])).dtype == np.float32
    assert est.fit(X.astype(np.float64)).transform(X.astype(np.float64)).dtype == np.float64
    assert est.fit(X.astype(np.float64)).transform(X).dtype == np.float32  # the output follows the input
    if hasattr(est, "inverse_transform"):
        assert est.fit(X).inverse_transform(est.transform(X)).dtype == np.float32


def test_transform_does_not_modify_its_input():
    X = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 7.0]])
    for est in (RangeScaler(), Standardizer(), Discretizer(2)):
        before = X.copy()
        est.fit(X).transform(X)
        if hasattr(est, "inverse_transform"):
            est.inverse_transform(X)
        np.testing.assert_array_equal(X, before)


def test_discretizer_boundaries_need_strategy_custom():
    X = np.arange(10.0).reshape(-1, 1)
    with pytest.raises(ConfigError, match=r"boundaries=\[3, 1, 2\] is only used with strategy='custom'"):
        Discretizer(boundaries=[3, 1, 2]).fit(X)  # was ignored silently: five uniform bins came out
    with pytest.raises(ConfigError, match="strictly increasing"):
        Discretizer(strategy="custom", boundaries=[3, 1, 2]).fit(X)
    with pytest.raises(ConfigError, match=r"boundaries names column\(s\) \['z'\] that X does not have"):
        Discretizer(strategy="custom", boundaries={"a": [1.0], "z": [2.0]}).fit(pd.DataFrame({"a": X[:, 0]}))
    for bad in (["1", "2"], [True, 2.0], [], 3.0, [[1.0, 2.0], [3.0]]):
        with pytest.raises(ConfigError, match="non-empty list of numbers"):
            Discretizer(strategy="custom", boundaries=bad).fit(X)


@pytest.mark.parametrize("call, exc, msg", [
    # simulate_missing
    (lambda X: simulate_missing(None, "a"), DataError, "X must be a pandas DataFrame, got NoneType"),
    (lambda X: simulate_missing(X, ["a", "b"]), DataError, "column must be one column name, got list"),
    (lambda X: simulate_missing(X, None), DataError, "column must be one column name, got NoneType"),
    (lambda X: simulate_missing(X, "a", rate="0.3"), ConfigError, r"rate must be a finite number in \(0, 1\), got '0.3'"),
    (lambda X: simulate_missing(X, "a", rate=True), ConfigError, "rate must be a finite number"),
    (lambda X: simulate_missing(X, "a", rate=float("nan")), ConfigError, "rate must be a finite number"),
    (lambda X: simulate_missing(X, "a", "mnar", strength="x"), ConfigError, "strength must be a finite number"),
    (lambda X: simulate_missing(X, "a", "mnar", strength=float("inf")), ConfigError, "strength must be a finite number"),
    (lambda X: simulate_missing(X, "a", random_state=-1), ConfigError, "random_state must be a non-negative int"),
    (lambda X: simulate_missing(X, "a", random_state="x"), ConfigError, "random_state must be a non-negative int"),
    (lambda X: simulate_missing(X, "a", "mar", depends_on="flag"), DataError, "'flag' drives missingness and must be numeric"),
    (lambda X: simulate_missing(X.assign(b=np.inf), "a", "mar", depends_on="b"), DataError, "must be finite"),
    (lambda X: simulate_missing(X, "a", np.array([])), ConfigError, "mechanism must be one of"),
    (lambda X: simulate_missing(X, "a", "mnar", depends_on="b"), ConfigError, "depends_on='b' is only used with mechanism='mar'"),
    (lambda X: drop_missing_rows(X, columns=object()), DataError, "columns must be a column name or a list of them"),
    (lambda X: Imputer().fit(X[["a", "b"]]).get_feature_names_out(["x"]), SchemaError, r"input_features=\['x'\] does not match the 2"),
    (lambda X: Discretizer().fit(X[["a", "b"]]).get_feature_names_out(["a", "c"]), SchemaError, "does not match"),
    # drop_missing_rows
    (lambda X: drop_missing_rows(None), DataError, "X must be a pandas DataFrame, got NoneType"),
    (lambda X: drop_missing_rows(X, y=5), DataError, "y must be a Series or array"),
    (lambda X: drop_missing_rows(X, y=[1, 2]), DataError, "y has 2 rows but X has 6"),
    (lambda X: drop_missing_rows(X, columns=None, y="abcdef"), DataError, "y must be a Series or array"),
    # parameters of the transformers, checked in fit
    (lambda X: DropMissingColumns(max_missing="half").fit(X), ConfigError, r"max_missing must be a finite number in \[0, 1\]"),
    (lambda X: DropMissingColumns(max_missing=True).fit(X), ConfigError, "max_missing must be a finite number"),
    (lambda X: Imputer(strategy=None).fit(X[["a"]]), ConfigError, "strategy must be one of"),
    (lambda X: Imputer(strategy=["mean"]).fit(X[["a"]]), ConfigError, "strategy must be one of"),
    (lambda X: Imputer("constant", fill_value=float("nan")).fit(X[["a"]]), ConfigError, "fill_value must be a finite number"),
    (lambda X: Imputer("constant", fill_value=True).fit(X[["a"]]), ConfigError, "fill_value must be a finite number"),
    (lambda X: Imputer(add_indicator="yes").fit(X[["a"]]), ConfigError, "add_indicator must be True or False"),
    (lambda X: RangeScaler(("0", "1")).fit(X[["a"]]), ConfigError, "feature_range must be a finite number"),
    (lambda X: RangeScaler((False, True)).fit(X[["a"]]), ConfigError, "feature_range must be a finite number"),
    (lambda X: RangeScaler((0, float("inf"))).fit(X[["a"]]), ConfigError, "feature_range must be a finite number"),
    (lambda X: RangeScaler((0, 1, 2)).fit(X[["a"]]), ConfigError, "pair of numbers"),
    (lambda X: RangeScaler("01").fit(X[["a"]]), ConfigError, "pair of numbers"),
    (lambda X: RangeScaler(None).fit(X[["a"]]), ConfigError, "pair of numbers"),
    (lambda X: LogScaler(shift=float("nan")).fit(X[["a"]]), ConfigError, "shift must be a finite number"),
    (lambda X: LogScaler(shift=True).fit(X[["a"]]), ConfigError, "shift must be a finite number"),
    (lambda X: LogScaler(shift="log").fit(X[["a"]]), ConfigError, "shift must be 'auto' or a finite number"),
    (lambda X: Discretizer(n_bins=2.5).fit(X[["a"]]), ConfigError, "n_bins must be an integer >= 2"),
    (lambda X: Discretizer(n_bins=True).fit(X[["a"]]), ConfigError, "n_bins must be an integer >= 2"),
    (lambda X: Discretizer(strategy=None).fit(X[["a"]]), ConfigError, "strategy must be"),
    # the data: None, text, empty, infinite, sparse, 3-D
    (lambda X: Standardizer().fit(None), DataError, "X: "),
    (lambda X: RangeScaler().fit("abc"), DataError, "X: "),
    (lambda X: Imputer().fit(np.empty((0, 2))), DataError, r"0 sample\(s\)"),
    (lambda X: Discretizer().fit(np.empty((3, 0))), DataError, r"0 feature\(s\)"),
    (lambda X: Standardizer().fit(np.array([[1.0], [np.inf]])), DataError, "infinity"),
    (lambda X: LogScaler().fit(np.ones((2, 2, 2))), DataError, "3"),
    (lambda X: RangeScaler().fit(__import__("scipy.sparse").sparse.csr_matrix(np.eye(3))), DataError, "[Ss]parse"),
    (lambda X: DropMissingColumns().fit(None), DataError, "X: "),
])
def test_bad_input_is_named(call, exc, msg):
    X = pd.DataFrame({"a": [1.0, np.nan, 3.0, 4.0, 5.0, 6.0], "b": [1.0, 2.0, 3.0, np.nan, 5.0, 6.0],
                      "flag": [True, False, True, True, False, True]})
    with pytest.raises(exc, match=msg):
        call(X)


def test_strong_mnar_does_not_overflow():
    X = pd.DataFrame({"a": np.r_[np.zeros(99), 1e6]})  # one huge value: exp(strength * z) overflowed to inf
    out = simulate_missing(X, "a", "mnar", rate=0.1, strength=40.0)
    assert out["a"].isna().sum() == 10 and np.isnan(out["a"].iloc[-1])
