"""Bad input to every public entry point of mlsys.features.embeddings is refused with a named mlsys error.

One row per case: (callable, arguments, the mlsys error expected, a fragment of its message that names the input).
A sweep then feeds every entry point generic bad values and fails on any raw library error.
"""

import numpy as np
import pandas as pd
import pytest
from badinput import raw_errors

from mlsys.core import ConfigError, DataError, MlsysError, SchemaError
from mlsys.features.embeddings import (
    FourierFeatures,
    learned_positional_embedding,
    sinusoid_frequencies,
    sinusoidal_embedding,
    sinusoidal_positional_embedding,
)

X = pd.DataFrame({"a": [1.0, 2, 3], "b": [4.0, 5, 6]})


def fourier(**params):
    return lambda X=X: FourierFeatures(**params).fit(X)


CASES = [
    ("sinusoid_frequencies(dim=3)", sinusoid_frequencies, (3,), ConfigError, "dim must be an even integer"),
    ("sinusoid_frequencies(dim=4.0)", sinusoid_frequencies, (4.0,), ConfigError, "dim must be an even integer"),
    ("sinusoid_frequencies(dim=True)", sinusoid_frequencies, (True,), ConfigError, "dim must be an even integer"),
    ("sinusoid_frequencies(dim=2**40)", sinusoid_frequencies, (2**40,), ConfigError, "dim must be an even integer in [2, 2**20]"),
    ("sinusoid_frequencies(base=None)", sinusoid_frequencies, (4, None), ConfigError, "base must be a finite number > 1"),
    ("sinusoid_frequencies(base='x')", sinusoid_frequencies, (4, "x"), ConfigError, "base must be a finite number > 1"),
    ("sinusoid_frequencies(base=inf)", sinusoid_frequencies, (4, np.inf), ConfigError, "base must be a finite number"),  # all-zero frequencies
    ("sinusoid_frequencies(base=1)", sinusoid_frequencies, (4, 1), ConfigError, "base must be a finite number > 1"),
    ("sinusoid_frequencies(base=True)", sinusoid_frequencies, (4, True), ConfigError, "base"),
    ("sinusoidal_embedding(strings)", sinusoidal_embedding, (["1", "2"], 4), DataError, "positions must be numbers"),  # were parsed
    ("sinusoidal_embedding(complex)", sinusoidal_embedding, (np.arange(3) + 1j, 4), DataError, "got dtype complex128"),  # lost .imag
    ("sinusoidal_embedding(bools)", sinusoidal_embedding, (np.array([True, False]), 4), DataError, "got dtype bool"),
    ("sinusoidal_embedding('x')", sinusoidal_embedding, ("x", 4), DataError, "positions must be a 1-D array of numbers, got str"),
    ("sinusoidal_embedding(None)", sinusoidal_embedding, (None, 4), DataError, "positions must be a 1-D array"),
    ("sinusoidal_embedding(5)", sinusoidal_embedding, (5, 4), DataError, "positions must be a 1-D array"),
    ("sinusoidal_embedding({})", sinusoidal_embedding, ({}, 4), DataError, "positions must be numbers"),
    ("sinusoidal_embedding(2-D)", sinusoidal_embedding, (np.ones((2, 2)), 4), DataError, "positions must be one-dimensional"),
    ("sinusoidal_embedding(NaN)", sinusoidal_embedding, ([1.0, np.nan], 4), DataError, "positions contain NaN or infinity"),
    ("sinusoidal_embedding(too big)", sinusoidal_embedding, (np.arange(2**10), 2**20), ConfigError, "the embedding would hold"),
    ("sinusoidal_embedding(base='x')", sinusoidal_embedding, ([1], 4, "x"), ConfigError, "base must be"),
    ("FourierFeatures(n_frequencies=0)", fourier(n_frequencies=0), (), ConfigError, "n_frequencies must be a positive integer"),
    ("FourierFeatures(n_frequencies=1.5)", fourier(n_frequencies=1.5), (), ConfigError, "n_frequencies must be a positive integer"),
    ("FourierFeatures(n_frequencies=2**40)", fourier(n_frequencies=2**40), (), ConfigError, "n_frequencies must be a positive integer (at most 4,096)"),
    ("FourierFeatures(period=True)", fourier(period=True), (), ConfigError, "period for 'a' must be a positive number"),
    ("FourierFeatures(period=inf)", fourier(period=np.inf), (), ConfigError, "period for 'a' must be a positive number (finite"),
    ("FourierFeatures(period=nan)", fourier(period=np.nan), (), ConfigError, "period for 'a'"),
    ("FourierFeatures(period='x')", fourier(period="x"), (), ConfigError, "period for 'a'"),
    ("FourierFeatures(period=[1, 2])", fourier(period=[1, 2]), (), ConfigError, "period for 'a'"),
    ("FourierFeatures(period unknown column)", fourier(period={"a": 1, "b": 2, "c": 3}), (), ConfigError, "period names column(s) ['c']"),
    ("FourierFeatures(period missing column)", fourier(period={"a": 1}), (), ConfigError, "period has no entry for column 'b'"),
    ("FourierFeatures(period bad value)", fourier(period={"a": 1, "b": "x"}), (), ConfigError, "period for 'b'"),
    ("FourierFeatures(base=None)", fourier(base=None), (), ConfigError, "base must be a finite number > 1"),
    ("FourierFeatures(base=inf)", fourier(base=np.inf), (), ConfigError, "base must be a finite number > 1"),
    ("FourierFeatures.fit(strings)", fourier(), (X.assign(c="s"),), DataError, "X: FourierFeatures needs numeric columns"),
    ("FourierFeatures.fit(empty)", fourier(), (X.iloc[:0],), DataError, "X:"),
    ("FourierFeatures.fit(None)", fourier(), (None,), DataError, "X:"),
    ("FourierFeatures.transform(inf)", lambda: FourierFeatures().fit(X).transform(X.assign(a=np.inf)), (), DataError, "X:"),
    ("FourierFeatures.transform(other columns)", lambda: FourierFeatures().fit(X).transform(X[["b", "a"]]), (), SchemaError, "X: columns do not match"),
    ("FourierFeatures.get_feature_names_out(wrong)", lambda: FourierFeatures().fit(X).get_feature_names_out(["q", "r"]), (), SchemaError, "input_features"),
    ("learned_positional_embedding(0, 4)", learned_positional_embedding, (0, 4), ConfigError, "num_positions must be a positive integer"),
    ("learned_positional_embedding(2**40, 4)", learned_positional_embedding, (2**40, 4), ConfigError, "num_positions must be a positive integer"),
    ("learned_positional_embedding(10**6, 10**3)", learned_positional_embedding, (10**6, 1000), ConfigError, "the table of num_positions x dim would hold"),
    ("learned_positional_embedding(4, 2.0)", learned_positional_embedding, (4, 2.0), ConfigError, "dim must be a positive integer"),
    ("sinusoidal_positional_embedding(4, 3)", sinusoidal_positional_embedding, (4, 3), ConfigError, "dim must be an even integer"),
    ("sinusoidal_positional_embedding(2**40, 4)", sinusoidal_positional_embedding, (2**40, 4), ConfigError, "num_positions"),
    ("sinusoidal_positional_embedding(base='x')", sinusoidal_positional_embedding, (4, 4, "x"), ConfigError, "base must be"),
]


