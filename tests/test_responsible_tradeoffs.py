"""responsible.tradeoffs: per-group scores against scikit-learn's metrics (random groups, a group without positives),
the refusals of bad input (ε, δ, a single group, sparsities), the bootstrap and disagreement tables' invariants,
chapter 7's compressions reused on Adult, DP-SGD's reported ε against an independent recomputation (RDP and PRV),
target-ε runs within budget, and Opacus's per-sample clipping against a row-by-row reference."""
import math
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix

from mlsys.core import ConfigError, DataError
from mlsys.responsible import tradeoffs as T

pytestmark = pytest.mark.torch


@pytest.fixture
def torch():
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield torch
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def small():
    return T.adult_arrays(n=500, seed=1)


def test_import_is_light():
    code = "import sys, mlsys.responsible.tradeoffs; print('torch' in sys.modules or 'opacus' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_adult_arrays_keep_groups_aligned(small):
    d = small.data
    assert d.X_train.dtype == np.float32 and d.y_train.dtype == np.int64
    assert len(small.groups_train) == len(d.y_train) and len(small.groups_test) == len(d.y_test)
    female = d.names.index("cat__sex_Female")  # the one-hot column of the same rows says the same sex
    np.testing.assert_array_equal(d.X_test[:, female] == 1, small.groups_test["sex"].to_numpy() == "Female")
    np.testing.assert_array_equal(d.X_train[:, female] == 1, small.groups_train["sex"].to_numpy() == "Female")
    with pytest.raises(ConfigError, match="n must be a row count"):
        T.adult_arrays(n=0)


@pytest.mark.parametrize("seed", range(6))
def test_group_scores_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 300))
    y, p = rng.integers(0, 2, n), rng.integers(0, 2, n)
    g = pd.Series(rng.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1]), name="attr")
    g.iloc[:3] = ["a", "b", "c"]
    y[(g == "c").to_numpy()] = 0  # group c has no positives: its TPR is undefined
    s = T.group_scores(y, p, g)
    for grp in s.index:
        m = (g == grp).to_numpy()
        tn, fp, fn, tp = confusion_matrix(y[m], p[m], labels=[0, 1]).ravel()
        assert s.loc[grp, "n"] == m.sum()
        assert s.loc[grp, "accuracy"] == pytest.approx(accuracy_score(y[m], p[m]))
        assert s.loc[grp, "fpr"] == pytest.approx(fp / (fp + tn))
        if grp == "c":
            assert math.isnan(s.loc[grp, "tpr"])
        else:
            assert s.loc[grp, "tpr"] == pytest.approx(tp / (tp + fn))
    assert T.accuracy_gap(s) == pytest.approx(s["accuracy"].max() - s["accuracy"].min())


@pytest.mark.parametrize("groups, message", [
    (["x"] * 6, "single group"),
    (["x", "y", None, "x", "y", "x"], "missing values"),
    (["x", "y"], "has 2 rows"),
])
def test_bad_groups_are_refused(groups, message):
    y = np.array([0, 1, 0, 1, 1, 0])
    with pytest.raises(DataError, match=message):
        T.group_scores(y, y, groups)
    if message == "single group":
        with pytest.raises(DataError, match="single group"):
            T.bootstrap_gap_change(y, y, 1 - y, groups)


def test_group_scores_refuse_non_binary():
    with pytest.raises(DataError, match="binary"):
        T.group_scores(np.array([0, 2]), np.array([0, 1]), ["a", "b"])


def test_per_group_table_against_reference():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    groups = pd.DataFrame({"sex": rng.choice(["F", "M"], 400), "race": rng.choice(["p", "q", "r"], 400)})
    preds = {"ref": np.where(rng.random(400) < 0.2, 1 - y, y), "perfect": y}
    t = T.per_group_table(preds, y, groups)
    assert (t.query("variant == 'ref'")[["change_pts", "gap_change_pts"]] == 0).all().all()
    perfect = t.query("variant == 'perfect'")
    assert (perfect["accuracy"] == 1).all()
    ref = t.query("variant == 'ref'").set_index(["attribute", "group"])["accuracy"]
    np.testing.assert_allclose(perfect.set_index(["attribute", "group"])["change_pts"], 100 * (1 - ref))
    with pytest.raises(DataError, match="DataFrame"):
        T.per_group_table(preds, y, groups.iloc[:, :0])


