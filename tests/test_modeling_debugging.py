"""modeling.debugging: the overfit check catches planted bugs, determinism reports, gradient statistics, the ladder, bad input."""
import math

import numpy as np
import pandas as pd
import pytest

from mlsys.core import ConfigError, DataError
from mlsys.modeling.debugging import compare_results, feature_rungs, start_simple_ladder

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch
F = torch.nn.functional
nn = torch.nn

from mlsys.modeling.debugging import determinism_check, gradient_report, make_mlp, overfit_one_batch

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def batch(digits):
    X, y, _, _ = digits
    return torch.tensor(X[:48], dtype=torch.float32), torch.tensor(y[:48])


class _Frozen(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(64, 48), nn.ReLU())
        self.head = nn.Linear(48, 10)

    def forward(self, x):
        return self.head(self.body(x).detach())


class _NoGradBody(_Frozen):
    def forward(self, x):
        with torch.no_grad():
            h = self.body(x)
        return self.head(h)


# --- the overfit check --------------------------------------------------------------------------------------------


def test_correct_model_passes(batch):
    X, y = batch
    r = overfit_one_batch(make_mlp(64, 10, width=48), X, y)
    assert r.passed and r.problems == [] and r.final_loss <= 0.05 and r.accuracy == 1.0 and r.unreached == []
    assert r.steps < 300 and len(r.losses) == r.steps and r.initial_loss > 2.0


@pytest.mark.parametrize("bug,expected", [
    ("detached loss", "detached from the model"),
    ("item loss", "detached from the model"),
    ("shuffled labels", "did not fall"),
    ("off by one", "wrong label mapping"),
    ("fixed permutation of labels", "wrong label mapping"),
    ("detach in forward", "never got a gradient"),
    ("no_grad in forward", "never got a gradient"),
])
def test_planted_bug_is_caught(batch, bug, expected):
    X, y = batch
    model, loss = make_mlp(64, 10, width=48), None
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(1))
    if bug == "detached loss":
        loss = lambda m, X, y: F.cross_entropy(m(X).detach(), y)
    elif bug == "item loss":  # the loss rebuilt from a Python float
        loss = lambda m, X, y: torch.tensor(F.cross_entropy(m(X), y).item())
    elif bug == "shuffled labels":
        loss = lambda m, X, y: F.cross_entropy(m(X), y[torch.randperm(len(y))])
    elif bug == "off by one":
        loss = lambda m, X, y: F.cross_entropy(m(X), (y + 1) % 10)
    elif bug == "fixed permutation of labels":  # labels sorted separately from the inputs, once
        loss = lambda m, X, y: F.cross_entropy(m(X), y[perm])
    elif bug == "detach in forward":
        model = _Frozen()
    else:
        model = _NoGradBody()
    r = overfit_one_batch(model, X, y, loss_fn=loss)
    assert not r.passed
    assert any(expected in p for p in r.problems), r.problems
    if bug.endswith("forward"):
        assert r.unreached == ["body.0.weight", "body.0.bias"]


def test_overfit_regression_and_nan(batch):
    X, _ = batch
    target = X @ torch.linspace(-1, 1, 64)
    r = overfit_one_batch(nn.Linear(64, 1), X, target, task="regression", steps=300, lr=0.05, max_loss=1e-3)
    assert r.passed and r.accuracy is None
    boom = overfit_one_batch(make_mlp(64, 1, depth=8, init_std=6.0), X, target * 1e6, task="regression", lr=10.0, optimizer="sgd")
    assert not boom.passed and any("the loss became" in p for p in boom.problems)


def test_overfit_no_trainable_parameters(batch):
    X, y = batch
    m = make_mlp(64, 10)
    for p in m.parameters():
        p.requires_grad_(False)
    r = overfit_one_batch(m, X, y)
    assert not r.passed and r.problems == ["the model has no trainable parameters"]


