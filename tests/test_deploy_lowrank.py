"""deploy.lowrank: the truncated SVD of dense layers against numpy's SVD (full rank reproduces the layer, lower ranks give
the Eckart-Young error), exact parameter counts, the break-even rule, energy ranks, the compact convolutions' counts and
shapes, and the refusals (bad ranks name the layer)."""
import pickle
import subprocess
import sys

import numpy as np
import pytest

from mlsys.core import ConfigError, DataError
from mlsys.deploy import lowrank as L
from mlsys.deploy.compress import Arrays, count_parameters, fashion_cnn, flights_mlp, image_arrays, predict_logits

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch
nn = torch.nn


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _shapes(rng, n):
    "Layer shapes (n_in, n_out) with the edge cases first: 1x1, 1xN, Nx1, then random ones."
    fixed = [(1, 1), (1, 17), (17, 1), (1, 2), (2, 1), (5, 5)]
    return fixed + [tuple(int(v) for v in rng.integers(1, 41, 2)) for _ in range(n - len(fixed))]


def _weight(rng, n_in, n_out):
    "A float32 weight: Gaussian, low-rank, with tied singular values, zero, or of a large scale."
    kind = rng.integers(0, 5)
    if kind == 0:
        w = rng.normal(size=(n_out, n_in))
    elif kind == 1:  # rank-deficient
        r = int(rng.integers(1, min(n_in, n_out) + 1))
        w = rng.normal(size=(n_out, r)) @ rng.normal(size=(r, n_in))
    elif kind == 2:  # every singular value equal (ties)
        q, _ = np.linalg.qr(rng.normal(size=(max(n_in, n_out), max(n_in, n_out))))
        w = 3.0 * q[:n_out, :n_in]
    elif kind == 3:
        w = np.zeros((n_out, n_in))
    else:
        w = 1e3 * rng.normal(size=(n_out, n_in))
    return w.astype(np.float32)


def _layer(rng, n_in, n_out):
    layer = nn.Linear(n_in, n_out, bias=bool(rng.integers(0, 2)))
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(_weight(rng, n_in, n_out)))
        if layer.bias is not None:
            layer.bias.copy_(torch.from_numpy(rng.normal(size=n_out).astype(np.float32)))
    return layer


def test_full_rank_reproduces_the_layer_and_lower_ranks_give_the_eckart_young_error():
    rng = np.random.default_rng(0)
    for n_in, n_out in _shapes(rng, 120):
        layer = _layer(rng, n_in, n_out)
        w = layer.weight.detach().numpy().astype(np.float64)
        s = np.linalg.svd(w, compute_uv=False)
        x = torch.from_numpy(rng.normal(size=(7, n_in)).astype(np.float32))
        full = min(n_in, n_out)
        for rank in range(1, full + 1):
            f = L.factorize_linear(layer, rank)
            assert f[0].weight.dtype == torch.float32 and f[1].weight.dtype == torch.float32
            assert sum(p.numel() for p in f.parameters()) == L.factorized_params(n_in, n_out, rank, layer.bias is not None)
            product = (f[1].weight @ f[0].weight).detach().numpy().astype(np.float64)
            scale = max(1.0, float(s[0]) if len(s) else 1.0)
            # the best rank-r approximation: its squared error is the sum of the dropped squared singular values
            err = np.sum((w - product) ** 2)
            assert err == pytest.approx(np.sum(s[rank:] ** 2), rel=1e-3, abs=1e-8 * scale ** 2), (n_in, n_out, rank)
            if rank == full:
                with torch.no_grad():
                    want, got = layer(x).numpy(), f(x).numpy()
                np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * max(1.0, float(np.abs(want).max())))


