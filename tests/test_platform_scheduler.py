"""The scheduler (mlsys.platform.scheduler) and its events (mlsys.platform.events): cron in a time zone (DST), missed-run policies, data and alert triggers, backoff under a retry budget,
the resource queue, the history under several appending processes, and scheduled and triggered pipeline runs on a fake clock."""
import argparse
import json
import multiprocessing as mp
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from mlsys.core import ConfigError, load_json
from mlsys.platform.events import AlertTrigger, DataTrigger, Event, History
from mlsys.platform.scheduler import (Backoff, CronError, CronSchedule, FakeClock, Job, Resources, ResourceQueue, RetryBudget,
                                      Scheduler, _schedule, add_schedule_command, pipeline_job)

from test_workflow_runner import write_stage  # noqa: E402  (the runner tests' stage-notebook writer)

T0 = datetime(2026, 1, 5, tzinfo=timezone.utc)  # a Monday




@pytest.fixture
def toy(tmp_path) -> tuple[Path, Path]:
    "Two stages: load reads data/rows.csv, total sums it."
    pipes, data = tmp_path / "pipelines", tmp_path / "data"
    pipes.mkdir(); data.mkdir()
    (data / "rows.csv").write_text("x\n1\n2\n")
    write_stage(pipes, "load", f'''
        run_dir: str = "runs/dev"  # folder of this run
        source: str = "{data / 'rows.csv'}"  # the CSV
        upstream: list = []  # no inputs
        product: dict = {{"rows": "load/rows.json"}}  # the values
    ''', '''
        import pandas as pd
        from pathlib import Path
        from mlsys.core import save_json
        save_json(pd.read_csv(source)["x"].tolist(), Path(run_dir) / product["rows"])
    ''')
    write_stage(pipes, "total", '''
        run_dir: str = "runs/dev"  # folder of this run
        upstream: list = ["load"]  # reads load
        product: dict = {"total": "total/total.json"}  # the sum
    ''', '''
        from pathlib import Path
        from mlsys.core import load_json, save_json
        save_json({"total": sum(load_json(Path(run_dir) / "load/rows.json"))}, Path(run_dir) / product["total"])
    ''')
    (pipes / "pipeline.toml").write_text("[profiles.smoke]\n")
    return pipes, data


def test_cron_dst_and_bad_expressions():
    ny = CronSchedule("30 2 * * *", tz="America/New_York")  # 2026-03-08: 02:00 -> 03:00
    f = ny.fires("2026-03-07T12:00:00+00:00", "2026-03-09T12:00:00+00:00")
    assert [t.isoformat() for t in f] == ["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"]
    back = CronSchedule("30 1 * * *", tz="America/New_York").fires("2026-10-31T12:00:00+00:00", "2026-11-02T12:00:00+00:00")
    assert len(back) == 2 and back[0].utcoffset() == timedelta(hours=-4)  # once, at the first 01:30
    # strictly increasing instants, across both of Berlin's DST nights, for an hourly job
    for a, b, n in [("2026-03-28T12:00:00+00:00", "2026-03-30T12:00:00+00:00", 47), ("2026-10-24T12:00:00+00:00", "2026-10-26T12:00:00+00:00", 47)]:
        hours = CronSchedule("0 * * * *", tz="Europe/Berlin").fires(a, b)
        stamps = [t.timestamp() for t in hours]
        assert all(y > x for x, y in zip(stamps, stamps[1:])) and {t.minute for t in hours} == {0} and len(hours) >= n
    for bad, msg in [("61 * * * *", "'61 * * * *'"), ("0 6 * *", "4 fields"), ("", "non-empty"), ("a b c d e", "'a b c d e'")]:
        with pytest.raises(CronError, match=msg.replace("*", r"\*")):
            CronSchedule(bad)
    with pytest.raises(ConfigError, match="IANA"):
        CronSchedule("0 6 * * *", tz="Nowhere/City")
    with pytest.raises(ConfigError, match="time zone-aware"):
        ny.next_after(datetime(2026, 1, 1))


@pytest.mark.parametrize("missed, ran, skipped", [("catchup", 4, 0), ("latest", 1, 3)])
def test_missed_runs_after_downtime(tmp_path, missed, ran, skipped):
    seen = []
    job = Job("daily", lambda ctx: seen.append(ctx.event.at), schedule=CronSchedule("0 6 * * *", missed=missed))
    clock = FakeClock("2026-01-08T07:00:00+00:00")
    out = Scheduler([job], tmp_path / "h.jsonl", clock=clock, capacity=Resources(1, 1)).run(
        until="2026-01-08T07:00:00+00:00", since="2026-01-05T00:00:00+00:00")
    assert len(seen) == ran and (out["status"] == "skipped").sum() == skipped
    assert max(seen).day == 8  # the newest fire always runs
    # a restart resumes from the history's last fire: nothing is run twice
    again = Scheduler([job], tmp_path / "h.jsonl", clock=clock, capacity=Resources(1, 1)).run(until="2026-01-08T07:00:00+00:00")
    assert again.empty and len(seen) == ran


