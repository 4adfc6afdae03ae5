"""data.etl: every public entry point refuses bad input with a named error; ETL == ELT on non-ASCII and whitespace dirt;
a ledger or ELT database held by another process gives StoreLockedError."""
import sqlite3
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from mlsys.core import BusyError, ConfigError, DataError, MlsysError, SchemaError
from mlsys.data.etl import (
    CLEAN_SCHEMA,
    RAW_COLUMNS,
    FlightLedger,
    conform,
    elt_flights,
    etl_flights,
    raw_batches,
    spawn_writer,
    standardize,
    to_raw,
    transform,
    validate,
    write_days,
)
from mlsys.data.models import StoreLockedError
from mlsys.datasets import load_flights


@pytest.fixture(scope="module")
def day():
    return load_flights("2013-02-10", "2013-02-10")


@pytest.fixture(scope="module")
def raw(day):
    return to_raw(day)


def _std(raw):
    return standardize(raw).assign(_batch=0, _row=range(len(raw)))


# ---- to_raw, raw_batches -------------------------------------------------------------------------

@pytest.mark.parametrize("make, exc, msg", [
    (lambda f: None, DataError, "flights must be a pandas DataFrame, got NoneType"),  # was AttributeError
    (lambda f: f.to_dict("records"), DataError, "flights must be a pandas DataFrame, got list"),
    (lambda f: f.drop(columns="minute"), SchemaError, r"flights lacks column \['minute'\]"),
    (lambda f: f.assign(time_hour=f["time_hour"].dt.tz_localize(None)), DataError, r"flights\['time_hour'\] has no time zone"),
    (lambda f: f.assign(time_hour=f["time_hour"].astype(str)), DataError, r"flights\['time_hour'\] must be tz-aware"),
])
def test_to_raw_refuses(day, make, exc, msg):
    with pytest.raises(exc, match=msg):
        to_raw(make(day))


def test_to_raw_of_no_flights_is_an_empty_raw_frame(day):
    empty = to_raw(day.iloc[:0])
    assert list(empty.columns) == RAW_COLUMNS and len(empty) == 0
    assert len(validate(empty)) == 0


@pytest.mark.parametrize("kwargs, msg", [
    ({"batch_days": "2"}, "batch_days must be an integer number of days, got '2'"),
    ({"batch_days": 2.0}, "batch_days must be an integer"),
    ({"overlap_days": True}, "overlap_days must be an integer"),
    ({"batch_days": 0, "overlap_days": 0}, r"overlap_days must be in \[0, batch_days\)"),
    ({"start": "2014-01-01", "end": "2014-01-02"}, "2014-01-0"),  # no flights there: was a raw ValueError from date_range
    ({"start": float("nan")}, "start must be a date string"),  # was AttributeError: 'NaTType' object has no attribute ...
    ({"end": "someday"}, "end='someday' is not a date"),
])
def test_raw_batches_refuses(kwargs, msg):
    with pytest.raises(DataError, match=msg):
        raw_batches(**kwargs)


# ---- standardize, validate, transform, conform ------------------------------------------------------

def test_standardize_refuses_and_handles_empty_and_nan(raw):
    with pytest.raises(DataError, match="raw batch must be a pandas DataFrame, got NoneType"):
        standardize(None)
    with pytest.raises(SchemaError, match=r"raw batch lacks column \['carrier'\]"):
        standardize(raw.drop(columns="carrier"))
    assert len(standardize(raw.iloc[:0])) == 0
    floats = raw.head(5).assign(dep_delay=np.nan, carrier=[None, "UA", "ua", " UA ", float("nan")])  # NaN, not "NA"
    std = standardize(floats)
    assert std["dep_delay"].isna().all() and std["carrier"].tolist()[1:4] == ["UA", "UA", "UA"]
    assert validate(floats)["rule"].value_counts()["required"] == 2  # the two missing carriers


def test_validate_refuses_a_std_that_is_not_standardize_raw(raw):
    with pytest.raises(SchemaError, match=r"std\['dep_time'\] has dtype .* std looks unstandardized"):
        validate(raw, std=raw)
    with pytest.raises(DataError, match="its index differs from raw's"):
        validate(raw, std=standardize(raw.iloc[::-1].reset_index(drop=True)).iloc[:10])
    with pytest.raises(DataError, match="batch must be an integer"):
        validate(raw, batch="1")
    with pytest.raises(SchemaError, match=r"raw batch lacks column \['time_hour'\]"):
        validate(raw.drop(columns="time_hour"), std=standardize(raw))


