"""The due date written to a ticket is a function of its set of events, not of their arrival order
(issue 9, item 5).

Before: when no clock counted (solved, or paused) the evaluation wanted no due date and the field was
left as the last look had written it, so a ticket solved before all its events arrived showed the
resolution deadline (in order), nothing (reversed) or the first-response deadline (another order).
Now, when no clock counts, the due date is the deadline the clocks that counted last were heading
for when they stopped (the deadline the ticket showed then); a ticket none of whose clocks ever
counted shows the earliest deadline its clocks would have had from their start.

Berlin wall-clock times (CET, UTC+1); Mon-Fri 09:00-17:00; 2026-11-23 is a Monday.
"""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sla.calendar import BusinessCalendar
from sla.effects import missing_effects
from sla.evaluate import evaluate
from sla.events import TicketEvent
from sla.policy import PolicySet, load_policies

BERLIN = ZoneInfo("Europe/Berlin")
CALENDARS = {
    "berlin": BusinessCalendar.from_config(
        {"timezone": "Europe/Berlin", "hours": {"mon-fri": ["09:00-17:00"]}, "holidays": {"country": "DE"}},
        name="berlin",
    ),
}
POLICIES = load_policies(
    [
        {
            "id": "standard",
            "metrics": {
                "first_response": {"calendar": "berlin", "targets": {"high": "4h", "normal": "8h"}},
                "next_reply": {"calendar": "berlin", "targets": {"high": "2h", "normal": "4h"}},
                "resolution": {"calendar": "berlin", "targets": {"high": "16h", "normal": "24h"}},
            },
        }
    ],
    CALENDARS,
)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN)


def written_due(
    arrivals: list[TicketEvent], nows: list[datetime], policies: PolicySet = POLICIES
) -> datetime | None:
    """What the connector leaves in the due date field: one look after each arrival, writing what its
    ledger lacks (sla.effects.missing_effects)."""
    ledger: dict[str, str] = {}
    for i, now in enumerate(nows):
        for effect in missing_effects(evaluate(policies, CALENDARS, arrivals[: i + 1], now).desired, ledger):
            ledger[effect.key] = effect.ledger_value
    return None if "due" not in ledger else datetime.fromisoformat(ledger["due"])


CREATED = TicketEvent("c", "T-1", "created", at("2026-11-23 10:00"), "requester", {"priority": "high"})
REPLY = TicketEvent("r", "T-1", "commented", at("2026-11-23 13:45"), "agent", public=True)
SOLVED = TicketEvent("s", "T-1", "changed", at("2026-11-24 10:00"), "agent", {"status": "solved"})
RESOLUTION_DUE = at("2026-11-25 10:00")  # 16h from Mon 10:00


@pytest.mark.parametrize("order", list(itertools.permutations([CREATED, REPLY, SOLVED])))
def test_a_ticket_solved_before_its_events_arrived_shows_the_same_due_date_in_any_order(
    order: tuple[TicketEvent, ...],
) -> None:
    # Delivered after the solve (an outage): before, in order gave Wed 10:00, reversed nothing, and
    # created-solved-reply the first response's Mon 14:00.
    assert written_due(list(order), [at("2026-11-24 12:00")] * 3) == RESOLUTION_DUE
    assert written_due(
        list(order), [at("2026-11-24 12:00"), at("2026-11-25 09:00"), at("2026-12-01 09:00")]
    ) == (RESOLUTION_DUE)


def test_solved_shows_the_deadline_the_counting_clocks_were_heading_for() -> None:
    ev = evaluate(POLICIES, CALENDARS, [CREATED, REPLY, SOLVED], at("2026-11-24 12:00"))
    res = ev.metrics["resolution"]
    assert (res.deadline, ev.desired.due, ev.next_check) == (None, RESOLUTION_DUE, None)


def test_solve_and_reply_at_once_shows_the_earliest_of_the_clocks_that_stopped_last() -> None:
    # The first response (due Mon 14:00) and the resolution (Wed 10:00) both stop at Mon 11:00.
    reply = TicketEvent("r", "T-1", "commented", at("2026-11-23 11:00"), "agent", public=True)
    solved = TicketEvent("s", "T-1", "changed", at("2026-11-23 11:00"), "agent", {"status": "solved"})
    ev = evaluate(POLICIES, CALENDARS, [CREATED, reply, solved], at("2026-11-24 12:00"))
    assert ev.desired.due == at("2026-11-23 14:00")