def test_data_and_alert_triggers(tmp_path):
    from mlsys.monitor.alerts import AlertManager, LogFileChannel, evaluate, policy_from_dict
    lake = tmp_path / "lake"; lake.mkdir()
    (lake / "a.csv").write_text("1")
    by_hash, by_mtime, parts = DataTrigger(lake), DataTrigger(lake, "mtime"), DataTrigger(lake, "partitions")
    assert by_hash.poll(T0) + by_mtime.poll(T0) + parts.poll(T0) == []
    (lake / "a.csv").write_text("1")  # same content, new mtime
    import os
    os.utime(lake / "a.csv", ns=(1, 1))
    assert by_hash.poll(T0) == [] and len(by_mtime.poll(T0)) == 1
    (lake / "d=1").mkdir(); (lake / "d=1" / "p.parquet").write_bytes(b"x"); (lake / "_tmp.parquet").write_bytes(b"x")
    assert [e.detail for e in parts.poll(T0)] == ["1 new: d=1"] and parts.poll(T0) == []
    assert DataTrigger(lake / "missing").poll(T0) == []
    log = tmp_path / "alerts.jsonl"
    trig, any_warning = AlertTrigger(log, alerts=["Drift"]), AlertTrigger(log, min_severity="critical")
    assert trig.poll(T0) == [] and any_warning.poll(T0) == []
    pol = policy_from_dict({"name": "Drift", "metric": "psi", "op": ">", "threshold": 0.2, "severity": "warning"})
    AlertManager([LogFileChannel(log)]).process(evaluate(pol, pd.DataFrame({"window": [1, 2], "psi": [0.1, 0.5]})))
    assert [e.kind for e in trig.poll(T0)] == ["alert"] and trig.poll(T0) == []
    assert any_warning.poll(T0) == []  # a warning is below critical
    with pytest.raises(ConfigError, match="alerts must be a list"):
        AlertTrigger(log, alerts="Drift")


def test_fails_twice_then_succeeds_under_backoff(tmp_path):
    calls = []
    def fn(ctx):
        calls.append(ctx.attempt)
        if len(calls) < 3:
            raise RuntimeError("boom")
    clock = FakeClock("2026-01-05T05:59:00+00:00")
    job = Job("flaky", fn, schedule=CronSchedule("0 6 * * *"), backoff=Backoff(base=10, factor=3, max_delay=25), max_attempts=4)
    out = Scheduler([job], tmp_path / "h.jsonl", clock=clock, capacity=Resources(1, 1), poll="1h").run(max_runs=1)
    assert calls == [1, 2, 3] and clock.sleeps == [60.0, 10.0, 25.0]  # 10, then 30 capped at 25
    assert out[["status", "attempts"]].values.tolist() == [["ok", 3]]
    lines = History(tmp_path / "h.jsonl").records()
    assert lines["status"].tolist() == ["queued", "running", "retrying", "running", "retrying", "running", "ok"]
    a, b = Backoff(base=8, jitter=1.0, seed=3), Backoff(base=8, jitter=1.0, seed=3)
    da, db = [a.delay(k) for k in (1, 2, 3)], [b.delay(k) for k in (1, 2, 3)]
    assert da == db and all(0 <= d <= 8 * 2 ** (k - 1) for d, k in zip(da, (1, 2, 3))) and len(set(da)) == 3


def test_retry_budget_is_shared_and_fails_clearly(tmp_path):
    def always(ctx):
        raise ValueError("flapping")
    jobs = [Job(n, always, schedule=CronSchedule("0 6 * * *"), backoff=Backoff(base=1), max_attempts=10) for n in ("a", "b")]
    out = Scheduler(jobs, tmp_path / "h.jsonl", clock=FakeClock("2026-01-05T05:59:00+00:00"), capacity=Resources(2, 2),
                    budget=RetryBudget(3, "1D")).run(max_runs=2)
    assert set(out["status"]) == {"failed"} and out["attempts"].sum() == 2 + 3  # two first attempts, three retries in all
    assert out["error"].str.contains("retry budget exhausted").all()
    assert out["error"].str.contains("flapping").all()
    b = RetryBudget(2, "10min")
    assert [b.take(T0 + timedelta(minutes=m)) for m in (0, 1, 2, 10, 11)] == [True, True, False, True, True]


