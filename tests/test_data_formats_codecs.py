"""data.codecs (through data.formats): Avro and Protobuf specifics (schema evolution, framing, extras) and the edge frames
of every format."""
import json
import struct
import sys

import numpy as np
import pandas as pd
import pytest

import mlsys.data.codecs as C
import mlsys.data.formats as F
from mlsys.core import DataError, IntegrityError, MissingExtraError, SchemaError
from mlsys.data.codecs import avro_schema, protobuf_message
from mlsys.data.formats import FORMATS, read_table, table_schema, write_table


@pytest.fixture
def v1():
    return pd.DataFrame({"carrier": pd.Categorical(["UA", "AA", None], categories=["AA", "UA", "ZZ"]),
                         "dep_delay": pd.array([5, None, -3], dtype="Int64"), "n": np.array([1, 2, 3])})


def test_avro_reader_adds_defaulted_fields(v1, tmp_path):
    p = write_table(v1, tmp_path / "v1.avro")
    v2 = v1.assign(is_late=pd.array([True, None, False], dtype="boolean"), legs=np.array([1, 1, 2]),
                   note=pd.array(["a", "b", None], dtype="string"))
    reader = avro_schema(v2, defaults={"is_late": None, "legs": 1, "note": "n/a"})
    old = read_table(p, reader_schema=reader)
    assert list(old.columns) == list(v2.columns)
    pd.testing.assert_frame_equal(old[list(v1.columns)], v1, check_exact=True)
    assert old["is_late"].dtype == "boolean" and old["is_late"].isna().all()
    assert old["legs"].dtype == "int64" and old["legs"].tolist() == [1, 1, 1]
    assert old["note"].tolist() == ["n/a"] * 3
    # the same reader reads new files too
    p2 = write_table(v2, tmp_path / "v2.avro")
    pd.testing.assert_frame_equal(read_table(p2, reader_schema=reader), v2, check_exact=True)


def test_avro_resolution_rules(v1, tmp_path):
    p = write_table(v1, tmp_path / "v1.avro")
    no_default = avro_schema(v1.assign(extra=np.array([0, 0, 0])))
    with pytest.raises(SchemaError, match="the reader schema cannot read this file: .*extra"):
        read_table(p, reader_schema=no_default)
    dropped = read_table(p, reader_schema=avro_schema(v1[["n"]]))
    assert list(dropped.columns) == ["n"] and dropped["n"].tolist() == [1, 2, 3]
    # a promotion Avro allows: long -> double
    promoted = read_table(p, reader_schema=avro_schema(pd.DataFrame({"carrier": v1["carrier"], "dep_delay": v1["dep_delay"],
                                                                     "n": np.array([1.0, 2.0, 3.0])})))
    assert promoted["n"].dtype == "float64" and promoted["n"].tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(DataError, match="reader_schema is an Avro record schema"):
        read_table(write_table(v1, tmp_path / "v1.parquet"), reader_schema=avro_schema(v1))
    with pytest.raises(SchemaError, match=r"defaults name columns \['nope'\]"):
        avro_schema(v1, defaults={"nope": 1})
    with pytest.raises(SchemaError, match="cannot default to None"):
        avro_schema(v1, defaults={"n": None})


def test_avro_names_that_are_not_identifiers(tmp_path):
    df = pd.DataFrame({"a b": [1], "é": [2], "_c0": [3], "1st": [4], "ok": [5]})
    fields = [f["name"] for f in avro_schema(df)["fields"]]
    assert fields == ["_c0", "_c1", "_c2", "_c3", "ok"] or len(set(fields)) == len(fields)
    assert len(set(fields)) == len(fields)
    pd.testing.assert_frame_equal(read_table(write_table(df, tmp_path / "n.avro")), df)


def test_avro_file_is_readable_by_plain_fastavro(v1, tmp_path):
    fastavro = pytest.importorskip("fastavro")
    ts = pd.DataFrame({"t": pd.Series(pd.to_datetime(["2013-01-01 05:00"], utc=True)).astype("datetime64[us, UTC]")})
    p = write_table(ts, tmp_path / "t.avro")
    with open(p, "rb") as f:
        (rec,) = list(fastavro.reader(f))
    assert rec["t"] == pd.Timestamp("2013-01-01 05:00", tz="UTC").to_pydatetime()  # the logical type travels


def test_protobuf_framing_detects_damage(v1, tmp_path):
    p = write_table(v1, tmp_path / "t.pb")
    data = p.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[12:12 + n])
    assert header["magic"] == "mlsys.protobuf-records/1" and header["schema"] == table_schema(v1) and header["rows"] == 3
    for where, what in [(3, "length field fails its CRC"), (12 + n + 16 + 2, "fails its CRC"), (20, "fails its CRC")]:
        bad = bytearray(data)
        bad[where] ^= 0x40
        p.write_bytes(bytes(bad))
        with pytest.raises(IntegrityError, match=what):
            read_table(p, verify=False)
    F.meta_path(p).unlink()  # from here on a foreign file: only the framing can tell
    p.write_bytes(data[:-3])
    with pytest.raises(IntegrityError, match="truncated"):
        read_table(p, require_sidecar=False)
    p.write_bytes(b"not protobuf records at all")
    with pytest.raises(IntegrityError, match="truncated|CRC|header"):
        read_table(p, require_sidecar=False)
    p.write_bytes(C._frame(b'{"magic": "something else"}'))
    with pytest.raises(IntegrityError, match="not an mlsys Protobuf records file"):
        read_table(p, require_sidecar=False)


