"""Next-reply cycles are numbered 1, 2, ... among the cycles the result shows.

A cycle that stopped under a priority with no next-reply target is not tracked (it is not in the
result, see docs/sla-semantics.md, "Priorities"), so the cycles after it are numbered as if it were
not there: the current cycle is always `len(past_cycles) + 1`. The number is for display only; a
cycle's key is its `cycle_id`, which the numbering never touches (regression: cycles were numbered by
their position among all cycles, untracked ones included, and the API showed cycle 2 with no cycle 1).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sla.calendar import BusinessCalendar
from sla.evaluate import Evaluation, evaluate
from sla.events import TicketEvent
from sla.metrics import MetricState, MetricStatus, cycle_id
from sla.policy import PolicySet, load_policies

CALENDARS = {
    "always": BusinessCalendar.from_config({"timezone": "UTC", "hours": "24x7"}, "always"),
    "berlin": BusinessCalendar.from_config(
        {"timezone": "Europe/Berlin", "hours": {"mon-fri": ["09:00-17:00"]}, "holidays": {"country": "DE"}},
        name="berlin",
    ),
}


def _policies(calendar: str, targets: dict[str, str]) -> PolicySet:
    metrics = ("first_response", "next_reply", "resolution")
    return load_policies(
        [
            {
                "id": "p",
                "metrics": {m: {"calendar": calendar, "targets": targets} for m in metrics},
                "escalations": [
                    {"name": "late", "metric": "next_reply", "at": "breach", "actions": [{"comment": "x"}]}
                ],
            }
        ],
        CALENDARS,
    )


POLICIES = _policies("always", {"high": "2h"})  # "low" has no target: cycles stopped under it are untracked
T = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def ev(event_id: str, minutes: int, actor: str = "", **fields: str) -> TicketEvent:
    when = T + timedelta(minutes=minutes)
    if actor:
        return TicketEvent(event_id, "1", "commented", when, actor, public=True)
    return TicketEvent(event_id, "1", "created" if event_id == "c" else "changed", when, "agent", fields)


def run(events: list[TicketEvent], minutes: int) -> Evaluation:
    return evaluate(POLICIES, CALENDARS, events, T + timedelta(minutes=minutes))


def cycles(evaluation: Evaluation) -> list[MetricState]:
    nr = evaluation.metrics["next_reply"]
    return [*nr.past_cycles, nr]


def test_a_cycle_after_an_untracked_one_is_cycle_1() -> None:
    events = [
        ev("c", 0, priority="high", status="open"),
        ev("a0", 10, "agent"),  # first response met
        ev("r1", 20, "requester"),  # a cycle opens...
        ev("p1", 30, priority="low"),
        ev("a1", 40, "agent"),  # ...and stops under "low": no target, not tracked
        ev("p2", 50, priority="high"),
        ev("r2", 60, "requester"),  # the cycle shown
    ]
    nr = run(events, 90).metrics["next_reply"]
    assert (nr.cycle, nr.past_cycles, nr.status) == (1, (), MetricStatus.RUNNING)
    assert (nr.started_at, nr.cycle_id) == (T + timedelta(minutes=60), cycle_id("a1"))
    d = run(events, 90).to_dict()["metrics"]["next_reply"]
    assert (d["cycle"], d["cycle_id"], d["past_cycles"]) == (1, cycle_id("a1"), [])


def test_an_untracked_cycle_between_two_shown_ones_leaves_no_gap_and_no_key_moves() -> None:
    events = [
        ev("c", 0, priority="high", status="open"),
        ev("a0", 10, "agent"),
        ev("r1", 20, "requester"),
        ev("a1", 30, "agent"),  # cycle 1 met under "high"
        ev("r2", 40, "requester"),
        ev("p1", 50, priority="low"),
        ev("a2", 60, "agent"),  # stopped under "low": not tracked
        ev("p2", 70, priority="high"),
        ev("r3", 80, "requester"),  # cycle 2, breached at 10:00
    ]
    shown = cycles(run(events, 300))
    assert [(c.cycle, c.cycle_id, c.status) for c in shown] == [
        (1, cycle_id("a0"), MetricStatus.MET),
        (2, cycle_id("a2"), MetricStatus.BREACHED),
    ]
    # The effect key is the cycle's id, not its number: the same with the middle cycle tracked.
    assert "p/next_reply#" + cycle_id("a2") + ":late" in run(events, 300).desired.comments
    tracked = cycles(run([e for e in events if e.event_id not in ("p1", "p2")], 300))
    assert [(c.cycle, c.cycle_id) for c in tracked] == [
        (1, cycle_id("a0")),
        (2, cycle_id("a1")),
        (3, cycle_id("a2")),
    ]
    assert {c.key for c in shown} <= {c.key for c in tracked}


def test_same_instant_history_found_by_the_property_test() -> None:
    # tests/sla/test_evaluate_properties.py::test_clock_invariants, as hypothesis found it: no creation
    # event, everything at Fri 18 Dec 08:00 UTC (09:00 Berlin) but e4 and e6 a minute later. At 08:00
    # the agent replies (e2, first response met), the requester writes (e3: cycle opens), the ticket is
    # solved (e0: the cycle is cancelled at once) and reopened (e1), under priority "low" (e5). The
    # requester writes again at 08:01 (e4: a new cycle, following the reopening) and the priority
    # becomes urgent (e6). The cancelled cycle stopped under "low", which has no target: only the
    # running one is shown, and it is cycle 1, not 2.
    policies = _policies("berlin", {"urgent": "1h", "high": "4h", "normal": "8h"})
    base, minute = datetime(2026, 12, 18, 8, 0, tzinfo=UTC), timedelta(minutes=1)
    events = [
        TicketEvent("e0", "T", "changed", base, "agent", {"status": "solved"}),
        TicketEvent("e1", "T", "changed", base, "agent", {"status": "open"}),
        TicketEvent("e2", "T", "commented", base, "agent", public=True),
        TicketEvent("e3", "T", "commented", base, "requester", public=True),
        TicketEvent("e4", "T", "commented", base + minute, "requester", public=True),
        TicketEvent("e5", "T", "changed", base, "agent", {"priority": "low"}),
        TicketEvent("e6", "T", "changed", base + minute, "agent", {"priority": "urgent"}),
    ]
    nr = evaluate(policies, CALENDARS, events, base + minute).metrics["next_reply"]
    assert (nr.cycle, nr.past_cycles) == (1, ())
    assert (nr.cycle_id, nr.started_at, nr.status) == (cycle_id("e1"), base + minute, MetricStatus.RUNNING)
    assert (nr.priority, nr.deadline) == ("urgent", base + minute + timedelta(hours=1))
    # With a target for "low", the cancelled cycle is tracked and shown as cycle 1, keyed by the reply e2.
    with_low = _policies("berlin", {"urgent": "1h", "high": "4h", "normal": "8h", "low": "16h"})
    nr = evaluate(with_low, CALENDARS, events, base + minute).metrics["next_reply"]
    one = nr.past_cycles[0]
    assert (one.cycle, one.cycle_id, one.status, one.started_at, one.stopped_at) == (
        1,
        cycle_id("e2"),
        MetricStatus.CANCELLED,
        base,
        base,
    )
    assert (nr.cycle, nr.cycle_id) == (2, cycle_id("e1"))
