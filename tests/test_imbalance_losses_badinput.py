"""Bad input to every public entry point of mlsys.imbalance.losses is refused with a named mlsys error.

One row per case: (callable, the mlsys error expected, a fragment of its message that names the input).
A sweep then feeds every entry point generic bad values and fails on any raw library error.
"""

import numpy as np
import pandas as pd
import pytest
from badinput import check_named, each, raw_errors

from mlsys.core import ConfigError, DataError

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from mlsys.imbalance.losses import (  # noqa: E402 - after the torch guard
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
LG = torch.randn(4, 2, generator=torch.Generator().manual_seed(0))
TG = torch.tensor([0, 1, 1, 0])
C = [[0, 1], [5, 0]]
X = np.random.default_rng(0).normal(size=(40, 3)).astype("float32")
Y = np.r_[np.zeros(30, int), np.ones(10, int)]


def model():
    return mlp(3)


CASES = [
    ("CostSensitiveLoss(cost_matrix='x')", lambda: CostSensitiveLoss("x"), ConfigError, "cost_matrix must be numbers, got str"),
    ("CostSensitiveLoss(cost_matrix strings)", lambda: CostSensitiveLoss([[0, "a"], [1, 0]]), ConfigError, "cost_matrix must be numbers"),
    ("CostSensitiveLoss(cost_matrix NaN)", lambda: CostSensitiveLoss([[0, np.nan], [1, 0]]), ConfigError, "cost_matrix entries must be finite"),
    ("CostSensitiveLoss(expected_cost_weight=None)", lambda: CostSensitiveLoss(C, None), ConfigError, "expected_cost_weight must be >= 0"),
    ("CostSensitiveLoss(expected_cost_weight=inf)", lambda: CostSensitiveLoss(C, np.inf), ConfigError, "expected_cost_weight"),  # inf loss
    ("CostSensitiveLoss(expected_cost_weight=True)", lambda: CostSensitiveLoss(C, True), ConfigError, "expected_cost_weight"),
    ("CostSensitiveLoss(reduction=array)", lambda: CostSensitiveLoss(C, reduction=np.array([])), ConfigError, "reduction must be one of"),
    ("CostSensitiveLoss.forward(None, target)", lambda: CostSensitiveLoss(C)(None, TG), DataError, "logits must be a floating-point torch.Tensor, got NoneType"),
    ("CostSensitiveLoss.forward(logits, None)", lambda: CostSensitiveLoss(C)(LG, None), DataError, "target must be a torch.Tensor of class labels, got NoneType"),
    ("CostSensitiveLoss.forward(float target)", lambda: CostSensitiveLoss(C)(LG, TG.float()), DataError, "target must hold integer class indices, got dtype torch.float32"),
    ("CostSensitiveLoss.forward(bool target)", lambda: CostSensitiveLoss(C)(LG, TG.bool()), DataError, "target must be a torch.Tensor of class labels"),
    ("CostSensitiveLoss.forward(NaN logits)", lambda: CostSensitiveLoss(C)(torch.full((4, 2), float("nan")), TG), DataError, "logits hold 8 NaN or infinite values"),
    ("CostSensitiveLoss.forward(long logits)", lambda: CostSensitiveLoss(C)(LG.long(), TG), DataError, "logits must be a floating-point torch.Tensor"),
    ("CostSensitiveLoss.forward(numpy)", lambda: CostSensitiveLoss(C)(LG.numpy(), TG), DataError, "got ndarray"),
    ("ClassBalancedLoss.forward(inf logits)", lambda: ClassBalancedLoss([10, 2])(LG * np.inf, TG), DataError, "logits hold"),
    ("FocalLoss.forward(target 'x')", lambda: FocalLoss()(LG, "x"), DataError, "target must be a torch.Tensor"),
    ("FocalLoss.forward(target out of range)", lambda: FocalLoss()(LG, torch.tensor([0, 1, 2, 0])), DataError, "class indices in [0, 2)"),
    ("BinaryFocalLoss.forward(None, target)", lambda: BinaryFocalLoss()(None, TG.float()), DataError, "logits must be a floating-point torch.Tensor"),
    ("BinaryFocalLoss.forward(target 2)", lambda: BinaryFocalLoss()(torch.randn(4), torch.tensor([0, 2.0, 1, 0])), DataError, "target must hold 0/1 labels (or probabilities in [0, 1]), got range [0, 2]"),
    ("BinaryFocalLoss.forward(target -1)", lambda: BinaryFocalLoss()(torch.randn(4), torch.tensor([0, -1.0, 1, 0])), DataError, "target must hold 0/1 labels"),
    ("BinaryFocalLoss.forward(target NaN)", lambda: BinaryFocalLoss()(torch.randn(4), torch.full((4,), float("nan"))), DataError, "target must hold 0/1 labels"),
    ("BinaryFocalLoss.forward(NaN logits)", lambda: BinaryFocalLoss()(torch.full((4,), float("nan")), TG.float()), DataError, "logits hold 4 NaN"),
    ("effective_number_weights('x')", lambda: effective_number_weights("x"), ConfigError, "samples_per_class must be numbers, got str"),
    ("effective_number_weights(strings)", lambda: effective_number_weights([10, "a"]), ConfigError, "samples_per_class must be numbers"),
    ("effective_number_weights(10.5)", lambda: effective_number_weights([10.5, 2]), ConfigError, "samples_per_class must be positive counts"),
    ("effective_number_weights(bools)", lambda: effective_number_weights([True, 2]), ConfigError, "samples_per_class must be positive counts, got booleans"),
    ("effective_number_weights(beta=None)", lambda: effective_number_weights([10, 2], None), ConfigError, "beta must be in [0, 1)"),
    ("effective_number_weights(beta='x')", lambda: effective_number_weights([10, 2], "x"), ConfigError, "beta"),
    ("effective_number_weights(beta=True)", lambda: effective_number_weights([10, 2], True), ConfigError, "beta"),
    ("ClassBalancedLoss(gamma=None)", lambda: ClassBalancedLoss([10, 2], gamma=None), ConfigError, "gamma must be >= 0 (and finite)"),
    ("ClassBalancedLoss(gamma=inf)", lambda: ClassBalancedLoss([10, 2], gamma=np.inf), ConfigError, "gamma must be >= 0"),
    ("ClassBalancedLoss(loss=5)", lambda: ClassBalancedLoss([10, 2], loss=5), ConfigError, "loss must be 'ce' or 'focal'"),
    ("FocalLoss(gamma='x')", lambda: FocalLoss(gamma="x"), ConfigError, "gamma must be >= 0"),
    ("FocalLoss(gamma=True)", lambda: FocalLoss(gamma=True), ConfigError, "gamma"),
    ("FocalLoss(alpha NaN)", lambda: FocalLoss(alpha=[1, np.nan]), ConfigError, "alpha must be a 1-D sequence of non-negative class weights"),  # NaN loss
    ("FocalLoss(alpha inf)", lambda: FocalLoss(alpha=[1, np.inf]), ConfigError, "alpha must be"),
    ("FocalLoss(alpha='x')", lambda: FocalLoss(alpha="x"), ConfigError, "alpha must be numbers, got str"),
    ("FocalLoss(alpha strings)", lambda: FocalLoss(alpha=[1, "a"]), ConfigError, "alpha must be numbers"),
    ("BinaryFocalLoss(alpha=None)", lambda: BinaryFocalLoss(alpha=None), ConfigError, "alpha must be <= 1 (negative disables it)"),
    ("BinaryFocalLoss(alpha=nan)", lambda: BinaryFocalLoss(alpha=np.nan), ConfigError, "alpha must be <= 1"),
    ("BinaryFocalLoss(alpha=-inf)", lambda: BinaryFocalLoss(alpha=-np.inf), ConfigError, "alpha must be <= 1"),
    ("BinaryFocalLoss(alpha=True)", lambda: BinaryFocalLoss(alpha=True), ConfigError, "alpha"),
    ("BinaryFocalLoss(gamma=None)", lambda: BinaryFocalLoss(gamma=None), ConfigError, "gamma must be >= 0"),
    ("mlp(n_features=None)", lambda: mlp(None), ConfigError, "n_features must be an integer in [1,"),
    ("mlp(n_features=0)", lambda: mlp(0), ConfigError, "n_features"),  # a 0-input model
    ("mlp(n_features=1.5)", lambda: mlp(1.5), ConfigError, "n_features"),
    ("mlp(n_classes=1)", lambda: mlp(3, n_classes=1), ConfigError, "n_classes must be an integer in [2,"),
    ("mlp(hidden=0)", lambda: mlp(3, hidden=0), ConfigError, "hidden"),
    ("mlp(too big)", lambda: mlp(2**20, hidden=2**20), ConfigError, "weights exceed"),
    ("mlp(seed='x')", lambda: mlp(3, seed="x"), ConfigError, "seed must be an integer"),
    ("mlp(seed=-1)", lambda: mlp(3, seed=-1), ConfigError, "seed"),
    ("fit_torch(model=None)", lambda: fit_torch(None, X, Y, epochs=1), ConfigError, "model must be a torch.nn.Module"),
    ("fit_torch(X strings)", lambda: fit_torch(model(), X.astype(str), Y, epochs=1), DataError, "X must be numeric"),  # were parsed
    ("fit_torch(X NaN)", lambda: fit_torch(model(), np.full_like(X, np.nan), Y, epochs=1), DataError, "X holds 120 NaN or infinite values"),  # trained on NaN
    ("fit_torch(X='x')", lambda: fit_torch(model(), "x", Y, epochs=1), DataError, "X must be 2-D, got str"),
    ("fit_torch(X empty)", lambda: fit_torch(model(), X[:0], Y[:0], epochs=1), DataError, "X must have rows and features"),  # untrained model
    ("fit_torch(X frame of strings)", lambda: fit_torch(model(), pd.DataFrame(X).assign(s="a"), Y, epochs=1), DataError, "X must be numeric"),
    ("fit_torch(wrong features)", lambda: fit_torch(model(), X[:, :2], Y, epochs=1), DataError, "X of shape (1, 2) does not fit the model"),
    ("fit_torch(y=None)", lambda: fit_torch(model(), X, None, epochs=1), DataError, "y must be 1-D integer class indices 0..K-1, got NoneType"),
    ("fit_torch(y='x')", lambda: fit_torch(model(), X, "x", epochs=1), DataError, "y must be 1-D integer class indices"),
    ("fit_torch(epochs=0)", lambda: fit_torch(model(), X, Y, epochs=0), ConfigError, "epochs must be an integer in [1,"),  # untrained model
    ("fit_torch(epochs=1.5)", lambda: fit_torch(model(), X, Y, epochs=1.5), ConfigError, "epochs"),
    ("fit_torch(epochs=True)", lambda: fit_torch(model(), X, Y, epochs=True), ConfigError, "epochs"),
    ("fit_torch(batch_size=-1)", lambda: fit_torch(model(), X, Y, epochs=1, batch_size=-1), ConfigError, "batch_size"),  # no steps ran
    ("fit_torch(lr=0)", lambda: fit_torch(model(), X, Y, epochs=1, lr=0), ConfigError, "lr must be a finite number in (0, inf)"),
    ("fit_torch(lr=None)", lambda: fit_torch(model(), X, Y, epochs=1, lr=None), ConfigError, "lr"),
    ("fit_torch(loss_fn='x')", lambda: fit_torch(model(), X, Y, epochs=1, loss_fn="x"), ConfigError, "loss_fn must be None or a callable"),
    ("fit_torch(epoch_indices='x')", lambda: fit_torch(model(), X, Y, epochs=1, epoch_indices="x"), ConfigError, "epoch_indices must be None or a callable"),
    ("fit_torch(epoch_indices out of range)", lambda: fit_torch(model(), X, Y, epochs=1, epoch_indices=lambda e, m: [100]), DataError, "epoch_indices returned rows outside [0, 40)"),
    ("fit_torch(epoch_indices floats)", lambda: fit_torch(model(), X, Y, epochs=1, epoch_indices=lambda e, m: [0.5]), DataError, "epoch_indices must return 1-D integer row indices"),
    ("fit_torch(seed=None)", lambda: fit_torch(model(), X, Y, epochs=1, seed=None), ConfigError, "seed"),
    ("predict_scores(model=None)", lambda: predict_scores(None, X), ConfigError, "model must be a torch.nn.Module"),
    ("predict_scores(NaN)", lambda: predict_scores(model(), np.full_like(X, np.nan)), DataError, "X holds"),  # NaN scores
    ("predict_scores(wrong features)", lambda: predict_scores(model(), X[:, :2]), DataError, "does not fit the model"),
    ("predict_scores(X=None)", lambda: predict_scores(model(), None), DataError, "X must be 2-D"),
    ("two_phase_fit(model='x')", lambda: two_phase_fit("x", X, Y), ConfigError, "model must be a torch.nn.Module"),
    ("two_phase_fit(epochs=5)", lambda: two_phase_fit(model(), X, Y, epochs=5), ConfigError, "epochs must be a pair (phase 1, phase 2)"),
    ("two_phase_fit(epochs=(-1, 1))", lambda: two_phase_fit(model(), X, Y, epochs=(-1, 1)), ConfigError, "epochs must be an integer"),
    ("two_phase_fit(lr=(nan, 1))", lambda: two_phase_fit(model(), X, Y, lr=(np.nan, 1)), ConfigError, "lr must be a finite number"),
    ("two_phase_fit(lr=None)", lambda: two_phase_fit(model(), X, Y, lr=None), ConfigError, "lr must be a pair"),
    ("two_phase_fit(one class)", lambda: two_phase_fit(model(), X, np.zeros(40, int)), DataError, "y must contain at least 2 classes"),
    ("two_phase_fit(seed=1.5)", lambda: two_phase_fit(model(), X, Y, seed=1.5), ConfigError, "seed"),
    ("dynamic_sampling_rates('x')", lambda: dynamic_sampling_rates("x"), DataError, "scores must be numbers, got str"),
    ("dynamic_sampling_rates(strings)", lambda: dynamic_sampling_rates(["a", "b"]), DataError, "scores must be numbers"),
    ("dynamic_sampling_rates(floor=nan)", lambda: dynamic_sampling_rates([0.5, 0.2], np.nan), ConfigError, "floor must be > 0 (and finite)"),  # NaN rates
    ("dynamic_sampling_rates(floor=None)", lambda: dynamic_sampling_rates([0.5, 0.2], None), ConfigError, "floor"),
    ("dynamic_sampling_rates(floor=True)", lambda: dynamic_sampling_rates([0.5, 0.2], True), ConfigError, "floor"),
    ("dynamic_epoch_indices(y=None)", lambda: dynamic_epoch_indices(None, [0.5, 0.5]), DataError, "y must be 1-D integer class labels, got NoneType"),
    ("dynamic_epoch_indices(y floats)", lambda: dynamic_epoch_indices(Y + 0.5, [0.5, 0.5]), DataError, "y must be non-empty integer class labels"),
    ("dynamic_epoch_indices(y empty)", lambda: dynamic_epoch_indices([], [0.5, 0.5]), DataError, "y must be non-empty"),
    ("dynamic_epoch_indices(rates sum 1.8)", lambda: dynamic_epoch_indices(Y, [0.9, 0.9]), DataError, "rates must be per-class shares that are >= 0 and sum to 1"),  # 72 rows
    ("dynamic_epoch_indices(rates NaN)", lambda: dynamic_epoch_indices(Y, [np.nan, 1]), DataError, "rates must be per-class shares"),
    ("dynamic_epoch_indices(rates too few)", lambda: dynamic_epoch_indices(Y, [1.0]), DataError, "rates has 1 classes but y holds class 1"),  # class 1 never drawn
    ("dynamic_epoch_indices(rates='x')", lambda: dynamic_epoch_indices(Y, "x"), DataError, "rates must be numbers"),
    ("dynamic_epoch_indices(n_rows=1.5)", lambda: dynamic_epoch_indices(Y, [0.5, 0.5], 1.5), ConfigError, "n_rows must be an integer in [1,"),
    ("dynamic_epoch_indices(n_rows=-1)", lambda: dynamic_epoch_indices(Y, [0.5, 0.5], -1), ConfigError, "n_rows"),
    ("dynamic_epoch_indices(n_rows=2**40)", lambda: dynamic_epoch_indices(Y, [0.5, 0.5], 2**40), ConfigError, "n_rows"),
    ("dynamic_epoch_indices(rng='x')", lambda: dynamic_epoch_indices(Y, [0.5, 0.5], rng="x"), ConfigError, "rng must be a numpy Generator"),
    ("dynamic_epoch_indices(rng=RandomState)", lambda: dynamic_epoch_indices(Y, [0.5, 0.5], rng=np.random.RandomState(0)), ConfigError, "rng must be a numpy Generator"),
    ("dynamic_fit(model=None)", lambda: dynamic_fit(None, X, Y, X, Y), ConfigError, "model must be a torch.nn.Module"),
    ("dynamic_fit(X_val strings)", lambda: dynamic_fit(model(), X, Y, X.astype(str), Y), DataError, "X_val must be numeric"),
    ("dynamic_fit(y_val=None)", lambda: dynamic_fit(model(), X, Y, X, None), DataError, "y_val must be 1-D integer class indices"),
    ("dynamic_fit(y_val short)", lambda: dynamic_fit(model(), X, Y, X, Y[:5]), DataError, "X_val has 40 rows but y_val has 5 labels"),
    ("dynamic_fit(epochs='x')", lambda: dynamic_fit(model(), X, Y, X, Y, epochs="x"), ConfigError, "epochs"),
    ("dynamic_fit(lr=None)", lambda: dynamic_fit(model(), X, Y, X, Y, lr=None), ConfigError, "lr"),
    ("BalancedBaggingClassifier.fit(X=None)", lambda: BalancedBaggingClassifier().fit(None, Y), DataError, "X/y: Expected 2D array"),
    ("BalancedBaggingClassifier.fit(y=None)", lambda: BalancedBaggingClassifier().fit(X, None), DataError, "requires y to be passed"),
    ("BalancedBaggingClassifier.fit(NaN)", lambda: BalancedBaggingClassifier().fit(np.full_like(X, np.nan), Y), DataError, "X/y: Input X contains NaN"),
    ("BalancedBaggingClassifier(estimator='x')", lambda: BalancedBaggingClassifier(estimator="x").fit(X, Y), ConfigError, "estimator must be a scikit-learn classifier"),
    ("BalancedBaggingClassifier(random_state='x')", lambda: BalancedBaggingClassifier(random_state="x").fit(X, Y), ConfigError, "random_state must be None"),
    ("BalancedBaggingClassifier(random_state=True)", lambda: BalancedBaggingClassifier(random_state=True).fit(X, Y), ConfigError, "random_state"),
    ("BalancedBaggingClassifier.predict_proba(wrong features)", lambda: BalancedBaggingClassifier(n_estimators=2).fit(X, Y).predict_proba(X[:, :2]), DataError, "X has 2 features"),
]


@pytest.mark.parametrize("fn, error, fragment", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_named(fn, error, fragment):
    check_named(fn, error, fragment)


def test_good_input_unchanged():
    "float64 logits, int32 targets, soft binary targets and numpy integers still work; losses match before."
    ce = torch.nn.functional.cross_entropy(LG, TG)
    torch.testing.assert_close(FocalLoss(gamma=0)(LG, TG.int()), ce)
    torch.testing.assert_close(CostSensitiveLoss(1 - np.eye(2))(LG.double(), TG), ce.double())
    soft = BinaryFocalLoss(gamma=0, alpha=-1)(torch.zeros(4), torch.full((4,), 0.5))
    torch.testing.assert_close(soft, torch.tensor(np.log(2.0), dtype=torch.float32))
    np.testing.assert_allclose(effective_number_weights(np.array([10, 2], dtype=np.int64)), effective_number_weights([10.0, 2.0]))
    assert dynamic_epoch_indices(Y, [0.5, 0.5], n_rows=np.int64(10)).shape == (10,)




def test_sweep_no_entry_point_raises_a_raw_error():
    "Every entry point and parameter, every generic bad value: refused by an mlsys error, or accepted."
    m = model()
    bb = BalancedBaggingClassifier(n_estimators=2).fit(X, Y)
    losses = {"CostSensitiveLoss": CostSensitiveLoss(C), "ClassBalancedLoss": ClassBalancedLoss([10, 2]), "FocalLoss": FocalLoss()}
    calls = {
        **{f"CostSensitiveLoss.{k}": (lambda v, k=k: CostSensitiveLoss(**({"cost_matrix": C} | {k: v}))(LG, TG))
           for k in ("cost_matrix", "expected_cost_weight", "reduction")},
        **{f"ClassBalancedLoss.{k}": (lambda v, k=k: ClassBalancedLoss(**({"samples_per_class": [10, 2]} | {k: v}))(LG, TG))
           for k in ("samples_per_class", "beta", "loss", "gamma", "reduction")},
        **{f"FocalLoss.{k}": (lambda v, k=k: FocalLoss(**{k: v})(LG, TG)) for k in ("gamma", "alpha", "reduction")},
        **{f"BinaryFocalLoss.{k}": (lambda v, k=k: BinaryFocalLoss(**{k: v})(LG[:, 0], TG.float())) for k in ("gamma", "alpha", "reduction")},
        **{f"{n}.forward.logits": (lambda v, L=L: L(v, TG)) for n, L in losses.items()},
        **{f"{n}.forward.target": (lambda v, L=L: L(LG, v)) for n, L in losses.items()},
        "BinaryFocalLoss.forward.logits": lambda v: BinaryFocalLoss()(v, TG.float()),
        "BinaryFocalLoss.forward.target": lambda v: BinaryFocalLoss()(LG[:, 0], v),
        **each(effective_number_weights, samples_per_class=[10, 2], beta=0.999),
        **each(mlp, n_features=3, n_classes=2, hidden=4, seed=0),
        **each(fit_torch, model=m, X=X, y=Y, loss_fn=None, epochs=1, batch_size=64, lr=1e-2, epoch_indices=None, seed=0),
        **each(predict_scores, model=m, X=X),
        **each(two_phase_fit, model=m, X=X, y=Y, n_per_class=None, epochs=(1, 1), lr=(1e-2, 1e-3), loss_fn=None, seed=0),
        **each(dynamic_sampling_rates, scores=[0.5, 0.2], floor=0.05),
        **each(dynamic_epoch_indices, y=Y, rates=[0.5, 0.5], n_rows=None, rng=None),
        **each(dynamic_fit, model=m, X=X, y=Y, X_val=X, y_val=Y, epochs=1, loss_fn=None, lr=1e-2, seed=0),
        **{f"BalancedBaggingClassifier.{k}": (lambda v, k=k: BalancedBaggingClassifier(**({"n_estimators": 2} | {k: v})).fit(X, Y))
           for k in ("estimator", "n_estimators", "random_state")},
        "BalancedBaggingClassifier.fit.X": lambda v: BalancedBaggingClassifier(n_estimators=2).fit(v, Y),
        "BalancedBaggingClassifier.fit.y": lambda v: BalancedBaggingClassifier(n_estimators=2).fit(X, v),
        "BalancedBaggingClassifier.predict_proba": lambda v: bb.predict_proba(v),
        "BalancedBaggingClassifier.predict": lambda v: bb.predict(v),
    }
    assert raw_errors(calls) == []
