"""Jira: every event whose payload carries the issue's `fields.created` states it as `created_at`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

import adapters.jira as jira
from adapters.base import PayloadError
from adapters.jira.tests.helpers import CLOUD_CONFIG, ENV, fixture
from sla.events import EventKind
from sla.timeline import build_timeline

CREATED = datetime.fromisoformat("2026-11-27T09:00:00.123+00:00")
NOW = datetime.fromisoformat("2026-11-27T18:00:00+00:00")


def normalise(payload: Any) -> list[Any]:
    adapter = jira.create("acme", CLOUD_CONFIG, ENV)
    adapter.validate(payload)
    return adapter.normalise(payload, {})


def test_an_issue_first_seen_in_an_update_starts_at_its_creation() -> None:
    events = normalise(fixture("cloud_issue_updated_status.json"))
    assert [(e.kind, e.reported_creation) for e in events] == [(EventKind.CHANGED, CREATED)]
    tl = build_timeline(events, NOW)
    assert tl is not None and tl.created == CREATED


def test_a_comment_with_the_issues_creation_states_it_and_one_without_does_not() -> None:
    payload = fixture("cloud_comment_created_customer.json")
    [event] = normalise(payload)
    assert "created_at" not in event.fields  # Jira's comment deliveries carry a partial issue
    payload["issue"]["fields"]["created"] = "2026-11-27T10:00:00.000+0100"
    [event] = normalise(payload)
    assert event.reported_creation == CREATED.replace(microsecond=0)


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("cloud_issue_updated_fields.json", ["issue", "fields"]),
        ("cloud_issue_deleted.json", ["issue", "fields"]),
        ("cloud_comment_created_customer.json", ["issue", "fields"]),
    ],
)
def test_a_malformed_created_is_refused_with_its_path(name: str, path: list[str]) -> None:
    payload = fixture(name)
    target = payload
    for key in path:
        target = target[key]
    target["created"] = "27/11/2026 09:00"
    with pytest.raises(PayloadError) as info:
        jira.create("acme", CLOUD_CONFIG, ENV).validate(payload)
    assert info.value.path == "$.issue.fields.created"


def test_an_impossible_created_is_refused_with_its_path() -> None:
    payload = fixture("cloud_issue_updated_fields.json")
    payload["issue"]["fields"]["created"] = "2026-13-45T09:00:00.000+0000"  # the form passes the schema
    adapter = jira.create("acme", CLOUD_CONFIG, ENV)
    adapter.validate(payload)
    with pytest.raises(PayloadError, match="not a Jira date-time") as info:
        adapter.normalise(payload, {})
    assert info.value.path == "$.issue.fields.created"


def test_an_update_without_created_states_none() -> None:
    payload = fixture("cloud_issue_updated_fields.json")
    del payload["issue"]["fields"]["created"]
    [event] = normalise(payload)
    assert event.reported_creation is None
