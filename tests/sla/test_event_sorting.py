"""sla.events.in_order and sort_by: the order of sort_key, with natural keys computed only for ties."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from sla.events import EventKind, TicketEvent, in_order, sort_by

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
KINDS = [EventKind.CREATED, EventKind.CHANGED, EventKind.COMMENTED, EventKind.DELETED, EventKind.RESTORED]


def event(event_id: str, second: int, kind: EventKind) -> TicketEvent:
    public = True if kind is EventKind.COMMENTED else None
    return TicketEvent(event_id, "T", kind, T0 + timedelta(seconds=second), public=public)


# Few instants and ids with numbers of several lengths (with leading zeros), so that ties are common.
ids = st.builds(
    lambda p, n, z: f"{p}{n:0{z}d}",
    st.sampled_from(["c", "e:", "jira:1:"]),
    st.integers(0, 120),
    st.integers(1, 4),
)
histories = st.dictionaries(ids, st.tuples(st.integers(0, 3), st.sampled_from(KINDS)), max_size=30)


@given(histories, st.randoms(use_true_random=False))
def test_in_order_is_the_sort_key_order(
    history: dict[str, tuple[int, EventKind]], rnd: random.Random
) -> None:
    events = [event(i, second, kind) for i, (second, kind) in history.items()]
    rnd.shuffle(events)
    assert in_order(events) == sorted(events, key=lambda e: e.sort_key)


@given(histories, st.randoms(use_true_random=False))
def test_sort_by_breaks_ties_of_its_key_in_natural_id_order(
    history: dict[str, tuple[int, EventKind]], rnd: random.Random
) -> None:
    events = [event(i, second, kind) for i, (second, kind) in history.items()]
    rnd.shuffle(events)
    by_kind = sort_by(events, lambda e: e.kind.value)
    assert by_kind == sorted(events, key=lambda e: (e.kind.value, e.sort_key[2]))


def test_numbers_in_ids_compare_as_numbers_at_one_instant() -> None:
    events = [event("comment:1000", 0, EventKind.COMMENTED), event("comment:999", 0, EventKind.COMMENTED)]
    assert [e.event_id for e in in_order(events)] == ["comment:999", "comment:1000"]
    assert [
        e.event_id for e in in_order([event("b", 0, EventKind.CHANGED), event("a", 1, EventKind.CREATED)])
    ] == [
        "b",
        "a",
    ]
    assert in_order([]) == []
