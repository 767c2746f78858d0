"""Calendar periods in a time zone: parsing, DST months, ranges and their errors."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from sla.periods import (
    ReportPeriod,
    local_midnight,
    next_start_date,
    parse_period,
    period_start_date,
    periods_between,
    whole_periods,
)

BERLIN = ZoneInfo("Europe/Berlin")
SANTIAGO = ZoneInfo("America/Santiago")  # its DST changes happen at local midnight


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2026", utc(2025, 12, 31, 23), utc(2026, 12, 31, 23)),
        ("2026-Q1", utc(2025, 12, 31, 23), utc(2026, 3, 31, 22)),  # ends in summer time
        ("2026-01", utc(2025, 12, 31, 23), utc(2026, 1, 31, 23)),
        ("2026-03", utc(2026, 2, 28, 23), utc(2026, 3, 31, 22)),  # 31 days less an hour
        ("2026-10", utc(2026, 9, 30, 22), utc(2026, 10, 31, 23)),  # 31 days and an hour
        ("2026-W01", utc(2025, 12, 28, 23), utc(2026, 1, 4, 23)),  # ISO week 1 starts Mon 29 Dec 2025
        ("2026-03-29", utc(2026, 3, 28, 23), utc(2026, 3, 29, 22)),  # the spring day: 23 hours
        ("2026-10-25", utc(2026, 10, 24, 22), utc(2026, 10, 25, 23)),  # the autumn day: 25 hours
        ("2026-01-15T10:00", utc(2026, 1, 15, 9), utc(2026, 1, 15, 9)),  # local date-time: an instant
        ("2026-01-15T10:00:00Z", utc(2026, 1, 15, 10), utc(2026, 1, 15, 10)),
        (" 2026-07-01T00:00:00+02:00 ", utc(2026, 6, 30, 22), utc(2026, 6, 30, 22)),
    ],
)
def test_period_texts_in_berlin(text: str, start: datetime, end: datetime) -> None:
    assert parse_period(text, BERLIN) == (start, end)


def test_the_same_month_in_two_zones_is_two_ranges() -> None:
    assert parse_period("2026-03", ZoneInfo("UTC")) == (utc(2026, 3, 1), utc(2026, 4, 1))
    assert parse_period("2026-03", ZoneInfo("Asia/Tokyo")) == (utc(2026, 2, 28, 15), utc(2026, 3, 31, 15))


def test_a_midnight_in_a_dst_gap_starts_the_day_when_the_clocks_jump() -> None:
    # Santiago springs forward on Sun 6 Sep 2026 at 00:00 (-04) to 01:00 (-03): that day starts at 04:00 UTC.
    assert local_midnight(date(2026, 9, 6), SANTIAGO) == utc(2026, 9, 6, 4)
    start, end = parse_period("2026-09-06", SANTIAGO)
    assert (start, end - start) == (utc(2026, 9, 6, 4), timedelta(hours=23))


@pytest.mark.parametrize(
    ("day", "unit", "first", "following"),
    [
        (date(2026, 11, 26), "day", date(2026, 11, 26), date(2026, 11, 27)),
        (date(2026, 11, 26), "week", date(2026, 11, 23), date(2026, 11, 30)),
        (date(2026, 11, 26), "month", date(2026, 11, 1), date(2026, 12, 1)),
        (date(2026, 11, 26), "quarter", date(2026, 10, 1), date(2027, 1, 1)),
        (date(2026, 11, 26), "year", date(2026, 1, 1), date(2027, 1, 1)),
        (date(2026, 12, 31), "month", date(2026, 12, 1), date(2027, 1, 1)),
    ],
)
def test_period_start_and_next(day: date, unit: str, first: date, following: date) -> None:
    assert period_start_date(day, unit) == first
    assert next_start_date(first, unit) == following


def test_unknown_unit_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown period unit 'fortnight'"):
        period_start_date(date(2026, 1, 1), "fortnight")
    with pytest.raises(ValueError, match="unknown period unit 'fortnight'"):
        next_start_date(date(2026, 1, 1), "fortnight")


def test_periods_between_and_whole_periods() -> None:
    start, end = utc(2026, 1, 15), utc(2026, 4, 1)
    months = periods_between(start, end, "month", ZoneInfo("UTC"))
    assert [d for d, _, _ in months] == [date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)]
    assert [d for d, _, _ in whole_periods(start, end, "month", ZoneInfo("UTC"))] == [
        date(2026, 2, 1),
        date(2026, 3, 1),
    ]
    weeks = periods_between(*parse_period("2026-03", BERLIN), "week", BERLIN)
    assert (weeks[0][0], weeks[-1][0], len(weeks)) == (date(2026, 2, 23), date(2026, 3, 30), 6)
    assert weeks[4][2] - weeks[4][1] == timedelta(days=7, hours=-1)  # the week of 29 March


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("January", "is not one of 2026, 2026-Q1"),
        ("2026-Q5", "is not one of"),
        ("2026-1", "is not one of"),
        ("26-01", "is not one of"),
        ("2026-13", "'2026-13' does not exist"),
        ("2026-02-30", "'2026-02-30' does not exist"),
        ("2027-W53", "'2027-W53' does not exist"),  # 2026 has 53 ISO weeks, 2027 52
        ("2026-01-15T25:00", "is not one of"),
        (20260115, "is not text"),
    ],
)
def test_unparsable_periods_are_named(text: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_period(text, BERLIN)  # type: ignore[arg-type]


def test_a_range_runs_from_the_start_of_from_to_the_end_of_to() -> None:
    assert ReportPeriod("2026-01", "2026-03").bounds(BERLIN) == (utc(2025, 12, 31, 23), utc(2026, 3, 31, 22))
    assert ReportPeriod("2026-Q1", "2026-Q1").bounds(ZoneInfo("UTC")) == (utc(2026, 1, 1), utc(2026, 4, 1))
    instants = ReportPeriod(utc(2026, 1, 1), utc(2026, 1, 2))
    assert (
        instants.bounds(BERLIN)
        == instants.bounds(ZoneInfo("Asia/Tokyo"))
        == (utc(2026, 1, 1), utc(2026, 1, 2))
    )


def test_inverted_and_empty_ranges_are_refused() -> None:
    with pytest.raises(
        ValueError, match=r"period 2026-03 \.\. 2026-01 is inverted: it ends at 2026-02-01T00:00:00"
    ):
        ReportPeriod("2026-03", "2026-01")
    with pytest.raises(
        ValueError, match=r"period 2026-12 \.\. 2026-11 is inverted: 2026-11 comes before 2026-12"
    ):
        ReportPeriod("2026-12", "2026-11")  # adjacent: empty as a range, but the mistake is the order
    with pytest.raises(ValueError, match="is empty: it ends when it starts"):
        ReportPeriod("2026-01-15T10:00Z", "2026-01-15T10:00Z")
    with pytest.raises(ValueError, match="must be timezone-aware"):
        ReportPeriod(datetime(2026, 1, 1), "2026-02")
    with pytest.raises(ValueError, match="'2026-13' does not exist"):
        ReportPeriod("2026-01", "2026-13")


def test_a_local_bound_can_invert_a_range_in_one_zone_only() -> None:
    # 00:30 UTC to 01:00 local: fine in UTC, inverted in Berlin (01:00 local is 00:00 UTC).
    period = ReportPeriod("2026-01-15T00:30:00Z", "2026-01-15T01:00")
    assert period.bounds(ZoneInfo("UTC")) == (utc(2026, 1, 15, 0, 30), utc(2026, 1, 15, 1))
    with pytest.raises(ValueError, match="is inverted"):
        period.bounds(BERLIN)
