"""mlsys.modeling.versioning: manifests and diffs against an oracle, hostile manifests and folders, runs linked to
data versions, and reproducing runs (identical metrics, refused on changed data, caught when not deterministic)."""
import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("mlflow")
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated")

from mlsys.core import ConfigError, DataError, IntegrityError
from mlsys.modeling.tracking import Tracker, UnknownRunError
from mlsys.modeling.versioning import (DatasetVersion, DataVersionError, ReproductionError, data_versions,
                                       dataset_version, diff, manifest_digest, reproduce, tracked_run, verify)

NAMES = ["a", "b.csv", "päth", "日本.parquet", "x y", "z-1", "part=0", "deep"]


def _write_tree(root: Path, files: dict[str, bytes]) -> None:
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def _random_files(rng: random.Random) -> dict[str, bytes]:
    files = {}
    for _ in range(rng.randint(1, 8)):
        parts = [rng.choice(NAMES) + str(rng.randint(0, 2)) for _ in range(rng.randint(1, 3))]
        rel = "/".join(parts)
        if any(rel.startswith(k + "/") or k.startswith(rel + "/") for k in files):
            continue  # a name cannot be both a file and a folder
        files[rel] = bytes(rng.getrandbits(8) for _ in range(rng.choice([0, 1, 5, 100])))
    return files


def _mutate(rng: random.Random, files: dict[str, bytes]) -> dict[str, bytes]:
    new = dict(files)
    for _ in range(rng.randint(0, 4)):
        op = rng.choice(["add", "remove", "change", "same-size", "rewrite", "rename"])
        keys = sorted(new)
        if op == "add":
            rel = f"new{rng.randint(0, 99)}/{rng.choice(NAMES)}"
            if not any(k.startswith(rel + "/") or rel.startswith(k + "/") for k in new):
                new[rel] = b"fresh" * rng.randint(0, 3)
        elif not keys:
            continue
        elif op == "remove" and len(keys) > 1:
            del new[rng.choice(keys)]
        elif op == "change":
            k = rng.choice(keys)
            new[k] = new[k] + b"!"
        elif op == "same-size" and new[k := rng.choice(keys)]:
            new[k] = bytes([(new[k][0] + 1) % 256]) + new[k][1:]
        elif op == "rewrite":
            k = rng.choice(keys)
            new[k] = bytes(new[k])  # the same bytes written again
        elif op == "rename":
            k = rng.choice(keys)
            target = k + "-renamed"
            if not any(x.startswith(target + "/") for x in new):
                new[target] = new.pop(k)
    return new


def test_diff_and_digest_match_an_oracle(tmp_path):
    "Randomized: diff equals set arithmetic on {path: bytes}; equal digests exactly when contents are equal."
    rng = random.Random(0)
    for case in range(150):
        old_files = _random_files(rng)
        new_files = _mutate(rng, old_files)
        _write_tree(tmp_path / "a", old_files)
        _write_tree(tmp_path / "b", new_files)
        va, vb = dataset_version(tmp_path / "a", "d"), dataset_version(tmp_path / "b", "d")
        d = diff(va, vb)
        assert set(d.added) == new_files.keys() - old_files.keys(), case
        assert set(d.removed) == old_files.keys() - new_files.keys(), case
        both = old_files.keys() & new_files.keys()
        assert set(d.changed) == {k for k in both if old_files[k] != new_files[k]}, case
        assert d.unchanged == len(both) - len(d.changed)
        assert (va.digest == vb.digest) == (old_files == new_files), case
        assert d.empty == (old_files == new_files)
        assert [e.size for e in va.files] == [len(old_files[e.path]) for e in va.files]
        assert DatasetVersion.from_dict(json.loads(json.dumps(va.to_dict()))) == va  # the manifest round-trips


