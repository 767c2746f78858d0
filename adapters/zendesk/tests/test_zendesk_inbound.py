"""Every fixture, verified, validated and normalised to its exact canonical events."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from adapters.base import PayloadError
from adapters.zendesk.inbound import HANDLERS, IGNORED, SUPPORTED
from adapters.zendesk.tests.helpers import FIXTURES, NOW, adapter, fixture_bytes, load, signed_headers
from sla.events import EventKind
from sla.timeline import dedupe

CREATED_AT = "2026-11-23T09:12:07+00:00"  # every fixture's ticket.created_at, carried by each event
OUTAGE_FIELD = 360000123999
#: Fixtures read under settings of their own (the others under helpers.config()).
FIXTURE_SETTINGS: dict[str, dict[str, Any]] = {
    "event_custom_field_changed_outage_start": {"outage_start_field": OUTAGE_FIELD},
    "trigger_outage_start": {"outage_start_field": str(OUTAGE_FIELD)},
}
#: 2026-11-23, the outage field's day in both fixtures: midnight in Europe/Berlin (the deadline zone).
OUTAGE_DAY = "2026-11-22T23:00:00+00:00"
SNAP = {
    "status": "open",
    "status_name": "open",
    "priority": "high",
    "type": "incident",
    "tags": ["enterprise", "export"],
    "assignee": "8447388090494",
    "group": "8447388093330",
    "brand": "8447388084370",
    "organization": "8447388093714",
    "requester": "8447388090111",
}


def ev(
    event_id: str,
    kind: str,
    at: str,
    actor: str = "other",
    public: bool | None = None,
    ticket: str = "5158",
    created_at: str | None = CREATED_AT,
    **fields: Any,
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "ticket_id": ticket,
        "kind": kind,
        "at": at,
        "actor": actor,
        "fields": fields if created_at is None else {**fields, "created_at": created_at},
        "public": public,
    }


EXPECTED: dict[str, list[dict[str, Any]]] = {
    "event_ticket_created": [
        ev(
            "zendesk:5158:created",
            "created",
            "2026-11-23T09:12:07.672717+00:00",
            "requester",
            **{**SNAP, "status": "new", "status_name": "new", "assignee": None},
        )
    ],
    "event_status_changed": [
        ev(
            "zendesk:0f4a1c7e-3b1d-4f59-9a55-51c2bd8e8a01",
            "changed",
            "2026-11-23T11:02:44.120394+00:00",
            status="pending",
            status_name="pending",
        )
    ],
    "event_custom_status_changed": [
        ev(
            "zendesk:5d0b1f67-69e4-4bf0-8f2e-7c1e0d3c9a12",
            "changed",
            "2026-11-23T11:30:00.500000+00:00",
            status="on_hold",
            status_name="custom_status:8447388091999",
        )
    ],
    "event_priority_changed": [
        ev(
            "zendesk:9e3a0d1b-2f44-4c8e-b0a7-6d5c4b3a2f10",
            "changed",
            "2026-11-23T10:20:00+00:00",
            priority="urgent",
        )
    ],
    "event_priority_cleared": [
        ev(
            "zendesk:1a2b3c4d-0000-4c8e-b0a7-6d5c4b3a2f11",
            "changed",
            "2026-11-23T10:21:00+00:00",
            priority="normal",
        )
    ],
    "event_tags_changed": [
        ev(
            "zendesk:7c2d9e8f-1a3b-4c5d-8e9f-0a1b2c3d4e5f",
            "changed",
            "2026-11-23T10:25:10+00:00",
            tags=["enterprise", "vip"],
        )
    ],
    "event_agent_assignment_changed": [
        ev(
            "zendesk:2b4d6f80-1c3e-4a5b-9c7d-8e9f0a1b2c3d",
            "changed",
            "2026-11-23T10:30:00+00:00",
            assignee="8447388090777",
        )
    ],
    "event_group_assignment_changed": [
        ev(
            "zendesk:3c5e7a91-2d4f-4b6c-8d0e-9f1a2b3c4d5e",
            "changed",
            "2026-11-23T10:31:00+00:00",
            group="8447388093999",
        )
    ],
    "event_brand_changed": [
        ev(
            "zendesk:4d6f8ba2-3e5a-4c7d-9e1f-0a2b3c4d5e6f",
            "changed",
            "2026-11-23T10:32:00+00:00",
            brand="8447388084999",
        )
    ],
    "event_organization_changed": [
        ev(
            "zendesk:7a9cbe15-6b8d-4fa0-8b4c-3d5e6f708192",
            "changed",
            "2026-11-23T10:36:00+00:00",
            organization="8447388093888",
        )
    ],
    "event_requester_changed": [
        ev(
            "zendesk:5e7a9cb3-4f6b-4d8e-8f2a-1b3c4d5e6f70",
            "changed",
            "2026-11-23T10:33:00+00:00",
            requester="8447388090222",
        )
    ],
    "event_type_changed": [
        ev(
            "zendesk:6f8bad04-5a7c-4e9f-9a3b-2c4d5e6f7081",
            "changed",
            "2026-11-23T10:34:00+00:00",
            type="problem",
        )
    ],
    "event_comment_added_agent": [
        ev(
            "zendesk:5158:comment:14543565489940",
            "commented",
            "2026-11-23T10:15:30.123456+00:00",
            "agent",
            True,
        )
    ],
    "event_comment_added_requester": [
        ev(
            "zendesk:5158:comment:14543565490001",
            "commented",
            "2026-11-23T12:01:02+00:00",
            "requester",
            True,
        )
    ],
    "event_comment_added_private_note": [
        ev(
            "zendesk:5158:comment:14543565490002",
            "commented",
            "2026-11-23T12:05:00+00:00",
            "agent",
            False,
        )
    ],
    "event_comment_added_connector": [
        ev(
            "zendesk:5158:comment:14543565490003",
            "commented",
            "2026-11-23T13:00:01+00:00",
            "connector",
            False,
        )
    ],
    "event_comment_added_marker_only": [
        ev(
            "zendesk:5158:comment:14543565490004",
            "commented",
            "2026-11-23T13:05:00+00:00",
            "connector",
            False,
        )
    ],
    "event_soft_deleted": [
        ev(
            "zendesk:c9ea18de-3e9f-417d-b60e-d39e8e1c62a7",
            "deleted",
            "2026-11-24T08:00:00+00:00",
        )
    ],
    "event_undeleted": [
        ev(
            "zendesk:0d3b7e21-6c4f-4a8e-9b15-f2a7c3e9d610",
            "restored",
            "2026-11-24T09:30:00+00:00",
        )
    ],
    "event_custom_field_changed_outage_start": [
        ev(
            "zendesk:6f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0",
            "changed",
            "2026-11-23T10:40:00+00:00",
            outage_start=OUTAGE_DAY,
        )
    ],
    "event_ignored_subject_changed": [],
    "event_unknown_ticket_type": [],
    "event_user_created": [],
    "trigger_ticket_created": [
        ev(
            "zendesk:5158:created",
            "created",
            "2026-11-23T09:12:07+00:00",
            "requester",
            **{
                **SNAP,
                "status": "new",
                "status_name": "new",
                "priority": "normal",
                "assignee": None,
                "group": None,
                "brand": "Acme Support",
            },
        ),
        ev(
            "zendesk:5158:comment:14543565480000", "commented", "2026-11-23T09:12:07+00:00", "requester", True
        ),
    ],
    "trigger_agent_reply": [
        ev(
            "zendesk:invocation:inv-trigger_agent_reply:0",
            "changed",
            "2026-11-23T10:15:30+00:00",
            **{**SNAP, "status": "pending", "status_name": "pending", "brand": "Acme Support"},
        ),
        ev("zendesk:5158:comment:14543565489940", "commented", "2026-11-23T10:15:30+00:00", "agent", True),
    ],
    "trigger_outage_start": [
        ev(
            "zendesk:invocation:inv-trigger_outage_start:0",
            "changed",
            "2026-11-23T10:15:30+00:00",
            **{**SNAP, "status": "pending", "status_name": "pending", "brand": "Acme Support"},
            outage_start=OUTAGE_DAY,
        ),
        ev("zendesk:5158:comment:14543565489940", "commented", "2026-11-23T10:15:30+00:00", "agent", True),
    ],
    "trigger_connector_note": [
        ev(
            "zendesk:invocation:inv-trigger_connector_note:0",
            "changed",
            "2026-11-23T13:00:01+00:00",
            "connector",
            **{
                **SNAP,
                "priority": "urgent",
                "tags": ["enterprise", "export", "sla-warning"],
                "brand": "Acme Support",
            },
        ),
        ev(
            "zendesk:5158:comment:14543565490003",
            "commented",
            "2026-11-23T13:00:01+00:00",
            "connector",
            False,
        ),
    ],
}


def check_fixture(name: str) -> list[dict[str, Any]]:
    """Deliver fixture `name` the way the receiver does: verify, parse, validate, normalise."""
    zd = adapter(**FIXTURE_SETTINGS.get(name, {}))
    body = fixture_bytes(name)
    headers = signed_headers(body)
    if name.startswith("trigger_"):
        headers["x-zendesk-webhook-invocation-id"] = f"inv-{name}"
    zd.verify(headers, body, NOW)
    payload = json.loads(body)
    zd.validate(payload)
    events = [e.to_dict() for e in zd.normalise(payload, headers)]
    assert events == EXPECTED[name]
    return events


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_normalises_to_exact_events(name: str) -> None:
    check_fixture(name)


def test_no_fixture_is_unused() -> None:
    # Every fixture on disk is delivered by test_fixture_normalises_to_exact_events, and nothing else.
    on_disk = {p.stem for p in FIXTURES.glob("*.json")}
    assert sorted(on_disk - set(EXPECTED)) == [], "unused fixtures"
    assert sorted(set(EXPECTED) - on_disk) == [], "expectations without a fixture"


def test_every_supported_event_type_has_a_fixture() -> None:
    types = {load(n).get("type") for n in EXPECTED if n.startswith("event_")}
    missing = {t for t in SUPPORTED if t not in types}
    # Two deletion flavours share the soft-delete normaliser; they are covered below.
    assert missing == {"zen:event-type:ticket.permanently_deleted", "zen:event-type:ticket.marked_as_spam"}
    assert not SUPPORTED & IGNORED
    assert len(SUPPORTED) == len(HANDLERS)


@pytest.mark.parametrize("kind", ["permanently_deleted", "marked_as_spam"])
def test_other_deletions_normalise_to_deleted(kind: str) -> None:
    payload = load("event_soft_deleted")
    payload["type"] = f"zen:event-type:ticket.{kind}"
    zd = adapter()
    zd.validate(payload)
    [event] = zd.normalise(payload, {})
    assert (event.kind.value, event.ticket_id) == ("deleted", "5158")


def test_ticket_and_delivery_ids() -> None:
    zd = adapter()
    payload = load("event_comment_added_agent")
    assert zd.ticket_id(payload) == "5158"
    assert zd.delivery_id({}, payload) == "d4f5c389-8f4a-4c2e-a1b9-8e4f39c71d52"
    assert zd.ticket_id(load("event_user_created")) is None
    trig = load("trigger_agent_reply")
    assert zd.ticket_id(trig) == "5158"
    assert zd.delivery_id({"x-zendesk-webhook-invocation-id": "01J9"}, trig) == "invocation:01J9"


def test_trigger_delivery_id_fallback_is_stable_and_body_specific() -> None:
    zd = adapter()
    trig = load("trigger_agent_reply")
    first = zd.delivery_id({}, trig)
    assert first == zd.delivery_id({}, copy.deepcopy(trig))
    assert first.startswith("trigger:5158:2026-11-23T10:15:30Z:")
    trig["ticket"]["status"] = "Solved"
    assert zd.delivery_id({}, trig) != first
    events = zd.normalise(trig, {})
    assert events[0].event_id == f"zendesk:{zd.delivery_id({}, trig)}:0"


def test_status_and_priority_casing_and_overrides() -> None:
    zd = adapter(statuses={"Waiting on vendor": "on_hold"}, priorities={"URGENT": "p1"})
    payload = load("event_status_changed")
    payload["event"]["current"] = "Waiting On Vendor"
    [event] = zd.normalise(payload, {})
    assert (event.fields["status"].value, event.fields["status_name"]) == ("on_hold", "waiting on vendor")
    payload = load("event_priority_changed")
    [event] = zd.normalise(payload, {})
    assert event.fields == {"priority": "p1", "created_at": CREATED_AT}


def test_default_priority_is_configurable() -> None:
    zd = adapter(default_priority="low")
    [event] = zd.normalise(load("event_priority_cleared"), {})
    assert event.fields == {"priority": "low", "created_at": CREATED_AT}


def test_unmapped_status_is_a_clear_error() -> None:
    payload = load("event_status_changed")
    payload["event"]["current"] = "Escalated"
    with pytest.raises(PayloadError, match=r"status 'Escalated' is not mapped.*statuses") as info:
        adapter().normalise(payload, {})
    assert info.value.path == "$.event.current"


def test_comment_of_unknown_staffness_by_someone_else_is_other() -> None:
    payload = load("event_comment_added_agent")
    del payload["event"]["comment"]["author"]["is_staff"]
    payload["event"]["comment"]["author"]["id"] = "123"
    [event] = adapter().normalise(payload, {})
    assert event.actor.value == "other"


def test_connector_change_is_recognised_by_actor_id() -> None:
    payload = load("event_tags_changed")
    payload["detail"]["actor_id"] = 900000000001
    [event] = adapter().normalise(payload, {})
    assert event.actor.value == "connector"


def test_trigger_repeat_of_an_earlier_comment_in_someone_elses_update_is_no_comment() -> None:
    # The requester's later update still shows the agent's reply as "latest": at its own updated_at
    # and with a current_user who is not the author, it would be a false, mistimed comment.
    trig = load("trigger_agent_reply")
    trig["current_user"] = {"id": "8447388090111", "role": "End-user"}
    trig["ticket"]["updated_at"] = "2026-11-23T11:00:00Z"
    events = adapter().normalise(trig, {"x-zendesk-webhook-invocation-id": "x"})
    assert [(e.kind.value, e.actor.value) for e in events] == [("changed", "requester")]


def test_trigger_comment_whose_author_did_not_make_the_update_is_dropped() -> None:
    trig = load("trigger_agent_reply")
    trig["latest_comment"]["author_id"] = "8447388090999"  # not the user whose update fired
    events = adapter().normalise(trig, {"x-zendesk-webhook-invocation-id": "x"})
    assert [e.kind.value for e in events] == ["changed"]


def test_trigger_comment_variants_resolve_to_the_comments_own_update_in_any_order() -> None:
    # The author's own reply, then the same author's later update (no new comment): two variants
    # of one event id; sla.timeline.dedupe must keep the first, whatever order they arrive in.
    zd = adapter()
    own = load("trigger_agent_reply")
    later = load("trigger_agent_reply")
    later["ticket"]["updated_at"] = "2026-11-23T15:45:00Z"
    later["latest_comment"]["is_public"] = "false"  # made private afterwards
    first = zd.normalise(own, {"x-zendesk-webhook-invocation-id": "a"})[1]
    repeat = zd.normalise(later, {"x-zendesk-webhook-invocation-id": "b"})[1]
    assert first.event_id == repeat.event_id and first != repeat
    for order in ([first, repeat], [repeat, first]):
        [kept] = [e for e in dedupe(order) if e.kind is EventKind.COMMENTED]
        assert kept == first
    assert kept.at.isoformat() == "2026-11-23T10:15:30+00:00"
    assert (kept.actor.value, kept.public) == ("agent", True)


def test_trigger_connector_note_under_comment_author_id_is_the_connectors() -> None:
    trig = load("trigger_connector_note")
    trig["latest_comment"]["author_id"] = "8447388090999"
    zd = adapter(comment_author_id=8447388090999)
    events = zd.normalise(trig, {"x-zendesk-webhook-invocation-id": "x"})
    assert [(e.kind.value, e.actor.value) for e in events] == [
        ("changed", "connector"),
        ("commented", "connector"),
    ]
    # The same note shown as "latest" in a connector update of an instance without that setting: dropped.
    assert [e.kind.value for e in adapter().normalise(trig, {"x-zendesk-webhook-invocation-id": "y"})] == [
        "changed"
    ]


def test_trigger_without_comment_yields_only_the_snapshot() -> None:
    trig = load("trigger_agent_reply")
    trig["latest_comment"] = {"id": "", "author_id": "", "is_public": ""}
    adapter().validate(trig)
    events = adapter().normalise(trig, {"x-zendesk-webhook-invocation-id": "x"})
    assert [e.kind.value for e in events] == ["changed"]


# ---------------------------------------------------------------- schema failures name the path


def _broken(name: str, mutate: Any) -> Any:
    payload = load(name)
    mutate(payload)
    return payload


@pytest.mark.parametrize(
    ("payload", "path", "message"),
    [
        ([1, 2], "$", "JSON object"),
        (_broken("event_status_changed", lambda p: p.pop("id")), "$", "'id' is a required property"),
        (_broken("event_status_changed", lambda p: p.update(time="yesterday")), "$.time", "does not match"),
        (
            _broken("event_status_changed", lambda p: p.update(subject="zen:ticket:abc")),
            "$.subject",
            "does not match",
        ),
        (
            _broken("event_status_changed", lambda p: p["detail"].pop("status")),
            "$.detail",
            "'status' is a required property",
        ),
        (_broken("event_status_changed", lambda p: p["detail"].update(id="12a")), "$.detail.id", "valid"),
        (
            _broken("event_status_changed", lambda p: p["event"].pop("current")),
            "$.event",
            "'current' is a required property",
        ),
        (
            _broken("event_comment_added_agent", lambda p: p["event"]["comment"].update(is_public="yes")),
            "$.event.comment.is_public",
            "is not of type 'boolean'",
        ),
        (
            _broken("event_comment_added_agent", lambda p: p["event"]["comment"].pop("author")),
            "$.event.comment",
            "'author' is a required property",
        ),
        (
            _broken("event_tags_changed", lambda p: p["detail"].pop("tags")),
            "$.detail",
            "'tags' is a required property",
        ),
        (
            _broken("event_status_changed", lambda p: p.update(type="ticket.status_changed")),
            "$.type",
            "does not match",
        ),
        (
            _broken("trigger_agent_reply", lambda p: p["ticket"].update(id="")),
            "$.ticket.id",
            "does not match",
        ),
        (
            _broken("trigger_agent_reply", lambda p: p["ticket"].update(updated_at="November 23, 2026")),
            "$.ticket.updated_at",
            "does not match",
        ),
        (
            _broken("trigger_agent_reply", lambda p: p.update(sla_connector="v0")),
            "$.sla_connector",
            "was expected",
        ),
        (
            _broken("trigger_agent_reply", lambda p: p["latest_comment"].update(is_public="yes")),
            "$.latest_comment.is_public",
            "is not one of",
        ),
    ],
)
def test_schema_failure_names_the_path(payload: Any, path: str, message: str) -> None:
    with pytest.raises(PayloadError) as info:
        adapter().validate(payload)
    assert info.value.path == path
    assert message in info.value.message
    assert str(info.value).startswith(f"{path}: ")


@pytest.mark.parametrize(
    ("name", "event"),
    [
        ("event_ignored_subject_changed", "zendesk.event_ignored"),
        ("event_unknown_ticket_type", "zendesk.event_unsupported"),
    ],
)
def test_dropped_events_are_logged_apart(name: str, event: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="sla.adapters.zendesk")
    assert adapter().normalise(load(name), {}) == []
    [record] = caplog.records
    assert record.getMessage() == event
    assert record.event_type == load(name)["type"]


def test_event_and_trigger_webhooks_give_a_creation_the_same_id() -> None:
    # Either webhook kind (and backfill) may report one creation: one id, so the event log keeps one.
    by_event = check_fixture("event_ticket_created")
    by_trigger = check_fixture("trigger_ticket_created")
    created = [e["event_id"] for e in by_event + by_trigger if e["kind"] == "created"]
    assert created == ["zendesk:5158:created", "zendesk:5158:created"]


def test_an_event_webhook_comment_is_keyed_by_the_comment_id() -> None:
    payload = json.loads(fixture_bytes("event_comment_added_agent"))
    (event,) = check_fixture("event_comment_added_agent")
    assert event["event_id"] == f"zendesk:5158:comment:{payload['event']['comment']['id']}"
