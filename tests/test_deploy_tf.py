"mlsys.deploy.tfcompress: Keras artifacts (round trips, tampering, a killed writer), tfmot pruning and QAT, TFLite conversions run by LiteRT."
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import zipfile

import numpy as np
import pytest

from mlsys.core import ConfigError, DataError, IntegrityError

pytestmark = pytest.mark.tf
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # as mlsys.deploy.tfcompress.import_tf, before importorskip imports TF
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
pytest.importorskip("tensorflow")
pytest.importorskip("tf_keras")
pytest.importorskip("tensorflow_model_optimization")
pytest.importorskip("ai_edge_litert")

from mlsys.deploy import tfcompress as T  # noqa: E402
from mlsys.deploy.serialize import FORMATS, load_model, model_kind, read_artifact, save_model, write_artifact  # noqa: E402

ESTIMATORS = []  # this module adds no estimator


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1500, 20)).astype(np.float32)
    y = ((X[:, 0] + 0.5 * X[:, 1] - X[:, 2] * X[:, 3]) > 0).astype(np.int64)
    return X[:1200], y[:1200], X[1200:], y[1200:]


@pytest.fixture(scope="module")
def model(data):
    try:
        T.import_tf(threads=1)
    except ConfigError:  # another test module started TensorFlow first: its thread pools stay as they are
        T.import_tf()
    X, y, _, _ = data
    m = T.keras_mlp(X.shape[1], hidden=(32, 16))
    T.fit_keras(m, X, y, epochs=3)
    return m


def inputs(n_features, seed):
    "Random batches: ordinary rows, one row, odd sizes, zeros, subnormals, -0.0 and large float32 values."
    rng = np.random.default_rng(seed)
    for size in (1, 7, 64, 129):
        yield rng.normal(size=(size, n_features)).astype(np.float32)
    yield np.zeros((3, n_features), np.float32)
    yield np.full((2, n_features), -0.0, np.float32)
    yield np.full((5, n_features), np.float32(1e-40))  # subnormal
    yield (rng.normal(size=(9, n_features)) * 1e4).astype(np.float32)


def test_import_is_light():
    code = "import sys, mlsys.deploy.tfcompress; print('tensorflow' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False False"


def test_native_output_keeps_unknown_lines(capfd):
    with T.native_output() as dropped:
        os.write(2, b"I0000 00:00:1796152576.294813   23304 port.cc:153] oneDNN custom operations are on.\n")
        os.write(2, b"E0000 00:00:1.0 1 real.cc:1] a real error\n")
    assert dropped == ["I0000 00:00:1796152576.294813   23304 port.cc:153] oneDNN custom operations are on."]
    assert "a real error" in capfd.readouterr().err


# ---- Keras artifacts ----

@pytest.mark.parametrize("fmt", sorted(T.KERAS_FORMATS))
def test_keras_round_trips(model, fmt, tmp_path):
    path = T.save_keras(model, tmp_path / f"m_{fmt}.zip", format=fmt)
    back = T.load_keras(path)
    for x in inputs(20, 1):
        np.testing.assert_array_equal(back(x, training=False).numpy(), model(x, training=False).numpy())
    man = T.read_keras_artifact(path)[0]
    assert man["kind"] == "keras" and man["format"] == fmt and man["requires"]["tensorflow"] == man["environment"]["tensorflow"]


