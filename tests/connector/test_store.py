from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from connector.state import store
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
    redis_conn.hset(store.ticket_key("acme", "T-1"), mapping={
        "due": "x", "dry:due": "y", "#failed_job": "look-acme-T-1-7", "#b:resolution": "1",
        "rej:priority": store.encode_rejection("vip", "no such priority", 5.0), "rej:tag:x": "not json"})
    record = store.load_record(redis_conn, "acme", "T-1")
    assert record is not None
    assert [e.event_id for e in record.events] == ["n-1", "a-0", "u-1"]  # creation first at a tie
    assert record.stored_rows == 4
    assert record.ledger == {"due": "x"} and record.dry_ledger == {"due": "y"}
    assert record.meta == {"failed_job": "look-acme-T-1-7", "b:resolution": "1"} and not record.gone
    assert record.rejected["priority"] == {"value": "vip", "reason": "no such priority", "at": 5.0}
    assert record.rejected["tag:x"]["value"] is None  # unreadable: refuses no value (tried again)
    # What the evaluation is told was applied: ledger, refusals and counted breaches (dry run: its own).
    assert record.applied_keys(dry_run=False) == {"due", "priority", "tag:x", "resolution"}
    assert record.applied_keys(dry_run=True) == {"due", "resolution"}
    redis_conn.hset(store.ticket_key("acme", "T-1"), "#gone", "deleted")
    assert store.load_record(redis_conn, "acme", "T-1").gone
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


def test_members_of_the_shared_sets_refuse_a_newline_in_the_instance() -> None:
    # `sla:want`, `sla:queued` and `sla:timers` hold "<instance>\n<ticket>".
    assert store.split_member(store.member("acme", "T:1\n2")) == ("acme", "T:1\n2")
    assert store.split_member(store.member("acme", "T:1\n2").encode()) == ("acme", "T:1\n2")
    with pytest.raises(ValueError, match=r"instance name 'a\\nb' must not contain a newline"):
        store.member("a\nb", "T")


def test_inbox_rows_keep_a_delivery_as_received() -> None:
    body = '{"a": "\u00e9t\u00e9", "b": [1, 2]}\n{"not": "the head"}'.encode()
    row = store.encode_inbox_row("e", body, delivery="d-1", received=1.5, headers={"x-id": "7"})
    decoded = store.decode_inbox_row(row)
    assert (decoded.kind, decoded.delivery, decoded.received, decoded.replay) == ("e", "d-1", 1.5, False)
    assert decoded.headers == {"x-id": "7"} and decoded.body == body and decoded.raw == row
    replay = store.decode_inbox_row(store.encode_inbox_row("e", body, delivery="d-1", replay=True))
    assert replay.replay and replay.received is None and replay.headers == {}
    # A row read back as text (surrogateescape) is the same row.
    assert store.decode_inbox_row(row.decode("utf-8", "surrogateescape")) == decoded


def test_an_events_row_carries_canonical_events() -> None:
    events = [TicketEvent("n-1", "T-1", EventKind.CREATED, T0, fields={"status": "new"}),
              TicketEvent("t-1", "T-1", EventKind.CHANGED, T0, fields={"tags": frozenset({"vip\ud83d"})})]
    row = store.decode_inbox_row(store.events_row(events))
    assert row.kind == "v" and row.delivery == ""
    assert row.raw.decode()  # UTF-8, even with half an emoji in a tag
    assert [store.decode_event("T-1", e) for e in json.loads(row.body)] == events


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


# ---------------------------------------------------------------- a whole log at once


def _log() -> list[TicketEvent]:
    return [
        TicketEvent("n-1", "T-1", EventKind.CREATED, T0, Role.REQUESTER, {"status": "new", "tags": {"vip"}}),
        TicketEvent("c-1", "T-1", EventKind.COMMENTED, T0 + timedelta(microseconds=7), Role.AGENT,
                    public=True),
        TicketEvent("u-1", "T-1", EventKind.CHANGED, T0 + timedelta(hours=1), fields={"status": "solved"}),
    ]


def test_a_log_decodes_at_once_as_row_by_row() -> None:
    rows = [store.encode_event(e) for e in _log()]
    assert store.decode_events("T-1", [r.encode() for r in rows]) == _log()
    assert store.decode_events("T-1", rows) == _log()  # str rows (a connection decoding responses)
    assert store.decode_events("T-1", []) == []


def test_a_row_orjson_refuses_is_decoded_as_json_decodes_it() -> None:
    # encode_event escapes a lone surrogate (\ud83d), which json reads and orjson refuses.
    odd = TicketEvent("e1", "T-1", EventKind.CHANGED, T0, Role.OTHER, {"tags": frozenset({"vip\ud83d"})})
    rows = [store.encode_event(e).encode() for e in [*_log(), odd]]
    assert store.decode_events("T-1", rows) == [*_log(), odd]


@pytest.mark.parametrize(
    "rows",
    [
        [b'["n-1","n",1795770000,"r",{}]', b"not json"],
        # Two rows that only together make one JSON list: taken apart, the first does not parse.
        [b'["n-1","n",1795770000', b'"r",{}]'],
        # One row holding two lists: the log has three events, not two.
        [b'["n-1","n",1795770000,"r",{}],["x","n",1,"r"]', b'["c","n",5,"r"]'],
        [b'["n-1","n",1795770000,"r",{}]', b'{"not": "a list"}'],
    ],
)
def test_a_log_with_a_row_that_is_not_an_event_fails_as_that_row_does(rows: list[bytes]) -> None:
    with pytest.raises((ValueError, KeyError, TypeError)) as caught:
        store.decode_events("T-1", rows)
    bad = next(r for r in rows if _fails(r))
    with pytest.raises(type(caught.value)):
        store.decode_event("T-1", bad)


def _fails(row: bytes) -> bool:
    try:
        store.decode_event("T-1", row)
    except (ValueError, KeyError, TypeError):
        return True
    return False
