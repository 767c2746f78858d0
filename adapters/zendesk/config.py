"""A Zendesk instance's settings: validated against schemas/config.schema.json, secrets from the env.

The configuration names environment variables; their values are read here once and kept only in
objects whose repr hides them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jsonschema import Draft202012Validator

from sla.events import Status

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
CONFIG_SCHEMA: dict[str, Any] = json.loads((SCHEMA_DIR / "config.schema.json").read_text())
_CONFIG_VALIDATOR = Draft202012Validator(CONFIG_SCHEMA)

#: Zendesk's own statuses (any casing) and where they land by default. `archived`/`scrubbed`
#: tickets are closed ones; `deleted` shows up in the snapshot of a deleted ticket.
DEFAULT_STATUSES: dict[str, Status] = {
    "new": Status.NEW,
    "open": Status.OPEN,
    "pending": Status.PENDING,
    "hold": Status.ON_HOLD,
    "on-hold": Status.ON_HOLD,  # the label `{{ticket.status}}` renders in some locales
    "on hold": Status.ON_HOLD,
    "solved": Status.SOLVED,
    "closed": Status.CLOSED,
    "archived": Status.CLOSED,
    "scrubbed": Status.CLOSED,
    "deleted": Status.CLOSED,
}
ZENDESK_PRIORITIES = ("urgent", "high", "normal", "low")


class Secret:
    """A credential: usable via `.value`, never shown by str/repr."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    @property
    def value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


@dataclass(frozen=True)
class ZendeskSettings:
    instance: str
    base_url: str
    auth_scheme: str  # "basic" (email/token) or "bearer" (OAuth)
    auth_user: str | None = field(repr=False)
    auth_secret: Secret = field(repr=False)
    webhook_kind: str
    webhook_name: str
    secret_env: str
    webhook_secret: Secret | None = field(repr=False)  # None until the admin has installed
    signature_max_age: int
    connector_user_id: str | None
    comment_author_id: str | None
    default_priority: str
    priorities: Mapping[str, str]  # zendesk (lower) -> canonical
    statuses: Mapping[str, Status]  # zendesk name (lower) -> canonical
    custom_statuses: Mapping[str, Status]  # custom status id -> canonical
    deadline_field_id: int | None
    deadline_format: str
    deadline_zone: ZoneInfo
    connect_timeout: float
    read_timeout: float
    max_attempts: int
    max_retry_after: float
    dry_run: bool = False

    def priority_to_zendesk(self, canonical: str) -> str:
        """The Zendesk priority to write for a canonical priority name (inverse of the mapping)."""
        for zendesk, mapped in sorted(self.priorities.items()):
            if mapped == canonical and zendesk in ZENDESK_PRIORITIES:
                return zendesk
        raise ValueError(
            f"instance {self.instance!r}: canonical priority {canonical!r} maps to no Zendesk priority "
            f"(one of {', '.join(ZENDESK_PRIORITIES)}); check `priorities`"
        )


def _path(error: Any) -> str:
    return "$" + "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)


def _env(env: Mapping[str, str], name: str, where: str) -> str:
    value = env.get(name)
    if not value:
        raise ValueError(f"{where}: environment variable {name} is not set")
    return value


def load_settings(instance: str, config: Mapping[str, Any], env: Mapping[str, str]) -> ZendeskSettings:
    """Validate `config` (one instance block) and read its secrets from `env`.

    Raises ValueError naming the failing path (`instances.<name>.<path>`) or the missing variable.
    """
    where = f"instances.{instance}"
    errors = sorted(
        _CONFIG_VALIDATOR.iter_errors(dict(config)), key=lambda e: [str(p) for p in e.absolute_path]
    )
    if errors:
        err = max(errors, key=lambda e: len(e.absolute_path))  # the deepest path is the most precise
        raise ValueError(f"{where}{_path(err)[1:]}: {err.message}")

    if ("subdomain" in config) == ("base_url" in config):
        raise ValueError(f"{where}: set exactly one of `subdomain` and `base_url`")
    if "subdomain" in config:
        base_url = f"https://{config['subdomain']}.zendesk.com"
    else:
        base_url = str(config["base_url"]).rstrip("/")

    auth = config["auth"]
    if "bearer_env" in auth:
        scheme, user = "bearer", None
        secret = Secret(_env(env, auth["bearer_env"], f"{where}.auth.bearer_env"))
    else:
        scheme = "basic"
        user = _env(env, auth["email_env"], f"{where}.auth.email_env")
        secret = Secret(_env(env, auth["token_env"], f"{where}.auth.token_env"))

    webhook = config["webhook"]
    # The signing secret only exists once `install` has created the webhook, so its absence is not
    # a configuration error here: verify() refuses every delivery until it is set (fails closed).
    raw_secret = env.get(webhook["secret_env"])

    priorities = {p: p for p in ZENDESK_PRIORITIES}
    priorities.update({str(k).lower(): str(v) for k, v in (config.get("priorities") or {}).items()})
    statuses = dict(DEFAULT_STATUSES)
    statuses.update({str(k).lower(): Status(v) for k, v in (config.get("statuses") or {}).items()})
    custom = {str(k): Status(v) for k, v in (config.get("custom_statuses") or {}).items()}

    zone_name = config.get("deadline_timezone", "UTC")
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{where}.deadline_timezone: unknown time zone {zone_name!r}") from exc

    http = config.get("http") or {}
    field_id = config.get("deadline_field_id")
    return ZendeskSettings(
        instance=instance,
        base_url=base_url,
        auth_scheme=scheme,
        auth_user=user,
        auth_secret=secret,
        webhook_kind=webhook.get("kind", "events"),
        webhook_name=webhook.get("name") or f"sla-connector {instance}",
        secret_env=webhook["secret_env"],
        webhook_secret=Secret(raw_secret) if raw_secret else None,
        signature_max_age=int(webhook.get("signature_max_age", 300)),
        connector_user_id=_opt_id(config.get("connector_user_id")),
        comment_author_id=_opt_id(config.get("comment_author_id")),
        default_priority=str(config.get("default_priority", "normal")),
        priorities=priorities,
        statuses=statuses,
        custom_statuses=custom,
        deadline_field_id=int(field_id) if field_id is not None else None,
        deadline_format=config.get("deadline_format", "date"),
        deadline_zone=zone,
        connect_timeout=float(http.get("connect_timeout", 5)),
        read_timeout=float(http.get("read_timeout", 30)),
        max_attempts=int(http.get("max_attempts", 3)),
        max_retry_after=float(http.get("max_retry_after", 10)),
        dry_run=bool(config.get("dry_run", False)),
    )


def _opt_id(value: Any) -> str | None:
    return None if value is None else str(value)
