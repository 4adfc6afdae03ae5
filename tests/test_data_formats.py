"""data.formats: type-faithful round trips, strict parsing, pickle refusal, schema checks, measurement."""
import json
import pickle

import numpy as np
import pandas as pd
import pytest

from mlsys.core import DataError, IntegrityError, SchemaError
from mlsys.data.formats import (
    FORMATS,
    measure_formats,
    meta_path,
    read_table,
    resolve_format,
    schema_diff,
    table_schema,
    write_table,
)
from mlsys.datasets import load_flights, load_weather


@pytest.fixture(scope="module")
def flights():
    return load_flights("2013-03-10", "2013-03-10")  # a DST-change day in New York


@pytest.fixture
def tricky():
    "Every dtype the round trip must keep, with missing values in each nullable column."
    return pd.DataFrame({
        "ts_utc": pd.to_datetime(["2013-11-03 05:30", None, "2013-11-03 06:30"], utc=True).astype("datetime64[us, UTC]"),
        "ts_ny": pd.to_datetime(["2013-11-03 05:30", "2013-11-03 06:30", None], utc=True)
                   .tz_convert("America/New_York").astype("datetime64[us, America/New_York]"),
        "naive": pd.to_datetime(["2013-01-01 00:00:01.5", "2013-01-02", None], format="ISO8601").astype("datetime64[us]"),
        "cat": pd.Categorical(["b", None, "a"], categories=["c", "b", "a"]),
        "ordered": pd.Categorical(["lo", "hi", "lo"], categories=["lo", "hi"], ordered=True),
        "int_cat": pd.Categorical([3, 1, None], categories=[1, 2, 3]),
        "nint": pd.array([1, None, -(2**40)], dtype="Int64"),
        "nbool": pd.array([True, None, False], dtype="boolean"),
        "flag": [True, False, True],
        "f": [0.1, float("nan"), 1e-300],
        "s": pd.array(["x", None, "héllo, \"quoted\"\nnewline"], dtype="string"),
        "i": [1, 2, 3],
    })


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_is_dtype_faithful(tricky, fmt, tmp_path):
    p = write_table(tricky, tmp_path / f"t.{fmt}")
    back = read_table(p, allow_pickle=True)
    pd.testing.assert_frame_equal(back, tricky, check_exact=True)  # default rtol=1e-5 would hide rounded floats
    assert table_schema(back) == table_schema(tricky)


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_on_flights_and_weather(flights, fmt, tmp_path):
    for name, df in [("flights", flights), ("weather", load_weather("2013-03-10", "2013-03-10"))]:
        back = read_table(write_table(df, tmp_path / f"{name}.{fmt}"), allow_pickle=True)
        pd.testing.assert_frame_equal(back, df, check_exact=True)
    # the unused categories survive too (the day has fewer destinations than the year)
    back = read_table(tmp_path / f"flights.{fmt}", allow_pickle=True)
    assert list(back["dest"].cat.categories) == list(flights["dest"].cat.categories)


@pytest.mark.parametrize("fmt", FORMATS)
def test_floats_round_trip_bit_exact(fmt, tmp_path):
    # 1/3 has 16 significant digits: pandas' JSON writer (15 digits) and fast JSON float parser both change it
    rng = np.random.default_rng(0)
    x = np.concatenate([[1 / 3, 0.1 + 0.2, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -0.0, np.nan],
                        rng.random(2000) * np.logspace(-300, 300, 2000)])
    df = pd.DataFrame({"x": x, "y": pd.array((x[:, None] % 1).ravel().astype("float32") / 3, dtype="Float32"), "s": pd.array(["a"] * len(x), dtype="string")})
    df.loc[3, "y"] = pd.NA
    back = read_table(write_table(df, tmp_path / f"f.{fmt}"), allow_pickle=True)
    pd.testing.assert_frame_equal(back, df, check_exact=True)
    assert np.array_equal(back["x"].to_numpy(), x, equal_nan=True)
    assert np.signbit(back["x"].to_numpy()[5])  # -0.0 keeps its sign


def test_jsonl_refuses_infinite_floats(tmp_path):
    with pytest.raises(DataError, match=r"column 'x' has 1 infinite values \(first at row 1\), which JSON cannot represent"):
        write_table(pd.DataFrame({"x": [1.0, -np.inf]}), tmp_path / "x.jsonl")


@pytest.mark.parametrize("fmt", FORMATS)
def test_single_column_read(flights, fmt, tmp_path):
    p = write_table(flights, tmp_path / f"f.{fmt}")
    col = read_table(p, columns=["dep_delay"], allow_pickle=True)
    assert list(col.columns) == ["dep_delay"]
    pd.testing.assert_series_equal(col["dep_delay"], flights["dep_delay"])


