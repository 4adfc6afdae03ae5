"Rounding bounds, sizes, half-precision roundtrips, the binary layer and its STE, per-layer errors and bad arguments of mlsys.deploy.quantize."
import copy
import io
import subprocess
import sys
import warnings

import numpy as np
import pytest

from mlsys.core import ConfigError, DataError
from mlsys.deploy import compress as C
from mlsys.deploy import quantize as Q

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch
nn = torch.nn


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _cases(n, seed=0):
    "Random (layer, inputs): odd shapes, scaled and shifted inputs, zero rows, all-positive inputs."
    rng = np.random.default_rng(seed)
    for i in range(n):
        torch.manual_seed(i)
        d_in, d_out, rows = (int(v) for v in rng.integers(1, 48, size=3))
        layer = nn.Linear(d_in, d_out)
        with torch.no_grad():
            layer.weight.mul_(float(rng.choice([0.1, 1.0, 5.0])))
        x = torch.from_numpy(rng.normal(float(rng.choice([0, 2])), float(rng.choice([0.1, 1, 10])),
                                        size=(rows, d_in)).astype(np.float32))
        if i % 3 == 0:
            x = x.abs()
        if i % 4 == 0:
            x[0] = 0
        yield layer.eval(), x


def _within(err, bound):
    return bool((err <= bound * (1 + 1e-4) + 1e-5).all())


# --- int8 outputs within the bound their scales allow ------------------------------------------------

def test_older_dynamic_int8_layer_stays_within_its_rounding_bound():
    for layer, x in _cases(60):
        q = Q.dynamic_int8(nn.Sequential(layer))[0]
        with torch.inference_mode():
            err = (q(x) - layer(x)).abs()
        x_step = float(x.max().clamp_min(0) - x.min().clamp_max(0)) / 127
        assert _within(err, Q.rounding_bound(x, layer.weight.detach(), q.weight().q_scale(), x_step))


def test_torchao_dynamic_and_weight_only_layers_stay_within_their_rounding_bounds():
    for layer, x in _cases(40, seed=1):
        dyn = Q.torchao_int8(nn.Sequential(layer))[0]
        wo = Q.torchao_int8(nn.Sequential(layer), weight_only=True)[0]
        with torch.inference_mode():
            ref = layer(x)
            err_dyn, err_wo = (dyn(x) - ref).abs(), (wo(x) - ref).abs()
        w = layer.weight.detach()
        x_rows = x.abs().amax(dim=1) / 127
        assert _within(err_dyn, Q.rounding_bound(x, w, dyn.weight.scale.reshape(-1), x_rows))
        assert _within(err_wo, Q.rounding_bound(x, w, wo.weight.scale.reshape(-1)))


def test_torchao_static_layer_stays_within_the_bound_of_its_calibrated_scale():
    for layer, x in _cases(30, seed=2):
        q = Q.torchao_int8_static(nn.Sequential(layer), x.numpy())[0]
        with torch.inference_mode():
            err = (q(x) - layer(x)).abs()
        x_step = float(x.abs().max()) / 127
        assert _within(err, Q.rounding_bound(x, layer.weight.detach(), q.weight.scale.reshape(-1), x_step))


def test_rounding_bound_arithmetic_and_zero_without_steps():
    x = torch.tensor([[1.0, -2.0]])
    w = torch.tensor([[0.5, 0.25], [1.0, 0.0]])
    b = Q.rounding_bound(x, w, 0.1, 0.2)
    # rows: 0.05 * 3 + 0.1 * (0.75 + 2 * 0.05) and 0.05 * 3 + 0.1 * (1 + 2 * 0.05)
    torch.testing.assert_close(b, torch.tensor([[0.235, 0.26]]))
    assert float(Q.rounding_bound(x, w, 0.0).abs().max()) == 0.0


def test_static_fx_model_agrees_with_float_on_inputs_like_its_calibration():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 12)).astype(np.float32)
    y = (X[:, 0] - X[:, 1] > 0).astype("int64")
    m = C.flights_mlp(12, hidden=(32, 16))
    C.fit_torch(m, X, y, epochs=5, lr=1e-2)
    q = Q.static_int8_fx(m, X[:400])
    ref, out = C.predict_logits(m, X[400:]), C.predict_logits(q, X[400:])
    assert np.mean(ref.argmax(1) == out.argmax(1)) > 0.97
    assert np.linalg.norm(out - ref) / np.linalg.norm(ref) < 0.05


# --- sizes, half precision --------------------------------------------------------------------------

