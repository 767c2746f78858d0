"""Business time: when a support team is working, and how much working time lies between instants.

`BusinessCalendar` answers four questions, all on timezone-aware datetimes:

- `add(start, d)`: the earliest instant at which the business time elapsed since `start` equals `d`.
  An exact fit ends at closing time (a deadline that fills a day up to 17:00 is 17:00 that day, not
  the next opening); `d == 0` returns `start` unchanged, even outside hours; negative `d` is refused.
- `between(a, b)`: the business time in [a, b]; `timedelta(0)` when `b <= a`.
- `is_open(t)`: whether `t` lies in a window (windows are half-open: open at 09:00, closed at 17:00).
- `next_open(t)`: `t` itself when open, else the next opening.

Results are returned in the tzinfo of the datetime passed in (a UTC start gives a UTC result).
Precision is the microsecond. Mind PEP 495: a result that falls in a DST fold of the caller's zone
never compares `==` to the same instant in another zone; compare in UTC (`<` and `>` are fine).

Time model. Windows are local wall clock in the calendar's IANA zone; durations are real elapsed
time. Each local window boundary is mapped to one UTC instant by this deterministic rule:
- a wall time that occurs twice (a DST fold) means its *first* occurrence, so a 01:00-05:00 window
  on an autumn changeover day holds 5 real hours, and a 24x7 day holds 25;
- a wall time that does not exist (a DST gap) means the instant the clocks jump, so a 01:00-05:00
  window on a spring day holds 3 real hours, a 24x7 day 23, and a window entirely inside the gap
  holds nothing.
Holidays (explicit local dates and/or a country from the `holidays` package) close a local date
all day. The `holidays` package only knows years up to its own end year (2100 for most countries);
later years have no country holidays. A zone with two offset changes within one local day is not
supported (none exists in the tz database since 1970).

Speed. For each local year in use the calendar builds once (lazily, cached on the calendar) the
sorted UTC intervals of that year with their cumulative business time (about 2 ms a year); `add` and
`between` are then two bisections per year touched, so a 60-business-day deadline costs what a 1-hour
one does. `add` and `next_open` look at most `MAX_SEARCH_YEARS` local years past their start and raise
ValueError beyond: a duration that needs more (only a calendar whose holidays close years, since
policies refuse targets past two years of business time, see `sla.policy`) fails in milliseconds
instead of building thousands of years (`9999999h` on a 40-hour week once took 8 s per evaluation).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import holidays as holidays_pkg

from sla._calendar_config import DAY_SECONDS, WeekTable, parse_config

__all__ = ["BusinessCalendar", "from_micros"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)
_US = timedelta(microseconds=1)
_SECOND_US = 1_000_000
_MIN_YEAR, _MAX_YEAR = 2, 9998  # keeps every conversion of a year's edges inside datetime's range
_MAX_CACHED_YEARS = 64
MAX_SEARCH_YEARS = 5  # add / next_open give up after this many local years past their start
_YEAR_US = 31_556_952 * _SECOND_US  # mean Gregorian year


@dataclass(frozen=True, slots=True)
class _YearTable:
    """Business intervals of one local year in UTC microseconds, with cumulative business time."""

    lo: int  # UTC µs of local Jan 1 00:00
    hi: int  # UTC µs of the next local Jan 1 00:00
    starts: list[int]
    ends: list[int]
    cum_start: list[int]  # business µs of the year before starts[i]
    cum_end: list[int]  # business µs of the year up to ends[i]
    total: int

    def elapsed(self, t: int) -> int:
        """Business µs from the start of the year to `t` (lo <= t <= hi)."""
        i = bisect_right(self.starts, t) - 1
        if i < 0:
            return 0
        end = self.ends[i]
        return self.cum_end[i] if t >= end else self.cum_start[i] + t - self.starts[i]


@lru_cache(maxsize=1024)
def _country_holidays(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    return frozenset(holidays_pkg.country_holidays(country, subdiv=subdivision, years=year))


def _to_us(dt: datetime, name: str, what: str) -> int:
    try:
        if isinstance(dt, datetime):
            return (dt - _EPOCH) // _US  # TypeError when dt is naive
    except TypeError:
        pass
    shown = dt.isoformat() if isinstance(dt, datetime) else repr(dt)
    raise ValueError(f"calendar {name!r}: {what} {shown} is not a timezone-aware datetime")


def from_micros(us: int, tz: Any) -> datetime:
    """The instant `us` (UTC µs since the epoch) in `tz`."""
    instant = _EPOCH + timedelta(0, 0, us)
    return instant if tz is UTC else instant.astimezone(tz)


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    """A frozen business calendar. Build it with `BusinessCalendar.from_config`."""

    name: str
    zone: ZoneInfo
    week: WeekTable  # per weekday (Mon=0) the sorted (start, end) local seconds after midnight
    holiday_dates: tuple[date, ...] = ()
    country: str | None = None
    subdivision: str | None = None
    _tables: dict[int, _YearTable] = field(default_factory=dict, compare=False, repr=False, hash=False)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], name: str = "calendar") -> BusinessCalendar:
        """Build from the configuration mapping, e.g.

        {"timezone": "Europe/Berlin",
         "hours": {"mon-fri": ["09:00-12:00", "13:00-17:00"], "sat": ["10:00-14:00"]},  # or "24x7"
         "holidays": {"dates": ["2026-12-24"], "country": "DE", "subdivision": "BE"}}

        Raises ValueError naming the calendar and the field for any invalid input.
        """
        zone, week, dates, country, subdivision = parse_config(name, cfg)
        return cls(name, zone, week, dates, country, subdivision)

    # -- public questions -------------------------------------------------------------------------

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The earliest instant at which `duration` of business time has elapsed since `start`."""
        u = _to_us(start, self.name, "add start")
        if not isinstance(duration, timedelta):
            raise ValueError(f"calendar {self.name!r}: add duration {duration!r} is not a timedelta")
        wanted = duration // _US
        if wanted <= 0:
            if wanted == 0:
                return start
            raise ValueError(f"calendar {self.name!r}: add duration {duration} is negative")
        end = self.add_micros(u, wanted)
        if end is None:
            raise ValueError(
                f"calendar {self.name!r}: add {duration} from {start.isoformat()} reaches no instant "
                f"within {MAX_SEARCH_YEARS} years (too little open time for it)"
            )
        return from_micros(end, start.tzinfo)

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Business time in [start, end]; zero when end <= start."""
        a = _to_us(start, self.name, "between start")
        b = _to_us(end, self.name, "between end")
        return timedelta(microseconds=self.between_micros(a, b))

    # -- the same in UTC microseconds since the epoch, for callers that ask several questions about
    # the same instants (sla.metrics walks a clock once per escalation level): converting datetimes
    # costs as much as the bisections themselves.

    def micros(self, instant: datetime, what: str = "instant") -> int:
        """`instant` in UTC µs since the epoch; ValueError (naming `what`) when it is not timezone-aware."""
        return _to_us(instant, self.name, what)

    def add_micros(self, u: int, wanted: int) -> int | None:
        """`add` in µs for `wanted` > 0: None when no instant within `MAX_SEARCH_YEARS` years fits."""
        year, table = self._table_at(u)
        first = year
        i = bisect_right(table.starts, u) - 1  # table.elapsed(u), inlined: add is the hot path
        target = wanted + (0 if i < 0 else min(table.cum_end[i], table.cum_start[i] + u - table.starts[i]))
        while target > table.total:
            target -= table.total
            year += 1
            if year - first > MAX_SEARCH_YEARS:
                return None
            table = self._table(year)
        j = bisect_left(table.cum_end, target)
        return table.starts[j] + target - table.cum_start[j]

    def between_micros(self, a: int, b: int) -> int:
        """`between` in µs: business µs in [a, b], 0 when b <= a."""
        if b <= a:
            return 0
        year_a, table_a = self._table_at(a)
        if b <= table_a.hi:
            return table_a.elapsed(b) - table_a.elapsed(a)
        year_b, table_b = self._table_at(b)
        total = table_a.total - table_a.elapsed(a) + table_b.elapsed(b)
        return total + sum(self._table(y).total for y in range(year_a + 1, year_b))

    def is_open(self, instant: datetime) -> bool:
        """Whether `instant` lies inside a business window (opening included, closing excluded)."""
        u = _to_us(instant, self.name, "is_open instant")
        _, table = self._table_at(u)
        i = bisect_right(table.starts, u) - 1
        return i >= 0 and u < table.ends[i]

    def next_open(self, instant: datetime) -> datetime:
        """`instant` if the calendar is open then, else the next opening (in instant's tzinfo)."""
        u = _to_us(instant, self.name, "next_open instant")
        year, table = self._table_at(u)
        i = bisect_right(table.starts, u) - 1
        if i >= 0 and u < table.ends[i]:
            return instant
        first = year
        while i + 1 >= len(table.starts):
            year, i = year + 1, -1
            if year - first > MAX_SEARCH_YEARS:
                raise ValueError(
                    f"calendar {self.name!r}: next_open from {instant.isoformat()} finds no opening "
                    f"within {MAX_SEARCH_YEARS} years"
                )
            table = self._table(year)
        return from_micros(table.starts[i + 1], instant.tzinfo)

    @property
    def weekly_open(self) -> timedelta:
        """Open time in an ordinary week (no holidays, no DST change): what bounds a policy's targets."""
        return timedelta(seconds=sum(end - start for day in self.week for start, end in day))

    # -- year tables ------------------------------------------------------------------------------

    def _table_at(self, u: int) -> tuple[int, _YearTable]:
        """The local year containing UTC µs `u`, and its table."""
        year = 1970 + u // _YEAR_US  # a guess, at most one off; corrected below
        table = self._tables.get(year) or self._table(year)
        if table.lo <= u < table.hi:
            return year, table
        while u < table.lo:
            year -= 1
            table = self._table(year)
        while u >= table.hi:
            year += 1
            table = self._table(year)
        return year, table

    def _table(self, year: int) -> _YearTable:
        table = self._tables.get(year)
        if table is None:
            if not _MIN_YEAR <= year <= _MAX_YEAR:
                raise ValueError(f"calendar {self.name!r}: year {year} is outside the supported range")
            table = self._build_year(year)
            if len(self._tables) >= _MAX_CACHED_YEARS:  # bounded memory; clear() is safe for threads
                self._tables.clear()
            self._tables[year] = table
        return table

    def _closed_dates(self, year: int) -> frozenset[date]:
        lo = bisect_left(self.holiday_dates, date(year, 1, 1))
        hi = bisect_right(self.holiday_dates, date(year, 12, 31))
        closed = set(self.holiday_dates[lo:hi])
        if self.country is not None:
            closed |= _country_holidays(self.country, self.subdivision, year)
        return frozenset(closed)

    def _build_year(self, year: int) -> _YearTable:
        closed = self._closed_dates(year)
        starts: list[int] = []
        ends: list[int] = []
        day = date(year, 1, 1)
        midnight = self._local_to_utc(day, 0)
        lo = midnight
        while day.year == year:
            next_day = day + timedelta(days=1)
            next_midnight = self._local_to_utc(next_day, 0)
            windows = () if day in closed else self.week[day.weekday()]
            # No offset change inside the day: every wall time is midnight plus its seconds.
            plain = next_midnight - midnight == DAY_SECONDS * _SECOND_US
            for start_s, end_s in windows:
                if plain:
                    s, e = midnight + start_s * _SECOND_US, midnight + end_s * _SECOND_US
                else:
                    s, e = self._local_to_utc(day, start_s), self._local_to_utc(day, end_s)
                if e <= s:  # a window inside a DST gap
                    continue
                if ends and ends[-1] == s:  # an overnight shift continues without a gap
                    ends[-1] = e
                else:
                    starts.append(s)
                    ends.append(e)
            day, midnight = next_day, next_midnight
        cum_start, cum_end, total = [], [], 0
        for s, e in zip(starts, ends, strict=True):
            cum_start.append(total)
            total += e - s
            cum_end.append(total)
        return _YearTable(lo, midnight, starts, ends, cum_start, cum_end, total)

    def _local_to_utc(self, day: date, seconds: int) -> int:
        """UTC µs of local wall time `day` + `seconds` (may be 86400): fold -> first, gap -> the jump."""
        naive = datetime(day.year, day.month, day.day) + timedelta(seconds=seconds)
        # PEP 495: fold=0 is the first occurrence in a fold and the old offset in a gap; fold=1 the
        # second occurrence and the new offset. Equal offsets: an ordinary wall time.
        before = naive.replace(tzinfo=self.zone).utcoffset()
        after = naive.replace(tzinfo=self.zone, fold=1).utcoffset()
        local = (naive - _NAIVE_EPOCH) // _US
        if before >= after:  # ordinary, or a fold (clocks went back): the first occurrence
            return local - before // _US
        # A gap (clocks jumped forward): with the new offset we land before the jump, with the old
        # one after it; find the jump between the two by bisection.
        lo_s = (local - after // _US) // _SECOND_US
        hi_s = -(-(local - before // _US) // _SECOND_US)
        while hi_s - lo_s > 1:  # offsets change on whole seconds
            mid = (lo_s + hi_s) // 2
            if (_EPOCH + timedelta(seconds=mid)).astimezone(self.zone).utcoffset() == after:
                hi_s = mid
            else:
                lo_s = mid
        return hi_s * _SECOND_US
