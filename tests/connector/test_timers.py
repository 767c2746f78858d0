from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis

from connector.config.tuning import PipelineSettings
from connector.jobs import dispatcher
from connector.state import queues, store, timers

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fakes.harness import Clock, drain, make_context, post  # noqa: E402
from fakes.sla_config import created, desk_config  # noqa: E402

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def wanting(conn: redis.Redis) -> list[tuple[str, str, float]]:
    return [(*store.split_member(m), score) for m, score in conn.zrange(store.WANT, 0, -1, withscores=True)]


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
    # Into the tickets wanting a look, since their due instant (the oldest waits longest).
    assert wanting(redis_conn) == [("acme", "T-1", 100.0), ("zen", "42", 150.0)]
    assert timers.pending(redis_conn) == 1 and timers.due_at(redis_conn, "acme", "T-3") == 500.0


def test_a_due_timer_keeps_an_earlier_wish_for_a_look(redis_conn: redis.Redis) -> None:
    redis_conn.zadd(store.WANT, {store.member("acme", "T-1"): 50.0})  # a delivery asked first
    timers.schedule(redis_conn, "acme", "T-1", 100.0)
    assert timers.move_due(redis_conn, 160.0) == 1
    assert wanting(redis_conn) == [("acme", "T-1", 50.0)] and timers.pending(redis_conn) == 0


def test_move_due_respects_the_batch_limit(redis_conn: redis.Redis) -> None:
    for i in range(25):
        timers.schedule(redis_conn, "acme", f"T-{i}", float(i))
    assert timers.move_due(redis_conn, 100.0, limit=10) == 10
    assert timers.move_due(redis_conn, 100.0, limit=10) == 10
    assert timers.move_due(redis_conn, 100.0, limit=10) == 5
    assert redis_conn.zcard(store.WANT) == 25


def test_cancel(redis_conn: redis.Redis) -> None:
    timers.schedule(redis_conn, "acme", "T-1", 1.0)
    timers.cancel(redis_conn, "acme", "T-1")
    assert timers.move_due(redis_conn, 10.0) == 0


def test_the_dispatch_job_turns_due_timers_into_one_look_job_each(redis_conn: redis.Redis) -> None:
    clock = Clock(T0)
    ctx = make_context(redis_conn, desk_config(dry_run=True), PipelineSettings(), clock=clock)
    for ticket in ("T-1", "T-2"):
        timers.schedule(redis_conn, "desk", ticket, clock.now - 1)
    timers.schedule(redis_conn, "desk", "T-3", clock.now + 60)
    assert dispatcher.dispatch(ctx) == 2
    tickets = queues.queue(redis_conn, queues.TICKETS)
    assert sorted(tickets.job_ids) == ["look-desk-T-1-1", "look-desk-T-2-2"]
    assert [job.args for job in tickets.jobs] == [("desk", "T-1"), ("desk", "T-2")]
    assert dispatcher.dispatch(ctx) == 0  # claimed: neither a second job nor a second look
    assert timers.pending(redis_conn) == 1


def test_a_look_that_starts_early_writes_nothing_and_keeps_the_next_look(redis_conn: redis.Redis) -> None:
    # RQ's scheduling and the dispatch tick are whole seconds, and hosts' clocks differ: a timer may be
    # moved before its instant. The look finds nothing due yet and keeps the timer at that instant.
    clock = Clock(T0 + timedelta(seconds=1))
    ctx = make_context(redis_conn, desk_config(dry_run=True, target="10s"), PipelineSettings(), clock=clock)
    post(redis_conn, "d1", "T-1", [created("T-1", T0)])
    drain(ctx)
    due = (T0 + timedelta(seconds=10)).timestamp()
    assert timers.due_at(redis_conn, "desk", "T-1") == due
    ledger = store.load_record(redis_conn, "desk", "T-1").dry_ledger
    clock.now = due - 0.7  # the look runs 0.7 s early
    early = drain(ctx, fire_timers_at=due)
    assert early.tickets == ["T-1"] and early.effects == 0
    assert store.load_record(redis_conn, "desk", "T-1").dry_ledger == ledger
    assert timers.due_at(redis_conn, "desk", "T-1") == due  # still the instant, not "now + a bit"
    clock.now = due
    on_time = drain(ctx, fire_timers_at=due)
    assert on_time.effects == 2  # the breach: its tag and its comment, once
    assert set(store.load_record(redis_conn, "desk", "T-1").dry_ledger) - set(ledger) == {
        "tag:sla-breached", "comment:test/resolution:breach"}