def test_every_int8_model_is_much_smaller_and_half_precision_halves():
    m = C.flights_mlp(124)
    calib = np.random.default_rng(0).normal(size=(256, 124)).astype(np.float32)
    dense = C.model_size(m)
    int8 = {"dynamic": Q.dynamic_int8(m), "torchao": Q.torchao_int8(m), "weight-only": Q.torchao_int8(m, weight_only=True),
            "fx": Q.static_int8_fx(m, calib), "torchao static": Q.torchao_int8_static(m, calib),
            "pt2e": Q.pt2e_int8_static(m, calib, compile=False)}
    for name, q in int8.items():
        assert C.model_size(q) < dense / 3, name
    for dt in ("float16", "bfloat16"):
        assert dense / 2.05 < C.model_size(Q.half_precision(m, dt)) < dense / 1.9


def test_half_precision_roundtrips_within_half_a_unit_in_the_last_place():
    rng = np.random.default_rng(0)
    m = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 3))
    with torch.no_grad():
        m[0].weight.copy_(torch.from_numpy(rng.normal(size=(32, 64)).astype(np.float32)) *
                          torch.from_numpy(10.0 ** rng.uniform(-7, 1, size=(32, 64)).astype(np.float32)))
    w = m[0].weight.detach()
    for dt, rel, tiny, tiny_abs in (("float16", 2 ** -11, 2 ** -14, 2 ** -25), ("bfloat16", 2 ** -8, 2 ** -126, 0.0)):
        h = Q.half_precision(m, dt)
        back = h.model[0].weight.detach().float()
        normal = w.abs() >= tiny
        assert bool(((back - w).abs() <= rel * w.abs())[normal].all())
        assert bool(((back - w).abs() <= tiny_abs)[~normal].all())
        buf = io.BytesIO()
        torch.save(h.state_dict(), buf)
        buf.seek(0)
        again = Q.half_precision(m, dt)
        again.load_state_dict(torch.load(buf))
        x = torch.randn(5, 64)
        with torch.inference_mode():
            assert torch.equal(again(x), h(x)) and h(x).dtype == torch.float32
            assert float((h(x) - m(x)).abs().max()) < 0.05 * float(m(x).abs().max()) + 1e-3


# --- the binary layer ---------------------------------------------------------------------------------

def test_binarized_forward_is_the_formula_exactly_with_sign_zero_positive():
    rng = np.random.default_rng(0)
    for i in range(30):
        d_in, d_out = (int(v) for v in rng.integers(1, 40, size=2))
        lin = nn.Linear(d_in, d_out, bias=bool(i % 2))
        with torch.no_grad():
            lin.weight[rng.random((d_out, d_in)) < 0.1] = 0.0
        b = Q.binary_linear(lin)
        W = lin.weight.detach()
        alpha = W.abs().mean(dim=1, keepdim=True)
        signs = torch.where(W >= 0, 1.0, -1.0)
        x = torch.randn(7, d_in)
        expected = torch.nn.functional.linear(x, signs * alpha, lin.bias)
        assert torch.equal(b.binary_weight(), signs * alpha)
        assert torch.equal(b(x), expected)
        live = alpha.reshape(-1) > 0  # a row of zero weights has scale 0
        assert set(torch.unique(b.binary_weight()[live].abs() / alpha[live]).tolist()) <= {1.0}


def test_straight_through_estimator_hands_the_binary_weights_gradient_to_the_latent_weights():
    rng = np.random.default_rng(1)
    for _ in range(20):
        d_in, d_out = (int(v) for v in rng.integers(1, 30, size=2))
        b = Q.binary_linear(nn.Linear(d_in, d_out))
        x = torch.randn(9, d_in)
        target = torch.randn(9, d_out)
        Wb = b.binary_weight().detach().requires_grad_()
        bias = b.bias.detach().clone().requires_grad_()
        ((torch.nn.functional.linear(x, Wb, bias) - target) ** 3).sum().backward()
        ((b(x) - target) ** 3).sum().backward()
        assert torch.equal(b.weight.grad, Wb.grad) and torch.equal(b.bias.grad, bias.grad)


