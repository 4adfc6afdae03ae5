"""Bad input to every public entry point of mlsys.augment.perturb is refused with a named mlsys error.

One row per case: (callable, the mlsys error expected, a fragment of its message that names the input).
A sweep then feeds every entry point generic bad values and fails on any raw library error.
"""

import numpy as np
import pytest
from badinput import each, raw_errors

from mlsys.core import ConfigError, DataError, MlsysError

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from mlsys.augment.perturb import (  # noqa: E402 - after the torch guard
    FGSMAugment,
    GaussianNoise,
    accuracy,
    add_noise,
    as_batch_transform,
    deepfool,
    fgsm,
    make_cnn,
    make_mlp,
    predict,
    train_classifier,
)

torch.set_num_threads(1)
X = torch.rand(6, 1, 6, 6, generator=torch.Generator().manual_seed(0))
Y = torch.tensor([0, 1, 2, 0, 1, 2])
NAN = torch.full_like(X, float("nan"))
M = make_mlp(36, 3)


def returns_none(xb, yb, g):
    return None


CASES = [
    ("make_mlp(n_inputs=None)", lambda: make_mlp(None, 3), ConfigError, "n_inputs must be an int in [1,"),
    ("make_mlp(n_inputs=-1)", lambda: make_mlp(-1, 3), ConfigError, "n_inputs"),
    ("make_mlp(n_inputs=True)", lambda: make_mlp(True, 3), ConfigError, "n_inputs"),  # a 1-input model
    ("make_mlp(n_classes=1)", lambda: make_mlp(36, 1), ConfigError, "n_classes must be an int in [2,"),
    ("make_mlp(n_classes=0)", lambda: make_mlp(36, 0), ConfigError, "n_classes"),  # returned a 0-logit model
    ("make_mlp(hidden=0)", lambda: make_mlp(36, 3, hidden=0), ConfigError, "hidden must be an int in [1,"),
    ("make_mlp(hidden=1.5)", lambda: make_mlp(36, 3, hidden=1.5), ConfigError, "hidden"),
    ("make_mlp(too big)", lambda: make_mlp(2**20, 3, hidden=2**20), ConfigError, "weights exceed"),  # MemoryError
    ("make_mlp(seed='x')", lambda: make_mlp(36, 3, seed="x"), ConfigError, "seed must be a non-negative int"),
    ("make_mlp(seed=1.5)", lambda: make_mlp(36, 3, seed=1.5), ConfigError, "seed"),  # truncated
    ("make_mlp(seed=True)", lambda: make_mlp(36, 3, seed=True), ConfigError, "seed"),
    ("make_cnn(n_classes=None)", lambda: make_cnn(None), ConfigError, "n_classes must be an int"),
    ("make_cnn(image_size=None)", lambda: make_cnn(3, image_size=None), ConfigError, "image_size must be an even int >= 2"),
    ("make_cnn(image_size=8.0)", lambda: make_cnn(3, image_size=8.0), ConfigError, "image_size"),
    ("make_cnn(in_channels=0)", lambda: make_cnn(3, in_channels=0), ConfigError, "in_channels must be an int in [1,"),
    ("make_cnn(in_channels=1.5)", lambda: make_cnn(3, in_channels=1.5), ConfigError, "in_channels"),
    ("make_cnn(channels='x')", lambda: make_cnn(3, channels="x"), ConfigError, "channels must be an int"),
    ("make_cnn(too big)", lambda: make_cnn(1000, image_size=4096, channels=64), ConfigError, "would need more than"),
    ("make_cnn(seed=None)", lambda: make_cnn(3, seed=None), ConfigError, "seed"),
    ("train_classifier(y=None)", lambda: train_classifier(M, X, None, epochs=1), DataError, "y must be class indices (N,) or class probabilities"),
    ("train_classifier(NaN x)", lambda: train_classifier(M, NAN, Y, epochs=1), DataError, "x holds 216 NaN or infinite values"),  # trained on NaN
    ("train_classifier(lr=0)", lambda: train_classifier(M, X, Y, epochs=1, lr=0), ConfigError, "lr must be a positive finite number"),  # no training
    ("train_classifier(lr=inf)", lambda: train_classifier(M, X, Y, epochs=1, lr=np.inf), ConfigError, "lr"),  # NaN weights
    ("train_classifier(lr=-1)", lambda: train_classifier(M, X, Y, epochs=1, lr=-1), ConfigError, "lr"),
    ("train_classifier(lr='x')", lambda: train_classifier(M, X, Y, epochs=1, lr="x"), ConfigError, "lr"),
    ("train_classifier(weight_decay=-1)", lambda: train_classifier(M, X, Y, epochs=1, weight_decay=-1), ConfigError, "weight_decay must be a non-negative"),
    ("train_classifier(weight_decay=True)", lambda: train_classifier(M, X, Y, epochs=1, weight_decay=True), ConfigError, "weight_decay"),
    ("train_classifier(seed=None)", lambda: train_classifier(M, X, Y, epochs=1, seed=None), ConfigError, "seed must be a non-negative int"),
    ("train_classifier(seed=1.5)", lambda: train_classifier(M, X, Y, epochs=1, seed=1.5), ConfigError, "seed"),
    ("train_classifier(batch_transform='x')", lambda: train_classifier(M, X, Y, epochs=1, batch_transform="x"), ConfigError, "batch_transform must be None or a callable"),
    ("train_classifier(batch_transform returns None)", lambda: train_classifier(M, X, Y, epochs=1, batch_transform=returns_none), DataError, "must return (xb, targets)"),
    ("train_classifier(NaN soft labels)", lambda: train_classifier(M, X, torch.full((6, 3), float("nan")), epochs=1), DataError, "soft labels y must be non-negative"),
    ("train_classifier(empty)", lambda: train_classifier(M, X[:0], Y[:0], epochs=1), DataError, "x must be a non-empty batch"),
    ("predict(NaN)", lambda: predict(M, NAN), DataError, "x holds 216 NaN"),
    ("predict(empty feature dim)", lambda: predict(M, torch.rand(3, 0, 6, 6)), DataError, "x must be a non-empty batch"),
    ("predict(model=None)", lambda: predict(None, X), ConfigError, "model must be a torch.nn.Module"),
    ("accuracy(y=None)", lambda: accuracy(M, X, None), DataError, "y must be a 1-d torch.long tensor"),  # AttributeError
    ("accuracy(y float)", lambda: accuracy(M, X, Y.float()), DataError, "y must be a 1-d torch.long tensor"),
    ("accuracy(y short)", lambda: accuracy(M, X, Y[:2]), DataError, "x has 6 rows but y has 2"),
    ("as_batch_transform(5)", lambda: as_batch_transform(5), ConfigError, "transform must be callable"),
    ("add_noise(std=nan)", lambda: add_noise(X, np.nan), ConfigError, "std must be a non-negative finite number"),  # NaN inputs
    ("add_noise(std=inf)", lambda: add_noise(X, np.inf), ConfigError, "std"),
    ("add_noise(clip=(1, 0))", lambda: add_noise(X, 0.1, clip=(1, 0)), ConfigError, "clip must be None or (low, high) with finite low < high"),  # all 0
    ("add_noise(clip='x')", lambda: add_noise(X, 0.1, clip="x"), ConfigError, "clip must be None"),
    ("add_noise(clip=(nan, 1))", lambda: add_noise(X, 0.1, clip=(np.nan, 1)), ConfigError, "clip"),
    ("add_noise(clip=(0,))", lambda: add_noise(X, 0.1, clip=(0,)), ConfigError, "clip"),
    ("add_noise(generator='x')", lambda: add_noise(X, 0.1, "x"), ConfigError, "generator must be a torch.Generator or None"),
    ("add_noise(NaN)", lambda: add_noise(NAN, 0.1), DataError, "x holds"),
    ("GaussianNoise(std=nan)", lambda: GaussianNoise(np.nan), ConfigError, "std must be"),
    ("GaussianNoise(clip=5)", lambda: GaussianNoise(0.1, clip=5), ConfigError, "clip must be None"),
    ("fgsm(y=None)", lambda: fgsm(M, X, None, 0.1), DataError, "y must be a 1-d torch.long tensor"),  # AttributeError
    ("fgsm(eps=nan)", lambda: fgsm(M, X, Y, np.nan), ConfigError, "eps must be a non-negative finite number"),  # NaN examples
    ("fgsm(eps=inf)", lambda: fgsm(M, X, Y, np.inf), ConfigError, "eps"),
    ("fgsm(clip=(1, 0))", lambda: fgsm(M, X, Y, 0.1, clip=(1, 0)), ConfigError, "clip"),
    ("fgsm(NaN)", lambda: fgsm(M, NAN, Y, 0.1), DataError, "x holds"),
    ("deepfool(NaN)", lambda: deepfool(M, NAN, max_iter=2), DataError, "x holds 216 NaN"),  # returned NaN adversarial examples
    ("deepfool(overshoot=None)", lambda: deepfool(M, X, overshoot=None), ConfigError, "overshoot must be a non-negative finite number"),
    ("deepfool(overshoot=inf)", lambda: deepfool(M, X, overshoot=np.inf), ConfigError, "overshoot"),
    ("deepfool(overshoot=True)", lambda: deepfool(M, X, overshoot=True), ConfigError, "overshoot"),
    ("deepfool(max_iter=2**40)", lambda: deepfool(M, X, max_iter=2**40), ConfigError, "max_iter must be a positive int (at most 10,000)"),
    ("deepfool(clip='x')", lambda: deepfool(M, X, clip="x"), ConfigError, "clip must be None"),
    ("FGSMAugment(ratio=None)", lambda: FGSMAugment(M, ratio=None), ConfigError, "ratio must be in (0, 1]"),
    ("FGSMAugment(ratio=True)", lambda: FGSMAugment(M, ratio=True), ConfigError, "ratio"),
    ("FGSMAugment(ratio=nan)", lambda: FGSMAugment(M, ratio=np.nan), ConfigError, "ratio"),
    ("FGSMAugment(eps=inf)", lambda: FGSMAugment(M, eps=np.inf), ConfigError, "eps must be"),
    ("FGSMAugment(clip=5)", lambda: FGSMAugment(M, clip=5), ConfigError, "clip must be None"),
    ("FGSMAugment()(None, y)", lambda: FGSMAugment(M)(None, Y), DataError, "xb must be a floating-point torch.Tensor, got NoneType"),
    ("FGSMAugment()(x, None)", lambda: FGSMAugment(M)(X, None), DataError, "y must be a 1-d torch.long tensor"),
    ("FGSMAugment()(NaN, y)", lambda: FGSMAugment(M)(NAN, Y), DataError, "xb holds"),
]


