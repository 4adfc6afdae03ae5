"Exact sparsity, structured shrinking, CSR execution, the lottery ticket's rewinding and bad arguments of mlsys.deploy.prune."
import copy
import subprocess
import sys

import numpy as np
import pytest

from mlsys.core import ConfigError, DataError
from mlsys.deploy import compress as C
from mlsys.deploy import prune as P

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch
nn = torch.nn


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _random_mlp(rng):
    widths = [int(w) for w in rng.integers(1, 40, size=rng.integers(2, 5))]
    layers = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1]), widths[0]


def _random_cnn(rng):
    c1, c2, dense = (int(v) for v in rng.integers(2, 9, size=3))
    k, pad = int(rng.integers(1, 4)), int(rng.integers(0, 2))
    side = 12
    s1 = (side + 2 * pad - k + 1) // 2
    s2 = s1 + 2 * pad - k + 1
    pool = nn.MaxPool2d(2) if rng.random() < 0.5 else nn.AvgPool2d(2)
    model = nn.Sequential(nn.Conv2d(1, c1, k, padding=pad), nn.ReLU(), pool, nn.Conv2d(c1, c2, k, padding=pad),
                          nn.LeakyReLU(), nn.Flatten(), nn.Linear(c2 * s2 * s2, dense), nn.Tanh(), nn.Dropout(0.1),
                          nn.Linear(dense, 3))
    return model, (1, side, side)


def _models(n, seed=0):
    rng = np.random.default_rng(seed)
    for i in range(n):
        torch.manual_seed(i)
        yield (_random_mlp(rng) if i % 2 == 0 else _random_cnn(rng)), rng


def _weights(model):
    return [m.weight.detach().clone() for _, m in P.prunable(model)]


# --- exact sparsity ---------------------------------------------------------------------------

def test_global_and_layerwise_sparsity_are_exact_over_random_models_and_amounts():
    for (model, _), rng in _models(40):
        sizes = [m.weight.numel() for _, m in P.prunable(model)]
        for scope in ("global", "layer"):
            amount = float(rng.choice([0.0, 0.5, 0.75, 0.9, rng.uniform(0, 0.99)]))
            m = P.magnitude_prune(copy.deepcopy(model), amount, scope)
            zeros = [int((w == 0).sum()) for w in _weights(m)]
            if scope == "global":
                assert sum(zeros) == P.pruned_count(amount, sum(sizes)) == int(round(amount * sum(sizes)))
            else:
                assert zeros == [int(round(amount * n)) for n in sizes]
            P.make_permanent(m)
            assert [int((w == 0).sum()) for w in _weights(m)] == zeros
            assert not any(hasattr(x, "weight_orig") or hasattr(x, "weight_mask") for x in m.modules())


def test_magnitude_pruning_removes_the_smallest_weights():
    for (model, _), rng in _models(20, seed=1):
        amount = float(rng.uniform(0.1, 0.95))
        before = _weights(model)
        g = _weights(P.magnitude_prune(copy.deepcopy(model), amount, "global"))
        kept = torch.cat([b[w != 0].abs() for b, w in zip(before, g)])
        gone = torch.cat([b[w == 0].abs() for b, w in zip(before, g)])
        assert len(gone) == 0 or len(kept) == 0 or gone.max() <= kept.min()
        for b, w in zip(before, _weights(P.magnitude_prune(copy.deepcopy(model), amount, "layer"))):
            if (w == 0).any() and (w != 0).any():
                assert b[w == 0].abs().max() <= b[w != 0].abs().min()


def test_repeated_calls_add_exactly_the_difference_and_keep_earlier_zeros():
    for (model, _), rng in _models(10, seed=2):
        for scope in ("global", "layer"):
            m, previous = copy.deepcopy(model), None
            for amount in np.sort(rng.uniform(0, 0.97, size=4)):
                P.magnitude_prune(m, float(amount), scope)
                masks = [mod.weight_mask.clone() for _, mod in P.prunable(m)]
                sizes = [mk.numel() for mk in masks]
                zeros = [int((mk == 0).sum()) for mk in masks]
                want = P.pruned_count(amount, sum(sizes)) if scope == "global" else [P.pruned_count(amount, n) for n in sizes]
                assert (sum(zeros) if scope == "global" else zeros) == want
                if previous is not None:
                    assert all(bool((new[old == 0] == 0).all()) for old, new in zip(previous, masks))
                previous = masks


