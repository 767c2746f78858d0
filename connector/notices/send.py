"""Send one notice to one channel and say what came of it: sent, refused, or failed.

- Sent: the channel answered 2xx (SMTP: accepted the message for every recipient).
- `NoticeRefused`: an HTTP 4xx other than 408/425/429 (a revoked webhook, an archived channel, a bad
  payload): the same notice would be refused again, so the caller records it once and never resends.
- `NoticeFailed`: a 5xx, 408/425/429, a timeout, a refused connection, an SMTP failure: the caller
  raises it so RQ retries the look. `maybe_sent` says the channel may have it already (no answer came).

Chat channels (Slack, Teams workflows, Google Chat) and email go through apprise. apprise reports a
failure without its HTTP status, but every one of these plugins logs the answer's status as
`error=<status>` in the warning it records with the attempt (`AppriseResult.results[].logs()`), so the
status is read from there; a failure whose status cannot be read is retried, never taken as a refusal.
apprise's email plugin keeps the SMTP reply code to itself: every email failure is retried (a
recipient the server refuses for good ends in RQ's failed registry, with the error, after
`max_attempts`). The signed JSON webhook is sent with `requests`: its status is exact.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests

from adapters.base import ApiError
from connector.notices.channels import CHAT_KINDS, Channel
from sla.notices import subject_and_body

WEBHOOK_TIMEOUT_S = (5.0, 10.0)  # connect, read
NOTICE_ID_HEADER = "X-SLA-Connector-Notice"
RETRIED_4XX = frozenset({408, 425, 429})  # "try again later" in a 4xx's words
REPEAT_NOTE = (
    "(Sent again: the connector was interrupted while sending this notice, which may have arrived already.)"
)

_STATUS_IN_LOG = re.compile(r"\berror=(\d{3})\b")
logging.getLogger("apprise").setLevel(logging.WARNING)  # its debug lines quote webhook URLs (secrets)


@dataclass(frozen=True)
class Notice:
    instance: str
    ticket: str
    key: str  # the ledger key, "notify:<policy>/<clock>:<level>:<channel>"
    text: str  # rendered; first line: the subject
    repeat: bool = False  # an earlier attempt may have reached the channel (a worker died mid-send)

    @property
    def id(self) -> str:
        """Stable across retries and repeats: receivers can drop a notice they already have."""
        return hashlib.sha256(f"{self.instance}\n{self.ticket}\n{self.key}".encode()).hexdigest()[:32]


class NoticeRefused(Exception):
    """The channel refused the notice for good (HTTP 4xx); `reason` is safe to log."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class NoticeFailed(ApiError):
    """The notice did not go out this time (5xx, timeout, connection, SMTP): retried with the look."""

    retryable = True

    def __init__(self, message: str, status: int | None = None, *, maybe_sent: bool = False) -> None:
        super().__init__(message, status)
        self.maybe_sent = maybe_sent


def send(channel: Channel, notice: Notice, now: datetime | None = None) -> None:
    """Send `notice` through `channel`; raise NoticeRefused or NoticeFailed unless it was sent."""
    if channel.kind == "webhook":
        _send_webhook(channel, notice, now or datetime.now(UTC))
    else:
        _send_apprise(channel, notice)


def classify_status(status: int, what: str, *, maybe_sent: bool = False) -> None:
    """Raise for a non-2xx status: NoticeRefused for a 3xx or a final 4xx, else NoticeFailed."""
    if 200 <= status < 300:
        return
    if 300 <= status < 500 and status not in RETRIED_4XX:
        raise NoticeRefused(f"HTTP {status}: {what}", status)
    raise NoticeFailed(f"HTTP {status}: {what}", status, maybe_sent=maybe_sent)


def _text(notice: Notice) -> str:
    return f"{notice.text.rstrip()}\n\n{REPEAT_NOTE}" if notice.repeat else notice.text


def _send_webhook(channel: Channel, notice: Notice, now: datetime) -> None:
    subject, body = subject_and_body(notice.text)
    payload = {
        "id": notice.id,
        "instance": notice.instance,
        "ticket": notice.ticket,
        "key": notice.key,
        "channel": channel.name,
        "subject": subject,
        "text": body,
        "repeat": notice.repeat,
        "sent_at": now.astimezone(UTC).isoformat(),
    }
    raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    assert channel.secret is not None  # checked with the configuration
    signature = hmac.new(channel.secret.encode(), raw, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "sla-connector",
        channel.header: f"sha256={signature}",
        NOTICE_ID_HEADER: notice.id,
    }
    try:
        answer = requests.post(
            channel.target, data=raw, headers=headers, timeout=WEBHOOK_TIMEOUT_S, allow_redirects=False
        )  # a redirect would turn the POST into a GET
    except requests.Timeout:
        raise NoticeFailed(
            f"{channel.shown}: no answer within {WEBHOOK_TIMEOUT_S[1]:g}s", maybe_sent=True
        ) from None
    except requests.RequestException as exc:  # requests' words quote the URL: name the error only
        raise NoticeFailed(f"{channel.shown}: {type(exc).__name__}", maybe_sent=True) from None
    classify_status(answer.status_code, f"{channel.shown} answered {answer.reason or answer.status_code}")


def _send_apprise(channel: Channel, notice: Notice) -> None:
    import apprise  # imported here: only workers with channels need it

    subject, body = subject_and_body(_text(notice))
    target = channel.target
    if channel.kind == "email":  # a stable header: mail filters can drop a repeat
        target += f"&%2B{NOTICE_ID_HEADER}={notice.id}"
    app = apprise.Apprise(asset=apprise.AppriseAsset(app_id="SLA connector", app_desc="SLA connector"))
    if not app.add(target):
        raise NoticeRefused(f"{channel.shown}: apprise does not accept this channel's URL")
    result = app.notify(title=subject, body=body, body_format=apprise.NotifyFormat.TEXT)
    if result:
        return
    messages = [
        _scrub(e.message, target) for r in result.results for e in r.logs() if e.level in ("WARNING", "ERROR")
    ]
    statuses = [int(m.group(1)) for text in messages for m in _STATUS_IN_LOG.finditer(text)]
    what = f"{channel.shown}: {messages[-1] if messages else 'apprise reported a failure'}"
    if channel.kind in CHAT_KINDS and statuses:
        classify_status(statuses[-1], what)
    if channel.kind == "email":  # "Sending email to ... failed": the server refused it (not sent)
        unsure = not messages or any("Connection error" in text for text in messages)
    else:
        unsure = not statuses  # no answer read: a timeout may come after the channel took it
    raise NoticeFailed(what, statuses[-1] if statuses else None, maybe_sent=unsure)


def _scrub(message: str, target: str) -> str:
    """apprise's message without any part of the channel's URL long enough to be a token or password."""
    for part in sorted(set(re.split(r"[/?&=:@,]+", target)), key=len, reverse=True):
        if len(part) >= 6 and part not in ("https", "mailto", "mailtos"):
            message = message.replace(part, "***")
    return message


def describe(channel: Channel) -> dict[str, Any]:
    """What log lines say about a channel (never its URL or secret)."""
    return {"channel": channel.name, "channel_kind": channel.kind, "to": channel.shown}
