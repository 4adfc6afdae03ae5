"""mlsys.labeling.lineage: every public entry point names bad input, crafted store files are refused, and the
label store loses no write when several processes save it.

Issue 9 item 10 (`LabelStore.add(parents=["x"])` raised a raw ValueError) and item 11 (`created_at="not-a-time"` was
stored), then the same classes over every function and method: None, wrong types, bool-as-int, floats for ints,
NaN, empty frames, missing or duplicate columns, naive times, unknown classes, weights that are not finite.
"""
import hashlib
import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlsys.labeling.lineage as L
from mlsys.core import BusyError, ConfigError, DataError, IntegrityError, MlsysError
from mlsys.labeling.lineage import LabelStore, LabelStoreConflictError

GOLD = pd.Series(["a", "b", "a", "b"], index=list("pqrs"))
ANN = pd.DataFrame({"u": ["a", "b", "a", None], "v": ["a", "a", "b", "b"]}, index=list("pqrs"))


def _store():
    s = LabelStore(["a", "b"])
    s.add_frame(ANN, "annotator")
    return s


def _add(**kw):
    args = dict(item_id="p", label="a", kind="annotator", source="s", version="1", parents=(), note="", created_at=None)
    return _store().add(**{**args, **kw})


CASES = [
    # ---- the cases
    ("add parents ['x']", _add, dict(parents=["x"]), DataError, "parents must be record ids \\(ints\\), got str 'x'"),
    ("add created_at not a time", _add, dict(created_at="not-a-time"), DataError, "created_at='not-a-time' is not an ISO 8601 time"),
    # ---- LabelStore.add
    ("add created_at naive", _add, dict(created_at="2013-01-01T10:00:00"), DataError, "created_at='2013-01-01T10:00:00' has no time zone"),
    ("add created_at date only", _add, dict(created_at="2013-01-01"), DataError, "has no time zone"),
    ("add created_at naive datetime", _add, dict(created_at=datetime(2013, 1, 1)), DataError, "created_at=2013-01-01 00:00:00 has no time zone"),
    ("add created_at NaT", _add, dict(created_at=pd.NaT), DataError, "created_at is missing \\(NaT\\)"),
    ("add created_at number", _add, dict(created_at=1356998400), DataError, "created_at must be an ISO 8601 time string or a tz-aware datetime, got int"),
    ("add created_at empty", _add, dict(created_at=""), DataError, "created_at='' is not an ISO 8601 time"),
    ("add parents None", _add, dict(parents=None), DataError, "parents must be a list of record ids, got NoneType"),
    ("add parents int", _add, dict(parents=3), DataError, "parents must be a list of record ids, got int"),
    ("add parents digits str", _add, dict(parents="12"), DataError, "parents must be a list of record ids, got str"),
    ("add parents float", _add, dict(parents=[1.0]), DataError, "parents must be record ids \\(ints\\), got float 1.0"),
    ("add parents bool", _add, dict(parents=[True]), DataError, "got bool True"),
    ("add parents missing", _add, dict(parents=[10**9]), DataError, "parent record 1000000000 does not exist"),
    ("add parents negative", _add, dict(parents=[-1]), DataError, "parent record -1 does not exist"),
    ("add parents other item", _add, dict(parents=[1]), DataError, "parent record 1 labels item 'q', not 'p'"),
    ("add parents twice", _add, dict(parents=[0, 0]), DataError, "name a record twice"),
    ("add parents 0-d array", _add, dict(parents=np.array(0)), DataError, "parents must be a list of record ids"),
    ("add parents frame", _add, dict(parents=pd.DataFrame({"x": [0]})), DataError, "parents must be a list of record ids, got DataFrame"),
    ("add item None", _add, dict(item_id=None), DataError, "item_id must be a str or int id, got NoneType"),
    ("add item float", _add, dict(item_id=1.0), DataError, "item_id must be a str or int id, got float"),
    ("add item bool", _add, dict(item_id=True), DataError, "got bool"),
    ("add item empty", _add, dict(item_id=" "), DataError, "item_id must be a non-empty id"),
    ("add label unknown", _add, dict(label="maybe"), DataError, "label 'maybe' from annotator 's' v1 for item 'p' is not one of"),
    ("add label unhashable", _add, dict(label=["a"]), DataError, "is not one of \\['a', 'b'\\] \\(got a list\\)"),
    ("add kind", _add, dict(kind="oracle"), DataError, "kind must be one of"),
    ("add kind list", _add, dict(kind=["annotator"]), DataError, "kind must be one of"),
    ("add source None", _add, dict(source=None), DataError, "source must be a non-empty name, got None"),
    ("add source int", _add, dict(source=3), DataError, "source must be a non-empty name"),
    ("add version None", _add, dict(version=None), DataError, "version must be a non-empty str \\(or an int\\), got None"),
    ("add version float", _add, dict(version=1.5), DataError, "version must be"),
    ("add version bool", _add, dict(version=True), DataError, "version must be"),
    ("add version empty", _add, dict(version=""), DataError, "version must be"),
    ("add note None", _add, dict(note=None), DataError, "note must be a str, got NoneType"),
    # ---- LabelStore(classes)
    ("classes None", LabelStore, dict(classes=None), ConfigError, "classes must be a list of at least two distinct labels"),
    ("classes str", LabelStore, dict(classes="ab"), ConfigError, "classes must be a list"),
    ("classes dict", LabelStore, dict(classes={"a": 1, "b": 2}), ConfigError, "classes must be a list"),
    ("classes 0-d", LabelStore, dict(classes=np.array(3)), ConfigError, "classes must be a list"),
    ("classes one", LabelStore, dict(classes=["a"]), ConfigError, "at least two distinct"),
    ("classes duplicate", LabelStore, dict(classes=["a", "a"]), ConfigError, "at least two distinct"),
    ("classes 1 and True", LabelStore, dict(classes=[0, 1, True]), ConfigError, "at least two distinct"),
    ("classes 1 and '1'", LabelStore, dict(classes=[1, "1"]), ConfigError, "at least two distinct"),
    ("classes None member", LabelStore, dict(classes=["a", None]), ConfigError, "not None, NaN"),
    ("classes NaN member", LabelStore, dict(classes=["a", float("nan")]), ConfigError, "not None, NaN"),
    ("classes tuple member", LabelStore, dict(classes=["a", ("b",)]), ConfigError, "or tuple"),
    # ---- add_frame
    ("add_frame None", lambda **k: LabelStore(["a", "b"]).add_frame(**k), dict(labels=None, kind="annotator"), DataError, "labels must be a DataFrame"),
    ("add_frame all missing", lambda **k: LabelStore(["a", "b"]).add_frame(**k), dict(labels=ANN.iloc[:0], kind="annotator"), DataError, "labels has no label to add"),
    ("add_frame duplicate columns", lambda **k: LabelStore(["a", "b"]).add_frame(**k), dict(labels=pd.concat([ANN, ANN], axis=1), kind="annotator"), DataError, "duplicate source columns"),
    ("add_frame versions missing", lambda **k: LabelStore(["a", "b"]).add_frame(**k), dict(labels=ANN, kind="annotator", versions={"u": "1"}), DataError, "versions must name every column of labels: missing \\['v'\\]"),
    ("add_frame versions unknown", lambda **k: LabelStore(["a", "b"]).add_frame(**k), dict(labels=ANN, kind="annotator", versions={"u": "1", "v": "1", "w": "1"}), DataError, "unknown \\['w'\\]"),
    ("add_frame bad label", lambda **k: LabelStore(["a", "b"]).add_frame(**k), dict(labels=ANN.assign(v=["a", "a", "zz", "b"]), kind="annotator"), DataError, "label 'zz'"),
    ("add_frame kind", lambda **k: LabelStore(["a", "b"]).add_frame(**k), dict(labels=ANN, kind="bot"), DataError, "kind must be one of"),
    # ---- queries
    ("record str", lambda **k: _store().record(**k), dict(record_id="3"), DataError, "record_id must be an int, got str"),
    ("record bool", lambda **k: _store().record(**k), dict(record_id=True), DataError, "record_id must be an int"),
    ("record float", lambda **k: _store().record(**k), dict(record_id=1.0), DataError, "record_id must be an int"),
    ("record missing", lambda **k: _store().record(**k), dict(record_id=99), DataError, "no record 99"),
    ("history None", lambda **k: _store().history(**k), dict(item_id=None), DataError, "item_id must be a str or int id"),
    ("current unknown", lambda **k: _store().current(**k), dict(item_id="zz"), DataError, "no labels for item 'zz'"),
    ("trace float", lambda **k: _store().trace(**k), dict(item_id=2.0), DataError, "item_id must be a str or int id, got float"),
    ("affected_by None", lambda **k: _store().affected_by(**k), dict(source=None), DataError, "source must be a non-empty name, got None"),
    ("affected_by version float", lambda **k: _store().affected_by(**k), dict(source="u", version=1.5), DataError, "version must be"),
    ("affected_by unknown", lambda **k: _store().affected_by(**k), dict(source="zz"), DataError, "no record comes from source 'zz'"),
    # ---- save / load / transaction arguments
    ("save path None", lambda **k: _store().save(**k), dict(path=None), DataError, "path must be a str or os.PathLike, got NoneType"),
    ("save path empty", lambda **k: _store().save(**k), dict(path=""), DataError, "path must be a non-empty file path"),
    ("save timeout str", lambda **k: _store().save(**k), dict(path="x.json", timeout="1"), ConfigError, "timeout must be a finite number of seconds"),
    ("save timeout negative", lambda **k: _store().save(**k), dict(path="x.json", timeout=-1), ConfigError, "timeout must be"),
    ("save timeout inf", lambda **k: _store().save(**k), dict(path="x.json", timeout=float("inf")), ConfigError, "timeout must be"),
    ("save timeout nan", lambda **k: _store().save(**k), dict(path="x.json", timeout=float("nan")), ConfigError, "timeout must be"),
    ("save overwrite str", lambda **k: _store().save(**k), dict(path="x.json", overwrite="yes"), ConfigError, "overwrite must be True or False"),
    ("load None", LabelStore.load, dict(path=None), DataError, "JSON path must be a str or os.PathLike"),
    # ---- resolve_into
    ("resolve_into store None", L.resolve_into, dict(store=None), DataError, "store must be a LabelStore, got NoneType"),
    ("resolve_into kinds str", lambda **k: L.resolve_into(_store(), **k), dict(kinds="annotator"), ConfigError, "kinds must be a list of names, got 'annotator'"),
    ("resolve_into kinds unknown", lambda **k: L.resolve_into(_store(), **k), dict(kinds=["annotater"]), ConfigError, "kinds must name source kinds"),
    ("resolve_into kinds empty", lambda **k: L.resolve_into(_store(), **k), dict(kinds=[]), ConfigError, "kinds must name source kinds"),
    ("resolve_into exclude str", lambda **k: L.resolve_into(_store(), **k), dict(exclude="u"), ConfigError, "exclude must be a list of names"),
    ("resolve_into exclude 0-d", lambda **k: L.resolve_into(_store(), **k), dict(exclude=np.array("u")), ConfigError, "exclude must be a list"),
    ("resolve_into version None", lambda **k: L.resolve_into(_store(), **k), dict(version=None), DataError, "version must be"),
    ("resolve_into nothing", lambda **k: L.resolve_into(_store(), **k), dict(kinds=["gold"]), DataError, "no records of kind \\['gold'\\]"),
    ("resolve_into rule", lambda **k: L.resolve_into(_store(), **k), dict(rule="vote"), ConfigError, "rule must be one of"),
    # ---- simulate_annotators
    ("sim noise str", L.simulate_annotators, dict(y_true=GOLD, noise="x"), ConfigError, "noise must be a dict of annotator -> error rate, got str"),
    ("sim noise float", L.simulate_annotators, dict(y_true=GOLD, noise=0.1), ConfigError, "noise must be a dict"),
    ("sim noise empty", L.simulate_annotators, dict(y_true=GOLD, noise={}), ConfigError, "noise must name at least one annotator"),
    ("sim noise nan", L.simulate_annotators, dict(y_true=GOLD, noise={"x": float("nan")}), ConfigError, "noise rate for 'x', class 'a' must be in \\[0, 1\\], got nan"),
    ("sim noise bool", L.simulate_annotators, dict(y_true=GOLD, noise={"x": True}), ConfigError, "must be in \\[0, 1\\], got True"),
    ("sim noise > 1", L.simulate_annotators, dict(y_true=GOLD, noise={"x": 1.5}), ConfigError, "must be in \\[0, 1\\]"),
    ("sim noise unknown class", L.simulate_annotators, dict(y_true=GOLD, noise={"x": {"zz": 0.1}}), ConfigError, "noise for 'x' names class 'zz'"),
    ("sim coverage bool", L.simulate_annotators, dict(y_true=GOLD, noise={"x": 0.1}, coverage=True), ConfigError, "coverage for 'x' must be in \\(0, 1\\], got True"),
    ("sim coverage 0", L.simulate_annotators, dict(y_true=GOLD, noise={"x": 0.1}, coverage=0), ConfigError, "coverage for 'x'"),
    ("sim coverage nan", L.simulate_annotators, dict(y_true=GOLD, noise={"x": 0.1}, coverage=float("nan")), ConfigError, "coverage for 'x'"),
    ("sim coverage unknown", L.simulate_annotators, dict(y_true=GOLD, noise={"x": 0.1}, coverage={"y": 0.5}), ConfigError, "coverage names annotator\\(s\\) \\['y'\\]"),
    ("sim classes str", L.simulate_annotators, dict(y_true=GOLD, noise={"x": 0.1}, classes="ab"), DataError, "classes must be a list of labels, got str"),
    ("sim classes int", L.simulate_annotators, dict(y_true=GOLD, noise={"x": 0.1}, classes=2), DataError, "classes must be a list of labels, got int"),
    ("sim classes one", L.simulate_annotators, dict(y_true=GOLD, noise={"x": 0.1}, classes=["a"]), ConfigError, "need at least two distinct classes"),
    ("sim classes duplicate", L.simulate_annotators, dict(y_true=GOLD, noise={"x": 0.1}, classes=["a", "a", "b"]), ConfigError, "at least two distinct classes"),
    ("sim y outside classes", L.simulate_annotators, dict(y_true=GOLD, noise={"x": 0.1}, classes=["a", "c"]), DataError, "y_true has labels \\['b'\\] outside classes"),
    ("sim y None", L.simulate_annotators, dict(y_true=None, noise={"x": 0.1}), DataError, "y_true must be a non-empty pandas Series"),
    ("sim y empty", L.simulate_annotators, dict(y_true=GOLD.iloc[:0], noise={"x": 0.1}), DataError, "y_true must be a non-empty"),
    ("sim y unhashable", L.simulate_annotators, dict(y_true=pd.Series([["a"], ["b"]]), noise={"x": 0.1}), DataError, "must hold hashable labels"),
    ("sim random_state str", L.simulate_annotators, dict(y_true=GOLD, noise={"x": 0.1}, random_state="x"), ConfigError, "random_state must be None or a non-negative integer, got 'x'"),
    ("sim random_state bool", L.simulate_annotators, dict(y_true=GOLD, noise={"x": 0.1}, random_state=True), ConfigError, "random_state must be"),
    ("sim random_state -1", L.simulate_annotators, dict(y_true=GOLD, noise={"x": 0.1}, random_state=-1), ConfigError, "random_state must be"),
    # ---- agreement
    ("cohen a None", L.cohen_kappa, dict(a=None, b=ANN["v"]), DataError, "a must be a list of labels, got NoneType"),
    ("cohen b str", L.cohen_kappa, dict(a=ANN["u"], b="abab"), DataError, "b must be a list of labels, got str"),
    ("cohen b 2-d", L.cohen_kappa, dict(a=ANN["u"], b=np.ones((4, 2))), DataError, "b must be a list of labels"),
    ("cohen lengths", L.cohen_kappa, dict(a=["a", "b"], b=["a"]), DataError, "a has 2 labels but b has 1"),
    ("cohen no overlap", L.cohen_kappa, dict(a=["a", None], b=[None, "b"]), DataError, "no item labeled by both"),
    ("cohen unhashable", L.cohen_kappa, dict(a=[["a"], ["b"]], b=["a", "b"]), DataError, "must hold hashable labels"),
    ("pairwise None", L.pairwise_kappa, dict(labels=None), DataError, "labels must be a DataFrame of items × annotators, got NoneType"),
    ("pairwise one column", L.pairwise_kappa, dict(labels=ANN[["u"]]), DataError, "at least two annotator columns"),
    ("pairwise empty", L.pairwise_kappa, dict(labels=pd.DataFrame()), DataError, "at least two annotator columns"),
    ("pairwise duplicate columns", L.pairwise_kappa, dict(labels=pd.concat([ANN, ANN], axis=1)), DataError, "duplicate annotator columns"),
    ("rating None", L.rating_table, dict(labels=None), DataError, "labels must be a DataFrame"),
    ("rating empty", L.rating_table, dict(labels=pd.DataFrame()), DataError, "labels has no labels at all"),
    ("rating classes miss labels", L.rating_table, dict(labels=ANN, classes=["a"]), DataError, "labels has labels \\['b'\\] outside classes \\['a'\\]"),
    ("rating classes str", L.rating_table, dict(labels=ANN, classes="ab"), DataError, "classes must be a list of labels, got str"),
    ("rating classes int", L.rating_table, dict(labels=ANN, classes=3), DataError, "classes must be a list of labels"),
    ("fleiss strings", L.fleiss_kappa, dict(table=[["1", "1"], ["2", "0"]]), DataError, "table must hold counts \\(numbers\\), got dtype <U1"),
    ("fleiss dict", L.fleiss_kappa, dict(table={}), DataError, "table must hold counts"),
    ("fleiss ragged", L.fleiss_kappa, dict(table=[[1, 1], [2]]), DataError, "table must be items × classes counts"),
    ("fleiss nan", L.fleiss_kappa, dict(table=[[1, np.nan], [2, 0]]), DataError, "whole numbers \\(no NaN"),
    ("fleiss fractions", L.fleiss_kappa, dict(table=[[1.5, 0.5], [2, 0]]), DataError, "whole numbers"),
    ("fleiss one class", L.fleiss_kappa, dict(table=[[3], [3]]), DataError, "at least 2 classes"),
    ("fleiss empty", L.fleiss_kappa, dict(table=[]), DataError, "table must be items × classes"),
    ("fleiss None", L.fleiss_kappa, dict(table=None), DataError, "table must hold counts"),
    ("fleiss negative", L.fleiss_kappa, dict(table=[[3, -1], [1, 1]]), DataError, "non-negative"),
    ("fleiss unequal", L.fleiss_kappa, dict(table=[[1, 1], [3, 0]]), DataError, "same number of ratings"),
    ("fleiss one rating", L.fleiss_kappa, dict(table=[[1, 0], [0, 1]]), DataError, "at least 2 ratings"),
    # ---- accuracy and resolution
    ("acc labels None", L.annotator_accuracy, dict(labels=None, gold=GOLD), DataError, "labels must be a DataFrame"),
    ("acc gold list", L.annotator_accuracy, dict(labels=ANN, gold=["a"]), DataError, "gold must be a pandas Series, got list|gold must be a pandas Series of labels"),
    ("acc smoothing None", L.annotator_accuracy, dict(labels=ANN, gold=GOLD, smoothing=None), ConfigError, "smoothing must be a finite number >= 0, got None"),
    ("acc smoothing negative", L.annotator_accuracy, dict(labels=ANN, gold=GOLD, smoothing=-1), ConfigError, "smoothing must be"),
    ("acc smoothing nan", L.annotator_accuracy, dict(labels=ANN, gold=GOLD, smoothing=float("nan")), ConfigError, "smoothing must be"),
    ("acc smoothing bool", L.annotator_accuracy, dict(labels=ANN, gold=GOLD, smoothing=True), ConfigError, "smoothing must be"),
    ("acc no overlap", L.annotator_accuracy, dict(labels=ANN, gold=pd.Series(["a"], index=["zz"])), DataError, "gold shares no item ids"),
    ("acc zero smoothing unseen", L.annotator_accuracy, dict(labels=ANN.assign(w=[None, None, None, "a"]), gold=GOLD.iloc[:3], smoothing=0), DataError, "annotator 'w' labeled none of the gold items"),
    ("acc duplicate gold ids", L.annotator_accuracy, dict(labels=ANN, gold=pd.Series(["a", "b"], index=["p", "p"])), DataError, "gold has duplicate item ids"),
    ("resolve rule frame", L.resolve_labels, dict(labels=ANN, rule=pd.DataFrame()), ConfigError, "rule must be one of"),
    ("resolve ties None", L.resolve_labels, dict(labels=ANN, ties=None), ConfigError, "ties must be 'abstain' or 'first'"),
    ("resolve labels None", L.resolve_labels, dict(labels=None), DataError, "labels must be a DataFrame"),
    ("resolve labels empty", L.resolve_labels, dict(labels=ANN.iloc[:, :0]), DataError, "labels must be a DataFrame with one column per annotator"),
    ("resolve all missing", L.resolve_labels, dict(labels=ANN.iloc[:0]), DataError, "labels has no labels at all"),
    ("resolve weights list", L.resolve_labels, dict(labels=ANN, rule="weighted", weights=[1, 2]), ConfigError, "weights must be a dict or Series"),
    ("resolve weights float", L.resolve_labels, dict(labels=ANN, rule="weighted", weights=2.5), ConfigError, "weights must be a dict or Series"),
    ("resolve weights nan", L.resolve_labels, dict(labels=ANN, rule="weighted", weights={"u": np.nan, "v": 1.0}), ConfigError, "weights must be finite numbers"),
    ("resolve weights str", L.resolve_labels, dict(labels=ANN, rule="weighted", weights={"u": "1", "v": 1.0}), ConfigError, "weights must be finite numbers"),
    ("resolve weights lack", L.resolve_labels, dict(labels=ANN, rule="weighted", weights={"u": 1.0}), ConfigError, "weights lack annotator\\(s\\) \\['v'\\]"),
    ("resolve expert frame", L.resolve_labels, dict(labels=ANN, rule="expert", expert=pd.DataFrame()), ConfigError, "expert must name one of the annotators"),
    ("resolve expert missing", L.resolve_labels, dict(labels=ANN, rule="expert", expert="zz"), ConfigError, "expert must name one of"),
    ("aw None", L.accuracy_weights, dict(accuracy=None), DataError, "accuracy must be a non-empty Series"),
    ("aw empty", L.accuracy_weights, dict(accuracy=pd.Series([], dtype=float)), DataError, "accuracy must be a non-empty Series"),
    ("aw list", L.accuracy_weights, dict(accuracy=[0.7]), DataError, "accuracy must be a non-empty Series"),
    ("aw nan", L.accuracy_weights, dict(accuracy=pd.Series({"u": np.nan})), DataError, "accuracy of \\['u'\\] is missing"),
    ("aw strings", L.accuracy_weights, dict(accuracy=pd.Series({"u": "x"})), DataError, "accuracy must hold numbers"),
    ("aw 1", L.accuracy_weights, dict(accuracy=pd.Series({"u": 1.0})), DataError, "strictly between 0 and 1"),
]


