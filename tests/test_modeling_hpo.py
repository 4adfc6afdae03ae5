"""mlsys.modeling.hpo: bad input gets named errors, pruning stops a planted bad region, several processes share
one study without losing or duplicating trials, and neither a raising trial nor a SIGKILLed worker corrupts it."""
import os
import pickle
import random
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

optuna = pytest.importorskip("optuna")

from mlsys.core import ConfigError, DataError, IntegrityError, MlsysError  # noqa: E402
from mlsys.modeling.hpo import (Choice, EstimatorObjective, Float, Int, StudyStorageError, WorkerError,  # noqa: E402
                                check_space, make_pruner, make_sampler, open_storage, param_importance,
                                recover_stale_trials, time_validation_split, trials_frame, tune)

ROOT = Path(__file__).resolve().parents[1]
SPACE = {"x": Float(0.0, 1.0), "c": Choice(["a", "b"])}


def bowl(params, trial):
    return (params["x"] - 0.3) ** 2 + (0.0 if params["c"] == "a" else 0.1)


def xbowl(params, trial):
    return (params["x"] - 0.3) ** 2


def load(path, name):
    return optuna.load_study(study_name=name, storage=open_storage(path))


@pytest.fixture(scope="module")
def tabular():
    "A small classification problem with timestamps (rows in time order) for estimator objectives."
    rng = np.random.default_rng(0)
    n = 600
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.normal(size=n)})
    y = (X["a"] + 0.5 * X["b"] + rng.normal(scale=0.8, size=n) > 0).to_numpy()
    times = pd.Series(pd.date_range("2013-01-01", periods=n, freq="15min", tz="UTC"))
    return X, y, times


def hgb(**kw):
    from sklearn.ensemble import HistGradientBoostingClassifier
    return HistGradientBoostingClassifier(max_iter=20, early_stopping=False, random_state=0, **kw)


# ------------------------------------------------------------------ bad input

