"""The workflow runner on a tiny pipeline: SIGKILL at random moments (commits included), a second run at the same time, and outputs a stage may not commit."""
import json
import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import psutil
import pytest

from mlsys.core import PipelineError
from mlsys.platform.workflow import _recover, load_pipeline, product_hash, run_pipeline


def write_stage(folder: Path, name: str, params: str, body: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(textwrap.dedent(params).strip(), metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(textwrap.dedent(body).strip())]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / f"{name}.ipynb")


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    "make: a file and a folder of parts written slowly; total: reads both; all products depend on n."
    folder = tmp_path_factory.mktemp("pipelines")
    write_stage(folder, "make", '''
        run_dir: str = "runs/dev"  # folder of this run
        n: int = 3  # how many parts
        delay: float = 0.0  # seconds to wait between parts
        upstream: list = []  # no inputs
        product: dict = {"numbers": "make/numbers.json", "parts": "make/parts"}  # a file and a folder
    ''', '''
        import time
        from pathlib import Path
        from mlsys.core import save_json
        from mlsys.platform.workflow import log_metrics
        run = Path(run_dir)
        for i in range(n):
            save_json({"i": i, "n": n}, run / product["parts"] / f"part{i}.json")
            time.sleep(delay)
        save_json(list(range(n)), run / product["numbers"])
        log_metrics(run, "make", {"n": n})
    ''')
    write_stage(folder, "total", '''
        run_dir: str = "runs/dev"  # folder of this run
        upstream: list = ["make"]  # reads make's products
        product: dict = {"total": "total/total.json"}  # the sum
    ''', '''
        from pathlib import Path
        from mlsys.core import load_json, save_json
        run = Path(run_dir)
        xs = load_json(run / "make/numbers.json")
        parts = sorted((run / "make/parts").glob("*.json"))
        assert len(parts) == len(xs), (len(parts), len(xs))
        save_json({"total": sum(xs), "parts": len(parts)}, run / product["total"])
    ''')
    (folder / "pipeline.toml").write_text("[profiles.smoke]\nn = 3\n")
    return folder


def consistent(toy: Path, run: Path) -> dict:
    "Check every recorded stage's products against its record and against each other; return the recorded n per stage."
    pipe = load_pipeline(toy)
    seen = {}
    for name, st in pipe.stages.items():
        state = run / ".state" / f"{name}.json"
        if not state.exists():
            continue
        rec = json.loads(state.read_text())
        for key, rel in st.product.items():
            assert product_hash(run / rel) == rec["products"][key], f"{name}.{key} is not what its record says"
        seen[name] = rec["fingerprint"]["params"].get("n")
    if "make" in seen:
        n = seen["make"]
        assert json.loads((run / "make/numbers.json").read_text()) == list(range(n))
        assert sorted(p.name for p in (run / "make/parts").iterdir()) == [f"part{i}.json" for i in range(n)]
        assert json.loads((run / "metrics/make.json").read_text()) == {"n": n}  # metrics commit with the products
    return seen


def runner(toy: Path, runs: Path, params: dict, prelude: str = "") -> subprocess.Popen:
    code = (f"{prelude}\nfrom mlsys.platform.workflow import run_pipeline\n"
            f"run_pipeline('smoke', {params!r}, pipelines={str(toy)!r}, runs_dir={str(runs)!r}, progress=False)")
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def kill(proc: subprocess.Popen) -> None:
    "SIGKILL the runner only, as a crash would; its kernels notice and exit on their own."
    try:
        kernels = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        kernels = []
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    proc.stderr.close()
    psutil.wait_procs(kernels, timeout=60)
    for k in kernels:
        if k.is_running():
            k.kill()


def test_sigkill_at_random_moments_never_leaves_mixed_products(toy, tmp_path):
    runs, run = tmp_path / "runs", tmp_path / "runs" / "smoke"
    first = run_pipeline("smoke", {"n": 2}, pipelines=toy, runs_dir=runs, progress=False)
    assert first.stages["status"].tolist() == ["ran", "ran"]
    rng = random.Random(7)
    outcomes = []
    for trial in range(4):
        n = 3 + trial
        proc = runner(toy, runs, {"n": n, "delay": 0.2})
        time.sleep(rng.uniform(0.5, 7.0))  # python start-up, kernel start-up, mid-write, commit, the next stage...
        finished = proc.poll() is not None
        if not finished:
            kill(proc)
        else:
            proc.stderr.close()
        _recover(run)  # what the next run does first
        seen = consistent(toy, run)
        outcomes.append((n, finished, seen.get("make")))
        assert seen.get("make") in (n, *(o[0] for o in outcomes[:-1]), 2)  # an old or the new commit, never a mix
    final = run_pipeline("smoke", {"n": 9}, pipelines=toy, runs_dir=runs, progress=False)
    assert final.stages["status"].tolist() == ["ran", "ran"]
    assert consistent(toy, run) == {"make": 9, "total": None}
    assert json.loads((run / "total/total.json").read_text()) == {"total": 36, "parts": 9}
    assert not (run / ".staging").exists()


