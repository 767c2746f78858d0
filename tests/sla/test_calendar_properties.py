"""sla.calendar against a slow, obviously-correct reference written here, on random calendars.

The reference walks local dates one by one, turns each window into UTC with zoneinfo (a wall time in
a DST gap becomes the first UTC minute whose wall time reaches it; a wall time in a fold its first
occurrence), and sums or walks the intersections. No year tables, no bisection, no caching.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import holidays as holidays_pkg
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sla.calendar import BusinessCalendar

ZONES = ["Europe/Berlin", "America/Los_Angeles", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]
# Changeover days of the test zones, where the interesting cases live, and the 2100 holiday edge.
ANCHORS = [
    datetime(2026, 3, 29, tzinfo=UTC),
    datetime(2026, 10, 25, tzinfo=UTC),
    datetime(2026, 3, 8, 10, tzinfo=UTC),
    datetime(2026, 11, 1, 10, tzinfo=UTC),
    datetime(2026, 4, 4, 15, tzinfo=UTC),
    datetime(2026, 10, 3, 15, tzinfo=UTC),
    datetime(2026, 12, 31, 12, tzinfo=UTC),
    datetime(2100, 12, 31, 12, tzinfo=UTC),
]
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTE = timedelta(minutes=1)


# -- the reference -------------------------------------------------------------------------------


def ref_to_utc(zone: ZoneInfo, day: date, minutes: int) -> datetime:
    naive = datetime.combine(day, time()) + timedelta(minutes=minutes)
    first = naive.replace(tzinfo=zone).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == naive:
        return first
    t = naive.replace(tzinfo=zone, fold=1).astimezone(UTC).replace(second=0, microsecond=0)
    while t.astimezone(zone).replace(tzinfo=None) < naive:
        t += MINUTE
    return t


def ref_closed(cfg: dict[str, Any], day: date) -> bool:
    hol = cfg.get("holidays", {})
    if day.isoformat() in hol.get("dates", []):
        return True
    return "country" in hol and day in holidays_pkg.country_holidays(hol["country"], years=day.year)


def ref_intervals(cfg: dict[str, Any], week: list[list[tuple[int, int]]], first: date, last: date):
    zone = ZoneInfo(cfg["timezone"])
    day = first
    while day <= last:
        if not ref_closed(cfg, day):
            for start, end in week[day.weekday()]:
                s, e = ref_to_utc(zone, day, start), ref_to_utc(zone, day, end)
                if e > s:
                    yield s, e
        day += timedelta(days=1)


def ref_between(cfg: dict[str, Any], week: list, a: datetime, b: datetime) -> timedelta:
    total = timedelta(0)
    for s, e in ref_intervals(cfg, week, a.date() - timedelta(days=2), b.date() + timedelta(days=1)):
        total += max(timedelta(0), min(e, b) - max(s, a))
    return total


def ref_add(cfg: dict[str, Any], week: list, a: datetime, d: timedelta) -> datetime:
    if not d:
        return a
    for s, e in ref_intervals(cfg, week, a.date() - timedelta(days=2), date(9999, 1, 1)):
        if e <= a:
            continue
        s = max(s, a)
        if e - s >= d:
            return s + d
        d -= e - s
    raise AssertionError("unreachable")


# -- strategies ---------------------------------------------------------------------------------


# Half hours, biased towards the changeover hours of the test zones and midnight.
boundaries = st.integers(0, 48) | st.sampled_from([0, 2, 3, 4, 5, 6, 7, 47, 48])


@st.composite
def calendars(draw: st.DrawFn) -> tuple[dict[str, Any], list[list[tuple[int, int]]]]:
    """A config and its week as minute windows. Boundaries on the half hour, so DST gaps and folds
    (02:00-03:00, Lord Howe's 30 minutes) hold window edges."""
    zone = draw(st.sampled_from(ZONES))
    if draw(st.booleans()) and draw(st.booleans()):
        week = [[(0, 1440)] for _ in range(7)]
        hours: Any = "24x7"
    else:
        week, hours = [], {}
        for name in DAY_NAMES:
            points = sorted(draw(st.lists(boundaries, unique=True, max_size=6)))
            points = points[: len(points) // 2 * 2]
            windows = [(points[i] * 30, points[i + 1] * 30) for i in range(0, len(points), 2)]
            week.append(windows)
            hours[name] = [f"{s // 60:02d}:{s % 60:02d}-{e // 60:02d}:{e % 60:02d}" for s, e in windows]
        assume(sum(e - s for day in week for s, e in day) >= 60)
    cfg: dict[str, Any] = {"timezone": zone, "hours": hours}
    holidays: dict[str, Any] = {}
    dates = draw(st.lists(st.dates(date(2026, 1, 1), date(2027, 1, 31)), max_size=8))
    if dates:
        holidays["dates"] = [d.isoformat() for d in dates]
    if draw(st.booleans()):
        holidays["country"] = "DE"
    if holidays:
        cfg["holidays"] = holidays
    return cfg, week


instants = st.builds(
    lambda anchor, offset: anchor + offset,
    st.sampled_from(ANCHORS),
    st.timedeltas(timedelta(days=-4), timedelta(days=4)),
) | st.datetimes(datetime(2025, 12, 1), datetime(2027, 1, 31), timezones=st.just(UTC))

durations = st.one_of(
    st.timedeltas(timedelta(0), timedelta(hours=60)),
    st.integers(0, 120).map(lambda m: timedelta(minutes=30 * m)),  # exact fits at window edges
)

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(calendars(), instants, durations)
def test_add_and_between_match_the_reference(cal_week, start: datetime, duration: timedelta) -> None:
    cfg, week = cal_week
    cal = BusinessCalendar.from_config(cfg)
    expected = ref_add(cfg, week, start, duration)
    got = cal.add(start, duration)
    assert got == expected
    assert cal.between(start, got) == duration  # the inverse property
    assert cal.between(start, got) == ref_between(cfg, week, start, got)


@SETTINGS
@given(calendars(), instants, st.timedeltas(timedelta(days=-1), timedelta(days=12)))
def test_between_matches_the_reference_for_any_end(cal_week, start: datetime, span: timedelta) -> None:
    cfg, week = cal_week
    cal = BusinessCalendar.from_config(cfg)
    end = start + span
    assert cal.between(start, end) == ref_between(cfg, week, start, end)


@SETTINGS
@given(calendars(), instants)
def test_is_open_and_next_open_agree_with_the_reference(cal_week, instant: datetime) -> None:
    cfg, week = cal_week
    cal = BusinessCalendar.from_config(cfg)
    nxt = cal.next_open(instant)
    assert nxt >= instant and cal.is_open(nxt)
    assert cal.between(instant, nxt) == timedelta(0)
    inside = any(
        s <= instant < e
        for s, e in ref_intervals(
            cfg, week, instant.date() - timedelta(days=2), instant.date() + timedelta(days=1)
        )
    )
    assert cal.is_open(instant) == inside


@SETTINGS
@given(calendars(), instants, durations, durations)
def test_add_composes_and_between_is_additive(
    cal_week, start: datetime, d1: timedelta, d2: timedelta
) -> None:
    cal = BusinessCalendar.from_config(cal_week[0])
    middle = cal.add(start, d1)
    assert cal.add(middle, d2) == cal.add(start, d1 + d2)
    end = cal.add(start, d1 + d2)
    assert cal.between(start, middle) + cal.between(middle, end) == cal.between(start, end)
