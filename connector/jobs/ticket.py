"""One ticket brought up to date: the body of the `look` RQ job (level-triggered: it asks nothing of
what brought it here, a delivery, a timer or a replay; it looks at everything the ticket has).

1. Take the ticket's lock (its jobs never run at the same time) and load, in one script, its inbox
   (what was accepted since the last look), its event log and its ledger.
2. Normalise the inbox's deliveries through the instance's adapter (one that cannot be normalised is
   kept in `sla:failed`, replayable; it never blocks the others) and merge the events into the log,
   deduplicated by id with the evaluation's own order-independent rule.
3. Evaluate the whole log at `now`; apply only `missing_effects(desired, ledger)` (or log them in
   dry-run) and record each in the ledger right after the product answers.
4. One MULTI stores the log, trims exactly the inbox rows taken, sets the next timer, counts, and
   releases the lock; in it, the end script hands the ticket to a follow-up job when something
   arrived meanwhile (no delivery waits for a later event or timer).
A failed write is stored like the rest (events, what was written) and then raised, so RQ retries the
job with backoff and keeps it in its FailedJobRegistry at the last attempt. A 429 is not a failure:
the ticket's timer is set to the product's Retry-After.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from redis.commands.core import Script
from redis.exceptions import WatchError

from adapters.base import ApiError, EffectRejected, NotFound, RateLimited
from connector.jobs import history, retries
from connector.jobs.context import Context
from connector.notices import deliver
from connector.state import failed, queues, status, store, timers
from connector.state import outcomes as outcome_store
from sla.effects import Effect, EffectKind, missing_effects
from sla.events import EventKind, TicketEvent
from sla.timeline import dedupe

log = logging.getLogger("sla_connector.jobs")

# The id of a claimed ticket's next look job, from its member "<instance>\n<ticket>" (queues.job_id).
_CLAIM_LUA = b"""
local function claim(queued, seq, member, now)
  local nl = string.find(member, '\\n', 1, true)
  local inst = string.gsub(string.sub(member, 1, nl - 1), '[^%w_%-]', '_')
  local tkt = string.gsub(string.sub(member, nl + 1), '[^%w_%-]', '_')
  local id = 'look-' .. inst .. '-' .. tkt .. '-' .. redis.call('INCR', seq)
  redis.call('HSET', queued, member, id .. ' ' .. now)
  return id
end
local function mine(value, token)
  return value and string.sub(value, 1, #token + 1) == token .. ' '
end
"""

_START = Script(
    None,
    b"""
-- KEYS: lock, inbox, events, ticket hash; ARGV: token, ttl ms
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return {0} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {1, redis.call('LRANGE', KEYS[2], 0, -1), redis.call('LRANGE', KEYS[3], 0, -1),
        redis.call('HGETALL', KEYS[4])}
""",
)

_ASIDE = Script(
    None,
    _CLAIM_LUA
    + b"""
-- Another job holds the ticket: give up our claim and want a look, which its end will hand on.
-- KEYS: queued, want; ARGV: member, token, now
if mine(redis.call('HGET', KEYS[1], ARGV[1]), ARGV[2]) then redis.call('HDEL', KEYS[1], ARGV[1]) end
redis.call('ZADD', KEYS[2], 'NX', ARGV[3], ARGV[1])
return 1
""",
)

_END = Script(
    None,
    _CLAIM_LUA
    + b"""
-- KEYS: lock, queued, want, inbox, seq; ARGV: token, member, now, keep claim (a retry follows)
-- Returns the id of a follow-up job to enqueue, or false.
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
if ARGV[4] == '1' then return false end
local value = redis.call('HGET', KEYS[2], ARGV[2])
if value then
  if not mine(value, ARGV[1]) then return false end
  redis.call('HDEL', KEYS[2], ARGV[2])
end
if redis.call('LLEN', KEYS[4]) == 0 and not redis.call('ZSCORE', KEYS[3], ARGV[2]) then return false end
redis.call('ZREM', KEYS[3], ARGV[2])
return claim(KEYS[2], KEYS[5], ARGV[2], ARGV[3])
""",
)

_CLAIM = Script(
    None,
    _CLAIM_LUA
    + b"""
-- Tickets wanting a look and without a job -> claimed with a job id each.
-- KEYS: want, queued, seq; ARGV: limit, now. Returns {member, id, member, id, ...}.
local out = {}
local limit = tonumber(ARGV[1])
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, limit * 4 - 1)) do
  if #out >= limit * 2 then break end
  if redis.call('HEXISTS', KEYS[2], member) == 0 then
    redis.call('ZREM', KEYS[1], member)
    table.insert(out, member)
    table.insert(out, claim(KEYS[2], KEYS[3], member, ARGV[2]))
  end
