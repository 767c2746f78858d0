"""A ticket's SLA state as the HTTP API shows it: its evaluation now, ledgers and bookkeeping."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import redis

from connector.state import store, timers


def ticket_state(
    conn: redis.Redis,
    config: Any,
    instance: str,
    ticket_id: str,
    now: datetime,
    *,
    evaluator: Any = None,
) -> dict | None:
    """The ticket's SLA state for the HTTP API; None for an unknown instance or ticket.

    `ticket_id` is the product's id or a display key the look job indexed (a Jira issue key).
    """
    cfg = config.instances.get(instance)
    if cfg is None:
        return None
    record = store.load_record(conn, instance, ticket_id)
    if record is None:  # perhaps a display key ("SUP-42") the look job indexed
        resolved = store.text(conn.hget(store.keys_key(instance), ticket_id))
        record = None if resolved is None else store.load_record(conn, instance, resolved)
    if record is None or not record.events:
        return None
    evaluate = evaluator or _default_evaluator()
    # As the jobs evaluate (with the ledger's keys), so the keys match.
    evaluation = evaluate(config.policies, config.calendars, record.events, now, instance=instance,
                          applied_keys=record.applied_keys(cfg.dry_run))
    out = dict(evaluation.to_dict())
    out["ledger"] = dict(sorted(record.ledger.items()))
    out["dry_run_ledger"] = dict(sorted(record.dry_ledger.items()))
    # Effects the product refused: recorded once with the refused value and why, never retried
    # until the evaluation wants another value for the key (or `failed retry` forgets them).
    out["rejected"] = {
        key: {**r, "at": None if r.get("at") is None else datetime.fromtimestamp(r["at"], UTC).isoformat()}
        for key, r in sorted(record.rejected.items())
    }
    out["dry_run"] = bool(cfg.dry_run)
    out["event_count"] = len(record.events)
    out["gone"] = record.gone
    out["key"] = record.meta.get("key")  # the display key, when the product has one
    out["pending_deliveries"] = int(conn.llen(store.inbox_key(instance, record.ticket)))  # not yet looked at
    due = timers.due_at(conn, instance, record.ticket)
    out["next_timer"] = None if due is None else datetime.fromtimestamp(due, UTC).isoformat()
    return out


def _default_evaluator() -> Any:
    from sla.evaluate import evaluate  # imported late: the SLA engine is heavy to import

    return evaluate
