"""Availability from incident tickets, by value: merged overlaps, service hours, open incidents, DST."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sla.contracts import CreditTier, IncidentMatch, UptimeRule
from sla.periods import parse_period
from sla.uptime import Incident, availability, incidents_for_ticket, merged
from tests.sla.report_tickets import CALENDARS, Ticket, at

H = timedelta(hours=1)
SEPTEMBER = (datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC))  # 720h
API = UptimeRule(
    service="api",
    match=IncidentMatch({"type": frozenset({"incident"})}, frozenset({"svc-api"})),
    downtime_from="created",
    service_hours="24x7",
    guaranteed_percent=Fraction(999, 10),
    tiers=(CreditTier(Fraction(999, 10), Fraction(10), "t0"), CreditTier(Fraction(99), Fraction(25), "t1")),
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def incident(start: datetime, end: datetime | None, ticket: str = "I-1") -> Incident:
    return Incident(ticket, "api", start, end, "acme")


def test_merged_joins_overlapping_and_touching_intervals_once() -> None:
    a, b, c, d = utc(2026, 9, 1, 10), utc(2026, 9, 1, 11), utc(2026, 9, 1, 12), utc(2026, 9, 1, 13)
    assert merged([(a, c), (b, d)]) == [(a, d)]  # overlap
    assert merged([(c, d), (a, b), (b, c)]) == [(a, d)]  # touching, in any order
    assert merged([(a, d), (b, c)]) == [(a, d)]  # nested
    assert merged([(a, b), (c, d), (b, b)]) == [(a, b), (c, d)]  # apart; an empty one dropped


def test_overlapping_incidents_count_once_and_an_open_one_runs_until_now() -> None:
    incidents = [
        incident(utc(2026, 9, 10, 10), utc(2026, 9, 10, 11), "I-1"),
        incident(utc(2026, 9, 10, 10, 30), utc(2026, 9, 10, 12), "I-2"),  # same outage: 2h in all
        incident(utc(2026, 9, 30, 23), None, "I-3"),  # still open: 1h in September
        incident(utc(2026, 8, 20), utc(2026, 8, 21), "I-0"),  # August: not this month
    ]
    got = availability(incidents, *SEPTEMBER, now=utc(2026, 10, 1, 1))
    assert (got.service_time, got.downtime, got.incidents) == (720 * H, 3 * H, 3)
    assert got.availability == 1 - Fraction(3, 720)  # 99.583%
    assert got.meets(API.guaranteed_percent) is False
    assert got.credit(API.tiers) == API.tiers[0]  # below 99.9 (10%), not below 99.0


def test_the_guarantee_is_met_at_exactly_the_guaranteed_share() -> None:
    # 0.1% of 720h is 43m12s: availability 99.9% exactly is not "below 99.9".
    got = availability(
        [incident(utc(2026, 9, 2), utc(2026, 9, 2, 0, 43, 12))], *SEPTEMBER, now=utc(2026, 10, 2)
    )
    assert got.availability == Fraction(999, 1000)
    assert (got.meets(API.guaranteed_percent), got.credit(API.tiers)) == (True, None)
    worse = availability(
        [incident(utc(2026, 9, 2), utc(2026, 9, 2, 0, 43, 13))], *SEPTEMBER, now=utc(2026, 10, 2)
    )
    assert (worse.meets(API.guaranteed_percent), worse.credit(API.tiers)) == (False, API.tiers[0])
    long = availability([incident(utc(2026, 9, 2), utc(2026, 9, 3))], *SEPTEMBER, now=utc(2026, 10, 2))
    assert long.credit(API.tiers) == API.tiers[1]  # 96.7%: the 25% tier, not 10% + 25%


def test_only_service_hours_count_on_a_business_calendar() -> None:
    berlin = CALENDARS["berlin"]
    november = parse_period("2026-11", berlin.zone)
    # Fri 27 Nov 16:00 to Mon 30 Nov 10:00 Berlin: 1h on Friday, 1h on Monday.
    got = availability(
        [incident(at("2026-11-27 16:00"), at("2026-11-30 10:00"))], *november, at("2026-12-01 09:00"), berlin
    )
    assert (got.downtime, got.service_time) == (2 * H, 21 * 8 * H)  # 21 working days in November 2026
    assert got.availability == 1 - Fraction(2, 168)
    night = availability(
        [incident(at("2026-11-24 20:00"), at("2026-11-25 08:00"))], *november, at("2026-12-01"), berlin
    )
    assert (night.downtime, night.incidents, night.availability) == (timedelta(0), 1, 1)


def test_a_dst_month_has_its_real_length_in_24x7() -> None:
    october = parse_period("2026-10", ZoneInfo("Europe/Berlin"))
    got = availability([], *october, now=utc(2026, 11, 2))
    assert (got.service_time, got.downtime, got.availability) == ((31 * 24 + 1) * H, timedelta(0), 1)


def test_a_period_without_service_hours_has_no_availability() -> None:
    day = parse_period("2026-11-28", CALENDARS["berlin"].zone)  # a Saturday
    got = availability([incident(*day)], *day, now=utc(2026, 12, 1), hours=CALENDARS["berlin"])
    assert (got.service_time, got.availability, got.meets(Fraction(99)), got.credit(API.tiers)) == (
        timedelta(0),
        None,
        None,
        None,
    )


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="is empty or inverted"):
        availability([], SEPTEMBER[1], SEPTEMBER[0], now=utc(2026, 10, 2))
    with pytest.raises(ValueError, match="must be timezone-aware"):
        availability([], *SEPTEMBER, now=datetime(2026, 10, 2))


def test_incident_tickets_from_their_timelines() -> None:
    rules = {"api": API}
    down = Ticket("I-1", "2026-11-23 10:00", type="incident", tags=["svc-api"]).solve("2026-11-23 12:30")
    assert incidents_for_ticket(rules, down.timeline("2026-11-24 10:00"), "acme") == [
        Incident("I-1", "api", at("2026-11-23 10:00"), at("2026-11-23 12:30"), "acme")
    ]
    down.status("2026-11-23 14:00", "open").solve("2026-11-23 15:00")  # reopened: down until the last solve
    (again,) = incidents_for_ticket(rules, down.timeline("2026-11-24 10:00"), "acme")
    assert (again.start, again.end) == (at("2026-11-23 10:00"), at("2026-11-23 15:00"))
    running = Ticket("I-2", "2026-11-23 10:00", type="incident", tags=["svc-api", "p1"])
    assert incidents_for_ticket(rules, running.timeline("2026-11-23 11:00"), "acme")[0].end is None
    other = Ticket("Q-1", "2026-11-23 10:00", type="question", tags=["svc-api"])
    assert incidents_for_ticket(rules, other.timeline("2026-11-23 11:00"), "acme") == []
    gone = Ticket("I-3", "2026-11-23 10:00", type="incident", tags=["svc-api"]).delete("2026-11-23 10:30")
    assert incidents_for_ticket(rules, gone.timeline("2026-11-23 11:00"), "acme") == []


def test_downtime_from_a_field_of_the_ticket() -> None:
    rules = {"api": replace(API, downtime_from="outage_start")}
    tl = Ticket("I-1", "2026-11-23 10:00", type="incident", tags=["svc-api"]).timeline("2026-11-23 11:00")
    stated = replace(tl, attrs={**tl.attrs, "outage_start": "2026-11-23T08:15:00+00:00"})
    assert incidents_for_ticket(rules, stated, "acme")[0].start == utc(2026, 11, 23, 8, 15)
    assert incidents_for_ticket(rules, tl, "acme")[0].start == at("2026-11-23 10:00")  # not filled in
    # A start stated after the resolution (a typo of the year, say) would make the incident count nowhere.
    solved = (Ticket("I-2", "2026-11-23 10:00", type="incident", tags=["svc-api"])
              .status("2026-11-23 12:00", "solved").timeline("2026-11-23 13:00"))
    typo = replace(solved, attrs={**solved.attrs, "outage_start": "2027-11-23T08:15:00+00:00"})
    [incident] = incidents_for_ticket(rules, typo, "acme")
    assert (incident.start, incident.end) == (at("2026-11-23 10:00"), at("2026-11-23 12:00"))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 300), st.integers(0, 300)), max_size=12))
def test_merged_covers_exactly_the_minutes_of_the_intervals(pairs: list[tuple[int, int]]) -> None:
    """Against a brute-force count of the minutes covered: the same set, in disjoint sorted pieces."""
    base = utc(2026, 9, 1)
    minute = timedelta(minutes=1)
    got = merged([(base + a * minute, base + b * minute) for a, b in pairs])
    covered = {m for a, b in pairs for m in range(a, b)}
    assert {m for a, b in got for m in range((a - base) // minute, (b - base) // minute)} == covered
    assert all(a < b for a, b in got) and all(x[1] < y[0] for x, y in zip(got, got[1:], strict=False))
