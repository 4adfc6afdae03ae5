"""Transfer learning on Fashion-MNIST: data selection, freezing semantics, determinism, a tiny curve."""
import pytest

torch = pytest.importorskip("torch")

from mlsys.core import DataError
from mlsys.labeling.transfer import (
    MODES,
    SmallCNN,
    accuracy,
    embed,
    fashion_task,
    linear_probe,
    train_classifier,
    transfer_curve,
    transfer_model,
)

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def pretrained():
    torch.set_num_threads(1)
    X, y = fashion_task([0, 1, 2, 3, 4], n_per_class=300, seed=0)
    torch.manual_seed(0)
    return train_classifier(SmallCNN(5), X, y, epochs=2, lr=2e-3, seed=0)


def test_fashion_task_selects_and_renumbers():
    X, y = fashion_task([7, 2, 9], n_per_class=4, split="test", seed=3)
    assert tuple(X.shape) == (12, 1, 28, 28) and X.dtype == torch.float32
    assert sorted(y.tolist()) == [0] * 4 + [1] * 4 + [2] * 4
    assert 0.0 <= float(X.min()) and float(X.max()) <= 1.0
    X2, y2 = fashion_task([7, 2, 9], n_per_class=4, split="test", seed=3)
    assert torch.equal(X, X2) and torch.equal(y, y2)
    with pytest.raises(DataError, match="must be distinct"):
        fashion_task([1, 1])
    with pytest.raises(DataError, match="n_per_class=0"):
        fashion_task([1], n_per_class=0)
    with pytest.raises(DataError, match="has only 1000 test images"):
        fashion_task([1], n_per_class=5000, split="test")


def test_pretraining_learns_base_task(pretrained):
    Xt, yt = fashion_task([0, 1, 2, 3, 4], n_per_class=100, split="test", seed=0)
    assert accuracy(pretrained, Xt, yt) > 0.65  # chance is 0.2


def test_transfer_modes(pretrained):
    X, y = fashion_task([5, 6, 7, 8, 9], n_per_class=3, seed=0)
    before = [p.clone() for p in pretrained.parameters()]
    frozen = transfer_model(pretrained, 5, "frozen")
    feats = [p.clone() for p in frozen.features.parameters()]
    head = frozen.head.weight.clone()
    train_classifier(frozen, X, y, epochs=3)
    assert all(torch.equal(a, b) for a, b in zip(feats, frozen.features.parameters()))
    assert not torch.equal(head, frozen.head.weight)
    fine = transfer_model(pretrained, 5, "finetune")
    train_classifier(fine, X, y, epochs=3, feature_lr=1e-3)
    assert not all(torch.equal(a, b) for a, b in zip(feats, fine.features.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(before, pretrained.parameters()))  # pretrained untouched
    scratch = transfer_model(pretrained, 5, "scratch")
    assert not torch.equal(scratch.features[0].weight, pretrained.features[0].weight)
    with pytest.raises(DataError, match="mode='zero_shot'"):
        transfer_model(pretrained, 5, "zero_shot")
    with pytest.raises(DataError, match="needs a pretrained model"):
        transfer_model(None, 5, "frozen")
    with pytest.raises(DataError, match="non-empty"):
        train_classifier(SmallCNN(5), X[:0], y[:0])


def test_training_is_deterministic():
    X, y = fashion_task([5, 6], n_per_class=10, seed=1)
    a = train_classifier(transfer_model(None, 2, "scratch", seed=4), X, y, epochs=2, seed=4)
    b = train_classifier(transfer_model(None, 2, "scratch", seed=4), X, y, epochs=2, seed=4)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_linear_probe_and_curve(pretrained):
    Xt, yt = fashion_task([5, 6, 7, 8, 9], n_per_class=60, split="test", seed=0)
    X, y = fashion_task([5, 6, 7, 8, 9], n_per_class=10, seed=0)
    probe = linear_probe(pretrained, X, y)
    assert embed(pretrained, X).shape == (50, 400)
    assert (probe.predict(embed(pretrained, Xt)) == yt.numpy()).mean() > 0.5
    runs = transfer_curve(pretrained, [5, 6, 7, 8, 9], Xt, yt, n_per_class=[2], seeds=[0], steps=10)
    assert list(runs["mode"]) == list(MODES) and (runs["labels"] == 10).all()
    assert runs["accuracy"].between(0, 1).all()
