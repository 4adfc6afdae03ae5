"""Online stores used directly (rows in, rows out). Through a FeatureStore: tests/test_features_store.py; several
processes at once and servers that are down: tests/test_features_store_concurrency.py; bad arguments:
tests/test_features_store_inputs.py."""
import uuid

import pandas as pd
import pytest

from mlsys.features.online import RedisOnlineStore


@pytest.mark.redis
def test_redis_online_store_times_are_exact_below_a_microsecond(tmp_path, redis_client):
    prefix = f"test:{uuid.uuid4().hex}"
    t0 = pd.Timestamp("2013-01-01 12:00", tz="UTC").as_unit("ns")
    try:
        online = RedisOnlineStore(redis_client, prefix=prefix)
        base = int(t0.value)
        online.write_rows("v", [('["a"]', base + 900, '{"x": 2.0}')])
        online.write_rows("v", [('["a"]', base + 100, '{"x": 1.0}')])  # older by 800 ns: ignored
        assert online.read_rows("v", ['["a"]', '["b"]']) == [(base + 900, '{"x": 2.0}'), None]
        online.write_rows("v", [('["a"]', -5, '{"x": 0.0}')])  # before 1970 is older still
        assert online.read_rows("v", ['["a"]'])[0][0] == base + 900
    finally:
        keys = redis_client.keys(f"{prefix}:*")
        if keys:
            redis_client.delete(*keys)


def test_names_moved_from_features_store_are_still_importable_from_it():
    import mlsys.features.online as online
    from mlsys.features.store import RedisOnlineStore as Moved, SQLiteOnlineStore, StoreBusyError, StoreUnavailableError
    assert Moved is RedisOnlineStore and SQLiteOnlineStore is online.SQLiteOnlineStore
    assert StoreBusyError is online.StoreBusyError and StoreUnavailableError is online.StoreUnavailableError
