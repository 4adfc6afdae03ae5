"""data.sources: fault cases, bad input at every entry point, hostile lake files, concurrency and SIGKILL tests.

- the form validator never maps a misspelt airline name to another airline, and what it accepts equals the truth
  (except real-but-wrong airports, which only the database lookup catches), over many corruption seeds;
- the log parser loses exactly the damaged events and counts every damaged piece, over many damage seeds;
- several processes appending to one log, writing lake batches, or writing to one warehouse file: everything lands;
- writers SIGKILLed at random moments: lake files are whole or absent, warehouse tables hold whole batches,
  a log keeps every event except at most one cut line per kill, which the parser reports;
- names and links that lead out of the lake are refused; crafted files are reported per line, never fatal.
"""
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

import mlsys.data.sources as S
from mlsys.core import ConfigError, DataError, IntegrityError, MlsysError
from mlsys.data.models import RelationalStore, normalize_tables
from mlsys.datasets import load_airlines, load_airports, load_flights, load_planes, load_weather

CTX = mp.get_context("forkserver")
CTX.set_forkserver_preload(["mlsys.data.sources", "pytest"])


@pytest.fixture(scope="module")
def week():
    flights = load_flights("2013-01-01", "2013-01-03")
    return flights, load_airlines(), load_airports()


@pytest.fixture(scope="module")
def facts(week):
    return S.flight_facts(week[0])


@pytest.fixture(scope="module")
def lines(week):
    return S.to_log_lines(S.flight_log_events(week[0], week[2]))


# ---------------------------------------------------------------- user input

def test_misspelt_airline_names_never_map_to_another_airline(week):
    "Every single-letter deletion, swap and substitution of every airline name: the right code, or a refusal."
    _, airlines, airports = week
    v = S.FormValidator(airlines, airports)
    right = wrong = refused = 0
    for code, name in zip(airlines["carrier"], airlines["name"]):
        variants = set()
        for i in range(len(name)):
            variants.add(name[:i] + name[i + 1:])
            variants.add(name[:i] + name[i + 1:i + 2] + name[i:i + 1] + name[i + 2:])
            for c in "aeoqxz":
                variants.add(name[:i] + c + name[i + 1:])
        for typed in variants:
            got, _ = v._carrier(typed)
            if got is None:
                refused += 1
            elif got == code:
                right += 1
            else:
                wrong += 1
    assert wrong == 0
    assert right > 10 * refused  # and it repairs most of them


@pytest.mark.parametrize("seed", range(6))
def test_accepted_records_equal_the_truth_and_the_database_catches_the_rest(week, seed):
    flights, airlines, airports = week
    truth = S.form_truth(flights)
    records = S.messy_form_records(flights, airlines, airports, seed=seed)
    report = S.FormValidator(airlines, airports, date_order="MDY").validate(records)
    acc = report[report["status"] == "accepted"]
    cols = list(S.FORM_FIELDS)
    same = (acc[cols].astype(str).to_numpy() == truth.loc[acc["record_id"], cols].astype(str).to_numpy()).all(axis=1)
    planted = records.set_index("record_id").loc[acc["record_id"], "rendering"].str.contains("valid_wrong").to_numpy()
    assert (~same <= planted).all()  # a wrong accepted value is always a real-but-wrong airport
    assert (report["reasons"] != "").equals(report["status"] == "rejected")
    tables = normalize_tables(flights, load_planes(), airports, airlines, load_weather("2013-01-01", "2013-01-03"))
    with RelationalStore() as store:
        matched = S.check_against_store(report, store.load(tables))
    assert ((matched["match"] == "confirmed").to_numpy() == same).all()


def test_validate_one_odd_values(week):
    _, airlines, airports = week
    v = S.FormValidator(airlines, airports)
    base = {"carrier": "UA", "flight": "1545", "date": "2013-01-01", "dep_time": "05:15", "origin": "EWR", "dest": "IAH"}
    assert v.validate_one(base)["status"] == "accepted"
    assert v.validate_one({**base, "flight": 1545})["flight"] == 1545  # a JSON number is fine
    cases = {
        "flight": [(True, "flight is bool, not text"), (b"1545", "flight is bytes, not text"), ("UA0", "not a flight number"),
                   ("ZZ1545", "'ZZ', which is not a carrier code"), ("AA1545", "contradicts the flight number's prefix")],
        "carrier": [(float("nan"), "carrier is missing"), ("   ", "carrier is missing"), ("Oceanic", "not an airline we know")],
        "date": [("2013-02-30", "not a real day"), ("yesterday", "not a date"), ("1/2/2013", "ambiguous")],
        "dep_time": [("24:00", "not a time of day"), ("13:15 pm", "not a 12-hour time"), ("9:15", "ambiguous")],
        "origin": [("XXX", "not an airport code"), ("Narnia Intl", "not an airport code or name")],
        "dest": [("EWR", "origin and dest are both EWR")],
    }
    for field, values in cases.items():
        for value, reason in values:
            out = v.validate_one({**base, field: value})
            assert out["status"] == "rejected" and reason in out["reasons"], (field, value, out["reasons"])