def test_parameter_counts_are_the_formula_on_whole_models():
    rng = np.random.default_rng(1)
    for _ in range(40):
        widths = [int(v) for v in rng.integers(1, 60, int(rng.integers(2, 5)))]
        model = nn.Sequential(*[nn.Linear(a, b) for a, b in zip(widths, widths[1:])])
        rank = int(rng.integers(1, 30))
        plan = L.low_rank_plan(model, rank=rank)
        small = L.low_rank(model, rank=rank)
        want = sum(L.factorized_params(a, b, rank) if rank < L.break_even_rank(a, b) else a * b + b
                   for a, b in zip(widths, widths[1:]))
        assert count_parameters(small)[0] == want == int(plan.params_after.sum())
        assert list(plan.factorized) == [rank < L.break_even_rank(a, b) for a, b in zip(widths, widths[1:])]


def test_a_layer_is_factorized_only_below_its_break_even_rank():
    model = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 2))
    assert L.break_even_rank(256, 256) == 128
    assert list(L.low_rank_plan(model, rank=127).factorized) == [True, False]
    assert list(L.low_rank_plan(model, rank=128).factorized) == [False, False]
    assert L.factorized_params(256, 256, 128) == 256 * 256 + 256  # at break-even: equal counts, nothing saved
    kept = L.low_rank(model, rank=128)
    assert all(isinstance(m, nn.Linear) for m in (kept[0], kept[2]))
    x = torch.randn(5, 256)
    with torch.no_grad():
        torch.testing.assert_close(kept(x), model(x))
    assert isinstance(L.low_rank(model, rank=1)[2], nn.Sequential)  # 256 -> 2 breaks even at 1.98


def test_low_rank_leaves_the_original_alone_and_reaches_nested_layers():
    model = nn.Sequential(nn.Linear(30, 40), nn.Sequential(nn.ReLU(), nn.Linear(40, 30)), nn.Linear(30, 3))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    small = L.low_rank(model, rank=4, layers=["1.1"])
    assert isinstance(small[1][1], nn.Sequential) and isinstance(model[1][1], nn.Linear)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert small(torch.randn(2, 30)).shape == (2, 3)
    root = L.low_rank(nn.Linear(100, 100), rank=10)  # the model is itself one layer
    assert isinstance(root, nn.Sequential) and count_parameters(root)[0] == L.factorized_params(100, 100, 10)


def test_energy_ranks_match_a_brute_force_search():
    rng = np.random.default_rng(2)
    for _ in range(500):
        n = int(rng.integers(1, 30))
        s = np.sort(np.abs(rng.normal(size=n)) * (rng.random(n) > 0.2))[::-1]
        if rng.random() < 0.2:
            s = np.round(s, 1)  # ties
        energy = float(rng.choice([rng.uniform(0.01, 1.0), 1.0, 0.5]))
        total = np.sum(s ** 2)
        want = 1 if total == 0 else next(r for r in range(1, n + 1) if np.sum(s[:r] ** 2) / total >= energy - 1e-12)
        assert L.energy_rank(s, energy) == want
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64))
    plan = L.low_rank_plan(model, energy=0.6)
    assert (plan.energy_kept[plan.factorized] >= 0.6 - 1e-9).all()


@pytest.mark.parametrize("rank, words", [
    ({"2": 0}, "'2'"), ({"2": -3}, "'2'"), ({"2": 1.5}, "'2'"), ({"2": True}, "'2'"), ({"2": 129}, "'2'"),
    ({"2": 128}, "saves no weights"), ({"0": 1, "2": 300}, "'2'"), ({"1": 4}, "not Linear layers"),
    ({"nope": 4}, "not Linear layers"), (0, "rank"), (2.0, "rank"),
])
def test_bad_ranks_get_a_config_error_naming_the_layer(rank, words):
    model = nn.Sequential(nn.Linear(124, 256), nn.ReLU(), nn.Linear(256, 128))
    with pytest.raises(ConfigError, match=words):
        L.low_rank(model, rank=rank)