@pytest.mark.parametrize("fn, error, fragment", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_named(fn, error, fragment):
    with pytest.raises(error) as info:
        fn()
    assert isinstance(info.value, MlsysError)
    assert fragment in str(info.value), str(info.value)


def test_good_input_unchanged():
    "numpy integers as sizes and seeds, a list as clip, 2-D inputs: accepted as before."
    a, b = make_mlp(np.int64(36), 3, seed=np.int64(1)), make_mlp(36, 3, seed=1)
    torch.testing.assert_close(a(X), b(X))
    torch.testing.assert_close(add_noise(X, 0.0, clip=[0, 1]), X)
    flat = make_mlp(4, 2)
    assert predict(flat, torch.rand(5, 4)).shape == (5,)




def test_sweep_no_entry_point_raises_a_raw_error():
    "Every entry point and parameter, every generic bad value: refused by an mlsys error, or accepted."
    fa = FGSMAugment(M)
    calls = {
        **each(make_mlp, n_inputs=36, n_classes=3, hidden=8, seed=0),
        **each(make_cnn, n_classes=3, image_size=6, in_channels=1, channels=4, seed=0),
        **each(train_classifier, model=M, x=X, y=Y, epochs=1, lr=1e-2, batch_size=4, batch_transform=None, weight_decay=0.0, seed=0),
        **each(predict, model=M, x=X),
        **each(accuracy, model=M, x=X, y=Y),
        "as_batch_transform": lambda v: as_batch_transform(v)(X, Y),
        **each(add_noise, x=X, std=0.1, generator=None, clip=(0.0, 1.0)),
        **{f"GaussianNoise.{k}": (lambda v, k=k: GaussianNoise(**{k: v})(X)) for k in ("std", "clip")},
        **each(fgsm, model=M, x=X, y=Y, eps=0.1, clip=(0.0, 1.0)),
        **each(deepfool, model=M, x=X, overshoot=0.02, max_iter=3, clip=None),
        **{f"FGSMAugment.{k}": (lambda v, k=k: FGSMAugment(**({"model": M} | {k: v}))(X, Y)) for k in ("model", "eps", "ratio", "clip")},
        "FGSMAugment.__call__.xb": lambda v: fa(v, Y), "FGSMAugment.__call__.yb": lambda v: fa(X, v),
    }
    assert raw_errors(calls) == []
