"""A minimal, test-only helpdesk adapter ("testdesk"), loadable as `adapters.testdesk`.

Its payloads carry canonical events directly ({"ticket": id, "events": [TicketEvent.to_dict()]}),
so pipeline tests choose events precisely. Its client talks HTTP (faked with `responses` in the
tests) and maps statuses to the typed errors of adapters.base like the real clients do.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import ModuleType
from typing import Any

import requests

from adapters.base import (
    ApiError,
    Conflict,
    Forbidden,
    NotFound,
    PayloadError,
    RateLimited,
    ServerError,
    Timeout,
    Unauthorized,
    report_bad,
)
from sla.effects import Effect, EffectKind, comment_marker
from sla.events import TicketEvent

CONFIG_SCHEMA = {
    "type": "object",
    "properties": {"product": {}, "dry_run": {}, "base_url": {"type": "string"}},
    "required": ["base_url"],
}


PRIORITIES = ("low", "normal", "high", "urgent")  # what the fake product knows; others are bad values


class Client:
    def __init__(self, base_url: str, instance: str = "desk") -> None:
        self.base_url = base_url.rstrip("/")
        self.instance = instance
        self.session = requests.Session()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            resp = self.session.request(method, self.base_url + path, json=body, timeout=5)
        except requests.Timeout as exc:
            raise Timeout(f"{method} {path}: timeout") from exc
        except requests.ConnectionError as exc:
            raise Timeout(f"{method} {path}: connection failed") from exc
        code = resp.status_code
        if code < 300:
            return resp.json() if resp.content else None
        message = f"{method} {path}: HTTP {code}"
        if code == 429:
            raise RateLimited(message, float(resp.headers.get("Retry-After", "1")))
        errors = {401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict}
        if code == 404 and "confirmed" in resp.text:  # like the Zendesk client after its re-read and probe
            raise NotFound(message + "; confirmed", code, confirmed=True)
        if code in errors:
            raise errors[code](message, code)
        if code == 422 and "closed prevents ticket update" in resp.text.lower():
            raise NotFound(message, code)  # like the Zendesk client: a closed ticket is never writable again
        if code >= 500:
            raise ServerError(message, code)
        raise ApiError(message, code)

    def apply(self, ticket_id: str, effects: Sequence[Effect]) -> list[Effect]:
        update: dict[str, Any] = {}
        comments = [e for e in effects if e.kind is EffectKind.COMMENT]
        bad: list[tuple[Effect, ValueError]] = []
        for effect in effects:
            if effect.kind is EffectKind.SET_PRIORITY:  # like the real clients: an unknown value is set aside
                if effect.value in PRIORITIES:
                    update["priority"] = effect.value
                else:
                    bad.append((effect, ValueError(f"priority {effect.value!r} has no mapping")))
            if effect.kind is EffectKind.SET_DUE:
                update["due"] = effect.value
            elif effect.kind is EffectKind.ADD_TAG:
                update.setdefault("add_tags", []).append(effect.value)
            elif effect.kind is EffectKind.REMOVE_TAG:
                update.setdefault("remove_tags", []).append(effect.value)
        if update:
            self._call("PUT", f"/tickets/{ticket_id}", update)
        if comments:
            existing = self._call("GET", f"/tickets/{ticket_id}/comments")["comments"]
            bodies = "\n".join(c["body"] for c in existing)
            for effect in comments:
                marker = comment_marker(effect.key.removeprefix("comment:"))  # like the real clients
                if marker not in bodies:
                    self._call(
                        "POST", f"/tickets/{ticket_id}/comments", {"body": f"{effect.value}\n{marker}"}
                    )
        refused = {id(e) for e, _ in bad}
        applied = [e for e in effects if e.kind is not EffectKind.SET_ASSIGNEE and id(e) not in refused]
        report_bad(self.instance, ticket_id, bad, applied)
        return applied


class Adapter:
    product = "testdesk"

    def __init__(self, instance: str, config: Mapping[str, Any]) -> None:
        self.instance = instance
        self._client = Client(config["base_url"], instance)

    def verify(self, headers: Mapping[str, str], body: bytes, now: datetime) -> None:
        return None

    def validate(self, payload: Any) -> None:
        if not isinstance(payload, dict) or "events" not in payload:
            raise PayloadError("expected an object with events", "$")

    def delivery_id(self, headers: Mapping[str, str], payload: Any) -> str:
        return str(payload["delivery"])

    def ticket_id(self, payload: Any) -> str | None:
        return payload.get("ticket")

    def normalise(self, payload: Any, headers: Mapping[str, str]) -> list[TicketEvent]:
        if payload.get("poison"):
            raise ValueError("poison payload")
        return [TicketEvent.from_dict({**e, "ticket_id": payload["ticket"]}) for e in payload["events"]]

    def client(self) -> Client:
        return self._client


def create(instance: str, config: Mapping[str, Any], env: Mapping[str, str]) -> Adapter:
    return Adapter(instance, config)


def register() -> ModuleType:
    """Make this module loadable as `adapters.testdesk` (adapters.base.load("testdesk"))."""
    module = sys.modules[__name__]
    sys.modules["adapters.testdesk"] = module
    return module