# ---------------------------------------------------------------- bad input at every entry point

def _bad_calls(week, facts, lines, tmp_path):
    flights, airlines, airports = week
    events = S.flight_log_events(flights.head(50), airports)
    weather = load_weather("2013-01-01", "2013-01-02")[list(S.WEATHER_FEED)]
    contract = S.FeedContract().fit(weather)
    now = weather["time_hour"].max()
    v = S.FormValidator(airlines, airports)
    report = v.validate(S.messy_form_records(flights.head(30), airlines, airports))
    return {
        "form_truth(None)": lambda: S.form_truth(None),
        "form_truth(no carrier)": lambda: S.form_truth(flights.drop(columns="carrier")),
        "form_truth(empty)": lambda: S.form_truth(flights.iloc[:0]),
        "form_truth(naive)": lambda: S.form_truth(flights.assign(sched_dep_local=flights["sched_dep_local"].dt.tz_localize(None))),
        "messy(airlines=None)": lambda: S.messy_form_records(flights, None, airports),
        "messy(seed='x')": lambda: S.messy_form_records(flights, airlines, airports, seed="x"),
        "messy(seed=True)": lambda: S.messy_form_records(flights, airlines, airports, seed=True),
        "FormValidator(None)": lambda: S.FormValidator(None, airports),
        "FormValidator(airports=[])": lambda: S.FormValidator(airlines, []),
        "FormValidator(fuzzy='x')": lambda: S.FormValidator(airlines, airports, fuzzy="x"),
        "FormValidator(margin=-1)": lambda: S.FormValidator(airlines, airports, margin=-1),
        "FormValidator(extra='SJU')": lambda: S.FormValidator(airlines, airports, extra_airports="SJU"),
        "FormValidator(extra=[1])": lambda: S.FormValidator(airlines, airports, extra_airports=[1]),
        "validate(None)": lambda: v.validate(None),
        "validate(no record_id)": lambda: v.validate(report.drop(columns="record_id")),
        "validate(dup ids)": lambda: v.validate(pd.concat([report, report])),
        "validate_one(None)": lambda: v.validate_one(None),
        "check_against_store(None)": lambda: S.check_against_store(None, RelationalStore()),
        "check_against_store(store='x')": lambda: S.check_against_store(report, "x"),
        "check_against_store(no status)": lambda: S.check_against_store(report.drop(columns="status"), RelationalStore()),
        "flight_log_events(None)": lambda: S.flight_log_events(None, airports),
        "flight_log_events(airports=None)": lambda: S.flight_log_events(flights, None),
        "flight_log_events(no tzone)": lambda: S.flight_log_events(flights, airports.drop(columns="tzone")),
        "to_log_lines(None)": lambda: S.to_log_lines(None),
        "to_log_lines(no ts)": lambda: S.to_log_lines(events.drop(columns="ts")),
        "to_log_lines(naive)": lambda: S.to_log_lines(events.assign(ts=events["ts"].dt.tz_localize(None))),
        "to_log_lines(set value)": lambda: S.to_log_lines(events.assign(origin=[{1}] * len(events))),
        "to_log_lines(inf)": lambda: S.to_log_lines(events.assign(delay_min=np.inf)),
        "log_volume('x')": lambda: S.log_volume("x", events),
        "log_volume(short)": lambda: S.log_volume(lines[:3], events),
        "parse_log_lines(None)": lambda: S.parse_log_lines(None),
        "parse_log_lines(5)": lambda: S.parse_log_lines(5),
        "parse_log_lines(str)": lambda: S.parse_log_lines(lines[0]),
        "parse_log_lines(required='ts')": lambda: S.parse_log_lines(lines, required="ts"),
        "parse_log_lines(required=[1])": lambda: S.parse_log_lines(lines, required=[1]),
        "read_log(None)": lambda: S.read_log(None),
        "read_log(dir)": lambda: S.read_log("/"),
        "append_log_lines(None path)": lambda: S.append_log_lines(None, lines),
        "append_log_lines(lines=None)": lambda: S.append_log_lines(tmp_path / "x.log", None),
        "append_log_lines(lines=[1])": lambda: S.append_log_lines(tmp_path / "x.log", [1]),
        "sample_log(None)": lambda: S.sample_log(None),
        "sample_log(rates=None)": lambda: S.sample_log(events, None),
        "sample_log(rate='x')": lambda: S.sample_log(events, {"INFO": "x", "WARNING": 1, "ERROR": 1}),
        "sample_log(level 'LOUD')": lambda: S.sample_log(events, {"LOUD": 1, "INFO": 1, "WARNING": 1, "ERROR": 1}),
        "sample_log(salt=1)": lambda: S.sample_log(events, salt=1),
        "sample_log(key missing)": lambda: S.sample_log(events, key=["nope"]),
        "retain_log(None)": lambda: S.retain_log(None, now),
        "retain_log(now=None)": lambda: S.retain_log(events, None),
        "retain_log(now='garbage')": lambda: S.retain_log(events, "garbage"),
        "retain_log(now naive str)": lambda: S.retain_log(events, "2013-01-02"),
        "retain_log(max_age='x')": lambda: S.retain_log(events, now, {"INFO": "x", "WARNING": "1D", "ERROR": "1D"}),
        "retain_log(max_age<0)": lambda: S.retain_log(events, now, {"INFO": "-1D", "WARNING": "1D", "ERROR": "1D"}),
        "damage_log(None)": lambda: S.damage_log(None),
        "damage_log(truncated=-1)": lambda: S.damage_log(lines, truncated=-1),
        "damage_log(too many)": lambda: S.damage_log(lines[:10], truncated=5),
        "damage_log(seed='x')": lambda: S.damage_log(lines, seed="x"),
        "damage_log(short line)": lambda: S.damage_log(["{}"] * 30),
        "FeedField('int')": lambda: S.FeedField("int"),
        "FeedField(low>high)": lambda: S.FeedField("float", low=2, high=1),
        "FeedContract(fields=None).fit": lambda: S.FeedContract(fields=None).fit(weather),
        "FeedContract(key='origin').fit": lambda: S.FeedContract(key="origin").fit(weather),
        "FeedContract(time_field='temp').fit": lambda: S.FeedContract(time_field="temp").fit(weather),
        "FeedContract(coverage=2).fit": lambda: S.FeedContract(coverage=2).fit(weather),
        "FeedContract(cadence=0).fit": lambda: S.FeedContract(cadence="0h").fit(weather),
        "fit(None)": lambda: S.FeedContract().fit(None),
        "fit(text temps)": lambda: S.FeedContract().fit(weather.assign(temp=weather["temp"].astype(str))),
        "check(None)": lambda: contract.check(None, now),
        "check(now=None)": lambda: contract.check(weather, None),
        "check(now naive)": lambda: contract.check(weather, now.tz_localize(None)),
        "check(unfitted)": lambda: S.FeedContract().check(weather, now),
        "Column('X')": lambda: S.Column("X"),
        "Column(nullable='yes')": lambda: S.Column("BIGINT", nullable="yes"),
        "flight_facts(None)": lambda: S.flight_facts(None),
        "flight_facts(no distance)": lambda: S.flight_facts(flights.drop(columns="distance")),
        "schema_problems(None)": lambda: S.schema_problems(None, S.FLIGHT_FACTS),
        "schema_problems(schema=None)": lambda: S.schema_problems(facts, None),
        "schema_problems(bad name)": lambda: S.schema_problems(facts, {"a b": "BIGINT"}),
        "Warehouse(None)": lambda: S.Warehouse(None),
        "Warehouse('/')": lambda: S.Warehouse("/"),
        "Warehouse(read_only='x')": lambda: S.Warehouse(read_only="x"),
        "Warehouse.create_table(None)": lambda: S.Warehouse().create_table("t", None),
        "Warehouse.create_table(bad pk)": lambda: S.Warehouse().create_table("t", {"a": "BIGINT"}, primary_key="b"),
        "Warehouse.create_table(bad check)": lambda: S.Warehouse().create_table("t", {"a": S.Column("BIGINT", check="nope(")}),
        "Warehouse.create_table(twice)": lambda: S.Warehouse().create_table("t", {"a": "BIGINT"}).create_table("t", {"a": "BIGINT"}),
        "Warehouse.write(None)": lambda: S.Warehouse().create_table("t", {"a": "BIGINT"}).write("t", None),
        "Warehouse.write(unknown)": lambda: S.Warehouse().write("t", facts),
        "Warehouse.read(1)": lambda: S.Warehouse().read(1),
        "Warehouse.count(unknown)": lambda: S.Warehouse().count("t"),
        "Lake(None)": lambda: S.Lake(None),
        "Lake(file)": lambda: S.Lake(__file__),
        "Lake(fsync='yes')": lambda: S.Lake(tmp_path / "never", fsync="yes"),
    }


