"""Concurrency: real processes sharing one Redis queue group; a consumer process killed before it acknowledges; threads on the in-process backend."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest

from mlsys.data.transport import BackpressureError, InProcessTransport, RedisTransport


def redis_url() -> str:
    return os.environ.get("MLSYS_REDIS_URL", "redis://127.0.0.1:6379/0")

WORKER = r"""
import json, sys
import redis
from mlsys.data.transport import RedisTransport
url, prefix, name, mode = sys.argv[1:]
r = redis.Redis.from_url(url)
bus = RedisTransport(url, prefix=prefix, timeout=30)
c = bus.queue_consumer("jobs", "workers", name)
r.rpush(f"{prefix}:ready", name)
r.blpop(f"{prefix}:go", timeout=120)  # start together
if mode == "take-and-hang":  # receive, never acknowledge, wait to be killed
    got = c.poll(10, timeout=30)
    print(json.dumps([m.id for m in got]), flush=True)
    r.blpop(f"{prefix}:never", timeout=300)
    sys.exit(3)
seen = []
while True:
    msgs = c.poll(5, timeout=0.2)
    if not msgs:
        if not r.exists(f"{prefix}:done"):
            continue
        msgs = c.poll(1000)  # the producer has finished: whatever is left for the group is visible now
        if not msgs:
            break
    seen += [m.id for m in msgs]
    assert c.ack(msgs) == len(msgs)
print(json.dumps(seen), flush=True)
"""


def start(prefix, name, mode="work"):
    env = {**os.environ, "PYTHONPATH": os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-c", WORKER, redis_url(), prefix, name, mode],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def wait_ready(client, prefix, n):
    for _ in range(n):
        assert client.blpop(f"{prefix}:ready", timeout=120) is not None, "a worker process did not start"


@pytest.mark.redis
def test_two_processes_on_one_queue_get_each_message_exactly_once(redis_client):
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    bus = RedisTransport(prefix=prefix, client=redis_client, pipeline_size=7)
    procs = []
    try:
        bus.queue_consumer("jobs", "workers", "parent")  # creates the group before anything is published
        procs = [start(prefix, f"w{i}") for i in range(2)]
        wait_ready(redis_client, prefix, 2)
        redis_client.rpush(f"{prefix}:go", "go", "go")
        ids = []
        for i in range(0, 600, 20):  # publish while both consume
            ids += bus.publish_many("jobs", [{"n": j} for j in range(i, i + 20)])
        redis_client.set(f"{prefix}:done", 1)
        seen = []
        for p in procs:
            out, err = p.communicate(timeout=180)
            assert p.returncode == 0, err
            seen.append(json.loads(out))
        flat = seen[0] + seen[1]
        assert all(len(s) > 0 for s in seen)  # both processes really consumed
        assert len(flat) == len(set(flat)) == 600  # no message reached both processes ...
        assert sorted(flat) == sorted(ids)  # ... and none was missed
        assert all(s == sorted(s, key=lambda i: tuple(map(int, i.split("-")))) for s in seen)  # each in stream order
        pending = bus.queue_consumer("jobs", "workers", "parent").pending()
        assert pending.empty
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        keys = list(redis_client.scan_iter(match=f"{prefix}:*"))
        if keys:
            redis_client.delete(*keys)


@pytest.mark.redis
def test_killed_consumer_process_holds_retention_until_its_messages_are_claimed(redis_client):
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    bus = RedisTransport(prefix=prefix, client=redis_client, maxlen=20)
    proc = None
    try:
        rescuer = bus.queue_consumer("jobs", "workers", "rescuer")
        ids = bus.publish_many("jobs", [{"n": j} for j in range(20)])
        proc = start(prefix, "doomed", mode="take-and-hang")
        wait_ready(redis_client, prefix, 1)
        redis_client.rpush(f"{prefix}:go", "go")
        taken = json.loads(proc.stdout.readline())
        assert taken == ids[:10]
        os.kill(proc.pid, signal.SIGKILL)  # dies holding 10 unacknowledged messages
        proc.wait(timeout=60)
        assert rescuer.ack(rescuer.poll(100)) == 10  # the other 10 are processed
        with pytest.raises(BackpressureError, match=r"'workers' \(10 pending, 0 unread\)"):
            bus.publish("jobs", {"n": 20})  # the dead consumer's messages are not trimmed away
        time.sleep(0.05)
        again = rescuer.claim(min_idle_ms=20)
        assert [m.id for m in again] == taken and {m.deliveries for m in again} == {2}
        assert rescuer.ack(again) == 10
        bus.publish("jobs", {"n": 20})  # now retention may trim
        assert bus.length("jobs") == 20
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        keys = list(redis_client.scan_iter(match=f"{prefix}:*"))
        if keys:
            redis_client.delete(*keys)


def test_in_process_threads_share_a_queue_exactly_once_under_backpressure():
    "Four consumer threads and a producer that retries on back-pressure: every event exactly once, none lost."
    bus = InProcessTransport(maxlen=25)
    workers = [bus.queue_consumer("jobs", "q", f"w{i}") for i in range(4)]
    seen = {w.name: [] for w in workers}
    done = threading.Event()

    def consume(w):
        while True:
            msgs = w.poll(3, timeout=0.05)
            if not msgs:
                if not done.is_set():
                    continue
                msgs = w.poll(100)  # the producer has finished: whatever is left is visible now
                if not msgs:
                    return
            seen[w.name].extend(m.event["n"] for m in msgs)
            w.ack(msgs)

    threads = [threading.Thread(target=consume, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for n in range(2_000):
        while True:
            try:
                bus.publish("jobs", {"n": n})
                break
            except BackpressureError:  # the consumers are behind: wait for them
                time.sleep(0.001)
    done.set()
    for t in threads:
        t.join(timeout=120)
    flat = [n for v in seen.values() for n in v]
    assert sorted(flat) == list(range(2_000)) and len(flat) == len(set(flat))
    assert bus.length("jobs") <= 25