def test_digest_ignores_order_times_and_hidden_files(tmp_path):
    files = {f"day={i}/part.parquet": bytes([i]) * 10 for i in range(5)}
    _write_tree(tmp_path / "a", files)
    _write_tree(tmp_path / "b", dict(reversed(list(files.items()))))  # created in the other order
    (tmp_path / "b" / ".lock").write_text("pid")
    (tmp_path / "b" / ".tmp").mkdir()
    (tmp_path / "b" / ".tmp" / "half-written").write_text("x")
    (tmp_path / "b" / "day=1" / ".part.parquet.tmp").write_text("x")
    os.utime(tmp_path / "b" / "day=3" / "part.parquet", (0, 0))
    va, vb = dataset_version(tmp_path / "a", "d"), dataset_version(tmp_path / "b", "d")
    assert va.digest == vb.digest and [e.path for e in vb.files] == sorted(files)
    only = dataset_version(tmp_path / "a", "d", include=["day=1/*", "day=2/**"])
    assert [e.path for e in only.files] == ["day=1/part.parquet", "day=2/part.parquet"]
    without = dataset_version(tmp_path / "a", "d", exclude=["day=0/**"])
    assert len(without.files) == 4
    assert va.partitions()["partition"].tolist() == [f"day={i}" for i in range(5)]
    assert manifest_digest([]) == manifest_digest(())


def test_previous_reuses_hashes_only_for_unchanged_files(tmp_path):
    _write_tree(tmp_path / "d", {"a": b"1" * 10, "b": b"2" * 10})
    v1 = dataset_version(tmp_path / "d", "d")
    (tmp_path / "d" / "a").write_bytes(b"3" * 11)  # size changes: re-hashed
    v2 = dataset_version(tmp_path / "d", "d", previous=v1)
    assert v2 == dataset_version(tmp_path / "d", "d") and diff(v1, v2).changed == ("a",)
    # same size and a forced equal mtime: `previous` trusts it (as make and DVC do); a full scan does not
    st = (tmp_path / "d" / "b").stat()
    (tmp_path / "d" / "b").write_bytes(b"9" * 10)
    os.utime(tmp_path / "d" / "b", ns=(st.st_atime_ns, st.st_mtime_ns))
    assert dataset_version(tmp_path / "d", "d", previous=v2).digest == v2.digest
    assert verify(v2).changed == ("b",)


@pytest.mark.parametrize("mutate, match", [
    (lambda d: d["files"][0].__setitem__(0, "../escape"), "not a plain relative path"),
    (lambda d: d["files"][0].__setitem__(0, "/etc/passwd"), "not a plain relative path"),
    (lambda d: d["files"][0].__setitem__(0, "a\\..\\b"), "not a plain relative path"),
    (lambda d: d["files"][0].__setitem__(0, "a\x00b"), "not a plain relative path"),
    (lambda d: d["files"][0].__setitem__(0, "a//b"), "not a plain relative path"),
    (lambda d: d["files"][0].__setitem__(0, ""), "non-empty"),
    (lambda d: d["files"][0].__setitem__(1, -1), "non-negative"),
    (lambda d: d["files"][0].__setitem__(1, True), "non-negative"),
    (lambda d: d["files"][0].__setitem__(1, "5"), "non-negative"),
    (lambda d: d["files"][0].__setitem__(2, "A" * 64), "lowercase hex"),
    (lambda d: d["files"][0].__setitem__(2, "0" * 63), "lowercase hex"),
    (lambda d: d["files"].append(list(d["files"][0])), "without duplicates"),
    (lambda d: d["files"][1].__setitem__(2, "f" * 64), "does not match its files"),
    (lambda d: d.__setitem__("digest", "0" * 64), "does not match its files"),
    (lambda d: d.__setitem__("format", "other/1"), "not a dataset manifest"),
    (lambda d: d.pop("files"), "malformed"),
    (lambda d: d.__setitem__("files", [["a", 1]]), "malformed"),
    (lambda d: d.__setitem__("files", 5), "malformed"),
    (lambda d: d.__setitem__("root", "relative/dir"), "absolute"),
    (lambda d: d.__setitem__("name", ""), "name"),
    (lambda d: d.__setitem__("include", [1]), "glob"),
])
def test_crafted_manifests_are_refused(tmp_path, mutate, match):
    _write_tree(tmp_path / "d", {"a": b"1", "b": b"2"})
    doc = dataset_version(tmp_path / "d", "d").to_dict()
    mutate(doc)
    (tmp_path / "m.json").write_text(json.dumps(doc))
    with pytest.raises(IntegrityError, match=match):
        DatasetVersion.load(tmp_path / "m.json")


