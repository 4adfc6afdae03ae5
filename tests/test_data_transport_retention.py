"""Retention never loses unacknowledged work: the same tests on the in-process and the Redis Streams backends.

The rule (documented in nbs/02e_data_transport.ipynb): a topic retains at most `maxlen` events; when it is full,
the oldest events every consumer group has acknowledged are trimmed; an event some group has not acknowledged
(pending, or not yet read) is never trimmed, and a publish that would need it gone raises `BackpressureError`
naming the topic and the groups, and stores nothing.
"""
import time
import uuid

import pytest

from mlsys.core import DataError
from mlsys.data.transport import BackpressureError, InProcessTransport, RedisTransport, TransportError


@pytest.fixture(params=["inprocess", pytest.param("redis", marks=pytest.mark.redis)])
def make_transport(request):
    "Factory of transports of the parametrized backend; Redis keys get a unique prefix and are removed."
    made = []

    def make(maxlen=10_000, **kw):
        if request.param == "inprocess":
            t = InProcessTransport(maxlen=maxlen)  # (pipeline_size is a Redis setting)
        else:
            client = request.getfixturevalue("redis_client")
            t = RedisTransport(prefix=f"test-{uuid.uuid4().hex[:10]}", maxlen=maxlen, client=client, **kw)
        made.append(t)
        return t

    yield make
    for t in made:
        if isinstance(t, RedisTransport):
            keys = list(t.r.scan_iter(match=f"{t.prefix}:*"))
            if keys:
                t.r.delete(*keys)


def ev(i):
    return {"n": i}


def numbers(msgs):
    return [m.event["n"] for m in msgs]


def drain(consumer, batch=1000):
    got = []
    while msgs := consumer.poll(batch):
        got += msgs
        consumer.ack(msgs)
    return got


def test_issue_case_pending_messages_survive_and_publish_backs_off(make_transport):
    "maxlen=100, 400 published, 50 delivered but never acknowledged: before the fix 50 pending (and 250 unread) vanished."
    bus = make_transport(maxlen=100)
    crashy, rescuer = bus.queue_consumer("flights", "q", "crashy"), bus.queue_consumer("flights", "q", "rescuer")
    bus.publish_many("flights", [ev(i) for i in range(100)])
    taken = crashy.poll(50)  # delivered, then the consumer "crashes": never acknowledged
    assert len(crashy.pending()) == 50
    with pytest.raises(BackpressureError) as info:
        bus.publish_many("flights", [ev(i) for i in range(100, 400)])
    e = info.value
    assert isinstance(e, TransportError) and e.sent == 0 and e.topic == "flights" and e.groups == ("q",)
    assert "topic 'flights' is full" in str(e) and "'q' (50 pending, 50 unread)" in str(e) and "drop_group('flights', 'q')" in str(e)
    assert bus.length("flights") == 100 and len(crashy.pending()) == 50  # nothing trimmed, nothing stored
    time.sleep(0.02)
    again = rescuer.claim(min_idle_ms=1, max_messages=1000)
    assert numbers(again) == numbers(taken) == list(range(50)) and {m.deliveries for m in again} == {2}
    assert rescuer.ack(again) == 50
    rest = drain(rescuer)
    assert numbers(rest) == list(range(50, 100))
    later = []
    for i in range(100, 400, 50):  # everything acknowledged: retention trims again, as the consumer keeps up
        bus.publish_many("flights", [ev(j) for j in range(i, i + 50)])
        later += drain(rescuer)
    assert bus.length("flights") == 100
    assert numbers(later) == list(range(100, 400))  # nothing lost: all 400 were delivered


def test_publish_many_stops_at_the_first_refused_event_without_gaps(make_transport):
    bus = make_transport(maxlen=10, pipeline_size=4)  # on Redis the refusal falls inside the second batch
    slow = bus.subscribe("t", "slow")
    bus.publish_many("t", [ev(i) for i in range(6)])
    assert slow.ack(slow.poll(3)) == 3  # events 0-2 are done; 3-5 are not yet read
    with pytest.raises(BackpressureError) as info:
        bus.publish_many("t", [ev(i) for i in range(6, 20)])
    assert info.value.sent == 7  # 4 free places, then 3 acknowledged events trimmed; event 13 would need event 3 gone
    assert "7 events of this batch were" in str(info.value) or info.value.sent == 7
    assert bus.length("t") == 10
    assert numbers(drain(slow)) == list(range(3, 13))  # in order, no gap, nothing after the refusal
    bus.publish_many("t", [ev(i) for i in range(13, 20)])  # caught up: the rest goes through
    assert numbers(drain(slow)) == list(range(13, 20))


