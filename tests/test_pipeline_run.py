"""End-to-end tests of `mlsys run` on the smoke profile: products, skipping, and what a failed, killed or tampered run leaves behind."""
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import psutil
import pytest

from mlsys.cli import main
from mlsys.core import ConfigError, PipelineError
from mlsys.pipeline import FEATURES, load_models, time_split
from mlsys.platform.workflow import load_pipeline, product_hash, run_pipeline

ROOT = Path(__file__).resolve().parents[1]
PIPES = ROOT / "nbs" / "pipelines"
BIN = Path(sys.executable).parent
STAGES = ["ingest", "features", "train", "evaluate", "register", "deploy", "monitor", "continual", "report"]


def console_env() -> dict:
    "The environment a user's shell gives `mlsys run`: no test-only matplotlib backend."
    return {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    "One smoke run of the real pipeline through the console script, progress bar on, stdout and stderr captured; shared by this module's tests."
    # CI (scripts/ci_checks.sh) names a folder in MLSYS_SMOKE_RUNS_DIR: this run is then its smoke check too,
    # and its report.html is the one the docs-site check photographs (one smoke run instead of two)
    keep = os.environ.get("MLSYS_SMOKE_RUNS_DIR")
    runs = Path(keep) if keep else tmp_path_factory.mktemp("runs")
    res = subprocess.run([str(BIN / "mlsys"), "run", "--profile", "smoke", "--pipelines", str(PIPES), "--runs-dir", str(runs)],
                         capture_output=True, text=True, timeout=1800, env=console_env())
    assert res.returncode == 0, res.stderr[-3000:]
    return runs, res


@pytest.fixture
def work(smoke_run, tmp_path):
    "A private copy of the smoke run's runs folder (a copied run folder resumes: its location is not an input)."
    runs, _ = smoke_run
    shutil.copytree(runs, tmp_path / "runs")
    return tmp_path / "runs"


def snapshot(run: Path, folders=("ingest", "features", "train", "evaluate")) -> dict:
    "Bytes of every file under the given stage folders."
    return {f.relative_to(run).as_posix(): f.read_bytes() for d in folders for f in sorted((run / d).rglob("*")) if f.is_file()}


class Statuses(list):
    "Stage statuses that show the reasons when a comparison fails."
    def __init__(self, statuses, reasons):
        super().__init__(statuses)
        self.reasons = reasons

    def __repr__(self):
        return f"{list(self)} (reasons: {self.reasons})"


def statuses(result_or_record) -> list[str]:
    if isinstance(result_or_record, dict):
        rows = result_or_record["stages"]
        return Statuses([r["status"] for r in rows], [r["reason"] for r in rows])
    return Statuses(result_or_record.stages["status"].tolist(), result_or_record.stages["reason"].tolist())


def assert_consistent(run: Path):
    "Every stage's recorded product hashes match the files: nothing is half-swapped or tampered."
    pipe = load_pipeline(PIPES)
    for name, st in pipe.stages.items():
        rec = json.loads((run / ".state" / f"{name}.json").read_text())
        assert rec["status"] == "ok"
        for key, rel in st.product.items():
            assert product_hash(run / rel) == rec["products"][key], (name, key)
    assert not (run / ".staging").exists() and not list((run / ".state").glob("*.commit"))


BAR = re.compile(r"pipeline: +\d+%\|[^|]*\| \d/9 \[[^\]]*\]")


def test_clean_run_console_is_the_bar_the_table_and_the_summary(smoke_run):
    runs, res = smoke_run
    # stderr: nothing but tqdm's redraws of one bar (no kernel warnings, no KeyboardInterrupt notices)
    frames = [f for f in re.split(r"[\r\n]", res.stderr) if f.strip()]
    assert frames and all(BAR.fullmatch(f.strip()) for f in frames), [f for f in frames if not BAR.fullmatch(f.strip())][:5]
    assert "9/9" in frames[-1]
    # stdout: the stage table, the total, the headline metrics and where the outputs are
    lines = res.stdout.rstrip("\n").split("\n")
    assert re.fullmatch(r"\s*stage\s+status\s+seconds\s+reason", lines[0]), lines[0]
    for line, stage in zip(lines[1:10], STAGES):
        assert re.fullmatch(rf"\s*{stage}\s+ran\s+\d+\.\d+ no earlier successful run", line), line
    assert re.fullmatch(r"total: \d+\.\d s", lines[10]), lines[10]
    assert re.fullmatch(r"test PR-AUC 0\.\d{4} \(lift over zero rule [+-]0\.\d{4}\), ROC-AUC 0\.\d{4}, log loss 0\.\d{4}", lines[11]), lines[11]
    assert lines[12:] == [f"metrics: {runs / 'smoke' / 'metrics.json'}", f"report: {runs / 'smoke' / 'report.html'}"]
    logs = {p.name: p.read_text() for p in (runs / "smoke/notebooks").glob("*.kernel.log")}
    assert sorted(logs) == sorted(f"{s}.kernel.log" for s in STAGES)  # what the kernels say goes to their logs


def test_smoke_run_produces_everything(smoke_run):
    runs, _ = smoke_run
    run = runs / "smoke"
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "ok" and record["failed_stage"] is None and statuses(record) == ["ran"] * 9
    assert [r["stage"] for r in record["stages"]] == STAGES
    assert {r["reason"] for r in record["stages"]} == {"no earlier successful run"}
    for stage in load_pipeline(PIPES).stages.values():
        for rel in stage.product.values():
            assert (run / rel).exists(), rel
        assert (run / "notebooks" / f"{stage.name}.ipynb").exists()
    assert_consistent(run)
    assert not (run / "failed").exists()
    # register: the first run beside an empty store makes its model champion; deploy serves the champion
    reg = json.loads((run / "register/registration.json").read_text())
    assert reg["promotion"]["promoted"] and reg["champion"] == reg["version"] == 1
    dep = json.loads((run / "deploy/deployment.json").read_text())
    assert dep["version"] == 1 and dep["batch"]["rows"] == dep["batch"]["stored"] > 0
    assert len(pd.read_parquet(run / "deploy/predictions")) == dep["batch"]["rows"]
    svc = dep["service"]
    assert svc["max_abs_diff"] <= 1e-9 and svc["flights_checked"] == 200 and svc["kept_for_later_stages"]
    assert svc["served_as"] == "onnx" or svc["not_onnx_because"]  # the ONNX export is served when it equals the model
    # the service outlived the deploy stage; the run stopped it at its end and says so
    assert record["services"] == [{"name": "prediction", "url": svc["url"], "pid": svc["pid"], "stage": "deploy",
                                   "stopped": "stopped"}]
    assert not psutil.pid_exists(svc["pid"]) or psutil.Process(svc["pid"]).status() == psutil.STATUS_ZOMBIE
    # monitor: the flights after the split replayed through that service, labels joined as they land, alerts, dashboard
    mon = json.loads((run / "monitor/monitor.json").read_text())
    assert mon["predictions"] == mon["flights"] > 0 and mon["error_rate"] == 0.0 and mon["labels"] < mon["flights"]
    assert mon["dashboard"]["errors"] == [] and mon["dashboard"]["blocked"] == []
    assert 0 < mon["alerts"]["sent"] <= mon["alerts"]["fired"]
    windows = pd.read_parquet(run / "monitor/windows.parquet")
    assert len(windows) == mon["windows"] and windows["coverage"].between(0, 1).all() and windows["accuracy"].between(0, 1).all()
    preds = pd.read_parquet(run / "monitor/predictions.parquet").set_index("prediction_id")["score"]
    batch_scores = pd.read_parquet(run / "deploy/predictions").set_index("flight_id")["score"]
    both = preds.index.intersection(batch_scores.index)
    assert len(both) > 0 and (preds[both] - batch_scores[both]).abs().max() <= 1e-9  # the service answered the batch scores
    # continual: two policies over the test days; the first daily retrain trained, compared, shadowed, canaried, decided
    cont = json.loads((run / "continual/continual.json").read_text())
    pol = pd.read_parquet(run / "continual/policies.parquet").set_index("policy")
    assert list(pol.index) == ["never", "daily"] and pol.loc["never", "retrains"] == 0 < pol.loc["daily", "retrains"]
    assert pol.loc["daily", "retrains"] == len(cont["retrain_days"]) and pol.loc["daily", "cpu_seconds"] > 0
    rel = pd.read_parquet(run / "continual/releases.parquet")
    assert len(rel) == cont["released"] == 1 and rel["version"].iloc[0] > reg["version"]  # registered after the register stage's
    assert rel["canary"].iloc[0] in {"promoted", "rolled_back", "not run (lost offline)"}
    assert cont["champion_after"] == (rel["version"].iloc[0] if rel["promoted"].iloc[0] else reg["champion"])
    events = [json.loads(line)["event"] for line in (runs / "registry/continual/flights-late.history.jsonl").read_text().splitlines()]
    assert events[0] == "challenger" and events[-1] in {"promote", "archive"}
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["run"]["status"] == "ok" and set(metrics) == {"run", "ingest", "features", "train", "evaluate", "register", "deploy", "monitor", "continual"}
    ev = metrics["evaluate"]
    chosen = metrics["train"]["model"]  # the family the HPO search chose
    assert chosen in ("hgb", "logreg") and ev["model"] == chosen
    # the model must rank better than every baseline; on three weeks of January the test month is later than
    # the training weeks (late rate 23% vs 18%), so log loss is only required to beat the random baseline
    for base in ["zero_rule", "random", "route_rate"]:
        assert ev["models"][chosen]["pr_auc"] > ev["models"][base]["pr_auc"] + 0.05
        assert ev["models"][chosen]["roc_auc"] > ev["models"][base]["roc_auc"] + 0.05
    assert ev["models"][chosen]["log_loss"] < ev["models"]["random"]["log_loss"]
    # the heuristic ranks better than the constant and random baselines, so it is the one to beat
    assert ev["best_baseline"] == "route_rate" and ev["beats_best_baseline"] is True
    leak = json.loads((run / "train/leakage_report.json").read_text())
    assert leak["leaky"] is False and "duplicates" in leak["checks_run"] and "unavailable_timestamp" in leak["checks_run"] and "group_leakage" in leak["checks_run"]
    assert ev["models"]["zero_rule"]["roc_auc"] == pytest.approx(0.5)
    assert metrics["train"]["train_rows"] > metrics["train"]["test_rows"] > 1000
    # the models are a skops file (a zip), not a pickle, and load back
    assert (run / "train/models.skops").read_bytes()[:4] == b"PK\x03\x04"
    assert not (run / "train/models.joblib").exists()
    assert sorted(load_models(run / "train/models.skops")) == sorted([chosen, "random", "route_rate", "zero_rule"])


@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated")  # inside MLflow 3.17
def test_smoke_train_stage_logs_every_trial_and_the_chosen_model_to_mlflow(smoke_run, tmp_path):
    from mlsys.modeling.tracking import Tracker, load_model, run_table
    from mlsys.modeling.versioning import data_versions, dataset_version
    runs, _ = smoke_run
    run = runs / "smoke"
    sel = json.loads((run / "train/selection.json").read_text())
    n_trials = load_pipeline(PIPES).resolve("smoke")["train"]["n_trials"]
    assert n_trials == 6 and sel["n_trials"] == len(sel["trials"]) == n_trials  # the profile sets the budget
    assert sel["trials"][0]["model"] == "hgb" and sel["trials"][1]["model"] == "logreg"  # today's model, the other family
    assert sel["valid_score"] == max(t["value"] for t in sel["trials"]) and sel["model"] == json.loads((run / "train/split.json").read_text())["model"]
    # the validation weeks are the end of the training period, before the test period
    assert sel["split"]["valid_to"] < "2013-01-15" and sel["split"]["train_rows"] + sel["split"]["valid_rows"] == json.loads((run / "metrics.json").read_text())["train"]["train_rows"]
    # the store is in the run folder (read from a copy: opening SQLite must not touch the run's files)
    assert sel["tracking"]["path"] == "train/mlruns" and (run / "train/mlruns/mlflow.db").is_file()
    shutil.copytree(run / "train/mlruns", tmp_path / "mlruns")
    tracker = Tracker(tmp_path / "mlruns", experiment="flights-train")
    table = run_table(tracker).set_index("run_id")
    parent, chosen = sel["tracking"]["parent_run_id"], sel["tracking"]["chosen_run_id"]
    trial_ids = [t["mlflow_run_id"] for t in sel["trials"]]
    assert sorted(table.index) == sorted(trial_ids + [parent, chosen]) and set(table["status"]) == {"FINISHED"}
    for t in sel["trials"]:
        r = tracker.get_run(t["mlflow_run_id"])
        assert r.data.tags["mlflow.parentRunId"] == parent and r.data.params["model"] == t["model"]
        assert r.data.metrics["valid_average_precision"] == pytest.approx(t["value"], abs=1e-12)
        assert {"valid_roc_auc", "valid_log_loss", "valid_brier", "speed/fit_seconds"} <= set(r.data.metrics)
    record = json.loads((run / "run.json").read_text())
    c = tracker.get_run(chosen)
    assert c.data.tags["mlflow.parentRunId"] == parent and c.data.params["model"] == sel["model"]
    assert c.data.tags["mlflow.source.git.commit"] == record["environment"]["git"]["commit"]
    # the data versions the runs read are the features this run wrote
    digest = dataset_version(run / "features", name="features", include=["features.parquet"]).digest
    assert sel["data"]["features"]["digest"] == digest
    for rid in (parent, chosen):
        assert data_versions(tracker, rid)["features"].digest == digest
    # the chosen model logged to MLflow is the one in models.skops: same predictions on the test period
    feats = pd.read_parquet(run / "features/features.parquet")
    _, test = time_split(feats, "2013-01-15")
    logged, saved = load_model(tracker, chosen), load_models(run / "train/models.skops")[sel["model"]]
    np.testing.assert_array_equal(logged.predict_proba(test[FEATURES]), saved.predict_proba(test[FEATURES]))


def test_non_positive_trial_budget_fails_the_train_stage_and_names_it(work):
    run = work / "smoke"
    before = snapshot(run, ["ingest", "features", "train"])
    with pytest.raises(PipelineError) as e:  # negative, float and bool budgets: tests/test_pipeline_inputs.py
        run_pipeline("smoke", {"n_trials": 0}, pipelines=PIPES, runs_dir=work, progress=False)
    assert e.value.stage == "train" and "ConfigError: n_trials (the HPO trial budget) must be a positive integer, got 0" in str(e.value)
    assert snapshot(run, ["ingest", "features", "train"]) == before  # refused before any trial ran or was logged
    with pytest.raises(ConfigError, match="parameter 'n_trials' of stage 'train' expects int, got '2.5'"):
        run_pipeline("smoke", {"n_trials": "2.5"}, pipelines=PIPES, runs_dir=work, progress=False)


def test_failed_must_pass_behavioural_test_stops_the_run_at_evaluate_with_its_evidence(work):
    run = work / "smoke"
    planted = {"evaluate.invariant_to": '["tailnum", "sched_hour"]'}  # the model reads sched_hour: a must-pass test that fails
    with pytest.raises(PipelineError) as e:
        run_pipeline("smoke", planted, pipelines=PIPES, runs_dir=work, progress=False)
    assert e.value.stage == "evaluate" and "SuiteFailure" in str(e.value) and "invariant to sched_hour" in str(e.value)
    record = json.loads((run / "run.json").read_text())
    assert (record["status"], record["failed_stage"]) == ("failed", "evaluate")
    assert statuses(record)[3:] == ["failed"] + ["not run"] * 5
    kept = json.loads((run / "failed/evaluate/evaluate/suite.json").read_text())  # the failed attempt's evidence
    assert kept["passed"] is False and [r["name"] for r in kept["results"] if r["status"] == "FAIL"] == ["invariant to sched_hour"]
    assert kept["results"][0]["status"] == "pass"  # tailnum still changes nothing
    page = (run / "report.html").read_text()
    assert "FAILED at stage evaluate" in page and "Why stage evaluate failed" in page
    assert "FAIL: invariant to sched_hour" in page and "sched_hour (perturbed)" in page  # the failing examples, in the report
    # the same finding with enforcement off: the run completes and its report says what failed
    run_pipeline("smoke", planted | {"evaluate.enforce_suite": "false"}, pipelines=PIPES, runs_dir=work, progress=False)
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "ok" and statuses(record)[3:] == ["ran"] * 6
    page = (run / "report.html").read_text()
    assert "FAILED 1 must-pass test" in page and "invariant to sched_hour" in page
    assert json.loads((run / "metrics.json").read_text())["evaluate"]["suite_passed"] is False


def test_smoke_report_says_what_ran_and_what_it_means(smoke_run):
    runs, _ = smoke_run
    run = runs / "smoke"
    page = (run / "report.html").read_text()
    record = json.loads((run / "run.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    checks = json.loads((run / "evaluate/checks.json").read_text())
    assert "<h1>mlsys: will this NYC flight arrive late?</h1>" in page and "succeeded" in page
    # every stage, with the times a person reads
    for row in record["stages"]:
        hhmmss = datetime.fromisoformat(row["started"]).astimezone().strftime("%H:%M:%S")
        assert f'<td class="txt">{row["stage"]}</td><td class="txt">ran</td><td class="txt">{hhmmss}</td>' in page, row["stage"]
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", page.split('<h2 id="history">')[0])
    # the sections, the metrics table once, and readings computed from the run's own numbers
    for sid in ["summary", "metrics", "baselines", "selection", "tradeoffs", "calibration", "threshold", "importance", "slices", "shift",
                "data", "run", "history", "card", "fairness", "checklist"]:
        assert f'<h2 id="{sid}">' in page, sid
    # the model card: its own self-contained page beside the report, linked from it, and its fairness section and checklist
    card_page = (run / "report/model_card.html").read_text()
    assert (run / "report/model_card.md").read_text().startswith("# Model card: flights-late v")
    assert not re.search(r'(src|href)="(https?:)?//', card_page)
    for rel in set(re.findall(r"not available: ([\w/.]+)", card_page)):  # a gap in the card is a product this run lacks
        assert not (run / rel).exists(), rel
    card_part = page.split('<h2 id="card">')[1].split("<h2 ")[0]
    assert 'href="report/model_card.html"' in card_part and "weakest slice is" in card_part
    fair_part = page.split('<h2 id="fairness">')[1].split("<h2 ")[0]
    assert "service-quality groups" in fair_part and "By origin:" in fair_part and "By carrier:" in fair_part and "Largest gap:" in fair_part
    check_part = page.split('<h2 id="checklist">')[1].split("<h2 ")[0]
    assert re.search(r"\d+ done, \d+ attention", check_part) and "Does the model hold up on every evaluation slice?" in check_part
    # how the model was chosen: the MLflow store, the runs, every trial, the learning curves and the trade-off plot
    sel = json.loads((run / "train/selection.json").read_text())
    chosen_part = page.split('<h2 id="selection">')[1].split("<h2 ")[0]
    assert "train/mlruns" in chosen_part and sel["tracking"]["parent_run_id"] in chosen_part and sel["tracking"]["chosen_run_id"] in chosen_part
    assert all(t["mlflow_run_id"] in chosen_part for t in sel["trials"]) and f"{len(sel['trials'])} HPO trials chose {sel['model']}" in chosen_part
    # every run id links to its artifact folder, which is in the run folder; the chosen run's holds the model
    for rid in [t["mlflow_run_id"] for t in sel["trials"]] + [sel["tracking"]["chosen_run_id"]]:
        [href] = re.findall(rf'<a href="([^"]+)"><code>{rid}</code></a>', chosen_part)
        assert href.startswith("train/mlruns/") and (run / href).is_dir(), href
    assert (run / href / "model").is_dir()
    curves_part = page.split('<h2 id="tradeoffs">')[1].split("<h2 ")[0]
    assert '<img alt="learning curves"' in curves_part and '<img alt="score against latency and size"' in curves_part
    assert "Pareto front" in curves_part
    base_part = page.split('<h2 id="baselines">')[1].split("<h2 ")[0]
    assert "route-late-rate heuristic" in base_part and f"{sel['model']} beats every baseline on PR-AUC" in base_part
    assert page.count("<th>Brier</th>") == 1
    tr, te = metrics["train"]["train_late_rate"], metrics["train"]["test_late_rate"]
    assert f"The late rate moved from {tr:.1%} in training to {te:.1%} in the test period" in page  # 18.3% -> 23.3%
    ll = {r["metric"]: r for r in checks["comparison"] if r["baseline"] == "zero_rule"}["log_loss"]
    assert f"log loss ({ll['model']:.3f} against {ll['baseline_value']:.3f}, {ll['diff']:+.3f}" in page
    assert "By carrier" in page and "By origin" in page
    for r in checks["slices"]["origin"]:
        assert f'<td class="txt">{r["slice"]}</td><td class="num">{r["rows"]:,}</td>' in page
    assert "Assumed costs: a missed late flight 4, a false alarm 1" in page
    # run context: parameters and who set them, code, versions, the ingest products' hashes
    assert '<td class="txt">split_date</td><td class="wrap">2013-01-15</td><td class="txt">profile smoke</td>' in page
    assert '<td class="txt">cost_fn</td><td class="wrap">4.0</td><td class="txt">default</td>' in page
    state = json.loads((run / ".state/ingest.json").read_text())
    for key in ["flights", "weather", "planes", "warehouse"]:
        assert state["products"][key][:16] in page
    commit = record["environment"]["git"]["commit"]
    if subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True).returncode == 0:
        # the commit the run recorded is HEAD, or an ancestor of it when someone committed since
        assert subprocess.run(["git", "-C", str(ROOT), "merge-base", "--is-ancestor", commit, "HEAD"]).returncode == 0
        assert commit[:12] in page and isinstance(record["environment"]["git"]["dirty"], bool)
    assert f"<td class=\"txt\">scikit-learn</td><td class=\"wrap\">{record['environment']['versions']['scikit-learn']}</td>" in page
    # self-contained, and every table in a box that scrolls on a phone
    assert not re.search(r'(src|href)="(https?:)?//', page) and "@import" not in page
    assert page.count("<table>") == page.count('<div class="scroll"><table>')


def test_rerun_skips_unchanged_and_param_change_reruns_what_it_touches(work):
    again = run_pipeline("smoke", pipelines=PIPES, runs_dir=work, progress=False)
    assert statuses(again) == ["skipped"] * 9 and set(again.stages["reason"]) == {"unchanged"}
    changed = run_pipeline("smoke", {"title": "Late flights"}, pipelines=PIPES, runs_dir=work, progress=False)
    assert statuses(changed) == ["skipped"] * 8 + ["ran"]
    assert changed.stages["reason"].iloc[-1] == "parameters changed: title 'mlsys: will this NYC flight arrive late?' -> 'Late flights'"
    page = (work / "smoke/report.html").read_text()
    assert "<h1>Late flights</h1>" in page
    assert_consistent(work / "smoke")
    # three runs of this folder in the history, newest first; the two earlier ones differ in the title
    history = [json.loads(line) for line in (work / "smoke/history.jsonl").read_text().splitlines()]
    assert [h["status"] for h in history] == ["ok"] * 3
    runs_table = page.split('<h2 id="history">')[1]
    assert runs_table.count("<tr>") == 4  # the heading and three runs
    assert runs_table.count("title=&#x27;mlsys: will this NYC flight arrive late?&#x27;") == 2 and "this run" in runs_table
    pr = history[0]["metrics"]["evaluate.pr_auc"]
    assert runs_table.count(f'<td class="num">{pr:.3f}</td>') == 3  # same models, same PR-AUC
    # skipped stages say when their outputs were made
    made = json.loads((work / "smoke/.state/train.json").read_text())["finished"]
    assert datetime.fromisoformat(made).astimezone().strftime("%Y-%m-%d %H:%M") in page
    # the monitor stage alone: the deploy stage is kept, so there is no service left running; monitor starts it from the
    # deploy stage's folder, and the run stops it at its end
    again = run_pipeline("smoke", {"title": "Late flights"}, from_stage="monitor", pipelines=PIPES, runs_dir=work, progress=False)
    assert statuses(again) == ["kept"] * 6 + ["ran"] * 3  # continual follows monitor, and the report reads continual
    record = json.loads((work / "smoke/run.json").read_text())
    assert [(s["stage"], s["stopped"]) for s in record["services"]] == [("monitor", "stopped")]
    assert_consistent(work / "smoke")


def planted_pipelines(tmp_path: Path) -> Path:
    "A copy of the pipeline whose features stage overwrites part of its products, then raises."
    pipes = tmp_path / "planted"
    shutil.copytree(PIPES, pipes)
    nb = nbformat.read(pipes / "features.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(
        'for f in [*(run / product["store"]).rglob("*"), run / product["features"]]:\n'
        '    if f.is_file(): f.write_bytes(b"partial")\n'
        '(run / product["store"] / "planted.parquet").write_bytes(b"partial")\n'
        'raise RuntimeError("planted failure after a partial write")'))
    nbformat.write(nb, pipes / "features.ipynb")
    return pipes


def test_failed_features_stage_keeps_previous_products_and_says_so(work, tmp_path):
    run = work / "smoke"
    before = snapshot(run)
    with pytest.raises(PipelineError, match="planted failure after a partial write") as e:
        run_pipeline("smoke", {"lead": "30min"}, pipelines=planted_pipelines(tmp_path), runs_dir=work, progress=False)
    assert e.value.stage == "features"
    assert snapshot(run) == before  # the feature store, the feature table and every later product, byte for byte
    record = json.loads((run / "run.json").read_text())
    assert (record["status"], record["failed_stage"]) == ("failed", "features")
    assert "planted failure" in record["error"]
    assert statuses(record) == ["skipped", "failed"] + ["not run"] * 7
    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["run"]["status"], metrics["run"]["failed_stage"]) == ("failed", "features")
    assert set(metrics) == {"run", "ingest"}  # no stale metrics from the last success are shown as this run's
    # the failed attempt is kept aside for a look, never mixed with the products
    assert (run / "failed/features/notebooks/features.ipynb").exists()
    assert (run / "failed/features/features/feature_store/planted.parquet").read_bytes() == b"partial"
    assert not (run / ".staging").exists()
    # the report says so, links the failed attempt's notebook, and keeps the last complete results folded away
    page = (run / "report.html").read_text()
    banner = page.split('<div class="banner failed">')[1].split("</div>")[0]
    assert "FAILED at stage features" in banner and "planted failure after a partial write" in banner
    assert 'href="failed/features/notebooks/features.ipynb"' in banner and "RuntimeError: planted failure" in banner
    assert "<details><summary>Results of the last run that completed stage report" in page
    # the products are intact and still trusted: the real pipeline with the old parameters has nothing to do
    resumed = run_pipeline("smoke", pipelines=PIPES, runs_dir=work, progress=False)
    assert statuses(resumed) == ["skipped"] * 9
    assert not (run / "failed").exists()  # the failed attempt is dropped once the stage is current again
    assert_consistent(run)
    assert "succeeded" in (run / "report.html").read_text() and "<details><summary>Results" not in (run / "report.html").read_text()


