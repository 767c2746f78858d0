"""A comment whose answer comes after the client's read timeout is written once, not once per retry.

Jira and Zendesk are faked by a small local HTTP server that keeps the comments it is sent, in the
documented shapes: Jira `POST /rest/api/3/issue/{key}/comment` (201, the comment) and
`GET .../comment` (`startAt`, `maxResults`, `total`, `comments[]`); Zendesk `PUT
/api/v2/tickets/{id}.json` with `ticket.comment` (a private note) and `GET
/api/v2/tickets/{id}/comments.json` (cursor paging: `meta.has_more`, `links.next`). A write is stored
at once and answered only after `delay` seconds, longer than the client's read timeout: the client
sees a timeout for a comment that was written.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from adapters.base import Timeout
from adapters.jira.client import JiraClient
from adapters.jira.config import load_config
from adapters.jira.http import JiraHttp
from adapters.jira.tests.helpers import CLOUD_CONFIG
from adapters.jira.tests.helpers import ENV as JIRA_ENV
from adapters.zendesk.client import ZendeskClient
from adapters.zendesk.http import ZendeskHttp
from adapters.zendesk.tests.helpers import adapter as zendesk_adapter
from sla.effects import Effect, EffectKind, comment_marker

READ_TIMEOUT = 0.3  # the client's; the fake answers writes after DELAY
DELAY = 1.0
LOST_DELAY = 0.5  # a lost write: no answer in time either
JIRA_COMMENTS = "/rest/api/3/issue/10042/comment"
ZENDESK_TICKET = "/api/v2/tickets/5158.json"
ZENDESK_COMMENTS = "/api/v2/tickets/5158/comments.json"

NOTE = Effect("comment:resolution:warn75", EffectKind.COMMENT, "Resolution SLA at 75%.")
DUE = Effect("due", EffectKind.SET_DUE, "2026-11-27T23:30:00+00:00")


@dataclass
class FakeApi:
    """What the fake stored, and how it behaves."""

    delay: float = DELAY  # before a write is answered
    lost: int = 0  # how many of the first writes are neither stored nor answered in time
    comments: list[str] = field(default_factory=list)  # every comment text written
    writes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler(api: FakeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _answer(self, status: int, data: Any) -> None:
            body = json.dumps(data).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass  # the client gave up (its read timeout)

        def _body(self) -> Any:
            return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

        def _write(self, text: str | None) -> bool:
            """Store `text` (None: nothing to store) unless this write is the lost one; then wait."""
            with api.lock:
                api.writes += 1
                lost = api.writes <= api.lost
                if text is not None and not lost:
                    api.comments.append(text)
            time.sleep(LOST_DELAY if lost else api.delay)
            return not lost

        def do_POST(self) -> None:  # Jira: add comment
            if self.path != JIRA_COMMENTS:
                return self._answer(404, {"errorMessages": ["not faked"]})
            body = self._body()
            texts = [n["text"] for p in body["body"]["content"] for n in p["content"]]
            cid = str(10000 + api.writes)
            if self._write("\n".join(texts)):
                self._answer(201, {"id": cid, "body": body["body"]})

        def do_PUT(self) -> None:  # Zendesk: ticket update, a private note in `comment`
            if self.path != ZENDESK_TICKET:
                return self._answer(404, {"error": "InvalidEndpoint"})
            ticket = self._body()["ticket"]
            comment = ticket.get("comment")
            if self._write(comment["body"] if comment else None):
                self._answer(200, {"ticket": {"id": 5158}, "audit": {"id": 1}})

        def do_GET(self) -> None:
            with api.lock:
                texts = list(api.comments)
            path = self.path.partition("?")[0]
            if path == JIRA_COMMENTS:
                comments = [{"id": str(10000 + i), "body": {"type": "doc", "version": 1, "content": [
                    {"type": "paragraph", "content": [{"type": "text", "text": t}]}]}}
                    for i, t in enumerate(texts)]
                return self._answer(200, {"startAt": 0, "maxResults": 100, "total": len(comments),
                                          "comments": comments})
            if path == ZENDESK_COMMENTS:
                comments = [{"id": 1 + i, "type": "Comment", "body": t, "plain_body": t, "public": False}
                            for i, t in enumerate(texts)]
                return self._answer(200, {"comments": comments, "meta": {"has_more": False},
                                          "links": {"next": None, "prev": None}})
            return self._answer(404, {"error": "not faked"})

    return Handler


@pytest.fixture
def api() -> Iterator[tuple[FakeApi, str]]:
    state = FakeApi()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def jira_client(base: str, sleeps: list[float]) -> JiraClient:
    cfg = load_config("acme", CLOUD_CONFIG, JIRA_ENV)
    http = JiraHttp(base, "Basic x", read_timeout=READ_TIMEOUT, sleep=sleeps.append, jitter=lambda: 0.0)
    return JiraClient(cfg, http)


def zendesk_client(base: str, sleeps: list[float]) -> ZendeskClient:
    settings = zendesk_adapter().settings
    http = ZendeskHttp(base, "Basic x", read_timeout=READ_TIMEOUT, sleep=sleeps.append, jitter=lambda: 0.0)
    return ZendeskClient(settings, http)


def marked(text: str) -> int:
    return text.count(comment_marker("resolution:warn75"))


def test_a_jira_comment_answered_after_the_read_timeout_is_posted_once(api: tuple[FakeApi, str]) -> None:
    state, base = api
    sleeps: list[float] = []
    assert jira_client(base, sleeps).apply("10042", [NOTE]) == [NOTE]
    assert len(state.comments) == 1 and marked(state.comments[0]) == 1
    assert state.writes == 1 and sleeps == [0.5]  # one backoff, then the marker was found


def test_a_jira_comment_lost_on_the_way_is_posted_again(api: tuple[FakeApi, str]) -> None:
    state, base = api
    state.lost, state.delay = 1, 0.0
    assert jira_client(base, []).apply("10042", [NOTE]) == [NOTE]
    assert state.writes == 2 and len(state.comments) == 1  # not there after the timeout: sent again


def test_a_jira_comment_lost_every_time_is_raised_after_a_lookup_before_each_post(
        api: tuple[FakeApi, str]) -> None:
    state, base = api
    state.lost = 99
    with pytest.raises(Timeout, match="ReadTimeout after 3 attempts"):
        jira_client(base, []).apply("10042", [NOTE])
    assert state.writes == 3 and state.comments == []  # the job's retry looks again before it posts


def test_a_zendesk_note_answered_after_the_read_timeout_is_written_once(api: tuple[FakeApi, str]) -> None:
    state, base = api
    sleeps: list[float] = []
    assert zendesk_client(base, sleeps).apply("5158", [DUE, NOTE]) == [DUE, NOTE]
    assert len(state.comments) == 1 and marked(state.comments[0]) == 1
    assert state.writes == 1 and sleeps == [0.5]


def test_a_zendesk_note_lost_on_the_way_is_written_again(api: tuple[FakeApi, str]) -> None:
    state, base = api
    state.lost, state.delay = 1, 0.0
    assert zendesk_client(base, []).apply("5158", [NOTE]) == [NOTE]
    assert state.writes == 2 and len(state.comments) == 1


def test_a_zendesk_put_without_a_note_is_still_retried_blindly(api: tuple[FakeApi, str]) -> None:
    state, base = api
    state.lost, state.delay = 1, 0.0  # no note to look for: a field update is idempotent
    assert zendesk_client(base, []).apply("5158", [DUE]) == [DUE]
    assert state.writes == 2 and state.comments == []
