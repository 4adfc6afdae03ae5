"Artifacts of mlsys.deploy.serialize: round trips over random inputs, hostile and tampered files, a killed writer, bad input."
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
import pandas as pd
import pytest

from mlsys.core import ConfigError, DataError, IntegrityError, import_skops_io
from mlsys.deploy.serialize import (MANIFEST, MANIFEST_SUM, MISSING_CATEGORY, UNKNOWN_CODE, OnnxModel, hgb_to_onnx, load_model,
                                    read_artifact, read_manifest, save_model, write_artifact)

ESTIMATORS = []  # this module adds no estimator

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("skl2onnx")


@pytest.fixture(scope="module")
def flights():
    from mlsys.datasets import load_flights, load_planes, load_weather
    from mlsys.pipeline import FEATURES, LABEL, build_features, make_model
    fl = load_flights("2013-01-01", "2013-01-07")
    feats = build_features(fl, load_weather("2013-01-01", "2013-01-07"), load_planes()).dropna(subset=[LABEL])
    X, y = feats[FEATURES].reset_index(drop=True), feats[LABEL].astype(int).to_numpy()
    return X, y, make_model("hgb", params={"max_iter": 40}).fit(X, y)


@pytest.fixture(scope="module")
def mlp():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(32, 10))
    return net.eval()


def random_frames(X, n, seed):
    "Random row subsets of the flights features with NaN, unknown and missing categories, float32 columns, one row."
    rng = np.random.default_rng(seed)
    num = [c for c in X.columns if pd.api.types.is_float_dtype(X[c])]
    for i in range(n):
        size = 1 if i % 5 == 0 else int(rng.integers(2, 300))
        f = X.iloc[rng.integers(0, len(X), size)].reset_index(drop=True).copy()
        mask = rng.random((size, len(num))) < 0.2
        f[num] = f[num].mask(mask)
        if i % 3 == 0:
            f[num] = f[num].astype("float32")
        if i % 4 == 1:
            col = ["carrier", "origin", "dest"][i % 3]
            f[col] = f[col].cat.add_categories(["ZZ9"])
            f.loc[rng.random(size) < 0.3, col] = "ZZ9"  # a category the model never saw
            f.loc[rng.random(size) < 0.2, col] = np.nan
        yield f


def test_import_is_light():
    code = "import sys, mlsys.deploy.serialize; print(sorted(m for m in ('torch', 'onnx', 'onnxruntime', 'skl2onnx') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_environment_reads_versions_without_importing():
    code = ("import sys; from mlsys.deploy.serialize import environment; env = environment(); "
            "print(sorted(m for m in ('torch', 'tensorflow', 'tf_keras', 'onnxruntime') if m in sys.modules), "
            "{'tensorflow', 'tf-keras', 'tensorflow-model-optimization', 'torch'} <= set(env))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[] True"


def test_flights_model_round_trips(flights, tmp_path):
    X, _, hgb = flights
    skops = load_model(save_model(hgb, tmp_path / "a.zip", example=X.head(200)))
    onnx = load_model(save_model(hgb, tmp_path / "b.zip", format="onnx", example=X.head(200)))
    for f in random_frames(X, 60, seed=1):
        want = hgb.predict_proba(f)
        np.testing.assert_array_equal(skops.predict_proba(f), want)
        np.testing.assert_allclose(onnx.predict_proba(f), want, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(onnx.predict(f), hgb.predict(f))


def test_skl2onnx_pipeline_round_trips(flights, tmp_path):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from mlsys.pipeline import CATEGORICAL_FEATURES, NUMERIC_FEATURES
    X, y, _ = flights
    pre = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore", min_frequency=20), CATEGORICAL_FEATURES),
                             ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), NUMERIC_FEATURES)])
    model = make_pipeline(pre, LogisticRegression(max_iter=300)).fit(X, y)
    onnx = load_model(save_model(model, tmp_path / "lr.zip", format="onnx", example=X.head(300)))
    for f in random_frames(X, 30, seed=2):
        f = f.assign(**{c: f[c].cat.remove_unused_categories() for c in CATEGORICAL_FEATURES})
        np.testing.assert_allclose(onnx.predict_proba(f), model.predict_proba(f), rtol=0, atol=1e-5)


