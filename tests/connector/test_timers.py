from __future__ import annotations

import redis

from connector import store, timers


def test_schedule_keeps_the_earliest_instant(redis_conn: redis.Redis) -> None:
    timers.schedule(redis_conn, "acme", "T-1", 200.0)
    timers.schedule(redis_conn, "acme", "T-1", 300.0)  # later: the earlier one stays
    assert timers.due_at(redis_conn, "acme", "T-1") == 200.0
    timers.schedule(redis_conn, "acme", "T-1", 100.0)
    assert timers.due_at(redis_conn, "acme", "T-1") == 100.0
    assert timers.pending(redis_conn) == 1


def test_move_due_moves_only_due_timers_exactly_once(redis_conn: redis.Redis) -> None:
    timers.schedule(redis_conn, "acme", "T-1", 100.0)
    timers.schedule(redis_conn, "zen", "42", 150.0)
    timers.schedule(redis_conn, "acme", "T-3", 500.0)
    assert timers.move_due(redis_conn, 160.0) == 2
    assert timers.move_due(redis_conn, 160.0) == 0
    moved = [{k.decode(): v.decode() for k, v in f.items()} for _, f in redis_conn.xrange(store.STREAM)]
    assert moved == [
        {"k": "t", "i": "acme", "t": "T-1", "r": "160.0"},
        {"k": "t", "i": "zen", "t": "42", "r": "160.0"},
    ]
    assert timers.pending(redis_conn) == 1 and timers.due_at(redis_conn, "acme", "T-3") == 500.0


def test_move_due_respects_the_batch_limit(redis_conn: redis.Redis) -> None:
    for i in range(25):
        timers.schedule(redis_conn, "acme", f"T-{i}", float(i))
    assert timers.move_due(redis_conn, 100.0, limit=10) == 10
    assert timers.move_due(redis_conn, 100.0, limit=10) == 10
    assert timers.move_due(redis_conn, 100.0, limit=10) == 5
    assert redis_conn.xlen(store.STREAM) == 25


def test_cancel(redis_conn: redis.Redis) -> None:
    timers.schedule(redis_conn, "acme", "T-1", 1.0)
    timers.cancel(redis_conn, "acme", "T-1")
    assert timers.move_due(redis_conn, 10.0) == 0
