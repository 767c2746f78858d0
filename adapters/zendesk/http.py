"""One HTTP client for the Zendesk API: auth, timeouts, rate limits, short bounded retries, typed errors.

Retries here are deliberately short (a few attempts, seconds): 5xx, 409, timeouts and 429 with a
small Retry-After. Anything longer is raised as a typed error and left to the job to reschedule.
Credentials live only in the auth object (redacted repr) and never reach a message or a log.
"""

from __future__ import annotations

import base64
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

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
from adapters.zendesk.config import Secret, ZendeskSettings

log = logging.getLogger("sla.adapters.zendesk")
_ERROR_TEXT_LIMIT = 500


class ZendeskAuth(requests.auth.AuthBase):
    """Basic `email/token:<api token>` or `Bearer <oauth token>`; the repr never shows them."""

    def __init__(self, scheme: str, user: str | None, secret: Secret) -> None:
        self._scheme = scheme
        self._user = user
        self._secret = secret

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        if self._scheme == "bearer":
            r.headers["Authorization"] = f"Bearer {self._secret.value}"
        else:
            raw = f"{self._user}/token:{self._secret.value}".encode()
            r.headers["Authorization"] = "Basic " + base64.b64encode(raw).decode("ascii")
        return r

    def __repr__(self) -> str:
        return f"ZendeskAuth({self._scheme}, ***)"


def error_text(response: requests.Response) -> str:
    """Zendesk's own error text: {"error": "...", "description": "..."} and its variants."""
    try:
        data = response.json()
    except ValueError:
        return (response.text or response.reason or "").strip()[:_ERROR_TEXT_LIMIT]
    parts: list[str] = []
    if isinstance(data, Mapping):
        err = data.get("error")
        if isinstance(err, Mapping):
            parts += [str(err.get(k)) for k in ("title", "message") if err.get(k)]
        elif err:
            parts.append(str(err))
        if data.get("description"):
            parts.append(str(data["description"]))
        if data.get("details"):
            parts.append(str(data["details"]))
        for item in data.get("errors") or []:
            if isinstance(item, Mapping):
                parts.append(": ".join(str(item[k]) for k in ("code", "title", "detail") if item.get(k)))
    text = "; ".join(p for p in parts if p) or str(data)
    return text[:_ERROR_TEXT_LIMIT]


def retry_after_seconds(response: requests.Response, default: float = 60.0) -> float:
    raw = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(raw))
    except ValueError:
        return default


def _int_header(response: requests.Response, name: str) -> int | None:
    try:
        return int(response.headers[name])
    except (KeyError, ValueError):
        return None


class ZendeskHttp:
    def __init__(
        self,
        settings: ZendeskSettings,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.base_url = settings.base_url
        self._settings = settings
        self._session = session or requests.Session()
        self._session.auth = ZendeskAuth(settings.auth_scheme, settings.auth_user, settings.auth_secret)
        self._session.headers.update({"Accept": "application/json", "User-Agent": "sla-connector"})
        self._timeout = (settings.connect_timeout, settings.read_timeout)
        self._sleep = sleep
        self._jitter = jitter
        #: Requests left in the current minute, from Zendesk's rate-limit headers (None: unknown).
        self.rate_limit_remaining: int | None = None

    def __repr__(self) -> str:
        return f"ZendeskHttp({self.base_url!r})"

    def url(self, path: str) -> str:
        return path if path.startswith("https://") or path.startswith("http://") else self.base_url + path

    def request(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None
    ) -> Any:
        """One API call; returns the decoded JSON body (None when empty). Raises ApiError subclasses."""
        url = self.url(path)
        where = f"{method} {urlsplit(url).path}"
        attempts = self._settings.max_attempts
        for attempt in range(1, attempts + 1):
            last = attempt == attempts
            try:
                response = self._session.request(method, url, params=params, json=json, timeout=self._timeout)
            except (requests.Timeout, requests.ConnectionError) as exc:
                kind = type(exc).__name__
                if last:
                    raise Timeout(f"{where}: {kind} after {attempts} attempts") from None
                self._backoff(attempt, where, kind)
                continue
            status = response.status_code
            if status < 400:
                self.rate_limit_remaining = _int_header(response, "x-rate-limit-remaining")
                if not response.content:
                    return None
                try:
                    return response.json()
                except ValueError:
                    raise ApiError(f"{where}: HTTP {status} with a body that is not JSON", status) from None
            text = error_text(response)
            if status == 429:
                wait = retry_after_seconds(response)
                if last or wait > self._settings.max_retry_after:
                    raise RateLimited(f"{where}: rate limited (429): {text}", retry_after=wait)
                log.info("zendesk.rate_limited", extra={"where": where, "retry_after": wait})
                self._sleep(wait)
                continue
            if status >= 500 or status == 409:
                if last:
                    error = Conflict if status == 409 else ServerError
                    raise error(f"{where}: HTTP {status} after {attempts} attempts: {text}", status)
                self._backoff(attempt, where, f"HTTP {status}")
                continue
            error = {401: Unauthorized, 403: Forbidden, 404: NotFound}.get(status, ApiError)
            if status == 422 and "closed prevents ticket update" in text.lower():
                # A closed ticket can never be written again: for the connector it is gone.
                error = NotFound
            raise error(f"{where}: HTTP {status}: {text}", status)
        raise AssertionError("unreachable")  # pragma: no cover

    def _backoff(self, attempt: int, where: str, why: str) -> None:
        delay = 0.5 * 2 ** (attempt - 1) * (1 + self._jitter())  # 0.5-1 s, 1-2 s, 2-4 s ...
        log.info("zendesk.retry", extra={"where": where, "why": why, "delay": round(delay, 3)})
        self._sleep(delay)

    def pages(self, path: str, key: str, params: Mapping[str, Any] | None = None) -> Iterator[Any]:
        """Items under `key` across pages: cursor paging (`meta.has_more`, `links.next`) or `next_page`."""
        url: str | None = path
        query: Mapping[str, Any] | None = params
        while url:
            data = self.request("GET", url, params=query) or {}
            yield from data.get(key) or []
            meta, links = data.get("meta") or {}, data.get("links") or {}
            if "has_more" in meta:
                url = links.get("next") if meta.get("has_more") else None
            else:
                url = data.get("next_page")
            query = None  # next URLs carry their own query
