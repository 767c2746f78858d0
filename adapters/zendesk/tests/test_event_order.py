"""Zendesk's comment and audit ids are numbers that grow with time: at one instant, normalised events
keep the order Zendesk recorded them in (issue 9, item 3), however many digits the ids have.

Event webhooks time their events to the nanosecond, so events of two updates rarely share an instant;
`event.meta.sequence.position` is not used, Zendesk says it does not guarantee that order.
"""

from __future__ import annotations

from typing import Any

from adapters.zendesk.backfill import ticket_events
from adapters.zendesk.tests.helpers import adapter, load
from sla.events import EventKind, Role


def normalise(payload: Any) -> list[Any]:
    zd = adapter()
    zd.validate(payload)
    return zd.normalise(payload, {})


def test_two_comments_in_one_instant_keep_zendesks_order() -> None:
    agent = load("event_comment_added_agent")
    agent["event"]["comment"]["id"] = "9999999999999"
    requester = load("event_comment_added_requester")
    requester["event"]["comment"]["id"] = "10000000000000"
    requester["time"] = agent["time"]
    events = sorted([*normalise(requester), *normalise(agent)], key=lambda e: e.sort_key)
    assert [(e.event_id, e.actor) for e in events] == [
        ("zendesk:5158:comment:9999999999999", Role.AGENT),
        ("zendesk:5158:comment:10000000000000", Role.REQUESTER),
    ]


def test_two_audits_in_one_second_end_in_the_later_one() -> None:
    # Backfill reads audits (ids grow with time); two status changes in one second, 999 then 1000.
    ticket = {**load("backfill/export_page2")["tickets"][0], "custom_status_id": None}
    audits = [
        {
            "id": 1000,
            "created_at": "2026-11-24T09:00:00Z",
            "author_id": 77,
            "events": [
                {
                    "id": 1001,
                    "type": "Change",
                    "field_name": "status",
                    "value": "open",
                    "previous_value": "pending",
                }
            ],
        },
        {
            "id": 999,
            "created_at": "2026-11-24T09:00:00Z",
            "author_id": 77,
            "events": [
                {
                    "id": 998,
                    "type": "Change",
                    "field_name": "status",
                    "value": "pending",
                    "previous_value": "open",
                }
            ],
        },
    ]
    events = ticket_events(adapter().settings, ticket, audits, {})
    changes = [
        (e.event_id.rsplit(":", 1)[1], e.fields["status"].value)
        for e in events
        if e.kind is EventKind.CHANGED
    ]
    assert changes == [("999", "pending"), ("1000", "open")]
