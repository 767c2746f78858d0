"""Parsing and validation of a calendar's configuration mapping (the YAML `calendars.<name>` block).

Kept apart from `sla.calendar` so the arithmetic module stays small. Every error is a ValueError
that starts with `calendar '<name>': ` and names the field, e.g. `hours.mon-fri[1]`.

Accepted shape (keys other than these three are refused, so typos do not pass silently):
- `timezone` (required): an IANA name.
- `hours` (required): "24x7", or a mapping from day specs to lists of windows "HH:MM-HH:MM".
  Day specs are case-insensitive: `mon`..`sun` (or full names), ranges `mon-fri` (a range may
  wrap: `fri-mon`), comma lists `sat,sun`. A window ends after it starts; "24:00" is allowed as
  an end. A day may appear in several specs if its windows do not overlap; touching windows
  (09:00-12:00 and 12:00-13:00) join. An empty list closes the day; the week must have open time.
- `holidays` (optional): `dates` (local dates "YYYY-MM-DD" or YAML dates, closed all day),
  `country` and optional `subdivision` codes of the `holidays` package.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_pkg

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_INDEX = {**{n: i for i, n in enumerate(DAY_NAMES)}, **{n: i for i, n in enumerate(_FULL_NAMES)}}
_TIME_RE = re.compile(r"^(\d{2}):(\d{2})$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DAY_SECONDS = 86_400

# A week as seven tuples of (start, end) seconds after local midnight, sorted, merged where touching.
WeekTable = tuple[tuple[tuple[int, int], ...], ...]


class ConfigError(ValueError):
    """A calendar configuration error; a ValueError so callers need not know this type."""


def _fail(name: str, where: str, message: str) -> ConfigError:
    return ConfigError(f"calendar {name!r}: {where}: {message}")


def parse_zone(name: str, value: Any) -> ZoneInfo:
    if not isinstance(value, str) or not value.strip():
        raise _fail(name, "timezone", f"{value!r} is not an IANA time zone name such as 'Europe/Berlin'")
    try:
        return ZoneInfo(value.strip())
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise _fail(name, "timezone", f"{value!r} is not a known IANA time zone") from exc


def parse_days(name: str, spec: Any) -> list[int]:
    """'mon-fri' -> [0..4]; 'sat,sun' -> [5, 6]; a range may wrap ('fri-mon')."""
    where = f"hours.{spec}"
    if not isinstance(spec, str) or not spec.strip():
        raise _fail(name, "hours", f"{spec!r} is not a day spec such as 'mon-fri', 'sat,sun' or 'mon'")
    days: list[int] = []
    for part in spec.lower().split(","):
        part = part.strip()
        ends = [p.strip() for p in part.split("-")]
        if len(ends) > 2 or any(e not in _DAY_INDEX for e in ends):
            raise _fail(name, where, f"{part!r} is not a day or day range (use mon..sun, e.g. 'mon-fri')")
        first, last = _DAY_INDEX[ends[0]], _DAY_INDEX[ends[-1]]
        days.extend((first + k) % 7 for k in range((last - first) % 7 + 1))
    return days


def parse_time(name: str, where: str, text: str, *, is_end: bool) -> int:
    match = _TIME_RE.match(text.strip())
    hours, minutes = (int(match.group(1)), int(match.group(2))) if match else (-1, -1)
    if match and hours == 24 and minutes == 0:
        if is_end:
            return DAY_SECONDS
        raise _fail(name, where, f"{text!r}: a window cannot start at 24:00")
    if not match or not (0 <= hours <= 23 and 0 <= minutes <= 59):
        raise _fail(name, where, f"{text!r} is not a valid time HH:MM")
    return hours * 3600 + minutes * 60


def parse_window(name: str, where: str, value: Any) -> tuple[int, int]:
    if not isinstance(value, str) or value.count("-") != 1:
        raise _fail(name, where, f"{value!r} is not a window 'HH:MM-HH:MM'")
    start_text, end_text = value.split("-")
    start = parse_time(name, where, start_text, is_end=False)
    end = parse_time(name, where, end_text, is_end=True)
    if end <= start:
        hint = "split an overnight shift at 24:00 across two days"
        raise _fail(name, where, f"{value!r} ends before it starts ({hint})")
    return start, end


def parse_hours(name: str, value: Any) -> WeekTable:
    if isinstance(value, str) and value.strip().lower() == "24x7":
        return tuple(((0, DAY_SECONDS),) for _ in range(7))
    if not isinstance(value, Mapping):
        raise _fail(name, "hours", f"{value!r} is neither '24x7' nor a mapping of day specs to windows")
    per_day: list[list[tuple[int, int, str]]] = [[] for _ in range(7)]
    for spec, windows in value.items():
        days = parse_days(name, spec)
        if not isinstance(windows, list | tuple):
            raise _fail(name, f"hours.{spec}", f"{windows!r} is not a list of windows 'HH:MM-HH:MM'")
        for i, raw in enumerate(windows):
            where = f"hours.{spec}[{i}]"
            start, end = parse_window(name, where, raw)
            for day in days:
                per_day[day].append((start, end, where))
    table = []
    for day, entries in enumerate(per_day):
        entries.sort()
        merged: list[tuple[int, int]] = []
        for k, (start, end, where) in enumerate(entries):
            if k and start < entries[k - 1][1]:
                other = entries[k - 1][2]
                raise _fail(name, where, f"overlaps {other} on {DAY_NAMES[day]}")
            if merged and merged[-1][1] == start:  # touching windows are one window
                merged[-1] = (merged[-1][0], end)
            else:
                merged.append((start, end))
        table.append(tuple(merged))
    if not any(table):
        raise _fail(name, "hours", "the week has no open time")
    return tuple(table)


def _parse_date(name: str, where: str, value: Any) -> date:
    if isinstance(value, date) and not hasattr(value, "hour"):  # YAML turns 2026-12-24 into a date
        return value
    if isinstance(value, str) and _DATE_RE.match(value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise _fail(name, where, f"{value!r} is not a date YYYY-MM-DD")


def parse_holidays(name: str, value: Any) -> tuple[tuple[date, ...], str | None, str | None]:
    """Return (sorted explicit dates, country, subdivision)."""
    if value is None:
        return (), None, None
    if not isinstance(value, Mapping):
        raise _fail(name, "holidays", f"{value!r} is not a mapping with 'dates', 'country', 'subdivision'")
    unknown = sorted(set(value) - {"dates", "country", "subdivision"})
    if unknown:
        names = ", ".join(repr(k) for k in unknown)  # the configuration's one wording for unknown keys
        raise _fail(name, "holidays", f"unknown key(s) {names}; expected dates, country, subdivision")
    dates_value = value.get("dates", [])
    if not isinstance(dates_value, list | tuple):
        raise _fail(name, "holidays.dates", f"{dates_value!r} is not a list of dates YYYY-MM-DD")
    dates = tuple(sorted({_parse_date(name, f"holidays.dates[{i}]", d) for i, d in enumerate(dates_value)}))
    country, subdivision = value.get("country"), value.get("subdivision")
    if subdivision is not None and country is None:
        raise _fail(name, "holidays.subdivision", f"{subdivision!r} needs a holidays.country")
    if country is not None:
        if not isinstance(country, str):
            raise _fail(name, "holidays.country", f"{country!r} is not a country code such as 'DE'")
        if subdivision is not None and not isinstance(subdivision, str):
            raise _fail(name, "holidays.subdivision", f"{subdivision!r} is not a subdivision code")
        try:
            holidays_pkg.country_holidays(country, subdiv=subdivision)
        except NotImplementedError as exc:
            bad_subdivision = subdivision is not None and "subdivision" in str(exc)
            field = "holidays.subdivision" if bad_subdivision else "holidays.country"
            bad = subdivision if bad_subdivision else country
            raise _fail(name, field, f"{bad!r} is not known to the holidays package") from exc
    return dates, country, subdivision


def parse_config(name: str, cfg: Any) -> tuple[ZoneInfo, WeekTable, tuple[date, ...], str | None, str | None]:
    if not isinstance(name, str) or not name:
        raise ValueError(f"calendar name {name!r} must be a non-empty string")
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"calendar {name!r}: {cfg!r} is not a mapping with timezone, hours, holidays")
    unknown = sorted(set(cfg) - {"timezone", "hours", "holidays"})
    if unknown:
        names = ", ".join(repr(k) for k in unknown)
        raise ConfigError(f"calendar {name!r}: unknown key(s) {names}; expected timezone, hours, holidays")
    for required in ("timezone", "hours"):
        if required not in cfg:
            raise _fail(name, required, "is required")
    zone = parse_zone(name, cfg["timezone"])
    week = parse_hours(name, cfg["hours"])
    dates, country, subdivision = parse_holidays(name, cfg.get("holidays"))
    return zone, week, dates, country, subdivision
