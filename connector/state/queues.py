"""The connector's RQ queues and how work is put on them; shared by the receiver, the jobs and the CLI.

Two queues, both plain RQ (`rq info`, rq-dashboard and `rq requeue` see them):
- `sla-dispatch`: `connector.jobs.dispatch`, run every second by RQ's cron scheduler and whenever
  the receiver accepted a delivery for a ticket that had no job: it turns due timers and waiting
  tickets into ticket jobs (many per `enqueue_many` call). Workers listen to it first.
- `sla-tickets`: `connector.jobs.look(instance, ticket)`, one job per ticket look. Deliveries of a
  ticket that arrive while its job is queued or running join that look (see connector/state/store.py).
Jobs take primitives (an instance and a ticket id) and use RQ's default serializer, as RQ's cron
scheduler, `rq requeue` and rq-dashboard do without options; ids read "look-<instance>-<ticket>-<n>".
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from typing import Any

from rq import Callback, Queue, Retry

from connector.config.tuning import PipelineSettings

DISPATCH = "sla-dispatch"
TICKETS = "sla-tickets"
QUEUES = (DISPATCH, TICKETS)  # in the order workers listen to them

# A failing dispatch (e.g. a worker without the configuration) fails every second: RQ keeps only the
# last ten minutes of them, enough to read the error, never a day of records.
DISPATCH_FAILURE_TTL_S = 600

LOOK = "connector.jobs.look"
DISPATCH_FUNC = "connector.jobs.dispatch"
ON_LOOK_FAILURE = "connector.jobs.on_look_failure"

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def queue(conn: Any, name: str) -> Queue:
    return Queue(name, connection=conn)


def job_id(instance: str, ticket: str, seq: int | str) -> str:
    """RQ allows letters, digits, `_` and `-` in ids: other characters become `_` (the sequence
    number keeps ids unique)."""
    return f"look-{_UNSAFE.sub('_', instance)}-{_UNSAFE.sub('_', ticket)}-{seq}"


def retry_policy(settings: PipelineSettings) -> Retry | None:
    """RQ's Retry with exponential backoff and jitter (RQ has neither built in: an interval list)."""
    if settings.max_attempts < 2:
        return None
    intervals = []
    for attempt in range(1, settings.max_attempts):
        ceiling = min(settings.backoff_cap_s, settings.backoff_base_s * 2 ** (attempt - 1))
        intervals.append(max(1, round(random.uniform(min(ceiling, settings.backoff_base_s / 2), ceiling))))
    return Retry(max=settings.max_attempts - 1, interval=intervals)


def enqueue_looks(conn: Any, claims: Iterable[tuple[str, str, str]], settings: PipelineSettings) -> int:
    """Enqueue one look job per (instance, ticket, job id), in one pipeline; how many."""
    q = queue(conn, TICKETS)
    data = [
        Queue.prepare_data(
            LOOK, args=(instance, ticket), job_id=jid, timeout=settings.job_timeout_s, result_ttl=0,
            failure_ttl=settings.failure_ttl_s, retry=retry_policy(settings),
            on_failure=Callback(ON_LOOK_FAILURE), description=f"look at {instance} ticket {ticket}",
        )
        for instance, ticket, jid in claims
    ]
    if not data:
        return 0
    with conn.pipeline() as pipe:
        q.enqueue_many(data, pipeline=pipe)
        pipe.execute()
    return len(data)


def enqueue_dispatch(conn: Any, settings: PipelineSettings | None = None) -> None:
    """Ask for a dispatch pass now (the receiver, after a delivery for a ticket without a job)."""
    settings = settings or PipelineSettings()
    queue(conn, DISPATCH).enqueue(
        DISPATCH_FUNC, job_timeout=settings.job_timeout_s, result_ttl=0, failure_ttl=DISPATCH_FAILURE_TTL_S,
        description="dispatch: due timers and waiting tickets to look jobs",
    )