def test_pickle_refused_unless_allowed(flights, tmp_path):
    p = write_table(flights, tmp_path / "f.pkl")
    with pytest.raises(IntegrityError, match="refusing to load pickle"):
        read_table(p)

    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('pickle ran code')",))

    evil = tmp_path / "evil.pickle"
    evil.write_bytes(pickle.dumps(Boom()))
    with pytest.raises(IntegrityError, match="allow_pickle=True"):
        read_table(evil)  # refused before a single byte is unpickled


def test_unknown_format(tricky, tmp_path):
    with pytest.raises(DataError, match="format='orc' is not one of csv, jsonl, parquet, feather, pickle, avro, protobuf"):
        write_table(tricky, tmp_path / "t.orc", format="orc")
    with pytest.raises(DataError, match="suffix '.xlsx'"):
        read_table(tmp_path / "t.xlsx")
    assert resolve_format("x.NDJSON") == "jsonl"


@pytest.mark.parametrize("fmt", FORMATS)
def test_schema_mismatch_on_load(flights, fmt, tmp_path):
    p = write_table(flights, tmp_path / f"f.{fmt}")
    expected = table_schema(flights)
    expected["dep_delay"] = "float64"
    expected["new_col"] = "int64"
    del expected["tailnum"]
    with pytest.raises(SchemaError) as e:
        read_table(p, schema=expected, allow_pickle=True)
    msg = str(e.value)
    assert "column 'dep_delay': expected float64, found Int64" in msg
    assert "column 'new_col' is missing" in msg
    assert "column 'tailnum' is not expected" in msg
    # the right schema loads
    pd.testing.assert_frame_equal(read_table(p, schema=flights, allow_pickle=True), flights)


def test_category_list_is_part_of_the_schema(flights, tmp_path):
    p = write_table(flights, tmp_path / "f.parquet")
    other = flights.assign(carrier=flights["carrier"].cat.add_categories(["ZZ"]))
    with pytest.raises(SchemaError, match="column 'carrier'"):
        read_table(p, schema=other)
    read_table(p, schema={**table_schema(flights), "carrier": "category"})  # any categories accepted


def test_text_without_sidecar_is_parsed_strictly(tmp_path):
    schema = {"carrier": {"dtype": "category", "categories": ["AA", "UA"], "categories_dtype": "str", "ordered": False},
              "dep_delay": "Int64", "late": "boolean"}
    p = tmp_path / "raw.csv"
    p.write_text("carrier,dep_delay,late\nUA,5,True\nAA,,\n")
    with pytest.raises(IntegrityError, match="has no sidecar"):
        read_table(p, schema=schema)  # a foreign file is read only on request
    df = read_table(p, schema=schema, require_sidecar=False)
    assert df["dep_delay"].isna().tolist() == [False, True] and df["late"].isna().tolist() == [False, True]
    p.write_text("carrier,dep_delay,late\nUA,5,True\nXX,6,False\n")
    with pytest.raises(SchemaError, match=r"column 'carrier': values \['XX'\] are not among its categories"):
        read_table(p, schema=schema, require_sidecar=False)
    p.write_text("carrier,dep_delay,late\nUA,5.5,True\n")
    with pytest.raises(SchemaError, match="column 'dep_delay': cannot parse as Int64"):
        read_table(p, schema=schema, require_sidecar=False)
    p.with_suffix(".jsonl").write_text('{"carrier":"UA","dep_delay":5.5,"late":true}\n')
    with pytest.raises(SchemaError, match=r"column 'dep_delay': values \['5.5'\] are not integers"):
        read_table(p.with_suffix(".jsonl"), schema=schema, require_sidecar=False)
    p.write_text("carrier,dep_delay,late\nUA,5,maybe\n")
    with pytest.raises(SchemaError, match=r"column 'late': values \['maybe'\] are not booleans"):
        read_table(p, schema=schema, require_sidecar=False)


def test_tampered_file_fails_checksum(flights, tmp_path):
    p = write_table(flights, tmp_path / "f.feather")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(IntegrityError, match="does not match the SHA-256"):
        read_table(p)


def test_corrupt_sidecar_fails_clearly(flights, tmp_path):
    p = write_table(flights, tmp_path / "f.parquet")
    meta_path(p).write_text('{"format": "parquet", "rows"')  # cut short
    with pytest.raises(IntegrityError, match=r"sidecar f.parquet.meta.json of f.parquet is not valid JSON"):
        read_table(p)
    meta_path(p).write_text('{"format": "parquet"}')
    with pytest.raises(IntegrityError, match="lacks format/sha256/schema"):
        read_table(p)


