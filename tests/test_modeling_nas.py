"""mlsys.modeling.nas: the search space and its networks, the proxy's rank agreement, random and evolutionary search
through `tune`, the size-matched baseline, and the learned update rule checked against SGD and Adam."""
import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("optuna")
pytestmark = pytest.mark.torch

from mlsys.core import ConfigError, DataError  # noqa: E402
from mlsys.modeling.nas import (FULL, POOLS, PROXY, Arch, ConvNet, LearnedRule, Protocol, compare_optimizers,  # noqa: E402
                                count_architectures, hand_designed, image_task, matched_baseline, meta_train,
                                mlp_loss, mlp_params, n_params, nas_space, random_archs, rank_agreement,
                                run_optimizer, search, softmax_loss, teacher_task, train_and_score, unroll)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def task():
    return image_task("digits", n_train=300, n_val=150, n_test=150, seed=0)


def _all_archs(max_depth, widths):
    blocks = list(itertools.product(widths, (False, True), POOLS))
    for d in range(1, max_depth + 1):
        for combo in itertools.product(blocks, repeat=d):
            for head in ("avg", "flatten"):
                yield Arch(tuple(combo), head)


def test_space_count_matches_enumeration_and_decoding():
    archs = list(_all_archs(2, (4, 8)))
    assert len(archs) == len(set(archs)) == count_architectures(2, (4, 8))
    space = nas_space(2, (4, 8))
    for a in archs[:: 37]:
        params = {"depth": len(a.blocks), "head": a.head}
        for i, (w, s, p) in enumerate(a.blocks):
            params.update({f"width_{i}": w, f"skip_{i}": s, f"pool_{i}": p})
        assert Arch.from_params(params) == a
        drawn = [n for n, d in space.items() if d.active is None or d.active(params)]
        assert set(drawn) == set(params)  # exactly the genes the architecture uses are active


def test_random_archs_cover_all_depths_and_heads():
    archs = random_archs(200, seed=0)
    assert {len(a.blocks) for a in archs} == {1, 2, 3} and {a.head for a in archs} == {"avg", "flatten"}


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (1, 3, 5)])
def test_every_block_combination_builds_and_counts_its_parameters(shape):
    x = torch.rand(2, *shape)
    for a in _all_archs(3, (4,)):
        net = ConvNet(a, shape, 10)
        assert tuple(net(x).shape) == (2, 10)
        assert n_params(net) == sum(p.numel() for p in net.parameters())


def test_parameter_count_by_hand():
    a = Arch(((8, False, "max"), (16, True, "none")), "flatten")
    net = ConvNet(a, (1, 8, 8), 10)
    expect = (9 * 8 + 8) + (8 * 9 * 16 + 16) + 8 * 16 + (16 * 4 * 4 * 10 + 10)
    assert n_params(net) == expect


def test_training_is_deterministic_and_learns(task):
    a = Arch(((8, False, "max"), (16, False, "none")), "flatten")
    first = train_and_score(a, task, Protocol(epochs=5), seed=3)
    assert first == train_and_score(a, task, Protocol(epochs=5), seed=3)
    assert first[0] > 0.5  # far above the 0.1 of guessing among 10 digits (0.85 seen)


def test_rank_agreement_matches_scipy():
    from scipy.stats import kendalltau, spearmanr
    rng = np.random.default_rng(0)
    for _ in range(100):
        n = int(rng.integers(3, 30))
        a, b = rng.normal(size=n), rng.normal(size=n)
        if rng.random() < 0.3:
            b = np.round(b, 0)  # ties
        got = rank_agreement(a, b)
        assert got["spearman"] == pytest.approx(spearmanr(a, b).statistic, nan_ok=True)
        assert got["kendall"] == pytest.approx(kendalltau(a, b).statistic, nan_ok=True)
    assert rank_agreement([1, 2, 3, 4], [10, 20, 30, 40])["spearman"] == 1.0


