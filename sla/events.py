"""The canonical ticket events every adapter normalises its payloads into.

The SLA state of a ticket is a pure function of the *set* of these events (plus policy, calendars
and `now`), so each event carries a stable `event_id` (for deduplication) and the instant it
happened (for ordering); nothing depends on the order or the number of deliveries.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class EventKind(StrEnum):
    CREATED = "created"  # `fields` is the ticket's snapshot at creation
    CHANGED = "changed"  # `fields` holds the new values of the fields that changed
    COMMENTED = "commented"  # a comment was added; `public` says whether the requester sees it
    DELETED = "deleted"  # the ticket is gone: every clock is cancelled (unless a RESTORED follows)
    RESTORED = "restored"  # a deleted ticket exists again (Zendesk restores within 30 days)


class Role(StrEnum):
    """Who did it. Only an agent's public comment counts as a response."""

    AGENT = "agent"
    REQUESTER = "requester"
    CONNECTOR = "connector"  # our own write-backs coming back as webhooks
    OTHER = "other"  # automation, light agents, unknown users: never a response


class Status(StrEnum):
    """Canonical status categories; adapters map each product's statuses onto these."""

    NEW = "new"
    OPEN = "open"
    PENDING = "pending"  # waiting on the requester
    ON_HOLD = "on_hold"  # waiting on a third party
    SOLVED = "solved"
    CLOSED = "closed"


#: Canonical field names an event's `fields` may carry, with the type of their values.
#: `status` is a Status, `tags` a frozenset of str, everything else str (or None when unset).
FIELDS = frozenset(
    {
        "status",  # Status
        "status_name",  # the product's own status name, e.g. "Waiting for customer"
        "priority",  # canonical priority name after the instance's mapping, e.g. "high"
        "type",
        "tags",  # frozenset[str]; the full set after the change (Jira labels, Zendesk tags)
        "assignee",
        "group",
        "project",
        "brand",
        "organization",  # the customer organisation (Zendesk organization id), for reports and contracts
        "requester",
        "created_at",  # the ticket's creation instant as the product reports it (see below)
        "key",  # the name people use for the ticket where it is not its id (a Jira issue key, "SUP-42")
        "outage_start",  # when the outage a ticket reports began: the product field an instance names
    }
)
#: Fields whose values are instants (ISO 8601 UTC strings once canonical): what a contract's
#: `downtime_from` may name.
INSTANT_FIELDS = frozenset({"created_at", "outage_start"})
#: `created_at` is carried by every event whose payload states it (Jira `issue.fields.created`,
#: Zendesk `created_at`), so a ticket first seen after its creation starts its clocks at its real
#: creation. It is a field (an ISO 8601 UTC string, made canonical here) rather than an attribute
#: of its own so that event logs store and compare it like any other field.
#: `outage_start` is carried where an instance maps it to a product field (`outage_start_field`: a
#: Jira custom field, a Zendesk ticket field); None when that field is empty. Uptime reports start an
#: incident's downtime there when a contract says `downtime_from: outage_start`.


_KIND_RANK = {EventKind.CREATED: 0, EventKind.RESTORED: 2}
_STATUS = {status.value: status for status in Status}  # faster than Status(value)
_DIGITS = re.compile(r"(\d+)")

#: A part of an id in `natural_key`: (0, 0, text) or (1, number of digits, digits without leading zeros).
IdPart = tuple[int, int, str]


def natural_key(event_id: str) -> tuple[tuple[IdPart, ...], str]:
    """Sort key of an event id in which runs of digits compare as numbers: `comment:999` before
    `comment:1000`. Jira's changelog and comment ids and Zendesk's comment and audit ids grow with time,
    so at one instant this is the order in which the product recorded them. Numbers are compared by
    length and digits (no int conversion, so any length is fine); the id itself breaks the last ties
    (`09` and `9`), so the order is total."""
    parts: list[IdPart] = []
    for i, run in enumerate(_DIGITS.split(event_id)):
        if i % 2:
            digits = run.lstrip("0")
            parts.append((1, len(digits), digits))
        elif run:
            parts.append((0, 0, run))
    return tuple(parts), event_id


def sort_by(events: Iterable[TicketEvent], coarse: Callable[[TicketEvent], Any]) -> list[TicketEvent]:
    """`events` sorted by (coarse(e), natural_key(e.event_id)). Natural keys (a regex split each) cost
    more than the sort itself, and only events whose coarse keys tie (the same instant) need them: they
    are computed for those alone. Event ids must be unique (deduplicated), so the order is total."""
    keyed = sorted([(coarse(ev), ev) for ev in events], key=_first)
    out = [ev for _, ev in keyed]
    i, n = 0, len(keyed)
    while i < n - 1:
        j = i + 1
        while j < n and keyed[j][0] == keyed[i][0]:
            j += 1
        if j - i > 1:
            out[i:j] = sorted(out[i:j], key=_id_order)
        i = j
    return out


def in_order(events: Iterable[TicketEvent]) -> list[TicketEvent]:
    """`sorted(events, key=lambda e: e.sort_key)` for events with unique ids, computed faster."""
    return sort_by(events, _time_and_kind)


def _first(pair: tuple[Any, TicketEvent]) -> Any:
    return pair[0]


