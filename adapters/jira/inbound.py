"""Jira webhooks in: signature check on the raw body, schema validation, and normalisation.

Verification comes first and never parses JSON. Each supported `webhookEvent` has a small
normalising function in `DISPATCH`; `IGNORED` lists the events Jira may send that carry nothing
for SLA clocks (answered 200, logged apart). Event ids are derived from Jira's own ids (issue,
changelog, comment) so that a redelivery, or the same change arriving through both an admin
webhook and an Automation rule, yields the same event id. Every event whose payload carries the
issue's `fields.created` states it as `created_at`, so an issue first seen after its creation starts
its clocks at its real creation (comment deliveries may carry a partial issue without it). An
instance's `outage_start_field` (a custom field) is stated as `outage_start` at creation and by a
change whose changelog names that field.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time
from typing import Any

import jsonschema

from adapters.base import PayloadError, SignatureError, encodable, in_range
from adapters.fastschema import compile_schema
from adapters.jira.config import SCHEMA_DIR, JiraConfig
from adapters.jira.users import actor_role, body_text, is_public, user_id, user_ids
from adapters.settings import json_path, load_schema
from sla.events import EventKind, Role, Status, TicketEvent

log = logging.getLogger("sla.adapters.jira")

CATEGORY_STATUS = {"new": Status.NEW, "indeterminate": Status.OPEN, "done": Status.SOLVED}

SUPPORTED = frozenset({"jira:issue_created", "jira:issue_updated", "jira:issue_deleted", "comment_created"})
IGNORED = frozenset(
    {
        "comment_updated",  # an edit is not a new response
        "comment_deleted",  # a deleted reply still happened
        "worklog_created",
        "worklog_updated",
        "worklog_deleted",
        "attachment_created",
        "attachment_deleted",
        "issuelink_created",
        "issuelink_deleted",
        "issue_property_set",
        "issue_property_deleted",
        "sprint_created",
        "sprint_updated",
        "sprint_deleted",
        "sprint_started",
        "sprint_closed",
        "board_created",
        "board_updated",
        "board_deleted",
        "board_configuration_changed",
        "project_created",
        "project_updated",
        "project_deleted",
        "jira:version_created",
        "jira:version_updated",
        "jira:version_released",
        "jira:version_unreleased",
        "jira:version_deleted",
        "jira:version_moved",
        "user_created",
        "user_updated",
        "user_deleted",
        "option_voting_changed",
        "option_watching_changed",
        "option_unassigned_issues_changed",
        "option_subtasks_changed",
        "option_attachments_changed",
        "option_issuelinks_changed",
        "option_timetracking_changed",
    }
)


class _Schema:
    """jsonschema for the error of a bad payload; a compiled check first (the same yes/no, ~20x faster)."""

    def __init__(self, name: str) -> None:
        schema, self.validator = load_schema(SCHEMA_DIR / name)
        self.is_valid = compile_schema(schema, str(SCHEMA_DIR / name))


_ENVELOPE = _Schema("envelope.schema.json")
_ISSUE = _Schema("issue_event.schema.json")
_COMMENT = _Schema("comment_event.schema.json")
_SCHEMAS = {
    "jira:issue_created": _ISSUE,
    "jira:issue_updated": _ISSUE,
    "jira:issue_deleted": _ISSUE,
    "comment_created": _COMMENT,
}
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_COMMENT_SELF = re.compile(r"/issue/([0-9]+)/comment/")
_JIRA_TIME = re.compile(  # Jira's date-time with a valid offset form (minutes 00-59, as strptime's %z)
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?[+-][0-9]{2}:?[0-5][0-9]")
_JIRA_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # a Date Picker field's value
#: How deep an ADF comment body may nest (Jira's editor nests lists a few levels; tables do not nest).
ADF_MAX_DEPTH = 64
Payload = Mapping[str, Any]
Headers = Mapping[str, str]
Events = list[TicketEvent]

# ---------------------------------------------------------------- verification


def verify(cfg: JiraConfig, headers: Mapping[str, str], body: bytes) -> None:
    """Admin webhooks: `X-Hub-Signature: sha256=<hex>`. Automation: shared-secret header, if configured."""
    signature = headers.get("x-hub-signature")
    if signature is not None:
        secret = cfg.secrets.webhook_secret
        if secret is None:
            raise SignatureError("X-Hub-Signature received but this instance has no webhook_secret_env")
        method, sep, digest = signature.partition("=")
        if not sep or not digest:
            raise SignatureError("malformed X-Hub-Signature: expected sha256=<hex digest>")
        if method != "sha256":
            raise SignatureError(f"unsupported X-Hub-Signature method {method[:16]!r}: only sha256")
        if not _HEX64.fullmatch(digest):
            raise SignatureError("malformed X-Hub-Signature: the digest is not 64 hex characters")
        expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, digest.lower()):
            raise SignatureError("X-Hub-Signature does not match the body")
        return
    shared = cfg.secrets.automation_secret
    if shared is not None:
        given = headers.get(cfg.automation_header)
        if given is None:
            raise SignatureError(f"missing X-Hub-Signature and {cfg.automation_header} headers")
        if not hmac.compare_digest(given.encode(), shared):
            raise SignatureError(f"{cfg.automation_header} does not match the configured secret")
        return
    raise SignatureError("missing X-Hub-Signature header")


DELIVERY_HEADER = "X-Atlassian-Webhook-Identifier"


def sign(cfg: JiraConfig, body: bytes) -> dict[str, str]:
    """What Jira sends with `body`: X-Hub-Signature (admin webhook), else the Automation secret header."""
    if cfg.secrets.webhook_secret is not None:
        digest = hmac.new(cfg.secrets.webhook_secret, body, hashlib.sha256).hexdigest()
        return {"X-Hub-Signature": f"sha256={digest}"}
    if cfg.secrets.automation_secret is not None:
        return {cfg.automation_header: cfg.secrets.automation_secret.decode()}
    raise ValueError(f"instance {cfg.instance!r}: no webhook_secret_env or automation_secret_env is set")


# ---------------------------------------------------------------- validation and ids


def _obj(value: Any) -> Mapping[str, Any]:
    """`value` if it is an object: ignored events are only checked for their envelope."""
    return value if isinstance(value, Mapping) else {}


def validate(payload: Any) -> None:
    """The envelope for any event; the full schema for supported ones. Raises PayloadError."""
    event = payload.get("webhookEvent") if isinstance(payload, dict) else None
    kind = _SCHEMAS.get(event) if isinstance(event, str) else None  # a list or object: the envelope says no
    for schema in (_ENVELOPE, kind):
        if schema is None or schema.is_valid(payload):
            continue
        error = jsonschema.exceptions.best_match(schema.validator.iter_errors(payload))
        if error is not None:
            raise PayloadError(error.message, "$" + json_path(error))


def classify(payload: Mapping[str, Any]) -> str:
    """"supported", "ignored" (a known event we do not need) or "unknown" (logged apart, answered 200)."""
    event = payload.get("webhookEvent")
    if not isinstance(event, str):
        return "unknown"
    return "supported" if event in SUPPORTED else "ignored" if event in IGNORED else "unknown"


def delivery_id(headers: Mapping[str, str], payload: Mapping[str, Any]) -> str:
    """`X-Atlassian-Webhook-Identifier` (stable across retries); else a hash of what identifies the event.

    The fallback (Automation sends no identifier) is sha256 over webhookEvent, issue id, timestamp
    and the comment or changelog id, so a retried Automation request with the same body dedupes.
    """
    ident = headers.get("x-atlassian-webhook-identifier")
    if ident:
        return ident
    issue = _obj(payload.get("issue"))
    sub = _obj(payload.get("comment")).get("id") or _obj(payload.get("changelog")).get("id") or ""
    parts = [payload.get("webhookEvent", ""), issue.get("id", ""), payload.get("timestamp", ""), sub]
    # surrogatepass: an ignored event's fields are not checked, and a lone surrogate must still hash.
    return "sha256:" + hashlib.sha256("|".join(map(str, parts)).encode("utf-8", "surrogatepass")).hexdigest()


def ticket_id(payload: Mapping[str, Any]) -> str | None:
    """The issue id (not the key: a key changes when an issue moves to another project)."""
    issue = payload.get("issue")
    if isinstance(issue, Mapping) and issue.get("id") not in (None, ""):
        return encodable(str(issue["id"]), "$.issue.id")  # a Redis key
    # Some comment deliveries carry no `issue`: the comment's own URL names it.
    match = _COMMENT_SELF.search(str(_obj(payload.get("comment")).get("self", "")))
    return match.group(1) if match else None


def display_key(payload: Mapping[str, Any]) -> str | None:
    """The issue key ("SUP-42"), what people type; None when the payload carries none. Not an id: it
    changes when an issue moves to another project (the old key then still names the same issue)."""
    issue = payload.get("issue")
    key = issue.get("key") if isinstance(issue, Mapping) else None
    if not isinstance(key, str) or not key or len(key) > 255 or "\n" in key:
        return None
    try:
        key.encode()
    except UnicodeEncodeError:
        return None
    return key


# ---------------------------------------------------------------- normalisation


def jira_time(value: Any) -> datetime | None:
    """Jira's "2026-11-27T10:15:30.000+0000" (also with a colon in the offset) in UTC; None if it is not
    one, or has no UTC equivalent (year 1 east of UTC)."""
    when = _local_time(value)
    try:
        return None if when is None else when.astimezone(UTC)
    except OverflowError:
        return None


def _local_time(value: Any) -> datetime | None:
    """The date-time with its own offset, as `jira_time` reads it."""
    if not isinstance(value, str):
        return None
    if _JIRA_TIME.fullmatch(value):
        # Jira's own form, read as strptime reads it (checked on every combination of edge values of
        # each part) but ~20x faster: strptime was half of the cost of normalising an issue.
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass  # strptime decides (and says no as well)
    for fmt in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            continue
    return None


def _instant(value: Any, path: str) -> datetime | None:
    """`jira_time(value)`, refused with `path` when it lies outside the instants a delivery may state."""
    when = _local_time(value)
    return None if when is None else in_range(when, path, value).astimezone(UTC)


def _epoch_ms(payload: Mapping[str, Any]) -> datetime:
    raw = payload["timestamp"]
    try:
        return in_range(datetime.fromtimestamp(raw / 1000, UTC), "$.timestamp", raw)
    except (OverflowError, ValueError, OSError):  # 10**17 ms: year 3170843
        raise PayloadError(f"{raw!r} is outside the instants a delivery may state "
                           "(1970-01-01 to 2199-12-31 UTC)", "$.timestamp") from None


def status_of(cfg: JiraConfig, name: str, category: str | None) -> Status:
    """The instance's `statuses` map by name (any casing), else the Jira status category."""
    mapped = cfg.statuses.get(name.casefold())
    if mapped is not None:
        return mapped
    return CATEGORY_STATUS.get(category or "", Status.OPEN)


