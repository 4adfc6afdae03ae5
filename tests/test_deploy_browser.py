"""deploy.browser: onnxruntime-web vendored from the npm registry (checked, reused, refused when tampered, safe when two
processes vendor at once), the loopback server, and ONNX models run in headless Chromium with outputs equal to
onnxruntime in Python on generated rows; the guard fails on requests that leave 127.0.0.1 and on JavaScript errors.

Skipped, with the reason, when Playwright, Chromium (/usr/bin/chromium) or npm (with no cached pack) is missing."""
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from mlsys.core import ConfigError, DataError, IntegrityError, MissingExtraError
from mlsys.deploy import browser as B

PACK = f"onnxruntime-web-{B.ORT_WEB_VERSION}.tgz"
HAVE_CHROMIUM = Path(B.CHROMIUM).is_file() and os.access(B.CHROMIUM, os.X_OK)
needs_chromium = pytest.mark.skipif(not HAVE_CHROMIUM, reason=f"no Chromium at {B.CHROMIUM} (Debian: apt-get install chromium)")


@pytest.fixture(scope="module")
def pack_dir(tmp_path_factory):
    "A cache folder holding the checked pack: copied from the checkout's .cache when there, else fetched with npm."
    cache = tmp_path_factory.mktemp("ortweb")
    local = B.default_vendor_dir() / PACK
    if local.is_file():
        shutil.copyfile(local, cache / PACK)
    elif shutil.which("npm") is None:
        pytest.skip(f"npm is not installed and no {PACK} is cached in {local.parent} (Debian: apt-get install npm)")
    B.vendor_onnxruntime_web(cache)
    return cache


@pytest.fixture(scope="module")
def vendor(pack_dir):
    return B.vendor_onnxruntime_web(pack_dir)


# ---------------------------------------------------------------- vendoring

def test_the_vendored_files_are_checked_and_reused_without_npm(vendor, pack_dir):
    assert B._unpacked_ok(vendor)
    assert sorted(p.name for p in vendor.iterdir()) == sorted([B.MARKER, *(Path(f).name for f in B.ORT_WEB_FILES)])
    assert B._integrity(pack_dir / PACK) == B.ORT_WEB_INTEGRITY
    assert B.vendor_onnxruntime_web(pack_dir, npm="no-such-npm") == vendor  # nothing to fetch


