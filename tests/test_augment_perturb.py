"""Perturbation: FGSM and DeepFool against closed-form answers on linear models, adversarial training, bad input."""
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from mlsys.augment.image import RandomCrop
from mlsys.augment.perturb import (FGSMAugment, GaussianNoise, accuracy, add_noise, as_batch_transform, deepfool,
                                   fgsm, make_mlp, predict, train_classifier)
from mlsys.core import ConfigError, DataError
from mlsys.datasets import load_digits

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def data():
    x, y = load_digits(as_arrays=True)
    X = torch.from_numpy(x / 16.0).float().unsqueeze(1)
    Y = torch.from_numpy(y)
    return X[:900], Y[:900], X[900:1300], Y[900:1300]


@pytest.fixture(scope="module")
def mlp(data):
    Xtr, Ytr, _, _ = data
    return train_classifier(make_mlp(64, 10, seed=0), Xtr, Ytr, epochs=15, seed=0)


def test_fgsm_matches_closed_form_for_logistic_regression():
    torch.manual_seed(0)
    lin = torch.nn.Linear(5, 2)
    x = torch.rand(50, 5)
    y = torch.randint(0, 2, (50,))
    adv = fgsm(lin, x, y, eps=0.3, clip=None)
    # d CE / dx = W^T (softmax - onehot)
    with torch.no_grad():
        p = torch.softmax(lin(x), 1)
        grad = (p - torch.nn.functional.one_hot(y, 2).float()) @ lin.weight
    torch.testing.assert_close(adv, x + 0.3 * grad.sign())
    # the loss goes up
    ce = torch.nn.functional.cross_entropy
    assert ce(lin(adv), y) > ce(lin(x), y)


def test_deepfool_exact_on_linear_multiclass(data):
    Xtr, Ytr, Xte, _ = data
    torch.manual_seed(0)
    lin = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    train_classifier(lin, Xtr, Ytr, epochs=10, seed=0)
    x = Xte[:80]
    res = deepfool(lin, x, overshoot=0.0)
    W = lin[1].weight.detach()
    with torch.no_grad():
        f = lin(x)
        k0 = f.argmax(1)
        d = (f - f[torch.arange(80), k0][:, None]).abs() / (W[None] - W[k0][:, None]).norm(dim=2)
        d[torch.arange(80), k0] = float("inf")
    torch.testing.assert_close(res.l2, d.min(1).values + 1e-4, atol=1e-4, rtol=1e-4)
    assert res.success_rate == 1.0 and int(res.iterations.max()) == 1


def test_deepfool_binary_linear_is_orthogonal_projection():
    torch.manual_seed(1)
    lin = torch.nn.Linear(3, 2)
    x = torch.randn(20, 3)
    res = deepfool(lin, x, overshoot=0.0)
    w = (lin.weight[1] - lin.weight[0]).detach()
    # the perturbation is parallel to the weight difference (the boundary normal)
    cos = torch.nn.functional.cosine_similarity(res.perturbation, w.expand_as(x), dim=1).abs()
    torch.testing.assert_close(cos, torch.ones(20), atol=1e-5, rtol=0)
    assert res.flipped.all()


def test_deepfool_flips_mlp_predictions(data, mlp):
    _, _, Xte, _ = data
    res = deepfool(mlp, Xte)
    assert res.success_rate > 0.98
    assert torch.equal(predict(mlp, res.x_adv), res.adversarial)
    assert (res.adversarial[res.flipped] != res.original[res.flipped]).all()
    assert res.mean_l2 < 0.1 * 8  # smaller than an FGSM step of 0.1 in L2
    # a smaller overshoot never needs a larger perturbation on the same model
    assert deepfool(mlp, Xte, overshoot=0.0).mean_l2 <= res.mean_l2 + 1e-6


def test_noise_statistics():
    x = torch.full((200, 1, 8, 8), 0.5)
    out = add_noise(x, 0.1, torch.Generator().manual_seed(0), clip=None)
    assert abs(float((out - x).std()) - 0.1) < 0.005 and abs(float((out - x).mean())) < 0.005
    assert torch.equal(add_noise(x, 0.0), x)
    assert GaussianNoise(0.2)(x, generator=torch.Generator().manual_seed(0)).max() <= 1.0


def test_adversarial_training_improves_robustness(data, mlp):
    Xtr, Ytr, Xte, Yte = data
    robust = make_mlp(64, 10, seed=0)
    train_classifier(robust, Xtr, Ytr, epochs=15, seed=0, batch_transform=FGSMAugment(robust, eps=0.1))
    assert accuracy(robust, fgsm(robust, Xte, Yte, 0.1), Yte) > accuracy(mlp, fgsm(mlp, Xte, Yte, 0.1), Yte) + 0.2
    assert accuracy(robust, Xte, Yte) > 0.9


