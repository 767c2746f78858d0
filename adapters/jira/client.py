"""Jira write-back and read side: URL constants plus one method per call over `JiraHttp`.

Cloud uses REST v3 (ADF comment bodies, `nextPageToken` search); Data Center uses REST v2 (string
bodies, `startAt` paging). Every effect on one issue except comments goes into one PUT: Jira
limits writes per issue, and `update.labels` add/remove never replaces the customer's labels.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from adapters.base import ApiError, report_bad
from adapters.jira.config import JiraConfig
from adapters.jira.http import JiraHttp
from adapters.jira.users import body_text
from sla.effects import Effect, EffectKind, comment_marker

PAGE = 100


class JiraClient:
    def __init__(self, cfg: JiraConfig, http: JiraHttp) -> None:
        self.cfg = cfg
        self.http = http
        self.api = f"/rest/api/{cfg.api_version}"

    def __repr__(self) -> str:
        return f"JiraClient({self.cfg.instance!r}, {self.cfg.base_url!r})"

    def _issue(self, issue: str) -> str:
        return f"{self.api}/issue/{quote(str(issue), safe='')}"

    # ------------------------------------------------------------ write-back

    def apply(self, ticket_id: str, effects: Sequence[Effect]) -> list[Effect]:
        """One PUT for due date, labels, priority and assignee; then each comment not already there.

        Returns fewer effects than given after a retryable error (429, 5xx, timeout, 409) that came
        after some progress, and when an effect's value cannot be written (logged; with nothing
        else written it is raised as ValueError, see `adapters.base.report_bad`); the caller retries
        the rest. A 404 is raised as an unconfirmed `NotFound`, never confirmed by re-reading: Jira
        answers 404 when the service user lost *Browse projects* too (while /myself still works),
        which no read tells from a deletion. Jira sends `jira:issue_deleted` for a real one.
        """
        fields: dict[str, Any] = {}
        labels: list[dict[str, str]] = []
        put: list[Effect] = []
        comments: list[Effect] = []
        bad: list[tuple[Effect, ValueError]] = []
        for effect in effects:
            kind = effect.kind
            if kind is EffectKind.COMMENT:
                comments.append(effect)
                continue
            try:
                if kind is EffectKind.SET_DUE:
                    fields[self.cfg.due_field] = self.due_value(effect.value)
                elif kind is EffectKind.ADD_TAG:
                    labels.append({"add": effect.value})
                elif kind is EffectKind.REMOVE_TAG:
                    labels.append({"remove": effect.value})
                elif kind is EffectKind.SET_PRIORITY:
                    fields["priority"] = {"name": self.cfg.jira_priority(effect.value)}
                elif kind is EffectKind.SET_ASSIGNEE:
                    fields["assignee"] = {"accountId" if self.cfg.cloud else "name": effect.value}
                else:  # pragma: no cover - EffectKind is closed
                    raise ValueError(f"unsupported kind {kind!r}")
            except ValueError as exc:  # set aside: the other effects are still written
                bad.append((effect, exc))
                continue
            put.append(effect)
        applied: list[Effect] = []
        if put:
            body: dict[str, Any] = {}
            if fields:
                body["fields"] = fields
            if labels:
                body["update"] = {"labels": labels}
            params = None if self.cfg.notify_users else {"notifyUsers": "false"}
            self.http.request("PUT", self._issue(ticket_id), params=params, json=body)
            applied.extend(put)
        if comments:
            try:
                existing = "\n".join(self.comment_texts(ticket_id))
                for effect in comments:
                    # Posted before but never recorded in the ledger: count it as applied.
                    if marker_of(effect) not in existing:
                        url = f"{self._issue(ticket_id)}/comment"
                        self.http.request("POST", url, json=self.comment_body(effect))
                    applied.append(effect)
            except ApiError as exc:
                # A transient failure after some progress: report the progress so the ledger keeps
                # it; the caller retries the rest. Anything else (or no progress) is raised.
                if not (exc.retryable and applied):
                    raise
        report_bad(self.cfg.instance, ticket_id, bad, applied)
        return applied

    def due_value(self, value: str) -> str:
        """`duedate` is a date in the configured zone; a custom date-time field takes Jira's ISO form."""
        try:
            instant = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"set_due effect: not an ISO 8601 instant: {value!r}") from exc
        if instant.tzinfo is None:
            raise ValueError(f"set_due effect: instant without a time zone: {value!r}")
        if self.cfg.due_field == "duedate":
            return instant.astimezone(self.cfg.due_timezone).date().isoformat()
        return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")

    def comment_body(self, effect: Effect) -> dict[str, Any]:
        """An internal comment ending with the marker: ADF on Cloud, a string on Data Center."""
        marker = marker_of(effect)
        text = effect.value if marker in effect.value else f"{effect.value}\n\n{marker}"
        body: dict[str, Any] = {"body": adf(text) if self.cfg.cloud else text}
        if self.cfg.comment_visibility:
            body["visibility"] = dict(self.cfg.comment_visibility)
        if self.cfg.jsm_internal_comments:
            body["properties"] = [{"key": "sd.public.comment", "value": {"internal": True}}]
        return body

    def comment_texts(self, ticket_id: str) -> Iterator[str]:
        """Plain text of every comment on the issue, all pages."""
        start = 0
        while True:
            page = self.http.request(
                "GET", f"{self._issue(ticket_id)}/comment", params={"startAt": start, "maxResults": PAGE}
            ) or {}
            comments = page.get("comments") or []
            for comment in comments:
                yield body_text(comment.get("body"))
            start += len(comments)
            if not comments or start >= int(page.get("total", 0)):
                return

    # ------------------------------------------------------------ read side (backfill, reconcile)

    def iter_issues(self, jql: str, fields: Sequence[str] = ("*navigable",)) -> Iterator[dict[str, Any]]:
        """Every issue matching `jql`: Cloud `search/jql` with nextPageToken, Data Center `search` startAt."""
        params: dict[str, Any] = {"jql": jql, "maxResults": PAGE, "fields": ",".join(fields)}
        if self.cfg.cloud:
            while True:
                page = self.http.request("GET", f"{self.api}/search/jql", params=params) or {}
                yield from page.get("issues") or []
                token = page.get("nextPageToken")
                if not token or page.get("isLast") is True:
                    return
                params = {**params, "nextPageToken": token}
        start = 0
        while True:
            page = self.http.request("GET", f"{self.api}/search", params={**params, "startAt": start}) or {}
            issues = page.get("issues") or []
            yield from issues
            start += len(issues)
            if not issues or start >= int(page.get("total", 0)):
                return

    def changelog(self, issue: str) -> Iterator[dict[str, Any]]:
        """The issue's change histories, oldest first: Cloud's paged endpoint, Data Center's expand."""
        if not self.cfg.cloud:
            params = {"expand": "changelog", "fields": "status"}
            data = self.http.request("GET", self._issue(issue), params=params)
            yield from ((data or {}).get("changelog") or {}).get("histories") or []
            return
        start = 0
        while True:
            page = self.http.request(
                "GET", f"{self._issue(issue)}/changelog", params={"startAt": start, "maxResults": PAGE}
            ) or {}
            values = page.get("values") or []
            yield from values
            start += len(values)
            if not values or page.get("isLast") is True or start >= int(page.get("total", 0)):
                return


def marker_of(effect: Effect) -> str:
    """The marker of a comment effect: its DesiredEffects key (the ledger key minus "comment:")."""
    return comment_marker(effect.key.removeprefix("comment:"))


def adf(text: str) -> dict[str, Any]:
    """A minimal Atlassian Document Format document: one paragraph per non-empty line."""
    lines = [line for line in text.splitlines() if line.strip()]
    return {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": line}]} for line in lines],
    }