def _bad_calls(tmp_path, tabular):
    X, y, times = tabular
    garbage = tmp_path / "garbage.journal"
    garbage.write_bytes(b"this is not a journal\nnor is this\n")
    return [
        ("empty space", lambda: tune(bowl, {}, 3, direction="minimize"), ConfigError, "search space is empty"),
        ("space not a dict", lambda: tune(bowl, [("x", Float(0, 1))], 3, direction="minimize"), ConfigError, "must be a dict"),
        ("dimension not a Float/Int/Choice", lambda: check_space({"x": (0, 1)}), ConfigError, "space['x'] must be a Float"),
        ("empty name", lambda: check_space({"": Float(0, 1)}), ConfigError, "non-empty strings"),
        ("budget 0", lambda: tune(bowl, SPACE, 0, direction="minimize"), ConfigError, "budget must be an integer >= 1"),
        ("budget negative", lambda: tune(bowl, SPACE, -3, direction="minimize"), ConfigError, "budget must be an integer >= 1"),
        ("budget float", lambda: tune(bowl, SPACE, 2.5, direction="minimize"), ConfigError, "budget must be an integer"),
        ("budget bool", lambda: tune(bowl, SPACE, True, direction="minimize"), ConfigError, "budget must be an integer"),
        ("budget None", lambda: tune(bowl, SPACE, None, direction="minimize"), ConfigError, "budget must be an integer"),
        ("n_workers 0", lambda: tune(bowl, SPACE, 2, direction="minimize", n_workers=0), ConfigError, "n_workers"),
        ("timeout 0", lambda: tune(bowl, SPACE, 2, direction="minimize", timeout=0), ConfigError, "timeout must be > 0"),
        ("catch not a tuple", lambda: tune(bowl, SPACE, 2, direction="minimize", catch=ValueError), ConfigError, "catch must be a tuple"),
        ("no direction", lambda: tune(bowl, SPACE, 2), ConfigError, "must say which"),
        ("bad direction", lambda: tune(bowl, SPACE, 2, direction="down"), ConfigError, "direction must be"),
        ("unknown sampler", lambda: tune(bowl, SPACE, 2, direction="minimize", sampler="bayes"), ConfigError, "sampler='bayes'"),
        ("unknown pruner", lambda: tune(bowl, SPACE, 2, direction="minimize", pruner="asha"), ConfigError, "pruner='asha'"),
        ("objective not callable", lambda: tune(42, SPACE, 2, direction="minimize"), ConfigError, "objective must be"),
        ("data with a function", lambda: tune(bowl, SPACE, 2, direction="minimize", X=X, y=y), ConfigError, "function objective"),
        ("estimator without data", lambda: tune(hgb(), {"max_iter": Int(5, 10)}, 2), ConfigError, "needs the data"),
        ("unknown hyperparameter", lambda: tune(hgb(), {"learning_rat": Float(0.01, 0.3)}, 2, X=X, y=y, times=times),
         ConfigError, "unknown hyperparameter 'learning_rat'"),
        ("unknown hyperparameter suggests", lambda: tune(hgb(), {"learning_rat": Float(0.01, 0.3)}, 2, X=X, y=y, times=times),
         ConfigError, "did you mean 'learning_rate'"),
        ("objective asks for an undrawn name", lambda: tune(lambda p, t: p["z"], SPACE, 1, direction="minimize"),
         ConfigError, "asked for hyperparameter 'z'"),
        ("objective returns a string", lambda: tune(lambda p, t: "good", SPACE, 1, direction="minimize"), DataError, "must return a number"),
        ("objective returns None", lambda: tune(lambda p, t: None, SPACE, 1, direction="minimize"), DataError, "must return a number"),
        ("objective returns NaN", lambda: tune(lambda p, t: float("nan"), SPACE, 1, direction="minimize"), DataError, "returned nan"),
        ("objective returns inf", lambda: tune(lambda p, t: float("inf"), SPACE, 1, direction="minimize"), DataError, "returned inf"),
        ("unreachable PostgreSQL", lambda: tune(bowl, SPACE, 1, direction="minimize", storage="postgresql://mlsys:secret@127.0.0.1:1/x"),
         StudyStorageError, "cannot be reached"),
        ("password hidden", lambda: open_storage("postgresql://mlsys:secret@127.0.0.1:1/x"), StudyStorageError, "mlsys:***@127.0.0.1:1"),
        ("unknown URL scheme", lambda: open_storage("redis://127.0.0.1:6379"), StudyStorageError, "scheme 'redis'"),
        ("SQLite with workers", lambda: tune(bowl, SPACE, 2, direction="minimize", storage=f"sqlite:///{tmp_path}/s.db", n_workers=2),
         StudyStorageError, "not safe for several worker processes"),
        ("storage object with workers", lambda: tune(bowl, SPACE, 2, direction="minimize", n_workers=2,
                                                     storage=optuna.storages.InMemoryStorage()), StudyStorageError, "cannot be shared"),
        ("storage of a wrong type", lambda: open_storage(42), StudyStorageError, "storage must be"),
        ("journal path is a folder", lambda: open_storage(tmp_path), StudyStorageError, "is a directory"),
        ("journal path empty", lambda: open_storage(""), DataError, "non-empty file path"),
        ("garbage journal", lambda: open_storage(garbage), IntegrityError, "is not an Optuna journal"),
        ("Float high < low", lambda: Float(1.0, 0.0), ConfigError, "below low"),
        ("Float NaN", lambda: Float(float("nan"), 1.0), ConfigError, "finite number"),
        ("Float string", lambda: Float("0", 1.0), ConfigError, "finite number"),
        ("Float log at 0", lambda: Float(0.0, 1.0, log=True), ConfigError, "log scale needs low > 0"),
        ("Int float bound", lambda: Int(0, 2.5), ConfigError, "finite integer"),
        ("Int grid 0", lambda: Int(0, 5, grid=0), ConfigError, "grid must be"),
        ("Choice empty", lambda: Choice([]), ConfigError, "is empty"),
        ("Choice a string", lambda: Choice("abc"), ConfigError, "list or tuple"),
        ("Choice duplicates", lambda: Choice([1, 1]), ConfigError, "duplicates"),
        ("Choice object", lambda: Choice([object()]), ConfigError, "what a study can store"),
        ("Choice NaN", lambda: Choice([float("nan")]), ConfigError, "finite floats"),
        ("active not callable", lambda: Float(0, 1, active="yes"), ConfigError, "active must be"),
        ("grid too large", lambda: make_sampler("grid", {f"x{i}": Float(0, 1, grid=10) for i in range(5)}), ConfigError, "grid has 100000"),
        ("grid conditional", lambda: make_sampler("grid", {"d": Int(1, 2), "w": Int(1, 3, active=lambda p: p["d"] > 1)}),
         ConfigError, "unconditional space"),
        ("fraction without times", lambda: EstimatorObjective(hgb(), X, y), ConfigError, "needs times="),
        ("times and explicit validation", lambda: EstimatorObjective(hgb(), X, y, times=times, validation=(X, y)), ConfigError, "not both"),
        ("validation 1.5", lambda: EstimatorObjective(hgb(), X, y, times=times, validation=1.5), ConfigError, "fraction in (0, 1)"),
        ("validation 0", lambda: EstimatorObjective(hgb(), X, y, times=times, validation=0), ConfigError, "fraction in (0, 1)"),
        ("times with NaT", lambda: EstimatorObjective(hgb(), X, y, times=times.where(times.index != 3)), DataError, "missing values (NaT)"),
        ("times not timestamps", lambda: time_validation_split(pd.Series(["a", "b"])), DataError, "must be timestamps"),
        ("times too short", lambda: EstimatorObjective(hgb(), X, y, times=times[:10]), DataError, "times has 10 values"),
        ("one timestamp", lambda: time_validation_split(pd.Series([pd.Timestamp("2013-01-01")] * 5)), DataError, "leaves 0 training"),
        ("y shorter than X", lambda: EstimatorObjective(hgb(), X, y[:5], times=times), DataError, "X has 600 rows but y has 5"),
        ("unknown scorer", lambda: EstimatorObjective(hgb(), X, y, times=times, scoring="auc_roc"), ConfigError, "scoring='auc_roc'"),
        ("steps without warm start", lambda: EstimatorObjective(_knn(), X, y, times=times, steps=3), ConfigError, "warm_start and max_iter"),
        ("not an estimator", lambda: EstimatorObjective(object(), X, y, times=times), ConfigError, "scikit-learn estimator"),
        ("evolution sample > population", lambda: make_sampler(_evolution(population_size=2, sample_size=3), SPACE),
         ConfigError, "larger than population_size"),
    ]