def test_every_entry_point_names_bad_input(week, facts, lines, tmp_path):
    calls = _bad_calls(week, facts, lines, tmp_path)
    lake = S.Lake(tmp_path / "lake")
    lake.write_batch("ok", facts.head(2), batch="one")
    calls.update({
        "write_batch(dataset=None)": lambda: lake.write_batch(None, facts.head(1)),
        "write_batch(records=None)": lambda: lake.write_batch("d", None),
        "write_batch([1, 2])": lambda: lake.write_batch("d", [1, 2]),
        "write_batch(set value)": lambda: lake.write_batch("d", [{"a": {1}}]),
        "write_batch(inf)": lambda: lake.write_batch("d", [{"a": float("inf")}]),
        "write_batch(int key)": lambda: lake.write_batch("d", [{1: 2}]),
        "write_batch(naive ts)": lambda: lake.write_batch("d", [{"t": pd.Timestamp("2013-01-01")}]),
        "write_text(None)": lambda: lake.write_text("t", None),
        "write_text([1])": lambda: lake.write_text("t", [1]),
        "files(absent)": lambda: lake.files("absent"),
        "read(schema=None)": lambda: lake.read("ok", None),
        "read(missing='x')": lambda: lake.read("ok", S.FLIGHT_FACTS, missing="x"),
        "read_text(extract=None)": lambda: lake.read_text("ok", None),
        "apply_schema(None)": lambda: S.apply_schema(None, S.FLIGHT_FACTS),
        "apply_schema([('f', None)])": lambda: S.apply_schema([("f", None)], S.FLIGHT_FACTS),
        "apply_schema(bad line)": lambda: S.apply_schema([("f", ["{}"])], S.FLIGHT_FACTS),
        "sms_structure(None)": lambda: S.sms_structure(None),
    })
    raw = {}
    for name, call in calls.items():
        try:
            call()
        except MlsysError:
            continue
        except Exception as e:  # noqa: BLE001 (a raw library error is the failure this test looks for)
            raw[name] = f"{type(e).__name__}: {e}"
        else:
            raw[name] = "returned a value"
    assert raw == {}