def test_unread_events_of_a_slow_subscriber_are_kept(make_transport):
    bus = make_transport(maxlen=20)
    slow, fast = bus.subscribe("t", "slow"), bus.subscribe("t", "fast")
    bus.publish_many("t", [ev(i) for i in range(20)])
    assert numbers(drain(fast)) == list(range(20))
    with pytest.raises(BackpressureError, match=r"'slow' \(0 pending, 20 unread\)") as info:
        bus.publish("t", ev(20))
    assert info.value.groups == ("slow",)  # the group that keeps up is not blamed
    assert numbers(slow.poll(5)) == list(range(5))  # read, but not yet acknowledged: still needed
    with pytest.raises(BackpressureError, match=r"'slow' \(5 pending, 15 unread\)"):
        bus.publish("t", ev(20))
    assert slow.ack([]) == 0
    pend = slow.pending()["id"].tolist()
    assert slow.ack(pend[:2]) == 2  # two done: exactly two more fit
    bus.publish("t", ev(20))
    bus.publish("t", ev(21))
    with pytest.raises(BackpressureError):
        bus.publish("t", ev(22))
    assert bus.length("t") == 20
    assert numbers(drain(fast)) == [20, 21]
    slow.ack(pend[2:])
    assert numbers(drain(slow)) == list(range(5, 22))


def test_a_topic_without_groups_trims_by_length(make_transport):
    bus = make_transport(maxlen=30)
    bus.publish_many("t", [ev(i) for i in range(100)])  # nobody needs them: plain retention by length
    assert bus.length("t") == 30
    sub = bus.subscribe("t", "s")
    assert numbers(drain(sub)) == list(range(70, 100))


def test_drop_group_gives_up_its_events_explicitly(make_transport):
    bus = make_transport(maxlen=10)
    gone = bus.subscribe("t", "abandoned")
    kept = bus.subscribe("t", "kept")
    bus.publish_many("t", [ev(i) for i in range(10)])
    gone.poll(4)
    drain(kept)
    with pytest.raises(BackpressureError, match="abandoned"):
        bus.publish("t", ev(10))
    assert bus.drop_group("t", "abandoned") is True
    assert bus.drop_group("t", "abandoned") is False
    assert bus.drop_group("never-created", "x") is False
    bus.publish_many("t", [ev(i) for i in range(10, 20)])  # the abandoned group's events were trimmed
    assert bus.length("t") == 10 and numbers(drain(kept)) == list(range(10, 20))
    with pytest.raises(DataError, match="no longer exists"):
        gone.poll()
    with pytest.raises(DataError, match="group="):
        bus.drop_group("t", "bad group")


def test_retention_respects_the_oldest_pending_message_of_any_consumer(make_transport):
    bus = make_transport(maxlen=10)
    a, b = bus.queue_consumer("t", "q", "a"), bus.queue_consumer("t", "q", "b")
    bus.publish_many("t", [ev(i) for i in range(10)])
    first = a.poll(1)  # message 0 stays pending with a
    for _ in range(3):
        b.ack(b.poll(10))
        with pytest.raises(BackpressureError, match=r"'q' \(1 pending, 0 unread\)"):
            bus.publish("t", ev(100))
    a.ack(first)
    bus.publish_many("t", [ev(i) for i in range(10, 20)])
    assert numbers(drain(b)) == list(range(10, 20))