def _knn():
    from sklearn.neighbors import KNeighborsClassifier
    return KNeighborsClassifier()


def _evolution(**kw):
    from mlsys.modeling.hpo import RegularizedEvolution
    return RegularizedEvolution(**kw)


def test_bad_input_gets_named_errors(tmp_path, tabular):
    failures = []
    for what, call, exc, text in _bad_calls(tmp_path, tabular):
        try:
            call()
        except exc as e:
            if text not in str(e):
                failures.append(f"{what}: message {str(e)!r} lacks {text!r}")
        except Exception as e:  # noqa: BLE001 - any other type is the failure we report
            failures.append(f"{what}: raised {type(e).__name__}: {e}")
        else:
            failures.append(f"{what}: no error")
    assert not failures, "\n".join(failures)


def test_errors_are_mlsys_errors():
    with pytest.raises(MlsysError):
        tune(bowl, {}, 1, direction="minimize")
    assert issubclass(StudyStorageError, ConfigError) and issubclass(WorkerError, MlsysError)


def test_resuming_with_another_direction_is_refused(tmp_path):
    path = tmp_path / "d.journal"
    tune(bowl, SPACE, 2, direction="minimize", storage=path, study_name="d")
    with pytest.raises(ConfigError, match="set to minimize, not maximize"):
        tune(bowl, SPACE, 2, direction="maximize", storage=path, study_name="d")


def test_import_is_light():
    "Importing the module (or mlsys) must not import optuna; the evolution sampler is built on first use."
    code = "import sys, mlsys.modeling.hpo as h; assert 'optuna' not in sys.modules, 'optuna imported'; " \
           "h.RegularizedEvolution; assert 'optuna' in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)


# ------------------------------------------------------------------ search behaviour