@pytest.mark.parametrize("fn, kwargs, exc, fragment", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_named(fn, kwargs, exc, fragment, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(exc, match=fragment) as info:
        fn(**kwargs)
    assert isinstance(info.value, MlsysError)


def test_every_public_entry_point_is_swept():
    methods = {"add", "add_frame", "record", "history", "current", "trace", "affected_by", "save", "load", "transaction",
               "labels", "to_frame"}
    assert methods == {m for m in vars(LabelStore) if not m.startswith("_")}
    names = {getattr(c[1], "__name__", "") for c in CASES}
    public = {n for n in L.__all__ if callable(getattr(L, n))} - {"LabelRecord", "LabelStoreConflictError", "LabelStore"}
    assert public <= names, sorted(public - names)


def test_add_frame_is_all_or_nothing():
    s = LabelStore(["a", "b"])
    with pytest.raises(DataError, match="label 'zz'"):
        s.add_frame(ANN.assign(v=["a", "a", "zz", "b"]), "annotator")
    assert len(s) == 0  # before: the cells before the bad one had been added


def test_good_times_and_numeric_labels_are_accepted():
    s = LabelStore([0, 1])
    s.add("i", 1, "annotator", "x", created_at="2013-01-01T10:00:00Z")
    s.add("i", np.int64(0), "annotator", "x", created_at=datetime(2013, 1, 1, tzinfo=timezone.utc))
    s.add("i", 1.0, "annotator", "y", created_at=pd.Timestamp("2013-01-01 10:00", tz="America/New_York"))
    assert [r.label for r in s._records] == [1, 0, 1] and all(type(r.label) is int for r in s._records)
    assert s.to_frame()["created_at"].tolist()[0] == "2013-01-01T10:00:00Z"
    with pytest.raises(DataError, match="not one of \\[0, 1\\]"):
        s.add("i", True, "annotator", "x")  # True is not the class 1
    with pytest.raises(DataError, match="not one of"):
        s.add("i", "1", "annotator", "x")
    with pytest.raises(DataError, match="not one of"):
        s.add("i", 1.5, "annotator", "x")


def test_resolve_labels_and_resolve_into_with_integer_classes():
    # votes were compared with str classes, so 0/1 labels got no vote at all and every item came back unresolved
    ann = pd.DataFrame({"u": [0, 1, 1], "v": [0, 1, 0], "w": [0, 0, 1]}, index=list("xyz"))
    res = L.resolve_labels(ann)
    assert res["label"].tolist() == ["0", "1", "1"] and (res["votes"] == 3).all()
    s = LabelStore([0, 1])
    s.add_frame(ann, "annotator")
    L.resolve_into(s)
    assert s.labels().to_dict() == {"x": 0, "y": 1, "z": 1}


# ---------------------------------------------------------------- crafted store files


def _write_store(path: Path, records, classes=("a", "b"), digest=None):
    body = json.dumps(records, sort_keys=True, default=str).encode()
    data = {"format": "mlsys.labelstore/1", "classes": list(classes), "records": records,
            "sha256": digest or hashlib.sha256(body).hexdigest()}  # an attacker can recompute the checksum
    path.write_text(json.dumps(data))


def _rec(i, **kw):
    r = {"record_id": i, "item_id": "p", "label": "a", "kind": "annotator", "source": "u", "version": "1",
         "created_at": "2013-01-01T00:00:00+00:00", "parents": [], "note": ""}
    return {**r, **kw}


@pytest.mark.parametrize("records, classes, fragment", [
    ([_rec(0, created_at="not-a-time")], ("a", "b"), "record 0 is invalid: created_at='not-a-time'"),
    ([_rec(0, created_at="2013-01-01T00:00:00")], ("a", "b"), "record 0 is invalid: .*has no time zone"),
    ([_rec(0, label="zz")], ("a", "b"), "record 0 is invalid: label 'zz'"),
    ([_rec(0, parents=[5])], ("a", "b"), "record 0 is invalid: parent record 5 does not exist"),
    ([_rec(0, parents="0")], ("a", "b"), "record 0 is invalid: parents must be a list"),
    ([_rec(0), _rec(1, parents=[1])], ("a", "b"), "record 1 is invalid: parent record 1 does not exist"),
    ([_rec(0, kind="oracle")], ("a", "b"), "record 0 is invalid: kind must be"),
    ([_rec(0, item_id=None)], ("a", "b"), "record 0 is invalid: item_id must be"),
    ([_rec(0, note=None)], ("a", "b"), "record 0 is invalid: note must be a str"),
    ([_rec(3)], ("a", "b"), "record ids are not consecutive at 3"),
    ([{k: v for k, v in _rec(0).items() if k != "note"}], ("a", "b"), "record 0 does not have the fields"),
    ([_rec(0, extra=1)], ("a", "b"), "record 0 does not have the fields"),
    (["not a record"], ("a", "b"), "record 0 does not have the fields"),
    ([_rec(0)], ("a",), "classes must be at least two distinct labels"),
])
def test_crafted_store_files_are_refused(tmp_path, records, classes, fragment):
    p = tmp_path / "s.json"
    _write_store(p, records, classes)
    with pytest.raises(IntegrityError, match=fragment):
        LabelStore.load(p)


@pytest.mark.parametrize("data, exc, fragment", [
    ({"format": "mlsys.labelstore/1", "classes": ["a", "b"]}, IntegrityError, "needs a list of records"),
    ({"format": "mlsys.labelstore/1", "records": []}, IntegrityError, "needs a list of records and its classes"),
    ({"format": "mlsys.labelstore/1", "classes": ["a", "b"], "records": {}}, IntegrityError, "needs a list of records"),
    ({"format": "mlsys.labelstore/1", "classes": ["a", "b"], "records": [], "sha256": "0" * 64}, IntegrityError, "checksum"),
    ([1, 2], DataError, "is not a label store file"),
])
def test_malformed_store_files_are_refused(tmp_path, data, exc, fragment):
    p = tmp_path / "s.json"
    p.write_text(json.dumps(data))
    with pytest.raises(exc, match=fragment):
        LabelStore.load(p)


def test_store_file_that_is_not_json_or_is_a_folder(tmp_path):
    (tmp_path / "bin.json").write_bytes(b"\xff\x00\x01")
    with pytest.raises(DataError, match="not UTF-8"):
        LabelStore.load(tmp_path / "bin.json")
    with pytest.raises(DataError, match="is a directory"):
        LabelStore.load(tmp_path)
    with pytest.raises(DataError, match="is a directory"):
        _store().save(tmp_path)


# ---------------------------------------------------------------- two writers


def test_a_second_writer_cannot_silently_overwrite_the_first(tmp_path):
    p = tmp_path / "s.json"
    _store().save(p)
    one, two = LabelStore.load(p), LabelStore.load(p)
    one.add("p", "b", "annotator", "w1")
    one.save(p)
    two.add("p", "a", "annotator", "w2")
    with pytest.raises(LabelStoreConflictError, match="they differ from record 7 on") as e:
        two.save(p)  # before: saved, and w1's record was gone
    assert isinstance(e.value, IntegrityError)
    assert LabelStore.load(p).current("p").source == "w1"  # nothing was written
    again = LabelStore.load(p)
    again.add("p", "a", "annotator", "w2")
    again.save(p)
    assert [r.source for r in LabelStore.load(p)._records[-2:]] == ["w1", "w2"]
    LabelStore(["a", "b"]).save(p, overwrite=True)  # an explicit replace is still possible
    assert len(LabelStore.load(p)) == 0


def test_save_refuses_to_replace_a_store_with_other_classes_or_a_foreign_file(tmp_path):
    p = tmp_path / "s.json"
    LabelStore(["x", "y"]).save(p)
    with pytest.raises(LabelStoreConflictError, match="classes \\['x', 'y'\\]"):
        _store().save(p)
    p.write_text('{"other": 1}')
    with pytest.raises(DataError, match="not a label store file"):
        _store().save(p)
    assert json.loads(p.read_text()) == {"other": 1}


def test_a_held_lock_is_a_busy_error(tmp_path):
    from filelock import FileLock
    p = tmp_path / "s.json"
    with FileLock(str(p) + ".lock"):
        with pytest.raises(BusyError, match="stayed locked by another writer for 0.2 s"):
            _store().save(p, timeout=0.2)
        with pytest.raises(BusyError, match="stayed locked"):
            with LabelStore.transaction(p, ["a", "b"], timeout=0.2):
                pass
    assert not p.exists()


def test_transaction_saves_on_success_only(tmp_path):
    p = tmp_path / "s.json"
    with pytest.raises(DataError, match="does not exist; give classes"):
        with LabelStore.transaction(p):
            pass
    with LabelStore.transaction(p, ["a", "b"]) as s:
        s.add("p", "a", "annotator", "u")
    with pytest.raises(RuntimeError):
        with LabelStore.transaction(p) as s:
            s.add("p", "b", "annotator", "u")
            raise RuntimeError("the labeling job failed")
    assert len(LabelStore.load(p)) == 1  # the failed block wrote nothing
    with pytest.raises(ConfigError, match="holds classes"):
        with LabelStore.transaction(p, ["x", "y"]):
            pass


WORKER = r"""
import json, sys
import mlsys.labeling.lineage as L
path, name, n, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
Conflict = getattr(L, "LabelStoreConflictError", ())
sys.stdin.readline()  # start together
saved = conflicts = 0
for i in range(n):
    if mode == "transaction":
        with L.LabelStore.transaction(path, ["ham", "spam"], timeout=300) as s:
            s.add(f"{name}-{i}", "ham", "annotator", name)
        saved += 1
        continue
    while True:  # load, add, save; a conflict means: reload and add again
        s = L.LabelStore.load(path)
        s.add(f"{name}-{i}", "spam", "annotator", name)
        try:
            s.save(path) if not hasattr(L, "LabelStoreConflictError") else s.save(path, timeout=300)
        except Conflict:
            conflicts += 1
            continue
        saved += 1
        break
print(json.dumps({"saved": saved, "conflicts": conflicts}))
"""


def test_several_processes_saving_one_store_lose_no_label(tmp_path):
    p = tmp_path / "labels.json"
    LabelStore(["ham", "spam"]).save(p)
    n = 12
    plan = [("naive0", "naive"), ("naive1", "naive"), ("naive2", "naive"), ("tx0", "transaction"), ("tx1", "transaction")]
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(p), name, str(n), mode], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for name, mode in plan]
    for proc in procs:  # every worker has imported mlsys and waits on stdin: start them together
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    store = LabelStore.load(p)
    assert sum(r["saved"] for r in results) == len(plan) * n
    assert len(store) == len(plan) * n  # before the fix: some saves overwrote others' labels
    items = sorted(r.item_id for r in store._records)
    assert items == sorted(f"{name}-{i}" for name, _ in plan for i in range(n))
    assert [r.record_id for r in store._records] == list(range(len(store)))