# ---------------------------------------------------------------- logs

@pytest.mark.parametrize("seed", range(40))
def test_damaged_log_loses_exactly_the_damaged_events(lines, seed):
    damaged, lost = S.damage_log(lines, truncated=4, interleaved=6, seed=seed)
    parsed = S.parse_log_lines(damaged)
    want = {(json.loads(s)["flight_id"], json.loads(s)["event"]) for i, s in enumerate(lines) if i not in lost}
    assert set(zip(parsed.events["flight_id"], parsed.events["event"])) == want
    assert len(parsed.events) == len(lines) - len(lost)
    assert parsed.recovered == 6
    assert parsed.dropped["reason"].value_counts().to_dict() == {"fragment": 12, "truncated": 4}


def test_sampling_is_the_same_in_a_fresh_process(lines):
    parsed = S.parse_log_lines(lines)
    kept = S.sample_log(parsed.events, salt="x").index.tolist()
    code = ("import sys, json; import mlsys.data.sources as S; lines = json.load(sys.stdin); "
            "print(json.dumps(S.sample_log(S.parse_log_lines(lines).events, salt='x').index.tolist()))")
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps(lines), capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONHASHSEED": "123"}, check=True)
    assert json.loads(out.stdout) == kept


def test_sampling_takes_any_salt(lines):
    events = S.parse_log_lines(lines).events
    for salt in ["", "é" * 40, "\x00", "a" * 1000]:
        kept = S.sample_log(events, salt=salt)
        assert (kept["level"] != "INFO").sum() == (events["level"] != "INFO").sum()


def _append_worker(path, worker, batches, size, first=0):
    for b in range(first, first + batches):
        S.append_log_lines(path, [json.dumps({"ts": "2013-01-01T00:00:00Z", "level": "INFO", "event": "e", "w": worker,
                                              "b": b, "i": i, "pad": "x" * 300}) for i in range(size)])


