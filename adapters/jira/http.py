"""Jira's flavour of the shared HTTP client (`adapters/http.py`): its error text and rate-limit header.

409 is not retried here: for Jira it means the issue changed under us, and the job decides.
"""

from __future__ import annotations

from collections.abc import Mapping

import requests

from adapters.http import ERROR_TEXT_LIMIT, HttpClient


class JiraHttp(HttpClient):
    product = "jira"
    default_retry_after = 5.0  # an HTTP-date or garbage: a cautious default
    rate_limit_remaining_header = "X-RateLimit-Remaining"

    def error_text(self, response: requests.Response) -> str:
        """Jira's error text: `errorMessages` and `errors` of its JSON error body, else the raw text."""
        try:
            data = response.json()
        except ValueError:
            return response.text[:ERROR_TEXT_LIMIT]
        if not isinstance(data, Mapping):
            return str(data)[:ERROR_TEXT_LIMIT]
        parts = [str(m) for m in data.get("errorMessages") or ()]
        parts += [f"{k}: {v}" for k, v in (data.get("errors") or {}).items()]
        return "; ".join(parts) or str(data)[:ERROR_TEXT_LIMIT]
