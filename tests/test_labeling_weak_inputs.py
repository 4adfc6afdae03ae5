"""Bad input to every public entry point of mlsys.labeling.weak raises a named mlsys error that names the input."""
import numpy as np
import pandas as pd
import pytest

pytest.importorskip("snorkel")
duckdb = pytest.importorskip("duckdb")
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from snorkel.labeling import PandasLFApplier

from mlsys.core import DataError, SchemaError
from mlsys.labeling.weak import (
    ABSTAIN,
    HAM,
    SPAM,
    ColumnLF,
    VectorizedLFApplier,
    check_label_matrix,
    column_lf,
    compare_label_models,
    contains_keywords,
    contains_regex,
    fit_soft,
    keyword_lf,
    lookup_lf,
    model_lf,
    plan_regex,
    regex_lf,
    shape_features,
    shape_features_one,
    sms_spam_lfs,
    sms_splits,
)

DEV = pd.DataFrame({"text": ["WINNER! claim your prize 08001234567", "ok see you later", "Free entry txt 87121", "lol k"] * 3,
                    "y": [1, 0, 1, 0] * 3})


@pytest.fixture(scope="module")
def con():
    c = duckdb.connect()
    c.execute("CREATE TABLE nums (number VARCHAR)")
    c.execute("INSERT INTO nums VALUES ('87121'), (NULL)")
    return c


@pytest.fixture(scope="module")
def model():
    return LogisticRegression(max_iter=1000).fit(shape_features(DEV["text"]), DEV["y"].to_numpy())


def test_shape_features_refuse_none_ints_and_missing():  # item 10
    with pytest.raises(DataError, match="texts must be a pandas Series of strings, got NoneType"):
        shape_features(None)
    with pytest.raises(DataError, match="texts must hold strings, got integer values"):
        shape_features(pd.Series([1, 2]))
    with pytest.raises(DataError, match=r"texts has 1 missing value\(s\) \(first at index 'b'\)"):
        shape_features(pd.Series(["a", None], index=["a", "b"]))
    with pytest.raises(DataError, match="text must be a str, got None"):
        shape_features_one(None)
    with pytest.raises(DataError, match="text must be a str, got 3"):
        shape_features_one(3)


def test_check_label_matrix_refuses_wrong_names_and_shapes():  # item 11 and its class
    L = np.array([[0, 1], [1, -1], [-1, 0]])
    with pytest.raises(DataError, match="names has 1 entries but label matrix L has 2 columns"):
        check_label_matrix(L, 2, ["a"])
    with pytest.raises(DataError, match="names has 3 entries"):
        check_label_matrix(L, 2, ["a", "b", "c"])
    with pytest.raises(DataError, match="names must be a list of LF names"):
        check_label_matrix(L, 2, "ab")
    with pytest.raises(DataError, match="label matrix L is None"):
        check_label_matrix(None, 2)
    with pytest.raises(DataError, match="must hold integers, got dtype bool"):
        check_label_matrix(L > 0, 2)
    with pytest.raises(DataError, match=r"is empty \(shape \(0, 3\)\)"):
        check_label_matrix(np.zeros((0, 3), dtype=int), 2)
    with pytest.raises(DataError, match="not a rectangular array"):
        check_label_matrix([[0, 1], [1]], 2)
    for bad in (True, 1, 2.0, None):
        with pytest.raises(DataError, match="cardinality=.* must be an integer of at least 2"):
            check_label_matrix(L, bad)
    with pytest.raises(DataError, match=r"LF 'b' returned invalid labels \[5\]"):
        check_label_matrix(np.array([[0, 5]]), 2, ["a", "b"])
    np.testing.assert_array_equal(check_label_matrix(L, 2, ["a", "b"]), L)