def test_transform_on_an_unstandardized_raw_frame_is_named(raw):
    with pytest.raises(SchemaError, match=r"std\['dep_time'\] has dtype .* looks unstandardized; pass standardize\(raw\)"):
        transform(raw.assign(_batch=0, _row=range(len(raw))))  # the raw text frame: was a raw TypeError
    with pytest.raises(SchemaError, match="looks unstandardized"):
        transform(raw)
    with pytest.raises(SchemaError, match=r"std lacks columns \['_batch', '_row'\]"):
        transform(standardize(raw))
    with pytest.raises(DataError, match="std must be a pandas DataFrame, got NoneType"):
        transform(None)


@pytest.mark.parametrize("edit", [
    lambda s: s.assign(time_hour=s["time_hour"].where(s.index != 4)),
    lambda s: s.assign(sched_dep_time=s["sched_dep_time"].where(s.index != 4)),
    lambda s: s.assign(sched_dep_time=s["sched_dep_time"].mask(s.index == 4, 1275)),  # minute 75
    lambda s: s.assign(carrier=s["carrier"].where(s.index != 4)),
])
def test_transform_refuses_rows_that_validate_would_reject(raw, edit):
    with pytest.raises(DataError, match=r"std has 1 rows without a usable key or departure time \(first: index 4\)"):
        transform(edit(_std(raw)))  # was a raw ValueError (NA to int64) or a silently wrong departure


def test_transform_of_no_rows_is_an_empty_clean_table(raw):
    table, dups = transform(_std(raw).iloc[:0])
    assert dups == 0 and len(table) == 0 and table.dtypes.astype(str).to_dict() == CLEAN_SCHEMA


def test_conform_refuses(day):
    clean = etl_flights([to_raw(day)]).table
    with pytest.raises(DataError, match="clean table must be a pandas DataFrame, got NoneType"):
        conform(None)
    with pytest.raises(SchemaError, match=r"clean table lacks column \['is_late'\]"):
        conform(clean.drop(columns="is_late"))
    with pytest.raises(DataError, match="clean table column 'sched_dep' has no time zone"):
        conform(clean.assign(sched_dep=clean["sched_dep"].dt.tz_localize(None)))  # was silently read as UTC
    with pytest.raises(DataError, match="clean table column 'sched_dep' must be tz-aware"):
        conform(clean.assign(sched_dep=clean["sched_dep"].astype(str)))
    with pytest.raises(SchemaError, match="clean table column 'flight' .* cannot be cast to Int64"):
        conform(clean.assign(flight="abc"))
    with pytest.raises(SchemaError, match="clean table column 'distance' .* cannot be cast to Int64"):
        conform(clean.assign(distance=1.5))
    pd.testing.assert_frame_equal(conform(clean.assign(sched_dep=clean["sched_dep"].dt.tz_convert("America/New_York"))), clean)


# ---- etl_flights, elt_flights ----------------------------------------------------------------------

def test_jobs_refuse_bad_arguments(raw, tmp_path):
    for job in (etl_flights, elt_flights):
        for bad in (None, ["raise"], "RAISE"):
            with pytest.raises(DataError, match="must be 'quarantine' or 'raise'"):
                job([raw], on_invalid=bad)
        with pytest.raises(DataError, match="batches must be a non-empty list"):
            job(iter([raw]))
        with pytest.raises(DataError, match="batch 0 is a NoneType, not a DataFrame"):
            job([None])
    with pytest.raises(DataError, match="destination .* is a directory"):
        etl_flights([raw], destination=tmp_path)
    with pytest.raises(DataError, match="destination must be a str or os.PathLike, got int"):
        etl_flights([raw], destination=42)
    (tmp_path / "text.duckdb").write_text("not a database\n")
    for database, msg in [(tmp_path, "is a directory"), (tmp_path / "no" / "x.duckdb", "does not exist"),
                          (tmp_path / "text.duckdb", "duckdb cannot open"), (None, "must be a str or os.PathLike")]:
        with pytest.raises(DataError, match=msg):  # were raw duckdb IOExceptions
            elt_flights([raw], database=database)