@pytest.mark.parametrize("fn, args, error, fragment", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_named(fn, args, error, fragment):
    with pytest.raises(error) as info:
        fn(*args)
    assert isinstance(info.value, MlsysError)
    assert fragment in str(info.value), str(info.value)


@pytest.mark.torch
@pytest.mark.parametrize("which", ["learned", "sinusoidal"])
def test_torch_modules_name_bad_positions(which):
    torch = pytest.importorskip("torch")
    m = learned_positional_embedding(5, 4) if which == "learned" else sinusoidal_positional_embedding(5, 4)
    for bad, error, fragment in [
        (None, DataError, "positions must be a torch.Tensor, got NoneType"),
        ([1, 2], DataError, "positions must be a torch.Tensor, got list"),
        (np.array([1]), DataError, "positions must be a torch.Tensor, got ndarray"),
        (torch.tensor([True]), DataError, "positions must be an integer tensor, got torch.bool"),  # was a mask
        (torch.tensor([5]), DataError, "positions must lie in [0, 4]"),
        (torch.tensor([-1]), DataError, "positions must lie in [0, 4]"),
    ]:
        with pytest.raises(error, match="positions") as info:
            m(bad)
        assert fragment in str(info.value), str(info.value)
    # int16 positions index the table like int64 ones (sinusoidal raised a raw IndexError)
    torch.testing.assert_close(m(torch.tensor([1, 3], dtype=torch.int16)), m(torch.tensor([1, 3])))
    if which == "sinusoidal":
        for bad in (torch.tensor([float("nan")]), torch.tensor([float("inf")])):
            with pytest.raises(DataError, match="positions contain NaN or infinity"):  # returned NaN rows
                m(bad)
    else:
        with pytest.raises(DataError, match="integer tensor"):
            m(torch.tensor([1.5]))




def test_sweep_no_entry_point_raises_a_raw_error():
    "Every entry point and parameter, every generic bad value: refused by an mlsys error, or accepted."
    ff = FourierFeatures().fit(X)
    calls = {
        "sinusoid_frequencies.dim": lambda v: sinusoid_frequencies(v), "sinusoid_frequencies.base": lambda v: sinusoid_frequencies(4, v),
        "sinusoidal_embedding.positions": lambda v: sinusoidal_embedding(v, 4),
        "sinusoidal_embedding.dim": lambda v: sinusoidal_embedding([1], v), "sinusoidal_embedding.base": lambda v: sinusoidal_embedding([1], 4, v),
        **{f"FourierFeatures.{p}": (lambda v, p=p: FourierFeatures(**{p: v}).fit(X).transform(X)) for p in ("n_frequencies", "period", "base")},
        "FourierFeatures.fit": lambda v: FourierFeatures().fit(v), "FourierFeatures.transform": lambda v: ff.transform(v),
        "FourierFeatures.get_feature_names_out": lambda v: ff.get_feature_names_out(v),
        "learned_positional_embedding.num_positions": lambda v: learned_positional_embedding(v, 2),
        "learned_positional_embedding.dim": lambda v: learned_positional_embedding(2, v),
        "sinusoidal_positional_embedding.num_positions": lambda v: sinusoidal_positional_embedding(v, 2),
        "sinusoidal_positional_embedding.dim": lambda v: sinusoidal_positional_embedding(2, v),
        "sinusoidal_positional_embedding.base": lambda v: sinusoidal_positional_embedding(2, 2, v),
    }
    try:
        import torch  # noqa: F401 - the forward passes need torch
        le, se = learned_positional_embedding(5, 4), sinusoidal_positional_embedding(5, 4)
        calls.update({"Learned.forward": lambda v: le(v), "Sinusoidal.forward": lambda v: se(v)})
    except ImportError:
        pass
    assert raw_errors(calls) == []
