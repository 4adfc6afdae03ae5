"Fault cases and counting rules of mlsys.deploy.compress (the compression notebooks' shared ruler)."
import warnings

import numpy as np
import pandas as pd
import pytest

from mlsys.core import ConfigError, DataError
from mlsys.deploy import compress as C

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _toy(n=200, d=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = (X[:, 0] + 0.3 * rng.normal(size=n) > 0).astype("int64")
    return X, y


def test_fit_learns_and_history_is_per_epoch():
    X, y = _toy()
    m = C.flights_mlp(6, hidden=(16,))
    hist = C.fit_torch(m, X, y, epochs=8, batch_size=32, lr=1e-2, validation=(X, y))
    assert list(hist.index) == list(range(1, 9)) and hist["loss"].iloc[-1] < hist["loss"].iloc[0]
    assert C.accuracy(m, X, y) > 0.85


def test_fit_is_reproducible_with_a_seed():
    X, y = _toy()
    a, b = C.flights_mlp(6, hidden=(8,), seed=3), C.flights_mlp(6, hidden=(8,), seed=3)
    C.fit_torch(a, X, y, epochs=2, seed=1)
    C.fit_torch(b, X, y, epochs=2, seed=1)
    np.testing.assert_array_equal(C.predict_logits(a, X), C.predict_logits(b, X))


def test_soft_targets_train_toward_the_given_probabilities():
    X, _ = _toy()
    soft = np.tile(np.array([[0.2, 0.8]], dtype=np.float32), (len(X), 1))
    m = C.flights_mlp(6, hidden=(8,))
    C.fit_torch(m, X, soft, epochs=30, batch_size=50, lr=1e-2)
    p = torch.softmax(torch.from_numpy(C.predict_logits(m, X)), 1).numpy()
    assert abs(p[:, 1].mean() - 0.8) < 0.05


def test_read_only_arrays_train_without_a_warning():
    X, y = _toy()
    X.setflags(write=False)
    y.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        C.fit_torch(C.flights_mlp(6, hidden=(4,)), X, y, epochs=1)
        C.predict_logits(C.flights_mlp(6, hidden=(4,)), X)


@pytest.mark.parametrize("kwargs, match", [
    ({"X": np.zeros((4, 6))}, "float32"),
    ({"y": np.zeros(3, dtype="int64")}, "one row per row"),
    ({"y": np.zeros(200, dtype=float)}, "integers"),
    ({"epochs": 0}, "epochs"),
    ({"epochs": True}, "epochs"),
    ({"batch_size": 2.5}, "batch_size"),
    ({"lr": float("nan")}, "lr"),
    ({"lr": -1}, "lr"),
])
def test_fit_refuses_bad_arguments(kwargs, match):
    X, y = _toy()
    args = {"X": X, "y": y, **kwargs}
    with pytest.raises((ConfigError, DataError), match=match):
        C.fit_torch(C.flights_mlp(6, hidden=(4,)), args.pop("X"), args.pop("y"), **args)


@pytest.mark.parametrize("hidden", [(), (0,), (4, -1), (True,), ("8",)])
def test_mlp_refuses_bad_widths(hidden):
    with pytest.raises(ConfigError, match="hidden"):
        C.flights_mlp(6, hidden=hidden)


@pytest.mark.parametrize("channels", [(32,), (32, 64, 128), (0, 8)])
def test_cnn_refuses_bad_channels(channels):
    with pytest.raises(ConfigError, match="channels"):
        C.fashion_cnn(channels=channels)


def test_cnn_shapes():
    m = C.fashion_cnn(channels=(4, 8), dense=16)
    out = C.predict_logits(m, np.zeros((3, 1, 28, 28), dtype=np.float32))
    assert out.shape == (3, 10)


def test_count_parameters_reads_pruned_quantized_and_keras_like_models():
    import torch.nn.utils.prune as prune
    m = C.flights_mlp(10, hidden=(20,))
    dense = C.count_parameters(m)
    assert dense == (10 * 20 + 20 + 20 * 2 + 2,) * 2
    prune.l1_unstructured(m[0], "weight", amount=0.5)
    total, nz = C.count_parameters(m)
    assert total == dense[0] and nz == dense[0] - 100
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated in favour of torchao
        q = torch.ao.quantization.quantize_dynamic(C.flights_mlp(10, hidden=(20,)), {torch.nn.Linear}, torch.qint8)
    assert C.count_parameters(q)[0] == dense[0]

    class KerasLike:
        def get_weights(self):
            return [np.array([[0.0, 1.0], [2.0, 0.0]]), np.zeros(2)]
    assert C.count_parameters(KerasLike()) == (6, 2)
    with pytest.raises(ConfigError, match="count"):
        C.count_parameters(object())


def test_model_size_of_bytes_files_and_modules(tmp_path):
    assert C.model_size(b"abc") == 3
    p = tmp_path / "m.onnx"
    p.write_bytes(b"x" * 10)
    assert C.model_size(p) == 10 and C.model_size(str(p)) == 10
    with pytest.raises(DataError, match="does not exist"):
        C.model_size(tmp_path / "missing.onnx")
    small, big = C.flights_mlp(10, hidden=(4,)), C.flights_mlp(10, hidden=(400,))
    assert C.model_size(big) > 5 * C.model_size(small)
    with pytest.raises(ConfigError, match="cannot size"):
        C.model_size(3)


def test_measure_row_and_table():
    X, y = _toy()
    a, b = C.flights_mlp(6, hidden=(32,)), C.flights_mlp(6, hidden=(4,))
    rows = [C.measure("big", a, X, y, calls=100), C.measure("small", b, X, y, calls=100, rank=4)]
    for r in rows:
        assert {"size_kb", "params", "nonzeros", "p50_b1_ms", "p99_b1_ms", "p50_b64_ms", "p99_b64_ms",
                "accuracy", "auc"} <= set(r)
        assert r["p99_b1_ms"] >= r["p50_b1_ms"] > 0
    assert rows[1]["rank"] == 4
    t = C.compression_table(rows)
    assert t.loc["big", "x_smaller"] == 1 and t.loc["small", "x_smaller"] > 1
    assert t.loc["big", "accuracy_change_pts"] == 0
    with pytest.raises(DataError, match="baseline"):
        C.compression_table(rows, baseline="nope")
    with pytest.raises(DataError, match="repeat"):
        C.compression_table(rows + rows[:1])
    with pytest.raises(DataError, match="at least one row"):
        C.compression_table([])


def test_measure_with_an_outside_predictor_and_bad_outputs():
    X, y = _toy()
    row = C.measure("fn", None, X, y, predict=lambda x: np.c_[-x[:, 0], x[:, 0]], size_bytes=100,
                    params=(2, 1), calls=100)
    assert row["size_kb"] == 100 / 1024 and row["params"] == 2 and row["accuracy"] > 0.8
    with pytest.raises(DataError, match="shape"):
        C.measure("bad", None, X, y, predict=lambda x: x[:, 0], size_bytes=1, params=(1, 1), calls=100)
    with pytest.raises(ConfigError, match="name"):
        C.measure(" ", None, X, y, predict=lambda x: x, size_bytes=1, params=(1, 1))
    with pytest.raises(ConfigError, match="calls"):
        C.latency(C.flights_mlp(6, hidden=(4,)), X, calls=10)


def test_latency_restores_the_thread_count():
    X, _ = _toy()
    torch.set_num_threads(2)
    C.latency(C.flights_mlp(6, hidden=(4,)), X, calls=100, threads=1)
    assert torch.get_num_threads() == 2


def test_flights_arrays_from_a_feature_table():
    from mlsys.pipeline import FEATURES, LABEL
    rng = np.random.default_rng(0)
    n = 120
    feats = pd.DataFrame({c: rng.normal(size=n) for c in FEATURES})
    for c in ("carrier", "origin", "dest"):
        feats[c] = pd.Categorical(rng.choice(["A", "B", "Ü"], size=n))
    feats.loc[::7, "temp"] = np.nan
    feats["sched_dep"] = pd.date_range("2013-01-01", periods=n, freq="h", tz="UTC")
    feats["time_hour"] = feats["sched_dep"]
    feats["sched_dep_local"] = feats["sched_dep"].dt.tz_convert("America/New_York")
    feats[LABEL] = rng.integers(0, 2, n).astype(bool)
    try:
        a = C.flights_arrays(feats=feats, split_date="2013-01-04")
    except Exception as e:  # the split column's name is the pipeline's; show what it needs
        pytest.fail(f"flights_arrays on a synthetic feature table failed: {e!r}")
    assert a.X_train.dtype == np.float32 and not np.isnan(a.X_train).any() and not np.isnan(a.X_test).any()
    assert a.n_classes == 2 and len(a.names) == a.X_train.shape[1]
    with pytest.raises(DataError, match="leaves 120 training and 0 test"):
        C.flights_arrays(feats=feats, split_date="2030-01-01")


@pytest.mark.parametrize("n", [0, -1, 1.5, True, "10"])
def test_image_arrays_refuses_bad_sizes(n):
    with pytest.raises(ConfigError, match="n_train"):
        C.image_arrays(n_train=n)


def test_count_parameters_reads_sparse_subclassed_and_fx_quantized_models():
    class Net(torch.nn.Module):  # a module subclass defined outside torch is still a torch model
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, 3)

        def forward(self, x):
            return self.fc(x)
    net = Net()
    assert C.count_parameters(net) == (15, 15) and C.model_size(net) > 0
    assert C.predict_logits(net, np.zeros((2, 4), dtype=np.float32)).shape == (2, 3)

    class Sparse(torch.nn.Module):
        def __init__(self):
            super().__init__()
            w = torch.zeros(5, 6)
            w[0, 1], w[3, 2] = 1.0, -2.0
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
                self.register_buffer("w", w.to_sparse_csr())
    assert C.count_parameters(Sparse()) == (2, 2)  # its stored values, not a raw NotImplementedError

    m = C.flights_mlp(6, hidden=(8,))
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the deprecated FX path, the reference here
        prepared = prepare_fx(m.eval(), get_default_qconfig_mapping("x86"), (torch.zeros(1, 6),))
        prepared(torch.randn(20, 6))
        q = convert_fx(prepared)
    assert C.count_parameters(q)[0] == 6 * 8 + 8 + 8 * 2 + 2  # scales and zero points are not weights