def test_hgb_arrays_and_regressor(tmp_path):
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    rng = np.random.default_rng(3)
    X = rng.normal(size=(1500, 4))
    X[rng.random(X.shape) < 0.15] = np.nan
    y = (np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) > 0).astype(int)
    clf = HistGradientBoostingClassifier(max_iter=30).fit(X, y)
    reg = HistGradientBoostingRegressor(max_iter=30).fit(X, np.nan_to_num(X[:, 2]) * 3)
    c = load_model(save_model(clf, tmp_path / "c.zip", format="onnx", example=X[:20]))
    r = load_model(save_model(reg, tmp_path / "r.zip", format="onnx", example=X[:20]))
    for n in [1, 7, 500]:
        Z = rng.normal(size=(n, 4)).astype("float32")
        Z[rng.random(Z.shape) < 0.2] = np.nan
        np.testing.assert_allclose(c.predict_proba(Z), clf.predict_proba(Z), rtol=0, atol=1e-12)
        np.testing.assert_allclose(r.predict(Z).ravel(), reg.predict(Z), rtol=0, atol=1e-12)


CITIES = [f"c{i:03d}" for i in range(90)] + ["Zürich", "東京", "", "with space", "new\nline", "tab\t"]


def _city_model(missing_in_training: bool, seed: int):
    "A gradient-boosting model on a city among 96 (non-ASCII, empty and odd text) and two numbers, NaN in training or not."
    from sklearn.ensemble import HistGradientBoostingClassifier
    rng = np.random.default_rng(seed)
    n = 4000
    df = pd.DataFrame({"city": pd.Categorical(rng.choice(CITIES, n), categories=CITIES), "x": rng.standard_normal(n),
                       "y": rng.integers(-3, 4, n).astype(float)})  # ties in y
    label = (df["city"].cat.codes.to_numpy() % 3 == 0) ^ (df["x"].to_numpy() > 0.3) ^ (df["y"].to_numpy() > 1)
    if missing_in_training:
        gone = rng.random(n) < 0.1
        df.loc[gone, "city"] = np.nan
        label = label ^ gone  # missing cities have a class of their own, so the trees split on them
    df.loc[rng.random(n) < 0.15, "x"] = np.nan
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", max_iter=30, random_state=0)
    return df, model.fit(df, label.astype(int))


def _city_frames(df, n, seed):
    "Random row subsets with unseen and missing cities, NaN numbers, float32 columns and single rows."
    rng = np.random.default_rng(seed)
    for i in range(n):
        size = 1 if i % 7 == 0 else int(rng.integers(2, 400))
        f = df.iloc[rng.integers(0, len(df), size)].reset_index(drop=True).astype({"city": object})
        r = rng.random(size)
        f.loc[r < 0.2, "city"] = "never seen" if i % 2 else "東京 "  # unseen: a new name, a known one with a trailing space
        f.loc[(r >= 0.2) & (r < 0.35), "city"] = np.nan
        f.loc[rng.random(size) < 0.2, "x"] = np.nan
        if i % 3 == 0:
            f[["x", "y"]] = f[["x", "y"]].astype("float32")
        yield f


def _sets(graph: bytes) -> list[list[float]]:
    "The member sets of the TreeEnsemble's BRANCH_MEMBER nodes (NaN ends each set)."
    import onnx
    from onnx import numpy_helper
    node = next(n for n in onnx.load_from_string(graph).graph.node if n.op_type == "TreeEnsemble")
    values = numpy_helper.to_array(next(a for a in node.attribute if a.name == "membership_values").t)
    sets, current = [], []
    for v in values:
        if np.isnan(v):
            sets.append(current)
            current = []
        else:
            current.append(float(v))
    return sets


@pytest.mark.parametrize("missing_in_training", [False, True])
def test_hgb_unknown_and_missing_categories_equal_sklearn(missing_in_training, tmp_path):
    df, model = _city_model(missing_in_training, seed=7 + missing_in_training)
    graph, feed, outputs = hgb_to_onnx(model)
    sets = _sets(graph)
    assert any(0.0 in s and max(s) >= 64 for s in sets)  # the sets onnxruntime-web sent a NaN into, whatever its flag said
    assert any(UNKNOWN_CODE in s for s in sets) and not all(UNKNOWN_CODE in s for s in sets)
    onnx_model = load_model(save_model(model, tmp_path / "c.zip", format="onnx", example=df.iloc[:100]))
    for f in _city_frames(df, 40, seed=11):
        as_fitted = f.assign(city=f["city"].where(f["city"].isin(CITIES)).astype(df["city"].dtype))  # unseen: missing
        np.testing.assert_allclose(onnx_model.predict_proba(f), model.predict_proba(as_fitted), rtol=0, atol=1e-12)
        np.testing.assert_array_equal(onnx_model.predict(f), model.predict(as_fitted))


