"""sla.calendar: add/between/is_open/next_open pinned by value on the edge cases.

Default calendar: Mon-Fri 09:00-17:00 in Europe/Berlin, no holidays. 2026-11-27 is a Friday.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sla.calendar import BusinessCalendar

BER = ZoneInfo("Europe/Berlin")
LA = ZoneInfo("America/Los_Angeles")
H = timedelta(hours=1)


def make_calendar(**overrides: Any) -> BusinessCalendar:
    cfg: dict[str, Any] = {"timezone": "Europe/Berlin", "hours": {"mon-fri": ["09:00-17:00"]}}
    cfg.update(overrides)
    return BusinessCalendar.from_config(cfg, name="test")


def ber(*args: int) -> datetime:
    return datetime(*args, tzinfo=BER)


def la(*args: int) -> datetime:
    return datetime(*args, tzinfo=LA)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# -- start before / inside / after a window, and exactly at its edges ------------------------------


@pytest.mark.parametrize(
    ("start", "duration", "expected"),
    [
        (ber(2026, 11, 27, 10), 2 * H, ber(2026, 11, 27, 12)),  # inside
        (ber(2026, 11, 27, 7, 30), H, ber(2026, 11, 27, 10)),  # before opening
        (ber(2026, 11, 27, 18), H, ber(2026, 11, 30, 10)),  # after closing, over the weekend
        (ber(2026, 11, 28, 12), H, ber(2026, 11, 30, 10)),  # on a Saturday
        (ber(2026, 11, 27, 9), 8 * H, ber(2026, 11, 27, 17)),  # at opening, exact fit
        (ber(2026, 11, 27, 16), H, ber(2026, 11, 27, 17)),  # exact fit stays at closing time
        (ber(2026, 11, 27, 17), timedelta(seconds=1), ber(2026, 11, 30, 9, 0, 1)),  # at closing
        (ber(2026, 11, 27, 16, 59, 59), timedelta(seconds=2), ber(2026, 11, 30, 9, 0, 1)),
        (ber(2026, 11, 26, 16), 9 * H, ber(2026, 11, 27, 17)),  # two days, exact fit
        (ber(2026, 11, 23, 9), 5 * 8 * H, ber(2026, 11, 27, 17)),  # a whole week ends Friday 17:00
    ],
)
def test_add_around_a_window(start: datetime, duration: timedelta, expected: datetime) -> None:
    cal = make_calendar()
    assert cal.add(start, duration) == expected
    assert cal.between(start, expected) == duration


def test_zero_duration_returns_start_unchanged_even_outside_hours() -> None:
    cal = make_calendar()
    start = ber(2026, 11, 28, 3, 17)  # Saturday night
    assert cal.add(start, timedelta(0)) is start


def test_between_is_zero_when_end_is_not_after_start() -> None:
    cal = make_calendar()
    assert cal.between(ber(2026, 11, 27, 12), ber(2026, 11, 27, 12)) == timedelta(0)
    assert cal.between(ber(2026, 11, 27, 12), ber(2026, 11, 27, 10)) == timedelta(0)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (ber(2026, 11, 27, 16), ber(2026, 11, 30, 10), 2 * H),  # over a weekend
        (ber(2026, 11, 27, 7), ber(2026, 11, 27, 8), timedelta(0)),  # before opening
        (ber(2026, 11, 27, 17), ber(2026, 11, 30, 9), timedelta(0)),  # closing to opening
        (ber(2026, 11, 27, 8), ber(2026, 11, 27, 20), 8 * H),  # covers the whole window
        (ber(2026, 11, 23), ber(2026, 11, 30), 40 * H),  # a week
        (ber(2026, 11, 2), ber(2027, 1, 4), 45 * 8 * H),  # nine weeks
    ],
)
def test_between_by_value(start: datetime, end: datetime, expected: timedelta) -> None:
    assert make_calendar().between(start, end) == expected


def test_precision_is_the_microsecond() -> None:
    cal = make_calendar()
    start = ber(2026, 11, 27, 16, 59, 59, 999_998)
    assert cal.add(start, timedelta(microseconds=2)) == ber(2026, 11, 27, 17)
    assert cal.add(start, timedelta(microseconds=3)) == ber(2026, 11, 30, 9, 0, 0, 1)
    assert cal.between(start, ber(2026, 11, 30, 9, 0, 0, 7)) == timedelta(microseconds=9)


def test_result_is_in_the_start_tzinfo() -> None:
    cal = make_calendar()
    in_utc = cal.add(utc(2026, 11, 27, 8), H)  # 09:00 Berlin
    assert in_utc == ber(2026, 11, 27, 10) and in_utc.tzinfo is UTC
    in_la = cal.add(la(2026, 11, 27, 0), H)
    assert in_la == ber(2026, 11, 27, 10) and in_la.tzinfo is LA
    assert (in_la.hour, in_la.minute) == (1, 0)


def test_calendar_is_frozen_and_equal_by_value() -> None:
    cal = make_calendar()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cal.name = "other"  # type: ignore[misc]
    cal.add(ber(2026, 11, 27, 10), H)  # fills the lazy cache, which does not take part in equality
    assert cal == make_calendar()
    assert hash(cal) == hash(make_calendar())


# -- several windows a day, windows crossing midnight -------------------------------------------


def test_several_windows_a_day() -> None:
    cal = make_calendar(hours={"mon-fri": ["09:00-12:00", "13:00-17:00"], "sat": ["10:00-14:00"]})
    assert cal.add(ber(2026, 11, 27, 11), H) == ber(2026, 11, 27, 12)  # exact fit at the lunch break
    assert cal.add(ber(2026, 11, 27, 11), 2 * H) == ber(2026, 11, 27, 14)
    assert cal.add(ber(2026, 11, 27, 12, 30), H) == ber(2026, 11, 27, 14)  # start in the break
    assert cal.add(ber(2026, 11, 27, 16), 2 * H) == ber(2026, 11, 28, 11)  # Saturday window
    assert cal.between(ber(2026, 11, 27), ber(2026, 11, 29)) == 11 * H
    assert not cal.is_open(ber(2026, 11, 27, 12, 30))
    assert cal.next_open(ber(2026, 11, 27, 12)) == ber(2026, 11, 27, 13)


def test_touching_windows_and_a_day_listed_twice() -> None:
    cal = make_calendar(hours={"mon-fri": ["09:00-12:00"], "mon": ["12:00-13:00", "14:00-15:00"]})
    assert cal.between(ber(2026, 11, 30), ber(2026, 12, 1)) == 5 * H  # Monday
    assert cal.between(ber(2026, 12, 1), ber(2026, 12, 2)) == 3 * H  # Tuesday
    assert cal.add(ber(2026, 11, 30, 11), 2 * H) == ber(2026, 11, 30, 13)  # 09-12 + 12-13 is one window
    assert cal.add(ber(2026, 11, 30, 11), 3 * H) == ber(2026, 11, 30, 15)
    assert cal.is_open(ber(2026, 11, 30, 12))


def test_overnight_shift_joins_without_a_gap() -> None:
    cal = make_calendar(hours={"mon-fri": ["22:00-24:00"], "tue-sat": ["00:00-06:00"]})
    assert cal.add(ber(2026, 11, 23, 23), 2 * H) == ber(2026, 11, 24, 1)
    assert cal.add(ber(2026, 11, 23, 22), 8 * H) == ber(2026, 11, 24, 6)  # exact fit
    assert cal.add(ber(2026, 11, 23, 22), 9 * H) == ber(2026, 11, 24, 23)
    assert cal.between(ber(2026, 11, 23, 20), ber(2026, 11, 24, 8)) == 8 * H
    assert cal.is_open(ber(2026, 11, 24, 0))  # midnight is inside the shift
    assert not cal.is_open(ber(2026, 11, 24, 6))
    assert cal.next_open(ber(2026, 11, 28, 6)) == ber(2026, 11, 30, 22)  # Sat 06:00 -> Mon 22:00


def test_is_open_and_next_open_at_the_edges() -> None:
    cal = make_calendar()
    assert cal.is_open(ber(2026, 11, 27, 9))
    assert not cal.is_open(ber(2026, 11, 27, 8, 59, 59))
    assert cal.is_open(ber(2026, 11, 27, 16, 59, 59))
    assert not cal.is_open(ber(2026, 11, 27, 17))
    inside = ber(2026, 11, 27, 12)
    assert cal.next_open(inside) is inside
    assert cal.next_open(ber(2026, 11, 27, 17)) == ber(2026, 11, 30, 9)
    assert cal.next_open(utc(2026, 11, 27, 7)) == ber(2026, 11, 27, 9)


# -- holidays -----------------------------------------------------------------------------------


def test_explicit_holiday_closes_the_whole_local_date() -> None:
    cal = make_calendar(holidays={"dates": ["2026-12-24"]})
    assert cal.add(ber(2026, 12, 23, 16), 2 * H) == ber(2026, 12, 25, 10)
    assert cal.add(ber(2026, 12, 24, 10), H) == ber(2026, 12, 25, 10)  # start on the holiday
    assert cal.add(ber(2026, 12, 23, 16), H) == ber(2026, 12, 23, 17)  # exact fit before it
    assert cal.between(ber(2026, 12, 23, 17), ber(2026, 12, 25, 9)) == timedelta(0)
    assert cal.between(ber(2026, 12, 23, 16), ber(2026, 12, 25, 10)) == 2 * H
    assert not cal.is_open(ber(2026, 12, 24, 10))
    assert cal.next_open(ber(2026, 12, 23, 17)) == ber(2026, 12, 25, 9)


def test_country_holidays_and_subdivision() -> None:
    germany = make_calendar(holidays={"country": "DE"})
    bavaria = make_calendar(holidays={"country": "DE", "subdivision": "BY"})  # Epiphany, 6 January
    start = ber(2026, 1, 5, 16)  # Monday
    assert germany.add(start, 2 * H) == ber(2026, 1, 6, 10)
    assert bavaria.add(start, 2 * H) == ber(2026, 1, 7, 10)
    # Christmas 25/26 Dec 2026 are Friday/Saturday.
    assert germany.add(ber(2026, 12, 24, 16), 2 * H) == ber(2026, 12, 28, 10)


def test_explicit_and_country_holidays_combine() -> None:
    cal = make_calendar(holidays={"dates": ["2026-12-24", "2026-12-28"], "country": "DE"})
    assert cal.add(ber(2026, 12, 23, 16), 2 * H) == ber(2026, 12, 29, 10)


# -- year ends and the far future ----------------------------------------------------------------


def test_year_end_with_new_years_day() -> None:
    cal = make_calendar(holidays={"country": "DE"})  # 2027-01-01 is a Friday
    assert cal.add(ber(2026, 12, 31, 16), 2 * H) == ber(2027, 1, 4, 10)
    assert cal.add(ber(2026, 12, 31, 16), H) == ber(2026, 12, 31, 17)
    assert cal.between(ber(2026, 12, 31, 16), ber(2027, 1, 4, 10)) == 2 * H
    assert cal.next_open(ber(2026, 12, 31, 17)) == ber(2027, 1, 4, 9)


def test_overnight_shift_across_the_year_end() -> None:
    cal = make_calendar(hours="24x7", timezone="UTC")
    start = utc(2026, 12, 31, 23)
    assert cal.add(start, 2 * H) == utc(2027, 1, 1, 1)
    assert cal.between(start, utc(2027, 1, 1, 1)) == 2 * H
    # Three whole years, one of them a leap year.
    assert cal.between(utc(2026, 1, 1), utc(2029, 1, 1)) == timedelta(days=365 * 3 + 1)
    assert cal.add(utc(2026, 1, 1), timedelta(days=365 * 3 + 1)) == utc(2029, 1, 1)


def test_far_future_dates() -> None:
    cal = make_calendar(holidays={"dates": ["2101-01-03"], "country": "DE"})
    assert cal.add(ber(2150, 6, 1, 16), 2 * H) == ber(2150, 6, 2, 10)  # Monday -> Tuesday
    # 60 business days from Monday 09:00 are exactly 12 weeks: Friday 17:00 (no country holidays
    # after the holidays package's end year, 2100).
    assert cal.add(ber(2150, 6, 1, 9), 60 * 8 * H) == ber(2150, 8, 21, 17)
    assert cal.between(ber(2150, 6, 1, 9), ber(2150, 8, 21, 17)) == 60 * 8 * H
    # Friday 2100-12-31 -> weekend -> the explicit holiday Monday 2101-01-03 -> Tuesday.
    assert cal.add(ber(2100, 12, 31, 16), 2 * H) == ber(2101, 1, 4, 10)
    assert cal.add(ber(2150, 6, 1, 16), 2 * H).utcoffset() == timedelta(hours=2)  # still summer time


def test_beyond_the_supported_range_is_a_clear_error() -> None:
    cal = make_calendar(hours="24x7", timezone="UTC")
    with pytest.raises(ValueError, match=r"calendar 'test': year 9999 is outside the supported range"):
        cal.add(utc(9998, 12, 31, 12), timedelta(days=2))


def test_a_long_span_costs_about_what_a_short_one_does() -> None:
    # Structural, not timed: a year of business days touches only the year tables it spans.
    cal = make_calendar(holidays={"country": "DE"})
    end = cal.add(ber(2026, 1, 5, 9), 300 * 8 * H)
    assert sorted(cal._tables) == [2026, 2027]
    assert cal.between(ber(2026, 1, 5, 9), end) == 300 * 8 * H


# -- DST: Europe/Berlin (2026-03-29 and 2026-10-25) ---------------------------------------------


def test_24x7_berlin_spring_day_has_23_hours_and_autumn_day_25() -> None:
    cal = make_calendar(hours="24x7")
    assert cal.between(ber(2026, 3, 29), ber(2026, 3, 30)) == 23 * H
    assert cal.between(ber(2026, 10, 25), ber(2026, 10, 26)) == 25 * H
    assert cal.add(ber(2026, 3, 29), 24 * H) == ber(2026, 3, 30, 1)
    assert cal.add(ber(2026, 10, 25), 24 * H) == ber(2026, 10, 25, 23)


def test_berlin_window_over_the_spring_changeover_hour() -> None:
    cal = make_calendar(hours={"sun": ["01:00-05:00"]})
    assert cal.between(ber(2026, 3, 29), ber(2026, 3, 30)) == 3 * H
    assert cal.add(ber(2026, 3, 29, 1), H) == ber(2026, 3, 29, 3)  # 02:00-03:00 does not exist
    assert cal.add(ber(2026, 3, 29, 1), 3 * H) == ber(2026, 3, 29, 5)  # exact fit
    assert cal.add(ber(2026, 3, 29, 1), 4 * H) == ber(2026, 4, 5, 2)
    assert cal.between(ber(2026, 3, 22), ber(2026, 3, 23)) == 4 * H  # an ordinary Sunday


def test_berlin_window_over_the_autumn_changeover_hour() -> None:
    cal = make_calendar(hours={"sun": ["01:00-05:00"]})
    assert cal.between(ber(2026, 10, 25), ber(2026, 10, 26)) == 5 * H
    second_two_oclock = cal.add(ber(2026, 10, 25, 1), 2 * H)
    # 02:00 CET, the second 02:00. PEP 495: an ambiguous local time never compares == to an
    # instant in another zone, so compare in UTC.
    assert second_two_oclock.astimezone(UTC) == utc(2026, 10, 25, 1)
    assert second_two_oclock.astimezone(BER).utcoffset() == H
    assert cal.add(ber(2026, 10, 25, 1), 5 * H) == ber(2026, 10, 25, 5)


def test_window_boundaries_in_the_gap_move_to_the_jump() -> None:
    cal = make_calendar(hours={"sun": ["02:30-04:00", "06:00-06:30"]})
    assert cal.between(ber(2026, 3, 29), ber(2026, 3, 30)) == timedelta(minutes=90)  # 03:00-04:00
    assert cal.next_open(ber(2026, 3, 29)) == ber(2026, 3, 29, 3)
    only_gap = make_calendar(hours={"sun": ["02:00-02:30"]})
    assert only_gap.between(ber(2026, 3, 29), ber(2026, 3, 30)) == timedelta(0)
    assert only_gap.next_open(ber(2026, 3, 29)) == ber(2026, 4, 5, 2)


def test_window_boundaries_in_the_fold_mean_the_first_occurrence() -> None:
    cal = make_calendar(hours={"sun": ["02:30-03:00"]})
    # From the first 02:30 (00:30 UTC) to 03:00 CET (02:00 UTC): 90 real minutes.
    assert cal.between(ber(2026, 10, 25), ber(2026, 10, 26)) == timedelta(minutes=90)
    assert cal.next_open(ber(2026, 10, 25)).astimezone(UTC) == utc(2026, 10, 25, 0, 30)


def test_office_hours_across_the_changeover_weekends() -> None:
    cal = make_calendar()
    assert cal.add(ber(2026, 3, 27, 16), 2 * H) == ber(2026, 3, 30, 10)
    assert cal.between(ber(2026, 3, 27, 16), ber(2026, 3, 30, 10)) == 2 * H
    assert cal.add(ber(2026, 10, 23, 16), 2 * H) == ber(2026, 10, 26, 10)
    assert cal.between(ber(2026, 3, 23), ber(2026, 3, 30)) == 40 * H


# -- DST: America/Los_Angeles (2026-03-08 and 2026-11-01) ----------------------------------------


def test_24x7_los_angeles_changeover_days() -> None:
    cal = make_calendar(hours="24x7", timezone="America/Los_Angeles")
    assert cal.between(la(2026, 3, 8), la(2026, 3, 9)) == 23 * H
    assert cal.between(la(2026, 11, 1), la(2026, 11, 2)) == 25 * H
    assert cal.add(la(2026, 3, 7, 12), 24 * H) == la(2026, 3, 8, 13)


def test_los_angeles_window_over_the_changeover_hour() -> None:
    cal = make_calendar(hours={"sun": ["01:00-04:00"]}, timezone="America/Los_Angeles")
    assert cal.between(la(2026, 3, 8), la(2026, 3, 9)) == 2 * H
    assert cal.add(la(2026, 3, 8, 1), H) == la(2026, 3, 8, 3)
    assert cal.between(la(2026, 11, 1), la(2026, 11, 2)) == 4 * H
    assert cal.add(la(2026, 11, 1, 1), 2 * H).astimezone(UTC) == utc(2026, 11, 1, 10)  # 02:00 PST
    assert cal.add(la(2026, 11, 1, 1), 4 * H) == la(2026, 11, 1, 4)


def test_los_angeles_office_hours_seen_from_utc() -> None:
    cal = make_calendar(hours={"mon-fri": ["09:00-17:00"]}, timezone="America/Los_Angeles")
    # Friday 2026-03-06 16:00 PST is 00:00 UTC Saturday; Monday 10:00 PDT is 17:00 UTC.
    assert cal.add(utc(2026, 3, 7, 0), 2 * H) == utc(2026, 3, 9, 17)
    assert cal.between(utc(2026, 3, 7, 0), utc(2026, 3, 9, 17)) == 2 * H


# -- bad calls ----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["add", "is_open", "next_open"])
def test_naive_datetimes_are_refused(method: str) -> None:
    cal = make_calendar()
    args: tuple[Any, ...] = (datetime(2026, 11, 27, 10),)
    if method == "add":
        args += (H,)
    with pytest.raises(ValueError, match=r"calendar 'test': .*2026-11-27T10:00:00 is not a timezone-aware"):
        getattr(cal, method)(*args)


def test_naive_datetimes_are_refused_by_between_on_either_side() -> None:
    cal = make_calendar()
    with pytest.raises(ValueError, match=r"between start 2026-11-27T10:00:00 is not a timezone-aware"):
        cal.between(datetime(2026, 11, 27, 10), ber(2026, 11, 27, 12))
    with pytest.raises(ValueError, match=r"between end 2026-11-27T12:00:00 is not a timezone-aware"):
        cal.between(ber(2026, 11, 27, 10), datetime(2026, 11, 27, 12))


def test_not_a_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match=r"add start '2026-11-27' is not a timezone-aware datetime"):
        make_calendar().add("2026-11-27", H)  # type: ignore[arg-type]


def test_negative_duration_is_refused() -> None:
    with pytest.raises(ValueError, match=r"calendar 'test': add duration -1 day, 23:00:00 is negative"):
        make_calendar().add(ber(2026, 11, 27, 10), -H)


def test_duration_must_be_a_timedelta() -> None:
    with pytest.raises(ValueError, match=r"calendar 'test': add duration 3600 is not a timedelta"):
        make_calendar().add(ber(2026, 11, 27, 10), 3600)  # type: ignore[arg-type]