def test_fine_tuning_keeps_pruned_weights_at_zero_and_the_sparsity_exact():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 8)).astype(np.float32)
    y = (X[:, 0] > 0).astype("int64")
    for scope in ("global", "layer"):
        m = C.flights_mlp(8, hidden=(64, 32))
        hist = P.prune_iteratively(m, X, y, 0.8, steps=3, epochs=2, scope=scope, lr=1e-2, validation=(X, y))
        assert list(hist.index) == [1, 2, 3] and np.allclose(hist["target"], P.cubic_schedule(0.8, 3))
        masks = [mod.weight_mask.clone() for _, mod in P.prunable(m)]
        assert all(bool((mod.weight[mk == 0] == 0).all()) for (_, mod), mk in zip(P.prunable(m), masks))
        P.make_permanent(m)
        sizes = [mod.weight.numel() for _, mod in P.prunable(m)]
        zeros = [int((mod.weight == 0).sum()) for _, mod in P.prunable(m)]
        assert (sum(zeros) == P.pruned_count(0.8, sum(sizes))) if scope == "global" else \
            zeros == [P.pruned_count(0.8, n) for n in sizes]
        assert hist["val_accuracy"].iloc[-1] > 0.75


def test_cubic_schedule_ends_on_the_target_and_rises():
    for steps in range(1, 8):
        s = P.cubic_schedule(0.9, steps)
        assert len(s) == steps and s[-1] == pytest.approx(0.9) and all(a < b for a, b in zip(s, s[1:]))


# --- structured pruning -------------------------------------------------------------------------

def _reference_zeroed(model, amount, norm):
    "The original model with its weakest neurons/filters zeroed (weight rows and biases), chosen by norm here."
    ref, layers = copy.deepcopy(model), P.prunable(model)
    for (_, m), (_, r) in zip(layers[:-1], P.prunable(ref)[:-1]):
        n = m.weight.shape[0]
        k = int(round(amount * n))
        norms = m.weight.detach().flatten(1).norm(p=norm, dim=1)
        gone = torch.argsort(norms)[:k]
        with torch.no_grad():
            r.weight[gone] = 0
            r.bias[gone] = 0
    return ref


def test_shrunk_model_equals_the_original_with_those_neurons_zeroed():
    for (model_and_shape, rng) in _models(40, seed=3):
        model, shape = model_and_shape
        model.eval()
        amount, norm = float(rng.uniform(0, 0.6)), int(rng.choice([1, 2]))
        x = torch.randn(17, *shape) if isinstance(shape, tuple) else torch.randn(17, shape)
        try:
            masked = P.structured_prune(copy.deepcopy(model), amount, norm)
        except ConfigError as e:  # a layer this narrow would lose every output
            assert "would remove all" in str(e)
            continue
        small = P.shrink(masked)
        ref = _reference_zeroed(model, amount, norm).eval()
        with torch.inference_mode():
            torch.testing.assert_close(small(x), ref(x), atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(small(x), masked(x), atol=1e-5, rtol=1e-4)
        for (_, big), (_, s) in zip(P.prunable(model)[:-1], P.prunable(small)[:-1]):
            assert s.weight.shape[0] == big.weight.shape[0] - int(round(amount * big.weight.shape[0]))
        assert P.prunable(small)[-1][1].weight.shape[0] == P.prunable(model)[-1][1].weight.shape[0]
        assert C.count_parameters(small)[0] <= C.count_parameters(model)[0]


def test_fashion_cnn_shrinks_through_flatten():
    cnn = C.fashion_cnn(channels=(8, 16), dense=32).eval()
    small = P.shrink(P.structured_prune(copy.deepcopy(cnn), 0.5, norm=2))
    assert small[0].weight.shape == (4, 1, 3, 3) and small[3].weight.shape == (8, 4, 3, 3)
    assert small[7].weight.shape == (16, 8 * 25) and small[9].weight.shape == (10, 16)
    x = torch.rand(5, 1, 28, 28)
    with torch.inference_mode():
        torch.testing.assert_close(small(x), _reference_zeroed(cnn, 0.5, 2).eval()(x), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("model, match", [
    (lambda: nn.Sequential(nn.Linear(4, 4), nn.Sigmoid(), nn.Linear(4, 2)), "map zero to zero"),
    (lambda: nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)), "map zero to zero"),
    (lambda: nn.ModuleDict({"a": nn.Linear(4, 2)}), "Sequential"),
    (lambda: nn.Sequential(nn.Conv2d(4, 4, 3, groups=2), nn.ReLU(), nn.Conv2d(4, 2, 1)), "grouped"),
])
def test_shrink_refuses_what_it_cannot_shrink_exactly(model, match):
    m = model()
    if isinstance(m, nn.Sequential):
        P.structured_prune(m, 0.5)
    with pytest.raises(ConfigError, match=match):
        P.shrink(m)


