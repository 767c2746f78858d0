"""A minimal test-only helpdesk adapter ("shelldesk") for the shell's tests (receiver, CLI, config).

It follows the adapter protocol (adapters/base.py) with the smallest possible product: payloads
{"id": str, "ticket": str | null, ...} signed with `X-Testdesk-Signature: sha256=<hex HMAC>`. Tests
register it as `adapters.shelldesk` with `register()`, so it is found by the same loader as the
real adapters (fakes/testdesk.py is the pipeline tests' adapter: another product name, so that the
two never stand in for each other whatever order the tests run in). The real Jira and Zendesk
adapters are used wherever they matter.
"""

from __future__ import annotations

import hashlib
import hmac
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import ModuleType
from typing import Any

from adapters.base import PayloadError, SignatureError
from sla.effects import Effect

CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["product", "secret_env"],
    "additionalProperties": False,
    "properties": {
        "product": {"const": "shelldesk"},
        "dry_run": {"type": "boolean"},
        "secret_env": {"type": "string", "pattern": "^[A-Z_][A-Z0-9_]*$"},
        "base_url": {"type": "string"},
    },
}

#: Every install/uninstall across instances, so tests can see what happened.
WEBHOOKS: dict[str, dict[str, str]] = {}


def sign_body(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Client:
    def apply(self, ticket_id: str, effects: Sequence[Effect]) -> list[Effect]:
        return list(effects)


class Installer:
    def __init__(self, instance: str) -> None:
        self.instance = instance

    def install(self, url: str) -> dict[str, Any]:
        existing = WEBHOOKS.get(self.instance)
        if existing and existing["url"] == url:
            return {"created": [], "found": [dict(existing)]}
        WEBHOOKS[self.instance] = {"id": f"hook-{self.instance}", "url": url}
        return {"created": [dict(WEBHOOKS[self.instance])], "found": []}

    def uninstall(self) -> dict[str, Any]:
        removed = WEBHOOKS.pop(self.instance, None)
        return {"removed": [removed] if removed else []}

    def list(self) -> list[dict[str, Any]]:
        hook = WEBHOOKS.get(self.instance)
        return [dict(hook)] if hook else []


class ShelldeskAdapter:
    product = "shelldesk"

    def __init__(self, instance: str, secret: str) -> None:
        self.instance = instance
        self._secret = secret.encode()

    def verify(self, headers: Mapping[str, str], body: bytes, now: datetime) -> None:
        given = headers.get("x-testdesk-signature")
        if not given:
            raise SignatureError("missing X-Testdesk-Signature header")
        expected = "sha256=" + hmac.new(self._secret, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise SignatureError("signature does not match the body")

    def validate(self, payload: Any) -> None:
        if not isinstance(payload, dict):
            raise PayloadError("expected an object", "$")
        if not isinstance(payload.get("id"), str):
            raise PayloadError("'id' is a required string", "$.id")
        if "ticket" in payload and not isinstance(payload["ticket"], str | None):
            raise PayloadError("expected a string or null", "$.ticket")

    def delivery_id(self, headers: Mapping[str, str], payload: Any) -> str:
        return payload["id"]

    def ticket_id(self, payload: Any) -> str | None:
        return payload.get("ticket")

    def normalise(self, payload: Any, headers: Mapping[str, str]) -> list:
        return []

    def client(self) -> Client:
        return Client()

    def installer(self) -> Installer:
        return Installer(self.instance)

    def sign(self, body: bytes, now: datetime) -> dict[str, str]:
        return {"X-Testdesk-Signature": "sha256=" + hmac.new(self._secret, body, hashlib.sha256).hexdigest()}


def create(instance: str, config: Mapping[str, Any], env: Mapping[str, str]) -> ShelldeskAdapter:
    name = config["secret_env"]
    secret = env.get(name)
    if not secret:
        raise ValueError(f"secret_env: environment variable {name} is not set")
    return ShelldeskAdapter(instance, secret)


def register() -> ModuleType:
    """Make this module importable as `adapters.shelldesk` (idempotent)."""
    module = sys.modules[__name__]
    sys.modules["adapters.shelldesk"] = module
    return module