def test_serialize_reads_and_loads_keras_artifacts(model, tmp_path):
    "A Keras artifact is one of serialize's kinds: read_artifact checks it, load_model rebuilds it, save_model writes it."
    assert {f for f, kind in FORMATS.items() if kind == "keras"} == set(T.KERAS_FORMATS)
    assert model_kind(model) == "keras"
    x = next(inputs(20, 2))
    for fmt in sorted(T.KERAS_FORMATS):
        path = T.save_keras(model, tmp_path / f"t_{fmt}.zip", format=fmt)
        man, files = read_artifact(path)
        assert (man["kind"], man["format"], set(files)) == ("keras", fmt, {T.KERAS_FORMATS[fmt]})
        assert set(man["requires"]) == {"python", "tensorflow", "tf-keras"}
        assert man["environment"]["tensorflow-model-optimization"] is not None
        np.testing.assert_array_equal(load_model(path)(x, training=False).numpy(), model(x, training=False).numpy())
        again = save_model(model, tmp_path / f"s_{fmt}.zip", format=fmt)  # save_model hands a Keras model to save_keras
        assert T.read_keras_artifact(again)[0]["format"] == fmt
    assert read_artifact(save_model(model, tmp_path / "d.zip"))[0]["format"] == "keras"  # the default Keras format
    with pytest.raises(ConfigError, match="serializes scikit-learn and torch models, not a keras"):
        save_model(model, tmp_path / "x.zip", format="onnx")
    with pytest.raises(ConfigError, match="serializes sklearn models, not a keras"):
        save_model(model, tmp_path / "x.zip", format="skops")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _rewrite(src, dst, manifest=None, files=None, rehash=True):
    "A copy of an artifact with its manifest or members changed (and, with rehash, consistent checksums)."
    with zipfile.ZipFile(src) as z:
        members = {n: z.read(n) for n in z.namelist()}
    man = json.loads(members.pop("manifest.json"))
    members.pop("manifest.sha256")
    for name, data in (files or {}).items():
        if data is None:
            members.pop(name)
            man["files"].pop(name, None)
        else:
            members[name] = data
            if rehash:
                man["files"][name] = {"sha256": _sha(data), "bytes": len(data)}
    if manifest:
        manifest(man)
    old = zipfile.ZipFile(src).read("manifest.json")
    text = old if manifest is None and not rehash else (json.dumps(man) + "\n").encode()
    with zipfile.ZipFile(dst, "w") as z:
        z.writestr("manifest.json", text)
        z.writestr("manifest.sha256", _sha(text if rehash else old).encode())
        for n, b in members.items():
            z.writestr(n, b)
    return dst