def test_shrink_refuses_a_pruned_output_layer():
    from torch.nn.utils import prune
    m = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 3))
    prune.ln_structured(m[2], "weight", amount=1, n=1, dim=0)
    with pytest.raises(ConfigError, match="last"):
        P.shrink(m)


def test_structured_prune_refuses_removing_every_output_and_bad_norms():
    with pytest.raises(ConfigError, match="all 2 outputs of layer '0'"):
        P.structured_prune(nn.Sequential(nn.Linear(4, 2), nn.ReLU(), nn.Linear(2, 2)), 0.9)
    for norm in (0, 3, "l1", None, float("inf")):
        with pytest.raises(ConfigError, match="norm"):
            P.structured_prune(nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)), 0.5, norm=norm)


# --- sparse storage and execution ----------------------------------------------------------------

def test_csr_model_gives_the_pruned_models_outputs_and_stores_only_nonzeros():
    for (model_and_shape, rng) in _models(16, seed=4):
        model, shape = model_and_shape
        model.eval()
        amount = float(rng.uniform(0.5, 0.98))
        pruned = P.make_permanent(P.magnitude_prune(copy.deepcopy(model), amount))
        csr = P.to_csr(pruned)
        x = torch.randn(9, *shape) if isinstance(shape, tuple) else torch.randn(9, shape)
        with torch.inference_mode():
            torch.testing.assert_close(csr(x), pruned(x), atol=1e-5, rtol=1e-4)
        for (_, lin), (_, c) in zip([(n, m) for n, m in P.prunable(pruned) if isinstance(m, nn.Linear)],
                                    [(n, m) for n, m in csr.named_modules() if type(m).__name__ == "CSRLinear"]):
            w = c.weight
            stored = w.values().nbytes + w.col_indices().nbytes + w.crow_indices().nbytes
            assert stored == P.csr_bytes(lin.weight) and w.col_indices().dtype == torch.int32
            assert w.values().numel() == int((lin.weight != 0).sum())
        total, nonzero = P.csr_params(csr)
        assert (total, nonzero) == C.count_parameters(pruned)


def test_csr_saves_space_past_half_sparsity_and_the_original_is_untouched():
    m = P.magnitude_prune(C.flights_mlp(30, hidden=(256, 128)), 0.9)
    before = [w.clone() for w in _weights(m)]
    csr = P.to_csr(m)
    assert hasattr(m[0], "weight_mask") and all(torch.equal(a, b) for a, b in zip(before, _weights(m)))
    dense_bytes = C.model_size(P.make_permanent(P.copy_model(m)))
    assert C.model_size(csr) < dense_bytes / 3


