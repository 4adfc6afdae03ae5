"""deploy.distill: the distillation loss against a reference written with torch's kl_div (random logits with ties and
extreme values, float32), its T=1/alpha=1 case against the soft-target cross-entropy, soft targets against scipy's
softmax, the refusals of bad temperatures and weights, students that learn on tiny problems, and the tree student
(scikit-learn's estimator checks, teachers of every kind, fidelity, its compression rows)."""
import pickle
import subprocess
import sys

import numpy as np
import pytest
from scipy.special import softmax
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from sklearn.utils.estimator_checks import parametrize_with_checks

from mlsys.core import ConfigError, DataError
from mlsys.deploy import distill as D
from mlsys.deploy.compress import Arrays, accuracy, compression_table, fashion_cnn, flights_mlp, image_arrays, predict_logits

# the instances the project-wide tests/test_estimators.py counts (no torch needed: scikit-learn teachers)
ESTIMATORS = [
    D.DistilledTree(LogisticRegression(max_iter=200), random_state=0),
    D.DistilledTree(LogisticRegression(max_iter=200), student=DecisionTreeRegressor(max_depth=4, random_state=0)),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_checks(estimator, check):
    check(estimator)


@pytest.fixture
def torch():
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield torch
    torch.set_num_threads(before)


BAD_TEMPERATURES = [0, 0.0, -1.0, float("nan"), float("inf"), "2", True, None]
BAD_ALPHAS = [-0.1, 1.1, float("nan"), True, "0.5", None]


def _logits(rng, n, k):
    "float32 logits of one of several kinds: ordinary, large, extreme, tied (whole rows or pairs), all equal."
    kind = rng.integers(0, 5)
    z = rng.normal(size=(n, k)) * [1.0, 30.0, 1e4, 1.0, 1.0][kind]
    if kind == 3:
        z[:, 1] = z[:, 0]  # ties
        z = np.round(z)
    if kind == 4:
        z[:] = z[:, :1]  # every class equal
    return z.astype(np.float32)


def _reference(torch, s, soft, labels, t, a):
    F = torch.nn.functional
    kl = F.kl_div(F.log_softmax(s / t, dim=1), soft, reduction="batchmean")
    return a * t * t * kl + (1 - a) * F.cross_entropy(s, labels)


# ---- the loss ------------------------------------------------------------------------------------------------------

@pytest.mark.torch
def test_the_loss_equals_a_reference_written_with_kl_div(torch):
    rng = np.random.default_rng(0)
    for _ in range(600):
        n, k = int(rng.integers(1, 20)), int(rng.integers(2, 11))
        s, z = (torch.from_numpy(_logits(rng, n, k)) for _ in range(2))
        t = float(rng.choice([0.5, 1.0, 2.0, 4.0, 20.0, rng.uniform(0.1, 10)]))
        a = float(rng.choice([0.0, 1.0, rng.uniform()]))
        if rng.random() < 0.3:  # soft targets with exact zeros, as an ensemble average or a one-hot row gives
            p = rng.dirichlet(np.ones(k), size=n) * (rng.random((n, k)) > 0.4)
            p[p.sum(axis=1) == 0, 0] = 1.0
            soft = torch.from_numpy((p / p.sum(axis=1, keepdims=True)).astype(np.float32))
        else:
            soft = torch.from_numpy(D.soft_targets(z.numpy(), t))
        labels = torch.from_numpy(rng.integers(0, k, n))
        got = D.distillation_loss(s, soft, labels, temperature=t, alpha=a)
        want = _reference(torch, s, soft, labels, t, a)
        assert got.dtype == torch.float32 and torch.isfinite(got)
        torch.testing.assert_close(got, want.to(torch.float32), rtol=1e-4, atol=1e-5)


@pytest.mark.torch
def test_at_t1_alpha1_it_is_the_soft_target_cross_entropy_less_the_teachers_entropy(torch):
    "The same gradient as the soft-target cross-entropy (fit_torch's default for soft targets); values differ by H(teacher)."
    F = torch.nn.functional
    rng = np.random.default_rng(1)
    for _ in range(300):
        n, k = int(rng.integers(1, 16)), int(rng.integers(2, 9))
        s = torch.from_numpy(_logits(rng, n, k)).requires_grad_()
        soft = torch.from_numpy(D.soft_targets(_logits(rng, n, k), 1.0))
        ce = -(soft * F.log_softmax(s, dim=1)).sum(dim=1).mean()
        kd = D.distillation_loss(s, soft, temperature=1.0, alpha=1.0)
        entropy = torch.special.entr(soft).sum(dim=1).mean()
        torch.testing.assert_close(kd, ce - entropy, rtol=1e-4, atol=1e-4)
        g_kd, g_ce = (torch.autograd.grad(v, s)[0] for v in (kd, ce))
        torch.testing.assert_close(g_kd, g_ce, rtol=1e-4, atol=1e-6)


@pytest.mark.torch
def test_alpha_0_is_the_label_cross_entropy_and_the_loss_is_zero_on_its_own_targets(torch):
    rng = np.random.default_rng(2)
    s = torch.from_numpy(_logits(rng, 8, 4))
    labels = torch.from_numpy(rng.integers(0, 4, 8))
    soft = torch.from_numpy(D.soft_targets(s.numpy(), 3.0))
    torch.testing.assert_close(D.distillation_loss(s, soft, labels, 3.0, 0.0), torch.nn.functional.cross_entropy(s, labels))
    assert abs(float(D.distillation_loss(s, soft, temperature=3.0, alpha=1.0))) < 1e-4  # KL(p || p) = 0


@pytest.mark.torch
@pytest.mark.parametrize("t", BAD_TEMPERATURES)
def test_bad_temperatures_are_refused(torch, t):
    s = torch.zeros(2, 3)
    with pytest.raises(ConfigError, match="temperature"):
        D.distillation_loss(s, torch.full((2, 3), 1 / 3), torch.tensor([0, 1]), temperature=t)
    with pytest.raises(ConfigError, match="temperature"):
        D.soft_targets(np.zeros((2, 3)), temperature=t)
    with pytest.raises(ConfigError, match="temperature"):
        D.distill(flights_mlp(3, hidden=(2,)), np.zeros((2, 3)), np.zeros((2, 3), np.float32), np.array([0, 1]), temperature=t)


@pytest.mark.torch
@pytest.mark.parametrize("a", BAD_ALPHAS)
def test_bad_alphas_are_refused(torch, a):
    s = torch.zeros(2, 3)
    with pytest.raises(ConfigError, match="alpha"):
        D.distillation_loss(s, torch.full((2, 3), 1 / 3), torch.tensor([0, 1]), alpha=a)
    with pytest.raises(ConfigError, match="alpha"):
        D.distill(flights_mlp(3, hidden=(2,)), np.zeros((2, 3)), np.zeros((2, 3), np.float32), np.array([0, 1]), alpha=a)


@pytest.mark.torch
def test_other_loss_refusals(torch):
    s = torch.zeros(2, 3)
    with pytest.raises(ConfigError, match="give labels"):
        D.distillation_loss(s, torch.full((2, 3), 1 / 3), None, alpha=0.5)
    with pytest.raises(DataError, match="same"):
        D.distillation_loss(s, torch.full((2, 4), 0.25), torch.tensor([0, 1]))


# ---- soft targets ----------------------------------------------------------------------------------------------------

def test_soft_targets_equal_scipys_softmax_averaged_over_teachers():
    rng = np.random.default_rng(3)
    for _ in range(400):
        n, k, m = int(rng.integers(1, 20)), int(rng.integers(2, 10)), int(rng.integers(1, 4))
        t = float(rng.choice([0.5, 1.0, 4.0, rng.uniform(0.1, 20)]))
        zs = [_logits(rng, n, k) for _ in range(m)]
        got = D.soft_targets(zs if m > 1 else zs[0], t)
        want = np.mean([softmax(z.astype(np.float64) / t, axis=1) for z in zs], axis=0)
        assert got.dtype == np.float32 and np.isfinite(got).all()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-5)


