"""A Zendesk instance's settings: validated against schemas/config.schema.json, secrets from the env.

The configuration names environment variables; their values are read here once and kept only in
objects whose repr hides them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from adapters.settings import Secret, authorization, check_config, load_schema, time_zone
from sla.events import Status

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
CONFIG_SCHEMA, _CONFIG_VALIDATOR = load_schema(SCHEMA_DIR / "config.schema.json")

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


@dataclass(frozen=True)
class ZendeskSettings:
    instance: str
    base_url: str
    authorization: Secret = field(repr=False)  # the whole header: Basic (email/token) or Bearer (OAuth)
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
    #: The ticket field whose value the events carry as `outage_start`; None: the instance maps none.
    outage_start_field: int | None = None

    def priority_to_zendesk(self, canonical: str) -> str:
        """The Zendesk priority to write for a canonical priority name (inverse of the mapping)."""
        for zendesk, mapped in sorted(self.priorities.items()):
            if mapped == canonical and zendesk in ZENDESK_PRIORITIES:
                return zendesk
        raise ValueError(
            f"instance {self.instance!r}: canonical priority {canonical!r} maps to no Zendesk priority "
            f"(one of {', '.join(ZENDESK_PRIORITIES)}); check `priorities`"
        )


def load_settings(instance: str, config: Mapping[str, Any], env: Mapping[str, str]) -> ZendeskSettings:
    """Validate `config` (one instance block) and read its secrets from `env`.

    Raises ValueError naming the failing path (`instances.<name>.<path>`) or the missing variable.
    """
    where = f"instances.{instance}"
    check_config(_CONFIG_VALIDATOR, config, where)

    if ("subdomain" in config) == ("base_url" in config):
        raise ValueError(f"{where}: set exactly one of `subdomain` and `base_url`")
    if "subdomain" in config:
        base_url = f"https://{config['subdomain']}.zendesk.com"
    else:
        base_url = str(config["base_url"]).rstrip("/")

    # API tokens authenticate as `<email>/token`; OAuth tokens are bearer tokens.
    header = authorization(config["auth"], env, where, basic_user=lambda email: f"{email}/token")

    webhook = config["webhook"]
    # The signing secret only exists once `install` has created the webhook, so its absence is not
    # a configuration error here: verify() refuses every delivery until it is set (fails closed).
    raw_secret = env.get(webhook["secret_env"])

    priorities = {p: p for p in ZENDESK_PRIORITIES}
    priorities.update({str(k).lower(): str(v) for k, v in (config.get("priorities") or {}).items()})
    statuses = dict(DEFAULT_STATUSES)
    statuses.update({str(k).lower(): Status(v) for k, v in (config.get("statuses") or {}).items()})
    custom = {str(k): Status(v) for k, v in (config.get("custom_statuses") or {}).items()}

    zone = time_zone(config.get("deadline_timezone", "UTC"), f"{where}.deadline_timezone")

    http = config.get("http") or {}
    field_id = config.get("deadline_field_id")
    outage_field = _opt_int(config.get("outage_start_field"))
    if outage_field is not None and outage_field == _opt_int(config.get("deadline_field_id")):
        # The connector writes deadlines there: they would be read back as outage starts.
        raise ValueError(f"{where}.outage_start_field: {outage_field} is also the deadline_field_id the "
                         f"connector writes deadlines into; name another field")
    return ZendeskSettings(
        instance=instance,
        base_url=base_url,
        authorization=header,
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
        deadline_field_id=_opt_int(field_id),
        deadline_format=config.get("deadline_format", "date"),
        deadline_zone=zone,
        connect_timeout=float(http.get("connect_timeout", 5)),
        read_timeout=float(http.get("read_timeout", 30)),
        max_attempts=int(http.get("max_attempts", 3)),
        max_retry_after=float(http.get("max_retry_after", 10)),
        dry_run=bool(config.get("dry_run", False)),
        outage_start_field=outage_field,
    )


def _opt_id(value: Any) -> str | None:
    return None if value is None else str(value)


def _opt_int(value: Any) -> int | None:
    # Field ids may be written as numbers or digit strings; one type so that comparisons hold.
    return None if value is None else int(value)
