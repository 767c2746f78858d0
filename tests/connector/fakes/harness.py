"""Helpers for job tests: post deliveries through intake, run the connector's RQ jobs in-process.

`drain` runs a real RQ SimpleWorker (burst) on the connector's queues against the test Redis, with a
test context installed (a fake clock, a counting evaluator); `retries=True` moves the retries RQ
scheduled to their queue, as RQ's scheduler does once their (wall-clock) backoff has passed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
from rq import SimpleWorker
from rq.job import Job
from rq.registry import ScheduledJobRegistry

from connector.config.tuning import PipelineSettings
from connector.jobs import context, dispatcher
from connector.jobs.context import Context
from connector.receiver.intake import accept
from connector.state import queues, timers


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


def make_context(
    conn: redis.Redis, config: Any, settings: PipelineSettings | None = None, *, evaluator: Any = None,
    clock: Any = None,
) -> Context:
    kwargs: dict[str, Any] = {"config": config, "settings": settings or PipelineSettings(), "conn": conn}
    if evaluator is not None:
        kwargs["evaluator"] = evaluator
    if clock is not None:
        kwargs["clock"] = clock
    return Context(**kwargs)


def post(
    conn: redis.Redis, delivery: str, ticket: str, events: list[dict], instance: str = "desk", **extra: Any
) -> bool:
    payload = {"delivery": delivery, "ticket": ticket, "events": events, **extra}
    return accept(conn, instance, delivery, ticket, payload, {}, datetime.now(UTC))


@dataclass
class Drained:
    """What a `drain` ran: the look jobs' results, and the look jobs that failed (RQ's word)."""

    looks: list[dict] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def tickets(self) -> list[str]:
        return [r["ticket"] for r in self.looks]

    @property
    def failed_deliveries(self) -> int:
        return sum(r["failed_deliveries"] for r in self.looks)

    @property
    def effects(self) -> int:
        return sum(r["effects"] for r in self.looks)


class RecordingWorker(SimpleWorker):
    """RQ's SimpleWorker that also keeps each look's result (the jobs keep none: result_ttl=0)."""

    drained: Drained

    def subscribe(self) -> None:
        """No pubsub listener: tests send no commands, and with RQ 3 and redis-py 8 its thread can make
        the worker's shutdown wait 60 s."""

    def handle_job_success(self, job: Job, queue: Any, *args: Any, **kwargs: Any) -> None:
        if job.func_name == queues.LOOK:
            self.drained.looks.append(job._result)
        super().handle_job_success(job, queue, *args, **kwargs)

    def handle_job_failure(self, job: Job, queue: Any, *args: Any, **kwargs: Any) -> None:
        exc_string = str(kwargs.get("exc_string", args[1] if len(args) > 1 else "")).strip()
        self.drained.failures.append(exc_string.splitlines()[-1] if exc_string else job.id)
        super().handle_job_failure(job, queue, *args, **kwargs)


def fire_scheduled(conn: redis.Redis, at_epoch: float) -> int:
    """Move the jobs RQ scheduled (retries) due at `at_epoch` to their queue, as RQ's scheduler does."""
    moved = 0
    for name in queues.QUEUES:
        registry = ScheduledJobRegistry(queue=queues.queue(conn, name))
        job_ids = registry.get_jobs_to_schedule(int(at_epoch))
        q = queues.queue(conn, name)
        for job in Job.fetch_many(job_ids, connection=conn):
            if job is not None:
                q.enqueue_job(job)
                moved += 1
        for job_id in job_ids:
            registry.remove(job_id)
    return moved


def drain(
    ctx: Context, fire_timers_at: float | None = None, *, dispatch: bool = True, retries: bool = False
) -> Drained:
    """Run every queued job through a real RQ SimpleWorker in this process: first the connector's timers
    due at `fire_timers_at` (the fake clock's time) are moved, the tickets wanting a look dispatched,
    and, with `retries`, every retry RQ scheduled is moved to its queue as if its backoff had passed
    (RQ schedules in wall-clock time, which a fake clock does not move)."""
    conn = ctx.conn
    context.install(ctx)
    try:
        if fire_timers_at is not None:
            timers.move_due(conn, fire_timers_at)
        if retries:
            fire_scheduled(conn, time.time() + 86400)
        if dispatch:
            dispatcher.dispatch(ctx)
        worker = RecordingWorker([queues.queue(conn, q) for q in queues.QUEUES], connection=conn)
        worker.drained = Drained()
        worker.work(burst=True, logging_level="WARNING")
        return worker.drained
    finally:
        context.install(None)


def register_connector_worker(conn: redis.Redis, config: Any, name: str) -> None:
    """A ConnectorWorker registered as `sla-connector worker` started with `config` registers (its RQ
    worker hash with the digest of the policies it runs); nothing runs jobs."""
    from connector.jobs.worker import ConnectorWorker

    context.install(Context(config))
    try:
        ConnectorWorker([queues.queue(conn, queues.TICKETS)], connection=conn, name=name).register_birth()
    finally:
        context.install(None)
