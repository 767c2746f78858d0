"""A Jira Cloud faked with `responses`, from the documented shapes, for reconciliation and first-sight tests.

Issues are built in the test (created, commented, changed); the fake answers the reads the backfill
reader makes (`GET /rest/api/3/search/jql` with `nextPageToken` paging and `updated >= "-<n>m"`
relative to the fake's clock, `/issue/{id}`, `/issue/{id}/changelog`, `/issue/{id}/comment`,
`/status`) and the write-back calls (`PUT /issue/{id}`, `POST /issue/{id}/comment`), and makes the
webhooks Jira would send for the same changes. `fail_next(path, answer)` queues a 429, a 5xx or an
exception (a killed worker) for a path.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import responses

BASE = "https://acme.atlassian.net"
API = f"{BASE}/rest/api/3"
STATUSES = Path(__file__).resolve().parents[3] / "adapters/jira/tests/fixtures/backfill/cloud_statuses.json"
CUSTOMER = {"accountId": "qm:customer-1", "displayName": "Carl Customer", "accountType": "customer"}
AGENT = {"accountId": "5b10ac8d82e05b22cc7d4ef5", "displayName": "Ada Agent", "accountType": "atlassian"}
SEARCH_PAGE = 2  # issues per search page: small, so that paging is exercised


def jira_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def adf(text: str) -> dict[str, Any]:
    return {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}],
    }


class FakeJiraReads:
    def __init__(self, rsps: responses.RequestsMock, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.issues: dict[str, dict[str, Any]] = {}
        self.histories: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.comments: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.failures: dict[str, list[Any]] = defaultdict(list)
        self.calls: list[tuple[str, str, dict[str, str]]] = []  # method, path, query
        self.puts: list[tuple[str, Any]] = []
        rsps.assert_all_requests_are_fired = False
        for method in ("GET", "PUT", "POST"):
            rsps.add_callback(method, re.compile(re.escape(API) + r"/.*"), callback=self._route)

    # ------------------------------------------------------------ building issues

    def create(self, issue_id: str, at: datetime, priority: str = "High") -> dict[str, Any]:
        issue = {
            "id": issue_id,
            "key": f"SUP-{issue_id}",
            "fields": {
                "status": {"name": "Waiting for support", "statusCategory": {"key": "new"}},
                "priority": {"name": priority},
                "issuetype": {"name": "Service request"},
                "labels": [],
                "assignee": None,
                "project": {"id": "10000", "key": "SUP"},
                "reporter": CUSTOMER,
                "creator": CUSTOMER,
                "created": jira_time(at),
                "updated": jira_time(at),
            },
        }
        self.issues[issue_id] = issue
        return self.webhook_created(issue_id)

    def comment(self, issue_id: str, comment_id: str, at: datetime, author: dict[str, Any] = AGENT) -> dict:
        comment = {
            "id": comment_id,
            "author": author,
            "body": adf(f"reply {comment_id}"),
            "created": jira_time(at),
            "updated": jira_time(at),
            "jsdPublic": True,
        }
        self.comments[issue_id].append(comment)
        self._touch(issue_id, at)
        return {
            "webhookEvent": "comment_created",
            "timestamp": round(at.timestamp() * 1000),
            "comment": comment,
            "issue": self._shell(issue_id),
        }

    def webhook_created(self, issue_id: str) -> dict[str, Any]:
        created = self.issues[issue_id]["fields"]["created"]
        at = datetime.strptime(created, "%Y-%m-%dT%H:%M:%S.000+0000").replace(tzinfo=UTC)
        return {
            "webhookEvent": "jira:issue_created",
            "timestamp": round(at.timestamp() * 1000),
            "user": CUSTOMER,
            "issue": self._shell(issue_id),
        }

    def _touch(self, issue_id: str, at: datetime) -> None:
        self.issues[issue_id]["fields"]["updated"] = jira_time(at)

    def _shell(self, issue_id: str) -> dict[str, Any]:
        return json.loads(json.dumps(self.issues[issue_id]))

    def fail_next(self, path: str, answer: tuple[int, dict[str, str], str] | Exception) -> None:
        """The next call to `path` (under /rest/api/3) answers this, or raises it."""
        self.failures[path].append(answer)

    def reads(self, path: str) -> int:
        return sum(1 for method, p, _ in self.calls if method == "GET" and p == path)

    # ------------------------------------------------------------ answering

    def _route(self, request: Any) -> tuple[int, dict[str, str], str]:
        path = request.path_url.split("?")[0].removeprefix("/rest/api/3")
        query = {k: v for k, v in request.params.items()}
        self.calls.append((request.method, path, query))
        if self.failures.get(path):
            answer = self.failures[path].pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer
        if request.method == "GET" and path == "/search/jql":
            return self._search(query)
        if request.method == "GET" and path == "/status":
            return 200, {}, STATUSES.read_text()
        if m := re.fullmatch(r"/issue/([^/]+)(/changelog|/comment)?", path):
            issue_id, part = m.group(1), m.group(2)
            if issue_id not in self.issues:
                return 404, {}, json.dumps({"errorMessages": ["Issue does not exist"], "errors": {}})
            if request.method == "PUT" and not part:
                self.puts.append((issue_id, json.loads(request.body)))
                return 204, {}, ""
            if request.method == "POST" and part == "/comment":
                body = json.loads(request.body)
                comment = {
                    "id": f"9{len(self.comments[issue_id])}",
                    "author": {"accountId": "bot"},
                    "body": body["body"],
                    "created": jira_time(datetime.now(UTC)),
                    "jsdPublic": False,
                }
                self.comments[issue_id].append(comment)
                return 201, {}, json.dumps(comment)
            if request.method == "GET":
                return 200, {}, json.dumps(self._read(issue_id, part))
        return 404, {}, json.dumps({"errorMessages": [f"no route {request.method} {path}"], "errors": {}})

    def _read(self, issue_id: str, part: str | None) -> dict[str, Any]:
        if part == "/changelog":
            values = self.histories[issue_id]
            return {"startAt": 0, "maxResults": 100, "total": len(values), "isLast": True, "values": values}
        if part == "/comment":
            values = self.comments[issue_id]
            return {"startAt": 0, "maxResults": 100, "total": len(values), "comments": values}
        return self._shell(issue_id)

    def _search(self, query: dict[str, str]) -> tuple[int, dict[str, str], str]:
        minutes = re.search(r'updated >= "-(\d+)m"', query.get("jql", ""))
        assert minutes, f"unexpected JQL {query.get('jql')!r}"
        since = datetime.fromtimestamp(self.clock(), UTC) - timedelta(minutes=int(minutes.group(1)))
        matching = sorted(
            (i for i in self.issues.values() if i["fields"]["updated"] >= jira_time(since)),
            key=lambda i: (i["fields"]["created"], int(i["id"])),
        )
        start = int(query.get("nextPageToken", "0"))
        page = matching[start : start + SEARCH_PAGE]
        more = start + SEARCH_PAGE < len(matching)
        body = {
            "issues": page,
            "isLast": not more,
            **({"nextPageToken": str(start + SEARCH_PAGE)} if more else {}),
        }
        return 200, {}, json.dumps(body)
