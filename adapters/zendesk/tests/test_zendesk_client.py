"""Write-back and read side against Zendesk's API faked at the HTTP layer with `responses`."""

from __future__ import annotations

import base64
import json
import logging

import pytest
import requests
import responses
from responses import matchers

from adapters.base import (
    ApiError,
    Conflict,
    EffectRejected,
    Forbidden,
    NotFound,
    RateLimited,
    ServerError,
    Timeout,
    Unauthorized,
)
from adapters.zendesk.tests.helpers import BASE, BEARER, CONNECTOR_USER, EMAIL, TOKEN, adapter
from sla.effects import Effect, EffectKind, comment_marker

TICKET = f"{BASE}/api/v2/tickets/5158.json"
TAGS = f"{BASE}/api/v2/tickets/5158/tags.json"
COMMENTS = f"{BASE}/api/v2/tickets/5158/comments.json"
BASIC = "Basic " + base64.b64encode(f"{EMAIL}/token:{TOKEN}".encode()).decode()

DUE = Effect("due", EffectKind.SET_DUE, "2026-11-27T23:30:00+00:00")
PRIO = Effect("action:resolution:breach:priority", EffectKind.SET_PRIORITY, "urgent")
ASSIGN = Effect("action:resolution:breach:assign", EffectKind.SET_ASSIGNEE, "group:8447388093999")
TAG_ADD = Effect("tag:sla-breached", EffectKind.ADD_TAG, "sla-breached")
TAG_ADD2 = Effect("tag:sla-warning", EffectKind.ADD_TAG, "sla-warning")
TAG_DEL = Effect("tag:sla-ok", EffectKind.REMOVE_TAG, "sla-ok")
NOTE_OLD = Effect(
    "comment:resolution:warn75",
    EffectKind.COMMENT,
    "SLA warning: 75% of the resolution target used.\n\n" + comment_marker("resolution:warn75"),
)
NOTE_NEW = Effect("comment:resolution:breach", EffectKind.COMMENT, "SLA breached: resolution target missed.")


def body(call: responses.Call) -> object:
    return json.loads(call.request.body)


def comments_page(comments: list[dict], next_url: str | None) -> dict:
    # Cursor pagination shape of GET /api/v2/tickets/{id}/comments (page[size]).
    return {
        "comments": comments,
        "meta": {"has_more": next_url is not None, "after_cursor": "xyz" if next_url else None},
        "links": {"next": next_url, "prev": None},
    }


def comment(cid: int, text: str, public: bool = False) -> dict:
    return {
        "id": cid,
        "type": "Comment",
        "author_id": 900000000001,
        "body": text,
        "plain_body": text,
        "public": public,
        "created_at": "2026-11-23T13:00:01Z",
    }