def test_batch_transform_adapter(data):
    Xtr, Ytr, _, _ = data
    bt = as_batch_transform(RandomCrop(1))
    xb, yb = bt(Xtr[:10], Ytr[:10], torch.Generator().manual_seed(0))
    assert xb.shape == Xtr[:10].shape and torch.equal(yb, Ytr[:10])
    m = train_classifier(make_mlp(64, 10), Xtr, Ytr, epochs=2, batch_transform=bt)
    assert accuracy(m, Xtr, Ytr) > 0.5


@pytest.mark.parametrize("call, exc, msg", [
    (lambda m, X, Y: fgsm(m, X, Y[:-1], 0.1), DataError, "rows but y has"),
    (lambda m, X, Y: fgsm(m, X, Y.float(), 0.1), DataError, "torch.long"),
    (lambda m, X, Y: fgsm(m, X, Y, -0.1), ConfigError, "eps must be"),
    (lambda m, X, Y: fgsm(m, X.numpy(), Y, 0.1), DataError, "floating-point torch.Tensor"),
    (lambda m, X, Y: deepfool(m, torch.rand(3, 1, 5, 5)), DataError, "does not fit the model"),
    (lambda m, X, Y: deepfool(m, X, max_iter=0), ConfigError, "max_iter"),
    (lambda m, X, Y: deepfool(lambda x: x, X), ConfigError, "torch.nn.Module"),
    (lambda m, X, Y: add_noise(X, -1.0), ConfigError, "std must be"),
    (lambda m, X, Y: train_classifier(m, X, Y, epochs=0), ConfigError, "epochs must be"),
    (lambda m, X, Y: FGSMAugment(m, ratio=0), ConfigError, "ratio must be"),
    (lambda m, X, Y: fgsm(m, X[:0], Y[:0], 0.1), DataError, "non-empty batch"),
    (lambda m, X, Y: fgsm(m, X, Y + 10, 0.1), DataError, "class index 19, but the model returns only 10 logits"),
    (lambda m, X, Y: train_classifier(m, X, Y + 10, epochs=1), DataError, "returns only 10 logits"),
    (lambda m, X, Y: train_classifier(m, X, torch.full((len(X), 3), 1 / 3), epochs=1), DataError,
     "3 columns but the model returns 10 logits"),
])
def test_bad_input(data, mlp, call, exc, msg):
    _, _, Xte, Yte = data
    with pytest.raises(exc, match=msg):
        call(mlp, Xte[:20], Yte[:20])


def test_make_cnn_shapes_and_learns(data):
    from mlsys.augment.perturb import make_cnn
    Xtr, Ytr, Xte, Yte = data
    cnn = make_cnn(10, image_size=8, seed=0)
    assert cnn(Xtr[:3]).shape == (3, 10)
    train_classifier(cnn, Xtr[:400], Ytr[:400], epochs=5, seed=0)
    assert accuracy(cnn, Xte, Yte) > 0.8
    with pytest.raises(ConfigError, match="image_size"):
        make_cnn(10, image_size=7)
    res = deepfool(cnn, Xte[:50])
    assert res.success_rate > 0.95


def test_fgsm_and_deepfool_agree_with_art(data, mlp):
    "The Adversarial Robustness Toolbox (dev-only reference) gives the same FGSM and, up to tolerances, DeepFool."
    pytest.importorskip("art")
    import numpy as np
    from art.attacks.evasion import DeepFool, FastGradientMethod
    from art.estimators.classification import PyTorchClassifier

    _, _, Xte, Yte = data
    x, y = Xte[:150], Yte[:150]
    clf = PyTorchClassifier(model=mlp, loss=torch.nn.CrossEntropyLoss(), input_shape=(1, 8, 8), nb_classes=10)
    art_fgsm = FastGradientMethod(clf, eps=0.1, batch_size=150).generate(x.numpy(), y=y.numpy())
    np.testing.assert_allclose(art_fgsm, fgsm(mlp, x, y, 0.1, clip=None).numpy(), atol=1e-6)
    art_df = DeepFool(clf, max_iter=50, epsilon=0.02, nb_grads=10, batch_size=150, verbose=False).generate(x.numpy())
    ours = deepfool(mlp, x, overshoot=0.02)
    l2_art = np.linalg.norm((art_df - x.numpy()).reshape(len(x), -1), axis=1)
    rel = np.abs(l2_art - ours.l2.numpy()) / ours.l2.numpy()
    assert np.median(rel) < 1e-2 and rel.max() < 0.1
    art_pred = predict(mlp, torch.from_numpy(art_df))
    assert torch.equal(art_pred != ours.original, ours.flipped)
