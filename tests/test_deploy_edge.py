"mlsys.deploy.edge: exports equal the original over random inputs (random layer stacks too), damaged files refused, bad arguments named."
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mlsys.core import ConfigError, DataError, IntegrityError

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # as mlsys.deploy.tfcompress.import_tf, before anything imports TF
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
pytestmark = [pytest.mark.torch, pytest.mark.tf]
torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("tensorflow")
pytest.importorskip("ai_edge_litert")

from mlsys.deploy import edge as E  # noqa: E402
from mlsys.deploy.tfcompress import import_tf  # noqa: E402

ESTIMATORS = []  # this module adds no estimator
nn = torch.nn


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    try:
        import_tf(threads=1)
    except ConfigError:  # another test module started TensorFlow first: its thread pools stay as they are
        import_tf()


def stress(shape, seed):
    "Random float32 batches: one row, odd sizes, zeros, -0.0, subnormals and values 1e4 times the usual scale."
    rng = np.random.default_rng(seed)
    for n in (1, 2, 7, 65):
        yield rng.normal(size=(n, *shape)).astype(np.float32)
    yield np.zeros((3, *shape), np.float32)
    yield np.full((2, *shape), -0.0, np.float32)
    yield np.full((4, *shape), 1e-40, np.float32)
    yield (rng.normal(size=(5, *shape)) * 1e4).astype(np.float32)
    yield rng.uniform(-3e4, 3e4, size=(3, *shape)).astype(np.float32)


def small_cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 6, 3, stride=2),
                         nn.ReLU(), nn.Flatten(), nn.Linear(6 * 2 * 2, 3)).eval()


def small_mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 2)).eval()


def test_import_is_light():
    code = "import sys, mlsys.deploy.edge; print('tensorflow' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False False"


@pytest.mark.parametrize("make, shape", [(small_mlp, (20,)), (small_cnn, (1, 12, 12))])
def test_torch_exports_equal_over_random_inputs(make, shape):
    net = make()
    exports = E.export_edge(net, np.random.default_rng(0).normal(size=(16, *shape)).astype(np.float32))
    assert set(exports) == {"onnx", "tflite"}
    ref = E.reference(net)
    for x in stress(shape, 1):
        want = ref(x)
        for fmt, e in exports.items():
            assert E.output_difference(want, e.run(x), 1e-4, f"{fmt} on {x.shape}") <= 1e-4 * max(1, np.abs(want).max())


def _random_stack(rng):
    "A random torch Sequential of the layers torch_to_keras copies, and its input shape."
    acts = [nn.ReLU, nn.Tanh, nn.Sigmoid, nn.Identity]
    if rng.random() < 0.5:
        widths = [int(w) for w in rng.integers(1, 24, size=rng.integers(2, 5))]
        layers = []
        for a, b in zip(widths, widths[1:]):
            layers += [nn.Linear(a, b, bias=bool(rng.random() < 0.8)), acts[rng.integers(len(acts))]()]
        return nn.Sequential(*layers), (widths[0],)
    c_in, size = int(rng.integers(1, 4)), int(rng.integers(9, 16))
    c, layers = c_in, []
    for _ in range(int(rng.integers(1, 3))):
        k, s, p = int(rng.integers(1, 4)), int(rng.integers(1, 3)), int(rng.integers(0, 2))
        out = int(rng.integers(1, 6))
        layers += [nn.Conv2d(c, out, k, stride=s, padding=p, bias=bool(rng.random() < 0.7)), acts[rng.integers(len(acts))]()]
        c = out
        if rng.random() < 0.5:
            layers.append(nn.MaxPool2d(int(rng.integers(1, 3))))
    net = nn.Sequential(*layers)
    with torch.no_grad():
        flat = net(torch.zeros(1, c_in, size, size)).numel()
    if rng.random() < 0.7:  # end on a dense head (Flatten in torch's order), else on the feature map itself
        net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(flat, int(rng.integers(1, 5))))
    return net, (c_in, size, size)


