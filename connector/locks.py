"""Per-ticket locks: events of one ticket are never processed by two workers at once.

A lock is `SET sla:lock:<instance>:<ticket> <worker> NX PX <ttl>`; only its holder extends or
releases it (compare-and-set in Lua), so a worker whose lock expired cannot release another's.
Taking the lock and loading the ticket's state is one script, pipelined for a whole batch.
"""

from __future__ import annotations

from typing import Any

from redis.commands.core import Script

_LOCK_AND_LOAD = Script(
    None,
    b"""
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, redis.call('LRANGE', KEYS[2], 0, -1), redis.call('HGETALL', KEYS[3])}
end
return {0}
""",
)

_EXTEND = Script(
    None,
    b"""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
""",
)

_UNLOCK = Script(
    None,
    b"""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
""",
)


_COMPACT = Script(
    None,
    b"""
local n = tonumber(ARGV[3])
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  for i = 4 + n, #ARGV do redis.call('RPUSH', KEYS[2], ARGV[i]) end
  return 0
end
redis.call('LTRIM', KEYS[2], tonumber(ARGV[2]), -1)
for i = 4, 3 + n do redis.call('RPUSH', KEYS[2], ARGV[i]) end
return 1
""",
)


def compact(
    conn: Any, lock: str, events_key: str, token: str, loaded: int, rows: list[str], fresh: list[str]
) -> None:
    """Replace the first `loaded` rows of the log (what we read under the lock) by `rows`.

    Rows appended by others since we read stay. Done only while the lock is still ours, so two
    workers can never both rewrite the same prefix. When the lock expired meanwhile, the `fresh`
    rows (the new events among `rows`) are appended instead: the batch acknowledges their entries
    in the same transaction, so they must be stored either way (duplicates are removed on load).
    """
    _COMPACT((lock, events_key), (token, loaded, len(rows), *rows, *fresh), client=conn)


def lock_and_load(conn: Any, keys: tuple[str, str, str], token: str, ttl_ms: int) -> Any:
    """keys: (lock, event log, ledger hash). Returns [1, rows, flat hash] when locked, else [0].

    `conn` is usually a pipeline: the result then comes from its execute().
    """
    return _LOCK_AND_LOAD(keys, (token, ttl_ms), client=conn)


def extend(conn: Any, key: str, token: str, ttl_ms: int) -> bool:
    """Extend our lock; False if it is no longer ours (it expired, someone else may hold it)."""
    return bool(_EXTEND((key,), (token, ttl_ms), client=conn))


def unlock(conn: Any, key: str, token: str) -> None:
    _UNLOCK((key,), (token,), client=conn)