def test_kill_in_the_middle_of_a_commit_is_completed_by_the_next_run(toy, tmp_path):
    runs, run = tmp_path / "runs", tmp_path / "runs" / "smoke"
    run_pipeline("smoke", {"n": 2}, pipelines=toy, runs_dir=runs, progress=False)
    old_numbers = (run / "make/numbers.json").read_bytes()
    # die for real (os._exit, no cleanup) after the first of make's moves: numbers.json moved, parts/ not yet
    prelude = textwrap.dedent('''
        import os
        import mlsys.platform.workflow as wf
        _apply = wf._apply_moves
        def dying(run_dir, moves):
            _apply(run_dir, moves[:1])
            os._exit(9)
        wf._apply_moves = dying
    ''')
    proc = runner(toy, runs, {"n": 5}, prelude)
    assert proc.wait(timeout=300) == 9, proc.stderr.read().decode()[-2000:]
    proc.stderr.close()
    assert (run / ".state/make.commit").exists()
    assert (run / "make/numbers.json").read_bytes() != old_numbers  # half swapped: new numbers, old parts
    assert len(list((run / "make/parts").iterdir())) == 2
    again = run_pipeline("smoke", {"n": 5}, pipelines=toy, runs_dir=runs, progress=False)
    assert again.stages["status"].tolist() == ["skipped", "ran"]  # make's commit was completed, not redone
    assert consistent(toy, run) == {"make": 5, "total": None}
    assert json.loads((run / "total/total.json").read_text()) == {"total": 10, "parts": 5}


def test_a_second_run_on_the_same_folder_is_refused_while_the_first_runs(toy, tmp_path):
    runs, run = tmp_path / "runs", tmp_path / "runs" / "smoke"
    proc = runner(toy, runs, {"n": 4, "delay": 0.5})
    deadline = time.monotonic() + 300
    while not list((run / ".staging").glob("make-*")):
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with pytest.raises(PipelineError, match="is in use by another `mlsys run`"):
        run_pipeline("smoke", {"n": 4, "delay": 0.5}, pipelines=toy, runs_dir=runs, progress=False)
    assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()[-2000:]
    proc.stderr.close()
    second = run_pipeline("smoke", {"n": 4, "delay": 0.5}, pipelines=toy, runs_dir=runs, progress=False)
    assert second.stages["status"].tolist() == ["skipped", "skipped"]
    assert consistent(toy, run) == {"make": 4, "total": None}


def test_a_stage_cannot_commit_into_another_stages_product(tmp_path):
    pipes = tmp_path / "pipes"; pipes.mkdir()
    write_stage(pipes, "a", '''
        run_dir: str = "runs/dev"  # run folder
        upstream: list = []  # none
        product: dict = {"x": "a/x.json"}  # x
    ''', '''
        from pathlib import Path
        from mlsys.core import save_json
        save_json(1, Path(run_dir) / product["x"])
    ''')
    write_stage(pipes, "b", '''
        run_dir: str = "runs/dev"  # run folder
        upstream: list = ["a"]  # reads a
        product: dict = {"y": "b/y.json"}  # y
    ''', '''
        from pathlib import Path
        from mlsys.core import save_json
        mine = Path(run_dir) / product["y"]
        save_json(2, mine)
        save_json(666, mine.parent.parent / "a" / "x.json")  # a file that belongs to stage a
    ''')
    runs = tmp_path / "runs"
    with pytest.raises(PipelineError, match="wrote 'a/x.json', which is inside product 'a/x.json' of stage 'a'") as e:
        run_pipeline("smoke", pipelines=pipes, runs_dir=runs, progress=False)
    assert e.value.stage == "b"
    assert json.loads((runs / "smoke/a/x.json").read_text()) == 1
    assert not (runs / "smoke/b").exists()


BAR = re.compile(r"pipeline: +\d+%\|[^|]*\| \d/\d \[[^\]]*\]")


