"""KPIs of a period per instance, policy, priority and metric (and organisation), from outcome records.

The rule (RULE below, printed in every report): a cycle counts in the period in which it ends, the
instant it stopped read in the time zone of its metric's calendar, as met or breached. A cycle that
started before the period's end and had not ended by then counts as open in it. Cancelled cycles
(solved before any reply was due, a deleted ticket's clocks) count nowhere. in_scope = met + breached
+ open; share_met = met / (met + breached), None when both are 0. Times (mean, median, 90th
percentile by nearest rank) are the business seconds of the met and breached cycles counted.
breaches_by_level counts, among those breached cycles, how many reached each escalation level.

A group's target is that of its highest policy version counted (each cycle is met or breached against
its own version's target, so a version change mid-period mixes both in one row; see test_kpis).

Records carry the instant their clock stopped, not its history: a resolution solved in January and
reopened and solved again in February counts once, in February (open at the end of January).

Speed: one pass over the records with integer milliseconds, then one sort per group.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sla.calendar import BusinessCalendar
from sla.outcomes import Outcome
from sla.periods import ReportPeriod, periods_between

RULE = (
    "A cycle counts in the period in which it ends (its stop instant, in the time zone of its metric's "
    "calendar), as met or breached; one that started before the period's end and had not ended by then "
    "counts as open in it; cancelled cycles count nowhere. in_scope = met + breached + open; share_met = "
    "met / (met + breached); times are business seconds of the met and breached cycles (p90: nearest "
    "rank); breaches_by_level counts the breached cycles that reached each escalation level."
)
BUCKETS = 10  # a distribution's buckets up to the target, each a tenth of it
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def epoch_ms(t: datetime) -> int:
    return (t - _EPOCH) // _MS


@dataclass(frozen=True)
class Window:
    """The report period in one time zone, as epoch milliseconds, with its weeks."""

    zone: ZoneInfo
    start_ms: int
    end_ms: int
    week_starts_ms: list[int]
    week_dates: list[date]


def windows(period: ReportPeriod, calendars: Mapping[str, BusinessCalendar]) -> dict[str, Window]:
    """Calendar name -> the period's window in that calendar's zone (one computation per zone)."""
    by_zone: dict[str, Window] = {}
    out = {}
    for name, cal in calendars.items():
        key = cal.zone.key
        if key not in by_zone:
            start, end = period.bounds(cal.zone)
            weeks = periods_between(start, end, "week", cal.zone)
            starts = [epoch_ms(lo) for _, lo, _ in weeks]
            by_zone[key] = Window(cal.zone, epoch_ms(start), epoch_ms(end), starts, [d for d, _, _ in weeks])
        out[name] = by_zone[key]
    return out


def counted_as(o: Outcome, start_ms: int, end_ms: int) -> str | None:
    """How a record counts in [start, end): "met", "breached", "open", or None (not in it)."""
    if o.outcome == "cancelled" or epoch_ms(o.started_at) >= end_ms:
        return None
    if o.stopped_at is None:
        return "open"
    stop = epoch_ms(o.stopped_at)
    if stop >= end_ms:
        return "open"
    return o.outcome if stop >= start_ms else None


@dataclass
class _Tally:
    met: int = 0
    breached: int = 0
    open: int = 0
    times: list[int] = field(default_factory=list)
    levels: dict[str, int] = field(default_factory=dict)
    version: int = -1
    target_s: int | None = None

    def add(self, o: Outcome, how: str) -> None:
        if how == "open":
            self.open += 1
            return
        if how == "met":
            self.met += 1
        else:
            self.breached += 1
            for level in o.levels_reached:
                self.levels[level] = self.levels.get(level, 0) + 1
        self.times.append(o.business_s)
        version = o.policy_version or 0
        if version > self.version:
            self.version, self.target_s = version, o.target_s


def share(met: int, breached: int) -> float | None:
    return None if met + breached == 0 else met / (met + breached)


def _stats(times: list[int]) -> tuple[float | None, float | None, int | None]:
    """(mean, median, p90 by nearest rank) of sorted `times`."""
    n = len(times)
    if n == 0:
        return None, None, None
    mid = n // 2
    median = times[mid] if n % 2 else (times[mid - 1] + times[mid]) / 2
    return sum(times) / n, median, times[-(-9 * n // 10) - 1]


def _sort_key(key: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple("" if v is None else str(v) for v in key)


def kpi_tables(
    outcomes: Iterable[Outcome],
    period: ReportPeriod,
    calendars: Mapping[str, BusinessCalendar],
    *,
    instance: str | None = None,
    by_organisation: bool = False,
) -> dict[str, list[dict[str, Any]]]:
    """{"kpis": [...], "weekly": [...], "distributions": [...]} in the report's shapes (sla.report)."""
    wins = windows(period, calendars)
    groups: dict[tuple[Any, ...], _Tally] = {}
    dists: dict[tuple[Any, ...], _Tally] = {}
    weekly: dict[tuple[Any, ...], dict[date, list[int]]] = {}
    weeks_of: dict[tuple[Any, ...], set[str]] = {}
    for o in outcomes:
        if instance is not None and o.instance != instance:
            continue
        win = wins.get(o.calendar)
        if win is None:
            raise ValueError(
                f"outcome of ticket {o.ticket_id} ({o.cycle}) names calendar {o.calendar!r}, not given"
            )
        how = counted_as(o, win.start_ms, win.end_ms)
        if how is None:
            continue
        base = (o.instance, o.policy_id, o.priority, o.metric)
        key = (*base, o.organisation if by_organisation else None)
        tally = groups.get(key) or groups.setdefault(key, _Tally())
        tally.add(o, how)
        if by_organisation:
            (dists.get(base) or dists.setdefault(base, _Tally())).add(o, how)
        series = (o.instance, o.priority, o.metric)
        weeks_of.setdefault(series, set()).add(o.calendar)
        if how != "open":
            assert o.stopped_at is not None
            week = win.week_dates[bisect_right(win.week_starts_ms, epoch_ms(o.stopped_at)) - 1]
            counts = weekly.setdefault(series, {}).setdefault(week, [0, 0])
            counts[how == "breached"] += 1
    return {
        "kpis": [_kpi_row(k, t) for k, t in sorted(groups.items(), key=lambda kv: _sort_key(kv[0]))],
        "weekly": _weekly_rows(weekly, weeks_of, wins),
        "distributions": [
            _distribution_row(k[:4], t)
            for k, t in sorted(
                (dists if by_organisation else groups).items(), key=lambda kv: _sort_key(kv[0])
            )
        ],
    }


