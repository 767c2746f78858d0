from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import redis
from hypothesis import given
from hypothesis import strategies as st

from connector import store
from sla.events import EventKind, Role, TicketEvent

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def test_events_round_trip_compactly() -> None:
    event = TicketEvent(
        "e-1",
        "T-1",
        EventKind.CREATED,
        T0.astimezone(timezone(timedelta(hours=2))),
        actor=Role.REQUESTER,
        fields={"status": "new", "tags": {"b", "a"}, "priority": "high"},
    )
    encoded = store.encode_event(event)
    assert encoded == '["e-1","n",1795770000,"r",{"status":"new","tags":["a","b"],"priority":"high"}]'
    assert store.decode_event("T-1", encoded) == event


def test_comment_events_keep_their_public_flag() -> None:
    event = TicketEvent("c-1", "T-1", EventKind.COMMENTED, T0, actor=Role.AGENT, public=False)
    assert store.decode_event("T-1", store.encode_event(event)) == event


@given(
    micros=st.integers(min_value=0, max_value=10**17),
    kind=st.sampled_from(list(EventKind)),
    actor=st.sampled_from(list(Role)),
    event_id=st.text(min_size=1, max_size=30),
)
def test_instants_survive_encoding_to_the_microsecond(
    micros: int, kind: EventKind, actor: Role, event_id: str
) -> None:
    at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
    public = True if kind is EventKind.COMMENTED else None
    event = TicketEvent(event_id, "T", kind, at, actor=actor, public=public)
    back = store.decode_event("T", store.encode_event(event))
    assert back == event and back.at == at


def test_record_dedupes_by_id_and_orders_by_time(redis_conn: redis.Redis) -> None:
    later = TicketEvent("u-1", "T-1", EventKind.CHANGED, T0 + timedelta(minutes=5), fields={"status": "open"})
    first = TicketEvent("n-1", "T-1", EventKind.CREATED, T0, fields={"status": "new"})
    same_instant = TicketEvent("a-0", "T-1", EventKind.CHANGED, T0, fields={"priority": "high"})
    rows = [store.encode_event(e) for e in (later, first, later, same_instant)]
    redis_conn.rpush(store.events_key("acme", "T-1"), *rows)
    redis_conn.hset(store.ticket_key("acme", "T-1"), mapping={"due": "x", "dry:due": "y", "#attempts": "2"})
    record = store.load_record(redis_conn, "acme", "T-1")
    assert record is not None
    assert [e.event_id for e in record.events] == ["n-1", "a-0", "u-1"]  # creation first at a tie
    assert record.stored_rows == 4
    assert record.ledger == {"due": "x"} and record.dry_ledger == {"due": "y"}
    assert record.attempts == 2 and not record.gone
    assert store.load_record(redis_conn, "acme", "T-2") is None


def test_finished_tickets() -> None:
    created = TicketEvent("n", "T", EventKind.CREATED, T0, fields={"status": "new"})
    solved = TicketEvent("s", "T", EventKind.CHANGED, T0 + timedelta(1), fields={"status": "solved"})
    reopened = TicketEvent("o", "T", EventKind.CHANGED, T0 + timedelta(2), fields={"status": "open"})
    deleted = TicketEvent("d", "T", EventKind.DELETED, T0 + timedelta(3))
    assert not store.is_finished([created])
    assert store.is_finished([created, solved])
    assert not store.is_finished([created, solved, reopened])
    assert store.is_finished([created, deleted])


def test_timer_members_refuse_a_newline_in_the_instance() -> None:
    assert store.split_timer_member(store.timer_member("acme", "T:1\n2")) == ("acme", "T:1\n2")
    try:
        store.timer_member("a\nb", "T")
    except ValueError as exc:
        assert "'a\\nb'" in str(exc)
    else:
        raise AssertionError("expected ValueError")


def test_rows_sharing_an_event_id_resolve_the_same_whatever_their_order() -> None:
    # A Zendesk trigger repeats the latest comment in a later update with another time and actor:
    # the stored log must keep the evaluation's choice (sla.timeline.dedupe), not the first row.
    at = T0 + timedelta(minutes=30)
    reply = TicketEvent("c-1001", "77", EventKind.COMMENTED, at, actor=Role.AGENT, public=True)
    echo = TicketEvent("c-1001", "77", EventKind.COMMENTED, T0 + timedelta(hours=2, minutes=30), public=True)
    opened = TicketEvent("n-77", "77", EventKind.CREATED, T0, actor=Role.REQUESTER)
    rows = [store.encode_event(e) for e in (opened, reply, echo)]
    first = store.decode_record("zd", "77", rows, {})
    second = store.decode_record("zd", "77", [rows[0], rows[2], rows[1]], {})
    assert first.events == second.events == [opened, reply]
    assert first.stored_rows == 3


def test_a_restore_undoes_the_deletion_for_the_store() -> None:
    t0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

    def event(event_id: str, kind: EventKind, hours: int, **fields: object) -> TicketEvent:
        return TicketEvent(event_id, "T-1", kind, t0 + timedelta(hours=hours), Role.AGENT, fields)

    created = event("c", EventKind.CREATED, 0, status="open")
    deleted, restored = event("d", EventKind.DELETED, 1), event("r", EventKind.RESTORED, 2)
    assert store.is_deleted([created, deleted]) and store.last_status([created, deleted]) == "closed"
    # Delivered in any order, a restore after the deletion means the ticket exists, as it was.
    for log in ([created, deleted, restored], [restored, created, deleted]):
        assert not store.is_deleted(log) and store.last_status(log) == "open" and not store.is_finished(log)
    again = event("d2", EventKind.DELETED, 3)
    assert store.is_deleted([created, deleted, restored, again])
    assert store.decode_event("T-1", store.encode_event(restored)) == restored


def test_an_event_with_a_lone_surrogate_is_stored_escaped(redis_conn: redis.Redis) -> None:
    # The receiver accepts half an emoji (json reads it); the stored row must still be UTF-8.
    event = TicketEvent("e1", "T-1", EventKind.CHANGED, datetime(2026, 11, 27, tzinfo=UTC), Role.OTHER,
                        {"tags": frozenset({"vip\ud83d"})})
    redis_conn.rpush(store.events_key("acme", "T-1"), store.encode_event(event))
    (row,) = redis_conn.lrange(store.events_key("acme", "T-1"), 0, -1)
    assert store.decode_event("T-1", row) == event