def test_a_masked_model_can_be_copied():
    m = P.magnitude_prune(C.flights_mlp(6, hidden=(8,)), 0.5)
    m(torch.randn(3, 6)).sum().backward()  # the masked weight is a computed tensor (orig * mask): deepcopy refuses it
    with pytest.raises(RuntimeError, match="deepcopy"):
        copy.deepcopy(m)
    c = P.copy_model(m)
    x = torch.randn(4, 6)
    torch.testing.assert_close(c(x), m(x))
    assert P.sparsity(c) == P.sparsity(m) == 0.5 and hasattr(c[0], "weight_mask")


def test_sparse_csr_creation_emits_no_warning():
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        P.to_csr(P.magnitude_prune(C.flights_mlp(6, hidden=(8,)), 0.5))


# --- the lottery ticket ---------------------------------------------------------------------------

def test_lottery_ticket_rewinds_to_the_initial_weights_and_reinit_uses_another_seed(monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 6)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype("int64")
    data = C.Arrays(X[:150], y[:150], X[150:], y[150:], list("abcdef"))
    make = lambda seed: C.flights_mlp(6, hidden=(12, 8), seed=seed)  # noqa: E731
    seen, real_fit = [], P.fit_torch

    def recording_fit(model, *args, **kwargs):
        seen.append({n: m.weight.detach().clone() for n, m in P.prunable(model)})
        seen[-1]["_masks"] = {n: getattr(m, "weight_mask", None) for n, m in P.prunable(model)}
        return real_fit(model, *args, **kwargs)
    monkeypatch.setattr(P, "fit_torch", recording_fit)
    result = P.lottery_ticket(make, data, amount=0.8, epochs=2, lr=1e-2)
    table = result.table
    assert len(seen) == 3 and set(result.models) == set(table.index)
    assert all(torch.equal(result.masks[n], m.weight_mask) for n, m in P.prunable(result.models["ticket (rewound to init)"]))
    init0 = {n: m.weight.detach() for n, m in P.prunable(make(0))}
    init1 = {n: m.weight.detach() for n, m in P.prunable(make(1))}
    for run, init in ((seen[1], init0), (seen[2], init1)):
        for name, w in init.items():
            mask = run["_masks"][name]
            assert mask is not None
            torch.testing.assert_close(run[name], w * mask)
    assert torch.equal(seen[1]["_masks"]["0"], seen[2]["_masks"]["0"])
    assert list(table.index) == ["dense", "pruned, not retrained", "ticket (rewound to init)", "random re-init, same mask"]
    np.testing.assert_allclose(table["sparsity"].iloc[1:], P.pruned_count(0.8, 6 * 12 + 12 * 8 + 8 * 2) / 184)
    assert {"accuracy", "auc"} <= set(table.columns)


def test_lottery_ticket_needs_a_different_reinit_seed():
    data = C.Arrays(np.zeros((4, 2), np.float32), np.array([0, 1, 0, 1]), np.zeros((4, 2), np.float32),
                    np.array([0, 1, 0, 1]), ["a", "b"])
    with pytest.raises(ConfigError, match="reinit_seed"):
        P.lottery_ticket(lambda s: C.flights_mlp(2, hidden=(2,), seed=s), data, seed=3, reinit_seed=3)


# --- the claim and bad arguments -------------------------------------------------------------------

def test_claim_90_reports_the_numbers_and_whether_it_held():
    dense = {"technique": "d", "accuracy": 0.80, "params": 100, "nonzeros": 100}
    ok = P.claim_90(dense, {"technique": "p", "accuracy": 0.795, "params": 100, "nonzeros": 10, "model": "m"})
    assert ok["held"] and ok["change_pts"] == pytest.approx(-0.5) and ok["sparsity"] == pytest.approx(0.9)
    assert "auc_change" not in ok
    assert P.claim_90({**dense, "auc": 0.7}, {"technique": "p", "accuracy": 0.8, "sparsity": 0.9, "auc": 0.65})["auc_change"] == pytest.approx(-0.05)
    assert not P.claim_90(dense, {"technique": "p", "accuracy": 0.785, "sparsity": 0.9})["held"]
    assert not P.claim_90(dense, {"technique": "p", "accuracy": 0.80, "sparsity": 0.8})["held"]
    with pytest.raises(DataError, match="pruned_row"):
        P.claim_90(dense, {"accuracy": 0.8})
    with pytest.raises(DataError, match="pruned_row needs a sparsity"):
        P.claim_90(dense, {"technique": "p", "accuracy": 0.8})
    with pytest.raises(DataError, match="dense_row"):
        P.claim_90(None, dense)


