"""Reconciliation: heal lost webhooks by reading, now and then, what changed in the helpdesk.

Every `reconcile_every` (per instance, default 15 min; off disables it) a run reads the tickets that
changed since the instance's cursor through the product's backfill reader (`changed_pages`, then
each ticket's history with `events`, the ids its webhooks give the same changes) and appends to each
ticket's inbox only the events its log lacks, as backfill does; the next dispatch turns them into a
look, which evaluates and writes back. So a change whose webhook was lost is acted on at the next
run, and nothing is doubled.

Scheduling: RQ's cron scheduler runs `tick_job` every minute (queue sla-dispatch); it enqueues a
`reconcile_job(instance)` (queue sla-tickets) for each instance whose next run is due and that has
no reconcile job queued or running. An instance the tick sees for the first time is read from then
on, first one interval later (what came before is backfill's). A lock with a TTL
(`sla:rc:lock:<instance>`) keeps two jobs from reading one instance at once (two cron schedulers,
`rq requeue`): the second returns at once.

A run reads the window [cursor, its start - SETTLE_S): the last minute is left to the next run
(Zendesk's export leaves it out too, and its webhooks may still be on their way). The next window
starts OVERLAP_S before this one ended. The cursor (connector/state/reconciliation.py) moves after
every ticket, so a run that is interrupted (an error, a killed worker, its time budget spent) is
resumed where it stopped, reading a few tickets again (harmless: they add nothing twice).

Faults: a 429 ends the run and the next waits the product's Retry-After; a 5xx, a timeout or any
other API error ends it and the next waits `reconcile_every` x 2^(failures - 1), at most
max(reconcile_every, 1 h). Each says so in one log line and in `status`, nothing more (no failed job).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, Protocol

from redis.commands.core import Script
from rq import get_current_job
from rq.job import Job

from adapters.base import ApiError, InboundError, NotFound, RateLimited
from connector import backfill
from connector.config.loader import DEFAULT_RECONCILE_EVERY_S, InstanceConfig
from connector.jobs import retries
from connector.jobs.context import Context, current
from connector.state import queues, status, store
from connector.state.reconciliation import Cursor, cursor_of, lock_key, read, state_key
from sla.events import EventKind, TicketEvent
from sla.timeline import final_deletion

log = logging.getLogger("sla_connector.reconcile")

TICK_S = 60  # how often due instances are looked for (the shortest `reconcile_every`)
SETTLE_S = 60  # changes of the last minute are left to the next run
OVERLAP_S = 120  # each window starts this much before the previous one ended
RESUME_OVERLAP = 2  # tickets of an interrupted page read again
RUN_BUDGET_S = 120.0  # a run stops after this and the next tick resumes it: workers stay free for looks
JOB_TIMEOUT_S = 600
RESULT_TTL_S = 86400  # a run's report, for `rq info` and rq-dashboard
FAILURE_TTL_S = 7 * 86400
BACKOFF_CAP_S = 3600
READ_MAX_RETRY_AFTER_S = 5.0  # a longer Retry-After ends the run; the next one waits it out
SAME_CHANGE_WITHIN_S = 30  # a field change stored under another id this close in time is the same change

TICK_FUNC = "connector.jobs.reconcile.tick_job"
RUN_FUNC = "connector.jobs.reconcile.reconcile_job"
_LIVE = {"queued", "started", "scheduled", "deferred"}  # RQ job states still to run
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")

_RELEASE = Script(
    None,
    b"""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
""",
)


class ChangeReader(Protocol):
    """What a product's backfill reader offers for reconciliation (adapters/<product>/backfill.py)."""

    def changed_pages(
        self, since: datetime, start: str | None, now: datetime
    ) -> Iterator[tuple[str, list[Any]]]: ...
    def ticket_id(self, ticket: Any) -> str: ...
    def events(self, ticket: Any) -> list[TicketEvent]: ...


@dataclass
class RunReport:
    """What one run did (the job's result)."""

    instance: str
    tickets: int = 0  # tickets read
    missed: int = 0  # events appended that the webhooks had not brought
    unreadable: int = 0  # tickets whose history could not be read or made into events
    completed: bool = False  # the window was read to its end (else it resumes at the next tick)
    skipped: str | None = None  # why nothing was read
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------- scheduling