def test_tampered_keras_artifacts_refused(model, tmp_path):
    good = T.save_keras(model, tmp_path / "good.zip")
    payload = zipfile.ZipFile(good).read("model.keras")
    flipped = bytearray(payload)
    flipped[len(flipped) // 2] ^= 1
    raw = good.read_bytes()
    at = raw.index(b"model.weights.h5") + 100
    (tmp_path / "crc.zip").write_bytes(raw[:at] + bytes([raw[at] ^ 1]) + raw[at + 1:])
    (tmp_path / "junk.zip").write_bytes(b"not a zip at all")
    cases = {
        "checksum mismatch in 'model.keras'": _rewrite(good, tmp_path / "a.zip", files={"model.keras": bytes(flipped)},
                                                       rehash=False),
        "changed since it was saved": tmp_path / "crc.zip",
        "was edited": _rewrite(good, tmp_path / "b.zip", manifest=lambda m: m.update(model_type="x"), rehash=False),
        "does not list": _rewrite(good, tmp_path / "c.zip", files={"evil.py": b"print(1)"}, rehash=False),
        "listed in its manifest is missing": _rewrite(good, tmp_path / "d.zip", manifest=lambda m: m["files"].update(
            {"other.bin": {"sha256": "0" * 64, "bytes": 3}})),
        "not a readable zip": tmp_path / "junk.zip",
    }
    for message, path in cases.items():
        with pytest.raises(IntegrityError, match=message):
            T.load_keras(path)
    with pytest.raises(ConfigError, match="tensorflow 1.0.0"):
        T.load_keras(_rewrite(good, tmp_path / "v.zip", manifest=lambda m: m["requires"].update(tensorflow="1.0.0")))
    with pytest.raises(ConfigError, match="holds keras models, not the torch model"):
        T.load_keras(_rewrite(good, tmp_path / "k.zip", manifest=lambda m: m.update(kind="torch")))
    with pytest.raises(ConfigError, match="unknown model kind 'xgboost'"):
        T.load_keras(_rewrite(good, tmp_path / "u.zip", manifest=lambda m: m.update(kind="xgboost")))
    other = write_artifact(tmp_path / "o.zip", {"model.onnx": b"\x08\x0a"}, {"format": "onnx", "kind": "sklearn"})
    with pytest.raises(ConfigError, match="not a Keras artifact"):
        T.load_keras(other)
    with pytest.raises(IntegrityError, match="does not record the tf-keras version"):
        T.load_keras(_rewrite(good, tmp_path / "r.zip", manifest=lambda m: m["requires"].pop("tf-keras")))


def test_hostile_keras_payloads_refused(tmp_path):
    _, keras = T.import_tf()
    lam = keras.Sequential([keras.Input((3,)), keras.layers.Lambda(lambda t: t * 2)])
    with T.native_output():
        lam.save(tmp_path / "lambda.keras")
    evil = T.write_keras_artifact(tmp_path / "evil.zip", {"model.keras": (tmp_path / "lambda.keras").read_bytes()},
                                  {"format": "keras"})
    with pytest.raises(IntegrityError, match="Lambda"):
        T.load_keras(evil)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("../../escaped.txt", b"x")
        z.writestr("saved_model.pb", b"")
    slip = T.write_keras_artifact(tmp_path / "slip.zip", {"savedmodel.zip": buf.getvalue()}, {"format": "keras_savedmodel"})
    with pytest.raises(IntegrityError, match="leave its folder"):
        T.load_keras(slip)
    assert not (tmp_path.parent / "escaped.txt").exists()
    garbage = T.write_keras_artifact(tmp_path / "g.zip", {"model.keras": b"PK\x03\x04 not really"}, {"format": "keras"})
    with pytest.raises(IntegrityError, match="Keras refused"):
        T.load_keras(garbage)


WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from mlsys.deploy.tfcompress import write_keras_artifact
    path, a, b = sys.argv[1], Path(sys.argv[2]).read_bytes(), Path(sys.argv[3]).read_bytes()
    print("ready", flush=True)
    i = 0
    while True:
        write_keras_artifact(path, {"model.keras": (a, b)[i % 2]}, {"format": "keras"})
        i += 1
""")


def test_killed_writer_leaves_old_or_new(tmp_path):
    a, b = os.urandom(3 << 20), os.urandom(3 << 20)  # large enough that a write takes a while
    (tmp_path / "a.bin").write_bytes(a)
    (tmp_path / "b.bin").write_bytes(b)
    path = tmp_path / "m.zip"
    T.write_keras_artifact(path, {"model.keras": a}, {"format": "keras"})
    (tmp_path / "writer.py").write_text(WRITER)
    rng = np.random.default_rng(3)
    for _ in range(5):
        proc = subprocess.Popen([sys.executable, str(tmp_path / "writer.py"), str(path), str(tmp_path / "a.bin"),
                                 str(tmp_path / "b.bin")], stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == "ready"
            time.sleep(float(rng.uniform(0.0, 1.0)))  # a random moment to kill at, not a synchronisation
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=120)
        _, files = T.read_keras_artifact(path)  # never half-written
        assert files["model.keras"] in (a, b)
    assert all(p.name.startswith(".m.zip.") for p in tmp_path.iterdir() if p.name.endswith(".tmp"))


def test_save_keras_refuses_bad_input(model, tmp_path):
    with pytest.raises(ConfigError, match="unknown Keras format"):
        T.save_keras(model, tmp_path / "x.zip", format="h5")
    with pytest.raises(ConfigError, match="tf_keras models"):
        T.save_keras(object(), tmp_path / "x.zip")
    with pytest.raises(DataError, match="float32 batch"):
        T.save_keras(model, tmp_path / "x.zip", example=np.zeros((3, 20)))
    with pytest.raises(ConfigError, match="tolerance"):
        T.save_keras(model, tmp_path / "x.zip", tolerance=-1)
    with pytest.raises(DataError, match="not found"):
        T.load_keras(tmp_path / "missing.zip")
    with pytest.raises(ConfigError, match="reserved"):
        T.write_keras_artifact(tmp_path / "x.zip", {"manifest.json": b""}, {"format": "keras"})


# ---- tfmot ----

@pytest.fixture(scope="module")
def pruned90(model, data):
    X, y, _, _ = data
    return T.prune_keras(model, X, y, 0.9, epochs=2, batch_size=64)


def test_pruning_reaches_requested_sparsity(model, data, pruned90):
    "90% here; 50% and 75% in test_compression_rows_quick (prune_keras refuses a model short of its target)."
    X, y, _, _ = data
    table = T.kernel_sparsity(pruned90)
    assert ((table["sparsity"] - 0.9).abs() <= 1 / table["weights"] + 1e-9).all(), table
    assert type(pruned90.layers[0]).__name__ == "Dense"  # stripped: no pruning wrapper left
    assert T.kernel_sparsity(model)["zeros"].sum() == 0  # the original is not changed
    with pytest.raises(ConfigError, match="strictly between 0 and 1"):
        T.prune_keras(model, X, y, 1.5)
    with pytest.raises(ConfigError, match="too few"):
        T.pruning_schedule(0.5, 1)
    with pytest.raises(DataError, match="one label per row"):
        T.prune_keras(model, X, y[:3], 0.5)
    sched = T.pruning_schedule(0.75, 100)
    applied = [float(sched(t)[1]) for t in range(100) if bool(sched(t)[0])]
    assert applied[-1] == pytest.approx(0.75) and applied == sorted(applied)


def test_qat_converts_to_int8_within_tolerance(model, data):
    X, y, X_test, _ = data
    qat = T.qat_keras(model, X, y, epochs=1, batch_size=64)
    assert T.dense_params(qat) == T.dense_params(model)
    tfl = T.TFLiteModel(T.to_tflite(qat, "int8"))
    assert tfl.input_["dtype"] == np.int8 and tfl.output_["dtype"] == np.int8
    T.compare_tflite(qat, tfl, X_test, "int8")
    with pytest.raises(ConfigError, match="quantization-aware"):
        T.to_tflite(qat, "dynamic")


def test_a_qat_model_is_saved_as_a_verified_artifact(model, data, tmp_path):
    "A QAT model round-trips (SavedModel: .keras cannot rebuild tfmot's QuantizeLayer, model-optimization#1123), fake quantizers included."
    X, y, X_test, _ = data
    qat = T.qat_keras(model, X, y, epochs=1, batch_size=64)
    with pytest.raises(ConfigError, match="model-optimization#1123"):
        T.save_keras(qat, tmp_path / "q.zip", format="keras")
    assert not (tmp_path / "q.zip").exists()
    for path in (T.save_keras(qat, tmp_path / "q1.zip", example=X_test[:64]), save_model(qat, tmp_path / "q2.zip")):
        assert read_artifact(path)[0]["format"] == "keras_savedmodel"
        back = load_model(path)
        assert T._quantization_aware(back)
        np.testing.assert_allclose(np.asarray(back(X_test[:64], training=False)), np.asarray(qat(X_test[:64], training=False)),
                                   atol=1e-6, rtol=0)


# ---- TFLite ----

@pytest.mark.parametrize("mode", ["float32", "float16", "dynamic", "int8"])
def test_conversions_equal_keras_within_tolerance(model, data, mode):
    X, _, X_test, _ = data
    content = T.to_tflite(model, mode, representative=X)
    tfl = T.TFLiteModel(content)
    check = T.compare_tflite(model, tfl, X_test, mode)
    assert check["agreement"] > 0.97
    for x in inputs(20, 2):
        if np.abs(x).max() > 100 and mode == "int8":
            continue  # far outside the calibrated range int8 saturates by design; compared on the data's range
        got, want = tfl(x), model(x, training=False).numpy()
        assert got.shape == want.shape
        tol = T.TOLERANCE[mode][0] * max(float(np.ptp(model(X_test, training=False).numpy())), float(np.abs(want).max()))
        assert np.abs(got - want).max() <= tol + 1e-6, (mode, x.shape)


def test_int8_io_quantization_matches_the_graphs_own(model, data):
    "The int8-input model fed by TFLiteModel equals the same calibration with float I/O (TFLite's own QUANTIZE op)."
    tf, _ = T.import_tf()
    X, _, X_test, _ = data
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = T._representative(X)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    import warnings
    with T.native_output(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        float_io = T.TFLiteModel(conv.convert())
    int8_io = T.TFLiteModel(T.to_tflite(model, "int8", representative=X))
    assert float_io.input_["dtype"] == np.float32 and int8_io.input_["dtype"] == np.int8
    for x in [X_test, *inputs(20, 4)]:
        np.testing.assert_array_equal(int8_io(x), float_io(x))


def test_quantize_rounds_like_c():
    rng = np.random.default_rng(0)
    scale, zero = 0.05, -7
    v = np.concatenate([rng.normal(scale=3, size=5000), np.arange(-200, 200) * 0.5 * scale, [1e9, -1e9, 0.0, -0.0]])
    v = v.astype(np.float32)
    got = T._quantize(v, scale, zero, np.int8)
    q = v / np.float32(scale)
    ref = [max(-128, min(127, int(np.sign(t) * np.floor(abs(float(t)) + 0.5)) + zero)) for t in q]
    np.testing.assert_array_equal(got, np.array(ref, np.int8))


def test_sparse_storage_and_layer_errors(model, data, pruned90):
    X, y, X_test, _ = data
    pruned = pruned90
    dense, sparse = T.to_tflite(pruned, "float32"), T.to_tflite(pruned, "sparse")
    assert len(sparse) < 0.6 * len(dense)  # a tiny model: the flatbuffer's fixed part is a large share
    T.compare_tflite(pruned, sparse, X_test, "sparse")
    for mode in ("float32", "int8"):
        errors = T.layer_errors(model, T.to_tflite(model, mode, representative=X), X_test)
        assert list(errors.index) == [layer.name for layer in model.layers]
        if mode == "float32":
            assert (errors["max_abs"] < 1e-5).all()
        else:
            assert (errors["dtype"] == "int8").all() and (errors["relative_rmse"] < 0.15).all()


def test_tflite_refusals(model, data):
    X, _, X_test, _ = data
    good = T.to_tflite(model)
    with pytest.raises(IntegrityError, match="not a TFLite model"):
        T.TFLiteModel(b"abc")
    with pytest.raises(IntegrityError, match="LiteRT refused"):
        T.TFLiteModel(good[: len(good) // 2])
    with pytest.raises(DataError, match="flatbuffer bytes"):
        T.TFLiteModel("model.tflite")
    tfl = T.TFLiteModel(good)
    with pytest.raises(DataError, match=r"shape \(n, 20\)"):
        tfl(X_test[:, :5])
    with pytest.raises(DataError, match="numeric"):
        tfl(np.array([["a"] * 20]))
    with pytest.raises(ConfigError, match="unknown TFLite conversion"):
        T.to_tflite(model, "int4")
    with pytest.raises(ConfigError, match="representative"):
        T.to_tflite(model, "int8")
    with pytest.raises(IntegrityError, match="differs from the Keras model"):
        T.compare_tflite(model, T.to_tflite(model, "int8", representative=X), X_test, "float32")
    with pytest.raises(ConfigError, match="thread pools are fixed"):
        T.import_tf(threads=3)  # TensorFlow has run operations by now


def test_compression_rows_quick():
    from mlsys.deploy.compress import Arrays
    rng = np.random.default_rng(1)
    X = rng.normal(size=(4000, 24)).astype(np.float32)
    y = (X[:, 0] - X[:, 1] > 0).astype(np.int64)
    arrays = Arrays(X[:3200], y[:3200], X[3200:], y[3200:], [f"x{i}" for i in range(24)])
    rows = T.compression_rows(arrays, None, None, None, quick=True)
    names = [r["technique"] for r in rows]
    assert names == ["Keras float32", "TFLite float32", "TFLite float16", "TFLite dynamic", "TFLite int8",
                     "tfmot prune 50% (TFLite sparse)", "tfmot prune 75% (TFLite sparse)",
                     "tfmot prune 90% (TFLite sparse)", "tfmot QAT int8 (TFLite)"]
    assert all(r["model"] == "flights Keras MLP" and r["size_kb"] > 0 and r["p99_b64_ms"] >= r["p50_b64_ms"] for r in rows)
    by = {r["technique"]: r for r in rows}
    assert by["tfmot prune 90% (TFLite sparse)"]["nonzeros"] < 0.11 * by["TFLite float32"]["nonzeros"] + 1000
    assert by["TFLite int8"]["size_kb"] < by["TFLite float32"]["size_kb"] / 3
