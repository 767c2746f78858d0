"""Signed Jira payloads the worker could not use are refused at the door: 400 naming the path, never a
500 and never a 202 that fails later (issue 9, "Bad input"). Each case goes through the real receiver."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from adapters.base import LATEST_INSTANT
from adapters.jira import inbound
from adapters.jira.config import SCHEMA_DIR
from adapters.jira.tests.helpers import CLOUD_CONFIG, ENV, fixture, sign
from connector.config.loader import config_from_dict
from connector.receiver.app import create_app

Mutation = Callable[[dict[str, Any]], Any]


@pytest.fixture
def client(redis_conn: redis.Redis) -> FlaskClient:
    cfg = config_from_dict({"instances": {"acme": CLOUD_CONFIG}}, ENV, source="test.yaml")
    return create_app(cfg, redis_conn).test_client()


def post(client: FlaskClient, payload: Any, delivery: str | None = "bad-1") -> Any:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "X-Hub-Signature": sign(body)}
    if delivery is not None:
        headers["X-Atlassian-Webhook-Identifier"] = delivery
    return client.post("/hooks/acme", data=body, headers=headers)


def refused(response: Any, path: str, reason: str = "schema") -> str:
    assert response.status_code == 400, response.get_data(as_text=True)
    body = response.get_json()
    assert (body["error"], body["path"]) == (reason, path), body
    return str(body["detail"])


def _set(*path: Any, value: Any) -> Mutation:
    def mutate(payload: dict[str, Any]) -> Any:
        node = payload
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        return payload

    return mutate


ADF_DEEP: dict[str, Any] = {"type": "text", "text": "x"}
for _ in range(inbound.ADF_MAX_DEPTH + 1):
    ADF_DEEP = {"type": "paragraph", "content": [ADF_DEEP]}

CASES: list[tuple[str, str, Mutation, str, str]] = [
    # fixture, case, mutation, path, a word of the detail
    ("cloud_issue_created.json", "webhookEvent a list (was TypeError: 500)",
     _set("webhookEvent", value=["jira:issue_created"]), "$.webhookEvent", "is not of type 'string'"),
    ("cloud_issue_created.json", "webhookEvent an object (was TypeError: 500)",
     _set("webhookEvent", value={"a": 1}), "$.webhookEvent", "is not of type 'string'"),
    ("cloud_comment_created_customer.json", "ADF content a number (was 202, then TypeError)",
     _set("comment", "body", "content", value=5), "$.comment.body.content", "ADF content is a list"),
    ("cloud_comment_created_customer.json", "nested ADF content not a list",
     _set("comment", "body", "content", 0, "content", value=True), "$.comment.body.content[0].content",
     "not bool"),
    ("cloud_issue_updated_commented.json", "ADF content a string in an issue_commented update",
     _set("comment", "body", "content", value="text"), "$.comment.body.content", "not str"),
    ("cloud_comment_created_customer.json", "ADF nested past the limit",
     _set("comment", "body", value=ADF_DEEP), "$.comment.body" + ".content[0]" * (inbound.ADF_MAX_DEPTH + 1),
     "nests deeper than 64 levels"),
    ("cloud_issue_created.json", "fields.created in year 1 (was 202, then failed in the worker)",
     _set("issue", "fields", "created", value="0001-01-01T00:00:00.000+0000"), "$.issue.fields.created",
     "outside the instants"),
    ("cloud_issue_created.json", "fields.created in year 1 east of UTC (no UTC equivalent)",
     _set("issue", "fields", "created", value="0001-01-01T00:00:00.000+0100"), "$.issue.fields.created",
     "outside the instants"),
    ("cloud_issue_updated_status.json", "fields.created in year 9999 west of UTC",
     _set("issue", "fields", "created", value="9999-12-31T23:59:59.000-0100"), "$.issue.fields.created",
     "outside the instants"),
    ("cloud_issue_created.json", "fields.created before the epoch",
     _set("issue", "fields", "created", value="1969-12-31T23:59:59.999+0000"), "$.issue.fields.created",
     "outside the instants"),
    ("cloud_comment_created_customer.json", "comment.created in year 1",
     _set("comment", "created", value="0001-01-01T00:00:00.000+0000"), "$.comment.created",
     "outside the instants"),
    ("cloud_issue_updated_status.json", "timestamp of 10^17 ms (was 202, then ValueError)",
     _set("timestamp", value=10**17), "$.timestamp", "greater than the maximum of 7258118399999"),
    ("cloud_issue_created.json", "timestamp of 10^17 ms on a creation",
     _set("timestamp", value=10**17), "$.timestamp", "greater than the maximum of 7258118399999"),
    ("cloud_issue_created.json", "a lone surrogate in the issue id (was UnicodeEncodeError: 500)",
     _set("issue", "id", value="10042\ud800"), "$.issue.id", "does not match '^[0-9]+$'"),
    ("cloud_issue_updated_status.json", "an empty issue id (was 202, then an event without a ticket)",
     _set("issue", "id", value=""), "$.issue.id", "does not match '^[0-9]+$'"),
    ("cloud_comment_created_customer.json", "a lone surrogate in the comment's issue id",
     _set("issue", "id", value="\udc00"), "$.issue.id", "does not match '^[0-9]+$'"),
    ("cloud_comment_created_customer.json", "a reporter that is not a user (was AttributeError)",
     _set("issue", "fields", "reporter", value="carl"), "$.issue.fields.reporter", "is not valid"),
    ("cloud_comment_created_connector.json", "an internal-comment property that is not an object",
     _set("comment", "properties", 0, "value", value=[1]), "$.comment.properties[0].value",
     "is not of type 'object', 'null'"),
    ("cloud_comment_created_connector.json", "comment properties that are not a list",
     _set("comment", "properties", value=7), "$.comment.properties", "is not of type 'array'"),
]


@pytest.mark.parametrize(("name", "case", "mutate", "path", "word"), CASES, ids=[c[1] for c in CASES])
def test_refused_at_the_door_with_the_path(client: FlaskClient, name: str, case: str, mutate: Mutation,
                                           path: str, word: str) -> None:
    detail = refused(post(client, mutate(fixture(name))), path)
    assert word in detail


def test_the_fixtures_themselves_are_accepted(client: FlaskClient) -> None:
    # The mutations above are what is refused, not the fixtures they start from.
    for n, name in enumerate(sorted({case[0] for case in CASES})):
        assert post(client, fixture(name), delivery=f"ok-{n}").status_code == 202, name


def test_adf_at_the_depth_limit_and_instants_at_the_range_edges_are_accepted(client: FlaskClient) -> None:
    deepest = ADF_DEEP["content"][0]  # the text node at ADF_MAX_DEPTH levels
    payload = _set("comment", "body", value=deepest)(fixture("cloud_comment_created_customer.json"))
    assert post(client, payload, delivery="edge-1").status_code == 202
    for n, created in enumerate(["1970-01-01T00:00:00.000+0000", "2199-12-31T23:59:59.999+0000"]):
        payload = _set("issue", "fields", "created", value=created)(fixture("cloud_issue_created.json"))
        assert post(client, payload, delivery=f"edge-{n + 2}").status_code == 202, created
    payload = _set("timestamp", value=7258118399999)(fixture("cloud_issue_updated_status.json"))
    assert post(client, payload, delivery="edge-4").status_code == 202


def test_an_ignored_event_with_a_lone_surrogate_gets_a_delivery_id_and_a_400_for_its_issue(
        client: FlaskClient) -> None:
    # Ignored events are checked for their envelope only; without Jira's identifier header the delivery id
    # is a hash of the body's ids, which must not fail on a lone surrogate (was UnicodeEncodeError: 500).
    payload = {"webhookEvent": "worklog_created\ud800", "timestamp": 1795770000000, "issue": {"id": "\ud800"}}
    refused(post(client, payload, delivery=None), "$.issue.id")
    payload = {"webhookEvent": "worklog_created\ud800", "timestamp": 1795770000000, "issue": {"id": "7"}}
    response = post(client, payload, delivery=None)
    assert response.status_code == 202 and response.get_json()["delivery"].startswith("sha256:")


def test_an_ignored_event_with_a_far_timestamp_is_refused_by_the_envelope(client: FlaskClient) -> None:
    refused(post(client, {"webhookEvent": "worklog_created", "timestamp": 10**17}), "$.timestamp")


def test_the_envelope_bound_is_the_latest_instant() -> None:
    envelope = json.loads((SCHEMA_DIR / "envelope.schema.json").read_text())
    bound = envelope["properties"]["timestamp"]["maximum"]
    assert datetime.fromtimestamp((bound + 1) / 1000, UTC) == LATEST_INSTANT


def test_jira_time_reads_what_strptime_reads_and_never_overflows() -> None:
    assert inbound.jira_time("2026-11-27T10:15:30.1+0530") == datetime(2026, 11, 27, 4, 45, 30, 100000, UTC)
    assert inbound.jira_time("2026-11-27T10:15:30+01:00") == datetime(2026, 11, 27, 9, 15, 30, tzinfo=UTC)
    assert inbound.jira_time("2026-1-2T3:04:05.000+0000") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert inbound.jira_time("2026-11-27T10:15:30.000Z") == datetime(2026, 11, 27, 10, 15, 30, tzinfo=UTC)
    for value in ("2026-11-27T10:15:30+0060", "2026-11-27T24:00:00+0000", "2026-02-30T10:00:00+0000",
                  "2026-11-27T10:15:60.000+0000", "0001-01-01T00:00:00.000+0100", "2026-11-27", 5, None):
        assert inbound.jira_time(value) is None, value


# ---------------------------------------------------------------- outage_start_field

OUTAGE_FIELD = "customfield_10061"
OUTAGE_CASES: list[tuple[str, str, Any, str]] = [
    # fixture, case, the field's value, a word of the detail
    ("cloud_issue_created.json", "a display string on a creation", "27/Nov/26 9:15 AM", "not a Jira"),
    ("cloud_issue_created.json", "a date-time without an offset", "2026-11-27T09:15:00", "not a Jira"),
    ("cloud_issue_created.json", "an impossible date", "2026-02-30", "not a date"),
    ("cloud_issue_created.json", "a date before the epoch", "1969-12-31", "outside the instants"),
    ("cloud_issue_updated_fields.json", "a number on an update", 1795770000000, "not a Jira date-time"),
    ("cloud_issue_updated_fields.json", "an object on an update", {"value": "x"}, "not a Jira date-time"),
]


@pytest.fixture
def mapped_client(redis_conn: redis.Redis) -> FlaskClient:
    instance = {**CLOUD_CONFIG, "outage_start_field": OUTAGE_FIELD}
    cfg = config_from_dict({"instances": {"acme": instance}}, ENV, source="test.yaml")
    return create_app(cfg, redis_conn).test_client()


def _with_outage(name: str, value: Any) -> dict[str, Any]:
    payload = fixture(name)
    payload["issue"]["fields"][OUTAGE_FIELD] = value
    if "changelog" in payload:
        payload["changelog"]["items"].append(
            {"field": "Outage start", "fieldtype": "custom", "fieldId": OUTAGE_FIELD,
             "from": None, "fromString": None, "to": None, "toString": "27/Nov/26 9:15 AM"})
    return payload


@pytest.mark.parametrize(("name", "case", "value", "word"), OUTAGE_CASES, ids=[c[1] for c in OUTAGE_CASES])
def test_an_unreadable_outage_start_field_does_not_cost_the_delivery(
    mapped_client: FlaskClient, name: str, case: str, value: Any, word: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Report-only and optional: left out and logged (adapter tests), the delivery accepted.
    response = post(mapped_client, _with_outage(name, value), delivery=f"unreadable-{case}")
    assert response.status_code == 202, response.get_json()
    assert any(word in getattr(r, "reason", "") for r in caplog.records)


def test_outage_start_values_and_unmapped_fields_are_accepted(client: FlaskClient,
                                                              mapped_client: FlaskClient) -> None:
    for n, value in enumerate(["2026-11-27T09:15:00.000+0100", "2026-11-27", None]):
        for m, name in enumerate(["cloud_issue_created.json", "cloud_issue_updated_fields.json"]):
            response = post(mapped_client, _with_outage(name, value), delivery=f"outage-{n}-{m}")
            assert response.status_code == 202, (value, name, response.get_json())
    # An instance that maps no outage field does not read it, so does not refuse it.
    payload = _with_outage("cloud_issue_created.json", "27/Nov/26 9:15 AM")
    assert post(client, payload, delivery="outage-unmapped").status_code == 202
