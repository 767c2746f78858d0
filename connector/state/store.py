"""Redis layout of the connector, and the compact encodings of a ticket's inbox and event log.

Every key of ours starts with "sla:" (RQ's own keys start with "rq:"). Per tracked ticket:

- `sla:in:<instance>:<ticket>`  list: the ticket's inbox, what was accepted for it and not yet merged
  into its log (one row per delivery: `encode_inbox_row`). The receiver appends; the ticket's RQ job
  reads it and trims exactly the rows it stored, in the same transaction as the log.
- `sla:ev:<instance>:<ticket>`  list of events, one compact JSON array each (ordering by time and
  deduplication by event id happen on load, with `sla.timeline.dedupe`'s order-independent rule).
  Written only by the job that holds the ticket's lock.
- `sla:tk:<instance>:<ticket>`  hash: the ledger of applied effects (the keys of
  `sla.effects.missing_effects`), the dry-run ledger under "dry:<key>", effects the product
  refused under "rej:<key>" (JSON: the refused ledger value, the reason, when), and bookkeeping
  under "#<name>" (gone, b:<clock> once a clock's breach has been counted, key: the product's
  display key such as a Jira issue key).
- `sla:lock:<instance>:<ticket>`  the id of the RQ job looking at the ticket (a ticket's jobs never
  run at the same time).

Shared keys (members "<instance>\\n<ticket>"):

- `sla:want` sorted set: tickets that need a look and have no job yet, by the epoch since when.
- `sla:queued` hash: tickets with a look job queued or running -> "<job id> <epoch claimed>". A
  delivery for such a ticket joins its inbox and nothing more: the job takes it (coalescing).
- `sla:timers` sorted set: the next instant each ticket must be looked at again.
- `sla:dispatch` flag while a dispatch job is asked for; `sla:seq` job id counter.
- `sla:keys:<instance>` hash: display key (a Jira issue key, "SUP-42") -> ticket id, so the ticket
  API and command accept a key; written by the look job from the adapter's optional `display_key`.
- `sla:dd:<instance>:<delivery>` dedupe keys with a TTL, `sla:failed` (hash: deliveries that could
  not be normalised; their inbox rows in `sla:failed:rows`), `sla:refused` (set), `sla:last_event`
  (hash instance -> epoch), `sla:counters`, `sla:latency`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from sla.events import EventKind, Role, Status, TicketEvent
from sla.timeline import dedupe, final_deletion

PREFIX = "sla:"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
WANT = "sla:want"
QUEUED = "sla:queued"
DISPATCH_FLAG = "sla:dispatch"
SEQ = "sla:seq"
SWEPT = "sla:swept"  # set while a sweep for lost jobs has run recently (one every sweep_every_s)
TIMERS = "sla:timers"
FAILED = "sla:failed"
REFUSED = "sla:refused"  # set of "ticket:<instance>:<ticket>" that hold refused effects (`failed list`)
LAST_EVENT = "sla:last_event"
COUNTERS = "sla:counters"
LATENCY = "sla:latency"

LEDGER_DRY = "dry:"  # prefix of dry-run ledger fields
LEDGER_REJECTED = "rej:"  # prefix of refused effects: JSON {"value": ledger value, "reason", "at"}
META = "#"  # prefix of bookkeeping fields


def inbox_key(instance: str, ticket: str) -> str:
    return f"sla:in:{instance}:{ticket}"


def events_key(instance: str, ticket: str) -> str:
    return f"sla:ev:{instance}:{ticket}"


def ticket_key(instance: str, ticket: str) -> str:
    return f"sla:tk:{instance}:{ticket}"


def lock_key(instance: str, ticket: str) -> str:
    return f"sla:lock:{instance}:{ticket}"


def keys_key(instance: str) -> str:
    """The instance's display keys (a Jira issue key) -> ticket ids."""
    return f"sla:keys:{instance}"


def dedupe_key(instance: str, delivery: str) -> str:
    return f"sla:dd:{instance}:{delivery}"


def member(instance: str, ticket: str) -> str:
    """A ticket in the shared sets (`sla:want`, `sla:queued`, `sla:timers`)."""
    if "\n" in instance:
        raise ValueError(f"instance name {instance!r} must not contain a newline")
    return f"{instance}\n{ticket}"


def split_member(value: str | bytes) -> tuple[str, str]:
    instance, _, ticket = (text(value) or "").partition("\n")
    return instance, ticket