@cache
def can_read_changes(product: str) -> bool:
    """Whether the product has a backfill reader module (only those can be reconciled)."""
    try:
        return importlib.util.find_spec(f"adapters.{product}.backfill") is not None
    except (ImportError, ValueError):  # e.g. a test adapter that is a module, not a package
        return False


def backoff_s(interval_s: int, failures: int) -> float:
    """The wait after `failures` failed runs in a row: the interval doubled each time, capped."""
    return float(min(interval_s * 2 ** max(0, failures - 1), max(interval_s, BACKOFF_CAP_S)))


def tick(ctx: Context) -> list[str]:
    """Enqueue a reconcile job for every instance that is due and has none; their job ids."""
    conn, now = ctx.conn, ctx.clock()
    enqueued = []
    for name, inst in ctx.config.instances.items():
        if inst.reconcile_every_s <= 0 or not can_read_changes(inst.product):
            continue
        key = state_key(name)
        next_run, job, since = (store.text(v) for v in conn.hmget(key, "next_run", "job", "from"))
        if next_run is None and since is None:  # a new instance: read from now on, first in one interval
            conn.hsetnx(key, "from", repr(now - SETTLE_S))
            conn.hsetnx(key, "next_run", repr(now + inst.reconcile_every_s))
            continue
        if next_run and float(next_run) > now:
            continue
        if job and store.text(conn.hget(Job.key_for(job), "status")) in _LIVE:
            continue
        job_id = f"reconcile-{_UNSAFE.sub('_', name)}-{conn.incr(store.SEQ)}"
        conn.hset(key, "job", job_id)
        queues.queue(conn, queues.TICKETS).enqueue(
            RUN_FUNC,
            name,
            job_id=job_id,
            job_timeout=JOB_TIMEOUT_S,
            result_ttl=RESULT_TTL_S,
            failure_ttl=FAILURE_TTL_S,
            description=f"reconcile {name}: read what changed in the helpdesk",
        )
        enqueued.append(job_id)
    return enqueued


def register_cron(cron: Any) -> None:
    """Add the reconcile tick to an RQ cron scheduler (the worker's, `sla-connector scheduler`, rq cron)."""
    cron.register(
        tick_job,
        queues.DISPATCH,
        interval=TICK_S,
        job_timeout=TICK_S,
        result_ttl=0,
        failure_ttl=queues.DISPATCH_FAILURE_TTL_S,
        name="sla-reconcile",
    )


def tick_job() -> int:
    job = get_current_job()
    return len(tick(current(job.connection if job else None)))


def reconcile_job(instance: str) -> dict[str, Any]:
    job = get_current_job()
    ctx = current(job.connection if job else None)
    return reconcile(ctx, instance, token=job.id if job else None).as_dict()


# ---------------------------------------------------------------- one run


def reconcile(
    ctx: Context, instance: str, token: str | None = None, budget_s: float = RUN_BUDGET_S
) -> RunReport:
    """One run for `instance` (the job's body; `token` is the job's id)."""
    report = RunReport(instance)
    inst = ctx.config.instances.get(instance)
    if inst is None:
        report.skipped = f"unknown instance {instance!r}"
        log.warning("reconcile: unknown instance", extra={"event": "reconcile_skipped", "instance": instance})
        return report
    token = token or f"direct-{uuid.uuid4().hex}"
    if not ctx.conn.set(lock_key(instance), token, nx=True, px=(JOB_TIMEOUT_S + 30) * 1000):
        report.skipped = "another reconcile job is reading this instance"
        return report
    try:
        _run(ctx, inst, report, budget_s)
    finally:
        _RELEASE((lock_key(instance),), (token,), client=ctx.conn)
    return report