@pytest.mark.parametrize("strategy", ["random", "evolution"])
def test_search_through_tune(task, strategy):
    res = search(task, strategy, budget=6, protocol=Protocol(epochs=1, fraction=0.5), seed=0, population_size=3, sample_size=2)
    assert len(res.trials) == 6 and (res.trials["state"] == "COMPLETE").all()
    assert res.trials["n_params"].gt(0).all() and res.trials["arch"].str.startswith("[").all()
    assert res.best_value == res.trials["value"].max()


def test_search_with_two_worker_processes(task, tmp_path):
    "The NAS objective (a closure over tensors) travels to spawned workers; both share the journal study."
    res = search(task, "evolution", budget=4, protocol=Protocol(epochs=1, fraction=0.3), seed=0, population_size=2,
                 sample_size=1, storage=tmp_path / "nas.journal", study_name="nas", n_workers=2)
    assert sorted(res.trials["number"]) == [0, 1, 2, 3] and res.trials["worker"].nunique() == 2


def test_matched_baseline_is_the_closest_size():
    for target in [500, 3000, 20000]:
        got = matched_baseline(target, (1, 8, 8))
        sizes = {w: n_params(ConvNet(hand_designed(w), (1, 8, 8))) for w in range(1, 65)}
        assert abs(n_params(ConvNet(got, (1, 8, 8))) - target) == min(abs(s - target) for s in sizes.values())


def _linear_rule(weights):
    "A LearnedRule whose network outputs a fixed linear combination of its three features."
    rule = LearnedRule()
    lin = torch.nn.Linear(3, 1)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([weights], dtype=torch.float32))
        lin.bias.zero_()
    rule.net = torch.nn.Sequential(lin)
    return rule


def test_learned_rule_reduces_to_sgd_and_adam():
    "Reading only the gradient it is SGD (lr = scale); reading only m/sqrt(v) it is Adam (betas 0.9, 0.99)."
    X, y = teacher_task(7)
    loss = lambda p: mlp_loss(p, X, y)
    init = mlp_params(7)
    sgd_like = run_optimizer("learned", init, loss, 25, rule=_linear_rule([1.0, 0.0, 0.0]))
    sgd = run_optimizer("sgd", init, loss, 25, lr=0.01)
    np.testing.assert_allclose(sgd_like, sgd, rtol=1e-5, atol=1e-7)
    params = [p.detach().clone().requires_grad_(True) for p in init]
    opt = torch.optim.Adam(params, lr=0.01, betas=(0.9, 0.99), eps=1e-8)
    adam = []
    for _ in range(25):
        value = loss(params)
        adam.append(float(value.detach()))
        opt.zero_grad()
        value.backward()
        opt.step()
    adam.append(float(loss(params).detach()))
    adam_like = run_optimizer("learned", init, loss, 25, rule=_linear_rule([0.0, 0.0, 1.0]))
    np.testing.assert_allclose(adam_like, adam, rtol=1e-4, atol=1e-6)


def test_a_silent_rule_changes_nothing_and_meta_gradients_flow():
    X, y = teacher_task(1)
    rule = _linear_rule([0.0, 0.0, 0.0])
    losses, params = unroll(rule, mlp_params(1), lambda p: mlp_loss(p, X, y), 5)
    assert len({float(v) for v in losses}) == 1  # no update, the loss never moves
    rule = LearnedRule()
    losses, _ = unroll(rule, mlp_params(1), lambda p: mlp_loss(p, X, y), 5, meta=True)
    torch.stack(losses).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in rule.parameters())
    assert any(p.grad.abs().sum() > 0 for p in rule.parameters())


def test_meta_training_lowers_the_meta_loss():
    torch.manual_seed(0)
    rule = LearnedRule()
    hist = meta_train(rule, meta_steps=30, unroll_steps=10, seed=0)
    assert np.mean(hist[-5:]) < np.mean(hist[:5])


