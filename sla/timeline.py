"""A ticket's history rebuilt from its events: deduplicated, ordered, cut at `now` and at deletion.

Only the *set* of events matters: duplicates (same event_id) collapse, order comes from
TicketEvent.sort_key, and events after `now` are ignored so a replay at an earlier `now` sees only
what had happened by then.

A deletion ends the history only when no restore follows it (Zendesk restores a soft-deleted
ticket within 30 days): the time in between counts like any other time (see
docs/sla-semantics.md, "Deleted and restored tickets").

A ticket with no creation event (it predates the connector, or that webhook was lost) starts at
the creation instant its events report (`created_at`), else at its earliest event.

The connector's own priority changes (escalation actions coming back as webhooks) are a consequence
of the SLA, not news about the ticket: for SLA purposes (policy matching and targets) the priority
stays what people set (see `_sla_fields`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sla.events import EventKind, Role, Status, TicketEvent, in_order

STOPPED = frozenset({Status.SOLVED, Status.CLOSED})


@dataclass(frozen=True)
class Timeline:
    ticket_id: str
    created: datetime  # the CREATED event's time, else the reported creation or the earliest event's
    events: tuple[TicketEvent, ...]  # deduplicated, in sort_key order, none after `now` or the final deletion
    deleted_at: datetime | None  # the deletion no restore followed
    attrs: Mapping[str, Any]  # current fields: each from the latest event that carries it (*)
    statuses: tuple[tuple[datetime, Status], ...]  # (since, status); the first is at `created`
    priorities: tuple[tuple[datetime, str | None], ...]  # (since, priority); the first at `created` (*)
    # (*) the priority ignores the connector's own changes: see _sla_fields

    def priority_at(self, t: datetime) -> str | None:
        """The priority set last at or before `t` (the first one before the first change)."""
        value = self.priorities[0][1]
        for since, priority in self.priorities:  # a handful of changes at most: no bisection needed
            if since > t:
                break
            value = priority
        return value

    def when(self, event: TicketEvent) -> datetime:
        """An event's instant, never before creation (clock skew between products and webhooks)."""
        return max(event.at, self.created)


def _canonical(event: TicketEvent) -> str:
    return json.dumps(event.to_dict(), sort_keys=True, default=str)


def dedupe(events: Iterable[TicketEvent]) -> list[TicketEvent]:
    """One event per event_id, sorted. If two deliveries disagree, the smallest (sort_key, JSON) wins,
    so the choice does not depend on arrival order."""
    by_id: dict[str, TicketEvent] = {}
    for ev in events:
        old = by_id.get(ev.event_id)
        if old is None or (old != ev and (ev.sort_key, _canonical(ev)) < (old.sort_key, _canonical(old))):
            by_id[ev.event_id] = ev
    return in_order(by_id.values())


def _final_deletion(ordered: Sequence[TicketEvent]) -> int | None:
    """Index of the deletion that ends the ticket: the first DELETED after the last RESTORED."""
    if EventKind.DELETED not in [ev.kind for ev in ordered]:  # the common case, checked at C speed
        return None
    since: int | None = None
    for i, ev in enumerate(ordered):
        if ev.kind is EventKind.DELETED and since is None:
            since = i
        elif ev.kind is EventKind.RESTORED:
            since = None
    return since


def final_deletion(events: Iterable[TicketEvent]) -> TicketEvent | None:
    """The deletion no restore followed (the ticket is gone), or None while the ticket exists.

    For the connector's store: a log with a DELETED event is not a deleted ticket if it was restored.
    """
    ordered = dedupe(events)
    i = _final_deletion(ordered)
    return None if i is None else ordered[i]


def build_timeline(events: Iterable[TicketEvent], now: datetime) -> Timeline | None:
    """The ticket's history as of `now`; None when no event has happened yet."""
    events = list(events)
    ids = {e.ticket_id for e in events}
    if len(ids) > 1:
        raise ValueError(f"evaluate: events of several tickets given together: {sorted(ids)}")
    ordered = [e for e in dedupe(events) if e.at <= now]
    if not ordered:
        return None
    end = _final_deletion(ordered)
    kept = ordered if end is None else ordered[: end + 1]  # events after the final deletion are ignored
    created_ev = next((e for e in kept if e.kind is EventKind.CREATED), None)
    if created_ev is not None:
        created = created_ev.at
    else:
        # The earliest stated creation wins, so the result does not depend on which event came first.
        reported = [t for t in (e.reported_creation for e in kept) if t is not None]
        created = min([kept[0].at, *reported])
    attrs: dict[str, Any] = {}
    statuses: list[tuple[datetime, Status]] = [(created, Status.NEW)]
    priorities: list[tuple[datetime, str | None]] = [(created, None)]
    shown: list[str | None] = [None]  # the priority the product shows, the connector's changes included
    for ev in kept:
        fields = _sla_fields(ev, attrs.get("priority"), shown)
        attrs.update(fields)
        t = max(ev.at, created)
        status = fields.get("status")
        if status is not None and status != statuses[-1][1]:
            statuses.append((t, status))
        if "priority" in fields and fields["priority"] != priorities[-1][1]:
            priorities.append((t, fields["priority"]))
    prios = _collapse(priorities)
    if created_ev is None and len(prios) > 1 and prios[0][1] is None:
        # Seen only after its creation: the first priority known is the best guess for the time
        # before it. The status is not backdated: a changed status says what it became, not what it
        # was, so until the first event the ticket counts as new (its clocks run).
        prios = ((created, prios[1][1]), *prios[2:])
    return Timeline(
        ticket_id=ordered[0].ticket_id,
        created=created,
        events=tuple(kept),
        deleted_at=None if end is None else max(kept[-1].at, created),
        attrs=attrs,
        statuses=_collapse(statuses),
        priorities=prios,
    )


def _sla_fields(ev: TicketEvent, sla_priority: str | None, shown: list[str | None]) -> Mapping[str, Any]:
    """The event's fields as the SLA sees them; `shown` (one item, updated) is the product's priority.

    A priority set by the connector (an escalation action) changes neither the targets nor the
    policy: otherwise raising the priority at a breach would move the breach days earlier and reach
    every later level at once. Payloads that carry the whole ticket (Zendesk) keep restating that
    priority on later events by anyone, so a value equal to what the product already shows is no
    change either; only a person setting a different priority is. While no priority is known (a
    ticket older than its first event here), whatever the product shows is the best information.
    """
    if "priority" not in ev.fields:
        return ev.fields
    value = ev.fields["priority"]
    own = ev.actor is Role.CONNECTOR and ev.kind is not EventKind.CREATED
    restated = value == shown[0] and value != sla_priority
    shown[0] = value
    if sla_priority is not None and (own or restated):
        return {k: v for k, v in ev.fields.items() if k != "priority"}
    return ev.fields


def _collapse(changes: list[tuple[datetime, Any]]) -> tuple[tuple[datetime, Any], ...]:
    """Keep the last value at each instant (several changes within one second, or at creation)."""
    out: list[tuple[datetime, Any]] = []
    for since, value in changes:
        if out and out[-1][0] == since:
            out[-1] = (since, value)
        else:
            out.append((since, value))
    merged: list[tuple[datetime, Any]] = []
    for since, value in out:
        if not merged or merged[-1][1] != value:
            merged.append((since, value))
    return tuple(merged)
