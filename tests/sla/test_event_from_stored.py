"""TicketEvent.from_stored: an event read back from the store equals the event that was stored."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sla.events import EventKind, Role, Status, TicketEvent

AT = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def test_a_stored_event_comes_back_equal_to_the_checked_one() -> None:
    fields = {
        "status": "pending",
        "tags": ["b", "a"],
        "priority": "high",
        "created_at": "2026-11-26T08:00:00+00:00",
    }
    checked = TicketEvent("e-1", "T-1", EventKind.CHANGED, AT, Role.AGENT, dict(fields))
    stored = TicketEvent.from_stored("e-1", "T-1", EventKind.CHANGED, AT, Role.AGENT, dict(fields), None)
    assert stored == checked
    assert stored.fields["status"] is Status.PENDING
    assert stored.fields["tags"] == frozenset({"a", "b"})
    assert stored.reported_creation == datetime(2026, 11, 26, 8, tzinfo=UTC)
    assert stored.sort_key == checked.sort_key


def test_fields_set_to_none_stay_none() -> None:
    stored = TicketEvent.from_stored(
        "e-1", "T-1", EventKind.CHANGED, AT, Role.OTHER, {"status": None, "tags": None}, None
    )
    assert stored == TicketEvent(
        "e-1", "T-1", EventKind.CHANGED, AT, Role.OTHER, {"status": None, "tags": None}
    )


def test_a_comment_keeps_its_public_flag_and_the_event_stays_frozen() -> None:
    stored = TicketEvent.from_stored("c-1", "T-1", EventKind.COMMENTED, AT, Role.AGENT, {}, False)
    assert stored == TicketEvent("c-1", "T-1", EventKind.COMMENTED, AT, Role.AGENT, public=False)
    with pytest.raises(AttributeError):
        stored.public = True  # type: ignore[misc]


def test_a_stored_status_that_is_not_a_status_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"^TicketEvent e-1: stored status 'waiting' is not a Status$"):
        TicketEvent.from_stored("e-1", "T-1", EventKind.CHANGED, AT, Role.AGENT, {"status": "waiting"}, None)