def test_torch_to_keras_differential_on_random_stacks():
    rng = np.random.default_rng(7)
    for i in range(16):
        net, shape = _random_stack(rng)
        net.eval()
        x = rng.normal(size=(int(rng.integers(1, 6)), *shape)).astype(np.float32)
        keras_model = E.torch_to_keras(net, x)
        with torch.no_grad():
            want = net(torch.from_numpy(x)).numpy()
        got = keras_model(x, training=False).numpy()
        assert got.shape == want.shape, (i, net)
        assert np.abs(got - want).max() <= 1e-5 * max(1.0, np.abs(want).max()), (i, net)


def test_keras_and_sklearn_exports():
    from sklearn.linear_model import LogisticRegression

    from mlsys.deploy.tfcompress import fit_keras, keras_mlp
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 20)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    k = keras_mlp(20, hidden=(8,))
    fit_keras(k, X, y, epochs=1)
    kx = E.export_edge(k, X[:32])
    assert set(kx) == {"tflite"}
    with pytest.raises(ConfigError, match="tf2onnx"):
        E.export_edge(k, X[:32], formats=["onnx"])
    lr = LogisticRegression().fit(X, y)
    sx = E.export_edge(lr, X[:32])
    assert set(sx) == {"onnx"}
    with pytest.raises(ConfigError, match="no TFLite converter for scikit-learn"):
        E.export_edge(lr, X[:32], formats="tflite")
    for x in stress((20,), 3):
        E.output_difference(E.reference(k)(x), kx["tflite"].run(x), 1e-4, "keras tflite")
        E.output_difference(lr.predict_proba(x), sx["onnx"].run(x), 1e-4, "sklearn onnx")


def test_a_differing_export_is_refused(monkeypatch):
    net, x = small_mlp(), np.ones((4, 20), np.float32)
    real = E._tflite

    def off_by_a_bit(model, kind, example):
        data, run, spec = real(model, kind, example)
        return data, (lambda X: run(X) + 0.01), spec
    monkeypatch.setattr(E, "_tflite", off_by_a_bit)
    with pytest.raises(IntegrityError, match="the tflite export of this Sequential differs from the original"):
        E.export_edge(net, x)
    with pytest.raises(IntegrityError, match="NaN"):
        E.output_difference(np.zeros((2, 2)), np.full((2, 2), np.nan), 1.0, "x")


FUZZ = textwrap.dedent("""
    import json, sys
    import numpy as np
    from mlsys.core import MlsysError
    from mlsys.deploy.edge import load_edge
    path, out = sys.argv[1], {}
    data = open(path, "rb").read()
    rng = np.random.default_rng(int(sys.argv[2]))
    target = path + ".fuzz" + path[path.rindex("."):]
    for i in range(int(sys.argv[3])):
        b = bytearray(data)
        kind = i % 3
        if kind == 0:
            b = b[: int(rng.integers(0, len(b)))]
        elif kind == 1:
            for _ in range(int(rng.integers(1, 8))):
                b[int(rng.integers(0, len(b)))] = int(rng.integers(0, 256))
        else:
            b = b[:16] + rng.bytes(len(b) - 16)
        open(target, "wb").write(bytes(b))
        try:
            load_edge(target)
            result = "loaded"
        except MlsysError as e:
            result = type(e).__name__
        out[result] = out.get(result, 0) + 1
    print(json.dumps(out))
""")


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_damaged_files_refused(fmt, tmp_path):
    e = E.export_edge(small_cnn(), np.zeros((2, 1, 12, 12), np.float32), formats=[fmt])[fmt]
    path = E.save_edge(e, tmp_path / f"m.{fmt}")
    assert E.load_edge(path, sha256=e.sha256)
    script = tmp_path / "fuzz.py"
    script.write_text(FUZZ)
    bare = tmp_path / f"bare.{fmt}"
    bare.write_bytes(path.read_bytes())
    run = subprocess.run([sys.executable, str(script), str(bare), "0", "45"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]  # no crash of the interpreter on any damaged file
    outcomes = json.loads(run.stdout.strip().splitlines()[-1])
    assert set(outcomes) <= {"IntegrityError", "ConfigError", "DataError", "loaded"}, outcomes
    assert outcomes.get("IntegrityError", 0) >= 20  # truncations and noise are refused by the interpreter's checks
    data = path.read_bytes()
    at = len(data) // 2
    path.write_bytes(data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:])  # one weight bit: still a valid file
    with pytest.raises(IntegrityError, match="checksum mismatch"):
        E.load_edge(path)
    path.write_bytes(data)
    with pytest.raises(IntegrityError, match="the given sha256"):
        E.load_edge(path, sha256="0" * 64)
    (tmp_path / f"m.{fmt}.json").write_text(json.dumps({"format": "other", "sha256": e.sha256}))
    with pytest.raises(IntegrityError, match="not the manifest"):
        E.load_edge(path)


