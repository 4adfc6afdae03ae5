"""Randomized differential test: `VectorizedLFApplier` returns exactly the matrix of the row-wise LFs.

The reference is each `LFPair.row` (the snorkel `LabelingFunction`) called on every row in Python; on a
subset of the cases it is also run through snorkel's own `PandasLFApplier`, so the reference is shown to
be snorkel's matrix. Texts mix ASCII with Latin-1, Turkish İ/ı, ß, Greek Σ/σ/ς, ſ, the Kelvin and
Angstrom signs, combining marks, emoji, NUL, vertical tab, "\\n" (at the end and in the middle), "\\r\\n"
and empty strings; a few frames hold None/NaN, which both paths must refuse with a `DataError`.
"""
import re

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("snorkel")
duckdb = pytest.importorskip("duckdb")
from snorkel.labeling import PandasLFApplier

from mlsys.core import DataError
from mlsys.labeling.weak import (
    HAM,
    SPAM,
    VectorizedLFApplier,
    keyword_lf,
    lookup_lf,
    model_lf,
    regex_lf,
    shape_features,
)

WORDS = ["prize", "PRIZE", "PRİZE", "prİze", "pr\u0131ze", "free", "FREE", "Free", "stop", "ſtop", "STOP", "\u212aelvin",
         "kelvin", "KELVIN", "stra\u00dfe", "STRASSE", "\u1e9e", "\u03a3\u039f\u03a3", "\u03c3\u03bf\u03c2", "\u039f\u03a3",
         "cafe\u0301", "caf\u00e9", "CAF\u00c9", "na\u00efve", "\u00c5ngstr\u00f6m", "\u212bngstrom", "win", "won", "call",
         "87121", "80062", "0800123456", "09061701461", "12345", "123", "£100", "$5", "€3", "www.x.com", "hi", "lol", "ok",
         "i'm", "\U0001f600", "\U0001f389win", "a_b", "x1", "\u0130", "\u0131", "\u017f", "\u212a", "\u03c2"]
CHARS = list("aAbBkKsSzZ019 _.,!?£$€\t") + ["\n", "\r\n", "\x0b", "\x0c", "\x00", "\u0301", "\u0307", "\u00df", "\u00e9",
                                            "\u00c9", "\u00ff", "\u0178", "\u0130", "\u0131", "\u017f", "\u212a", "\u212b",
                                            "\u03a3", "\u03c3", "\u03c2", "\U0001f600", "\U00010428", "\U00010400", "\u2028"]


def gen_text(rng: np.random.Generator) -> str:
    r = rng.random()
    if r < 0.08:
        return ""
    if r < 0.12:
        return str(rng.choice(["\n", "\r\n", " ", "\x0b", "\n\n"]))
    parts = []
    for _ in range(rng.integers(1, 8)):
        parts.append(str(rng.choice(WORDS)) if rng.random() < 0.55 else str(rng.choice(CHARS)))
        if rng.random() < 0.5:
            parts.append(" ")
    s = "".join(parts)
    r = rng.random()
    if r < 0.25:
        s += "\n"
    elif r < 0.33:
        s += "\r\n"
    elif r < 0.38:
        s += "\n\n"
    return s


ATOMS = [r"\w", r"\W", r"\d", r"\D", r"\s", r"\S", ".", r"\b", r"\B", "^", "$", r"\A", r"\Z", "[a-z]", "[A-Z]", "[^a-z0-9]",
         "[K]", "[k]", "[ſs]", r"[\w£]", r"[^\s]", "[İı]", "[Σσς]", "[\U0001f600-\U0001f64f]", "[\U00010400-\U00010410]",
         "[\u00c0-\u00ff]", "[^\n]", r"[\d\s]", "[-a]", r"[\]a]", "[a-]", "[Z-a]", "[^aeiou]", "\n", r"\n", "\r", r"\x0b", r"\t",
         "\u0301", "\u00df", "é", "ß"]
