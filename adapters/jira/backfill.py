"""Backfill: the canonical events of Jira issues that changed since an instant, read through the REST API.

For issues that existed before the webhook was installed. Each issue gives the events its webhooks
would have produced, with the same ids, so a webhook and a backfill of one change dedupe in the
ticket's log:
- `jira:<issue id>:created`, with the fields as they were at creation (the current fields with every
  changelog item undone, newest first);
- one `jira:<issue id>:changelog:<history id>` per change history (and its `:first-response` where the
  instance configures such statuses), made by `inbound.normalise` from the history put into the
  shape of a `jira:issue_updated` webhook;
- one `jira:<issue id>:comment:<comment id>` per comment, made the same way from a `comment_created`.
The instant of a change is the history's `created`; its webhook carries its delivery timestamp a
moment later under the same id, and `sla.timeline.dedupe` keeps the earlier whatever arrives first.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.jira import JiraAdapter, inbound
from adapters.jira.client import PAGE, JiraClient
from adapters.jira.config import JiraConfig
from adapters.jira.users import actor_role
from sla.events import EventKind, TicketEvent

#: The issue fields the events are made of (the webhook's issue snapshot, trimmed to what is read).
FIELDS = ("status", "priority", "issuetype", "labels", "assignee", "project", "reporter", "creator",
          "created", "updated")
#: A one-off admin command may wait out a longer Retry-After than a worker would.
MAX_RETRY_AFTER = 120.0

Payload = Mapping[str, Any]


def search_jql(cfg: JiraConfig, since: datetime) -> str:
    """The instance's webhook JQL (if any) and issues updated since the day before `since`.

    JQL dates are read in the service user's time zone, which the connector does not know: the
    query starts a day early and `events_since` drops what was updated before `since`.
    """
    day = (since.astimezone(UTC) - timedelta(days=1)).date().isoformat()
    updated = f'updated >= "{day}"'
    scope = f"({cfg.webhook_jql}) AND {updated}" if cfg.webhook_jql else updated
    return f"{scope} ORDER BY updated ASC"


class JiraBackfill:
    """Reads one instance's issues for `connector.backfill` (the product-neutral part)."""

    def __init__(self, adapter: JiraAdapter) -> None:
        self.cfg = adapter.cfg
        http = adapter.http()
        http.max_retry_after = max(http.max_retry_after, MAX_RETRY_AFTER)
        self.client = JiraClient(self.cfg, http)

    def tickets_since(self, since: datetime) -> Iterator[dict[str, Any]]:
        """Issues updated at or after `since` within the instance's webhook JQL, least recent first."""
        if since.tzinfo is None:
            raise ValueError(f"backfill: since {since!r} must be timezone-aware")
        for issue in self.client.iter_issues(search_jql(self.cfg, since), FIELDS):
            updated = inbound._jira_time((issue.get("fields") or {}).get("updated"))
            if updated is None or updated >= since:
                yield issue

    def ticket_id(self, issue: Payload) -> str:
        return str(issue["id"])

    def events(self, issue: Payload) -> list[TicketEvent]:
        """The issue's events: reads its change histories and comments (two paged calls)."""
        tid = self.ticket_id(issue)
        return issue_events(self.cfg, issue, list(self.client.changelog(tid)), comments(self.client, tid))


def reader(adapter: JiraAdapter) -> JiraBackfill:
    return JiraBackfill(adapter)


def events_since(adapter: JiraAdapter, since: datetime) -> Iterator[list[TicketEvent]]:
    """Per issue updated at or after `since` (in the instance's webhook JQL), its events, oldest first."""
    backfill = reader(adapter)
    for issue in backfill.tickets_since(since):
        yield backfill.events(issue)


def comments(client: JiraClient, issue: str) -> Iterator[dict[str, Any]]:
    """The issue's comments as objects (the client only reads their text), oldest first, all pages."""
    start = 0
    path = f"{client.api}/issue/{issue}/comment"
    while True:
        params = {"startAt": start, "maxResults": PAGE, "orderBy": "created"}
        page = client.http.request("GET", path, params=params) or {}
        values = page.get("comments") or []
        yield from values
        start += len(values)
        if not values or start >= int(page.get("total", 0)):
            return


def issue_events(
    cfg: JiraConfig, issue: Payload, histories: list[Payload], comments: Iterable[Payload]
) -> list[TicketEvent]:
    """The events of one issue (search result, its change histories and comments), sorted by time."""
    tid = str(issue["id"])
    fields = issue.get("fields") or {}
    created_at = inbound._jira_time(fields.get("created"))
    if created_at is None:
        raise ValueError(f"jira issue {tid}: no readable `created` field")
    events = [
        TicketEvent(
            f"jira:{tid}:created",
            tid,
            EventKind.CREATED,
            created_at,
            actor_role(cfg, fields.get("creator") or fields.get("reporter"), fields),
            fields=fields_at_creation(cfg, fields, histories),
        )
    ]
    shell = {"id": tid, "key": issue.get("key"), "fields": fields}
    for history in histories:
        at = inbound._jira_time(history.get("created"))
        if at is None or not history.get("items"):
            continue
        payload = {
            "webhookEvent": "jira:issue_updated",
            "timestamp": _epoch_ms(at),
            "user": history.get("author"),
            "issue": shell,
            "changelog": {"id": str(history["id"]), "items": history["items"]},
        }
        events += inbound.normalise(cfg, payload, {})
    for comment in comments:
        at = inbound._jira_time(comment.get("created")) or created_at
        payload = {"webhookEvent": "comment_created", "timestamp": _epoch_ms(at), "comment": comment,
                   "issue": shell}
        events += inbound.normalise(cfg, payload, {})
    return sorted(events, key=lambda e: e.sort_key)


def fields_at_creation(cfg: JiraConfig, fields: Payload, histories: list[Payload]) -> dict[str, Any]:
    """The canonical snapshot at creation: the current one with each change undone, newest first."""
    out = inbound.snapshot(cfg, fields)
    for history in reversed(histories):
        for item in reversed(history.get("items") or []):
            undo = {**item, "from": item.get("to"), "to": item.get("from"),
                    "fromString": item.get("toString"), "toString": item.get("fromString")}
            out.update(inbound._changed_fields(cfg, [undo], fields))
    return out


def _epoch_ms(at: datetime) -> int:
    return round(at.timestamp() * 1000)
