"""Reading many tickets' event logs at once, for replays over a period (`simulate`, `review`).

An instance's logs are the keys `sla:ev:<instance>:<ticket>` (connector.state.store). They are found
with SCAN (never KEYS: a year of tickets must not block Redis) and read with one pipelined LRANGE per
ticket, a batch per round trip. Nothing is written.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from connector.state.store import decode_events, events_key, text
from sla.events import TicketEvent

SCAN_COUNT = 1000


def ticket_ids(conn: Any, instance: str) -> list[str]:
    """The ids of the instance's tickets that have an event log, sorted (a stable order for chunks).

    Instance names hold no glob characters (the configuration's pattern), so the pattern is literal."""
    prefix = events_key(instance, "")
    return sorted(
        (text(key) or "")[len(prefix) :] for key in conn.scan_iter(match=prefix + "*", count=SCAN_COUNT)
    )


def read_logs(conn: Any, instance: str, tickets: Sequence[str]) -> list[list[bytes]]:
    """The stored rows of each ticket's log, in the order of `tickets`, in one round trip."""
    pipe = conn.pipeline(transaction=False)
    for ticket in tickets:
        pipe.lrange(events_key(instance, ticket), 0, -1)
    return pipe.execute()


def load_events(
    conn: Any, instance: str, tickets: Sequence[str]
) -> Iterator[tuple[str, list[TicketEvent] | ValueError]]:
    """Each ticket's events (not deduplicated: evaluation does that), or the ValueError that a row
    which cannot be decoded raised (named by the ticket, so one bad log does not stop a replay)."""
    for ticket, rows in zip(tickets, read_logs(conn, instance, tickets), strict=True):
        try:
            yield ticket, decode_events(ticket, rows)
        except (ValueError, KeyError, IndexError, TypeError, OverflowError) as exc:
            yield ticket, ValueError(f"event log of ticket {ticket!r}: {exc.__class__.__name__}: {exc}")
