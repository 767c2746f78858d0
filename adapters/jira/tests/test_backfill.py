"""Jira backfill: search, changelog and comments (faked with `responses` from the documented shapes)
become the same canonical events, under the same ids, as the webhooks of the same changes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import responses
from responses import matchers

import adapters.jira as jira
from adapters.jira import backfill
from adapters.jira.config import load_config
from adapters.jira.tests.helpers import CLOUD_CONFIG, CLOUD_URL, DC_CONFIG, DC_URL, ENV, fixture
from sla.events import TicketEvent

BACKFILL = Path(__file__).parent / "fixtures" / "backfill"
SINCE = datetime(2026, 11, 21, tzinfo=UTC)
USED: set[str] = set()


def _events_since(adapter: object) -> list:
    """Per ticket updated since SINCE, its events (what connector.backfill.run reads)."""
    reader = backfill.reader(adapter)  # type: ignore[arg-type]
    return [reader.events(ticket) for ticket in reader.tickets_since(SINCE)]


def load(name: str) -> Any:
    USED.add(name)
    return json.loads((BACKFILL / f"{name}.json").read_text())


def adapter(config: dict[str, Any], **overrides: Any) -> jira.JiraAdapter:
    """The instance `config` with `overrides` (None removes a setting); no real waits."""
    settings = {k: v for k, v in {**config, **overrides}.items() if v is not None}
    return jira.JiraAdapter(load_config("acme", settings, ENV), sleep=lambda s: None)


def webhook(name: str) -> list[TicketEvent]:
    """What the receiver makes of the webhook fixture `name` (no delivery header: ids from Jira's own)."""
    payload = fixture(name)
    return adapter(CLOUD_CONFIG if name.startswith("cloud_") else DC_CONFIG).normalise(payload, {})


def fake_cloud(rsps: responses.RequestsMock) -> None:
    api = f"{CLOUD_URL}/rest/api/3"
    # Registered first, matched first: the second page needs the first page's token.
    rsps.get(f"{api}/search/jql", json=load("cloud_search_page2"),
             match=[matchers.query_param_matcher({"nextPageToken": "CAEaAggD"}, strict_match=False)])
    rsps.get(f"{api}/search/jql", json=load("cloud_search_page1"))
    rsps.get(f"{api}/status", json=load("cloud_statuses"))
    for issue in ("10042", "10043"):
        rsps.get(f"{api}/issue/{issue}/changelog", json=load(f"cloud_changelog_{issue}"))
        rsps.get(f"{api}/issue/{issue}/comment", json=load(f"cloud_comments_{issue}"))


def cloud_backfill() -> tuple[list[list[TicketEvent]], list[Any]]:
    with responses.RequestsMock() as rsps:
        fake_cloud(rsps)
        tickets = list(_events_since(adapter(CLOUD_CONFIG)))
        return tickets, list(rsps.calls)


def by_id(events: list[TicketEvent]) -> dict[str, dict[str, Any]]:
    return {e.event_id: e.to_dict() for e in events}


def partial(event: dict[str, Any]) -> dict[str, Any]:
    """An event without the issue's creation instant (a field only some payloads carry)."""
    return {**event, "fields": {k: v for k, v in event["fields"].items() if k != "created_at"}}


# ---------------------------------------------------------------- same ids as the webhooks


def test_cloud_events_have_the_webhook_ids_and_content() -> None:
    tickets, _ = cloud_backfill()
    got = by_id(tickets[0])
    hooks = by_id(
        webhook("cloud_issue_created.json")
        + webhook("cloud_issue_updated_status.json")
        + webhook("cloud_issue_updated_fields.json")
        + webhook("cloud_issue_updated_commented.json")
        + webhook("cloud_comment_created_customer.json")
    )
    assert sorted(got) == sorted(hooks) == [
        "jira:10042:changelog:10301",
        "jira:10042:changelog:10302",
        "jira:10042:comment:10500",
        "jira:10042:comment:10501",
        "jira:10042:created",
    ]
    # The creation is rebuilt by undoing both changes: the same snapshot the webhook carried.
    assert got["jira:10042:created"] == hooks["jira:10042:created"]
    for comment in ("jira:10042:comment:10500", "jira:10042:comment:10501"):
        # A comment webhook may carry a partial issue without its creation instant; backfill has it.
        assert partial(got[comment]) == partial(hooks[comment])
    # A change is timed by its history (the webhook's delivery comes a moment later): all else equal.
    change, hook = got["jira:10042:changelog:10301"], hooks["jira:10042:changelog:10301"]
    assert change["at"] == "2026-11-27T10:00:00.500000+00:00" < hook["at"]
    assert {**change, "at": None} == {**hook, "at": None}
    assert got["jira:10042:changelog:10302"] == hooks["jira:10042:changelog:10302"]
    assert [e.event_id.removeprefix("jira:10042:") for e in tickets[0]] == [  # sorted by time
        "created", "comment:10500", "changelog:10301", "changelog:10302", "comment:10501"
    ]


def test_dc_first_response_status_and_comment_have_the_webhook_ids() -> None:
    api = f"{DC_URL}/rest/api/2"
    with responses.RequestsMock() as rsps:
        rsps.get(f"{api}/search", json=load("dc_search_page1"),
                 match=[matchers.query_param_matcher({"startAt": "0"}, strict_match=False)])
        rsps.get(f"{api}/search", json=load("dc_search_page2"),
                 match=[matchers.query_param_matcher({"startAt": "1"}, strict_match=False)])
        rsps.get(f"{api}/status", json=load("dc_statuses"))
        for issue in ("20077", "20078"):
            rsps.get(f"{api}/issue/{issue}", json=load(f"dc_issue_{issue}_changelog"),
                     match=[matchers.query_param_matcher({"expand": "changelog", "fields": "status"})])
            rsps.get(f"{api}/issue/{issue}/comment", json=load(f"dc_comments_{issue}"))
        tickets = list(_events_since(adapter(DC_CONFIG)))
    assert [t[0].ticket_id for t in tickets] == ["20077", "20078"]  # both startAt pages
    got = by_id(tickets[0])
    hooks = by_id(
        webhook("dc_issue_updated_first_response_status.json") + webhook("dc_issue_updated_commented.json")
    )
    assert set(hooks) < set(got)
    assert set(got) - set(hooks) == {"jira:20077:created"}
    first = got["jira:20077:changelog:30500:first-response"]
    assert (first["kind"], first["actor"], first["public"]) == ("commented", "agent", True)
    assert partial(got["jira:20077:comment:40001"]) == partial(hooks["jira:20077:comment:40001"])
    # Before the change to Triaged the issue was Open and unassigned.
    created = got["jira:20077:created"]["fields"]
    assert (created["status_name"], created["assignee"]) == ("Open", None)


# ---------------------------------------------------------------- reading


def test_cloud_search_follows_next_page_token_with_the_instance_jql() -> None:
    tickets, calls = cloud_backfill()
    assert [t[0].ticket_id for t in tickets] == ["10042", "10043"]
    searches = [c.request for c in calls if "/search/jql" in c.request.url]
    assert len(searches) == 2
    first = searches[0].params
    # The instance's webhook JQL scopes it; a day early (JQL dates are in the user's zone).
    assert first["jql"] == '(project = SUP) AND updated >= "2026-11-20" ORDER BY created ASC, key ASC'
    assert "nextPageToken" not in first and searches[1].params["nextPageToken"] == "CAEaAggD"
    assert set(first["fields"].split(",")) == set(backfill.FIELDS)
    # The statuses are read once for the whole run.
    assert sum(c.request.url.endswith("/rest/api/3/status") for c in calls) == 1


def test_without_webhook_jql_every_project_is_searched() -> None:
    cfg = adapter(CLOUD_CONFIG, webhook_jql=None).cfg
    assert backfill.search_jql(cfg, SINCE) == 'updated >= "2026-11-20" ORDER BY created ASC, key ASC'


def test_issues_updated_before_since_are_left_out() -> None:
    api = f"{CLOUD_URL}/rest/api/3"
    page = load("cloud_search_page2")  # SUP-43, updated 2026-11-26T09:00Z
    with responses.RequestsMock() as rsps:
        rsps.get(f"{api}/search/jql", json=page)
        reader = backfill.reader(adapter(CLOUD_CONFIG))
        assert list(reader.tickets_since(datetime(2026, 11, 26, 9, 0, 1, tzinfo=UTC))) == []
    with pytest.raises(ValueError, match="timezone-aware"):
        list(reader.tickets_since(datetime(2026, 11, 26)))


def test_a_past_done_status_counts_as_solved_although_the_issue_was_reopened() -> None:
    tickets, _ = cloud_backfill()
    events = {i: partial(e) for i, e in by_id(tickets[1]).items()}
    assert events["jira:10043:created"]["fields"]["status"] == "new"
    assert events["jira:10043:changelog:10401"]["fields"] == {"status": "solved", "status_name": "Done"}
    assert events["jira:10043:changelog:10402"]["fields"] == {"status": "open", "status_name": "In Progress"}
    # Without the categories (as a webhook sees a past status) "Done" would count as open.
    issue = load("cloud_search_page2")["issues"][0]
    histories = load("cloud_changelog_10043")["values"]
    plain = by_id(backfill.issue_events(adapter(CLOUD_CONFIG).cfg, issue, histories, []))
    assert plain["jira:10043:changelog:10401"]["fields"]["status"] == "open"


def test_an_issue_without_created_is_refused() -> None:
    issue = {"id": "1", "fields": {"status": {"name": "Open"}}}
    with pytest.raises(ValueError, match="jira issue 1: no readable `created`"):
        backfill.issue_events(adapter(CLOUD_CONFIG).cfg, issue, [], [])


def test_comments_are_paged() -> None:
    url = f"{CLOUD_URL}/rest/api/3/issue/10042/comment"
    page = load("cloud_comments_10042")
    with responses.RequestsMock() as rsps:
        rsps.get(url, json={**page, "maxResults": 1, "comments": page["comments"][:1]},
                 match=[matchers.query_param_matcher({"startAt": "0"}, strict_match=False)])
        rsps.get(url, json={**page, "startAt": 1, "maxResults": 1, "comments": page["comments"][1:]},
                 match=[matchers.query_param_matcher({"startAt": "1"}, strict_match=False)])
        reader = backfill.reader(adapter(CLOUD_CONFIG))
        assert [c["id"] for c in backfill.comments(reader.client, "10042")] == ["10500", "10501"]
        assert rsps.calls[0].request.params["orderBy"] == "created"


def test_every_backfill_fixture_is_used() -> None:
    cloud_backfill()
    test_dc_first_response_status_and_comment_have_the_webhook_ids()
    assert {p.stem for p in BACKFILL.glob("*.json")} == USED



# ---------------------------------------------------------------- outage_start_field

OUTAGE_FIELD = "customfield_10061"


def _outage_history(history_id: str, created: str, to_string: str | None) -> dict[str, Any]:
    """A change history of the outage field as Jira's changelog gives it (the strings are display text)."""
    author = load("cloud_changelog_10042")["values"][0]["author"]
    item = {"field": "Outage start", "fieldtype": "custom", "fieldId": OUTAGE_FIELD,
            "from": None, "fromString": None, "to": None, "toString": to_string}
    return {"id": history_id, "author": author, "created": created, "items": [item]}


def test_backfill_requests_the_outage_field_and_the_creation_carries_it() -> None:
    api = f"{CLOUD_URL}/rest/api/3"
    page = load("cloud_search_page1")
    page["issues"][0]["fields"][OUTAGE_FIELD] = "2026-11-27T09:15:00.000+0100"
    page = {**page, "isLast": True}
    issue = page["issues"][0]
    with responses.RequestsMock() as rsps:
        rsps.get(f"{api}/search/jql", json=page)
        rsps.get(f"{api}/status", json=load("cloud_statuses"))
        rsps.get(f"{api}/issue/10042/changelog", json=load("cloud_changelog_10042"))
        rsps.get(f"{api}/issue/10042/comment", json=load("cloud_comments_10042"))
        rsps.get(f"{api}/issue/10042", json=issue)
        mapped = adapter(CLOUD_CONFIG, outage_start_field=OUTAGE_FIELD)
        [events] = _events_since(mapped)
        reader = backfill.reader(mapped)
        assert reader.ticket("10042")["id"] == "10042"
        pages = list(reader.changed_pages(SINCE, None, datetime(2026, 11, 28, tzinfo=UTC)))
        assert [i["id"] for _, issues in pages for i in issues] == ["10042"]
        requested = [c.request.params["fields"] for c in rsps.calls if "fields" in c.request.params]
    # Both searches and the single-issue read ask for the instance's field with the others.
    assert len(requested) == 3
    assert all(set(fields.split(",")) == {*backfill.FIELDS, OUTAGE_FIELD} for fields in requested)
    # No history changed the field: it has had its value since the creation.
    got = {e.event_id: e.fields.get("outage_start", "absent") for e in events}
    assert got == {
        "jira:10042:created": "2026-11-27T08:15:00+00:00",
        "jira:10042:changelog:10301": "absent",
        "jira:10042:changelog:10302": "absent",
        "jira:10042:comment:10500": "absent",
        "jira:10042:comment:10501": "absent",
    }
    # The webhook of the creation says the same.
    hook = fixture("cloud_issue_created.json")
    hook["issue"]["fields"][OUTAGE_FIELD] = "2026-11-27T09:15:00.000+0100"
    [created] = mapped.normalise(hook, {})
    assert created.fields["outage_start"] == got["jira:10042:created"]


def test_an_instance_without_the_setting_requests_the_usual_fields() -> None:
    assert backfill.fields_to_read(adapter(CLOUD_CONFIG).cfg) == backfill.FIELDS


def test_the_last_history_that_changed_the_outage_field_carries_its_value() -> None:
    from sla.timeline import build_timeline

    cfg = adapter(CLOUD_CONFIG, outage_start_field=OUTAGE_FIELD).cfg
    issue = load("cloud_search_page1")["issues"][0]
    issue["fields"][OUTAGE_FIELD] = "2026-11-26"  # a Date Picker field, corrected once
    histories = [
        *load("cloud_changelog_10042")["values"],
        _outage_history("10310", "2026-11-27T11:00:00.000+0000", "27/Nov/26"),
        _outage_history("10311", "2026-11-27T12:00:00.000+0000", "26/Nov/26"),
    ]
    events = backfill.issue_events(cfg, issue, histories, [])
    got = {e.event_id: e.fields.get("outage_start", "absent") for e in events}
    # Its value at the creation and after the first setting are not known (the changelog's strings are
    # display text): only the last change states it, with the value the issue has now.
    assert got == {
        "jira:10042:created": "absent",
        "jira:10042:changelog:10301": "absent",
        "jira:10042:changelog:10302": "absent",
        "jira:10042:changelog:10310": "absent",
        "jira:10042:changelog:10311": "2026-11-25T23:00:00+00:00",  # midnight in Europe/Berlin
    }
    assert "outage_start" not in backfill.fields_at_creation(cfg, issue["fields"], histories)
    timeline = build_timeline(events, datetime(2026, 11, 28, tzinfo=UTC))
    assert timeline is not None and timeline.attrs["outage_start"] == "2026-11-25T23:00:00+00:00"
    # The webhook of that last change states the same fields.
    hook = fixture("cloud_issue_updated_fields.json")
    hook["issue"]["fields"][OUTAGE_FIELD] = "2026-11-26"
    hook["changelog"] = {"id": "10311", "items": histories[-1]["items"]}
    [change] = adapter(CLOUD_CONFIG, outage_start_field=OUTAGE_FIELD).normalise(hook, {})
    assert change.fields == next(e for e in events if e.event_id == "jira:10042:changelog:10311").fields
