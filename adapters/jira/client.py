"""Jira write-back and read side: URL constants plus one method per call over `JiraHttp`.

Cloud uses REST v3 (ADF comment bodies, `nextPageToken` search); Data Center uses REST v2 (string
bodies, `startAt` paging). Every effect on one issue except comments goes into one PUT: Jira
limits writes per issue, and `update.labels` add/remove never replaces the customer's labels.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import quote

from adapters.base import ApiError, RateLimited, reject
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

        Returns fewer effects than given after a retryable error (5xx, timeout, 409) that came
        after some progress; the caller retries the rest. A 429 is raised (its Retry-After is the
        caller's to honour). A value that cannot be written is refused
        without blocking the others, then raised as `EffectRejected` with what was applied: a value
        with no mapping (before any call); a 400 whose `errors` name a field of the PUT (the PUT is
        sent again without the effects on that field); a 400 to a comment's POST that names its
        text only (`comment` or `body`). A 400 naming no field of ours is an ordinary ApiError. A
        404 is raised as an unconfirmed `NotFound`, never confirmed by re-reading: Jira answers 404
        when the service user lost *Browse projects* too (while /myself still works), which no read
        tells from a deletion. Jira sends `jira:issue_deleted` for a real one.
        """
        put: list[tuple[Effect, str, Any]] = []  # (effect, Jira field it writes, its part of the body)
        comments: list[Effect] = []
        rejected: dict[str, str] = {}
        for effect in effects:
            if effect.kind is EffectKind.COMMENT:
                comments.append(effect)
                continue
            try:
                put.append((effect, *self._put_part(effect)))
            except ValueError as exc:  # no mapping: set aside, the other effects are still written
                rejected[effect.key] = str(exc)
        applied: list[Effect] = []
        while put:
            try:
                self._put(ticket_id, put)
            except ApiError as exc:
                refused = validation_errors(exc)
                hit = [p for p in put if p[1] in refused]
                if not hit:
                    raise
                for effect, field, _ in hit:  # the rest of the PUT is sent again without them
                    rejected[effect.key] = f"{field}: {refused[field]}"
                put = [p for p in put if p not in hit]
                continue
            applied.extend(effect for effect, _, _ in put)
            break
        if comments:
            try:
                existing = "\n".join(self.comment_texts(ticket_id))
                for effect in comments:
                    # Posted before but never recorded in the ledger: count it as applied.
                    if marker_of(effect) not in existing:
                        url = f"{self._issue(ticket_id)}/comment"
                        # A POST whose answer is lost (timeout, 5xx) may have stored the comment:
                        # it is sent again only if the marker is still not on the issue.
                        posted = partial(self.has_comment, ticket_id, marker_of(effect))
                        try:
                            self.http.request("POST", url, json=self.comment_body(effect), applied=posted)
                        except ApiError as exc:
                            # Only a refused body (e.g. too long) is this comment's own fault. A 400
                            # about its visibility (role, group, properties) is the instance's setup:
                            # an ordinary error, retried and then in the failed registry, replayable.
                            refused = validation_errors(exc)
                            if not is_validation_error(exc) or not refused or not set(refused) <= {
                                "body", "comment"}:  # Jira names a too-long text `comment`
                                raise
                            rejected[effect.key] = "; ".join(f"{k}: {v}" for k, v in refused.items())
                            continue
                    applied.append(effect)
            except ApiError as exc:
                # A transient failure after some progress: report the progress so the ledger keeps
                # it; the caller retries the rest. Anything else (or no progress) is raised.
                # A 429 is raised whatever the progress: the caller's retry waits its Retry-After
                # (the written effects are written again then: labels and due dates are idempotent,
                # comments are found by their markers).
                if isinstance(exc, RateLimited) or not (exc.retryable and (applied or rejected)):
                    raise
        reject(self.cfg.instance, ticket_id, rejected, applied)
        return applied

    def _put_part(self, effect: Effect) -> tuple[str, Any]:
        """The Jira field an effect writes and its value; ValueError when it has no valid mapping."""
        kind = effect.kind
        if kind is EffectKind.SET_DUE:
            return self.cfg.due_field, self.due_value(effect.value)
        if kind in (EffectKind.ADD_TAG, EffectKind.REMOVE_TAG):
            if not effect.value or any(c.isspace() for c in effect.value):
                raise ValueError(f"label {effect.value!r}: Jira labels cannot be empty or contain spaces")
            return "labels", {"add" if kind is EffectKind.ADD_TAG else "remove": effect.value}
        if kind is EffectKind.SET_PRIORITY:
            return "priority", {"name": self.cfg.jira_priority(effect.value)}
        if kind is EffectKind.SET_ASSIGNEE:
            return "assignee", {"accountId" if self.cfg.cloud else "name": effect.value}
        raise ValueError(f"unsupported kind {kind!r}")  # pragma: no cover - EffectKind is closed

    def _put(self, ticket_id: str, parts: Sequence[tuple[Effect, str, Any]]) -> None:
        fields = {field: value for _, field, value in parts if field != "labels"}
        labels = [value for _, field, value in parts if field == "labels"]
        body: dict[str, Any] = {}
        if fields:
            body["fields"] = fields
        if labels:
            body["update"] = {"labels": labels}
        params = None if self.cfg.notify_users else {"notifyUsers": "false"}
        self.http.request("PUT", self._issue(ticket_id), params=params, json=body)

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

    def has_comment(self, ticket_id: str, marker: str) -> bool:
        """Whether a comment on the issue carries `marker` (reads every page until it is found)."""
        return any(marker in text for text in self.comment_texts(ticket_id))

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


def is_validation_error(exc: ApiError) -> bool:
    """A 400 (Jira's answer to an invalid value), not one of the typed errors (auth, 404, 429...)."""
    return type(exc) is ApiError and exc.status == 400


def validation_errors(exc: ApiError) -> dict[str, str]:
    """Field -> message of a 400's `{"errorMessages": [...], "errors": {"<field>": "<message>"}}`."""
    body = exc.body if is_validation_error(exc) else None
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, dict):
        return {}
    return {str(field): str(message) for field, message in errors.items()}


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
