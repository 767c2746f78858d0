"""Zendesk backfill: incremental export, audits and users (faked with `responses` from the documented
shapes) become canonical events; creation and comments under the ids trigger webhooks give them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import responses
from responses import matchers

from adapters.base import PayloadError
from adapters.zendesk import backfill
from adapters.zendesk.tests.helpers import BASE, adapter, load
from sla.events import TicketEvent

BACKFILL = Path(__file__).parent / "fixtures" / "backfill"
SINCE = datetime(2026, 11, 22, tzinfo=UTC)
EXPORT = f"{BASE}/api/v2/incremental/tickets/cursor.json"
USED: set[str] = set()


def _events_since(adapter: object) -> list:
    """Per ticket updated since SINCE, its events (what connector.backfill.run reads)."""
    reader = backfill.reader(adapter)  # type: ignore[arg-type]
    return [reader.events(ticket) for ticket in reader.tickets_since(SINCE)]


def fixture(name: str) -> Any:
    USED.add(name)
    return json.loads((BACKFILL / f"{name}.json").read_text())


def fake_zendesk(rsps: responses.RequestsMock) -> None:
    page1 = fixture("export_page1")
    # Registered first, matched first: the second page answers only the first page's cursor.
    rsps.get(EXPORT, json=fixture("export_page2"),
             match=[matchers.query_param_matcher({"cursor": page1["after_cursor"]})])
    start = {"start_time": str(int(SINCE.timestamp()))}
    rsps.get(EXPORT, json=page1, match=[matchers.query_param_matcher(start)])
    audits = f"{BASE}/api/v2/tickets/5158/audits.json"
    rsps.get(audits, json=fixture("audits_5158_page2"),
             match=[matchers.query_param_matcher({"page[after]": "eyJvIjoiaWQiLCJ2IjoiYVFBQUFBQUFBQUFBIn0="},
                                                 strict_match=False)])
    rsps.get(audits, json=fixture("audits_5158_page1"),
             match=[matchers.query_param_matcher({"page[size]": "100"})])
    rsps.get(f"{BASE}/api/v2/tickets/5159/audits.json", json=fixture("audits_5159"))
    rsps.get(f"{BASE}/api/v2/users/show_many.json", json=fixture("users_show_many"))


def run(**settings: Any) -> tuple[list[list[TicketEvent]], list[Any]]:
    with responses.RequestsMock() as rsps:
        fake_zendesk(rsps)
        tickets = list(_events_since(adapter(**settings)))
        return tickets, [c.request for c in rsps.calls]


def plain(event: TicketEvent) -> dict[str, Any]:
    """The stored form without the ticket's creation instant (only some payloads carry it)."""
    data = event.to_dict()
    return {**data, "fields": {k: v for k, v in data["fields"].items() if k != "created_at"}}


def test_creation_and_comments_have_the_trigger_webhook_ids() -> None:
    tickets, _ = run()
    events = {e.event_id: e for e in tickets[0]}
    hooks = {e.event_id: e for name in ("trigger_ticket_created", "trigger_agent_reply")
             for e in adapter().normalise(load(name), {})}
    assert "zendesk:5158:created" in hooks and "zendesk:5158:created" in events
    reply = "zendesk:5158:comment:14543565489940"
    assert plain(events[reply]) == plain(hooks[reply])  # agent, public, at the agent's update
    assert (events["zendesk:5158:created"].at, events["zendesk:5158:created"].actor) == (
        hooks["zendesk:5158:created"].at, hooks["zendesk:5158:created"].actor)


def test_history_of_a_ticket_from_its_audits() -> None:
    tickets, _ = run()
    got = [plain(e) for e in tickets[0]]
    snapshot = {"priority": "high", "type": "incident", "tags": ["enterprise", "export"],
                "group": "8447388093330", "brand": "8447388084370", "organization": "8447388093714",
                    "requester": "8447388090111"}
    assert got == [
        {"event_id": "zendesk:5158:created", "ticket_id": "5158", "kind": "created",
         "at": "2026-11-23T09:12:07+00:00", "actor": "requester", "public": None,
         "fields": {"status": "new", "status_name": "new", "assignee": None, **snapshot}},
        {"event_id": "zendesk:5158:comment:14543565480000", "ticket_id": "5158", "kind": "commented",
         "at": "2026-11-23T09:12:07+00:00", "actor": "requester", "public": True, "fields": {}},
        {"event_id": "zendesk:5158:audit:14543565489900", "ticket_id": "5158", "kind": "changed",
         "at": "2026-11-23T10:15:30+00:00", "actor": "other", "public": None,
         "fields": {"assignee": "8447388090494", "status": "open", "status_name": "open"}},
        {"event_id": "zendesk:5158:comment:14543565489940", "ticket_id": "5158", "kind": "commented",
         "at": "2026-11-23T10:15:30+00:00", "actor": "agent", "public": True, "fields": {}},
        {"event_id": "zendesk:5158:audit:14543565499900", "ticket_id": "5158", "kind": "changed",
         "at": "2026-11-23T11:02:44+00:00", "actor": "other", "public": None,
         "fields": {"status": "pending", "status_name": "pending"}},
        {"event_id": "zendesk:5158:audit:14543565509900", "ticket_id": "5158", "kind": "changed",
         "at": "2026-11-23T11:30:00+00:00", "actor": "connector", "public": None,
         "fields": {"tags": ["enterprise", "export", "sla-warning"]}},
        {"event_id": "zendesk:5158:comment:14543565509901", "ticket_id": "5158", "kind": "commented",
         "at": "2026-11-23T11:30:00+00:00", "actor": "connector", "public": False, "fields": {}},
    ]