@pytest.mark.parametrize("category", [MISSING_CATEGORY, "a\x00b"])
def test_a_category_an_onnx_string_cannot_carry_is_refused(category):
    from sklearn.ensemble import HistGradientBoostingClassifier
    cats = ["a", "b", category]
    df = pd.DataFrame({"c": pd.Categorical(np.tile(cats, 40), categories=cats), "x": np.arange(120.0)})
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", max_iter=3).fit(df, np.arange(120) % 3 == 2)
    with pytest.raises(ConfigError, match="column 'c' has a category that is MISSING_CATEGORY or holds a NUL"):
        hgb_to_onnx(model)


def test_no_nan_reaches_a_categorical_split(flights):
    "An unseen or missing category is UNKNOWN_CODE in the coded columns the trees read; a missing number stays NaN."
    import onnx
    import onnxruntime as ort
    X, _, hgb = flights
    graph, feed, outputs = hgb_to_onnx(hgb)
    probe = onnx.load_from_string(graph)
    names = [f"{c}_code" for c in ("carrier", "origin", "dest")]
    probe.graph.output.extend([onnx.helper.make_tensor_value_info(n, onnx.TensorProto.DOUBLE, [None, 1]) for n in names])
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    for f in random_frames(X, 24, seed=5):
        known = hgb._preprocessor.named_transformers_["encoder"].categories_
        unknown = {c: (f[c].isna() | ~f[c].isin([v for v in known[j] if not pd.isna(v)])).to_numpy()
                   for j, c in enumerate(("carrier", "origin", "dest"))}
        feeds = OnnxModel(graph, feed, outputs).inputs(f)
        np.testing.assert_array_equal(np.isnan(feeds["numeric"]), f[feed[-1]["columns"]].isna().to_numpy())
        for name, codes in zip(names, session.run(names, feeds)):
            codes = codes.ravel()
            assert not np.isnan(codes).any()
            np.testing.assert_array_equal(codes == UNKNOWN_CODE, unknown[name[:-5]])


@pytest.mark.parametrize("fmt", ["torch_state_dict", "torch_export", "onnx"])
def test_torch_round_trips(mlp, fmt, tmp_path):
    model = load_model(save_model(mlp, tmp_path / "m.zip", format=fmt, example=torch.zeros(1, 64)))
    rng = np.random.default_rng(4)
    for n in [1, 2, 17, 256]:
        x = rng.normal(size=(n, 64)).astype("float32")
        if n > 2:
            x[0, 3] = np.nan  # NaN propagates the same way through every format
        with torch.no_grad():
            want = mlp(torch.from_numpy(x)).numpy()
            got = model(x) if fmt == "onnx" else model(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5, equal_nan=True)
    man = read_manifest(tmp_path / "m.zip")
    assert man["kind"] == "torch" and man["input_schema"]["shape"] == [None, 64]


def test_manifest_records_what_loading_needs(flights, tmp_path):
    X, _, hgb = flights
    man = read_manifest(save_model(hgb, tmp_path / "a.zip", example=X.head(5)))
    assert man["format"] == "skops" and man["kind"] == "sklearn"
    assert set(man["requires"]) == {"python", "numpy", "scikit-learn", "skops"}
    assert set(man["environment"]) >= {"python", "numpy", "scikit-learn", "torch", "onnx", "onnxruntime", "skops", "mlsys"}
    assert [f["name"] for f in man["input_schema"]["features"]] == list(X.columns)
    assert man["input_schema"]["features"][0]["dtype"] == "category"
    assert len(man["files"]["model.skops"]["sha256"]) == 64


# ---- hostile and tampered files ----

def _rewrite(path, out, drop=(), add=None, manifest=None, rehash=True):
    "Copy an artifact, dropping members, adding some, or changing its manifest (rehashed unless told not to)."
    src = zipfile.ZipFile(path)
    man = json.loads(src.read(MANIFEST))
    if manifest is not None:
        manifest(man)
    text = json.dumps(man).encode()
    with zipfile.ZipFile(out, "w") as z:
        for name in src.namelist():
            if name in drop:
                continue
            if name == MANIFEST:
                z.writestr(name, text)
            elif name == MANIFEST_SUM and rehash:
                import hashlib
                z.writestr(name, hashlib.sha256(text).hexdigest())
            else:
                z.writestr(name, src.read(name))
        for name, data in (add or {}).items():
            z.writestr(name, data)
    return out


