"""Weak supervision: the vectorized LF applier equals snorkel's PandasLFApplier; bad LFs fail clearly."""
import numpy as np
import pandas as pd
import pytest

pytest.importorskip("snorkel")
duckdb = pytest.importorskip("duckdb")
from snorkel.labeling import PandasLFApplier, labeling_function

from mlsys.core import DataError, SchemaError
from mlsys.labeling.weak import (
    ABSTAIN,
    HAM,
    SPAM,
    VectorizedLFApplier,
    check_label_matrix,
    column_lf,
    compare_label_models,
    fit_soft,
    keyword_lf,
    lookup_lf,
    regex_lf,
    shape_features,
    shape_features_one,
    sms_spam_lfs,
    sms_splits,
)


@pytest.fixture(scope="module")
def splits():
    return sms_splits()


@pytest.fixture(scope="module")
def pairs(splits):
    return sms_spam_lfs(splits["dev"], duckdb.connect())


def test_splits_partition_all_messages(splits):
    assert [len(splits[k]) for k in ("train", "dev", "test")] == [3362, 300, 1200]
    assert sum(len(v) for v in splits.values()) == 4862
    with pytest.raises(DataError, match="leaves no training messages"):
        sms_splits(n_dev=3000, n_test=2000)


def test_vectorized_equals_snorkel_on_all_messages(splits, pairs):
    everything = pd.concat(list(splits.values()), ignore_index=True)
    L_snorkel = PandasLFApplier([p.row for p in pairs]).apply(everything, progress_bar=False)
    L_vec = VectorizedLFApplier([p.column for p in pairs]).apply(everything)
    assert L_vec.shape == (4862, 10)
    np.testing.assert_array_equal(L_vec, L_snorkel)
    # every LF fires somewhere and each kind covers both classes overall
    assert ((L_vec != ABSTAIN).sum(axis=0) > 0).all()
    assert set(np.unique(L_vec)) == {ABSTAIN, HAM, SPAM}


def test_equal_on_shuffled_and_sliced_frame(splits, pairs):
    df = splits["test"].sample(frac=1.0, random_state=3).iloc[100:400]  # non-default index
    np.testing.assert_array_equal(VectorizedLFApplier([p.column for p in pairs]).apply(df),
                                  PandasLFApplier([p.row for p in pairs]).apply(df, progress_bar=False))


def test_shape_features_match_python(splits):
    texts = splits["test"]["text"]
    np.testing.assert_array_equal(shape_features(texts), np.vstack([shape_features_one(t) for t in texts]))


def test_invalid_label_raises(splits):
    @column_lf()
    def too_big(df):
        return np.where(df["text"].str.len() > 50, 2, -1)

    @column_lf()
    def too_small(df):
        return np.full(len(df), -3)

    @column_lf()
    def floats(df):
        return np.zeros(len(df))

    @column_lf()
    def wrong_length(df):
        return np.zeros(3, dtype=int)

    dev = splits["dev"]
    with pytest.raises(DataError, match=r"LF 'too_big' returned invalid labels \[2\]"):
        VectorizedLFApplier([too_big]).apply(dev)
    with pytest.raises(DataError, match=r"'too_small' returned invalid labels \[-3\]"):
        VectorizedLFApplier([too_small]).apply(dev)
    with pytest.raises(DataError, match="dtype float64"):
        VectorizedLFApplier([floats]).apply(dev)
    with pytest.raises(DataError, match=r"shape \(3,\)"):
        VectorizedLFApplier([wrong_length]).apply(dev)
    with pytest.raises(DataError, match="cardinality=3"):
        check_label_matrix(np.array([[0, 3]]), 3, ["a", "b"])
    with pytest.raises(SchemaError, match=r"the frame given to LF 'kw' lacks column \['text'\]"):  # missing column, LF named
        VectorizedLFApplier([keyword_lf("kw", ["free"], SPAM).column]).apply(dev.rename(columns={"text": "body"}))

    @column_lf()
    def hand_written(df):
        return np.where(df["text"].str.len() > 5, SPAM, ABSTAIN)
    with pytest.raises(DataError, match=r"LF 'hand_written' failed on the frame \(KeyError"):  # a user LF's own error, LF named
        VectorizedLFApplier([hand_written]).apply(dev.rename(columns={"text": "body"}))
    # snorkel itself accepts the out-of-range label silently: the reason for the check
    @labeling_function()
    def too_big_row(x):
        return 2 if len(x.text) > 50 else -1
    assert (PandasLFApplier([too_big_row]).apply(dev, progress_bar=False) == 2).any()