@pytest.mark.parametrize("amount", [1.0, 1.5, -0.1, float("nan"), float("inf"), True, "0.5", None])
def test_bad_amounts_are_refused_by_name(amount):
    m = C.flights_mlp(4, hidden=(4,))
    for call in (lambda: P.magnitude_prune(m, amount), lambda: P.structured_prune(m, amount),
                 lambda: P.cubic_schedule(amount, 3), lambda: P.pruned_count(amount, 10)):
        with pytest.raises(ConfigError, match="amount"):
            call()


def test_other_bad_arguments_are_refused_by_name():
    m = C.flights_mlp(4, hidden=(4,))
    X, y = np.zeros((8, 4), np.float32), np.zeros(8, "int64")
    with pytest.raises(ConfigError, match="scope"):
        P.magnitude_prune(m, 0.5, scope="per-layer")
    with pytest.raises(ConfigError, match="steps"):
        P.prune_iteratively(m, X, y, 0.5, steps=0)
    with pytest.raises(ConfigError, match="epochs"):
        P.prune_iteratively(m, X, y, 0.5, epochs=1.5)
    with pytest.raises(ConfigError, match="torch.nn.Module"):
        P.prunable("not a model")
    with pytest.raises(ConfigError, match="no Linear or Conv2d"):
        P.magnitude_prune(nn.Sequential(nn.ReLU()), 0.5)
    P.magnitude_prune(m, 0.6)
    with pytest.raises(ConfigError, match="below the sparsity already pruned"):
        P.magnitude_prune(m, 0.3)


# --- the combined table and imports -----------------------------------------------------------------

def test_compression_rows_quick_gives_labelled_rows_and_leaves_the_baselines_unchanged():
    rng = np.random.default_rng(0)
    Xf = rng.normal(size=(500, 10)).astype(np.float32)
    yf = (Xf[:, 0] > 0).astype("int64")
    flights = C.Arrays(Xf[:400], yf[:400], Xf[400:], yf[400:], [f"c{i}" for i in range(10)])
    Xi = rng.random(size=(300, 1, 28, 28), dtype=np.float32)
    yi = rng.integers(0, 10, size=300)
    images = C.Arrays(Xi[:200], yi[:200], Xi[200:], yi[200:], [1, 28, 28])
    mlp, cnn = C.flights_mlp(10, hidden=(32, 16)), C.fashion_cnn(channels=(4, 8), dense=16)
    before = [copy.deepcopy(mlp.state_dict()), copy.deepcopy(cnn.state_dict())]
    rows = P.compression_rows(flights, images, mlp, cnn, quick=True)
    assert {r["model"] for r in rows} == {"flights MLP", "Fashion CNN"}
    names = [r["technique"] for r in rows if r["model"] == "Fashion CNN"]
    assert names == ["prune 90% global", "prune 90% global, CSR", "structured 50%"]
    for r in rows:
        assert {"size_kb", "params", "nonzeros", "p50_b1_ms", "p99_b64_ms", "accuracy"} <= set(r)
        if "sparsity" in r:
            n = sum(m.weight.numel() for _, m in P.prunable(mlp if r["model"] == "flights MLP" else cnn))
            assert r["sparsity"] == P.pruned_count(0.9, n) / n
    for model, sd in zip((mlp, cnn), before):
        assert all(torch.equal(sd[k], v) for k, v in model.state_dict().items())
        assert not hasattr(P.prunable(model)[0][1], "weight_mask")


def test_importing_the_module_does_not_import_torch():
    code = "import sys, mlsys.deploy.prune; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