def _hostile_skops(model) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(import_skops_io().dumps(model)))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name in src.namelist():
            data = src.read(name)
            if name == "schema.json":
                schema = json.loads(data)
                schema["__module__"], schema["__class__"] = "os", "system"
                data = json.dumps(schema).encode()
            z.writestr(name, data)
    return out.getvalue()


def test_hostile_skops_refused(tmp_path):
    from sklearn.linear_model import LogisticRegression
    lr = LogisticRegression().fit(np.eye(4), [0, 1, 0, 1])
    path = write_artifact(tmp_path / "evil.zip", {"model.skops": _hostile_skops(lr)},
                          {"format": "skops", "kind": "sklearn", "input_schema": None})
    read_artifact(path)  # its checksums are valid: the attacker computed them
    with pytest.raises(IntegrityError, match=r"os\.system"):
        load_model(path)
    with pytest.raises(IntegrityError, match=r"os\.system"):
        load_model(path, trusted=["sklearn.linear_model._logistic.LogisticRegression"])


def test_pickle_in_state_dict_refused(tmp_path, mlp):
    path = save_model(mlp, tmp_path / "m.zip")
    buf = io.BytesIO()
    torch.save({"0.weight": torch.zeros(32, 64), "hook": subprocess.Popen}, buf)
    evil = write_artifact(tmp_path / "evil.zip", {"state_dict.pt": buf.getvalue()},
                          {k: v for k, v in read_manifest(path).items() if k in ("format", "kind", "architecture")})
    with pytest.raises(IntegrityError, match="more than tensors"):
        load_model(evil)


def test_tampered_artifacts_refused(flights, tmp_path):
    X, _, hgb = flights
    good = save_model(hgb, tmp_path / "good.zip", format="onnx", example=X.head(50))
    raw = good.read_bytes()
    onnx_at = raw.index(b"TreeEnsemble")
    flipped = tmp_path / "flipped.zip"
    flipped.write_bytes(raw[:onnx_at] + b"TreeEnsembli" + raw[onnx_at + 12:])
    cases = {
        "checksum mismatch in 'model.onnx'": flipped,
        "manifest.json was edited": _rewrite(good, tmp_path / "e.zip", manifest=lambda m: m.update(kind="torch"), rehash=False),
        "'model.onnx' listed in its manifest is missing": _rewrite(good, tmp_path / "m.zip", drop=["model.onnx"]),
        "files its manifest does not list": _rewrite(good, tmp_path / "x.zip", add={"payload.py": b"print(1)"}),
        "not a model artifact": tmp_path / "n.zip",
        "no manifest.json": _rewrite(good, tmp_path / "nm.zip", drop=[MANIFEST]),
    }
    (tmp_path / "n.zip").write_bytes(b"not a zip at all")
    for message, path in cases.items():
        with pytest.raises(IntegrityError, match=message.replace("(", r"\(")):
            load_model(path)
    versions = _rewrite(good, tmp_path / "v.zip", manifest=lambda m: m["requires"].update(onnxruntime="0.9.0"))
    with pytest.raises(ConfigError, match="onnxruntime 0.9.0"):
        load_model(versions)
    load_model(versions, check_versions=False)  # a caller who knows better may skip only the version check
    fmt = _rewrite(good, tmp_path / "f.zip", manifest=lambda m: m.update(format="pickle"))
    with pytest.raises(ConfigError, match="unknown artifact format 'pickle'"):
        load_model(fmt)
    kind = _rewrite(good, tmp_path / "k.zip", manifest=lambda m: m.update(kind="xgboost"))
    with pytest.raises(ConfigError, match="unknown model kind 'xgboost'"):
        load_model(kind)
    skops = save_model(hgb, tmp_path / "s.zip")
    mixed = _rewrite(skops, tmp_path / "ks.zip", manifest=lambda m: m.update(kind="keras"))  # a kind its format does not hold
    with pytest.raises(ConfigError, match="format 'skops' holds sklearn models, not the keras model"):
        load_model(mixed)
    lost = _rewrite(good, tmp_path / "l.zip", manifest=lambda m: m["requires"].pop("onnxruntime"))
    with pytest.raises(IntegrityError, match="does not record the onnxruntime version"):
        load_model(lost)


# ---- a killed writer ----

WRITER = textwrap.dedent("""
    import sys, torch
    from mlsys.deploy.serialize import save_model
    path = sys.argv[1]
    nets = []
    for value in (1.0, 2.0):
        net = torch.nn.Sequential(torch.nn.Linear(512, 512), torch.nn.Linear(512, 512))
        with torch.no_grad():
            for p in net.parameters():
                p.fill_(value)
        nets.append(net)
    print("ready", flush=True)
    i = 0
    while True:
        save_model(nets[i % 2], path)
        i += 1
""")


