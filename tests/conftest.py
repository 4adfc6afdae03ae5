"""Shared pytest fixtures: isolate mlsys's writable folders, find Redis, skip missing extras."""
import importlib.util
import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _one_blas_thread():
    "BLAS/OpenMP threads oversubscribe a small shared machine (fits run many times slower); use one."
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def digits():
    "scikit-learn digits scaled to [0, 1], shuffled once: (X_train, y_train, X_test, y_test) with 500 test images."
    import numpy as np

    from mlsys.datasets import load_digits

    images, labels = load_digits(as_arrays=True)
    X = images.reshape(len(images), -1) / 16.0
    o = np.random.default_rng(0).permutation(len(X))
    return X[o[:1297]], labels[o[:1297]], X[o[1297:]], labels[o[1297:]]


@pytest.fixture(autouse=True)
def _isolated_mlsys_dirs(tmp_path, monkeypatch):
    "Every test writes runs and stores under its own temporary folder (the dataset cache is shared)."
    monkeypatch.setenv("MLSYS_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("MLSYS_STORE_DIR", str(tmp_path / "store"))
    yield


def redis_url() -> str:
    return os.environ.get("MLSYS_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_client():
    "A client of a real Redis server; the test is skipped, with the reason, when none answers."
    if importlib.util.find_spec("redis") is None:
        pytest.skip('redis client not installed: pip install "mlsys[serve]"')
    import redis

    client = redis.Redis.from_url(redis_url(), socket_connect_timeout=1)
    try:
        client.ping()
    except Exception as e:  # no server: skip with the reason, never fail
        pytest.skip(f"no Redis server at {redis_url()}: {e}")
    yield client
    client.close()


def postgres_url() -> str:
    return os.environ.get("MLSYS_POSTGRES_URL", "postgresql://mlsys:mlsys@127.0.0.1:5432/mlsys")


@pytest.fixture
def postgres_url_or_skip():
    "URL of a real PostgreSQL server (started by scripts/services.sh); the test is skipped, with the reason, when none answers."
    if importlib.util.find_spec("psycopg2") is None:
        pytest.skip('psycopg2 not installed: pip install "mlsys[tracking]"')
    import psycopg2

    url = postgres_url()
    try:
        psycopg2.connect(url, connect_timeout=2).close()
    except Exception as e:  # no server: skip with the reason, never fail
        pytest.skip(f"no PostgreSQL server at {url}: {e}")
    return url


def pytest_collection_modifyitems(config, items):
    "Skip tests marked `torch`/`tf` when that extra is not installed."
    for mark, module, extra in [("torch", "torch", "torch"), ("tf", "tensorflow", "tf")]:
        if importlib.util.find_spec(module) is None:
            skip = pytest.mark.skip(reason=f'{module} not installed: pip install "mlsys[{extra}]"')
            for item in items:
                if mark in item.keywords:
                    item.add_marker(skip)
