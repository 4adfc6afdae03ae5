"""Every feature transformer of mlsys.features passes scikit-learn's estimator checks."""
from sklearn.utils.estimator_checks import parametrize_with_checks

from mlsys.features.embeddings import FourierFeatures
from mlsys.features.hashing import HashingEncoder
from mlsys.features.importance import UnseenValueFlagger
from mlsys.features.ops import (
    Discretizer,
    DropMissingColumns,
    Imputer,
    LogScaler,
    RangeScaler,
    Standardizer,
)

ESTIMATORS = [
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
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
