"""monitor.alerts: policies (threshold, rate of change, sustained) against a reference evaluation, de-duplication that never
loses a first firing, snoozing, grouping, retry after a failed delivery, and the channels: an alert log written with atomic
appends (writers killed with SIGKILL), a webhook to a local HTTP server, email to a local SMTP sink (aiosmtpd)."""
import email
import json
import os
import random
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import pandas as pd
import pytest

from mlsys.core import ConfigError, DataError, SchemaError
from mlsys.monitor.alerts import (
    Alert,
    AlertManager,
    Channel,
    DeliveryError,
    EmailChannel,
    LogFileChannel,
    Notification,
    Policy,
    WebhookChannel,
    channel_from_dict,
    evaluate,
    policy_from_dict,
    read_alert_log,
)

OPS = {">": np.greater, ">=": np.greater_equal, "<": np.less, "<=": np.less_equal}


class Memory(Channel):
    "A channel that keeps what it is sent, and fails the calls listed in `fail`."
    kind = "memory"

    def __init__(self, name=None, fail=()):
        super().__init__(name)
        self.sent, self.fail, self.calls = [], set(fail), 0

    def send(self, n):
        self.calls += 1
        if self.calls in self.fail:
            raise DeliveryError(f"call {self.calls} fails")
        self.sent.append(n)


# ---------------------------------------------------------------- policies

@pytest.mark.parametrize("d, msg", [
    ({"name": "X", "metric": "m", "threshold": 1, "for_windows": -1}, "for_windows=-1 must be a positive integer"),
    ({"name": "X", "metric": "m", "threshold": 1, "for_windows": 0}, "for_windows=0"),
    ({"name": "X", "metric": "m", "threshold": 1, "for_windows": True}, "for_windows=True"),
    ({"name": "X", "metric": "m", "threshold": 1, "for_windows": 2.5}, "for_windows=2.5"),
    ({"name": "X", "metric": "m", "threshold": 1, "kind": "ewma"}, "kind must be one of"),
    ({"name": "X", "metric": "m", "threshold": 1, "op": "=="}, "op one of"),
    ({"name": "X", "metric": "m", "threshold": 1, "severity": "page"}, "severity one of"),
    ({"name": "9lives", "metric": "m", "threshold": 1}, "name must be letters"),
    ({"name": "X", "metric": "", "threshold": 1}, "metric must name a column"),
    ({"name": "X", "metric": "m", "threshold": "high"}, "threshold='high'"),
    ({"name": "X", "metric": "m", "threshold": float("inf")}, "finite"),
    ({"name": "X", "metric": "m", "threshold": 1, "group_by": ["a", "a"]}, "group_by must be distinct"),
    ({"name": "X", "metric": "m", "threshold": 1, "labels": {"team": 1}}, "labels must map strings"),
    ({"name": "X", "metric": "m", "threshold": 1, "description": "{nope}"}, "cannot be filled"),
    ({"name": "X", "metric": "m", "threshold": 1, "description": "{value:%Q}"}, "cannot be filled"),
    ({"name": "X", "metric": "m", "threshold": 1, "owner": 3}, "owner must be a string"),
    ({"name": "X", "metric": "m", "threshold": 1, "window": 3}, "unknown field(s) ['window']"),
    ({"name": "X", "threshold": 1}, "missing field(s) ['metric']"),
    ([("name", "X")], "must be a dict"),
])
def test_malformed_policies_are_refused_naming_the_problem(d, msg):
    with pytest.raises(ConfigError, match=msg.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(").replace(")", r"\)")):
        policy_from_dict(d)


def _reference(policy, table):
    "A direct, slow evaluation: per group, per window of the full time grid, the streak of met conditions."
    windows = sorted(table["window"].unique())
    out = []
    groups = table.groupby(list(policy.group_by)) if policy.group_by else [((), table)]
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        values = {w: v for w, v in zip(g["window"], g[policy.metric])}
        streak, start, prev = 0, None, np.nan
        for w in windows:
            v = values.get(w, np.nan)
            x = v - prev if policy.kind == "rate_of_change" else v
            prev = v
            met = not np.isnan(x) and bool(OPS[policy.op](x, policy.threshold))
            streak = streak + 1 if met else 0
            if streak >= policy.for_windows:
                start = w if start is None else start
                out.append((policy.name, tuple(str(k) for k in key), w, start, x))
            else:
                start = None
    return sorted(out, key=lambda r: (r[2], r[1]))