def created_at(fields: Mapping[str, Any]) -> dict[str, Any]:
    """`{"created_at": ...}` from the issue's `created`, or {} when the payload does not carry it."""
    raw = fields.get("created")
    if raw is None:
        return {}
    when = _instant(raw, "$.issue.fields.created")
    if when is None:  # the schema checked the form; this is an impossible date such as month 13
        raise PayloadError(f"not a Jira date-time: {raw!r}", "$.issue.fields.created")
    return {"created_at": when}


def outage_start(cfg: JiraConfig, fields: Mapping[str, Any]) -> dict[str, Any]:
    """`{"outage_start": ...}` from the instance's `outage_start_field`, or {} when the instance maps
    none, the payload does not carry it, or its value cannot be read (logged: the field only feeds
    uptime reports, and a field of another type or a typo must not cost a delivery its status,
    priority and comments, which move the clocks; Jira does not send a refused delivery again)."""
    name = cfg.outage_start_field
    if name is None or name not in fields:
        return {}
    try:
        return {"outage_start": outage_instant(cfg, fields[name], f"$.issue.fields.{name}")}
    except PayloadError as exc:
        log.warning("jira.outage_start_unreadable", extra={"instance": cfg.instance, "reason": str(exc)})
        return {}


def outage_instant(cfg: JiraConfig, raw: Any, path: str) -> datetime | None:
    """A Date Time Picker value ("2026-11-27T09:15:00.000+0100") as its instant; a Date Picker value
    ("2026-11-27") as the start of that day in the instance's `due_timezone` (a date has no zone of its
    own); null (the field was cleared) as None. PayloadError naming `path` for anything else."""
    if raw is None:
        return None
    if isinstance(raw, str) and _JIRA_DATE.fullmatch(raw):
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            raise PayloadError(f"not a date: {raw!r}", path) from None
        # Where clocks go forward at midnight (America/Santiago) 00:00 does not exist: fold=0 reads it
        # with the offset before the change, which is the day's first instant (01:00 new time).
        midnight = datetime.combine(day, time(), cfg.due_timezone)
        return in_range(midnight, path, raw).astimezone(UTC)
    when = _instant(raw, path)
    if when is None:
        raise PayloadError(f"not a Jira date-time (2026-11-27T09:15:00.000+0100) or date (2026-11-27): "
                           f"{raw!r}", path)
    return when


