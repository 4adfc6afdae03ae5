"""Text augmentation: lexicon, EDA operations, BERT-style proportions, templates, bad input."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mlsys.augment.text import (EDA, KEEP, MASK, RANDOM, UNCHANGED, BertMasker, SynonymLexicon, bert_mask_ids,
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
