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
A webhook knows the category of only the status the issue is in now; backfill reads every status's
category once (`GET /rest/api/<v>/status`), so a past move to a "done" status counts as solved
even when the issue was reopened since.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from adapters.jira import JiraAdapter, inbound
from adapters.jira.client import PAGE, JiraClient
from adapters.jira.config import JiraConfig
from sla.events import TicketEvent

#: The issue fields the events are made of (the webhook's issue snapshot, trimmed to what is read);
#: `fields_to_read` adds the instance's own (its `outage_start_field`).
FIELDS = ("status", "priority", "issuetype", "labels", "assignee", "project", "reporter", "creator",
          "created", "updated")
#: A one-off admin command may wait out a longer Retry-After than a worker would.
MAX_RETRY_AFTER = 120.0

Payload = Mapping[str, Any]


def search_jql(cfg: JiraConfig, since: datetime) -> str:
    """The instance's webhook JQL (if any) and issues updated since the day before `since`.

    JQL dates are read in the service user's time zone, which the connector does not know: the
    query starts a day early and `tickets_since` drops what was updated before `since`.
    """
    day = (since.astimezone(UTC) - timedelta(days=1)).date().isoformat()
    updated = f'updated >= "{day}"'
    scope = f"({cfg.webhook_jql}) AND {updated}" if cfg.webhook_jql else updated
    # A stable order: by `updated`, an issue changed during the run would move to the end and shift
    # the others, so offset paging (Data Center's startAt) would skip one at a page boundary.
    return f"{scope} ORDER BY created ASC, key ASC"


def changes_jql(cfg: JiraConfig, since: datetime, now: datetime) -> str:
    """The webhook JQL (if any) and issues updated in the last minutes since `since`, oldest created first.

    A relative date ("-16m") means the same instant whatever the service user's time zone, which an
    absolute one would not; one more minute covers Jira's minute precision and a clock apart by a few
    seconds. `changed_pages` drops what was updated before `since`.
    """
    minutes = max(1, math.ceil((now - since).total_seconds() / 60)) + 1
    updated = f'updated >= "-{minutes}m"'
    scope = f"({cfg.webhook_jql}) AND {updated}" if cfg.webhook_jql else updated
    return f"{scope} ORDER BY created ASC, key ASC"


def fields_to_read(cfg: JiraConfig) -> tuple[str, ...]:
    """FIELDS and the custom field the instance reads `outage_start` from, if it names one."""
    return FIELDS if cfg.outage_start_field is None else (*FIELDS, cfg.outage_start_field)


class JiraBackfill:
    """Reads one instance's issues for `connector.backfill` (the product-neutral part)."""

    def __init__(self, adapter: JiraAdapter) -> None:
        self.cfg = adapter.cfg
        http = adapter.http()
        http.max_retry_after = max(http.max_retry_after, MAX_RETRY_AFTER)
        self.client = JiraClient(self.cfg, http)
        self._categories: dict[str, str] | None = None

    def tickets_since(self, since: datetime) -> Iterator[dict[str, Any]]:
        """Issues updated at or after `since` within the instance's webhook JQL, oldest created first."""
        if since.tzinfo is None:
            raise ValueError(f"backfill: since {since!r} must be timezone-aware")
        for issue in self.client.iter_issues(search_jql(self.cfg, since), fields_to_read(self.cfg)):
            updated = inbound.jira_time((issue.get("fields") or {}).get("updated"))
            if updated is None or updated >= since:
                yield issue

    def ticket_id(self, issue: Payload) -> str:
        return str(issue["id"])

    def changed_pages(
        self, since: datetime, start: str | None, now: datetime
    ) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        """Issues updated at or after `since` (within the webhook JQL), oldest created first, in pages
        of PAGE: (the page's token, its issues). `start`, a token yielded before, resumes at its page.

        The order (creation, then key) does not change while issues are updated, so a token is the
        number of issues before its page; resuming reads the search pages before it again, never
        their issues' histories. An issue updated since the first read may join the list before the
        token (it is read by the next window, which starts after this one began).
        """
        if since.tzinfo is None or now.tzinfo is None:
            raise ValueError(f"changed_pages: since {since!r} and now {now!r} must be timezone-aware")
        if start is not None and not start.isdigit():
            raise ValueError(f"changed_pages: {start!r} is not a token this reader gave (a number)")
        skip = int(start or 0)
        seen = 0  # issues updated since `since`, in search order
        page: list[dict[str, Any]] = []
        for issue in self.client.iter_issues(changes_jql(self.cfg, since, now), fields_to_read(self.cfg)):
            updated = inbound.jira_time((issue.get("fields") or {}).get("updated"))
            if updated is not None and updated < since:
                continue
            seen += 1
            if seen <= skip:
                continue
            page.append(issue)
            if len(page) == PAGE:
                yield str(seen - len(page)), page
                page = []
        if page:
            yield str(seen - len(page)), page

    def ticket(self, ticket_id: str) -> dict[str, Any]:
        """One issue as the search returns it (for the events of an issue first seen by a webhook)."""
        path = f"{self.client.api}/issue/{quote(ticket_id, safe='')}"
        params = {"fields": ",".join(fields_to_read(self.cfg))}
        return self.client.http.request("GET", path, params=params) or {}

    def events(self, issue: Payload) -> list[TicketEvent]:
        """The issue's events: reads its change histories and comments (two paged calls)."""
        tid = self.ticket_id(issue)
        histories = list(self.client.changelog(tid))
        return issue_events(self.cfg, issue, histories, comments(self.client, tid), self.categories())

    def categories(self) -> dict[str, str]:
        """Status name (casefolded) -> its category key (new, indeterminate, done); read once."""
        if self._categories is None:
            answer = self.client.http.request("GET", f"{self.client.api}/status") or []
            self._categories = {
                str(s["name"]).casefold(): str((s.get("statusCategory") or {}).get("key") or "")
                for s in answer
                if isinstance(s, Mapping) and s.get("name")
            }
        return self._categories