@pytest.mark.parametrize("bad", [1.0, 1.5, -0.1, float("nan"), True, "0.5", ()])
def test_sparsity_outside_range_is_refused(bad, small, torch):
    from mlsys.deploy.compress import flights_mlp
    model = flights_mlp(small.data.X_train.shape[1], hidden=(4,))
    with pytest.raises(ConfigError, match="sparsities"):
        T.compressed_variants(model, small.data, sparsities=bad if bad == () else (bad,))


@pytest.mark.parametrize("bad", [0, 0.0, -1.0, float("nan"), True, None, "1"])
def test_bad_epsilon_is_refused(bad, small, torch):
    from mlsys.deploy.compress import flights_mlp
    model = flights_mlp(small.data.X_train.shape[1], hidden=(4,))
    with pytest.raises(ConfigError, match="epsilon must be a positive"):
        T.dp_fit(model, small.data.X_train, small.data.y_train, epsilon=bad)


@pytest.mark.parametrize("bad", [0, 0.0, 1, 1.0, -1e-5, 2.0, float("nan"), True])
def test_bad_delta_is_refused(bad, small, torch):
    from mlsys.deploy.compress import flights_mlp
    model = flights_mlp(small.data.X_train.shape[1], hidden=(4,))
    with pytest.raises(ConfigError, match=r"delta must be in \(0, 1\)"):
        T.dp_fit(model, small.data.X_train, small.data.y_train, epsilon=1.0, delta=bad)
    with pytest.raises(ConfigError, match=r"delta must be in \(0, 1\)"):
        T.recompute_epsilon(1.0, 0.01, 100, bad)


def test_privacy_study_refuses_empty_epsilons(small):
    with pytest.raises(ConfigError, match="epsilons is empty"):
        T.privacy_study(small, epsilons=())


def test_compressed_variants_reuse_chapter_7(small, torch):
    from mlsys.deploy.compress import fit_torch, flights_mlp
    from mlsys.deploy.prune import sparsity
    d = small.data
    dense = flights_mlp(d.X_train.shape[1], hidden=(16, 8), seed=0)
    fit_torch(dense, d.X_train, d.y_train, epochs=2)
    state = {k: v.clone() for k, v in dense.state_dict().items()}
    v = T.compressed_variants(dense, d, sparsities=(0.0, 0.6), fine_tune_epochs=0, distill_epochs=1, rank=2)
    assert list(v) == ["dense", "prune 0%", "prune 60%", "int8 dynamic", "student 8", "low rank 2"]
    assert all(torch.equal(state[k], t) for k, t in dense.state_dict().items())
    assert sparsity(v["prune 60%"]) == pytest.approx(0.6, abs=0.005)
    np.testing.assert_array_equal(T.predict_labels(v["prune 0%"], d.X_test), T.predict_labels(dense, d.X_test))
    agree = np.mean(T.predict_labels(v["int8 dynamic"], d.X_test) == T.predict_labels(dense, d.X_test))
    assert agree > 0.95


def test_bootstrap_and_disagreement_invariants():
    rng = np.random.default_rng(3)
    n = 600
    y = rng.integers(0, 2, n)
    groups = pd.DataFrame({"g": rng.choice(["a", "b", "c"], n, p=[0.7, 0.2, 0.1])})
    a = np.where(rng.random(n) < 0.1, 1 - y, y)
    b = np.where((groups["g"] == "c").to_numpy() & (rng.random(n) < 0.5), 1 - a, a)
    r = T.bootstrap_gap_change(y, a, a, groups["g"], n_boot=200)
    assert r == {"gap_change_pts": 0.0, "lo": 0.0, "hi": 0.0}
    r = T.bootstrap_gap_change(y, a, b, groups["g"], n_boot=200)
    assert r["lo"] <= r["gap_change_pts"] <= r["hi"]
    d = T.disagreements(np.stack([a, a, 1 - a]), b, groups)
    assert d["share_of_disagreements"].sum() == pytest.approx(1.0)
    assert (d["n"] * d["ratio"]).sum() / d["n"].sum() == pytest.approx(1.0)  # the ratios average to 1 over rows
    assert d.loc[("g", "c"), "ratio"] > 3  # only group c's labels were changed
    with pytest.raises(DataError, match="same rows"):
        T.disagreements(a, b[:-1], groups)


