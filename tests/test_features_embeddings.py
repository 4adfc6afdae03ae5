"""Positional embeddings: known properties of the sinusoidal construction, Fourier features, torch modules."""
import math

import numpy as np
import pandas as pd
import pytest

from mlsys.core import ConfigError, DataError
from mlsys.features.embeddings import (
    FourierFeatures,
    learned_positional_embedding,
    sinusoid_frequencies,
    sinusoidal_embedding,
    sinusoidal_positional_embedding,
)


def reference_pe(n, d, base=10000.0):
    "The formula of 'Attention is all you need', written as plain loops."
    pe = np.zeros((n, d))
    for pos in range(n):
        for i in range(0, d, 2):
            pe[pos, i] = math.sin(pos / base ** (i / d))
            pe[pos, i + 1] = math.cos(pos / base ** (i / d))
    return pe


@pytest.mark.parametrize("n,d", [(50, 16), (300, 64), (7, 2)])
def test_matches_reference_formula(n, d):
    np.testing.assert_allclose(sinusoidal_embedding(np.arange(n), d), reference_pe(n, d), atol=1e-12)


def test_bounded_and_constant_norm():
    P = sinusoidal_embedding(np.arange(1000), 32)
    assert np.abs(P).max() <= 1.0
    np.testing.assert_allclose((P ** 2).sum(axis=1), 16.0)


def test_dot_product_depends_only_on_offset():
    P = sinusoidal_embedding(np.arange(200), 48)
    G = P @ P.T
    w = sinusoid_frequencies(48)
    for k in (0, 1, 3, 17, 120):
        np.testing.assert_allclose(np.diag(G, k), np.cos(k * w).sum(), atol=1e-9)
    # and it works for continuous offsets too
    a, b = sinusoidal_embedding([0.3, 10.3], 48), sinusoidal_embedding([5.0, 15.0], 48)
    assert np.isclose(a[0] @ a[1], b[0] @ b[1])


def test_shift_is_a_linear_map():
    P = sinusoidal_embedding(np.arange(100), 16)
    k = 9
    A, *_ = np.linalg.lstsq(P[:-k], P[k:], rcond=None)  # one linear map sends every p to p + k
    np.testing.assert_allclose(P[:-k] @ A, P[k:], atol=1e-8)
    # it is a rotation: orthogonal
    w = sinusoid_frequencies(16)
    R = np.zeros((16, 16))
    for i, wi in enumerate(w):
        c, s = math.cos(k * wi), math.sin(k * wi)
        R[2 * i:2 * i + 2, 2 * i:2 * i + 2] = [[c, s], [-s, c]]
    np.testing.assert_allclose(R @ R.T, np.eye(16), atol=1e-12)
    np.testing.assert_allclose((R @ P[:-k].T).T, P[k:], atol=1e-9)


def test_nearby_positions_are_more_similar():
    P = sinusoidal_embedding(np.arange(64), 64)
    sims = P[0] @ P.T
    assert np.all(np.diff(sims[:6]) < 0) and sims[1:].max() < sims[0]  # falls over the first steps


def test_fourier_features_periodic_and_names():
    X = pd.DataFrame({"minute": [0.0, 1440.0, 720.0, np.nan], "hour": [0.0, 24.0, 12.0, 1.0]})
    ff = FourierFeatures(n_frequencies=2, period={"minute": 1440, "hour": 24}).set_output(transform="pandas").fit(X)
    out = ff.transform(X)
    assert list(out.columns) == ["minute_sin1", "minute_cos1", "minute_sin2", "minute_cos2",
                                 "hour_sin1", "hour_cos1", "hour_sin2", "hour_cos2"]
    np.testing.assert_allclose(out.iloc[0].to_numpy(), out.iloc[1].to_numpy(), atol=1e-12)  # wraps around
    np.testing.assert_allclose(out.loc[2, "minute_cos1"], -1.0)
    assert out.iloc[3, :4].isna().all() and out.iloc[3, 4:].notna().all()
    # without a period it is the positional formula
    np.testing.assert_allclose(FourierFeatures(3).fit_transform(X[["hour"]]), sinusoidal_embedding(X["hour"], 6))


def test_bad_input():
    with pytest.raises(ConfigError, match="dim must be an even integer"):
        sinusoidal_embedding([1, 2], 3)
    with pytest.raises(DataError, match="NaN or infinity"):
        sinusoidal_embedding([1.0, np.nan], 4)
    with pytest.raises(DataError, match="one-dimensional"):
        sinusoidal_embedding(np.zeros((2, 2)), 4)
    with pytest.raises(ConfigError, match="n_frequencies must be a positive integer"):
        FourierFeatures(0).fit(pd.DataFrame({"a": [1.0]}))
    with pytest.raises(ConfigError, match="period for 'a' must be a positive number"):
        FourierFeatures(period=-3).fit(pd.DataFrame({"a": [1.0]}))
    with pytest.raises(DataError, match="needs numeric columns"):
        FourierFeatures().fit(pd.DataFrame({"a": ["x"]}))


@pytest.mark.torch
def test_torch_modules():
    import torch
    torch.set_num_threads(1)
    fixed = sinusoidal_positional_embedding(50, 8)
    assert len(list(fixed.parameters())) == 0 and "table" in dict(fixed.named_buffers())
    np.testing.assert_allclose(fixed(torch.arange(50)).numpy(), sinusoidal_embedding(np.arange(50), 8), atol=1e-6)
    np.testing.assert_allclose(fixed(torch.tensor([[60.5]])).numpy()[0], sinusoidal_embedding([60.5], 8), atol=1e-5)
    torch.manual_seed(0)
    learned = learned_positional_embedding(10, 4)
    out = learned(torch.tensor([[1, 2], [3, 9]]))
    assert out.shape == (2, 2, 4) and out.requires_grad
    assert sum(p.numel() for p in learned.parameters()) == 40
    with pytest.raises(DataError, match=r"\[0, 9\].*cannot extrapolate"):
        learned(torch.tensor([10]))
    with pytest.raises(DataError, match="integer tensor"):
        learned(torch.tensor([1.0]))
    with pytest.raises(ConfigError, match="num_positions must be a positive integer"):
        learned_positional_embedding(0, 4)
    # learned embeddings can be trained: fit positions to a target pattern
    target = torch.tensor(sinusoidal_embedding(np.arange(10), 4), dtype=torch.float32)
    opt = torch.optim.Adam(learned.parameters(), lr=0.1)
    for _ in range(300):
        opt.zero_grad()
        loss = ((learned(torch.arange(10)) - target) ** 2).mean()
        loss.backward()
        opt.step()
    assert loss.item() < 1e-3
