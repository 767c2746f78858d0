"""One SLA clock measured on a business calendar: elapsed, deadline, status and escalation levels.

A clock is the intervals during which it ran (the last may still be open), the intervals during
which it was paused, and whether and how it stopped. Every instant that matters (deadline, each
escalation level) is "the instant at which the elapsed business time reaches a threshold", found
by walking the clock's intervals once with the calendar's interval arithmetic.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple

from sla.calendar import from_micros
from sla.durations import format_duration
from sla.policy import EscalationLevel

if TYPE_CHECKING:
    from sla.calendar import BusinessCalendar

Interval = tuple[datetime, datetime | None]  # end None: still going at `now`
ZERO = timedelta(0)
_US = timedelta(microseconds=1)


class MetricStatus(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    MET = "met"
    BREACHED = "breached"  # stays breached once the deadline passed, even if met later
    CANCELLED = "cancelled"  # ticket deleted, or solved before any reply was due


@dataclass(frozen=True)
class Clock:
    started_at: datetime
    active: tuple[Interval, ...]  # when the clock ran; only the last may be open
    paused: tuple[Interval, ...] = ()
    stopped_at: datetime | None = None
    cancelled: bool = False  # how it stopped: cancelled rather than met
    anchor: str | None = None  # next_reply: event_id of the agent reply or reopening the cycle follows


@dataclass(frozen=True)
class DueBasis:
    """What one clock says about the ticket's due date (see evaluate._due)."""

    counting: bool  # the clock counts at `now`
    counted_until: datetime | None  # end of its last counting interval; None: counting now, or never counted
    deadline: datetime  # when it reaches its target counting on from its last interval (or from its start)


class LevelState(NamedTuple):  # a named tuple for speed, as MetricState
    name: str
    due_at: datetime | None  # None while the clock is paused or stopped before reaching it
    reached: bool

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "due_at": _iso(self.due_at), "reached": self.reached}


class MetricState(NamedTuple):
    """One clock measured at `now`. A named tuple, not a frozen dataclass: a replay measures a dozen
    clocks per ticket, and a frozen dataclass's constructor costs six times a tuple's (one
    object.__setattr__ per field). Immutable all the same; `_replace` makes a changed copy."""

    name: str
    target: timedelta | None
    calendar: str
    priority: str | None
    started_at: datetime
    stopped_at: datetime | None
    paused: tuple[Interval, ...]
    elapsed: timedelta
    remaining: timedelta | None  # never negative; 0 once breached
    deadline: datetime | None  # None while paused, or when stopped before reaching the target
    status: MetricStatus
    breached_at: datetime | None
    escalations: tuple[LevelState, ...] = ()
    running: bool = False  # the clock is counting now (running, or breached and still counting)
    cycle: int | None = None  # next_reply: 1-based index of this cycle, for display
    cycle_id: str | None = None  # next_reply: stable id of this cycle (see cycle_id())
    past_cycles: tuple[MetricState, ...] = ()  # next_reply: the cycles before this one

    @property
    def key(self) -> str:
        """This clock's key: "resolution", or "next_reply#3f9a0c12de" for a cycle. Effect keys are
        "<policy id>/<clock key>:<level>" (see evaluate.effect_key); the connector counts a clock's breach
        once under "b:<clock key>".

        Cycles are keyed by their stable id, not their number: an earlier cycle that arrives late
        renumbers the later ones, and a key that moved would post their comments again. The id comes
        from the event the cycle follows (see evaluate.reply_clocks), which a late requester comment
        cannot change.
        """
        if self.cycle_id is not None:
            return f"{self.name}#{self.cycle_id}"
        return self.name if self.cycle is None else f"{self.name}#{self.cycle}"

    def to_dict(self) -> dict[str, Any]:
        out = {
            "name": self.name,
            "target": _secs(self.target),
            "calendar": self.calendar,
            "priority": self.priority,
            "started_at": _iso(self.started_at),
            "stopped_at": _iso(self.stopped_at),
            "paused": [[_iso(a), _iso(b)] for a, b in self.paused],
            "elapsed": _secs(self.elapsed),
            "remaining": _secs(self.remaining),
            "deadline": _iso(self.deadline),
            "status": self.status.value,
            "breached_at": _iso(self.breached_at),
            "escalations": [lv.to_dict() for lv in self.escalations],
        }
        if self.cycle is not None:
            out["cycle"] = self.cycle
            out["cycle_id"] = self.cycle_id
            out["past_cycles"] = [c.to_dict() for c in self.past_cycles]
        return out