def test_a_batch_with_every_row_rejected_loads_nothing(raw):
    bad = raw.head(20).assign(carrier="?")
    for job in (etl_flights, elt_flights):
        r = job([bad])
        assert len(r.table) == 0 and r.stats["rejected_rows"] == 20 and r.stats["loaded"] == 0
        assert r.table.dtypes.astype(str).to_dict() == CLEAN_SCHEMA


EDGE = ["ß", "ı", "ﬁ", "é", "\u0301", "１", "٣", "\t", "\u00a0", "\u2003", "\n", "\r", " ", "NA", "", "x"]
TS_EDGE = ["2013-01-01T24:00:00Z", "0000-01-01T00:00:00Z", "2013-02-29T10:00:00Z", "2013-01-01T10:00:60Z",
           "2013-01-01T10:00:00z", "2013-01-01T10:00:00+00:00", "9999-12-31T23:00:00Z", "2013-1-01T10:00:00Z"]


def _soil_unicode(b: pd.DataFrame, rng: np.random.Generator, n: int = 60) -> pd.DataFrame:
    b = b.copy()
    cols = ["carrier", "tailnum", "origin", "dest", "flight", "dep_delay", "sched_dep_time", "time_hour", "distance"]
    for r in rng.choice(len(b), size=min(n, len(b)), replace=False):
        c = cols[rng.integers(len(cols))]
        v = str(b.at[r, c])
        if c == "time_hour" and rng.random() < 0.5:
            b.at[r, c] = TS_EDGE[rng.integers(len(TS_EDGE))]
            continue
        e, k = EDGE[rng.integers(len(EDGE))], rng.integers(4)
        b.at[r, c] = (e + v) if k == 0 else (v + e) if k == 1 else (v.lower() if k == 2 else v[:1] + e + v[1:])
    return b


@pytest.mark.parametrize("seed", range(4))
def test_etl_equals_elt_on_non_ascii_whitespace_and_odd_times(seed):
    "Python's strip()/upper() and DuckDB's trim()/upper() differ ('\\t', 'ß', 'ﬁ'); so did 24:00:00 (6 of 6 seeds before)."
    rng = np.random.default_rng(seed)
    dirty = [_soil_unicode(b, rng) for b in raw_batches("2013-03-09", "2013-03-11", batch_days=2, overlap_days=1)]
    etl, elt = etl_flights(dirty), elt_flights(dirty)
    pd.testing.assert_frame_equal(elt.rejects, etl.rejects)
    pd.testing.assert_frame_equal(elt.table, etl.table)
    assert elt.stats == etl.stats and etl.stats["rejected_rows"] > 50
    assert not etl.table["carrier"].str.contains("SS").any()  # 'ß' is not upper-cased into a valid carrier code


# ---- the ledger --------------------------------------------------------------------------------------

def test_ledger_refuses_odd_paths_and_foreign_databases(tmp_path):
    with pytest.raises(DataError, match="ledger path must be a str or os.PathLike, got NoneType"):
        FlightLedger(None)
    with pytest.raises(DataError, match="ledger path .* is a directory"):
        FlightLedger(tmp_path)  # was sqlite3.OperationalError: unable to open database file
    with pytest.raises(DataError, match="the folder .* does not exist"):
        FlightLedger(tmp_path / "no" / "ledger.sqlite")
    (tmp_path / "text.sqlite").write_bytes(b"this is not a database, just text" * 10)
    with pytest.raises(DataError, match="could not open it .*is it a SQLite database"):
        FlightLedger(tmp_path / "text.sqlite")
    con = sqlite3.connect(tmp_path / "other.sqlite")
    con.execute("CREATE TABLE flights (id INTEGER, name TEXT)")
    con.commit()
    con.close()
    with pytest.raises(SchemaError, match="is a SQLite database but not a flight ledger"):
        FlightLedger(tmp_path / "other.sqlite")
    for timeout in (-1, "30", None):
        with pytest.raises(ConfigError, match="timeout must be a non-negative number"):
            FlightLedger(tmp_path / "l.sqlite", timeout=timeout)


