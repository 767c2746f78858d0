"""evaluate_timeline: evaluating a timeline built beforehand gives what evaluate gives; a replay's
evaluations (no effects, work shared between policy sets) measure the same clocks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sla.calendar import BusinessCalendar
from sla.evaluate import SharedWork, evaluate, evaluate_timeline
from sla.events import TicketEvent
from sla.policy import load_policies
from sla.timeline import Timeline, build_timeline

CALENDARS = {
    "berlin": BusinessCalendar.from_config(
        {"timezone": "Europe/Berlin", "hours": {"mon-fri": ["09:00-17:00"]}}, name="berlin"
    ),
    "late": BusinessCalendar.from_config(
        {"timezone": "America/New_York", "hours": {"mon-sat": ["08:00-20:00"]}}, name="late"
    ),
}
POLICIES = load_policies(
    [
        {
            "id": "p",
            "metrics": {
                m: {"calendar": "berlin", "targets": {"high": "4h", "normal": "8h"}}
                for m in ("first_response", "next_reply", "resolution")
            },
            "escalations": [
                {"name": "w", "metric": "resolution", "at": "50%", "actions": [{"tag": "warn"}]},
                {"name": "b", "metric": "next_reply", "at": "breach", "actions": [{"comment": "{ticket}"}]},
            ],
        }
    ],
    CALENDARS,
)
# A proposal: halved targets, other levels, resolution paused while pending, next reply on another calendar.
PROPOSED = load_policies(
    [
        {
            "id": "p",
            "metrics": {
                "first_response": {"calendar": "berlin", "targets": {"high": "2h", "normal": "4h"}},
                "next_reply": {"calendar": "late", "targets": {"high": "2h"}},
                "resolution": {"calendar": "berlin", "targets": {"high": "2h", "normal": "4h"}},
            },
            "pause_statuses": ["pending"],
            "escalations": [
                {"name": "w", "metric": "resolution", "at": "75%", "actions": [{"tag": "warn"}]},
                {"name": "late", "metric": "first_response", "after": "1h", "actions": [{"tag": "x"}]},
            ],
        }
    ],
    CALENDARS,
)
BASE = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # a Monday

step = st.tuples(
    st.integers(min_value=1, max_value=60 * 24 * 5),
    st.sampled_from(["agent", "requester"]),
    st.sampled_from([None, "pending", "open", "solved"]),
)


def ticket(steps: list[tuple[int, str, str | None]], deleted: bool) -> list[TicketEvent]:
    events = [TicketEvent("c", "T", "created", BASE, "requester", {"status": "new", "priority": "high"})]
    for i, (offset, actor, status) in enumerate(steps):
        at = BASE + timedelta(minutes=offset)
        if status is None:
            events.append(TicketEvent(f"e{i}", "T", "commented", at, actor, public=True))
        else:
            events.append(TicketEvent(f"e{i}", "T", "changed", at, actor, {"status": status}))
    if deleted:
        events.append(TicketEvent("d", "T", "deleted", BASE + timedelta(days=3), "other"))
    return events


def timeline_at(
    steps: list[tuple[int, str, str | None]], minute: int, deleted: bool
) -> tuple[list[TicketEvent], datetime, Timeline]:
    """The ticket's events, the instant `minute` minutes after BASE, and its timeline then."""
    events = ticket(steps, deleted)
    now = BASE + timedelta(minutes=minute)
    tl = build_timeline(events, now)
    assert tl is not None
    return events, now, tl


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, max_size=12), st.integers(min_value=0, max_value=60 * 24 * 7), st.booleans())
def test_evaluating_a_prebuilt_timeline_is_evaluating_the_events(
    steps: list[tuple[int, str, str | None]], minute: int, deleted: bool
) -> None:
    events, now, tl = timeline_at(steps, minute, deleted)
    keys = ["comment:p/next_reply#0123456789:b"]
    assert evaluate_timeline(POLICIES, CALENDARS, tl, now, applied_keys=keys) == evaluate(
        POLICIES, CALENDARS, events, now, applied_keys=keys
    )


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, max_size=12), st.integers(min_value=0, max_value=60 * 24 * 7), st.booleans())
def test_a_replay_measures_what_evaluate_measures_under_each_policy_set(
    steps: list[tuple[int, str, str | None]], minute: int, deleted: bool
) -> None:
    events, now, tl = timeline_at(steps, minute, deleted)
    shared = SharedWork(tl, now)
    for policies in (POLICIES, PROPOSED, POLICIES):  # the second and third reuse the first's walks
        full = evaluate(policies, CALENDARS, events, now)
        replayed = evaluate_timeline(policies, CALENDARS, tl, now, effects=False, shared=shared)
        assert (replayed.policy_id, replayed.policy_version) == (full.policy_id, full.policy_version)
        assert replayed.metrics == full.metrics
        assert replayed.next_check is None and not replayed.desired.comments


def test_shared_work_is_for_its_own_timeline_and_instant() -> None:
    events = ticket([(30, "agent", None)], deleted=False)
    now = BASE + timedelta(hours=2)
    tl = build_timeline(events, now)
    other = build_timeline(events, now)
    assert tl is not None and other is not None
    shared = SharedWork(tl, now)
    for args, kwargs in [
        ((other, now), {}),
        ((tl, now + timedelta(seconds=1)), {}),
        ((tl, now), {"applied_keys": ["comment:p/next_reply#0123456789:b"]}),
    ]:
        with pytest.raises(ValueError, match="shared"):
            evaluate_timeline(POLICIES, CALENDARS, *args, shared=shared, **kwargs)
