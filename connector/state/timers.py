"""Timers: "look at this ticket again at epoch T", kept in one sorted set.

A timer carries no meaning of its own (the evaluation decides what is due), so a stale or
duplicate timer is harmless and the earliest one per ticket is all that matters: `schedule`
uses ZADD LT, keeping the earlier of the stored and the new instant. The dispatch job (run every
second by RQ's cron scheduler) moves due members into `sla:want` with one Lua call (atomic, so a
timer is moved once even with several dispatchers), and from there into look jobs. One small
sorted-set member per ticket (about 100 bytes) instead of a 1.5 KB scheduled RQ job.
"""

from __future__ import annotations

from typing import Any

from redis.commands.core import Script

from connector.state import store

_MOVE_DUE = Script(
    None,
    b"""
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
for i = 1, #due, 2 do
  redis.call('ZADD', KEYS[2], 'NX', due[i + 1], due[i])
  redis.call('ZREM', KEYS[1], due[i])
end
return #due / 2
""",
)


def schedule(conn: Any, instance: str, ticket: str, at_epoch: float) -> None:
    """Ask for the ticket to be looked at again at `at_epoch` (or earlier if already asked).

    `conn` may be a pipeline, so timers are written in the same transaction as the ledger.
    """
    conn.zadd(store.TIMERS, {store.member(instance, ticket): at_epoch}, lt=True)


def cancel(conn: Any, instance: str, ticket: str) -> None:
    conn.zrem(store.TIMERS, store.member(instance, ticket))


def move_due(conn: Any, now_epoch: float, limit: int = 1000) -> int:
    """Move the timers due at `now_epoch` to the tickets wanting a look; the number moved."""
    return int(_MOVE_DUE((store.TIMERS, store.WANT), (repr(now_epoch), limit), client=conn))


def pending(conn: Any) -> int:
    return int(conn.zcard(store.TIMERS))


def due_at(conn: Any, instance: str, ticket: str) -> float | None:
    score = conn.zscore(store.TIMERS, store.member(instance, ticket))
    return None if score is None else float(score)
