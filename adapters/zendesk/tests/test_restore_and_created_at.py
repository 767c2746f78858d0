"""Zendesk: `ticket.undeleted` restores a ticket, and every event states the ticket's `created_at`."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from adapters.base import PayloadError
from adapters.zendesk.tests.helpers import adapter, load
from sla.events import EventKind
from sla.timeline import build_timeline

LATER = datetime.fromisoformat("2026-11-25T12:00:00+00:00")


def normalise(payload: Any, headers: dict[str, str] | None = None) -> list[Any]:
    zd = adapter()
    zd.validate(payload)
    return zd.normalise(payload, headers or {})


def test_a_soft_deleted_then_undeleted_ticket_exists_again() -> None:
    status = load("event_status_changed")
    events = [*normalise(status), *normalise(load("event_soft_deleted")), *normalise(load("event_undeleted"))]
    assert [e.kind for e in events] == [EventKind.CHANGED, EventKind.DELETED, EventKind.RESTORED]
    tl = build_timeline(events, LATER)
    assert tl is not None and tl.deleted_at is None
    # Without the restore the ticket is gone.
    gone = build_timeline(events[:2], LATER)
    assert gone is not None and gone.deleted_at == datetime.fromisoformat("2026-11-24T08:00:00+00:00")


def test_a_redelivered_undelete_has_the_same_event_id() -> None:
    first = normalise(load("event_undeleted"))
    again = normalise(load("event_undeleted"), {"x-zendesk-webhook-invocation-id": "retry"})
    assert first == again and first[0].event_id == "zendesk:0d3b7e21-6c4f-4a8e-9b15-f2a7c3e9d610"


def test_an_undelete_whose_snapshot_status_is_unmapped_still_restores() -> None:
    # The restore carries no snapshot: whatever status the payload shows cannot make it fail.
    payload = load("event_undeleted")
    payload["detail"]["status"] = "DELETED"
    [event] = normalise(payload)
    assert event.kind is EventKind.RESTORED


def test_a_ticket_first_seen_after_creation_starts_at_its_created_at() -> None:
    events = normalise(load("event_status_changed"))  # Mon 11:02; the ticket was created at 09:12:07
    tl = build_timeline(events, LATER)
    assert tl is not None and tl.created == datetime.fromisoformat("2026-11-23T09:12:07+00:00")


def test_an_event_without_created_at_states_none() -> None:
    payload = load("event_status_changed")
    del payload["detail"]["created_at"]
    [event] = normalise(payload)
    assert "created_at" not in event.fields and event.reported_creation is None


def test_a_malformed_created_at_is_refused_with_its_path() -> None:
    payload = load("event_status_changed")
    payload["detail"]["created_at"] = "23.11.2026 09:12"
    with pytest.raises(PayloadError) as info:
        adapter().validate(payload)
    assert info.value.path == "$.detail.created_at"


def test_an_impossible_created_at_is_refused_with_its_path() -> None:
    payload = load("event_comment_added_agent")
    payload["detail"]["created_at"] = "2026-13-45T09:12:07Z"  # the form passes the schema
    adapter().validate(payload)
    with pytest.raises(PayloadError, match="not an ISO 8601 instant") as info:
        adapter().normalise(payload, {})
    assert info.value.path == "$.detail.created_at"


def test_trigger_events_state_the_tickets_created_at_on_every_event() -> None:
    trig = load("trigger_agent_reply")
    events = adapter().normalise(trig, {"x-zendesk-webhook-invocation-id": "x"})
    assert [e.kind for e in events] == [EventKind.CHANGED, EventKind.COMMENTED]
    assert {e.reported_creation for e in events} == {datetime.fromisoformat("2026-11-23T09:12:07+00:00")}
    # A ticket whose creation trigger was lost still starts at its creation.
    tl = build_timeline(events, LATER)
    assert tl is not None and tl.created == events[0].at - timedelta(hours=1, minutes=3, seconds=23)
