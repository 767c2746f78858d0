"""Jira refuses an effect's value: the rest of the write is still applied, the refused effects are
named in `EffectRejected` (the pipeline records them once). Shapes from Jira's REST API: a 400 to
`PUT /rest/api/3/issue/{key}` answers `{"errorMessages": [...], "errors": {"<field id>": "<message>"}}`.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import responses

import adapters.jira as jira
from adapters.base import ApiError, EffectRejected
from adapters.jira.client import adf
from adapters.jira.config import load_config
from adapters.jira.tests.helpers import BASIC, CLOUD_CONFIG, CLOUD_URL, DC_CONFIG, DC_URL, ENV
from sla.effects import Effect, EffectKind, comment_marker

ISSUE = f"{CLOUD_URL}/rest/api/3/issue/10042"
DC_ISSUE = f"{DC_URL}/rest/api/2/issue/20077"
COMMENTS = f"{ISSUE}/comment"

DUE = Effect("due", EffectKind.SET_DUE, "2026-11-27T16:00:00+00:00")
ADD = Effect("tag:sla-warning", EffectKind.ADD_TAG, "sla-warning")
REMOVE = Effect("tag:sla-ok", EffectKind.REMOVE_TAG, "sla-ok")
PRIORITY = Effect("action:resolution:breach:priority", EffectKind.SET_PRIORITY, "urgent")
ASSIGN = Effect("action:resolution:breach:assignee", EffectKind.SET_ASSIGNEE, "5b10ac8d82e05b22cc7d4ef5")
NOTE = Effect("comment:resolution:breach", EffectKind.COMMENT, "Resolution SLA breached.")
NOTE2 = Effect("comment:resolution:late", EffectKind.COMMENT, "Still open.")


@pytest.fixture
def cloud() -> jira.JiraAdapter:
    return jira.JiraAdapter(load_config("acme", CLOUD_CONFIG, ENV), sleep=lambda s: None)


def sent(call: Any) -> Any:
    return json.loads(call.request.body)


def invalid(**errors: str) -> dict[str, Any]:
    return {"errorMessages": [], "errors": errors}


def no_comments() -> None:
    responses.get(COMMENTS, json={"startAt": 0, "maxResults": 100, "total": 0, "comments": []})


@responses.activate
def test_a_400_on_priority_applies_the_rest_of_the_put_and_rejects_it(cloud: jira.JiraAdapter) -> None:
    responses.put(ISSUE, status=400, json=invalid(priority="Specify a valid priority."))
    responses.put(ISSUE, status=204)
    no_comments()
    responses.post(COMMENTS, status=201, json={"id": "10601"})
    with pytest.raises(EffectRejected) as info:
        cloud.client().apply("10042", [DUE, ADD, PRIORITY, ASSIGN, NOTE])
    assert info.value.rejected == {PRIORITY.key: "priority: Specify a valid priority."}
    assert info.value.applied == [DUE, ADD, ASSIGN, NOTE]
    puts = [c for c in responses.calls if c.request.method == "PUT"]
    assert sent(puts[0])["fields"]["priority"] == {"name": "Highest"}
    assert sent(puts[1]) == {
        "fields": {"duedate": "2026-11-27", "assignee": {"accountId": "5b10ac8d82e05b22cc7d4ef5"}},
        "update": {"labels": [{"add": "sla-warning"}]},
    }
    assert [c.request.method for c in responses.calls] == ["PUT", "PUT", "GET", "POST"]
    assert "Basic" not in str(info.value) and BASIC not in str(info.value)


@responses.activate
def test_a_400_naming_labels_rejects_every_label_effect_of_the_put(cloud: jira.JiraAdapter) -> None:
    responses.put(ISSUE, status=400, json=invalid(labels="The label is too long."))
    responses.put(ISSUE, status=204)
    with pytest.raises(EffectRejected) as info:
        cloud.client().apply("10042", [DUE, ADD, REMOVE])
    assert sorted(info.value.rejected) == [REMOVE.key, ADD.key]
    assert info.value.applied == [DUE]
    assert sent(responses.calls[1]) == {"fields": {"duedate": "2026-11-27"}}


@responses.activate
def test_each_field_a_400_names_is_taken_out_until_the_put_succeeds() -> None:
    # Data Center's custom due field, then the assignee on the second try.
    dc = jira.JiraAdapter(load_config("acme", DC_CONFIG, ENV), sleep=lambda s: None)
    responses.put(DC_ISSUE, status=400, json=invalid(customfield_10050="Invalid date format."))
    responses.put(DC_ISSUE, status=400, json=invalid(assignee="User 'dave' does not exist."))
    responses.put(DC_ISSUE, status=204)
    assign = Effect("action:a", EffectKind.SET_ASSIGNEE, "dave")
    with pytest.raises(EffectRejected) as info:
        dc.client().apply("20077", [DUE, ADD, assign])
    assert info.value.rejected == {
        "due": "customfield_10050: Invalid date format.",
        "action:a": "assignee: User 'dave' does not exist.",
    }
    assert info.value.applied == [ADD]
    assert [sorted(sent(c).get("fields", {})) for c in responses.calls] == [
        ["assignee", "customfield_10050"],
        ["assignee"],
        [],
    ]


@responses.activate
def test_when_every_effect_of_the_put_is_refused_nothing_more_is_sent(cloud: jira.JiraAdapter) -> None:
    responses.put(ISSUE, status=400, json=invalid(priority="Specify a valid priority.", duedate="Bad date."))
    with pytest.raises(EffectRejected) as info:
        cloud.client().apply("10042", [DUE, PRIORITY])
    assert set(info.value.rejected) == {"due", PRIORITY.key} and info.value.applied == []
    assert len(responses.calls) == 1


@pytest.mark.parametrize(
    "answer",
    [
        {"errorMessages": ["Field 'summary' cannot be set."], "errors": {}},  # no field named
        invalid(summary="You must specify a summary of the issue."),  # a field we did not send
        None,  # not JSON (a proxy's page)
    ],
)
@responses.activate
def test_a_400_naming_no_field_of_ours_is_an_ordinary_error(cloud: jira.JiraAdapter, answer: Any) -> None:
    if answer is None:
        responses.put(ISSUE, status=400, body="<html>Bad Request</html>")
    else:
        responses.put(ISSUE, status=400, json=answer)
    with pytest.raises(ApiError) as info:
        cloud.client().apply("10042", [DUE, PRIORITY])
    assert type(info.value) is ApiError and info.value.status == 400
    assert len(responses.calls) == 1


@responses.activate
def test_other_errors_of_the_retried_put_are_raised(cloud: jira.JiraAdapter) -> None:
    responses.put(ISSUE, status=400, json=invalid(priority="Specify a valid priority."))
    responses.put(ISSUE, status=403, json={"errorMessages": ["You do not have permission to edit issues."]})
    with pytest.raises(ApiError) as info:
        cloud.client().apply("10042", [DUE, PRIORITY])
    assert info.value.status == 403 and not isinstance(info.value, EffectRejected)


@responses.activate
def test_a_400_to_a_comments_body_rejects_that_comment_only(cloud: jira.JiraAdapter) -> None:
    no_comments()
    # Jira's words (JRASERVER/Cloud): the text field is named `comment`.
    too_long = "The entered text is too long. It exceeds the allowed limit of 32767 characters."
    responses.post(COMMENTS, status=400, json=invalid(comment=too_long))
    responses.post(COMMENTS, status=201, json={"id": "10602"})
    with pytest.raises(EffectRejected) as info:
        cloud.client().apply("10042", [NOTE, NOTE2])
    assert list(info.value.rejected) == [NOTE.key]
    assert "exceeds the allowed limit" in info.value.rejected[NOTE.key]
    assert info.value.applied == [NOTE2]


@responses.activate
def test_a_400_about_a_comments_visibility_is_an_ordinary_error(cloud: jira.JiraAdapter) -> None:
    # A role or group that does not exist is the instance's setup, not this comment's value: it must
    # reach the failed registry (replayable once fixed), not be refused for good ticket by ticket.
    no_comments()
    responses.post(COMMENTS, status=400, json=invalid(commentLevel="Role 'Developers' does not exist."))
    with pytest.raises(ApiError, match="Role 'Developers' does not exist") as info:
        cloud.client().apply("10042", [NOTE, NOTE2])
    assert not isinstance(info.value, EffectRejected)


@responses.activate
def test_a_comment_already_on_the_issue_is_not_posted_again(cloud: jira.JiraAdapter) -> None:
    # The marker check still runs before any post, rejections or not.
    text = f"Resolution SLA breached.\n\n{comment_marker('resolution:breach')}"
    page = {"startAt": 0, "maxResults": 100, "total": 1, "comments": [{"id": "1", "body": adf(text)}]}
    responses.get(COMMENTS, json=page)
    bad = Effect("action:x", EffectKind.SET_PRIORITY, "critical")  # no mapping
    with pytest.raises(EffectRejected) as info:
        cloud.client().apply("10042", [bad, NOTE])
    assert info.value.applied == [NOTE] and list(info.value.rejected) == ["action:x"]
    assert [c.request.method for c in responses.calls] == ["GET"]


@pytest.mark.parametrize("label", ["sla breached", "", "tab\tlabel"])
@responses.activate
def test_a_label_jira_cannot_hold_is_rejected_before_any_call(cloud: jira.JiraAdapter, label: str) -> None:
    responses.put(ISSUE, status=204)
    bad = Effect(f"tag:{label}", EffectKind.ADD_TAG, label)
    with pytest.raises(EffectRejected, match="cannot be empty or contain spaces") as info:
        cloud.client().apply("10042", [bad, DUE])
    assert info.value.applied == [DUE]
    assert sent(responses.calls[0]) == {"fields": {"duedate": "2026-11-27"}}
