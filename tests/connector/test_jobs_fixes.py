"""Regression tests of earlier review fixes, on RQ jobs: a look that lost its ticket's lock stores
nothing, gone marks a newer event disproves, a bad value that must not stop later escalations."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import responses
from rq.registry import ScheduledJobRegistry

from connector.config.loader import config_from_dict
from connector.config.tuning import PipelineSettings
from connector.jobs.context import Context
from connector.state import failed, queues, store, timers
from sla.events import EventKind, TicketEvent

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fakes.harness import Clock, Drained, drain, fire_scheduled, make_context, post  # noqa: E402
from fakes.sla_config import CountingEvaluator, changed, created, desk_config  # noqa: E402

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
BASE = "https://desk.test"


def run_retries(ctx: Context) -> Drained:
    """RQ's scheduler once the retries it scheduled (in real time, not the fake clock's) are due; a drain."""
    assert fire_scheduled(ctx.conn, time.time() + 86_400) > 0
    return drain(ctx)


def scheduled(conn: redis.Redis) -> list[str]:
    """Look jobs RQ scheduled for a retry (its ScheduledJobRegistry)."""
    return ScheduledJobRegistry(queue=queues.queue(conn, queues.TICKETS)).get_job_ids()


class LoseLockDuring(CountingEvaluator):
    """The real engine; once `armed`, while evaluating `ticket` its lock expires, or is taken by
    `taker` (a look that outlived its lock's TTL: a paused worker whose job RQ gave to another)."""

    def __init__(self, conn: redis.Redis, ticket: str, taker: str | None = None) -> None:
        super().__init__()
        self.conn, self.ticket, self.taker = conn, ticket, taker
        self.armed = False

    def __call__(self, policies: Any, calendars: Any, events: list[TicketEvent], now: datetime, **kw: Any):
        if self.armed and events[0].ticket_id == self.ticket:
            self.armed = False
            lock = store.lock_key("desk", self.ticket)
            if self.taker is None:
                self.conn.delete(lock)
            else:
                self.conn.set(lock, self.taker, px=60_000)
        return super().__call__(policies, calendars, events, now, **kw)


# ---------------------------------------------------------------- bug 1: storing after the lock was lost


@pytest.mark.parametrize("taker", [None, "look-desk-T-1-9"], ids=["expired", "taken"])
def test_a_look_that_lost_its_lock_stores_nothing_and_rq_retries_it(
    redis_conn: redis.Redis, taker: str | None
) -> None:
    clock = Clock(T0 + timedelta(seconds=1))
    evaluator = LoseLockDuring(redis_conn, "T-1", taker)
    ctx = make_context(redis_conn, desk_config(BASE, dry_run=True), evaluator=evaluator, clock=clock)
    ek, inbox = store.events_key("desk", "T-1"), store.inbox_key("desk", "T-1")
    post(redis_conn, "d1", "T-1", [created("T-1", T0)])
    drain(ctx)
    redis_conn.rpush(ek, redis_conn.lindex(ek, 0))  # a duplicate row: the next look compacts the log
    evaluator.armed = True
    post(redis_conn, "d2", "T-1", [changed("T-1", T0 + timedelta(seconds=2), "solved", status="solved")])
    drained = drain(ctx)
    # The log and the inbox may be another job's by now: no rewrite, no trim of rows it never saw.
    assert len(drained.failures) == 1 and "LockLost" in drained.failures[0]
    assert redis_conn.llen(ek) == 2 and redis_conn.llen(inbox) == 1  # untouched; d2 kept
    assert redis_conn.get(store.lock_key("desk", "T-1")) == (taker.encode() if taker else None)
    assert scheduled(redis_conn) == ["look-desk-T-1-2"]  # RQ retries it
    redis_conn.delete(store.lock_key("desk", "T-1"))  # the other job, if any, ended
    run_retries(ctx)
    record = store.load_record(redis_conn, "desk", "T-1")
    assert [e.event_id for e in record.events] == ["T-1-created", "solved"]
    assert record.stored_rows == 2 and redis_conn.llen(inbox) == 0  # compacted, under its own lock
    assert not redis_conn.hexists(store.QUEUED, store.member("desk", "T-1"))


def test_compaction_under_our_lock_still_rewrites_the_log(redis_conn: redis.Redis) -> None:
    clock = Clock(T0 + timedelta(seconds=1))
    config = desk_config(BASE, dry_run=True)
    ctx = make_context(redis_conn, config, evaluator=CountingEvaluator(), clock=clock)
    ek = store.events_key("desk", "T-1")
    post(redis_conn, "d1", "T-1", [created("T-1", T0)])
    drain(ctx)
    redis_conn.rpush(ek, redis_conn.lindex(ek, 0))
    post(redis_conn, "d2", "T-1", [changed("T-1", T0 + timedelta(seconds=2), "solved", status="solved")])
    drain(ctx)
    record = store.load_record(redis_conn, "desk", "T-1")
    assert [e.event_id for e in record.events] == ["T-1-created", "solved"] and record.stored_rows == 2


def deleted(ticket: str, at: datetime) -> dict:
    return TicketEvent(f"{ticket}-deleted", ticket, EventKind.DELETED, at).to_dict()


# ---------------------------------------------------------------- bug 2: a gone mark a newer event disproves


def live(conn: redis.Redis, **settings: float) -> tuple[Context, Clock, CountingEvaluator]:
    clock = Clock(T0 + timedelta(seconds=1))
    evaluator = CountingEvaluator()
    settings_ = PipelineSettings(**settings)
    ctx = make_context(conn, desk_config(BASE), settings_, evaluator=evaluator, clock=clock)
    return ctx, clock, evaluator


def desk_api(rsps: responses.RequestsMock, put_status: int = 200) -> None:
    rsps.assert_all_requests_are_fired = False
    rsps.add(responses.PUT, f"{BASE}/tickets/T-1", json={}, status=put_status)
    rsps.add(responses.GET, f"{BASE}/tickets/T-1/comments", json={"comments": []})
    rsps.add(responses.POST, f"{BASE}/tickets/T-1/comments", json={}, status=201)


def test_a_confirmed_404_mark_is_dropped_when_a_newer_event_arrives(redis_conn: redis.Redis) -> None:
    # The credentials lost sight of the ticket for a while: the product answered a confirmed 404.
    ctx, clock, evaluator = live(redis_conn)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.PUT, f"{BASE}/tickets/T-1", status=404, json={"error": "confirmed"})
        post(redis_conn, "d1", "T-1", [created("T-1", T0)])
        drain(ctx)
    record = store.load_record(redis_conn, "desk", "T-1")
    assert record.gone and record.meta["gone"] == "confirmed 404"
    assert float(record.meta["gone_at"]) == clock.now
    # Access is back; the ticket sends an event: it exists, so it is evaluated and written again.
    clock.advance(600)
    before = len(evaluator.calls)
    with responses.RequestsMock() as rsps:
        desk_api(rsps)
        post(redis_conn, "d2", "T-1", [changed("T-1", clock.dt, "u1", priority="high")])
        drain(ctx)
        assert [c.request.method for c in rsps.calls][:1] == ["PUT"]
    assert len(evaluator.calls) > before
    record = store.load_record(redis_conn, "desk", "T-1")
    assert not record.gone and "gone_at" not in record.meta and "due" in record.ledger