def test_queue_priority_fifo_resources_and_reservation():
    q = ResourceQueue(Resources(4, 8), reserve_after="30min")
    for name, cores, prio in [("low1", 1, 0), ("hi", 3, 5), ("low2", 1, 0), ("mem", 1, 0)]:
        q.push(name, Resources(cores, 7 if name == "mem" else 1), prio, T0)
    assert [x.name for x in q.admit(T0)] == ["hi", "low1"]  # priority, then FIFO; low2 no longer fits
    with pytest.raises(ConfigError, match="more than the whole capacity"):
        q.push("huge", Resources(1, 9), 0, T0)
    # reservation: after 30 min the big job blocks backfill
    r = ResourceQueue(Resources(2, 8), reserve_after="30min")
    running = r.push("small0", Resources(1, 1), 9, T0); r.admit(T0)
    r.push("big", Resources(2, 1), 0, T0)
    r.push("small1", Resources(1, 1), 9, T0 + timedelta(minutes=1))
    assert [x.name for x in r.admit(T0 + timedelta(minutes=1))] == ["small1"]  # backfill while young
    r.release(running)
    r.push("small2", Resources(1, 1), 9, T0 + timedelta(minutes=40))
    assert r.admit(T0 + timedelta(minutes=40)) == []  # big is reserved: small2 waits although one core is free
    r.free = r.capacity
    assert [x.name for x in r.admit(T0 + timedelta(minutes=41))] == ["big"]
    with pytest.raises(ConfigError, match="more than the whole capacity"):
        Scheduler([Job("x", lambda c: None, resources=Resources(64, 1))], "h.jsonl", capacity=Resources(2, 2))


def _append_many(path: str, who: int, n: int) -> None:
    h = History(path)
    for i in range(n):
        h.append(run_id=f"r{who}-{i}", job=f"j{who}", status="ok", at=f"2026-01-05T00:00:{i % 60:02d}+00:00", pad="x" * 3000)


def test_history_several_processes_and_torn_lines(tmp_path):
    path = tmp_path / "h.jsonl"
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(str(path), w, 25)) for w in range(4)]
    for p in procs: p.start()
    for p in procs: p.join(60)
    assert [p.exitcode for p in procs] == [0] * 4
    lines = path.read_bytes().split(b"\n")[:-1]
    assert len(lines) == 100 and all(json.loads(x)["pad"] == "x" * 3000 for x in lines)
    with open(path, "ab") as f:
        f.write(b'{"run_id": "torn", "jo')  # a writer killed mid-line
    History(path).append(run_id="after", job="j", status="ok", at="2026-01-05T01:00:00+00:00")
    rec = History(path).records()
    assert len(rec) == 101 and rec.attrs["malformed_lines"] == [101] and rec["run_id"].iloc[-1] == "after"
    frame = History(path).frame()
    assert len(frame) == 101 and set(frame["status"]) == {"ok"}
    assert History(tmp_path / "none.jsonl").frame().empty
    with pytest.raises(ConfigError, match="needs"):
        History(path).append(run_id="x")


def test_scheduled_and_triggered_pipeline_runs_end_to_end(toy, tmp_path):
    pipes, data = toy

    class Arriving(FakeClock):
        def sleep(self, s):
            before = self.now(); super().sleep(s)
            if before < T0 + timedelta(hours=10) <= self.now():
                (data / "rows.csv").write_text("x\n1\n2\n40\n")

    job = pipeline_job("daily", pipelines=pipes, runs_dir=tmp_path / "runs", resources={"total": {"cores": 2, "memory_gb": 1}},
                       schedule=CronSchedule("0 6 * * *", tz="Europe/Berlin"), triggers=[DataTrigger(data)])
    assert job.resources == Resources(2, 1)
    clock = Arriving("2026-01-05T04:30:00+00:00")
    out = Scheduler([job], tmp_path / "h.jsonl", clock=clock, capacity=Resources(2, 2), poll="30min").run(until=T0 + timedelta(hours=11))
    assert out["trigger"].tolist() == ["cron", "data"] and set(out["status"]) == {"ok"}
    assert [load_json(Path(d) / "total/total.json")["total"] for d in out["run_dir"]] == [3, 43]
    assert [t.hour for t in out["started"]] == [5, 10]  # 06:00 in Berlin is 05:00 UTC in January
    assert (out["ended"] >= out["started"]).all()
    with pytest.raises(ConfigError, match="unknown stage"):
        pipeline_job("x", pipelines=pipes, resources={"nope": {"cores": 1}})
    with pytest.raises(ConfigError, match="profile"):
        pipeline_job("x", profile="nope", pipelines=pipes)


