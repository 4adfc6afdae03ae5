"""mlsys.core: the shared input checks and every public helper's bad-input behaviour."""
import datetime as dt
import json
import logging
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from mlsys.core import (
    EXTRAS,
    ConfigError,
    DataError,
    MissingExtraError,
    SchemaError,
    as_path,
    atomic_write_bytes,
    enable_logging,
    file_sha256,
    install_hint,
    load_json,
    optional_import,
    require_columns,
    require_tz_aware,
    save_json,
)


@pytest.fixture
def frame():
    return pd.DataFrame({"origin": ["JFK", "LGA"], "time_hour": pd.to_datetime(["2013-01-01 05:00", "2013-01-01 06:00"], utc=True)})


def test_require_columns(frame):
    assert require_columns(frame, ["origin"], "flights") is frame
    assert require_columns(frame, "origin", "flights") is frame  # a single name, not its characters
    assert require_columns(frame, [], "flights") is frame
    with pytest.raises(SchemaError, match=r"^flights lacks column \['dest'\]; it has \['origin', 'time_hour'\]$"):
        require_columns(frame, ["origin", "dest"], "flights")
    with pytest.raises(SchemaError, match=r"lacks columns \['a', 'b'\]"):
        require_columns(frame, ["a", "b"])
    for bad in (None, {"origin": [1]}, frame["origin"], np.zeros((2, 2)), "origin"):
        with pytest.raises(DataError, match=r"^weather must be a pandas DataFrame, got "):
            require_columns(bad, ["origin"], "weather")
    with pytest.raises(ConfigError, match="cols must be column names"):
        require_columns(frame, 3)
    with pytest.raises(ConfigError, match="hashable"):
        require_columns(frame, [["origin"]])
    wide = pd.DataFrame({f"c{i}": [1] for i in range(50)})
    with pytest.raises(SchemaError, match=r"\.\.\. \(50 in all\)"):
        require_columns(wide, ["zz"])


def test_require_tz_aware(frame):
    s = frame["time_hour"]
    assert require_tz_aware(s, "time_hour") is s
    idx = pd.DatetimeIndex(s)
    assert require_tz_aware(idx) is idx
    ts = pd.Timestamp("2013-01-01", tz="America/New_York")
    assert require_tz_aware(ts) is ts
    d = dt.datetime(2013, 1, 1, tzinfo=dt.timezone.utc)
    assert require_tz_aware(d) is d
    naive = pd.Series(pd.to_datetime(["2013-01-01"]))
    with pytest.raises(DataError, match=r"^time_hour has no time zone \(naive datetime64\[.*\]\); localize it first"):
        require_tz_aware(naive, "time_hour")
    with pytest.raises(DataError, match="start has no time zone"):
        require_tz_aware(pd.Timestamp("2013-01-01"), "start")
    with pytest.raises(DataError, match="start has no time zone"):
        require_tz_aware(dt.datetime(2013, 1, 1), "start")
    with pytest.raises(DataError, match=r"start is missing \(NaT\)"):
        require_tz_aware(pd.NaT, "start")
    for bad, kind in [(None, "NoneType"), ("2013-01-01T00:00Z", "str"), (1.5, "float"), (dt.date(2013, 1, 1), "date")]:
        with pytest.raises(DataError, match=f"start must be tz-aware timestamps, got {kind}"):
            require_tz_aware(bad, "start")
    with pytest.raises(DataError, match="got dtype object"):  # tz-aware values in an object column are not a tz-aware column
        require_tz_aware(pd.Series([ts, pd.Timestamp("2013-01-01", tz="UTC")], dtype=object), "mixed")
    with pytest.raises(DataError, match="got dtype int64"):
        require_tz_aware(pd.Series([1, 2]), "epoch")


def test_as_path(tmp_path):
    assert as_path(str(tmp_path)) == tmp_path == as_path(tmp_path)
    for bad in (None, 3, b"/tmp/x", ["a"]):
        with pytest.raises(DataError, match="out must be a str or os.PathLike"):
            as_path(bad, "out")
    for bad in ("", "   ", "a\x00b"):
        with pytest.raises(DataError, match="non-empty file path without NUL"):
            as_path(bad, "out")


def test_load_json_names_every_bad_file(tmp_path):
    (tmp_path / "bin").write_bytes(bytes(range(256)))  # a binary file (failed before: raw UnicodeDecodeError)
    with pytest.raises(DataError, match=r"bin is not valid JSON: byte 128 \(0x80\) is not UTF-8 text"):
        load_json(tmp_path / "bin")
    (tmp_path / "nul").write_bytes(b"\x00\x01\x02")
    with pytest.raises(DataError, match="nul is not valid JSON"):
        load_json(tmp_path / "nul")
    for const in ("NaN", "Infinity", "-Infinity"):
        (tmp_path / "c.json").write_text(f'{{"x": [1, {const}]}}')
        with pytest.raises(DataError, match=f"contains {const}"):
            load_json(tmp_path / "c.json")
    with pytest.raises(DataError, match="is a directory"):
        load_json(tmp_path)
    with pytest.raises(FileNotFoundError, match="JSON file not found"):
        load_json(tmp_path / "missing.json")
    with pytest.raises(DataError, match="JSON path must be a str or os.PathLike, got NoneType"):
        load_json(None)
    (tmp_path / "empty.json").write_text("")
    with pytest.raises(DataError, match="not valid JSON"):
        load_json(tmp_path / "empty.json")
    (tmp_path / "u.json").write_text('{"city": "Zürich", "empty": ""}', encoding="utf-8")
    assert load_json(tmp_path / "u.json") == {"city": "Zürich", "empty": ""}


