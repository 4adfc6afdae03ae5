"""mlsys.monitor.validation: inferred suites pass their own data, both engines agree, counts equal direct computation, faults."""
import json

import numpy as np
import pandas as pd
import pytest

from mlsys.core import ConfigError, DataError, SchemaError
from mlsys.monitor.validation import (Expectation, ExpectationSuite, failing_rows, infer_format, infer_keys,
                                      infer_suite, load_suite, validate)

WORDS = ["", "a", "é", "naïve", "x y", "line\n", "ÅB-12", "N123AB", "Z9", "日本"]


def random_frame(rng, n):
    "A generated table: ints with nulls, floats, a clock, text with a format, categories, timestamps, bools."
    clock_h, clock_m = rng.integers(0, 24, n), rng.integers(0, 60, n)
    start = pd.Timestamp("2024-03-30", tz="UTC")
    df = pd.DataFrame({
        "id": np.arange(n) * int(rng.integers(1, 5)),
        "x": pd.array(rng.integers(-50, 50, n), dtype="Int64"),
        "f": rng.normal(0, rng.uniform(0.1, 100), n).astype(rng.choice(["float64", "float32"])),
        "clock": clock_h * 100 + clock_m,
        "code": pd.array([f"{'ABCD'[i % 4]}{i % 97}" for i in rng.integers(0, 10_000, n)], dtype="string"),
        "cat": pd.Categorical(rng.choice(["u", "v", "w", "ü"], n)),
        "word": pd.array(rng.choice(WORDS, n), dtype="string"),
        "t": start + pd.to_timedelta(np.sort(rng.integers(0, 10**6, n)), unit="s"),
        "flag": rng.random(n) < 0.5,
    })
    df["t_later"] = df["t"] + pd.to_timedelta(rng.integers(0, 3600, n), unit="s")
    holes = rng.random(n) < rng.uniform(0, 0.2)
    df["x"] = df["x"].mask(holes)
    df["code"] = df["code"].mask(rng.random(n) < 0.05)
    return df


def corrupt(rng, df):
    "A copy of `df` with a random kind of damage on a random fraction of rows."
    out, n = df.copy(), len(df)
    some = rng.random(n) < rng.uniform(0, 0.3)
    kind = rng.integers(0, 6)
    if kind == 0:
        out["x"] = out["x"].mask(some, 10_000)
    elif kind == 1:
        out["cat"] = out["cat"].cat.add_categories(["new"]).mask(some, "new")
    elif kind == 2:
        out["code"] = out["code"].mask(some, "??")
    elif kind == 3:
        out["clock"] = out["clock"].mask(some, 1299)
    elif kind == 4:
        out["f"] = out["f"].mask(some)
    else:
        out["t_later"] = out["t_later"].mask(some, out["t"] - pd.Timedelta("1h"))
    return out


def test_inferred_suite_passes_its_own_data_and_engines_agree():
    rng = np.random.default_rng(0)
    for _ in range(25):
        df = random_frame(rng, int(rng.integers(2, 400)))
        suite = infer_suite(df, mostly=1.0)
        assert validate(df, suite)["passed"].all()
        bad = corrupt(rng, df)
        a, b = validate(bad, suite), validate(bad, suite, engine="pandas")
        pd.testing.assert_frame_equal(a.drop(columns="examples"), b.drop(columns="examples"))
        assert [sorted(map(str, x)) for x in a["examples"]] == [sorted(map(str, x)) for x in b["examples"]]


def test_failing_counts_equal_direct_computation():
    rng = np.random.default_rng(1)
    for _ in range(40):
        n = int(rng.integers(1, 300))
        x = pd.Series(pd.array(rng.integers(-20, 20, n), dtype="Int64")).mask(rng.random(n) < 0.2)
        lo, hi = sorted(rng.integers(-25, 25, 2).tolist())
        df = pd.DataFrame({"x": x, "c": rng.choice(["a", "b", "c", "d"], n)})
        rep = validate(df, ExpectationSuite(["x", "c"], [
            Expectation("range", ["x"], {"min": lo, "max": hi}),
            Expectation("allowed", ["c"], {"values": ["a", "b"]}),
            Expectation("null_fraction", ["x"], {"fraction": 0.1, "tolerance": 0.0})]))
        xs = x.dropna().astype(int)
        assert rep.loc[0, "failing"] == int(((xs < lo) | (xs > hi)).sum())
        assert rep.loc[1, "failing"] == int((~df["c"].isin(["a", "b"])).sum())
        assert rep.loc[2, "failing"] == int(x.isna().sum())
        assert rep.loc[0, "fraction"] == pytest.approx(rep.loc[0, "failing"] / n)


