"""sla.calendar: other zones (half-hour DST, southern hemisphere, no DST), 24x7 with holidays,
multi-year spans and the bounded year cache, pinned by value."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sla.calendar import BusinessCalendar

BER = ZoneInfo("Europe/Berlin")
LHI = ZoneInfo("Australia/Lord_Howe")  # DST shifts by 30 minutes
SYD = ZoneInfo("Australia/Sydney")  # summer time over the year end
IST = ZoneInfo("Asia/Kolkata")  # +05:30, no DST
H = timedelta(hours=1)
M = timedelta(minutes=1)


def make_calendar(**overrides: Any) -> BusinessCalendar:
    cfg: dict[str, Any] = {"timezone": "Europe/Berlin", "hours": {"mon-fri": ["09:00-17:00"]}}
    cfg.update(overrides)
    return BusinessCalendar.from_config(cfg, name="test")


def at(zone: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=zone)


# -- Lord Howe: 2026-04-05 02:00 -> 01:30, 2026-10-04 02:00 -> 02:30 -----------------------------


def test_lord_howe_24x7_days_have_24_and_a_half_and_23_and_a_half_hours() -> None:
    cal = make_calendar(timezone="Australia/Lord_Howe", hours="24x7")
    assert cal.between(at(LHI, 2026, 4, 5), at(LHI, 2026, 4, 6)) == 24 * H + 30 * M
    assert cal.between(at(LHI, 2026, 10, 4), at(LHI, 2026, 10, 5)) == 23 * H + 30 * M


def test_lord_howe_window_over_the_half_hour_changeovers() -> None:
    cal = make_calendar(timezone="Australia/Lord_Howe", hours={"sun": ["01:00-03:00"]})
    assert cal.between(at(LHI, 2026, 4, 5), at(LHI, 2026, 4, 6)) == 2 * H + 30 * M
    assert cal.between(at(LHI, 2026, 10, 4), at(LHI, 2026, 10, 5)) == H + 30 * M
    assert cal.add(at(LHI, 2026, 10, 4, 1), H) == at(LHI, 2026, 10, 4, 2, 30)  # 02:00-02:30 is skipped
    in_gap = make_calendar(timezone="Australia/Lord_Howe", hours={"sun": ["02:00-02:15"]})
    assert in_gap.between(at(LHI, 2026, 10, 4), at(LHI, 2026, 10, 5)) == timedelta(0)
    assert in_gap.between(at(LHI, 2026, 9, 27), at(LHI, 2026, 9, 28)) == 15 * M


# -- Sydney: summer time at the year end ----------------------------------------------------------


def test_sydney_year_end_in_summer_time() -> None:
    cal = make_calendar(timezone="Australia/Sydney", holidays={"dates": ["2027-01-01"]})
    assert cal.add(at(SYD, 2026, 12, 31, 16), 2 * H) == at(SYD, 2027, 1, 4, 10)
    assert cal.between(at(SYD, 2026, 12, 31, 16), at(SYD, 2027, 1, 4, 10)) == 2 * H
    # Sydney's year starts 13:00 UTC the day before: that instant belongs to the new local year.
    assert cal.next_open(datetime(2026, 12, 31, 13, tzinfo=UTC)) == at(SYD, 2027, 1, 4, 9)
    assert (
        make_calendar(timezone="Australia/Sydney", hours="24x7").between(
            at(SYD, 2026, 12, 31), at(SYD, 2027, 1, 1)
        )
        == 24 * H
    )


def test_sydney_changeovers_are_the_other_way_round() -> None:
    cal = make_calendar(timezone="Australia/Sydney", hours="24x7")
    assert cal.between(at(SYD, 2026, 4, 5), at(SYD, 2026, 4, 6)) == 25 * H
    assert cal.between(at(SYD, 2026, 10, 4), at(SYD, 2026, 10, 5)) == 23 * H


# -- zones without DST, and callers in other zones -------------------------------------------------


def test_kolkata_half_hour_offset_seen_from_utc() -> None:
    cal = make_calendar(timezone="Asia/Kolkata")
    start = datetime(2026, 11, 27, 11, tzinfo=UTC)  # Friday 16:30 IST
    end = cal.add(start, H)
    assert end == at(IST, 2026, 11, 30, 9, 30)
    assert end == datetime(2026, 11, 30, 4, tzinfo=UTC) and end.tzinfo is UTC


def test_utc_calendar_and_a_fixed_offset_caller() -> None:
    cal = make_calendar(timezone="UTC")
    eastern = timezone(timedelta(hours=-5))
    start = datetime(2026, 11, 27, 11, tzinfo=eastern)  # 16:00 UTC Friday
    end = cal.add(start, 2 * H)
    assert end == datetime(2026, 11, 30, 10, tzinfo=UTC)
    assert end.tzinfo is eastern and end.hour == 5


# -- 24x7 with holidays -------------------------------------------------------------------------


def test_24x7_holiday_closes_exactly_the_local_date() -> None:
    cal = make_calendar(hours="24x7", holidays={"dates": ["2026-12-24"]})
    assert cal.is_open(at(BER, 2026, 12, 23, 23, 59, 59))
    assert not cal.is_open(at(BER, 2026, 12, 24))
    assert cal.is_open(at(BER, 2026, 12, 25))
    assert cal.between(at(BER, 2026, 12, 23), at(BER, 2026, 12, 26)) == 48 * H
    assert cal.next_open(at(BER, 2026, 12, 24, 10)) == at(BER, 2026, 12, 25)
    assert cal.add(at(BER, 2026, 12, 23, 23), H) == at(BER, 2026, 12, 24)  # exact fit at midnight
    assert cal.add(at(BER, 2026, 12, 23, 23), 2 * H) == at(BER, 2026, 12, 25, 1)


def test_24x7_holiday_on_a_23_hour_day_removes_23_hours() -> None:
    cal = make_calendar(hours="24x7", holidays={"dates": ["2026-03-29"]})
    assert cal.between(at(BER, 2026, 3, 28), at(BER, 2026, 3, 31)) == 48 * H
    assert cal.is_open(at(BER, 2026, 3, 30, 0, 30))


# -- long spans -----------------------------------------------------------------------------------


def test_two_years_of_german_business_days() -> None:
    # 2026: 261 weekdays - 7 weekday holidays; 2027: 261 - 5.
    cal = make_calendar(holidays={"country": "DE"})
    assert cal.between(at(BER, 2026, 1, 1), at(BER, 2028, 1, 1)) == (254 + 256) * 8 * H
    assert cal.add(at(BER, 2026, 1, 1), (254 + 256) * 8 * H) == at(BER, 2027, 12, 31, 17)


def test_next_open_and_add_skip_a_whole_closed_year() -> None:
    saturdays = [date(2026, 1, 3) + timedelta(weeks=k) for k in range(52)]
    cal = make_calendar(
        hours={"sat": ["09:00-10:00"]}, holidays={"dates": [d.isoformat() for d in saturdays]}
    )
    assert cal.between(at(BER, 2026, 1, 1), at(BER, 2027, 1, 1)) == timedelta(0)
    assert cal.next_open(at(BER, 2026, 1, 1)) == at(BER, 2027, 1, 2, 9)
    assert cal.add(at(BER, 2026, 1, 1), 30 * M) == at(BER, 2027, 1, 2, 9, 30)


def test_the_year_cache_is_bounded_and_results_survive_eviction() -> None:
    cal = make_calendar()
    for year in range(2000, 2100):
        assert cal.between(at(BER, year, 6, 1), at(BER, year, 6, 8)) == 40 * H
    assert 0 < len(cal._tables) <= 64
    assert cal.between(at(BER, 2026, 11, 23), at(BER, 2026, 11, 30)) == 40 * H
