"""data.models: a DuckDB file opened by a second process gives StoreLockedError (real processes), read-only readers share."""
import sqlite3
import subprocess
import sys

import duckdb
import pytest

from mlsys.core import BusyError, MlsysError
from mlsys.data.models import RelationalStore, StoreLockedError, connect_duckdb, normalize_tables
from mlsys.datasets import load_airlines, load_airports, load_flights, load_planes, load_weather

HOLD = """import sys, time
from mlsys.data.models import RelationalStore
st = RelationalStore(sys.argv[1], engine=sys.argv[2], read_only=sys.argv[3] == "ro")
if sys.argv[2] == "sqlite":
    st.con.execute("BEGIN EXCLUSIVE")  # a writer in the middle of a transaction
print(len(st.query("SELECT flight_id FROM flights")), flush=True)
if sys.argv[4] == "stdin":
    sys.stdin.read()
else:
    time.sleep(float(sys.argv[4]))
st.close()
"""


@pytest.fixture(scope="module")
def tables():
    return normalize_tables(load_flights("2013-01-01", "2013-01-01"), load_planes(), load_airports(), load_airlines(),
                            load_weather("2013-01-01", "2013-01-01"))


@pytest.fixture
def db(tmp_path, tables):
    def make(engine="duckdb"):
        path = tmp_path / f"flights.{engine}"
        RelationalStore(path, engine=engine).load(tables).close()
        return path
    return make


class Holder:
    "Another Python process that opens the store and keeps it open until `release()` (or for `seconds`)."

    def __init__(self, path, engine="duckdb", mode="rw", hold="stdin"):
        self.proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path), engine, mode, hold],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()  # blocks until the store is open in the other process
        assert line.strip().isdigit(), self.proc.stderr.read()
        self.rows = int(line)

    def release(self):
        out, err = self.proc.communicate("", timeout=120)
        assert self.proc.returncode == 0, err


@pytest.mark.parametrize("mine", ["writer", "read_only"])
def test_second_process_gets_named_lock_error_while_a_writer_holds_the_file(db, tables, mine):
    path = db()
    holder = Holder(path)
    try:
        with pytest.raises(StoreLockedError) as info:
            RelationalStore(path, read_only=mine == "read_only", timeout=0)
        e = info.value
        assert isinstance(e, BusyError) and isinstance(e, MlsysError)
        assert isinstance(e.__cause__, duckdb.IOException)  # was a raw IOException
        assert e.pid == holder.proc.pid and e.path == str(path)
        assert f"(PID {holder.proc.pid})" in str(e) and str(path) in str(e) and "read_only=True" in str(e)
        with pytest.raises(StoreLockedError):
            connect_duckdb(path, timeout=0.3)  # waited, then gave up
    finally:
        holder.release()
    with RelationalStore(path, read_only=mine == "read_only", timeout=0) as st:  # free again
        assert len(st.query("SELECT * FROM flights")) == len(tables["flights"])


def test_readers_share_the_file_but_a_writer_is_refused(db, tables):
    path = db()
    holder = Holder(path, mode="ro")
    try:
        assert holder.rows == len(tables["flights"])
        with RelationalStore(path, read_only=True, timeout=0) as st:
            assert len(st.query("SELECT * FROM flights")) == len(tables["flights"])
        with pytest.raises(StoreLockedError, match="read-only"):
            RelationalStore(path, timeout=0)
    finally:
        holder.release()


def test_a_writer_waits_for_the_lock_within_its_timeout(db, tables):
    path = db()
    holder = Holder(path, hold="1.0")  # closes by itself after a second
    with RelationalStore(path, timeout=120) as st:  # generous: the machine may be loaded
        assert len(st.query("SELECT * FROM flights")) == len(tables["flights"])
    holder.release()


def test_sqlite_locked_by_another_process_is_a_named_error(db, tables):
    path = db("sqlite")
    holder = Holder(path, engine="sqlite")
    try:
        with pytest.raises(StoreLockedError, match="sqlite database .* is locked by another process") as info:
            RelationalStore(path, engine="sqlite", timeout=0)  # the writer's exclusive lock blocks even reading the schema
        assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    finally:
        holder.release()
    with RelationalStore(path, engine="sqlite", timeout=0) as st:
        assert st.query("SELECT COUNT(*) AS n FROM flights")["n"].iloc[0] == len(tables["flights"])