def test_evaluate_equals_a_direct_evaluation_on_random_tables():
    rng = np.random.default_rng(0)
    for case in range(150):
        n_w, n_g = int(rng.integers(1, 25)), int(rng.integers(1, 4))
        rows = [{"window": pd.Timestamp("2013-01-01") + pd.Timedelta(days=w), "origin": f"A{g}",
                 "m": float(rng.choice([rng.normal(), np.nan, 0.5, 0.5], p=[0.7, 0.1, 0.1, 0.1]))}
                for w in range(n_w) for g in range(n_g) if rng.random() > 0.1]
        if not rows:
            continue
        table = pd.DataFrame(rows)
        pol = Policy("P", "m", float(rng.choice([0.0, 0.5, -0.3])), kind=rng.choice(["threshold", "rate_of_change"]),
                     op=rng.choice([">", ">=", "<", "<="]), for_windows=int(rng.integers(1, 5)),
                     group_by=("origin",) if rng.random() < 0.7 else ())
        if not pol.group_by:
            table = table.drop_duplicates("window")
        got = [(a.name, tuple(dict(a.labels).get(g) for g in pol.group_by), a.window, a.starts_at, a.value)
               for a in evaluate(pol, table)]
        want = _reference(pol, table)
        assert sorted(got, key=lambda r: (r[2], r[1])) == want, (case, pol)


def test_sustained_policies_fire_after_n_windows_and_carry_their_description():
    t = pd.DataFrame({"window": pd.date_range("2013-07-01", periods=8, freq="D"), "origin": "EWR",
                      "late_rate": [0.1, 0.4, 0.5, 0.6, 0.2, 0.5, 0.5, 0.5]})
    p = Policy("LateRateHigh", "late_rate", 0.35, for_windows=2, group_by=("origin",), owner="ops",
               runbook="https://runbooks/late", description="{origin}: {value:.0%}", labels={"team": "delays"})
    alerts = evaluate(p, t)
    assert [a.window.day for a in alerts] == [3, 4, 7, 8] and [a.starts_at.day for a in alerts] == [3, 3, 7, 7]
    a = alerts[0]
    assert (a.description, a.owner, a.runbook, a.labels) == ("EWR: 50%", "ops", "https://runbooks/late",
                                                               (("origin", "EWR"), ("team", "delays")))
    assert a.to_dict()["labels"] == {"alertname": "LateRateHigh", "severity": "warning", "origin": "EWR", "team": "delays"}
    jump = evaluate(Policy("Jump", "late_rate", 0.25, kind="rate_of_change"), t.drop(columns="origin"))
    assert [(a.window.day, round(a.value, 2)) for a in jump] == [(2, 0.3), (6, 0.3)]


def test_evaluate_refuses_bad_tables():
    t = pd.DataFrame({"window": [1, 2, 2], "origin": ["a", "a", "a"], "m": [1.0, 2.0, 3.0]})
    p = Policy("P", "m", 0.0, group_by=("origin",))
    with pytest.raises(DataError, match="2 duplicated|1 duplicated rows"):
        evaluate(p, t)
    with pytest.raises(SchemaError, match="nope"):
        evaluate(Policy("P", "nope", 0.0), t)
    with pytest.raises(DataError, match="not numbers"):
        evaluate(Policy("P", "m", 0.0), t.assign(m=["1", "x", "2"]).drop_duplicates("window"))
    with pytest.raises(DataError, match="missing windows"):
        evaluate(Policy("P", "m", 0.0), t.assign(window=[1, None, 3]))
    with pytest.raises(ConfigError, match="distinct"):
        evaluate([Policy("P", "m", 0.0), Policy("P", "m", 1.0)], t)
    with pytest.raises(ConfigError, match="non-empty list"):
        evaluate([], t)
    with pytest.raises(DataError, match="DataFrame"):
        evaluate(p, t.to_dict())