def test_soft_target_refusals():
    with pytest.raises(DataError, match="teacher 1"):
        D.soft_targets([np.zeros((3, 2)), np.zeros((4, 2))])
    with pytest.raises(DataError, match="teacher 0"):
        D.soft_targets(np.array([[0.0, np.nan]]))
    with pytest.raises(DataError, match="classes >= 2"):
        D.soft_targets(np.zeros((3, 1)))
    with pytest.raises(DataError, match="no teacher"):
        D.soft_targets([])


# ---- students --------------------------------------------------------------------------------------------------------

def _tiny(n=400, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype("int64")
    return X, y


@pytest.mark.torch
def test_a_student_trains_and_improves_on_a_tiny_problem(torch):
    X, y = _tiny()
    teacher = flights_mlp(5, hidden=(32,), seed=1)
    from mlsys.deploy.compress import fit_torch
    fit_torch(teacher, X, y, epochs=30, batch_size=50, lr=1e-2)
    assert accuracy(teacher, X, y) > 0.95
    student = flights_mlp(5, hidden=(4,), seed=2)
    start = accuracy(student, X, y)
    hist = D.distill(student, teacher, X, y, temperature=2.0, alpha=0.9, epochs=25, batch_size=50, lr=1e-2)
    assert hist["loss"].iloc[-1] < 0.5 * hist["loss"].iloc[0]
    assert accuracy(student, X, y) > max(0.9, start)
    agree = np.mean(predict_logits(student, X).argmax(1) == predict_logits(teacher, X).argmax(1))
    assert agree > 0.9
    ensemble = flights_mlp(5, hidden=(4,), seed=2)  # an ensemble of models, and precomputed logits, work the same
    D.distill(ensemble, [teacher, predict_logits(teacher, X)], X, y, epochs=25, batch_size=50, lr=1e-2)
    assert accuracy(ensemble, X, y) > 0.9


@pytest.mark.torch
def test_distill_refuses_bad_labels_and_teachers(torch):
    X, y = _tiny(50)
    z = np.zeros((50, 2))
    for bad, words in [(y.astype(float), "integer label"), (y[:10], "integer label"), (y + 1, "0..1"),
                       (y - 1, "0..1")]:
        with pytest.raises(DataError, match=words):
            D.distill(flights_mlp(5, hidden=(2,)), z, X, bad)
    with pytest.raises(DataError, match="one row of logits"):
        D.distill(flights_mlp(5, hidden=(2,)), z[:10], X, y)
    with pytest.raises(ConfigError, match="at least one teacher"):
        D.distill(flights_mlp(5, hidden=(2,)), [], X, y)
    with pytest.raises(ConfigError, match="torch.nn.Module"):
        D.distill("a student", z, X, y)
    with pytest.raises(ConfigError, match="cannot predict"):
        D.distill(flights_mlp(5, hidden=(2,)), object(), X, y)


# ---- the tree student ------------------------------------------------------------------------------------------------

@pytest.mark.torch
def test_a_tree_student_of_a_torch_teacher_follows_it(torch):
    X, y = _tiny(600)
    teacher = flights_mlp(5, hidden=(16,), seed=0)
    from mlsys.deploy.compress import fit_torch
    fit_torch(teacher, X, y, epochs=20, batch_size=50, lr=1e-2)
    tree = D.DistilledTree(teacher, student=DecisionTreeRegressor(max_depth=8, random_state=0)).fit(X, y)
    t_scores = predict_logits(teacher, X)
    fid = D.fidelity(np.log(tree.predict_proba(X)), t_scores)
    assert fid["agreement"] > 0.95 and fid["logit_corr"] > 0.95
    np.testing.assert_array_equal(tree.classes_, [0, 1])
    p = tree.predict_proba(X)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_array_equal(tree.predict(X), p.argmax(axis=1))
    three = flights_mlp(5, hidden=(8,), n_classes=3)  # more classes: one regressor per class
    y3 = np.digitize(X[:, 0], [-0.5, 0.5]).astype("int64")
    fit_torch(three, X, y3, epochs=20, batch_size=50, lr=1e-2)
    t3 = D.DistilledTree(three, student=DecisionTreeRegressor(max_depth=8, random_state=0)).fit(X, y3)
    assert len(t3.estimators_) == 3 and t3.predict_proba(X).shape == (600, 3)
    assert D.fidelity(np.log(t3.predict_proba(X)), predict_logits(three, X))["agreement"] > 0.9
    with pytest.raises(DataError, match="output columns"):
        D.DistilledTree(teacher).fit(X, np.where(y == 1, "late", "on time"))
    with pytest.raises(DataError, match="output columns"):
        D.DistilledTree(teacher).fit(X, y3)
    assert pickle.loads(pickle.dumps(tree)).predict(X[:5]).tolist() == tree.predict(X[:5]).tolist()


def test_a_frozen_teacher_is_used_as_it_is_and_an_unfitted_one_is_fitted():
    X, y = _tiny(300)
    other_X, other_y = _tiny(300, seed=9)
    lr = LogisticRegression().fit(other_X, other_y)
    coef = lr.coef_.copy()
    tree = D.DistilledTree(FrozenEstimator(lr), student=DecisionTreeRegressor(max_depth=6, random_state=0)).fit(X, y)
    np.testing.assert_array_equal(lr.coef_, coef)
    assert D.fidelity(np.log(tree.predict_proba(X)), np.log(lr.predict_proba(X)))["agreement"] > 0.9
    unfitted = LogisticRegression()
    D.DistilledTree(unfitted).fit(X, y)
    assert not hasattr(unfitted, "coef_")  # cloned, the given estimator untouched
    with pytest.raises(ConfigError, match="needs a teacher"):
        D.DistilledTree().fit(X, y)
    with pytest.raises(DataError, match="two classes"):
        D.DistilledTree(LogisticRegression()).fit(X, np.zeros(len(X), int))
    with pytest.raises(DataError, match="do not match"):
        D.DistilledTree(FrozenEstimator(lr)).fit(X, y + 5)


def test_fidelity_and_tree_rows():
    rng = np.random.default_rng(4)
    z = rng.normal(size=(50, 3))
    assert D.fidelity(z, z) == {"agreement": 1.0, "logit_corr": pytest.approx(1.0)}
    assert D.fidelity(z + 7.0, z)["logit_corr"] == pytest.approx(1.0)  # a shift of every logit changes nothing
    with pytest.raises(DataError, match="one shape"):
        D.fidelity(z, z[:, :2])
    X, y = _tiny(300)
    for model in (DecisionTreeClassifier(max_depth=3).fit(X, y),
                  HistGradientBoostingClassifier(max_iter=5).fit(X, y),
                  D.DistilledTree(LogisticRegression(), student=HistGradientBoostingRegressor(max_iter=5)).fit(X, y)):
        row = D.tree_row("t", model, X, y)
        trees = model.estimators_ if isinstance(model, D.DistilledTree) else model
        want = (model.tree_.node_count if hasattr(model, "tree_")
                else sum(len(p.nodes) for m in np.ravel(trees) for it in m._predictors for p in it))
        assert row["params"] == row["nonzeros"] == want > 0
        assert 0.5 < row["accuracy"] <= 1 and "auc" in row


@pytest.mark.torch
def test_compression_rows_quick(torch):
    rng = np.random.default_rng(5)
    Xtr, Xte = (rng.normal(size=(n, 12)).astype(np.float32) for n in (600, 300))
    flights = Arrays(Xtr, (Xtr[:, 0] > 0.7).astype("int64"), Xte, (Xte[:, 0] > 0.7).astype("int64"), list(range(12)))
    images = image_arrays(n_train=300, n_test=100)
    mlp, cnn = flights_mlp(12), fashion_cnn()
    from mlsys.deploy.compress import fit_torch
    fit_torch(mlp, flights.X_train, flights.y_train, epochs=3)
    before = predict_logits(mlp, flights.X_test)
    rows = D.compression_rows(flights, images, mlp, cnn, quick=True)
    assert [r["model"] for r in rows] == ["flights MLP"] * 2 + ["Fashion CNN"] * 2 + ["flights MLP"] * 2
    assert [r["technique"] for r in rows] == [
        "student MLP 16, labels only", "student MLP 16, distilled T=2", "student CNN 8-16-32, labels only",
        "student CNN 8-16-32, distilled T=2", "tree student (HGB depth 3), distilled", "tree (HGB depth 3), labels only"]
    compression_table(rows)  # technique names are unique: the rows make one table
    teacher_acc = accuracy(mlp, flights.X_test, flights.y_test)
    for r in rows[:2] + rows[4:]:
        assert r["kept_of_teacher"] == pytest.approx(r["accuracy"] / teacher_acc)
        assert "auc_kept_of_teacher" in r
    assert all(r["params"] < 30_000 for r in rows)
    np.testing.assert_array_equal(predict_logits(mlp, flights.X_test), before)


def test_the_module_imports_without_torch():
    code = "import sys, mlsys.deploy.distill; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