def test_ledger_write_and_read_refuse_bad_arguments(tmp_path, day):
    good = etl_flights([to_raw(day)]).table
    path = tmp_path / "grand-livre-ü" / "ledger.sqlite"  # a non-ASCII path works
    path.parent.mkdir()
    with FlightLedger(path) as led:
        for batch_id in (None, "", "  ", 7):
            with pytest.raises(DataError, match="batch_id must be a non-empty string"):
                led.write_batch(batch_id, good)
        with pytest.raises(DataError, match="batch 'b' must be a pandas DataFrame, got NoneType"):
            led.write_batch("b", None)
        with pytest.raises(DataError, match="batch 'b' column 'sched_dep' has no time zone"):
            led.write_batch("b", good.assign(sched_dep=good["sched_dep"].dt.tz_localize(None)))  # was read as UTC
        with pytest.raises(DataError, match="batch 'b' violates a constraint"):
            led.write_batch("b", good.assign(flight="abc"))
        with pytest.raises(DataError, match="batch 'b' violates a constraint"):
            led.write_batch("b", good.assign(sched_dep=good["sched_dep"].where(good.index != 3)))
        for after in ("x", None, -1, True, 1.5):  # 'x' returned an empty frame: SQLite compares text > integers
            with pytest.raises(DataError, match="after must be a non-negative integer cursor"):
                led.read_new(after)
        assert led.write_batch("b", good) == len(good)
        rows, ledger, cursor = led.read_new(0)
        assert len(rows) == len(good) and ledger["batch_id"].tolist() == ["b"] and cursor == len(good)
        assert led.write_batch("empty", good.iloc[:0]) == 0  # an empty batch is recorded, with no rows


@pytest.mark.parametrize("start, end, pause, msg", [
    ("2013-02-03", "2013-02-01", 0.0, "end='2013-02-01' is before start='2013-02-03'"),  # wrote 0 rows silently
    ("yesterday", "2013-02-01", 0.0, "start='yesterday' is not a date"),
    (None, "2013-02-01", 0.0, "start must be a date string"),
    ("2013-02-01", "2013-02-01", -1.0, "pause must be a non-negative number"),
    ("2013-02-01", "2013-02-01", "0.1", "pause must be a non-negative number"),
])
def test_writers_refuse_bad_arguments_before_starting(tmp_path, start, end, pause, msg):
    with pytest.raises(DataError, match=msg):
        write_days(tmp_path / "l.sqlite", start, end, pause)
    with pytest.raises(DataError, match=msg):
        spawn_writer(tmp_path / "l.sqlite", start, end, pause)
    assert not (tmp_path / "l.sqlite").exists()


HOLD_SQLITE = """import sqlite3, sys
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("BEGIN IMMEDIATE")  # a writer in the middle of writing a batch
print("holding", flush=True)
sys.stdin.read()
con.execute("ROLLBACK")
"""
HOLD_DUCKDB = """import sys
from mlsys.data.models import connect_duckdb
con = connect_duckdb(sys.argv[1])
print("holding", flush=True)
sys.stdin.read()
con.close()
"""


def _hold(code, path):
    p = subprocess.Popen([sys.executable, "-c", code, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "holding", p.stderr.read()
    return p


def test_ledger_busy_in_another_process_is_a_named_error(tmp_path, day):
    path = tmp_path / "ledger.sqlite"
    FlightLedger(path).close()
    good = etl_flights([to_raw(day)]).table
    holder = _hold(HOLD_SQLITE, path)
    try:
        with FlightLedger(path, timeout=0.2) as led:
            with pytest.raises(StoreLockedError, match="is locked by another process, so it could not start writing batch 'b'") as info:
                led.write_batch("b", good)  # was sqlite3.OperationalError: database is locked
            assert isinstance(info.value, BusyError) and isinstance(info.value.__cause__, sqlite3.OperationalError)
            assert len(led.read_new(0)[0]) == 0  # WAL: reading goes on while the other process writes
    finally:
        holder.communicate("", timeout=60)
    with FlightLedger(path, timeout=0.2) as led:
        assert led.write_batch("b", good) == len(good)


def test_elt_into_a_database_another_process_holds_is_a_named_error(tmp_path, raw):
    path = tmp_path / "elt.duckdb"
    holder = _hold(HOLD_DUCKDB, path)
    try:
        with pytest.raises(StoreLockedError, match=f"is locked by another process \\(PID {holder.pid}\\)") as info:
            elt_flights([raw], database=path, timeout=0.2)  # was duckdb IOException: Could not set lock
        assert isinstance(info.value, MlsysError)
    finally:
        holder.communicate("", timeout=60)
    assert elt_flights([raw], database=path, timeout=0.2).stats["loaded"] == len(raw)
