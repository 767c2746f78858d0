"""The level-triggered controller: one batch of stream entries in, tickets brought up to date.

For a batch the worker read from the stream (connector/worker.py):
1. normalise each delivery through its instance's adapter (a delivery that cannot be normalised
   goes to the failed registry; it never blocks the others), and group the events by ticket;
2. lock every touched ticket and load its log and ledger: one round trip for the whole batch;
3. per locked ticket: append the new events (deduplicated by id), evaluate the whole log at `now`,
   apply only `missing_effects(desired, ledger)` (or log them in dry-run), record them in the
   ledger, schedule a timer at `next_check`;
4. one MULTI writes the logs, ledgers, timers, counters, releases the locks and acknowledges and
   deletes the entries, so an entry is acknowledged exactly when its events are stored.
A ticket locked by another worker gets its events appended and a timer a moment later: whoever
holds the lock finishes, then the timer makes someone look again. Live write-backs record their
ledger entry right after the product answers (not at the end of the batch) to keep the window in
which a worker can die between the two as small as possible; the adapter's comment marker check
covers what is left of it.
"""

from __future__ import annotations

import inspect
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis

from adapters.base import ApiError, EffectRejected, NotFound
from connector import failed, locks, retries, status, store, timers
from connector.tuning import PipelineSettings
from sla.effects import Effect, missing_effects
from sla.events import TicketEvent
from sla.timeline import dedupe

log = logging.getLogger("sla_connector.pipeline")

Evaluator = Callable[..., Any]  # evaluate(policies, calendars, events, now, *, instance=None)


def default_evaluator() -> Evaluator:
    from sla.evaluate import evaluate  # imported late: the SLA engine is only needed by workers

    return evaluate


@dataclass
class BatchReport:
    entries: int = 0
    tickets: int = 0
    deferred: int = 0
    effects: int = 0
    failed: int = 0
    acked: list[str] = field(default_factory=list)