QUANTS = ["", "", "", "*", "+", "?", "{2}", "{1,3}", "{2,}", "*?", "+?", "{,2}", "{3,}", "??"]


def gen_regex(rng: np.random.Generator, depth: int = 0) -> tuple[str, bool]:
    "A random Python pattern and whether it holds a quantifier (a group that does is never quantified again)."
    out, quantified = [], False
    for _ in range(rng.integers(1, 4)):
        r, inner_q = rng.random(), False
        if r < 0.3:
            atom = re.escape(str(rng.choice(WORDS + CHARS)))
        elif r < 0.75 or depth >= 2:
            atom = str(rng.choice(ATOMS))
        else:
            (a, qa), (b, qb) = gen_regex(rng, depth + 1), gen_regex(rng, depth + 1)
            kind = rng.choice(["(?:{})", "({})", "(?i:{})", "(?-i:{})", "(?s:{})", "(?m:{})", "(?=({}))", "(?!{})", "(?<=a){}",
                               "(?:{}|{})", "(?P<g>{})(?P=g)", "(?>{})"])
            atom, inner_q = str(kind).format(a, b), qa or qb
        if atom not in ("^", "$", r"\A", r"\Z", r"\b", r"\B") and not inner_q:
            q = str(rng.choice(QUANTS))
            atom += q
            inner_q = inner_q or bool(q)
        quantified = quantified or inner_q
        out.append(atom)
    prefix = str(rng.choice(["", "", "", "", "(?i)", "(?m)", "(?s)", "(?x)", "(?ms)"])) if depth == 0 else ""
    return prefix + "".join(out), quantified


def valid_regex(rng: np.random.Generator) -> str:
    while True:
        p, _ = gen_regex(rng)
        try:
            re.compile(p, re.ASCII | re.IGNORECASE)
            re.compile(p, re.ASCII)
            return p
        except (re.error, OverflowError):
            continue


LOOKUP_PATTERNS = [r"\d{5,}", r"\d+", r"[0-9]{2,}", r"\w+", r"(\d)\d{4}", r"\b\d{3}\b", r"\d{3}$", r"(?i)k\w*", r"\d*",
                   r"(?m)^\d+", r"\S+", r"[^\x00-\x7f]+", r"(?=\d)\d{2}"]


def make_resources():
    con = duckdb.connect()
    con.execute("CREATE TABLE nums (number VARCHAR)")
    con.executemany("INSERT INTO nums VALUES (?)", [[v] for v in
                    ["87121", "80062", "12345", "123", "1", "kelvin", "\u212aelvin", "ok", "é", "\U0001f600"]])
    con.execute("CREATE TABLE ints (number BIGINT)")
    con.execute("INSERT INTO ints VALUES (87121), (123), (NULL)")
    from sklearn.linear_model import LogisticRegression
    rng = np.random.default_rng(1)
    texts = pd.Series([gen_text(rng) for _ in range(300)], dtype=object)
    y = (texts.str.count("[0-9£$€]") > 0).astype(int).to_numpy()
    model = LogisticRegression(max_iter=1000).fit(shape_features(texts), y)
    return con, model


@pytest.fixture(scope="module")
def resources():
    return make_resources()


def gen_lfs(rng: np.random.Generator, con, model) -> list:
    pairs = []
    for j in range(rng.integers(1, 6)):
        kind = rng.choice(["keyword", "regex", "regex", "regex", "lookup", "model"], p=[0.25, 0.2, 0.2, 0.15, 0.1, 0.1])
        label = int(rng.integers(0, 2))
        name = f"{kind}{j}"
        if kind == "keyword":
            kws = [str(rng.choice(WORDS + CHARS)) for _ in range(rng.integers(1, 4))]
            kws = [k for k in kws if k.lower()] or ["a"]
            pairs.append(keyword_lf(name, kws, label, ignore_case=bool(rng.random() < 0.7)))
        elif kind == "regex":
            pairs.append(regex_lf(name, valid_regex(rng), label, ignore_case=bool(rng.random() < 0.5)))
        elif kind == "lookup":
            table = "nums" if rng.random() < 0.8 else "ints"
            pairs.append(lookup_lf(name, con, table, label, pattern=str(rng.choice(LOOKUP_PATTERNS))))
        else:
            high = float(rng.uniform(0.3, 0.9))
            pairs.append(model_lf(name, model, SPAM, HAM, high=high, low=float(rng.uniform(0.0, high))))
    return pairs