def test_a_paused_ticket_shows_the_deadline_it_had_when_the_pause_began() -> None:
    # Resolution 16h: 5h counted by Mon 15:00, then pending; Wed 10:00 is what it showed then.
    pending = TicketEvent("p", "T-1", "changed", at("2026-11-23 15:00"), "agent", {"status": "pending"})
    ev = evaluate(POLICIES, CALENDARS, [CREATED, REPLY, pending], at("2026-11-26 12:00"))
    assert (ev.metrics["resolution"].deadline, ev.desired.due) == (None, RESOLUTION_DUE)
    # Reopened Thu 26 09:00: the clock counts again and the due date moves by the pause (3 days).
    reopened = TicketEvent("o", "T-1", "changed", at("2026-11-26 09:00"), "agent", {"status": "open"})
    ev = evaluate(POLICIES, CALENDARS, [CREATED, REPLY, pending, reopened], at("2026-11-26 12:00"))
    assert ev.desired.due == at("2026-11-27 12:00")  # 11h left: Thu 8h, Fri 3h


def test_a_ticket_whose_clocks_never_counted_shows_their_deadline_from_the_start() -> None:
    # Created already solved: no clock ever ran; the earliest deadline from creation is shown.
    done = TicketEvent(
        "c", "T-1", "created", at("2026-11-23 10:00"), "agent", {"priority": "high", "status": "solved"}
    )
    ev = evaluate(POLICIES, CALENDARS, [done], at("2026-11-24 12:00"))
    assert ev.desired.due == at("2026-11-23 14:00")


# --- property: any arrival order, any looks, the same written due date ----------------------------

BASE = datetime(2026, 12, 14, 8, 0, tzinfo=UTC)  # Monday 09:00 Berlin; Christmas holidays ahead
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
minutes = st.integers(min_value=0, max_value=60 * 24 * 10)


@st.composite
def histories(draw: Any) -> list[TicketEvent]:
    """A ticket with targets for every priority it takes, no tags and no deletion (see the docs: a ticket
    no policy tracks any more leaves its due date alone)."""
    events: list[TicketEvent] = []
    stated: dict[str, Any] = {}
    if draw(st.booleans()):
        fields = {"status": draw(st.sampled_from(["new", "open", "solved"])), "priority": "high"}
        events.append(
            TicketEvent(
                "c", "T", "created", BASE + timedelta(minutes=draw(st.integers(0, 600))), "requester", fields
            )
        )
    else:  # first seen late, with a priority (no priority: nothing is tracked); may state the creation
        if draw(st.booleans()):
            stated = {"created_at": (BASE - timedelta(minutes=draw(st.integers(0, 60 * 24 * 3)))).isoformat()}
        when = BASE + timedelta(minutes=draw(minutes))
        events.append(TicketEvent("p", "T", "changed", when, "agent", {"priority": "normal", **stated}))
    for i in range(draw(st.integers(1, 10))):
        when = BASE + timedelta(minutes=draw(minutes))
        kind = draw(st.sampled_from(["comment", "comment", "status", "priority"]))
        if kind == "comment":
            actor = draw(st.sampled_from(["agent", "requester", "other"]))
            events.append(
                TicketEvent(f"e{i}", "T", "commented", when, actor, stated, public=draw(st.booleans()))
            )
        elif kind == "status":
            status = draw(st.sampled_from(["open", "pending", "on_hold", "solved", "closed"]))
            events.append(TicketEvent(f"e{i}", "T", "changed", when, "agent", {"status": status, **stated}))
        else:
            prio = draw(st.sampled_from(["high", "normal"]))
            events.append(TicketEvent(f"e{i}", "T", "changed", when, "agent", {"priority": prio, **stated}))
    return events


@SETTINGS
@given(histories(), st.randoms(use_true_random=False), st.integers(0, 60 * 24 * 5))
def test_the_written_due_date_is_a_function_of_the_set_of_events(
    events: list[TicketEvent], rnd: random.Random, late: int
) -> None:
    # Every event has happened; they arrive in any order, each followed by a look, at times that only
    # move forward (all after the last event).
    last = max(e.at for e in events)
    final_now = last + timedelta(minutes=late)
    expected = evaluate(POLICIES, CALENDARS, events, final_now).desired.due
    assert expected is not None  # every clock of these tickets is tracked
    arrivals = rnd.sample(events, k=len(events))
    nows = sorted(last + timedelta(minutes=rnd.randint(0, late)) for _ in arrivals)
    nows[-1] = final_now
    assert written_due(arrivals, nows) == expected
