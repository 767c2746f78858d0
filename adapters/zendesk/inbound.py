"""Inbound Zendesk deliveries: schema validation, ids, and normalisation to canonical events.

Two payload kinds are accepted:
- event-subscription webhooks (`zen:event-type:ticket.*`), validated by schemas/event.schema.json;
- the body of our trigger template (trigger_template.json), validated by schemas/trigger.schema.json.
Event types are dispatched through `HANDLERS`; `IGNORED` lists the documented ticket events we
accept and drop on purpose. Unknown `zen:event-type:ticket.*` types normalise to [] as well.
Every event carries the ticket's `created_at` (both payload kinds state it), so a ticket first seen
after its creation starts its clocks at its real creation. Where the instance names an
`outage_start_field`, trigger bodies state its value on every update and `ticket.custom_field_changed`
events of that field carry it, as `outage_start`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from adapters.base import PayloadError, encodable, in_range
from adapters.fastschema import compile_schema
from adapters.settings import json_path, load_schema
from adapters.zendesk.config import ZendeskSettings
from sla.events import EventKind, Role, Status, TicketEvent

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
_, EVENT_VALIDATOR = load_schema(SCHEMA_DIR / "event.schema.json")
_, TRIGGER_VALIDATOR = load_schema(SCHEMA_DIR / "trigger.schema.json")
# The same yes/no as the validators, compiled (~20x faster); jsonschema still words every rejection.
EVENT_OK = compile_schema(EVENT_VALIDATOR.schema, str(SCHEMA_DIR / "event.schema.json"))
TRIGGER_OK = compile_schema(TRIGGER_VALIDATOR.schema, str(SCHEMA_DIR / "trigger.schema.json"))
TRIGGER_MARK = "zendesk-trigger-v1"
log = logging.getLogger("sla.adapters.zendesk")
INVOCATION_HEADER = "x-zendesk-webhook-invocation-id"
CONNECTOR_MARK = "[sla-connector:"
_PREFIX = "zen:event-type:"
_NONE_VALUES = ("", "-")  # what placeholders render for an unset field
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # a date field's value

Handler = Callable[["Context"], list[TicketEvent]]


class Context:
    """One validated event webhook, with the instance settings it is read under."""

    def __init__(self, payload: Mapping[str, Any], delivery: str, settings: ZendeskSettings) -> None:
        self.payload = payload
        self.settings = settings
        self.detail: Mapping[str, Any] = payload.get("detail") or {}
        self.event: Mapping[str, Any] = payload.get("event") or {}
        self.ticket_id = str(self.detail["id"])
        self.at = parse_instant(payload["time"], "$.time")
        self.event_id = f"zendesk:{delivery}"
        self.delivery = delivery
        raw_created = self.detail.get("created_at")
        self.created_at = None if raw_created is None else parse_instant(raw_created, "$.detail.created_at")

    def changed(self, fields: Mapping[str, Any]) -> list[TicketEvent]:
        return [self.make(EventKind.CHANGED, fields)]

    def make(self, kind: EventKind, fields: Mapping[str, Any], **kw: Any) -> TicketEvent:
        actor = kw.pop("actor", None) or actor_of_change(self.detail, self.settings)
        event_id = kw.pop("event_id", None) or self.event_id
        if self.created_at is not None:
            fields = {**fields, "created_at": self.created_at}
        return TicketEvent(event_id, self.ticket_id, kind, self.at, actor, fields, **kw)


# ---------------------------------------------------------------- value mapping


def opt_id(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return None if text in _NONE_VALUES or text == "0" else text


def parse_instant(raw: str, path: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise PayloadError(f"not an ISO 8601 instant: {raw!r}", path) from None
    if parsed.tzinfo is None:
        raise PayloadError(f"instant without a time zone: {raw!r}", path)
    return in_range(parsed, path, raw)


def outage_instant(raw: Any, settings: ZendeskSettings, path: str) -> datetime | None:
    """The instant the instance's `outage_start_field` states, or None when the field is empty.

    A date field holds a day ("2026-11-27"): midnight of that day in the instance's `deadline_timezone`,
    the zone it reads days in (a day has no zone of its own). A text field that an automation fills may
    hold an ISO 8601 instant with its offset: that instant. PayloadError naming `path` for anything else.
    """
    if raw is None or (isinstance(raw, str) and raw.strip() in _NONE_VALUES):
        return None
    text = raw.strip() if isinstance(raw, str) else ""  # a number or a list fails below
    try:
        if _DAY.fullmatch(text):
            # Where clocks go forward at midnight (America/Santiago) 00:00 does not exist: fold=0 reads it
            # with the offset before the change, which is the day's first instant (01:00 new time).
            when: datetime | None = datetime.combine(date.fromisoformat(text), time(), settings.deadline_zone)
        else:
            when = datetime.fromisoformat(text)
    except ValueError:
        when = None
    if when is None or when.utcoffset() is None:
        raise PayloadError(
            f"{raw!r} is neither a date (2026-11-27) nor an ISO 8601 instant with its UTC offset "
            "(2026-11-27T09:15:00+01:00)",
            path,
        )
    return in_range(when, path, raw)


def outage_fields(raw: Any, settings: ZendeskSettings, path: str, delivery: str | None) -> dict[str, Any]:
    """`{"outage_start": ...}`, or {} when the value cannot be read: logged, and the rest of what was
    delivered kept (the field only feeds uptime reports; a hand-typed text or a placeholder rendering we
    did not expect must not cost a ticket its clocks)."""
    try:
        return {"outage_start": outage_instant(raw, settings, path)}
    except PayloadError as exc:
        log.warning(
            "zendesk.outage_start_unreadable",
            extra={"instance": settings.instance, "delivery_id": delivery, "reason": str(exc)},
        )
        return {}


def map_status(raw: str, custom_status: Any, settings: ZendeskSettings, path: str) -> tuple[Status, str]:
    """(canonical status, status_name). A mapped custom status wins over the status category."""
    custom = opt_id(custom_status)
    if custom is not None and custom in settings.custom_statuses:
        return settings.custom_statuses[custom], f"custom_status:{custom}"
    name = str(raw).strip().lower()
    if name not in settings.statuses:
        raise PayloadError(
            f"status {raw!r} is not mapped for instance {settings.instance!r}: add it to `statuses`", path
        )
    return settings.statuses[name], name


def map_priority(raw: Any, settings: ZendeskSettings) -> str:
    name = "" if raw is None else str(raw).strip().lower()
    if name in _NONE_VALUES:
        return settings.default_priority
    return settings.priorities.get(name, name)


def map_type(raw: Any) -> str | None:
    name = "" if raw is None else str(raw).strip().lower()
    return None if name in _NONE_VALUES else name


def map_tags(raw: Any) -> frozenset[str]:
    if raw is None:
        return frozenset()
    if isinstance(raw, str):
        return frozenset(raw.split())
    return frozenset(str(t) for t in raw)


def actor_of_change(detail: Mapping[str, Any], settings: ZendeskSettings) -> Role:
    """Who made a non-comment change: only the connector and the requester can be told apart."""
    actor = opt_id(detail.get("actor_id"))
    if actor is not None and actor == settings.connector_user_id:
        return Role.CONNECTOR
    if actor is not None and actor == opt_id(detail.get("requester_id")):
        return Role.REQUESTER
    return Role.OTHER


def comment_role(
    author_id: str | None,
    is_staff: bool | None,
    body: str | None,
    requester_id: str | None,
    settings: ZendeskSettings,
) -> Role:
    if (author_id is not None and author_id == settings.connector_user_id) or (
        body is not None and CONNECTOR_MARK in body
    ):
        return Role.CONNECTOR
    if is_staff is True:
        return Role.AGENT
    if (author_id is not None and author_id == requester_id) or is_staff is False:
        return Role.REQUESTER
    return Role.OTHER


def snapshot(detail: Mapping[str, Any], settings: ZendeskSettings, path: str) -> dict[str, Any]:
    status, status_name = map_status(detail["status"], detail.get("custom_status"), settings, path)
    return {
        "status": status,
        "status_name": status_name,
        "priority": map_priority(detail.get("priority"), settings),
        "type": map_type(detail.get("type")),
        "tags": map_tags(detail.get("tags")),
        "assignee": opt_id(detail.get("assignee_id")),
        "group": opt_id(detail.get("group_id")),
        "brand": opt_id(detail.get("brand_id")),
        "organization": opt_id(detail.get("organization_id")),
        "requester": opt_id(detail.get("requester_id")),
    }


# ---------------------------------------------------------------- event handlers


def _created(c: Context) -> list[TicketEvent]:
    # The id the trigger body and backfill give the same creation, so all three dedupe.
    return [c.make(EventKind.CREATED, snapshot(c.detail, c.settings, "$.detail.status"),
                   event_id=f"zendesk:{c.ticket_id}:created")]


def _status(c: Context) -> list[TicketEvent]:
    raw = c.event.get("current") or c.detail["status"]
    status, name = map_status(raw, c.detail.get("custom_status"), c.settings, "$.event.current")
    return c.changed({"status": status, "status_name": name})


def _custom_status(c: Context) -> list[TicketEvent]:
    status, name = map_status(c.detail["status"], c.event.get("current"), c.settings, "$.detail.status")
    return c.changed({"status": status, "status_name": name})


def _priority(c: Context) -> list[TicketEvent]:
    return c.changed({"priority": map_priority(c.event.get("current"), c.settings)})


def _tags(c: Context) -> list[TicketEvent]:
    return c.changed({"tags": map_tags(c.detail.get("tags"))})


def _field(name: str, convert: Callable[[Any], Any] = opt_id) -> Handler:
    def handler(c: Context) -> list[TicketEvent]:
        return c.changed({name: convert(c.event.get("current"))})

    handler.__name__ = f"_{name}_changed"
    return handler


def _custom_field(c: Context) -> list[TicketEvent]:
    field = c.settings.outage_start_field
    if field is None or opt_id(c.event["custom_field"]["id"]) != str(field):
        # Any other field cannot move a clock: dropped, and logged as an ignored event type is.
        log_dropped("ignored", c.settings, c.payload["type"], c.delivery)
        return []
    if "current" not in c.event:  # a missing value is not an emptied one
        raise PayloadError("'current' is a required property", "$.event")
    current = c.event["current"]
    # Zendesk sends the value as {"value": ...} (lookup fields add an id); a bare value is read too.
    if isinstance(current, Mapping):
        fields = outage_fields(current.get("value"), c.settings, "$.event.current.value", c.delivery)
    else:
        fields = outage_fields(current, c.settings, "$.event.current", c.delivery)
    return c.changed(fields) if fields else []


def _comment(c: Context) -> list[TicketEvent]:
    comment = c.event["comment"]
    author = comment.get("author") or {}
    role = comment_role(
        opt_id(author.get("id")),
        author.get("is_staff"),
        comment.get("body"),
        opt_id(c.detail.get("requester_id")),
        c.settings,
    )
    # Keyed by the comment's own id (as trigger bodies and backfill key it), else by the event's.
    comment_id = opt_id(comment.get("id"))
    event_id = f"zendesk:{c.ticket_id}:comment:{comment_id}" if comment_id else None
    return [c.make(EventKind.COMMENTED, {}, actor=role, public=bool(comment["is_public"]), event_id=event_id)]


def _deleted(c: Context) -> list[TicketEvent]:
    return [c.make(EventKind.DELETED, {})]


def _restored(c: Context) -> list[TicketEvent]:
    # Only the fact: the ticket's fields are what they were before the deletion (already known).
    return [c.make(EventKind.RESTORED, {})]


HANDLERS: dict[str, Handler] = {
    "ticket.created": _created,
    "ticket.status_changed": _status,
    "ticket.custom_status_changed": _custom_status,
    "ticket.priority_changed": _priority,
    "ticket.tags_changed": _tags,
    "ticket.agent_assignment_changed": _field("assignee"),
    "ticket.group_assignment_changed": _field("group"),
    "ticket.brand_changed": _field("brand"),
    "ticket.organization_changed": _field("organization"),
    "ticket.requester_changed": _field("requester"),
    "ticket.type_changed": _field("type", map_type),
    "ticket.custom_field_changed": _custom_field,
    "ticket.comment_added": _comment,
    "ticket.soft_deleted": _deleted,
    "ticket.permanently_deleted": _deleted,
    "ticket.marked_as_spam": _deleted,
    "ticket.undeleted": _restored,
}
SUPPORTED = frozenset(_PREFIX + name for name in HANDLERS)
#: Supported types only an instance with an `outage_start_field` subscribes to (adapters/zendesk/install.py):
#: for the others every custom field edit, the connector's own deadline writes among them, would be a
#: delivery dropped on arrival.
OUTAGE_START_ONLY = frozenset({_PREFIX + "ticket.custom_field_changed"})
#: Documented ticket events that cannot move an SLA clock; accepted and dropped.
IGNORED = frozenset(
    _PREFIX + "ticket." + name
    for name in (
        "attachment_linked_to_comment",
        "attachment_redacted_from_comment",
        "comment_made_private",
        "comment_redacted",
        "description_changed",
        "external_id_changed",
        "email_ccs_changed",
        "followers_changed",
        "form_changed",
        "problem_link_changed",
        "subject_changed",
        "submitter_changed",
        "task_due_at_changed",
        "merged",
        "sla_policy_changed",
        "schedule_changed",
        "ola_policy_changed",
    )
)


# ---------------------------------------------------------------- the adapter's inbound steps


def is_trigger(payload: Any) -> bool:
    return isinstance(payload, Mapping) and "sla_connector" in payload


def validate(payload: Any) -> None:
    if not isinstance(payload, Mapping):
        raise PayloadError("a Zendesk webhook body is a JSON object", "$")
    trigger = is_trigger(payload)
    if (TRIGGER_OK if trigger else EVENT_OK)(payload):
        return
    validator = TRIGGER_VALIDATOR if trigger else EVENT_VALIDATOR
    errors = sorted(validator.iter_errors(payload), key=lambda e: (len(e.absolute_path), e.message))
    if errors:
        # The deepest error names the most precise path (oneOf/if-then report at their parent).
        err = max(errors, key=lambda e: len(e.absolute_path))
        raise PayloadError(err.message, "$" + json_path(err))


def delivery_id(headers: Mapping[str, str], payload: Any) -> str:
    """Event webhooks: the event `id`. Trigger bodies: the invocation id header, else a digest."""
    if not is_trigger(payload):
        return encodable(str(payload["id"]), "$.id")  # a Redis key
    invocation = (headers.get(INVOCATION_HEADER) or "").strip()
    if invocation:
        return f"invocation:{invocation}"
    # Zendesk retries an invocation with the same body, so the body identifies the delivery.
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]
    ticket = payload["ticket"]
    return f"trigger:{ticket['id']}:{ticket['updated_at']}:{digest}"


def ticket_id(payload: Any) -> str | None:
    if is_trigger(payload):
        return str(payload["ticket"]["id"])
    if str(payload.get("type", "")).startswith(_PREFIX + "ticket."):
        return str((payload.get("detail") or {}).get("id")) if payload.get("detail") else None
    return None


def normalise(payload: Any, headers: Mapping[str, str], settings: ZendeskSettings) -> list[TicketEvent]:
    delivery = delivery_id(headers, payload)
    if is_trigger(payload):
        return normalise_trigger(payload, delivery, settings)
    kind = payload["type"]
    handler = HANDLERS.get(kind.removeprefix(_PREFIX))
    if handler is None:  # ignored, unknown ticket.* or not a ticket event at all: answered 200
        log_dropped("ignored" if kind in IGNORED else "unsupported", settings, kind, delivery)
        return []
    return handler(Context(payload, delivery, settings))


def log_dropped(reason: str, settings: ZendeskSettings, kind: str, delivery: str) -> None:
    log.info(
        f"zendesk.event_{reason}",
        extra={"instance": settings.instance, "event_type": kind, "delivery_id": delivery},
    )


def normalise_trigger(
    payload: Mapping[str, Any], delivery: str, settings: ZendeskSettings
) -> list[TicketEvent]:
    """The trigger body: a snapshot (CREATED on creation, else CHANGED) plus the latest comment.

    The body cannot say which fields changed, so every update carries the whole snapshot; the
    latest comment is an event of its own when `trigger_comment` can trust it.
    """
    t = payload["ticket"]
    tid = str(t["id"])
    created_at = parse_instant(t["created_at"], "$.ticket.created_at")
    updated_at = parse_instant(t["updated_at"], "$.ticket.updated_at")
    fields = snapshot(
        {
            "status": t["status"],
            "priority": t.get("priority"),
            "type": t.get("type"),
            "tags": t.get("tags"),
            "assignee_id": t.get("assignee_id"),
            "group_id": t.get("group_id"),
            "organization_id": t.get("organization_id"),
            "requester_id": t.get("requester_id"),
        },
        settings,
        "$.ticket.status",
    )
    fields["brand"] = (t.get("brand") or "").strip() or None
    fields["created_at"] = created_at
    # A body without the key comes from a trigger installed before the setting: it states nothing. A key
    # the instance no longer maps is left out: outage_start is carried only where an instance maps it.
    if settings.outage_start_field is not None and "outage_start" in t:
        # Zendesk's docs give no form for a date field's placeholder: what it rendered, if unreadable,
        # is in the log line.
        fields.update(outage_fields(t["outage_start"], settings, "$.ticket.outage_start", delivery))
    user = payload["current_user"]
    current = opt_id(user.get("id"))
    requester = opt_id(t.get("requester_id"))
    if current is not None and current == settings.connector_user_id:
        actor = Role.CONNECTOR
    elif current is not None and current == requester:
        actor = Role.REQUESTER
    else:
        actor = Role.OTHER
    if created_at == updated_at:
        events = [TicketEvent(f"zendesk:{tid}:created", tid, EventKind.CREATED, created_at, actor, fields)]
    else:
        events = [TicketEvent(f"zendesk:{delivery}:0", tid, EventKind.CHANGED, updated_at, actor, fields)]

    comment = trigger_comment(
        payload["latest_comment"], user, requester, tid, updated_at, settings, created_at=created_at
    )
    if comment is not None:
        events.append(comment)
    return events


def trigger_comment(
    comment: Mapping[str, Any],
    user: Mapping[str, Any],
    requester: str | None,
    tid: str,
    updated_at: datetime,
    settings: ZendeskSettings,
    *,
    created_at: datetime | None = None,
) -> TicketEvent | None:
    """The latest comment as a COMMENTED event, or None when this update cannot vouch for it.

    Every later update still shows the comment as "latest", timed at *its* `updated_at` and with a
    `current_user` who may not be the author. Only an update by the author itself (or the
    connector's own note) is taken as the comment's own update: then `updated_at` is when it was
    written and `current_user.role` says who wrote it. Its later repeats by the author carry the
    same id, role and visibility at a later `at`, so `sla.timeline.dedupe` (smallest `at` wins,
    whatever the arrival order) keeps the first. Limits: docs/install-zendesk.md, "Kind trigger".
    """
    comment_id = opt_id(comment.get("id"))
    if comment_id is None or comment.get("is_public") not in ("true", "false"):
        return None
    author = opt_id(comment.get("author_id"))
    current = opt_id(user.get("id"))
    connector = current is not None and current == settings.connector_user_id
    if author is None or (author != current and not (connector and author == settings.comment_author_id)):
        return None  # a repeat from someone else's update: wrong time, unknown role
    role_name = str(user.get("role") or "").strip().lower()
    is_staff = None if not role_name else role_name not in ("end-user", "end user", "enduser")
    if connector:
        role = Role.CONNECTOR  # its notes, also under `comment_author_id`
    else:
        role = comment_role(author, is_staff, None, requester, settings)
    return TicketEvent(
        f"zendesk:{tid}:comment:{comment_id}",
        tid,
        EventKind.COMMENTED,
        updated_at,
        role,
        {} if created_at is None else {"created_at": created_at},
        public=comment["is_public"] == "true",
    )