def test_format_inference_matches_its_values():
    rng = np.random.default_rng(2)
    for _ in range(60):
        vals = pd.Series(rng.choice(WORDS + [f"N{i}X" for i in range(30)], int(rng.integers(1, 60))))
        regex = infer_format(vals, mostly=1.0, max_shapes=50)
        assert regex is not None and vals.str.fullmatch(regex).all(), (regex, vals.tolist())


def test_relations_and_keys_found_and_checked():
    rng = np.random.default_rng(3)
    n = 500
    sched = rng.integers(0, 24, n) * 100 + rng.integers(0, 60, n)
    delay = rng.integers(-30, 300, n)
    mins = (sched // 100 * 60 + sched % 100 + delay) % 1440
    df = pd.DataFrame({"sched": sched, "actual": mins // 60 * 100 + mins % 60, "delay": delay,
                       "t": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 50, n), unit="D"),
                       "who": rng.choice(list("ABCDEFGHIJ"), n)})
    df = df.drop_duplicates(["t", "who"]).reset_index(drop=True)
    suite = infer_suite(df)
    names = {e.name for e in suite.expectations}
    assert "delay = actual - sched (minutes mod 1440)" in names
    assert ["t", "who"] in [e.columns for e in suite.expectations if e.check == "unique"]
    assert infer_keys(df) == [["t", "who"]]
    bad = df.copy()
    bad.loc[:99, "delay"] += 1
    rep = validate(bad, suite).set_index("check")
    assert rep.loc["delay = actual - sched (minutes mod 1440)", "failing"] == 100
    dup = pd.concat([df, df.head(3)], ignore_index=True)
    rep = validate(dup, suite)
    assert rep.loc[rep["kind"] == "unique", "failing"].item() == 6  # each duplicated row and its twin


def test_suite_round_trips_through_json(tmp_path):
    rng = np.random.default_rng(4)
    df = random_frame(rng, 200)
    suite = infer_suite(df)
    path = suite.save(tmp_path / "suite.json")
    again = load_suite(path)
    assert again.to_dict() == suite.to_dict()
    bad = corrupt(rng, df)
    pd.testing.assert_frame_equal(validate(bad, again), validate(bad, suite))


def test_hostile_suite_files_are_refused(tmp_path):
    p = tmp_path / "s.json"
    p.write_text(json.dumps({"format": "mlsys.expectation_suite/1", "columns": ["a"], "allow_extra": False,
                             "n_rows": 3, "ignored": [], "expectations": [{"check": "rm -rf", "columns": ["a"]}]}))
    with pytest.raises(DataError, match="unknown check"):
        load_suite(p)
    good = infer_suite(random_frame(np.random.default_rng(8), 50)).to_dict()
    hostile = [("format", {"regex": "(a+)+$"}, "quantified groups"), ("format", {"regex": "[unclosed"}, "not a regular"),
               ("format", {"regex": 5}, "without quantified"), ("range", {"min": 1, "max": "INF"}, "finite"),
               ("range", {"min": 3, "max": 1}, "min <= max"), ("allowed", {"values": "abc"}, "list of strings"),
               ("null_fraction", {"fraction": 2, "tolerance": 0}, "fraction in"), ("relation", {"kind": "eval"}, "relation is")]
    for check, params, msg in hostile:
        d = json.loads(json.dumps(good))
        d["expectations"].append({"check": check, "columns": ["x", "f"] if check == "relation" else ["x"], "params": params})
        p.write_text(json.dumps(d).replace('"INF"', "1e999"))  # JSON reads 1e999 as infinity
        with pytest.raises(DataError, match=msg):
            load_suite(p)
    p.write_text(json.dumps({"format": "mlsys.expectation_suite/1", "columns": ["a"]}))
    with pytest.raises(DataError, match="malformed"):
        load_suite(p)
    p.write_text("[1, 2]")
    with pytest.raises(DataError, match="not an expectation suite"):
        load_suite(p)
    p.write_bytes(b"\x00\xff")
    with pytest.raises(DataError):
        load_suite(p)