# ---------------------------------------------------------------- de-duplication, snoozing, grouping

def _random_firings(rng, n_windows=60, n_alerts=6, p_on=0.15, p_stay=0.8):
    "Alerts of random on/off episodes, as evaluate would produce them: (window, name, labels, starts_at)."
    out = []
    for k in range(n_alerts):
        on, start = False, None
        for w in range(n_windows):
            on = rng.random() < (p_stay if on else p_on)
            start = (w if start is None else start) if on else None
            if on:
                out.append(Alert(f"A{k % 2}", (("origin", f"o{k}"),), "warning", w, start, 1.0, 0.0, "d", "", ""))
    return out


def test_deduplication_reduces_counts_and_never_loses_a_first_firing():
    rng = random.Random(0)
    reduced = 0
    for case in range(80):
        alerts = _random_firings(rng)
        firsts = {(a.fingerprint, a.starts_at) for a in alerts if a.window == a.starts_at}
        counts = {}
        for repeat in (0, 1, 3, 10, None):
            ch = Memory()
            m = AlertManager([ch], repeat_interval=repeat)
            m.process_windows(alerts)
            sent = [a for n in ch.sent for a in n.alerts]
            assert {(a.fingerprint, a.starts_at) for a in sent if a.window == a.starts_at} == firsts, (case, repeat)
            assert {(a.fingerprint, a.starts_at) for a in sent} == {(a.fingerprint, a.starts_at) for a in alerts}
            counts[repeat] = len(sent)
            assert m.counts["sent"] + m.counts["duplicates"] == m.counts["firing"] == len(alerts)
            if repeat:  # within an episode, re-sent no sooner than the repeat interval
                by_episode = {}
                for a in sent:
                    by_episode.setdefault((a.fingerprint, a.starts_at), []).append(a.window)
                assert all(b - a >= repeat for ws in by_episode.values() for a, b in zip(ws, ws[1:]))
        assert counts[0] == len(alerts) and counts[0] >= counts[1] >= counts[3] >= counts[10] >= counts[None] == len(
            {(a.fingerprint, a.starts_at) for a in alerts})
        reduced += counts[None] < counts[0]
    assert reduced > 60  # de-duplication does reduce counts on most sequences


def test_a_snoozed_alert_is_held_until_the_snooze_ends_then_sent():
    alerts = [Alert("A", (("origin", o),), "warning", w, 0, 1.0, 0.0, "d", "", "") for w in range(10) for o in ("x", "y")]
    ch = Memory()
    m = AlertManager([ch], repeat_interval=None)
    m.snooze("A", 4, {"origin": "x"})
    m.process_windows(alerts)
    sent = [(a.window, a.label("origin")) for n in ch.sent for a in n.alerts]
    assert sent == [(0, "y"), (4, "x")] and m.counts["snoozed"] == 4
    with pytest.raises(ConfigError, match="alert name"):
        m.snooze("", 3)


def test_grouping_puts_alerts_of_one_window_and_key_in_one_notification():
    alerts = [Alert(n, (("origin", o),), s, 0, 0, 1.0, 0.0, "d", "", "") for n, s in (("A", "info"), ("B", "critical"))
              for o in ("x", "y", "z")]
    by_name, by_origin = Memory("a"), Memory("b")
    AlertManager([by_name]).process(alerts)
    AlertManager([by_origin], group_by=("origin",)).process(alerts)
    assert sorted(n.group_key for n in by_name.sent) == ['alertname="A"', 'alertname="B"']
    assert [len(n.alerts) for n in by_name.sent] == [3, 3] and {n.severity for n in by_name.sent} == {"info", "critical"}
    assert sorted(n.group_key for n in by_origin.sent) == ['origin="x"', 'origin="y"', 'origin="z"']
    assert all(n.severity == "critical" for n in by_origin.sent)
    assert by_origin.sent[0].to_dict()["commonLabels"] == {"origin": by_origin.sent[0].alerts[0].label("origin")}
    with pytest.raises(DataError, match="one window at a time"):
        AlertManager([Memory()]).process([alerts[0], Alert("A", (), "info", 1, 1, 1.0, 0.0, "", "", "")])


