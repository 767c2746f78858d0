"""A tiny SLA rule and configuration stand-ins for pipeline unit tests (independent of sla.evaluate).

Rule: the due date is creation + `target`; tag "sla-open" while not solved; at or after the due
instant, unsolved: tag "sla-breached" and one comment "breach"; solved: "sla-open" is removed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sla.effects import DesiredEffects
from sla.events import EventKind, Status, TicketEvent


@dataclass
class MiniEvaluation:
    ticket_id: str
    desired: DesiredEffects
    next_check: datetime | None
    policy_id: str = "mini"
    policy_version: int = 1
    metrics: dict = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ticket_id": self.ticket_id,
            "policy_id": self.policy_id,
            "due": self.desired.due.isoformat() if self.desired.due else None,
            "next_check": self.next_check.isoformat() if self.next_check else None,
        }


class MiniEvaluator:
    """Counts its calls so tests can see how often tickets were evaluated."""

    def __init__(self, target: timedelta = timedelta(seconds=10), fail: Exception | None = None) -> None:
        self.target = target
        self.fail = fail
        self.calls: list[tuple[str, int, datetime]] = []

    def __call__(
        self,
        policies: Any,
        calendars: Any,
        events: list[TicketEvent],
        now: datetime,
        *,
        instance: str | None = None,
    ) -> MiniEvaluation:
        ticket = events[0].ticket_id
        self.calls.append((ticket, len(events), now))
        assert [e.sort_key for e in events] == sorted(e.sort_key for e in events)
        if self.fail is not None:
            raise self.fail
        created = next((e.at for e in events if e.kind is EventKind.CREATED), None)
        if created is None:
            return MiniEvaluation(ticket, DesiredEffects(), None)
        status = Status.NEW
        for e in events:
            if e.fields.get("status") is not None:
                status = Status(e.fields["status"])
        due = created + self.target
        solved = status in (Status.SOLVED, Status.CLOSED)
        present, absent, comments = set(), {"sla-open", "sla-breached"}, {}
        if not solved:
            present.add("sla-open")
            if now >= due:
                present.add("sla-breached")
                comments["resolution:breach"] = "breach"
        breached_at = due if not solved and now >= due else None
        metric = SimpleNamespace(name="resolution", key="resolution", breached_at=breached_at, past_cycles=())
        return MiniEvaluation(
            ticket,
            DesiredEffects(
                due=due, tags_present=frozenset(present), tags_absent=frozenset(absent), comments=comments
            ),
            None if solved or now >= due else due,
            metrics={"resolution": metric},
        )


@dataclass(frozen=True)
class StubInstance:
    name: str
    product: str
    dry_run: bool
    settings: Mapping[str, Any]
    adapter: Any


@dataclass(frozen=True)
class StubConfig:
    instances: Mapping[str, StubInstance]
    calendars: Mapping[str, Any] = field(default_factory=dict)
    policies: Any = None


def desk_config(
    base_url: str = "https://desk.test", *, dry_run: bool = False, names: tuple[str, ...] = ("desk",)
) -> StubConfig:
    from . import testdesk

    testdesk.register()
    instances = {
        n: StubInstance(
            n, "testdesk", dry_run, {"base_url": base_url}, testdesk.create(n, {"base_url": base_url}, {})
        )
        for n in names
    }
    return StubConfig(instances)


def created(ticket: str, at: datetime, event_id: str | None = None, **fields: Any) -> dict:
    return TicketEvent(
        event_id or f"{ticket}-created", ticket, EventKind.CREATED, at, fields={"status": "new", **fields}
    ).to_dict()


def changed(ticket: str, at: datetime, event_id: str, **fields: Any) -> dict:
    return TicketEvent(event_id, ticket, EventKind.CHANGED, at, fields=fields).to_dict()
