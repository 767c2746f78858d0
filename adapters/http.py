"""One base HTTP client for every product: timeouts, auth, rate-limit headers, short retries, typed errors.

A product subclasses `HttpClient` and supplies only what is its own: how to read its JSON error body,
which rate-limit header it sends, whether 409 is worth a retry, and special cases in
`error_class`. Retries here are deliberately short (a few attempts, seconds): 5xx, timeouts and
429 with a small Retry-After. Anything longer is raised as a typed error for the job to
reschedule. The credential lives only in the session's auth object (redacted repr); messages
carry the method, the path and the product's own error text, never the header.

A call that is not idempotent (POST, PATCH: a comment, a note) is never sent again blindly: a read
timeout, a dropped connection or a 5xx may hide a success (the comment was stored, the answer was
lost), so such a call is sent again only when its caller's probe (`applied`, e.g. "is the
comment's marker on the ticket?") says it was not applied.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol, Self
from urllib.parse import urlsplit

import requests
import urllib3

from adapters.base import (
    ApiError,
    Conflict,
    Forbidden,
    NotFound,
    RateLimited,
    ServerError,
    Timeout,
    Unauthorized,
)
from adapters.settings import Secret

ERROR_TEXT_LIMIT = 500
#: Methods whose repetition does what one call does (RFC 9110, 9.2.2): retried after any failure.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_TYPED: dict[int, type[ApiError]] = {401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict}


class HeaderAuth(requests.auth.AuthBase):
    """Sets the Authorization header when a request is prepared; the repr never shows it."""

    def __init__(self, authorization: Secret) -> None:
        self._authorization = authorization

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = self._authorization.value
        return r

    def __repr__(self) -> str:
        return "HeaderAuth(***)"


def retry_after(response: requests.Response, default: float) -> float:
    """Seconds from `Retry-After`; `default` when it is missing, an HTTP-date or garbage."""
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return default


def int_header(response: requests.Response, name: str) -> int | None:
    try:
        return int(response.headers[name])
    except (KeyError, ValueError):
        return None


def never_sent(exc: requests.RequestException) -> bool:
    """Whether a transport error happened before the request could reach the server (no connection)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None  # requests wraps MaxRetryError
    return isinstance(reason, urllib3.exceptions.NewConnectionError)  # refused, DNS: never connected