def test_a_failed_delivery_is_retried_and_does_not_affect_other_channels():
    alerts = [Alert("A", (), "warning", w, 0, 1.0, 0.0, "d", "", "") for w in range(5)]
    flaky, steady = Memory("flaky", fail={1, 2}), Memory("steady")
    m = AlertManager([flaky, steady], repeat_interval=None)
    m.process_windows(alerts)
    assert [n.window for n in steady.sent] == [0] and [n.window for n in flaky.sent] == [2]
    assert m.counts["failed"] == 2


@pytest.mark.parametrize("kw, msg", [({"repeat_interval": "-1D"}, "repeat_interval='-1D' must be a non-negative duration"),
                                     ({"repeat_interval": "often"}, "not a duration"),
                                     ({"repeat_interval": -2}, "repeat_interval=-2"),
                                     ({"group_by": "origin"}, "group_by"),
                                     ({"channels": [Memory("x"), Memory("x")]}, "distinct"),
                                     ({"channels": [{"type": "pager"}]}, "unknown channel type 'pager'")])
def test_alert_manager_refuses_bad_settings(kw, msg):
    with pytest.raises(ConfigError, match=msg):
        AlertManager(**kw)


@pytest.mark.parametrize("d, msg", [
    ({"type": "sms"}, "unknown channel type 'sms'; the channels are \\['log', 'webhook', 'email'\\]"),
    ({"to": "x"}, "'type'"), ("log", "'type'"),
    ({"type": "webhook", "url": "localhost:1"}, "http\\(s\\) URL"),
    ({"type": "webhook", "url": "http://x", "timeout": 0}, "timeout=0"),
    ({"type": "email", "host": "h", "port": 25, "sender": "me", "to": ["a@b"]}, "addresses"),
    ({"type": "email", "host": "h", "port": 0, "sender": "me@x", "to": ["a@b"]}, "port"),
    ({"type": "log", "path": ""}, "alert log"),
    ({"type": "log", "path": "x", "mode": "w"}, "channel 'log'")])
def test_channel_configs_are_checked(d, msg):
    with pytest.raises((ConfigError, DataError), match=msg):
        channel_from_dict(d)


# ---------------------------------------------------------------- channels

def _writer(path, seed, ready):
    "Append notifications of 1 to 60 alerts (up to ~20 KB a line: more than PIPE_BUF) until killed."
    rng = random.Random(seed)
    ch = LogFileChannel(path, fsync=False)
    ready.set()
    i = 0
    while True:
        alerts = tuple(Alert("A", (("w", str(seed)), ("i", str(i)), ("k", str(k))), "info", i, 0, 1.0, 0.0,
                             "x" * rng.randint(0, 300), "", "") for k in range(rng.randint(1, 60)))
        ch.send(Notification(f"w{seed}", i, alerts))
        i += 1


def test_alert_log_lines_stay_whole_when_concurrent_writers_are_killed(tmp_path):
    import multiprocessing
    ctx = multiprocessing.get_context("fork")  # the children need no imports: fast on a loaded machine
    path = tmp_path / "alerts.jsonl"
    rng = random.Random(0)
    for round_ in range(3):
        procs = []
        for k in range(3):
            ready = ctx.Event()
            procs.append((ctx.Process(target=_writer, args=(path, 10 * round_ + k, ready), daemon=True), ready))
            procs[-1][0].start()
        for _, ready in procs:
            assert ready.wait(60)
        for p, _ in procs:
            time.sleep(rng.uniform(0.01, 0.2))
            os.kill(p.pid, signal.SIGKILL)
            p.join(30)
            assert p.exitcode == -signal.SIGKILL
    data = path.read_bytes()
    assert data.count(b"\n") > 9
    df = read_alert_log(path, errors="count")
    # a writer killed in the middle of a multi-page write can leave its own last line torn (at most one per writer, 9
    # here); the lock and the next writer's newline keep it from spoiling any other line
    assert len(df.attrs["malformed_lines"]) <= 9 and len(df) > 9
    seq = df.assign(w=df["labels"].map(lambda d: d["w"]), i=df["labels"].map(lambda d: int(d["i"])))
    for _, g in seq.groupby("w"):  # each writer's notifications arrive whole and in order
        assert g.groupby("i").size().index.tolist() == list(range(g["i"].max() + 1))


