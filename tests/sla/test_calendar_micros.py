"""The calendar's questions in UTC microseconds (what sla.metrics uses) agree with the datetime ones.

`add` and `between` are built on `add_micros` and `between_micros`, so the property and edge-case
tests of sla.calendar cover their arithmetic; these tests pin the conversions and the failure cases.
Berlin wall-clock times; Mon-Fri 09:00-17:00; 2026-11-23 is a Monday.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from sla.calendar import MAX_SEARCH_YEARS, BusinessCalendar, from_micros

BERLIN = ZoneInfo("Europe/Berlin")
CAL = BusinessCalendar.from_config(
    {"timezone": "Europe/Berlin", "hours": {"mon-fri": ["09:00-17:00"]}, "holidays": {"country": "DE"}},
    name="berlin",
)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN)


def test_micros_counts_utc_microseconds_since_the_epoch_whatever_the_zone() -> None:
    t = at("2026-11-23 10:00:00.000007")
    assert CAL.micros(t) == (t - EPOCH) // timedelta(microseconds=1)
    assert CAL.micros(t) == CAL.micros(t.astimezone(UTC))


def test_micros_refuses_a_naive_datetime_naming_the_calendar_and_the_value() -> None:
    with pytest.raises(
        ValueError, match=r"^calendar 'berlin': now 2026-11-23T10:00:00 is not a timezone-aware"
    ):
        CAL.micros(datetime(2026, 11, 23, 10), "now")


def test_from_micros_gives_the_instant_in_the_zone_asked_for() -> None:
    t = at("2026-11-23 10:00")
    assert from_micros(CAL.micros(t), UTC) == t
    assert from_micros(CAL.micros(t), UTC).tzinfo is UTC
    assert from_micros(CAL.micros(t), BERLIN).isoformat() == "2026-11-23T10:00:00+01:00"


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        ("2026-11-23 10:00", 4, "2026-11-23 14:00"),
        ("2026-11-23 16:00", 1, "2026-11-23 17:00"),  # an exact fit ends at closing time
        ("2026-11-27 16:00", 2, "2026-11-30 10:00"),  # over a weekend
        ("2026-12-23 16:00", 10, "2026-12-28 10:00"),  # over Christmas (24th open, 25th and 26th closed)
        ("2026-12-31 16:00", 2, "2027-01-04 10:00"),  # into the next year's table (New Year closed)
    ],
)
def test_add_micros_agrees_with_add(start: str, hours: int, expected: str) -> None:
    wanted = hours * 3600 * 1_000_000
    assert from_micros(CAL.add_micros(CAL.micros(at(start)), wanted), BERLIN) == at(expected)
    assert CAL.add(at(start), timedelta(hours=hours)) == at(expected)


@pytest.mark.parametrize(
    ("start", "end", "hours"),
    [
        ("2026-11-23 10:00", "2026-11-23 14:00", 4),
        ("2026-11-23 14:00", "2026-11-23 10:00", 0),  # end before start: nothing
        ("2026-11-27 16:00", "2026-11-30 10:00", 2),
        ("2026-12-31 16:00", "2027-01-04 10:00", 2),  # across a year boundary
        ("2025-12-31 16:00", "2027-01-04 10:00", 1 + 8 * 254 + 1),  # all of 2026 between (254 working days)
    ],
)
def test_between_micros_agrees_with_between(start: str, end: str, hours: int) -> None:
    a, b = CAL.micros(at(start)), CAL.micros(at(end))
    assert CAL.between_micros(a, b) == hours * 3600 * 1_000_000
    assert CAL.between(at(start), at(end)) == timedelta(hours=hours)


def test_add_micros_says_none_when_no_instant_within_the_search_fits() -> None:
    closed = [date(2026, 1, 1) + timedelta(days=d) for d in range(366 * (MAX_SEARCH_YEARS + 3))]
    shut = BusinessCalendar.from_config(
        {"timezone": "Europe/Berlin", "hours": {"mon-fri": ["09:00-17:00"]}, "holidays": {"dates": closed}},
        name="shut",
    )
    assert shut.add_micros(shut.micros(at("2026-11-24 10:00")), 3600 * 1_000_000) is None
    with pytest.raises(ValueError, match=r"^calendar 'shut': add 1:00:00 from .* reaches no instant"):
        shut.add(at("2026-11-24 10:00"), timedelta(hours=1))