def test_grid_visits_every_point_once_and_stops():
    space = {"a": Choice([1, 2, 3]), "b": Float(0.0, 1.0, grid=2)}
    res = tune(lambda p, t: p["a"] + p["b"], space, 20, direction="maximize", sampler="grid")
    pts = sorted(zip(res.trials["a"], res.trials["b"]))
    assert pts == sorted((a, b) for a in (1, 2, 3) for b in (0.0, 1.0))  # 6 points, each once, then the grid stops
    assert res.best_params == {"a": 3, "b": 1.0}


@pytest.mark.parametrize("sampler", ["random", "tpe", "gp", "evolution"])
def test_samplers_find_the_bowl(sampler):
    if sampler == "gp":
        pytest.importorskip("torch")
    res = tune(bowl, SPACE, 16, direction="minimize", sampler=sampler, seed=0)
    assert len(res.trials) == 16 and res.counts == {"COMPLETE": 16}
    assert res.best_value < 0.05 and res.best_params["c"] == "a"


def test_seeded_search_is_reproducible_and_resumption_draws_new_points(tmp_path):
    a = tune(bowl, SPACE, 6, direction="minimize", sampler="random", seed=3).trials
    b = tune(bowl, SPACE, 6, direction="minimize", sampler="random", seed=3).trials
    pd.testing.assert_frame_equal(a.drop(columns=["seconds"]), b.drop(columns=["seconds"]))
    path = tmp_path / "r.journal"
    tune(bowl, SPACE, 4, direction="minimize", sampler="random", seed=3, storage=path, study_name="r")
    res = tune(bowl, SPACE, 4, direction="minimize", sampler="random", seed=3, storage=path, study_name="r")
    assert res.trials["number"].tolist() == list(range(8))
    assert res.trials["x"].is_unique  # the same seed on resumption must not replay the first draws


def test_conditional_dimensions_are_drawn_only_when_active():
    space = {"depth": Int(1, 3), **{f"w{i}": Choice([4, 8], active=lambda p, i=i: p["depth"] > i) for i in range(3)}}
    res = tune(lambda p, t: float(p["depth"] + sum(p[f"w{i}"] for i in range(p["depth"]))), space, 30,
               direction="maximize", sampler="random")
    for t in res.study.trials:
        assert set(t.params) == {"depth", *(f"w{i}" for i in range(t.params["depth"]))}


def test_evolution_children_differ_from_a_population_member_in_one_gene():
    space = {f"g{i}": Choice(list(range(5))) for i in range(4)}
    evo = _evolution(population_size=10, sample_size=3, seed=0)
    res = tune(lambda p, t: float(sum(p.values())), space, 60, direction="maximize", sampler=evo)
    trials = sorted(res.study.trials, key=lambda t: t.number)
    for t in trials[10:]:
        earlier = [u.params for u in trials[:t.number]][-10:]
        diffs = [sum(t.params[k] != p[k] for k in space) for p in earlier]
        assert 1 in diffs, f"trial {t.number} {t.params} is not a one-gene mutation of its population"
    # a uniformly random genome sums to 8 on average (sd of a 20-mean about 0.6); selection must push it up
    assert res.trials["value"].iloc[-20:].mean() > 9.5
    clone = pickle.loads(pickle.dumps(evo))
    assert type(clone).__name__ == "RegularizedEvolution" and clone.population_size == 10


# ------------------------------------------------------------------ pruning

def planted(params, trial):
    "A learning curve per trial: x < 0.3 is a planted bad region whose curve stays low."
    from mlsys.modeling.hpo import report
    bad = params["x"] < 0.3
    for step in range(1, 6):
        value = (0.1 + 0.01 * step) if bad else (0.8 + 0.01 * step + 0.01 * params["x"])
        trial.set_user_attr("last_step", step)
        if step < 5:
            report(trial, value, step)
    return value


