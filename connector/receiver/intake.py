"""Durable intake: dedupe a delivery, keep it in its ticket's inbox, and ask for a look, atomically.

The receiver calls `accept` after verifying and validating a webhook. One Lua script checks the
delivery id's dedupe key, appends the delivery to the ticket's inbox (`sla:in:...`), sets the key
with a TTL and, unless the ticket already has a look job queued or running, marks the ticket as
wanting one (`sla:want`). A delivery is either kept and looked at, or neither: a failure cannot
make a retry look like a duplicate of something that was never kept. Once `accept` returns True the
row stays in the inbox until a ticket job has stored its events (connector/jobs).

The receiver does not enqueue an RQ job per delivery (RQ's enqueue costs several times the rest of
the intake): only when a ticket starts wanting a look and no dispatch is asked for already does it
enqueue one `dispatch` job, which turns every waiting ticket into a look job with `enqueue_many`.
Should that enqueue be lost (a crash right after the script), the dispatch run every second by RQ's
cron scheduler finds the ticket anyway.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import redis
from redis.commands.core import Script

from connector.config.tuning import PipelineSettings
from connector.state import queues, store

# Header names never kept with a queued delivery: anything that may carry a credential (automation
# shared secrets, tokens; signatures are of no use once verified), and transport details the workers
# never read. The one list of what is stored: the receiver passes all request headers.
_SENSITIVE = re.compile(r"secret|token|authorization|cookie|signature|api[-_]?key|password")
_NOISE = frozenset({"host", "connection", "content-length", "accept-encoding", "accept"})

_ACCEPT = Script(
    None,
    b"""
-- KEYS: dedupe, inbox, last_event, queued, want, dispatch flag
-- ARGV: dedupe ttl, instance, row, received epoch, member, flag ttl
-- Returns 0 duplicate, 1 kept, 2 kept and a dispatch is to be enqueued by the caller.
-- Redis does not roll a script back on error: RPUSH (the step that can fail) runs before SET.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[3])
redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[4])
if redis.call('HEXISTS', KEYS[4], ARGV[5]) == 1 then return 1 end
if redis.call('ZADD', KEYS[5], 'NX', ARGV[4], ARGV[5]) == 0 then return 1 end
if redis.call('SET', KEYS[6], '1', 'NX', 'EX', ARGV[6]) then return 2 end
return 1
""",
)


def kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Lower-cased headers the adapter may need when normalising, minus anything secret-looking and
    transport noise (`_SENSITIVE`, `_NOISE`)."""
    kept = {}
    for key, value in headers.items():
        name = key.lower()
        if name not in _NOISE and not _SENSITIVE.search(name):
            kept[name] = str(value)
    return kept


def accept(
    conn: redis.Redis,
    instance: str,
    delivery_id: str,
    ticket_id: str | None,
    payload: Any,
    headers: Mapping[str, str],
    received_at: datetime,
    *,
    dedupe_ttl_s: int | None = None,
    raw: str | bytes | None = None,
) -> bool:
    """Queue a verified delivery; True if new, False for a duplicate. Redis errors propagate.

    `raw` is the JSON text (str, or its UTF-8 bytes) `payload` was parsed from, when the caller has
    it (the receiver): it is stored as received instead of serialising `payload` again (the workers
    parse it either way).
    """
    if not instance or "\n" in instance:
        raise ValueError(f"accept: bad instance name {instance!r}")
    if not delivery_id:
        raise ValueError(f"accept: empty delivery id for instance {instance!r}")
    if received_at.tzinfo is None:
        raise ValueError(f"accept: received_at {received_at!r} must be timezone-aware")
    if raw is not None and not isinstance(raw, str | bytes):
        raise ValueError(
            f"accept: raw must be the payload's JSON text (str or bytes), got {type(raw).__name__}")
    settings = _default_settings()
    ttl = dedupe_ttl_s if dedupe_ttl_s is not None else settings.dedupe_ttl_s
    if int(ttl) < 1:  # the script's SET EX would fail after the RPUSH: kept, yet answered as an error
        raise ValueError(f"accept: dedupe_ttl_s must be >= 1 second, got {ttl!r}")
    delivery_id = _escaped(delivery_id)  # a key and a log field: it must be UTF-8
    body = raw if raw is not None else _serialise(payload)
    if isinstance(body, str):
        try:
            body = body.encode()
        except UnicodeEncodeError:  # a lone surrogate in the text: store the payload escaped instead
            body = _serialise(payload)
    ticket = ticket_id or ""
    received = received_at.timestamp()
    row = store.encode_inbox_row("e", body, delivery=delivery_id, received=received,
                                 headers=kept_headers(headers))
    keys = (store.dedupe_key(instance, delivery_id), store.inbox_key(instance, ticket), store.LAST_EVENT,
            store.QUEUED, store.WANT, store.DISPATCH_FLAG)
    args = (int(ttl), instance, row, repr(received), store.member(instance, ticket),
            settings.dispatch_flag_ttl_s)
    outcome = int(_run_accept(conn, keys, args))
    if outcome == 2:
        queues.enqueue_dispatch(conn, settings)
    return outcome > 0


def _run_accept(conn: redis.Redis, keys: tuple[str, ...], args: tuple[Any, ...]) -> Any:
    """The script through redis-py's Script, or, on a client that holds one connection (the receiver's),
    sent straight on that connection.

    The receiver's per-delivery CPU is what bounds its throughput. redis-py's generic command path
    (Script -> evalsha -> execute_command -> retry wrapper -> pack -> parse callbacks) costs more
    user CPU than the rest of the enqueue (measured in bench/receiver_bench.py, docs/benchmarks.md);
    the held connection's own send/read keep redis-py's socket handling, health check, reply parser
    and error types, and a NOSCRIPT reply (a restarted server) loads the script once through Script.
    """
    connection = getattr(conn, "connection", None)  # set on single_connection_client=True clients
    if connection is None:
        return _ACCEPT(keys, args, client=conn)
    command = _pack(_EVALSHA, _ACCEPT_SHA, b"%d" % len(keys), *map(_bulk, keys), *map(_bulk, args))
    with conn.single_connection_lock:  # as redis-py does for a client threads share
        # On a socket error both calls drop the connection; the next command reconnects.
        connection.send_packed_command([command])
        try:
            return connection.read_response()
        except redis.exceptions.NoScriptError:  # a restarted or flushed server: load it, once
            pass
    return _ACCEPT(keys, args, client=conn)


_EVALSHA = b"EVALSHA"
_ACCEPT_SHA = _ACCEPT.sha.encode()


def _bulk(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return value.encode() if isinstance(value, str) else repr(value).encode()  # int: as redis-py packs it


def _pack(*parts: bytes) -> bytes:
    """One command in the Redis protocol (RESP): an array of bulk strings."""
    return b"".join([b"*%d\r\n" % len(parts), *(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)])


def _escaped(value: str) -> str:
    """`value`, with a lone surrogate (half an emoji a product cut off; JSON allows it) written as
    `\\udxxx`: Redis keys and rows are UTF-8, and the same id must give the same dedupe key."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode()
    return value


def _serialise(payload: Any) -> bytes:
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode()
    except UnicodeEncodeError:  # a lone surrogate (half an emoji) has no UTF-8: escape it as \udxxx
        return json.dumps(payload, separators=(",", ":")).encode()


@functools.cache
def _default_settings() -> PipelineSettings:
    return PipelineSettings.from_env()
