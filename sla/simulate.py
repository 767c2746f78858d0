"""Policy what-if: a period's tickets replayed through the current and a proposed policy set, compared.

Pure: the caller reads the event logs and hands each ticket's events to `Simulation.add`; `now` is a
parameter. Every ticket is evaluated (sla.evaluate) under each side at one instant, the period's end
(or `now` when the period has not ended yet), so a replay of a past period gives the same figures
whenever it runs. Each side's clocks become outcome records (sla.outcomes) counted by the reports'
rule (sla.kpis.RULE: a cycle counts in the period in which it ends, in its calendar's time zone; one
still running at the period's end counts as open; cancelled cycles count nowhere).

Figures per (instance, priority, metric): in scope, met, breached, open, share met, the targets the
counted cycles were measured against, and how many counted cycles reached each escalation level
(warnings included, whatever the cycle's end). The two sides are compared row by row (`compare`).

Speed: a ticket whose every event is older than the period and which was solved, closed or deleted
by then cannot count in it: it is recognised from its timeline and not evaluated (`replay_timeline`
gives None). The timeline is built once per ticket and both sides evaluate it without the effects a
ticket should show (`evaluate_timeline(effects=False)`), sharing what no policy changes (`SharedWork`:
the reply clocks, and each clock's business time along a calendar both sides use). A ticket that both
sides give the same policy (equal, on equal calendars) has the same clocks on both sides: it is
evaluated once and counted on each.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sla.calendar import BusinessCalendar
from sla.evaluate import SharedWork, evaluate_timeline
from sla.events import TicketEvent
from sla.kpis import Window, counted_as, share, windows
from sla.outcomes import Outcome, all_outcomes
from sla.periods import ReportPeriod
from sla.policy import Policy, PolicySet
from sla.timeline import STOPPED, Timeline, build_timeline

SIDES = ("current", "proposed")
RULE = (
    "Both sides evaluate every ticket at the period's end (or now, if earlier). A cycle counts in the period "
    "in which it ends (its stop instant, in the time zone of its metric's calendar), as met or breached; one "
    "still running at the period's end counts as open; cancelled cycles count nowhere. in_scope = met + "
    "breached + open; share_met = met / (met + breached); escalations reached: the counted cycles that had "
    "reached each level."
)
Key = tuple[str, str | None, str]  # (instance, priority, metric)
_MS = timedelta(milliseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class Tally:
    """The counted cycles of one (instance, priority, metric) on one side."""

    met: int = 0
    breached: int = 0
    open: int = 0
    levels: dict[str, int] = field(default_factory=dict)  # level name -> counted cycles that reached it
    targets: set[int] = field(default_factory=set)  # target seconds of the counted cycles

    def add(self, outcome: Outcome, how: str) -> None:
        if how == "met":
            self.met += 1
        elif how == "breached":
            self.breached += 1
        else:
            self.open += 1
        for level in outcome.levels_reached:
            self.levels[level] = self.levels.get(level, 0) + 1
        self.targets.add(outcome.target_s)

    def merge(self, other: Tally) -> None:
        self.met += other.met
        self.breached += other.breached
        self.open += other.open
        for level, count in other.levels.items():
            self.levels[level] = self.levels.get(level, 0) + count
        self.targets |= other.targets

    def figures(self) -> dict[str, Any]:
        return {
            "in_scope": self.met + self.breached + self.open,
            "met": self.met,
            "breached": self.breached,
            "open": self.open,
            "share_met": share(self.met, self.breached),
            "targets_s": sorted(self.targets),
            "levels": dict(sorted(self.levels.items())),
        }


@dataclass
class Counts:
    """What a replay found; parts from several processes merge into one."""

    tickets: int = 0  # evaluated under both sides
    skipped: int = 0  # finished before the period or created after it: not evaluated
    sides: dict[str, dict[Key, Tally]] = field(default_factory=lambda: {s: {} for s in SIDES})

    def merge(self, other: Counts) -> None:
        self.tickets += other.tickets
        self.skipped += other.skipped
        for side, tallies in other.sides.items():
            mine = self.sides[side]
            for key, tally in tallies.items():
                if key in mine:
                    mine[key].merge(tally)
                else:
                    mine[key] = tally


@dataclass(frozen=True)
class Side:
    """One policy set with the calendars it names, and the period's window in each calendar's zone."""

    policies: PolicySet
    calendars: Mapping[str, BusinessCalendar]
    windows: Mapping[str, Window]


def evaluation_instant(
    period: ReportPeriod, calendar_sets: Iterable[Mapping[str, BusinessCalendar]], now: datetime
) -> datetime:
    """The instant every ticket is evaluated at: the latest end of the period in the calendars' zones,
    or `now` if that is earlier (a period not over yet is judged on what happened so far)."""
    if now.utcoffset() is None:
        raise ValueError(f"now={now!r} must be timezone-aware")
    ends = [period.bounds(cal.zone)[1] for cals in calendar_sets for cal in cals.values()]
    end = max(ends, default=period.bounds(ZoneInfo("UTC"))[1])
    return min(now.astimezone(UTC), end)


def earliest_start(wins: Iterable[Window], fallback: datetime) -> datetime:
    """The earliest start of the period among the windows (zones); `fallback` when there are none."""
    starts = [w.start_ms for w in wins]
    return _EPOCH + min(starts) * _MS if starts else fallback


def replay_timeline(events: Sequence[TicketEvent], period_start: datetime, at: datetime) -> Timeline | None:
    """The ticket's timeline at `at`, or None when it cannot count in a period starting at
    `period_start`: nothing had happened by `at`, or every event is older than the period and the ticket
    was solved, closed or deleted by then (all its clocks stopped before the period)."""
    if not events or min(e.at for e in events) > at:
        return None
    tl = build_timeline(events, at)
    if tl is None:
        return None
    if max(e.at for e in events) < period_start and (
        tl.deleted_at is not None or tl.statuses[-1][1] in STOPPED
    ):
        return None
    return tl


class Simulation:
    """Replays tickets through the current and the proposed policies and counts both sides."""

    def __init__(
        self,
        current: tuple[PolicySet, Mapping[str, BusinessCalendar]],
        proposed: tuple[PolicySet, Mapping[str, BusinessCalendar]],
        period: ReportPeriod,
        now: datetime,
    ) -> None:
        self.period = period
        self.at = evaluation_instant(period, (current[1], proposed[1]), now)
        self.sides = {
            name: Side(policies, calendars, windows(period, calendars))
            for name, (policies, calendars) in zip(SIDES, (current, proposed), strict=True)
        }
        self.period_start = earliest_start(
            (w for s in self.sides.values() for w in s.windows.values()), self.at
        )
        self.counts = Counts()
        self._same_cache: dict[tuple[int, int], bool] = {}

    def add(self, instance: str, events: Sequence[TicketEvent]) -> None:
        """Evaluate one ticket (all its events) under both sides and count its cycles.

        A ticket both sides give the same policy (equal, with equal calendars) has the same clocks on
        both: it is evaluated once and counted on each side (a proposal that changes one policy costs
        one evaluation for the tickets of the others)."""
        tl = replay_timeline(events, self.period_start, self.at)
        if tl is None:
            self.counts.skipped += 1
            return
        self.counts.tickets += 1
        current, proposed = self.sides["current"], self.sides["proposed"]
        mine = current.policies.select(tl.attrs, tl.created, self.at, instance)
        theirs = proposed.policies.select(tl.attrs, tl.created, self.at, instance)
        if mine is None and theirs is None:
            return  # no policy on either side: no clock
        shared = SharedWork(tl, self.at)  # what both sides' evaluations have in common, computed once
        if self._same(mine, theirs):
            counted = counted_outcomes(current, tl, self.at, instance, shared)
            self._count("current", counted)
            self._count("proposed", counted)
            return
        self._count("current", counted_outcomes(current, tl, self.at, instance, shared))
        self._count("proposed", counted_outcomes(proposed, tl, self.at, instance, shared))

    def _same(self, mine: Policy | None, theirs: Policy | None) -> bool:
        key = (id(mine), id(theirs))
        same = self._same_cache.get(key)
        if same is None:
            cur, new = self.sides["current"].calendars, self.sides["proposed"].calendars
            same = self._same_cache[key] = (
                mine is not None
                and mine == theirs
                and all(cur.get(m.calendar) == new.get(m.calendar) for m in mine.metrics.values())
            )
        return same

    def _count(self, side: str, counted: list[tuple[Outcome, str]]) -> None:
        tallies = self.counts.sides[side]
        for outcome, how in counted:
            key = (outcome.instance, outcome.priority, outcome.metric)
            tally = tallies.get(key)
            if tally is None:
                tally = tallies[key] = Tally()
            tally.add(outcome, how)

    def take(self) -> Counts:
        """The counts so far, starting afresh (a worker process hands back one part per chunk)."""
        counts, self.counts = self.counts, Counts()
        return counts

    def merge(self, part: Counts) -> None:
        self.counts.merge(part)

    def rows(self) -> list[dict[str, Any]]:
        return compare(self.counts)


def counted_outcomes(
    side: Side, tl: Timeline, at: datetime, instance: str, shared: SharedWork | None = None
) -> list[tuple[Outcome, str]]:
    """The ticket's cycles under `side` that count in the period, with how they count: its clocks as
    `sla.evaluate.evaluate` measures them at `at` from the ticket's timeline at `at` (`shared`: what
    evaluations of this timeline under several sides share). The effects the ticket should show are not
    computed: a replay counts clocks."""
    evaluation = evaluate_timeline(
        side.policies, side.calendars, tl, at, instance=instance, effects=False, shared=shared
    )
    out = []
    for outcome in all_outcomes(evaluation, {}, instance):
        win = side.windows[outcome.calendar]
        how = counted_as(outcome, win.start_ms, win.end_ms)
        if how is not None:
            out.append((outcome, how))
    return out


def _sort_key(key: Key) -> tuple[str, str, str]:
    return (key[0], key[1] or "", key[2])


def compare(counts: Counts) -> list[dict[str, Any]]:
    """One row per (instance, priority, metric) counted on either side: both sides' figures and the
    change from current to proposed (share_met in fractions; None where a side measured nothing)."""
    current, proposed = counts.sides["current"], counts.sides["proposed"]
    rows = []
    for key in sorted(current.keys() | proposed.keys(), key=_sort_key):
        now_fig = (current.get(key) or Tally()).figures()
        new_fig = (proposed.get(key) or Tally()).figures()
        change: dict[str, Any] = {k: new_fig[k] - now_fig[k] for k in ("in_scope", "met", "breached", "open")}
        a, b = now_fig["share_met"], new_fig["share_met"]
        change["share_met"] = None if a is None or b is None else b - a
        levels = sorted(now_fig["levels"].keys() | new_fig["levels"].keys())
        change["levels"] = {lv: new_fig["levels"].get(lv, 0) - now_fig["levels"].get(lv, 0) for lv in levels}
        instance, priority, metric = key
        rows.append({
            "instance": instance, "priority": priority, "metric": metric,
            "current": now_fig, "proposed": new_fig, "change": change,
        })  # fmt: skip
    return rows
