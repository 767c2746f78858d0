"""Zendesk's flavour of the shared HTTP client (`adapters/http.py`): error text, 409 retried, paging.

Zendesk answers 409 when two updates to one ticket race, so it is retried like a 5xx; its rate
limits are per minute, so a 429 without Retry-After assumes a minute (left to the job).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from adapters.base import ApiError, NotFound
from adapters.http import HttpClient


class ZendeskHttp(HttpClient):
    product = "zendesk"
    retry_conflicts = True
    default_retry_after = 60.0
    rate_limit_remaining_header = "X-Rate-Limit-Remaining"

    def json_error_text(self, data: Any) -> str:
        """Zendesk's own error text: {"error": "...", "description": "..."} and its variants."""
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
        return "; ".join(p for p in parts if p)

    def error_class(self, status: int, text: str) -> type[ApiError]:
        if status == 422 and "closed prevents ticket update" in text.lower():
            return NotFound  # a closed ticket can never be written again: for the connector it is gone
        return super().error_class(status, text)

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