@responses.activate
def test_apply_coalesces_everything_into_one_ticket_put_and_two_tag_calls() -> None:
    page2 = f"{COMMENTS}?page%5Bsize%5D=100&page%5Bafter%5D=xyz"
    responses.get(
        COMMENTS,
        json=comments_page([comment(1, "Customer text", True)], page2),
        match=[matchers.query_param_matcher({"page[size]": "100"})],
    )
    responses.get(page2, json=comments_page([comment(2, NOTE_OLD.value)], None))
    responses.put(TICKET, json={"ticket": {"id": 5158}, "audit": {"id": 1}})
    responses.put(TAGS, json={"tags": ["enterprise", "sla-breached", "sla-warning"]})
    responses.delete(TAGS, json={"tags": ["enterprise", "sla-breached", "sla-warning"]})

    effects = [DUE, TAG_ADD, TAG_ADD2, TAG_DEL, NOTE_OLD, NOTE_NEW, PRIO, ASSIGN]
    applied = adapter().client().apply("5158", effects)

    assert applied == effects
    calls = responses.calls
    assert [(c.request.method, c.request.url.split("?")[0]) for c in calls] == [
        ("GET", COMMENTS),
        ("GET", COMMENTS),
        ("PUT", TICKET),
        ("PUT", TAGS),
        ("DELETE", TAGS),
    ]
    for call in calls:
        assert call.request.headers["Authorization"] == BASIC
        assert call.request.headers["Accept"] == "application/json"
        assert call.request.req_kwargs["timeout"] == (5.0, 30.0)
    for call in calls[2:]:
        assert call.request.headers["Content-Type"] == "application/json"
    assert body(calls[2]) == {
        "ticket": {
            # 23:30 UTC is already the 28th in Berlin, the configured deadline zone.
            "custom_fields": [{"id": 360000123456, "value": "2026-11-28"}],
            "priority": "urgent",
            "group_id": 8447388093999,
            # Only the note whose marker is not on the ticket yet, as a private note.
            "comment": {
                "body": "SLA breached: resolution target missed.\n\n[sla-connector:resolution:breach]",
                "public": False,
            },
        }
    }
    assert "tags" not in body(calls[2])["ticket"]  # a ticket PUT with tags would replace them all
    assert body(calls[3]) == {"tags": ["sla-breached", "sla-warning"]}
    assert body(calls[4]) == {"tags": ["sla-ok"]}


@responses.activate
def test_several_new_notes_share_one_put_each_with_its_marker() -> None:
    responses.get(COMMENTS, json=comments_page([], None))
    responses.put(TICKET, json={"ticket": {"id": 5158}})
    other = Effect("comment:first_response:warn", EffectKind.COMMENT, "First response due soon.")
    author = adapter(comment_author_id="900000000001")
    assert author.client().apply("5158", [NOTE_NEW, other]) == [NOTE_NEW, other]
    sent = body(responses.calls[1])["ticket"]["comment"]
    assert sent == {
        "body": "SLA breached: resolution target missed.\n\n[sla-connector:resolution:breach]"
        "\n\n---\n\nFirst response due soon.\n\n[sla-connector:first_response:warn]",
        "public": False,
        "author_id": 900000000001,
    }


@responses.activate
def test_notes_already_on_the_ticket_are_not_posted_again() -> None:
    responses.get(COMMENTS, json=comments_page([comment(2, NOTE_OLD.value)], None))
    assert adapter().client().apply("5158", [NOTE_OLD]) == [NOTE_OLD]
    assert [c.request.method for c in responses.calls] == ["GET"]  # no PUT at all


@responses.activate
def test_bearer_auth_and_user_assignment() -> None:
    responses.put(TICKET, json={"ticket": {"id": 5158}})
    zd = adapter(auth={"bearer_env": "ZD_OAUTH"})
    effect = Effect("action:x:assign", EffectKind.SET_ASSIGNEE, "8447388090777")
    assert zd.client().apply("5158", [effect]) == [effect]
    call = responses.calls[0]
    assert call.request.headers["Authorization"] == f"Bearer {BEARER}"
    assert body(call) == {"ticket": {"assignee_id": 8447388090777}}


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [("date", "2026-11-28"), ("datetime", "2026-11-27T23:30:00Z"), ("text", "2026-11-28 00:30 CET")],
)
@responses.activate
def test_deadline_formats(fmt: str, expected: str) -> None:
    responses.put(TICKET, json={"ticket": {"id": 5158}})
    adapter(deadline_format=fmt).client().apply("5158", [DUE])
    assert body(responses.calls[0]) == {
        "ticket": {"custom_fields": [{"id": 360000123456, "value": expected}]}
    }


@responses.activate
def test_priority_is_mapped_back_through_the_instance_mapping() -> None:
    responses.put(TICKET, json={"ticket": {"id": 5158}})
    zd = adapter(priorities={"urgent": "p1", "high": "p2", "normal": "p3", "low": "p4"})
    zd.client().apply("5158", [Effect("action:p", EffectKind.SET_PRIORITY, "p2")])
    assert body(responses.calls[0]) == {"ticket": {"priority": "high"}}