@pytest.mark.parametrize("pruner", ["median", "hyperband"])
def test_pruning_stops_a_planted_bad_region(pruner):
    res = tune(planted, {"x": Float(0.0, 1.0)}, 40, direction="maximize", sampler="random", seed=0, pruner=pruner)
    trials = res.study.trials
    bad = [t for t in trials if t.params["x"] < 0.3]
    good = [t for t in trials if t.params["x"] >= 0.3]
    startup = {t.number for t in sorted(trials, key=lambda t: t.number)[:3]}
    bad_late = [t for t in bad if t.number not in startup]
    assert len(bad_late) >= 5
    pruned_bad = [t for t in bad_late if t.state.name == "PRUNED"]
    assert len(pruned_bad) >= 0.8 * len(bad_late), f"{len(pruned_bad)} of {len(bad_late)} bad trials pruned"
    assert all(t.user_attrs["last_step"] <= 3 for t in pruned_bad)  # stopped early, not at the end
    assert sum(t.state.name == "PRUNED" for t in good) / len(good) < sum(t.state.name == "PRUNED" for t in bad) / len(bad)
    assert res.best_params["x"] >= 0.3


def test_estimator_learning_curve_ends_at_the_full_fit(tabular):
    "Warm-started stages must give the same final model as one fit with the whole max_iter."
    X, y, times = tabular
    staged = EstimatorObjective(hgb(), X, y, times=times, scoring="roc_auc", steps=4)({"max_iter": 20, "learning_rate": 0.2})
    whole = EstimatorObjective(hgb(), X, y, times=times, scoring="roc_auc")({"max_iter": 20, "learning_rate": 0.2})
    assert staged == pytest.approx(whole, abs=1e-12)


def test_estimator_tune_refits_the_best_on_all_rows(tabular):
    X, y, times = tabular
    res = tune(hgb(), {"learning_rate": Float(0.01, 0.5, log=True), "max_leaf_nodes": Int(4, 16)}, 4,
               X=X, y=y, times=times, scoring="roc_auc", steps=2, pruner="median")
    assert res.best_estimator.get_params()["max_leaf_nodes"] == res.best_params["max_leaf_nodes"]
    assert res.best_estimator.n_iter_ == 20  # refitted on all rows with the full max_iter, not the last stage
    assert 0.5 < res.best_value <= 1.0


def test_time_validation_split_properties():
    rng = np.random.default_rng(1)
    for _ in range(200):
        n = int(rng.integers(2, 60))
        t = pd.Series(pd.to_datetime(rng.integers(0, 8, size=n), unit="D", utc=True))  # many ties
        frac = float(rng.uniform(0.05, 0.95))
        try:
            tr, va = time_validation_split(t, frac)
        except DataError as e:
            assert "leaves 0" in str(e)  # all rows share the cut's time, or there is only one time
            continue
        assert len(set(tr) & set(va)) == 0 and sorted([*tr, *va]) == list(range(n))
        assert t.iloc[tr].max() < t.iloc[va].min()  # strictly earlier: ties never straddle the cut


# ------------------------------------------------------------------ importance

def test_fanova_finds_the_planted_important_parameter():
    rng_noise = np.random.default_rng(0)
    res = tune(lambda p, t: 10 * p["x"] ** 2 + 0.01 * p["y"] + 0.001 * rng_noise.normal(), {"x": Float(0, 1), "y": Float(0, 1)},
               30, direction="minimize", sampler="random")
    imp = param_importance(res.study)
    assert imp.index[0] == "x" and imp["x"] > 0.8 and imp.sum() == pytest.approx(1.0)


# ------------------------------------------------------------------ concurrency and failure safety

def test_two_workers_share_one_journal_study(tmp_path):
    path = tmp_path / "shared.journal"
    res = tune(bowl, SPACE, 10, direction="minimize", sampler="tpe", storage=path, study_name="s", n_workers=2)
    frame = trials_frame(load(path, "s"))
    assert len(frame) == 10 and sorted(frame["number"]) == list(range(10))  # the sum, no duplicate, none lost
    assert (frame["state"] == "COMPLETE").all()
    assert frame["worker"].nunique() == 2 and sorted(frame["worker"].value_counts()) == [5, 5]
    assert res.trials["number"].tolist() == frame["number"].tolist()


