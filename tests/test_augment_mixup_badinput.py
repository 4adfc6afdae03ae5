"""Bad input to every public entry point of mlsys.augment.mixup is refused with a named mlsys error.

One row per case: (callable, the mlsys error expected, a fragment of its message that names the input).
A sweep then feeds every entry point generic bad values and fails on any raw library error.
"""

import numpy as np
import pandas as pd
import pytest
from badinput import check_named, each, raw_errors

from mlsys.augment.mixup import (
    expected_calibration_error,
    mixup_tabular,
    one_hot,
    plot_experiment,
    run_experiment,
    sample_lambda,
    soft_to_weighted,
    summarize_experiment,
)
from mlsys.core import ConfigError, DataError

X = pd.DataFrame({"a": [1.0, 2, 3, 4], "b": [0.0, 1, 0, 1]})
Y = np.array([0, 1, 0, 1])
YS = pd.DataFrame({0: [1.0, 0.5, 0, 0.2], 1: [0.0, 0.5, 1, 0.8]})
P = np.array([0.2, 0.7, 0.1, 0.9])
RES = pd.DataFrame({"arm": ["none", "a"] * 2, "n_train": [10, 10, 20, 20], "seed": [0, 0, 0, 0], "score": [0.5, 0.6, 0.7, 0.8]})


def run(arm, n, seed):
    return 0.5


