"""What happens when a ticket's evaluation or write-back fails: backoff timer, then the failed registry.

Split from connector/pipeline.py (the batch controller) to keep each module small. A failure
never blocks other tickets: the ticket gets a timer `backoff(attempts)` later (at least the
product's Retry-After on a 429) and, after `max_attempts`, an entry in the failed registry.
An effect whose value the product refuses is no failure: it is recorded once as rejected
(`record_rejected`) and not sent again while the evaluation wants that same value (`unrefused`).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from typing import Any

from adapters.base import ApiError, NotFound, RateLimited
from connector import failed, status, store, timers
from connector.tuning import PipelineSettings
from sla.effects import Effect
from sla.events import EventKind, TicketEvent

log = logging.getLogger("sla_connector.pipeline")


def backoff(settings: PipelineSettings, attempt: int) -> float:
    """Exponential backoff with full jitter in [base/2, base * 2^(attempt-1)] (capped)."""
    ceiling = min(settings.backoff_cap_s, settings.backoff_base_s * 2 ** (attempt - 1))
    return random.uniform(min(ceiling, settings.backoff_base_s / 2), ceiling)


def describe(exc: Exception) -> str:
    """The error as kept in the failed registry and logged (adapters keep secrets out of messages)."""
    if not isinstance(exc, ApiError):
        return f"{type(exc).__name__}: {exc}"
    error = f"{type(exc).__name__} (HTTP {exc.status}): {exc}"
    if isinstance(exc, NotFound):  # Jira answers 404 also for a missing permission
        error += " (no deletion received: the ticket was deleted, or the credentials cannot see it)"
    return error


def record_failure(
    final: Any,
    settings: PipelineSettings,
    instance: str,
    ticket: str,
    attempts: int,
    exc: Exception,
    now: float,
    log_fields: Mapping[str, Any],
) -> float | None:
    """Count attempt number `attempts` of the ticket: a retry timer, or the failed registry at the last.

    Returns when the retry is due, None when the ticket was given up (put in the failed registry).
    """
    final.hset(store.ticket_key(instance, ticket), store.META + "attempts", attempts)
    extra = {**log_fields, "attempts": attempts}
    error = describe(exc)
    if attempts >= settings.max_attempts:
        log.error("ticket failed for good", exc_info=exc, extra={**extra, "event": "ticket_failed"})
        failed.record_ticket(final, instance, ticket, error, attempts, now)
        return None
    delay = backoff(settings, attempts)
    if isinstance(exc, RateLimited):
        delay = max(delay, float(exc.retry_after))
    log.warning(
        "ticket will be retried",
        exc_info=not isinstance(exc, ApiError) or None,
        extra={**extra, "event": "ticket_retry", "error": error, "delay_s": round(delay, 3)},
    )
    timers.schedule(final, instance, ticket, now + delay)
    return now + delay


def gone_reason(exc: NotFound, events: list[TicketEvent]) -> str | None:
    """Why a NotFound ends the ticket's effects; None when it is not to be believed yet.

    Jira answers 404 also for a missing permission (and Cloud for refused credentials): a bare 404
    is believed only once the product told us of a deletion; until then it is retried like any
    failure and ends in the failed registry, never silently. A NotFound for another status is the
    adapter's definite verdict (Zendesk 422 "closed prevents ticket update"), and so is a
    `confirmed` one: the adapter re-read the ticket (404 again) and its credentials work (products
    or webhook kinds that never send a deletion, e.g. Zendesk triggers).
    """
    if store.is_deleted(events):
        return "deleted"
    if getattr(exc, "confirmed", False):
        return "confirmed 404"
    if exc.status not in (None, 404):
        return f"HTTP {exc.status}"
    return None


def mark_gone(
    final: Any, record: store.TicketRecord, reason: str, now: float, log_fields: Mapping[str, Any]
) -> None:
    """End the ticket's effects: the `#gone` mark (with `#gone_at`), no timer, earlier failures explained."""
    extra = {**log_fields, "event": "ticket_gone", "reason": reason}
    log.warning("ticket is gone: its effects end", extra=extra)
    tk = store.ticket_key(record.instance, record.ticket)
    final.hset(tk, mapping={store.META + "gone": reason, store.META + "gone_at": repr(now)})
    timers.cancel(final, record.instance, record.ticket)
    clear_failures(final, record)  # 404s before the deletion arrived were failures; they are explained now