def test_console_clean_run_prints_only_the_bar_and_table_and_a_stage_error_prints_its_traceback(tmp_path):
    pipes = tmp_path / "pipes"; pipes.mkdir()
    write_stage(pipes, "divide", '''
        run_dir: str = "runs/dev"  # run folder
        n: int = 3  # numerator
        at: int = 0  # the input at which inner() divides by zero
        upstream: list = []  # none
        product: dict = {"x": "divide/x.json"}  # the result
    ''', '''
        import warnings
        from pathlib import Path
        from mlsys.core import save_json

        def inner(x):
            return n / x

        def outer(x):
            return inner(x - at)

        warnings.warn("a warning inside a stage stays in its notebook")
        save_json(outer(n), Path(run_dir) / product["x"])
    ''')
    (pipes / "pipeline.toml").write_text("[profiles.smoke]\n")
    runs = tmp_path / "runs"
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    cmd = [str(Path(sys.executable).parent / "mlsys"), "run", "--profile", "smoke", "--pipelines", str(pipes), "--runs-dir", str(runs)]
    ok = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert ok.returncode == 0, ok.stderr[-3000:]
    frames = [f.strip() for f in re.split(r"[\r\n]", ok.stderr) if f.strip()]
    assert frames and all(BAR.fullmatch(f) for f in frames), frames
    lines = ok.stdout.rstrip("\n").split("\n")
    assert re.fullmatch(r"\s*stage\s+status\s+seconds\s+reason", lines[0]) and re.fullmatch(r"\s*divide\s+ran\s+[\d.]+ no earlier successful run", lines[1])
    assert re.fullmatch(r"total: [\d.]+ s", lines[2]) and lines[3:] == [f"metrics: {runs / 'smoke/metrics.json'}", f"report: {runs / 'smoke/report.html'}"]

    bad = subprocess.run([*cmd, "--param", "at=3"], capture_output=True, text=True, timeout=600, env=env)
    assert bad.returncode == 1
    rest = [line for line in re.split(r"[\r\n]", bad.stderr) if line.strip() and not BAR.fullmatch(line.strip())]
    err = "\n".join(rest)
    # the whole traceback reaches the console: every frame with its source line, then the exception, then what failed
    for needle in ["Traceback (most recent call last)", "save_json(outer(n), Path(run_dir) / product[\"x\"])", "in outer", "return inner(x - at)",
                   "in inner", "return n / x", "ZeroDivisionError: division by zero"]:
        assert needle in err, needle
    assert "\x1b[" not in err and "IPKernelApp" not in err and "UserWarning" not in err  # the warning stays in the notebook
    assert err.index("return n / x") < err.index("mlsys: error: stage 'divide': raised ZeroDivisionError: division by zero")
    assert rest[-2:] == [f"run record: {runs / 'smoke/run.json'}", f"report: {runs / 'smoke/report.html'}"]
    assert bad.stdout == ""
    page = (runs / "smoke/report.html").read_text()
    assert "FAILED at stage divide" in page and 'href="failed/divide/notebooks/divide.ipynb"' in page and "return n / x" in page


# ---------------------------------------------------------------- services a stage leaves running

def _service_pipes(tmp_path: Path) -> Path:
    "start: launches a detached process and registers it; use: finds it alive (and fails on demand); the run stops it."
    pipes = tmp_path / "pipes"; pipes.mkdir()
    write_stage(pipes, "start", '''
        run_dir: str = "runs/dev"  # run folder
        upstream: list = []  # none
        product: dict = {"pid": "start/pid.json"}  # the service's pid
    ''', '''
        import subprocess, sys
        from pathlib import Path
        from mlsys.core import save_json
        from mlsys.platform.workflow import register_service
        p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
        register_service(run_dir, "sleeper", p.pid, "http://127.0.0.1:9", stage="start")
        save_json(p.pid, Path(run_dir) / product["pid"])
    ''')
    write_stage(pipes, "use", '''
        run_dir: str = "runs/dev"  # run folder
        fail: bool = False  # raise after checking
        upstream: list = ["start"]  # reads start
        product: dict = {"seen": "use/seen.json"}  # what it saw
    ''', '''
        import psutil
        from pathlib import Path
        from mlsys.core import load_json, save_json
        from mlsys.platform.workflow import get_service
        svc = get_service(run_dir, "sleeper")
        assert svc["pid"] == load_json(Path(run_dir) / "start/pid.json") and psutil.pid_exists(svc["pid"])
        save_json(svc["pid"], Path(run_dir) / product["seen"])
        if fail:
            raise RuntimeError("asked to fail")
    ''')
    (pipes / "pipeline.toml").write_text("[profiles.smoke]\n")
    return pipes


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_service_left_by_a_stage_serves_later_stages_and_is_stopped_when_the_run_ends(tmp_path):
    pipes, runs = _service_pipes(tmp_path), tmp_path / "runs"
    run_pipeline("smoke", pipelines=pipes, runs_dir=runs, progress=False)
    pid = json.loads((runs / "smoke/start/pid.json").read_text())
    assert json.loads((runs / "smoke/use/seen.json").read_text()) == pid
    assert _gone(pid)
    record = json.loads((runs / "smoke/run.json").read_text())
    assert record["services"] == [{"name": "sleeper", "url": "http://127.0.0.1:9", "pid": pid, "stage": "start",
                                   "stopped": "stopped"}]
    assert not list((runs / "smoke/.services").glob("*.json"))
    # a failing later stage: the service is stopped all the same, and the record says so
    with pytest.raises(PipelineError, match="asked to fail"):
        run_pipeline("smoke", {"fail": True}, from_stage="start", pipelines=pipes, runs_dir=runs, progress=False)
    pid2 = json.loads((runs / "smoke/start/pid.json").read_text())
    assert pid2 != pid and _gone(pid2)
    record = json.loads((runs / "smoke/run.json").read_text())
    assert record["status"] == "failed" and [s["stopped"] for s in record["services"]] == ["stopped"]


