"""Every public entry point of mlsys.labeling.transfer refuses bad input with a named mlsys error that names the input.

Classes swept: None, wrong types (numpy arrays for tensors, floats for counts, bool-as-int), NaN/inf images, empty
and mis-shaped tensors, mismatched lengths, labels outside the head's classes, non-positive or non-finite learning
rates and C, a pretrained model of another width (its features no longer fit a new head). Before, each of these
was a raw torch/numpy/sklearn error (RuntimeError, IndexError, TypeError, InvalidParameterError) or silent NaN
weights.
"""
import pytest

torch = pytest.importorskip("torch")

import mlsys.labeling.transfer as T  # noqa: E402
from mlsys.core import ConfigError, DataError, MlsysError  # noqa: E402

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def tiny():
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    X = torch.rand(12, 1, 28, 28, generator=g)
    y = torch.arange(12) % 3
    torch.manual_seed(0)
    return X, y, T.SmallCNN(3)


def cases(X, y, m):
    nan_X = X.clone()
    nan_X[0, 0, 0, 0] = float("nan")
    return [
        # ---- SmallCNN
        ("cnn n_classes float", T.SmallCNN, dict(n_classes=2.0), ConfigError, "n_classes must be an integer >= 2, got 2.0"),
        ("cnn n_classes bool", T.SmallCNN, dict(n_classes=True), ConfigError, "n_classes must be an integer >= 2, got True"),
        ("cnn n_classes 1", T.SmallCNN, dict(n_classes=1), ConfigError, "n_classes must be an integer >= 2"),
        ("cnn n_classes None", T.SmallCNN, dict(n_classes=None), ConfigError, "n_classes must be"),
        ("cnn width 0", T.SmallCNN, dict(width=0), ConfigError, "width must be an integer >= 1, got 0"),
        ("cnn width huge", T.SmallCNN, dict(width=10**12), ConfigError, "more than 1024 channels"),
        ("cnn forward numpy", lambda x: m(x), dict(x=X.numpy()), DataError, "SmallCNN takes images of shape \\(N, 1, 28, 28\\), got ndarray"),
        ("cnn forward 3-d", lambda x: m(x), dict(x=X[:, 0]), DataError, "got \\(12, 28, 28\\)"),
        ("cnn forward 32x32", lambda x: m(x), dict(x=torch.zeros(2, 1, 32, 32)), DataError, "got \\(2, 1, 32, 32\\)"),
        # ---- fashion_task (refused before any file is read)
        ("task classes None", T.fashion_task, dict(classes=None), DataError, "classes must be a list of Fashion-MNIST labels in 0..9, got NoneType"),
        ("task classes int", T.fashion_task, dict(classes=5), DataError, "classes must be a list"),
        ("task classes str", T.fashion_task, dict(classes="56"), DataError, "classes must be a list"),
        ("task classes empty", T.fashion_task, dict(classes=[]), DataError, "classes=\\[\\] must be distinct"),
        ("task classes float", T.fashion_task, dict(classes=[1.0, 2.0]), DataError, "must be distinct Fashion-MNIST labels"),
        ("task classes bool", T.fashion_task, dict(classes=[True, 2]), DataError, "must be distinct Fashion-MNIST labels"),
        ("task classes 10", T.fashion_task, dict(classes=[9, 10]), DataError, "must be distinct Fashion-MNIST labels in 0..9"),
        ("task classes duplicate", T.fashion_task, dict(classes=[1, 1]), DataError, "must be distinct"),
        ("task n_per_class float", T.fashion_task, dict(classes=[1, 2], n_per_class=2.5), DataError, "n_per_class=2.5 must be a positive integer or None"),
        ("task n_per_class bool", T.fashion_task, dict(classes=[1, 2], n_per_class=True), DataError, "n_per_class=True must be"),
        ("task n_per_class 0", T.fashion_task, dict(classes=[1, 2], n_per_class=0), DataError, "n_per_class=0 must be"),
        ("task seed str", T.fashion_task, dict(classes=[1, 2], seed="x"), ConfigError, "seed must be an integer >= 0, got 'x'"),
        ("task seed negative", T.fashion_task, dict(classes=[1, 2], seed=-1), ConfigError, "seed must be an integer >= 0"),
        # ---- train_classifier
        ("train model None", T.train_classifier, dict(model=None, X=X, y=y), DataError, "model must be a SmallCNN .*got NoneType"),
        ("train model linear", T.train_classifier, dict(model=torch.nn.Linear(2, 2), X=X, y=y), DataError, "model must be a SmallCNN"),
        ("train X numpy", T.train_classifier, dict(model=m, X=X.numpy(), y=y), DataError, "X must be a torch tensor .*convert it with torch.from_numpy"),
        ("train X empty", T.train_classifier, dict(model=m, X=X[:0], y=y[:0]), DataError, "X and y must be non-empty and of equal length, got 0 and 0"),
        ("train lengths", T.train_classifier, dict(model=m, X=X, y=y[:5]), DataError, "X and y must be non-empty and of equal length, got 12 and 5"),
        ("train X shape", T.train_classifier, dict(model=m, X=X[:, :, :20], y=y), DataError, "X must have shape \\(N, 1, 28, 28\\)"),
        ("train X ints", T.train_classifier, dict(model=m, X=(X * 255).to(torch.uint8), y=y), DataError, "X must hold floats in \\[0, 1\\]"),
        ("train X nan", T.train_classifier, dict(model=m, X=nan_X, y=y), DataError, "X holds 1 NaN or infinite values"),
        ("train y numpy", T.train_classifier, dict(model=m, X=X, y=y.numpy()), DataError, "y must be a torch tensor of class indices, got ndarray"),
        ("train y floats", T.train_classifier, dict(model=m, X=X, y=y.float()), DataError, "y must hold integer class indices, got dtype torch.float32"),
        ("train y outside head", T.train_classifier, dict(model=m, X=X, y=y + 1), DataError, "y holds classes 1..3, outside the model's 0..2"),
        ("train y negative", T.train_classifier, dict(model=m, X=X, y=y - 1), DataError, "outside the model's 0..2"),
        ("train y 2-d", T.train_classifier, dict(model=m, X=X, y=y[:, None]), DataError, "X and y must be non-empty and of equal length"),
        ("train epochs float", T.train_classifier, dict(model=m, X=X, y=y, epochs=2.5), ConfigError, "epochs must be an integer >= 1, got 2.5"),
        ("train epochs 0", T.train_classifier, dict(model=m, X=X, y=y, epochs=0), ConfigError, "epochs must be an integer >= 1"),
        ("train batch_size bool", T.train_classifier, dict(model=m, X=X, y=y, batch_size=True), ConfigError, "batch_size must be an integer >= 1, got True"),
        ("train lr negative", T.train_classifier, dict(model=m, X=X, y=y, lr=-1e-3), ConfigError, "lr must be a finite number > 0, got -0.001"),
        ("train lr nan", T.train_classifier, dict(model=m, X=X, y=y, lr=float("nan")), ConfigError, "lr must be a finite number > 0"),
        ("train lr str", T.train_classifier, dict(model=m, X=X, y=y, lr="1e-3"), ConfigError, "lr must be"),
        ("train feature_lr inf", T.train_classifier, dict(model=m, X=X, y=y, feature_lr=float("inf")), ConfigError, "feature_lr must be a finite number > 0"),
        ("train seed float", T.train_classifier, dict(model=m, X=X, y=y, seed=1.5), ConfigError, "seed must be an integer >= 0"),
        # ---- accuracy and embed
        ("acc model None", T.accuracy, dict(model=None, X=X, y=y), DataError, "model must be a SmallCNN"),
        ("acc X empty", T.accuracy, dict(model=m, X=X[:0], y=y[:0]), DataError, "X must have shape \\(N, 1, 28, 28\\) with N >= 1, got \\(0, 1, 28, 28\\)"),
        ("acc lengths", T.accuracy, dict(model=m, X=X, y=y[:3]), DataError, "got 12 and 3"),
        ("acc batch_size 0", T.accuracy, dict(model=m, X=X, y=y, batch_size=0), ConfigError, "batch_size must be an integer >= 1, got 0"),
        ("embed X list", T.embed, dict(model=m, X=[[0.0]]), DataError, "X must be a torch tensor"),
        ("embed batch_size float", T.embed, dict(model=m, X=X, batch_size=10.0), ConfigError, "batch_size must be an integer"),
        ("embed inf", T.embed, dict(model=m, X=nan_X.nan_to_num(nan=float("inf"))), DataError, "NaN or infinite"),
        # ---- transfer_model
        ("tm mode None", T.transfer_model, dict(pretrained=m, n_classes=3, mode=None), DataError, "mode=None is not one of"),
        ("tm mode list", T.transfer_model, dict(pretrained=m, n_classes=3, mode=["frozen"]), DataError, "is not one of"),
        ("tm needs pretrained", T.transfer_model, dict(pretrained=None, n_classes=3, mode="finetune"), DataError, "mode='finetune' needs a pretrained model"),
        ("tm pretrained wrong type", T.transfer_model, dict(pretrained="model.pt", n_classes=3, mode="frozen"), DataError, "pretrained must be a SmallCNN"),
        ("tm n_classes float", T.transfer_model, dict(pretrained=m, n_classes=3.0, mode="frozen"), ConfigError, "n_classes must be an integer >= 2"),
        ("tm seed negative", T.transfer_model, dict(pretrained=m, n_classes=3, mode="scratch", seed=-2), ConfigError, "seed must be"),
        # ---- linear_probe
        ("probe pretrained None", T.linear_probe, dict(pretrained=None, X=X, y=y), DataError, "pretrained must be a SmallCNN"),
        ("probe lengths", T.linear_probe, dict(pretrained=m, X=X, y=y[:4]), DataError, "X and y must be of equal length, got 12 and shape \\(4,\\)"),
        ("probe one class", T.linear_probe, dict(pretrained=m, X=X, y=torch.zeros(12, dtype=torch.int64)), DataError, "y holds a single class \\(\\[0\\]\\)"),
        ("probe C 0", T.linear_probe, dict(pretrained=m, X=X, y=y, C=0), ConfigError, "C must be a finite number > 0, got 0"),
        ("probe C str", T.linear_probe, dict(pretrained=m, X=X, y=y, C="0.1"), ConfigError, "C must be"),
        # ---- transfer_curve (refused before any training)
        ("curve pretrained None", T.transfer_curve, dict(pretrained=None, target_classes=[5, 6, 7], X_test=X, y_test=y, n_per_class=[1]), DataError, "pretrained must be a SmallCNN"),
        ("curve classes bad", T.transfer_curve, dict(pretrained=m, target_classes=[5, 5], X_test=X, y_test=y, n_per_class=[1]), DataError, "target_classes=\\[5, 5\\] must be distinct"),
        ("curve y_test outside", T.transfer_curve, dict(pretrained=m, target_classes=[5, 6], X_test=X, y_test=y, n_per_class=[1]), DataError, "y_test holds classes 0..2, outside the model's 0..1"),
        ("curve n_per_class int", T.transfer_curve, dict(pretrained=m, target_classes=[5, 6, 7], X_test=X, y_test=y, n_per_class=5), DataError, "n_per_class must be a non-empty list of integers, got 5"),
        ("curve n_per_class empty", T.transfer_curve, dict(pretrained=m, target_classes=[5, 6, 7], X_test=X, y_test=y, n_per_class=[]), DataError, "n_per_class must be a non-empty list"),
        ("curve n_per_class 0", T.transfer_curve, dict(pretrained=m, target_classes=[5, 6, 7], X_test=X, y_test=y, n_per_class=[0]), DataError, "each of n_per_class must be an integer >= 1, got 0"),
        ("curve seeds empty", T.transfer_curve, dict(pretrained=m, target_classes=[5, 6, 7], X_test=X, y_test=y, n_per_class=[1], seeds=[]), DataError, "seeds must be a non-empty list"),
        ("curve seeds float", T.transfer_curve, dict(pretrained=m, target_classes=[5, 6, 7], X_test=X, y_test=y, n_per_class=[1], seeds=[0.5]), DataError, "each of seeds must be an integer >= 0"),
        ("curve steps 0", T.transfer_curve, dict(pretrained=m, target_classes=[5, 6, 7], X_test=X, y_test=y, n_per_class=[1], steps=0), ConfigError, "steps must be an integer >= 1, got 0"),
        ("curve lr 0", T.transfer_curve, dict(pretrained=m, target_classes=[5, 6, 7], X_test=X, y_test=y, n_per_class=[1], lr=0), ConfigError, "lr must be a finite number > 0"),
        ("curve X_test numpy", T.transfer_curve, dict(pretrained=m, target_classes=[5, 6, 7], X_test=X.numpy(), y_test=y, n_per_class=[1]), DataError, "X_test must be a torch tensor"),
    ]


