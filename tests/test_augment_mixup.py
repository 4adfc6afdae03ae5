"""Mixup: labels sum to one, exact blends, Beta draws, ECE against scikit-learn, experiment helpers, bad input."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mlsys.augment.mixup import (expected_calibration_error, mixup_tabular, one_hot, run_experiment, sample_lambda,
                                 soft_to_weighted, summarize_experiment)
from mlsys.core import ConfigError, DataError
from mlsys.datasets import load_rainfall


@pytest.fixture(scope="module")
def rain():
    df = load_rainfall().iloc[:3000]
    feats = [c for c in df.columns if c not in ("day", "rain")]
    return df[feats], df["rain"].astype(int)


@pytest.mark.parametrize("alpha", [0.2, 1.0, 3.0])
def test_lambda_is_beta(alpha):
    lam = sample_lambda(alpha, 5000, random_state=1)
    assert stats.kstest(lam, stats.beta(alpha, alpha).cdf).pvalue > 1e-3


def test_tabular_labels_sum_to_one_and_rows_are_blends(rain):
    X, y = rain
    Xm, Ym = mixup_tabular(X, y, alpha=0.5, n_samples=800, random_state=3)
    np.testing.assert_allclose(Ym.sum(axis=1), 1.0, atol=1e-12)
    assert list(Xm.columns) == list(X.columns) and list(Ym.columns) == [0, 1]
    rng = np.random.default_rng(3)
    i, j = rng.integers(0, len(X), 800), rng.integers(0, len(X), 800)
    lam = rng.beta(0.5, 0.5, 800)
    np.testing.assert_allclose(Xm.to_numpy(), lam[:, None] * X.to_numpy()[i] + (1 - lam[:, None]) * X.to_numpy()[j])
    # every mixed feature lies between its two parents
    lo = np.minimum(X.to_numpy()[i], X.to_numpy()[j]) - 1e-12
    hi = np.maximum(X.to_numpy()[i], X.to_numpy()[j]) + 1e-12
    assert ((Xm.to_numpy() >= lo) & (Xm.to_numpy() <= hi)).all()


def test_tabular_multiclass_numpy_and_string_labels():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 3))
    y = np.array(["a", "b", "c", "d"])[rng.integers(0, 4, 100)]
    Xm, Ym = mixup_tabular(X, y, alpha=1.0, random_state=0)
    assert isinstance(Xm, np.ndarray) and Xm.shape == (100, 3)
    assert list(Ym.columns) == ["a", "b", "c", "d"]
    np.testing.assert_allclose(Ym.sum(axis=1), 1.0)
    assert ((Ym > 0).sum(axis=1) <= 2).all()  # at most two classes per mixed row


def test_soft_to_weighted_is_equivalent_to_soft_cross_entropy(rain):
    from sklearn.linear_model import LogisticRegression
    X, y = rain
    Xm, Ym = mixup_tabular(X.iloc[:300], y.iloc[:300], n_samples=300, random_state=0)
    Xw, yw, ww = soft_to_weighted(Xm, Ym)
    clf = LogisticRegression(C=1e6, max_iter=2000).fit(Xw, yw, sample_weight=ww)
    # the weighted fit minimises soft-label cross entropy: its gradient vanishes at the optimum
    p = clf.predict_proba(Xm)[:, 1]
    grad = Xm.to_numpy().T @ (p - Ym[1].to_numpy())
    assert np.abs(grad).max() < 1e-2 * len(Xm)


def test_ece_matches_sklearn_calibration_curve():
    from sklearn.calibration import calibration_curve
    rng = np.random.default_rng(0)
    p = rng.random(3000) ** 2
    y = (rng.random(3000) < np.sqrt(p)).astype(int)
    for n_bins in [5, 10, 20]:
        frac, mean = calibration_curve(y, p, n_bins=n_bins, strategy="uniform")
        counts = np.bincount(np.searchsorted(np.linspace(0, 1, n_bins + 1)[1:-1], p), minlength=n_bins)
        ref = np.sum(counts[counts > 0] / len(p) * np.abs(frac - mean))
        assert expected_calibration_error(y, p, n_bins=n_bins) == pytest.approx(ref, abs=1e-12)


def test_ece_top_label_hand_computed():
    proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
    y = np.array([0, 1, 1, 1])
    # bins of width 0.5: conf {0.9, 0.8, 0.7, 0.6} all in (0.5, 1]; accuracy 3/4, mean conf 0.75
    assert expected_calibration_error(y, proba, n_bins=2) == pytest.approx(0.0)
    assert expected_calibration_error(y, proba, n_bins=10) == pytest.approx((0.1 + 0.8 + 0.3 + 0.4) / 4)


def test_experiment_helpers():
    res = run_experiment(lambda arm, n, seed: n / 100 + (0.05 if arm == "aug" else 0) + seed * 1e-3,
                         ["none", "aug"], [10, 20], [0, 1, 2])
    assert len(res) == 12
    s = summarize_experiment(res)
    assert s.loc[(10, "aug"), "gain vs none"] == pytest.approx(0.05)
    assert s.loc[(20, "aug"), "seeds won"] == 3 and s.loc[(20, "none"), "seeds won"] == 0


@pytest.mark.parametrize("call, exc, msg", [
    (lambda X, y: mixup_tabular(X, y.iloc[:5]), DataError, "rows but y has shape"),
    (lambda X, y: mixup_tabular(X.assign(city="x"), y), DataError, "column 'city' is not numeric"),
    (lambda X, y: mixup_tabular(X.iloc[:, :2].assign(a=np.nan), y), DataError, "NaN"),
    (lambda X, y: mixup_tabular(X, y, alpha=0), ConfigError, "alpha must be a positive number"),
    (lambda X, y: mixup_tabular(X, y, n_samples=0), ConfigError, "n_samples"),
    (lambda X, y: mixup_tabular(X, y, classes=[0]), DataError, "not in classes"),
    (lambda X, y: mixup_tabular(X.iloc[:1], y.iloc[:1]), DataError, "at least 2 rows"),
    (lambda X, y: one_hot(np.array([0, 3]), 3), DataError, r"outside \[0, 3\)"),
    (lambda X, y: expected_calibration_error([0, 1], [0.5, np.nan]), DataError, "without NaN"),
    (lambda X, y: expected_calibration_error([0, 1], [0.5, 0.2], n_bins=0), ConfigError, "n_bins"),
    (lambda X, y: soft_to_weighted(X.iloc[:3], pd.DataFrame({0: [1.0]})), DataError, "rows but Y_soft has"),
    (lambda X, y: summarize_experiment(pd.DataFrame({"arm": ["a"], "n_train": [1], "seed": [0], "score": [1.0]})),
     ConfigError, "baseline arm 'none'"),
])
def test_bad_input(rain, call, exc, msg):
    X, y = rain
    with pytest.raises(exc, match=msg):
        call(X, y)


@pytest.mark.torch
def test_image_mixup_labels_sum_to_one_and_blend():
    torch = pytest.importorskip("torch")
    from mlsys.augment.mixup import Mixup, mixup_batch
    from mlsys.augment.perturb import accuracy, make_mlp, train_classifier
    from mlsys.datasets import load_digits
    x, y = load_digits(as_arrays=True)
    X, Y = torch.from_numpy(x / 16.0).float().unsqueeze(1), torch.from_numpy(y)
    for per_sample in [False, True]:
        g = torch.Generator().manual_seed(0)
        xm, ym, lam = mixup_batch(X[:128], Y[:128], 0.4, 10, g, per_sample)
        torch.testing.assert_close(ym.sum(axis=1), torch.ones(128))
        perm = torch.randperm(128, generator=torch.Generator().manual_seed(0))
        lx = lam.view(-1, 1, 1, 1) if per_sample else lam
        torch.testing.assert_close(xm, lx * X[:128] + (1 - lx) * X[perm])
        # labels mix the same two classes with the same weight as the pixels
        ly = lam.view(-1, 1) if per_sample else lam
        torch.testing.assert_close(ym, ly * one_hot(Y[:128], 10) + (1 - ly) * one_hot(Y[perm], 10))
    m = train_classifier(make_mlp(64, 10), X[:600], Y[:600], epochs=6, batch_transform=Mixup(0.4, 10))
    assert accuracy(m, X[800:], Y[800:]) > 0.85
    with pytest.raises(DataError, match="x has 10 rows but y has 9"):
        mixup_batch(X[:10], Y[:9], 0.4, 10)
    with pytest.raises(ConfigError, match="num_classes is required"):
        mixup_batch(X[:10], Y[:10])