def gen_frame(rng: np.random.Generator) -> pd.DataFrame:
    n = int(rng.integers(1, 25))
    texts = [gen_text(rng) for _ in range(n)]
    if rng.random() < 0.04:
        texts[int(rng.integers(n))] = None if rng.random() < 0.5 else np.nan
    dtype = str(rng.choice(["object", "str", "string[python]"]))
    index = pd.Index(rng.permutation(n) + 100)  # a non-default index: rows are matched by position
    return pd.DataFrame({"text": pd.Series(texts, dtype=dtype, index=index), "other": np.arange(n)}, index=index)


def reference(pairs, df) -> np.ndarray:
    "Each snorkel LF called on each row in Python (what PandasLFApplier computes, without its per-row Series)."
    rows = df.to_dict("records")
    return np.array([[p.row(x) for p in pairs] for x in rows], dtype=np.int64).reshape(len(rows), len(pairs))


def outcome(fn, *args):
    try:
        return fn(*args)
    except DataError as e:
        return ("DataError", str(e).split(":")[0])
    except Exception as e:  # any other error is a finding
        return ("raw", type(e).__name__, str(e)[:80])


def run_cases(n_cases: int, seed: int, resources, snorkel_every: int = 0):
    con, model = resources
    rng = np.random.default_rng(seed)
    stats = {"cases": 0, "cells": 0, "votes": 0, "mismatched cases": 0, "refused (missing text)": 0, "raw errors": 0,
             "checked against PandasLFApplier": 0}
    failures = []
    for i in range(n_cases):
        pairs = gen_lfs(rng, con, model)
        df = gen_frame(rng)
        got = outcome(VectorizedLFApplier([p.column for p in pairs]).apply, df)
        want = outcome(reference, pairs, df)
        stats["cases"] += 1
        if isinstance(got, np.ndarray) and isinstance(want, np.ndarray):
            stats["cells"] += got.size
            stats["votes"] += int((want != -1).sum())
            if not np.array_equal(got, want):
                stats["mismatched cases"] += 1
                bad = np.argwhere(got != want)[0]
                failures.append((i, pairs[bad[1]].column.name, df["text"].iloc[bad[0]], got[tuple(bad)], want[tuple(bad)]))
            elif snorkel_every and i % snorkel_every == 0:
                L = PandasLFApplier([p.row for p in pairs]).apply(df, progress_bar=False)
                assert np.array_equal(L, want), f"case {i}: the reference is not snorkel's matrix"
                stats["checked against PandasLFApplier"] += 1
        elif isinstance(got, tuple) and isinstance(want, tuple) and got[0] == want[0] == "DataError":
            stats["refused (missing text)"] += 1
        else:
            stats["mismatched cases"] += 1
            stats["raw errors"] += int(any(isinstance(o, tuple) and o[0] == "raw" for o in (got, want)))
            failures.append((i, "outcome", None, got if not isinstance(got, np.ndarray) else "matrix",
                             want if not isinstance(want, np.ndarray) else "matrix"))
    return stats, failures


def test_vectorized_equals_row_lfs_on_generated_unicode_frames(resources):
    stats, failures = run_cases(2000, seed=0, resources=resources, snorkel_every=20)
    assert stats["checked against PandasLFApplier"] >= 50
    assert stats["refused (missing text)"] > 0
    assert 0.15 < stats["votes"] / stats["cells"] < 0.85  # LFs both vote and abstain: the matrices are not trivial
    assert not failures, f"{len(failures)} of {stats['cases']} cases differ; first: {failures[:5]}"


