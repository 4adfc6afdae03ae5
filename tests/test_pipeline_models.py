"""Model files of the pipeline: skops by default, pickles only when allowed, and hostile files (with recomputed checksums) refused without running their code."""
import io
import os
import pickle
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest

from mlsys.core import ConfigError, DataError, IntegrityError, file_sha256
from mlsys.pipeline import CATEGORICAL_FEATURES, LABEL, NUMERIC_FEATURES, load_models, model_inputs, save_models, train_models


def feature_frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    "A synthetic frame with the pipeline's feature columns and a label that depends on two of them."
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({c: pd.Categorical(rng.choice(["A", "B", "C"], n)) for c in CATEGORICAL_FEATURES})
    for c in NUMERIC_FEATURES:
        df[c] = rng.random(n) if c.endswith("_rate") else rng.normal(size=n)  # late rates lie in [0, 1]
    df["route_30d_late_rate"] = np.where(rng.random(n) < 0.1, np.nan, rng.random(n))  # the heuristic's input (no history: NaN)
    df.loc[rng.random(n) < 0.1, "temp"] = np.nan
    df[LABEL] = pd.array((df["distance"] + (df["carrier"] == "A") + rng.normal(size=n)) > 0.5, dtype="boolean")
    return df


@pytest.fixture(scope="module")
def models():
    return {kind: train_models(feature_frame(), model=kind) for kind in ["hgb", "logreg"]}


class Payload:
    "Unpickling this creates the file named by `marker` (what planted code would do)."
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


class Sneaky:
    "A class skops would rebuild through `__setstate__`, which writes the marker."
    def __init__(self, marker):
        self.marker = str(marker)

    def __setstate__(self, state):
        Path(state["marker"]).write_text("pwned")


def plant(path: Path, data: bytes) -> Path:
    "Write a file and recompute its checksum sidecar, as an attacker who can write the folder would."
    path.write_bytes(data)
    Path(f"{path}.sha256").write_text(file_sha256(path))
    return path


@pytest.mark.parametrize("kind", ["hgb", "logreg"])
def test_skops_round_trip_predicts_the_same(models, kind, tmp_path):
    rows = feature_frame(200, seed=1)
    path = save_models(models[kind], tmp_path / "models.skops")
    assert path.read_bytes()[:4] == b"PK\x03\x04"
    back = load_models(path)
    assert sorted(back) == sorted(models[kind])
    for name, m in models[kind].items():
        X = rows[model_inputs(m)]  # each model reads the columns it was fitted on
        np.testing.assert_array_equal(back[name].predict_proba(X), m.predict_proba(X))


@pytest.mark.parametrize("name", ["evil.skops", "evil.joblib", "evil.pkl", "evil.bin"])
def test_hostile_pickle_is_refused_and_runs_nothing(name, tmp_path):
    marker = tmp_path / "pwned"
    path = plant(tmp_path / name, pickle.dumps({"hgb": Payload(marker)}))
    with pytest.raises(IntegrityError, match="is not a skops file .* unless allow_pickle=True"):
        load_models(path)
    assert not marker.exists()


def test_hostile_joblib_file_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    buf = io.BytesIO(); joblib.dump({"hgb": Payload(marker)}, buf)
    path = plant(tmp_path / "models.joblib", buf.getvalue())
    with pytest.raises(IntegrityError, match="not a skops file"):
        load_models(path)
    assert not marker.exists()
    # the same file with the explicit opt-in does run the payload: the flag is the only thing standing in the way
    load_models_path = tmp_path / "allowed.joblib"
    plant(load_models_path, buf.getvalue())
    with pytest.raises(IntegrityError):  # what it returns is not a dict of models
        load_models(load_models_path, allow_pickle=True)
    assert marker.exists()


def test_skops_file_with_untrusted_types_is_refused_and_runs_nothing(tmp_path):
    import skops.io as sio
    marker = tmp_path / "pwned"
    cases = {"a class of ours with __setstate__": {"hgb": Sneaky(marker)},
             "os.system": {"hgb": os.system},
             "an untrusted type beside real models": {"zero_rule": train_models(feature_frame(200))["zero_rule"], "x": Sneaky(marker)}}
    for case, obj in cases.items():
        path = plant(tmp_path / "sneaky.skops", sio.dumps(obj))
        with pytest.raises(IntegrityError, match="not on the trusted list") as e:
            load_models(path)
        assert "Sneaky" in str(e.value) or "system" in str(e.value), case
        assert not marker.exists(), case


