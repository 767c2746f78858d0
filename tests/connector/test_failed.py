from __future__ import annotations

import json

import redis

from connector import failed, store


def test_list_retry_and_purge_by_id_and_all(redis_conn: redis.Redis) -> None:
    fields = {
        b"k": b"e",
        b"i": b"acme",
        b"d": b"d-1",
        b"t": b"T-1",
        b"p": b'{"a":1}',
        b"h": b"{}",
        b"r": b"1.5",
    }
    failed.record_event(redis_conn, "acme", "d-1", fields, "ValueError: bad", now=10.0)
    failed.record_ticket(redis_conn, "acme", "T-2", "ServerError (HTTP 503): busy", 8, now=5.0)
    redis_conn.hset(store.ticket_key("acme", "T-2"), "#attempts", "8")
    listed = failed.list_failed(redis_conn)
    assert [e["id"] for e in listed] == ["ticket:acme:T-2", "event:acme:d-1"]  # oldest first
    assert listed[1] == {
        "id": "event:acme:d-1",
        "kind": "event",
        "instance": "acme",
        "ticket": "T-1",
        "delivery": "d-1",
        "error": "ValueError: bad",
        "attempts": 1,
        "failed_at": 10.0,
    }
    assert failed.failed_count(redis_conn) == 2

    assert failed.retry_failed(redis_conn, ["ticket:acme:T-2", "nope"]) == 1
    assert not redis_conn.hexists(store.ticket_key("acme", "T-2"), "#attempts")  # a fresh start
    [(_, look_again)] = redis_conn.xrange(store.STREAM)
    assert look_again == {b"k": b"t", b"i": b"acme", b"t": b"T-2", b"x": b"1"}

    assert failed.retry_failed(redis_conn) == 1  # all that is left: the delivery, replayed as it was
    replayed = redis_conn.xrange(store.STREAM)[1][1]
    assert replayed == {**fields, b"x": b"1"}
    assert failed.list_failed(redis_conn) == [] and failed.retry_failed(redis_conn) == 0


def test_purge(redis_conn: redis.Redis) -> None:
    for i in range(3):
        failed.record_ticket(redis_conn, "acme", f"T-{i}", "boom", 8)
    assert failed.purge_failed(redis_conn, []) == 0
    assert failed.purge_failed(redis_conn, ["ticket:acme:T-0", "unknown"]) == 1
    assert failed.purge_failed(redis_conn) == 2
    assert failed.purge_failed(redis_conn) == 0
    assert redis_conn.xlen(store.STREAM) == 0


def test_long_errors_are_cut(redis_conn: redis.Redis) -> None:
    failed.record_ticket(redis_conn, "acme", "T-1", "x" * 5000, 8)
    assert len(json.loads(redis_conn.hget(store.FAILED, "ticket:acme:T-1"))["error"]) == 2000


def _refuse(conn: redis.Redis, instance: str, ticket: str) -> None:
    """What the pipeline records for a refused effect (retries.record_rejected)."""
    conn.hset(store.ticket_key(instance, ticket), store.LEDGER_REJECTED + "tag:x",
              store.encode_rejection("x", "labels: bad", 100.0))
    conn.sadd(store.REFUSED, failed.ticket_id(instance, ticket))


def test_purge_counts_each_listed_id_once_whichever_list_holds_it(redis_conn: redis.Redis) -> None:
    failed.record_ticket(redis_conn, "acme", "1", "boom", 8, 50.0)
    _refuse(redis_conn, "acme", "2")
    assert failed.purge_failed(redis_conn, ["ticket:acme:1", "ticket:acme:2", "ticket:acme:9"]) == 2
    assert failed.list_failed(redis_conn) == []
    failed.record_ticket(redis_conn, "acme", "3", "boom", 8, 50.0)
    _refuse(redis_conn, "acme", "4")
    assert len(failed.list_failed(redis_conn)) == 2
    assert failed.purge_failed(redis_conn) == 2  # --all: what `list` showed
    assert failed.list_failed(redis_conn) == []


def test_retry_all_forgets_a_ticket_whose_refusals_were_superseded(redis_conn: redis.Redis) -> None:
    _refuse(redis_conn, "acme", "5")
    # A new value was written since: the pipeline dropped the rej: field.
    redis_conn.hdel(store.ticket_key("acme", "5"), store.LEDGER_REJECTED + "tag:x")
    redis_conn.hset(store.ticket_key("acme", "5"), "tag:x", "x")
    assert failed.list_failed(redis_conn) == []
    assert failed.retry_failed(redis_conn) == 0
    assert not redis_conn.sismember(store.REFUSED, failed.ticket_id("acme", "5"))