def test_save_json_refuses_what_json_would_change(tmp_path):
    p = tmp_path / "m.json"
    save_json({"counts": {0: 1, np.int64(1): 2}, "f32": np.float32(0.1)}, p)
    back = load_json(p)
    assert back["counts"] == {"0": 1, "1": 2} and back["f32"] == float(np.float32(0.1))
    with pytest.raises(DataError, match="collide"):
        save_json({1: "a", "1": "b"}, p)
    for key in [(1, 2), 1.5, None, True]:
        with pytest.raises(DataError, match="JSON keys are strings"):
            save_json({key: 1}, p)
    with pytest.raises(DataError, match=r"value at \$\.a\[1\] is inf"):
        save_json({"a": [1, np.float32("inf")]}, p)
    with pytest.raises(DataError, match="ndarray"):
        save_json({"a": np.zeros(2)}, p)
    assert json.loads(p.read_text())["counts"] == {"0": 1, "1": 2}  # the good file survives the refusals


def test_atomic_write_bytes_and_sha256(tmp_path):
    with pytest.raises(DataError, match="must be bytes, got str"):
        atomic_write_bytes(tmp_path / "x", "text")
    with pytest.raises(DataError, match="is a directory"):
        atomic_write_bytes(tmp_path, b"x")
    with pytest.raises(DataError, match="path must be a str or os.PathLike"):
        atomic_write_bytes(None, b"x")
    p = atomic_write_bytes(tmp_path / "a" / "b.bin", bytearray(b"abc"))
    assert p.read_bytes() == b"abc" and [x.name for x in p.parent.iterdir()] == ["b.bin"]
    assert file_sha256(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert file_sha256(p, chunk=1) == file_sha256(p)
    for chunk in (0, -1, 1.5, True):  # chunk=0 returned the digest of an empty file before
        with pytest.raises(ConfigError, match="chunk must be a positive number of bytes"):
            file_sha256(p, chunk=chunk)
    with pytest.raises(DataError, match="is a directory"):
        file_sha256(tmp_path)
    with pytest.raises(FileNotFoundError):
        file_sha256(tmp_path / "nope")


def test_optional_imports_and_hints():
    assert EXTRAS["fastavro"] == "formats" and EXTRAS["google.protobuf"] == "formats"
    assert install_hint("fastavro") == 'pip install "mlsys[formats]"'
    assert install_hint("google.protobuf.descriptor_pb2") == 'pip install "mlsys[formats]"'
    assert install_hint("google.cloud") == "pip install google"  # only the listed prefix maps to the extra
    assert install_hint("torch.nn") == 'pip install "mlsys[torch]"'
    for bad in (None, "", ".relative", 3):
        with pytest.raises(ConfigError, match="module must be an absolute module name"):
            optional_import(bad)
        with pytest.raises(ConfigError, match="module must be an absolute module name"):
            install_hint(bad)
    with pytest.raises(MissingExtraError, match=r'install it with: pip install "mlsys\[formats\]"') as e:
        optional_import("google.protobuf.surely_missing_xyz")
    assert isinstance(e.value, ImportError)


def test_enable_logging_levels():
    for bad in (None, -1, 1.5, True, "LOUD"):
        with pytest.raises(ConfigError):
            enable_logging(bad)
    assert enable_logging(logging.WARNING).level == logging.WARNING
    assert enable_logging(np.int64(30)).level == 30


def test_import_mlsys_does_not_import_the_format_codecs():
    code = ("import sys, mlsys, mlsys.core, mlsys.data.formats; "
            "print(sorted(m for m in ('fastavro', 'google.protobuf') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


# -- import_skops_io: skops without the array-api back-ends its estimator walk would import ----------------------------

def _skops_facts(pre: str) -> dict:
    code = (f"import json, sys\n{pre}\n"
            "from mlsys.core import _BlockAdapters\n"
            "from skops.io import _trusted_types as T\n"
            "print(json.dumps({'names': sorted(T.SKLEARN_ESTIMATOR_TYPE_NAMES), 'defaults': sorted(T.DEFAULT_TRUSTED_TYPES) "
            "if hasattr(T, 'DEFAULT_TRUSTED_TYPES') else None, 'torch': 'torch' in sys.modules, "
            "'blocker_left': any(isinstance(f, _BlockAdapters) for f in sys.meta_path)}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_skops_io_trusts_exactly_what_a_plain_import_trusts_without_importing_torch():
    plain = _skops_facts("import skops.io")
    ours = _skops_facts("from mlsys.core import import_skops_io; import_skops_io()")
    assert ours["names"] == plain["names"] and len(ours["names"]) > 150
    assert ours["defaults"] == plain["defaults"]
    assert plain["torch"] is True  # the walk imports torch through sklearn.externals.array_api_compat.torch ...
    assert ours["torch"] is False  # ... which import_skops_io blocks for the duration of the import only
    assert ours["blocker_left"] is False


def test_import_skops_io_leaves_the_array_api_adapters_importable_afterwards():
    code = ("from mlsys.core import import_skops_io; import_skops_io()\n"
            "import sklearn.externals.array_api_compat.torch as t, sys; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    assert out.stdout.strip().endswith("True")


def test_import_skops_io_removes_its_blocker_when_the_import_fails(monkeypatch):
    import mlsys.core as C

    monkeypatch.delitem(sys.modules, "skops.io", raising=False)
    monkeypatch.setitem(sys.modules, "skops.io", None)  # makes `import skops.io` raise ImportError
    with pytest.raises(C.MissingExtraError, match="skops.io"):
        C.import_skops_io()
    assert not any(isinstance(f, C._BlockAdapters) for f in sys.meta_path)