def test_bad_input_is_named(tiny):
    import re
    failures = []
    for name, fn, kwargs, exc, fragment in cases(*tiny):
        try:
            fn(**kwargs)
        except exc as e:
            if not isinstance(e, MlsysError) or not re.search(fragment, str(e)):
                failures.append(f"{name}: {type(e).__name__}: {e}")
        except Exception as e:
            failures.append(f"{name}: raw {type(e).__name__}: {e}")
        else:
            failures.append(f"{name}: returned instead of raising {exc.__name__}")
    assert not failures, "\n".join(failures)


def test_every_public_entry_point_is_swept(tiny):
    names = {getattr(c[1], "__name__", "") for c in cases(*tiny)} | {"SmallCNN"}
    public = {n for n in T.__all__ if callable(getattr(T, n)) and n not in ("torch", "nn")}
    assert public <= names, sorted(public - names)


def test_refusals_leave_the_model_untouched(tiny):
    X, y, m = tiny
    before = [p.clone() for p in m.parameters()]
    nan_X = X.clone()
    nan_X[3] = float("nan")
    with pytest.raises(DataError):
        T.train_classifier(m, nan_X, y, epochs=1)  # before: trained, and every weight became NaN
    assert all(torch.equal(a, b) for a, b in zip(before, m.parameters()))


def test_a_pretrained_model_of_another_width_transfers(tiny):
    X, y, _ = tiny
    wide = T.SmallCNN(3, width=4)
    for mode in ("frozen", "finetune"):
        model = T.transfer_model(wide, 3, mode)
        assert model.head.in_features == wide.head.in_features
        T.train_classifier(model, X, y, epochs=1)
        assert 0 <= T.accuracy(model, X, y) <= 1
