"""The Prefect engine on the runner tests' toy pipeline, against a real ephemeral Prefect API: the default engine's products byte for byte,
the runner's own skip logic inside the tasks, retries and failures with the default engine's semantics, refusals,
`mlsys run --engine prefect`, and no connection that leaves the machine."""
import json
import os
import sys
from pathlib import Path

import pytest
from test_workflow_runner import toy, write_stage  # noqa: F401  (toy: the runner tests' two-stage pipeline, a fixture)

import mlsys.platform.orchestrator as orch
from mlsys.cli import main
from mlsys.core import ConfigError, PipelineError
from mlsys.platform.workflow import StageError, load_pipeline, product_hash, run_pipeline

AUDIT_HOOK = '''
import os, sys
def _audit(event, args):
    path = os.environ.get("MLSYS_NET_AUDIT")
    if path and event in ("socket.connect", "socket.getaddrinfo", "socket.bind"):
        with open(path, "a") as f:
            f.write(f"{os.getpid()}\\t{event}\\t{args[0] if event == 'socket.getaddrinfo' else args[1]!r}\\n")
sys.addaudithook(_audit)
'''


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    "One PREFECT_HOME for the module (the ephemeral API starts once, on the first Prefect run) and a log of every connection."
    home, audit = tmp_path_factory.mktemp("prefect-home"), tmp_path_factory.mktemp("audit")
    (audit / "sitecustomize.py").write_text(AUDIT_HOOK)  # the API server's subprocess inherits PYTHONPATH
    mp = pytest.MonkeyPatch()
    mp.delenv("PREFECT_API_URL", raising=False)
    mp.setenv("PREFECT_HOME", str(home))
    mp.setenv("MLSYS_NET_AUDIT", str(audit / "connections.log"))
    mp.setenv("PYTHONPATH", os.pathsep.join([str(audit), *filter(None, [os.environ.get("PYTHONPATH")])]))
    ns = {}
    exec(AUDIT_HOOK, ns)  # and this process
    yield {"home": home, "log": audit / "connections.log"}
    mp.undo()


@pytest.fixture(scope="module")
def flaky(tmp_path_factory) -> Path:
    "One stage that raises until it has been called `fails + 1` times, counting attempts in a file outside the run folder."
    folder = tmp_path_factory.mktemp("flaky")
    write_stage(folder, "flaky", '''
        run_dir: str = "runs/dev"  # folder of this run
        counter: str = "attempts.txt"  # where attempts are counted
        fails: int = 1  # attempts that raise before one succeeds
        write: bool = True  # False: finish without writing the product (a failure no retry can fix)
        upstream: list = []  # no inputs
        product: dict = {"out": "flaky/out.json"}  # written by the attempt that succeeds
    ''', '''
        from pathlib import Path
        from mlsys.core import save_json
        c = Path(counter)
        attempt = int(c.read_text()) + 1 if c.exists() else 1
        c.write_text(str(attempt))
        if attempt <= fails:
            raise ConnectionError(f"dropped (attempt {attempt})")
        if write:
            save_json({"attempt": attempt}, Path(run_dir) / product["out"])
    ''')
    (folder / "pipeline.toml").write_text("[profiles.smoke]\n")
    return folder


# what differs between two runs of the same inputs: when, how long, which engine, on what machine
VOLATILE = {"started", "finished", "seconds", "engine", "environment", "run_id"}


def normalized(run_dir: Path) -> dict:
    rec = json.loads((run_dir / "run.json").read_text())
    rec = {k: v for k, v in rec.items() if k not in VOLATILE}
    rec["stages"] = [{k: v for k, v in row.items() if k not in VOLATILE} for row in rec["stages"]]
    return rec


def test_both_engines_write_identical_products_and_the_cli_runs_prefect(offline, toy, tmp_path, capsys):  # noqa: F811
    runs = tmp_path / "runs"
    by_default = run_pipeline("smoke", pipelines=toy, runs_dir=runs, run_id="d", progress=False)
    assert by_default.stages["status"].tolist() == ["ran", "ran"]
    code = main(["run", "--engine", "prefect", "--profile", "smoke", "--pipelines", str(toy), "--runs-dir", str(runs),
                 "--run-id", "p", "--no-progress"])
    out = capsys.readouterr()
    assert code == 0, out.err[-3000:]
    assert [line.split()[:2] for line in out.out.splitlines()[1:3]] == [["make", "ran"], ["total", "ran"]]
    assert out.err == ""  # Prefect's logs go to its API, not the console
    # byte-identical products and metrics; run.json identical but for the volatile keys
    pipe = load_pipeline(toy)
    rels = [rel for st in pipe.stages.values() for rel in st.product.values()] + ["metrics/make.json", "metrics.json"]
    for rel in rels[:-1]:
        assert product_hash(runs / "d" / rel) == product_hash(runs / "p" / rel) is not None, rel
    assert json.loads((runs / "p/total/total.json").read_text()) == {"total": 3, "parts": 3}
    assert normalized(runs / "d") == normalized(runs / "p")
    engine = json.loads((runs / "p/run.json").read_text())["engine"]
    assert engine["name"] == "prefect" and engine["api"] == "ephemeral" and engine["tasks"] == {"make": "Completed", "total": "Completed"}
    states = orch.flow_run_states(runs / "p")
    assert states.to_dict("list") == {"run": ["flow", "task", "task"], "name": ["p", "make", "total"],
                                      "state": ["Completed"] * 3, "runs": [1, 1, 1]}
    # the runner's own cache inside the tasks: unchanged stages are skipped, an overwritten product is rebuilt
    again = run_pipeline("smoke", pipelines=toy, runs_dir=runs, run_id="p", progress=False, engine="prefect")
    assert again.stages["status"].tolist() == ["skipped", "skipped"]
    assert json.loads((runs / "p/run.json").read_text())["engine"]["tasks"] == {"make": "Skipped", "total": "Skipped"}
    (runs / "p/total/total.json").write_text("{}")
    repaired = run_pipeline("smoke", pipelines=toy, runs_dir=runs, run_id="p", progress=False, engine="prefect")
    assert repaired.stages["status"].tolist() == ["skipped", "ran"]
    assert product_hash(runs / "p/total/total.json") == product_hash(runs / "d/total/total.json")


