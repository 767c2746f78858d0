"""Outcome records: one line per SLA clock (and per next-reply cycle) of a ticket, for reports.

The per-ticket job keeps a record when a clock stops (met, breached, cancelled); clocks still running
are read from the event logs when a report is made (`open_outcomes`). A record is the few figures a
report needs, nothing it would have to re-evaluate: reports over a year of tickets then only loop.

A record is keyed by (instance, ticket_id, cycle): a reopened ticket's resolution clock runs again
under the same key, so its newer record (open, then ended again) replaces the older one.

Ticket attributes are read as the adapters name them: "organization", "brand", "group" (None where
the product does not give them; no adapter gives an organisation yet).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sla.evaluate import Evaluation
from sla.metrics import MetricState, MetricStatus

METRIC_NAMES = frozenset({"first_response", "next_reply", "resolution"})
ENDED = frozenset({"met", "breached", "cancelled"})
OPEN = frozenset({"open", "breached"})  # "breached": still running, already past its deadline
_OUTCOMES = ENDED | OPEN
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_SECOND = timedelta(seconds=1)
_ROW_LENGTH = 18
_TICKET, _CYCLE = 1, 11  # positions in a row; a stored row leaves them (and the instance, 0) out
# Positions of the start and stop instants in a stored row (`to_stored_row`).
STORED_START, STORED_STOP = 9, 10


class Outcome(NamedTuple):
    """One clock's record. A named tuple, not a frozen dataclass: reports and replays build hundreds of
    thousands, and a frozen dataclass's constructor costs six times a tuple's (one object.__setattr__
    per field). Immutable all the same; `_replace` makes a changed copy."""

    instance: str
    ticket_id: str
    display_key: str | None  # the Jira issue key; None where the id is what people use
    policy_id: str | None  # None only for a deleted ticket's cancelled clocks
    policy_version: int | None
    priority: str | None
    organisation: str | None
    brand: str | None
    group: str | None
    metric: str  # first_response | next_reply | resolution
    calendar: str  # the metric's calendar: its time zone decides the period a cycle counts in
    cycle: str  # MetricState.key: "resolution", "next_reply#3f9a0c12de"
    started_at: datetime
    stopped_at: datetime | None  # None while the clock still runs
    business_s: int  # business seconds elapsed (up to the stop, or to `now` for open ones)
    target_s: int
    outcome: str  # met | breached | cancelled; open ones: open | breached
    levels_reached: tuple[str, ...] = ()

    @property
    def ended(self) -> bool:
        return self.stopped_at is not None

    def to_row(self) -> list[Any]:
        """A compact JSON-able list (about 200 bytes as JSON); instants in epoch milliseconds."""
        return [
            self.instance,
            self.ticket_id,
            self.display_key,
            self.policy_id,
            self.policy_version,
            self.priority,
            self.organisation,
            self.brand,
            self.group,
            self.metric,
            self.calendar,
            self.cycle,
            epoch_ms(self.started_at),
            None if self.stopped_at is None else epoch_ms(self.stopped_at),
            self.business_s,
            self.target_s,
            self.outcome,
            list(self.levels_reached),
        ]

    def to_stored_row(self) -> list[Any]:
        """`to_row` without the instance, ticket and cycle: where it is stored, its key holds them."""
        row = self.to_row()
        return row[_TICKET + 1 : _CYCLE] + row[_CYCLE + 1 :]

    @classmethod
    def from_stored_row(cls, instance: str, ticket: str, cycle: str, row: Sequence[Any]) -> Outcome:
        """The record `to_stored_row` gave; ValueError naming the row when it is not one."""
        if not isinstance(row, list | tuple) or len(row) != _ROW_LENGTH - 3:
            raise ValueError(f"outcome row {row!r:.200}: expected a list of {_ROW_LENGTH - 3} values")
        middle = _CYCLE - _TICKET - 1
        return cls.from_row([instance, ticket, *row[:middle], cycle, *row[middle:]])

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Outcome:
        """The record `to_row` gave; ValueError naming the row when it is not one."""
        if not isinstance(row, list | tuple) or len(row) != _ROW_LENGTH:
            raise ValueError(f"outcome row {row!r:.200}: expected a list of {_ROW_LENGTH} values")
        (instance, ticket, key, policy, version, prio, org, brand, group, metric, cal, cycle,
         start, stop, used, target, outcome, levels) = row  # fmt: skip
        if metric not in METRIC_NAMES:
            raise ValueError(f"outcome row {row!r:.200}: unknown metric {metric!r}")
        if outcome not in _OUTCOMES or (stop is None and outcome not in OPEN):
            raise ValueError(f"outcome row {row!r:.200}: outcome {outcome!r} does not fit stop {stop!r}")
        if not (isinstance(start, int) and isinstance(used, int) and isinstance(target, int)) or not (
            stop is None or isinstance(stop, int)
        ):
            raise ValueError(f"outcome row {row!r:.200}: start, stop, business and target must be integers")
        return cls(
            instance, ticket, key, policy, version, prio, org, brand, group, metric, cal, cycle,
            from_epoch_ms(start), None if stop is None else from_epoch_ms(stop),
            used, target, outcome, tuple(levels),
        )  # fmt: skip


def epoch_ms(t: datetime) -> int:
    """How records hold instants: epoch milliseconds, truncated (an instant stays in the period it
    fell in)."""
    return (t - _EPOCH) // _MS


def from_epoch_ms(ms: int) -> datetime:
    return _EPOCH + ms * _MS


def clocks(evaluation: Evaluation) -> list[MetricState]:
    """Every clock of an evaluation: each metric's current one and its past next-reply cycles."""
    return [c for m in evaluation.metrics.values() for c in (*m.past_cycles, m)]