def test_overfit_custom_predict_and_unused_parameter(batch):
    X, y = batch

    class WithSpare(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = make_mlp(64, 10, width=48)
            self.spare = nn.Linear(3, 3)

        def forward(self, x):
            return self.net(x)

    r = overfit_one_batch(WithSpare(), X, y, predict=lambda m, X: m(X).argmax(1))
    assert not r.passed and r.unreached == ["spare.weight", "spare.bias"]
    with pytest.raises(DataError, match="predict must return a tensor of shape"):
        overfit_one_batch(make_mlp(64, 10), X, y, predict=lambda m, X: m(X))


# --- determinism ----------------------------------------------------------------------------------------------------


def _train(X, y, numpy_split=False):
    order = np.random.default_rng().permutation(len(X)) if numpy_split else torch.randperm(len(X)).numpy()
    m = make_mlp(64, 10, width=16, seed=None)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    for i in range(0, 40, 8):
        idx = order[i:i + 8]
        opt.zero_grad(); F.cross_entropy(m(X[idx]), y[idx]).backward(); opt.step()
    return {"loss": F.cross_entropy(m(X), y).item(), "weights": m.state_dict(), "tag": "run", "curve": [1.0, 2.0]}


def test_determinism_check(batch):
    X, y = batch
    same = determinism_check(lambda: _train(X, y), seed=3, runs=3)
    assert same.identical and same.differences.empty and same.runs == 3 and same.seed == 3
    diff = determinism_check(lambda: _train(X, y, numpy_split=True), seed=3)
    assert not diff.identical
    paths = set(diff.differences["path"])
    assert "result.loss" in paths and "result.weights.0.weight" in paths and "result.tag" not in paths
    assert (diff.differences["max abs diff"] > 0).all()
    assert not determinism_check(lambda: _train(X, y), seed=None).identical


def test_compare_results_finds_every_difference():
    a = {"x": 1.0, "nan": float("nan"), "arr": np.zeros(3), "t": torch.ones(2), "only_a": 1, "list": [1, 2, 3], "s": "a",
         "shape": np.zeros((2, 2)), "type": 1.0, "nested": {"deep": torch.tensor([1.0, 2.0])}}
    b = {"x": 1.0 + 1e-9, "nan": float("nan"), "arr": np.array([0, 0, 0.5]), "t": torch.ones(2), "only_b": 2, "list": [1, 2],
         "s": "b", "shape": np.zeros(4), "type": "1.0", "nested": {"deep": torch.tensor([1.0, float("nan")])}}
    d = compare_results(a, b).set_index("path")
    assert set(d.index) == {"result.x", "result.arr", "result.only_a", "result.only_b", "result.list", "result.s", "result.shape",
                            "result.type", "result.nested.deep"}
    assert d.loc["result.arr", "max abs diff"] == 0.5 and d.loc["result.arr", "what differs"] == "1 of 3 values differ"
    assert d.loc["result.nested.deep", "max abs diff"] == math.inf  # NaN on one side only
    assert "result.x" not in set(compare_results(a, b, atol=1e-6)["path"])
    assert compare_results({"w": torch.zeros(3)}, {"w": torch.zeros(3)}).empty


# --- gradient statistics --------------------------------------------------------------------------------------------


def test_gradient_report_flags_each_problem(batch):
    X, y = batch
    healthy = gradient_report(make_mlp(64, 10, width=48, depth=4, init_std=2 ** 0.5), X, y)
    assert healthy.problems == [] and len(healthy.weights) == 5 and len(healthy.activations) == 4
    dead = gradient_report(make_mlp(64, 10, width=48, depth=2, init_std=2 ** 0.5, bias=-1.0), X, y)
    assert dead.problems and all(p.startswith("dead ReLUs") for p in dead.problems)
    vanish = gradient_report(make_mlp(64, 10, width=48, depth=16, activation="sigmoid"), X, y)
    assert [p.split(":")[0] for p in vanish.problems] == ["vanishing gradients"]
    explode = gradient_report(make_mlp(64, 10, width=48, depth=16, init_std=2.5 * 2 ** 0.5), X, y)
    assert [p.split(":")[0] for p in explode.problems] == ["exploding gradients"]
    sat = gradient_report(make_mlp(64, 10, width=48, depth=2, activation="tanh", init_std=20.0), X, y)
    assert any(p.startswith("saturation") for p in sat.problems)


def test_gradient_report_on_a_conv_net(batch):
    X, y = batch
    conv = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))
    with torch.no_grad():
        conv[0].bias.fill_(-100.0)  # every channel dead
    r = gradient_report(conv, X.reshape(-1, 1, 8, 8), y)
    assert r.activations["dead units"].tolist() == [1.0] and r.problems[0].startswith("dead ReLUs")
    assert list(r.weights["type"]) == ["Conv2d", "Linear"]


# --- the ladder -----------------------------------------------------------------------------------------------------


def test_ladder_flags_a_rung_that_adds_noise():
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    rng = np.random.default_rng(0)
    n = 3000
    df = pd.DataFrame({"signal": rng.normal(size=n), "more": rng.normal(size=n), "noise": rng.normal(size=n)})
    y = (df["signal"] + 0.5 * df["more"] + rng.normal(scale=0.5, size=n) > 0).astype(int)
    make = lambda cols: make_pipeline(ColumnTransformer([("x", "passthrough", cols)]), LogisticRegression())
    rungs = feature_rungs({"signal": ["signal"], "more": "more", "noise": ["noise"]}, make)
    assert [r[0] for r in rungs] == ["+ signal", "+ more", "+ noise"]
    out = start_simple_ladder(rungs, df[:2000], y[:2000], df[2000:], y[2000:], min_gain=0.002)
    assert out["verdict"].tolist() == ["first rung", "helps", "does not help: leave it out, or debug it"]
    assert out.loc["+ more", "gain"] > 0.02
    custom = start_simple_ladder(dict(rungs[:1]), df[:2000], y[:2000], df[2000:], y[2000:], scoring=lambda est, X, y: 0.25)
    assert custom["score"].tolist() == [0.25]


