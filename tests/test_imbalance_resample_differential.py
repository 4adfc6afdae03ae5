"""imbalance.resample against imbalanced-learn on thousands of generated cases.

Each case draws classes (2–4, tied sizes, classes smaller than the neighbourhood, labels that are ints out of
order or strings), features (1–17 columns: the tree and the brute-force neighbour search; values on a small
grid so that distances tie and rows repeat, float64, float32 or int) and a sampling strategy (named, float,
dict, list, also invalid ones). Where imbalanced-learn returns, mlsys must return the very same `X`, `y` and
`sample_indices_` (rows *and* order) and warn exactly when imbalanced-learn warns; where imbalanced-learn
raises, mlsys must raise a named mlsys error. SMOTE is checked the same way (it draws the same random numbers);
its one deliberate difference, integer `X`, is tested on its own.
"""
import warnings
import zlib

import numpy as np
import pytest
from scipy import sparse

from mlsys.core import MlsysError
from mlsys.imbalance import resample as R

imblearn = pytest.importorskip("imblearn")
from imblearn.over_sampling import SMOTE as ImbSMOTE  # noqa: E402
from imblearn.over_sampling import RandomOverSampler as ImbROS  # noqa: E402
from imblearn.under_sampling import NearMiss as ImbNearMiss  # noqa: E402
from imblearn.under_sampling import RandomUnderSampler as ImbRUS  # noqa: E402
from imblearn.under_sampling import TomekLinks as ImbTomek  # noqa: E402

NAMED = ["auto", "all", "majority", "minority", "not minority", "not majority"]