def test_applier_refuses_bad_lfs_frames_and_outputs():
    kw = keyword_lf("kw", ["free"], SPAM)
    with pytest.raises(DataError, match="lfs must be a list of ColumnLF, got NoneType"):
        VectorizedLFApplier(None)
    with pytest.raises(DataError, match=r"lfs\[0\] is a LFPair, not a ColumnLF \(an LFPair: pass its .column\)"):
        VectorizedLFApplier([kw])
    with pytest.raises(DataError, match="row-wise snorkel LF"):
        VectorizedLFApplier([kw.row])
    with pytest.raises(DataError, match="cardinality=True"):
        VectorizedLFApplier([kw.column], cardinality=True)
    applier = VectorizedLFApplier([kw.column])
    with pytest.raises(DataError, match="df must be a pandas DataFrame, got NoneType"):
        applier.apply(None)
    with pytest.raises(DataError, match="df must be a pandas DataFrame, got list"):
        applier.apply(["free"])
    with pytest.raises(DataError, match="df has no rows"):
        applier.apply(DEV.iloc[:0])
    with pytest.raises(DataError, match=r"LF 'kw': column 'text' has 1 missing value\(s\) \(first at index 1\)"):
        applier.apply(pd.DataFrame({"text": ["free", None]}))
    with pytest.raises(DataError, match=r"LF 'kw': column 'text' has 1 missing value"):
        applier.apply(pd.DataFrame({"text": pd.Series(["free", np.nan], dtype="str")}))
    with pytest.raises(DataError, match="LF 'kw': column 'text' must hold strings, got integer values"):
        applier.apply(pd.DataFrame({"text": [1, 2]}))
    with pytest.raises(SchemaError, match=r"the frame given to LF 'kw' lacks column \['text'\]"):
        applier.apply(pd.DataFrame({"body": ["free"]}))

    @column_lf()
    def votes_bool(df):
        return np.ones(len(df), dtype=bool)

    @column_lf()
    def votes_uint_max(df):  # 2**64-1 used to wrap to -1 (abstain) in the int64 matrix
        return np.full(len(df), np.iinfo(np.uint64).max, dtype=np.uint64)

    with pytest.raises(DataError, match="LF 'votes_bool' returned dtype bool"):
        VectorizedLFApplier([votes_bool]).apply(DEV)
    with pytest.raises(DataError, match=r"LF 'votes_uint_max' returned invalid labels \[18446744073709551615\]"):
        VectorizedLFApplier([votes_uint_max]).apply(DEV)


def test_row_lfs_refuse_missing_text_in_snorkel_too():
    "Snorkel's applier used to raise a raw AttributeError/TypeError on a missing message; the row LFs name it."
    df = pd.DataFrame({"text": ["free", None]})
    for pair in (keyword_lf("kw", ["free"], SPAM), regex_lf("rx", "free", SPAM)):
        with pytest.raises(DataError, match=f"LF '{pair.column.name}': column 'text' must hold strings, got (None|nan)"):
            PandasLFApplier([pair.row]).apply(df, progress_bar=False)
    with pytest.raises(SchemaError, match="LF 'kw2': the data point has no field 'body'"):
        PandasLFApplier([keyword_lf("kw2", ["free"], SPAM, column="body").row]).apply(df.iloc[:1], progress_bar=False)


def test_column_lf_definitions_refuse_bad_values():
    with pytest.raises(DataError, match="LF name must be a non-empty string, got None"):
        ColumnLF(None, len)
    with pytest.raises(DataError, match="LF 'a': func must be callable, got NoneType"):
        ColumnLF("a", None)
    with pytest.raises(DataError, match="resources must be a dict"):
        ColumnLF("a", len, resources=[1])
    with pytest.raises(DataError, match="LF name must be a non-empty string, got 3"):
        column_lf(name=3)
    with pytest.raises(DataError, match="column_lf decorates a function"):
        column_lf()(None)


