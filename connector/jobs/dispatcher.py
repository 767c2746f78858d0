"""The dispatch job: due timers and waiting tickets into look jobs, and lost claims found again.

It runs every `tick_s` (RQ's cron scheduler) and whenever the receiver kept a delivery for a ticket
that had no job. Several dispatchers at once are safe: moving timers and claiming tickets are
atomic scripts. Claiming then enqueueing is two steps; a dispatcher that dies between them leaves a
claim without a job, which the sweep (every `sweep_every_s`) finds and puts back.
"""

from __future__ import annotations

import logging
from typing import Any

from redis.commands.core import Script
from rq.job import Job

from connector.config.tuning import PipelineSettings
from connector.jobs.context import Context
from connector.jobs.ticket import claim_wanted
from connector.state import outcomes, queues, store, timers

log = logging.getLogger("sla_connector.jobs")

_LIVE = {"queued", "started", "scheduled", "deferred", "rate_limited"}  # RQ job states still to run

_UNCLAIM = Script(
    None,
    b"""
-- KEYS: queued, want; ARGV: member, the claim found without a job, now
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], 'NX', ARGV[3], ARGV[1])
return 1
""",
)


def dispatch(ctx: Context) -> int:
    """One pass; the number of look jobs enqueued."""
    conn, settings = ctx.conn, ctx.settings
    conn.delete(store.DISPATCH_FLAG)  # deliveries from now on ask for another pass
    now = ctx.clock()
    timers.move_due(conn, now, 10 * settings.dispatch_batch)
    if conn.set(store.SWEPT, "1", nx=True, ex=max(1, int(settings.sweep_every_s))):
        sweep_lost(ctx)
        outcomes.trim(conn, ctx.config.instances, now, settings.open_ttl_s, settings.outcome_retention_s)
    return enqueue_wanted(conn, settings, now)


def enqueue_wanted(conn: Any, settings: PipelineSettings, now: float) -> int:
    """Claim the tickets wanting a look (one job per ticket at a time) and enqueue their look jobs, in
    batches of `dispatch_batch`; the number of jobs enqueued."""
    enqueued = 0
    while claims := claim_wanted(conn, settings.dispatch_batch, now):
        enqueued += queues.enqueue_looks(conn, claims, settings)
        if len(claims) < settings.dispatch_batch:
            break
    return enqueued


def sweep_lost(ctx: Context) -> int:
    """Claims older than `lost_after_s` whose job does not exist (or ended without releasing its claim)
    go back to wanting a look."""
    conn = ctx.conn
    cutoff = ctx.clock() - ctx.settings.lost_after_s
    old: list[tuple[bytes, bytes, str]] = []
    for member, value in conn.hscan_iter(store.QUEUED, count=1000):
        job_id, _, since = (store.text(value) or "").partition(" ")
        try:
            stale = float(since) < cutoff
        except ValueError:
            stale = True
        if stale:
            old.append((member, value, job_id))
    if not old:
        return 0
    pipe = conn.pipeline(transaction=False)
    for _, _, job_id in old:
        pipe.hget(Job.key_for(job_id), "status")
    lost = 0
    for (member, value, job_id), state in zip(old, pipe.execute(), strict=True):
        if store.text(state) in _LIVE:
            continue
        if _UNCLAIM((store.QUEUED, store.WANT), (member, value, repr(ctx.clock())), client=conn):
            instance, ticket = store.split_member(member)
            log.warning(
                "a claimed ticket had no job: it is looked at again",
                extra={"event": "claim_lost", "instance": instance, "ticket": ticket, "job": job_id},
            )
            lost += 1
    return lost
