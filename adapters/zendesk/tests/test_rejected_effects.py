"""Zendesk refuses an effect's value: the rest of the write is still applied, the refused effects
are named in `EffectRejected`. Shape of the refusal (documented for ticket updates): HTTP 422
`{"error": "RecordInvalid", "description": "Record validation errors",
"details": {"<field>": [{"description": "<Field>: ...", "error": "InvalidValue"}]}}`, the field
sometimes under "base" with its name in the description.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import responses

from adapters.base import ApiError, EffectRejected, NotFound
from adapters.zendesk.tests.helpers import BASE, TOKEN, adapter
from sla.effects import Effect, EffectKind

TICKET = f"{BASE}/api/v2/tickets/5158.json"
TAGS = f"{BASE}/api/v2/tickets/5158/tags.json"
COMMENTS = f"{BASE}/api/v2/tickets/5158/comments.json"

DUE = Effect("due", EffectKind.SET_DUE, "2026-11-27T23:30:00+00:00")
PRIO = Effect("action:resolution:breach:priority", EffectKind.SET_PRIORITY, "urgent")
ASSIGN = Effect("action:resolution:breach:assign", EffectKind.SET_ASSIGNEE, "user:900000000042")
TAG = Effect("tag:sla-breached", EffectKind.ADD_TAG, "sla-breached")
NOTE = Effect("comment:resolution:breach", EffectKind.COMMENT, "SLA breached.")


def invalid(**details: str) -> dict[str, Any]:
    return {
        "error": "RecordInvalid",
        "description": "Record validation errors",
        "details": {key: [{"description": text, "error": "InvalidValue"}] for key, text in details.items()},
    }


def sent(call: Any) -> Any:
    return json.loads(call.request.body)


def no_comments() -> None:
    responses.get(COMMENTS, json={"comments": [], "meta": {"has_more": False}, "links": {"next": None}})


@pytest.mark.parametrize(
    "answer",
    [invalid(priority="Priority: is invalid"), invalid(base="Priority: is invalid")],
    ids=["field", "base"],
)
@responses.activate
def test_a_422_on_priority_applies_the_rest_and_rejects_the_priority(answer: dict[str, Any]) -> None:
    no_comments()
    responses.put(TICKET, status=422, json=answer)
    responses.put(TICKET, json={"ticket": {"id": 5158}})
    responses.put(TAGS, json={"tags": ["sla-breached"]})
    with pytest.raises(EffectRejected) as info:
        adapter(deadline_field_id=360001).client().apply("5158", [DUE, TAG, PRIO, ASSIGN, NOTE])
    assert info.value.rejected == {PRIO.key: "Priority: is invalid"}
    assert info.value.applied == [DUE, TAG, ASSIGN, NOTE]
    first, second = (sent(c)["ticket"] for c in responses.calls if c.request.url == TICKET)
    assert first["priority"] == "urgent"
    assert "priority" not in second
    assert second["assignee_id"] == 900000000042
    assert "[sla-connector:resolution:breach]" in second["comment"]["body"]
    assert second["custom_fields"][0]["id"] == 360001
    assert TOKEN not in str(info.value)


@responses.activate
def test_a_422_on_the_assignee_and_then_the_deadline_rejects_both() -> None:
    responses.put(TICKET, status=422, json=invalid(assignee="Assignee: is not a member of the group"))
    responses.put(TICKET, status=422, json=invalid(base="Field 360001: is not a valid date"))
    with pytest.raises(EffectRejected) as info:
        adapter(deadline_field_id=360001).client().apply("5158", [DUE, ASSIGN])
    assert info.value.rejected == {
        ASSIGN.key: "Assignee: is not a member of the group",
        "due": "Field 360001: is not a valid date",
    }
    assert info.value.applied == [] and len(responses.calls) == 2


@responses.activate
def test_a_422_on_the_note_rejects_it_and_writes_the_fields() -> None:
    no_comments()
    responses.put(TICKET, status=422, json=invalid(comment="Comment: author is invalid"))
    responses.put(TICKET, json={"ticket": {"id": 5158}})
    with pytest.raises(EffectRejected) as info:
        adapter().client().apply("5158", [PRIO, NOTE])
    assert list(info.value.rejected) == [NOTE.key] and info.value.applied == [PRIO]
    assert sent(responses.calls[-1]) == {"ticket": {"priority": "urgent"}}


@pytest.mark.parametrize(
    "answer",
    [
        invalid(requester="Requester: Name: is too short"),  # a field we did not send
        invalid(base="Something went wrong"),  # no field in the text
        {"error": "InvalidEndpoint", "description": "Not found"},  # not a validation error
    ],
)
@responses.activate
def test_a_422_naming_none_of_our_effects_is_an_ordinary_error(answer: dict[str, Any]) -> None:
    responses.put(TICKET, status=422, json=answer)
    with pytest.raises(ApiError) as info:
        adapter().client().apply("5158", [PRIO])
    assert type(info.value) is ApiError and info.value.status == 422
    assert len(responses.calls) == 1


@responses.activate
def test_a_closed_ticket_is_still_gone_not_rejected() -> None:
    closed = {"error": "RecordInvalid", "description": "Record validation errors",
              "details": {"status": [{"description": "Status: closed prevents ticket update"}]}}
    responses.put(TICKET, status=422, json=closed)
    with pytest.raises(NotFound):
        adapter().client().apply("5158", [PRIO])


def test_only_a_detail_naming_the_deadline_fields_id_is_the_due_dates() -> None:
    from adapters.zendesk.client import refused_effects

    due = Effect("due:resolution", EffectKind.SET_DUE, "2026-11-27T17:00:00+00:00")

    def refusal(**details: str) -> ApiError:
        exc = ApiError("PUT /api/v2/tickets/5158: HTTP 422", 422)
        exc.body = invalid(**details)
        return exc

    # A number that merely contains the id, or another custom field, is not the deadline's.
    assert refused_effects(refusal(requester="Requester: 3600123 is suspended"), [due], 360012) == {}
    assert refused_effects(refusal(custom_fields="Region (555): is not a valid option"), [due], 360012) == {}
    named = refused_effects(refusal(custom_fields="Due (360012): is not a valid date"), [due], 360012)
    assert list(named) == [due.key]
