"""Desired effects on a ticket, and the pure plan of what is missing given what was applied.

`sla.evaluate` says what the ticket *should* look like (level-triggered); the ledger records what
the connector has already written. `missing_effects` is the difference: only that is written, so
re-evaluating any number of times writes nothing twice.

Ledger: a mapping from effect key to the value applied, e.g.
    {"due": "2026-11-27T16:00:00+00:00", "tag:sla-breached": "present",
     "comment:standard/resolution:breach": "posted", "action:standard/resolution:breach:priority": "urgent",
     "notify:standard/resolution:breach:oncall-slack": "sent"}
Comment and action keys name the policy, the clock and the level (`sla.evaluate.effect_key`); ledgers
written before they named the policy hold keys without it (`comment:resolution:breach`). A notice's
key ends with its channel, whose name never holds a ':' (`notice_channel`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum


class EffectKind(StrEnum):
    SET_DUE = "set_due"  # value: ISO 8601 UTC instant of the deadline shown on the ticket
    ADD_TAG = "add_tag"  # value: the tag / label
    REMOVE_TAG = "remove_tag"  # value: the tag / label (only ever one the connector added)
    COMMENT = "comment"  # value: the internal comment's body (plain text)
    SET_PRIORITY = "set_priority"  # value: canonical priority name (adapter maps it back)
    SET_ASSIGNEE = "set_assignee"  # value: product user/group id from the policy
    NOTIFY = "notify"  # value: the notice's text (first line: its subject); not written to the ticket


@dataclass(frozen=True)
class Effect:
    key: str  # ledger key; stable across evaluations
    kind: EffectKind
    value: str

    @property
    def ledger_value(self) -> str:
        """What the ledger records once this effect has been applied."""
        if self.kind is EffectKind.ADD_TAG:
            return "present"
        if self.kind is EffectKind.REMOVE_TAG:
            return "absent"
        if self.kind is EffectKind.COMMENT:
            return "posted"
        if self.kind is EffectKind.NOTIFY:
            return "sent"
        return self.value


@dataclass(frozen=True)
class DesiredEffects:
    """What the ticket should show. Comments and actions are one-shot, identified by stable keys."""

    due: datetime | None = None  # None (no clock tracked): leave the deadline field alone
    tags_present: frozenset[str] = frozenset()
    tags_absent: frozenset[str] = frozenset()  # managed tags that must not be (or no longer be) there
    comments: Mapping[str, str] = field(default_factory=dict)  # key -> body
    actions: Mapping[str, tuple[EffectKind, str]] = field(default_factory=dict)  # key -> (kind, value)
    notices: Mapping[str, str] = field(default_factory=dict)  # "<level key>:<channel>" -> text


def comment_marker(key: str) -> str:
    """Marker appended to every comment the connector posts.

    It lets the client find a comment that was posted but never recorded in the ledger (a worker
    died in between), and lets adapters recognise the connector's own comments coming back.
    """
    return f"[sla-connector:{key}]"


def notice_channel(effect: Effect) -> str:
    """The channel a NOTIFY effect goes to: the last part of its key (channel names hold no ':')."""
    if effect.kind is not EffectKind.NOTIFY:
        raise ValueError(f"effect {effect.key!r} is a {effect.kind}, not a notice")
    return effect.key.rsplit(":", 1)[1]


def missing_effects(desired: DesiredEffects, ledger: Mapping[str, str]) -> list[Effect]:
    """The effects still to apply, in a stable order (due date, tags, comments, actions, notices)."""
    out: list[Effect] = []
    if desired.due is not None:
        due = desired.due.astimezone(UTC).isoformat()
        if ledger.get("due") != due:
            out.append(Effect("due", EffectKind.SET_DUE, due))
    for tag in sorted(desired.tags_present):
        if ledger.get(f"tag:{tag}") != "present":
            out.append(Effect(f"tag:{tag}", EffectKind.ADD_TAG, tag))
    for tag in sorted(desired.tags_absent - desired.tags_present):
        # Only remove what we added: a customer's own tag of the same name is left alone.
        if ledger.get(f"tag:{tag}") == "present":
            out.append(Effect(f"tag:{tag}", EffectKind.REMOVE_TAG, tag))
    for key in sorted(desired.comments):
        if f"comment:{key}" not in ledger:
            out.append(Effect(f"comment:{key}", EffectKind.COMMENT, desired.comments[key]))
    for key in sorted(desired.actions):
        kind, value = desired.actions[key]
        if f"action:{key}" not in ledger:
            out.append(Effect(f"action:{key}", EffectKind(kind), value))
    for key in sorted(desired.notices):
        if f"notify:{key}" not in ledger:
            out.append(Effect(f"notify:{key}", EffectKind.NOTIFY, desired.notices[key]))
    return out
