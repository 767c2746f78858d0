"""Write-back and read side against Jira's REST API, faked at the HTTP layer with `responses`."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
import responses
from responses import matchers

import adapters.jira as jira
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
from adapters.jira.client import adf
from adapters.jira.config import load_config
from adapters.jira.tests.helpers import (
    BASIC,
    BEARER,
    CLOUD_CONFIG,
    CLOUD_URL,
    CONNECTOR_ACCOUNT,
    DC_CONFIG,
    DC_URL,
    ENV,
    assert_headers,
)
from sla.effects import Effect, EffectKind, comment_marker

CLOUD_ISSUE = f"{CLOUD_URL}/rest/api/3/issue/10042"
DC_ISSUE = f"{DC_URL}/rest/api/2/issue/20077"

DUE = Effect("due", EffectKind.SET_DUE, "2026-11-27T16:00:00+00:00")
ADD = Effect("tag:sla-warning", EffectKind.ADD_TAG, "sla-warning")
REMOVE = Effect("tag:sla-ok", EffectKind.REMOVE_TAG, "sla-ok")
PRIORITY = Effect("action:resolution:breach:priority", EffectKind.SET_PRIORITY, "urgent")
ASSIGN = Effect("action:resolution:breach:assignee", EffectKind.SET_ASSIGNEE, "5b10ac8d82e05b22cc7d4ef5")
COMMENT = Effect("comment:resolution:warn75", EffectKind.COMMENT, "Resolution SLA at 75%.\nDue 17:00.")


Sleeps = list[float]  # the client's waits, recorded instead of slept


@pytest.fixture
def sleeps() -> Sleeps:
    return []


@pytest.fixture
def cloud(sleeps: Sleeps) -> jira.JiraAdapter:
    return jira.JiraAdapter(load_config("acme", CLOUD_CONFIG, ENV), sleep=sleeps.append)


@pytest.fixture
def dc(sleeps: Sleeps) -> jira.JiraAdapter:
    return jira.JiraAdapter(load_config("acme", DC_CONFIG, ENV), sleep=sleeps.append)


def sent(call: Any) -> Any:
    return json.loads(call.request.body)


# ---------------------------------------------------------------- write-back: Cloud


@responses.activate
def test_cloud_coalesces_field_and_label_effects_into_one_put(cloud: jira.JiraAdapter) -> None:
    responses.put(CLOUD_ISSUE, status=204)
    applied = cloud.client().apply("10042", [DUE, ADD, REMOVE, PRIORITY, ASSIGN])
    assert applied == [DUE, ADD, REMOVE, PRIORITY, ASSIGN]
    (call,) = responses.calls
    assert call.request.method == "PUT" and call.request.url == CLOUD_ISSUE
    assert_headers(call, BASIC)
    assert sent(call) == {
        "fields": {
            "duedate": "2026-11-27",  # 17:00 in Europe/Berlin
            "priority": {"name": "Highest"},
            "assignee": {"accountId": "5b10ac8d82e05b22cc7d4ef5"},
        },
        "update": {"labels": [{"add": "sla-warning"}, {"remove": "sla-ok"}]},
    }


@responses.activate
def test_cloud_due_date_is_the_local_date_in_the_configured_zone(cloud: jira.JiraAdapter) -> None:
    responses.put(CLOUD_ISSUE, status=204)
    late = Effect("due", EffectKind.SET_DUE, "2026-11-27T23:30:00+00:00")  # 00:30 next day in Berlin
    cloud.client().apply("10042", [late])
    assert sent(responses.calls[0]) == {"fields": {"duedate": "2026-11-28"}}


@responses.activate
def test_labels_only_never_send_a_label_list(cloud: jira.JiraAdapter) -> None:
    responses.put(CLOUD_ISSUE, status=204)
    cloud.client().apply("10042", [ADD])
    body = sent(responses.calls[0])
    assert body == {"update": {"labels": [{"add": "sla-warning"}]}}
    assert "labels" not in body.get("fields", {})


COMMENTS_URL = f"{CLOUD_ISSUE}/comment"
MARKER = comment_marker("resolution:warn75")


def comments_page(start: int, total: int, texts: list[str]) -> dict[str, Any]:
    return {
        "startAt": start,
        "maxResults": 100,
        "total": total,
        "comments": [{"id": str(10500 + start + i), "body": adf(t)} for i, t in enumerate(texts)],
    }


@responses.activate
def test_cloud_comment_reads_all_pages_then_posts_adf_with_marker(cloud: jira.JiraAdapter) -> None:
    q0 = matchers.query_param_matcher({"startAt": "0", "maxResults": "100"})
    q2 = matchers.query_param_matcher({"startAt": "2", "maxResults": "100"})
    responses.get(
        COMMENTS_URL, json=comments_page(0, 3, ["hello", "[sla-connector:other]"]), match=[q0]
    )
    responses.get(COMMENTS_URL, json=comments_page(2, 3, ["thanks"]), match=[q2])
    responses.post(COMMENTS_URL, status=201, json={"id": "10600"})
    assert cloud.client().apply("10042", [COMMENT]) == [COMMENT]
    methods = [(c.request.method, c.request.url.split("?")[0]) for c in responses.calls]
    assert methods == [("GET", COMMENTS_URL), ("GET", COMMENTS_URL), ("POST", COMMENTS_URL)]
    assert_headers(responses.calls[0], BASIC, body=False)
    assert_headers(responses.calls[1], BASIC, body=False)
    post = responses.calls[2]
    assert_headers(post, BASIC)
    assert sent(post) == {
        "body": {
            "type": "doc",
            "version": 1,
            "content": [
                {"type": "paragraph", "content": [{"type": "text", "text": "Resolution SLA at 75%."}]},
                {"type": "paragraph", "content": [{"type": "text", "text": "Due 17:00."}]},
                {"type": "paragraph", "content": [{"type": "text", "text": MARKER}]},
            ],
        },
        "properties": [{"key": "sd.public.comment", "value": {"internal": True}}],
    }


@responses.activate
def test_comment_already_posted_is_not_posted_again(cloud: jira.JiraAdapter) -> None:
    text = "Resolution SLA at 75%. " + comment_marker("resolution:warn75")
    responses.get(COMMENTS_URL, json=comments_page(0, 1, [text]))
    assert cloud.client().apply("10042", [COMMENT]) == [COMMENT]
    assert [c.request.method for c in responses.calls] == ["GET"]


@responses.activate
def test_put_and_comments_in_one_apply(cloud: jira.JiraAdapter) -> None:
    responses.put(CLOUD_ISSUE, status=204)
    responses.get(COMMENTS_URL, json=comments_page(0, 0, []))
    responses.post(COMMENTS_URL, status=201, json={"id": "10601"})
    assert cloud.client().apply("10042", [COMMENT, ADD]) == [ADD, COMMENT]
    assert [c.request.method for c in responses.calls] == ["PUT", "GET", "POST"]


def test_no_effects_no_calls(cloud: jira.JiraAdapter) -> None:
    with responses.RequestsMock() as mock:
        assert cloud.client().apply("10042", []) == []
        assert len(mock.calls) == 0


def test_unknown_canonical_priority_names_the_setting(cloud: jira.JiraAdapter) -> None:
    bad = Effect("action:x", EffectKind.SET_PRIORITY, "critical")
    with pytest.raises(EffectRejected) as info:
        cloud.client().apply("10042", [bad])  # no call is made: nothing is mocked
    reason = "instances.acme.priorities: no Jira priority maps to 'critical'"
    assert info.value.rejected == {"action:x": reason}
    assert info.value.applied == []


def test_bad_due_value_names_the_value(cloud: jira.JiraAdapter) -> None:
    with pytest.raises(EffectRejected, match="not an ISO 8601 instant: 'soon'"):
        cloud.client().apply("10042", [Effect("due", EffectKind.SET_DUE, "soon")])
    with pytest.raises(EffectRejected, match="without a time zone"):
        cloud.client().apply("10042", [Effect("due", EffectKind.SET_DUE, "2026-11-27T16:00:00")])


# ---------------------------------------------------------------- write-back: Data Center


@responses.activate
def test_dc_put_uses_v2_bearer_custom_due_field_and_user_name(dc: jira.JiraAdapter) -> None:
    responses.put(DC_ISSUE, status=204)
    assign = Effect("action:a", EffectKind.SET_ASSIGNEE, "dave")
    dc.client().apply("20077", [DUE, ADD, assign])
    (call,) = responses.calls
    assert_headers(call, BEARER)
    assert sent(call) == {
        "fields": {"customfield_10050": "2026-11-27T16:00:00.000+0000", "assignee": {"name": "dave"}},
        "update": {"labels": [{"add": "sla-warning"}]},
    }


@responses.activate
def test_dc_comment_is_a_string_with_visibility(dc: jira.JiraAdapter) -> None:
    url = f"{DC_ISSUE}/comment"
    responses.get(url, json={"startAt": 0, "maxResults": 100, "total": 1, "comments": [{"body": "hi"}]})
    responses.post(url, status=201, json={"id": "40010"})
    dc.client().apply("20077", [COMMENT])
    post = responses.calls[1]
    assert_headers(post, BEARER)
    assert sent(post) == {
        "body": "Resolution SLA at 75%.\nDue 17:00.\n\n[sla-connector:resolution:warn75]",
        "visibility": {"type": "role", "value": "Developers"},
    }


# ---------------------------------------------------------------- errors and retries


@pytest.mark.parametrize(
    "status, error",
    [(401, Unauthorized), (403, Forbidden), (404, NotFound), (409, Conflict), (400, ApiError)],
)
@responses.activate
def test_client_errors_are_typed_carry_jira_text_and_are_not_retried(
    cloud: jira.JiraAdapter, sleeps: Sleeps, status: int, error: type[ApiError]
) -> None:
    body = {"errorMessages": ["Issue does not exist or you do not have permission to see it."], "errors": {}}
    if status == 400:  # naming no field of the PUT (one that does: test_rejected_effects.py)
        body = {"errorMessages": [], "errors": {"summary": "Summary is required."}}
    responses.put(CLOUD_ISSUE, status=status, json=body)
    with pytest.raises(error) as info:
        cloud.client().apply("10042", [DUE])
    assert type(info.value) is error
    assert info.value.status == status
    assert f"PUT /rest/api/3/issue/10042: HTTP {status}" in str(info.value)
    assert ("Summary is required" if status == 400 else "Issue does not exist") in str(info.value)
    assert ENV["JIRA_API_TOKEN"] not in str(info.value) and BASIC not in str(info.value)
    assert [c.request.method for c in responses.calls] == ["PUT"]  # a 404 too: nothing re-read
    assert sleeps == []


@responses.activate
def test_429_honours_retry_after_then_succeeds(cloud: jira.JiraAdapter, sleeps: Sleeps) -> None:
    responses.put(
        CLOUD_ISSUE, status=429, headers={"Retry-After": "7"}, json={"errorMessages": ["Rate limited"]}
    )
    responses.put(CLOUD_ISSUE, status=204)
    assert cloud.client().apply("10042", [DUE]) == [DUE]
    assert sleeps == [7.0] and len(responses.calls) == 2


@responses.activate
def test_429_exhausted_raises_rate_limited_with_retry_after(cloud: jira.JiraAdapter, sleeps: Sleeps) -> None:
    for _ in range(3):
        responses.put(CLOUD_ISSUE, status=429, headers={"Retry-After": "3"})
    with pytest.raises(RateLimited) as info:
        cloud.client().apply("10042", [DUE])
    assert info.value.retry_after == 3.0 and info.value.retryable
    assert sleeps == [3.0, 3.0] and len(responses.calls) == 3


@responses.activate
def test_429_with_a_long_retry_after_goes_back_to_the_job(cloud: jira.JiraAdapter, sleeps: Sleeps) -> None:
    responses.put(CLOUD_ISSUE, status=429, headers={"Retry-After": "600"})
    with pytest.raises(RateLimited) as info:
        cloud.client().apply("10042", [DUE])
    assert info.value.retry_after == 600.0 and sleeps == [] and len(responses.calls) == 1


@responses.activate
def test_429_beyond_10_s_goes_back_to_the_job_at_once(cloud: jira.JiraAdapter, sleeps: Sleeps) -> None:
    assert cloud.cfg.max_retry_after == 10.0
    responses.put(CLOUD_ISSUE, status=429, headers={"Retry-After": "30"})
    with pytest.raises(RateLimited) as info:
        cloud.client().apply("10042", [DUE])
    assert info.value.retry_after == 30.0 and sleeps == [] and len(responses.calls) == 1


@responses.activate
def test_500_then_success_backs_off_once(cloud: jira.JiraAdapter, sleeps: Sleeps) -> None:
    responses.put(CLOUD_ISSUE, status=500, body="oops")
    responses.put(CLOUD_ISSUE, status=204)
    assert cloud.client().apply("10042", [DUE]) == [DUE]
    assert len(sleeps) == 1 and 0.5 <= sleeps[0] <= 1.0


@responses.activate
def test_500_exhausted_raises_server_error(cloud: jira.JiraAdapter, sleeps: Sleeps) -> None:
    for _ in range(3):
        responses.put(CLOUD_ISSUE, status=503, json={"errorMessages": ["Service unavailable"]})
    with pytest.raises(ServerError, match="HTTP 503 after 3 attempts: Service unavailable") as info:
        cloud.client().apply("10042", [DUE])
    assert info.value.retryable and len(responses.calls) == 3 and len(sleeps) == 2


@responses.activate
def test_timeout_is_retried_then_raised(cloud: jira.JiraAdapter, sleeps: Sleeps) -> None:
    for _ in range(3):
        responses.put(CLOUD_ISSUE, body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(Timeout, match="ReadTimeout after 3 attempts"):
        cloud.client().apply("10042", [DUE])
    assert len(responses.calls) == 3 and len(sleeps) == 2


def test_reprs_hide_credentials(cloud: jira.JiraAdapter, dc: jira.JiraAdapter) -> None:
    for obj in (cloud, cloud.cfg, cloud.cfg.secrets, cloud.client(), cloud.http(), dc.cfg, dc.installer()):
        text = repr(obj) + str(obj)
        for secret in ENV.values():
            if secret != ENV["JIRA_EMAIL"]:
                assert secret not in text
        assert BASIC not in text and BEARER not in text


# ---------------------------------------------------------------- read side


@responses.activate
def test_cloud_iter_issues_follows_next_page_token(cloud: jira.JiraAdapter) -> None:
    url = f"{CLOUD_URL}/rest/api/3/search/jql"
    base = {"jql": "project = SUP ORDER BY created", "maxResults": "100", "fields": "*navigable"}
    responses.get(
        url,
        json={"issues": [{"id": "1"}, {"id": "2"}], "nextPageToken": "tok-2", "isLast": False},
        match=[matchers.query_param_matcher(base)],
    )
    responses.get(
        url,
        json={"issues": [{"id": "3"}], "isLast": True},
        match=[matchers.query_param_matcher({**base, "nextPageToken": "tok-2"})],
    )
    ids = [i["id"] for i in cloud.client().iter_issues("project = SUP ORDER BY created")]
    assert ids == ["1", "2", "3"]
    assert_headers(responses.calls[0], BASIC, body=False)


@responses.activate
def test_dc_iter_issues_pages_with_start_at(dc: jira.JiraAdapter) -> None:
    url = f"{DC_URL}/rest/api/2/search"
    base = {"jql": "project = OPS", "maxResults": "100", "fields": "status,labels"}
    responses.get(
        url,
        json={"startAt": 0, "maxResults": 2, "total": 3, "issues": [{"id": "1"}, {"id": "2"}]},
        match=[matchers.query_param_matcher({**base, "startAt": "0"})],
    )
    responses.get(
        url,
        json={"startAt": 2, "maxResults": 2, "total": 3, "issues": [{"id": "3"}]},
        match=[matchers.query_param_matcher({**base, "startAt": "2"})],
    )
    ids = [i["id"] for i in dc.client().iter_issues("project = OPS", fields=("status", "labels"))]
    assert ids == ["1", "2", "3"]
    assert_headers(responses.calls[0], BEARER, body=False)


@responses.activate
def test_cloud_changelog_is_paged(cloud: jira.JiraAdapter) -> None:
    url = f"{CLOUD_ISSUE}/changelog"
    responses.get(
        url,
        json={"startAt": 0, "maxResults": 1, "total": 2, "isLast": False, "values": [{"id": "10301"}]},
        match=[matchers.query_param_matcher({"startAt": "0", "maxResults": "100"})],
    )
    responses.get(
        url,
        json={"startAt": 1, "maxResults": 1, "total": 2, "isLast": True, "values": [{"id": "10302"}]},
        match=[matchers.query_param_matcher({"startAt": "1", "maxResults": "100"})],
    )
    assert [h["id"] for h in cloud.client().changelog("10042")] == ["10301", "10302"]


@responses.activate
def test_dc_changelog_uses_expand(dc: jira.JiraAdapter) -> None:
    responses.get(
        DC_ISSUE,
        json={
            "id": "20077",
            "key": "OPS-77",
            "changelog": {
                "startAt": 0,
                "maxResults": 2,
                "total": 2,
                "histories": [{"id": "30500"}, {"id": "30501"}],
            },
        },
        match=[matchers.query_param_matcher({"expand": "changelog", "fields": "status"})],
    )
    assert [h["id"] for h in dc.client().changelog("20077")] == ["30500", "30501"]


@responses.activate
def test_read_side_404_is_not_found(cloud: jira.JiraAdapter) -> None:
    responses.get(f"{CLOUD_ISSUE}/changelog", status=404, json={"errorMessages": ["Issue does not exist"]})
    with pytest.raises(NotFound, match="Issue does not exist"):
        list(cloud.client().changelog("10042"))


@responses.activate
def test_notify_users_false_asks_jira_not_to_email_watchers(sleeps: Sleeps) -> None:
    config = load_config("acme", {**CLOUD_CONFIG, "notify_users": False}, ENV)
    adapter = jira.JiraAdapter(config, sleep=sleeps.append)
    responses.put(CLOUD_ISSUE, status=204, match=[matchers.query_param_matcher({"notifyUsers": "false"})])
    assert adapter.client().apply("10042", [ADD]) == [ADD]


@responses.activate
def test_429_without_retry_after_waits_a_cautious_default(cloud: jira.JiraAdapter, sleeps: Sleeps) -> None:
    responses.put(CLOUD_ISSUE, status=429)
    responses.put(CLOUD_ISSUE, status=204)
    cloud.client().apply("10042", [DUE])
    assert sleeps == [5.0]


@responses.activate
def test_transient_failure_after_progress_returns_the_progress(cloud: jira.JiraAdapter) -> None:
    second = Effect("comment:resolution:breach", EffectKind.COMMENT, "Resolution SLA breached.")
    responses.put(CLOUD_ISSUE, status=204)
    responses.get(COMMENTS_URL, json=comments_page(0, 0, []))
    responses.post(COMMENTS_URL, status=201, json={"id": "10601"})
    for _ in range(3):
        responses.post(COMMENTS_URL, status=503)
    assert cloud.client().apply("10042", [ADD, COMMENT, second]) == [ADD, COMMENT]


@responses.activate
def test_a_rate_limit_after_progress_is_raised_with_its_retry_after(cloud: jira.JiraAdapter,
                                                                    sleeps: Sleeps) -> None:
    # Returning the progress would let the caller look again within seconds; the 429 asks for an hour.
    responses.put(CLOUD_ISSUE, status=204)
    responses.get(COMMENTS_URL, status=429, headers={"Retry-After": "3600"})
    with pytest.raises(RateLimited) as info:
        cloud.client().apply("10042", [ADD, COMMENT])
    assert info.value.retry_after == 3600.0


@responses.activate
def test_permanent_failure_after_progress_is_raised(cloud: jira.JiraAdapter) -> None:
    responses.put(CLOUD_ISSUE, status=204)
    responses.get(COMMENTS_URL, json=comments_page(0, 0, []))
    denied = {"errorMessages": ["You do not have permission to comment."]}
    responses.post(COMMENTS_URL, status=403, json=denied)
    with pytest.raises(Forbidden, match="permission to comment"):
        cloud.client().apply("10042", [ADD, COMMENT])


@responses.activate
def test_transient_failure_without_progress_is_raised(cloud: jira.JiraAdapter) -> None:
    for _ in range(3):
        responses.get(COMMENTS_URL, status=502)
    with pytest.raises(ServerError):
        cloud.client().apply("10042", [COMMENT])


@responses.activate
def test_rate_limit_remaining_is_read_from_jiras_header(cloud: jira.JiraAdapter) -> None:
    limits = {"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "17"}
    responses.put(CLOUD_ISSUE, status=204, headers=limits)
    client = cloud.client()
    assert client.apply("10042", [ADD]) == [ADD]
    assert client.http.rate_limit_remaining == 17


# ---------------------------------------------------------------- a bad value never blocks the rest


@responses.activate
def test_a_bad_effect_value_is_rejected_and_the_others_are_written(cloud: jira.JiraAdapter) -> None:
    bad = Effect("action:x", EffectKind.SET_PRIORITY, "critical")
    responses.put(CLOUD_ISSUE, status=204)
    responses.get(COMMENTS_URL, json=comments_page(0, 0, []))
    responses.post(COMMENTS_URL, status=201, json={"id": "10601"})
    with pytest.raises(EffectRejected) as info:
        cloud.client().apply("10042", [ADD, bad, COMMENT])
    assert info.value.applied == [ADD, COMMENT]
    assert list(info.value.rejected) == ["action:x"]
    assert "no Jira priority maps to 'critical'" in info.value.rejected["action:x"]
    assert sent(responses.calls[0]) == {"update": {"labels": [{"add": "sla-warning"}]}}  # no priority


# ---------------------------------------------------------------- 404: never confirmed on Jira

# Jira's answer both for a deleted issue and for one the service user may no longer browse.
GONE = {"errorMessages": ["Issue does not exist or you do not have permission to see it."], "errors": {}}
MYSELF = f"{CLOUD_URL}/rest/api/3/myself"


@responses.activate
def test_a_404_is_never_confirmed_even_when_the_reread_404s_and_the_credentials_work(
    cloud: jira.JiraAdapter,
) -> None:
    # Exactly what a lost *Browse projects* permission looks like: a confirmation would end an
    # existing issue for good. Jira sends jira:issue_deleted for a real deletion instead.
    responses.put(CLOUD_ISSUE, status=404, json=GONE)
    responses.get(CLOUD_ISSUE, status=404, json=GONE)
    responses.get(MYSELF, json={"accountId": CONNECTOR_ACCOUNT, "accountType": "atlassian", "active": True})
    with pytest.raises(NotFound) as info:
        cloud.client().apply("10042", [ADD])
    assert info.value.confirmed is False and info.value.status == 404 and not info.value.retryable
    assert str(info.value) == f"PUT /rest/api/3/issue/10042: HTTP 404: {GONE['errorMessages'][0]}"
    assert [(c.request.method, c.request.url) for c in responses.calls] == [("PUT", CLOUD_ISSUE)]  # no probes


@responses.activate
def test_dc_404_is_not_confirmed_either(dc: jira.JiraAdapter) -> None:
    responses.put(DC_ISSUE, status=404, json=GONE)
    responses.get(DC_ISSUE, status=404, json=GONE)
    responses.get(f"{DC_URL}/rest/api/2/myself", json={"name": "sla-bot", "key": "JIRAUSER10100"})
    with pytest.raises(NotFound) as info:
        dc.client().apply("20077", [DUE])
    assert info.value.confirmed is False
    assert [c.request.method for c in responses.calls] == ["PUT"]


@responses.activate
def test_a_404_on_the_comment_post_is_raised_unconfirmed(cloud: jira.JiraAdapter) -> None:
    responses.put(CLOUD_ISSUE, status=204)
    responses.get(COMMENTS_URL, json=comments_page(0, 0, []))
    responses.post(COMMENTS_URL, status=404, json=GONE)
    with pytest.raises(NotFound) as info:
        cloud.client().apply("10042", [COMMENT])
    assert info.value.confirmed is False
    assert [c.request.method for c in responses.calls] == ["GET", "POST"]