@lru_cache(maxsize=4096)
def cycle_id(anchor: str) -> str:
    """Short id of a next-reply cycle from the event_id of the agent reply or reopening it follows:
    safe in tags and markers. Cached: every evaluation asks it again for the same few anchors."""
    return hashlib.sha256(anchor.encode()).hexdigest()[:10]


#: level.threshold(target) by (id(level), target). The Fraction arithmetic costs microseconds and
#: every evaluation asks again for the same few pairs; hashing a level by value would cost as much,
#: so the key is its id, and the entry keeps the level itself so that its id cannot be reused while
#: the entry lives (checked on each hit).
_THRESHOLDS: dict[tuple[int, timedelta], tuple[EscalationLevel, timedelta]] = {}
_MAX_THRESHOLDS = 4096


def threshold(level: EscalationLevel, target: timedelta) -> timedelta:
    """`level.threshold(target)`, cached."""
    key = (id(level), target)
    hit = _THRESHOLDS.get(key)
    if hit is not None and hit[0] is level:
        return hit[1]
    value = level.threshold(target)
    if len(_THRESHOLDS) >= _MAX_THRESHOLDS:  # bounded memory; clear() is safe for threads
        _THRESHOLDS.clear()
    _THRESHOLDS[key] = (level, value)
    return value


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.astimezone(UTC).isoformat()


def _secs(d: timedelta | None) -> int | None:
    return None if d is None else int(d.total_seconds())