def test_compare_optimizers_runs_every_pair():
    torch.manual_seed(0)
    out = compare_optimizers(LearnedRule(), {"sgd": 0.1, "adam": 0.01}, steps=5, seeds=range(2))
    assert len(out) == 2 * 2 * 3 and set(out["optimizer"]) == {"sgd", "adam", "learned"}
    assert np.isfinite(out["final loss"]).all()
    W = [torch.zeros(64, 10), torch.zeros(10)]
    Xd, yd = torch.rand(20, 64), torch.randint(0, 10, (20,))
    assert float(softmax_loss(W, Xd, yd)) == pytest.approx(np.log(10), rel=1e-6)


def test_bad_input_gets_named_errors(task):
    cases = [
        (lambda: image_task("cifar"), ConfigError, "name='cifar'"),
        (lambda: image_task("digits", n_train=5000), DataError, "too many"),
        (lambda: image_task("digits", n_train=0), ConfigError, "n_train must be"),
        (lambda: nas_space(0), ConfigError, "max_depth"),
        (lambda: nas_space(2, widths=(4, 0)), ConfigError, "positive integers"),
        (lambda: nas_space(2, widths=()), ConfigError, "positive integers"),
        (lambda: Arch((), "avg"), ConfigError, "at least one block"),
        (lambda: Arch(((8, "yes", "max"),), "avg"), ConfigError, "skip bool"),
        (lambda: Arch(((8, False, "min"),), "avg"), ConfigError, "pool in"),
        (lambda: Arch(((8, False, "max"),), "gap"), ConfigError, "head='gap'"),
        (lambda: Arch.from_params({"depth": 1}), ConfigError, "lack gene 'width_0'"),
        (lambda: Protocol(epochs=0), ConfigError, "Protocol.epochs"),
        (lambda: Protocol(fraction=1.5), ConfigError, "Protocol.fraction"),
        (lambda: Protocol(lr=-1), ConfigError, "Protocol.lr"),
        (lambda: train_and_score(hand_designed(4), task, PROXY, split="train"), ConfigError, "split='train'"),
        (lambda: rank_agreement([1, 2], [1, 2]), DataError, "at least 3"),
        (lambda: rank_agreement([1, 2, 3], [1, 2]), DataError, "equal-length"),
        (lambda: rank_agreement([1, 2, float("nan")], [1, 2, 3]), DataError, "finite"),
        (lambda: search(task, "reinforce", budget=2), ConfigError, "strategy='reinforce'"),
        (lambda: search(task, "random", budget=0), ConfigError, "budget must be"),
        (lambda: hand_designed(0), ConfigError, "width must be"),
        (lambda: matched_baseline(0, (1, 8, 8)), ConfigError, "target_params"),
        (lambda: run_optimizer("rmsprop", mlp_params(0), lambda p: mlp_loss(p, *teacher_task(0)), 2, lr=0.1), ConfigError, "kind='rmsprop'"),
        (lambda: run_optimizer("sgd", mlp_params(0), lambda p: mlp_loss(p, *teacher_task(0)), 2), ConfigError, "needs a learning rate"),
        (lambda: run_optimizer("learned", mlp_params(0), lambda p: mlp_loss(p, *teacher_task(0)), 2), ConfigError, "needs rule="),
        (lambda: meta_train(LearnedRule(), meta_steps=0), ConfigError, "meta_steps"),
    ]
    failures = []
    for call, exc, text in cases:
        try:
            call()
        except exc as e:
            if text not in str(e):
                failures.append(f"{text!r} not in {str(e)!r}")
        except Exception as e:  # noqa: BLE001
            failures.append(f"expected {exc.__name__} with {text!r}, got {type(e).__name__}: {e}")
        else:
            failures.append(f"no error for {text!r}")
    assert not failures, "\n".join(failures)


def test_full_and_proxy_protocols_differ_in_cost():
    assert FULL.epochs * FULL.fraction > 5 * PROXY.epochs * PROXY.fraction