def reader(adapter: JiraAdapter) -> JiraBackfill:
    return JiraBackfill(adapter)


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
    cfg: JiraConfig,
    issue: Payload,
    histories: list[Payload],
    comments: Iterable[Payload],
    categories: Mapping[str, str] | None = None,
) -> list[TicketEvent]:
    """The events of one issue (search result, its change histories and comments), sorted by time.

    `categories` (status name casefolded -> category key) gives past statuses their category;
    without it a past status not in the instance's `statuses` map counts as open, as in a webhook.
    """
    categories = categories or {}
    tid = str(issue["id"])
    fields = issue.get("fields") or {}
    created_at = inbound.jira_time(fields.get("created"))
    if created_at is None:
        raise ValueError(f"jira issue {tid}: no readable `created` field")
    shell = {"id": tid, "key": issue.get("key"), "fields": fields}
    # The creation as its webhook makes it from the issue as it is now, then with the fields it had.
    creation = {"webhookEvent": "jira:issue_created", "timestamp": _epoch_ms(created_at),
                "user": fields.get("creator") or fields.get("reporter"), "issue": shell}
    at_creation = _with_category(cfg, fields_at_creation(cfg, fields, histories), categories)
    # Every event below is made from the issue as it is now, as a webhook is from the issue at its
    # delivery: a change of the outage field states the field's current value (the changelog's
    # strings are display text, not read). That is true of the last history that changed it, and of
    # the creation only when none did; the others state no outage_start rather than a value the
    # field did not have then (the latest event carrying it is what reports read).
    outage_changes = _outage_changes(cfg, histories)
    made = inbound.normalise(cfg, creation, {})
    events = [
        dataclasses.replace(e, fields=_without_outage({**e.fields, **at_creation}, bool(outage_changes)))
        for e in made
    ]
    for history in histories:
        at = inbound.jira_time(history.get("created"))
        if at is None or not history.get("items"):
            continue
        history_id = str(history["id"])
        payload = {
            "webhookEvent": "jira:issue_updated",
            "timestamp": _epoch_ms(at),
            "user": history.get("author"),
            "issue": shell,
            "changelog": {"id": history_id, "items": history["items"]},
        }
        earlier_outage_change = history_id in outage_changes[:-1]
        events += [
            dataclasses.replace(
                e, fields=_without_outage(_with_category(cfg, e.fields, categories), earlier_outage_change)
            )
            for e in inbound.normalise(cfg, payload, {})
        ]
    for comment in comments:
        at = inbound.jira_time(comment.get("created")) or created_at
        payload = {"webhookEvent": "comment_created", "timestamp": _epoch_ms(at), "comment": comment,
                   "issue": shell}
        events += inbound.normalise(cfg, payload, {})
    return sorted(events, key=lambda e: e.sort_key)


def fields_at_creation(cfg: JiraConfig, fields: Payload, histories: list[Payload]) -> dict[str, Any]:
    """The canonical snapshot at creation: the current one with each change undone, newest first.
    Without `outage_start` when a history changed it (its value before is not known)."""
    out = inbound.snapshot(cfg, fields)
    for history in reversed(histories):
        for item in reversed(history.get("items") or []):
            undo = {**item, "from": item.get("to"), "to": item.get("from"),
                    "fromString": item.get("toString"), "toString": item.get("fromString")}
            out.update(inbound.changed_fields(cfg, [undo], fields))
    return _without_outage(out, bool(_outage_changes(cfg, histories)))


def _outage_changes(cfg: JiraConfig, histories: list[Payload]) -> list[str]:
    """The ids of the histories (oldest first) with an item for the instance's `outage_start_field`."""
    field = cfg.outage_start_field
    if field is None:
        return []
    return [str(h["id"]) for h in histories
            if any(inbound.may_be_field(i, field) for i in h.get("items") or [])]


def _without_outage(fields: dict[str, Any], drop: bool) -> dict[str, Any]:
    """`fields` without `outage_start` when `drop`: its value at that moment is not known."""
    return {k: v for k, v in fields.items() if k != "outage_start"} if drop else fields


def _with_category(
    cfg: JiraConfig, fields: Mapping[str, Any], categories: Mapping[str, str]
) -> dict[str, Any]:
    """`fields` with the status mapped by the status's own category, when it is known."""
    out = dict(fields)
    name = out.get("status_name")
    if name and name.casefold() in categories:
        out["status"] = inbound.status_of(cfg, name, categories[name.casefold()])
    return out


def _epoch_ms(at: datetime) -> int:
    return round(at.timestamp() * 1000)