@pytest.fixture
def solo(tmp_path) -> Path:
    "One stage that writes a file: the cheapest real pipeline."
    pipes = tmp_path / "solo"
    pipes.mkdir()
    write_stage(pipes, "only", '''
        run_dir: str = "runs/dev"  # folder of this run
        upstream: list = []  # no inputs
        product: dict = {"done": "only/done.json"}  # a marker
    ''', '''
        from pathlib import Path
        from mlsys.core import save_json
        save_json({"ok": True}, Path(run_dir) / product["done"])
    ''')
    return pipes


def _parser():
    p = argparse.ArgumentParser(prog="mlsys")
    add_schedule_command(p.add_subparsers(dest="command"))
    return p


def test_cli(solo, tmp_path, capsys):
    pipes = solo
    base = ["schedule", "--pipelines", str(pipes), "--runs-dir", str(tmp_path / "runs")]
    assert _schedule(_parser().parse_args(base + ["--cron", "0 6 * * * *"])) == 2
    assert "'0 6 * * * *'" in capsys.readouterr().err
    assert _schedule(_parser().parse_args(base)) == 2
    assert _schedule(_parser().parse_args(base + ["--watch", str(tmp_path / "missing")])) == 2
    assert _schedule(_parser().parse_args(base + ["--cron", "0 6 * * *", "--profile", "nope"])) == 2
    assert "unknown profile" in capsys.readouterr().err
    args = _parser().parse_args(base + ["--cron", "0 6 * * *", "--tz", "Europe/Berlin", "--max-runs", "1",
                                        "--history", str(tmp_path / "cli.jsonl")])
    args.clock = FakeClock("2026-01-05T04:00:00+00:00")
    assert _schedule(args) == 0
    out = capsys.readouterr().out
    assert "pipeline-cron-20260105T050000Z" in out and " ok " in out
    assert History(tmp_path / "cli.jsonl").frame()["status"].tolist() == ["ok"]


def test_bad_inputs():
    with pytest.raises(ConfigError, match="max_attempts"):
        Job("j", lambda c: None, max_attempts=0)
    with pytest.raises(ConfigError, match="callable"):
        Job("j", "not a function")
    with pytest.raises(ConfigError, match="distinct"):
        Scheduler([Job("j", lambda c: None)] * 2, "h.jsonl")
    with pytest.raises(ConfigError, match="until or max_runs"):
        Scheduler([Job("j", lambda c: None)], "h.jsonl", capacity=Resources(1, 1)).run()
    with pytest.raises(ConfigError, match="jitter"):
        Backoff(jitter=2)
    with pytest.raises(ConfigError, match="cores"):
        Resources(cores=float("nan"))
    with pytest.raises(ConfigError, match="finite"):
        FakeClock().sleep(float("inf"))
    assert Event("manual", "x", T0).detail == ""
    with pytest.raises(ConfigError, match="start with a letter"):
        Job("1st", lambda c: None)


def test_faults_do_not_stop_the_loop(tmp_path):
    from mlsys.core import DataError
    sched = Scheduler([Job("j", lambda c: None)], tmp_path / "h.jsonl", clock=FakeClock(), capacity=Resources(1, 1))
    with pytest.raises(ConfigError, match="unknown job"):
        sched.submit("nope", Event("manual", "x", T0))
    (tmp_path / "adir").mkdir()
    with pytest.raises(DataError, match="cannot append"):
        History(tmp_path / "adir").append(run_id="r", job="j", status="ok")

    class Broken(DataTrigger):
        def poll(self, now):
            raise PermissionError("no access")
    def exits(ctx):
        raise SystemExit(3)
    jobs = [Job("exits", exits, schedule=CronSchedule("0 6 * * *"), max_attempts=1),
            Job("watch", lambda c: None, triggers=[Broken(tmp_path)])]
    out = Scheduler(jobs, tmp_path / "h2.jsonl", clock=FakeClock("2026-01-05T05:00:00+00:00"), capacity=Resources(2, 2)).run(
        until="2026-01-05T07:00:00+00:00")
    assert out[["job", "status"]].values.tolist() == [["exits", "failed"]] and "SystemExit" in out["error"].item()


def test_mlsys_schedule_is_a_subcommand(capsys):
    "`mlsys schedule` is wired into the console script: bad input exits 2 with a named error, --help documents it."
    from mlsys.cli import main
    assert main(["schedule", "--cron", "not a cron", "--max-runs", "1"]) == 2
    assert "cron expression 'not a cron'" in capsys.readouterr().err
    assert main(["schedule", "--help"]) == 0
    assert "--cron" in capsys.readouterr().out