def clear_failures(final: Any, record: store.TicketRecord) -> None:
    """Forget the ticket's earlier failed attempts: its attempt count and its failed-registry entry."""
    if record.attempts:
        final.hdel(store.ticket_key(record.instance, record.ticket), store.META + "attempts")
        final.hdel(store.FAILED, failed.ticket_id(record.instance, record.ticket))


def mark_disproved(record: store.TicketRecord, fresh: list[TicketEvent]) -> bool:
    """Whether a newly stored event shows that a ticket marked gone (with no deletion in its log) exists.

    Only a 404 mark can be disproved ("confirmed 404", or "1" from older versions): a definite
    verdict of another status (Zendesk 422: a closed ticket is never writable again) stays. The
    event must be newer than the mark (its `#gone_at`; for marks without one, than the stored log),
    so a late redelivery of an old webhook does not revive a deleted ticket.
    """
    reason = record.meta.get("gone", "")
    if not reason or reason.startswith("HTTP "):
        return False
    if "gone_at" in record.meta:
        since = float(record.meta["gone_at"])
    elif record.events:
        since = max(e.at for e in record.events).timestamp()
    else:
        since = float("-inf")
    return any(e.kind is not EventKind.DELETED and e.at.timestamp() > since for e in fresh)


def drop_disproved_mark(
    final: Any, record: store.TicketRecord, fresh: list[TicketEvent], log_fields: Mapping[str, Any]
) -> bool:
    """Drop the ticket's gone mark when `mark_disproved`; whether it was dropped.

    Jira answers 404 also for a lost Browse permission: a 404 taken as "gone" was then something
    else. Evaluated again, a 404 is retried like any failure (and ends in the failed registry).
    """
    if not mark_disproved(record, fresh):
        return False
    log.warning(
        "a newer event arrived for a ticket marked gone: the mark is dropped",
        extra={**log_fields, "event": "gone_dropped", "reason": record.meta["gone"]},
    )
    final.hdel(store.ticket_key(record.instance, record.ticket), store.META + "gone", store.META + "gone_at")
    record.meta.pop("gone", None)
    record.meta.pop("gone_at", None)
    return True


def unrefused(missing: Sequence[Effect], rejected: Mapping[str, Mapping[str, Any]]) -> list[Effect]:
    """`missing` without the effects whose value the product already refused.

    A refusal is kept per key with the refused ledger value: a later evaluation that wants another
    value for that key (another due date, another priority) tries it; the same value is never sent
    again (`failed retry ticket:<instance>:<ticket>` forgets the refusals, e.g. after a mapping fix).
    """
    return [e for e in missing if (rejected.get(e.key) or {}).get("value") != e.ledger_value]


def record_rejected(
    conn: Any,
    tally: status.Tally,
    record: store.TicketRecord,
    product: str,
    missing: Sequence[Effect],
    reasons: Mapping[str, str],
    now: float,
    log_fields: Mapping[str, Any],
) -> list[Effect]:
    """Record the effects of `missing` the product refused, once: "rej:<key>" = refused value, why, when.

    Written at once (like applied effects), logged (one WARNING each) and counted
    (`effects_rejected` by instance, product, kind). Not a failure: no retry, no failed registry,
    since the same value would be refused again. Returns the refused effects.
    """
    refused = [e for e in missing if e.key in reasons]
    if not refused:
        return []
    mapping = {
        store.LEDGER_REJECTED + e.key: store.encode_rejection(e.ledger_value, reasons[e.key], now)
        for e in refused
    }
    conn.hset(store.ticket_key(record.instance, record.ticket), mapping=mapping)
    # Listed by `failed list` and replayed by `failed retry --all`: a refusal may come from the setup
    # (a priority or field the product lacks) and be worth trying again once it is fixed.
    conn.sadd(store.REFUSED, failed.ticket_id(record.instance, record.ticket))
    for effect in refused:
        log.warning(
            "effect rejected by the product: not written, not retried",
            extra={
                **log_fields,
                "event": "effect_rejected",
                "effect": effect.key,
                "kind": str(effect.kind),
                "reason": reasons[effect.key],
            },
        )
        labels = {"instance": record.instance, "product": product, "kind": str(effect.kind)}
        tally.incr("effects_rejected", labels)
    return refused
