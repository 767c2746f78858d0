"""`outage_start`: the instant the instance's `outage_start_field` states, read from trigger bodies,
`ticket.custom_field_changed` events and backfill; a day is midnight in the instance's deadline zone."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.base import PayloadError
from adapters.zendesk import backfill
from adapters.zendesk.tests.helpers import adapter, load
from sla.events import EventKind

FIELD = 360000123999
EVENT = "event_custom_field_changed_outage_start"
TRIGGER = "trigger_outage_start"
INVOCATION = {"x-zendesk-webhook-invocation-id": "inv-1"}


def event_with(current: Any, **settings: Any) -> list[Any]:
    payload = load(EVENT)
    payload["event"]["current"] = current
    zd = adapter(**{"outage_start_field": FIELD, **settings})
    zd.validate(payload)
    return zd.normalise(payload, {})


def outage_start(current: Any, **settings: Any) -> Any:
    [event] = event_with(current, **settings)
    assert event.kind is EventKind.CHANGED and set(event.fields) == {"outage_start", "created_at"}
    return event.fields["outage_start"]


# ---------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("zone", "day", "instant"),
    [
        ("Europe/Berlin", "2026-11-27", "2026-11-26T23:00:00+00:00"),
        ("Europe/Berlin", "2026-07-01", "2026-06-30T22:00:00+00:00"),  # summer time
        ("America/New_York", "2026-11-27", "2026-11-27T05:00:00+00:00"),
        ("Asia/Kolkata", "2026-11-27", "2026-11-26T18:30:00+00:00"),
        ("UTC", "2026-11-27", "2026-11-27T00:00:00+00:00"),
        # Clocks go from 00:00 to 01:00: the day begins at 01:00 -03:00.
        ("America/Santiago", "2026-09-06", "2026-09-06T04:00:00+00:00"),
    ],
)
def test_a_day_is_midnight_in_the_deadline_zone(zone: str, day: str, instant: str) -> None:
    assert outage_start({"value": day}, deadline_timezone=zone) == instant


@pytest.mark.parametrize(
    ("value", "instant"),
    [
        ("2026-11-27T09:15:00+01:00", "2026-11-27T08:15:00+00:00"),
        ("2026-11-27T08:15:00Z", "2026-11-27T08:15:00+00:00"),
        (" 2026-11-27T03:15:00.250-05:00 ", "2026-11-27T08:15:00.250000+00:00"),
    ],
)
def test_a_full_instant_is_that_instant_whatever_the_zone(value: str, instant: str) -> None:
    assert outage_start({"value": value}, deadline_timezone="Asia/Kolkata") == instant


CLEARED = [{"value": None}, {"value": ""}, {"value": "-"}, {"value": "  "}, {}, None]


@pytest.mark.parametrize("current", CLEARED)
def test_a_cleared_field_states_no_outage_start(current: Any) -> None:
    assert outage_start(current) is None


def test_a_bare_current_value_is_read_as_well() -> None:
    assert outage_start("2026-11-27") == "2026-11-26T23:00:00+00:00"


@pytest.mark.parametrize(
    ("current", "path"),
    [
        ({"value": "27/11/2026"}, "$.event.current.value"),
        ({"value": "November 27, 2026"}, "$.event.current.value"),
        ({"value": "2026-02-30"}, "$.event.current.value"),
        ({"value": "2026-11-27T09:15:00"}, "$.event.current.value"),  # no offset: which zone?
        ({"value": "20261127"}, "$.event.current.value"),
        ({"value": 20261127}, "$.event.current.value"),
        ({"value": ["2026-11-27"]}, "$.event.current.value"),
        ("tomorrow", "$.event.current"),
    ],
)
def test_anything_else_states_nothing_and_is_logged_with_its_path(
    current: Any, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Report-only: an unreadable value is no event (the ticket keeps the value it had), and says why.
    assert event_with(current) == []
    assert unreadable(caplog) == [path]
    assert "is neither a date" in caplog.records[-1].reason


def test_a_day_outside_the_instants_a_delivery_may_state_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    assert event_with({"value": "1969-12-31"}, deadline_timezone="UTC") == []
    assert unreadable(caplog) == ["$.event.current.value"]
    assert "outside the instants a delivery may state" in caplog.records[-1].reason


def unreadable(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The paths of the `zendesk.outage_start_unreadable` warnings logged."""
    return [r.reason.split(": ", 1)[0] for r in caplog.records
            if r.getMessage() == "zendesk.outage_start_unreadable" and r.levelname == "WARNING"]


def test_an_event_of_the_field_without_a_current_value_is_refused() -> None:
    payload = load(EVENT)
    del payload["event"]["current"]
    with pytest.raises(PayloadError, match="'current' is a required property") as info:
        adapter(outage_start_field=FIELD).normalise(payload, {})
    assert info.value.path == "$.event"


def test_a_custom_field_event_names_its_field() -> None:
    payload = load(EVENT)
    del payload["event"]["custom_field"]
    with pytest.raises(PayloadError, match="'custom_field' is a required property") as info:
        adapter().validate(payload)
    assert info.value.path == "$.event"


# ---------------------------------------------------------------- which events carry it


@pytest.mark.parametrize("settings", [{"outage_start_field": 360000555000}, {}], ids=["other", "unmapped"])
def test_other_fields_and_unmapped_instances_drop_the_event_as_ignored(
    settings: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="sla.adapters.zendesk")
    payload = load(EVENT)
    payload["event"]["current"] = {"value": "not even a date"}  # not read
    zd = adapter(**settings)
    zd.validate(payload)
    assert zd.normalise(payload, {}) == []
    [record] = caplog.records
    assert (record.getMessage(), record.event_type) == ("zendesk.event_ignored", payload["type"])