def test_bad_arguments(tmp_path):
    net = small_mlp()
    x = np.zeros((3, 20), np.float32)
    with pytest.raises(ConfigError, match="cannot export a builtins.object"):
        E.export_edge(object(), x)
    with pytest.raises(DataError, match="float32 batch"):
        E.export_edge(net, x.astype(np.float64))
    with pytest.raises(ConfigError, match="formats must be distinct"):
        E.export_edge(net, x, formats=["onnx", "onnx"])
    with pytest.raises(ConfigError, match="formats must be distinct"):
        E.export_edge(net, x, formats=["coreml"])
    with pytest.raises(ConfigError, match="atol"):
        E.export_edge(net, x, atol=-1)
    with pytest.raises(ConfigError, match="not LSTM"):
        E.torch_to_keras(nn.Sequential(nn.LSTM(20, 4)), x)
    with pytest.raises(ConfigError, match="Sequential"):
        E.torch_to_keras(nn.Linear(20, 2), x)
    with pytest.raises(DataError, match=r"\(n, channels, height, width\)"):
        E.torch_to_keras(net, np.zeros((2, 3, 20), np.float32))
    with pytest.raises(ConfigError, match="groups=1"):
        E.torch_to_keras(nn.Sequential(nn.Conv2d(2, 2, 3, groups=2)), np.zeros((1, 2, 8, 8), np.float32))
    with pytest.raises(ConfigError, match="ceil_mode"):
        E.torch_to_keras(nn.Sequential(nn.MaxPool2d(2, ceil_mode=True)), np.zeros((1, 1, 8, 8), np.float32))
    with pytest.raises(DataError, match="not found"):
        E.load_edge(tmp_path / "missing.onnx")
    with pytest.raises(ConfigError, match=".onnx or .tflite"):
        E.load_edge(tmp_path / "m.pt")
    e = E.export_edge(net, x, formats=["onnx"])["onnx"]
    with pytest.raises(ConfigError, match="written to a .onnx"):
        E.save_edge(e, tmp_path / "m.tflite")
    with pytest.raises(ConfigError, match="EdgeModel"):
        E.save_edge(b"bytes", tmp_path / "m.onnx")
    with pytest.raises(ConfigError, match="calls"):
        E.edge_table(net, {"onnx": e}, x, calls=10)
    with pytest.raises(ConfigError, match="non-empty dict"):
        E.edge_table(net, {}, x)


def test_edge_table_rows():
    net = small_cnn()
    x = np.random.default_rng(0).normal(size=(8, 1, 12, 12)).astype(np.float32)
    table = E.edge_table(net, E.export_edge(net, x), x, calls=100)
    assert list(table.index) == ["torch (original)", "onnx (onnxruntime)", "tflite (LiteRT (ai-edge-litert))"]
    assert {"size_kb", "max_abs_diff", "p50_b1_ms", "p99_b1_ms", "p50_b64_ms", "p99_b64_ms"} <= set(table.columns)
    assert (table["size_kb"] > 0).all() and (table["p99_b64_ms"] >= table["p50_b64_ms"]).all()
    assert torch.get_num_threads() == 1
