"""Jira: an instance's `outage_start_field` (a custom field) becomes the canonical `outage_start`.

Payloads are the fixtures with the custom field added as Jira Cloud sends it: the issue's `fields`
carry every custom field by id (`"customfield_10061": "2026-11-27T09:15:00.000+0100"`, or null when
empty), and a changelog item for one names it by `fieldId` with `"fieldtype": "custom"`.
"""

from __future__ import annotations

from typing import Any

import pytest

import adapters.jira as jira
from adapters.jira.tests.helpers import CLOUD_CONFIG, ENV, fixture
from sla.events import EventKind, TicketEvent

OUTAGE_FIELD = "customfield_10061"
MAPPED = {**CLOUD_CONFIG, "outage_start_field": OUTAGE_FIELD}  # due_timezone Europe/Berlin

#: A changelog item for the outage field. Its strings are what Jira shows (locale and zone of the
#: editor); they differ from the issue's value on purpose: the value is read from the issue.
OUTAGE_ITEM = {
    "field": "Outage start",
    "fieldtype": "custom",
    "fieldId": OUTAGE_FIELD,
    "from": None,
    "fromString": None,
    "to": "2026-11-27 01:00:00.0",
    "toString": "27/Nov/26 1:00 AM",
}
STATUS_ITEMS = [item for item in fixture("cloud_issue_updated_status.json")["changelog"]["items"]
                if item.get("fieldId") == "status"]
SPRINT_ITEM = {
    "field": "Sprint",
    "fieldtype": "custom",
    "fieldId": "customfield_10020",
    "from": "",
    "fromString": "",
    "to": "36",
    "toString": "Sprint 3",
}


def normalise(payload: dict[str, Any], config: dict[str, Any] = MAPPED) -> list[TicketEvent]:
    adapter = jira.create("acme", config, ENV)
    adapter.validate(payload)  # the issue schema lets custom fields through
    return adapter.normalise(payload, {})


def created(value: Any) -> dict[str, Any]:
    payload = fixture("cloud_issue_created.json")
    payload["issue"]["fields"][OUTAGE_FIELD] = value
    return payload


def updated(value: Any, items: list[dict[str, Any]]) -> dict[str, Any]:
    payload = fixture("cloud_issue_updated_fields.json")
    payload["issue"]["fields"][OUTAGE_FIELD] = value
    payload["changelog"]["items"] = items
    return payload


def outage(events: list[TicketEvent]) -> list[Any]:
    return [e.fields.get("outage_start", "absent") for e in events]


# ---------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("value", "instant"),
    [
        ("2026-11-27T09:15:00.000+0100", "2026-11-27T08:15:00+00:00"),  # Date Time Picker, as `created`
        ("2026-11-27T09:15:00.000+0000", "2026-11-27T09:15:00+00:00"),
        ("2026-11-27T09:15:00.250-05:00", "2026-11-27T14:15:00.250000+00:00"),
        # Date Picker: midnight in the instance's due_timezone (Europe/Berlin)
        ("2026-11-27", "2026-11-26T23:00:00+00:00"),
        ("2026-03-29", "2026-03-28T23:00:00+00:00"),  # summer time starts at 02:00: midnight is +01:00
        ("2026-03-30", "2026-03-29T22:00:00+00:00"),  # the day after: +02:00
        ("2026-10-25", "2026-10-24T22:00:00+00:00"),  # summer time ends at 03:00: midnight is +02:00
    ],
)
def test_created_carries_the_field_as_an_instant(value: str, instant: str) -> None:
    [event] = normalise(created(value))
    assert event.kind is EventKind.CREATED and event.fields["outage_start"] == instant


def test_a_date_where_midnight_is_skipped_starts_at_the_days_first_instant() -> None:
    # America/Santiago moves its clocks from 00:00 to 01:00 on 2026-09-06: the day begins at 01:00 -03:00.
    config = {**MAPPED, "due_timezone": "America/Santiago"}
    [event] = normalise(created("2026-09-06"), config)
    assert event.fields["outage_start"] == "2026-09-06T04:00:00+00:00"
    [event] = normalise(created("2026-09-05"), config)  # the day before: 00:00 -04:00
    assert event.fields["outage_start"] == "2026-09-05T04:00:00+00:00"


def test_an_empty_field_is_none() -> None:
    [event] = normalise(created(None))
    assert "outage_start" in event.fields and event.fields["outage_start"] is None


def test_a_payload_without_the_field_states_nothing() -> None:
    [event] = normalise(fixture("cloud_issue_created.json"))
    assert "outage_start" not in event.fields


# ---------------------------------------------------------------- changes


def test_a_change_of_the_field_reads_the_issues_value_not_the_changelog_strings() -> None:
    [event] = normalise(updated("2026-11-27T09:15:00.000+0100", [OUTAGE_ITEM]))
    assert event.kind is EventKind.CHANGED and event.event_id == "jira:10042:changelog:10302"
    assert event.fields == {"outage_start": "2026-11-27T08:15:00+00:00",
                            "created_at": "2026-11-27T09:00:00.123000+00:00"}


def test_a_change_with_other_fields_carries_them_all() -> None:
    items = [*fixture("cloud_issue_updated_fields.json")["changelog"]["items"], OUTAGE_ITEM]
    [event] = normalise(updated("2026-11-27", items))
    assert event.fields["outage_start"] == "2026-11-26T23:00:00+00:00"
    assert (event.fields["priority"], event.fields["type"]) == ("urgent", "Incident")