def test_other_refusals():
    model = nn.Sequential(nn.Linear(10, 10), nn.ReLU(), nn.Linear(10, 2))
    for kwargs, words in [({}, "exactly one"), ({"rank": 2, "energy": 0.9}, "exactly one"),
                          ({"energy": 0.0}, "energy"), ({"energy": 1.5}, "energy"), ({"energy": float("nan")}, "energy"),
                          ({"rank": 2, "layers": ["1"]}, "not Linear layers"), ({"rank": 2, "layers": []}, "not Linear"),
                          ({"rank": {"0": 2}, "layers": ["0"]}, "names its layers")]:
        with pytest.raises(ConfigError, match=words):
            L.low_rank(model, **kwargs)
    with pytest.raises(ConfigError, match="'conv'"):
        L.factorize_linear(nn.Conv2d(1, 2, 3), 1, name="conv")
    with pytest.raises(ConfigError, match=r"'head'.*1\.\.2"):
        L.factorize_linear(nn.Linear(10, 2), 3, name="head")
    bad = nn.Linear(4, 4)
    with torch.no_grad():
        bad.weight[0, 0] = float("nan")
    with pytest.raises(DataError, match="non-finite"):
        L.low_rank(nn.Sequential(bad), rank=1)
    with pytest.raises(ConfigError, match="n_in"):
        L.factorized_params(0, 3, 1)
    for call in (lambda: L.low_rank("a model", rank=2), lambda: L.compact_convs(None),
                 lambda: L.fine_tune([1, 2], np.zeros((2, 2), np.float32), np.array([0, 1]))):
        with pytest.raises(ConfigError, match="torch.nn.Module"):
            call()


def test_fine_tune_with_a_frozen_trunk_trains_only_the_rest():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 6)).astype(np.float32)
    y = (X[:, 0] > 0).astype("int64")
    model = flights_mlp(6, hidden=(16, 16))
    before = [p.detach().clone() for p in model.parameters()]
    hist = L.fine_tune(model, X, y, epochs=2, frozen=2, lr=1e-2)
    after = list(model.parameters())
    assert torch.equal(before[0], after[0]) and torch.equal(before[1], after[1])  # layer 0 frozen
    assert not torch.equal(before[2], after[2]) and len(hist) == 2
    for frozen in (-1, True, 5, 1.0):
        with pytest.raises(ConfigError, match="frozen"):
            L.fine_tune(model, X, y, frozen=frozen)


