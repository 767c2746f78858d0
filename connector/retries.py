"""What happens when a ticket's evaluation or write-back fails: backoff timer, then the failed registry.

Split from connector/pipeline.py (the batch controller) to keep each module small. A failure
never blocks other tickets: the ticket gets a timer `backoff(attempts)` later (at least the
product's Retry-After on a 429) and, after `max_attempts`, an entry in the failed registry.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from typing import Any

from adapters.base import ApiError, NotFound, RateLimited
from connector import failed, store, timers
from connector.tuning import PipelineSettings
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