@pytest.mark.parametrize("make, match", [
    (lambda c, m: keyword_lf("k", "free", SPAM), "keywords must be a list of strings, got str 'free' .*wrap it in a list"),
    (lambda c, m: keyword_lf("k", None, SPAM), "keywords must be a list of strings, got NoneType"),
    (lambda c, m: keyword_lf("k", ["a", 3], SPAM), "keywords must be a non-empty list of non-empty strings"),
    (lambda c, m: keyword_lf("k", ["a", ""], SPAM), "keywords must be a non-empty list of non-empty strings"),
    (lambda c, m: keyword_lf(None, ["a"], SPAM), "LF name must be a non-empty string, got None"),
    (lambda c, m: keyword_lf("k", ["a"], SPAM, ignore_case=None), "ignore_case must be True or False, got None"),
    (lambda c, m: keyword_lf("k", ["a"], True), "LF 'k': label=True must be a non-negative integer class index"),
    (lambda c, m: keyword_lf("k", ["a"], 1.0), "LF 'k': label=1.0 must be a non-negative integer"),
    (lambda c, m: keyword_lf("k", ["a"], SPAM, column=None), "LF 'k': column must be a non-empty column name, got None"),
    (lambda c, m: regex_lf("r", None, SPAM), "LF 'r': pattern must be a str regular expression, got NoneType"),
    (lambda c, m: regex_lf("r", "(", SPAM), r"LF 'r': pattern='\(' is not a valid regular expression"),
    (lambda c, m: regex_lf("r", "(?u)a", SPAM), "not a valid regular expression"),
    (lambda c, m: regex_lf("r", "a", SPAM, ignore_case="yes"), "ignore_case must be True or False, got 'yes'"),
    (lambda c, m: lookup_lf("l", None, "nums", SPAM), "LF 'l': con must be a DuckDB connection, got NoneType"),
    (lambda c, m: lookup_lf("l", c, None, SPAM), "table=None and key='number' must be plain SQL identifiers"),
    (lambda c, m: lookup_lf("l", c, "nums; DROP TABLE nums", SPAM), "must be plain SQL identifiers"),
    (lambda c, m: lookup_lf("l", c, "missing_table", SPAM), "LF 'l': cannot read column 'number' of table 'missing_table'"),
    (lambda c, m: lookup_lf("l", c, "nums", SPAM, pattern="("), r"LF 'l': pattern='\(' is not a valid regular expression"),
    (lambda c, m: lookup_lf("l", c, "nums", SPAM, pattern=None), "LF 'l': pattern must be a str regular expression"),
    (lambda c, m: model_lf("m", None), "LF 'm': model must be a fitted classifier with predict_proba and classes_, got NoneType"),
    (lambda c, m: model_lf("m", LogisticRegression()), "model must be a fitted classifier"),
    (lambda c, m: model_lf("m", m, label=3), r"LF 'm': label=3 is not among the model's classes \[0, 1\]"),
    (lambda c, m: model_lf("m", m, label=1, other=1), "label and other are both 1"),
    (lambda c, m: model_lf("m", m, high="x"), "LF 'm': high='x' must be a finite number"),
    (lambda c, m: model_lf("m", m, low=float("nan")), "LF 'm': low=nan must be a finite number"),
    (lambda c, m: model_lf("m", m, low=0.9, high=0.1), "need 0 <= low < high <= 1"),
    (lambda c, m: model_lf("m", LogisticRegression().fit(np.eye(3), [0, 1, 1])), "model was fitted on 3 features"),
])
def test_lf_factories_refuse_bad_arguments(con, model, make, match):
    with pytest.raises(DataError, match=match):
        make(con, model)


def test_lookup_lf_ignores_null_keys_and_uses_whole_matches(con):
    "NULL keys used to become the token 'None' per row only; a pattern with a group returned the group per row only."
    df = pd.DataFrame({"text": ["None of it", "txt 87121", "call 812345"]})
    for pattern in (r"\w+", r"(\d)\d{4}"):
        pair = lookup_lf("l", con, "nums", SPAM, pattern=pattern)
        L_row = PandasLFApplier([pair.row]).apply(df, progress_bar=False)
        np.testing.assert_array_equal(VectorizedLFApplier([pair.column]).apply(df), L_row)
        np.testing.assert_array_equal(L_row[:, 0], [ABSTAIN, SPAM, ABSTAIN])


