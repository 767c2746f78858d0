"""Regression tests for the pipeline fixes of the fourth review (lost compaction, gone marks, bad values)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis

from connector import store
from connector.pipeline import Processor
from sla.events import TicketEvent

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fakes.harness import Clock, drain, post  # noqa: E402
from fakes.sla_config import CountingEvaluator, changed, created, desk_config  # noqa: E402

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
BASE = "https://desk.test"


class LockExpiresDuring(CountingEvaluator):
    """The real engine; while evaluating `ticket`, its lock expires (a slow batch outlived the TTL)."""

    def __init__(self, conn: redis.Redis, ticket: str) -> None:
        super().__init__()
        self.conn, self.ticket = conn, ticket

    def __call__(self, policies: Any, calendars: Any, events: list[TicketEvent], now: datetime, **kw: Any):
        if events[0].ticket_id == self.ticket:
            self.conn.delete(store.lock_key("desk", self.ticket))
        return super().__call__(policies, calendars, events, now, **kw)


# ---------------------------------------------------------------- bug 1: compaction after the lock expired


def test_new_events_are_stored_when_the_lock_expires_before_a_compaction(redis_conn: redis.Redis) -> None:
    clock = Clock(T0 + timedelta(seconds=1))
    evaluator = LockExpiresDuring(redis_conn, "T-1")
    processor = Processor(redis_conn, desk_config(BASE, dry_run=True), evaluator=evaluator, clock=clock)
    ek = store.events_key("desk", "T-1")
    post(redis_conn, "d1", "T-1", [created("T-1", T0)])
    drain(redis_conn, processor)
    redis_conn.rpush(ek, redis_conn.lindex(ek, 0))  # a duplicate row (as a deferred append leaves): compact
    post(redis_conn, "d2", "T-1", [changed("T-1", T0 + timedelta(seconds=2), "solved", status="solved")])
    drain(redis_conn, processor)
    # The entry was acknowledged and deleted: its event must be in the log.
    assert redis_conn.xlen(store.STREAM) == 0
    record = store.load_record(redis_conn, "desk", "T-1")
    assert [e.event_id for e in record.events] == ["T-1-created", "solved"]
    assert record.stored_rows == 3  # not compacted (the lock was not ours): appended


def test_compaction_under_our_lock_still_rewrites_the_log(redis_conn: redis.Redis) -> None:
    clock = Clock(T0 + timedelta(seconds=1))
    config = desk_config(BASE, dry_run=True)
    processor = Processor(redis_conn, config, evaluator=CountingEvaluator(), clock=clock)
    ek = store.events_key("desk", "T-1")
    post(redis_conn, "d1", "T-1", [created("T-1", T0)])
    drain(redis_conn, processor)
    redis_conn.rpush(ek, redis_conn.lindex(ek, 0))
    post(redis_conn, "d2", "T-1", [changed("T-1", T0 + timedelta(seconds=2), "solved", status="solved")])
    drain(redis_conn, processor)
    record = store.load_record(redis_conn, "desk", "T-1")
    assert [e.event_id for e in record.events] == ["T-1-created", "solved"] and record.stored_rows == 2