def test_a_torn_last_line_is_ended_before_the_next_notification(tmp_path):
    "What a writer killed mid-line leaves: the next send ends the fragment, so only the torn line is malformed."
    path = tmp_path / "alerts.jsonl"
    ch = LogFileChannel(path, fsync=False)
    note = Notification('alertname="A"', 0, (Alert("A", (), "info", 0, 0, 1.0, 0.0, "", "", ""),))
    ch.send(note)
    with open(path, "ab") as f:
        f.write(b'{"version":"4","groupKey":"torn')  # no newline: the writer died here
    ch.send(note)
    df = read_alert_log(path, errors="count")
    assert len(df) == 2 and df.attrs["malformed_lines"] == [2]
    with pytest.raises(DataError, match="line 2 is malformed"):
        read_alert_log(path)


def test_read_alert_log_names_a_malformed_line(tmp_path):
    path = tmp_path / "alerts.jsonl"
    ch = LogFileChannel(path)
    ch.send(Notification('alertname="A"', 0, (Alert("A", (), "info", 0, 0, 1.0, 0.0, "", "", ""),)))
    with open(path, "ab") as f:
        f.write(b'{"groupKey": "x"}\n{"half')
    with pytest.raises(DataError, match="line 2 is malformed: missing field"):
        read_alert_log(path)
    assert read_alert_log(path, errors="count").attrs["malformed_lines"] == [2, 3]
    with pytest.raises(DeliveryError, match="alert log"):
        LogFileChannel(tmp_path / "no" / "such" / "dir.jsonl").send(
            Notification("k", 0, (Alert("A", (), "info", 0, 0, 1.0, 0.0, "", "", ""),)))
    with pytest.raises(DataError, match="at least one Alert"):
        Notification("k", 0, ())


class _Receiver(BaseHTTPRequestHandler):
    got, status = [], [200]

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        code = self.status.pop(0) if len(self.status) > 1 else self.status[0]
        if code == 200:
            _Receiver.got.append((self.path, self.headers["Content-Type"], json.loads(body)))
        self.send_response(code)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    _Receiver.got, _Receiver.status = [], [200]
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", _Receiver
    server.shutdown()
    server.server_close()


def test_webhook_gets_alertmanager_payloads_and_a_5xx_is_retried_next_window(webhook):
    url, rec = webhook
    rec.status = [500, 200]
    alerts = [Alert("A", (("origin", "EWR"),), "critical", w, 0, 0.4, 0.35, "EWR late", "https://rb", "ops") for w in range(3)]
    m = AlertManager([WebhookChannel(url, timeout=10)], repeat_interval=None)
    m.process_windows(alerts)
    assert m.counts["failed"] == 1 and m.counts["sent"] == 1 and len(rec.got) == 1
    path, ctype, body = rec.got[0]
    assert (path, ctype, body["version"], body["status"], body["groupKey"]) == ("/hook", "application/json", "4", "firing",
                                                                                 'alertname="A"')
    (a,) = body["alerts"]
    assert a["labels"] == {"alertname": "A", "severity": "critical", "origin": "EWR"} and a["window"] == 1
    assert a["annotations"] == {"description": "EWR late", "runbook_url": "https://rb", "owner": "ops"}
    from mlsys.data.service import free_port
    with pytest.raises(DeliveryError, match="unreachable"):
        WebhookChannel(f"http://127.0.0.1:{free_port()}/x", timeout=5).send(Notification("k", 0, tuple(alerts[:1])))