def test_bad_lf_definitions():
    with pytest.raises(DataError, match="not a valid regular expression"):
        regex_lf("r", "(", SPAM)
    with pytest.raises(DataError, match="non-negative integer class index"):
        keyword_lf("k", ["a"], -1)
    with pytest.raises(DataError, match="non-empty"):
        keyword_lf("k", [], SPAM)
    with pytest.raises(DataError, match="cannot read column"):
        lookup_lf("l", duckdb.connect(), "missing_table", SPAM)
    with pytest.raises(DataError, match="duplicate names"):
        a = column_lf(name="a")(lambda df: np.zeros(len(df), dtype=int))
        VectorizedLFApplier([a, a])


def test_lookup_lf_row_and_column_agree():
    con = duckdb.connect()
    con.execute("CREATE TABLE blocked (number VARCHAR)")
    con.execute("INSERT INTO blocked VALUES ('87121'), ('80062')")
    df = pd.DataFrame({"text": pd.array(["txt 87121 now", "call 80062 or 12345", "no numbers", "871210 longer"], dtype="string")})
    pair = lookup_lf("db", con, "blocked", SPAM)
    expected = np.array([[SPAM], [SPAM], [ABSTAIN], [ABSTAIN]])
    np.testing.assert_array_equal(VectorizedLFApplier([pair.column]).apply(df), expected)
    np.testing.assert_array_equal(PandasLFApplier([pair.row]).apply(df, progress_bar=False), expected)


def test_label_models_and_end_model(splits, pairs):
    apply = VectorizedLFApplier([p.column for p in pairs]).apply
    L_train, L_dev, L_test = (apply(splits[k]) for k in ("train", "dev", "test"))
    names = [p.column.name for p in pairs]
    table, _ = compare_label_models(L_train, L_dev, splits["dev"]["y"], L_test, splits["test"]["y"], names)
    assert table.loc["LabelModel", "spam F1"] > 0.8
    assert table.loc["majority vote", "spam F1"] > 0.8
    assert table.loc["LabelModel", "spam F1"] > table.iloc[0]["spam F1"]  # beats the best single LF
    with pytest.raises(DataError, match=r"y_dev has 299 labels but L_dev has 300 rows"):
        compare_label_models(L_train, L_dev, splits["dev"]["y"][:-1], L_test, splits["test"]["y"], names)
    with pytest.raises(DataError, match="at least 3 LFs"):
        compare_label_models(L_train[:, :2], L_dev[:, :2], splits["dev"]["y"], L_test[:, :2], splits["test"]["y"], names[:2])
    # soft labels: a fit on probabilities p equals a weighted fit, and p in {0,1} equals a hard fit
    from sklearn.linear_model import LogisticRegression
    X = shape_features(splits["dev"]["text"])
    y = splits["dev"]["y"].to_numpy()
    hard = LogisticRegression(max_iter=1000).fit(X, y)
    soft = fit_soft(LogisticRegression(max_iter=1000), X, np.eye(2)[y])
    np.testing.assert_allclose(soft.coef_, hard.coef_, rtol=1e-6, atol=1e-8)
    with pytest.raises(DataError, match="sum to 1"):
        fit_soft(LogisticRegression(), X, np.full((len(X), 2), 0.7))


def test_object_and_python_string_columns(splits, pairs):
    df = splits["dev"][["text"]]
    L = VectorizedLFApplier([p.column for p in pairs]).apply(df)
    for dtype in (object, "string[python]"):
        np.testing.assert_array_equal(VectorizedLFApplier([p.column for p in pairs]).apply(df.astype({"text": dtype})), L)
