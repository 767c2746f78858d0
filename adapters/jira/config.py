"""A Jira instance's settings: validated against `schemas/config.schema.json`, secrets read from env.

The config names environment variables (`token_env: JIRA_API_TOKEN`); only `load_config` reads
their values, and the resulting `Secrets` object never shows them in its repr.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from adapters.settings import authorization, check_config, env_value, load_schema, time_zone
from sla.events import Status

SCHEMA_DIR = Path(__file__).parent / "schemas"
CONFIG_SCHEMA, _CONFIG_VALIDATOR = load_schema(SCHEMA_DIR / "config.schema.json")

DEFAULT_PRIORITIES: dict[str, str] = {
    "Highest": "urgent",
    "High": "high",
    "Medium": "normal",
    "Low": "low",
    "Lowest": "low",
}
DEFAULT_STATUSES: dict[str, str] = {"Waiting for customer": "pending"}
DEFAULT_AUTOMATION_HEADER = "X-Automation-Secret"


@dataclass(frozen=True)
class Secrets:
    """Credential values read from the environment; repr and str never show them."""

    authorization: str  # the full Authorization header value
    webhook_secret: bytes | None
    automation_secret: bytes | None

    def __repr__(self) -> str:
        return "Secrets(<redacted>)"

    __str__ = __repr__


@dataclass(frozen=True)
class JiraConfig:
    instance: str
    base_url: str
    cloud: bool
    secrets: Secrets = field(repr=False)
    dry_run: bool = False
    automation_header: str = DEFAULT_AUTOMATION_HEADER.lower()
    connector_user: str | None = None
    agent_users: frozenset[str] = frozenset()
    agents_default: str = "atlassian_accounts_except_reporter"
    statuses: Mapping[str, Status] = field(default_factory=dict)  # casefolded name -> Status
    priorities: Mapping[str, str] = field(default_factory=dict)  # Jira name -> canonical (ordered)
    first_response_statuses: frozenset[str] = frozenset()  # casefolded names
    due_field: str = "duedate"
    due_timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    comment_visibility: Mapping[str, str] | None = None
    jsm_internal_comments: bool = False
    notify_users: bool = True  # False: edits send no email (needs the Administer Projects permission)
    webhook_jql: str | None = None
    outage_start_field: str | None = None  # a custom field id whose value is the canonical outage_start
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_attempts: int = 3
    max_retry_after: float = 10.0  # a longer wait is the job's decision, not a blocked worker's

    @property
    def authorization(self) -> str:
        return self.secrets.authorization

    @property
    def api_version(self) -> str:
        return "3" if self.cloud else "2"

    def canonical_priority(self, name: str | None) -> str | None:
        """Canonical priority of a Jira priority name; unmapped names pass through lower-cased."""
        if name is None:
            return None
        folded = {k.casefold(): v for k, v in self.priorities.items()}
        return folded.get(name.casefold(), name.casefold())

    def jira_priority(self, canonical: str) -> str:
        """The first Jira priority name mapped to `canonical` (the reverse of the map)."""
        for name, value in self.priorities.items():
            if value == canonical:
                return name
        raise ValueError(f"instances.{self.instance}.priorities: no Jira priority maps to {canonical!r}")


_ALTERNATIVES = {
    "": "set webhook_secret_env (signed admin webhooks) and/or automation_secret_env (Automation rules)",
    ".auth": "expected {email_env, token_env} (Cloud) or {bearer_env} (Data Center)",
}


def load_config(instance: str, config: Mapping[str, Any], env: Mapping[str, str]) -> JiraConfig:
    """Validate `config` (one instance block) and read its secrets from `env`. Raises ValueError."""
    where = f"instances.{instance}"
    check_config(_CONFIG_VALIDATOR, config, where, _ALTERNATIVES)
    header = authorization(config["auth"], env, where).value
    webhook_secret = automation_secret = None
    if "webhook_secret_env" in config:
        webhook_secret = env_value(env, config["webhook_secret_env"], f"{where}.webhook_secret_env").encode()
    if "automation_secret_env" in config:
        name = config["automation_secret_env"]
        automation_secret = env_value(env, name, f"{where}.automation_secret_env").encode()
    tz = time_zone(config.get("due_timezone", "UTC"), f"{where}.due_timezone")
    outage_field = config.get("outage_start_field")
    if outage_field is not None and outage_field == config.get("due_field"):
        # The connector writes deadlines there: they would be read back as outage starts.
        raise ValueError(f"{where}.outage_start_field: {outage_field!r} is also the "
                         f"due_field the connector writes deadlines into; name another field")
    statuses = {**DEFAULT_STATUSES, **config.get("statuses", {})}
    agents = config.get("agents", {})
    timeouts = config.get("timeouts", {})
    return JiraConfig(
        instance=instance,
        base_url=config["base_url"].rstrip("/"),
        cloud=config["deployment"] == "cloud",
        secrets=Secrets(header, webhook_secret, automation_secret),
        dry_run=bool(config.get("dry_run", False)),
        automation_header=config.get("automation_header", DEFAULT_AUTOMATION_HEADER).lower(),
        connector_user=config.get("connector_user"),
        agent_users=frozenset(agents.get("users", ())),
        agents_default=agents.get("default", "atlassian_accounts_except_reporter"),
        statuses={name.casefold(): Status(value) for name, value in statuses.items()},
        priorities=dict(config.get("priorities", DEFAULT_PRIORITIES)),
        first_response_statuses=frozenset(s.casefold() for s in config.get("first_response_statuses", ())),
        due_field=config.get("due_field", "duedate"),
        due_timezone=tz,
        comment_visibility=config.get("comment_visibility"),
        jsm_internal_comments=bool(config.get("jsm_internal_comments", False)),
        notify_users=bool(config.get("notify_users", True)),
        webhook_jql=config.get("webhook_jql"),
        outage_start_field=outage_field,
        connect_timeout=float(timeouts.get("connect", 5.0)),
        read_timeout=float(timeouts.get("read", 30.0)),
        max_attempts=int(config.get("max_attempts", 3)),
    )