def test_bad_parameter_fails_at_features_and_names_it(work):
    run = work / "smoke"
    before = snapshot(run, ["ingest", "features"])
    with pytest.raises(PipelineError) as e:
        run_pipeline("smoke", {"lead": "not-a-duration"}, pipelines=PIPES, runs_dir=work, progress=False)
    assert e.value.stage == "features" and "stage 'features'" in str(e.value)
    assert "DataError: lead='not-a-duration' is not a duration" in str(e.value)
    assert snapshot(run, ["ingest", "features"]) == before
    assert json.loads((run / "run.json").read_text())["failed_stage"] == "features"


def _kernels_of(pid: int) -> list:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def test_killed_run_keeps_products_and_next_run_resumes(work):
    run = work / "smoke"
    before = snapshot(run)
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.Popen([str(BIN / "mlsys"), "run", "--profile", "smoke", "--pipelines", str(PIPES), "--runs-dir", str(work),
                             "--no-progress", "--param", "lead=30min"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 300
    while not list((run / ".staging").glob("features-*")):
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "the features stage never started"
        time.sleep(0.05)
    time.sleep(random.Random(0).uniform(0, 0.5))  # somewhere in the stage: its kernel takes seconds to start
    kernels = _kernels_of(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    proc.stderr.close()
    psutil.wait_procs(kernels, timeout=60)  # an orphaned kernel notices its parent died and exits
    for k in kernels:
        if k.is_running():
            k.kill()
    assert snapshot(run) == before
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "running" and dict(zip([r["stage"] for r in record["stages"]], statuses(record)))["features"] == "running"
    assert json.loads((run / "metrics.json").read_text())["run"]["status"] == "running"  # it never finished: it does not claim success
    resumed = run_pipeline("smoke", {"lead": "30min"}, pipelines=PIPES, runs_dir=work, progress=False)
    assert statuses(resumed) == ["skipped"] + ["ran"] * 8
    reasons = dict(zip(resumed.stages["stage"], resumed.stages["reason"]))
    assert reasons["features"] == "parameters changed: lead '0min' -> '30min'"
    assert "upstream products features.features" in reasons["train"]
    assert_consistent(run)
    state = json.loads((run / ".state/features.json").read_text())
    assert state["fingerprint"]["params"]["lead"] == "30min"


def test_garbage_product_makes_its_producer_rerun(work, capsys):
    run = work / "smoke"
    (run / "train/models.skops").write_bytes(b"garbage")
    (run / "evaluate/curves.png").unlink()
    code = main(["run", "--profile", "smoke", "--pipelines", str(PIPES), "--runs-dir", str(work), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "product 'models' changed since it was written" in out  # the console says why it reran
    record = json.loads((run / "run.json").read_text())
    assert statuses(record) == ["skipped", "skipped"] + ["ran"] * 7
    reasons = {r["stage"]: r["reason"] for r in record["stages"]}
    assert reasons["train"] == "product 'models' changed since it was written"
    assert "product 'curves' is missing" in reasons["evaluate"]
    assert sorted(load_models(run / "train/models.skops")) == sorted([json.loads((run / "train/split.json").read_text())["model"],
                                                                       "random", "route_rate", "zero_rule"])
    assert_consistent(run)


def test_from_stage_refuses_a_kept_product_that_changed(work):
    run = work / "smoke"
    (run / "features/features.parquet").write_bytes(b"garbage")
    train_before = snapshot(run, ["train"])
    with pytest.raises(PipelineError, match="upstream product 'features' of stage 'features' .* is not what 'features' last wrote") as e:
        run_pipeline("smoke", from_stage="train", pipelines=PIPES, runs_dir=work, progress=False)
    assert e.value.stage == "train"
    assert snapshot(run, ["train"]) == train_before


def test_missing_upstream_product(work):
    (work / "smoke/features/features.parquet").unlink()
    with pytest.raises(PipelineError, match="missing upstream product 'features' of stage 'features'") as e:
        run_pipeline("smoke", from_stage="train", pipelines=PIPES, runs_dir=work, progress=False)
    assert e.value.stage == "train"
    assert (work / "smoke/ingest/flights.parquet").exists()


@pytest.mark.parametrize("argv,needle", [
    (["--profile", "huge"], "unknown profile 'huge'"),
    (["--profile", "smoke", "--param", "spilt_date=2013-01-10"], "unknown parameter 'spilt_date'"),
    (["--profile", "smoke", "--param", "seed=1.5"], "parameter 'seed' of stage 'train' expects int, got '1.5'"),
    (["--profile", "smoke", "--param", "train.start=2013-01-02"], "unknown parameter 'train.start'"),
    (["--profile", "smoke", "--from", "publish"], "unknown stage 'publish'"),
    (["--profile", "smoke", "--param", "run_dir=/tmp/x"], "set by the runner"),
    (["--profile", "smoke", "--param", "product={}"], "set by the runner"),
    (["--profile", "smoke", "--param", "seed=1", "--param", "seed=2"], "--param 'seed' is given twice"),
    (["--profile", "smoke", "--param", "=3"], "must look like name=value"),
    (["--profile", "smoke", "--run-id", "../escape"], "must be a plain folder name"),
    (["--profile", "smoke", "--run-id", ""], "must be a plain folder name"),
    (["--profile", "smoke", "--param", "seed=nan"], "expects int, got 'nan'"),
    (["--profile", "smoke", "--pipelines", "/nonexistent/pipes"], "pipeline folder not found: /nonexistent/pipes"),
    (["--profile", "smoke", "--bogus"], "unrecognized arguments: --bogus"),
])
def test_cli_bad_input_exit_2(argv, needle, tmp_path, capsys):
    args = ["run", "--pipelines", str(PIPES), "--runs-dir", str(tmp_path), "--no-progress", *argv]
    code = main(args)
    assert code == 2
    assert needle in capsys.readouterr().err
    assert not any(tmp_path.rglob("*.parquet"))  # nothing ran


def test_cli_usage_errors_exit_2(tmp_path, capsys):
    assert main(["deploy"]) == 2 and "invalid choice: 'deploy'" in capsys.readouterr().err
    assert main("run") == 2 and "argv must be a list of strings" in capsys.readouterr().err
    assert main(["run", None]) == 2 and "argv must be a list of strings" in capsys.readouterr().err
    (tmp_path / "a-file").write_text("x")
    code = main(["run", "--pipelines", str(PIPES), "--runs-dir", str(tmp_path / "a-file"), "--profile", "smoke", "--no-progress"])
    assert code == 2 and "cannot create the run folder" in capsys.readouterr().err
    assert main(["stages", "--pipelines", str(tmp_path)]) == 2 and "no stage notebooks in" in capsys.readouterr().err
    assert main(["--version"]) == 0


def test_cli_stage_failure_exit_1(work, capsys):
    code = main(["run", "--pipelines", str(PIPES), "--runs-dir", str(work), "--profile", "smoke", "--no-progress",
                 "--param", "split_date=2014-06-01"])
    assert code == 1
    err = capsys.readouterr().err
    assert "stage 'train'" in err and "DataError" in err and "split_date=2014-06-01" in err
    # the stage's traceback in full, without terminal colours: the failing cell line and the frame that raised
    assert "Traceback (most recent call last)" in err and "train, test = time_split(feats, split_date)" in err
    assert "mlsys/pipeline.py" in err and "\x1b[" not in err
    assert err.rstrip().splitlines()[-2:] == [f"run record: {work / 'smoke' / 'run.json'}", f"report: {work / 'smoke' / 'report.html'}"]
    assert "FAILED at stage train" in (work / "smoke/report.html").read_text()
    record = json.loads((work / "smoke/run.json").read_text())
    assert (record["status"], record["failed_stage"]) == ("failed", "train")
    assert statuses(record) == ["skipped", "skipped", "failed"] + ["not run"] * 6


def test_console_script_help():
    exe = shutil.which("mlsys", path=str(BIN))
    assert exe, "the mlsys console script is not installed next to this interpreter"
    res = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "run" in res.stdout and "stages" in res.stdout


def test_papermill_help_notebook_documents_parameters():
    res = subprocess.run([str(BIN / "papermill"), "--help-notebook", str(PIPES / "train.ipynb")],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0
    assert "split_date: str" in res.stdout and "first local day of the test period" in res.stdout


def test_every_stage_declares_run_dir_upstream_product_and_help():
    pipe = load_pipeline(PIPES)
    for st in pipe.stages.values():
        assert "run_dir" in st.params
        assert all(p.help for p in st.params.values()), st.name
    assert pipe.stages["train"].product["models"] == "train/models.skops"


def test_profiles_resolve_and_reject_unknown_keys(tmp_path):
    pipe = load_pipeline(PIPES)
    assert pipe.resolve("default")["train"]["split_date"] == "2013-10-01"
    bad = tmp_path / "pipes"
    shutil.copytree(PIPES, bad)
    (bad / "pipeline.toml").write_text('[profiles.smoke]\nsplit_dat = "2013-01-10"\n')
    with pytest.raises(ConfigError, match="unknown parameter 'split_dat'"):
        load_pipeline(bad)
    (bad / "pipeline.toml").write_text('[profile.smoke]\nsplit_date = "2013-01-10"\n')  # a typo in the table name
    with pytest.raises(ConfigError, match=r"unknown top-level keys \['profile'\]"):
        load_pipeline(bad)


def test_papermill_runs_a_stage_alone(work, tmp_path):
    "`papermill nbs/pipelines/<stage>.ipynb out.ipynb -p run_dir ...` runs one stage outside mlsys run, writing in place."
    run = work / "smoke"
    (run / "evaluate/predictions.parquet").unlink()
    res = subprocess.run([str(BIN / "papermill"), str(PIPES / "evaluate.ipynb"), str(tmp_path / "out.ipynb"),
                          "-p", "run_dir", str(run), "--no-progress-bar"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert (run / "evaluate/predictions.parquet").exists() and (tmp_path / "out.ipynb").exists()
