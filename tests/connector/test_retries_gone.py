"""retries.gone_reason: which NotFound ends a ticket's effects at once, and which is retried."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.base import NotFound
from connector.retries import describe, gone_reason
from sla.events import EventKind, Status, TicketEvent

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
CREATED = TicketEvent("c1", "5158", EventKind.CREATED, T0, fields={"status": Status.NEW})
DELETED = TicketEvent("x1", "5158", EventKind.DELETED, T0)


@pytest.mark.parametrize(
    ("exc", "events", "reason"),
    [
        (NotFound("PUT: HTTP 404", 404), [CREATED], None),  # a bare 404: maybe lost permission
        (NotFound("no status"), [CREATED], None),
        (NotFound("PUT: HTTP 404", 404), [CREATED, DELETED], "deleted"),
        (NotFound("PUT: HTTP 422: closed prevents ticket update", 422), [CREATED], "HTTP 422"),
        # The adapter re-read the ticket and its credentials work (Zendesk triggers send no deletion).
        (NotFound("PUT: HTTP 404; confirmed", 404, confirmed=True), [CREATED], "confirmed 404"),
        (NotFound("PUT: HTTP 404; confirmed", 404, confirmed=True), [CREATED, DELETED], "deleted"),
    ],
)
def test_gone_reason(exc: NotFound, events: list[TicketEvent], reason: str | None) -> None:
    assert gone_reason(exc, events) == reason


def test_not_found_is_unconfirmed_by_default_and_keeps_its_status() -> None:
    exc = NotFound("GET /x: HTTP 404", 404)
    assert exc.confirmed is False and exc.status == 404 and not exc.retryable
    assert describe(exc).startswith("NotFound (HTTP 404): GET /x: HTTP 404")