def test_protobuf_message_type_is_built_from_the_schema(v1):
    Row = protobuf_message(v1)
    assert [f.json_name for f in Row.DESCRIPTOR.fields] == list(v1.columns)
    msg = Row(c0=1, c1=-3)
    assert Row.FromString(msg.SerializeToString()).c1 == -3 and not Row.FromString(msg.SerializeToString()).HasField("c2")
    assert protobuf_message(table_schema(v1)) is Row  # built once per schema


def test_garbage_avro_is_an_integrity_error(tmp_path):
    p = tmp_path / "g.avro"
    p.write_bytes(b"Obj\x01garbage")
    with pytest.raises(IntegrityError, match="not a readable Avro file"):
        read_table(p, require_sidecar=False)


@pytest.mark.parametrize("module,fmt", [("fastavro", "avro"), ("google.protobuf.descriptor_pb2", "protobuf")])
def test_missing_extra_names_the_install(module, fmt, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    C._proto_file.cache_clear()
    C._message_class.cache_clear()
    df = pd.DataFrame({f"only_here_{fmt}": [1]})
    with pytest.raises(MissingExtraError, match=r'pip install "mlsys\[formats\]"'):
        write_table(df, tmp_path / f"x.{fmt}")
    C._proto_file.cache_clear()
    C._message_class.cache_clear()


EDGE = {
    "zero rows, typed": (pd.DataFrame({"a": pd.Series([], dtype="int64"), "t": pd.Series([], dtype="datetime64[us, UTC]"),
                                       "c": pd.Categorical([], categories=["x"]), "s": pd.Series([], dtype="str")}), {}),
    "infinities": (pd.DataFrame({"x": [np.inf, -np.inf, 1.0], "y": np.array([np.inf, 0, 1], dtype="float32")}),
                   {"jsonl": "infinite values"}),
    "64-bit extremes": (pd.DataFrame({"u": np.array([0, 2**64 - 1, 2**63], dtype="uint64"),
                                      "i": np.array([np.iinfo("int64").min, 0, np.iinfo("int64").max]),
                                      "U": pd.array([None, 2**64 - 1, 5], dtype="UInt64")}), {}),
    "small ints": (pd.DataFrame({"a": np.array([-128, 0, 127], dtype="int8"), "b": np.array([0, 1, 255], dtype="uint8"),
                                 "c": pd.array([1, None, -3], dtype="Int8")}), {}),
    "float and bool categories": (pd.DataFrame({"c": pd.Categorical([0.5, None, 1.5], categories=[0.5, 1.5, 2.5]),
                                                "b": pd.Categorical([True, None, True], categories=[False, True])}), {}),
    "odd column names": (pd.DataFrame({"a\nb": [1, 2], "c,d": [3, 4], 'q"': [5, 6], "名前": [7, 8]}), {}),
    "time units": (pd.DataFrame({"td": pd.to_timedelta([1, None, -5], unit="ns"),
                                 "s": pd.Series(pd.to_datetime(["2013-01-01 00:00:01", None, "2013-03-10 07:00:00"], utc=True))
                                        .astype("datetime64[s, UTC]"),
                                 "ms": pd.Series(pd.to_datetime(["2013-01-01 00:00:01.123", None, "2013-01-02 00:00:00.000"])).astype("datetime64[ms]")}), {}),
    "no columns": (pd.DataFrame(index=range(5)), {f: "without columns" for f in ("csv", "jsonl", "parquet", "feather")}),
    "blank column name": (pd.DataFrame({"": [1, 2]}), {"csv": "blank column name", "jsonl": "blank column name"}),
    "object strings": (pd.DataFrame({"o": pd.Series(["a", None, "b"], dtype=object)}),
                       {f: "dtype object" for f in ("csv", "jsonl", "avro", "protobuf")}),
    "lone surrogate": (pd.DataFrame({"o": pd.Series(["a\ud800", "b"], dtype=object)}),
                       {"csv": "dtype object", "jsonl": "dtype object", "avro": "dtype object", "protobuf": "dtype object",
                        "parquet": "column 'o' cannot be stored in parquet", "feather": "column 'o' cannot be stored in feather"}),
    "mixed objects": (pd.DataFrame({"o": pd.Series([1, "1", 2.5], dtype=object)}),
                      {"csv": "dtype object", "jsonl": "dtype object", "avro": "dtype object", "protobuf": "dtype object",
                       "parquet": r"column 'o' mixes value types \['float', 'int', 'str'\]",
                       "feather": r"column 'o' mixes value types \['float', 'int', 'str'\]"}),
    "periods": (pd.DataFrame({"p": pd.period_range("2013-01", periods=2, freq="M")}),
                {f: "period.M., which .* cannot store exactly" for f in ("csv", "jsonl", "avro", "protobuf")}),
}


@pytest.mark.parametrize("case", EDGE)
def test_edge_frames_round_trip_or_are_refused_by_name(case, tmp_path):
    df, refused = EDGE[case]
    for fmt in FORMATS:
        p = tmp_path / f"e.{fmt}"
        if fmt in refused:
            with pytest.raises(DataError, match=refused[fmt]):
                write_table(df, p)  # before: a raw ArrowInvalid / ValueError, or a file that read back wrong
            continue
        back = read_table(write_table(df, p), allow_pickle=True)
        pd.testing.assert_frame_equal(back, df, check_exact=True, obj=f"{case} in {fmt}")


def test_names_moved_to_data_codecs_are_still_importable_from_formats():
    from mlsys.data.formats import _frame, _proto_file, avro_schema as moved_schema, protobuf_message as moved_message
    assert moved_schema is avro_schema and moved_message is protobuf_message
    assert _frame is C._frame and _proto_file is C._proto_file and F._records is C._records
    with pytest.raises(AttributeError, match="has no attribute 'NoSuchName'"):
        _ = F.NoSuchName