def test_lookup_lf_reads_a_snapshot_of_the_table():
    "Both versions look up the keys read when the LF was built, even if the table changes afterwards."
    c = duckdb.connect()
    c.execute("CREATE TABLE nums (number BIGINT)")
    c.execute("INSERT INTO nums VALUES (87121)")
    pair = lookup_lf("l", c, "nums", SPAM)
    c.execute("INSERT INTO nums VALUES (80062)")
    df = pd.DataFrame({"text": ["txt 87121", "call 80062"]})
    L_row = PandasLFApplier([pair.row]).apply(df, progress_bar=False)
    np.testing.assert_array_equal(VectorizedLFApplier([pair.column]).apply(df), L_row)
    np.testing.assert_array_equal(L_row[:, 0], [SPAM, ABSTAIN])


def test_contains_helpers_and_plan_refuse_bad_input():
    with pytest.raises(DataError, match="texts must be a pandas Series of strings, got NoneType"):
        contains_regex(None, "a")
    with pytest.raises(DataError, match="texts has 1 missing value"):
        contains_keywords(pd.Series(["a", None]), ["a"])
    with pytest.raises(DataError, match="keywords must be a list of strings, got str"):
        contains_keywords(pd.Series(["a"]), "a")
    with pytest.raises(DataError, match="pattern must be a str regular expression, got bytes"):
        plan_regex(b"a")
    with pytest.raises(DataError, match="texts must hold strings, got mixed values"):
        contains_regex(pd.Series(["a", b"b"]), "a")
    np.testing.assert_array_equal(contains_regex(pd.Series([], dtype="str"), "a"), np.zeros(0, dtype=bool))


@pytest.mark.parametrize("kwargs, match", [
    ({"n_dev": None}, "n_dev=None must be an integer, got NoneType"),
    ({"n_dev": 300.5}, "n_dev=300.5 must be an integer, got float"),
    ({"n_test": True}, "n_test=True must be an integer, got bool"),
    ({"n_dev": 0}, "n_dev=0 must be at least 1"),
    ({"random_state": "x"}, "random_state='x' must be an integer"),
])
def test_sms_splits_refuses_bad_arguments(kwargs, match):
    with pytest.raises(DataError, match=match):
        sms_splits(**kwargs)


@pytest.mark.parametrize("dev, con_arg, match", [
    (None, None, "dev must be a pandas DataFrame, got NoneType"),
    (DEV.drop(columns="y"), None, r"dev lacks column \['y'\]"),
    (DEV.assign(text=[None] + list(DEV["text"][1:])), None, r"dev\['text'\] has 1 missing value\(s\) \(first at index 0\)"),
    (DEV.assign(y=DEV["y"].astype(bool)), None, r"dev\['y'\] must hold integer class labels 0..1, got dtype bool"),
    (DEV.assign(y=DEV["y"] * 2), None, r"dev\['y'\] has labels \[2\] outside 0..1"),
    (DEV.assign(y=DEV["y"].astype(float)), None, r"dev\['y'\] must hold integer class labels 0..1, got dtype float64"),
    (DEV.assign(y=0), None, "dev needs both spam and ham examples"),
    (DEV, "not a connection", "con must be a DuckDB connection or None, got str"),
])
def test_sms_spam_lfs_refuses_bad_dev(dev, con_arg, match):
    with pytest.raises(DataError, match=match):
        sms_spam_lfs(dev, con_arg)


def test_compare_label_models_refuses_bad_matrices_and_labels():
    rng = np.random.default_rng(0)
    L = rng.integers(-1, 2, size=(40, 3))
    y = rng.integers(0, 2, size=40)
    names = ["a", "b", "c"]
    with pytest.raises(DataError, match="names is None"):
        compare_label_models(L, L, y, L, y, None)
    with pytest.raises(DataError, match="L_train: names has 2 entries but label matrix L has 3 columns"):
        compare_label_models(L, L, y, L, y, names[:2])
    with pytest.raises(DataError, match="L_dev: label matrix L must hold integers, got dtype bool"):
        compare_label_models(L, L > 0, y, L, y, names)
    with pytest.raises(DataError, match="L_train: label matrix L is empty"):
        compare_label_models(L[:0], L, y, L, y, names)
    with pytest.raises(DataError, match="y_dev must hold integer class labels 0..1, got dtype bool"):
        compare_label_models(L, L, y.astype(bool), L, y, names)
    with pytest.raises(DataError, match="y_test must hold integer class labels 0..1, got dtype float64"):
        compare_label_models(L, L, y, L, np.where(y > 0, np.nan, 0.0), names)
    with pytest.raises(DataError, match=r"y_test has labels \[3\] outside 0..1"):
        compare_label_models(L, L, y, L, np.full(40, 3), names)
    with pytest.raises(DataError, match="y_dev is None"):
        compare_label_models(L, L, None, L, y, names)
    with pytest.raises(DataError, match="n_epochs=0 must be at least 1"):
        compare_label_models(L, L, y, L, y, names, n_epochs=0)
    with pytest.raises(DataError, match="fallback=2 must be a class in 0..1"):
        compare_label_models(L, L, y, L, y, names, fallback=2)


