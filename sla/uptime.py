"""Uptime: availability of a service within its service hours, from incident tickets.

An incident is a ticket matching a service's filter (see sla.contracts); its downtime runs from its
creation (or the instant a configured field states) to its resolution: the last time it became solved
or closed, or, while it is still open, up to `now`. A reopened incident is down again until it is
solved again, and the time between counts as down too (one interval per ticket, from the start to the
final resolution). Deleted tickets are no incidents.

Availability of a period = 1 - downtime / service time, both counted within the service hours only
(24x7: every second; a business calendar: its interval arithmetic). The incidents of one service are
merged first, so two tickets about the same outage count its time once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction

from sla.calendar import BusinessCalendar
from sla.contracts import CreditTier, UptimeRule, triggered_tier
from sla.timeline import STOPPED, Timeline

_US = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Incident:
    ticket_id: str
    service: str
    start: datetime
    end: datetime | None  # None: still open
    instance: str | None = None


def incidents_for_ticket(
    rules: Mapping[str, UptimeRule], timeline: Timeline, instance: str
) -> list[Incident]:
    """The incidents one ticket is, one per service whose filter it matches (see `uptime_rules`)."""
    if timeline.deleted_at is not None:
        return []
    last_since, last_status = timeline.statuses[-1]
    end = last_since if last_status in STOPPED else None
    out = []
    for service, rule in rules.items():
        if rule.match.matches(timeline.attrs, instance):
            start = _downtime_start(rule, timeline)
            if end is not None and start > end:  # a stated start after the resolution is a typo
                start = timeline.created  # (it would make the incident count nowhere): best guess
            out.append(Incident(timeline.ticket_id, service, start, end, instance))
    return out


def _downtime_start(rule: UptimeRule, timeline: Timeline) -> datetime:
    if rule.downtime_from == "created":
        return timeline.created
    value = timeline.attrs.get(rule.downtime_from)  # an instant field, canonical (sla.events)
    if value is None:
        return timeline.created  # the field was never filled in: the ticket's creation is the best guess
    return datetime.fromisoformat(value)


def merged(intervals: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Overlapping or touching intervals joined; empty ones dropped."""
    out: list[tuple[datetime, datetime]] = []
    for a, b in sorted((a, b) for a, b in intervals if b > a):
        if out and a <= out[-1][1]:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


@dataclass(frozen=True)
class Availability:
    service_time: timedelta  # service hours in the period
    downtime: timedelta  # within the service hours, overlaps counted once
    incidents: int  # incident tickets overlapping the period
    availability: Fraction | None  # None when the period has no service hours

    def meets(self, guaranteed_percent: Fraction) -> bool | None:
        return None if self.availability is None else self.availability * 100 >= guaranteed_percent

    def credit(self, tiers: Iterable[CreditTier]) -> CreditTier | None:
        return None if self.availability is None else triggered_tier(tiers, self.availability * 100)


def availability(
    incidents: Iterable[Incident],
    start: datetime,
    end: datetime,
    now: datetime,
    hours: BusinessCalendar | None = None,
) -> Availability:
    """Availability of one service in [start, end): `incidents` are that service's; an open one is
    down until `now`; `hours` None means 24x7."""
    if now.utcoffset() is None:
        raise ValueError(f"availability: now={now!r} must be timezone-aware")
    if end <= start:
        raise ValueError(
            f"availability: period {start.isoformat()} .. {end.isoformat()} is empty or inverted"
        )
    count = 0
    spans = []
    for inc in incidents:
        a = max(inc.start, start)
        b = min(end, now if inc.end is None else inc.end)
        if b > a:
            count += 1
            spans.append((a.astimezone(UTC), b.astimezone(UTC)))
    service = _time(start, end, hours)
    down = sum((_time(a, b, hours) for a, b in merged(spans)), timedelta(0))
    ratio = None if service <= timedelta(0) else 1 - Fraction(down // _US, service // _US)
    return Availability(service, down, count, ratio)


def _time(a: datetime, b: datetime, hours: BusinessCalendar | None) -> timedelta:
    return b - a if hours is None else hours.between(a, b)