@pytest.mark.parametrize("accountant, targets", [("rdp", (0.7,)), ("prv", (4.0,))])
def test_dp_epsilon_matches_accountant(accountant, targets, small, torch):
    from mlsys.deploy.compress import flights_mlp
    d = small.data
    for target in targets:
        run = T.dp_fit(flights_mlp(d.X_train.shape[1], hidden=(8,), seed=0), d.X_train, d.y_train, epsilon=target,
                       delta=1e-3, epochs=2, batch_size=50, accountant=accountant)
        assert run.epsilon <= target
        assert run.epsilon > 0.9 * target  # the search spends the budget, not a fraction of it
        assert run.steps == 2 * round(1 / run.sample_rate)
        assert run.sample_rate == pytest.approx(50 / len(d.X_train), rel=0.05)
        again = T.recompute_epsilon(run.noise_multiplier, run.sample_rate, run.steps, run.delta, accountant)
        assert again == pytest.approx(run.epsilon, rel=1e-9)


def test_recompute_epsilon_against_accountant_api():
    from opacus.accountants import RDPAccountant
    rng = np.random.default_rng(0)
    for i in range(6):
        sigma, q, steps = float(rng.uniform(0.6, 3)), float(rng.uniform(0.001, 0.1)), int(rng.integers(10, 200))
        acc = RDPAccountant()
        for _ in range(steps):  # the steps recorded one at a time, the way the optimizer records them
            acc.step(noise_multiplier=sigma, sample_rate=q)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Optimal order is the largest alpha", category=UserWarning)
            want = acc.get_epsilon(1e-5)
        assert T.recompute_epsilon(sigma, q, steps, 1e-5) == pytest.approx(want, rel=1e-9)
        if i == 0:  # PRV is the tighter accountant (up to its own error bound)
            assert T.recompute_epsilon(sigma, q, steps, 1e-5, "prv") <= want + 0.05
    with pytest.raises(ConfigError, match="accountant"):
        T.recompute_epsilon(1.0, 0.01, 10, 1e-5, "gdp")
    with pytest.raises(ConfigError, match="noise_multiplier > 0"):
        T.recompute_epsilon(0.0, 0.01, 10, 1e-5)


def test_non_private_run_spends_nothing_and_learns(small, torch):
    from mlsys.deploy.compress import flights_mlp
    d = small.data
    run = T.dp_fit(flights_mlp(d.X_train.shape[1], hidden=(8,), seed=0), d.X_train, d.y_train, math.inf, epochs=3,
                   batch_size=32)
    assert math.isinf(run.epsilon) and run.noise_multiplier == 0.0
    assert np.mean(T.predict_labels(run.model, d.X_test) == d.y_test) > 0.7


@pytest.mark.parametrize("seed", range(3))
def test_opacus_clipping_matches_row_by_row(seed, small, torch):
    from mlsys.deploy.compress import flights_mlp
    d = small.data
    model = flights_mlp(d.X_train.shape[1], hidden=(6, 4), seed=seed)
    rows = np.random.default_rng(seed).choice(len(d.X_train), 32, replace=False)
    X, y = d.X_train[rows], d.y_train[rows]
    raw = T.per_sample_gradients(model, X, y)
    norms = np.linalg.norm(raw, axis=1)
    for C in (np.quantile(norms, 0.2), np.median(norms), 10 * norms.max()):
        clipped = T.clip_rows(raw, C)
        assert np.linalg.norm(clipped, axis=1).max() <= C
        np.testing.assert_allclose(T.opacus_clipped_sum(model, X, y, C), clipped.sum(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(T.clip_rows(raw, 10 * norms.max()), raw, rtol=1e-5)  # a large C clips nothing


@pytest.mark.parametrize("sigma, q, steps, message", [
    (float("inf"), 0.01, 10, "noise_multiplier must be a finite real"),  # used to hang in the accountant
    ("1.0", 0.01, 10, "noise_multiplier must be a finite real"),
    (True, 0.01, 10, "noise_multiplier must be a finite real"),
    (1.0, "0.01", 10, r"sample_rate must be a real in \(0, 1\]"),
    (1.0, float("nan"), 10, r"sample_rate must be a real in \(0, 1\]"),
    (1.0, 0.01, 2.5, "steps must be an integer >= 1"),  # used to become 2
    (1.0, 0.01, True, "steps must be an integer >= 1"),  # used to count as 1
    (1.0, 0.01, "10", "steps must be an integer >= 1"),  # used to be a raw TypeError
    (1.0, 0.01, 0, "steps must be an integer >= 1"),
])
def test_recompute_epsilon_checks_its_inputs(sigma, q, steps, message):
    with pytest.raises(ConfigError, match=message):
        T.recompute_epsilon(sigma, q, steps, 1e-5)
    assert T.recompute_epsilon(1.0, 0.01, np.int64(10), 1e-5) == T.recompute_epsilon(1.0, 0.01, 10, 1e-5)