def test_a_mark_left_by_an_older_version_is_dropped_by_an_event_newer_than_the_log(
    redis_conn: redis.Redis,
) -> None:
    ctx, clock, evaluator = live(redis_conn)
    post(redis_conn, "d1", "T-1", [created("T-1", T0)])
    with responses.RequestsMock() as rsps:
        desk_api(rsps)
        drain(ctx)
    redis_conn.hset(store.ticket_key("desk", "T-1"), "#gone", "confirmed 404")  # no "#gone_at"
    clock.advance(5)
    with responses.RequestsMock() as rsps:
        desk_api(rsps)
        post(redis_conn, "d2", "T-1", [changed("T-1", T0 + timedelta(seconds=3), "u1", status="solved")])
        drain(ctx)
        assert [c.request.method for c in rsps.calls] == ["PUT"]  # "sla-open" removed
    assert not store.load_record(redis_conn, "desk", "T-1").gone


def test_a_late_old_event_or_a_deletion_keeps_the_mark(redis_conn: redis.Redis) -> None:
    ctx, clock, evaluator = live(redis_conn)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.PUT, f"{BASE}/tickets/T-1", status=404, json={"error": "confirmed"})
        post(redis_conn, "d1", "T-1", [created("T-1", T0)])
        drain(ctx)
    clock.advance(600)
    before = len(evaluator.calls)
    with responses.RequestsMock() as rsps:  # no call may be made
        # A webhook from before the mark, redelivered late, proves nothing; nor does a deletion.
        post(redis_conn, "d2", "T-1", [changed("T-1", T0 + timedelta(seconds=0.5), "u1", priority="high")])
        post(redis_conn, "d3", "T-1", [deleted("T-1", clock.dt)])
        drain(ctx)
    assert len(evaluator.calls) == before
    assert store.load_record(redis_conn, "desk", "T-1").gone


