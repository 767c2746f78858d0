"""Inbound: signatures, schemas, ids, and the exact canonical events of every fixture."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import adapters.jira as jira
from adapters.base import PayloadError, SignatureError
from adapters.jira import inbound, users
from adapters.jira.tests.helpers import (
    CLOUD_CONFIG,
    CONNECTOR_ACCOUNT,
    DC_CONFIG,
    ENV,
    FIXTURES,
    config_for,
    fixture,
    fixture_bytes,
    sign,
)
from sla.events import Role

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
AGENT = "5b10ac8d82e05b22cc7d4ef5"
CUSTOMER = "qm:4f0e2b7a-1c9d-4e55-9a2b-7f1d2c3b4a5e:0a1b2c3d-e4f5-4a6b-8c7d-9e0f1a2b3c4d"


CLOUD_CREATED = "2026-11-27T09:00:00.123000+00:00"  # issue.fields.created of the Cloud issue fixtures
DC_CREATED = "2026-11-27T08:30:00+00:00"  # and of the Data Center ones (09:30+0100)


def ev(
    event_id: str,
    ticket: str,
    kind: str,
    at: str,
    actor: str,
    fields: Any = None,
    public: Any = None,
    created_at: str | None = None,
):
    fields = dict(fields or {})
    if created_at is not None:
        fields["created_at"] = created_at
    return {
        "event_id": event_id,
        "ticket_id": ticket,
        "kind": kind,
        "at": at,
        "actor": actor,
        "fields": fields,
        "public": public,
    }


EXPECTED: dict[str, list[dict[str, Any]]] = {
    "cloud_issue_created.json": [
        ev(
            "jira:10042:created",
            "10042",
            "created",
            "2026-11-27T09:00:00.123000+00:00",
            "requester",
            {
                "status": "new",
                "status_name": "Waiting for support",
                "priority": "high",
                "type": "Service request",
                "tags": ["billing", "vip"],
                "assignee": None,
                "project": "SUP",
                "requester": CUSTOMER,
                "key": "SUP-42",
            },
            created_at=CLOUD_CREATED,
        )
    ],
    "cloud_issue_updated_status.json": [
        ev(
            "jira:10042:changelog:10301",
            "10042",
            "changed",
            "2026-11-27T10:00:00.789000+00:00",
            "agent",
            {"status": "pending", "status_name": "Waiting for customer"},
            created_at=CLOUD_CREATED,
        )
    ],
    "cloud_issue_updated_fields.json": [
        ev(
            "jira:10042:changelog:10302",
            "10042",
            "changed",
            "2026-11-27T10:15:00+00:00",
            "agent",
            {
                "priority": "urgent",
                "tags": ["billing", "outage", "vip"],
                "assignee": AGENT,
                "type": "Incident",
            },
            created_at=CLOUD_CREATED,
        )
    ],
    "cloud_issue_updated_resolved.json": [
        ev(
            "jira:10042:changelog:10310",
            "10042",
            "changed",
            "2026-11-27T12:00:00+00:00",
            "agent",
            {"status": "solved", "status_name": "Resolved"},
            created_at=CLOUD_CREATED,
        )
    ],
    "cloud_issue_updated_commented.json": [
        ev(
            "jira:10042:comment:10500",
            "10042",
            "commented",
            "2026-11-27T09:50:00.321000+00:00",
            "agent",
            public=True,
            created_at=CLOUD_CREATED,
        )
    ],
    "cloud_comment_created_customer.json": [
        ev(
            "jira:10042:comment:10501",
            "10042",
            "commented",
            "2026-11-27T11:00:00+00:00",
            "requester",
            public=True,
        )
    ],
    "cloud_comment_created_internal.json": [
        ev(
            "jira:10042:comment:10502",
            "10042",
            "commented",
            "2026-11-27T11:05:00+00:00",
            "agent",
            public=False,
        )
    ],
    "cloud_comment_created_connector.json": [
        ev(
            "jira:10042:comment:10503",
            "10042",
            "commented",
            "2026-11-27T11:13:20+00:00",
            "connector",
            public=False,
        )
    ],
    "cloud_issue_updated_connector_labels.json": [
        ev(
            "jira:10042:changelog:10320",
            "10042",
            "changed",
            "2026-11-27T11:15:00+00:00",
            "connector",
            {"tags": ["billing", "sla-warning", "vip"]},
            created_at=CLOUD_CREATED,
        )
    ],
    "cloud_comment_created_app.json": [
        ev(
            "jira:10042:comment:10504",
            "10042",
            "commented",
            "2026-11-27T11:16:40+00:00",
            "other",
            public=True,
        )
    ],
    "cloud_issue_deleted.json": [
        ev(
            "jira:10042:deleted",
            "10042",
            "deleted",
            "2026-11-27T14:33:20+00:00",
            "agent",
            created_at=CLOUD_CREATED,
        )
    ],
    "cloud_comment_updated.json": [],
    "cloud_worklog_created.json": [],
    "dc_issue_created.json": [
        ev(
            "jira:20077:created",
            "20077",
            "created",
            "2026-11-27T08:30:00+00:00",
            "requester",
            {
                "status": "new",
                "status_name": "Open",
                "priority": "normal",
                "type": "Bug",
                "tags": [],
                "assignee": None,
                "project": "OPS",
                "requester": "rita",
                "key": "OPS-77",
            },
            created_at=DC_CREATED,
        )
    ],
    "dc_issue_updated_first_response_status.json": [
        ev(
            "jira:20077:changelog:30500",
            "20077",
            "changed",
            "2026-11-27T09:00:00+00:00",
            "agent",
            {"status": "open", "status_name": "Triaged", "assignee": "dave"},
            created_at=DC_CREATED,
        ),
        ev(
            "jira:20077:changelog:30500:first-response",
            "20077",
            "commented",
            "2026-11-27T09:00:00+00:00",
            "agent",
            public=True,
            created_at=DC_CREATED,
        ),
    ],
    "dc_issue_updated_commented.json": [
        ev(
            "jira:20077:comment:40001",
            "20077",
            "commented",
            "2026-11-27T09:30:00+00:00",
            "requester",
            public=True,
            created_at=DC_CREATED,
        )
    ],
    "dc_comment_created_restricted.json": [
        ev(
            "jira:20077:comment:40002",
            "20077",
            "commented",
            "2026-11-27T09:40:00+00:00",
            "agent",
            public=False,
        )
    ],
    "dc_comment_created_connector.json": [
        ev(
            "jira:20077:comment:40003",
            "20077",
            "commented",
            "2026-11-27T09:45:00+00:00",
            "connector",
            public=True,
        )
    ],
}


def adapter_for(name: str) -> jira.JiraAdapter:
    return jira.create("acme", config_for(name), ENV)


def check_fixture(name: str, expected: list[dict[str, Any]]) -> None:
    """Verify the signed raw body, validate, normalise: the events must be exactly `expected`."""
    adapter = adapter_for(name)
    body = fixture_bytes(name)
    headers = {"x-hub-signature": sign(body), "x-atlassian-webhook-identifier": f"delivery-{name}"}
    adapter.verify(headers, body, NOW)
    payload = json.loads(body)
    adapter.validate(payload)
    events = adapter.normalise(payload, headers)
    assert [e.to_dict() for e in events] == expected
    # A redelivery yields the same ids: the log dedupes it.
    again = adapter.normalise(json.loads(body), {**headers, "x-atlassian-webhook-retry": "1"})
    assert [e.event_id for e in again] == [e.event_id for e in events]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_normalises_to_exact_events(name: str) -> None:
    check_fixture(name, EXPECTED[name])


def test_every_fixture_is_used() -> None:
    on_disk = {p.name for p in FIXTURES.glob("*.json")}
    assert on_disk == set(EXPECTED), f"unused: {on_disk - set(EXPECTED)}, missing: {set(EXPECTED) - on_disk}"


def test_every_fixture_event_is_declared() -> None:
    for name in EXPECTED:
        event = fixture(name)["webhookEvent"]
        assert event in inbound.SUPPORTED | inbound.IGNORED, f"{name}: undeclared event {event}"


def test_dispatch_matches_supported_and_sets_are_disjoint() -> None:
    assert set(inbound.DISPATCH) == inbound.SUPPORTED
    assert not inbound.SUPPORTED & inbound.IGNORED


def test_classify() -> None:
    assert inbound.classify(fixture("cloud_issue_created.json")) == "supported"
    assert inbound.classify(fixture("cloud_worklog_created.json")) == "ignored"
    assert inbound.classify({"webhookEvent": "brand_new_event", "timestamp": 1}) == "unknown"


def test_unknown_event_is_accepted_and_yields_nothing() -> None:
    adapter = adapter_for("cloud_x")
    payload = {"webhookEvent": "jira:something_new", "timestamp": 1795770000000, "thing": {}}
    adapter.validate(payload)
    assert adapter.normalise(payload, {}) == []


# ---------------------------------------------------------------- signatures

BODY = fixture_bytes("cloud_issue_created.json")


@pytest.fixture
def cloud() -> jira.JiraAdapter:
    return jira.create("acme", CLOUD_CONFIG, ENV)


def test_valid_signature_passes(cloud: jira.JiraAdapter) -> None:
    cloud.verify({"x-hub-signature": sign(BODY)}, BODY, NOW)


def test_uppercase_hex_digest_passes(cloud: jira.JiraAdapter) -> None:
    cloud.verify({"x-hub-signature": sign(BODY).upper().replace("SHA256=", "sha256=")}, BODY, NOW)


def test_missing_signature_is_refused(cloud: jira.JiraAdapter) -> None:
    with pytest.raises(SignatureError, match="missing X-Hub-Signature"):
        cloud.verify({}, BODY, NOW)


def test_missing_signature_without_automation_names_only_the_hub_header() -> None:
    adapter = jira.create("acme", DC_CONFIG, ENV)
    with pytest.raises(SignatureError, match=r"^missing X-Hub-Signature header$"):
        adapter.verify({}, BODY, NOW)


def test_wrong_signature_is_refused(cloud: jira.JiraAdapter) -> None:
    with pytest.raises(SignatureError, match="does not match"):
        cloud.verify({"x-hub-signature": sign(BODY, "other-secret")}, BODY, NOW)


def test_tampered_body_is_refused(cloud: jira.JiraAdapter) -> None:
    with pytest.raises(SignatureError, match="does not match"):
        cloud.verify({"x-hub-signature": sign(BODY)}, BODY + b" ", NOW)


@pytest.mark.parametrize(
    "value, message",
    [
        ("sha1=" + "a" * 40, "only sha256"),
        ("sha512=" + "a" * 128, "only sha256"),
        ("sha256", "malformed"),
        ("sha256=", "malformed"),
        ("sha256=xyz", "not 64 hex"),
        ("sha256=" + "a" * 63, "not 64 hex"),
    ],
)
def test_malformed_or_other_method_is_refused(cloud: jira.JiraAdapter, value: str, message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        cloud.verify({"x-hub-signature": value}, BODY, NOW)


def test_signature_errors_never_contain_the_secret(cloud: jira.JiraAdapter) -> None:
    for headers in ({}, {"x-hub-signature": sign(BODY, "x")}, {"x-automation-secret": "nope"}):
        with pytest.raises(SignatureError) as info:
            cloud.verify(headers, BODY, NOW)
        assert ENV["JIRA_WEBHOOK_SECRET"] not in str(info.value)
        assert ENV["JIRA_AUTOMATION_SECRET"] not in str(info.value)


def test_automation_shared_secret_header(cloud: jira.JiraAdapter) -> None:
    cloud.verify({"x-automation-secret": ENV["JIRA_AUTOMATION_SECRET"]}, BODY, NOW)
    with pytest.raises(SignatureError, match="x-automation-secret does not match"):
        cloud.verify({"x-automation-secret": "guess"}, BODY, NOW)


def test_automation_header_name_is_configurable() -> None:
    adapter = jira.create("acme", {**CLOUD_CONFIG, "automation_header": "X-Sla-Token"}, ENV)
    adapter.verify({"x-sla-token": ENV["JIRA_AUTOMATION_SECRET"]}, BODY, NOW)
    with pytest.raises(SignatureError, match="missing X-Hub-Signature and x-sla-token"):
        adapter.verify({"x-automation-secret": ENV["JIRA_AUTOMATION_SECRET"]}, BODY, NOW)


def test_automation_header_is_refused_when_not_configured() -> None:
    adapter = jira.create("acme", DC_CONFIG, ENV)
    with pytest.raises(SignatureError, match="missing X-Hub-Signature"):
        adapter.verify({"x-automation-secret": ENV["JIRA_AUTOMATION_SECRET"]}, BODY, NOW)


def test_signed_delivery_refused_when_only_automation_is_configured() -> None:
    config = {k: v for k, v in CLOUD_CONFIG.items() if k != "webhook_secret_env"}
    adapter = jira.create("acme", config, ENV)
    with pytest.raises(SignatureError, match="no webhook_secret_env"):
        adapter.verify({"x-hub-signature": sign(BODY)}, BODY, NOW)


def test_adapter_sign_is_what_jira_sends_and_verify_accepts(cloud: jira.JiraAdapter) -> None:
    headers = cloud.sign(BODY, NOW)
    assert headers == {"X-Hub-Signature": sign(BODY)}  # an admin webhook's signature wins
    cloud.verify({k.lower(): v for k, v in headers.items()}, BODY, NOW)
    assert cloud.delivery_headers("t-1") == {"X-Atlassian-Webhook-Identifier": "t-1"}
    payload = fixture("cloud_issue_created.json")
    assert inbound.delivery_id({"x-atlassian-webhook-identifier": "t-1"}, payload) == "t-1"


def test_adapter_sign_sends_the_automation_secret_when_only_that_is_configured() -> None:
    config = {k: v for k, v in CLOUD_CONFIG.items() if k != "webhook_secret_env"}
    adapter = jira.create("acme", {**config, "automation_header": "X-Sla-Token"}, ENV)
    headers = adapter.sign(BODY, NOW)
    assert headers == {"x-sla-token": ENV["JIRA_AUTOMATION_SECRET"]}
    adapter.verify(headers, BODY, NOW)


# ---------------------------------------------------------------- schemas


@pytest.mark.parametrize(
    "mutate, path",
    [
        (lambda p: p.pop("webhookEvent"), "$"),
        (lambda p: p.update(timestamp="yesterday"), "$.timestamp"),
        (lambda p: p["issue"].pop("id"), "$.issue"),
        (lambda p: p["issue"]["fields"]["status"].pop("name"), "$.issue.fields.status"),
        (lambda p: p["issue"]["fields"].update(labels="billing vip"), "$.issue.fields.labels"),
        (lambda p: p.update(changelog={"items": [{"toString": "x"}]}), "$.changelog.items[0]"),
    ],
)
def test_schema_failure_names_the_path(mutate: Any, path: str) -> None:
    payload = fixture("cloud_issue_updated_status.json")
    mutate(payload)
    with pytest.raises(PayloadError) as info:
        inbound.validate(payload)
    assert info.value.path == path
    assert str(info.value).startswith(path + ": ")


def test_comment_schema_requires_an_author() -> None:
    payload = fixture("cloud_comment_created_customer.json")
    del payload["comment"]["author"]
    with pytest.raises(PayloadError, match="author") as info:
        inbound.validate(payload)
    assert info.value.path == "$.comment"


def test_comment_body_must_be_string_or_adf() -> None:
    payload = fixture("dc_comment_created_restricted.json")
    payload["comment"]["body"] = 42
    with pytest.raises(PayloadError) as info:
        inbound.validate(payload)
    assert info.value.path == "$.comment.body"


def test_non_object_payload_is_refused() -> None:
    with pytest.raises(PayloadError) as info:
        inbound.validate(["not", "jira"])
    assert info.value.path == "$"


# ---------------------------------------------------------------- ids


def test_delivery_id_is_the_atlassian_identifier() -> None:
    payload = fixture("cloud_issue_created.json")
    assert inbound.delivery_id({"x-atlassian-webhook-identifier": "abc-123"}, payload) == "abc-123"


def test_delivery_id_fallback_is_stable_and_distinguishes_events() -> None:
    payload = fixture("cloud_comment_created_customer.json")
    first = inbound.delivery_id({}, payload)
    assert first.startswith("sha256:") and len(first) == 7 + 64
    assert inbound.delivery_id({}, fixture("cloud_comment_created_customer.json")) == first
    payload["comment"]["id"] = "10999"
    assert inbound.delivery_id({}, payload) != first
    other = fixture("cloud_issue_updated_status.json")
    assert inbound.delivery_id({}, other) != inbound.delivery_id(
        {}, fixture("cloud_issue_updated_fields.json")
    )


def test_ticket_id_is_the_issue_id() -> None:
    assert inbound.ticket_id(fixture("cloud_issue_created.json")) == "10042"
    assert inbound.ticket_id({"webhookEvent": "jira:issue_created", "issue": {"id": 7, "key": "A-1"}}) == "7"
    assert inbound.ticket_id(fixture("cloud_worklog_created.json")) is None


def test_changelog_without_id_falls_back_to_the_delivery_id() -> None:
    adapter = jira.create("acme", CLOUD_CONFIG, ENV)
    payload = fixture("cloud_issue_updated_status.json")
    del payload["changelog"]["id"]
    events = adapter.normalise(payload, {"x-atlassian-webhook-identifier": "dlv-9"})
    assert [e.event_id for e in events] == ["dlv-9"]


# ---------------------------------------------------------------- roles, bodies, statuses


def cfg(**overrides: Any):
    return jira.create("acme", {**CLOUD_CONFIG, **overrides}, ENV).cfg


def test_roles_precedence() -> None:
    config = cfg(agents={"users": ["listed-user"]})
    reporter = {"accountId": "r1", "accountType": "atlassian"}
    fields = {"reporter": reporter}
    assert users.actor_role(config, {"accountId": CONNECTOR_ACCOUNT}, fields) is Role.CONNECTOR
    assert users.actor_role(config, reporter, fields) is Role.REQUESTER
    assert users.actor_role(config, {"accountId": "c", "accountType": "customer"}, fields) is Role.REQUESTER
    assert users.actor_role(config, {"accountId": "a", "accountType": "atlassian"}, fields) is Role.AGENT
    assert users.actor_role(config, {"accountId": "listed-user", "accountType": "app"}, fields) is Role.AGENT
    assert users.actor_role(config, {"accountId": "bot", "accountType": "app"}, fields) is Role.OTHER
    assert users.actor_role(config, None, fields) is Role.OTHER
    assert users.actor_role(config, {"accountId": "x"}, fields, "note [sla-connector:k]") is Role.CONNECTOR


def test_listed_only_agents() -> None:
    config = cfg(agents={"users": ["a2"], "default": "listed_only"})
    assert users.actor_role(config, {"accountId": "a1", "accountType": "atlassian"}, {}) is Role.OTHER
    assert users.actor_role(config, {"accountId": "a2", "accountType": "atlassian"}, {}) is Role.AGENT


def test_data_center_users_match_by_name_or_key() -> None:
    config = jira.create("acme", {**DC_CONFIG, "agents": {"users": ["JIRAUSER10100"]}}, ENV).cfg
    assert users.actor_role(config, {"name": "sla-bot", "key": "JIRAUSER10300"}, {}) is Role.CONNECTOR
    assert users.actor_role(config, {"name": "dave", "key": "JIRAUSER10100"}, {}) is Role.AGENT
    assert users.actor_role(config, {"name": "rita"}, {"reporter": {"name": "rita"}}) is Role.REQUESTER


def test_body_text_of_string_and_adf() -> None:
    assert users.body_text("plain") == "plain"
    doc = {
        "type": "doc",
        "version": 1,
        "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": "a"}, {"type": "hardBreak"}]},
            {
                "type": "bulletList",
                "content": [{"type": "listItem", "content": [{"type": "text", "text": "b"}]}],
            },
        ],
    }
    assert users.body_text(doc) == "ab"
    assert users.body_text(None) == ""


def test_public_flags() -> None:
    assert users.is_public({}) is True
    assert users.is_public({"jsdPublic": True}) is True
    assert users.is_public({"jsdPublic": False}) is False
    assert users.is_public({"visibility": {"type": "group", "value": "jira-servicedesk-users"}}) is False
    internal = {"jsdPublic": True, "properties": [{"key": "sd.public.comment", "value": {"internal": True}}]}
    assert users.is_public(internal) is False


def test_status_mapping_any_casing_and_override() -> None:
    config = jira.create("acme", DC_CONFIG, ENV).cfg
    assert inbound.status_of(config, "WAITING FOR CUSTOMER", "indeterminate") == "pending"
    assert inbound.status_of(config, "blocked by vendor", "indeterminate") == "on_hold"
    assert inbound.status_of(config, "Done", "done") == "solved"
    assert inbound.status_of(config, "Backlog", "new") == "new"
    assert inbound.status_of(config, "Odd", "undefined") == "open"


def test_status_change_whose_snapshot_moved_on_uses_the_map_or_open() -> None:
    adapter = jira.create("acme", CLOUD_CONFIG, ENV)
    payload = fixture("cloud_issue_updated_resolved.json")
    payload["changelog"]["items"][1]["toString"] = "Closed"  # the snapshot still says Resolved
    (event,) = adapter.normalise(payload, {})
    assert event.fields == {"status": "open", "status_name": "Closed", "created_at": CLOUD_CREATED}


def test_first_response_status_by_non_agent_adds_nothing() -> None:
    adapter = jira.create("acme", DC_CONFIG, ENV)
    payload = fixture("dc_issue_updated_first_response_status.json")
    payload["user"] = {"name": "rita", "key": "JIRAUSER10200"}  # the reporter moved it
    events = adapter.normalise(payload, {})
    assert [(e.kind.value, e.actor.value) for e in events] == [("changed", "requester")]


def test_unmapped_priority_passes_through_lower_cased() -> None:
    config = cfg(priorities={"P1": "urgent"})
    assert config.canonical_priority("p1") == "urgent"
    assert config.canonical_priority("Blocker") == "blocker"
    assert config.canonical_priority(None) is None


def test_comment_without_issue_takes_the_issue_from_the_comment_url() -> None:
    adapter = jira.create("acme", DC_CONFIG, ENV)
    payload = fixture("dc_comment_created_restricted.json")
    del payload["issue"]
    adapter.validate(payload)
    assert adapter.ticket_id(payload) == "20077"
    assert [e.event_id for e in adapter.normalise(payload, {})] == ["jira:20077:comment:40002"]
    del payload["comment"]["self"]
    with pytest.raises(PayloadError, match="'self' is a required property") as info:
        adapter.validate(payload)
    assert info.value.path == "$.comment"


def test_data_center_changelog_user_key_becomes_the_snapshot_name() -> None:
    adapter = jira.create("acme", DC_CONFIG, ENV)
    payload = fixture("dc_issue_updated_first_response_status.json")
    payload["changelog"]["items"][1]["to"] = "JIRAUSER10100"  # newer Data Center: the user key
    changed = adapter.normalise(payload, {})[0]
    assert changed.fields["assignee"] == "dave"
    payload["issue"]["fields"]["assignee"] = None  # the snapshot moved on: keep what the changelog says
    assert adapter.normalise(payload, {})[0].fields["assignee"] == "JIRAUSER10100"


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=512), secret=st.text(min_size=1, max_size=40).filter(str.strip),
       flip=st.integers(min_value=0))
def test_signature_round_trip_and_any_changed_byte_fails(body: bytes, secret: str, flip: int) -> None:
    config = jira.create("acme", DC_CONFIG, {**ENV, "JIRA_WEBHOOK_SECRET": secret}).cfg
    headers = {"x-hub-signature": sign(body, secret)}
    inbound.verify(config, headers, body)
    if body:
        i = flip % len(body)
        changed = body[:i] + bytes([body[i] ^ 0x01]) + body[i + 1 :]
        with pytest.raises(SignatureError):
            inbound.verify(config, headers, changed)


def test_ignored_event_with_odd_shapes_still_gets_ids() -> None:
    payload = {"webhookEvent": "worklog_created", "timestamp": 1, "issue": "10042", "comment": ["x"]}
    inbound.validate(payload)
    assert inbound.delivery_id({}, payload).startswith("sha256:")
    assert inbound.ticket_id(payload) is None
    assert inbound.normalise(jira.create("acme", CLOUD_CONFIG, ENV).cfg, payload, {}) == []