def _id_order(ev: TicketEvent) -> tuple[tuple[IdPart, ...], str]:
    return ev.sort_key[2]


def _time_and_kind(ev: TicketEvent) -> tuple[datetime, int]:
    return (ev.at, _KIND_RANK.get(ev.kind, 1))


def _canonical_instant(value: Any, event_id: str, name: str) -> str:
    """An instant field as one spelling (UTC ISO 8601), so two deliveries of one event compare equal."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            msg = f"TicketEvent {event_id}: {name} {value!r} is not an ISO 8601 instant"
            raise ValueError(msg) from None
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"TicketEvent {event_id}: {name} {value!r} must be a timezone-aware instant")
    return value.astimezone(UTC).isoformat()


@dataclass(frozen=True)
class TicketEvent:
    event_id: str
    ticket_id: str
    kind: EventKind
    at: datetime
    actor: Role = Role.OTHER
    fields: Mapping[str, Any] = field(default_factory=dict)
    public: bool | None = None  # COMMENTED only

    def __post_init__(self) -> None:
        if not self.event_id:
            raise ValueError("TicketEvent.event_id must not be empty")
        if not self.ticket_id:
            raise ValueError(f"TicketEvent {self.event_id}: ticket_id must not be empty")
        if self.at.tzinfo is None or self.at.utcoffset() is None:
            raise ValueError(f"TicketEvent {self.event_id}: `at` must be timezone-aware")
        object.__setattr__(self, "kind", EventKind(self.kind))
        object.__setattr__(self, "actor", Role(self.actor))
        unknown = set(self.fields) - FIELDS
        if unknown:
            raise ValueError(f"TicketEvent {self.event_id}: unknown fields {sorted(unknown)}")
        fields = dict(self.fields)
        if fields.get("status") is not None:
            fields["status"] = Status(fields["status"])
        if fields.get("tags") is not None:
            fields["tags"] = frozenset(fields["tags"])
        for name in INSTANT_FIELDS:
            if fields.get(name) is not None:
                fields[name] = _canonical_instant(fields[name], self.event_id, name)
        object.__setattr__(self, "fields", fields)
        if self.kind is EventKind.COMMENTED and self.public is None:
            raise ValueError(f"TicketEvent {self.event_id}: a comment must say whether it is public")

    @classmethod
    def from_stored(
        cls,
        event_id: str,
        ticket_id: str,
        kind: EventKind,
        at: datetime,
        actor: Role,
        fields: dict[str, Any],
        public: bool | None,
    ) -> TicketEvent:
        """An event read back from a store that only holds events this class built (and so checked):
        the checks are skipped, and only what JSON cannot carry is restored (the Status, the tags'
        frozenset). `kind` and `actor` must be the enums, `at` timezone-aware, and `fields` a dict of
        canonical values that the event takes over. Replays decode thousands of stored events a second,
        and the checks cost as much as the rest of the decoding."""
        status = fields.get("status")
        if status is not None:
            try:
                fields["status"] = _STATUS[status]
            except KeyError:
                raise ValueError(
                    f"TicketEvent {event_id}: stored status {status!r} is not a Status"
                ) from None
        tags = fields.get("tags")
        if tags is not None:
            fields["tags"] = frozenset(tags)
        event = object.__new__(cls)
        # A frozen dataclass refuses attribute assignment; its instance dict takes the fields directly.
        event.__dict__.update({
            "event_id": event_id, "ticket_id": ticket_id, "kind": kind, "at": at,
            "actor": actor, "fields": fields, "public": public,
        })  # fmt: skip
        return event

    @property
    def sort_key(self) -> tuple[datetime, int, tuple[tuple[IdPart, ...], str]]:
        """Time order; at the same instant a creation comes first and a restore last (only a deleted
        ticket can be restored), then the ids in `natural_key` order (the product's own order)."""
        # Cached on the event (frozen, so it never goes stale): every evaluation sorts the events twice,
        # and a replay evaluates one decoded log under two policy sets. Not functools.cached_property:
        # on Python 3.11 it takes a lock on every first access, which cost more than it saved.
        key = self.__dict__.get("_sort_key")
        if key is None:
            key = (self.at, _KIND_RANK.get(self.kind, 1), natural_key(self.event_id))
            object.__setattr__(self, "_sort_key", key)
        return key

    @property
    def reported_creation(self) -> datetime | None:
        """The ticket's creation instant stated by this event's payload, if any."""
        value = self.fields.get("created_at")
        return None if value is None else datetime.fromisoformat(value)

    def to_dict(self) -> dict[str, Any]:
        fields = {
            k: sorted(v) if k == "tags" and v is not None else (str(v) if k == "status" else v)
            for k, v in self.fields.items()
        }
        return {
            "event_id": self.event_id,
            "ticket_id": self.ticket_id,
            "kind": self.kind.value,
            "at": self.at.astimezone(UTC).isoformat(),
            "actor": self.actor.value,
            "fields": fields,
            "public": self.public,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TicketEvent:
        return cls(
            event_id=data["event_id"],
            ticket_id=data["ticket_id"],
            kind=EventKind(data["kind"]),
            at=datetime.fromisoformat(data["at"]),
            actor=Role(data.get("actor", "other")),
            fields=data.get("fields") or {},
            public=data.get("public"),
        )