def test_max_runs_starts_no_more_than_it_needs(tmp_path):
    "With catch-up after a 1 h gap, max_runs=1 runs one of the 6 missed */10 fires; the others stay 'queued'."
    seen = []
    job = Job("tick", lambda ctx: seen.append(ctx.event.at), schedule=CronSchedule("*/10 * * * *", missed="catchup"))
    out = Scheduler([job], tmp_path / "h.jsonl", clock=FakeClock("2026-01-05T01:00:00+00:00"), capacity=Resources(4, 4),
                    workers=4).run(max_runs=1, since="2026-01-05T00:00:00+00:00")
    assert len(seen) == 1 and len(out) == 6
    assert sorted(out["status"].tolist()) == ["ok"] + ["queued"] * 5
    out2 = Scheduler([job], tmp_path / "h2.jsonl", clock=FakeClock("2026-01-05T01:00:00+00:00"), capacity=Resources(4, 4),
                     workers=4).run(max_runs=2, since="2026-01-05T00:00:00+00:00")
    assert len(seen) == 3 and (out2["status"] == "ok").sum() == 2 and (out2["status"] == "queued").sum() == 4


def test_history_frame_reports_the_last_line_whole(tmp_path):
    "An 'ok' run after a failed attempt shows no stale error; a later line without run_dir does not keep an old one."
    h = History(tmp_path / "h.jsonl")
    h.append(run_id="r", job="j", status="running", at="2026-01-05T00:00:00+00:00", attempt=1, trigger="cron")
    h.append(run_id="r", job="j", status="retrying", at="2026-01-05T00:00:01+00:00", attempt=1, trigger="cron",
             error="RuntimeError: flaky source", run_dir="runs/old")
    h.append(run_id="r", job="j", status="running", at="2026-01-05T00:00:02+00:00", attempt=2, trigger="cron")
    h.append(run_id="r", job="j", status="ok", at="2026-01-05T00:00:03+00:00", attempt=2, trigger="cron")
    row = h.frame().iloc[0]
    assert row["status"] == "ok" and row["attempts"] == 2 and row["trigger"] == "cron"
    assert pd.isna(row["error"]) and pd.isna(row["run_dir"])


def test_cli_rejects_empty_and_unusable_paths(solo, tmp_path, capsys):
    pipes = solo
    base = ["schedule", "--pipelines", str(pipes), "--cron", "0 6 * * *"]
    runs = ["--runs-dir", str(tmp_path / "runs")]
    for flag in ("--watch", "--on-alert"):
        assert _schedule(_parser().parse_args(["schedule", "--pipelines", str(pipes)] + runs + [flag, ""])) == 2
        assert f"{flag} is empty" in capsys.readouterr().err
    for flag in ("--runs-dir", "--history"):
        assert _schedule(_parser().parse_args(base + runs + [flag, ""])) == 2
        assert f"{flag} is empty" in capsys.readouterr().err
    (tmp_path / "afile").write_text("x")
    assert _schedule(_parser().parse_args(base + ["--runs-dir", str(tmp_path / "afile")])) == 2
    assert "--runs-dir" in (err := capsys.readouterr().err) and "is a file, not a folder" in err
    (tmp_path / "hdir").mkdir()
    assert _schedule(_parser().parse_args(base + runs + ["--history", str(tmp_path / "hdir")])) == 2
    assert "--history" in (err := capsys.readouterr().err) and "is a folder" in err
    assert _schedule(_parser().parse_args(base + runs + ["--history", str(tmp_path / "afile" / "h.jsonl")])) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_bad_fields_are_named_config_errors():
    f = lambda c: None  # noqa: E731
    with pytest.raises(ConfigError, match="priority='high'"):
        Job("j", f, priority="high")
    with pytest.raises(ConfigError, match="schedule='0 6"):
        Job("j", f, schedule="0 6 * * *")
    with pytest.raises(ConfigError, match="backoff='fast'"):
        Job("j", f, backoff="fast")
    for w in (-1, 0, "2", True):
        with pytest.raises(ConfigError, match="workers="):
            Scheduler([Job("j", f)], "h.jsonl", capacity=Resources(1, 1), workers=w)
    with pytest.raises(ConfigError, match="limit=-1"):
        CronSchedule("0 6 * * *").fires(T0, T0 + timedelta(days=2), limit=-1)
    assert len(CronSchedule("0 6 * * *").fires(T0, T0 + timedelta(days=2), limit=1)) == 1