def test_independent_processes_share_one_journal_study(tmp_path):
    "Three separate Python processes (not tune's pool) append to one study at the same time."
    path = tmp_path / "procs.journal"
    tune(bowl, SPACE, 1, direction="minimize", storage=path, study_name="p")  # create it
    script = textwrap.dedent(f"""
        import sys
        from mlsys.modeling.hpo import Choice, Float, tune
        def f(p, t):
            s = 0.0
            for i in range(20000):
                s += i * 1e-9
            return (p["x"] - 0.3) ** 2 + s
        tune(f, {{"x": Float(0.0, 1.0)}}, 8, direction="minimize", sampler="random", seed=int(sys.argv[1]),
             storage={str(path)!r}, study_name="p")
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(k)], cwd=ROOT) for k in range(3)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0]
    frame = trials_frame(load(path, "p"))
    assert len(frame) == 1 + 3 * 8 and sorted(frame["number"]) == list(range(25))
    assert (frame["state"] == "COMPLETE").all() and frame["worker"].nunique() == 4


def test_a_raising_trial_leaves_the_study_intact(tmp_path):
    path = tmp_path / "raise.journal"

    def flaky(p, trial):
        if trial.number == 4:
            raise RuntimeError("planted")
        return bowl(p, trial)

    with pytest.raises(RuntimeError, match="planted"):
        tune(flaky, SPACE, 8, direction="minimize", storage=path, study_name="f", sampler="random")
    before = trials_frame(load(path, "f"))
    assert before["state"].tolist() == ["COMPLETE"] * 4 + ["FAIL"]
    res = tune(flaky, SPACE, 3, direction="minimize", storage=path, study_name="f", sampler="random", catch=(RuntimeError,))
    after = trials_frame(load(path, "f"))
    pd.testing.assert_frame_equal(after.iloc[:5].drop(columns="seconds"), before.drop(columns="seconds"))
    assert res.counts == {"COMPLETE": 7, "FAIL": 1}


def test_a_worker_killed_mid_trial_leaves_the_study_loadable(tmp_path):
    path = tmp_path / "kill.journal"

    def killer(p, trial):
        if trial.number == 5:
            os.kill(os.getpid(), signal.SIGKILL)
        return bowl(p, trial)

    with pytest.raises(WorkerError, match="complete trials are intact"):
        tune(killer, SPACE, 10, direction="minimize", storage=path, study_name="k", sampler="random", n_workers=2)
    frame = trials_frame(load(path, "k"))
    assert frame.loc[frame["number"] == 5, "state"].item() == "FAIL"
    assert not (frame["state"] == "RUNNING").any()
    complete = frame[frame["state"] == "COMPLETE"]
    assert len(complete) >= 1 and np.isfinite(complete["value"]).all()
    res = tune(bowl, SPACE, 3, direction="minimize", storage=path, study_name="k", sampler="random")  # it resumes
    assert len(res.trials) == len(frame) + 3 and res.trials["number"].is_unique


WORKER = """
import sys
from mlsys.modeling.hpo import Float, tune
def slow(p, t):
    s = 0.0
    for i in range(300000):
        s += i * 1e-12
    return (p["x"] - 0.3) ** 2 + s
tune(slow, {"x": Float(0.0, 1.0)}, 10_000, direction="minimize", sampler="random", seed=int(sys.argv[2]),
     storage=sys.argv[1], study_name="sigkill")
"""


def test_sigkill_at_random_moments_never_corrupts_the_journal(tmp_path):
    path = tmp_path / "sigkill.journal"
    tune(xbowl, {"x": Float(0.0, 1.0)}, 1, direction="minimize", storage=path, study_name="sigkill")
    rng = random.Random(0)
    snapshot = {}
    for round_ in range(4):
        size = path.stat().st_size
        proc = subprocess.Popen([sys.executable, "-c", WORKER, str(path), str(round_ + 1)], cwd=ROOT)
        deadline = time.monotonic() + 120
        while path.stat().st_size <= size and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)  # wait until the worker has started writing (a condition, not a fixed sleep)
        time.sleep(rng.uniform(0.0, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        study = load(path, "sigkill")  # must replay
        recover_stale_trials(study)
        frame = trials_frame(load(path, "sigkill"))
        assert frame["number"].tolist() == list(range(len(frame)))
        assert not (frame["state"] == "RUNNING").any(), "a killed trial was left running"
        done = frame[frame["state"] == "COMPLETE"].set_index("number")["value"]
        for number, value in snapshot.items():
            assert done[number] == value, f"complete trial {number} changed after a kill"
        snapshot = done.to_dict()
    res = tune(xbowl, {"x": Float(0.0, 1.0)}, 2, direction="minimize", storage=path, study_name="sigkill")
    assert res.counts["COMPLETE"] == len(snapshot) + 2


def test_recovery_judges_an_untagged_trial_by_the_other_workers(tmp_path):
    "A worker killed between creating a trial and tagging it: the process that recovers does not count as a live worker."
    import socket
    path = tmp_path / "untagged.journal"
    tune(xbowl, {"x": Float(0.0, 1.0)}, 1, direction="minimize", storage=path, study_name="u")  # registers this process
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    study = load(path, "u")
    study.set_user_attr(f"mlsys_worker:{socket.gethostname()}:{int(gone.stdout)}:0", True)  # a worker that has exited
    trial = study.ask()  # created, never tagged: the worker died in between
    assert recover_stale_trials(study) == [trial.number]
    assert trials_frame(load(path, "u"))["state"].tolist() == ["COMPLETE", "FAIL"]


@pytest.mark.postgres
def test_two_workers_share_a_postgres_study(postgres_url_or_skip):
    import psycopg2
    from sqlalchemy.engine import make_url
    base = make_url(postgres_url_or_skip)
    db = f"mlsys_hpo_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(postgres_url_or_skip, connect_timeout=5)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{db}"')
        url = base.set(database=db).render_as_string(hide_password=False)
        res = tune(bowl, SPACE, 8, direction="minimize", sampler="random", storage=url, study_name="pg", n_workers=2)
        frame = trials_frame(optuna.load_study(study_name="pg", storage=open_storage(url)))
        assert len(frame) == 8 and sorted(frame["number"]) == list(range(8))
        assert (frame["state"] == "COMPLETE").all() and frame["worker"].nunique() == 2
        assert res.best_value == frame["value"].min()
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        admin.close()


def test_make_pruner_names():
    assert type(make_pruner(None)).__name__ == "NopPruner"
    assert type(make_pruner("median")).__name__ == "MedianPruner"
    assert type(make_pruner("hyperband")).__name__ == "HyperbandPruner"


def test_a_torn_last_line_is_dropped_before_the_next_append(tmp_path):
    "A writer killed inside write() leaves a line without its newline; appending after it must not corrupt the journal."
    path = tmp_path / "torn.journal"
    tune(xbowl, {"x": Float(0.0, 1.0)}, 3, direction="minimize", storage=path, study_name="t")
    good = path.read_bytes()
    path.write_bytes(good + b'{"op_code":5,"worker_id":"dead","trial_id":3,"sta')
    assert len(load(path, "t").trials) == 3  # a torn tail alone still replays
    res = tune(xbowl, {"x": Float(0.0, 1.0)}, 2, direction="minimize", storage=path, study_name="t")
    assert res.counts == {"COMPLETE": 5}
    data = path.read_bytes()
    assert data.startswith(good) and data.endswith(b"\n") and b'"sta{' not in data
    assert len(load(path, "t").trials) == 5


HOLDER = """
import sys, time
from mlsys.modeling.hpo import JournalLock
JournalLock(sys.argv[1]).acquire()
print("held", flush=True)
time.sleep(600)
"""


def test_a_writer_killed_holding_the_lock_does_not_block_the_others(tmp_path):
    path = tmp_path / "held.journal"
    tune(xbowl, {"x": Float(0.0, 1.0)}, 1, direction="minimize", storage=path, study_name="h")
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], cwd=ROOT, stdout=subprocess.PIPE)
    assert proc.stdout.readline() == b"held\n"
    proc.kill()
    proc.wait(timeout=60)
    from mlsys.modeling.hpo import JournalLock
    lock = JournalLock(path)
    lock._lock.acquire(timeout=0)  # free at once: the kernel dropped the dead holder's flock (no 30 s grace period)
    lock.release()
    res = tune(xbowl, {"x": Float(0.0, 1.0)}, 2, direction="minimize", storage=path, study_name="h")
    assert res.counts == {"COMPLETE": 3}