def make_case(rng: np.random.Generator, max_rows: int = 40) -> tuple[np.ndarray, np.ndarray]:
    "A small labelled data set with ties everywhere: class sizes, distances, duplicate rows."
    k = int(rng.choice([2, 2, 3, 4]))
    sizes = rng.integers(1, max_rows // k + 1, size=k)
    if rng.random() < 0.5:  # tie the two smallest (or any two) classes
        i, j = rng.choice(k, 2, replace=False)
        sizes[j] = sizes[i]
    names = rng.permutation(k) * 3 + 1 if rng.random() < 0.7 else np.array(list("dbca"))[:k]
    y = rng.permutation(np.repeat(names, sizes))
    d = int(rng.choice([1, 2, 3, 5, 17]))
    kind = rng.choice(["grid", "grid", "normal", "dup"])
    if kind == "grid":
        X = rng.integers(0, 3, size=(len(y), d)).astype(float)
    else:
        X = rng.normal(size=(len(y), d))
        if kind == "dup":
            X[rng.integers(0, len(y), len(y) // 3)] = X[rng.integers(0, len(y), len(y) // 3)]
    dtype = rng.choice(["float64", "float32", "int64"] if kind == "grid" else ["float64", "float32"])
    return X.astype(dtype), y


def make_strategy(rng: np.random.Generator, y: np.ndarray, kind: str):
    "A sampling strategy for `kind` ('over', 'under', 'clean'), valid or not."
    classes, counts = np.unique(y, return_counts=True)
    r = rng.random()
    if r < 0.45:
        return str(rng.choice(NAMED))
    if r < 0.55:
        return float(rng.choice([0.3, 0.5, 0.8, 1.0, 1.5]))
    if kind == "clean":
        return [c.item() for c in rng.choice(classes, rng.integers(1, len(classes) + 1), replace=False)]
    chosen = rng.choice(len(classes), rng.integers(1, len(classes) + 1), replace=False)
    if kind == "over":
        out = {classes[i].item(): int(counts[i] + rng.integers(-1, 20)) for i in chosen}
    else:
        out = {classes[i].item(): int(rng.integers(0, counts[i] + 2)) for i in chosen}
    if rng.random() < 0.05:
        out["zz" if classes.dtype.kind == "U" else 999] = 3  # a class that is not in y
    return out


def outcome(sampler, X, y) -> tuple[object, Exception | None, int]:
    "(X_res, y_res, sample_indices_) or None, the exception, and the number of UserWarnings."
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        try:
            Xr, yr = sampler.fit_resample(X, y)
            out, err = (Xr, yr, getattr(sampler, "sample_indices_", None)), None
        except Exception as e:  # noqa: BLE001 - compared below
            out, err = None, e
    return out, err, sum(issubclass(x.category, UserWarning) for x in w)


def compare(ours, ref, X, y) -> tuple[str | None, bool]:
    "(None when mlsys behaves as imbalanced-learn on (X, y), else what differs; whether imbalanced-learn returned)."
    o, oe, ow = outcome(ours, X, y)
    r, re_, rw = outcome(ref, X, y)
    if re_ is not None:
        if oe is None:
            return f"imblearn raised {re_!r}, mlsys returned", False
        return (None if isinstance(oe, MlsysError) else f"mlsys raised an unnamed {oe!r}"), False
    if oe is not None:
        return f"mlsys raised {oe!r}, imblearn returned", True
    if (ow > 0) != (rw > 0):
        return f"warnings: mlsys {ow}, imblearn {rw}", True
    for name, a, b in zip(("X", "y", "sample_indices_"), o, r):
        if b is None:
            continue
        a, b = (a.toarray(), b.toarray()) if sparse.issparse(a) else (np.asarray(a), np.asarray(b))
        if a.dtype != b.dtype or a.shape != b.shape or not np.array_equal(a, b):
            return f"{name} differs", True
    return None, True


def run_cases(make_pair, kind: str, n: int, seed: int, max_rows: int = 40, float_only: bool = False,
              to_sparse: bool = False) -> dict:
    "Compare `n` generated cases; return {'cases', 'mismatches', 'examples', 'returned'}."
    rng = np.random.default_rng(seed)
    bad, returned = [], 0
    for i in range(n):
        X, y = make_case(rng, max_rows)
        if float_only and X.dtype.kind == "i":
            X = X.astype(np.float64)
        if to_sparse:
            X = sparse.csr_matrix(X)
        strategy = make_strategy(rng, y, kind)
        ours, ref = make_pair(rng, strategy)
        why, ok = compare(ours, ref, X, y)
        returned += ok
        if why:
            bad.append((i, why, ours, y.tolist()))
    return {"cases": n, "mismatches": len(bad), "examples": bad[:5], "returned": returned}


def nearmiss_pair(rng, strategy, module=R):
    v, k, k3 = int(rng.integers(1, 4)), int(rng.integers(1, 7)), int(rng.integers(1, 7))
    return (module.NearMiss(sampling_strategy=strategy, version=v, n_neighbors=k, n_neighbors_ver3=k3),
            ImbNearMiss(sampling_strategy=strategy, version=v, n_neighbors=k, n_neighbors_ver3=k3))


def tomek_pair(rng, strategy, module=R):
    return module.TomekLinks(sampling_strategy=strategy), ImbTomek(sampling_strategy=strategy)


def smote_pair(rng, strategy, module=R):
    k, seed = int(rng.integers(1, 6)), int(rng.integers(0, 1000))
    return module.SMOTE(sampling_strategy=strategy, k_neighbors=k, random_state=seed), \
        ImbSMOTE(sampling_strategy=strategy, k_neighbors=k, random_state=seed)


def ros_pair(rng, strategy, module=R):
    seed = int(rng.integers(0, 1000))
    return module.RandomOverSampler(sampling_strategy=strategy, random_state=seed), \
        ImbROS(sampling_strategy=strategy, random_state=seed)


def rus_pair(rng, strategy, module=R):
    seed = int(rng.integers(0, 1000))
    return module.RandomUnderSampler(sampling_strategy=strategy, random_state=seed), \
        ImbRUS(sampling_strategy=strategy, random_state=seed)


CASES = [  # name, pair maker, kind, cases, options
    ("NearMiss", nearmiss_pair, "under", 3000, {}),
    ("NearMiss-sparse", nearmiss_pair, "under", 200, {"to_sparse": True}),
    ("NearMiss-large", nearmiss_pair, "under", 20, {"max_rows": 1500}),
    ("TomekLinks", tomek_pair, "clean", 1000, {}),
    ("TomekLinks-sparse", tomek_pair, "clean", 200, {"to_sparse": True}),
    ("TomekLinks-large", tomek_pair, "clean", 30, {"max_rows": 2500}),  # several chunks of the brute-force search
    ("SMOTE", smote_pair, "over", 1000, {"float_only": True}),
    ("SMOTE-sparse", smote_pair, "over", 200, {"float_only": True, "to_sparse": True}),
    ("RandomOverSampler", ros_pair, "over", 500, {}),
    ("RandomUnderSampler", rus_pair, "under", 500, {}),
]


@pytest.mark.parametrize("name, pair, kind, n, options", CASES, ids=[c[0] for c in CASES])
def test_identical_to_imblearn(name, pair, kind, n, options):
    res = run_cases(pair, kind, n, seed=zlib.crc32(name.encode()), **options)
    assert res["mismatches"] == 0, res["examples"]
    assert res["returned"] > n // 4  # most cases really resample (not only errors on both sides)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("seed", [0, 1])
def test_tomek_links_brute_force_with_duplicate_rows_equals_imblearn(seed, threads):
    "20 features (brute-force search) and repeated rows: the subset query used to pick other tied neighbours."
    from threadpoolctl import threadpool_limits
    rng = np.random.default_rng(seed)
    n = 2596
    X = rng.normal(size=(n, 20))
    X[rng.integers(0, n, n // 3)] = X[rng.integers(0, n, n // 3)]
    y = (rng.random(n) < 0.5).astype(int)
    with threadpool_limits(threads):
        ours, ref = R.TomekLinks(), ImbTomek()
        ours.fit_resample(X, y)
        ref.fit_resample(X, y)
    np.testing.assert_array_equal(ours.sample_indices_, ref.sample_indices_)


def test_tomek_links_fast_path_queries_a_subset(monkeypatch):
    "Without ties the brute-force path still queries only the rows outside the majority and their partners."
    from sklearn.neighbors import NearestNeighbors
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(3000, 20)), (rng.random(3000) < 0.1).astype(int)
    sizes, real = [], NearestNeighbors.kneighbors
    monkeypatch.setattr(NearestNeighbors, "kneighbors", lambda self, Q=None, *a, **k: sizes.append(len(Q)) or real(self, Q, *a, **k))
    ours = R.TomekLinks()
    ours.fit_resample(X, y)
    assert sum(sizes) < 0.25 * len(y)
    monkeypatch.setattr(NearestNeighbors, "kneighbors", real)
    ref = ImbTomek()
    ref.fit_resample(X, y)
    np.testing.assert_array_equal(ours.sample_indices_, ref.sample_indices_)