def _kpi_row(key: tuple[Any, ...], t: _Tally) -> dict[str, Any]:
    t.times.sort()  # the distributions read the same sorted list
    mean, median, p90 = _stats(t.times)
    instance, policy, priority, metric, organisation = key
    return {
        "instance": instance,
        "policy": policy,
        "priority": priority,
        "metric": metric,
        "organisation": organisation,
        "in_scope": t.met + t.breached + t.open,
        "met": t.met,
        "breached": t.breached,
        "open": t.open,
        "share_met": share(t.met, t.breached),
        "target_s": t.target_s,
        "mean_s": mean,
        "median_s": median,
        "p90_s": p90,
        "breaches_by_level": dict(sorted(t.levels.items())),
    }


def _distribution_row(key: tuple[Any, ...], t: _Tally) -> dict[str, Any]:
    """Business times of the met and breached cycles in tenths of the target, and how many went over."""
    times = sorted(t.times)
    instance, policy, priority, metric = key
    target = t.target_s
    buckets = []
    if target is not None:
        below = 0
        for k in range(1, BUCKETS + 1):
            upto = target * k // BUCKETS
            upto_count = bisect_right(times, upto)
            buckets.append({"upto_s": upto, "count": upto_count - below})
            below = upto_count
    over = len(times) - bisect_right(times, target) if target is not None else 0
    return {
        "instance": instance,
        "policy": policy,
        "priority": priority,
        "metric": metric,
        "target_s": target,
        "buckets": buckets,
        "over": over,
    }


def _weekly_rows(
    weekly: dict[tuple[Any, ...], dict[date, list[int]]],
    weeks_of: dict[tuple[Any, ...], set[str]],
    wins: Mapping[str, Window],
) -> list[dict[str, Any]]:
    """Every week of the period for each series seen (weeks without a cycle ended show 0 and None)."""
    rows = []
    for series in sorted(weeks_of, key=_sort_key):
        counts = weekly.get(series, {})
        weeks = sorted({d for cal in weeks_of[series] for d in wins[cal].week_dates})
        instance, priority, metric = series
        for week in weeks:
            met, breached = counts.get(week, (0, 0))
            rows.append({
                "week_start": week.isoformat(),
                "instance": instance,
                "priority": priority,
                "metric": metric,
                "met": met,
                "breached": breached,
                "share_met": share(met, breached),
            })  # fmt: skip
    return rows
