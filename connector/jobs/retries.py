"""What a ticket job does with the products' answers other than success: gone tickets, refused values.

A failed write (5xx, timeout, a bug) is not handled here: the job stores what it has and raises, and
RQ retries it (`Retry` with backoff) and keeps it in its FailedJobRegistry at the last attempt. A
ticket that is gone (deleted, confirmed 404) ends its effects (`mark_gone`). An effect whose value
the product refuses is no failure: it is recorded once as rejected (`record_rejected`) and not sent
again while the evaluation wants that same value (`unrefused`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from rq.registry import FailedJobRegistry

from adapters.base import ApiError, NotFound
from connector.state import failed, queues, status, store, timers
from sla.effects import Effect
from sla.events import EventKind, TicketEvent

log = logging.getLogger("sla_connector.jobs")


def describe(exc: Exception) -> str:
    """The error as logged and kept with a failed job (adapters keep secrets out of messages)."""
    if not isinstance(exc, ApiError):
        return f"{type(exc).__name__}: {exc}"
    error = f"{type(exc).__name__} (HTTP {exc.status}): {exc}"
    if isinstance(exc, NotFound):  # Jira answers 404 also for a missing permission
        error += " (no deletion received: the ticket was deleted, or the credentials cannot see it)"
    return error


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


def clear_failed_job(conn: Any, final: Any, record: store.TicketRecord) -> None:
    """Forget the ticket's job that failed for good (RQ's FailedJobRegistry): this look went through."""
    job_id = record.meta.get("failed_job")
    if not job_id:
        return
    final.hdel(store.ticket_key(record.instance, record.ticket), store.META + "failed_job")
    registry = FailedJobRegistry(queue=queues.queue(conn, queues.TICKETS))
    if job_id in registry:
        registry.remove(job_id, delete_job=True)


def mark_gone(
    conn: Any, final: Any, record: store.TicketRecord, reason: str, now: float, log_fields: Mapping[str, Any]
) -> None:
    """End the ticket's effects: the `#gone` mark (with `#gone_at`), no timer, earlier failures explained."""
    extra = {**log_fields, "event": "ticket_gone", "reason": reason}
    log.warning("ticket is gone: its effects end", extra=extra)
    tk = store.ticket_key(record.instance, record.ticket)
    final.hset(tk, mapping={store.META + "gone": reason, store.META + "gone_at": repr(now)})
    timers.cancel(final, record.instance, record.ticket)
    clear_failed_job(conn, final, record)  # 404s before the deletion arrived were failures; explained now


def mark_disproved(record: store.TicketRecord, fresh: list[TicketEvent]) -> bool:
    """Whether a newly stored event shows that a ticket marked gone (with no deletion in its log) exists.

    Only a 404 mark can be disproved ("confirmed 404"): a definite
    verdict of another status (Zendesk 422: a closed ticket is never writable again) stays. The
    event must be newer than the mark (its `#gone_at`), so a late redelivery of an old webhook does
    not revive a deleted ticket.
    """
    reason = record.meta.get("gone", "")
    if not reason or reason.startswith("HTTP "):
        return False
    since = float(record.meta.get("gone_at", "-inf"))
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