def test_several_processes_append_to_one_log(tmp_path):
    path = str(tmp_path / "shared.log")
    procs = [CTX.Process(target=_append_worker, args=(path, w, 60, 40)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
        assert p.exitcode == 0
    parsed = S.read_log(path)
    assert parsed.dropped.empty and parsed.recovered == 0
    assert len(parsed.events) == 3 * 60 * 40
    for _, g in parsed.events.groupby(["w", "b"]):  # each batch is contiguous and in order
        assert g["i"].tolist() == list(range(40)) and (np.diff(g["line"]) == 1).all()


def _append_forever(path, started):
    started.set()
    b = 0
    while True:
        _append_worker(path, os.getpid(), 1, 60, first=b)
        b += 1


def test_sigkilled_log_writers_lose_at_most_a_cut_line_and_it_is_reported(tmp_path):
    path = str(tmp_path / "killed.log")
    rng = np.random.default_rng(3)
    kills = 0
    for _ in range(8):
        started = CTX.Event()
        p = CTX.Process(target=_append_forever, args=(path, started))
        p.start()
        assert started.wait(120)
        time.sleep(float(rng.uniform(0.01, 0.15)))
        os.kill(p.pid, signal.SIGKILL)
        p.join(60)
        kills += 1
    parsed = S.read_log(path)
    assert len(parsed.dropped) <= kills  # one cut piece per kill at most, each one reported
    assert set(parsed.dropped["reason"]) <= {"truncated", "fragment"}
    assert len(parsed.events) > 0
    whole = parsed.events.groupby(["w", "b"]).size()
    assert (whole <= 60).all()


# ---------------------------------------------------------------- third-party feed

def test_february_deliveries_no_false_errors_and_pressure_units_always_named():
    weather = load_weather("2013-01-25", "2013-02-28")[list(S.WEATHER_FEED)]
    day = weather["time_hour"].dt.tz_convert("America/New_York").dt.normalize()
    days = sorted(day.unique())
    for i in range(7, len(days)):
        ref, d = weather[(day >= days[i - 7]) & (day < days[i])], weather[day == days[i]]
        c, now = S.FeedContract().fit(ref), d["time_hour"].max() + pd.Timedelta("1h")
        clean = c.check(d, now)
        assert clean.ok, clean.problems
        inhg = c.check(d.assign(pressure=d["pressure"] / 33.863886), now).problems
        assert "unit_change" in set(inhg.loc[inhg["field"] == "pressure", "problem"])
        renamed = c.check(d.rename(columns={"dewp": "dew_point"}), now).problems
        assert renamed.loc[renamed["field"] == "dewp", "problem"].tolist() == ["renamed"]
        future = c.check(d, now - pd.Timedelta("1D")).problems
        assert "from_future" in set(future["problem"])


def test_feed_contract_catches_empty_nulls_and_missing_hours():
    weather = load_weather("2013-01-01", "2013-01-08")[list(S.WEATHER_FEED)]
    ref, d = weather.iloc[:-72], weather.iloc[-72:]
    c = S.FeedContract().fit(ref)
    now = d["time_hour"].max()
    assert set(c.check(d.iloc[:0], now).problems["problem"]) >= {"empty"}
    origin = d["origin"].astype("string").where(d.index != d.index[0], None)
    assert "nulls" in set(c.check(d.assign(origin=origin), now).problems["problem"])
    assert "kind" in set(c.check(d.assign(origin=None), now).problems["problem"])  # a column of None is not text
    gaps = c.check(d.drop(index=d.index[10:13]), now).problems
    assert gaps.loc[gaps["problem"] == "missing_rows", "detail"].str.startswith("3 of 72").all()
    assert "unexpected_field" in set(c.check(d.assign(ozone=1.0), now).problems["problem"])


# ---------------------------------------------------------------- warehouse

def test_schema_problems_never_coerce(facts):
    cases = {
        "distance": [facts["distance"].astype(float), facts["distance"].astype(bool), facts["distance"].astype(str),
                     facts["distance"].astype(object).where(facts.index > 0, True)],
        "cancelled": [facts["cancelled"].astype(int), facts["cancelled"].astype(str)],
        "carrier": [pd.Series(range(len(facts)))],
        "sched_dep": [facts["sched_dep"].astype(str), facts["sched_dep"].dt.tz_localize(None)],
    }
    for col, variants in cases.items():
        for v in variants:
            probs = S.schema_problems(facts.assign(**{col: v}), S.FLIGHT_FACTS)
            assert len(probs) == 1 and probs[0].startswith(f"column {col!r} is declared"), (col, v.dtype, probs)
    ok = facts.assign(distance=facts["distance"].astype(object), carrier=facts["carrier"].astype("category"))
    assert S.schema_problems(ok, S.FLIGHT_FACTS) == []


def test_warehouse_persists_and_read_only_refuses_writes(facts, tmp_path):
    path = tmp_path / "w.duckdb"
    with S.Warehouse(path) as wh:
        wh.create_table("flights", S.FLIGHT_FACTS, primary_key="flight_id").write("flights", facts.head(10))
    with S.Warehouse(path, read_only=True) as wh:
        assert wh.count("flights") == 10
        with pytest.raises(ConfigError, match="read_only"):
            wh.write("flights", facts.iloc[10:20])
    with S.Warehouse(path) as wh:
        with pytest.raises(S.SchemaWriteError) as e:
            wh.write("flights", facts.iloc[5:15])  # 5 rows are already there
        assert e.value.table == "flights" and wh.count("flights") == 10


def _warehouse_worker(path, worker, facts_part):
    for i in range(0, len(facts_part), 25):
        with S.Warehouse(path, timeout=120) as wh:
            wh.write("flights", facts_part.iloc[i:i + 25])


def test_several_processes_write_one_warehouse(facts, tmp_path):
    path = str(tmp_path / "shared.duckdb")
    with S.Warehouse(path) as wh:
        wh.create_table("flights", S.FLIGHT_FACTS, primary_key="flight_id")
    parts = [facts.iloc[i * 150:(i + 1) * 150] for i in range(3)]
    procs = [CTX.Process(target=_warehouse_worker, args=(path, w, parts[w])) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(600)
        assert p.exitcode == 0
    with S.Warehouse(path, read_only=True) as wh:
        got = wh.read("flights")
    assert sorted(got["flight_id"]) == sorted(pd.concat(parts)["flight_id"])


def _warehouse_forever(path, facts, started):
    with S.Warehouse(path) as wh:
        started.set()
        i = 0
        while True:
            batch = facts.iloc[(i * 50) % len(facts):(i * 50) % len(facts) + 50].assign(
                flight_id=lambda d, i=i: d["flight_id"] + f"-{os.getpid()}-{i}")
            wh.write("flights", batch)
            i += 1


def test_sigkilled_warehouse_writer_leaves_whole_batches(facts, tmp_path):
    path = str(tmp_path / "killed.duckdb")
    with S.Warehouse(path) as wh:
        wh.create_table("flights", S.FLIGHT_FACTS, primary_key="flight_id")
    rng = np.random.default_rng(5)
    base = facts.iloc[:1000].reset_index(drop=True)
    for _ in range(6):
        started = CTX.Event()
        p = CTX.Process(target=_warehouse_forever, args=(path, base, started))
        p.start()
        assert started.wait(120)
        time.sleep(float(rng.uniform(0.05, 0.5)))
        os.kill(p.pid, signal.SIGKILL)
        p.join(60)
        with S.Warehouse(path, timeout=60) as wh:
            got = wh.read("flights")
        assert len(got) % 50 == 0
        batch_key = got["flight_id"].str.split("-").str[-2:].str.join("-")  # <writer pid>-<batch number>
        assert batch_key.value_counts().eq(50).all()  # whole batches only


# ---------------------------------------------------------------- lake

def test_hostile_names_links_and_files(facts, tmp_path):
    lake = S.Lake(tmp_path / "lake")
    outside = tmp_path / "outside"
    outside.mkdir()
    for name in ["../escaped", "a/b", "..", ".", "/abs", "x\x00", "é" * 200, ""]:
        with pytest.raises(DataError):
            lake.write_batch("d", facts.head(1), batch=name)
        with pytest.raises(DataError):
            lake.write_batch(name, facts.head(1))
    (lake.root / "linked").symlink_to(outside)
    with pytest.raises(DataError, match="outside the lake"):
        lake.write_batch("linked", facts.head(1))
    assert list(outside.iterdir()) == []
    lake.write_batch("d", facts.head(2), batch="good")
    secret = outside / "secret.jsonl"
    secret.write_text('{"flight_id": "stolen"}\n')
    (lake.root / "d" / "evil.jsonl").symlink_to(secret)  # a crafted link inside the dataset
    (lake.root / "d" / "planted.jsonl").symlink_to(outside / "target.jsonl")
    with pytest.raises(DataError, match="never replaced"):  # a name taken by a link is not written through
        lake.write_batch("d", facts.head(1), batch="planted")
    assert not (outside / "target.jsonl").exists()
    (lake.root / "d" / "garbage.jsonl").write_bytes(b'\xff\xfe\n{"flight_id": \n[1]\n' + b"x" * 1000 + b"\n")
    read = lake.read("d", S.FLIGHT_FACTS)
    assert read.data["flight_id"].tolist() == facts["flight_id"].head(2).tolist()
    assert "stolen" not in set(read.data["flight_id"])
    files = read.files.set_index("file")
    assert files.loc["garbage.jsonl", "bad"] == 4 and files.loc["evil.jsonl", "rows"] == 0
    by_file = read.bad_rows.groupby("file")["problem"].apply(sorted).to_dict()
    assert by_file["garbage.jsonl"] == ["not_json", "not_json", "not_object", "not_utf8"]
    assert by_file["evil.jsonl"] == ["refused"] and by_file["planted.jsonl"] == ["refused"]


def test_schema_on_read_edge_values():
    schema = {"n": S.Column("BIGINT", nullable=False), "x": S.Column("DOUBLE"), "b": S.Column("BOOLEAN"),
              "t": S.Column("TIMESTAMPTZ")}
    rows = [{"n": 1, "x": 1, "b": True, "t": "2013-01-01T00:00:00+05:00"},  # fits: an int is a DOUBLE
            {"n": True, "x": 1.0, "b": False, "t": None}, {"n": 2**63, "x": 1.0, "b": None, "t": None},
            {"n": None, "x": 1.0, "b": None, "t": None}, {"n": 1, "x": "1.0", "b": 1, "t": "not a time"},
            {"x": 1.0, "b": None, "t": None}]
    read = S.apply_schema([("f", [(i, json.dumps(r)) for i, r in enumerate(rows, 1)])], schema)
    assert read.data["n"].tolist() == [1]
    assert read.data["t"].iloc[0] == pd.Timestamp("2012-12-31T19:00:00Z")
    assert read.bad_rows.groupby("line")["problem"].apply(list).to_dict() == {
        2: ["type"], 3: ["type"], 4: ["null"], 5: ["type", "type", "type"], 6: ["absent"]}
    lenient = S.apply_schema([("f", [(6, json.dumps(rows[5]))])], schema, missing="null")
    assert lenient.bad_rows["problem"].tolist() == ["null"]  # absent read as null: still refused where NOT NULL


def _lake_worker(root, worker, n, facts_part):
    lake = S.Lake(root)
    for i in range(n):
        lake.write_batch("shared", facts_part.iloc[i:i + 5])


def test_several_processes_write_lake_batches(facts, tmp_path):
    root = str(tmp_path / "lake")
    procs = [CTX.Process(target=_lake_worker, args=(root, w, 40, facts.iloc[w * 200:(w + 1) * 200])) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
        assert p.exitcode == 0
    lake = S.Lake(root)
    assert len(lake.files("shared")) == 120  # default batch names never collide across processes
    read = lake.read("shared", S.FLIGHT_FACTS)
    assert read.bad_rows.empty and len(read.data) == 120 * 5


def _lake_forever(root, facts, started):
    lake = S.Lake(root)
    started.set()
    i = 0
    while True:
        lake.write_batch("killed", facts, batch=f"b{os.getpid()}-{i:06d}")
        i += 1


def test_sigkilled_lake_writer_leaves_whole_files_or_none(facts, tmp_path):
    root = str(tmp_path / "lake")
    batch = facts.iloc[:400]
    rng = np.random.default_rng(11)
    for _ in range(10):
        started = CTX.Event()
        p = CTX.Process(target=_lake_forever, args=(root, batch, started))
        p.start()
        assert started.wait(120)
        time.sleep(float(rng.uniform(0.01, 0.3)))
        os.kill(p.pid, signal.SIGKILL)
        p.join(60)
    lake = S.Lake(root)
    read = lake.read("killed", S.FLIGHT_FACTS)
    assert read.bad_rows.empty
    assert (read.files["rows"] == 400).all() and (read.files["good"] == 400).all()
    assert len(read.files) >= 1
    leftovers = [f for f in (lake.root / "killed").iterdir() if f.name.startswith(".")]
    assert all(f.suffix == ".tmp" for f in leftovers)  # what a kill leaves is a hidden temporary file, never listed


def test_read_text_reports_extractor_failures(tmp_path):
    lake = S.Lake(tmp_path / "lake")
    lake.write_text("t", ["ok", "boom", "fine"], batch="a")
    (lake.root / "t" / "b.txt").write_bytes(b"\xff\n")
    read = lake.read_text("t", lambda s: {"n": len(s)} if s != "boom" else 1 / 0)
    assert read.data["text"].tolist() == ["ok", "fine"]
    assert read.bad_rows["problem"].tolist() == ["extract", "not_utf8"]
    assert read.files["bad"].tolist() == [1, 1]
    wrong = S.Lake(tmp_path / "lake").read_text("t", lambda s: "not a dict").bad_rows
    assert wrong["problem"].tolist() == ["extract"] * 3 + ["not_utf8"]
    assert wrong["detail"].iloc[0] == "extract returned str, not a dict"


def test_unknown_schema_type_in_stored_warehouse_is_not_trusted(tmp_path):
    "The declared schema a reopened warehouse reads back is validated like a new one."
    path = tmp_path / "w.duckdb"
    with S.Warehouse(path) as wh:
        wh.create_table("t", {"a": "BIGINT"})
        wh.con.execute("UPDATE _mlsys_schemas SET spec = ? WHERE name = 't'",
                       [json.dumps({"columns": {"a": {"type": "BLOB", "nullable": True, "check": None}}, "primary_key": []})])
    with pytest.raises(IntegrityError, match="stored declaration of table 't'"):
        S.Warehouse(path)


def _text_forever(root, docs, started):
    lake = S.Lake(root)
    started.set()
    i = 0
    while True:
        lake.write_text("texts", docs, batch=f"t{os.getpid()}-{i:06d}")
        i += 1


def test_sigkilled_text_writer_leaves_whole_files_or_none(tmp_path):
    "Large text batches, so most of the writer's time is spent writing: a kill lands mid-write in most trials."
    root = str(tmp_path / "lake")
    docs = [f"document {i} " + "é" * 200 for i in range(5000)]  # about 2 MB a batch
    rng = np.random.default_rng(13)
    for _ in range(12):
        started = CTX.Event()
        p = CTX.Process(target=_text_forever, args=(root, docs, started))
        p.start()
        assert started.wait(120)
        time.sleep(float(rng.uniform(0.02, 0.4)))
        os.kill(p.pid, signal.SIGKILL)
        p.join(60)
    lake = S.Lake(root)
    files = lake.files("texts")
    assert files
    for f in files:
        assert f.read_text(encoding="utf-8").splitlines() == docs, f.name


def _random_text(rng, n):
    pool = list("0123456789:./-# apmAPMUAEWRJFKnoonİıſKß٥١२\u0301\t\n\r{}\"'[],") + ["", "  ", "12:30", "1/2/2013", "Jan", "United"]
    return "".join(rng.choice(pool, size=int(rng.integers(0, n))))


def test_fuzzed_forms_logs_and_lake_rows_never_raise_raw_errors(week):
    "Random text, numbers and nesting at the three parsers of untrusted input: a status or a counted drop, never a crash."
    _, airlines, airports = week
    v = S.FormValidator(airlines, airports)
    rng = np.random.default_rng(0)
    values = [None, 0, -1, 10**30, 1.5, float("nan"), True, [], {}, b"UA"]
    for _ in range(1500):
        rec = {f: (values[int(rng.integers(len(values)))] if rng.random() < 0.2 else _random_text(rng, 12)) for f in S.FORM_FIELDS}
        out = v.validate_one(rec)
        assert out["status"] in ("accepted", "rejected")
        if out["status"] == "accepted":
            assert out["carrier"] in set(airlines["carrier"]) and len(out["date"]) == 10 and len(out["dep_time"]) == 5
    lines = [_random_text(rng, 80) for _ in range(1500)] + [bytes(rng.integers(0, 256, 30, dtype=np.uint8)) for _ in range(200)]
    parsed = S.parse_log_lines(lines)
    assert parsed.lines == len(lines) and len(parsed.events) <= len(lines)
    rows = [json.dumps({"n": values[int(rng.integers(len(values) - 1))], "t": _random_text(rng, 30)}) for _ in range(500)]
    read = S.apply_schema([("f", list(enumerate(rows + lines[:300:3], 1)))],
                          {"n": S.Column("BIGINT"), "t": S.Column("TIMESTAMPTZ")})
    assert read.files["rows"].iloc[0] == len(rows) + 100


def test_moved_names_are_the_storage_objects():
    "data.storage took the warehouse/lake half of this module; the old names still reach the same objects."
    import mlsys.data.storage as ST
    for name in ("Warehouse", "Lake", "apply_schema", "schema_problems", "flight_facts", "SchemaWriteError"):
        assert getattr(S, name) is getattr(ST, name), name
    with pytest.raises(AttributeError):
        _ = S.no_such_name