def test_refuses_lossy_writes(tmp_path):
    with pytest.raises(DataError, match="column 's' has 1 empty strings"):
        write_table(pd.DataFrame({"s": ["a", ""]}), tmp_path / "s.csv")
    write_table(pd.DataFrame({"s": ["a", ""]}), tmp_path / "s.parquet")  # Parquet can tell "" from missing
    with pytest.raises(DataError, match="reset_index"):
        write_table(pd.DataFrame({"a": [1, 2]}, index=[5, 6]), tmp_path / "a.csv")
    for fmt in ("csv", "jsonl"):
        with pytest.raises(DataError, match=r"columns \['o'\] have dtype object"):
            write_table(pd.DataFrame({"o": pd.Series([1, "1"], dtype=object)}), tmp_path / f"o.{fmt}")
    write_table(pd.DataFrame({"o": pd.Series([1, "1"], dtype=object)}), tmp_path / "o.pkl")  # pickle keeps objects
    with pytest.raises(DataError, match="column names must be strings"):
        write_table(pd.DataFrame({0: [1]}), tmp_path / "a.csv")


def test_write_is_atomic(flights, tmp_path, monkeypatch):
    p = write_table(flights, tmp_path / "f.parquet")
    before = p.read_bytes()

    def broken(*a, **k):
        raise OSError("disk full")

    import pyarrow.parquet as pq
    monkeypatch.setattr(pq, "write_table", broken)
    with pytest.raises(OSError, match="disk full"):
        write_table(flights.head(3), p)
    assert p.read_bytes() == before  # the old file is intact
    # no temp files left: only the data, its sidecar and the (empty) inter-process lock file
    assert sorted(x.name for x in tmp_path.iterdir()) == [".f.parquet.lock", "f.parquet", "f.parquet.meta.json"]
    assert [v["rows"] for v in json.loads(meta_path(p).read_text())["versions"]] == [len(flights)]
    pd.testing.assert_frame_equal(read_table(p), flights)


def test_schema_diff_lists_everything():
    a = pd.DataFrame({"x": [1], "y": ["a"]})
    b = pd.DataFrame({"x": [1.0], "z": [1]})
    assert schema_diff(a, b) == ["column 'y' is missing (expected str)", "column 'z' is not expected (found int64)",
                                 "column 'x': expected int64, found float64"]


def test_measure_formats_shows_column_major_access(flights, tmp_path):
    m = measure_formats(flights, tmp_path, column="dep_delay", repeat=1).set_index("format")
    assert list(m.index) == list(FORMATS)
    assert m.loc["parquet", "size_mb"] < m.loc["csv", "size_mb"]
    assert (m[["write_s", "read_s", "read_column_s"]] > 0).all().all()
    assert m.loc["csv", "layout"] == "row-major text" and m.loc["parquet", "layout"] == "column-major binary"
    assert not list(tmp_path.iterdir())  # cleaned up
    with pytest.raises(DataError, match="column='nope'"):
        measure_formats(flights, tmp_path, column="nope")
    with pytest.raises(DataError, match="repeat must be at least 1"):
        measure_formats(flights, tmp_path, repeat=0)


# --- every public entry point, given what it should refuse (issue 9, items 10 and 11 and the sweep) -----------------

from mlsys.data.codecs import avro_schema  # noqa: E402
from mlsys.data.formats import dtype_spec, spec_dtype  # noqa: E402


def test_spec_dtype_refuses_non_descriptions():
    for bad in (None, 3, "", "   ", ["int64"], {"dtype": "int64"}, {"dtype": "category"}):
        with pytest.raises(SchemaError):
            spec_dtype(bad)  # None returned float64 before
    assert spec_dtype("category") == pd.CategoricalDtype()


def test_dtype_spec_and_table_schema_refuse_what_json_cannot_describe():
    with pytest.raises(SchemaError, match="dtype is None"):
        dtype_spec(None)
    with pytest.raises(SchemaError, match="categoricals with datetime64"):
        dtype_spec(pd.CategoricalDtype(pd.to_datetime(["2013-01-01"])))
    with pytest.raises(SchemaError, match="infinite categories"):
        dtype_spec(pd.CategoricalDtype([1.0, np.inf]))
    assert dtype_spec(int) == "int64" and dtype_spec("Int64") == "Int64"
    with pytest.raises(DataError, match=r"duplicate column names \['1'\]"):
        table_schema(pd.DataFrame([[1, 2]], columns=[1, "1"]))  # both would be written as "1"


def test_schema_diff_refuses_non_schemas(flights):
    for a, b in [(None, flights), (flights, None), ([1], flights), ({1: "int64"}, flights)]:
        with pytest.raises(DataError, match="must be a schema dict|non-string column names"):
            schema_diff(a, b)  # None raised a raw TypeError before
    with pytest.raises(SchemaError, match="column 'x'"):
        schema_diff({"x": None}, flights)


