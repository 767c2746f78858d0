"""Fake Jira Cloud and Zendesk REST APIs served over real HTTP on 127.0.0.1, for end-to-end tests.

Each records every request (method, path, query, JSON body, arrival time) and answers in the
documented shapes for the calls the connector makes:
- Jira Cloud REST v3: `PUT /rest/api/3/issue/{id}` (204; `fields.duedate`, `update.labels`
  add/remove), `GET /rest/api/3/issue/{id}/comment` (paged: startAt, maxResults, total,
  comments[] with ADF bodies), `POST /rest/api/3/issue/{id}/comment` (201 with the comment).
- Zendesk: `PUT /api/v2/tickets/{id}.json` ({"ticket": ...}; a `comment` adds a comment),
  `PUT|DELETE /api/v2/tickets/{id}/tags.json` ({"tags": [...]}),
  `GET /api/v2/tickets/{id}/comments.json` (cursor paging: meta.has_more, links.next).
Unknown tickets answer 404 in each product's error shape. `fail_next` queues error answers
(e.g. 429 with Retry-After, 500) for a path, to exercise the pipeline's retries.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.connector.fakes.local_http import LocalHttpServer


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    at: float


@dataclass
class Answer:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class FakeProduct(LocalHttpServer):
    """A threaded HTTP server; subclasses implement `route`."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.lock = threading.Lock()
        self.failures: dict[tuple[str, str], list[Answer]] = defaultdict(list)
        self.write_delay_s = 0.0  # answer writes (PUT/POST/DELETE) this much later: a slow product
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                body = json.loads(raw) if raw else None
                record = Recorded(self.command, parts.path, parse_qs(parts.query), body, time.time())
                with fake.lock:
                    fake.requests.append(record)
                if self.command != "GET" and fake.write_delay_s:
                    time.sleep(fake.write_delay_s)
                with fake.lock:
                    queued = fake.failures.get((self.command, parts.path))
                    answer = queued.pop(0) if queued else fake.route(record)
                data = b"" if answer.body is None else json.dumps(answer.body).encode()
                self.send_response(answer.status)
                for k, v in answer.headers.items():
                    self.send_header(k, v)
                if data:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        super().__init__(Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_next(self, method: str, path: str, *answers: Answer) -> None:
        with self.lock:
            self.failures[(method, path)].extend(answers)

    def calls(self, method: str | None = None, path: str | None = None) -> list[Recorded]:
        with self.lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method) and (path is None or r.path == path)
            ]

    def route(self, r: Recorded) -> Answer:  # pragma: no cover - overridden
        raise NotImplementedError


def adf_text(body: Any) -> str:
    if isinstance(body, str):
        return body
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "text":
                out.append(node.get("text", ""))
            for child in node.get("content") or []:
                walk(child)
            if node.get("type") == "paragraph":
                out.append("\n")

    walk(body)
    return "".join(out)


class FakeJira(FakeProduct):
    ISSUE = re.compile(r"^/rest/api/3/issue/([^/]+)$")
    COMMENT = re.compile(r"^/rest/api/3/issue/([^/]+)/comment$")

    def __init__(self, issues: list[str]) -> None:
        super().__init__()
        self.issues: dict[str, dict[str, Any]] = {
            i: {"labels": set(), "duedate": None, "comments": []} for i in issues
        }

    def _missing(self) -> Answer:
        return Answer(
            404,
            {
                "errorMessages": ["Issue does not exist or you do not have permission to see it."],
                "errors": {},
            },
        )

    def route(self, r: Recorded) -> Answer:
        if m := self.ISSUE.match(r.path):
            issue = self.issues.get(m.group(1))
            if issue is None:
                return self._missing()
            if r.method == "PUT":
                fields = (r.body or {}).get("fields") or {}
                if "duedate" in fields:
                    issue["duedate"] = fields["duedate"]
                for op in ((r.body or {}).get("update") or {}).get("labels") or []:
                    if "add" in op:
                        issue["labels"].add(op["add"])
                    if "remove" in op:
                        issue["labels"].discard(op["remove"])
                return Answer(204)
        if m := self.COMMENT.match(r.path):
            issue = self.issues.get(m.group(1))
            if issue is None:
                return self._missing()
            if r.method == "POST":
                comment = {"id": str(10000 + len(issue["comments"])), "body": r.body["body"]}
                issue["comments"].append(comment)
                return Answer(201, comment)
            if r.method == "GET":
                start = int(r.query.get("startAt", ["0"])[0])
                size = int(r.query.get("maxResults", ["50"])[0])
                page = issue["comments"][start : start + size]
                return Answer(
                    200,
                    {"startAt": start, "maxResults": size, "total": len(issue["comments"]), "comments": page},
                )
        return Answer(404, {"errorMessages": [f"no route {r.method} {r.path}"], "errors": {}})

    def comment_texts(self, issue: str) -> list[str]:
        return [adf_text(c["body"]) for c in self.issues[issue]["comments"]]


class FakeZendesk(FakeProduct):
    TICKET = re.compile(r"^/api/v2/tickets/(\d+)\.json$")
    TAGS = re.compile(r"^/api/v2/tickets/(\d+)/tags\.json$")
    COMMENTS = re.compile(r"^/api/v2/tickets/(\d+)/comments\.json$")

    def __init__(self, tickets: list[str]) -> None:
        super().__init__()
        self.tickets: dict[str, dict[str, Any]] = {
            t: {"tags": set(), "custom_fields": {}, "comments": []} for t in tickets
        }

    def route(self, r: Recorded) -> Answer:
        for pattern in (self.TICKET, self.TAGS, self.COMMENTS):
            if m := pattern.match(r.path):
                ticket = self.tickets.get(m.group(1))
                if ticket is None:
                    return Answer(404, {"error": "RecordNotFound", "description": "Not found"})
                return self._ticket_route(pattern, r, m.group(1), ticket)
        return Answer(404, {"error": "InvalidEndpoint", "description": "Not found"})

    def _ticket_route(
        self, pattern: re.Pattern[str], r: Recorded, tid: str, ticket: dict[str, Any]
    ) -> Answer:
        if pattern is self.TICKET and r.method == "PUT":
            update = (r.body or {}).get("ticket") or {}
            for cf in update.get("custom_fields") or []:
                ticket["custom_fields"][cf["id"]] = cf["value"]
            if update.get("comment"):
                c = update["comment"]
                ticket["comments"].append(
                    {
                        "id": 5000 + len(ticket["comments"]),
                        "body": c["body"],
                        "plain_body": c["body"],
                        "public": c.get("public", True),
                    }
                )
            return Answer(200, {"ticket": {"id": int(tid), "tags": sorted(ticket["tags"])}})
        if pattern is self.TAGS and r.method in ("PUT", "DELETE"):
            tags = set((r.body or {}).get("tags") or [])
            ticket["tags"] = ticket["tags"] | tags if r.method == "PUT" else ticket["tags"] - tags
            return Answer(200, {"tags": sorted(ticket["tags"])})
        if pattern is self.COMMENTS and r.method == "GET":
            return Answer(
                200,
                {
                    "comments": ticket["comments"],
                    "meta": {"has_more": False, "after_cursor": None, "before_cursor": None},
                    "links": {"next": None, "prev": None},
                },
            )
        return Answer(405, {"error": "MethodNotAllowed"})
