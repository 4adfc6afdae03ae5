"""The estimator contract across the whole package: every public scikit-learn estimator of mlsys is found by walking
the package, must have an instance here, and passes scikit-learn's `parametrize_with_checks` suite.

- Discovery: every public class of an `mlsys.*` module that subclasses `sklearn.base.BaseEstimator` and is not
  abstract. A module whose optional extra is missing (it raises `MissingExtraError` on import) is left out; any other
  import error fails the suite.
- Coverage: a discovered estimator with no instance below fails `test_every_estimator_has_an_instance`, so a new
  estimator cannot be forgotten.
- Checks: scikit-learn's own suite with small, fast parameters. A check is expected to fail only where scikit-learn
  (or imbalanced-learn) gives the same reason for its own equivalent estimator; such a check must still fail (a
  stale expectation fails the test), and is reported as xfail with that reason.
- Text estimators (input tags `string=True`, `two_d_array=False`, like `CountVectorizer`) get no numeric checks from
  scikit-learn, which skips them; they run scikit-learn's data-free API checks and a text contract here instead.
- The samplers of `mlsys.imbalance.resample` come from that module's own test file (`ESTIMATORS`); estimators in
  modules that need torch are marked `torch`.
- Any other test file may define `ESTIMATORS` and run `parametrize_with_checks(ESTIMATORS, ...)` itself (with the
  expected failures of its reference library); those instances count for coverage here and are not checked twice.
"""
import importlib
import importlib.util
import inspect
import pickle
import pkgutil
import re
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.utils import estimator_checks as sk_checks
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import parametrize_with_checks

import mlsys
from mlsys.augment.text import BertMasker, SynonymLexicon
from mlsys.design import HierarchicalClassifier
from mlsys.core import DataError, MissingExtraError
from mlsys.features.embeddings import FourierFeatures
from mlsys.features.hashing import HashingEncoder
from mlsys.features.importance import UnseenValueFlagger
from mlsys.features.ops import Discretizer, DropMissingColumns, Imputer, LogScaler, RangeScaler, Standardizer
from mlsys.labeling.active import ActiveLearner
from mlsys.labeling.semi import ConsistencyTraining, SelfTraining
from mlsys.pipeline import RouteRateHeuristic


# ---- discovery ----------------------------------------------------------------------------------------------------