def test_killed_writer_leaves_old_or_new(tmp_path):
    path = tmp_path / "net.zip"
    first = torch.nn.Sequential(torch.nn.Linear(512, 512), torch.nn.Linear(512, 512))
    with torch.no_grad():
        for p in first.parameters():
            p.fill_(1.0)
    save_model(first, path)
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    rng = np.random.default_rng(5)
    seen = set()
    for _ in range(6):
        proc = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == "ready"
            time.sleep(float(rng.uniform(0.0, 1.5)))  # a random moment to kill at, not a synchronisation
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=120)
        net = load_model(path)  # never a half-written or mixed artifact
        values = {float(v) for p in net.parameters() for v in p.detach().unique()}
        assert values in ({1.0}, {2.0})
        seen |= values
    leftovers = [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    assert all(p.startswith(".net.zip.") for p in leftovers)  # only the killed writer's own temporary files


# ---- bad input ----

def test_bad_input_named(flights, mlp, tmp_path):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    from mlsys.pipeline import make_model
    X, y, hgb = flights
    with pytest.raises(ConfigError, match="model kinds are"):
        save_model({"coef": [1.0]}, tmp_path / "a.zip")
    for bad in [42, None, ""]:
        with pytest.raises(DataError, match="artifact path"):
            save_model(hgb, bad)
    with pytest.raises(DataError, match="artifact path"):
        load_model(3.5)
    with pytest.raises(DataError, match="is a directory"):
        load_model(tmp_path)
    with pytest.raises(DataError, match="not found"):
        load_model(tmp_path / "none.zip")
    for fmt in ["torch_export", "onnx"]:
        with pytest.raises(ConfigError, match="needs an example input"):
            save_model(mlp, tmp_path / "a.zip", format=fmt)
    with pytest.raises(ConfigError, match="needs an example input"):
        save_model(hgb, tmp_path / "a.zip", format="onnx")
    with pytest.raises(ConfigError, match="unknown format 'joblib'"):
        save_model(hgb, tmp_path / "a.zip", format="joblib")
    with pytest.raises(ConfigError, match="serializes torch models"):
        save_model(hgb, tmp_path / "a.zip", format="torch_export")
    with pytest.raises(ConfigError, match="serializes sklearn models"):
        save_model(mlp, tmp_path / "a.zip", format="skops")
    with pytest.raises(ConfigError, match="unfitted LogisticRegression"):
        save_model(LogisticRegression(), tmp_path / "a.zip")
    with pytest.raises(ConfigError, match="trusted must be a list"):
        load_model(tmp_path / "a.zip", trusted="os.system")
    with pytest.raises(ConfigError, match="tolerance"):
        save_model(hgb, tmp_path / "a.zip", tolerance=-1)
    with pytest.raises(ConfigError, match="add_indicator"):
        save_model(make_model("logreg").fit(X, y), tmp_path / "a.zip", format="onnx", example=X.head(50))
    with pytest.raises(ConfigError, match="use format='torch_export'"):
        save_model(torch.nn.Bilinear(3, 3, 2), tmp_path / "a.zip")
    multi = HistGradientBoostingClassifier(max_iter=5).fit(np.random.default_rng(0).normal(size=(90, 2)), np.arange(90) % 3)
    with pytest.raises(ConfigError, match="3 classes"):
        hgb_to_onnx(multi)
    with pytest.raises(DataError, match="must be a batch"):
        save_model(mlp, tmp_path / "a.zip", format="onnx", example=torch.zeros(64))
    onnx = load_model(save_model(hgb, tmp_path / "h.zip", format="onnx", example=X.head(20)))
    assert isinstance(onnx, OnnxModel)
    with pytest.raises(DataError, match="reads a DataFrame"):
        onnx.predict_proba(X.to_numpy())
    with pytest.raises(DataError, match="'carrier'"):
        onnx.predict_proba(X.drop(columns="carrier"))
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())  # refused saves leave nothing behind


def test_onnx_export_checked_against_model(flights, tmp_path):
    from sklearn.linear_model import LogisticRegression
    rng = np.random.default_rng(6)
    X = rng.normal(size=(200, 3)) * 1e3
    lr = LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))
    with pytest.raises(IntegrityError, match="differs from the model"):
        save_model(lr, tmp_path / "a.zip", format="onnx", example=X, tolerance=0)
    assert not (tmp_path / "a.zip").exists()