def test_the_field_id_may_arrive_as_a_number() -> None:
    payload = load(EVENT)
    payload["event"]["custom_field"]["id"] = FIELD
    [event] = adapter(outage_start_field=str(FIELD)).normalise(payload, {})
    assert event.fields["outage_start"] == "2026-11-22T23:00:00+00:00"


def test_a_trigger_body_states_it_on_every_update() -> None:
    payload = load(TRIGGER)
    payload["ticket"]["outage_start"] = "2026-11-23T07:05:00Z"
    zd = adapter(outage_start_field=FIELD)
    zd.validate(payload)
    [changed, comment] = zd.normalise(payload, INVOCATION)
    assert changed.fields["outage_start"] == "2026-11-23T07:05:00+00:00"
    assert "outage_start" not in comment.fields  # a comment states no field
    payload["ticket"]["outage_start"] = ""  # the placeholder of an empty field
    assert zd.normalise(payload, INVOCATION)[0].fields["outage_start"] is None


def test_a_trigger_body_with_an_unreadable_value_keeps_the_rest_and_says_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # What the placeholder renders is Zendesk's choice: a form the adapter cannot read must not cost the
    # delivery its status, priority and comment, which move the clocks.
    payload = load(TRIGGER)
    payload["ticket"]["outage_start"] = "Nov 23, 2026"
    [changed, comment] = adapter(outage_start_field=FIELD).normalise(payload, INVOCATION)
    assert "outage_start" not in changed.fields and changed.fields["status"] is not None
    assert comment.kind is EventKind.COMMENTED
    [record] = [r for r in caplog.records if r.getMessage() == "zendesk.outage_start_unreadable"]
    assert record.levelname == "WARNING" and "'Nov 23, 2026'" in record.reason
    assert "$.ticket.outage_start" in record.reason


def test_a_trigger_body_states_nothing_the_instance_does_not_map() -> None:
    # The key in a body of an instance without the setting (removed since) is not read, even if bad...
    payload = load(TRIGGER)
    payload["ticket"]["outage_start"] = "Nov 23, 2026"
    [changed, _] = adapter().normalise(payload, INVOCATION)
    assert "outage_start" not in changed.fields
    # ... and a body without it (a trigger installed before the setting) states no value, not an empty one.
    del payload["ticket"]["outage_start"]
    [changed, _] = adapter(outage_start_field=FIELD).normalise(payload, INVOCATION)
    assert "outage_start" not in changed.fields


# ---------------------------------------------------------------- backfill


def ticket(**overrides: Any) -> dict[str, Any]:
    return {
        "id": 5161,
        "created_at": "2026-11-23T09:00:00Z",
        "updated_at": "2026-11-24T10:00:00Z",
        "status": "open",
        "priority": "high",
        "requester_id": 8447388090111,
        "custom_fields": [{"id": 360000555000, "value": "other"}, {"id": FIELD, "value": "2026-11-22"}],
        **overrides,
    }


def change(audit_id: int, at: str, value: Any, previous: Any, field: str = str(FIELD)) -> dict[str, Any]:
    return {"id": audit_id, "created_at": at, "author_id": 8447388090494,
            "events": [{"id": audit_id + 1, "type": "Change", "field_name": field, "value": value,
                        "previous_value": previous}]}


def outage_starts(settings: dict[str, Any], row: dict[str, Any], audits: list[dict[str, Any]]) -> list[Any]:
    events = backfill.ticket_events(adapter(**settings).settings, row, audits, {})
    return [(e.kind.value, e.fields.get("outage_start", "-")) for e in events]


def test_backfill_states_the_value_at_creation_and_at_each_change() -> None:
    audits = [change(10, "2026-11-23T10:00:00Z", "2026-11-21", None),
              change(20, "2026-11-24T10:00:00Z", "2026-11-22", "2026-11-21"),
              change(30, "2026-11-24T11:00:00Z", "other", "before", field="360000555000")]
    assert outage_starts({"outage_start_field": FIELD}, ticket(), audits) == [
        ("created", None),  # empty until the first change: its previous value
        ("changed", "2026-11-20T23:00:00+00:00"),
        ("changed", "2026-11-21T23:00:00+00:00"),  # today's value
    ]


def test_backfill_without_a_change_of_the_field_states_todays_value_at_creation() -> None:
    new_york = {"outage_start_field": FIELD, "deadline_timezone": "America/New_York"}
    assert outage_starts(new_york, ticket(), []) == [("created", "2026-11-22T05:00:00+00:00")]
    assert outage_starts({"outage_start_field": FIELD}, ticket(custom_fields=[]), []) == [("created", None)]


def test_backfill_of_an_unmapped_instance_states_no_outage_start() -> None:
    audits = [change(10, "2026-11-23T10:00:00Z", "2026-11-22", None)]
    assert outage_starts({}, ticket(), audits) == [("created", "-")]  # the change is no event of its own


def test_backfill_leaves_an_unreadable_value_out_and_keeps_the_ticket(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # One hand-typed value, even one corrected long ago, must not cost the ticket its backfill.
    mapped = {"outage_start_field": FIELD}
    audits = [change(10, "2026-11-23T10:00:00Z", "soon", ""),
              change(20, "2026-11-24T10:00:00Z", "2026-11-22", "soon")]
    assert outage_starts(mapped, ticket(), audits) == [
        ("created", None), ("changed", "-"), ("changed", "2026-11-21T23:00:00+00:00")]
    assert unreadable(caplog) == ["$.audits[].events[].value"]
    typed = ticket(custom_fields=[{"id": FIELD, "value": "x"}])
    assert outage_starts(mapped, typed, []) == [("created", "-")]
    assert unreadable(caplog)[-1] == "$.custom_fields"