def _json_body(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


class HttpSettings(Protocol):
    """What a product's settings give its HTTP client (`HttpClient.from_settings`)."""

    @property
    def base_url(self) -> str: ...
    @property
    def authorization(self) -> Secret | str: ...
    @property
    def connect_timeout(self) -> float: ...
    @property
    def read_timeout(self) -> float: ...
    @property
    def max_attempts(self) -> int: ...
    @property
    def max_retry_after(self) -> float: ...


class HttpClient:
    #: Names logs (`sla.adapters.<product>`, events `<product>.retry`, `<product>.rate_limited`).
    product = "http"
    #: Whether 409 Conflict is retried like a 5xx (Zendesk) or raised at once (Jira).
    retry_conflicts = False
    #: The wait assumed when a 429 has no usable Retry-After.
    default_retry_after = 5.0
    #: The header counting requests left in the product's rate-limit window (None: not read).
    rate_limit_remaining_header: str | None = None

    def __init__(
        self,
        base_url: str,
        authorization: Secret | str,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_attempts: int = 3,
        max_retry_after: float = 10.0,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        session: requests.Session | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"{type(self).__name__}: max_attempts must be >= 1, got {max_attempts!r}")
        if isinstance(authorization, str):
            authorization = Secret(authorization)
        self.base_url = base_url.rstrip("/")
        self.max_attempts = max_attempts
        self.max_retry_after = max_retry_after  # a longer wait is the job's decision, not a blocked worker's
        self.backoff = backoff
        self._timeout = (connect_timeout, read_timeout)
        self._sleep = sleep
        self._jitter = jitter
        self._session = session or requests.Session()
        self._session.auth = HeaderAuth(authorization)
        self._session.headers.update({"Accept": "application/json", "User-Agent": "sla-connector"})
        self._log = logging.getLogger(f"sla.adapters.{self.product}")
        #: Requests left in the current window, from the product's rate-limit header (None: unknown).
        self.rate_limit_remaining: int | None = None

    @classmethod
    def from_settings(
        cls,
        settings: HttpSettings,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> Self:
        return cls(
            settings.base_url,
            settings.authorization,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            max_attempts=settings.max_attempts,
            max_retry_after=settings.max_retry_after,
            session=session,
            sleep=sleep,
            jitter=jitter,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r})"

    # ------------------------------------------------------------ what a product may override

    def json_error_text(self, data: Any) -> str:
        """The product's own error text from its decoded JSON error body ("": show the body as is)."""
        return ""

    def error_class(self, status: int, text: str) -> type[ApiError]:
        """The typed error of a 4xx answer that is not retried."""
        return _TYPED.get(status, ApiError)

    # ------------------------------------------------------------ the call

    def error_text(self, response: requests.Response) -> str:
        """What an error message quotes of an error answer: the product's text, else the raw body."""
        try:
            data = response.json()
        except ValueError:
            return (response.text or response.reason or "").strip()[:ERROR_TEXT_LIMIT]
        return (self.json_error_text(data) or str(data))[:ERROR_TEXT_LIMIT]

    def url(self, path: str) -> str:
        """`path` under the base URL; absolute URLs (a product's own next-page links) pass through.

        Only to the base URL's own origin: the session would send the credential to any host.
        """
        if not path.startswith(("https://", "http://")):
            return self.base_url + path
        origin, base = urlsplit(path), urlsplit(self.base_url)
        if (origin.scheme, origin.netloc) != (base.scheme, base.netloc):
            where = f"{origin.scheme}://{origin.netloc}{origin.path}"
            raise ApiError(f"{where}: not followed, it leaves {self.base_url} (and would get the credential)")
        return path

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotent: bool | None = None,
        applied: Callable[[], bool] | None = None,
    ) -> Any:
        """The decoded JSON answer (None when empty). 429, 5xx and timeouts: a bounded retry.

        `idempotent` (default: by the method, `IDEMPOTENT_METHODS`) says whether sending the call
        twice does what sending it once does. A call that is not is sent again after an outcome
        that may hide its success (a read timeout, a dropped connection, a 5xx) only when
        `applied`, asked after the backoff, answers False; when it answers True the call is done
        and None is returned (its answer is lost). Without `applied` that outcome is raised at once
        (retryable) for the job, whose retry looks before it writes. Outcomes that prove the call
        was not applied (no connection made, 429, a 409 the product retries) are retried as usual.
        Errors of `applied` itself propagate.
        """
        url = self.url(path)
        where = f"{method} {urlsplit(path).path}"
        safe = method.upper() in IDEMPOTENT_METHODS if idempotent is None else idempotent
        attempts = self.max_attempts
        unsure: str | None = None  # why the previous attempt may have been applied after all
        for attempt in range(1, attempts + 1):
            last = attempt == attempts
            if unsure is not None and applied is not None and applied():
                self._log.info(f"{self.product}.applied_after_all", extra={"where": where, "why": unsure})
                return None
            unsure = None
            try:
                response = self._session.request(method, url, params=params, json=json, timeout=self._timeout)
            except (requests.Timeout, requests.ConnectionError) as exc:
                kind = type(exc).__name__
                maybe = not safe and not never_sent(exc)
                if maybe and applied is None:
                    raise Timeout(f"{where}: {kind}; not sent again: it may have been applied") from None
                if last:
                    raise Timeout(f"{where}: {kind} after {attempts} attempts") from None
                self._backoff(attempt, where, kind)
                unsure = kind if maybe else None
                continue
            except requests.RequestException as exc:  # e.g. a broken chunked answer
                raise ApiError(f"{where}: {type(exc).__name__}") from None
            status = response.status_code
            if status < 400:
                return self._decode(response, where)
            text = self.error_text(response)
            if status == 429:
                wait = retry_after(response, self.default_retry_after)
                if last or wait > self.max_retry_after:
                    raise RateLimited(f"{where}: rate limited (429): {text}", retry_after=wait)
                self._log.info(f"{self.product}.rate_limited", extra={"where": where, "retry_after": wait})
                self._sleep(wait)
                continue
            if status >= 500 or (status == 409 and self.retry_conflicts):
                maybe = status >= 500 and not safe
                if maybe and applied is None:
                    message = f"{where}: HTTP {status}: {text}; not sent again: it may have been applied"
                    raise ServerError(message, status)
                if last:
                    error = Conflict if status == 409 else ServerError
                    raise error(f"{where}: HTTP {status} after {attempts} attempts: {text}", status)
                self._backoff(attempt, where, f"HTTP {status}")
                unsure = f"HTTP {status}" if maybe else None
                continue
            error = self.error_class(status, text)(f"{where}: HTTP {status}: {text}", status)
            error.body = _json_body(response)  # which field a validation error names (EffectRejected)
            raise error
        raise AssertionError("unreachable")  # pragma: no cover

    def confirm_gone(
        self,
        exc: NotFound,
        ticket_path: str,
        probe_path: str,
        probe_ok: Callable[[Any], bool] = lambda answer: True,
    ) -> NotFound:
        """`exc` as a confirmed deletion, or `exc` itself when the 404 is not to be believed yet.

        A bare 404 also means lost permission or refused credentials. Confirmed: the ticket still
        answers 404 to a plain GET and the authenticated probe (the product's "who am I") succeeds
        and `probe_ok` accepts its answer. Any other outcome leaves `exc` unconfirmed (retried).
        Only for a product that sends no deletion event otherwise; Jira does not use it: it answers
        404 for a lost *Browse projects* permission too while its /myself works, and it does send
        `jira:issue_deleted`.
        """
        if exc.status != 404 or exc.confirmed:
            return exc
        try:
            self.request("GET", ticket_path)
        except NotFound as again:
            if again.status != 404:
                return exc
        except ApiError:
            return exc
        else:
            return self._unconfirmed(exc, f"GET {ticket_path} answers")
        try:
            answer = self.request("GET", probe_path)
        except ApiError as probe_error:
            return self._unconfirmed(exc, f"{probe_path}: {type(probe_error).__name__}")
        if not probe_ok(answer):
            return self._unconfirmed(exc, f"{probe_path}: not an authenticated user")
        confirmed = f"{exc}; confirmed: GET {ticket_path} answers 404 and {probe_path} succeeds"
        return NotFound(confirmed, 404, confirmed=True)

    def _unconfirmed(self, exc: NotFound, why: str) -> NotFound:
        self._log.info(f"{self.product}.not_found_unconfirmed", extra={"why": why})
        return exc

    def _decode(self, response: requests.Response, where: str) -> Any:
        if self.rate_limit_remaining_header:
            self.rate_limit_remaining = int_header(response, self.rate_limit_remaining_header)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:  # e.g. a proxy's HTML page, not the product
            status = response.status_code
            raise ServerError(f"{where}: HTTP {status} with a body that is not JSON", status) from None

    def _delay(self, attempt: int) -> float:
        """Exponential backoff with full jitter on top: 0.5 s, 1 s, 2 s ... plus up to as much again."""
        base = self.backoff * 2 ** (attempt - 1)
        return base + base * self._jitter()

    def _backoff(self, attempt: int, where: str, why: str) -> None:
        delay = self._delay(attempt)
        self._log.info(f"{self.product}.retry", extra={"where": where, "why": why, "delay": round(delay, 3)})
        self._sleep(delay)