CASES = [
    # the issue's own case (item 11)
    ("soft_to_weighted(NaN soft labels)", lambda: soft_to_weighted(X, YS * np.nan), DataError, "Y_soft has 8 NaN or infinite soft labels"),
    # the same classes elsewhere
    ("soft_to_weighted(inf)", lambda: soft_to_weighted(X, YS.replace(1.0, np.inf)), DataError, "Y_soft has 2 NaN or infinite"),
    ("soft_to_weighted(rows sum to 2)", lambda: soft_to_weighted(X, YS * 2), DataError, "Y_soft rows must be non-negative and sum to 1; 4 do not"),
    ("soft_to_weighted(negative)", lambda: soft_to_weighted(X, pd.DataFrame({0: YS[0] - 0.5, 1: YS[1] + 0.5})), DataError, "Y_soft rows must be non-negative"),
    ("soft_to_weighted(strings)", lambda: soft_to_weighted(X, YS.astype(str)), DataError, "Y_soft column 0 must hold class probabilities"),
    ("soft_to_weighted(array)", lambda: soft_to_weighted(X, YS.to_numpy()), DataError, "Y_soft must be a DataFrame with one column per class, got ndarray"),
    ("soft_to_weighted(no columns)", lambda: soft_to_weighted(X, YS.iloc[:, :0]), DataError, "Y_soft has no class columns"),
    ("soft_to_weighted(Y_soft=None)", lambda: soft_to_weighted(X, None), DataError, "Y_soft must be a DataFrame"),
    ("soft_to_weighted(X=None)", lambda: soft_to_weighted(None, YS), DataError, "X must be a DataFrame or a 2-d array, got NoneType"),
    ("soft_to_weighted(X 1-d)", lambda: soft_to_weighted(np.ones(4), YS), DataError, "X must be a DataFrame or a 2-d array"),
    ("soft_to_weighted(lengths)", lambda: soft_to_weighted(X.iloc[:2], YS), DataError, "X has 2 rows but Y_soft has 4"),
    ("soft_to_weighted(min_weight=-1)", lambda: soft_to_weighted(X, YS, -1), ConfigError, "min_weight must be a number in [0, 1)"),  # kept zero weights
    ("soft_to_weighted(min_weight=None)", lambda: soft_to_weighted(X, YS, None), ConfigError, "min_weight"),
    ("soft_to_weighted(min_weight=1.5)", lambda: soft_to_weighted(X, YS, 1.5), ConfigError, "min_weight"),  # an empty result
    ("sample_lambda(alpha=inf)", lambda: sample_lambda(np.inf, 3), ConfigError, "alpha must be a positive number (finite)"),  # NaN draws
    ("sample_lambda(alpha=0)", lambda: sample_lambda(0, 3), ConfigError, "alpha must be a positive number"),
    ("sample_lambda(size='x')", lambda: sample_lambda(0.4, "x"), ConfigError, "size must be an integer"),
    ("sample_lambda(size=-1)", lambda: sample_lambda(0.4, -1), ConfigError, "size must be an integer in [0,"),
    ("sample_lambda(size=1.5)", lambda: sample_lambda(0.4, 1.5), ConfigError, "size"),
    ("sample_lambda(size=True)", lambda: sample_lambda(0.4, True), ConfigError, "size"),
    ("sample_lambda(size=2**40)", lambda: sample_lambda(0.4, 2**40), ConfigError, "size"),  # MemoryError
    ("sample_lambda(random_state='x')", lambda: sample_lambda(0.4, 3, "x"), ConfigError, "random_state must be None, a non-negative integer seed"),
    ("sample_lambda(random_state=-1)", lambda: sample_lambda(0.4, 3, -1), ConfigError, "random_state"),
    ("sample_lambda(random_state=True)", lambda: sample_lambda(0.4, 3, True), ConfigError, "random_state"),  # seeded with 1
    ("one_hot(num_classes=None)", lambda: one_hot(np.array([0, 1]), None), ConfigError, "num_classes must be an integer"),
    ("one_hot(num_classes='x')", lambda: one_hot(np.array([0, 1]), "x"), ConfigError, "num_classes"),
    ("one_hot(num_classes=2.0)", lambda: one_hot(np.array([0, 1]), 2.0), ConfigError, "num_classes"),
    ("one_hot(num_classes=2**40)", lambda: one_hot(np.array([0, 1]), 2**40), ConfigError, "num_classes"),
    ("one_hot(huge table)", lambda: one_hot(np.zeros(10**4, dtype=int), 10**5), ConfigError, "len(y) x num_classes must be an integer"),
    ("one_hot(floats)", lambda: one_hot(np.array([0.5]), 2), DataError, "y must be a 1-d array of integer class indices"),
    ("one_hot(bools)", lambda: one_hot(np.array([True]), 2), DataError, "integer class indices, got dtype bool"),
    ("one_hot(scalar)", lambda: one_hot(3, 4), DataError, "y must be a 1-d array of integer class indices, got int"),
    ("one_hot(out of range)", lambda: one_hot(np.array([0, 3]), 3), DataError, "outside [0, 3)"),
    ("mixup_tabular(inf)", lambda: mixup_tabular(X.assign(a=np.inf), Y), DataError, "X contains 4 infinite value(s)"),
    ("mixup_tabular(complex)", lambda: mixup_tabular(X.to_numpy() + 1j, Y), DataError, "got dtype complex128"),  # lost .imag
    ("mixup_tabular(bool column)", lambda: mixup_tabular(X.assign(a=True), Y), DataError, "column 'a' is not numeric"),
    ("mixup_tabular(X=None)", lambda: mixup_tabular(None, Y), DataError, "X must be a numeric 2-d array or DataFrame, got NoneType"),
    ("mixup_tabular(y=None)", lambda: mixup_tabular(X, None), DataError, "y must be a 1-d array of 4 labels"),
    ("mixup_tabular(y NaN)", lambda: mixup_tabular(X, np.array([0, 1, np.nan, 1])), DataError, "y has 1 missing labels"),
    ("mixup_tabular(y None)", lambda: mixup_tabular(X, np.array([0, None, 0, 1], dtype=object)), DataError, "y has 1 missing labels"),
    ("mixup_tabular(y mixed)", lambda: mixup_tabular(X, np.array([0, "a", 0, 1], dtype=object)), DataError, "y mixes label types"),
    ("mixup_tabular(classes=5)", lambda: mixup_tabular(X, Y, classes=5), ConfigError, "classes must be a 1-d list of labels"),
    ("mixup_tabular(classes='ab')", lambda: mixup_tabular(X, Y, classes="ab"), ConfigError, "classes must be a 1-d list"),
    ("mixup_tabular(classes twice)", lambda: mixup_tabular(X, Y, classes=[0, 0, 1]), ConfigError, "classes must list each label once"),
    ("mixup_tabular(classes=[])", lambda: mixup_tabular(X, Y, classes=[]), ConfigError, "classes must list each label once"),
    ("mixup_tabular(n_samples=2**40)", lambda: mixup_tabular(X, Y, n_samples=2**40), ConfigError, "would hold more than"),  # MemoryError
    ("mixup_tabular(random_state='x')", lambda: mixup_tabular(X, Y, random_state="x"), ConfigError, "random_state"),
    ("mixup_tabular(random_state=1.5)", lambda: mixup_tabular(X, Y, random_state=1.5), ConfigError, "random_state"),
    ("expected_calibration_error(y_true=None)", lambda: expected_calibration_error(None, P), DataError, "y_true must be an array, got NoneType"),
    ("expected_calibration_error(proba='x')", lambda: expected_calibration_error(Y, "x"), DataError, "proba must be an array, got str"),
    ("expected_calibration_error(proba strings)", lambda: expected_calibration_error(Y, np.array(["a"] * 4)), DataError, "proba must hold numbers"),
    ("expected_calibration_error(y strings)", lambda: expected_calibration_error(np.array(["a"] * 4), P), DataError, "y_true must hold class numbers"),  # was 0.475
    ("expected_calibration_error(y 0.5)", lambda: expected_calibration_error(np.full(4, 0.5), P), DataError, "y_true must be 0/1"),
    ("expected_calibration_error(y NaN)", lambda: expected_calibration_error(np.array([0, 1, np.nan, 1]), P), DataError, "y_true must hold class numbers without missing values"),
    ("expected_calibration_error(classes out of range)", lambda: expected_calibration_error(np.array([0, 1, 2, 5]), np.ones((4, 3)) / 3), DataError, "y_true must hold class indices in [0, 3)"),
    ("expected_calibration_error(rows not summing to 1)", lambda: expected_calibration_error(Y, np.ones((4, 2))), DataError, "proba rows must sum to 1"),  # was 0.5
    ("expected_calibration_error(inf)", lambda: expected_calibration_error(Y, np.array([0.2, 0.7, 0.1, np.inf])), DataError, "proba must hold probabilities in [0, 1]"),
    ("expected_calibration_error(n_bins=2**40)", lambda: expected_calibration_error(Y, P, n_bins=2**40), ConfigError, "n_bins must be a positive int"),  # MemoryError
    ("run_experiment(run=None)", lambda: run_experiment(None, ["none"], [10], [0]), ConfigError, "run must be a callable"),
    ("run_experiment(run returns 'x')", lambda: run_experiment(lambda a, n, s: "x", ["none"], [10], [0]), DataError, "run('none', 10, 0) returned 'x'"),
    ("run_experiment(run returns NaN)", lambda: run_experiment(lambda a, n, s: np.nan, ["none"], [10], [0]), DataError, "it must return a finite score"),
    ("run_experiment(arms='none')", lambda: run_experiment(run, "none", [10], [0]), ConfigError, "arms must be a list, got str"),  # 4 arms n, o, n, e
    ("run_experiment(arms twice)", lambda: run_experiment(run, ["a", "a"], [10], [0]), ConfigError, "arms lists a value twice"),
    ("run_experiment(arms=[5])", lambda: run_experiment(run, [5], [10], [0]), ConfigError, "arms must be names (strings)"),
    ("run_experiment(sizes=[-1])", lambda: run_experiment(run, ["none"], [-1], [0]), ConfigError, "sizes must be integers >= 1, got -1"),
    ("run_experiment(sizes=[1.5])", lambda: run_experiment(run, ["none"], [1.5], [0]), ConfigError, "sizes must be integers"),
    ("run_experiment(sizes=5)", lambda: run_experiment(run, ["none"], 5, [0]), ConfigError, "sizes must be a list, got int"),
    ("run_experiment(seeds=['x'])", lambda: run_experiment(run, ["none"], [10], ["x"]), ConfigError, "seeds must be integers >= 0"),
    ("run_experiment(seeds twice)", lambda: run_experiment(run, ["none"], [10], [0, 0]), ConfigError, "seeds lists a value twice"),
    ("run_experiment(seeds=[])", lambda: run_experiment(run, ["none"], [10], []), ConfigError, "must all be non-empty"),
    ("summarize_experiment(None)", lambda: summarize_experiment(None), DataError, "results must be the DataFrame of run_experiment, got NoneType"),
    ("summarize_experiment(empty)", lambda: summarize_experiment(RES.iloc[:0]), DataError, "results has no rows"),
    ("summarize_experiment(no seed)", lambda: summarize_experiment(RES.drop(columns="seed")), DataError, "results must have columns"),
    ("summarize_experiment(string scores)", lambda: summarize_experiment(RES.assign(score="x")), DataError, "results['score'] must hold finite numbers"),
    ("summarize_experiment(NaN scores)", lambda: summarize_experiment(RES.assign(score=np.nan)), DataError, "results['score'] must hold finite numbers"),
    ("summarize_experiment(baseline=[])", lambda: summarize_experiment(RES, baseline=[]), ConfigError, "baseline must be the name of an arm"),
    ("summarize_experiment(baseline='q')", lambda: summarize_experiment(RES, baseline="q"), ConfigError, "baseline arm 'q' is not in the results"),
    ("plot_experiment(None)", lambda: plot_experiment(None, "t"), DataError, "results must be the DataFrame of run_experiment"),
    ("plot_experiment(empty)", lambda: plot_experiment(RES.iloc[:0], "t"), DataError, "results has no rows"),  # an empty plot
    ("plot_experiment(no score)", lambda: plot_experiment(RES.drop(columns="score"), "t"), DataError, "results must have columns"),
]


