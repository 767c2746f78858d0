"""Calendar periods (day, week, month, quarter, year) in an IANA time zone.

A month in Berlin is a Berlin month: from local midnight of its first day to local midnight of the
next month's first day, whatever the offsets (March and October in Europe/Berlin are an hour shorter
and longer than 31 days). Weeks start on Monday (ISO 8601). A local midnight that falls in a DST gap
is the instant the clocks jump (the day starts when it exists).

Period texts: "2026" (a year), "2026-Q1", "2026-01", "2026-W05" (ISO week), "2026-01-15" (a day), or
an ISO 8601 date-time ("2026-01-15T10:00:00+01:00"; without an offset it is local time in the zone).
A report's range runs from the start of its `from` period to the end of its `to` period, so
`2026-01 .. 2026-03` is the first quarter; a date-time names one instant, an open or closing bound.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

UNITS = ("day", "week", "month", "quarter", "year")
_FORMS = (
    "2026, 2026-Q1, 2026-01, 2026-W05, 2026-01-15 or an ISO 8601 date-time like 2026-01-15T10:00:00+01:00"
)
_YEAR = re.compile(r"(\d{4})")
_QUARTER = re.compile(r"(\d{4})-Q([1-4])")
_MONTH = re.compile(r"(\d{4})-(\d{2})")
_WEEK = re.compile(r"(\d{4})-W(\d{2})")
_DAY = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The instant `day` starts in `zone` (in UTC); in a DST gap, the instant the clocks jump."""
    # fold=0 takes the offset before a change: in a gap that is exactly the jump, in a fold the first.
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def period_start_date(day: date, unit: str) -> date:
    """The first local date of the period of `unit` containing `day`."""
    if unit == "day":
        return day
    if unit == "week":
        return day - timedelta(days=day.weekday())
    if unit == "month":
        return day.replace(day=1)
    if unit == "quarter":
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    if unit == "year":
        return date(day.year, 1, 1)
    raise ValueError(f"unknown period unit {unit!r} (known: {', '.join(UNITS)})")


def next_start_date(start: date, unit: str) -> date:
    """The first local date of the period after the one starting on `start`."""
    if unit == "day":
        return start + timedelta(days=1)
    if unit == "week":
        return start + timedelta(days=7)
    months = {"month": 1, "quarter": 3, "year": 12}.get(unit)
    if months is None:
        raise ValueError(f"unknown period unit {unit!r} (known: {', '.join(UNITS)})")
    index = start.year * 12 + start.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def periods_between(
    start: datetime, end: datetime, unit: str, zone: ZoneInfo
) -> list[tuple[date, datetime, datetime]]:
    """Every period of `unit` in `zone` that overlaps [start, end): (first local date, start, end),
    the instants in UTC and not clipped to [start, end)."""
    out = []
    day = period_start_date(start.astimezone(zone).date(), unit)
    lo = local_midnight(day, zone)
    while lo < end:
        following = next_start_date(day, unit)
        hi = local_midnight(following, zone)
        out.append((day, lo, hi))
        day, lo = following, hi
    return out


def whole_periods(
    start: datetime, end: datetime, unit: str, zone: ZoneInfo
) -> list[tuple[date, datetime, datetime]]:
    """The periods of `unit` in `zone` lying wholly inside [start, end)."""
    return [p for p in periods_between(start, end, unit, zone) if start <= p[1] and p[2] <= end]


def parse_period(text: str, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) in UTC of the period `text` names in `zone`; a date-time gives [t, t)."""
    if not isinstance(text, str):
        raise ValueError(f"period {text!r} is not text: expected {_FORMS}")
    text = text.strip()
    found = _first_day(text)
    if found is not None:
        first, unit = found
        return local_midnight(first, zone), local_midnight(next_start_date(first, unit), zone)
    if "T" in text or " " in text:
        try:
            t = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
        except ValueError:
            pass
        else:
            t = t.replace(tzinfo=zone) if t.tzinfo is None else t
            return t.astimezone(UTC), t.astimezone(UTC)
    raise ValueError(f"period {text!r} is not one of {_FORMS}")


def _first_day(text: str) -> tuple[date, str] | None:
    """The first day and unit of a period text; None when it has none of the forms, ValueError when
    it has one but names a day that does not exist ("2026-13", "2026-02-30", "2027-W53")."""
    try:
        if m := _YEAR.fullmatch(text):
            return date(int(m[1]), 1, 1), "year"
        if m := _QUARTER.fullmatch(text):
            return date(int(m[1]), 3 * int(m[2]) - 2, 1), "quarter"
        if m := _MONTH.fullmatch(text):
            return date(int(m[1]), int(m[2]), 1), "month"
        if m := _WEEK.fullmatch(text):
            return date.fromisocalendar(int(m[1]), int(m[2]), 1), "week"
        if m := _DAY.fullmatch(text):
            return date(int(m[1]), int(m[2]), int(m[3])), "day"
    except ValueError as exc:
        raise ValueError(f"period {text!r} does not exist ({exc})") from None
    return None


@dataclass(frozen=True)
class ReportPeriod:
    """A report's range, given as texts (resolved in each zone: a Berlin month for Berlin figures, a
    Tokyo month for Tokyo ones) or as aware instants (the same everywhere).

    Construction checks that it parses and is not inverted or empty (in UTC); `bounds` checks again in
    the zone asked for, where a local date-time may land differently.
    """

    start: str | datetime
    end: str | datetime

    def __post_init__(self) -> None:
        for value, name in ((self.start, "from"), (self.end, "to")):
            if isinstance(value, datetime) and value.utcoffset() is None:
                raise ValueError(f"period {name} {value.isoformat()} must be timezone-aware")
        self.bounds(ZoneInfo("UTC"))

    def bounds(self, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """[start, end) in UTC: from the start of the `from` period to the end of the `to` period."""
        start = _span(self.start, zone)[0]
        to_start, end = _span(self.end, zone)
        shown = f"period {_show(self.start)} .. {_show(self.end)}"
        if end < start:
            ends, starts = end.astimezone(zone).isoformat(), start.astimezone(zone).isoformat()
            raise ValueError(f"{shown} is inverted: it ends at {ends}, before it starts at {starts}")
        if to_start < start:  # "2026-12 .. 2026-11" is empty, but the mistake is the order
            raise ValueError(f"{shown} is inverted: {_show(self.end)} comes before {_show(self.start)}")
        if end == start:
            raise ValueError(f"{shown} is empty: it ends when it starts")
        return start, end


def _span(value: str | datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    if isinstance(value, datetime):
        return value.astimezone(UTC), value.astimezone(UTC)
    return parse_period(value, zone)


def _show(value: str | datetime) -> str:
    return value.isoformat() if isinstance(value, datetime) else value
