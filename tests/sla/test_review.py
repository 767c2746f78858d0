"""Target review (sla.review), pinned by value: rounding, percentiles, what counts, suggestions."""

from __future__ import annotations

from datetime import UTC, datetime
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest

from sla.calendar import BusinessCalendar
from sla.events import TicketEvent
from sla.kpis import windows
from sla.outcomes import Outcome
from sla.periods import ReportPeriod
from sla.policy import load_policies
from sla.review import Review, Times, collect, current_target, nearest_rank, parse_percentile, round_target

H, M = 3600, 60
BERLIN = ZoneInfo("Europe/Berlin")
CALENDARS = {
    "berlin": BusinessCalendar.from_config(
        {"timezone": "Europe/Berlin", "hours": {"mon-fri": ["09:00-17:00"]}, "holidays": {"country": "DE"}},
        name="berlin",
    ),
}
NOVEMBER = ReportPeriod("2026-11", "2026-11")  # Berlin: 1 Nov 00:00 CET .. 1 Dec 00:00 CET


def policies(*versions: dict) -> object:
    base = {
        "id": "standard",
        "version": 1,
        "metrics": {"resolution": {"calendar": "berlin", "targets": {"normal": "8h", "high": "4h"}}},
    }
    return load_policies([base, *versions] if versions else [base], CALENDARS)  # fmt: skip


def outcome(
    ticket: str, stopped: datetime | None, business_s: int, how: str = "met", **kw: object
) -> Outcome:
    fields = {
        "instance": "acme", "ticket_id": ticket, "display_key": None, "policy_id": "standard",
        "policy_version": 1, "priority": "normal", "organisation": None, "brand": None, "group": None,
        "metric": "resolution", "calendar": "berlin", "cycle": "resolution",
        "started_at": datetime(2026, 11, 2, 9, tzinfo=UTC), "stopped_at": stopped, "business_s": business_s,
        "target_s": 8 * H, "outcome": how, "levels_reached": (),
    }  # fmt: skip
    fields.update(kw)
    return Outcome(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "rounded"),
    [
        (0, 5 * M),  # never a zero target
        (1, 5 * M),
        (5 * M, 5 * M),
        (5 * M + 1, 10 * M),
        (58 * M, H),
        (H, H),
        (H + 1, H + 15 * M),
        (H + 50 * M, 2 * H),
        (2 * H, 2 * H),
        (2 * H + 1, 2 * H + 30 * M),
        (7 * H + 31 * M, 8 * H),
        (8 * H, 8 * H),
        (8 * H + 1, 9 * H),
        (16 * H, 16 * H),
        (16 * H + 1, 20 * H),
        (41 * H, 44 * H),
    ],
)
def test_a_percentile_is_rounded_up_to_the_step_of_its_size(seconds: int, rounded: int) -> None:
    assert round_target(seconds) == rounded


def test_a_negative_time_cannot_be_rounded() -> None:
    with pytest.raises(ValueError, match="-1 seconds is negative"):
        round_target(-1)