def test_a_tampered_unpacked_file_is_unpacked_again_from_the_pack(pack_dir, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    shutil.copyfile(pack_dir / PACK, cache / PACK)
    folder = B.vendor_onnxruntime_web(cache, npm="no-such-npm")
    good = (folder / "ort.wasm.min.js").read_bytes()
    (folder / "ort.wasm.min.js").write_bytes(good.replace(b"wasm", b"WASM", 1))
    assert not B._unpacked_ok(folder)
    assert B.vendor_onnxruntime_web(cache, npm="no-such-npm") == folder
    assert (folder / "ort.wasm.min.js").read_bytes() == good and B._unpacked_ok(folder)


@pytest.mark.parametrize("how", ["stand-in", "one byte changed", "truncated"])
def test_a_pack_that_is_not_the_registrys_is_refused(pack_dir, tmp_path, how):
    cache = tmp_path / "cache"
    cache.mkdir()
    data = (pack_dir / PACK).read_bytes()
    bad = {"stand-in": b"\x1f\x8b\x08 not a pack", "one byte changed": data[:1000] + bytes([data[1000] ^ 1]) + data[1001:],
           "truncated": data[: len(data) // 2]}[how]
    (cache / PACK).write_bytes(bad)
    with pytest.raises(IntegrityError, match="is not the npm registry's onnxruntime-web"):
        B.vendor_onnxruntime_web(cache, npm="no-such-npm")
    assert not (cache / f"onnxruntime-web-{B.ORT_WEB_VERSION}").exists()


def test_no_npm_and_no_pack_names_what_to_install(tmp_path):
    with pytest.raises(MissingExtraError, match="apt-get install npm"):
        B.vendor_onnxruntime_web(tmp_path / "empty", npm="no-such-npm")


VENDOR = r"""
import sys
from mlsys.deploy.browser import vendor_onnxruntime_web, _unpacked_ok
folder = vendor_onnxruntime_web(sys.argv[1], npm="no-such-npm")
print("ok" if _unpacked_ok(folder) else "bad")
"""


def test_two_processes_vendoring_at_once_both_get_a_good_folder(pack_dir, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    shutil.copyfile(pack_dir / PACK, cache / PACK)
    procs = [subprocess.Popen([sys.executable, "-c", VENDOR, str(cache)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [o.strip() for o, _ in outs] == ["ok"] * 3, outs
    assert [p.name for p in cache.iterdir() if p.name.startswith(".unpack-")] == []


def test_serve_folder_sends_wasm_and_isolation_headers(vendor, tmp_path):
    B.write_page(tmp_path / "site", b"\x08\x01", vendor)
    with B.serve_folder(tmp_path / "site") as url:
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "ort-wasm-simd-threaded.wasm", timeout=30) as r:
            assert r.headers["Content-Type"] == "application/wasm"
            assert r.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
            assert r.read(4) == b"\x00asm"
        with urllib.request.urlopen(url + "ort-wasm-simd-threaded.mjs", timeout=30) as r:
            assert r.headers["Content-Type"] == "text/javascript"
    with pytest.raises(DataError, match="not a folder"):
        with B.serve_folder(tmp_path / "nothing"):
            pass


# ---------------------------------------------------------------- models

def _mlp_weights(n_in=6, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    return {n: rng.standard_normal(s).astype("float32") for n, s in [("W1", (n_in, 16)), ("b1", (16,)), ("W2", (16, 3)), ("b2", (3,))]}


def _mlp_graph(n_in=6, seed=0) -> bytes:
    from onnx import TensorProto, helper, numpy_helper
    inits = [numpy_helper.from_array(v, n) for n, v in _mlp_weights(n_in, seed).items()]
    nodes = [helper.make_node("Gemm", ["x", "W1", "b1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Gemm", ["r", "W2", "b2"], ["y"])]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, n_in])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])], initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10).SerializeToString()


CATEGORIES = ["a", "b", "Zürich", "東京", "", "with space", "new\nline"]  # non-ASCII, empty and odd text, all known


def _frame(rng, n, categories=CATEGORIES):
    df = pd.DataFrame({"city": pd.Categorical(rng.choice(categories, n), categories=categories),
                       "x": rng.standard_normal(n), "y": rng.integers(-3, 4, n).astype(float)})  # ties in y
    df.loc[rng.random(n) < 0.2, "x"] = np.nan
    df.loc[rng.random(n) < 0.1, "y"] = np.nan
    return df


@pytest.fixture(scope="module")
def hgb_artifact(tmp_path_factory):
    from sklearn.ensemble import HistGradientBoostingClassifier

    from mlsys.deploy.serialize import save_model
    rng = np.random.default_rng(0)
    df = _frame(rng, 3000)
    label = ((df["city"].isin(["Zürich", ""])) ^ (df["x"].fillna(1) > 0) ^ (df["y"] > 1)).astype(int)
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", max_iter=40, random_state=0).fit(df, label)
    path = save_model(model, tmp_path_factory.mktemp("hgb") / "hgb.onnx.zip", format="onnx", example=df.iloc[:100])
    return model, path


@needs_chromium
def test_a_float32_graph_in_the_browser_equals_onnxruntime(vendor):
    graph = _mlp_graph()
    rng = np.random.default_rng(1)
    with B.BrowserSession(graph, vendor_dir=vendor.parent) as page:
        for n in (1, 2, 7, 100, 1000):
            X = (rng.standard_normal((n, 6)) * rng.choice([1e-3, 1, 1e3], size=(n, 1))).astype("float32")
            if n > 2:
                X[rng.integers(0, n, 2), rng.integers(0, 6, 2)] = np.nan  # NaN propagates the same way
            outputs, timings = page.predict(X, repeats=2)
            native, _ = B.native_predict(graph, X, repeats=1)
            w = {k: np.abs(v.astype("float64")) for k, v in _mlp_weights().items()}
            scale = np.maximum(np.abs(X.astype("float64")) @ w["W1"] + w["b1"], 0) @ w["W2"] + w["b2"]
            bound = 64 * np.finfo(np.float32).eps * scale  # float32 rounding of the terms, in any summation order
            assert np.array_equal(np.isnan(outputs["y"]), np.isnan(native))
            ok = ~np.isnan(native)
            assert np.all(np.abs(outputs["y"][ok].astype("float64") - native[ok]) <= bound[ok])
            assert outputs["y"].dtype == np.float32 and outputs["y"].shape == (n, 3)
            assert timings["rows"] == n and timings["repeats"] == 2
            assert all(np.isfinite(timings[k]) and timings[k] >= 0 for k in ("first_ms", "median_ms", "min_ms", "mean_ms"))
        assert page.load_ms > 0


@needs_chromium
def test_the_gradient_boosting_artifact_in_the_browser_equals_python_on_generated_rows(vendor, hgb_artifact):
    model, path = hgb_artifact
    rng = np.random.default_rng(2)
    X = pd.concat([_frame(rng, 400), _frame(rng, 5, categories=["東京"])], ignore_index=True)
    X.loc[:3, ["x", "y"]] = np.nan  # rows with every number missing
    scores, timings = B.browser_predict(path, X, repeats=1, vendor_dir=vendor.parent)
    native, _ = B.native_predict(path, X, repeats=1)
    np.testing.assert_allclose(scores, native, rtol=0, atol=1e-12)
    np.testing.assert_allclose(scores, model.predict_proba(X)[:, 1], rtol=0, atol=1e-12)
    assert timings["load_ms"] > 0 and timings["rows"] == len(X)


@pytest.fixture(scope="module")
def many_categories(tmp_path_factory):
    "A model whose categorical splits hold large sets of codes (a city among 100), and rows with an unseen city."
    from sklearn.ensemble import HistGradientBoostingClassifier

    from mlsys.deploy.serialize import save_model
    rng = np.random.default_rng(3)
    cities = [f"c{i:03d}" for i in range(100)]
    df = pd.DataFrame({"city": pd.Categorical(rng.choice(cities, 5000), categories=cities), "x": rng.standard_normal(5000)})
    label = ((df["city"].cat.codes % 3 == 0) ^ (df["x"] > 0.5)).astype(int)
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", max_iter=30, random_state=0).fit(df, label)
    path = save_model(model, tmp_path_factory.mktemp("cities") / "cities.onnx.zip", format="onnx", example=df.iloc[:50])
    X = df.iloc[:200].astype({"city": object}).reset_index(drop=True)
    X.loc[100:, "city"] = "unseen"
    return model, path, X


@needs_chromium
def test_known_categories_among_many_agree(vendor, many_categories):
    _, path, X = many_categories
    known = X.iloc[:100]
    np.testing.assert_allclose(B.browser_predict(path, known, repeats=1, vendor_dir=vendor.parent)[0],
                               B.native_predict(path, known, repeats=1)[0], rtol=0, atol=1e-12)


@needs_chromium
def test_unseen_and_missing_categories_among_many_agree(vendor, many_categories):
    """onnxruntime-web 1.30 sends a NaN into a large set-membership split whatever its missing-value flag says; hgb_to_onnx
    gives an unseen or missing category a code of its own (UNKNOWN_CODE), so no NaN reaches such a split."""
    model, path, X = many_categories
    unseen = X.iloc[100:].copy()
    unseen.loc[unseen.index[::3], "city"] = np.nan  # missing as well as unseen
    browser = B.browser_predict(path, unseen, repeats=1, vendor_dir=vendor.parent)[0]
    np.testing.assert_allclose(browser, B.native_predict(path, unseen, repeats=1)[0], rtol=0, atol=1e-12)
    cities = list(model._preprocessor.named_transformers_["encoder"].categories_[0])
    as_fitted = unseen.assign(city=pd.Categorical(unseen["city"].where(unseen["city"].isin(cities)), categories=cities))
    np.testing.assert_allclose(browser, model.predict_proba(as_fitted)[:, 1], rtol=0, atol=1e-12)


@needs_chromium
def test_a_torch_artifact_in_the_browser_equals_torch(vendor, tmp_path):
    torch = pytest.importorskip("torch")
    from mlsys.deploy.serialize import save_model
    torch.manual_seed(0)
    torch.set_num_threads(1)
    mlp = torch.nn.Sequential(torch.nn.Linear(5, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2)).eval()
    X = np.random.default_rng(4).standard_normal((300, 5)).astype("float32")
    path = save_model(mlp, tmp_path / "mlp.onnx.zip", format="onnx", example=X[:4])
    scores, _ = B.browser_predict(path, X, repeats=1, vendor_dir=vendor.parent)
    with torch.no_grad():
        np.testing.assert_allclose(scores, mlp(torch.from_numpy(X)).numpy(), rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- the guard and bad input

@needs_chromium
def test_the_guard_fails_the_page_on_outside_requests_and_javascript_errors(vendor):
    with B.BrowserSession(_mlp_graph(), vendor_dir=vendor.parent) as page:
        with pytest.raises(B.BrowserError, match=r"outside 127\.0\.0\.1.*example\.com"):
            page.evaluate("() => fetch('https://example.com/model.onnx').catch(() => 0)")
        page.blocked.clear(), page.errors.clear()
        with pytest.raises(B.BrowserError, match="logged 1 JavaScript error"):
            page.evaluate("() => console.error('boom')")
        page.errors.clear()
        with pytest.raises(B.BrowserError, match="late boom"):
            page.evaluate("() => { setTimeout(() => { throw new Error('late boom'); }, 0); "
                          "return new Promise(r => setTimeout(r, 200)); }")
        page.errors.clear()
        with pytest.raises(B.BrowserError, match="the browser failed: .*Error: thrown"):
            page.evaluate("() => { throw new Error('thrown'); }")
        page.errors.clear()
        assert page.evaluate("(a) => a + 1", 41) == 42
    with pytest.raises(B.BrowserError, match="logged"):  # an error left unread fails the session when it closes
        with B.BrowserSession(_mlp_graph(), vendor_dir=vendor.parent) as page:
            page._call(lambda: page._page.evaluate("() => console.error('unread')"))


def test_bad_models_get_a_named_error(tmp_path):
    from sklearn.linear_model import LogisticRegression

    from mlsys.deploy.serialize import save_model
    skops = save_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), tmp_path / "lr.zip")
    with pytest.raises(ConfigError, match="is a skops artifact; the browser runs ONNX"):
        B.onnx_source(skops)
    with pytest.raises(DataError, match="model file not found"):
        B.onnx_source(tmp_path / "nothing.onnx")
    with pytest.raises(IntegrityError, match="onnxruntime cannot load the model"):
        B.onnx_source(b"garbage")
    (tmp_path / "garbage.onnx").write_bytes(b"garbage")
    with pytest.raises(IntegrityError, match="onnxruntime cannot load the model"):
        B.onnx_source(tmp_path / "garbage.onnx")
    with pytest.raises(ConfigError, match="must be the path of an mlsys ONNX artifact"):
        B.onnx_source(42)
    from onnx import TensorProto, helper
    two = helper.make_graph([helper.make_node("Add", ["a", "b"], ["c"])], "two",
                            [helper.make_tensor_value_info(n, TensorProto.FLOAT, [None, 1]) for n in "ab"],
                            [helper.make_tensor_value_info("c", TensorProto.FLOAT, [None, 1])])
    model = helper.make_model(two, opset_imports=[helper.make_opsetid("", 18)], ir_version=10).SerializeToString()
    with pytest.raises(ConfigError, match="must have one numeric input"):
        B.onnx_source(model)


def test_bad_rows_and_arguments_get_a_named_error(monkeypatch, hgb_artifact):
    _, path = hgb_artifact
    graph = _mlp_graph()
    native = B.onnx_source(graph)[1]
    with pytest.raises(DataError, match="0 rows"):
        B.native_predict(graph, np.zeros((0, 6), "float32"))
    with pytest.raises(DataError, match="reads a DataFrame"):
        B.native_predict(path, np.zeros((3, 3)))
    with pytest.raises(DataError, match="at least one row"):
        B._rows(native, 3.0)
    monkeypatch.setattr(B, "MAX_ROWS", 10)
    with pytest.raises(DataError, match="over MAX_ROWS"):
        B._rows(native, np.zeros((11, 6), "float32"))
    with pytest.raises(ConfigError, match="repeats must be"):
        B.native_predict(graph, np.zeros((1, 6), "float32"), repeats=0)
    with pytest.raises(ConfigError, match="which onnxruntime-web's tensors do not carry"):
        B._encode_feeds({"x": np.zeros(2, "complex64")})
    with pytest.raises(MissingExtraError, match="apt-get install chromium"):
        B.BrowserSession(graph, executable="/nonexistent/chromium")
    if HAVE_CHROMIUM:
        with pytest.raises(ConfigError, match="timeout_s must be"):
            B.BrowserSession(graph, timeout_s=0)
        with pytest.raises(B.BrowserError, match="not open"):
            B.BrowserSession(graph).evaluate("() => 1")


def test_feeds_cross_as_exact_bytes():
    rng = np.random.default_rng(5)
    arrays = {"f64": np.array([np.nan, -0.0, 1e-308, np.inf, 1 / 3]), "f32": rng.standard_normal((2, 3)).astype("float32"),
              "i64": np.array([-(2**63), 2**63 - 1]), "b": np.array([True, False]), "s": np.array(["Zürich", "", "東京"], dtype=object)}
    feeds = B._encode_feeds(arrays)
    back = B._decode_outputs({k: {**v, "dims": v["dims"]} for k, v in feeds.items()})
    for k, a in arrays.items():
        if a.dtype.kind == "O":
            assert back[k].tolist() == a.tolist()
        else:
            assert back[k].tobytes() == a.astype(a.dtype.newbyteorder("<")).tobytes() and back[k].shape == a.shape
