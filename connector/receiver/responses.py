"""JSON answers of the receiver and the ticket API (one shape for every error: {"error", "detail"})."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import orjson
from flask import Response

RETRY_AFTER_SECONDS = "5"


def json_response(body: Mapping[str, Any], status: int, headers: Mapping[str, str] | None = None) -> Response:
    try:
        data = orjson.dumps(body)
    except orjson.JSONEncodeError:  # a lone surrogate quoted in an error's detail: json escapes it
        data = json.dumps(body).encode()
    return Response(data, status=status, mimetype="application/json", headers=headers)


def error(status: int, reason: str, detail: str | None = None, **extra: Any) -> Response:
    """A small JSON error body. Callers never pass secrets or raw exception text from credentials."""
    body: dict[str, Any] = {"error": reason}
    if detail is not None:
        body["detail"] = detail
    body.update(extra)
    headers = {"Retry-After": RETRY_AFTER_SECONDS} if status == 503 else None
    return json_response(body, status, headers)