def display_key_of(attrs: Mapping[str, Any], fallback: str | None = None) -> str | None:
    """How people name the ticket: its `key` field (a Jira issue key), else `fallback`."""
    return _text(attrs.get("key")) or fallback


_ENDED_AS = {MetricStatus.MET: "met", MetricStatus.BREACHED: "breached"}  # any other stop: cancelled


def _records(
    evaluation: Evaluation,
    attrs: Mapping[str, Any],
    instance: str,
    display_key: str | None,
    ended: bool | None,
) -> list[Outcome]:
    """The records of the evaluation's clocks: the ended ones (`ended` True), the open ones (False), or
    both (None). Replays make these for every ticket of a period: the ticket's attributes are read once
    and the records built positionally."""
    where = (_text(attrs.get("organization")), _text(attrs.get("brand")), _text(attrs.get("group")))
    ticket, policy, version = evaluation.ticket_id, evaluation.policy_id, evaluation.policy_version
    out = []
    for state in clocks(evaluation):
        stop = state.stopped_at
        if stop is None:
            if ended:
                continue
            outcome = "breached" if state.status is MetricStatus.BREACHED else "open"
        else:
            if ended is False:
                continue
            outcome = _ENDED_AS.get(state.status, "cancelled")
            stop = stop.astimezone(UTC)
        target = state.target
        assert target is not None  # only tracked clocks (with a target) are in an Evaluation
        out.append(Outcome(
            instance, ticket, display_key, policy, version, state.priority, *where, state.name,
            state.calendar, state.key, state.started_at.astimezone(UTC), stop, state.elapsed // _SECOND,
            target // _SECOND, outcome, tuple([lv.name for lv in state.escalations if lv.reached]),
        ))  # fmt: skip
    return out


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def ended_outcomes(
    evaluation: Evaluation, attrs: Mapping[str, Any], instance: str, display_key: str | None = None
) -> list[Outcome]:
    """One record per clock and past next-reply cycle that has stopped: met, breached (a clock that
    breached stays breached when it stops) or cancelled (a deleted ticket's clocks all are: it counts
    in no report). `attrs` are the ticket's current fields (sla.timeline.Timeline.attrs)."""
    return _records(evaluation, attrs, instance, display_key, ended=True)


def open_outcomes(
    evaluation: Evaluation, attrs: Mapping[str, Any], instance: str, display_key: str | None = None
) -> list[Outcome]:
    """One record per clock still running or paused at the evaluation's `now`: "open", or "breached"
    when its deadline has already passed. Their business time is the time elapsed so far."""
    return _records(evaluation, attrs, instance, display_key, ended=False)


def all_outcomes(
    evaluation: Evaluation, attrs: Mapping[str, Any], instance: str, display_key: str | None = None
) -> list[Outcome]:
    """`ended_outcomes` and `open_outcomes` together, in the evaluation's clock order (one pass)."""
    return _records(evaluation, attrs, instance, display_key, ended=None)