@pytest.mark.redis
def test_redis_pending_deleted_by_another_client_goes_to_dead_letters(redis_client):
    "A pending entry removed outside mlsys (XDEL) cannot be redelivered: claim records it as a dead letter, never silently."
    bus = RedisTransport(prefix=f"test-{uuid.uuid4().hex[:10]}", client=redis_client)
    try:
        a, b = bus.queue_consumer("t", "q", "a"), bus.queue_consumer("t", "q", "b")
        bus.publish_many("t", [ev(i) for i in range(4)])
        taken = a.poll(4)
        redis_client.xdel(bus.key("t"), taken[1].id)
        time.sleep(0.02)
        again = b.claim(min_idle_ms=1)
        assert numbers(again) == [0, 2, 3]
        dead = b.dead_letters()
        assert dead["id"].tolist() == [taken[1].id] and dead["reason"].str.contains("deleted from the stream").all()
        assert b.ack(again) == 3 and b.pending().empty
    finally:
        bus.delete("t")


@pytest.mark.redis
def test_redis_pending_and_claim_see_past_the_first_page(redis_client):
    "pending() listed at most 10,000 entries, and claim() gave up after one XAUTOCLAIM scan (10 x count entries)."
    bus = RedisTransport(prefix=f"test-{uuid.uuid4().hex[:10]}", client=redis_client)
    try:
        a, b = bus.queue_consumer("t", "q", "a"), bus.queue_consumer("t", "q", "b")
        bus.publish_many("t", [ev(i) for i in range(10_050)])
        assert len(a.poll(20_000)) == 10_050
        assert len(a.pending()) == 10_050
        time.sleep(1.0)  # let every delivery become idle ...
        assert len(a.claim(min_idle_ms=0, max_messages=150)) == 150  # ... then make the first 150 fresh again
        got = b.claim(min_idle_ms=500, max_messages=10)  # one scan of 10 x 10 entries sees only fresh ones
        assert numbers(got) == list(range(150, 160)) and {m.deliveries for m in got} == {2}
    finally:
        bus.delete("t")


@pytest.mark.redis
def test_both_backends_follow_the_same_rule_randomized(redis_client):
    "Random publishes, polls, acks and claims on both backends, from three consumers in two groups: the same outcome at every step."
    import random

    seen = set()
    for trial in range(8):
        rng = random.Random(trial)
        maxlen = rng.choice([1, 3, 8, 20])
        buses = [InProcessTransport(maxlen=maxlen), RedisTransport(prefix=f"test-{uuid.uuid4().hex[:10]}", client=redis_client,
                                                                   maxlen=maxlen, pipeline_size=rng.choice([1, 3, 50]))]
        try:
            names = [("g1", "a"), ("g1", "b"), ("g2", "c")]
            cons = [[bus.queue_consumer("t", g, c) for g, c in names] for bus in buses]
            held = [[[] for _ in names] for _ in buses]  # messages each consumer holds, not yet acknowledged
            published = 0
            for step in range(100):
                op, k, size = rng.random(), rng.randrange(len(names)), rng.randrange(1, 6)
                outcome = []
                for b, bus in enumerate(buses):
                    c, h = cons[b][k], held[b][k]
                    if op < 0.35:
                        try:
                            bus.publish_many("t", [ev(published + j) for j in range(size)])
                            got = ("published", size)
                        except BackpressureError as e:
                            got = ("refused", e.sent, e.groups)
                    elif op < 0.6:
                        msgs = c.poll(size)
                        h += msgs
                        got = ("poll", numbers(msgs))
                    elif op < 0.85:
                        take = h[:size]
                        del h[:size]
                        got = ("ack", c.ack(take))
                    else:
                        msgs = c.claim(min_idle_ms=0, max_messages=size)
                        moved = set(numbers(msgs))
                        for other in held[b]:  # a claimed message moves to this consumer
                            other[:] = [m for m in other if m.event["n"] not in moved]
                        h += msgs
                        got = ("claim", numbers(msgs), [m.deliveries for m in msgs])
                    outcome.append((got, bus.length("t"), c.pending()[["consumer", "deliveries"]].values.tolist()))
                assert outcome[0] == outcome[1], (trial, step, outcome)
                if outcome[0][0][0] in ("published", "refused"):
                    published += outcome[0][0][1]
                assert outcome[0][1] <= maxlen
                seen.add(outcome[0][0][0])
                if outcome[0][0][0] == "published" and published > maxlen:
                    seen.add("trimmed")
        finally:
            buses[1].delete("t")
    assert seen == {"published", "refused", "trimmed", "poll", "ack", "claim"}
