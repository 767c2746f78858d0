"""Helpers for pipeline tests: post deliveries through intake, drain the stream with a Processor."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import redis

from connector import store, timers
from connector.intake import accept
from connector.pipeline import BatchReport, Processor
from connector.worker import ensure_group


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start.timestamp()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    @property
    def dt(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)


def post(
    conn: redis.Redis, delivery: str, ticket: str, events: list[dict], instance: str = "desk", **extra: Any
) -> bool:
    payload = {"delivery": delivery, "ticket": ticket, "events": events, **extra}
    return accept(conn, instance, delivery, ticket, payload, {}, datetime.now(UTC))


def drain(
    conn: redis.Redis,
    processor: Processor,
    consumer: str = "test",
    fire_timers_at: float | None = None,
    count: int = 100,
) -> list[BatchReport]:
    """Process everything on the stream (optionally first moving timers due at `fire_timers_at`)."""
    ensure_group(conn)
    if fire_timers_at is not None:
        timers.move_due(conn, fire_timers_at)
    reports = []
    while True:
        batch = conn.xreadgroup(store.GROUP, consumer, {store.STREAM: ">"}, count=count)
        if not batch or not batch[0][1]:
            return reports
        reports.append(processor.process(batch[0][1]))