def discover_estimators():
    "({'module.Class': class} of every public, concrete BaseEstimator in mlsys, {module: why it was left out})."
    found, left_out = {}, {}
    for info in pkgutil.walk_packages(mlsys.__path__, prefix="mlsys."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue  # private modules (_modidx)
        try:
            module = importlib.import_module(info.name)
        except MissingExtraError as e:  # an optional extra that is not installed: its estimators cannot be built
            left_out[info.name] = str(e)
            continue
        for name, obj in vars(module).items():
            if (inspect.isclass(obj) and obj.__module__ == module.__name__ and not name.startswith("_")
                    and issubclass(obj, BaseEstimator) and not inspect.isabstract(obj)):
                found[f"{module.__name__}.{name}"] = obj
    return found, left_out


DISCOVERED, LEFT_OUT = discover_estimators()


# ---- the instances: small, fast parameters -------------------------------------------------------------------------

ESTIMATORS = [  # checked by scikit-learn's parametrize_with_checks
    DropMissingColumns(),
    Imputer(),
    Imputer(strategy="most_frequent", add_indicator=True),
    RangeScaler(),
    RangeScaler(feature_range=(-2.0, 3.0)),
    Standardizer(),
    LogScaler(),
    Discretizer(),
    Discretizer(n_bins=3, strategy="quantile"),
    HashingEncoder(n_features=64, sparse_output=False),
    HashingEncoder(n_features=32, signed=False, sparse_output=False),
    HashingEncoder(n_features=2**10),
    UnseenValueFlagger(),
    UnseenValueFlagger(tolerance=0.5),
    FourierFeatures(),
    FourierFeatures(n_frequencies=2, period=24.0),
    SelfTraining(LogisticRegression(max_iter=200)),
    ConsistencyTraining(LogisticRegression(max_iter=200), random_state=0),
    ActiveLearner(LogisticRegression(max_iter=200), random_state=0),
    ActiveLearner(LogisticRegression(max_iter=200), strategy="vote_entropy", n_committee=2, random_state=0),
]

TEXT_ESTIMATORS = [  # scikit-learn skips text estimators (as it skips CountVectorizer); the text contract below
    SynonymLexicon(min_count=1, n_components=4, groups=None),
    SynonymLexicon(min_count=1, n_components=4),
    BertMasker(random_state=0),
    BertMasker(mask_prob=0.5, mask_token="", random_state=1),
]

try:  # the samplers' instances live beside their own tests; imbalanced-learn is needed to import that file
    from test_imbalance_resample import ESTIMATORS as RESAMPLE_ESTIMATORS
    RESAMPLE_MISSING = ""
except (ImportError, pytest.skip.Exception) as e:
    RESAMPLE_ESTIMATORS, RESAMPLE_MISSING = [], f"tests/test_imbalance_resample.py could not be imported: {e}"

_TESTS = Path(__file__).parent


def own_suites() -> dict:
    "{test module: its ESTIMATORS} for every other test file that defines ESTIMATORS and runs the checks on them itself."
    suites = {}
    for path in sorted(_TESTS.glob("test_*.py")):
        if path.name in ("test_estimators.py", "test_imbalance_resample.py"):
            continue
        text = path.read_text(encoding="utf-8")
        if not re.search(r"^ESTIMATORS\s*=", text, re.M):
            continue
        found = list(importlib.import_module(path.stem).ESTIMATORS)
        assert not found or "parametrize_with_checks(ESTIMATORS" in text, f"{path.name} defines ESTIMATORS but does not check them"
        suites[path.stem] = found
    return suites


OWN_SUITES = own_suites()  # their checks run in their own files (with their own expected failures), not twice here
OWN_ESTIMATORS = [e for suite in OWN_SUITES.values() for e in suite]

TORCH_ESTIMATORS = []  # estimators defined in modules that import torch
if importlib.util.find_spec("torch") is not None:
    from mlsys.imbalance.losses import BalancedBaggingClassifier
    TORCH_ESTIMATORS = [BalancedBaggingClassifier(n_estimators=3, random_state=0)]


# ---- expected failures, each with the reason the reference library gives ---------------------------------------------

_SELF_TRAINING = {
    # scikit-learn: PER_ESTIMATOR_XFAIL_CHECKS[SelfTrainingClassifier] (sklearn/utils/_test_common/instance_generator.py)
    "check_non_transformer_estimators_n_iter": "n_iter_ can be 0. (scikit-learn's reason for SelfTrainingClassifier)",
    # scikit-learn passes integer labels to SelfTrainingClassifier in this check, by name: "Semisupervised classifiers
    # use -1 as the indicator for an unlabeled sample" (_choose_check_classifiers_labels); ours get string labels,
    # whose "-1" cannot mark unlabeled rows (refused, as SelfTrainingClassifier refuses string y)
    "check_classifiers_classes": "Semisupervised classifiers use -1 as the indicator for an unlabeled sample "
                                 "(scikit-learn exempts SelfTrainingClassifier from string labels by name)",
}
EXPECTED_FAILURES = {SelfTraining: _SELF_TRAINING, ConsistencyTraining: _SELF_TRAINING}


def _expected(estimator) -> dict:
    return EXPECTED_FAILURES.get(type(estimator), {})


def _check_name(check) -> str:
    return getattr(check, "func", check).__name__


def _run(estimator, check):
    "Run one check; an expected failure must still fail (else the expectation is stale), then it is reported as xfail."
    reason = _expected(estimator).get(_check_name(check))
    if reason is None:
        check(estimator)
        return
    with pytest.raises(Exception):  # noqa: B017 - any failure of the check is the expected one
        check(estimator)
    pytest.xfail(reason)


# ---- the tests -----------------------------------------------------------------------------------------------------

def _qualname(cls) -> str:
    return f"{cls.__module__}.{cls.__name__}"


def test_discovery_finds_the_known_estimators():
    "A sanity check of the walk itself: it sees estimators in several subpackages, and no abstract or private class."
    names = set(DISCOVERED)
    assert {"mlsys.features.ops.Standardizer", "mlsys.labeling.semi.SelfTraining", "mlsys.augment.text.BertMasker",
            "mlsys.labeling.active.ActiveLearner"} <= names
    assert not any(inspect.isabstract(c) or c.__name__.startswith("_") for c in DISCOVERED.values())
    assert "mlsys.imbalance.resample.BaseResampler" not in names  # abstract


def test_other_files_suites_are_collected():
    "Estimators whose checks live beside their own tests count for coverage (a file's ESTIMATORS list is picked up)."
    assert {"test_design", "test_modeling_baselines"} <= set(OWN_SUITES)
    assert any(isinstance(e, HierarchicalClassifier) for e in OWN_ESTIMATORS)


# Estimators whose input has a bounded domain that scikit-learn's data checks cannot respect: its checks draw unbounded
# features and it has a tag only for non-negative input (positive_only), none for [0, 1]. They get the data-free API
# checks below, and their contract is tested beside them.
DOMAIN_ESTIMATORS = {  # instance: why the data checks do not apply
    RouteRateHeuristic(column=0): "reads a late rate in [0, 1] and refuses other values (tests/test_pipeline_models.py)",
}

ALL_INSTANCES = (ESTIMATORS + TEXT_ESTIMATORS + RESAMPLE_ESTIMATORS + TORCH_ESTIMATORS + OWN_ESTIMATORS
                 + list(DOMAIN_ESTIMATORS))


def coverage_gaps(discovered, instances, pending=()) -> tuple[list, list]:
    "(discovered estimators with no instance, instances of classes that were not discovered)."
    covered = {_qualname(type(e)) for e in instances}
    return sorted(set(discovered) - covered - set(pending)), sorted(covered - set(discovered))


def test_every_estimator_has_an_instance():
    "Every discovered estimator is in the suite (and the suite holds nothing that discovery does not find)."
    pending = set()
    if RESAMPLE_MISSING:  # only when imbalanced-learn is missing: those samplers cannot be instantiated here
        pending = {n for n in DISCOVERED if n.startswith("mlsys.imbalance.resample.")}
    missing, stale = coverage_gaps(DISCOVERED, ALL_INSTANCES, pending)
    assert not missing, f"estimators with no instance in tests/test_estimators.py: {missing}"
    assert not stale, f"instances of classes that discovery does not find (renamed, private or abstract?): {stale}"
    if pending:
        pytest.skip(f"{len(pending)} sampler(s) not covered: {RESAMPLE_MISSING}")


def test_a_forgotten_estimator_is_caught():
    "The coverage check fails for a new estimator without an instance (here: one added to the discovered set)."
    class Forgotten(BaseEstimator):
        pass
    missing, _ = coverage_gaps({**DISCOVERED, "mlsys.somewhere.Forgotten": Forgotten}, ALL_INSTANCES)
    assert missing == ["mlsys.somewhere.Forgotten"]
    missing, _ = coverage_gaps(DISCOVERED, [e for e in ALL_INSTANCES if not isinstance(e, Standardizer)])
    assert missing == ["mlsys.features.ops.Standardizer"]


def test_text_estimators_are_the_ones_scikit_learn_skips():
    "The split between ESTIMATORS and TEXT_ESTIMATORS follows the tags, as scikit-learn's own runner does."
    for est in ESTIMATORS + RESAMPLE_ESTIMATORS + TORCH_ESTIMATORS + OWN_ESTIMATORS:
        assert get_tags(est).input_tags.two_d_array, type(est).__name__
    for est in TEXT_ESTIMATORS:
        tags = get_tags(est)
        assert tags.input_tags.string and not tags.input_tags.two_d_array, type(est).__name__


@parametrize_with_checks(ESTIMATORS + RESAMPLE_ESTIMATORS)
def test_sklearn_checks(estimator, check):
    _run(estimator, check)


@pytest.mark.torch
@parametrize_with_checks(TORCH_ESTIMATORS)
def test_sklearn_checks_torch_modules(estimator, check):
    _run(estimator, check)


# ---- text estimators: scikit-learn's data-free API checks, then the text contract -----------------------------------

_API_CHECKS = [sk_checks.check_estimator_cloneable, sk_checks.check_estimator_tags_renamed, sk_checks.check_valid_tag_types,
               sk_checks.check_estimator_repr, sk_checks.check_no_attributes_set_in_init,
               sk_checks.check_do_not_raise_errors_in_init_or_set_params, sk_checks.check_mixin_order,
               sk_checks.check_parameters_default_constructible, sk_checks.check_get_params_invariance,
               sk_checks.check_set_params]

_CORPUS = ["free entry to win a prize call now", "are you coming home tonight", "call me when you get home",
           "win cash now reply win", "sorry i will call you later", "you have won a prize claim now"] * 3


def _text_id(est):
    return f"{type(est).__name__}({','.join(f'{k}={v!r}' for k, v in est.get_params().items() if v != type(est)().get_params()[k])})"


def _learned(est) -> dict:
    return {k: v for k, v in vars(est).items() if k.endswith("_") and not k.startswith("_")}


def _output(est, texts):
    "What a fitted text estimator produces: masked texts, or each word's synonyms."
    if isinstance(est, BertMasker):
        return est.transform(texts)
    return [est.synonyms(w) for t in texts for w in t.split()]


@pytest.mark.parametrize("estimator", TEXT_ESTIMATORS, ids=_text_id)
@pytest.mark.parametrize("check", _API_CHECKS, ids=lambda c: c.__name__)
def test_text_estimator_api_checks(estimator, check):
    check(type(estimator).__name__, clone(estimator))


@pytest.mark.parametrize("estimator", list(DOMAIN_ESTIMATORS), ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("check", _API_CHECKS, ids=lambda c: c.__name__)
def test_domain_estimator_api_checks(estimator, check):
    check(type(estimator).__name__, clone(estimator))


def test_domain_estimators_really_refuse_out_of_domain_data():
    "The reason they are exempt from the data checks holds: data outside the domain is refused with a named error."
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 2)), rng.integers(0, 2, 40)
    for est in DOMAIN_ESTIMATORS:
        with pytest.raises(DataError):
            clone(est).fit(X, y)
        inside = np.clip(X, 0, 1)
        p = clone(est).fit(inside, y).predict_proba(inside)
        assert p.shape == (40, 2) and np.allclose(p.sum(axis=1), 1.0)