def test_compact_convolutions_have_the_formula_counts_and_the_replaced_shapes():
    rng = np.random.default_rng(4)
    for _ in range(60):
        c_in, c_out = (int(v) for v in rng.integers(2, 24, 2))
        k = int(rng.choice([1, 3, 5]))
        pad = int(rng.integers(0, (k - 1) // 2 + 1))
        conv = nn.Conv2d(c_in, c_out, k, padding=pad)
        x = torch.randn(2, c_in, int(rng.integers(k, 14)), int(rng.integers(k, 14)))
        sep = L.separable_conv(conv)
        assert sum(p.numel() for p in sep.parameters()) == L.separable_params(c_in, c_out, k)
        s = int(rng.integers(1, 8))
        e1 = int(rng.integers(1, c_out))
        fire = L.fire_conv(conv, squeeze=s, expand1=e1)
        assert sum(p.numel() for p in fire.parameters()) == L.fire_params(c_in, c_out, k, squeeze=s, expand1=e1)
        with torch.no_grad():
            assert sep(x).shape == conv(x).shape == fire(x).shape
    assert L.fire_params(32, 64, 3) == (32 + 1) * 8 + (8 + 1) * 32 + (8 * 9 + 1) * 32  # the defaults: out/8, out/2


def test_compact_convs_replace_the_right_layers_and_refuse_the_rest():
    cnn, fresh = fashion_cnn(), fashion_cnn()
    with torch.no_grad():
        cnn[7].weight.fill_(0.5)  # as if trained
    for kind, count in (("separable", L.separable_params(32, 64, 3)), ("fire", L.fire_params(32, 64, 3))):
        small = L.compact_convs(cnn, kind)
        assert isinstance(small[0], nn.Conv2d)  # the one-channel first convolution is kept, as MobileNet does
        assert sum(p.numel() for p in small[3].parameters()) == count
        assert count_parameters(small)[0] == count_parameters(cnn)[0] - (32 * 64 * 9 + 64) + count
        # reinit: from scratch, with the standard CNN's initial weights (seed 0) in the layers they share
        assert torch.equal(small[7].weight, fresh[7].weight) and torch.equal(small[0].weight, fresh[0].weight)
        assert small(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert torch.equal(L.compact_convs(cnn, "separable", reinit=False)[7].weight, cnn[7].weight)
    with pytest.raises(ConfigError, match="kind"):
        L.compact_convs(cnn, "mobile")
    with pytest.raises(ConfigError, match="not Conv2d"):
        L.compact_convs(cnn, "fire", layers=["7"])
    with pytest.raises(ConfigError, match="no options"):
        L.compact_convs(cnn, "separable", squeeze=4)
    with pytest.raises(ConfigError, match="'3'.*squeeze"):
        L.compact_convs(cnn, "fire", squeeze=0)
    for conv, words in [(nn.Conv2d(4, 8, 3, stride=2), "stride"), (nn.Conv2d(4, 8, 2), "odd kernel"),
                        (nn.Conv2d(4, 8, 3, padding=2), "padding"), (nn.Conv2d(4, 1, 3), "at least 2")]:
        with pytest.raises(ConfigError, match=words):
            L.fire_conv(conv, name="c")
    with pytest.raises(ConfigError, match="'g'.*groups"):
        L.separable_conv(nn.Conv2d(4, 8, 3, groups=2), name="g")
    with pytest.raises(ConfigError, match="expand1"):
        L.fire_conv(nn.Conv2d(4, 8, 3), expand1=8)


def test_a_fire_network_pickles_and_the_module_imports_without_torch():
    model = L.compact_convs(fashion_cnn(), "fire")
    x = torch.rand(3, 1, 28, 28)
    back = pickle.loads(pickle.dumps(model))
    with torch.no_grad():
        torch.testing.assert_close(back(x), model(x))
    assert type(back[3]) is L.Fire
    code = "import sys, mlsys.deploy.lowrank; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_compression_rows_quick():
    rng = np.random.default_rng(5)
    Xtr, Xte = (rng.normal(size=(n, 20)).astype(np.float32) for n in (600, 300))
    flights = Arrays(Xtr, (Xtr[:, 0] > 0.7).astype("int64"), Xte, (Xte[:, 0] > 0.7).astype("int64"), list(range(20)))
    images = image_arrays(n_train=300, n_test=100)
    mlp, cnn = flights_mlp(20), fashion_cnn()
    before = predict_logits(cnn, images.X_test)
    rows = L.compression_rows(flights, images, mlp, cnn, quick=True)
    assert [r["model"] for r in rows] == ["flights MLP"] + ["Fashion CNN"] * 3
    assert rows[0]["params"] < count_parameters(mlp)[0] and rows[1]["params"] < count_parameters(cnn)[0]
    assert all({"technique", "size_kb", "params", "nonzeros", "p50_b1_ms", "p99_b64_ms", "accuracy"} <= set(r) for r in rows)
    assert "auc" in rows[0]
    assert len({r["technique"] for r in rows}) == len(rows)  # unique names: the rows make one table
    np.testing.assert_array_equal(predict_logits(cnn, images.X_test), before)  # the given models are not changed


def test_side_by_side_times_every_model_in_turns_and_restores_the_threads():
    X = np.random.default_rng(6).normal(size=(10, 8)).astype(np.float32)
    models = {"big": flights_mlp(8), "small": flights_mlp(8, hidden=(4,)), "fn": lambda a: np.zeros((len(a), 2))}
    torch.set_num_threads(2)
    out = L.side_by_side(models, X, batch_size=16, rounds=20)
    assert torch.get_num_threads() == 2
    assert list(out.index) == ["big", "small", "fn"] and list(out.columns) == ["p50_b16_ms", "p99_b16_ms", "x_faster"]
    assert (out["p99_b16_ms"] >= out["p50_b16_ms"]).all() and out.loc["big", "x_faster"] == 1.0
    with pytest.raises(ConfigError, match="at least one model"):
        L.side_by_side({}, X)
    with pytest.raises(ConfigError, match="rounds"):
        L.side_by_side(models, X, rounds=0)
