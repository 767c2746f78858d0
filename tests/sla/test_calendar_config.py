"""sla.calendar: BusinessCalendar.from_config accepts the documented shapes and names every bad field."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sla.calendar import BusinessCalendar

BER = ZoneInfo("Europe/Berlin")
H = timedelta(hours=1)


def make_calendar(**overrides: Any) -> BusinessCalendar:
    cfg: dict[str, Any] = {"timezone": "Europe/Berlin", "hours": {"mon-fri": ["09:00-17:00"]}}
    cfg.update(overrides)
    return BusinessCalendar.from_config(cfg, name="support")


def week_hours(cal: BusinessCalendar) -> list[timedelta]:
    """Business time of each day of the ordinary week Mon 2026-11-23 .. Sun 2026-11-29."""
    days = [datetime(2026, 11, 23 + i, tzinfo=BER) for i in range(8)]
    return [cal.between(a, b) for a, b in zip(days, days[1:], strict=False)]


# -- accepted shapes ----------------------------------------------------------------------------


def test_day_specs_ranges_lists_single_days_and_full_names() -> None:
    cal = make_calendar(
        hours={"mon-wed": ["09:00-10:00"], "thu,fri": ["09:00-11:00"], "Saturday": ["10:00-13:00"]}
    )
    assert week_hours(cal) == [H, H, H, 2 * H, 2 * H, 3 * H, timedelta(0)]


def test_a_range_may_wrap_around_the_week_end() -> None:
    cal = make_calendar(hours={"fri-mon": ["09:00-10:00"]})
    assert week_hours(cal) == [H, 0 * H, 0 * H, 0 * H, H, H, H]


def test_24x7_and_window_ending_at_24_00() -> None:
    assert week_hours(make_calendar(hours="24x7")) == [24 * H] * 7
    assert week_hours(make_calendar(hours={"sun": ["20:00-24:00"]}))[6] == 4 * H


def test_an_empty_list_closes_a_day() -> None:
    assert week_hours(make_calendar(hours={"mon": ["09:00-10:00"], "tue": []}))[:2] == [H, timedelta(0)]


def test_default_name_appears_in_errors() -> None:
    with pytest.raises(ValueError, match=r"^calendar 'calendar': timezone: is required$"):
        BusinessCalendar.from_config({"hours": "24x7"})


def test_holiday_dates_may_be_yaml_date_objects() -> None:
    cal = make_calendar(holidays={"dates": [date(2026, 11, 24), "2026-11-25"]})
    assert week_hours(cal)[:3] == [8 * H, timedelta(0), timedelta(0)]


def test_equal_configs_give_equal_calendars() -> None:
    a = make_calendar(hours={"mon-fri": ["09:00-17:00"]})
    b = make_calendar(hours={"mon,tue,wed,thu,fri": ["09:00-12:00", "12:00-17:00"]})
    assert a == b


# -- every config error names the field ---------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        # timezone
        ({"timezone": "Mars/Base"}, "timezone: 'Mars/Base' is not a known IANA time zone"),
        ({"timezone": "../etc/passwd"}, "timezone: '../etc/passwd' is not a known IANA time zone"),
        ({"timezone": 1}, "timezone: 1 is not an IANA time zone name such as 'Europe/Berlin'"),
        ({"timezone": ""}, "timezone: '' is not an IANA time zone name"),
        # hours: shape
        ({"hours": "24/7"}, "hours: '24/7' is neither '24x7' nor a mapping of day specs to windows"),
        ({"hours": ["09:00-17:00"]}, "hours: ['09:00-17:00'] is neither '24x7' nor a mapping"),
        (
            {"hours": {"mon": "09:00-17:00"}},
            "hours.mon: '09:00-17:00' is not a list of windows 'HH:MM-HH:MM'",
        ),
        ({"hours": {"mon": [9]}}, "hours.mon[0]: 9 is not a window 'HH:MM-HH:MM'"),
        ({"hours": {"mon": ["09:00"]}}, "hours.mon[0]: '09:00' is not a window 'HH:MM-HH:MM'"),
        ({"hours": {"mon": ["09:00-12:00-13:00"]}}, "hours.mon[0]: '09:00-12:00-13:00' is not a window"),
        # hours: day specs
        ({"hours": {"funday": ["09:00-17:00"]}}, "hours.funday: 'funday' is not a day or day range"),
        ({"hours": {"mon-xyz": ["09:00-17:00"]}}, "hours.mon-xyz: 'mon-xyz' is not a day or day range"),
        ({"hours": {"mon-tue-wed": ["09:00-17:00"]}}, "hours.mon-tue-wed: 'mon-tue-wed' is not a day"),
        ({"hours": {"mon,": ["09:00-17:00"]}}, "hours.mon,: '' is not a day or day range"),
        ({"hours": {"": ["09:00-17:00"]}}, "hours: '' is not a day spec such as 'mon-fri'"),
        ({"hours": {1: ["09:00-17:00"]}}, "hours: 1 is not a day spec such as 'mon-fri'"),
        # hours: times
        (
            {"hours": {"mon-fri": ["09:00-12:00", "13:00-25:00"]}},
            "hours.mon-fri[1]: '25:00' is not a valid time HH:MM",
        ),
        ({"hours": {"mon": ["09:60-10:00"]}}, "hours.mon[0]: '09:60' is not a valid time HH:MM"),
        ({"hours": {"mon": ["9:00-10:00"]}}, "hours.mon[0]: '9:00' is not a valid time HH:MM"),
        ({"hours": {"mon": ["09:00-24:30"]}}, "hours.mon[0]: '24:30' is not a valid time HH:MM"),
        ({"hours": {"mon": ["nine-ten"]}}, "hours.mon[0]: 'nine' is not a valid time HH:MM"),
        ({"hours": {"mon": ["24:00-24:00"]}}, "hours.mon[0]: '24:00': a window cannot start at 24:00"),
        ({"hours": {"mon": ["17:00-09:00"]}}, "hours.mon[0]: '17:00-09:00' ends before it starts (split an"),
        ({"hours": {"mon": ["09:00-09:00"]}}, "hours.mon[0]: '09:00-09:00' ends before it starts"),
        # hours: overlaps and an empty week
        ({"hours": {"mon": ["09:00-12:00", "11:00-13:00"]}}, "hours.mon[1]: overlaps hours.mon[0] on mon"),
        (
            {"hours": {"mon-fri": ["09:00-17:00"], "wed": ["16:00-18:00"]}},
            "hours.wed[0]: overlaps hours.mon-fri[0] on wed",
        ),
        (
            {"hours": {"mon": ["09:00-17:00"], "sun-tue": ["08:00-10:00"]}},
            "hours.mon[0]: overlaps hours.sun-tue[0] on mon",
        ),
        ({"hours": {}}, "hours: the week has no open time"),
        ({"hours": {"mon-sun": []}}, "hours: the week has no open time"),
        # holidays
        ({"holidays": ["2026-12-24"]}, "holidays: ['2026-12-24'] is not a mapping with 'dates', 'country'"),
        (
            {"holidays": {"date": ["2026-12-24"]}},
            "holidays: unknown key(s) 'date'; expected dates, country",
        ),
        (
            {"holidays": {"dates": "2026-12-24"}},
            "holidays.dates: '2026-12-24' is not a list of dates YYYY-MM-DD",
        ),
        ({"holidays": {"dates": ["2026-13-01"]}}, "holidays.dates[0]: '2026-13-01' is not a date YYYY-MM-DD"),
        (
            {"holidays": {"dates": ["2026-12-24", "24.12.2026"]}},
            "holidays.dates[1]: '24.12.2026' is not a date",
        ),
        (
            {"holidays": {"dates": [datetime(2026, 12, 24)]}},
            "holidays.dates[0]: datetime.datetime(2026, 12, 24",
        ),
        ({"holidays": {"country": "XX"}}, "holidays.country: 'XX' is not known to the holidays package"),
        ({"holidays": {"country": 49}}, "holidays.country: 49 is not a country code such as 'DE'"),
        (
            {"holidays": {"country": "DE", "subdivision": "XX"}},
            "holidays.subdivision: 'XX' is not known to the",
        ),
        (
            {"holidays": {"country": "DE", "subdivision": 9}},
            "holidays.subdivision: 9 is not a subdivision code",
        ),
        ({"holidays": {"subdivision": "BE"}}, "holidays.subdivision: 'BE' needs a holidays.country"),
        # top level
        ({"hours": None}, "hours: None is neither '24x7' nor a mapping"),
        ({"timezone": "UTC", "weekdays": "mon-fri"}, "unknown key(s) 'weekdays'; expected timezone, hours"),
    ],
)
def test_config_errors_name_the_field(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape("calendar 'support': " + message)):
        make_calendar(**overrides)


def test_missing_keys() -> None:
    with pytest.raises(ValueError, match=r"^calendar 'support': hours: is required$"):
        BusinessCalendar.from_config({"timezone": "UTC"}, name="support")
    with pytest.raises(ValueError, match=r"^calendar 'support': timezone: is required$"):
        BusinessCalendar.from_config({"hours": "24x7"}, name="support")


def test_config_must_be_a_mapping_and_name_a_string() -> None:
    with pytest.raises(ValueError, match=r"^calendar 'support': '24x7' is not a mapping with timezone"):
        BusinessCalendar.from_config("24x7", name="support")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^calendar name '' must be a non-empty string$"):
        BusinessCalendar.from_config({"timezone": "UTC", "hours": "24x7"}, name="")
