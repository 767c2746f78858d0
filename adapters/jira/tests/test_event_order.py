"""Jira's changelog and comment ids are numbers that grow with time: at one instant, normalised events
keep the order Jira recorded them in (issue 9, item 3), however many digits the ids have."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import adapters.jira as jira
from adapters.jira.tests.helpers import CLOUD_CONFIG, ENV, fixture
from sla.events import Role, Status
from sla.timeline import build_timeline

NOW = datetime.fromisoformat("2026-11-27T18:00:00+00:00")
SAME = "2026-11-27T11:00:00.000+0000"


def normalise(payload: Any) -> list[Any]:
    adapter = jira.create("acme", CLOUD_CONFIG, ENV)
    adapter.validate(payload)
    return adapter.normalise(payload, {})


def test_two_comments_in_one_millisecond_keep_jiras_order() -> None:
    agent = fixture("cloud_issue_updated_commented.json")
    agent["comment"].update(id="999", created=SAME)
    customer = fixture("cloud_comment_created_customer.json")
    customer["comment"].update(id="1000", created=SAME)
    events = [*normalise(customer), *normalise(agent)]
    assert [e.event_id for e in sorted(events, key=lambda e: e.sort_key)] == [
        "jira:10042:comment:999",
        "jira:10042:comment:1000",
    ]
    assert [e.actor for e in sorted(events, key=lambda e: e.sort_key)] == [Role.AGENT, Role.REQUESTER]


def test_two_transitions_in_one_millisecond_end_in_the_later_one() -> None:
    waiting = fixture("cloud_issue_updated_status.json")
    waiting["changelog"]["id"] = "999"
    back = fixture("cloud_issue_updated_status.json")
    back["changelog"]["id"] = "1000"
    item = back["changelog"]["items"][0]
    item.update(toString="In Progress", to="3")
    [first] = normalise(waiting)
    [second] = normalise(back)
    assert (first.fields["status"], second.fields["status"]) == (Status.PENDING, Status.OPEN)
    tl = build_timeline([second, first], NOW)
    assert tl is not None and tl.statuses[-1][1] is Status.OPEN
