"""Shared test helpers: a configured adapter, signed deliveries, fixtures."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from adapters.zendesk import ZendeskAdapter, create
from adapters.zendesk.signature import sign

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SECRET = "dGhpcyBpcyBhIHRlc3Qgc2lnbmluZyBzZWNyZXQ="
EMAIL = "sla-bot@acme.example"
TOKEN = "tok-SUPER-SECRET-0123"
BEARER = "oauth-SUPER-SECRET-4567"
ENV = {"ZD_EMAIL": EMAIL, "ZD_TOKEN": TOKEN, "ZD_SECRET": SECRET, "ZD_OAUTH": BEARER}
NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
SIGNED_AT = "2026-11-27T11:59:30Z"
BASE = "https://acme.zendesk.com"
CONNECTOR_USER = "900000000001"


def config(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "product": "zendesk",
        "subdomain": "acme",
        "auth": {"email_env": "ZD_EMAIL", "token_env": "ZD_TOKEN"},
        "webhook": {"secret_env": "ZD_SECRET"},
        "connector_user_id": int(CONNECTOR_USER),
        "custom_statuses": {"8447388091999": "on_hold"},
        "deadline_field_id": 360000123456,
        "deadline_timezone": "Europe/Berlin",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}  # None removes a setting


def adapter(
    sleeps: list[float] | None = None, env: dict[str, str] | None = None, **overrides: Any
) -> ZendeskAdapter:
    made = create("acme", config(**overrides), ENV if env is None else env)
    # No real waiting in tests: record the sleeps instead.
    return ZendeskAdapter(
        made.settings, session=requests.Session(), sleep=(sleeps if sleeps is not None else []).append
    )


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def signed_headers(body: bytes, timestamp: str = SIGNED_AT, secret: str = SECRET) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "x-zendesk-webhook-signature": sign(secret, timestamp, body),
        "x-zendesk-webhook-signature-timestamp": timestamp,
    }


def load(name: str) -> Any:
    return json.loads(fixture_bytes(name))
