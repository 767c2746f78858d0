"""The issue key a Jira payload names, for the connector's key index (never used as the ticket id)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.jira import inbound

FIXTURES = Path(__file__).with_name("fixtures")


def test_the_issue_key_of_a_delivery() -> None:
    payload = json.loads((FIXTURES / "cloud_issue_created.json").read_text())
    assert inbound.display_key(payload) == "SUP-42"
    assert inbound.ticket_id(payload) == "10042"  # the id stays the ticket's name in Redis


@pytest.mark.parametrize("payload", [
    {}, {"issue": None}, {"issue": []}, {"issue": {"id": "1"}}, {"issue": {"key": ""}},
    {"issue": {"key": 42}}, {"issue": {"key": ["SUP-1"]}}, {"issue": {"key": "SUP-\ud800"}},
    {"issue": {"key": "SUP-1\nX"}}, {"issue": {"key": "K" * 256}},
])
def test_no_usable_key_is_none(payload: dict) -> None:
    assert inbound.display_key(payload) is None
