"""data.etl: ETL == ELT (tables, rejects, stats), validation messages, dedup rule, dataflow through a database."""
import multiprocessing as mp
import subprocess
import sys
import time

import duckdb
import numpy as np
import pandas as pd
import pytest

from mlsys.core import DataError, SchemaError
from mlsys.data.etl import (
    FlightLedger,
    conform,
    elt_flights,
    etl_flights,
    raw_batches,
    spawn_writer,
    standardize,
    to_raw,
    validate,
    write_days,
)
from mlsys.data.formats import read_table
from mlsys.datasets import load_flights


@pytest.fixture(scope="module")
def batches():
    return raw_batches("2013-11-02", "2013-11-04", batch_days=2, overlap_days=1)  # spans the DST change


def soil(batch: pd.DataFrame, seed: int) -> pd.DataFrame:
    "Realistic dirt on random rows: spacing/case, NA spellings, bad codes, clock times, decimals, bad timestamps."
    rng = np.random.default_rng(seed)
    b = batch.copy()
    rows = rng.choice(len(b), size=40, replace=False)
    edits = [("carrier", lambda v: f" {v.lower()}  "), ("carrier", lambda v: "U"), ("carrier", lambda v: "U-A"),
             ("origin", lambda v: v.lower()), ("dest", lambda v: "NA"), ("dest", lambda v: ""), ("dest", lambda v: "JF"),
             ("sched_dep_time", lambda v: "2460"), ("sched_dep_time", lambda v: "-5"), ("dep_delay", lambda v: "3.0"),
             ("dep_delay", lambda v: "2000"), ("arr_delay", lambda v: " 7 "), ("arr_delay", lambda v: "seven"),
             ("distance", lambda v: "0"), ("distance", lambda v: "NA"), ("time_hour", lambda v: "2013-13-01T00:00:00Z"),
             ("time_hour", lambda v: v.replace("T", " ")), ("tailnum", lambda v: f" {str(v).lower()} "),
             ("flight", lambda v: "1e3"), ("air_time", lambda v: "+12")]
    for k, r in enumerate(rows):
        col, fn = edits[k % len(edits)]
        b.loc[r, col] = fn(b.loc[r, col])
    b.loc[rows[0], "dest"] = b.loc[rows[0], "origin"]  # same as origin
    return b


def test_etl_reproduces_the_typed_loader(batches):
    etl = etl_flights(batches)
    flights = load_flights("2013-11-02", "2013-11-04")
    ref = conform(flights.assign(**{c: flights[c].astype(str) for c in ["carrier", "origin", "dest"]}))
    pd.testing.assert_frame_equal(etl.table, ref)
    assert etl.stats == {"extracted": sum(map(len, batches)), "rejected_rows": 0,
                         "duplicates_dropped": sum(map(len, batches)) - len(flights), "loaded": len(flights)}


@pytest.mark.parametrize("seed", [0, 1])
def test_etl_and_elt_are_identical_on_dirty_data(batches, seed, tmp_path):
    dirty = [soil(b, seed + i) for i, b in enumerate(batches)]
    etl = etl_flights(dirty)
    elt = elt_flights(dirty, database=tmp_path / "elt.duckdb")
    pd.testing.assert_frame_equal(elt.table, etl.table)
    pd.testing.assert_frame_equal(elt.rejects, etl.rejects)
    assert elt.stats == etl.stats
    assert etl.stats["rejected_rows"] > 30
    # ELT kept the raw data and both results in the database
    con = duckdb.connect(str(tmp_path / "elt.duckdb"), read_only=True)
    assert con.execute("SELECT COUNT(*) FROM raw_flights").fetchone()[0] == etl.stats["extracted"]
    assert con.execute("SELECT COUNT(*) FROM flights_clean").fetchone()[0] == etl.stats["loaded"]
    con.close()


def test_standardization_is_not_a_violation(batches):
    b = batches[0].head(5).copy()
    orig = b.copy()
    b["carrier"] = " " + b["carrier"].str.lower() + " "
    b["tailnum"] = b["tailnum"].str.lower()
    b["arr_delay"] = " " + b["arr_delay"] + " "
    assert len(validate(b)) == 0
    pd.testing.assert_frame_equal(standardize(b), standardize(orig))


def test_violations_name_batch_row_column_and_value(batches):
    b = batches[1].copy()
    b.loc[7, "sched_dep_time"] = "1299"
    b.loc[9, "carrier"] = "Q"
    v = validate(b, batch=1)
    assert v[["batch", "row", "column", "rule", "value"]].values.tolist() == [
        [1, 7, "sched_dep_time", "not a clock time HHMM", "1299"], [1, 9, "carrier", "not a 2-character carrier code", "Q"]]
    with pytest.raises(DataError, match=r"2 invalid values in 2 rows: batch 1 row 7 column 'sched_dep_time': '1299' is not a clock time HHMM; "
                                        r"batch 1 row 9 column 'carrier': 'Q'"):
        etl_flights([batches[0], b], on_invalid="raise")
    with pytest.raises(DataError, match="batch 1 row 7 column 'sched_dep_time'"):
        elt_flights([batches[0], b], on_invalid="raise")


def test_dedup_keeps_the_latest_batch(batches):
    day = batches[0]["day"] == "3"  # 3 November is in batch 0 and batch 1
    later = batches[1].copy()
    i = later.index[(later["day"] == "3") & (later["dep_delay"] != "NA")][0]
    later.loc[i, "dep_delay"] = str(int(later.loc[i, "dep_delay"]) + 100)
    assert day.any()
    for result in (etl_flights([batches[0], later]), elt_flights([batches[0], later])):
        key = later.loc[i, ["carrier", "flight", "origin"]]
        hit = result.table[(result.table["carrier"] == key["carrier"]) & (result.table["flight"] == int(key["flight"]))
                           & (result.table["origin"] == key["origin"])
                           & (result.table["sched_dep"].dt.tz_convert("America/New_York").dt.day == 3)]
        assert hit["dep_delay"].tolist() == [int(later.loc[i, "dep_delay"])]


