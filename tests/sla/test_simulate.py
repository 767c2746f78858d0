"""Policy what-if (sla.simulate), pinned by value on hand-built tickets.

Berlin calendar Mon-Fri 09:00-17:00 with German holidays; 2026-11-23 is a Monday; November 2026 is the
period (Berlin: 1 Nov 00:00 CET .. 1 Dec 00:00 CET).
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from sla.calendar import BusinessCalendar
from sla.events import TicketEvent
from sla.periods import ReportPeriod
from sla.policy import PolicySet, load_policies
from sla.simulate import Counts, Simulation, Tally, compare, evaluation_instant, replay_timeline

H = 3600
BERLIN = ZoneInfo("Europe/Berlin")
CAL = {"timezone": "Europe/Berlin", "hours": {"mon-fri": ["09:00-17:00"]}, "holidays": {"country": "DE"}}
CALENDARS = {"berlin": BusinessCalendar.from_config(CAL, name="berlin")}
NOVEMBER = ReportPeriod("2026-11", "2026-11")
LEVELS = [
    {"name": "warning", "metric": "resolution", "at": "75%", "actions": [{"tag": "sla-warning"}]},
    {"name": "breach", "metric": "resolution", "at": "breach", "actions": [{"tag": "sla-breached"}]},
]


def policies(metrics: dict[str, dict[str, str]], calendars: dict = CALENDARS) -> PolicySet:
    cfg = {m: {"calendar": "berlin", "targets": t} for m, t in metrics.items()}
    return load_policies([{"id": "standard", "metrics": cfg, "escalations": LEVELS}], calendars)


CURRENT = policies({"resolution": {"normal": "8h", "urgent": "4h"}})


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN)


def ticket(tid: str, created: str, *changes: tuple[str, str], priority: str = "normal") -> list[TicketEvent]:
    """Created by the requester, then (time, status) changes by an agent, or (time, "reply")."""
    events = [TicketEvent(f"{tid}-0", tid, "created", at(created), "requester",
                          {"status": "new", "priority": priority})]  # fmt: skip
    for i, (when, what) in enumerate(changes, start=1):
        if what == "reply":
            events.append(TicketEvent(f"{tid}-{i}", tid, "commented", at(when), "agent", {}, True))
        else:
            events.append(TicketEvent(f"{tid}-{i}", tid, "changed", at(when), "agent", {"status": what}))
    return events


def simulate(
    proposed: PolicySet, tickets: list[list[TicketEvent]], now: str = "2027-01-10 12:00"
) -> Simulation:
    sim = Simulation((CURRENT, CALENDARS), (proposed, CALENDARS), NOVEMBER, at(now))
    for events in tickets:
        sim.add("acme", events)
    return sim


def test_a_shorter_target_and_a_new_metric_by_value() -> None:
    """Resolution 8h -> 6h; first response 1h added. A: 2h; B: 7h (warning at 6h, met; proposed:
    warning at 4h30m, breach at 6h); C: paused 2 days, 5h of business time; D: still open (3h)."""
    tickets = [
        ticket("A", "2026-11-23 10:00", ("2026-11-23 10:30", "reply"), ("2026-11-23 12:00", "solved")),
        ticket("B", "2026-11-23 10:00", ("2026-11-23 12:00", "reply"), ("2026-11-23 17:00", "solved")),
        ticket(
            "C",
            "2026-11-23 10:00",
            ("2026-11-23 12:00", "pending"),
            ("2026-11-25 12:00", "open"),
            ("2026-11-25 15:00", "solved"),
        ),  # fmt: skip
        ticket("D", "2026-11-30 14:00"),
    ]
    proposed = policies({"resolution": {"normal": "6h", "urgent": "4h"}, "first_response": {"normal": "1h"}})
    sim = simulate(proposed, tickets)
    assert sim.at == at("2026-12-01 00:00")
    assert (sim.counts.tickets, sim.counts.skipped) == (4, 0)
    rows = {(r["priority"], r["metric"]): r for r in sim.rows()}
    assert list(rows) == [("normal", "first_response"), ("normal", "resolution")]
    fr = rows[("normal", "first_response")]
    # Not measured now. Proposed: A 30m met; B 2h breached; C unanswered, solved 21h later (a breach
    # before the solve stays a breach); D open (3h)
    assert fr["current"] == {"in_scope": 0, "met": 0, "breached": 0, "open": 0, "share_met": None,
                             "targets_s": [], "levels": {}}  # fmt: skip
    assert fr["proposed"] == {"in_scope": 4, "met": 1, "breached": 2, "open": 1, "share_met": 1 / 3,
                              "targets_s": [H], "levels": {}}  # fmt: skip
    assert fr["change"] == {
        "in_scope": 4,
        "met": 1,
        "breached": 2,
        "open": 1,
        "share_met": None,
        "levels": {},
    }
    res = rows[("normal", "resolution")]
    assert res["current"] == {"in_scope": 4, "met": 3, "breached": 0, "open": 1, "share_met": 1.0,
                              "targets_s": [8 * H], "levels": {"warning": 1}}  # fmt: skip
    assert res["proposed"] == {"in_scope": 4, "met": 2, "breached": 1, "open": 1, "share_met": 2 / 3,
                               "targets_s": [6 * H], "levels": {"breach": 1, "warning": 2}}  # fmt: skip
    assert res["change"]["levels"] == {"breach": 1, "warning": 1}
    assert res["change"]["share_met"] == pytest.approx(-1 / 3)


def test_a_cycle_counts_where_it_ends_in_the_calendars_zone() -> None:
    """Solved Mon 30 Nov 16:30 (counts in November); one created Fri 27 Nov 16:00 and solved Tue 1 Dec
    00:30 Berlin (23:30 UTC on 30 Nov) counts as open in November, not as met, with the levels it had
    reached by then (9h of business time: past its 8h target)."""
    tickets = [
        ticket("IN", "2026-11-30 09:00", ("2026-11-30 16:30", "solved")),
        ticket("NEXT", "2026-11-27 16:00", ("2026-12-01 00:30", "solved")),
    ]
    (row,) = simulate(CURRENT, tickets).rows()
    assert (row["current"]["met"], row["current"]["breached"], row["current"]["open"]) == (1, 0, 1)
    assert row["current"]["levels"] == {"breach": 1, "warning": 2}  # IN took 7h30m: past its 6h warning
    assert row["change"] == {
        "in_scope": 0, "met": 0, "breached": 0, "open": 0, "share_met": 0.0,
        "levels": {"breach": 0, "warning": 0},
    }  # fmt: skip


def test_tickets_outside_the_period_are_not_evaluated_and_change_nothing() -> None:
    inside = ticket("IN", "2026-11-23 10:00", ("2026-11-23 12:00", "solved"))
    october = ticket("OCT", "2026-10-05 10:00", ("2026-10-05 12:00", "solved"))
    still_open = ticket("OLD", "2026-10-05 10:00", ("2026-10-05 11:00", "pending"))  # open all November
    december = ticket("DEC", "2026-12-02 10:00")
    sim = simulate(CURRENT, [inside, october, still_open, december])
    assert (sim.counts.tickets, sim.counts.skipped) == (2, 2)
    (row,) = sim.rows()
    assert (row["current"]["met"], row["current"]["open"]) == (1, 1)
    start, end = at("2026-11-01 00:00"), at("2026-12-01 00:00")

    def outside(events: list[TicketEvent], start: datetime, end: datetime) -> bool:
        return replay_timeline(events, start, end) is None

    assert outside(october, start, end) and outside(december, start, end) and outside([], start, end)
    assert not outside(still_open, start, end) and not outside(inside, start, end)
    deleted = [*october[:1], TicketEvent("OCT-d", "OCT", "deleted", at("2026-10-06 10:00"))]
    assert outside(deleted, start, end)


def test_the_evaluation_instant_is_the_latest_end_of_the_period_or_now() -> None:
    tokyo = {"tokyo": BusinessCalendar.from_config({"timezone": "Asia/Tokyo", "hours": "24x7"}, name="tokyo")}
    late = datetime(2027, 1, 1, tzinfo=UTC)
    assert evaluation_instant(NOVEMBER, (CALENDARS, tokyo), late) == at(
        "2026-12-01 00:00"
    )  # Berlin ends last
    assert evaluation_instant(NOVEMBER, (tokyo,), late) == datetime(2026, 11, 30, 15, tzinfo=UTC)
    early = at("2026-11-20 12:00")
    assert evaluation_instant(NOVEMBER, (CALENDARS,), early) == early
    with pytest.raises(ValueError, match="must be timezone-aware"):
        evaluation_instant(NOVEMBER, (CALENDARS,), datetime(2026, 11, 20))


def test_parts_from_several_workers_merge_to_the_whole() -> None:
    tickets = [ticket(f"T{i}", "2026-11-23 10:00", (f"2026-11-23 {10 + i}:30", "solved")) for i in range(7)]
    proposed = policies({"resolution": {"normal": "4h"}})
    whole = simulate(proposed, tickets)
    merged = Simulation((CURRENT, CALENDARS), (proposed, CALENDARS), NOVEMBER, at("2027-01-10 12:00"))
    for part in (tickets[:3], tickets[3:]):
        worker = simulate(proposed, part)
        merged.merge(worker.take())
        assert worker.counts.tickets == 0
    assert merged.rows() == whole.rows()
    (row,) = whole.rows()
    assert (row["proposed"]["met"], row["proposed"]["breached"]) == (4, 3)  # 30m .. 3h30m met


def test_compare_keeps_rows_seen_on_one_side_only() -> None:
    counts = Counts()
    counts.sides["current"][("acme", "low", "resolution")] = Tally(met=2, levels={"warning": 1}, targets={H})
    counts.sides["proposed"][("acme", None, "resolution")] = Tally(breached=1, targets={2 * H})
    rows = compare(counts)
    assert [(r["instance"], r["priority"]) for r in rows] == [("acme", None), ("acme", "low")]
    assert rows[1]["change"] == {"in_scope": -2, "met": -2, "breached": 0, "open": 0, "share_met": None,
                                 "levels": {"warning": -1}}  # fmt: skip


def test_a_proposal_that_changes_one_policy_leaves_the_others_tickets_as_they_are() -> None:
    """Two policies: `vip` (tag vip, resolution 4h) before `standard` (8h). The proposal changes only vip's
    target to 2h: standard's tickets count the same on both sides, vip's 3h ticket breaches."""
    vip = {"id": "vip", "match": {"tags_any": ["vip"]}, "escalations": LEVELS,
           "metrics": {"resolution": {"calendar": "berlin", "targets": {"normal": "4h"}}}}  # fmt: skip
    standard = {"id": "standard", "escalations": LEVELS,
                "metrics": {"resolution": {"calendar": "berlin", "targets": {"normal": "8h"}}}}  # fmt: skip
    faster = {**vip, "metrics": {"resolution": {"calendar": "berlin", "targets": {"normal": "2h"}}}}
    current, proposed = (
        load_policies([vip, standard], CALENDARS),
        load_policies([faster, standard], CALENDARS),
    )
    vip_ticket = ticket("V", "2026-11-23 10:00", ("2026-11-23 13:00", "solved"))
    vip_ticket[0] = TicketEvent("V-0", "V", "created", at("2026-11-23 10:00"), "requester",
                                {"status": "new", "priority": "normal", "tags": ["vip"]})  # fmt: skip
    tickets = [
        vip_ticket,
        *(ticket(f"S{h}", "2026-11-24 09:00", (f"2026-11-24 {9 + h}:00", "solved")) for h in (1, 7)),
    ]
    sim = Simulation((current, CALENDARS), (proposed, CALENDARS), NOVEMBER, at("2027-01-10 12:00"))
    for events in tickets:
        sim.add("acme", events)
    (row,) = sim.rows()  # one row per (instance, priority, metric): both policies' cycles together
    assert (row["current"]["met"], row["current"]["breached"]) == (3, 0)
    assert (row["proposed"]["met"], row["proposed"]["breached"]) == (2, 1)
    assert row["current"]["targets_s"] == [4 * H, 8 * H] and row["proposed"]["targets_s"] == [2 * H, 8 * H]
    assert row["current"]["levels"] == {"warning": 1}  # S7 (6h of 8h); V stopped at its 3h warning: in time
    assert row["proposed"]["levels"] == {"breach": 1, "warning": 2}