def test_bad_folders_and_paths(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        dataset_version(tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="is a file"):
        dataset_version(tmp_path / "file")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no files"):
        dataset_version(tmp_path / "empty")
    for bad in [None, "", 3]:
        with pytest.raises(DataError):
            dataset_version(bad)
    for bad in [["../x"], ["/abs"], [""], 5]:
        with pytest.raises(ConfigError):
            dataset_version(tmp_path, include=bad)
    _write_tree(tmp_path / "d", {"a/b.csv": b"1"})
    v = dataset_version(tmp_path / "d", "d")
    assert v.path("a/b.csv") == tmp_path / "d" / "a" / "b.csv"
    for bad in ["../d/a/b.csv", "/etc/passwd", "a/../a/b.csv", "missing.csv", 3]:
        with pytest.raises(DataError):
            v.path(bad)
    with pytest.raises(ConfigError):
        diff(v, v.to_dict())
    with pytest.raises(ConfigError):
        dataset_version(tmp_path / "d", previous={"files": []})


def test_links_must_stay_inside_the_root(tmp_path):
    (tmp_path / "secret.txt").write_text("s")
    _write_tree(tmp_path / "d", {"a.csv": b"1"})
    os.symlink(tmp_path / "d" / "a.csv", tmp_path / "d" / "inside-link.csv")
    v = dataset_version(tmp_path / "d", "d")  # a link to a file inside is versioned by its content
    assert {e.path: e.sha256 for e in v.files}["inside-link.csv"] == {e.path: e.sha256 for e in v.files}["a.csv"]
    os.symlink(tmp_path / "secret.txt", tmp_path / "d" / "out.csv")
    with pytest.raises(IntegrityError, match="outside the data root"):
        dataset_version(tmp_path / "d", "d")
    os.unlink(tmp_path / "d" / "out.csv")
    os.symlink(tmp_path, tmp_path / "d" / "dirlink")
    with pytest.raises(IntegrityError, match="symbolic link to a folder"):
        dataset_version(tmp_path / "d", "d")
    os.unlink(tmp_path / "d" / "dirlink")
    os.symlink(tmp_path / "nowhere", tmp_path / "d" / "broken.csv")
    with pytest.raises((DataError, IntegrityError)):
        dataset_version(tmp_path / "d", "d")


def test_non_utf8_file_names_are_named(tmp_path):
    root = tmp_path / "d"
    root.mkdir()
    try:
        with open(os.path.join(os.fsencode(root), b"bad\xff.csv"), "wb") as f:
            f.write(b"1")
    except OSError:
        pytest.skip("the filesystem refuses non-UTF-8 names")
    with pytest.raises(DataError, match="not valid UTF-8"):
        dataset_version(root)


# ---------------------------------------------------------------------------------------------------------------------
# runs linked to versions, and reproduction

def _toy_data(root: Path, rows: int = 200) -> DatasetVersion:
    rng = np.random.default_rng(1)
    for day in range(3):
        (root / f"day={day}").mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"x": rng.normal(size=rows), "y": rng.integers(0, 2, rows)}).to_parquet(root / f"day={day}" / "p.parquet")
    return dataset_version(root, "toy")


def toy_train(run, params, seed, data):
    "SGD on the toy data: depends on params, seed and every byte of the data."
    v = data["toy"]
    df = pd.concat([pd.read_parquet(v.path(e.path)) for e in v.files], ignore_index=True)
    rng = np.random.default_rng(seed)
    w = 0.0
    for step in range(params["steps"]):
        i = rng.integers(0, len(df), params["batch"])
        grad = float(np.mean((w * df["x"].to_numpy()[i] - df["y"].to_numpy()[i]) * df["x"].to_numpy()[i]))
        w -= params["lr"] * grad
        run.log_metric("loss", float(np.mean((w * df["x"] - df["y"]) ** 2)), step)
    run.log_metric("speed/fake_seconds", float(np.random.random()))  # volatile: never compared
    return {"w": w, "rows": len(df)}