def test_shipped_sms_lfs_equal_snorkel_on_unicode_and_newlines(resources):
    "The issue's cases on the shipped LFs: `$` before a final newline (re_short_plain), 'PRİZE' (kw_prize), ſ, Kelvin sign."
    from mlsys.labeling.weak import sms_spam_lfs
    dev = pd.DataFrame({"text": ["WINNER! claim your prize 08001234567", "ok see you later", "Free entry txt 87121", "lol k"] * 3,
                        "y": [1, 0, 1, 0] * 3})
    pairs = sms_spam_lfs(dev, duckdb.connect())
    texts = ["x" * 40 + "\n", "PRİZE waiting for you", "ſtop now", "\u212a", "hi\r\n", "call 09061701461\n", "ΟΣ free",
             "", "\n", "cafe\u0301 ok", "\U0001f600 FREE", "no\nnumbers here", "txt 87121\n"]
    for dtype in ("str", object, "string[python]"):
        df = pd.DataFrame({"text": pd.Series(texts, dtype=dtype)})
        L_snorkel = PandasLFApplier([p.row for p in pairs]).apply(df, progress_bar=False)
        np.testing.assert_array_equal(VectorizedLFApplier([p.column for p in pairs]).apply(df), L_snorkel)
    names = [p.column.name for p in pairs]
    assert L_snorkel[0, names.index("re_short_plain")] == HAM  # 40 characters, then Python's $ before the final "\n"
    assert L_snorkel[1, names.index("kw_prize")] == -1  # "PRİZE".lower() is "pri̇ze": no "prize" in it


@pytest.mark.parametrize("pattern", [".", "(?s:.)", r"\w", r"\W", r"\s", r"\S", r"\d", r"\D", "[^a-z]", "[K]", "[k]", "[s]", "[À-ÿ]",
                                     r"[\w£]", "[^İı]", "[Σσς]", "k", "S", "ß", "[Z-a]", "[^\n]", "[\U0001f600-\U0001f64f]",
                                     "[\U00010400-\U00010410]", "[\\D\U00010400]", "\U00010428"])
@pytest.mark.parametrize("ignore_case", [False, True])
def test_one_character_classes_equal_python_on_every_code_point(pattern, ignore_case):
    "A class, translated, matches exactly the characters Python's does, over the BMP's first 12k and selected astral code points."
    from mlsys.labeling.weak import contains_regex, plan_regex
    cps = [c for c in list(range(0x3000)) + list(range(0xFB00, 0xFB10)) + list(range(0x1F5F0, 0x1F660)) + list(range(0x10400, 0x10460))
           + [0x212A, 0x212B, 0x1E9E, 0xFFFF, 0x10FFFF] if not 0xD800 <= c <= 0xDFFF]
    texts = pd.Series([chr(c) for c in cps], dtype="str")
    plan = plan_regex(f"^{pattern}$", ignore_case)
    rx = re.compile(f"^{pattern}$", re.ASCII | (re.IGNORECASE if ignore_case else 0))
    want = np.array([rx.search(t) is not None for t in texts], dtype=bool)
    np.testing.assert_array_equal(contains_regex(texts, plan), want)
    astral_class = pattern.startswith("[") and any(ord(c) > 0xFFFF for c in pattern)
    assert (plan.re2 is None) == (ignore_case and astral_class)  # Python folds those with Unicode rules: left to Python


def test_lone_surrogates_take_the_python_path():
    "Strings Arrow cannot hold (a lone surrogate is not UTF-8) are matched in Python instead of failing."
    from mlsys.labeling.weak import contains_keywords, contains_regex
    texts = pd.Series(["a\ud800b", "free", "\ud83d"], dtype=object)
    np.testing.assert_array_equal(contains_regex(texts, "a.b"), [True, False, False])
    np.testing.assert_array_equal(contains_keywords(texts, ["FREE"]), [False, True, False])
