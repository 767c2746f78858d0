"""Evaluate a ticket: its SLA clocks, the effects it should show, and when to look again.

A pure function of the set of events, the policies, the calendars and `now` (see
docs/sla-semantics.md for the rules in an admin's words).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sla.effects import DesiredEffects, EffectKind
from sla.events import EventKind, Role, Status, TicketEvent, sort_by
from sla.metrics import (
    Clock,
    DueBasis,
    Interval,
    MetricState,
    MetricStatus,
    Walks,
    cycle_id,
    measure,
    template_values,
)
from sla.notices import DEFAULT_TEMPLATE
from sla.policy import Policy, PolicySet
from sla.templates import render
from sla.timeline import STOPPED, Timeline, build_timeline

if TYPE_CHECKING:
    from sla.calendar import BusinessCalendar

_ACTION_KINDS = {"priority": EffectKind.SET_PRIORITY, "assignee": EffectKind.SET_ASSIGNEE}


@dataclass(frozen=True)
class Evaluation:
    ticket_id: str
    policy_id: str | None  # None when no policy matches or the ticket is unknown/deleted
    policy_version: int | None
    metrics: Mapping[str, MetricState] = field(default_factory=dict)
    desired: DesiredEffects = DesiredEffects()
    next_check: datetime | None = None  # next instant the result changes without a new event

    def to_dict(self) -> dict[str, Any]:
        d = self.desired
        return {
            "ticket_id": self.ticket_id,
            "policy_id": self.policy_id,
            "policy_version": self.policy_version,
            "metrics": {name: m.to_dict() for name, m in self.metrics.items()},
            "desired": {
                "due": None if d.due is None else d.due.astimezone(UTC).isoformat(),
                "tags_present": sorted(d.tags_present),
                "tags_absent": sorted(d.tags_absent),
                "comments": dict(sorted(d.comments.items())),
                "actions": {k: [str(kind), v] for k, (kind, v) in sorted(d.actions.items())},
                "notices": dict(sorted(d.notices.items())),
            },
            "next_check": None if self.next_check is None else self.next_check.astimezone(UTC).isoformat(),
        }


# Enum members bound to module names: looking a member up on its class costs about 0.1 µs, and these
# are compared for every event of every evaluation.
_COMMENTED, _AGENT, _REQUESTER = EventKind.COMMENTED, Role.AGENT, Role.REQUESTER


def _replier(ev: TicketEvent) -> Role | None:
    """Who wrote the event if it is a public comment (only an agent's or a requester's counts: private
    notes, the connector's own comments and automation never do)."""
    return ev.actor if ev.kind is _COMMENTED and ev.public else None


_RANK = {EventKind.CREATED: 0, EventKind.COMMENTED: 1}


ReplyClocks = tuple[Clock, list[Clock]]  # first response, and the next-reply cycles


class SharedWork:
    """What evaluations of one timeline at one instant under several policy sets share (a replay that
    compares policy sets): the reply clocks, which no policy changes, and each clock's walk along each
    calendar, which only the targets read. Give one to `evaluate_timeline` for each of those calls."""

    def __init__(self, tl: Timeline, now: datetime) -> None:
        self.tl, self.now = tl, now
        self.replies = reply_clocks(tl)
        self.walks: Walks = {}


def reply_clocks(tl: Timeline, applied: frozenset[str] = frozenset()) -> ReplyClocks:
    """First response, and the next-reply cycles; solving the ticket cancels an open reply clock.

    A requester's comment on a solved ticket opens a cycle only when the ticket is reopened (a
    "thanks!" on a solved ticket asks for no reply; a comment that reopens it does).

    A cycle is keyed by the event it follows (the latest agent public reply or reopening before it),
    not by the requester comment that opens it: a requester comment delivered late, timed inside the
    open cycle before its opener, moves the cycle's start but cannot change that event, so the
    cycle's comments are not posted again under a new key. One late delivery could still change
    it: an agent reply timed between that event and the cycle's start. So among the candidates (the
    replies and reopenings since the previous cycle ended) the latest one whose cycle id is in
    `applied` (ids of cycles whose effects were written) wins: the cycle keeps the key its effects
    were written under. Each cycle has its own candidates, so two cycles never share a key.
    """
    first: Clock | None = None
    cycles: list[Clock] = []
    cycle_start: datetime | None = None
    anchor = ""  # event_id of the latest agent public reply or reopening
    since: list[str] = []  # the anchors since the last cycle ended: the next cycle's candidates
    key = ""  # the anchor the open cycle is keyed by
    waiting: bool = False  # a requester wrote while the ticket was solved

    def keyed() -> str:
        for candidate in reversed(since):
            if cycle_id(candidate) in applied:
                return candidate
        return since[-1] if since else anchor

    status = Status.NEW
    seen_from = tl.when(tl.events[0]) if tl.events else tl.created
    if seen_from > tl.created and not any(e.kind is EventKind.CREATED for e in tl.events):
        # First seen after its creation, without its history (installed later, no backfill): whether
        # an agent answered before is unknown, so the first response is not measured (cancelled, no
        # time counted, never breached) rather than breached on a reply the connector never saw.
        first = Clock(tl.created, (), stopped_at=seen_from, cancelled=True)
        # Cycles before any agent reply follow this (not an event, whose id a late delivery could
        # change): a stable key per ticket, so applied_keys can keep it.
        anchor = f"{tl.ticket_id}:first-seen"
        since.append(anchor)
    # At one instant, comments before status changes: "reply and solve" in one update is a reply,
    # and "comment and reopen" opens a cycle at the comment; then the ids' natural order.
    created = tl.created
    for ev in sort_by(tl.events, lambda e: (max(e.at, created), _RANK.get(e.kind, 2))):
        t = max(ev.at, created)  # tl.when(ev)
        replier = _replier(ev)
        new_status = ev.fields.get("status")
        if new_status is not None and new_status is not status:
            was_stopped, status = status in STOPPED, new_status
            if status in STOPPED:
                if first is None:
                    first = Clock(tl.created, ((tl.created, t),), stopped_at=t, cancelled=True)
                if cycle_start is not None:
                    span = ((cycle_start, t),)
                    cycles.append(Clock(cycle_start, span, stopped_at=t, cancelled=True, anchor=key))
                    cycle_start, since = None, []
            elif was_stopped:
                anchor = ev.event_id
                since.append(anchor)
                if waiting:
                    cycle_start, key, waiting = t, keyed(), False
        elif replier is _AGENT:
            waiting, anchor = False, ev.event_id
            if first is None:
                first = Clock(tl.created, ((tl.created, t),), stopped_at=t)
            elif cycle_start is not None:
                cycles.append(Clock(cycle_start, ((cycle_start, t),), stopped_at=t, anchor=key))
                cycle_start, since = None, []
            since.append(anchor)
        elif replier is _REQUESTER and first is not None and cycle_start is None:
            if status in STOPPED:
                waiting = True
            else:
                cycle_start, key = t, keyed()
    if first is None:
        first = Clock(tl.created, ((tl.created, None),))
    if cycle_start is not None:
        cycles.append(Clock(cycle_start, ((cycle_start, None),), anchor=key))
    return first, cycles


_CYCLE_IN_KEY = re.compile(r"next_reply#([0-9a-f]{10})(?![0-9a-f])")


def applied_cycle_ids(applied_keys: Iterable[str]) -> frozenset[str]:
    """The next-reply cycle ids named by ledger keys ("comment:next_reply#3f9a0c12de:warn", ...)."""
    return frozenset(m.group(1) for key in applied_keys for m in _CYCLE_IN_KEY.finditer(key))


def _resolution_clock(tl: Timeline, policy: Policy) -> Clock:
    """Runs from creation, paused in the policy's pause statuses, stopped while solved/closed."""
    active: list[Interval] = []
    paused: list[Interval] = []
    ends = [since for since, _ in tl.statuses[1:]] + [None]
    for (since, status), end in zip(tl.statuses, ends, strict=True):
        bucket = None if status in STOPPED else paused if status in policy.pause_statuses else active
        if bucket is None:
            continue
        if bucket and bucket[-1][1] == since:
            bucket[-1] = (bucket[-1][0], end)  # e.g. pending -> on_hold: one pause
        else:
            bucket.append((since, end))
    last_since, last_status = tl.statuses[-1]
    stopped = last_since if last_status in STOPPED else None
    return Clock(tl.created, tuple(active), tuple(paused), stopped_at=stopped)


def _measure_all(
    tl: Timeline,
    policy: Policy,
    calendars: Mapping[str, BusinessCalendar],
    now: datetime,
    applied: frozenset[str] = frozenset(),
    shared: SharedWork | None = None,
    plan: bool = True,
) -> tuple[dict[str, MetricState], list[datetime], list[DueBasis]]:
    """Each metric's clocks measured at `now`, the future instants at which they change and their due-date
    bases (`plan=False`: the states alone, for a replay that only counts clocks)."""
    first, cycles = reply_clocks(tl, applied) if shared is None else shared.replies
    walks = shared.walks if shared is not None and shared.now == now else None  # walks hold their `now`
    clocks: dict[str, list[Clock]] = {"first_response": [first], "next_reply": cycles}
    if "resolution" in policy.metrics:
        clocks["resolution"] = [_resolution_clock(tl, policy)]
    out: dict[str, MetricState] = {}
    future: list[datetime] = []
    bases: list[DueBasis] = []
    for name, mp in policy.metrics.items():
        tracked = []
        for clock in clocks[name]:
            # A stopped clock keeps the target of the priority it stopped under; a running one
            # takes the current priority's target from its start (as Jira and Zendesk do).
            prio = tl.priority_at(clock.stopped_at) if clock.stopped_at else tl.priority_at(now)
            target = mp.target(prio)
            if target is not None:  # no target for this priority: not tracked
                tracked.append((clock, prio, target))
        if not tracked:
            continue
        cal = calendars.get(mp.calendar)
        if cal is None:
            msg = f"policy {policy.id!r} v{policy.version} uses calendar {mp.calendar!r}, not given"
            raise ValueError(f"evaluate: {msg}")
        levels = policy.levels(name)
        states: list[MetricState] = []
        for clock, prio, target in tracked:
            # Cycles are numbered among those shown: one stopped under a priority with no target is
            # not tracked, and the next must not be numbered as if it were (cycle 2 with no cycle 1).
            # The last one shown carries the others.
            cycle = len(states) + 1 if name == "next_reply" else None
            past = tuple(states) if len(states) == len(tracked) - 1 else ()
            state, times, basis = measure(
                name, clock, target, prio, mp.calendar, cal, levels, now, cycle, past, plan=plan, walks=walks
            )
            states.append(state)
            if basis is not None:
                future.extend(times)
                bases.append(basis)
        out[name] = states[-1]
    return out, future, bases


def _due(bases: list[DueBasis]) -> datetime | None:
    """The ticket's due date: the earliest deadline of the clocks counting now. When none counts
    (solved, paused), the deadline the ticket showed when its clocks last counted: the earliest of those
    that stopped counting last, as they were heading for it then; when none ever counted, the earliest
    deadline its clocks would have had from their start. So the due date written is a function of the
    set of events, whatever order they arrived in (the connector never clears the field: None only when
    no clock is tracked)."""
    counting = [b.deadline for b in bases if b.counting]
    if counting:
        return min(counting)
    ended = [b for b in bases if b.counted_until is not None]
    if ended:
        last = max(b.counted_until for b in ended if b.counted_until is not None)
        return min(b.deadline for b in ended if b.counted_until == last)
    return min((b.deadline for b in bases), default=None)


def effect_key(policy_id: str, clock_key: str, level: str) -> str:
    """Key of a level's comment (and prefix of its actions' keys): "standard/resolution:breach",
    "vip/next_reply#3f9a0c12de:late". Naming the policy lets a ticket that moves to another policy get
    that policy's levels even when their names are the same; the version is left out, so a ticket that
    stays on one policy keeps its keys when a new version recalculates it."""
    return f"{policy_id}/{clock_key}:{level}"


def _all_clocks(metrics: Mapping[str, MetricState]) -> list[MetricState]:
    return [c for m in metrics.values() for c in (*m.past_cycles, m)]


def _desired(
    tl: Timeline,
    policy: Policy,
    policies: PolicySet,
    calendars: Mapping[str, BusinessCalendar],
    metrics: Mapping[str, MetricState],
    due: datetime | None,
    applied_keys: frozenset[str] = frozenset(),
) -> DesiredEffects:
    """What the ticket should show. One-shot effects are keyed by `effect_key`; a level whose effect
    an earlier release recorded under its key without the policy (`resolution:breach`) keeps that key,
    so an upgrade posts nothing twice (the key is taken to be the current policy's)."""
    present: set[str] = set()
    comments: dict[str, str] = {}
    actions: dict[str, tuple[EffectKind, str]] = {}
    notices: dict[str, str] = {}
    levels = {name: policy.levels(name) for name in metrics}  # once per metric, not per cycle
    for state in _all_clocks(metrics):
        is_open = state.stopped_at is None
        for level, ls in zip(levels[state.name], state.escalations, strict=True):
            if not ls.reached:
                continue
            # Breach levels are a record of what happened and keep their tags; warnings go once
            # the clock stops. Comments and actions are only wanted while the clock still runs.
            if is_open or level.at_or_after_breach:
                present.update(level.values("tag"))
            if not is_open:
                continue
            key = effect_key(policy.id, state.key, level.name)
            legacy = f"{state.key}:{level.name}"  # written before keys named the policy
            shown = str(tl.attrs.get("key") or tl.ticket_id)  # {ticket}: the key people use, else the id
            for body in level.values("comment"):
                cal = calendars[state.calendar]
                name = legacy if f"comment:{legacy}" in applied_keys else key
                comments[name] = render(body, template_values(state, level, shown, cal))
            for channel in level.values("notify"):  # one per channel and level (checked at load time)
                text = policies.notice_templates.get(channel, DEFAULT_TEMPLATE)
                notices[f"{key}:{channel}"] = render(
                    text, template_values(state, level, shown, calendars[state.calendar])
                )
            for kind, effect in _ACTION_KINDS.items():
                for value in level.values(kind):
                    name = legacy if f"action:{legacy}:{kind}" in applied_keys else key
                    actions[f"{name}:{kind}"] = (effect, value)
    return DesiredEffects(
        due=due,
        tags_present=frozenset(present),
        tags_absent=policies.managed_tags - present,
        comments=comments,
        actions=actions,
        notices=notices,
    )


def evaluate(
    policies: PolicySet,
    calendars: Mapping[str, BusinessCalendar],
    events: Iterable[TicketEvent],
    now: datetime,
    *,
    instance: str | None = None,
    applied_keys: Iterable[str] = (),
) -> Evaluation:
    """The SLA state of one ticket at `now`, from the set of its events.

    `applied_keys`: the keys of the ticket's ledger (effects already written). Two things are read
    from them: next-reply cycle ids, so that a cycle keeps the key its effects were written under
    when a late agent reply would otherwise re-key it (see `reply_clocks`), and one-shot keys
    written before keys named the policy (see `_desired`).
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"evaluate: now={now!r} must be timezone-aware")
    tl = build_timeline(events, now)
    if tl is None:
        return Evaluation(ticket_id="", policy_id=None, policy_version=None)
    return evaluate_timeline(policies, calendars, tl, now, instance=instance, applied_keys=applied_keys)


def evaluate_timeline(
    policies: PolicySet,
    calendars: Mapping[str, BusinessCalendar],
    tl: Timeline,
    now: datetime,
    *,
    instance: str | None = None,
    applied_keys: Iterable[str] = (),
    effects: bool = True,
    shared: SharedWork | None = None,
) -> Evaluation:
    """`evaluate` of a timeline built by `build_timeline(events, now)` at this same `now`: a replay that
    builds it anyway (to pick the tickets of a period) need not build it again for each policy set.

    For replays that only count clocks (`simulate`): `effects=False` leaves out what the ticket should
    show and when to look again (`desired` empty, `next_check` None); `shared`, a `SharedWork(tl, now)`
    given to each evaluation of this timeline under several policy sets, computes what they have in
    common once. Neither changes `metrics`."""
    keys = frozenset(applied_keys)
    applied = applied_cycle_ids(keys)
    if shared is not None and (shared.tl is not tl or shared.now != now or applied):
        raise ValueError("evaluate_timeline: `shared` is for this timeline at this `now`, no applied keys")
    policy = policies.select(tl.attrs, tl.created, now, instance)
    if tl.deleted_at is not None:
        # Gone: every clock is cancelled as of the deletion, and nothing is written back.
        metrics: dict[str, MetricState] = {}
        if policy is not None:
            measured, _, _ = _measure_all(tl, policy, calendars, tl.deleted_at, applied, shared, plan=False)
            metrics = {name: _cancel(m, tl.deleted_at) for name, m in measured.items()}
        return Evaluation(tl.ticket_id, None, None, metrics)
    change = _policy_change(policies, tl, now, instance, policy) if effects else None
    if policy is None:
        desired = DesiredEffects(tags_absent=policies.managed_tags) if effects else DesiredEffects()
        return Evaluation(tl.ticket_id, None, None, desired=desired, next_check=change)
    metrics, future, bases = _measure_all(tl, policy, calendars, now, applied, shared, effects)
    if not effects:
        return Evaluation(tl.ticket_id, policy.id, policy.version, metrics)
    desired = _desired(tl, policy, policies, calendars, metrics, _due(bases), keys)
    later = [t for t in (*future, change) if t is not None and t > now]
    return Evaluation(tl.ticket_id, policy.id, policy.version, metrics, desired, min(later, default=None))


def _policy_change(
    policies: PolicySet, tl: Timeline, now: datetime, instance: str | None, current: Policy | None
) -> datetime | None:
    """The first instant after `now` at which another policy or version governs the ticket with no new
    event: a `recalculate` version taking effect (the ticket's fields and creation stay as they are)."""
    ident = None if current is None else (current.id, current.version)
    for t in policies.recalculations_after(now):
        chosen = policies.select(tl.attrs, tl.created, t, instance)
        if (None if chosen is None else (chosen.id, chosen.version)) != ident:
            return t
    return None


def _cancel(state: MetricState, at: datetime) -> MetricState:
    past = tuple(_cancel(c, at) for c in state.past_cycles)
    return state._replace(
        status=MetricStatus.CANCELLED,
        stopped_at=state.stopped_at or at,
        deadline=None,
        breached_at=None,  # a deleted ticket counts in no report, breached or not
        running=False,
        past_cycles=past,
    )