def test_fit_soft_refuses_bad_input():
    X = np.random.default_rng(0).normal(size=(10, 2))
    p = np.full((10, 2), 0.5)
    with pytest.raises(DataError, match="X must be a 2-D array, sparse matrix or DataFrame, got NoneType"):
        fit_soft(LogisticRegression(), None, p)
    with pytest.raises(DataError, match="X must be a 2-D array.*got list"):
        fit_soft(LogisticRegression(), X.tolist(), p)
    with pytest.raises(DataError, match=r"probs has 1 NaN or infinite value\(s\)"):
        fit_soft(LogisticRegression(), X, np.where(np.arange(20).reshape(10, 2) == 3, np.nan, 0.5))
    with pytest.raises(DataError, match="probs is None"):
        fit_soft(LogisticRegression(), X, None)
    with pytest.raises(DataError, match="KNeighborsClassifier.fit takes no sample_weight"):
        fit_soft(KNeighborsClassifier(), X, p)
    with pytest.raises(DataError, match="estimator must be a scikit-learn estimator with fit, got NoneType"):
        fit_soft(None, X, p)
    with pytest.raises(DataError, match="X has no rows"):
        fit_soft(LogisticRegression(), X[:0], p[:0])
    assert fit_soft(LogisticRegression(), X, np.eye(2)[np.arange(10) % 2]).classes_.tolist() == [HAM, SPAM]


def test_categorical_text_labels_like_its_strings(con, model):
    "A categorical column of strings gives the row LFs plain strings; the column LFs now read it the same way."
    df = pd.DataFrame({"text": pd.Series(["free prize", "hi", "txt 87121", "free prize"], dtype="category")})
    pairs = [keyword_lf("kw", ["free"], SPAM), regex_lf("rx", r"^hi$", HAM), lookup_lf("l", con, "nums", SPAM),
             model_lf("m", model, high=0.6, low=0.4)]
    np.testing.assert_array_equal(VectorizedLFApplier([p.column for p in pairs]).apply(df),
                                  PandasLFApplier([p.row for p in pairs]).apply(df, progress_bar=False))
    np.testing.assert_array_equal(shape_features(df["text"]), shape_features(df["text"].astype(object)))
    with pytest.raises(DataError, match="texts must hold strings, got integer values"):
        shape_features(pd.Series([1, 2], dtype="category"))


def test_fit_soft_needs_two_classes():
    with pytest.raises(DataError, match=r"probs must have shape \(n_rows=4, n_classes >= 2\), got \(4, 1\)"):
        fit_soft(LogisticRegression(), np.eye(4), np.ones((4, 1)))


def test_an_unknown_parse_tree_falls_back_to_python(monkeypatch):
    "If Python's parser ever hands the translator something it does not know, the LF runs in Python, exactly."
    import mlsys.labeling.weak as weak

    def broken(self, sub, flags):
        raise AttributeError("new node layout")
    monkeypatch.setattr(weak._Translator, "emit", broken)
    plan = plan_regex(r"^ab$")
    assert plan.re2 is None and plan.python_rows == ("all",) and "cannot translate" in plan.reason
    np.testing.assert_array_equal(contains_regex(pd.Series(["ab\n", "abc", "ab"]), plan), [True, False, True])