@responses.activate
def test_without_a_deadline_field_the_due_date_is_skipped_and_everything_else_written(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The example config and docs/install-zendesk.md: no deadline field, tags and notes still work.
    responses.get(COMMENTS, json=comments_page([], None))
    responses.put(TICKET, json={"ticket": {"id": 5158}})
    responses.put(TAGS, json={"tags": ["sla-breached"]})
    zd = adapter(deadline_field_id=None)
    effects = [DUE, TAG_ADD, NOTE_NEW, PRIO]
    with caplog.at_level(logging.INFO, logger="sla.adapters.zendesk"):
        # Reported applied (the ledger keeps "due", so it is not retried every evaluation).
        assert zd.client().apply("5158", effects) == effects
        assert zd.client().apply("5158", [DUE]) == [DUE]  # no call at all for it
    assert [(c.request.method, c.request.url.split("?")[0]) for c in responses.calls] == [
        ("GET", COMMENTS),
        ("PUT", TICKET),
        ("PUT", TAGS),
    ]
    sent = body(responses.calls[1])["ticket"]
    assert "custom_fields" not in sent
    assert sent["priority"] == "urgent" and "[sla-connector:resolution:breach]" in sent["comment"]["body"]
    told = [r for r in caplog.records if "no deadline_field_id" in r.getMessage()]
    assert len(told) == 1 and told[0].levelno == logging.INFO  # once per client, not per apply


BAD_VALUES = [
    ({}, Effect("action:p", EffectKind.SET_PRIORITY, "p9"), "canonical priority 'p9' maps to no Zendesk"),
    ({}, Effect("action:a", EffectKind.SET_ASSIGNEE, "team:4"), "expected <id>, user:<id> or group:<id>"),
    ({}, Effect("due", EffectKind.SET_DUE, "2026-11-27T23:30:00"), "has no time zone"),
]


@responses.activate
@pytest.mark.parametrize(("overrides", "effect", "message"), BAD_VALUES)
def test_a_bad_effect_value_does_not_block_the_others_and_is_rejected(
    overrides: dict, effect: Effect, message: str
) -> None:
    responses.put(TAGS, json={"tags": ["sla-breached"]})
    with pytest.raises(EffectRejected) as info:
        adapter(**overrides).client().apply("5158", [TAG_ADD, effect])
    assert info.value.applied == [TAG_ADD]
    assert list(info.value.rejected) == [effect.key] and message in info.value.rejected[effect.key]
    assert [c.request.method for c in responses.calls] == ["PUT"]
    assert body(responses.calls[0]) == {"tags": ["sla-breached"]}  # the bad field sent no ticket PUT


@responses.activate
@pytest.mark.parametrize(("overrides", "effect", "message"), BAD_VALUES)
def test_a_bad_effect_value_alone_is_rejected_naming_it(
    overrides: dict, effect: Effect, message: str
) -> None:
    named = rf"instance 'acme', ticket 5158: effect '{effect.key}': .*{message}"
    with pytest.raises(EffectRejected, match=named) as info:
        adapter(**overrides).client().apply("5158", [effect])
    assert info.value.applied == [] and list(info.value.rejected) == [effect.key]
    assert len(responses.calls) == 0


def test_non_numeric_ticket_id_is_refused() -> None:
    with pytest.raises(ValueError, match="numeric, got 'ABC-1'"):
        adapter().client().apply("ABC-1", [TAG_ADD])


@responses.activate
def test_no_effects_no_calls() -> None:
    assert adapter().client().apply("5158", []) == []
    assert len(responses.calls) == 0


# ---------------------------------------------------------------- faults


@pytest.mark.parametrize(
    ("status", "payload", "error", "text"),
    [
        (401, {"error": "Couldn't authenticate you"}, Unauthorized, "Couldn't authenticate you"),
        (
            403,
            {"error": "Forbidden", "description": "You do not have access to this page."},
            Forbidden,
            "You do not have access",
        ),
        (404, {"error": "RecordNotFound", "description": "Not found"}, NotFound, "RecordNotFound; Not found"),
        (
            422,
            {
                "error": "RecordInvalid",
                "description": "Record validation errors",
                "details": {"base": [{"description": "Priority: is invalid"}]},
            },
            ApiError,
            "Priority: is invalid",
        ),
    ],
)
@responses.activate
def test_client_errors_are_typed_not_retried_and_carry_zendesk_text(status, payload, error, text) -> None:
    responses.put(TAGS, status=status, json=payload)
    responses.get(TICKET, json={"ticket": {"id": 5158}})  # a 404 is checked: the ticket answers here
    sleeps: list[float] = []
    with pytest.raises(error) as info:
        adapter(sleeps).client().apply("5158", [TAG_ADD])
    assert type(info.value) is error
    assert info.value.status == status
    assert text in str(info.value)
    assert str(info.value).startswith(f"PUT /api/v2/tickets/5158/tags.json: HTTP {status}")
    assert [c.request.method for c in responses.calls] == ["PUT"] + ["GET"] * (status == 404)
    assert sleeps == []
    assert TOKEN not in str(info.value) and EMAIL not in str(info.value)


@responses.activate
def test_409_is_retried_then_succeeds() -> None:
    responses.put(TAGS, status=409, json={"error": "Conflict"})
    responses.put(TAGS, json={"tags": ["sla-breached"]})
    sleeps: list[float] = []
    assert adapter(sleeps).client().apply("5158", [TAG_ADD]) == [TAG_ADD]
    assert len(responses.calls) == 2 and len(sleeps) == 1


@responses.activate
def test_409_exhausted_is_a_conflict() -> None:
    responses.put(TAGS, status=409, json={"error": "Conflict"})
    with pytest.raises(Conflict, match="HTTP 409 after 3 attempts"):
        adapter().client().apply("5158", [TAG_ADD])
    assert len(responses.calls) == 3


@responses.activate
def test_429_with_short_retry_after_waits_then_succeeds() -> None:
    responses.put(TAGS, status=429, headers={"Retry-After": "2"}, json={"error": "TooManyRequests"})
    responses.put(TAGS, json={"tags": ["sla-breached"]})
    sleeps: list[float] = []
    assert adapter(sleeps).client().apply("5158", [TAG_ADD]) == [TAG_ADD]
    assert sleeps == [2.0]


@responses.activate
def test_429_with_long_retry_after_is_left_to_the_job() -> None:
    responses.put(TAGS, status=429, headers={"Retry-After": "93"}, json={"error": "TooManyRequests"})
    sleeps: list[float] = []
    with pytest.raises(RateLimited) as info:
        adapter(sleeps).client().apply("5158", [TAG_ADD])
    assert info.value.retry_after == 93.0 and info.value.retryable
    assert sleeps == [] and len(responses.calls) == 1


@responses.activate
def test_500_then_success_is_retried_with_backoff() -> None:
    responses.put(TAGS, status=500, body="upstream failure")
    responses.put(TAGS, json={"tags": ["sla-breached"]})
    sleeps: list[float] = []
    assert adapter(sleeps).client().apply("5158", [TAG_ADD]) == [TAG_ADD]
    assert len(sleeps) == 1 and 0.5 <= sleeps[0] <= 1.0


@responses.activate
def test_500_exhausted_is_a_server_error_after_growing_backoff() -> None:
    responses.put(TAGS, status=503, json={"error": "ServiceUnavailable"})
    sleeps: list[float] = []
    with pytest.raises(ServerError, match="HTTP 503 after 3 attempts: ServiceUnavailable") as info:
        adapter(sleeps).client().apply("5158", [TAG_ADD])
    assert info.value.retryable and info.value.status == 503
    assert len(responses.calls) == 3
    assert len(sleeps) == 2 and 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0


@responses.activate
def test_timeouts_are_retried_then_raised_as_timeout() -> None:
    responses.put(TAGS, body=requests.exceptions.ReadTimeout("read timed out"))
    sleeps: list[float] = []
    with pytest.raises(Timeout, match="ReadTimeout after 3 attempts"):
        adapter(sleeps).client().apply("5158", [TAG_ADD])
    assert len(responses.calls) == 3 and len(sleeps) == 2


@responses.activate
def test_configured_timeouts_and_attempts_are_used() -> None:
    responses.put(TAGS, body=requests.exceptions.ConnectTimeout("connect timed out"))
    zd = adapter(http={"connect_timeout": 2, "read_timeout": 7, "max_attempts": 1})
    with pytest.raises(Timeout, match="ConnectTimeout after 1 attempts"):
        zd.client().apply("5158", [TAG_ADD])
    assert responses.calls[0].request.req_kwargs["timeout"] == (2.0, 7.0)


def test_credentials_never_show_in_reprs() -> None:
    zd = adapter()
    texts = [repr(zd), repr(zd.settings), repr(zd.client()), repr(zd.http()), repr(zd.http()._session.auth)]
    for text in texts:
        assert TOKEN not in text and EMAIL not in text


# ---------------------------------------------------------------- read side


@responses.activate
def test_incremental_ticket_export_follows_the_cursor_to_end_of_stream() -> None:
    url = f"{BASE}/api/v2/incremental/tickets/cursor.json"
    responses.get(
        url,
        match=[matchers.query_param_matcher({"start_time": "1795766400"})],
        json={
            "tickets": [{"id": 1, "status": "open"}, {"id": 2, "status": "solved"}],
            "after_cursor": "MTc5NTY5NDQwMC4wfHwxfA==",
            "after_url": f"{url}?cursor=MTc5NTY5NDQwMC4wfHwxfA%3D%3D",
            "before_cursor": None,
            "before_url": None,
            "end_of_stream": False,
        },
    )
    responses.get(
        url,
        match=[matchers.query_param_matcher({"cursor": "MTc5NTY5NDQwMC4wfHwxfA=="})],
        json={
            "tickets": [{"id": 3, "status": "new"}],
            "after_cursor": "MTc5NTY5NDUwMC4wfHwzfA==",
            "after_url": f"{url}?cursor=MTc5NTY5NDUwMC4wfHwzfA%3D%3D",
            "end_of_stream": True,
        },
    )
    from datetime import UTC, datetime

    start = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
    assert [t["id"] for t in adapter().client().iter_tickets(start)] == [1, 2, 3]
    assert len(responses.calls) == 2


def test_incremental_export_needs_an_aware_start() -> None:
    from datetime import datetime

    with pytest.raises(ValueError, match="timezone-aware"):
        list(adapter().client().iter_tickets(datetime(2026, 11, 27)))


@responses.activate
def test_comments_follow_offset_paging_too() -> None:
    # Older accounts answer with `next_page` (offset pagination); both shapes are followed.
    responses.get(
        COMMENTS, json={"comments": [comment(1, "a")], "next_page": f"{COMMENTS}?page=2", "count": 2}
    )
    responses.get(f"{COMMENTS}?page=2", json={"comments": [comment(2, "b")], "next_page": None, "count": 2})
    assert [c["id"] for c in adapter().client().comments("5158")] == [1, 2]


@responses.activate
def test_rate_limit_headers_are_read() -> None:
    responses.put(TAGS, json={"tags": []}, headers={"X-Rate-Limit": "700", "X-Rate-Limit-Remaining": "3"})
    zd = adapter()
    zd.client().apply("5158", [TAG_ADD])
    assert zd.http().rate_limit_remaining == 3


@responses.activate
def test_a_success_that_is_not_json_is_an_api_error() -> None:
    responses.put(TAGS, body="<html>maintenance</html>", status=200)
    with pytest.raises(ApiError, match="HTTP 200 with a body that is not JSON"):
        adapter().client().apply("5158", [TAG_ADD])


@responses.activate
def test_a_closed_ticket_counts_as_gone() -> None:
    payload = {
        "error": "RecordInvalid",
        "description": "Record validation errors",
        "details": {"status": [{"description": "Status: closed prevents ticket update"}]},
    }
    responses.put(TICKET, status=422, json=payload)
    with pytest.raises(
        NotFound, match="HTTP 422: RecordInvalid; Record validation errors; .*closed prevents"
    ):
        adapter().client().apply("5158", [PRIO])


# ---------------------------------------------------------------- confirmed deletions (404)

ME = f"{BASE}/api/v2/users/me.json"
NOT_FOUND = {"error": "RecordNotFound", "description": "Not found"}


@responses.activate
def test_a_404_is_confirmed_when_the_ticket_is_gone_and_the_credentials_work() -> None:
    # Trigger-kind instances never hear of a deletion: a confirmed NotFound lets the pipeline stop.
    responses.put(TAGS, status=404, json=NOT_FOUND)
    responses.get(TICKET, status=404, json=NOT_FOUND)
    responses.get(ME, json={"user": {"id": int(CONNECTOR_USER), "role": "admin"}})
    with pytest.raises(NotFound) as info:
        adapter().client().apply("5158", [TAG_ADD])
    assert info.value.confirmed is True and info.value.status == 404
    assert "confirmed" in str(info.value) and TOKEN not in str(info.value)
    assert [(c.request.method, c.request.url) for c in responses.calls] == [
        ("PUT", TAGS),
        ("GET", TICKET),
        ("GET", ME),
    ]
    assert responses.calls[2].request.headers["Authorization"] == BASIC


@responses.activate
@pytest.mark.parametrize(
    "me",
    [
        {"status": 401, "json": {"error": "Couldn't authenticate you"}},
        {"status": 200, "json": {"user": {"id": None, "name": "Anonymous user"}}},
        {"status": 403, "json": {"error": "Forbidden"}},
    ],
    ids=["401", "anonymous", "403"],
)
def test_a_404_stays_unconfirmed_when_the_probe_fails(me: dict) -> None:
    responses.put(TICKET, status=404, json=NOT_FOUND)
    responses.get(TICKET, status=404, json=NOT_FOUND)
    responses.get(ME, **me)
    with pytest.raises(NotFound) as info:
        adapter().client().apply("5158", [PRIO])
    assert info.value.confirmed is False
    assert str(info.value) == "PUT /api/v2/tickets/5158.json: HTTP 404: RecordNotFound; Not found"
    assert len(responses.calls) == 3


@responses.activate
def test_a_404_stays_unconfirmed_when_the_ticket_answers_a_get() -> None:
    responses.get(COMMENTS, status=404, json=NOT_FOUND)  # the marker look-up counts as well
    responses.get(TICKET, json={"ticket": {"id": 5158, "status": "open"}})
    with pytest.raises(NotFound) as info:
        adapter().client().apply("5158", [NOTE_NEW])
    assert info.value.confirmed is False
    assert [c.request.url.split("?")[0] for c in responses.calls] == [COMMENTS, TICKET]  # no probe


@responses.activate
def test_a_closed_ticket_is_final_without_a_confirmation() -> None:
    closed = [{"description": "Status: closed prevents ticket update"}]
    payload = {"error": "RecordInvalid", "details": {"status": closed}}
    responses.put(TICKET, status=422, json=payload)
    with pytest.raises(NotFound) as info:
        adapter().client().apply("5158", [PRIO])
    assert info.value.status == 422 and info.value.confirmed is False
    assert len(responses.calls) == 1