@pytest.fixture
def tracker(tmp_path):
    return Tracker(tmp_path / "store", experiment="versioning")


def test_reproduce_gives_identical_metrics_and_links_versions(tracker, tmp_path):
    v = _toy_data(tmp_path / "toy")
    params = {"lr": 0.1, "steps": 40, "batch": 16, "nested": {"a": [1, 2]}}
    run = tracked_run(toy_train, params, seed=5, data={"toy": v}, tracker=tracker, system_interval=None)
    rec = tracker.get_run(run.run_id)
    assert rec.info.status == "FINISHED" and rec.data.tags["mlsys.data.toy.digest"] == v.digest
    assert rec.data.tags["mlsys.seed"] == "5" and rec.data.params["nested.a"] == "[1, 2]"
    assert data_versions(tracker, run.run_id) == {"toy": v}
    rep = reproduce(run.run_id, toy_train, tracker)
    assert rep.identical and set(rep.table["metric"]) == {"loss", "w", "rows"}
    assert tracker.get_run(rep.reproduced).data.tags["mlsys.reproduces"] == run.run_id
    # another seed is another run: reproducing must use the recorded one
    other = tracked_run(toy_train, params, seed=6, data={"toy": v}, tracker=tracker, system_interval=None)
    assert tracker.get_run(other.run_id).data.metrics["w"] != rec.data.metrics["w"]
    # the data moved
    shutil.copytree(tmp_path / "toy", tmp_path / "moved")
    assert reproduce(run.run_id, toy_train, tracker, roots={"toy": tmp_path / "moved"}).identical
    with pytest.raises(ConfigError, match="did not read"):
        reproduce(run.run_id, toy_train, tracker, roots={"other": tmp_path})


def test_reproduce_refuses_changed_data_and_catches_nondeterminism(tracker, tmp_path):
    v = _toy_data(tmp_path / "toy")
    run = tracked_run(toy_train, {"lr": 0.1, "steps": 20, "batch": 8}, seed=1, data={"toy": v}, tracker=tracker,
                      system_interval=None)

    def unseeded(run, params, seed, data):
        return toy_train(run, params, int.from_bytes(os.urandom(4), "little"), data)

    with pytest.raises(ReproductionError, match="differs first at step"):
        reproduce(run.run_id, unseeded, tracker)

    def fewer(run, params, seed, data):
        return toy_train(run, {**params, "steps": params["steps"] - 1}, seed, data)

    with pytest.raises(ReproductionError, match="values"):
        reproduce(run.run_id, fewer, tracker)
    (tmp_path / "toy" / "day=1" / "p.parquet").write_bytes(b"changed")
    with pytest.raises(DataVersionError, match=r"1 changed \(day=1/p.parquet\)"):
        reproduce(run.run_id, toy_train, tracker)
    shutil.rmtree(tmp_path / "toy")
    with pytest.raises(DataError, match="does not exist"):
        reproduce(run.run_id, toy_train, tracker)


