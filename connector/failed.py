"""The failed registry: what the pipeline gave up on, kept until an admin replays or purges it.

Two kinds of entries, in the hash `sla:failed` (id -> JSON):
- "event:<instance>:<delivery>": a delivery that could not be normalised (or names an unknown
  instance). Its stream fields are kept, so `retry` puts it back on the stream as it was.
- "ticket:<instance>:<ticket>": a ticket whose evaluation or write-back failed `max_attempts`
  times (a 404 without a deletion event too). Its events are safe in its log; `retry` resets the
  attempts (and any `gone` mark and refused effects) and looks at it again.
  `retry ticket:<instance>:<ticket>` also works for a stored ticket that is not in the registry
  (e.g. one marked gone, or one with refused effects).
Tickets holding effects the product refused (a value it would not take: see connector/retries.py)
are not failures, but `list` shows them (kind "refused", with each effect's reason) from the set
`sla:refused`, and `retry --all` replays them too: the refusal may come from the setup (a priority
or field the product lacks) and be fixed since.
A ticket that fails does not block others: the worker records it here and moves on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

import redis

from connector import store

# Stream fields of a replayed delivery (bytes from XREADGROUP or str) -> str.


def _str_fields(fields: Mapping[Any, Any]) -> dict[str, str]:
    return {store.text(k) or "": store.text(v) or "" for k, v in fields.items()}


def event_id(instance: str, delivery: str) -> str:
    return f"event:{instance}:{delivery}"


def ticket_id(instance: str, ticket: str) -> str:
    return f"ticket:{instance}:{ticket}"


def record_event(
    conn: Any, instance: str, delivery: str, fields: Mapping[Any, Any], error: str, now: float | None = None
) -> str:
    """Keep a delivery that cannot be processed. `conn` may be a pipeline."""
    entry_id = event_id(instance, delivery)
    entry = {
        "id": entry_id,
        "kind": "event",
        "instance": instance,
        "ticket": store.text(fields.get(b"t", fields.get("t"))) or None,
        "delivery": delivery,
        "error": error[:2000],
        "attempts": 1,
        "failed_at": time.time() if now is None else now,
        "fields": _str_fields(fields),
    }
    conn.hset(store.FAILED, entry_id, json.dumps(entry, separators=(",", ":")))
    return entry_id


def record_ticket(
    conn: Any, instance: str, ticket: str, error: str, attempts: int, now: float | None = None
) -> str:
    entry_id = ticket_id(instance, ticket)
    entry = {
        "id": entry_id,
        "kind": "ticket",
        "instance": instance,
        "ticket": ticket,
        "delivery": None,
        "error": error[:2000],
        "attempts": attempts,
        "failed_at": time.time() if now is None else now,
    }
    conn.hset(store.FAILED, entry_id, json.dumps(entry, separators=(",", ":")))
    return entry_id


def list_failed(conn: redis.Redis) -> list[dict]:
    """Every failed entry, oldest first (without the raw payload, which may be large), then the
    tickets holding effects the product refused (kind "refused", not in the registry themselves)."""
    out = []
    for raw in conn.hvals(store.FAILED):
        entry = json.loads(raw)
        entry.pop("fields", None)
        out.append(entry)
    listed = {entry["id"] for entry in out}
    for entry_id in sorted(store.text(m) or "" for m in conn.smembers(store.REFUSED)):
        if entry_id not in listed and (entry := _refused_entry(conn, entry_id)) is not None:
            out.append(entry)
    return sorted(out, key=lambda e: (e["failed_at"], e["id"]))


def _refused_entry(conn: redis.Redis, entry_id: str) -> dict | None:
    """A listing of a ticket's refused effects ("effect key: reason; ..."), None when it has none left."""
    _, instance, ticket = _split(entry_id)
    tk = store.ticket_key(instance, ticket)
    refusals = {
        (store.text(k) or "").removeprefix(store.LEDGER_REJECTED): store.decode_rejection(store.text(v) or "")
        for k, v in conn.hgetall(tk).items()
        if (store.text(k) or "").startswith(store.LEDGER_REJECTED)
    }
    if not refusals:
        return None
    return {
        "id": entry_id, "kind": "refused", "instance": instance, "ticket": ticket, "delivery": None,
        "error": "; ".join(f"{key}: {r.get('reason', '')}" for key, r in sorted(refusals.items()))[:2000],
        "attempts": 0, "failed_at": min(float(r.get("at") or 0) for r in refusals.values()),
    }