def text(value: bytes | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value.decode()


# ---------------------------------------------------------------- event encoding

_KIND_CODE = {
    EventKind.CREATED: "n",
    EventKind.CHANGED: "u",
    EventKind.COMMENTED: "c",
    EventKind.DELETED: "d",
    EventKind.RESTORED: "r",
}
_CODE_KIND = {v: k for k, v in _KIND_CODE.items()}
_ROLE_CODE = {Role.AGENT: "a", Role.REQUESTER: "r", Role.CONNECTOR: "s", Role.OTHER: "o"}
_CODE_ROLE = {v: k for k, v in _ROLE_CODE.items()}


def encode_event(event: TicketEvent) -> str:
    """A compact JSON array: [id, kind, epoch, actor, fields, public] (trailing defaults dropped).

    The ticket id is the key's, not repeated; the instant is UTC epoch seconds (an int, or an exact
    "seconds.micros" string when it has microseconds: floats would round), which is all `sla`
    needs: it compares instants, never zones.
    """
    at = event.at.astimezone(UTC)
    whole = (at - _EPOCH) // timedelta(seconds=1)
    seconds: int | str = whole if at.microsecond == 0 else f"{whole}.{at.microsecond:06d}"
    fields: dict[str, Any] = {}
    for name, value in event.fields.items():
        if name == "tags" and value is not None:
            value = sorted(value)
        elif name == "status" and value is not None:
            value = str(value)
        fields[name] = value
    row: list[Any] = [
        event.event_id,
        _KIND_CODE[event.kind],
        seconds,
        _ROLE_CODE[event.actor],
        fields,
        event.public,
    ]
    while row and row[-1] in (None, {}) and len(row) > 4:
        row.pop()
    text = json.dumps(row, separators=(",", ":"), ensure_ascii=False)
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate (half an emoji cut off in a tag) has no UTF-8
        return json.dumps(row, separators=(",", ":"))  # escaped as \udxxx, as JSON allows
    return text


def decode_event(ticket: str, data: str | bytes) -> TicketEvent:
    return _from_row(ticket, json.loads(data))


def decode_events(ticket: str, rows: Sequence[str | bytes]) -> list[TicketEvent]:
    """`decode_event` of each of a log's rows, parsed as one JSON array by orjson: a tenth of the cost
    of 20 parses by json (replays decode every log of a period). Where that fails (a row that is not
    one JSON list, or that orjson refuses: a lone surrogate escaped by encode_event), each row is
    decoded alone, so that it decodes as `decode_event` decodes it or the error names that row."""
    if not rows:
        return []
    joined = b",".join(r if isinstance(r, bytes) else r.encode() for r in rows)
    try:
        parsed = orjson.loads(b"[" + joined + b"]")
    except ValueError:
        parsed = None
    if parsed is None or len(parsed) != len(rows) or not all(type(r) is list for r in parsed):
        return [decode_event(ticket, row) for row in rows]
    return [_from_row(ticket, row) for row in parsed]


def _from_row(ticket: str, row: list[Any]) -> TicketEvent:
    seconds = row[2]
    if type(seconds) is int:  # whole seconds, as encode_event writes most instants: exact
        at = datetime.fromtimestamp(seconds, UTC)
    else:
        whole, _, micros = seconds.partition(".")
        at = _EPOCH + timedelta(seconds=int(whole), microseconds=int(micros))
    # The log only holds rows encode_event wrote from checked events: rebuilt without the checks.
    n = len(row)
    fields, public = row[4] if n > 4 else {}, row[5] if n > 5 else None
    return TicketEvent.from_stored(row[0], ticket, _CODE_KIND[row[1]], at, _CODE_ROLE[row[3]], fields, public)


# ---------------------------------------------------------------- inbox rows


@dataclass(frozen=True)
class InboxRow:
    """One row of a ticket's inbox: a delivery as received ("e"), or events already canonical ("v":
    backfill, or events a delivery of another ticket carried)."""

    kind: str
    delivery: str
    received: float | None
    replay: bool  # put back by `failed retry`: not a new delivery (no latency observed)
    headers: Mapping[str, str]
    body: bytes  # "e": the payload's JSON text as received; "v": a JSON list of encoded events
    raw: bytes  # the whole row, kept as it is when the delivery fails (replayable)


def encode_inbox_row(
    kind: str, body: bytes, *, delivery: str = "", received: float | None = None,
    headers: Mapping[str, str] | None = None, replay: bool = False,
) -> bytes:
    """A JSON line of metadata, a newline, then the body as it is (no re-encoding of a large payload)."""
    meta: dict[str, Any] = {"k": kind, "d": delivery}
    if received is not None:
        meta["r"] = received
    if headers:
        meta["h"] = dict(headers)
    if replay:
        meta["x"] = 1
    head = json.dumps(meta, separators=(",", ":"))  # ASCII: never holds a raw newline
    return head.encode() + b"\n" + body


def decode_inbox_row(row: bytes | str) -> InboxRow:
    raw = row.encode("utf-8", "surrogateescape") if isinstance(row, str) else row
    head, _, body = raw.partition(b"\n")
    meta = json.loads(head)
    return InboxRow(
        kind=meta.get("k", "e"), delivery=meta.get("d", ""), received=meta.get("r"),
        replay=bool(meta.get("x")), headers=meta.get("h") or {}, body=body, raw=raw,
    )


def events_row(events: list[TicketEvent]) -> bytes:
    """An inbox row of canonical events (backfill; events one delivery carried for another ticket)."""
    return encode_inbox_row("v", json.dumps([encode_event(e) for e in events]).encode())


# ---------------------------------------------------------------- a ticket's stored state


@dataclass
class TicketRecord:
    """What Redis holds for one ticket, decoded."""

    instance: str
    ticket: str
    events: list[TicketEvent] = field(default_factory=list)  # unique by id, sorted by time
    stored_rows: int = 0  # list length; more than len(events) means duplicates to compact
    ledger: dict[str, str] = field(default_factory=dict)
    dry_ledger: dict[str, str] = field(default_factory=dict)
    rejected: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> value, reason, at
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def gone(self) -> bool:
        return bool(self.meta.get("gone"))

    def ledger_for(self, dry_run: bool) -> dict[str, str]:
        return self.dry_ledger if dry_run else self.ledger

    def applied_keys(self, dry_run: bool) -> frozenset[str]:
        """The keys `sla.evaluate` is given: written (or logged in dry-run) and refused effects, and the
        clocks whose breach was counted (`b:<clock key>`), so that a counted breach keeps its key."""
        counted = (key[2:] for key in self.meta if key.startswith("b:"))
        if dry_run:
            return frozenset({*self.dry_ledger, *counted})
        return frozenset({*self.ledger, *self.rejected, *counted})


def decode_record(
    instance: str, ticket: str, rows: list[bytes], hash_: Mapping[bytes, bytes]
) -> TicketRecord:
    record = TicketRecord(instance, ticket, stored_rows=len(rows))
    # Two deliveries may carry one event id with different content (a Zendesk trigger repeats the
    # latest comment with a later time): the evaluation's own rule picks one, whatever the row order.
    record.events = dedupe(decode_events(ticket, rows))
    for raw_key, raw_value in hash_.items():
        key, value = text(raw_key) or "", text(raw_value) or ""
        if key.startswith(META):
            record.meta[key[len(META) :]] = value
        elif key.startswith(LEDGER_DRY):
            record.dry_ledger[key[len(LEDGER_DRY) :]] = value
        elif key.startswith(LEDGER_REJECTED):
            record.rejected[key[len(LEDGER_REJECTED) :]] = decode_rejection(value)
        else:
            record.ledger[key] = value
    return record


def encode_rejection(value: str, reason: str, at: float) -> str:
    return json.dumps({"value": value, "reason": reason, "at": at}, separators=(",", ":"), ensure_ascii=False)


def decode_rejection(raw: str) -> dict[str, Any]:
    """A "rej:<key>" field; anything unreadable counts as refusing no value (so it is tried again)."""
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("value"), str):
        return {"value": None, "reason": f"unreadable: {raw[:100]!r}", "at": None}
    at = data.get("at")
    at = float(at) if isinstance(at, int | float) and not isinstance(at, bool) else None
    return {"value": data["value"], "reason": str(data.get("reason") or ""), "at": at}


def load_record(conn: Any, instance: str, ticket: str) -> TicketRecord | None:
    """The ticket's stored state, or None when nothing is stored for it."""
    pipe = conn.pipeline(transaction=False)
    pipe.lrange(events_key(instance, ticket), 0, -1)
    pipe.hgetall(ticket_key(instance, ticket))
    rows, hash_ = pipe.execute()
    if not rows and not hash_:
        return None
    return decode_record(instance, ticket, rows, hash_)


def last_status(events: list[TicketEvent]) -> Status | None:
    if final_deletion(events) is not None:  # deleted and not restored
        return Status.CLOSED
    status: Status | None = None
    for event in events:
        if event.fields.get("status") is not None:
            status = Status(event.fields["status"])
    return status


def is_deleted(events: list[TicketEvent]) -> bool:
    """The product told us the ticket was deleted and not restored (only then does a 404 mean it is gone)."""
    return final_deletion(events) is not None


def is_finished(events: list[TicketEvent]) -> bool:
    """Solved, closed or deleted: its log only has to be kept for the retention period."""
    return last_status(events) in (Status.SOLVED, Status.CLOSED)
