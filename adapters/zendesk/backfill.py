"""Backfill: the canonical events of Zendesk tickets that changed since an instant, read through the REST API.

For tickets that existed before the webhook was installed. Tickets come from the incremental
export (`ZendeskClient.iter_tickets`); each ticket's history from its audits
(`GET /api/v2/tickets/{id}/audits`), which hold every field change and every comment (a comment's id
is the id of its audit event), so paused time and reopenings come out as they happened. Event ids:
- `zendesk:<ticket>:created` and `zendesk:<ticket>:comment:<comment id>`, as trigger webhooks make
  them (adapters/zendesk/inbound.py), so those dedupe with trigger deliveries;
- `zendesk:<ticket>:audit:<audit id>` for the field changes of one audit, and
  `zendesk:<ticket>:deleted` for a deleted ticket: the webhooks have no id these could share.
Event webhooks (`kind: events`) name every event by Zendesk's own event id, which no API returns:
a backfill during their live traffic stores those changes a second time under other ids. The SLA
outcome is the same (a repeated change sets the same values; a repeated comment is at the same
instant), see docs/install-zendesk.md, "Backfill".
Comment roles: the connector's user or marker, else the author's Zendesk role (agents and admins
are staff), read once per author with `GET /api/v2/users/show_many`.
The instance's `outage_start_field` is followed like the other tracked fields: the ticket's
`custom_fields` give its value today, audits name its changes by the field's id.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from adapters.zendesk import ZendeskAdapter
from adapters.zendesk.client import ZendeskClient
from adapters.zendesk.config import ZendeskSettings
from adapters.zendesk.http import ZendeskHttp
from adapters.zendesk.inbound import (
    actor_of_change,
    comment_role,
    opt_id,
    outage_fields,
    parse_instant,
    snapshot,
)
from sla.events import EventKind, TicketEvent

#: A one-off admin command may wait out a longer Retry-After than a worker would (the incremental
#: export allows 10 requests a minute).
MAX_RETRY_AFTER = 120.0
#: Ticket fields as the API names them -> the canonical fields they set (through inbound.snapshot).
TRACKED: dict[str, tuple[str, ...]] = {
    "status": ("status", "status_name"),
    "custom_status_id": ("status", "status_name"),
    "priority": ("priority",),
    "type": ("type",),
    "tags": ("tags",),
    "assignee_id": ("assignee",),
    "group_id": ("group",),
    "brand_id": ("brand",),
    "organization_id": ("organization",),
    "requester_id": ("requester",),
}
EXPORT = "/api/v2/incremental/tickets/cursor.json"
COMMENT_TYPES = frozenset({"Comment", "VoiceComment"})
STAFF_ROLES = frozenset({"agent", "admin"})
USERS_PER_CALL = 100  # show_many takes at most 100 ids

Payload = Mapping[str, Any]


class ZendeskBackfill:
    """Reads one instance's tickets for `connector.backfill` (the product-neutral part)."""

    def __init__(self, adapter: ZendeskAdapter) -> None:
        self.settings = adapter.settings
        # Its own HTTP client: the adapter's is shared with write-back, which must not wait as long.
        self.http = ZendeskHttp.from_settings(self.settings, session=adapter._session, sleep=adapter._sleep)
        self.http.max_retry_after = max(self.http.max_retry_after, MAX_RETRY_AFTER)
        self.client = ZendeskClient(self.settings, self.http)
        self._staff: dict[str, bool | None] = {}  # user id -> is_staff (None: unknown user)

    def tickets_since(self, since: datetime) -> Iterator[dict[str, Any]]:
        """Tickets updated at or after `since` (the export's own `start_time` rule)."""
        return self.client.iter_tickets(since)

    def ticket_id(self, ticket: Payload) -> str:
        return str(ticket["id"])

    def changed_pages(
        self, since: datetime, start: str | None, now: datetime
    ) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        """Tickets changed at or after `since`, in the incremental export's pages: (the page's token,
        its tickets). A token is the export's own cursor of the page ("" for the first, which starts
        at `since`); `start`, a token yielded before, reads the export again from its page.

        Zendesk leaves out the last minute's changes (the next window reads them) and allows 10
        export requests a minute: a 429 is raised with its Retry-After for the caller to wait.
        """
        if since.tzinfo is None:
            raise ValueError(f"changed_pages: since {since!r} must be timezone-aware")
        token = start or ""
        while True:
            params = {"cursor": token} if token else {"start_time": int(since.timestamp())}
            data = self.http.request("GET", EXPORT, params=params) or {}
            yield token, list(data.get("tickets") or [])
            cursor = data.get("after_cursor")
            if data.get("end_of_stream", True) or not cursor:
                return
            token = str(cursor)

    def ticket(self, ticket_id: str) -> dict[str, Any]:
        """One ticket as the export shows it (for the events of a ticket first seen by a webhook)."""
        if not ticket_id.isdigit():
            raise ValueError(f"zendesk ticket id {ticket_id!r}: expected digits")
        data = self.http.request("GET", f"/api/v2/tickets/{ticket_id}.json") or {}
        return dict(data.get("ticket") or {})

    def events(self, ticket: Payload) -> list[TicketEvent]:
        """The ticket's events: reads its audits (paged) and the roles of comment authors not seen yet."""
        tid = self.ticket_id(ticket)
        if str(ticket.get("status", "")).lower() == "deleted":
            at = parse_instant(ticket["updated_at"], "$.updated_at")
            return [TicketEvent(f"zendesk:{tid}:deleted", tid, EventKind.DELETED, at)]
        audits = list(self.http.pages(f"/api/v2/tickets/{tid}/audits.json", "audits", {"page[size]": 100}))
        self._learn_roles(author for audit in audits for author in _comment_authors(audit))
        return ticket_events(self.settings, ticket, audits, self._staff)

    def _learn_roles(self, authors: Iterable[str]) -> None:
        unknown = sorted({a for a in authors if a not in self._staff})
        for start in range(0, len(unknown), USERS_PER_CALL):
            ids = unknown[start : start + USERS_PER_CALL]
            params = {"ids": ",".join(ids)}
            data = self.http.request("GET", "/api/v2/users/show_many.json", params=params) or {}
            for user in data.get("users") or []:
                role = str(user.get("role") or "").lower()
                self._staff[str(user.get("id"))] = role in STAFF_ROLES if role else None
            for user_id in ids:
                self._staff.setdefault(user_id, None)  # deleted users are not returned


