"""First sight: a ticket first seen without its creation gets its history read once.

A webhook installed after a ticket was created (or a creation webhook lost) leaves the ticket's log
without its start: its first response and resolution cannot be measured. So when a look stores
deliveries for a ticket whose log has no creation event, it asks (`after_look`) for one
`read_history(instance, ticket)` job (queue sla-tickets): the product's backfill reader reads that
one ticket (Jira: the issue, its changelog and comments; Zendesk: the ticket and its audits) and its
events join the ticket's inbox as backfill's do, so the next look measures it from its creation.

Once per ticket: the mark `#history` on the ticket's hash is set (HSETNX) before the job is enqueued,
so neither a second delivery nor a second worker asks again. A 429 enqueues the read again after
Retry-After; other API errors are retried by RQ (backoff), then the job stays in RQ's failed registry.
A ticket the product no longer shows (404) is left as it is.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from typing import Any

from rq import get_current_job

from adapters.base import NotFound, RateLimited
from connector import backfill
from connector.jobs.context import Context, current
from connector.jobs.reconcile import can_read_changes, worker_reader
from connector.state import queues, status, store

log = logging.getLogger("sla_connector.history")

MARK = "history"  # bookkeeping field of the ticket's hash: "#history" = epoch the read was asked for
READ_FUNC = "connector.jobs.history.read_history_job"
JOB_TIMEOUT_S = 120
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def after_look(
    ctx: Context, instance: str, ticket: str, deliveries: int, creation_missing: bool
) -> str | None:
    """Called by the look once it stored: ask for the history read if this is the first sight of a
    ticket without its creation. The id of the job enqueued, or None."""
    if not deliveries or not creation_missing:  # events from backfill or reconcile bring their creation
        return None
    cfg = ctx.config.instances.get(instance)
    if cfg is None or not can_read_changes(cfg.product):
        return None
    key = store.ticket_key(instance, ticket)
    if not ctx.conn.hsetnx(key, store.META + MARK, repr(ctx.clock())):
        return None  # asked for before: never again
    if ctx.conn.ttl(key) == -1:  # the mark made the hash: it lives as the ticket's log does
        ctx.conn.expire(key, ctx.settings.open_ttl_s)
    return enqueue(ctx, instance, ticket)


def enqueue(ctx: Context, instance: str, ticket: str, delay_s: float = 0) -> str:
    job_id = f"history-{_UNSAFE.sub('_', instance)}-{_UNSAFE.sub('_', ticket)}-{ctx.conn.incr(store.SEQ)}"
    q = queues.queue(ctx.conn, queues.TICKETS)
    options: dict[str, Any] = {
        "job_id": job_id,
        "job_timeout": JOB_TIMEOUT_S,
        "result_ttl": 0,
        "failure_ttl": ctx.settings.failure_ttl_s,
        "retry": queues.retry_policy(ctx.settings),
        "description": f"read the history of {instance} ticket {ticket} (first seen without its creation)",
    }
    if delay_s > 0:  # RQ's scheduler (in every connector worker) enqueues it then
        q.enqueue_in(timedelta(seconds=delay_s), READ_FUNC, instance, ticket, **options)
    else:
        q.enqueue(READ_FUNC, instance, ticket, **options)
    log.info(
        "history read asked for",
        extra={"event": "history_requested", "instance": instance, "ticket": ticket, "job": job_id},
    )
    return job_id


def read_history(ctx: Context, instance: str, ticket: str) -> dict[str, Any]:
    """Read one ticket's history and put the events its log lacks into its inbox (the job's body)."""
    cfg = ctx.config.instances.get(instance)
    fields = {"instance": instance, "ticket": ticket}
    if cfg is None:
        log.warning("history read: unknown instance", extra={**fields, "event": "history_skipped"})
        return {**fields, "events": 0, "new": 0, "skipped": "unknown instance"}
    reader = worker_reader(cfg)
    try:
        events = reader.events(reader.ticket(ticket))
    except NotFound as exc:
        log.warning(
            "history read: the product does not show the ticket",
            extra={**fields, "event": "history_not_found", "error": str(exc)},
        )
        return {**fields, "events": 0, "new": 0, "skipped": "not found"}
    except RateLimited as exc:
        job_id = enqueue(ctx, instance, ticket, delay_s=max(1.0, float(exc.retry_after or 0)))
        return {**fields, "events": 0, "new": 0, "skipped": f"rate limited: read again by {job_id}"}
    outcome = backfill.append_events(
        ctx.conn, instance, ticket, events, ctx.clock(), dry_run=False, retention_s=ctx.settings.retention_s
    )
    status.incr(ctx.conn, "history_reads", {"instance": instance, "product": cfg.product})
    log.info(
        "history read",
        extra={**fields, "event": "history_read", "events": outcome.events, "new": outcome.new},
    )
    return {**fields, "events": outcome.events, "new": outcome.new, "skipped": outcome.skipped}


def read_history_job(instance: str, ticket: str) -> dict[str, Any]:
    job = get_current_job()
    return read_history(current(job.connection if job else None), instance, ticket)
