"""Bad input to the public entry points of `mlsys.platform.workflow`: each gives a named mlsys error that names the input (no kernel is started)."""
import json
import textwrap
from pathlib import Path

import nbformat
import pytest

from mlsys.core import ConfigError, DataError, MlsysError
from mlsys.platform.workflow import (_read_state, coerce, collect_metrics, load_pipeline, log_metrics, product_hash, read_stage,
                                     run_pipeline)


def stage(folder: Path, name: str, params: str, extra_cells: int = 0) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(textwrap.dedent(params).strip(), metadata={"tags": ["parameters"]})]
    nb.cells += [nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}) for _ in range(extra_cells)]
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / f"{name}.ipynb")
    return folder / f"{name}.ipynb"


GOOD = '''
    run_dir: str = "runs/dev"  # run folder
    n: int = 1  # a number
    upstream: list = []  # none
    product: dict = {"x": "a/x.json"}  # x
'''


def params(product='{"x": "a/x.json"}', upstream="[]", extra=""):
    return f'run_dir: str = "r"  # r\n{extra}upstream: list = {upstream}  # u\nproduct: dict = {product}  # p\n'


@pytest.mark.parametrize("src,needle", [
    (params(product='{"x": "/etc/passwd"}'), "must be a path inside the run folder"),
    (params(product='{"x": "../x.json"}'), "must be a path inside the run folder"),
    (params(product='{"x": ""}'), "non-empty relative path"),
    (params(product='{"x": "."}'), "must be a path inside the run folder"),
    (params(product='{}'), "non-empty dict"),
    (params(product='{"x": 3}'), "non-empty relative path"),
    (params(product='{"x": ".state/x.json"}'), "which the runner keeps"),
    (params(product='{"x": "metrics/x.json"}'), "which the runner keeps"),
    (params(product='{"x": "run.json"}'), "which the runner keeps"),
    (params(product='{"x": "a", "y": "a/b.json"}'), "overlap"),
    (params(upstream='"ingest"'), "expects list"),
    (params(upstream='["a", 3]'), "upstream must be a list of stage names"),
    (params(upstream='["s"]'), "names the stage itself"),
    (params(extra="n = 1\n"), "annotated assignments"),
    (params(extra="n: tuple = (1,)\n"), "use one of"),
    (params(extra="n: int = len('x')\n"), "literal default"),
    (params(extra="n: int = 1.5  # n\n"), "expects int"),
    (params(extra="n: float = float('nan')\n"), "literal default"),
    ('run_dir: str = "r"  # r\n', "must declare ['upstream', 'product']"),
    ('run_dir: int = 1  # r\nupstream: list = []  # u\nproduct: dict = {"x": "x"}  # p\n', "run_dir must be declared as"),
    ("def broken(:\n", "not valid Python"),
])
def test_read_stage_rejects_bad_parameters_cells(tmp_path, src, needle):
    with pytest.raises(ConfigError, match=None) as e:
        read_stage(stage(tmp_path, "s", src))
    assert needle in str(e.value) and "'s'" in str(e.value)


def test_read_stage_rejects_bad_notebooks_and_names(tmp_path):
    with pytest.raises(DataError, match="stage notebook must be a str or os.PathLike"):
        read_stage(None)
    with pytest.raises(ConfigError, match="stage notebook not found"):
        read_stage(tmp_path / "missing.ipynb")
    (tmp_path / "junk.ipynb").write_text("not json")
    with pytest.raises(ConfigError, match="stage 'junk': .* is not a readable notebook"):
        read_stage(tmp_path / "junk.ipynb")
    (tmp_path / "list.ipynb").write_text("[]")
    with pytest.raises(ConfigError, match="is not a readable notebook"):
        read_stage(tmp_path / "list.ipynb")
    with pytest.raises(ConfigError, match="found 2"):
        read_stage(stage(tmp_path, "two", GOOD, extra_cells=1))
    with pytest.raises(ConfigError, match="the stage name 'run' is reserved"):
        read_stage(stage(tmp_path, "run", GOOD))
    with pytest.raises(ConfigError, match="stage name .* must be a name of letters"):
        read_stage(stage(tmp_path, "my.stage", GOOD))


def test_load_pipeline_rejects_bad_folders_and_config(tmp_path):
    with pytest.raises(DataError, match="pipeline folder must be a str or os.PathLike, got int"):
        load_pipeline(42)
    with pytest.raises(ConfigError, match="pipeline folder not found"):
        load_pipeline(tmp_path / "nope")
    with pytest.raises(ConfigError, match="no stage notebooks in"):
        load_pipeline(tmp_path)
    stage(tmp_path, "a", GOOD)
    stage(tmp_path, "b", GOOD.replace('"a/x.json"', '"a"'))
    with pytest.raises(ConfigError, match="product 'x' of stage 'a' .* overlaps product 'x' of stage 'b'"):
        load_pipeline(tmp_path)
    (tmp_path / "b.ipynb").unlink()
    stage(tmp_path, "b", GOOD.replace('"a/x.json"', '"b/x.json"').replace("[]", '["c"]'))
    with pytest.raises(ConfigError, match="unknown upstream stage 'c'"):
        load_pipeline(tmp_path)
    (tmp_path / "b.ipynb").unlink()
    for toml, needle in [("[profiles\n", "is not valid TOML"), ("[profile.smoke]\n", "unknown top-level keys ['profile']"),
                         ("profiles = 3\n", "'profiles' must hold"), ("[profiles]\nsmoke = 3\n", "profile 'smoke' must be a table"),
                         ("[profiles.smoke]\nm = 1\n", "unknown parameter 'm'"), ("[profiles.smoke]\nn = 'many'\n", "expects int")]:
        (tmp_path / "pipeline.toml").write_text(toml)
        with pytest.raises(ConfigError) as e:
            load_pipeline(tmp_path)
        assert needle in str(e.value), (toml, str(e.value))
    (tmp_path / "pipeline.toml").write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_pipeline(tmp_path)