def test_paths_and_formats_are_checked(flights, tmp_path):
    for bad in (None, 3, ""):
        with pytest.raises(DataError, match="must be"):
            write_table(flights, bad, format="parquet")
        with pytest.raises(DataError, match="must be"):
            read_table(bad, format="parquet")
        with pytest.raises(DataError, match="must be"):
            meta_path(bad)
    with pytest.raises(DataError, match="format=3 is not one of"):
        resolve_format("x.csv", format=3)
    with pytest.raises(DataError, match="is a directory"):
        write_table(flights, tmp_path, format="csv")
    with pytest.raises(DataError, match="is a directory"):
        read_table(tmp_path, format="csv")
    with pytest.raises(FileNotFoundError, match="data file not found"):
        read_table(tmp_path / "missing.csv")


def test_write_table_refuses_bad_arguments(flights, tmp_path):
    for bad in (None, [1, 2], flights["dep_delay"]):
        with pytest.raises(DataError, match="df must be a pandas DataFrame"):
            write_table(bad, tmp_path / "x.parquet")
    with pytest.raises(DataError, match="MultiIndex columns"):
        write_table(pd.DataFrame([[1, 2]], columns=pd.MultiIndex.from_tuples([("a", "b"), ("a", "c")])), tmp_path / "m.parquet")
    for kw in ({"lock_timeout": "x"}, {"lock_timeout": True}, {"durable": "yes"}):
        with pytest.raises(DataError):
            write_table(flights, tmp_path / "x.parquet", **kw)
    # a mixed-type object column: a raw pyarrow ArrowInvalid / ArrowTypeError before
    mixed = pd.DataFrame({"o": pd.Series([1, "1", 2.5], dtype=object)})
    for fmt in ("parquet", "feather"):
        with pytest.raises(DataError, match=r"column 'o' mixes value types \['float', 'int', 'str'\]"):
            write_table(mixed, tmp_path / f"o.{fmt}")
    assert not (tmp_path / "o.parquet").exists() and not (tmp_path / "o.parquet.meta.json").exists()


def test_read_table_refuses_bad_arguments(flights, tmp_path):
    p = write_table(flights, tmp_path / "f.parquet")
    for bad in ("dep_delay", [1], ["a", "a"], {"dep_delay"}):
        with pytest.raises(DataError, match="columns"):
            read_table(p, columns=bad)
    for kw in ({"verify": "yes"}, {"require_sidecar": None}, {"allow_pickle": 1}, {"schema": 3}, {"schema": [1]}):
        with pytest.raises(DataError):
            read_table(p, **kw)
    with pytest.raises(DataError, match="reader_schema"):
        read_table(p, reader_schema={"type": "record"})
    with pytest.raises(DataError, match="reader_schema"):
        read_table(write_table(flights.head(3), tmp_path / "f.avro"), reader_schema="schema")
    assert read_table(p, columns=[]).shape == (len(flights), 0)  # no columns, every row (pandas alone gives 0 rows)
    assert read_table(write_table(flights, tmp_path / "f.feather"), columns=[]).shape == (len(flights), 0)


def test_nan_inf_and_empty_frames(tmp_path):
    df = pd.DataFrame({"x": [np.nan, np.inf, -np.inf, -0.0]})
    for fmt in ("csv", "parquet", "feather", "avro", "protobuf"):
        back = read_table(write_table(df, tmp_path / f"x.{fmt}"))
        pd.testing.assert_frame_equal(back, df, check_exact=True)
        assert np.signbit(back["x"].iloc[3])
    empty = pd.DataFrame({"a": pd.Series([], dtype="Int64"), "s": pd.Series([], dtype="string")})
    for fmt in FORMATS:
        pd.testing.assert_frame_equal(read_table(write_table(empty, tmp_path / f"e.{fmt}"), allow_pickle=True), empty)


def test_measure_formats_refuses_bad_arguments(flights, tmp_path):
    with pytest.raises(DataError, match="formats must be a non-empty list"):
        measure_formats(flights, tmp_path, formats="csv")  # iterated its characters before
    with pytest.raises(DataError, match="formats must be a non-empty list"):
        measure_formats(flights, tmp_path, formats=())
    for rep in (1.5, True, "2"):
        with pytest.raises(DataError, match="repeat must be at least 1"):
            measure_formats(flights, tmp_path, repeat=rep)
    with pytest.raises(DataError, match="no rows"):
        measure_formats(flights.head(0), tmp_path)
    with pytest.raises(DataError, match="folder must be"):
        measure_formats(flights, None)
    with pytest.raises(DataError, match="df must be a pandas DataFrame"):
        measure_formats(None, tmp_path)
    with pytest.raises(DataError, match="format='xml'"):
        measure_formats(flights, tmp_path, formats=("csv", "xml"))


def test_avro_schema_refuses_bad_arguments(flights):
    with pytest.raises(DataError, match="schema must be a schema dict"):
        avro_schema(None)
    with pytest.raises(DataError, match="not a valid Avro name"):
        avro_schema(flights, name="my table")