def reader(adapter: ZendeskAdapter) -> ZendeskBackfill:
    return ZendeskBackfill(adapter)


# ---------------------------------------------------------------- pure: ticket + audits -> events


def ticket_events(
    settings: ZendeskSettings, ticket: Payload, audits: list[Payload], staff: Mapping[str, bool | None]
) -> list[TicketEvent]:
    """The events of one ticket (an export row and its audits, any order), sorted by time."""
    tid = str(ticket["id"])
    created_at = parse_instant(ticket["created_at"], "$.created_at")
    # Every event states the ticket's creation, as the webhooks' events do (inbound.py).
    common = {"created_at": created_at}
    audits = sorted(audits, key=lambda a: (parse_instant(a["created_at"], "$.audits[].created_at"), a["id"]))
    # The outage field is followed like the tracked fields: audits keep its stored values (a day, not
    # display text), so each change states what it set and the creation what it held before the first.
    tracked = tracked_fields(settings)
    raw = fields_at_creation(ticket, audits, tracked)
    creator = opt_id(audits[0].get("author_id")) if audits else opt_id(ticket.get("submitter_id"))
    events = [
        TicketEvent(
            f"zendesk:{tid}:created",
            tid,
            EventKind.CREATED,
            created_at,
            actor_of_change({"actor_id": creator, "requester_id": raw.get("requester_id")}, settings),
            {**_snapshot(raw, settings, "$.custom_fields"), **common},
        )
    ]
    for audit in audits:
        at = parse_instant(audit["created_at"], "$.audits[].created_at")
        author = opt_id(audit.get("author_id"))
        changes = {e["field_name"]: e.get("value") for e in _events(audit, "Change")
                   if e.get("field_name") in tracked}
        if changes:
            raw.update(changes)
            now = _snapshot(raw, settings, "$.audits[].events[].value")
            names = {name for field in changes for name in tracked[field]}
            actor = actor_of_change({"actor_id": author, "requester_id": raw.get("requester_id")}, settings)
            # (`outage_start` is missing from `now` when its value could not be read: logged, left out)
            fields = {**{name: now[name] for name in sorted(names) if name in now}, **common}
            event_id = f"zendesk:{tid}:audit:{audit['id']}"
            events.append(TicketEvent(event_id, tid, EventKind.CHANGED, at, actor, fields))
        requester = opt_id(raw.get("requester_id"))
        for comment in (e for e in audit.get("events") or () if e.get("type") in COMMENT_TYPES):
            who = opt_id(comment.get("author_id")) or author
            body = comment.get("body") if isinstance(comment.get("body"), str) else None
            role = comment_role(who, staff.get(who or ""), body, requester, settings)
            event_id = f"zendesk:{tid}:comment:{comment['id']}"
            public = bool(comment.get("public"))
            events.append(TicketEvent(event_id, tid, EventKind.COMMENTED, at, role, common, public=public))
    return sorted(events, key=lambda e: e.sort_key)


def tracked_fields(settings: ZendeskSettings) -> dict[str, tuple[str, ...]]:
    """TRACKED, and the instance's `outage_start_field` under the name audits give it: its id."""
    if settings.outage_start_field is None:
        return TRACKED
    return {**TRACKED, str(settings.outage_start_field): ("outage_start",)}


def fields_at_creation(
    ticket: Payload, audits: list[Payload], tracked: Mapping[str, tuple[str, ...]] = TRACKED
) -> dict[str, Any]:
    """The ticket's tracked fields at creation: today's with every change undone, newest first.

    A custom field is undone like the others (an audit's `previous_value` is the stored value, a day as
    "2026-11-27"): at creation it holds the value before its first change, or today's if none changed it.
    """
    raw = {name: ticket.get(name) for name in TRACKED}
    custom = {str(f.get("id")): f.get("value") for f in ticket.get("custom_fields") or ()
              if isinstance(f, Mapping)}
    raw.update({name: custom.get(name) for name in tracked if name not in TRACKED})
    for audit in reversed(audits):
        for change in reversed(list(_events(audit, "Change"))):
            if change.get("field_name") in tracked:
                raw[change["field_name"]] = change.get("previous_value")
    return raw


def _snapshot(raw: Mapping[str, Any], settings: ZendeskSettings, outage_path: str) -> dict[str, Any]:
    # inbound.snapshot reads the event webhook's `detail`, which calls the custom status `custom_status`.
    detail = {**raw, "custom_status": raw.get("custom_status_id")}
    fields = snapshot(detail, settings, "$.status")
    if settings.outage_start_field is not None:
        value = raw.get(str(settings.outage_start_field))
        fields.update(outage_fields(value, settings, outage_path, None))
    return fields


def _events(audit: Payload, kind: str) -> Iterator[Payload]:
    return (e for e in audit.get("events") or () if e.get("type") == kind)


def _comment_authors(audit: Payload) -> Iterator[str]:
    for event in audit.get("events") or ():
        if event.get("type") in COMMENT_TYPES:
            author = opt_id(event.get("author_id")) or opt_id(audit.get("author_id"))
            if author is not None:
                yield author