def test_schema_changes_are_reported_and_strict_raises():
    df = random_frame(np.random.default_rng(5), 100)
    suite = infer_suite(df)
    rep = validate(df.rename(columns={"x": "x2"}), suite)
    bad = rep[~rep["passed"]]
    assert set(bad["kind"]) == {"column_present", "no_extra_columns"}
    assert "x" in set(bad["column"]) and "x2" in set(bad["column"])
    with pytest.raises(SchemaError, match=r"column 'x' failed 'column_present'"):
        validate(df.drop(columns="x"), suite, strict=True)
    with pytest.raises(SchemaError, match=r"'f' failed 'dtype'"):
        validate(df.assign(f=df["f"].astype(str)), suite, strict=True)
    assert validate(df.assign(extra=1), infer_suite(df, allow_extra=True))["passed"].all()


def test_bad_input_is_named():
    df = random_frame(np.random.default_rng(6), 50)
    suite = infer_suite(df)
    with pytest.raises(DataError, match="zero length"):
        validate(df.head(0), suite)
    with pytest.raises(DataError, match="DataFrame"):
        validate(df.to_numpy(), suite)
    with pytest.raises(SchemaError, match="duplicated column"):
        validate(pd.concat([df, df[["x"]]], axis=1), suite)
    with pytest.raises(ConfigError, match="engine"):
        validate(df, suite, engine="spark")
    with pytest.raises(DataError, match="at least 2 rows"):
        infer_suite(df.head(1))
    with pytest.raises(SchemaError, match="nope"):
        infer_suite(df, exclude=["nope"])
    with pytest.raises(ConfigError, match="mostly"):
        infer_suite(df, mostly=0)
    with pytest.raises(DataError, match="'f' holds infinite"):
        infer_suite(df.assign(f=np.where(np.arange(len(df)) == 2, np.inf, 1.0)))
    rep = validate(df.assign(f=np.where(np.arange(len(df)) == 2, -np.inf, df["f"])), suite)
    assert rep.loc[(rep["column"] == "f") & (rep["kind"] == "range"), "failing"].item() == 1
    with pytest.raises(ConfigError, match="range_margin"):
        infer_suite(df, range_margin=-1)
    with pytest.raises(SchemaError, match="key"):
        infer_suite(df, keys=[["id", "zzz"]])
    with pytest.raises(ConfigError, match="row-wise"):
        failing_rows(Expectation("dtype", ["x"], {"dtype": "Int64"}), df)
    with pytest.raises(ConfigError, match="mostly"):
        Expectation("range", ["x"], {"min": 0, "max": 1}, mostly=1.5)


def test_duplicate_index_labels_do_not_undercount():
    df = pd.DataFrame({"x": [1, 2, 3, 4]})
    suite = ExpectationSuite(["x"], [Expectation("range", ["x"], {"min": 0, "max": 2})])
    rep = validate(df.set_axis([0, 0, 0, 0]), suite)
    assert rep.loc[0, "failing"] == 2


def test_tolerance_scales_with_the_window():
    "One novel row in a window of 800 is within mostly=0.999 (it failed under a fixed-fraction rule); 5% is not."
    from mlsys.monitor.validation import allowed_failures
    suite = ExpectationSuite(["c"], [Expectation("allowed", ["c"], {"values": ["a"]}, mostly=0.999)])
    small = pd.DataFrame({"c": ["a"] * 799 + ["new"]})
    rep = validate(small, suite)
    assert rep.loc[0, "failing"] == 1 and rep.loc[0, "allowed"] == 3 and rep.loc[0, "passed"]
    big = pd.DataFrame({"c": ["a"] * 9500 + ["new"] * 500})
    assert not validate(big, suite).loc[0, "passed"]
    rng = np.random.default_rng(7)
    for _ in range(200):
        n, mostly = int(rng.integers(0, 10**6)), float(rng.choice([1.0, 0.999, 0.99, 0.5]))
        p = 1 - mostly
        k = allowed_failures(mostly, n)
        assert k == int(np.floor(n * p + 3 * np.sqrt(n * p * (1 - p)) + 1e-9)) and 0 <= k <= n
