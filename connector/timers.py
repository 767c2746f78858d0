"""Timers: "look at this ticket again at epoch T", kept in one sorted set.

A timer carries no meaning of its own (the evaluation decides what is due), so a stale or
duplicate timer is harmless and the earliest one per ticket is all that matters: `schedule`
uses ZADD LT, keeping the earlier of the stored and the new instant. The scheduler loop moves due
members into the work stream with one Lua call per pass (ZRANGEBYSCORE + XADD + ZREM, atomic, so a
timer is moved exactly once even with several schedulers). 10,000 pending timers cost one sorted
set of about 10,000 short members; each pass is O(log n + due).
"""

from __future__ import annotations

from typing import Any

from redis.commands.core import Script

from connector import store

_MOVE_DUE = Script(
    None,
    b"""
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  local sep = string.find(member, '\\n', 1, true)
  redis.call('XADD', KEYS[2], '*', 'k', 't', 'i', string.sub(member, 1, sep - 1),
             't', string.sub(member, sep + 1), 'r', ARGV[1])
  redis.call('ZREM', KEYS[1], member)
end
return #due
""",
)


def schedule(conn: Any, instance: str, ticket: str, at_epoch: float) -> None:
    """Ask for the ticket to be looked at again at `at_epoch` (or earlier if already asked).

    `conn` may be a pipeline, so timers are written in the same transaction as the ledger.
    """
    conn.zadd(store.TIMERS, {store.timer_member(instance, ticket): at_epoch}, lt=True)


def cancel(conn: Any, instance: str, ticket: str) -> None:
    conn.zrem(store.TIMERS, store.timer_member(instance, ticket))


def move_due(conn: Any, now_epoch: float, limit: int = 1000) -> int:
    """Move the timers due at `now_epoch` into the work stream; the number moved."""
    return int(_MOVE_DUE((store.TIMERS, store.STREAM), (repr(now_epoch), limit), client=conn))


def pending(conn: Any) -> int:
    return int(conn.zcard(store.TIMERS))


def due_at(conn: Any, instance: str, ticket: str) -> float | None:
    score = conn.zscore(store.TIMERS, store.timer_member(instance, ticket))
    return None if score is None else float(score)