end
return out
""",
)


class LockLost(RuntimeError):
    """The ticket's lock was no longer the look's when it came to store: it stored nothing (RQ retries it)."""


@dataclass
class LookReport:
    """What one look did (the job's result, and what tests check)."""

    ticket: str
    deliveries: int = 0
    events_new: int = 0
    effects: int = 0
    failed_deliveries: int = 0
    deferred: bool = False  # another job held the ticket: a look was asked for after it
    follow_up: str | None = None  # id of the look job enqueued for what arrived meanwhile
    error: str | None = None
    log_fields: dict[str, Any] = field(default_factory=dict)
    creation_missing: bool = False  # the log has no creation event: first sight (connector/jobs/history.py)


def claim_wanted(conn: Any, limit: int, now: float) -> list[tuple[str, str, str]]:
    """Claim up to `limit` tickets that want a look and have no job: (instance, ticket, job id)."""
    flat = _CLAIM((store.WANT, store.QUEUED, store.SEQ), (limit, repr(now)), client=conn)
    out = []
    for member, jid in zip(flat[::2], flat[1::2], strict=True):
        instance, ticket = store.split_member(member)
        out.append((instance, ticket, store.text(jid) or ""))
    return out


def look(ctx: Context, instance: str, ticket: str, token: str | None = None) -> LookReport:
    """Bring one ticket up to date (the `look` job's body; `token` is the job's id)."""
    conn = ctx.conn
    token = token or f"direct-{uuid.uuid4().hex}"
    member = store.member(instance, ticket)
    report = LookReport(ticket)
    keys = (store.lock_key(instance, ticket), store.inbox_key(instance, ticket),
            store.events_key(instance, ticket), store.ticket_key(instance, ticket))
    started = _START(keys, (token, int(ctx.settings.lock_ttl_s * 1000)), client=conn)
    if started[0] != 1:
        _ASIDE((store.QUEUED, store.WANT), (member, token, repr(ctx.clock())), client=conn)
        report.deferred = True
        return report
    inbox, rows, flat = started[1], started[2], started[3]
    final = conn.pipeline(transaction=True)
    # Everything is stored in one MULTI, and only while the lock is still ours: a look that outlived
    # its lock (a paused worker whose job RQ already gave to another) must not rewrite the log or
    # trim inbox rows by count under the new holder (it would drop deliveries it never saw).
    final.watch(keys[0])
    final.multi()
    tally = status.Tally()
    error: Exception | None = None
    try:
        record = store.decode_record(instance, ticket, rows, dict(zip(flat[::2], flat[1::2], strict=True)))
        new_events, received = _take_inbox(ctx, final, tally, instance, ticket, inbox, report)
        report.log_fields = {**_log_fields(instance, ticket, inbox), "job": token}
        report.effects, error = _bring_up_to_date(ctx, final, tally, record, new_events, report)
    except Exception:
        final.reset()
        end_keys = (keys[0], store.QUEUED, store.WANT, keys[1], store.SEQ)
        _END(end_keys, (token, member, "0", "1"), client=conn)  # unlock; RQ retries the job
        raise
    if inbox:
        final.ltrim(store.inbox_key(instance, ticket), len(inbox), -1)
    status.observe_latency(final, (ctx.clock() - r for r in received))
    tally.flush(final)
    keep = "1" if error is not None else "0"
    _END((keys[0], store.QUEUED, store.WANT, keys[1], store.SEQ), (token, member, repr(ctx.clock()), keep),
         client=final)
    try:
        follow_up = final.execute()[-1]
    except WatchError:
        raise LockLost(f"the lock of {instance} ticket {ticket} expired or was taken during the look: "
                       "nothing was stored; RQ retries the look") from None
    if follow_up:
        report.follow_up = store.text(follow_up)
        queues.enqueue_looks(conn, [(instance, ticket, report.follow_up)], ctx.settings)
    history.after_look(ctx, instance, ticket, report.deliveries, report.creation_missing)
    if error is not None:
        report.error = retries.describe(error)
        raise error
    return report


def _log_fields(instance: str, ticket: str, inbox: list[bytes]) -> dict[str, Any]:
    deliveries = [d for d in (store.decode_inbox_row(r).delivery for r in inbox) if d]
    return {"instance": instance, "ticket": ticket,
            "delivery": ",".join(dict.fromkeys(deliveries)) if deliveries else None}


def _take_inbox(
    ctx: Context, final: Any, tally: status.Tally, instance: str, ticket: str, inbox: list[bytes],
    report: LookReport,
) -> tuple[list[TicketEvent], list[float]]:
    """The events of the inbox's rows for this ticket, and the receipt times of new deliveries.

    A delivery that cannot be normalised is kept in `sla:failed` (replayable); events it carries
    for another ticket go to that ticket's inbox, which then wants a look.
    """
    cfg = ctx.config.instances.get(instance)
    own: list[TicketEvent] = []
    others: dict[str, list[TicketEvent]] = {}
    received: list[float] = []
    display_key = getattr(cfg.adapter, "display_key", None) if cfg is not None else None  # optional
    key: str | None = None
    for raw in inbox:
        row = store.decode_inbox_row(raw)
        extra = {"event": "delivery_failed", "instance": instance, "ticket": ticket or None,
                 "delivery": row.delivery or None}
        try:
            if row.kind == "v":
                events = [store.decode_event(ticket, r) for r in json.loads(row.body)]
            elif cfg is None:
                raise LookupError(f"unknown instance {instance!r}")
            else:
                report.deliveries += 1
                payload = json.loads(row.body)
                events = cfg.adapter.normalise(payload, row.headers)
                for event in events:
                    if not isinstance(event, TicketEvent):
                        raise TypeError(f"normalise returned {type(event).__name__}, not TicketEvent")
                # In their stored form (what the log keeps and a later look reads back): an event the
                # log cannot hold (an adapter bug) fails its delivery here, not every look of the ticket.
                events = [store.decode_event(e.ticket_id, store.encode_event(e)) for e in events]
        except Exception as exc:  # a poison delivery must not block the others
            log.exception("delivery could not be normalised", extra=extra)
            failed.record_delivery(final, instance, ticket, row, f"{type(exc).__name__}: {exc}", ctx.clock())
            tally.incr("events_failed", {"instance": instance, "product": cfg.product if cfg else "unknown"})
            report.failed_deliveries += 1
            continue
        if row.kind == "e":
            tally.incr("events_processed", {"instance": instance, "product": cfg.product})
            if row.received and not row.replay:
                received.append(row.received)
            if display_key is not None and ticket:
                try:
                    key = display_key(payload) or key  # the latest delivery's key wins (a moved issue)
                except Exception:  # a name for people: never worth failing a delivery over
                    log.warning("display key unreadable", extra={**extra, "event": "display_key_failed"})
        for event in events:
            if event.ticket_id == ticket:
                own.append(event)
            else:
                others.setdefault(event.ticket_id, []).append(event)
    if key is not None:  # so the ticket API and `sla-connector ticket` accept "SUP-42" as well as the id
        final.hset(store.keys_key(instance), key, ticket)
        final.hset(store.ticket_key(instance, ticket), store.META + "key", key)
    for other, events in others.items():  # rare: a delivery naming one ticket and carrying another's
        final.rpush(store.inbox_key(instance, other), store.events_row(events))
        final.zadd(store.WANT, {store.member(instance, other): ctx.clock()}, nx=True)
    return own, received


def _bring_up_to_date(
    ctx: Context, final: Any, tally: status.Tally, record: store.TicketRecord, new_events: list[TicketEvent],
    report: LookReport,
) -> tuple[int, Exception | None]:
    """Merge, evaluate, write back; the effects applied and the error to raise once all is stored."""
    instance, ticket = record.instance, record.ticket
    settings = ctx.settings
    ek, tk = store.events_key(instance, ticket), store.ticket_key(instance, ticket)
    # Merge by the evaluation's own duplicate rule (sla.timeline.dedupe: order-independent), on the
    # stored form of the new events, so what we keep never depends on arrival order.
    stored = {e.event_id: e for e in record.events}
    events = dedupe([*record.events, *new_events])  # new_events are in their stored form (_take_inbox)
    fresh = [e for e in events if stored.get(e.event_id) != e]
    report.events_new = len(fresh)
    if record.stored_rows > len(record.events) or any(e.event_id in stored for e in fresh):
        final.delete(ek)  # duplicates or a losing row: rewrite the log (only the lock holder writes it)
        if events:
            final.rpush(ek, *(store.encode_event(e) for e in events))
    elif fresh:
        final.rpush(ek, *(store.encode_event(e) for e in fresh))
    if not events:
        return 0, None  # a timer or replay for a ticket we know nothing about
    report.creation_missing = not any(e.kind is EventKind.CREATED for e in events)
    fields = report.log_fields
    deleted = store.is_deleted(events)
    gone = record.gone
    if gone and not deleted:  # a ticket that sends newer events exists: evaluate it again
        gone = not retries.drop_disproved_mark(final, record, fresh, fields)
    if deleted:  # nothing comes due any more
        timers.cancel(final, instance, ticket)
        outcome_store.forget(final, instance, ticket, record.meta)  # also when gone: no look follows
        ttl = settings.deleted_retention_s
    elif store.is_finished(events):  # kept long: a ticket reopened months later keeps its clocks
        ttl = settings.retention_s
    else:
        ttl = settings.open_ttl_s
    count, error = (0, None) if gone else _evaluate_and_apply(ctx, final, tally, record, events, fields)
    final.expire(ek, ttl)
    final.expire(tk, ttl)
    return count, error


def _evaluate_and_apply(
    ctx: Context, final: Any, tally: status.Tally, record: store.TicketRecord, events: list[TicketEvent],
    fields: Mapping[str, Any],
) -> tuple[int, Exception | None]:
    instance, ticket = record.instance, record.ticket
    cfg = ctx.config.instances[instance]
    tk = store.ticket_key(instance, ticket)
    labels = {"instance": instance, "product": cfg.product}
    applied: list[Effect] = []
    refused: list[Effect] = []
    now_epoch = ctx.clock()
    evaluation = None
    try:
        now = datetime.fromtimestamp(now_epoch, UTC)
        evaluation = ctx.evaluator(ctx.config.policies, ctx.config.calendars, events, now, instance=instance,
                                   applied_keys=record.applied_keys(cfg.dry_run))
        outcome_store.keep_look(final, instance, ticket, record.meta, events, evaluation, now_epoch,
                                ctx.settings.outcome_retention_s, ctx.config.contracts)  # for reports
        missing = missing_effects(evaluation.desired, record.ledger_for(cfg.dry_run))
        if cfg.dry_run:
            for effect in missing:
                log.info("dry-run: effect not written", extra={
                    **fields, "event": "effect_dry_run", "effect": effect.key, "kind": str(effect.kind),
                    "value": effect.value})
            if missing:
                final.hset(tk, mapping={store.LEDGER_DRY + e.key: e.ledger_value for e in missing})
            tally.incr("effects_dry_run", labels, len(missing))
            applied = missing
        elif missing := retries.unrefused(missing, record.rejected):
            writes = [e for e in missing if e.kind is not EffectKind.NOTIFY]  # notices go elsewhere, below
            try:
                applied = list(cfg.adapter.client().apply(ticket, writes)) if writes else []
            except EffectRejected as exc:  # the good effects were written; these never will be
                applied = list(exc.applied)
                refused = retries.record_rejected(ctx.conn, tally, record, cfg.product, writes, exc.rejected,
                                                  now_epoch, fields)
            if applied:  # record at once: the smaller the window, the fewer marker checks
                ctx.conn.hset(tk, mapping={e.key: e.ledger_value for e in applied})
                stale = [store.LEDGER_REJECTED + e.key for e in applied if e.key in record.rejected]
                if stale:  # a new value of a refused effect was written
                    ctx.conn.hdel(tk, *stale)
                for effect in applied:
                    log.info("effect written", extra={
                        **fields, "event": "effect_applied", "effect": effect.key, "kind": str(effect.kind)})
            tally.incr("effects_applied", labels, len(applied))
            if notices := [e for e in missing if e.kind is EffectKind.NOTIFY]:  # after the ticket's writes
                sent, unsendable = deliver.send_due(ctx, tally, record, notices, now_epoch, fields)
                tally.incr("effects_applied", labels, len(sent))
                applied, refused = applied + sent, refused + unsendable
    except NotFound as exc:
        reason = retries.gone_reason(exc, events)
        if reason is not None:
            retries.mark_gone(ctx.conn, final, record, reason, now_epoch, fields)
            return 0, None
        return 0, _failed(ctx, final, tally, record, exc, evaluation, now_epoch, fields)
    except RateLimited as exc:  # not a failure: look again when the product says
        retry_at = now_epoch + max(float(exc.retry_after or 0), ctx.settings.min_recheck_s)
        log.warning("rate limited: looking again after Retry-After", extra={
            **fields, "event": "ticket_rate_limited", "retry_after_s": exc.retry_after})
        tally.incr("effects_rate_limited", labels)
        final.zadd(store.TIMERS, {store.member(instance, ticket): retry_at})  # the write is still due
        return len(applied), None
    except Exception as exc:
        return 0, _failed(ctx, final, tally, record, exc, evaluation, now_epoch, fields)
    _count_breaches(final, tally, tk, record, evaluation, labels)
    retries.clear_failed_job(ctx.conn, final, record)
    if not cfg.dry_run and len(applied) + len(refused) < len(missing):  # the client wrote part: again soon
        timers.schedule(final, instance, ticket, now_epoch + ctx.settings.backoff_base_s)
    _schedule_next_check(ctx, final, instance, ticket, evaluation, now_epoch)
    return len(applied), None


def _failed(
    ctx: Context, final: Any, tally: status.Tally, record: store.TicketRecord, exc: Exception,
    evaluation: Any, now_epoch: float, fields: Mapping[str, Any],
) -> Exception:
    """Log and count a failure; the job raises it once everything else is stored (RQ retries it)."""
    cfg = ctx.config.instances[record.instance]
    if isinstance(exc, ApiError):
        tally.incr("effects_failed", {"instance": record.instance, "product": cfg.product})
    log.warning("ticket look failed; RQ retries it", exc_info=not isinstance(exc, ApiError) or None,
                extra={**fields, "event": "ticket_retry", "error": retries.describe(exc)})
    # A write that keeps failing (lost access) must not cancel the ticket's later escalations.
    _schedule_next_check(ctx, final, record.instance, record.ticket, evaluation, now_epoch)
    return exc


def _schedule_next_check(
    ctx: Context, final: Any, instance: str, ticket: str, evaluation: Any, now_epoch: float,
    floor: float = 0,
) -> None:
    next_check = getattr(evaluation, "next_check", None)  # None too when the evaluation failed
    if next_check is not None:
        at = max(next_check.timestamp(), now_epoch + ctx.settings.min_recheck_s, floor)
        final.zadd(store.TIMERS, {store.member(instance, ticket): at}, lt=True)


def _count_breaches(
    final: Any, tally: status.Tally, tk: str, record: store.TicketRecord, evaluation: Any,
    labels: Mapping[str, str],
) -> None:
    """Count each clock's breach once (the ticket remembers which ones it has counted)."""
    for metric in (getattr(evaluation, "metrics", None) or {}).values():
        for clock in (*metric.past_cycles, metric):
            if clock.breached_at is None or record.meta.get(f"b:{clock.key}"):
                continue
            final.hset(tk, f"{store.META}b:{clock.key}", "1")
            tally.incr("breaches", {**labels, "metric": metric.name})