def test_a_flaky_stage_retries_and_a_failing_one_fails_as_under_the_default_engine(offline, flaky, tmp_path):
    runs, counters = tmp_path / "runs", tmp_path / "counters"
    counters.mkdir()
    ok = run_pipeline("smoke", {"counter": str(counters / "ok")}, pipelines=flaky, runs_dir=runs, run_id="ok", progress=False,
                      engine="prefect", retries=1)
    assert ok.stages["status"].tolist() == ["ran"] and json.loads((runs / "ok/flaky/out.json").read_text()) == {"attempt": 2}
    assert not (runs / "ok/failed").exists() and not (runs / "ok/.staging").exists()  # the failed attempt's staging is gone
    states = orch.flow_run_states(runs / "ok")
    assert states["state"].tolist() == ["Completed", "Completed"] and states["runs"].tolist() == [1, 2]

    errors = {}
    for engine in ("default", "prefect"):
        with pytest.raises(StageError) as e:
            run_pipeline("smoke", {"counter": str(counters / engine), "fails": 5}, pipelines=flaky, runs_dir=runs,
                         run_id=f"bad-{engine}", progress=False, engine=engine, retries=1)
        errors[engine] = e.value
        assert (counters / engine).read_text() == "2"  # one try, one retry
        assert (runs / f"bad-{engine}/failed/flaky/notebooks/flaky.ipynb").exists()
        assert not (runs / f"bad-{engine}/flaky").exists()
    assert errors["prefect"].stage == errors["default"].stage == "flaky"
    assert "raised ConnectionError: dropped (attempt 2)" in str(errors["prefect"])
    assert str(errors["prefect"]).replace("bad-prefect", "RUN") == str(errors["default"]).replace("bad-default", "RUN")
    recs = {e: normalized(runs / f"bad-{e}") for e in errors}  # the same record but for the run id and the counter's path
    for key in ("status", "failed_stage", "traceback", "stages"):
        assert recs["prefect"][key] == recs["default"][key], key
    rec = json.loads((runs / "bad-prefect/run.json").read_text())
    assert (rec["status"], rec["failed_stage"], rec["stages"][0]["attempts"]) == ("failed", "flaky", 2)
    assert rec["engine"]["tasks"] == {"flaky": "Failed"}

    # a failure that another attempt cannot fix is not retried
    with pytest.raises(PipelineError, match="did not write declared products") as e:
        run_pipeline("smoke", {"counter": str(counters / "nowrite"), "fails": 0, "write": False}, pipelines=flaky,
                     runs_dir=runs, run_id="nowrite", progress=False, engine="prefect", retries=2)
    assert not isinstance(e.value, StageError) and (counters / "nowrite").read_text() == "1"


def test_unknown_engines_and_bad_retries_are_refused_before_anything_runs(toy, tmp_path, capsys):  # noqa: F811
    runs = tmp_path / "runs"
    for kw, needle in [({"engine": "airflow"}, "unknown engine 'airflow'; engines are ['default', 'prefect']"),
                       ({"engine": ["prefect"]}, "unknown engine ['prefect']"),
                       ({"engine": "prefect", "retries": -1}, "retries must be a whole number >= 0, got -1"),
                       ({"engine": "prefect", "retries": True}, "retries must be a whole number"),
                       ({"engine": "prefect", "retry_delay": float("inf")}, "retry_delay must be a number of seconds >= 0")]:
        with pytest.raises(ConfigError, match=needle.replace("[", r"\[").replace("]", r"\]")):
            run_pipeline("smoke", pipelines=toy, runs_dir=runs, **kw)
    assert not runs.exists()
    assert main(["run", "--engine", "luigi", "--pipelines", str(toy), "--runs-dir", str(runs)]) == 2
    assert "engines are ['default', 'prefect']" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="was not run by the Prefect engine"):
        orch.flow_run_states(_plain_run(tmp_path))


def _plain_run(tmp_path: Path) -> Path:
    run = tmp_path / "plain"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"status": "ok", "engine": {"name": "default"}}))
    return run


def test_the_deployable_flow_takes_run_pipelines_arguments():
    flow = orch.pipeline_flow()
    assert flow.name == "mlsys-run"
    assert list(flow.parameters.properties) == ["profile", "params", "run_id", "pipelines", "runs_dir", "retries", "retry_delay"]


def test_no_connection_leaves_the_machine(offline):
    "Runs last: every connection and name lookup of this process and of the ephemeral API server was to loopback or a local socket."
    lines = [line.split("\t") for line in offline["log"].read_text().splitlines()] if offline["log"].exists() else []
    assert lines, "the audit hook saw no connection at all"
    local = ("127.0.0.1", "localhost", "::1")
    outside = [line for line in lines if not any(h in line[2] for h in local) and not line[2].lstrip("'").startswith("/")]
    assert outside == []
    if orch._EPHEMERAL_HOME == str(offline["home"]):  # this module started the server: its subprocess was audited too
        server = [line for line in lines if line[0] != str(os.getpid())]
        assert any(event == "socket.bind" and "127.0.0.1" in addr for _, event, addr in server), server[:5]
    assert sys.modules.get("prefect") is not None