class Processor:
    """Processes batches for one worker; stateless between batches apart from its lock token."""

    def __init__(
        self,
        conn: redis.Redis,
        config: Any,
        settings: PipelineSettings | None = None,
        *,
        evaluator: Evaluator | None = None,
        clock: Callable[[], float] = time.time,
        name: str | None = None,
    ) -> None:
        self.conn = conn
        self.config = config
        self.settings = settings or PipelineSettings()
        self.evaluator = evaluator or default_evaluator()
        self.clock = clock
        self.token = name or uuid.uuid4().hex
        self._sources: dict[tuple[str, str], list[str]] = {}
        self._deliveries: dict[tuple[str, str], list[str]] = {}
        self._tally = status.Tally()
        self._takes_applied_keys = takes_keyword(self.evaluator, "applied_keys")

    # ------------------------------------------------------------ the batch

    def process(self, raw_entries: Sequence[tuple[Any, Mapping[Any, Any]]]) -> BatchReport:
        report = BatchReport(entries=len(raw_entries))
        final = self.conn.pipeline(transaction=True)
        work: dict[tuple[str, str], list[TicketEvent]] = {}
        received: list[float] = []
        self._sources: dict[tuple[str, str], list[str]] = {}  # ticket -> ids of the entries naming it
        self._deliveries: dict[tuple[str, str], list[str]] = {}  # ticket -> its deliveries in this batch
        self._tally = status.Tally()  # counters of this batch, written with it
        keep: set[str] = set()  # entries left unacknowledged (redelivered later, then `failed`)
        for entry_id, fields in raw_entries:
            entry = store.Entry.parse(entry_id, fields)
            report.acked.append(entry.id)
            if self._collect(final, entry, work):
                if entry.kind == "e" and entry.received and not entry.replay:
                    received.append(entry.received)
            else:
                report.failed += 1
        report.tickets = len(work)
        if work:
            loaded = self._lock_and_load(list(work))
            for (instance, ticket), new_events in work.items():
                record = loaded.get((instance, ticket))
                if record is None:
                    report.deferred += 1
                    self._defer(final, instance, ticket, new_events)
                    continue
                if isinstance(record, Exception):  # a stored row that cannot be decoded: keep it all
                    report.failed += 1
                    self._broken(final, instance, ticket, new_events, record)
                else:
                    try:
                        report.effects += self._ticket(final, instance, ticket, new_events, record)
                    except Exception:  # a bug on one ticket must not hold up the others
                        # Its events may not be stored: leave its entries pending, so they are
                        # redelivered and, if this keeps happening, kept whole in the failed registry.
                        report.failed += 1
                        keep.update(self._sources.get((instance, ticket), ()))
                        log.exception(
                            "ticket processing failed; its entries will be redelivered",
                            extra={**self._ids(instance, ticket), "event": "ticket_error"},
                        )
                locks.unlock(final, store.lock_key(instance, ticket), self.token)
        report.acked = [i for i in report.acked if i not in keep]
        if report.acked:
            final.xack(store.STREAM, store.GROUP, *report.acked)
            final.xdel(store.STREAM, *report.acked)
        done = self.clock()
        status.observe_latency(final, (done - r for r in received))
        self._tally.flush(final)
        final.execute()
        return report

    def _collect(
        self, final: Any, entry: store.Entry, work: dict[tuple[str, str], list[TicketEvent]]
    ) -> bool:
        """Add the entry's events to `work`; False (and a failed record) when it cannot be used."""
        instance = self.config.instances.get(entry.instance)
        extra = {
            "event": "delivery_failed",
            "instance": entry.instance,
            "ticket": entry.ticket or None,
            "delivery": entry.delivery or None,
        }
        if instance is None:
            log.error("entry for an instance that is not configured", extra=extra)
            error = f"unknown instance {entry.instance!r}"
            self._failed_entry(final, entry, error, {"instance": entry.instance})
            return False
        if entry.kind != "e":
            work.setdefault((entry.instance, entry.ticket), [])
            self._sources.setdefault((entry.instance, entry.ticket), []).append(entry.id)
            return True
        try:
            events = instance.adapter.normalise(json.loads(entry.payload), json.loads(entry.headers))
            for event in events:
                if not isinstance(event, TicketEvent):
                    raise TypeError(f"normalise returned {type(event).__name__}, not TicketEvent")
        except Exception as exc:  # a poison delivery must not block the others
            log.exception("delivery could not be normalised", extra=extra)
            labels = {"instance": entry.instance, "product": instance.product}
            self._failed_entry(final, entry, f"{type(exc).__name__}: {exc}", labels)
            return False
        for event in events:
            work.setdefault((entry.instance, event.ticket_id), []).append(event)
            self._sources.setdefault((entry.instance, event.ticket_id), []).append(entry.id)
            if entry.delivery:
                self._deliveries.setdefault((entry.instance, event.ticket_id), []).append(entry.delivery)
        self._tally.incr("events_processed", {"instance": entry.instance, "product": instance.product})
        return True

    def _failed_entry(self, final: Any, entry: store.Entry, error: str, labels: Mapping[str, str]) -> None:
        """Keep a delivery that cannot be used in the failed registry, and count it."""
        failed.record_event(final, entry.instance, entry.delivery or entry.id, entry.raw, error, self.clock())
        self._tally.incr("events_failed", labels)

    def _lock_and_load(
        self, tickets: list[tuple[str, str]]
    ) -> dict[tuple[str, str], store.TicketRecord | Exception]:
        """Tickets we locked -> their stored state (or the decoding error); others are left out."""
        pipe = self.conn.pipeline(transaction=False)
        ttl_ms = int(self.settings.lock_ttl_s * 1000)
        for instance, ticket in tickets:
            keys = (
                store.lock_key(instance, ticket),
                store.events_key(instance, ticket),
                store.ticket_key(instance, ticket),
            )
            locks.lock_and_load(pipe, keys, self.token, ttl_ms)
        out: dict[tuple[str, str], store.TicketRecord | Exception] = {}
        for (instance, ticket), result in zip(tickets, pipe.execute(), strict=True):
            if result[0] != 1:
                continue
            flat = result[2]
            hash_ = dict(zip(flat[::2], flat[1::2], strict=True))
            try:
                out[(instance, ticket)] = store.decode_record(instance, ticket, result[1], hash_)
            except Exception as exc:  # noqa: BLE001 - reported per ticket, never blocks the batch
                out[(instance, ticket)] = exc
        return out

    def _broken(
        self, final: Any, instance: str, ticket: str, new_events: list[TicketEvent], exc: Exception
    ) -> None:
        log.error(
            "stored state of the ticket cannot be read",
            exc_info=exc,
            extra={**self._ids(instance, ticket), "event": "ticket_unreadable"},
        )
        _append(final, instance, ticket, new_events)
        failed.record_ticket(
            final,
            instance,
            ticket,
            f"unreadable stored state: {type(exc).__name__}: {exc}",
            self.settings.max_attempts,
            self.clock(),
        )

    def _defer(self, final: Any, instance: str, ticket: str, new_events: list[TicketEvent]) -> None:
        # Another worker holds the ticket: store the events (dedupe happens on load) and look again.
        _append(final, instance, ticket, new_events)
        timers.schedule(final, instance, ticket, self.clock() + self.settings.defer_s)

    # ------------------------------------------------------------ one ticket

    def _ticket(
        self,
        final: Any,
        instance: str,
        ticket: str,
        new_events: list[TicketEvent],
        record: store.TicketRecord,
    ) -> int:
        """Bring one locked ticket up to date; the number of effects applied (or logged in dry-run)."""
        ek, tk = store.events_key(instance, ticket), store.ticket_key(instance, ticket)
        # Merge by the evaluation's own duplicate rule (sla.timeline.dedupe: order-independent), on
        # the stored form of the new events, so what we keep never depends on arrival order.
        stored = {e.event_id: e for e in record.events}
        incoming = [store.decode_event(ticket, store.encode_event(e)) for e in new_events]
        events = dedupe([*record.events, *incoming])
        fresh = [e for e in events if stored.get(e.event_id) != e]
        replaced = any(e.event_id in stored for e in fresh)
        if record.stored_rows > len(record.events) or replaced:  # duplicates or a losing row: compact
            # Replace only the rows we loaded: others may have appended since (order does not matter).
            rows = [store.encode_event(e) for e in events]
            new_rows = [store.encode_event(e) for e in fresh]
            locks.compact(
                final, store.lock_key(instance, ticket), ek, self.token, record.stored_rows, rows, new_rows
            )
        elif fresh:
            final.rpush(ek, *(store.encode_event(e) for e in fresh))
        if not events:
            return 0  # a timer or replay for a ticket we know nothing about
        deleted = store.is_deleted(events)
        # A mark "1" was left by older versions after any 404: it holds only with a deletion in the log.
        gone = record.gone and (deleted or record.meta["gone"] != store.GONE_LEGACY)
        if gone and not deleted:  # a ticket that sends newer events exists: evaluate it again
            gone = not retries.drop_disproved_mark(final, record, fresh, self._ids(instance, ticket))
        if deleted:  # nothing comes due any more (a retry below may still ask for a timer)
            timers.cancel(final, instance, ticket)
            ttl = self.settings.deleted_retention_s
        elif store.is_finished(events):  # kept long: a ticket reopened months later keeps its clocks
            ttl = self.settings.retention_s
        else:
            ttl = self.settings.open_ttl_s
        count = 0 if gone else self._evaluate_and_apply(final, instance, ticket, events, record)
        count = max(count, 0)  # -1: gone just now
        final.expire(ek, ttl)
        final.expire(tk, ttl)
        return count

    def _evaluate_and_apply(
        self, final: Any, instance: str, ticket: str, events: list[TicketEvent], record: store.TicketRecord
    ) -> int:
        cfg = self.config.instances[instance]
        tk = store.ticket_key(instance, ticket)
        extra: dict[str, Any] = self._ids(instance, ticket)
        applied: list[Effect] = []
        refused: list[Effect] = []
        now_epoch = self.clock()
        evaluation = None
        try:
            ledger = record.ledger_for(cfg.dry_run)
            now = datetime.fromtimestamp(now_epoch, UTC)
            evaluation = self._evaluate(events, now, instance, record.applied_keys(cfg.dry_run))
            missing = missing_effects(evaluation.desired, ledger)
            if not cfg.dry_run:
                missing = retries.unrefused(missing, record.rejected)
            if missing and cfg.dry_run:
                for effect in missing:
                    log.info(
                        "dry-run: effect not written",
                        extra={
                            **extra,
                            "event": "effect_dry_run",
                            "effect": effect.key,
                            "kind": str(effect.kind),
                            "value": effect.value,
                        },
                    )
                final.hset(tk, mapping={store.LEDGER_DRY + e.key: e.ledger_value for e in missing})
                applied = missing
            elif missing:
                if not self._still_ours(instance, ticket):
                    # A slow batch outlived the lock: someone else may be writing; look again later.
                    timers.schedule(final, instance, ticket, now_epoch + self.settings.defer_s)
                    return 0
                try:
                    applied = list(cfg.adapter.client().apply(ticket, missing))
                except EffectRejected as exc:  # the good effects were written; these never will be
                    applied = list(exc.applied)
                    refused = retries.record_rejected(
                        self.conn, self._tally, record, cfg.product, missing, exc.rejected, now_epoch, extra
                    )
                if applied:  # record at once: the smaller the window, the fewer marker checks
                    self.conn.hset(tk, mapping={e.key: e.ledger_value for e in applied})
                    stale = [store.LEDGER_REJECTED + e.key for e in applied if e.key in record.rejected]
                    if stale:  # a new value of a refused effect was written
                        self.conn.hdel(tk, *stale)
                    for effect in applied:
                        log.info(
                            "effect written",
                            extra={
                                **extra,
                                "event": "effect_applied",
                                "effect": effect.key,
                                "kind": str(effect.kind),
                            },
                        )
        except NotFound as exc:
            reason = retries.gone_reason(exc, events)
            if reason is None:
                self._failure(final, instance, ticket, record, exc, now_epoch, evaluation)
                return 0
            retries.mark_gone(final, record, reason, now_epoch, extra)
            return -1
        except Exception as exc:
            self._failure(final, instance, ticket, record, exc, now_epoch, evaluation)
            return 0
        labels = {"instance": instance, "product": cfg.product}
        self._tally.incr("effects_applied", labels, len(applied))
        self._count_breaches(final, tk, record, evaluation, labels)
        retries.clear_failures(final, record)
        if "gone" in record.meta:  # left by an older version after a bare 404: the ticket answered
            final.hdel(tk, store.META + "gone", store.META + "gone_at")
        if len(applied) + len(refused) < len(missing):
            timers.schedule(final, instance, ticket, now_epoch + retries.backoff(self.settings, 1))
        self._schedule_next_check(final, instance, ticket, evaluation, now_epoch)
        return len(applied)

    def _evaluate(
        self, events: list[TicketEvent], now: datetime, instance: str, applied_keys: frozenset[str]
    ) -> Any:
        """The evaluator's answer; `applied_keys` (ledger keys, so a cycle keeps the key its effects
        were written under) only to evaluators that take it, e.g. ones written before it existed."""
        kwargs: dict[str, Any] = {"instance": instance}
        if self._takes_applied_keys:
            kwargs["applied_keys"] = applied_keys
        return self.evaluator(self.config.policies, self.config.calendars, events, now, **kwargs)

    def _schedule_next_check(
        self, final: Any, instance: str, ticket: str, evaluation: Any, now_epoch: float, floor: float = 0
    ) -> None:
        next_check = getattr(evaluation, "next_check", None)  # None too when the evaluation failed
        if next_check is not None:
            at = max(next_check.timestamp(), now_epoch + self.settings.min_recheck_s, floor)
            timers.schedule(final, instance, ticket, at)

    def _count_breaches(
        self, final: Any, tk: str, record: store.TicketRecord, evaluation: Any, labels: Mapping[str, str]
    ) -> None:
        """Count each clock's breach once (the ticket remembers which ones it has counted)."""
        for metric in (getattr(evaluation, "metrics", None) or {}).values():
            for clock in (*metric.past_cycles, metric):
                if clock.breached_at is None or record.meta.get(f"b:{clock.key}"):
                    continue
                final.hset(tk, f"{store.META}b:{clock.key}", "1")
                self._tally.incr("breaches", {**labels, "metric": metric.name})

    def _still_ours(self, instance: str, ticket: str) -> bool:
        """Extend our lock before a write-back (batches of slow HTTP calls can outlive the TTL)."""
        ttl_ms = int(self.settings.lock_ttl_s * 1000)
        return locks.extend(self.conn, store.lock_key(instance, ticket), self.token, ttl_ms)

    def _failure(
        self, final: Any, instance: str, ticket: str, record: store.TicketRecord, exc: Exception, now: float,
        evaluation: Any,
    ) -> None:
        if isinstance(exc, ApiError):
            product = self.config.instances[instance].product
            self._tally.incr("effects_failed", {"instance": instance, "product": product})
        fields = self._ids(instance, ticket)
        retry_at = retries.record_failure(
            final, self.settings, instance, ticket, record.attempts + 1, exc, now, fields
        )
        # A write that keeps failing (a value the product rejects, lost access) must not cancel the
        # ticket's later escalations: once the attempts are used up, its next check stays scheduled
        # (never before a retry, which honours a Retry-After).
        self._schedule_next_check(final, instance, ticket, evaluation, now, retry_at or 0)

    def _ids(self, instance: str, ticket: str) -> dict[str, Any]:
        """Log fields naming a ticket and what brought it into this batch (None: only a timer)."""
        deliveries = self._deliveries.get((instance, ticket))
        return {
            "instance": instance,
            "ticket": ticket,
            "delivery": ",".join(dict.fromkeys(deliveries)) if deliveries else None,
            "entry": ",".join(dict.fromkeys(self._sources.get((instance, ticket), ()))) or None,
        }


def takes_keyword(func: Callable[..., Any], name: str) -> bool:
    """Whether `func` names the keyword parameter `name`.

    Not for a bare `**kwargs`: a wrapper that passes them on to an older evaluator would fail.
    """
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):  # no signature to read: pass only what every evaluator takes
        return False
    kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return name in params and params[name].kind in kinds


def _append(final: Any, instance: str, ticket: str, events: list[TicketEvent]) -> None:
    """Append events to the ticket's log as they are (duplicate ids are resolved when it is next loaded)."""
    if events:
        final.rpush(store.events_key(instance, ticket), *(store.encode_event(e) for e in events))


# connector/api.py reads a ticket's state through this module.
from connector.ticket_view import ticket_state  # noqa: E402, F401