def test_a_closed_ticket_mark_of_another_status_stays_final(redis_conn: redis.Redis) -> None:
    ctx, clock, evaluator = live(redis_conn)
    closed = {"details": {"status": [{"description": "Status: closed prevents ticket update"}]}}
    with responses.RequestsMock() as rsps:
        rsps.add(responses.PUT, f"{BASE}/tickets/T-1", status=422, json=closed)
        post(redis_conn, "d1", "T-1", [created("T-1", T0)])
        drain(ctx)
        clock.advance(600)
        post(redis_conn, "d2", "T-1", [changed("T-1", clock.dt, "u1", priority="high")])
        drain(ctx)
        assert len(rsps.calls) == 1
    assert store.load_record(redis_conn, "desk", "T-1").meta["gone"] == "HTTP 422"


def test_failed_retry_of_a_ticket_marked_gone_clears_the_mark_and_looks_again(
    redis_conn: redis.Redis,
) -> None:
    ctx, clock, evaluator = live(redis_conn)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.PUT, f"{BASE}/tickets/T-1", status=404, json={"error": "confirmed"})
        post(redis_conn, "d1", "T-1", [created("T-1", T0)])
        drain(ctx)
    assert failed.list_failed(redis_conn) == []  # gone, not failed: yet an admin can name it
    assert failed.retry_failed(redis_conn, ["ticket:desk:T-1", "ticket:desk:T-404", "ticket:T-1"]) == 1
    meta = redis_conn.hgetall(store.ticket_key("desk", "T-1"))
    assert b"#gone" not in meta and b"#gone_at" not in meta
    with responses.RequestsMock() as rsps:
        desk_api(rsps)
        drain(ctx)
        assert [c.request.method for c in rsps.calls][:1] == ["PUT"]
    assert "due" in store.load_record(redis_conn, "desk", "T-1").ledger


def test_failed_retry_accepts_instance_names_with_colons(redis_conn: redis.Redis) -> None:
    redis_conn.hset(store.ticket_key("a:b", "7"), "#gone", "confirmed 404")
    assert failed.retry_failed(redis_conn, ["ticket:a:b:7"]) == 1
    assert not redis_conn.hexists(store.ticket_key("a:b", "7"), "#gone")
    # The ticket wants a look (a dispatch is asked for): its member keeps the instance name whole.
    assert redis_conn.zrange(store.WANT, 0, -1) == [b"a:b\n7"]
    assert queues.queue(redis_conn, queues.DISPATCH).count == 1


# ---------------------------------------------------------------- bug 3: a bad value, later checks


def bad_priority_config() -> Any:
    """testdesk, 10s target: at the breach a tag and priority "critical" (the product has no such
    priority: a bad value); one hour after the breach, a comment."""
    from fakes import testdesk

    testdesk.register()
    targets = dict.fromkeys(("low", "normal", "high", "urgent"), "10s")
    policy = {
        "id": "test",
        "version": 1,
        "metrics": {"resolution": {"calendar": "always", "targets": targets}},
        "escalations": [
            {
                "name": "breach",
                "metric": "resolution",
                "at": "breach",
                "actions": [{"tag": "sla-breached"}, {"priority": "critical"}],
            },
            {"name": "late", "metric": "resolution", "after": "1h", "actions": [{"comment": "still open"}]},
        ],
    }
    raw = {
        "instances": {"desk": {"product": "testdesk", "dry_run": False, "base_url": BASE}},
        "calendars": {"always": {"timezone": "UTC", "hours": "24x7"}},
        "policies": [policy],
    }
    return config_from_dict(raw, env={}, source="<test>")


def test_a_bad_value_does_not_stop_the_later_escalations(redis_conn: redis.Redis) -> None:
    clock = Clock(T0 + timedelta(seconds=1))
    settings = PipelineSettings(max_attempts=3, backoff_base_s=1, backoff_cap_s=5)
    ctx = make_context(redis_conn, bad_priority_config(), settings, clock=clock)  # the real evaluate
    with responses.RequestsMock() as rsps:
        desk_api(rsps)
        post(redis_conn, "d1", "T-1", [created("T-1", T0)])
        drain(ctx)
        for _ in range(50):  # fire every timer as it comes due, for three hours
            due = timers.due_at(redis_conn, "desk", "T-1")
            if due is None or due > (T0 + timedelta(hours=3)).timestamp():
                break
            clock.now = max(clock.now, due)
            drain(ctx, fire_timers_at=clock.now)
        posts = [c for c in rsps.calls if c.request.method == "POST"]
    assert len(posts) == 1 and "still open" in posts[0].request.body.decode()
    assert clock.now >= (T0 + timedelta(hours=1, seconds=10)).timestamp()
    # The bad value is recorded once as rejected, naming the effect; the ticket is not failed.
    assert failed.failed_count(redis_conn) == 0
    assert [e["kind"] for e in failed.list_failed(redis_conn)] == ["refused"]
    record = store.load_record(redis_conn, "desk", "T-1")
    [(key, rejection)] = record.rejected.items()
    assert key.startswith("action:") and rejection["value"] == "critical"
    assert "critical" in rejection["reason"]