# --- bad input ------------------------------------------------------------------------------------------------------


def test_bad_input_gets_named_errors(batch):
    X, y = batch
    m = make_mlp(64, 10)
    cases = [
        (lambda: overfit_one_batch(None, X, y), DataError, "must be a torch.nn.Module"),
        (lambda: overfit_one_batch(m, X.numpy(), y), DataError, "must be torch tensors"),
        (lambda: overfit_one_batch(m, X[:0], y[:0]), DataError, "non-empty batch"),
        (lambda: overfit_one_batch(m, X[0], y[:1]), DataError, "non-empty batch"),
        (lambda: overfit_one_batch(m, X, y.bool()), DataError, "integer tensor of class indices"),
        (lambda: overfit_one_batch(m, X, y, task="regression"), DataError, "regression targets must be a float tensor"),
        (lambda: overfit_one_batch(m, X, y, steps=2.5), ConfigError, "steps must be a positive integer"),
        (lambda: overfit_one_batch(m, X, y, steps=True), ConfigError, "steps must be a positive integer"),
        (lambda: overfit_one_batch(m, X, y, lr=-1), ConfigError, "lr must be a finite number > 0"),
        (lambda: overfit_one_batch(m, X, y, max_loss=0), ConfigError, "max_loss must be"),
        (lambda: overfit_one_batch(m, X, y, min_accuracy=1.5), ConfigError, "min_accuracy must be in (0, 1]"),
        (lambda: overfit_one_batch(m, X, y, optimizer=["adam"]), ConfigError, "optimizer must be one of"),
        (lambda: overfit_one_batch(m, X, y, task=None), ConfigError, "task must be one of"),
        (lambda: overfit_one_batch(m, X, y, loss_fn="mse"), ConfigError, "loss_fn must be callable"),
        (lambda: overfit_one_batch(m, X, y, loss_fn=lambda m, X, y: 1.0), DataError, "loss_fn must return a scalar tensor"),
        (lambda: gradient_report(m, X, y, vanishing_ratio=0), ConfigError, "vanishing_ratio must be"),
        (lambda: gradient_report(m, X, y, exploding_norm=float("inf")), ConfigError, "exploding_norm must be"),
        (lambda: gradient_report(m, X, y, loss_fn=3), ConfigError, "loss_fn must be callable"),
        (lambda: make_mlp(0, 10), ConfigError, "n_in must be a positive integer"),
        (lambda: make_mlp(64, 10, width=10**6, depth=3), ConfigError, "too large"),
        (lambda: make_mlp(64, 10, activation=["relu"]), ConfigError, "activation must be one of"),
        (lambda: make_mlp(64, 10, init_std=0), ConfigError, "init_std must be"),
        (lambda: make_mlp(64, 10, bias=float("nan")), ConfigError, "bias must be a finite number"),
        (lambda: make_mlp(64, 10, seed=-1), ConfigError, "seed must be a non-negative integer"),
        (lambda: determinism_check("train"), ConfigError, "train_fn must be callable"),
        (lambda: determinism_check(lambda: 1, runs=0), ConfigError, "runs must be a positive integer"),
        (lambda: determinism_check(lambda: 1, seed=-5), ConfigError, "seed must be an integer"),
        (lambda: compare_results(1, 2, atol=float("nan")), ConfigError, "atol must be"),
        (lambda: start_simple_ladder("rung", X, y, X, y), ConfigError, "non-empty list"),
        (lambda: start_simple_ladder([("a",)], X, y, X, y), ConfigError, "(name, estimator) pair"),
        (lambda: start_simple_ladder([("", m)], X, y, X, y), ConfigError, "non-empty string"),
        (lambda: start_simple_ladder([("a", 3)], X, y, X, y), ConfigError, "has no fit method"),
        (lambda: start_simple_ladder([("a", _Dummy())], X, y, X, y, scoring="acc"), ConfigError, "unknown scoring 'acc'"),
        (lambda: start_simple_ladder([("a", _Dummy())], X, y, X, y, min_gain=-1), ConfigError, "min_gain must be"),
        (lambda: start_simple_ladder([("a", _Dummy())], X[:0], y[:0], X, y), DataError, "X_train is empty"),
        (lambda: feature_rungs([], lambda c: c), ConfigError, "non-empty mapping"),
        (lambda: feature_rungs({"a": ["x"]}, None), ConfigError, "make_estimator must be callable"),
    ]
    for call, err, text in cases:
        with pytest.raises(err) as info:
            call()
        assert text in str(info.value), (text, str(info.value))


class _Dummy:
    def fit(self, X, y):
        return self
