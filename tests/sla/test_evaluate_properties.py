"""Properties of evaluate over random ticket histories on a real Berlin business calendar."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sla.calendar import BusinessCalendar
from sla.evaluate import Evaluation, evaluate
from sla.events import EventKind, Role, TicketEvent
from sla.metrics import MetricStatus, cycle_id
from sla.policy import load_policies

CALENDARS = {
    "berlin": BusinessCalendar.from_config(
        {"timezone": "Europe/Berlin", "hours": {"mon-fri": ["09:00-17:00"]}, "holidays": {"country": "DE"}},
        name="berlin",
    ),
}
TARGETS = {"urgent": "1h", "high": "4h", "normal": "8h"}
POLICIES = load_policies(
    [
        {
            "id": "p",
            "metrics": {
                m: {"calendar": "berlin", "targets": TARGETS}
                for m in ("first_response", "next_reply", "resolution")
            },
            "escalations": [
                {
                    "name": "w",
                    "metric": "resolution",
                    "at": "50%",
                    "actions": [{"tag": "warn"}, {"comment": "{remaining}"}],
                },
                {"name": "soon", "metric": "first_response", "before": "30m", "actions": [{"tag": "soon"}]},
                {
                    "name": "b",
                    "metric": "next_reply",
                    "at": "breach",
                    "actions": [{"tag": "late"}, {"comment": "x"}],
                },
                {"name": "a", "metric": "resolution", "after": "2h", "actions": [{"priority": "urgent"}]},
            ],
        }
    ],
    CALENDARS,
)
BASE = datetime(2026, 12, 18, 8, 0, tzinfo=UTC)  # a Friday before Christmas: weekends and holidays
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

minutes = st.integers(min_value=0, max_value=60 * 24 * 14)
comment = st.tuples(
    st.just("commented"),
    minutes,
    st.sampled_from(["agent", "requester", "connector", "other"]),
    st.booleans(),
)
status = st.tuples(
    st.just("changed"),
    minutes,
    st.just("agent"),
    st.fixed_dictionaries({"status": st.sampled_from(["open", "pending", "on_hold", "solved", "closed"])}),
)
priority = st.tuples(
    st.just("changed"),
    minutes,
    st.sampled_from(["agent", "connector"]),  # the connector's own changes are ignored by the SLA
    st.fixed_dictionaries({"priority": st.sampled_from(["urgent", "high", "normal", "low"])}),
)
deleted = st.tuples(st.just("deleted"), minutes, st.just("other"), st.just(None))


@st.composite
def histories(draw: Any) -> list[TicketEvent]:
    ops = draw(st.lists(st.one_of(comment, comment, status, priority), max_size=20))
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        ops.append(draw(deleted))
    created = draw(st.booleans())
    # Without a creation event, the events may report when the ticket was created (first seen late).
    reported = None if created else draw(st.none() | st.integers(min_value=0, max_value=60 * 24 * 3))
    stated = {} if reported is None else {"created_at": (BASE - timedelta(minutes=reported)).isoformat()}
    events = []
    if created:
        start = draw(st.integers(min_value=0, max_value=60 * 24 * 3))
        fields = {"status": "new", "priority": draw(st.sampled_from(["urgent", "high", "normal"]))}
        events.append(TicketEvent("c", "T", "created", BASE + timedelta(minutes=start), "requester", fields))
    for i, (kind, minute, actor, extra) in enumerate(ops):
        when = BASE + timedelta(minutes=minute)
        if kind == "commented":
            events.append(TicketEvent(f"e{i}", "T", kind, when, actor, stated, public=extra))
        else:
            events.append(TicketEvent(f"e{i}", "T", kind, when, actor, {**(extra or {}), **stated}))
    return events


def _run(events: list[TicketEvent], now: datetime) -> Evaluation:
    return evaluate(POLICIES, CALENDARS, events, now)


@SETTINGS
@given(histories(), st.integers(min_value=0, max_value=60 * 24 * 16), st.randoms(use_true_random=False))
def test_result_depends_only_on_the_set_of_events(
    events: list[TicketEvent], minute: int, rnd: random.Random
) -> None:
    now = BASE + timedelta(minutes=minute)
    expected = _run(events, now)
    shuffled = events + rnd.sample(events, k=len(events) // 2)
    rnd.shuffle(shuffled)
    assert _run(shuffled, now) == expected
    assert _run(iter(shuffled), now) == expected  # any iterable
    assert _run(events, now).to_dict() == expected.to_dict()


def _signature(ev: Evaluation) -> Any:
    clocks = [c for m in ev.metrics.values() for c in (*m.past_cycles, m)]
    return ev.desired, [(c.key, c.status, tuple(lv.reached for lv in c.escalations)) for c in clocks]


@SETTINGS
@given(histories(), st.integers(min_value=0, max_value=60 * 24 * 16))
def test_nothing_changes_before_next_check_and_something_changes_at_it(
    events: list[TicketEvent], minute: int
) -> None:
    now = BASE + timedelta(minutes=minute)
    seen = [e for e in events if e.at <= now]  # no new events in between: only the timer
    ev = _run(seen, now)
    if ev.next_check is None:
        assert _signature(_run(seen, now + timedelta(days=60))) == _signature(ev)
        return
    assert ev.next_check > now
    just_before = max(now, ev.next_check - timedelta(seconds=1))
    assert _signature(_run(seen, just_before)) == _signature(ev)
    assert _signature(_run(seen, ev.next_check)) != _signature(ev)


@SETTINGS
@given(histories(), st.integers(min_value=0, max_value=60 * 24 * 16))
def test_clock_invariants(events: list[TicketEvent], minute: int) -> None:
    now = BASE + timedelta(minutes=minute)
    ev = _run(events, now)
    for m in ev.metrics.values():
        for c in (*m.past_cycles, m):
            assert c.target is not None and c.remaining is not None
            assert c.remaining == max(c.target - c.elapsed, timedelta(0))
            assert c.elapsed >= timedelta(0)
            end = c.stopped_at or now
            assert c.elapsed <= CALENDARS["berlin"].between(c.started_at, end)
            if c.status is MetricStatus.BREACHED:
                assert c.breached_at is not None and c.breached_at <= end
            if c.status is MetricStatus.RUNNING:
                assert c.deadline is not None and c.deadline > now and c.stopped_at is None
                assert CALENDARS["berlin"].between(now, c.deadline) == c.remaining
            if c.status in (MetricStatus.MET, MetricStatus.CANCELLED):
                assert c.stopped_at is not None and c.breached_at is None
    if ev.desired.due is not None:
        assert ev.policy_id is not None
    assert not (ev.desired.tags_present & ev.desired.tags_absent)
    # Each next-reply cycle is keyed by a distinct event that happened at (or, clock skew, before) its start.
    if "next_reply" in ev.metrics:
        cycles = [*ev.metrics["next_reply"].past_cycles, ev.metrics["next_reply"]]
        assert [c.cycle for c in cycles] == list(range(1, len(cycles) + 1))
        assert len({c.key for c in cycles}) == len(cycles)
        openers = {cycle_id(e.event_id): e.at for e in events}
        if events:  # a ticket first seen late: its first cycles follow a per-ticket anchor
            openers[cycle_id("T:first-seen")] = min(e.at for e in events)
        assert all(c.cycle_id in openers and openers[c.cycle_id] <= c.started_at for c in cycles)


@SETTINGS
@given(
    histories(),
    st.lists(st.integers(min_value=0, max_value=60 * 24 * 14), max_size=4),
    st.integers(min_value=0, max_value=60 * 24 * 16),
)
def test_the_connectors_own_priority_changes_change_nothing(
    events: list[TicketEvent], raises: list[int], minute: int
) -> None:
    # People never choose "urgent" here, so every urgent comes from the connector (as a level's action).
    people = [
        replace(e, fields={**e.fields, "priority": "high"}) if e.fields.get("priority") == "urgent" else e
        for e in events
        if e.actor is not Role.CONNECTOR or "priority" not in e.fields
    ]
    created = next((e.at for e in people if e.kind is EventKind.CREATED), None)
    assume(created is not None)
    ours = [
        TicketEvent(
            f"s{i}",
            "T",
            "changed",
            max(created, BASE + timedelta(minutes=m)),
            "connector",
            {"priority": "urgent"},
        )
        for i, m in enumerate(raises)
    ]
    now = BASE + timedelta(minutes=minute)
    assert _run(people + ours, now) == _run(people, now)



soon = st.integers(min_value=0, max_value=60 * 24 * 4)  # dense: replies interleave, cycles stay short
speakers = st.sampled_from(["agent", "requester"])
conversation = st.tuples(st.just("commented"), soon, speakers, st.booleans())
solve_or_reopen = st.fixed_dictionaries({"status": st.sampled_from(["open", "solved"])})
status_change = st.tuples(st.just("changed"), soon, st.just("agent"), solve_or_reopen)


@st.composite
def conversations(draw: Any) -> list[TicketEvent]:
    """A created ticket with a first reply, then mostly public replies: many next-reply cycles."""
    fields = {"status": "new", "priority": draw(st.sampled_from(["urgent", "high", "normal"]))}
    first_reply = BASE + timedelta(minutes=draw(st.integers(0, 600)))
    events = [
        TicketEvent("c", "T", "created", BASE, "requester", fields),
        TicketEvent("a", "T", "commented", first_reply, "agent", public=True),
    ]
    op = st.one_of(conversation, conversation, conversation, status_change)
    ops = draw(st.lists(op, min_size=2, max_size=16))
    for i, (kind, minute, actor, extra) in enumerate(ops):
        when = BASE + timedelta(minutes=minute)
        if kind == "commented":
            events.append(TicketEvent(f"e{i}", "T", kind, when, actor, public=extra or actor == "requester"))
        else:
            events.append(TicketEvent(f"e{i}", "T", kind, when, actor, extra))
    return events


@SETTINGS
@given(conversations(), st.lists(soon, min_size=1, max_size=3), st.integers(60 * 24, 60 * 24 * 6))
def test_late_requester_comments_never_re_key_existing_cycles(
    events: list[TicketEvent], late: list[int], minute: int
) -> None:
    # Requester comments delivered late, at any time (inside an open cycle, before it, while solved):
    # every cycle keeps its key, so no comment or action of one is wanted again under a new key.
    now = BASE + timedelta(minutes=minute)
    extra = [
        TicketEvent(f"x{i}", "T", "commented", BASE + timedelta(minutes=m), "requester", public=True)
        for i, m in enumerate(late)
    ]
    before, after = _run(events, now), _run(events + extra, now)
    if "next_reply" not in before.metrics:
        return  # no cycle opened before `now` (rare here)
    old, new = before.metrics["next_reply"], after.metrics["next_reply"]
    assert {c.key for c in (*old.past_cycles, old)} <= {c.key for c in (*new.past_cycles, new)}
    if old.stopped_at is None:
        assert (new.key, new.stopped_at) == (old.key, None)
    replies = [k for k in before.desired.comments if k.startswith("p/next_reply#")]
    assert all(k in after.desired.comments for k in replies)