def test_export_and_audits_are_paged_and_users_read_once() -> None:
    tickets, calls = run()
    assert [t[0].ticket_id for t in tickets] == ["5158", "5159", "5160"]
    paths = [c.path_url.split("?")[0] for c in calls]
    assert paths.count("/api/v2/incremental/tickets/cursor.json") == 2
    assert paths.count("/api/v2/tickets/5158/audits.json") == 2
    assert paths.count("/api/v2/users/show_many.json") == 1  # 5159's author is known by then
    users = next(c for c in calls if "show_many" in c.url)
    assert users.params["ids"] == "8447388090111,8447388090494,900000000001"
    assert not any("5160" in c.url for c in calls)  # a deleted ticket's audits are not read


def test_custom_status_and_deleted_ticket() -> None:
    tickets, _ = run()
    created = tickets[1][0]
    status = (created.fields["status"], created.fields["status_name"])
    assert status == ("on_hold", "custom_status:8447388091999")  # a mapped custom status wins
    [deleted] = tickets[2]
    assert (deleted.event_id, deleted.kind.value, deleted.at) == (
        "zendesk:5160:deleted", "deleted", datetime(2026, 11, 25, 16, tzinfo=UTC))


def test_an_unmapped_status_is_refused_with_its_name() -> None:
    ticket = {**fixture("export_page2")["tickets"][0], "status": "escalated", "custom_status_id": None}
    with pytest.raises(PayloadError, match="status 'escalated' is not mapped"):
        backfill.ticket_events(adapter().settings, ticket, [], {})


def test_an_unknown_author_is_neither_agent_nor_requester() -> None:
    ticket = fixture("export_page2")["tickets"][0]
    audit = {"id": 1, "created_at": "2026-11-24T09:00:00Z", "author_id": 77,
             "events": [{"id": 2, "type": "Comment", "author_id": 77, "body": "hi", "public": True}]}
    [_, comment] = backfill.ticket_events(adapter().settings, ticket, [audit], {"77": None})
    assert comment.actor.value == "other"


def test_an_organization_change_in_an_audit_is_the_organization_field() -> None:
    ticket = {**fixture("export_page2")["tickets"][0], "organization_id": 900}
    audit = {"id": 1, "created_at": "2026-11-24T09:00:00Z", "author_id": 77,
             "events": [{"id": 2, "type": "Change", "field_name": "organization_id", "value": "900",
                         "previous_value": "800"}]}
    [created, changed] = backfill.ticket_events(adapter().settings, ticket, [audit], {"77": True})
    assert created.fields["organization"] == "800"  # at creation: the change undone
    assert changed.fields == {"organization": "900", "created_at": created.fields["created_at"]}


def test_the_outage_start_field_is_followed_through_the_audits() -> None:
    # 5158's field was set in the agent's first update: empty at creation, the day from that audit on
    # (midnight in the deadline zone, Europe/Berlin); the deadline field beside it is not read.
    tickets, _ = run(outage_start_field=360000123999)
    stated = [(e.event_id, e.fields["outage_start"]) for e in tickets[0] if "outage_start" in e.fields]
    assert stated == [("zendesk:5158:created", None),
                      ("zendesk:5158:audit:14543565489900", "2026-11-22T23:00:00+00:00")]
    assert tickets[1][0].fields["outage_start"] is None  # 5159 has no value
    # Without the setting the same history states none, and the audit is the same change as before.
    tickets, _ = run()
    assert not any("outage_start" in e.fields for e in tickets[0] + tickets[1])


def test_the_backfill_client_waits_longer_than_write_back() -> None:
    made = adapter()
    reader = backfill.reader(made)
    assert reader.http.max_retry_after == backfill.MAX_RETRY_AFTER
    assert made.http().max_retry_after == 10  # the adapter's own client is left as configured


def test_every_backfill_fixture_is_used() -> None:
    run()
    test_an_unmapped_status_is_refused_with_its_name()
    assert {p.stem for p in BACKFILL.glob("*.json")} == USED