def test_destination_is_written_atomically_and_readable(batches, tmp_path):
    dest = tmp_path / "clean.parquet"
    etl = etl_flights(batches, destination=dest)
    pd.testing.assert_frame_equal(read_table(dest), etl.table)
    assert dest.exists() and not [p.name for p in tmp_path.rglob("*") if ".tmp" in p.name]  # no temporary left behind


def test_bad_arguments(batches):
    with pytest.raises(DataError, match="on_invalid='skip' must be 'quarantine' or 'raise'"):
        etl_flights(batches, on_invalid="skip")
    with pytest.raises(DataError, match="batches must be a non-empty list"):
        elt_flights([])
    with pytest.raises(DataError, match="batch 1 is a dict, not a DataFrame"):
        etl_flights([batches[0], {}])
    with pytest.raises(SchemaError, match=r"batch 0 lacks column \['time_hour'\]"):
        elt_flights([batches[0].drop(columns="time_hour")])
    with pytest.raises(SchemaError, match=r"flights lacks column \['minute'\]"):
        to_raw(load_flights("2013-01-01", "2013-01-01").drop(columns="minute"))
    with pytest.raises(DataError, match="overlap_days must be in"):
        raw_batches(batch_days=1, overlap_days=1)


# ---- dataflow through a database -------------------------------------------------------------

def _poll_until_done(db, is_done, timeout=120):
    "Read incrementally while a writer runs; assert no partial batch is ever visible."
    reader, cursor, seen, checks = FlightLedger(db), 0, [], 0
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            done_before = is_done()
            new, ledger, cursor = reader.read_new(cursor)
            seen.append(new)
            got = pd.concat(seen).groupby("batch_id").size()
            want = ledger.set_index("batch_id")["n_rows"]
            assert got.reindex(want.index, fill_value=0).tolist() == want.tolist()
            assert set(got.index) <= set(want.index)
            checks += 1
            if done_before and len(new) == 0:
                break
            time.sleep(0.02)
    finally:
        reader.close()
    return pd.concat(seen, ignore_index=True), checks


def test_second_process_writes_reader_sees_whole_batches(tmp_path):
    db = tmp_path / "ledger.sqlite"
    FlightLedger(db).close()
    proc = mp.get_context("spawn").Process(target=write_days, args=(str(db), "2013-02-01", "2013-02-03", 0.1))
    proc.start()
    received, checks = _poll_until_done(db, lambda: not proc.is_alive())
    proc.join()
    assert proc.exitcode == 0
    flights = load_flights("2013-02-01", "2013-02-03")
    assert len(received) == len(flights) and received["seq"].is_unique and checks > 3
    assert sorted(received["sched_dep"]) == sorted(flights["sched_dep"])
    assert received.groupby("batch_id").size().to_dict() == \
        flights.groupby(flights["sched_dep_local"].dt.strftime("%Y-%m-%d")).size().to_dict()


def test_spawn_writer_subprocess(tmp_path):
    db = tmp_path / "ledger.sqlite"
    FlightLedger(db).close()
    proc = spawn_writer(db, "2013-02-04", "2013-02-05")
    received, _ = _poll_until_done(db, lambda: proc.poll() is not None)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert len(received) == len(load_flights("2013-02-04", "2013-02-05"))


def test_failed_batch_rolls_back_and_batch_ids_are_unique(tmp_path):
    db = tmp_path / "ledger.sqlite"
    good = etl_flights(raw_batches("2013-02-06", "2013-02-06", 1, 0)).table
    bad = good.copy()
    bad.loc[len(bad) - 1, "dest"] = "TOOLONG"
    with FlightLedger(db) as led:
        with pytest.raises(DataError, match="batch 'b1' violates a constraint of the store .* nothing was written"):
            led.write_batch("b1", bad)
        rows, ledger, cursor = led.read_new()
        assert len(rows) == 0 and len(ledger) == 0 and cursor == 0
        assert led.write_batch("b1", good) == len(good)
        with pytest.raises(DataError, match="batch_id='b1' was already written"):
            led.write_batch("b1", good)
        with pytest.raises(SchemaError, match=r"batch 'b2' lacks column \['carrier'\]"):
            led.write_batch("b2", good.drop(columns="carrier"))
        assert len(led.read_new()[0]) == len(good)


def test_writer_crash_mid_transaction_leaves_nothing(tmp_path):
    db = tmp_path / "ledger.sqlite"
    FlightLedger(db).close()
    code = ("import os, sys; from mlsys.data.etl import FlightLedger\n"
            "led = FlightLedger(sys.argv[1]); cur = led.con.cursor(); cur.execute('BEGIN IMMEDIATE')\n"
            "cur.execute(\"INSERT INTO batches VALUES ('crash', 2, 0)\")\n"
            "cur.execute(\"INSERT INTO flights (batch_id, sched_dep, carrier, flight, origin, dest) "
            "VALUES ('crash', '2013-01-01T10:00:00Z', 'UA', 1, 'EWR', 'ORD')\")\n"
            "os._exit(1)  # dies with half a batch in an open transaction\n")
    r = subprocess.run([sys.executable, "-c", code, str(db)], capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 1, r.stderr
    with FlightLedger(db) as led:
        rows, ledger, _ = led.read_new()
        assert len(rows) == 0 and len(ledger) == 0
        good = etl_flights(raw_batches("2013-02-07", "2013-02-07", 1, 0)).table
        assert led.write_batch("after-crash", good) == len(good)  # the lock died with the writer