def doubled(x):
    "A function of ours: not on skops' list nor on ours."
    return 2 * np.asarray(x)


def test_trusted_extends_the_list_only_for_the_named_types(tmp_path):
    import skops.io as sio
    from sklearn.dummy import DummyClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer
    model = make_pipeline(FunctionTransformer(doubled), DummyClassifier()).fit([[0.0], [1.0]], [0, 1])
    data = sio.dumps({"m": model})
    path = plant(tmp_path / "extra.skops", data)
    [name] = sio.get_untrusted_types(data=data)
    assert name.endswith(".doubled")
    with pytest.raises(IntegrityError, match="doubled"):
        load_models(path)
    back = load_models(path, trusted=[name])  # the caller vouches for this one type
    np.testing.assert_array_equal(back["m"].predict_proba([[3.0]]), model.predict_proba([[3.0]]))
    with pytest.raises(ConfigError, match="trusted must be a list of type names"):
        load_models(path, trusted=name)


def test_damaged_or_unverifiable_files_are_refused(models, tmp_path):
    path = save_models(models["hgb"], tmp_path / "models.skops")
    side = Path(f"{path}.sha256")
    data = path.read_bytes()
    with open(path, "ab") as f:
        f.write(b"x")
    with pytest.raises(IntegrityError, match="checksum mismatch"):
        load_models(path)
    path.write_bytes(data)
    side.write_text("0" * 64)
    with pytest.raises(IntegrityError, match="checksum mismatch"):
        load_models(path)
    side.unlink()
    with pytest.raises(IntegrityError, match="no checksum file models.skops.sha256"):
        load_models(path)
    with pytest.raises(IntegrityError, match="no checksum file"):
        load_models(path, allow_pickle=True)
    garbage = plant(tmp_path / "garbage.skops", b"PK\x03\x04 garbage")
    with pytest.raises(IntegrityError, match="is not a readable skops file"):
        load_models(garbage)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("hello.txt", "not a skops file")
    foreign = plant(tmp_path / "foreign.skops", buf.getvalue())
    with pytest.raises(IntegrityError, match="is not a readable skops file"):
        load_models(foreign)
    import skops.io as sio
    listing = plant(tmp_path / "list.skops", sio.dumps([1, 2]))
    with pytest.raises(IntegrityError, match="must be a non-empty dict of name -> fitted model"):
        load_models(listing)
    with pytest.raises(DataError, match="model file not found"):
        load_models(tmp_path / "missing.skops")
    with pytest.raises(DataError, match="model file must be a str or os.PathLike"):
        load_models(None)


def test_pickles_only_with_allow_pickle(models, tmp_path):
    with pytest.raises(ConfigError, match="pass allow_pickle=True"):
        save_models(models["hgb"], tmp_path / "m.joblib")
    assert not (tmp_path / "m.joblib").exists()
    path = save_models(models["hgb"], tmp_path / "m.joblib", allow_pickle=True)
    with pytest.raises(IntegrityError, match="not a skops file"):
        load_models(path)
    assert sorted(load_models(path, allow_pickle=True)) == ["hgb", "random", "route_rate", "zero_rule"]


@pytest.mark.parametrize("obj,path,needle", [
    (None, "m.skops", "models must be a non-empty dict"),
    ({}, "m.skops", "models must be a non-empty dict"),
    ({"a": 3}, "m.skops", "models['a'] is a int, which has no predict_proba"),
    ({3: None}, "m.skops", "model names must be non-empty strings"),
    ("ok", "m.txt", "models must be a non-empty dict"),
])
def test_save_models_refuses_bad_input(obj, path, needle, tmp_path):
    with pytest.raises(DataError, match=None) as e:
        save_models(obj, tmp_path / path)
    assert needle in str(e.value)


def test_save_models_refuses_unknown_suffix_and_types_load_would_refuse(models, tmp_path):
    with pytest.raises(ConfigError, match="model files end in .skops"):
        save_models(models["hgb"], tmp_path / "m.txt")
    from sklearn.dummy import DummyClassifier
    clf = DummyClassifier().fit([[0], [1]], [0, 1])
    clf.extra_ = Sneaky(tmp_path / "pwned")  # a fitted model carrying an object of an unvetted type
    with pytest.raises(IntegrityError, match="not on the trusted list"):
        save_models({"m": clf}, tmp_path / "m.skops")
    assert not (tmp_path / "m.skops").exists()
