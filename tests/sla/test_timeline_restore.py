"""Deleted and restored tickets: a restore undoes the deletion, and the time in between counts.

Times are Berlin wall-clock times on the Mon-Fri 09-17 calendar; 2026-11-23 is a Monday.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from sla.calendar import BusinessCalendar
from sla.evaluate import Evaluation, evaluate
from sla.events import EventKind, TicketEvent
from sla.metrics import MetricStatus
from sla.policy import load_policies
from sla.timeline import build_timeline, final_deletion

BERLIN = ZoneInfo("Europe/Berlin")
CALENDARS = {
    "berlin": BusinessCalendar.from_config(
        {"timezone": "Europe/Berlin", "hours": {"mon-fri": ["09:00-17:00"]}}, name="berlin"
    )
}
POLICIES = load_policies(
    [
        {
            "id": "standard",
            "metrics": {
                "first_response": {"calendar": "berlin", "targets": {"normal": "4h"}},
                "resolution": {"calendar": "berlin", "targets": {"normal": "40h"}},
            },
            "escalations": [
                {"name": "late", "metric": "first_response", "at": "breach", "actions": [{"tag": "late"}]}
            ],
        }
    ],
    CALENDARS,
)
H = timedelta(hours=1)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN)


def event(event_id: str, kind: str, when: str, actor: str = "other", **kw: Any) -> TicketEvent:
    return TicketEvent(event_id, "T-1", EventKind(kind), at(when), actor, **kw)


CREATED = event(
    "c", "created", "2026-11-23 10:00", "requester", fields={"status": "new", "priority": "normal"}
)
DELETED = event("d", "deleted", "2026-11-23 11:00")
RESTORED = event("r", "restored", "2026-11-23 15:00")


def run(events: list[TicketEvent], now: str) -> Evaluation:
    return evaluate(POLICIES, CALENDARS, events, at(now))


def test_a_restored_ticket_counts_the_deleted_time_like_any_other() -> None:
    ev = run([CREATED, DELETED, RESTORED], "2026-11-23 16:00")
    assert (ev.policy_id, ev.policy_version) == ("standard", 1)
    res, fr = ev.metrics["resolution"], ev.metrics["first_response"]
    assert (res.status, res.elapsed, res.paused) == (MetricStatus.RUNNING, 6 * H, ())
    assert res.deadline == at("2026-11-30 10:00")  # 40h from Mon 10:00, as if never deleted
    # The first response was due during the deletion: breached at its deadline, and its tag is wanted.
    assert (fr.status, fr.breached_at) == (MetricStatus.BREACHED, at("2026-11-23 14:00"))
    assert ev.desired.tags_present == {"late"}
    assert ev.next_check == at("2026-11-30 10:00")
    assert ev.to_dict() == run([CREATED], "2026-11-23 16:00").to_dict()


def test_a_deletion_that_was_not_restored_still_cancels_every_clock() -> None:
    ev = run([CREATED, DELETED], "2026-11-23 16:00")
    assert (ev.policy_id, ev.desired.tags_present, ev.next_check) == (None, frozenset(), None)
    assert {m.status for m in ev.metrics.values()} == {MetricStatus.CANCELLED}
    assert ev.metrics["resolution"].stopped_at == at("2026-11-23 11:00")


def test_before_the_restore_happened_the_ticket_is_deleted() -> None:
    # A replay at an instant between the deletion and the restore sees only the deletion.
    assert run([CREATED, DELETED, RESTORED], "2026-11-23 14:59").policy_id is None
    assert run([CREATED, DELETED, RESTORED], "2026-11-23 15:00").policy_id == "standard"


def test_a_deletion_after_a_restore_is_final_again() -> None:
    reply = event("a", "commented", "2026-11-23 15:30", "agent", public=True)
    again = event("d2", "deleted", "2026-11-24 10:00")
    late = event("a2", "commented", "2026-11-24 11:00", "agent", public=True)  # after the final deletion
    tl = build_timeline([CREATED, DELETED, RESTORED, reply, again, late], at("2026-11-25 10:00"))
    assert tl is not None
    assert tl.deleted_at == at("2026-11-24 10:00")
    assert [e.event_id for e in tl.events] == ["c", "d", "r", "a", "d2"]
    ev = run([CREATED, DELETED, RESTORED, reply, again, late], "2026-11-25 10:00")
    assert ev.policy_id is None
    fr = ev.metrics["first_response"]  # answered between the restore and the second deletion
    assert (fr.stopped_at, fr.breached_at, fr.status) == (
        at("2026-11-23 15:30"),
        None,
        MetricStatus.CANCELLED,
    )


def test_events_timed_inside_the_deleted_period_count_once_it_is_restored() -> None:
    reply = event("a", "commented", "2026-11-23 12:00", "agent", public=True)
    restored = run([CREATED, DELETED, reply, RESTORED], "2026-11-23 16:00").metrics["first_response"]
    assert (restored.status, restored.stopped_at) == (MetricStatus.MET, at("2026-11-23 12:00"))
    # Without the restore they fall after the deletion and are ignored.
    gone = run([CREATED, DELETED, reply], "2026-11-23 16:00").metrics["first_response"]
    assert gone.stopped_at == at("2026-11-23 11:00")


def test_a_restore_at_the_deletions_instant_comes_after_it_whatever_the_ids() -> None:
    for d_id, r_id in (("a", "b"), ("b", "a")):
        d = event(d_id, "deleted", "2026-11-23 11:00")
        r = event(r_id, "restored", "2026-11-23 11:00")
        assert r.sort_key > d.sort_key
        tl = build_timeline([CREATED, r, d], at("2026-11-23 12:00"))
        assert tl is not None and tl.deleted_at is None


def test_a_restore_without_a_deletion_changes_nothing() -> None:
    assert (
        run([CREATED, RESTORED], "2026-11-23 16:00").to_dict() == run([CREATED], "2026-11-23 16:00").to_dict()
    )


def test_order_and_duplicates_of_deliveries_do_not_matter() -> None:
    reply = event("a", "commented", "2026-11-23 12:00", "agent", public=True)
    events = [CREATED, DELETED, reply, RESTORED]
    expected = run(events, "2026-11-24 10:00").to_dict()
    for order in itertools.permutations(events):
        assert run([*order, *order[:2]], "2026-11-24 10:00").to_dict() == expected


def test_final_deletion_for_the_connectors_store() -> None:
    assert final_deletion([CREATED]) is None
    assert final_deletion([RESTORED, CREATED, DELETED]) is None
    assert final_deletion([DELETED, CREATED]) == DELETED
    again = event("d2", "deleted", "2026-11-24 10:00")
    assert final_deletion([again, RESTORED, DELETED, CREATED]) == again
    # Two deletions without a restore between them: the first ends the ticket.
    twice = event("d0", "deleted", "2026-11-23 12:00")
    assert final_deletion([twice, DELETED, CREATED]) == DELETED


def test_restored_round_trips_through_its_dict_form() -> None:
    assert TicketEvent.from_dict(RESTORED.to_dict()) == RESTORED
    assert RESTORED.to_dict()["kind"] == "restored"


# ---------------------------------------------------------------- property: a restore undoes the deletion

_MINUTES = st.integers(min_value=1, max_value=5 * 24 * 60)


@st.composite
def histories(draw: Any) -> tuple[list[TicketEvent], list[TicketEvent]]:
    """(the ticket's ordinary events, deletions and restores at random instants)."""
    start = at("2026-11-23 10:00")
    ordinary = [CREATED]
    for i in range(draw(st.integers(0, 6))):
        when = start + timedelta(minutes=draw(_MINUTES))
        choice = draw(st.sampled_from(["reply", "requester", "pending", "open", "solved"]))
        if choice in ("reply", "requester"):
            actor = "agent" if choice == "reply" else "requester"
            ordinary.append(TicketEvent(f"o{i}", "T-1", EventKind.COMMENTED, when, actor, public=True))
        else:
            ordinary.append(TicketEvent(f"o{i}", "T-1", EventKind.CHANGED, when, fields={"status": choice}))
    toggles = []
    for i in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from([EventKind.DELETED, EventKind.RESTORED]))
        toggles.append(TicketEvent(f"t{i}", "T-1", kind, start + timedelta(minutes=draw(_MINUTES))))
    return ordinary, toggles


@settings(max_examples=150, deadline=None)
@given(histories(), st.randoms(use_true_random=False))
def test_a_history_whose_last_word_is_a_restore_is_evaluated_as_if_never_deleted(
    history: tuple[list[TicketEvent], list[TicketEvent]], rnd: Any
) -> None:
    ordinary, toggles = history
    now = "2026-12-01 12:00"
    events = [*ordinary, *toggles]
    rnd.shuffle(events)
    result = run(events, now)
    last = max(toggles, key=lambda e: e.sort_key)
    if last.kind is EventKind.RESTORED:
        assert result.to_dict() == run(ordinary, now).to_dict()
    else:
        assert result.policy_id is None and result.desired.tags_present == frozenset()
        assert all(m.status is MetricStatus.CANCELLED for m in result.metrics.values())