@pytest.mark.parametrize("fn, error, fragment", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_named(fn, error, fragment):
    check_named(fn, error, fragment)


def test_good_input_unchanged():
    "one_hot builds n x K directly (was eye(K)[y]) with the same values; seeds and ranges work as before."
    y = np.array([2, 0, 1, 2])
    np.testing.assert_array_equal(one_hot(y, 4), np.eye(4)[y])
    assert one_hot(y, 4).dtype == np.float64
    np.testing.assert_array_equal(sample_lambda(0.4, 5, 3), np.random.default_rng(3).beta(0.4, 0.4, 5))
    np.testing.assert_array_equal(sample_lambda(0.4, 5, np.random.default_rng(3)), sample_lambda(0.4, 5, 3))
    Xm, Ym = mixup_tabular(X, Y, n_samples=6, random_state=1)
    rng = np.random.default_rng(1)
    i, j, lam = rng.integers(0, 4, 6), rng.integers(0, 4, 6), rng.beta(0.4, 0.4, 6)
    np.testing.assert_allclose(Ym[1].to_numpy(), lam * Y[i] + (1 - lam) * Y[j])
    assert len(run_experiment(run, ["none", "a"], [10], range(2))) == 4


@pytest.mark.torch
def test_torch_mixup_names_bad_batches():
    torch = pytest.importorskip("torch")
    from mlsys.augment.mixup import Mixup, mixup_batch
    x, y = torch.rand(4, 1, 2, 2), torch.tensor([0, 1, 0, 1])
    for call, error, fragment in [
        (lambda: mixup_batch(x, y * 3, num_classes=2), DataError, "y holds labels outside [0, 2)"),
        (lambda: mixup_batch(x, torch.full((4, 2), float("nan"))), DataError, "soft labels y hold NaN or infinite values"),
        (lambda: mixup_batch(x, torch.ones(4, 2)), DataError, "each row must sum to 1"),  # were mixed anyway
        (lambda: mixup_batch(x, torch.rand(4, 2, 2)), DataError, "got shape (4, 2, 2)"),
        (lambda: mixup_batch(x, torch.tensor([[1, 0]] * 4)), DataError, "class probabilities y must be a float tensor"),
        (lambda: mixup_batch(x, torch.eye(2)[[0, 1, 0, 1]], num_classes=3), DataError, "y has 2 class columns but num_classes=3"),
        (lambda: mixup_batch(x, y.numpy(), num_classes=2), DataError, "y must be a torch.Tensor"),
        (lambda: mixup_batch(x, None), DataError, "y must be a torch.Tensor"),
        (lambda: mixup_batch(torch.full((4, 2), float("nan")), y, num_classes=2), DataError, "x holds NaN or infinite values"),
        (lambda: mixup_batch(x[:0], y[:0], num_classes=2), DataError, "x is an empty batch"),
        (lambda: mixup_batch(x, y, num_classes=1.5), ConfigError, "num_classes must be an integer"),
        (lambda: mixup_batch(x, y, num_classes=2, generator=5), ConfigError, "generator must be a torch.Generator or None"),
        (lambda: mixup_batch(x, y, num_classes=2, per_sample="x"), ConfigError, "per_sample must be True or False"),
        (lambda: mixup_batch(x, y, alpha=np.inf, num_classes=2), ConfigError, "alpha must be a positive number"),
        (lambda: Mixup(num_classes="x"), ConfigError, "num_classes must be an integer"),
        (lambda: Mixup(num_classes=None), ConfigError, "num_classes"),
        (lambda: Mixup(per_sample="x"), ConfigError, "per_sample must be True or False"),
    ]:
        with pytest.raises(error) as info:
            call()
        assert fragment in str(info.value), str(info.value)
    g = torch.Generator().manual_seed(0)
    xm, ym, _ = mixup_batch(x, torch.eye(2)[y], generator=g)  # soft labels that sum to 1 still mix
    torch.testing.assert_close(ym.sum(1), torch.ones(4))




def test_sweep_no_entry_point_raises_a_raw_error():
    "Every entry point and parameter, every generic bad value: refused by an mlsys error, or accepted."
    calls = {
        **each(sample_lambda, alpha=0.4, size=3, random_state=0),
        **each(one_hot, y=np.array([0, 1]), num_classes=2),
        **each(mixup_tabular, X=X, y=Y, alpha=0.4, n_samples=None, classes=None, random_state=0),
        **each(soft_to_weighted, X=X, Y_soft=YS, min_weight=1e-9),
        **each(expected_calibration_error, y_true=Y, proba=P, n_bins=15),
        **each(run_experiment, run=run, arms=["none"], sizes=[10], seeds=[0]),
        **each(summarize_experiment, results=RES, baseline="none"),
        **each(plot_experiment, results=RES, title="t", ylabel="y"),
    }
    try:
        import torch

        from mlsys.augment.mixup import Mixup, mixup_batch
        xt, yt = torch.rand(4, 1, 2, 2), torch.tensor([0, 1, 0, 1])
        calls.update(each(mixup_batch, x=xt, y=yt, alpha=0.4, num_classes=2, generator=None, per_sample=False))
        calls.update({f"Mixup.{k}": (lambda v, k=k: Mixup(**({"num_classes": 2} | {k: v}))(xt, yt)) for k in ("alpha", "num_classes", "per_sample")})
    except ImportError:
        pass
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    assert raw_errors(calls, after=lambda: plt.close("all")) == []
