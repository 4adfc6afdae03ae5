"""Text augmentation: lexicon, EDA operations, BERT-style proportions, templates, bad input."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mlsys.augment.text import (EDA, KEEP, MASK, RANDOM, UNCHANGED, BertMasker, SynonymLexicon, bert_mask_ids, check_texts,
                                random_deletion, random_insertion, random_swap, synonym_replacement,
                                synthesize_from_templates, template_slots, tokenize)
from mlsys.core import ConfigError, DataError
from mlsys.datasets import load_sms_spam


@pytest.fixture(scope="module")
def sms():
    return load_sms_spam(sample=800, random_state=0)


@pytest.fixture(scope="module")
def lex(sms):
    return SynonymLexicon(min_count=3, n_components=20).fit(sms["text"])


def test_lexicon_finds_words_used_in_identical_contexts():
    # "cat" and "dog" share every context; "car" lives elsewhere
    texts = [f"my {a} likes to eat fish every day" for a in ["cat", "dog"] * 10] + \
            [f"the {b} needs fuel and new tyres today" for b in ["car", "truck"] * 10]
    lex = SynonymLexicon(min_count=2, n_components=5, min_similarity=0.5, groups=None).fit(texts)
    assert lex.synonyms("cat")[0] == "dog" and lex.synonyms("car")[0] == "truck"
    assert lex.similarity("cat", "dog") > lex.similarity("cat", "truck")
    assert "fish" not in lex.synonyms("cat") or lex.similarity("cat", "dog") >= lex.similarity("cat", "fish")


def test_packaged_groups_are_symmetric(lex):
    assert "you" in lex.synonyms("u") and "u" in lex.synonyms("you")
    bare = SynonymLexicon(groups=None, min_count=3, n_components=20).fit(["see u soon", "see you soon"] * 3)
    assert "you" not in bare.synonyms("u") or "u" in bare.distributional_


def test_eda_operations_properties(sms, lex):
    rng = np.random.default_rng(1)
    for text in sms["text"].head(200):
        toks = tokenize(text)
        assert sorted(random_swap(toks, 3, rng)) == sorted(toks)
        de = random_deletion(toks, 0.5, rng)
        it = iter(toks)
        assert all(t in it for t in de)
        if toks:
            assert len(de) >= 1
        ins = random_insertion(toks, lex, 2, rng)
        assert len(ins) in (len(toks), len(toks) + 1, len(toks) + 2)
        sr = synonym_replacement(toks, lex, 3, rng)
        assert len(sr) == len(toks) and sum(a != b for a, b in zip(toks, sr)) <= 3
        assert all(a == b or b in lex.synonyms(a) for a, b in zip(toks, sr))


def test_random_deletion_rate(sms):
    toks = [t for text in sms["text"] for t in tokenize(text)]
    rng = np.random.default_rng(0)
    kept = len(random_deletion(toks, 0.2, rng))
    assert stats.binomtest(kept, len(toks), 0.8).pvalue > 1e-3


def test_eda_is_deterministic_and_copies_labels(sms, lex):
    eda = EDA(lex, n_aug=3, random_state=4)
    df = sms.head(40)
    a, b = eda.augment_frame(df), EDA(lex, n_aug=3, random_state=4).augment_frame(df)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 160 and a["augmented"].sum() == 120
    aug = a[a["augmented"]].reset_index(drop=True)
    assert (aug["label"].to_numpy() == np.repeat(df["label"].to_numpy(), 3)).all()
    assert EDA(lex, random_state=5).augment("hello there") != [] and len(EDA(lex, n_aug=7).augment("a b c")) == 7


def test_bert_proportions_statistically():
    rng = np.random.default_rng(123)
    ids = rng.integers(5, 1000, size=200_000)
    new, action = bert_mask_ids(ids, 1000, mask_id=0, rng=rng)
    sel = action != KEEP
    assert stats.binomtest(int(sel.sum()), ids.size, 0.15).pvalue > 1e-3
    counts = np.array([(action == MASK).sum(), (action == RANDOM).sum(), (action == UNCHANGED).sum()])
    assert stats.chisquare(counts, sel.sum() * np.array([0.8, 0.1, 0.1])).pvalue > 1e-3
    assert (new[action == MASK] == 0).all()
    assert (new[action == UNCHANGED] == ids[action == UNCHANGED]).all()
    assert (new[action == KEEP] == ids[action == KEEP]).all()
    # random replacements are uniform over the vocabulary
    hist = np.bincount(new[action == RANDOM] // 100, minlength=10)
    assert stats.chisquare(hist).pvalue > 1e-3


def test_bert_special_positions_never_selected():
    rng = np.random.default_rng(0)
    ids = np.arange(1000).reshape(10, 100)
    special = np.zeros_like(ids, dtype=bool)
    special[:, 0] = True
    _, action = bert_mask_ids(ids, 1000, -1, rng, mask_prob=1.0, special=special)
    assert (action[:, 0] == KEEP).all() and (action[:, 1:] != KEEP).all()


def test_bert_masker_on_sms(sms):
    m = BertMasker(random_state=0).fit(sms["text"])
    out, actions = m.transform_with_actions(sms["text"])
    act = np.concatenate(actions)
    assert abs((act != KEEP).mean() - 0.15) < 0.01
    assert out == BertMasker(random_state=0).fit(sms["text"]).transform(sms["text"])
    assert "[MASK]" in " ".join(out)


def test_templates_enumerate_and_draw():
    slots = {"A": ["x", "y"], "B": ["1", "2", "3"]}
    full = synthesize_from_templates({"{A} and {B}": "p", "only {A}": "q"}, slots, n=None)
    assert len(full) == 2 * 3 + 2 and full["text"].is_unique
    assert set(full["label"]) == {"p", "q"}
    drawn = synthesize_from_templates(["{A}-{B}-{A}"], slots, n=50, random_state=3)
    assert all(t.split("-")[0] == t.split("-")[2] for t in drawn["text"])  # one value per slot per message
    assert template_slots("{A} {B} {A}") == ["A", "B"]


@pytest.mark.parametrize("call, exc, msg", [
    (lambda: tokenize(3), DataError, "text must be a str"),
    (lambda: SynonymLexicon().fit(["ok", None]), DataError, r"texts\[1\] must be a str"),
    (lambda: SynonymLexicon().fit("one string"), DataError, "not a single string"),
    (lambda: SynonymLexicon(min_count=50).fit(["a b c"] * 3), DataError, "min_count=50"),
    (lambda: SynonymLexicon(groups="wordnet").fit(["a b c"] * 6), ConfigError, "groups must be"),
    (lambda: BertMasker(mask_frac=0.95, random_frac=0.1).fit(["a b"]), ConfigError, "at most 1"),
    (lambda: bert_mask_ids(np.array([0.5]), 10, 0, np.random.default_rng()), DataError, "ids must be integers"),
    (lambda: synthesize_from_templates(["{X}"], {}), ConfigError, r"uses slot \{X\}"),
    (lambda: synthesize_from_templates([], {}), ConfigError, "templates must not be empty"),
    (lambda: synthesize_from_templates(["{X}"], {"X": ["a"]}, n=-1), ConfigError, "n must be a positive int"),
])
def test_bad_input(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


def test_eda_bad_input(lex):
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError):
        EDA(SynonymLexicon())
    with pytest.raises(ConfigError, match="alpha_rs"):
        EDA(lex, alpha_rs=-0.1)
    with pytest.raises(ConfigError, match="n_aug"):
        EDA(lex, n_aug=0)
    with pytest.raises(DataError, match="text_col='body'"):
        EDA(lex).augment_frame(pd.DataFrame({"text": ["a"]}), text_col="body")


def test_learnable_text_parts_follow_the_sklearn_contract(sms):
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError
    for est in [SynonymLexicon(min_count=3, n_components=10, groups=None), BertMasker(mask_prob=0.2, random_state=3)]:
        c = clone(est)
        assert c.get_params() == est.get_params()
        with pytest.raises(NotFittedError):
            (c.synonyms("hi") if isinstance(c, SynonymLexicon) else c.transform(["hi"]))
        assert c.fit(sms["text"]) is c  # fit returns self
        assert not any(k.endswith("_") for k in c.get_params())


# ---- refusals that used to return a value (issue 9, item 11) and the same classes of bug elsewhere ----

@pytest.mark.parametrize("call, exc, msg", [
    (lambda lex: random_deletion(["a", "b"], 1.5, np.random.default_rng()), ConfigError, r"p must be a number in \[0, 1\], got 1.5"),
    (lambda lex: random_deletion(["a", "b"], -1, np.random.default_rng()), ConfigError, "p must be a number"),
    (lambda lex: random_deletion(["a", "b"], float("nan"), np.random.default_rng()), ConfigError, "p must be a number"),
    (lambda lex: random_deletion(["a", "b"], True, np.random.default_rng()), ConfigError, "p must be a number"),
    (lambda lex: random_swap(["a", "b"], -1, np.random.default_rng()), ConfigError, "n must be an int >= 0, got -1"),
    (lambda lex: random_swap(["a", "b"], 1.5, np.random.default_rng()), ConfigError, "n must be an int >= 0"),
    (lambda lex: random_insertion(["a"], lex, -2, np.random.default_rng()), ConfigError, "n must be an int >= 0"),
    (lambda lex: synonym_replacement(["a"], lex, -1, np.random.default_rng()), ConfigError, "n must be an int >= 0"),
    (lambda lex: synonym_replacement(["a"], lex, True, np.random.default_rng()), ConfigError, "n must be an int >= 0"),
    (lambda lex: random_swap("hello world", 1, np.random.default_rng()), DataError, "split into characters"),
    (lambda lex: random_deletion(None, 0.1, np.random.default_rng()), DataError, "tokens must be a list of str"),
    (lambda lex: random_swap(["a", 3], 1, np.random.default_rng()), DataError, r"tokens\[1\] must be a str"),
    (lambda lex: random_swap(["a", "b"], 1, 42), ConfigError, "rng must be a numpy Generator"),
    (lambda lex: random_insertion(["a"], {"a": ["b"]}, 1, np.random.default_rng()), ConfigError, "lexicon must be a fitted SynonymLexicon"),
    (lambda lex: synonym_replacement(["a"], None, 1, np.random.default_rng()), ConfigError, "lexicon must be a fitted SynonymLexicon, got NoneType"),
    (lambda lex: bert_mask_ids([[1, 2], [3]], 10, 0, np.random.default_rng()), DataError, "must be rectangular arrays"),
    (lambda lex: bert_mask_ids(np.array([0, 5, 10]), 10, 0, np.random.default_rng()), DataError,
     r"ids must lie in \[0, vocab_size=10\); 1 do not, e.g. \[10\]"),
    (lambda lex: bert_mask_ids(np.array([-1, 2]), 10, 0, np.random.default_rng()), DataError, r"e.g. \[-1\]"),
    (lambda lex: bert_mask_ids(np.array([0, 1]), 2.5, 0, np.random.default_rng()), ConfigError, "vocab_size must be an int >= 1"),
    (lambda lex: bert_mask_ids(np.array([0, 1]), True, 0, np.random.default_rng()), ConfigError, "vocab_size must be an int >= 1"),
    (lambda lex: bert_mask_ids(np.array([0, 1]), 10, "[MASK]", np.random.default_rng()), ConfigError, "mask_id must be an int"),
    (lambda lex: bert_mask_ids(np.array([0, 1], dtype=np.int8), 10, 1000, np.random.default_rng()), ConfigError, "must fit in the ids' dtype int8"),
    (lambda lex: bert_mask_ids(np.array([True, False]), 10, 0, np.random.default_rng()), DataError, "ids must be integers"),
    (lambda lex: bert_mask_ids(np.array([0, 1]), 10, 0, None), ConfigError, "rng must be a numpy Generator"),
    (lambda lex: bert_mask_ids(np.array([0, 1]), 10, 0, np.random.default_rng(), special=np.array([0.5, 2.0])), DataError,
     "special must be a boolean mask"),
    (lambda lex: template_slots("hello {name"), DataError, r"'\{' at position 6 that is not part of a slot"),
    (lambda lex: template_slots("hello name}"), DataError, r"'\}' at position 10"),
    (lambda lex: template_slots("a {} b"), DataError, "not part of a slot"),
    (lambda lex: template_slots("{1st} prize"), DataError, "not part of a slot"),
    (lambda lex: template_slots(None), DataError, "template must be a str, got NoneType"),
    (lambda lex: synthesize_from_templates(["win {X"], {"X": ["a"]}), DataError, "not part of a slot"),
    (lambda lex: synthesize_from_templates("{X} wins", {"X": ["a"]}), ConfigError, "templates must be a list of template strings"),
    (lambda lex: synthesize_from_templates(None, {"X": ["a"]}), ConfigError, "templates must be a list"),
    (lambda lex: synthesize_from_templates(["{X}"], [("X", ["a"])]), ConfigError, r"slots must be a mapping"),
    (lambda lex: synthesize_from_templates(["{X}"], {"X": "abc"}), ConfigError, "split into characters"),
    (lambda lex: synthesize_from_templates(["{X}"], {"X": ["a"]}, n=True), ConfigError, "n must be a positive int"),
    (lambda lex: synthesize_from_templates(["{X}"], {"X": ["a"]}, random_state=-1), ConfigError, "random_state must be a non-negative int"),
    (lambda lex: synthesize_from_templates([None], {"X": ["a"]}), DataError, "template must be a str, got NoneType"),
    (lambda lex: check_texts(None), DataError, "texts must be a list, Series or array of strings, got NoneType"),
    (lambda lex: check_texts(5), DataError, "got int"),
    (lambda lex: check_texts({"a": 1}), DataError, "got dict"),
    (lambda lex: SynonymLexicon().fit(None), DataError, "got NoneType"),
    (lambda lex: SynonymLexicon(min_similarity=None).fit(["a b c"] * 6), ConfigError, r"min_similarity must be a number in \[-1, 1\]"),
    (lambda lex: SynonymLexicon(min_similarity=True).fit(["a b c"] * 6), ConfigError, "min_similarity must be a number"),
    (lambda lex: SynonymLexicon(min_count=2.5).fit(["a b c"] * 6), ConfigError, "min_count must be an int >= 1"),
    (lambda lex: SynonymLexicon(window=True).fit(["a b c"] * 6), ConfigError, "window must be an int >= 1"),
    (lambda lex: SynonymLexicon(groups=[["a", 1]]).fit(["a b c"] * 6), ConfigError, r"groups\[0\] must be a sequence of non-empty words"),
    (lambda lex: SynonymLexicon(groups=["ab"]).fit(["a b c"] * 6), ConfigError, r"groups\[0\]"),
    (lambda lex: SynonymLexicon(groups=5).fit(["a b c"] * 6), ConfigError, "groups must be"),
    (lambda lex: lex.synonyms(None), DataError, "word must be a str, got NoneType"),
    (lambda lex: lex.similarity(["you"], "u"), DataError, "words must be str, got list"),
    (lambda lex: BertMasker(mask_token=None).fit(["a b"]), ConfigError, "mask_token must be a str"),
    (lambda lex: BertMasker(min_count=0).fit(["a b"]), ConfigError, "min_count must be an int >= 1"),
    (lambda lex: BertMasker(random_state="x").fit(["a b"]), ConfigError, "random_state must be a non-negative int"),
    (lambda lex: BertMasker(mask_prob=float("nan")).fit(["a b"]), ConfigError, "mask_prob must be a number"),
    (lambda lex: BertMasker().fit(None), DataError, "got NoneType"),
    (lambda lex: EDA({"u": ["you"]}), ConfigError, "lexicon must be a fitted SynonymLexicon, got dict"),
    (lambda lex: EDA(lex, random_state=-1), ConfigError, "random_state must be a non-negative int"),
    (lambda lex: EDA(lex).augment_frame(None), DataError, "df must be a pandas DataFrame of messages, got NoneType"),
    (lambda lex: EDA(lex).augment_frame(pd.DataFrame({"text": ["a"]}), keep_original="no"), ConfigError, "keep_original must be True or False"),
    (lambda lex: EDA(lex).augment_frame(pd.DataFrame({"text": ["a"]}), text_col=["text"]), DataError, "text_col="),
    (lambda lex: EDA(lex).augment(None), DataError, "text must be a str"),
])
def test_refusals_are_named(lex, call, exc, msg):
    with pytest.raises(exc, match=msg):
        call(lex)


def test_bert_mask_ids_special_positions_are_not_range_checked():
    ids = np.array([[101, 5, 7, -100]])  # [CLS]-like and padding ids outside the vocabulary, marked special
    special = np.array([[True, False, False, True]])
    new, action = bert_mask_ids(ids, 10, 0, np.random.default_rng(0), mask_prob=1.0, special=special)
    assert new[0, 0] == 101 and new[0, 3] == -100 and (action[0, [0, 3]] == KEEP).all()
    assert bert_mask_ids(ids, 10, 0, np.random.default_rng(0), special=special.astype(int))[1].shape == ids.shape


def test_eda_and_masker_outputs_unchanged_by_the_checks(sms, lex):
    "The checked entry points draw from the generator exactly as before: same augmentations for the same seed."
    eda = EDA(lex, n_aug=4, random_state=3)
    rng = np.random.default_rng(3)
    toks = tokenize(sms["text"].iloc[0])
    n = lambda a: max(1, int(a * len(toks)))
    expected = [" ".join(synonym_replacement(toks, lex, n(0.1), rng)), " ".join(random_insertion(toks, lex, n(0.1), rng)),
                " ".join(random_swap(toks, n(0.1), rng)), " ".join(random_deletion(toks, 0.1, rng))]
    assert eda.augment(sms["text"].iloc[0]) == expected


def test_text_estimators_declare_text_input_and_are_skipped_like_count_vectorizer():
    import warnings

    from sklearn.exceptions import SkipTestWarning
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.utils import get_tags
    from sklearn.utils.estimator_checks import check_estimator
    ran = {}
    for est in (SynonymLexicon(), BertMasker(), CountVectorizer()):
        tags = get_tags(est)
        assert tags.input_tags.string and not tags.input_tags.two_d_array
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            results = check_estimator(est, on_fail=None)  # used to run, and fail, the numeric checks
        assert all(r["status"] == "passed" for r in results) and any(issubclass(x.category, SkipTestWarning) for x in w)
        ran[type(est).__name__] = sorted(r["check_name"] for r in results)
    assert ran["SynonymLexicon"] == ran["BertMasker"] == ran["CountVectorizer"] == ["check_estimator_cloneable"]


def test_a_window_wider_than_any_message_sees_the_same_contexts():
    "window=10**9 used to allocate 10**9 separators per message (out of memory); it now equals the longest message's."
    texts = ["my cat likes fish", "my dog likes fish", "the car needs fuel"] * 4
    wide = SynonymLexicon(min_count=1, n_components=3, window=10**9, groups=None).fit(texts)
    exact = SynonymLexicon(min_count=1, n_components=3, window=4, groups=None).fit(texts)
    np.testing.assert_allclose(wide.embeddings_, exact.embeddings_)
    assert wide.lexicon_ == exact.lexicon_