def _select(conn: redis.Redis, ids: Sequence[str] | None) -> list[tuple[str, dict]]:
    if ids is None:
        chosen = {store.text(k) or "": json.loads(v) for k, v in conn.hgetall(store.FAILED).items()}
        for member in conn.smembers(store.REFUSED):  # tickets with refused effects, for `retry --all`
            entry_id = store.text(member) or ""
            if entry_id in chosen:
                continue
            if _refused_entry(conn, entry_id) is None:  # none left (a new value was written): forget it
                conn.srem(store.REFUSED, entry_id)
            elif (known := _stored_ticket(conn, entry_id)) is not None:
                chosen[entry_id] = known
        return list(chosen.items())
    ids = list(ids)
    if not ids:
        return []
    values = conn.hmget(store.FAILED, ids)
    out = []
    for entry_id, value in zip(ids, values, strict=True):
        if value is not None:
            out.append((entry_id, json.loads(value)))
        elif (known := _stored_ticket(conn, entry_id)) is not None:
            out.append((entry_id, known))
    return out


def _split(entry_id: str) -> tuple[str, str, str]:
    """"ticket:<instance>:<ticket>" -> its three parts. Ticket ids never hold ":" (instance names may)."""
    prefix, _, rest = entry_id.partition(":")
    instance, _, ticket = rest.rpartition(":")
    return prefix, instance, ticket


def _stored_ticket(conn: redis.Redis, entry_id: str) -> dict | None:
    """A "ticket:<instance>:<ticket>" id of a ticket that is stored but not failed (e.g. marked gone).

    `failed retry` names such a ticket to clear its marks and look at it again. Ticket ids never
    hold ":" (instance names may), hence the split from the right.
    """
    prefix, instance, ticket = _split(entry_id)
    if prefix != "ticket" or not instance or not ticket:
        return None
    if not conn.exists(store.ticket_key(instance, ticket), store.events_key(instance, ticket)):
        return None
    return {"kind": "ticket", "instance": instance, "ticket": ticket}


def retry_failed(conn: redis.Redis, ids: Sequence[str] | None = None) -> int:
    """Replay the given entries (all when `ids` is None); the number replayed. Unknown ids are skipped.

    A ticket id names a stored ticket even when it is not in the registry (its marks are cleared).
    """
    count = 0
    for entry_id, entry in _select(conn, ids):
        pipe = conn.pipeline(transaction=True)
        if entry["kind"] == "event":
            fields = dict(entry["fields"])
            fields["x"] = "1"  # a replay: the worker does not count it as a new delivery
            pipe.xadd(store.STREAM, fields)
        else:
            # Also a `gone` mark: a replay asks the product again whatever an older 404 said; and
            # the refused effects, so a value refused before (e.g. a priority since created) is tried.
            tk = store.ticket_key(entry["instance"], entry["ticket"])
            refused = [k for k in conn.hkeys(tk) if (store.text(k) or "").startswith(store.LEDGER_REJECTED)]
            pipe.hdel(tk, store.META + "attempts", store.META + "gone", store.META + "gone_at", *refused)
            pipe.xadd(store.STREAM, {"k": "t", "i": entry["instance"], "t": entry["ticket"], "x": "1"})
            pipe.srem(store.REFUSED, entry_id)
        pipe.hdel(store.FAILED, entry_id)
        pipe.execute()
        count += 1
    return count


def purge_failed(conn: redis.Redis, ids: Sequence[str] | None = None) -> int:
    """Forget the given entries (all when `ids` is None); the number removed."""
    if ids is None:
        listed = {entry["id"] for entry in list_failed(conn)}
        conn.delete(store.FAILED, store.REFUSED)  # refusals stay in the tickets' ledgers, unlisted
        return len(listed)
    ids = list(dict.fromkeys(ids))
    if not ids:
        return 0
    pipe = conn.pipeline(transaction=True)
    for entry_id in ids:  # each id counted once, whichever of the two it was listed by
        pipe.hdel(store.FAILED, entry_id)
        pipe.srem(store.REFUSED, entry_id)
    answers = pipe.execute()
    return sum(1 for failed_, refused in zip(answers[::2], answers[1::2], strict=True) if failed_ or refused)


def failed_count(conn: redis.Redis) -> int:
    return int(conn.hlen(store.FAILED))