def test_email_reaches_a_local_smtp_sink():
    pytest.importorskip("aiosmtpd")
    from aiosmtpd.controller import Controller

    from mlsys.data.service import free_port

    class Sink:
        mails = []

        async def handle_DATA(self, server, session, envelope):
            Sink.mails.append((envelope.mail_from, envelope.rcpt_tos, envelope.content.decode()))
            return "250 OK"
    ctl = Controller(Sink(), hostname="127.0.0.1", port=free_port())
    ctl.start()
    try:
        alerts = [Alert("DelayDrift", (("origin", o),), "critical", pd.Timestamp("2013-07-19"), pd.Timestamp("2013-07-17"),
                        1.0, 1.0, f"{o}: drifted", "https://rb/drift", "ml-models") for o in ("EWR", "LGA")]
        m = AlertManager([{"type": "email", "host": "127.0.0.1", "port": ctl.port, "sender": "mlsys@example.org",
                           "to": ["oncall@example.org", "ml@example.org"]}])
        m.process(alerts)
    finally:
        ctl.stop()
    (frm, to, raw), = Sink.mails
    msg = email.message_from_string(raw)
    assert frm == "mlsys@example.org" and to == ["oncall@example.org", "ml@example.org"]
    assert msg["Subject"] == '[CRITICAL] alertname="DelayDrift": 2 alerts at 2013-07-19T00:00:00'
    body = msg.get_payload()
    assert "EWR: drifted" in body and "LGA: drifted" in body and "https://rb/drift" in body and "since 2013-07-17" in body
    closed = EmailChannel("127.0.0.1", free_port(), "a@b.c", "d@e.f", timeout=5)
    with pytest.raises(DeliveryError, match="email via"):
        closed.send(Notification("k", 0, tuple(alerts[:1])))


def test_a_numeric_repeat_interval_with_time_windows_is_a_config_error():
    alerts = [Alert("A", (), "info", pd.Timestamp("2013-01-01") + pd.Timedelta(days=d), pd.Timestamp("2013-01-01"), 1.0, 0.0,
                    "", "", "") for d in range(3)]
    with pytest.raises(ConfigError, match="a duration for times"):
        AlertManager([Memory()], repeat_interval=2).process_windows(alerts)


def test_snoozes_are_checked():
    m = AlertManager([Memory()])
    for until, msg in [("whenever", "not a time"), (None, "needs a time"), (float("nan"), "needs a time")]:
        with pytest.raises(ConfigError, match=msg):
            m.snooze("A", until)
    with pytest.raises(ConfigError, match="labels must map"):
        m.snooze("A", 3, {"origin": 1})
    m.snooze("A", "2013-07-20")
    aware = Alert("A", (), "info", pd.Timestamp("2013-07-19", tz="UTC"), pd.Timestamp("2013-07-19", tz="UTC"), 1.0, 0.0,
                  "", "", "")
    with pytest.raises(ConfigError, match="cannot be compared"):
        m.process([aware])


def test_request_logs_to_metrics_to_alerts(tmp_path):
    "The chain of the chapter: JSON request logs, metrics per window computed from them, and an error-rate alert."
    from mlsys.monitor.observe import read_json_logs, request_metrics
    t0 = pd.Timestamp("2013-07-01", tz="UTC")
    recs = [{"timestamp": (t0 + pd.Timedelta(seconds=s)).isoformat(), "level": "INFO", "logger": "mlsys.requests",
             "message": "POST /predict", "route": "/predict", "status": 503 if (60 <= s < 240 and s % 4 == 0) else 200,
             "latency_ms": 10.0} for s in range(0, 300)]
    (tmp_path / "requests.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    metrics = request_metrics(read_json_logs(tmp_path / "requests.jsonl"), window="1min").reset_index()
    assert metrics["error_rate"].round(2).tolist() == [0.0, 0.25, 0.25, 0.25, 0.0]
    p = Policy("HighErrorRate", "error_rate", 0.05, for_windows=2, severity="critical", owner="ml-platform")
    ch = Memory()
    AlertManager([ch], repeat_interval="10min").process_windows(evaluate(p, metrics))
    assert [(n.window.minute, len(n.alerts), n.alerts[0].starts_at.minute) for n in ch.sent] == [(2, 1, 2)]
