"""Target review: targets suggested from the business times a period's cycles actually took.

Pure: the caller hands in outcome records (sla.outcomes) of the current policies. Per (policy,
priority, metric), the met and breached cycles that ended in the period (sla.kpis.counted_as: a
cycle counts where it ends, in its calendar's time zone; open and cancelled cycles are left out)
give their business times. The suggestion is the chosen percentile of those times (nearest rank: the
smallest time at least that share of the cycles took no longer than), rounded **up** to a step that
suits its size, so that at least that share would have been met:

| percentile time      | rounded up to a multiple of |
|----------------------|-----------------------------|
| up to 1h             | 5 minutes (at least 5m)      |
| over 1h, up to 2h    | 15 minutes                  |
| over 2h, up to 8h    | 30 minutes                  |
| over 8h, up to 16h   | 1 hour                      |
| over 16h             | 4 hours (half a business day of 8h) |

A suggestion "would have breached" the cycles whose business time exceeds it. That is the evaluation's
rule except at one edge: a cycle that took exactly the suggestion but stopped outside business hours,
after the deadline (a deadline at closing time, solved in the evening), is breached when evaluated
and counted met here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

from sla.calendar import BusinessCalendar
from sla.durations import format_duration
from sla.evaluate import evaluate_timeline
from sla.events import TicketEvent
from sla.kpis import Window, counted_as, share, windows
from sla.outcomes import Outcome, ended_outcomes
from sla.periods import ReportPeriod
from sla.policy import PolicySet
from sla.simulate import earliest_start, evaluation_instant, replay_timeline

MINUTE, HOUR = 60, 3600
#: (up to this many seconds, round up to a multiple of this many); the last step has no bound.
STEPS: tuple[tuple[int | None, int], ...] = (
    (HOUR, 5 * MINUTE),
    (2 * HOUR, 15 * MINUTE),
    (8 * HOUR, 30 * MINUTE),
    (16 * HOUR, HOUR),
    (None, 4 * HOUR),
)
Key = tuple[str | None, str | None, str]  # (policy id, priority, metric)


def _steps_text() -> str:
    def text(seconds: int) -> str:
        return format_duration(timedelta(seconds=seconds))

    parts = [f"to {text(step)} up to {text(bound)}" for bound, step in STEPS if bound is not None]
    return ", ".join(parts) + f", else to {text(STEPS[-1][1])}"


#: The rounding in words, for the command's output: "to 5m up to 1h, ..., else to 4h".
ROUNDING = _steps_text()


def round_target(seconds: int) -> int:
    """`seconds` rounded up to the step of its size (table in the module docstring); at least 5m."""
    if seconds < 0:
        raise ValueError(f"round_target: {seconds} seconds is negative")
    for bound, step in STEPS:
        if bound is None or seconds <= bound:
            return max(step, -(-seconds // step) * step)
    raise AssertionError("the last step has no bound")


def parse_percentile(text: str) -> Fraction:
    """A percentile as given on the command line: a number above 0 and at most 100 ("90", "99.5")."""
    try:
        value = Fraction(text.strip())
    except (ValueError, ZeroDivisionError, AttributeError):
        raise ValueError(f"percentile {text!r} is not a number (expected e.g. 90 or 99.5)") from None
    if not 0 < value <= 100:
        raise ValueError(f"percentile {text!r} must be above 0 and at most 100")
    return value


def nearest_rank(ordered: list[int], percentile: Fraction) -> int:
    """The nearest-rank percentile of sorted, non-empty `ordered`: the ceil(p/100 * n)-th value."""
    if not ordered:
        raise ValueError("nearest_rank: no values")
    rank = -(-percentile * len(ordered) // 100)  # ceil, exact with a Fraction
    return ordered[max(int(rank), 1) - 1]


@dataclass
class Times:
    """The counted cycles of one (policy, priority, metric): business seconds, and how many breached."""

    seconds: list[int] = field(default_factory=list)
    breached: int = 0

    def merge(self, other: Times) -> None:
        self.seconds.extend(other.seconds)
        self.breached += other.breached


def collect(
    outcomes: Iterable[Outcome], wins: Mapping[str, Window], into: dict[Key, Times] | None = None
) -> dict[Key, Times]:
    """The business times of the met and breached cycles ended in the period, per (policy, priority,
    metric). `wins`: calendar name -> the period in its zone (sla.kpis.windows)."""
    out: dict[Key, Times] = {} if into is None else into
    for o in outcomes:
        win = wins.get(o.calendar)
        if win is None:
            raise ValueError(
                f"outcome of ticket {o.ticket_id} ({o.cycle}) names calendar {o.calendar!r}, not given"
            )
        how = counted_as(o, win.start_ms, win.end_ms)
        if how not in ("met", "breached"):
            continue
        key = (o.policy_id, o.priority, o.metric)
        times = out.get(key)
        if times is None:
            times = out[key] = Times()
        times.seconds.append(o.business_s)
        times.breached += how == "breached"
    return out


def current_target(policies: PolicySet, key: Key, now: datetime) -> int | None:
    """The target, in seconds, a ticket created `now` gets under the policy (its version in force now)."""
    policy_id, priority, metric = key
    if policy_id is None:
        return None
    policy = policies.governing_version(policy_id, now, now)
    if policy is None or metric not in policy.metrics:
        return None
    target = policy.metrics[metric].target(priority)
    return None if target is None else int(target.total_seconds())


def suggestions(
    times: Mapping[Key, Times], policies: PolicySet, now: datetime, percentile: Fraction
) -> list[dict[str, Any]]:
    """One row per (policy, priority, metric) with cycles: what happened, the percentile, the
    suggested target, and how many of the cycles it would have breached."""
    rows = []
    for key in sorted(times, key=lambda k: tuple("" if v is None else v for v in k)):
        t = times[key]
        ordered = sorted(t.seconds)
        n = len(ordered)
        if n == 0:
            continue
        raw = nearest_rank(ordered, percentile)
        suggested = round_target(raw)
        over = sum(1 for s in ordered if s > suggested)
        policy_id, priority, metric = key
        rows.append({
            "policy": policy_id, "priority": priority, "metric": metric,
            "cycles": n, "met": n - t.breached, "breached": t.breached,
            "share_met": share(n - t.breached, t.breached),
            "current_target_s": current_target(policies, key, now),
            "percentile": float(percentile), "percentile_s": raw,
            "suggested_s": suggested, "would_breach": over, "share_met_if": share(n - over, over),
        })  # fmt: skip
    return rows


@dataclass
class Found:
    """What a review pass found; parts from several processes merge into one."""

    tickets: int = 0  # evaluated
    skipped: int = 0  # finished before the period or created after it: not evaluated
    times: dict[Key, Times] = field(default_factory=dict)

    def merge(self, other: Found) -> None:
        self.tickets += other.tickets
        self.skipped += other.skipped
        for key, t in other.times.items():
            if key in self.times:
                self.times[key].merge(t)
            else:
                self.times[key] = t


class Review:
    """Evaluates tickets under the current policies at the period's end (or `now`) and keeps the
    business times of their cycles that ended in the period."""

    def __init__(
        self,
        policies: PolicySet,
        calendars: Mapping[str, BusinessCalendar],
        period: ReportPeriod,
        now: datetime,
    ) -> None:
        self.policies, self.calendars, self.now = policies, calendars, now
        self.at = evaluation_instant(period, (calendars,), now)
        self.windows = windows(period, calendars)
        self.period_start = earliest_start(self.windows.values(), self.at)
        self.found = Found()

    def add(self, instance: str, events: Sequence[TicketEvent]) -> None:
        tl = replay_timeline(events, self.period_start, self.at)
        if tl is None:
            self.found.skipped += 1
            return
        self.found.tickets += 1
        evaluation = evaluate_timeline(
            self.policies, self.calendars, tl, self.at, instance=instance, effects=False
        )
        collect(ended_outcomes(evaluation, {}, instance), self.windows, self.found.times)

    def take(self) -> Found:
        found, self.found = self.found, Found()
        return found

    def merge(self, part: Found) -> None:
        self.found.merge(part)

    def rows(self, percentile: Fraction) -> list[dict[str, Any]]:
        return suggestions(self.found.times, self.policies, self.now, percentile)
