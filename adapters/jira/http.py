"""One base HTTP client for Jira: timeouts, auth, rate-limit headers, short bounded retries, typed errors.

Nothing here knows a Jira endpoint. The credential lives only in the session's Authorization
header; error messages carry the method, the path and Jira's own error text, never the header.
A candidate for `adapters/http.py` once the Zendesk adapter needs the same thing.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import Any

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

MAX_RETRY_AFTER = 60.0  # a longer wait is the job's decision, not a blocked worker's


def error_text(response: requests.Response) -> str:
    """Jira's error text: `errorMessages` and `errors` of its JSON error body, else the raw text."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:500]
    if not isinstance(data, Mapping):
        return str(data)[:500]
    parts = [str(m) for m in data.get("errorMessages") or ()]
    parts += [f"{k}: {v}" for k, v in (data.get("errors") or {}).items()]
    return "; ".join(parts) or str(data)[:500]


def _retry_after(response: requests.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return 5.0  # an HTTP-date or garbage: a cautious default


class HttpClient:
    def __init__(
        self,
        base_url: str,
        authorization: str,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_attempts: int = 3,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        session: requests.Session | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"HttpClient: max_attempts must be >= 1, got {max_attempts!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.sleep = sleep
        self.jitter = jitter
        self.session = session or requests.Session()
        self.session.headers.update({"Authorization": authorization, "Accept": "application/json"})

    def __repr__(self) -> str:
        return f"HttpClient({self.base_url!r})"

    def request(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None
    ) -> Any:
        """The decoded JSON answer (None when empty). 429, 5xx and timeouts: a bounded retry."""
        what = f"{method} {path}"
        for attempt in range(1, self.max_attempts + 1):
            last = attempt == self.max_attempts
            try:
                response = self.session.request(
                    method, self.base_url + path, params=params, json=json, timeout=self.timeout
                )
            except (requests.Timeout, requests.ConnectionError) as exc:
                if last:
                    raise Timeout(f"{what}: {type(exc).__name__} after {attempt} attempts") from None
                self.sleep(self._delay(attempt))
                continue
            except requests.RequestException as exc:  # e.g. a broken chunked answer
                raise ApiError(f"{what}: {type(exc).__name__}") from None
            status = response.status_code
            if status < 400:
                if not response.content:
                    return None
                try:
                    return response.json()
                except ValueError:  # a proxy's HTML page, not Jira
                    raise ServerError(f"{what}: HTTP {status} with a body that is not JSON", status) from None
            text = error_text(response)
            if status == 429:
                wait = _retry_after(response)
                if last or wait > MAX_RETRY_AFTER:
                    raise RateLimited(f"{what}: rate limited: {text}", retry_after=wait)
                self.sleep(wait)
                continue
            if status >= 500:
                if last:
                    raise ServerError(f"{what}: HTTP {status} after {attempt} attempts: {text}", status)
                self.sleep(self._delay(attempt))
                continue
            raise _typed(status, f"{what}: HTTP {status}: {text}")
        raise AssertionError("unreachable")  # pragma: no cover

    def _delay(self, attempt: int) -> float:
        """Exponential backoff with full jitter on top: 0.5 s, 1 s, 2 s ... plus up to as much again."""
        base = self.backoff * 2 ** (attempt - 1)
        return base + base * self.jitter()


def _typed(status: int, message: str) -> ApiError:
    cls = {401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict}.get(status, ApiError)
    return cls(message, status)
