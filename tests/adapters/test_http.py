"""The shared base HTTP client (adapters/http.py), faked at the HTTP layer with `responses`.

Product tests (adapters/<product>/tests) assert each product's exact calls and error texts; these
pin what every product inherits: auth, timeouts, retries, Retry-After, typed errors, logs.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import responses

from adapters.base import ApiError, Conflict, NotFound, RateLimited, ServerError, Timeout, Unauthorized
from adapters.http import HeaderAuth, HttpClient, never_sent
from adapters.settings import Secret

BASE = "https://api.example"
AUTH = "Bearer t0ken-s3cr3t"


def client(cls: type[HttpClient] = HttpClient, **kwargs: Any) -> HttpClient:
    kwargs.setdefault("sleep", [].append)  # never really wait
    return cls(BASE, AUTH, **kwargs)


class Conflicted(HttpClient):
    product = "conflicted"
    retry_conflicts = True
    default_retry_after = 60.0
    rate_limit_remaining_header = "X-Left"

    def json_error_text(self, data: Any) -> str:
        return str(data.get("why", "")) if isinstance(data, dict) else ""

    def error_class(self, status: int, text: str) -> type[ApiError]:
        return NotFound if status == 422 and "gone" in text else super().error_class(status, text)


# ---------------------------------------------------------------- auth, headers, timeouts


@responses.activate
@pytest.mark.parametrize("authorization", [AUTH, Secret(AUTH)])
def test_authorization_accept_and_user_agent_on_every_call(authorization: str | Secret) -> None:
    responses.get(f"{BASE}/a", json={"ok": True})
    http = HttpClient(BASE + "/", authorization)
    assert http.request("GET", "/a") == {"ok": True}
    headers = responses.calls[0].request.headers
    assert headers["Authorization"] == AUTH
    assert headers["Accept"] == "application/json" and headers["User-Agent"] == "sla-connector"
    assert responses.calls[0].request.url == f"{BASE}/a"  # the trailing slash of the base is dropped


@dataclass(frozen=True)
class Settings:
    base_url: str = BASE + "/"
    authorization: Secret = Secret(AUTH)
    connect_timeout: float = 1.5
    read_timeout: float = 4.0
    max_attempts: int = 2
    max_retry_after: float = 7.0


@responses.activate
def test_built_from_a_products_settings() -> None:
    sleeps: list[float] = []
    http = Conflicted.from_settings(Settings(), sleep=sleeps.append, jitter=lambda: 0.0)
    assert type(http) is Conflicted and http.base_url == BASE
    assert (http.max_attempts, http.max_retry_after, http._timeout) == (2, 7.0, (1.5, 4.0))
    responses.get(f"{BASE}/x", status=502)
    with pytest.raises(ServerError, match="after 2 attempts"):
        http.request("GET", "/x")
    assert sleeps == [0.5] and responses.calls[0].request.headers["Authorization"] == AUTH


def test_reprs_hide_the_credential() -> None:
    http = client()
    for text in (repr(http), str(http), repr(http._session.auth), repr(HeaderAuth(Secret(AUTH)))):
        assert "t0ken" not in text
    assert repr(http) == "HttpClient('https://api.example')"
    assert repr(client(Conflicted)) == "Conflicted('https://api.example')"


@responses.activate
def test_timeouts_are_passed_on_every_call() -> None:
    seen: list[Any] = []

    def callback(request: Any) -> tuple[int, dict[str, str], str]:
        seen.append(request.req_kwargs["timeout"])
        return 200, {}, "{}"

    responses.add_callback(responses.GET, f"{BASE}/x", callback=callback)
    HttpClient(BASE, AUTH, connect_timeout=2, read_timeout=9).request("GET", "/x")
    assert seen == [(2, 9)]


def test_max_attempts_must_be_positive() -> None:
    with pytest.raises(ValueError, match="HttpClient: max_attempts must be >= 1, got 0"):
        HttpClient(BASE, AUTH, max_attempts=0)


@responses.activate
def test_empty_answer_is_none_and_params_and_json_are_sent() -> None:
    responses.put(f"{BASE}/t", status=204, match=[responses.matchers.query_param_matcher({"q": "1"})])
    assert client().request("PUT", "/t", params={"q": "1"}, json={"a": 1}) is None
    assert responses.calls[0].request.body == b'{"a": 1}'


@responses.activate
def test_absolute_urls_pass_through_and_errors_name_only_the_path() -> None:
    responses.get(f"{BASE}/next?page=2", status=404, body="no such page")
    with pytest.raises(NotFound) as info:
        client().request("GET", f"{BASE}/next?page=2")
    assert str(info.value) == "GET /next: HTTP 404: no such page" and info.value.status == 404


def test_absolute_urls_to_another_origin_are_refused_before_any_call() -> None:
    with responses.RequestsMock() as mock:  # any call would fail: none is registered
        for url in ("https://evil.example/next", "http://api.example/next", "https://api.example:8443/x"):
            with pytest.raises(ApiError, match="not followed") as info:
                client().request("GET", url)
            assert info.value.status is None and not info.value.retryable
        assert len(mock.calls) == 0


# ---------------------------------------------------------------- errors and retries


@responses.activate
def test_client_errors_are_typed_carry_the_raw_text_and_never_the_credential() -> None:
    responses.get(f"{BASE}/x", status=401, body="  bad credentials \n")
    sleeps: list[float] = []
    with pytest.raises(Unauthorized) as info:
        client(sleep=sleeps.append).request("GET", "/x")
    assert str(info.value) == "GET /x: HTTP 401: bad credentials"
    assert "t0ken" not in str(info.value) and sleeps == [] and len(responses.calls) == 1


@responses.activate
def test_an_empty_error_body_reports_the_reason_and_long_ones_are_cut() -> None:
    responses.get(f"{BASE}/a", status=400)
    responses.get(f"{BASE}/b", status=400, body="x" * 2000)
    with pytest.raises(ApiError, match=r"^GET /a: HTTP 400: Bad Request$"):
        client().request("GET", "/a")
    with pytest.raises(ApiError) as info:
        client().request("GET", "/b")
    assert str(info.value) == "GET /b: HTTP 400: " + "x" * 500


@responses.activate
def test_a_json_error_body_gives_the_products_text_else_the_body_itself() -> None:
    responses.get(f"{BASE}/x", status=400, json={"why": "bad field", "code": 7})
    responses.get(f"{BASE}/x", status=400, json={"code": 7})
    responses.get(f"{BASE}/x", status=400, json={"why": "y" * 900})
    messages = []
    for _ in range(3):
        with pytest.raises(ApiError) as info:
            client(Conflicted).request("GET", "/x")
        messages.append(str(info.value))
    assert [m.removeprefix("GET /x: HTTP 400: ") for m in messages] == ["bad field", "{'code': 7}", "y" * 500]
    responses.get(f"{BASE}/y", status=400, json=["a", "b"])
    with pytest.raises(ApiError, match=r"^GET /y: HTTP 400: \['a', 'b'\]$"):
        client().request("GET", "/y")


@responses.activate
def test_409_is_raised_at_once_by_default() -> None:
    responses.put(f"{BASE}/t", status=409, body="changed")
    with pytest.raises(Conflict, match=r"^PUT /t: HTTP 409: changed$") as info:
        client().request("PUT", "/t")
    assert info.value.retryable and len(responses.calls) == 1


@responses.activate
def test_409_is_retried_when_the_product_says_so_then_raised_as_conflict() -> None:
    for _ in range(3):
        responses.put(f"{BASE}/t", status=409, body="changed")
    sleeps: list[float] = []
    with pytest.raises(Conflict, match=r"^PUT /t: HTTP 409 after 3 attempts: changed$"):
        client(Conflicted, sleep=sleeps.append, jitter=lambda: 0.0).request("PUT", "/t")
    assert sleeps == [0.5, 1.0]


@responses.activate
def test_the_product_may_type_its_own_special_cases() -> None:
    responses.put(f"{BASE}/t", status=422, body="ticket is gone")
    responses.put(f"{BASE}/u", status=422, body="invalid")
    with pytest.raises(NotFound, match="HTTP 422: ticket is gone"):
        client(Conflicted).request("PUT", "/t")
    with pytest.raises(ApiError) as info:
        client(Conflicted).request("PUT", "/u")
    assert type(info.value) is ApiError and info.value.status == 422


@responses.activate
def test_timeout_then_success() -> None:
    responses.put(f"{BASE}/t", body=requests.exceptions.ConnectTimeout("connect timed out"))
    responses.put(f"{BASE}/t", status=204)
    sleeps: list[float] = []
    http = HttpClient(BASE, AUTH, sleep=sleeps.append, jitter=lambda: 0.0, backoff=0.25)
    assert http.request("PUT", "/t", json={}) is None
    assert sleeps == [0.25]


@responses.activate
def test_a_refused_connection_is_a_timeout_after_the_attempts() -> None:
    responses.get(f"{BASE}/x", body=requests.exceptions.ConnectionError("refused"))
    sleeps: list[float] = []
    with pytest.raises(Timeout, match=r"^GET /x: ConnectionError after 2 attempts$") as info:
        client(sleep=sleeps.append, max_attempts=2).request("GET", "/x")
    assert info.value.retryable and len(responses.calls) == 2 and len(sleeps) == 1


def test_backoff_is_exponential_with_bounded_jitter() -> None:
    http = HttpClient(BASE, AUTH, jitter=lambda: 1.0)
    assert [http._delay(n) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
    http = HttpClient(BASE, AUTH, jitter=lambda: 0.0)
    assert [http._delay(n) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]


@responses.activate
def test_success_with_a_non_json_body_is_a_server_error() -> None:
    responses.get(f"{BASE}/x", body="<html>maintenance</html>", status=200)
    with pytest.raises(ServerError, match="GET /x: HTTP 200 with a body that is not JSON"):
        HttpClient(BASE, AUTH).request("GET", "/x")


@responses.activate
def test_other_transport_errors_are_typed_and_not_retried() -> None:
    responses.get(f"{BASE}/x", body=requests.exceptions.ChunkedEncodingError("broken"))
    sleeps: list[float] = []
    with pytest.raises(ApiError, match="GET /x: ChunkedEncodingError"):
        HttpClient(BASE, AUTH, sleep=sleeps.append).request("GET", "/x")
    assert sleeps == [] and len(responses.calls) == 1


# ---------------------------------------------------------------- rate limits


@pytest.mark.parametrize(
    ("header", "cls", "waited"),
    [
        ({"Retry-After": "2.5"}, HttpClient, 2.5),
        ({}, HttpClient, 5.0),
        ({"Retry-After": "soon"}, HttpClient, 5.0),
        ({"Retry-After": "-3"}, HttpClient, 0.0),
        ({}, Conflicted, 60.0),
    ],
)
@responses.activate
def test_429_waits_retry_after_or_the_products_default(header: dict, cls: type, waited: float) -> None:
    responses.get(f"{BASE}/x", status=429, headers=header)
    responses.get(f"{BASE}/x", json={})
    sleeps: list[float] = []
    # A limit that lets the product's own default (a minute for Conflicted) be waited in place.
    assert client(cls, sleep=sleeps.append, max_retry_after=60).request("GET", "/x") == {}
    assert sleeps == [waited]


@responses.activate
def test_429_with_an_http_date_or_a_wait_beyond_the_limit_goes_back_to_the_job() -> None:
    date = "Fri, 27 Nov 2026 12:00:00 GMT"
    responses.get(f"{BASE}/x", status=429, headers={"Retry-After": date}, body="slow")
    sleeps: list[float] = []
    with pytest.raises(RateLimited, match=r"^GET /x: rate limited \(429\): slow$") as info:
        client(Conflicted, sleep=sleeps.append, max_retry_after=10).request("GET", "/x")
    assert info.value.retry_after == 60.0 and info.value.status == 429 and info.value.retryable
    assert sleeps == [] and len(responses.calls) == 1


@responses.activate
def test_by_default_a_worker_waits_at_most_10_s_in_a_batch() -> None:
    # A longer in-batch wait would hold the batch and its per-ticket locks: the job reschedules.
    assert HttpClient(BASE, AUTH).max_retry_after == 10.0
    responses.get(f"{BASE}/x", status=429, headers={"Retry-After": "10"})
    responses.get(f"{BASE}/x", status=429, headers={"Retry-After": "11"})
    sleeps: list[float] = []
    with pytest.raises(RateLimited) as info:
        client(sleep=sleeps.append).request("GET", "/x")
    assert info.value.retry_after == 11.0 and sleeps == [10.0] and len(responses.calls) == 2


@responses.activate
def test_429_exhausted_raises_rate_limited_with_retry_after() -> None:
    responses.get(f"{BASE}/x", status=429, headers={"Retry-After": "1"})
    sleeps: list[float] = []
    with pytest.raises(RateLimited) as info:
        client(sleep=sleeps.append).request("GET", "/x")
    assert info.value.retry_after == 1.0 and sleeps == [1.0, 1.0] and len(responses.calls) == 3


@responses.activate
def test_the_products_rate_limit_header_is_read_on_success() -> None:
    responses.get(f"{BASE}/x", json={}, headers={"X-Left": "41"})
    responses.get(f"{BASE}/x", json={}, headers={"X-Left": "many"})
    http = client(Conflicted)
    assert http.rate_limit_remaining is None
    http.request("GET", "/x")
    assert http.rate_limit_remaining == 41
    http.request("GET", "/x")
    assert http.rate_limit_remaining is None  # unreadable: unknown, not a stale number
    plain = client()
    responses.get(f"{BASE}/y", json={}, headers={"X-Left": "41"})
    plain.request("GET", "/y")
    assert plain.rate_limit_remaining is None  # no header named: nothing read


# ---------------------------------------------------------------- logs


@responses.activate
def test_retries_are_logged_under_the_product_without_the_credential(caplog: Any) -> None:
    caplog.set_level(logging.INFO, logger="sla.adapters.conflicted")
    responses.get(f"{BASE}/x", status=503)
    responses.get(f"{BASE}/x", status=429, headers={"Retry-After": "1"})
    responses.get(f"{BASE}/x", json={})
    client(Conflicted, jitter=lambda: 0.0).request("GET", "/x")
    logged = [(r.name, r.getMessage(), r.where) for r in caplog.records]
    assert logged == [
        ("sla.adapters.conflicted", "conflicted.retry", "GET /x"),
        ("sla.adapters.conflicted", "conflicted.rate_limited", "GET /x"),
    ]
    retry, limited = caplog.records
    assert (retry.why, retry.delay, limited.retry_after) == ("HTTP 503", 0.5, 1.0)
    assert "t0ken" not in caplog.text


# ---------------------------------------------------------------- confirming a 404


@responses.activate
def test_confirm_gone_rereads_the_ticket_then_probes_the_credentials() -> None:
    responses.get(f"{BASE}/t/1", status=404)
    responses.get(f"{BASE}/me", json={"id": 7})
    first = NotFound("PUT /t/1: HTTP 404", 404)
    confirmed = client().confirm_gone(first, "/t/1", "/me", lambda me: me["id"] == 7)
    assert confirmed is not first and confirmed.confirmed and confirmed.status == 404
    assert str(confirmed).startswith("PUT /t/1: HTTP 404; confirmed")
    assert [c.request.url for c in responses.calls] == [f"{BASE}/t/1", f"{BASE}/me"]


@responses.activate
def test_confirm_gone_leaves_the_error_unconfirmed_when_the_probe_answer_is_refused() -> None:
    responses.get(f"{BASE}/t/1", status=404)
    responses.get(f"{BASE}/me", json={"id": None})
    first = NotFound("PUT /t/1: HTTP 404", 404)
    assert client().confirm_gone(first, "/t/1", "/me", lambda me: me["id"] is not None) is first
    assert not first.confirmed


@responses.activate
@pytest.mark.parametrize(
    "first",
    [NotFound("PUT /t/1: HTTP 422: gone", 422), NotFound("x", 404, confirmed=True)],
    ids=["another status", "already confirmed"],
)
def test_confirm_gone_makes_no_call_for_a_verdict_that_is_not_a_bare_404(first: NotFound) -> None:
    assert client().confirm_gone(first, "/t/1", "/me") is first
    assert len(responses.calls) == 0


@responses.activate
def test_confirm_gone_gives_up_quietly_when_the_reread_fails_otherwise() -> None:
    responses.get(f"{BASE}/t/1", status=403)
    first = NotFound("PUT /t/1: HTTP 404", 404)
    assert client().confirm_gone(first, "/t/1", "/me") is first
    assert len(responses.calls) == 1


# ---------------------------------------------------------------- calls that are not idempotent


def never_asked() -> bool:
    raise AssertionError("the probe must not be asked")


@responses.activate
@pytest.mark.parametrize(
    ("outcome", "error", "text"),
    [
        (requests.exceptions.ReadTimeout("read timed out"), Timeout, "ReadTimeout"),
        (requests.exceptions.ConnectionError("reset by peer"), Timeout, "ConnectionError"),
        (502, ServerError, "HTTP 502: Bad Gateway"),
    ],
)
def test_a_post_whose_outcome_is_unknown_is_not_sent_again_without_a_probe(
        outcome: Any, error: type[ApiError], text: str) -> None:
    if isinstance(outcome, int):
        responses.post(f"{BASE}/c", status=outcome)
    else:
        responses.post(f"{BASE}/c", body=outcome)
    responses.post(f"{BASE}/c", status=201, json={"id": 1})
    sleeps: list[float] = []
    with pytest.raises(error) as info:
        client(sleep=sleeps.append).request("POST", "/c", json={"body": "x"})
    assert str(info.value) == f"POST /c: {text}; not sent again: it may have been applied"
    assert info.value.retryable and len(responses.calls) == 1 and sleeps == []


@responses.activate
def test_a_post_that_timed_out_is_done_when_the_probe_finds_it(caplog: Any) -> None:
    caplog.set_level(logging.INFO, logger="sla.adapters.http")
    responses.post(f"{BASE}/c", body=requests.exceptions.ReadTimeout("read timed out"))
    asked: list[bool] = []
    sleeps: list[float] = []
    http = client(sleep=sleeps.append, jitter=lambda: 0.0)
    assert http.request("POST", "/c", json={}, applied=lambda: asked.append(True) or True) is None
    assert len(responses.calls) == 1 and asked == [True] and sleeps == [0.5]  # backoff, then the probe
    assert [(r.getMessage(), r.why) for r in caplog.records if r.getMessage() != "http.retry"] == [
        ("http.applied_after_all", "ReadTimeout")]


@responses.activate
def test_a_post_is_sent_again_after_a_5xx_only_when_the_probe_does_not_find_it() -> None:
    responses.post(f"{BASE}/c", status=503)
    responses.post(f"{BASE}/c", body=requests.exceptions.ReadTimeout("read timed out"))
    responses.post(f"{BASE}/c", status=201, json={"id": 7})
    asked: list[int] = []
    answer = client().request("POST", "/c", json={}, applied=lambda: asked.append(1) or False)
    assert answer == {"id": 7} and len(responses.calls) == 3 and asked == [1, 1]


@responses.activate
def test_a_post_is_raised_after_the_attempts_when_the_probe_never_finds_it() -> None:
    responses.post(f"{BASE}/c", status=500)
    with pytest.raises(ServerError, match=r"^POST /c: HTTP 500 after 3 attempts"):
        client().request("POST", "/c", json={}, applied=lambda: False)
    assert len(responses.calls) == 3


@responses.activate
@pytest.mark.parametrize(
    "first",
    [requests.exceptions.ConnectTimeout("connect timed out"), 429],
    ids=["never connected", "rate limited"],
)
def test_a_post_that_surely_was_not_applied_is_retried_without_asking(first: Any) -> None:
    if isinstance(first, int):
        responses.post(f"{BASE}/c", status=first, headers={"Retry-After": "1"})
    else:
        responses.post(f"{BASE}/c", body=first)
    responses.post(f"{BASE}/c", status=201, json={"id": 1})
    assert client().request("POST", "/c", json={}, applied=never_asked) == {"id": 1}
    assert len(responses.calls) == 2


@responses.activate
def test_a_conflict_the_product_retries_is_sent_again_without_asking() -> None:
    responses.post(f"{BASE}/c", status=409)
    responses.post(f"{BASE}/c", status=201, json={})
    assert client(Conflicted).request("POST", "/c", json={}) == {}


@responses.activate
def test_the_caller_may_say_whether_a_call_is_idempotent() -> None:
    responses.put(f"{BASE}/t", body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(Timeout, match="not sent again"):  # e.g. a ticket update that adds a note
        client().request("PUT", "/t", json={}, idempotent=False)
    assert len(responses.calls) == 1
    responses.post(f"{BASE}/s", body=requests.exceptions.ReadTimeout("read timed out"))
    responses.post(f"{BASE}/s", json={"found": 1})
    assert client().request("POST", "/s", json={}, idempotent=True) == {"found": 1}  # e.g. a search


def test_a_refused_connection_was_never_sent_a_reset_one_may_have_been() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    with pytest.raises(requests.exceptions.ConnectionError) as info:
        requests.post(f"http://127.0.0.1:{port}/c", timeout=2)
    assert never_sent(info.value)
    assert never_sent(requests.exceptions.ConnectTimeout("connect timed out"))
    assert not never_sent(requests.exceptions.ConnectionError("reset by peer"))
    assert not never_sent(requests.exceptions.ReadTimeout("read timed out"))
