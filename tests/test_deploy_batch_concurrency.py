"PredictionStore shared by several processes: concurrent writers and a reader on one SQLite file lose nothing."
import multiprocessing as mp

import numpy as np
import pandas as pd

from mlsys.deploy.batch import PredictionStore


def _frame(worker: int, n: int = 400) -> pd.DataFrame:
    # workers share half their keys (k0..k199 for everyone), the rest are their own
    keys = [f"k{i}" for i in range(n // 2)] + [f"w{worker}-{i}" for i in range(n // 2)]
    return pd.DataFrame({"flight_id": keys, "score": np.full(n, worker / 10), "model": "m",
                         "model_version": str(worker)})


def _writer(path, worker, rounds, q):
    store = PredictionStore(path)
    for _ in range(rounds):
        store.write(_frame(worker), key="flight_id")
    q.put(("writer", worker))


def _reader(path, stop, q):
    store = PredictionStore(path)
    seen, bad = 0, []
    while not stop.is_set():
        hits = store.get([f"k{i}" for i in range(0, 200, 7)])
        for rec in hits.found.to_dict("records"):  # every row read is one writer's whole row, never a mix
            if not np.isclose(rec["score"], int(rec["model_version"]) / 10):
                bad.append(rec)
        seen += len(hits.found)
    q.put(("reader", seen, bad[:3]))


def test_concurrent_writers_and_a_reader(tmp_path):
    path = str(tmp_path / "p.sqlite")
    PredictionStore(path).write(_frame(9), key="flight_id")  # the store exists before the race starts
    ctx = mp.get_context("spawn")
    q, stop = ctx.Queue(), ctx.Event()
    reader = ctx.Process(target=_reader, args=(path, stop, q))
    writers = [ctx.Process(target=_writer, args=(path, w, 3, q)) for w in range(3)]
    reader.start()
    for p in writers:
        p.start()
    done = [q.get(timeout=300) for _ in writers]
    stop.set()
    kind, seen, bad = q.get(timeout=120)
    for p in [*writers, reader]:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert sorted(d[1] for d in done) == [0, 1, 2] and kind == "reader" and seen > 0 and bad == []
    store = PredictionStore(path)
    every = [f"k{i}" for i in range(200)] + [f"w{w}-{i}" for w in (0, 1, 2, 9) for i in range(200)]
    hits = store.get(every)
    assert hits.missing == []  # nothing any writer stored was lost
    own = hits.found.set_index("flight_id")
    for w in (0, 1, 2):
        assert (own.loc[[f"w{w}-{i}" for i in range(200)], "model_version"] == str(w)).all()
    assert set(own.loc[[f"k{i}" for i in range(200)], "model_version"]) <= {"0", "1", "2"}  # a later write won