class _Walk:
    """Elapsed business time along a clock, and the instant it reaches a given amount.

    Works in the calendar's UTC microseconds: each interval's ends are converted once, and each
    amount is looked up once (the deadline, a level at 100% and the projected deadline are often the
    same amount)."""

    def __init__(self, clock: Clock, cal: BusinessCalendar, now: datetime) -> None:
        self.clock, self.cal = clock, cal
        now_us = cal.micros(now, "now")
        # Per counting interval: (start, start µs, business µs before it, its business µs, open).
        self.steps: list[tuple[datetime, int, int, int, bool]] = []
        before = 0
        for a, b in clock.active:
            a_us = cal.micros(a, "interval start")
            span = cal.between_micros(a_us, now_us if b is None else cal.micros(b, "interval end"))
            self.steps.append((a, a_us, before, span, b is None))
            before += span
        self.elapsed = timedelta(microseconds=before)
        self.open = bool(clock.active) and clock.active[-1][1] is None
        self._reached: dict[timedelta, datetime | None] = {}

    def reach(self, amount: timedelta) -> datetime | None:
        """When the elapsed time reaches `amount`: past, or projected if still running; else None."""
        if amount in self._reached:
            return self._reached[amount]
        at = self._reach(amount)
        self._reached[amount] = at
        return at

    def _reach(self, amount: timedelta) -> datetime | None:
        if amount <= ZERO:
            return self.clock.started_at
        wanted = amount // _US
        for a, a_us, before, span, is_open in self.steps:
            if is_open or wanted <= before + span:
                return self._add(a, a_us, wanted - before)
        return None

    def projected(self, amount: timedelta) -> datetime:
        """When the elapsed time reaches `amount` had the clock gone on counting from the start of its
        last counting interval: the deadline it showed while it last counted (from its start if it
        never counted). For a clock still counting, `reach`."""
        # Where `reach` finds an instant, it is this one (it stops at the same interval or earlier);
        # otherwise the last interval (or the start) carries on.
        at = self.reach(amount)
        if at is not None:
            return at
        if not self.steps:
            return self.cal.add(self.clock.started_at, amount)
        a, a_us, before, _, _ = self.steps[-1]
        return self._add(a, a_us, amount // _US - before)

    def _add(self, a: datetime, a_us: int, wanted: int) -> datetime:
        """`cal.add(a, wanted µs)` for wanted > 0, from a's µs already known."""
        end = self.cal.add_micros(a_us, wanted)
        if end is None:  # beyond the calendar's search: its own error says why
            return self.cal.add(a, timedelta(microseconds=wanted))
        return from_micros(end, a.tzinfo)


_BREACHED, _CANCELLED, _MET = MetricStatus.BREACHED, MetricStatus.CANCELLED, MetricStatus.MET
_RUNNING, _PAUSED = MetricStatus.RUNNING, MetricStatus.PAUSED
Walks = dict[tuple[Clock, int], _Walk]  # by clock (its value) and id of the calendar; one `now`


def measure(
    name: str,
    clock: Clock,
    target: timedelta,
    priority: str | None,
    cal_name: str,
    cal: BusinessCalendar,
    levels: tuple[EscalationLevel, ...],
    now: datetime,
    cycle: int | None = None,
    past_cycles: tuple[MetricState, ...] = (),
    *,
    plan: bool = True,
    walks: Walks | None = None,
) -> tuple[MetricState, list[datetime], DueBasis | None]:
    """The state of one clock at `now`, the future instants (> now) at which it will change, and what it
    says about the ticket's due date. `past_cycles`: a next-reply cycle's earlier cycles, to carry.
    `plan=False` (a replay that only counts clocks): no future instants and no due-date basis.
    `walks`: the clock walks of earlier calls at this same `now`, to reuse (and add to): a clock measured
    under several targets on one calendar (a replay under two policy sets) is walked once."""
    if walks is None:
        walk = _Walk(clock, cal, now)
    else:
        walk = walks.get((clock, id(cal)))
        if walk is None or walk.cal is not cal:  # (a calendar's id can be reused once it is gone)
            walk = walks[(clock, id(cal))] = _Walk(clock, cal, now)
    stop = clock.stopped_at
    # A level (or the deadline) is reached when its instant has come and the clock had not stopped
    # before it: stopping exactly at the instant is in time (a reply at the deadline meets it).
    deadline = walk.reach(target)
    breached = deadline is not None and deadline <= now and (stop is None or deadline < stop)
    if breached:
        status = _BREACHED
    elif stop is not None:
        status = _CANCELLED if clock.cancelled else _MET
    else:
        status = _RUNNING if walk.open else _PAUSED
    future: list[datetime] = []
    level_states = []
    for level in levels:
        due = walk.reach(threshold(level, target))
        hit = due is not None and due <= now and (stop is None or due < stop)
        level_states.append(LevelState(level.name, due, hit))
        if plan and walk.open and due is not None and due > now:
            future.append(due)
    if plan and walk.open and deadline is not None and deadline > now:
        future.append(deadline)
    elapsed = walk.elapsed
    state = MetricState(  # positional: in the order of MetricState's fields
        name,
        target,
        cal_name,
        priority,
        clock.started_at,
        stop,
        clock.paused,
        elapsed,
        max(target - elapsed, ZERO),  # remaining
        deadline if (breached or status is _RUNNING) else None,  # deadline
        status,
        deadline if breached else None,  # breached_at
        tuple(level_states),
        walk.open,  # running
        cycle,
        None if cycle is None or clock.anchor is None else cycle_id(clock.anchor),
        past_cycles,
    )
    if not plan:
        return state, [], None
    until = clock.active[-1][1] if clock.active else None
    return state, future, DueBasis(walk.open, until, walk.projected(target))


def template_values(
    state: MetricState, level: EscalationLevel, ticket_id: str, cal: BusinessCalendar
) -> dict[str, str]:
    """Placeholders of a level's comment, as of the instant the level is reached (stable text)."""
    assert state.target is not None
    at = threshold(level, state.target)
    zone = cal.zone
    deadline = state.deadline
    return {
        "ticket": ticket_id,
        "metric": state.name.replace("_", " "),
        "level": level.name,
        "priority": state.priority or "",
        "target": format_duration(state.target),
        "deadline": deadline.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z") if deadline else "(paused)",
        "elapsed": format_duration(at),
        "remaining": format_duration(max(state.target - at, ZERO)),
    }