def _run(ctx: Context, inst: InstanceConfig, report: RunReport, budget_s: float) -> None:
    conn, key = ctx.conn, state_key(inst.name)
    interval = inst.reconcile_every_s or DEFAULT_RECONCILE_EVERY_S
    started = ctx.clock()
    state = read(conn, inst.name)
    cursor = cursor_of(state)
    if not cursor.running:  # a new window from the cursor (the first: one interval back)
        since = cursor.since if cursor.since is not None else started - SETTLE_S - interval
        cursor = Cursor(since, started - SETTLE_S)
        conn.hdel(key, "page", "done")
        conn.hset(key, mapping={"from": repr(cursor.since), "to": repr(cursor.until), "run_missed": 0})
    fields = {"instance": inst.name, "product": inst.product}
    try:
        reader = reader_for(inst)
        finished = _read_window(ctx, inst, reader, cursor, report, time.monotonic() + budget_s)
    except RateLimited as exc:
        wait = max(1.0, float(exc.retry_after or 0))
        report.error = f"rate limited (429): the next run waits {wait:g}s as the product asks"
        conn.hset(key, mapping={"next_run": repr(started + wait), "last_error": report.error})
        log.warning(
            "reconcile rate limited",
            extra={**fields, "event": "reconcile_rate_limited", "retry_after_s": wait},
        )
        return
    except ApiError as exc:
        failures = int(state.get("failures") or 0) + 1
        wait = backoff_s(interval, failures)
        report.error = f"{retries.describe(exc)}; {failures} failed run(s) in a row, next in {wait:g}s"
        conn.hset(
            key, mapping={"next_run": repr(started + wait), "last_error": report.error, "failures": failures}
        )
        log.warning(
            "reconcile failed: backing off",
            extra={**fields, "event": "reconcile_backoff", "error": report.error},
        )
        return
    except Exception as exc:  # a bug: recorded, backed off, and raised for RQ's failed registry
        failures = int(state.get("failures") or 0) + 1
        report.error = f"{type(exc).__name__}: {exc}"
        conn.hset(
            key,
            mapping={
                "next_run": repr(started + backoff_s(interval, failures)),
                "last_error": report.error,
                "failures": failures,
            },
        )
        raise
    if not finished:  # its time budget is spent: the next tick resumes it
        conn.hset(key, "next_run", repr(started))
        return
    report.completed = True
    missed = int(conn.hget(key, "run_missed") or 0)  # with what a resumed run found before it stopped
    pipe = conn.pipeline(transaction=True)
    pipe.hset(
        key,
        mapping={
            "from": repr(cursor.until - OVERLAP_S),
            "last_run": repr(started),
            "last_missed": missed,
            "next_run": repr(started + interval),
            "failures": 0,
            "last_error": "",
        },
    )
    pipe.hdel(key, "to", "page", "done", "run_missed")
    pipe.execute()
    log.info(
        "reconciled",
        extra={**fields, "event": "reconciled", "tickets": report.tickets, "missed": report.missed},
    )


def worker_reader(inst: InstanceConfig) -> Any:
    """The product's backfill reader, waiting only briefly on a 429 (a worker is not an admin's shell:
    a longer Retry-After is raised, and the job comes back after it)."""
    reader = backfill.load_reader(inst)
    for owner in (reader, getattr(reader, "client", None)):
        http = getattr(owner, "http", None)
        if http is not None and hasattr(http, "max_retry_after"):
            http.max_retry_after = READ_MAX_RETRY_AFTER_S
    return reader


def reader_for(inst: InstanceConfig) -> ChangeReader:
    reader = worker_reader(inst)
    if not callable(getattr(reader, "changed_pages", None)):
        raise ValueError(f"instance {inst.name!r}: the {inst.product} backfill reader has no changed_pages")
    return reader


def _read_window(
    ctx: Context,
    inst: InstanceConfig,
    reader: ChangeReader,
    cursor: Cursor,
    report: RunReport,
    deadline: float,
) -> bool:
    """Feed the window's tickets in, moving the cursor after each; False when the budget ran out."""
    conn, key = ctx.conn, state_key(inst.name)
    assert cursor.since is not None and cursor.until is not None
    since, now = (datetime.fromtimestamp(t, UTC) for t in (cursor.since, ctx.clock()))
    labels = {"instance": inst.name, "product": inst.product}
    resuming = cursor.page is not None
    for token, tickets in reader.changed_pages(since, cursor.page, now):
        skip = max(0, cursor.done - RESUME_OVERLAP) if resuming and token == cursor.page else 0
        resuming = False
        conn.hset(key, mapping={"page": token, "done": skip})
        for done, ticket in enumerate(tickets[skip:], start=skip + 1):
            missed = _feed(ctx, inst, reader, ticket, cursor.until, report)
            pipe = conn.pipeline(transaction=True)
            pipe.hset(key, "done", done)
            if missed:
                pipe.hincrby(key, "run_missed", missed)
                pipe.hincrby(key, "missed_total", missed)
                status.incr(pipe, "reconcile_missed_events", labels, missed)
            pipe.execute()
            if time.monotonic() > deadline:
                return False
    return True


