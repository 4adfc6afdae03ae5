"""imbalance.losses: neutral settings = cross-entropy, gradchecks, focal reference, two-phase, dynamic sampling, bagging."""
import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.metrics import average_precision_score

from mlsys.core import ConfigError, DataError

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch
F = torch.nn.functional

from mlsys.imbalance.losses import (
    BalancedBaggingClassifier,
    BinaryFocalLoss,
    ClassBalancedLoss,
    CostSensitiveLoss,
    FocalLoss,
    dynamic_epoch_indices,
    dynamic_fit,
    dynamic_sampling_rates,
    effective_number_weights,
    fit_torch,
    mlp,
    predict_scores,
    two_phase_fit,
)

torch.set_num_threads(1)


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(40, 4, dtype=torch.float64, generator=g, requires_grad=True)
    target = torch.randint(0, 4, (40,), generator=g)
    return logits, target


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_neutral_settings_are_cross_entropy(batch, reduction):
    logits, target = batch
    ce = F.cross_entropy(logits, target, reduction=reduction)
    for loss in [CostSensitiveLoss(1 - np.eye(4), reduction=reduction),
                 ClassBalancedLoss([100, 10, 5, 1], beta=0.0, reduction=reduction),
                 ClassBalancedLoss([100, 10, 5, 1], beta=0.0, loss="focal", gamma=0.0, reduction=reduction),
                 FocalLoss(gamma=0.0, reduction=reduction),
                 FocalLoss(gamma=0.0, alpha=[1, 1, 1, 1], reduction=reduction)]:
        torch.testing.assert_close(loss(logits, target), ce)
    z, t = logits[:, 0], (target == 0).double()
    torch.testing.assert_close(BinaryFocalLoss(gamma=0.0, alpha=-1, reduction=reduction)(z, t),
                               F.binary_cross_entropy_with_logits(z, t, reduction=reduction))


def test_gradcheck_all_losses(batch):
    logits, target = batch
    C = np.array([[0, 1, 2, 3], [4, 0, 1, 1], [9, 2, 0, 1], [20, 5, 5, 0]], dtype=float)
    for loss in [CostSensitiveLoss(C, expected_cost_weight=0.7), ClassBalancedLoss([100, 10, 5, 2], beta=0.99),
                 ClassBalancedLoss([100, 10, 5, 2], beta=0.99, loss="focal", gamma=2.0),
                 FocalLoss(gamma=2.0), FocalLoss(gamma=0.5, alpha=[0.1, 0.2, 0.3, 0.4])]:
        assert torch.autograd.gradcheck(loss, (logits, target))
    z, t = logits[:, 0], (target == 0).double()
    assert torch.autograd.gradcheck(BinaryFocalLoss(gamma=2.0, alpha=0.25), (z, t))


def test_focal_matches_reference(batch):
    logits, target = batch
    z, t = logits[:, 1].detach(), (target == 1).double()
    ours = BinaryFocalLoss(gamma=2.0, alpha=0.25, reduction="none")(z, t)
    try:
        from torchvision.ops import sigmoid_focal_loss
        ref = sigmoid_focal_loss(z, t, alpha=0.25, gamma=2.0, reduction="none")
    except (ImportError, RuntimeError):  # no torchvision, or a wheel built for another torch: Lin et al. written out
        p = torch.sigmoid(z)
        p_t = torch.where(t == 1, p, 1 - p)
        ref = -torch.where(t == 1, 0.25, 0.75) * (1 - p_t) ** 2 * torch.log(p_t)
    torch.testing.assert_close(ours, ref)
    # softmax focal: the same formula per example, with the true-class probability
    p_true = logits.softmax(1).gather(1, target[:, None])[:, 0]
    torch.testing.assert_close(FocalLoss(gamma=1.5, reduction="none")(logits, target),
                               -(1 - p_true) ** 1.5 * torch.log(p_true))


def test_cost_sensitive_weights_and_expected_cost(batch):
    logits, target = batch
    C = np.array([[0, 1, 1, 1], [3, 0, 3, 3], [1, 1, 0, 1], [6, 6, 6, 0]], dtype=float)
    loss = CostSensitiveLoss(C, reduction="none")
    torch.testing.assert_close(loss.class_weight, torch.tensor([1.0, 3.0, 1.0, 6.0], dtype=torch.float64))
    plus = CostSensitiveLoss(C, expected_cost_weight=1.0, reduction="none")(logits, target)
    expected = (logits.softmax(1) * torch.as_tensor(C)[target]).sum(1)
    torch.testing.assert_close(plus - loss(logits, target), expected)


def test_effective_number_weights_limits():
    np.testing.assert_allclose(effective_number_weights([1000, 10], 0.0), [1, 1])
    inv = np.array([1 / 1000, 1 / 10]); inv *= 2 / inv.sum()
    np.testing.assert_allclose(effective_number_weights([1000, 10], 1 - 1e-9), inv, rtol=1e-4)
    w = [effective_number_weights([1000, 10], b)[1] for b in [0.5, 0.9, 0.99, 0.999]]
    assert np.all(np.diff(w) > 0)


@pytest.fixture(scope="module")
def task():
    X, y = make_classification(3000, 6, n_informative=4, n_redundant=0, weights=[0.95], random_state=0)
    return X.astype(np.float32), y


