"""Write-back to Zendesk (effects -> as few API calls as possible) and the read side for backfill.

One apply makes at most three calls plus the marker look-up:
- `PUT /api/v2/tickets/{id}.json` with the deadline custom field, priority, assignee/group and one
  private note (several due notes are joined into one, each part ending with its own marker);
- `PUT /api/v2/tickets/{id}/tags.json` to add tags and `DELETE` on the same URL to remove them
  (a ticket PUT with `tags` would replace the customer's own tags).
Before a note is posted, the ticket's comments are read and notes whose marker is already there
are skipped (a worker may have died between Zendesk's answer and the ledger write). A ticket PUT
carrying a note adds a comment, so it is not repeated blindly: after a timeout or a 5xx it is sent
again only when the comments, read again, lack the note's marker (`HttpClient.request(applied=)`).
Without `deadline_field_id` a due date is not written but reported applied (logged once). An effect
whose value cannot be written is not sent, or (a 422 `RecordInvalid` naming its field) the ticket
PUT is sent again without it; the rest is written, then `adapters.base.EffectRejected` names it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

from adapters.base import ApiError, NotFound, reject
from adapters.zendesk.config import ZendeskSettings
from adapters.zendesk.http import ZendeskHttp
from sla.effects import Effect, EffectKind, comment_marker

log = logging.getLogger("sla.adapters.zendesk")
NOTE_SEPARATOR = "\n\n---\n\n"
_FIELD_KINDS = (EffectKind.SET_DUE, EffectKind.SET_PRIORITY, EffectKind.SET_ASSIGNEE)


def format_deadline(value: str, settings: ZendeskSettings) -> str:
    """The deadline as the configured field expects it: a date, or an ISO 8601 date-time text."""
    instant = datetime.fromisoformat(value)
    if instant.tzinfo is None:
        raise ValueError(f"deadline {value!r} has no time zone")
    local = instant.astimezone(settings.deadline_zone)
    if settings.deadline_format == "date":
        return local.date().isoformat()
    if settings.deadline_format == "datetime":
        return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return local.strftime("%Y-%m-%d %H:%M %Z")  # "text": readable, in the configured zone


def note_body(effect: Effect) -> str:
    marker = comment_marker(effect.key.removeprefix("comment:"))
    body = effect.value.rstrip()
    return body if body.endswith(marker) else f"{body}\n\n{marker}"


def marker_of(effect: Effect) -> str:
    return comment_marker(effect.key.removeprefix("comment:"))


# Which effect kinds a 422 RecordInvalid names, by its `details` key or by the "<Field>: ..." prefix
# of a description under "base" ({"base": [{"description": "Priority: is invalid"}]}).
_DETAIL_KINDS = {
    "priority": EffectKind.SET_PRIORITY,
    "assignee": EffectKind.SET_ASSIGNEE,
    "assignee_id": EffectKind.SET_ASSIGNEE,
    "group": EffectKind.SET_ASSIGNEE,
    "group_id": EffectKind.SET_ASSIGNEE,
    "custom_fields": EffectKind.SET_DUE,
    "comment": EffectKind.COMMENT,
    "comments": EffectKind.COMMENT,
}


def refused_effects(exc: ApiError, sent: Sequence[Effect], deadline_field_id: int | None) -> dict[str, str]:
    """Key -> reason of the sent effects a 422 `RecordInvalid` names (empty: it names none of them).

    Shape: {"error": "RecordInvalid", "description": "Record validation errors",
    "details": {"<field>": [{"description": "<Field>: ...", "error": "InvalidValue"}]}}.
    """
    body = exc.body
    if type(exc) is not ApiError or exc.status != 422 or not isinstance(body, Mapping):
        return {}
    details = body.get("details")
    if body.get("error") != "RecordInvalid" or not isinstance(details, Mapping):
        return {}
    named: dict[EffectKind, list[str]] = {}
    for key, items in details.items():
        for item in items if isinstance(items, list) else [items]:
            text = str(item.get("description") or item) if isinstance(item, Mapping) else str(item)
            field = str(key).lower()
            if field == "base":  # "Priority: is invalid" names its field in the text
                field = text.partition(":")[0].strip().lower().replace(" ", "_")
            kind = _DETAIL_KINDS.get(field)
            if kind is EffectKind.SET_DUE or (kind is None and deadline_field_id is not None):
                # Only a detail that names the deadline field's id (as a whole number) is the due date's.
                named_ids = re.findall(r"\d+", f"{key} {text}")
                kind = EffectKind.SET_DUE if str(deadline_field_id) in named_ids else None
            if kind is not None:
                named.setdefault(kind, []).append(text)
    return {e.key: "; ".join(named[e.kind]) for e in sent if e.kind in named}


def assignee_field(value: str) -> tuple[str, int]:
    """`group:<id>` assigns a group; `user:<id>` or a bare id assigns an agent."""
    kind, _, raw = value.rpartition(":")
    name = {"group": "group_id", "user": "assignee_id", "": "assignee_id"}.get(kind)
    if name is None or not raw.isdigit():
        raise ValueError(f"assignee effect value {value!r}: expected <id>, user:<id> or group:<id>")
    return name, int(raw)


def _is_user(answer: Any) -> bool:
    """GET /users/me answers an anonymous user (id null) to a request it did not authenticate."""
    user = (answer or {}).get("user") if isinstance(answer, dict) else None
    return isinstance(user, dict) and user.get("id") is not None


class ZendeskClient:
    def __init__(self, settings: ZendeskSettings, http: ZendeskHttp) -> None:
        self.settings = settings
        self.http = http
        self._told_no_deadline = False

    def __repr__(self) -> str:
        return f"ZendeskClient({self.settings.instance!r})"

    # ------------------------------------------------------------ write-back

    def apply(self, ticket_id: str, effects: Sequence[Effect]) -> list[Effect]:
        """Write `effects`; a bad effect value never blocks the others (see `_apply`).

        A 404 is confirmed before it is raised (`HttpClient.confirm_gone`): trigger-kind instances
        never hear of a deletion, so only a confirmed NotFound lets the pipeline end the ticket.
        """
        if not str(ticket_id).isdigit():
            raise ValueError(f"Zendesk ticket id must be numeric, got {ticket_id!r}")
        try:
            return self._apply(ticket_id, effects)
        except NotFound as exc:
            confirmed = self.http.confirm_gone(
                exc, f"/api/v2/tickets/{ticket_id}.json", "/api/v2/users/me.json", _is_user
            )
            if confirmed is exc:
                raise
            raise confirmed from exc

    def _apply(self, ticket_id: str, effects: Sequence[Effect]) -> list[Effect]:
        applied: list[Effect] = []
        notes = [e for e in effects if e.kind is EffectKind.COMMENT]
        adds = [e for e in effects if e.kind is EffectKind.ADD_TAG]
        removes = [e for e in effects if e.kind is EffectKind.REMOVE_TAG]
        # Map the field part before the first call; a value with no mapping is refused, not sent.
        carried, skipped, rejected = self._mapped([e for e in effects if e.kind in _FIELD_KINDS])
        applied += skipped

        if notes:
            present = self._markers_present(ticket_id, [note_body(e) for e in notes])
            applied += [e for e in notes if marker_of(e) in present]
            notes = [e for e in notes if marker_of(e) not in present]

        base = f"/api/v2/tickets/{ticket_id}"
        in_put = carried + notes
        while in_put:
            # With a note the PUT adds a comment: not idempotent. After an answer that may hide its
            # success it is sent again only if the note's markers are not on the ticket; the PUT is
            # one update, so when they are, everything it carried was written.
            sent_notes = [e for e in in_put if e.kind is EffectKind.COMMENT]
            try:
                self.http.request(
                    "PUT", f"{base}.json", json={"ticket": self._ticket(in_put)},
                    idempotent=not sent_notes,
                    applied=partial(self._notes_present, ticket_id, sent_notes) if sent_notes else None,
                )
            except ApiError as exc:
                refused = refused_effects(exc, in_put, self.settings.deadline_field_id)
                if not refused:
                    raise
                rejected.update(refused)  # the PUT is sent again without them
                in_put = [e for e in in_put if e.key not in refused]
                continue
            applied += in_put
            break
        if adds:
            self.http.request("PUT", f"{base}/tags.json", json={"tags": sorted({e.value for e in adds})})
            applied += adds
        if removes:
            tags = sorted({e.value for e in removes})
            self.http.request("DELETE", f"{base}/tags.json", json={"tags": tags})
            applied += removes
        order = {id(e): i for i, e in enumerate(effects)}
        applied.sort(key=lambda e: order[id(e)])
        reject(self.settings.instance, ticket_id, rejected, applied)
        return applied

    def _mapped(self, effects: list[Effect]) -> tuple[list[Effect], list[Effect], dict[str, str]]:
        """The field effects the ticket PUT can carry, those skipped as done, and those refused.

        Without `deadline_field_id` a due date has nowhere to go: it is skipped and reported as
        applied (so the ledger does not retry it every evaluation; no call is made for it).
        """
        carried: list[Effect] = []
        skipped: list[Effect] = []
        refused: dict[str, str] = {}
        for effect in effects:
            if effect.kind is EffectKind.SET_DUE and self.settings.deadline_field_id is None:
                self._no_deadline_field()
                skipped.append(effect)
                continue
            try:
                self._ticket([effect])
            except ValueError as exc:
                refused[effect.key] = str(exc)
                continue
            carried.append(effect)
        return carried, skipped, refused

    def _ticket(self, effects: Sequence[Effect]) -> dict[str, Any]:
        """The `ticket` of a PUT writing these field effects and private notes (joined into one)."""
        ticket: dict[str, Any] = {}
        notes = [e for e in effects if e.kind is EffectKind.COMMENT]
        for effect in effects:
            if effect.kind is EffectKind.SET_DUE:
                value = format_deadline(effect.value, self.settings)
                ticket["custom_fields"] = [{"id": self.settings.deadline_field_id, "value": value}]
            elif effect.kind is EffectKind.SET_PRIORITY:
                ticket["priority"] = self.settings.priority_to_zendesk(effect.value)
            elif effect.kind is EffectKind.SET_ASSIGNEE:
                name, ident = assignee_field(effect.value)
                ticket[name] = ident
        if notes:
            comment: dict[str, Any] = {
                "body": NOTE_SEPARATOR.join(note_body(e) for e in notes),
                "public": False,
            }
            if self.settings.comment_author_id is not None:
                comment["author_id"] = int(self.settings.comment_author_id)
            ticket["comment"] = comment
        return ticket

    def _no_deadline_field(self) -> None:
        if not self._told_no_deadline:
            self._told_no_deadline = True
            log.info(
                "due dates are not shown in Zendesk: no deadline_field_id is configured",
                extra={"event": "zendesk.no_deadline_field", "instance": self.settings.instance},
            )

    def _notes_present(self, ticket_id: str, notes: Sequence[Effect]) -> bool:
        """Whether every note's marker is on the ticket already."""
        present = self._markers_present(ticket_id, [note_body(e) for e in notes])
        return all(marker_of(e) in present for e in notes)

    def _markers_present(self, ticket_id: str, bodies: list[str]) -> set[str]:
        wanted = {body[body.rindex("[sla-connector:") :] for body in bodies}
        found: set[str] = set()
        for comment in self.comments(ticket_id):
            text = f"{comment.get('body') or ''}\n{comment.get('plain_body') or ''}"
            found |= {m for m in wanted if m in text}
            if found == wanted:
                break
        return found

    # ------------------------------------------------------------ read side

    def comments(self, ticket_id: str) -> Iterator[dict[str, Any]]:
        """The ticket's comments, oldest first, with cursor paging."""
        yield from self.http.pages(
            f"/api/v2/tickets/{ticket_id}/comments.json", "comments", {"page[size]": 100}
        )

    def iter_tickets(self, start_time: datetime | int) -> Iterator[dict[str, Any]]:
        """Tickets changed since `start_time` (incremental export, cursor-based, until end_of_stream)."""
        if isinstance(start_time, datetime):
            if start_time.tzinfo is None:
                raise ValueError("iter_tickets: start_time must be timezone-aware")
            start_time = int(start_time.timestamp())
        path = "/api/v2/incremental/tickets/cursor.json"
        params: dict[str, Any] = {"start_time": int(start_time)}
        while True:
            data = self.http.request("GET", path, params=params) or {}
            yield from data.get("tickets") or []
            cursor = data.get("after_cursor")
            if data.get("end_of_stream", True) or not cursor:
                return
            params = {"cursor": cursor}