def test_reproduce_and_tracked_run_bad_input(tracker, tmp_path):
    v = _toy_data(tmp_path / "toy")
    with pytest.raises(UnknownRunError):
        reproduce("0" * 32, toy_train, tracker)
    with tracker.start_run("plain", system_interval=None, log_code=False) as plain:
        plain.log_metric("x", 1.0)
    with pytest.raises(DataError, match="not recorded by tracked_run"):
        reproduce(plain.run_id, toy_train, tracker)
    with pytest.raises(ConfigError):
        tracked_run(toy_train, {"lr": 0.1}, seed=0, data={"toy": v.to_dict()}, tracker=tracker)
    with pytest.raises(ConfigError, match="key each version by its name"):
        tracked_run(toy_train, {"lr": 0.1}, seed=0, data={"other": v}, tracker=tracker)
    with pytest.raises(DataError):
        tracked_run(toy_train, {"lr": np.zeros(2)}, seed=0, data={"toy": v}, tracker=tracker)
    with pytest.raises(ConfigError):
        tracked_run(toy_train, {"lr": 0.1}, seed=-1, data={"toy": v}, tracker=tracker)
    with pytest.raises(ConfigError):
        tracked_run("not callable", {}, seed=0, tracker=tracker)
    with pytest.raises(DataError, match="must return a dict"):
        tracked_run(lambda run, p, s, d: [1.0], {}, seed=0, tracker=tracker, name="returns a list", system_interval=None)
    failed = [r for r in tracker.client.search_runs([tracker.experiment_id]) if r.info.run_name == "returns a list"]
    assert failed[0].info.status == "FAILED"
    with pytest.raises(DataError, match="FAILED"):
        reproduce(failed[0].info.run_id, toy_train, tracker)


def test_a_tampered_manifest_in_the_store_is_refused(tracker, tmp_path):
    v = _toy_data(tmp_path / "toy")
    run = tracked_run(toy_train, {"lr": 0.1, "steps": 5, "batch": 4}, seed=0, data={"toy": v}, tracker=tracker,
                      system_interval=None)
    art = Path(tracker.get_run(run.run_id).info.artifact_uri.removeprefix("file://")) / "data" / "toy.manifest.json"
    doc = json.loads(art.read_text())
    doc["files"][0][0] = "../../../etc/passwd"
    art.write_text(json.dumps(doc))
    with pytest.raises(IntegrityError, match="not a plain relative path"):
        reproduce(run.run_id, toy_train, tracker)
    # a manifest that is valid but not the one the digest tag names
    other = _toy_data(tmp_path / "other", rows=50)
    art.write_text(json.dumps({**other.to_dict(), "name": "toy"}))
    with pytest.raises(IntegrityError, match="does not match the digest"):
        data_versions(tracker, run.run_id)


def test_reproduce_a_real_flights_run(tracker, tmp_path):
    "On real data: a week of flights features as daily Parquet files, a logistic regression trained by SGD."
    from sklearn.linear_model import SGDClassifier
    from sklearn.metrics import log_loss

    from mlsys.datasets import load_flights, load_planes, load_weather
    from mlsys.pipeline import LABEL, NUMERIC_FEATURES, build_features

    feats = build_features(load_flights("2013-01-01", "2013-01-07"), load_weather("2012-12-31", "2013-01-07"), load_planes())
    root = tmp_path / "features"
    for day, part in feats.groupby("local_date"):
        (root / f"date={day}").mkdir(parents=True)
        part.to_parquet(root / f"date={day}" / "part-0.parquet", index=False)

    def train(run, params, seed, data):
        v = data["features"]
        df = pd.concat([pd.read_parquet(v.path(e.path)) for e in v.files], ignore_index=True).dropna(subset=[LABEL])
        X = df[NUMERIC_FEATURES].fillna(0).to_numpy()
        X = (X - X.mean(0)) / (X.std(0) + 1e-9)
        y = df[LABEL].astype(bool).to_numpy()
        clf = SGDClassifier(loss="log_loss", eta0=params["eta0"], learning_rate="constant", random_state=seed)
        rng = np.random.default_rng(seed)
        for step, idx in enumerate(np.array_split(rng.permutation(len(y)), 20)):
            clf.partial_fit(X[idx], y[idx], classes=[False, True])
            run.log_metric("loss", log_loss(y, clf.predict_proba(X)[:, 1]), step)
        return {"final_loss": log_loss(y, clf.predict_proba(X)[:, 1])}

    v = dataset_version(root, "features")
    assert len(v.files) == 7
    run = tracked_run(train, {"eta0": 0.01}, seed=3, data={"features": v}, tracker=tracker, system_interval=None)
    rep = reproduce(run.run_id, train, tracker)
    assert rep.identical and rep.table.set_index("metric").loc["loss", "steps"] == 20