def test_two_phase_first_balanced_then_priors(task):
    X, y = task
    balanced = fit_torch(mlp(6, seed=1), *_under(X, y), epochs=10)
    two = two_phase_fit(mlp(6, seed=1), X, y, epochs=(10, 3))
    p_bal, p_two = predict_scores(balanced, X)[:, 1].mean(), predict_scores(two, X)[:, 1].mean()
    assert p_bal > 0.3 and p_two < p_bal  # fine-tuning restores the true (low) prior
    assert average_precision_score(y, predict_scores(two, X)[:, 1]) > 3 * y.mean()


def _under(X, y):
    from mlsys.imbalance.resample import RandomUnderSampler
    return RandomUnderSampler(random_state=0).fit_resample(X, y)


def test_dynamic_sampling_rates_and_counts(task):
    X, y = task
    r = dynamic_sampling_rates([0.9, 0.2, 0.5])
    assert r[1] > r[2] > r[0] and r.sum() == pytest.approx(1)
    yy = np.r_[np.zeros(90, int), np.ones(10, int)]
    idx = dynamic_epoch_indices(yy, [0.3, 0.7], n_rows=200, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(np.bincount(yy[idx]), [60, 140])
    _, hist = dynamic_fit(mlp(6), X[:2400], y[:2400], X[2400:], y[2400:], epochs=3)
    assert hist.shape == (3, 2) and hist[0, 1] < 0.1 and hist[1:, 1].max() > hist[0, 1]


def test_balanced_bagging_matches_imblearn_quality(task):
    from imblearn.ensemble import BalancedBaggingClassifier as Ref
    from sklearn.tree import DecisionTreeClassifier
    X, y = task
    Xtr, Xte, ytr, yte = X[:2000], X[2000:], y[:2000], y[2000:]
    ours = BalancedBaggingClassifier(DecisionTreeClassifier(max_depth=4), n_estimators=15, random_state=0).fit(Xtr, ytr)
    ref = Ref(DecisionTreeClassifier(max_depth=4), n_estimators=15, random_state=0).fit(Xtr, ytr)
    ap_o = average_precision_score(yte, ours.predict_proba(Xte)[:, 1])
    ap_r = average_precision_score(yte, ref.predict_proba(Xte)[:, 1])
    assert abs(ap_o - ap_r) < 0.1
    rec = lambda m: ((m.predict(Xte) == 1) & (yte == 1)).sum() / (yte == 1).sum()
    assert rec(ours) > 0.6 and abs(rec(ours) - rec(ref)) < 0.15
    np.testing.assert_allclose(ours.predict_proba(Xte).sum(1), 1)


def test_balanced_bagging_sklearn_checks():
    from sklearn.utils.estimator_checks import check_estimator
    check_estimator(BalancedBaggingClassifier(n_estimators=3, random_state=0))


@pytest.mark.parametrize("call, err, msg", [
    (lambda: CostSensitiveLoss(np.ones((3, 2))), ConfigError, "square"),
    (lambda: CostSensitiveLoss(1 - np.eye(2), expected_cost_weight=-1), ConfigError, "expected_cost_weight"),
    (lambda: ClassBalancedLoss([5, -1]), ConfigError, "positive counts"),
    (lambda: ClassBalancedLoss([5, 1], loss="hinge"), ConfigError, "'ce' or 'focal'"),
    (lambda: ClassBalancedLoss([5, 1], loss="focal", gamma=-1.0), ConfigError, "gamma must be >= 0"),
    (lambda: FocalLoss(gamma=float("nan")), ConfigError, "gamma must be >= 0"),
    (lambda: effective_number_weights([5, 1], beta=-0.1), ConfigError, "beta"),
    (lambda: FocalLoss(alpha=[[1, 2]]), ConfigError, "alpha must be"),
    (lambda: BinaryFocalLoss(alpha=2), ConfigError, "alpha must be <= 1"),
    (lambda: FocalLoss()(torch.randn(3, 2), torch.tensor([0, 1])), DataError, "target must have shape (3,)"),
    (lambda: CostSensitiveLoss(1 - np.eye(3))(torch.randn(3, 2), torch.tensor([0, 1, 1])), DataError, "built for 3"),
    (lambda: FocalLoss()(torch.randn(2, 2), torch.tensor([0, -1])), DataError, "class indices"),
    (lambda: dynamic_sampling_rates([0.5]), DataError, "at least 2 classes"),
    (lambda: dynamic_sampling_rates([0.5, 0.5], floor=0), ConfigError, "floor"),
    (lambda: dynamic_epoch_indices(np.zeros(5, int), [0.5, 0.5]), DataError, "no rows"),
    (lambda: two_phase_fit(mlp(2), np.zeros((6, 2)), [0, 0, 0, 0, 1, 1], n_per_class=0), ConfigError, "positive integer"),
    (lambda: fit_torch(mlp(2), np.zeros(4), [0, 1, 1, 0]), DataError, "X must be 2-D"),
    (lambda: fit_torch(mlp(2), np.zeros((4, 2)), ["a", "b", "a", "b"]), DataError, "integer class indices"),
    (lambda: fit_torch(mlp(2), np.zeros((4, 2)), [0, 1, 2, 0]), DataError, "class index 2, but the model returns only 2"),
    (lambda: dynamic_fit(mlp(2), np.zeros((4, 2)), [0, 1, 0, 1], np.zeros((2, 3)), [0, 1]), DataError,
     "X_val has 3 features but X has 2"),
    (lambda: BalancedBaggingClassifier().fit(np.zeros((4, 2)), [1, 1, 1, 1]), DataError, "at least 2 classes"),
])
def test_bad_input(call, err, msg):
    with pytest.raises(err) as e:
        call()
    assert msg in str(e.value)