def test_binarize_swaps_the_hidden_layers_and_trains():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 10)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype("int64")
    m = C.flights_mlp(10, hidden=(32, 32, 16))
    hidden = Q.binarize(m)
    assert [type(x).__name__ for x in hidden if isinstance(x, nn.Linear)] == ["Linear", "BinaryLinear", "BinaryLinear", "Linear"]
    every = Q.binarize(m, keep_first_last=False)
    assert all(type(x).__name__ == "BinaryLinear" for x in every if isinstance(x, nn.Linear))
    assert all(type(x) is nn.Linear for x in m if isinstance(x, nn.Linear))  # the original is untouched
    hist = C.fit_torch(every, X, y, epochs=15, lr=1e-2, validation=(X, y))
    assert hist["val_accuracy"].iloc[-1] > 0.8


def test_packed_bits_unpack_to_the_binary_weights_and_freeze_keeps_the_outputs():
    rng = np.random.default_rng(2)
    for _ in range(10):
        widths = [int(v) for v in rng.integers(1, 45, size=4)]
        m = nn.Sequential(nn.Linear(widths[0], widths[1]), nn.ReLU(), nn.Linear(widths[1], widths[2]), nn.ReLU(),
                          nn.Linear(widths[2], widths[3]))
        b = Q.binarize(m, keep_first_last=False)
        packed = Q.pack_binary(b)
        for name in ("0", "2", "4"):
            layer = b.get_submodule(name)
            bits = packed[f"{name}.weight.bits"]
            assert bits.dtype == np.uint8 and bits.shape == (layer.out_features, -(-layer.in_features // 8))
            np.testing.assert_array_equal(Q.unpack_binary_weight(bits, packed[f"{name}.weight.scale"], layer.in_features),
                                          layer.binary_weight().detach().numpy())
        x = torch.randn(6, widths[0])
        with torch.inference_mode():
            assert torch.equal(Q.freeze_binary(b)(x), b(x))
    big = Q.binarize(C.flights_mlp(64, hidden=(256, 256)), keep_first_last=False)
    assert Q.packed_size(big) < C.model_size(big) / 10


# --- per-layer errors ----------------------------------------------------------------------------------

def test_layer_errors_are_zero_for_an_identical_copy_and_small_for_int8():
    m = C.flights_mlp(16, hidden=(32, 16))
    X = np.random.default_rng(0).normal(size=(200, 16)).astype(np.float32)
    same = Q.layer_errors(m, copy.deepcopy(m), X)
    assert list(same.index) == ["0", "2", "4"] and float(same[["weight_error", "output_error"]].abs().max().max()) == 0.0
    for q in (Q.dynamic_int8(m), Q.torchao_int8(m), Q.static_int8_fx(m, X), Q.half_precision(m, "bfloat16")):
        e = Q.layer_errors(m, q, X)
        assert list(e.index) == ["0", "2", "4"]
        assert (e["weight_error"] > 0).all() and (e["weight_error"] < 0.05).all() and (e["output_error"] < 0.1).all()
    fused = Q.layer_errors(m, Q.static_int8_fx(m, X), X)
    assert "ReLU" in fused.loc["0", "kind"] and "ReLU" not in fused.loc["4", "kind"]


def test_layer_errors_refuse_a_model_without_the_layers():
    m = C.flights_mlp(8, hidden=(8,))
    X = np.zeros((10, 8), np.float32)
    exported = Q.pt2e_int8_static(m, np.random.default_rng(0).normal(size=(64, 8)).astype(np.float32), compile=False)
    with pytest.raises(ConfigError, match="no layer of the quantized model"):
        Q.layer_errors(m, exported, X)


# --- claims, configs and clean output ----------------------------------------------------------------------

def test_int8_speed_claim_reads_the_rows():
    rows = [{"technique": "float32", "p50_b1_ms": 1.0, "p50_b64_ms": 10.0},
            {"technique": "int8 a", "p50_b1_ms": 0.5, "p50_b64_ms": 9.5, "model": "m"},
            {"technique": "bfloat16", "p50_b1_ms": 0.1, "p50_b64_ms": 1.0},
            {"technique": "int8 b", "p50_b1_ms": 2.0, "p50_b64_ms": 2.0}]
    t = Q.int8_speed_claim(rows)
    assert list(t.index.get_level_values("technique")) == ["int8 a", "int8 b"]
    assert t["faster_b1"].tolist() == [True, False] and t["faster_b64"].tolist() == [False, True]
    assert t["speedup_b1"].tolist() == [2.0, 0.5]
    with pytest.raises(DataError, match="measure rows"):
        Q.int8_speed_claim([{"technique": "x"}])


@pytest.mark.parametrize("call, error, match", [
    (lambda m, X: Q.half_precision(m, "int8"), ConfigError, "dtype"),
    (lambda m, X: Q.half_precision(m, torch.float16), ConfigError, "dtype"),
    (lambda m, X: Q.static_int8_fx(m, X.astype(np.float64)), DataError, "calibration"),
    (lambda m, X: Q.static_int8_fx(m, X[0]), DataError, "calibration"),
    (lambda m, X: Q.torchao_int8_static(m, X[:0]), DataError, "calibration"),
    (lambda m, X: Q.torchao_int8_static(m, np.full_like(X, np.inf)), DataError, "calibration holds NaN or infinite"),
    (lambda m, X: Q.pt2e_int8_static(m, X.tolist()), DataError, "calibration"),
    (lambda m, X: Q.static_int8_fx(m, X, batch_size=0), ConfigError, "batch_size"),
    (lambda m, X: Q.torchao_int8_static(m, X, batch_size=True), ConfigError, "batch_size"),
    (lambda m, X: Q.binarize(m, keep_first_last="yes"), ConfigError, "keep_first_last"),
    (lambda m, X: Q.binarize(nn.Sequential(nn.Linear(4, 2)), keep_first_last=True), ConfigError, "none left to binarize"),
    (lambda m, X: Q.dynamic_int8("model"), ConfigError, "torch.nn.Module"),
    (lambda m, X: Q.torchao_int8(nn.Sequential(nn.Conv2d(1, 2, 3))), ConfigError, "no Linear layer"),
    (lambda m, X: Q.pack_binary(m), ConfigError, "no BinaryLinear"),
])
def test_bad_arguments_are_refused_by_name(call, error, match):
    m = C.flights_mlp(4, hidden=(8, 8))
    X = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    with pytest.raises(error, match=match):
        call(m, X)


def test_the_older_path_runs_without_warnings():
    m = C.fashion_cnn(channels=(4, 8), dense=16)
    X = np.random.default_rng(0).random(size=(64, 1, 28, 28), dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for q in (Q.dynamic_int8(m), Q.static_int8_fx(m, X)):
            C.predict_logits(q, X)


def test_a_fresh_process_quantizing_with_torchao_prints_nothing():
    code = ("import torch, numpy as np\n"
            "from mlsys.deploy import compress as C, quantize as Q\n"
            "m = C.flights_mlp(8, hidden=(8,)); X = np.zeros((16, 8), np.float32)\n"
            "for q in (Q.torchao_int8(m), Q.torchao_int8(m, weight_only=True), Q.torchao_int8_static(m, X + 1),\n"
            "          Q.dynamic_int8(m), Q.static_int8_fx(m, X + 1)):\n"
            "    C.predict_logits(q, X)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "" and out.stderr == "", out.stderr


def test_compression_rows_quick_gives_labelled_rows_and_leaves_the_baselines_unchanged():
    rng = np.random.default_rng(0)
    Xf = rng.normal(size=(500, 10)).astype(np.float32)
    yf = (Xf[:, 0] > 0).astype("int64")
    flights = C.Arrays(Xf[:400], yf[:400], Xf[400:], yf[400:], [f"c{i}" for i in range(10)])
    Xi = rng.random(size=(300, 1, 28, 28), dtype=np.float32)
    yi = rng.integers(0, 10, size=300)
    images = C.Arrays(Xi[:200], yi[:200], Xi[200:], yi[200:], [1, 28, 28])
    mlp, cnn = C.flights_mlp(10, hidden=(32, 16, 8)), C.fashion_cnn(channels=(4, 8), dense=16)
    before = [copy.deepcopy(mlp.state_dict()), copy.deepcopy(cnn.state_dict())]
    rows = Q.compression_rows(flights, images, mlp, cnn, quick=True)
    names = {"int8 dynamic (torch.ao)", "int8 dynamic (torchao)", "int8 weight-only (torchao)", "int8 static (torch.ao FX)",
             "int8 static (torchao)", "float16", "bfloat16"}
    assert {r["technique"] for r in rows if r["model"] == "Fashion CNN"} == names
    assert {r["technique"] for r in rows if r["model"] == "flights MLP"} == names | {"1-bit hidden layers"}
    for r in rows:
        assert {"size_kb", "params", "nonzeros", "p50_b1_ms", "p99_b64_ms", "accuracy"} <= set(r)
    for model, sd in zip((mlp, cnn), before):
        assert all(torch.equal(sd[k], v) for k, v in model.state_dict().items())


def test_importing_the_module_does_not_import_torch():
    code = "import sys, mlsys.deploy.quantize; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
