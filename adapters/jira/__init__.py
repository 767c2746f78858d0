"""Jira Cloud and Data Center adapter: `create(instance, config, env)` and `CONFIG_SCHEMA`.

See docs/install-jira.md for the admin's guide and the meaning of every setting.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from adapters.jira import inbound
from adapters.jira.client import JiraClient
from adapters.jira.config import CONFIG_SCHEMA, JiraConfig, load_config
from adapters.jira.http import JiraHttp
from adapters.jira.install import JiraInstaller
from sla.events import TicketEvent

__all__ = ["CONFIG_SCHEMA", "JiraAdapter", "create"]


class JiraAdapter:
    product = "jira"

    def __init__(self, cfg: JiraConfig, sleep: Callable[[float], None] = time.sleep) -> None:
        self.cfg = cfg
        self.instance = cfg.instance
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"JiraAdapter({self.instance!r}, {self.cfg.base_url!r})"

    def verify(self, headers: Mapping[str, str], body: bytes, now: datetime) -> None:
        inbound.verify(self.cfg, headers, body)  # Jira signs no timestamp: `now` is unused

    def sign(self, body: bytes, now: datetime) -> dict[str, str]:
        """The headers Jira would send with `body` (for send-test-event); Jira signs no timestamp."""
        return inbound.sign(self.cfg, body)

    def delivery_headers(self, delivery_id: str) -> dict[str, str]:
        """Jira keeps one identifier per delivery across its retries: the same one tests dedupe."""
        return {inbound.DELIVERY_HEADER: delivery_id}

    def validate(self, payload: Any) -> None:
        inbound.validate(payload)

    def delivery_id(self, headers: Mapping[str, str], payload: Any) -> str:
        return inbound.delivery_id(headers, payload)

    def ticket_id(self, payload: Any) -> str | None:
        return inbound.ticket_id(payload)

    def display_key(self, payload: Any) -> str | None:
        """The issue key people type ("SUP-42"); the connector indexes it to find the issue by key."""
        return inbound.display_key(payload)

    def classify(self, payload: Any) -> str:
        return inbound.classify(payload)

    def normalise(self, payload: Any, headers: Mapping[str, str]) -> list[TicketEvent]:
        return inbound.normalise(self.cfg, payload, headers)

    def http(self) -> JiraHttp:
        return JiraHttp.from_settings(self.cfg, sleep=self._sleep)

    def client(self) -> JiraClient:
        return JiraClient(self.cfg, self.http())

    def installer(self) -> JiraInstaller:
        return JiraInstaller(self.cfg, self.http())


def create(instance: str, config: Mapping[str, Any], env: Mapping[str, str]) -> JiraAdapter:
    """The adapter for one configured Jira instance. Raises ValueError naming a bad setting."""
    return JiraAdapter(load_config(instance, config, env))
