"""Jira's flavour of the shared HTTP client (`adapters/http.py`): its error text and rate-limit header.

409 is not retried here: for Jira it means the issue changed under us, and the job decides.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests

from adapters.http import HttpClient
from adapters.jira.config import JiraConfig


class JiraHttp(HttpClient):
    product = "jira"
    default_retry_after = 5.0  # an HTTP-date or garbage: a cautious default
    rate_limit_remaining_header = "X-RateLimit-Remaining"

    def __init__(
        self,
        cfg: JiraConfig,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        super().__init__(
            cfg.base_url,
            cfg.secrets.authorization,
            connect_timeout=cfg.connect_timeout,
            read_timeout=cfg.read_timeout,
            max_attempts=cfg.max_attempts,
            sleep=sleep,
            jitter=jitter,
            session=session,
        )

    def json_error_text(self, data: Any) -> str:
        """Jira's error text: `errorMessages` and `errors` of its JSON error body."""
        if not isinstance(data, Mapping):
            return ""
        parts = [str(m) for m in data.get("errorMessages") or ()]
        parts += [f"{k}: {v}" for k, v in (data.get("errors") or {}).items()]
        return "; ".join(parts)