@pytest.mark.parametrize("estimator", TEXT_ESTIMATORS, ids=_text_id)
def test_text_estimator_contract(estimator):
    est = clone(estimator)
    params = est.get_params(deep=False)
    with pytest.raises(NotFittedError):
        _output(est, _CORPUS[:2])
    assert est.fit(_CORPUS) is est  # fit returns self
    assert est.get_params(deep=False) == params  # fit leaves the parameters alone
    first = _learned(est)
    assert first and all(not k.startswith("_") for k in first)  # learned attributes end in "_"
    out = _output(est, _CORPUS[:4])
    assert _output(est.fit(_CORPUS), _CORPUS[:4]) == out  # fitting twice: the same model (idempotent)
    assert _output(pickle.loads(pickle.dumps(est)), _CORPUS[:4]) == out  # survives pickling
    shuffled = clone(estimator).fit(list(reversed(_CORPUS)))  # the order of the training texts does not matter
    assert shuffled.vocabulary_ == est.vocabulary_
    if isinstance(est, BertMasker):
        assert _output(shuffled, _CORPUS[:4]) == out
    np.testing.assert_equal(_learned(clone(estimator).fit(np.array(_CORPUS, dtype=object))), first)  # arrays work too
    for bad in (np.ones((6, 2)), [1.0, 2.0], None, "one message"):  # numeric or malformed input: a named refusal
        with pytest.raises(DataError):
            clone(estimator).fit(bad)