def may_be_field(item: Mapping[str, Any], custom_field: str) -> bool:
    """Whether a changelog item may be a change of `custom_field`: Cloud names it by `fieldId`; Data
    Center's items carry no `fieldId`, only the display name, so any custom field's item may be it
    (stating the issue's current value again is harmless)."""
    field_id = item.get("fieldId")
    return field_id == custom_field if field_id else item.get("fieldtype") == "custom"


def snapshot(cfg: JiraConfig, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Canonical fields of an issue's `fields` object (only those present)."""
    out: dict[str, Any] = {}
    status = fields.get("status")
    if status:
        out["status"] = status_of(cfg, status["name"], (status.get("statusCategory") or {}).get("key"))
        out["status_name"] = status["name"]
    if "priority" in fields:
        out["priority"] = cfg.canonical_priority((fields["priority"] or {}).get("name"))
    if "issuetype" in fields:
        out["type"] = (fields["issuetype"] or {}).get("name")
    if "labels" in fields:
        out["tags"] = frozenset(fields["labels"] or ())
    if "assignee" in fields:
        out["assignee"] = user_id(fields["assignee"])
    if "project" in fields:
        out["project"] = (fields["project"] or {}).get("key")
    if "reporter" in fields:
        out["requester"] = user_id(fields["reporter"])
    out.update(outage_start(cfg, fields))
    return out


def _same_user(changed_to: str | None, current: Payload | None) -> str | None:
    """The id as snapshots write it: Data Center changelogs name users by key, snapshots by name."""
    if changed_to is not None and changed_to in user_ids(current):
        return user_id(current)
    return changed_to


def changed_fields(cfg: JiraConfig, items: list[Payload], fields: Payload) -> dict[str, Any]:
    out: dict[str, Any] = {}
    current = fields.get("status") or {}
    for item in items:
        if cfg.outage_start_field is not None and may_be_field(item, cfg.outage_start_field):
            # The changelog's strings are display text in the editor's locale and zone: the value is
            # read from the issue the webhook carries, as it is after the change.
            out.update(outage_start(cfg, fields))
            continue
        name = str(item.get("fieldId") or item["field"]).casefold()
        to_string = item.get("toString")
        if name == "status" and to_string:
            # The issue snapshot carries the category of the status it is in now.
            same = current.get("name", "").casefold() == to_string.casefold()
            category = (current.get("statusCategory") or {}).get("key") if same else None
            out["status"] = status_of(cfg, to_string, category)
            out["status_name"] = to_string
        elif name == "priority":
            out["priority"] = cfg.canonical_priority(to_string)
        elif name == "labels":
            out["tags"] = frozenset((to_string or "").split())
        elif name == "assignee":
            out["assignee"] = _same_user(item.get("to"), fields.get("assignee"))
        elif name == "issuetype":
            out["type"] = to_string
        elif name == "reporter":
            out["requester"] = _same_user(item.get("to"), fields.get("reporter"))
    return out


def _adf_checked(body: Any, path: str) -> Any:
    """`body` if `body_text` can read it: in an ADF document every node's `content` is a list, and the
    nesting stays within ADF_MAX_DEPTH (body_text recurses). PayloadError naming the node otherwise."""
    if not isinstance(body, Mapping | list):
        return body
    stack: list[tuple[Any, str, int]] = [(body, path, 0)]
    while stack:
        node, where, depth = stack.pop()
        if depth > ADF_MAX_DEPTH:
            raise PayloadError(f"the comment body nests deeper than {ADF_MAX_DEPTH} levels", where)
        if isinstance(node, Mapping):
            children = node.get("content")
            if not children:
                continue
            if not isinstance(children, list):
                raise PayloadError(f"ADF content is a list of nodes, not {type(children).__name__}",
                                   f"{where}.content")
            where = f"{where}.content"
        else:
            children = node
        stack.extend((child, f"{where}[{i}]", depth + 1)
                     for i, child in enumerate(children) if isinstance(child, Mapping | list))
    return body


def _comment_event(cfg: JiraConfig, payload: Mapping[str, Any], tid: str) -> TicketEvent:
    comment = payload["comment"]
    text = body_text(_adf_checked(comment.get("body"), "$.comment.body"))
    fields = (payload.get("issue") or {}).get("fields") or {}
    return TicketEvent(
        event_id=f"jira:{tid}:comment:{comment['id']}",
        ticket_id=tid,
        kind=EventKind.COMMENTED,
        at=_instant(comment.get("created"), "$.comment.created") or _epoch_ms(payload),
        actor=actor_role(cfg, comment.get("author"), fields, text),
        fields=created_at(fields),
        public=is_public(comment),
    )


def _issue_created(cfg: JiraConfig, payload: Payload, headers: Headers) -> Events:
    tid = ticket_id(payload) or ""
    fields = payload["issue"]["fields"]
    return [
        TicketEvent(
            event_id=f"jira:{tid}:created",
            ticket_id=tid,
            kind=EventKind.CREATED,
            at=_instant(fields.get("created"), "$.issue.fields.created") or _epoch_ms(payload),
            actor=actor_role(cfg, payload.get("user"), fields),
            fields={**snapshot(cfg, fields), **created_at(fields), **_key(payload)},
        )
    ]


def _key(payload: Payload) -> dict[str, str]:
    """The issue key, so that comments name the issue as people do (`{ticket}`)."""
    key = display_key(payload)
    return {"key": key} if key else {}


def _issue_updated(cfg: JiraConfig, payload: Payload, headers: Headers) -> Events:
    tid = ticket_id(payload) or ""
    fields = payload["issue"].get("fields") or {}
    events: list[TicketEvent] = []
    changelog = payload.get("changelog") or {}
    changed = changed_fields(cfg, changelog.get("items") or [], fields)
    if changed:
        has_id = changelog.get("id") not in (None, "")
        base = f"jira:{tid}:changelog:{changelog['id']}" if has_id else delivery_id(headers, payload)
        at = _epoch_ms(payload)
        actor = actor_role(cfg, payload.get("user"), fields)
        events.append(TicketEvent(base, tid, EventKind.CHANGED, at, actor, {**changed, **created_at(fields)}))
        name = changed.get("status_name")
        if name and name.casefold() in cfg.first_response_statuses and actor is Role.AGENT:
            # Configured: an agent moving the issue to such a status has responded (Jira Software).
            first = TicketEvent(
                f"{base}:first-response", tid, EventKind.COMMENTED, at, actor, created_at(fields), public=True
            )
            events.append(first)
    if payload.get("comment"):  # issue_commented: the full issue, so the reporter is known
        events.append(_comment_event(cfg, payload, tid))
    return events


def _issue_deleted(cfg: JiraConfig, payload: Payload, headers: Headers) -> Events:
    tid = ticket_id(payload) or ""
    fields = payload["issue"].get("fields") or {}
    actor = actor_role(cfg, payload.get("user"), fields)
    at = _epoch_ms(payload)
    return [TicketEvent(f"jira:{tid}:deleted", tid, EventKind.DELETED, at, actor, created_at(fields))]


def _comment_created(cfg: JiraConfig, payload: Payload, headers: Headers) -> Events:
    return [_comment_event(cfg, payload, ticket_id(payload) or "")]


Normaliser = Callable[[JiraConfig, Mapping[str, Any], Mapping[str, str]], list[TicketEvent]]
DISPATCH: dict[str, Normaliser] = {
    "jira:issue_created": _issue_created,
    "jira:issue_updated": _issue_updated,
    "jira:issue_deleted": _issue_deleted,
    "comment_created": _comment_created,
}
assert set(DISPATCH) == SUPPORTED and not SUPPORTED & IGNORED


def normalise(cfg: JiraConfig, payload: Payload, headers: Headers) -> Events:
    """Canonical events of a validated payload; [] for ignored and unknown events."""
    handler = DISPATCH.get(payload.get("webhookEvent", ""))
    return handler(cfg, payload, headers) if handler else []