def _feed(
    ctx: Context, inst: InstanceConfig, reader: ChangeReader, ticket: Any, until: float, report: RunReport
) -> int:
    """Append the ticket's missed events (those before `until`); how many."""
    tid = reader.ticket_id(ticket)
    fields = {"instance": inst.name, "ticket": tid}
    try:
        events = reader.events(ticket)
        held = held_events(ctx.conn, inst, tid)
    except (NotFound, InboundError, ValueError, KeyError, IndexError, TypeError) as exc:
        report.unreadable += 1
        log.warning(
            "reconcile: ticket skipped",
            extra={**fields, "event": "reconcile_ticket_skipped", "error": f"{type(exc).__name__}: {exc}"},
        )
        return 0
    report.tickets += 1
    missed = missed_events(held, [e for e in events if e.at.timestamp() < until])
    if not missed:
        return 0
    outcome = backfill.append_events(
        ctx.conn, inst.name, tid, missed, ctx.clock(), dry_run=False, retention_s=ctx.settings.retention_s
    )
    if outcome.skipped:
        return 0
    report.missed += outcome.new
    log.info(
        "reconcile found events the webhooks missed",
        extra={**fields, "event": "reconcile_missed", "events": [e.event_id for e in missed]},
    )
    return outcome.new


# ---------------------------------------------------------------- what counts as missed (pure)


def held_events(conn: Any, inst: InstanceConfig, ticket: str) -> list[TicketEvent]:
    """The ticket's log and what waits in its inbox (deliveries normalised as its look will)."""
    pipe = conn.pipeline(transaction=False)
    pipe.lrange(store.events_key(inst.name, ticket), 0, -1)
    pipe.lrange(store.inbox_key(inst.name, ticket), 0, -1)
    rows, inbox = pipe.execute()
    held = [store.decode_event(ticket, row) for row in rows]
    for raw in inbox:
        row = store.decode_inbox_row(raw)
        if row.kind == "v":
            held += [store.decode_event(ticket, r) for r in json.loads(row.body)]
            continue
        try:
            held += inst.adapter.normalise(json.loads(row.body), row.headers)
        except Exception:  # its look reports it; here it only means its events count as not held
            continue
    return held


def missed_events(held: list[TicketEvent], found: list[TicketEvent]) -> list[TicketEvent]:
    """The events of `found` (read from the product) that `held` lacks, in their stored form.

    Lacking means: no held event has its id and, for a field change, no held field change within
    SAME_CHANGE_WITHIN_S sets the same fields to the same values (a Zendesk event webhook names a
    change by its own id, which no API returns); a deletion is held when the log ends deleted.
    """
    ids = {e.event_id for e in held}
    deleted = final_deletion(held) is not None
    out = []
    for event in found:
        if event.event_id in ids:
            continue
        stored = store.decode_event(event.ticket_id, store.encode_event(event))
        if stored.kind is EventKind.CHANGED and _same_change_held(stored, held):
            continue
        if stored.kind is EventKind.DELETED and deleted:
            continue
        out.append(stored)
    return out


def _same_change_held(event: TicketEvent, held: list[TicketEvent]) -> bool:
    near = [
        h
        for h in held
        if h.kind is EventKind.CHANGED and abs((h.at - event.at).total_seconds()) <= SAME_CHANGE_WITHIN_S
    ]
    wanted = {k: v for k, v in event.fields.items() if k != "created_at"}  # every event states it
    return bool(wanted) and all(any(h.fields.get(k, object()) == v for h in near) for k, v in wanted.items())