def test_clearing_the_field_states_none() -> None:
    cleared = {**OUTAGE_ITEM, "from": "2026-11-27 01:00:00.0", "fromString": "27/Nov/26 1:00 AM",
               "to": None, "toString": None}
    [event] = normalise(updated(None, [cleared]))
    assert "outage_start" in event.fields and event.fields["outage_start"] is None


def test_a_change_of_another_custom_field_does_not_state_it() -> None:
    assert normalise(updated("2026-11-27T09:15:00.000+0100", [SPRINT_ITEM])) == []
    items = [*fixture("cloud_issue_updated_fields.json")["changelog"]["items"], SPRINT_ITEM]
    assert outage(normalise(updated("2026-11-27T09:15:00.000+0100", items))) == ["absent"]


def test_data_center_names_no_field_id_so_any_custom_field_change_states_the_value() -> None:
    # Data Center changelogs name a field by its display name only: the value is read from the issue.
    dc_item = {k: v for k, v in OUTAGE_ITEM.items() if k != "fieldId"}
    assert outage(normalise(updated("2026-11-27T09:15:00.000+0100", [dc_item]))) == [
        "2026-11-27T08:15:00+00:00"]
    dc_sprint = {k: v for k, v in SPRINT_ITEM.items() if k != "fieldId"}
    assert outage(normalise(updated("2026-11-27", [dc_sprint]))) == ["2026-11-26T23:00:00+00:00"]
    system = {"field": "labels", "fieldtype": "jira", "from": None, "fromString": "", "to": None,
              "toString": "vip"}
    assert outage(normalise(updated("2026-11-27", [system]))) == ["absent"]


def test_a_change_of_other_fields_does_not_state_it() -> None:
    # Only a change of the field says it; other events keep the value the ticket already has.
    items = fixture("cloud_issue_updated_fields.json")["changelog"]["items"]
    assert outage(normalise(updated("2026-11-27T09:15:00.000+0100", items))) == ["absent"]
    comment = fixture("cloud_comment_created_customer.json")
    comment["issue"]["fields"][OUTAGE_FIELD] = "2026-11-27T09:15:00.000+0100"
    assert outage(normalise(comment)) == ["absent"]


def test_a_change_when_the_payload_carries_no_value_states_nothing() -> None:
    # An Automation body may carry a partial issue: without the field there is nothing to read.
    payload = updated(None, [OUTAGE_ITEM])
    del payload["issue"]["fields"][OUTAGE_FIELD]
    assert normalise(payload) == []


def test_an_instance_without_the_setting_ignores_the_field() -> None:
    assert outage(normalise(created("2026-11-27T09:15:00.000+0100"), CLOUD_CONFIG)) == ["absent"]
    assert normalise(updated("2026-11-27T09:15:00.000+0100", [OUTAGE_ITEM]), CLOUD_CONFIG) == []
    # Nor is its value checked: it is not this instance's outage field.
    assert outage(normalise(created("not a date"), CLOUD_CONFIG)) == ["absent"]


def test_an_instance_mapping_another_field_ignores_this_one() -> None:
    config = {**CLOUD_CONFIG, "outage_start_field": "customfield_10062"}
    assert outage(normalise(created("2026-11-27T09:15:00.000+0100"), config)) == ["absent"]
    assert normalise(updated("2026-11-27T09:15:00.000+0100", [OUTAGE_ITEM]), config) == []


# ---------------------------------------------------------------- unreadable values


BAD_VALUES = [
    ("27/Nov/26 9:15 AM", "not a Jira date-time"),  # a display string
    ("2026-11-27 09:15", "not a Jira date-time"),
    ("2026-11-27T09:15:00", "not a Jira date-time"),  # no offset: not an instant
    ("2026-13-01T00:00:00.000+0000", "not a Jira date-time"),  # month 13, in Jira's form
    ("2026-02-30", "not a date"),
    (1795770000000, "not a Jira date-time"),  # epoch ms
    ({"value": "2026-11-27"}, "not a Jira date-time"),  # an object (a select field's shape)
    (["2026-11-27"], "not a Jira date-time"),
    ("1969-12-31T23:59:59.000+0000", "outside the instants"),
    ("0001-01-01", "outside the instants"),  # midnight in Berlin has no UTC equivalent
    ("2200-01-01T00:00:00.000+0000", "outside the instants"),
]


@pytest.mark.parametrize(("value", "words"), BAD_VALUES, ids=[repr(v[0]) for v in BAD_VALUES])
@pytest.mark.parametrize("kind", ["created", "updated"])
def test_an_unreadable_value_is_left_out_and_logged_with_its_path(
    kind: str, value: Any, words: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The delivery keeps what moves the clocks; only the report-only field is left out, and said so.
    payload = created(value) if kind == "created" else updated(value, [*STATUS_ITEMS, OUTAGE_ITEM])
    [event] = normalise(payload)
    assert "outage_start" not in event.fields
    assert event.fields["status"] is not None
    [record] = [r for r in caplog.records if r.getMessage() == "jira.outage_start_unreadable"]
    assert record.levelname == "WARNING" and words in record.reason
    assert record.reason.startswith(f"$.issue.fields.{OUTAGE_FIELD}: ")