def test_pipeline_resolve_and_downstream_reject_bad_input(tmp_path):
    stage(tmp_path, "a", GOOD)
    pipe = load_pipeline(tmp_path)
    cases = [
        (lambda: pipe.resolve(None), "profile must be a profile name (str), got NoneType"),
        (lambda: pipe.resolve("huge"), "unknown profile 'huge'"),
        (lambda: pipe.resolve("smoke", ["n=1"]), "must be a dict of name -> value, got list"),
        (lambda: pipe.resolve("smoke", {3: 1}), "parameter names must be non-empty strings, got 3"),
        (lambda: pipe.resolve("smoke", {"": 1}), "parameter names must be non-empty strings"),
        (lambda: pipe.resolve("smoke", {"b.n": 1}), "unknown stage 'b' in 'b.n'"),
        (lambda: pipe.resolve("smoke", {"n": None}), "parameter 'n' of stage 'a' expects int, got None"),
        (lambda: pipe.resolve("smoke", {"upstream": "[]"}), "set by the runner"),
        (lambda: pipe.downstream("zzz"), "unknown stage 'zzz'"),
        (lambda: pipe.downstream(None), "unknown stage None"),
    ]
    for f, needle in cases:
        with pytest.raises(ConfigError) as e:
            f()
        assert needle in str(e.value), str(e.value)


@pytest.mark.parametrize("value,typ,needle", [
    ("1.5", int, "expects int, got '1.5'"), (True, int, "expects int"), (None, str, "expects str, got None"),
    ("maybe", bool, "expects bool"), ("nan", float, "must be a finite number"), (float("inf"), float, "must be a finite number"),
    ("[1,", list, "expects list"), ('{"a": 1}', list, "expects list"), ("x", tuple, "type must be one of"),
    ("1", None, "type must be one of"),
])
def test_coerce_refuses(value, typ, needle):
    with pytest.raises(ConfigError) as e:
        coerce(value, typ, "p", "s")
    assert needle in str(e.value)


def test_metrics_helpers_refuse_bad_input(tmp_path):
    with pytest.raises(DataError, match="run_dir must be a str or os.PathLike, got NoneType"):
        log_metrics(None, "train", {})
    with pytest.raises(ConfigError, match="stage must be a name"):
        log_metrics(tmp_path, "../escape", {})
    with pytest.raises(ConfigError, match="'run' is reserved"):
        log_metrics(tmp_path, "run", {})
    with pytest.raises(DataError, match="metrics of stage 'train' must be a dict, got list"):
        log_metrics(tmp_path, "train", [1])
    with pytest.raises(DataError, match="which JSON cannot represent"):
        log_metrics(tmp_path, "train", {"auc": float("nan")})
    assert not (tmp_path / "metrics" / "train.json").exists()
    with pytest.raises(DataError, match="run_dir must be a str"):
        collect_metrics(None)
    assert collect_metrics(tmp_path / "nothing-here") == {}
    (tmp_path / "metrics").mkdir(exist_ok=True)
    (tmp_path / "metrics" / "x.json").write_text("{broken")
    with pytest.raises(DataError, match="x.json is not valid JSON"):
        collect_metrics(tmp_path)
    with pytest.raises(DataError, match="product must be a str"):
        product_hash(None)


def test_state_of_an_older_format_or_damaged_is_ignored(tmp_path):
    (tmp_path / ".state").mkdir()
    (tmp_path / ".state" / "a.json").write_text(json.dumps({"status": "ok", "fingerprint": "abc"}))
    assert _read_state(tmp_path, "a") == {}
    (tmp_path / ".state" / "a.json").write_text("{damaged")
    assert _read_state(tmp_path, "a") == {}


def test_run_pipeline_refuses_bad_arguments_before_running(tmp_path):
    pipes = tmp_path / "pipes"
    stage(pipes, "a", GOOD)
    runs = tmp_path / "runs"
    (tmp_path / "a-file").write_text("x")
    cases = [
        (dict(profile=None), "profile must be a profile name, got None"),
        (dict(profile="huge"), "unknown profile 'huge'"),
        (dict(params=["n=1"]), "params must be a dict of name -> value, got list"),
        (dict(params={"n": "x"}), "parameter 'n' of stage 'a' expects int, got 'x'"),
        (dict(from_stage=3), "from_stage must be a stage name, got int"),
        (dict(from_stage="b"), "--from: unknown stage 'b'"),
        (dict(run_id="../x"), "run id '../x' must be a plain folder name"),
        (dict(run_id=""), "run id '' must be a plain folder name"),
        (dict(run_id=".hidden"), "must be a plain folder name"),
        (dict(run_id=7), "run id 7 must be a plain folder name"),
        (dict(progress="yes"), "progress must be True or False, got 'yes'"),
        (dict(kernel_name="no-such-kernel"), "unknown Jupyter kernel 'no-such-kernel'; installed kernels are"),
        (dict(kernel_name=None), "kernel_name must be the name of a Jupyter kernel"),
        (dict(pipelines=42), "pipeline folder must be a str or os.PathLike"),
        (dict(runs_dir=42), "runs_dir must be a str or os.PathLike"),
        (dict(runs_dir=tmp_path / "a-file"), "cannot create the run folder"),
    ]
    for kw, needle in cases:
        args = {"profile": "smoke", "pipelines": pipes, "runs_dir": runs, "progress": False, **kw}
        with pytest.raises(MlsysError) as e:
            run_pipeline(**args)
        assert needle in str(e.value), (kw, str(e.value))
    assert not runs.exists()  # nothing was created