@pytest.mark.parametrize(
    ("text", "value"), [("90", Fraction(90)), ("99.5", Fraction(199, 2)), (" 100 ", 100)]
)
def test_percentiles_as_written(text: str, value: Fraction) -> None:
    assert parse_percentile(text) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0", "percentile '0' must be above 0 and at most 100"),
        ("100.5", "percentile '100.5' must be above 0 and at most 100"),
        ("-5", "percentile '-5' must be above 0 and at most 100"),
        ("abc", "percentile 'abc' is not a number"),
        ("", "percentile '' is not a number"),
        ("1/0", "percentile '1/0' is not a number"),
    ],
)
def test_a_bad_percentile_is_named(text: str, message: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_percentile(text)
    assert str(err.value).startswith(message)


def test_nearest_rank() -> None:
    tens = list(range(10, 101, 10))
    assert nearest_rank(tens, Fraction(90)) == 90  # ceil(9.0) = 9th
    assert nearest_rank(tens, Fraction(91)) == 100  # ceil(9.1) = 10th
    assert nearest_rank(tens, Fraction(100)) == 100
    assert nearest_rank(tens, Fraction(1)) == 10
    assert nearest_rank([1, 2, 3, 4], Fraction(50)) == 2
    assert nearest_rank([7], Fraction(1, 2)) == 7
    with pytest.raises(ValueError, match="no values"):
        nearest_rank([], Fraction(90))


def test_only_met_and_breached_cycles_that_ended_in_the_period_count() -> None:
    wins = windows(NOVEMBER, CALENDARS)
    found = collect(
        [
            outcome("in", datetime(2026, 11, 10, 12, tzinfo=UTC), 2 * H),
            outcome("late", datetime(2026, 11, 20, 12, tzinfo=UTC), 9 * H, "breached"),
            outcome("october", datetime(2026, 10, 31, 22, tzinfo=UTC), 3 * H),  # 23:00 CET, 31 Oct
            outcome("december-in-berlin", datetime(2026, 11, 30, 23, 30, tzinfo=UTC), 4 * H),  # 00:30 CET
            outcome("last-minute", datetime(2026, 11, 30, 22, 59, tzinfo=UTC), 5 * H),  # 23:59 CET
            outcome("open", None, 6 * H, "open"),
            outcome("running-late", None, 10 * H, "breached"),  # open, past its deadline: not ended
            outcome("cancelled", datetime(2026, 11, 10, 12, tzinfo=UTC), 0, "cancelled"),
            outcome("high", datetime(2026, 11, 10, 12, tzinfo=UTC), H, priority="high", target_s=4 * H),
        ],
        wins,
    )
    assert found == {
        ("standard", "normal", "resolution"): Times([2 * H, 9 * H, 5 * H], breached=1),
        ("standard", "high", "resolution"): Times([H], breached=0),
    }
    with pytest.raises(ValueError, match="names calendar 'tokyo', not given"):
        collect([outcome("x", None, 0, "open", calendar="tokyo")], wins)


def test_suggestions_by_value() -> None:
    """Ten cycles of 1h .. 10h against an 8h target (9h and 10h breached)."""
    from sla.review import suggestions

    times = {("standard", "normal", "resolution"): Times([h * H for h in range(10, 0, -1)], breached=2)}
    now = datetime(2026, 12, 5, tzinfo=UTC)
    (p90,) = suggestions(times, policies(), now, Fraction(90))
    assert p90 == {
        "policy": "standard", "priority": "normal", "metric": "resolution", "cycles": 10, "met": 8,
        "breached": 2, "share_met": 0.8, "current_target_s": 8 * H, "percentile": 90.0,
        "percentile_s": 9 * H, "suggested_s": 9 * H, "would_breach": 1, "share_met_if": 0.9,
    }  # fmt: skip
    (p75,) = suggestions(times, policies(), now, Fraction(75))  # 8th of 10 (ceil 7.5): 8h
    assert (p75["percentile_s"], p75["suggested_s"], p75["would_breach"], p75["share_met_if"]) == (
        8 * H, 8 * H, 2, 0.8,
    )  # fmt: skip
    odd = {("standard", "high", "resolution"): Times([H + 20 * M, 50 * M, 30 * M], breached=0)}
    (row,) = suggestions(odd, policies(), now, Fraction(90))  # 1h20m rounds up to 1h30m: none over it
    assert (row["percentile_s"], row["suggested_s"], row["would_breach"], row["current_target_s"]) == (
        H + 20 * M, H + 30 * M, 0, 4 * H,
    )  # fmt: skip


def test_the_current_target_is_the_version_in_force_now() -> None:
    v2 = {
        "id": "standard",
        "version": 2,
        "effective_from": "2026-11-01T00:00:00Z",
        "metrics": {"resolution": {"calendar": "berlin", "targets": {"normal": "6h"}}},
    }
    v3 = {"id": "standard", "version": 3, "effective_from": "2027-01-01T00:00:00Z",
          "metrics": {"resolution": {"calendar": "berlin", "targets": {"normal": "5h"}}}}  # fmt: skip
    now = datetime(2026, 12, 5, tzinfo=UTC)
    ps = policies(v2, v3)
    assert current_target(ps, ("standard", "normal", "resolution"), now) == 6 * H
    assert current_target(ps, ("standard", "high", "resolution"), now) is None  # v2 has no high target
    assert current_target(ps, ("standard", "normal", "first_response"), now) is None
    assert current_target(ps, ("gone", "normal", "resolution"), now) is None
    assert current_target(ps, (None, "normal", "resolution"), now) is None


def berlin(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN)


def ticket(tid: str, created: str, solved: str | None, priority: str = "normal") -> list[TicketEvent]:
    events = [TicketEvent(f"{tid}-c", tid, "created", berlin(created), "requester",
                          {"status": "new", "priority": priority})]  # fmt: skip
    if solved is not None:
        events.append(TicketEvent(f"{tid}-s", tid, "changed", berlin(solved), "agent", {"status": "solved"}))
    return events


def test_a_review_of_a_month_from_event_logs() -> None:
    """Monday 23 Nov 2026, Berlin 09:00-17:00: business times 1h, 3h, 7h, 9h (breached), one still open,
    one solved in October (outside: not evaluated) and one created in December (outside)."""
    review = Review(policies(), CALENDARS, NOVEMBER, now=datetime(2027, 1, 10, tzinfo=UTC))
    assert review.at == berlin("2026-12-01 00:00")  # the period's end, not `now`
    for events in (
        ticket("A", "2026-11-23 10:00", "2026-11-23 11:00"),
        ticket("B", "2026-11-23 10:00", "2026-11-23 13:00"),
        ticket("C", "2026-11-23 10:00", "2026-11-23 17:00"),
        ticket("D", "2026-11-23 10:00", "2026-11-24 11:00"),  # 7h Monday + 2h Tuesday
        ticket("OPEN", "2026-11-30 10:00", None),
        ticket("OCT", "2026-10-05 10:00", "2026-10-05 12:00"),
        ticket("DEC", "2026-12-02 10:00", "2026-12-02 12:00"),
    ):
        review.add("acme", events)
    assert (review.found.tickets, review.found.skipped) == (5, 2)
    (row,) = review.rows(Fraction(75))  # 3rd of 4: 7h, already a whole half hour
    shown = ("cycles", "met", "breached", "percentile_s", "suggested_s", "would_breach")
    assert {k: row[k] for k in shown} == {
        "cycles": 4, "met": 3, "breached": 1, "percentile_s": 7 * H, "suggested_s": 7 * H, "would_breach": 1,
    }  # fmt: skip


def test_parts_merge_to_the_whole() -> None:
    """Two workers each take a part of the tickets; their parts merged give the figures of one pass."""
    now = datetime(2027, 1, 10, tzinfo=UTC)
    tickets = [ticket(f"T{i}", "2026-11-23 10:00", f"2026-11-23 {11 + i}:00") for i in range(6)]
    whole = Review(policies(), CALENDARS, NOVEMBER, now)
    for events in tickets:
        whole.add("acme", events)
    merged = Review(policies(), CALENDARS, NOVEMBER, now)
    for half in (tickets[:2], tickets[2:]):
        worker = Review(policies(), CALENDARS, NOVEMBER, now)
        for events in half:
            worker.add("acme", events)
        merged.merge(worker.take())
        assert worker.found.tickets == 0  # take starts afresh
    assert merged.rows(Fraction(90)) == whole.rows(Fraction(90))
    assert (merged.found.tickets, whole.found.tickets) == (6, 6)
    assert whole.rows(Fraction(90))[0]["suggested_s"] == 6 * H  # 1h .. 6h: the 6th


def test_the_rounding_in_words() -> None:
    from sla.review import ROUNDING

    assert ROUNDING == "to 5m up to 1h, to 15m up to 2h, to 30m up to 8h, to 1h up to 16h, else to 4h"