def test_a_service_left_by_a_killed_run_is_stopped_by_the_next_run_and_a_reused_pid_is_never_touched(tmp_path):
    from mlsys.platform.workflow import register_service, stop_services
    pipes, runs = _service_pipes(tmp_path), tmp_path / "runs"
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    register_service(runs / "smoke", "orphan", orphan.pid, "http://127.0.0.1:9", stage="start")  # as a killed run leaves it
    run_pipeline("smoke", pipelines=pipes, runs_dir=runs, progress=False)
    assert orphan.wait(timeout=30) is not None
    # a record whose process has gone, and whose pid now names another process, stops nothing
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        register_service(tmp_path / "r2", "svc", bystander.pid, "http://127.0.0.1:9")
        rec_file = tmp_path / "r2/.services/svc.json"
        rec = json.loads(rec_file.read_text())
        rec_file.write_text(json.dumps({**rec, "process_started": rec["process_started"] - 3600}))  # an older process
        assert [s["stopped"] for s in stop_services(tmp_path / "r2")] == ["already gone"]
        assert bystander.poll() is None
        (tmp_path / "r2/.services").mkdir(exist_ok=True)
        (tmp_path / "r2/.services/bad.json").write_text("{not json")  # a damaged record names nothing to stop
        assert [s["stopped"] for s in stop_services(tmp_path / "r2")] == ["already gone"]
    finally:
        bystander.kill()
        bystander.wait()


@pytest.mark.parametrize("kw, msg", [({"name": "../x"}, "service name"), ({"pid": 0}, "pid must be"),
                                     ({"pid": True}, "pid must be"), ({"url": "ftp://x"}, "url must be"),
                                     ({"pid": 2 ** 22 + 12345}, "no running process")])
def test_register_service_refuses_bad_arguments(tmp_path, kw, msg):
    from mlsys.core import ConfigError
    from mlsys.platform.workflow import register_service
    args = {"name": "svc", "pid": os.getpid(), "url": "http://127.0.0.1:9", **kw}
    with pytest.raises((ConfigError, PipelineError), match=msg):
        register_service(tmp_path, **args)


@pytest.mark.parametrize("engine", ["default", "prefect"])
def test_a_cycle_in_the_dag_is_refused_before_any_stage_runs(tmp_path, engine):
    "a -> b -> c -> a: a ConfigError that names the stages of the cycle, on both engines, and no run folder content."
    from mlsys.core import ConfigError
    pipes = tmp_path / "pipes"; pipes.mkdir()
    for name, up in (("a", "c"), ("b", "a"), ("c", "b")):
        write_stage(pipes, name, f'''
            run_dir: str = "runs/dev"  # run folder
            upstream: list = ["{up}"]  # reads {up}
            product: dict = {{"x": "{name}/x.json"}}  # x
        ''', "pass")
    with pytest.raises(ConfigError, match=r"stages \['a', 'b', 'c'\] form a dependency cycle"):
        run_pipeline("smoke", pipelines=pipes, runs_dir=tmp_path / "runs", progress=False, engine=engine)
    assert not (tmp_path / "runs" / "smoke" / "a").exists()
