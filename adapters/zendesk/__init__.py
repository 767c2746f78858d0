"""The Zendesk adapter: signed event/trigger webhooks in, tickets written back through the REST API.

`create(instance, config, env)` builds a `ZendeskAdapter` (the `adapters.base.Adapter` protocol);
`CONFIG_SCHEMA` is the JSON Schema of a Zendesk instance block. The admin's guide is
docs/install-zendesk.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import requests

from adapters.zendesk import inbound
from adapters.zendesk.client import ZendeskClient
from adapters.zendesk.config import CONFIG_SCHEMA, ZendeskSettings, load_settings
from adapters.zendesk.http import ZendeskHttp
from adapters.zendesk.install import ZendeskInstaller
from adapters.zendesk.signature import sign, verify_signature
from sla.events import TicketEvent

__all__ = ["CONFIG_SCHEMA", "ZendeskAdapter", "create"]


class ZendeskAdapter:
    product = "zendesk"

    def __init__(
        self,
        settings: ZendeskSettings,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.instance = settings.instance
        self._session = session
        self._sleep = sleep
        self._http: ZendeskHttp | None = None  # one client: its session and rate-limit reading are kept
        self._client: ZendeskClient | None = None  # one write-back client: it logs "no deadline field" once

    def __repr__(self) -> str:
        return f"ZendeskAdapter({self.instance!r})"

    # ------------------------------------------------------------ inbound

    def verify(self, headers: Mapping[str, str], body: bytes, now: datetime) -> None:
        secret = self.settings.webhook_secret.value if self.settings.webhook_secret else None
        verify_signature(headers, body, secret, now, self.settings.signature_max_age)

    def sign(self, body: bytes, now: datetime) -> dict[str, str]:
        """The headers Zendesk would send with `body` at `now` (for send-test-event)."""
        if self.settings.webhook_secret is None:
            raise ValueError(
                f"instance {self.instance!r}: environment variable {self.settings.secret_env} "
                "(webhook.secret_env) is not set, so there is no secret to sign with"
            )
        timestamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "X-Zendesk-Webhook-Signature": sign(self.settings.webhook_secret.value, timestamp, body),
            "X-Zendesk-Webhook-Signature-Timestamp": timestamp,
        }

    def delivery_headers(self, delivery_id: str) -> dict[str, str]:
        """Trigger deliveries are identified by the invocation id (event webhooks by their body's id)."""
        return {"X-Zendesk-Webhook-Invocation-Id": delivery_id}

    def validate(self, payload: Any) -> None:
        inbound.validate(payload)

    def delivery_id(self, headers: Mapping[str, str], payload: Any) -> str:
        return inbound.delivery_id(headers, payload)

    def ticket_id(self, payload: Any) -> str | None:
        return inbound.ticket_id(payload)

    def normalise(self, payload: Any, headers: Mapping[str, str]) -> list[TicketEvent]:
        return inbound.normalise(payload, headers, self.settings)

    # ------------------------------------------------------------ outbound

    def http(self) -> ZendeskHttp:
        if self._http is None:
            self._http = ZendeskHttp.from_settings(self.settings, session=self._session, sleep=self._sleep)
        return self._http

    def client(self) -> ZendeskClient:
        if self._client is None:
            self._client = ZendeskClient(self.settings, self.http())
        return self._client

    def installer(self) -> ZendeskInstaller:
        return ZendeskInstaller(self.settings, self.http())


def create(instance: str, config: Mapping[str, Any], env: Mapping[str, str]) -> ZendeskAdapter:
    """A Zendesk adapter for one configured instance. Raises ValueError naming the bad setting."""
    return ZendeskAdapter(load_settings(instance, config, env))
