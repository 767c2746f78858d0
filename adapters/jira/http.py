"""Jira's flavour of the shared HTTP client (`adapters/http.py`): its error text and rate-limit header.

409 is not retried here: for Jira it means the issue changed under us, and the job decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.http import HttpClient


class JiraHttp(HttpClient):
    product = "jira"
    default_retry_after = 5.0  # an HTTP-date or garbage: a cautious default
    rate_limit_remaining_header = "X-RateLimit-Remaining"

    def json_error_text(self, data: Any) -> str:
        """Jira's error text: `errorMessages` and `errors` of its JSON error body."""
        if not isinstance(data, Mapping):
            return ""
        parts = [str(m) for m in data.get("errorMessages") or ()]
        parts += [f"{k}: {v}" for k, v in (data.get("errors") or {}).items()]
        return "; ".join(parts)
