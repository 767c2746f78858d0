"""Real configurations for pipeline tests, and thin wrappers around the real `sla.evaluate.evaluate`.

`desk_config` builds a real Config (connector.config.loader.config_from_dict) for the test-only "testdesk"
adapter with one policy on a 24x7 UTC calendar whose observable rule is:

- the due date is creation + `target` (every priority has the same target);
- "sla-open" (a warning level reached at the start: `before:` the whole target) is on the ticket
  while the resolution clock is open, and goes once the ticket is solved or closed;
- at the deadline, unsolved: the breach level tags "sla-breached" (which stays, see
  docs/sla-semantics.md) and posts one comment "breach" (effect key `test/resolution:breach`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from connector.config.loader import Config, config_from_dict
from sla.evaluate import Evaluation, evaluate
from sla.events import EventKind, TicketEvent

PRIORITIES = ("low", "normal", "high", "urgent")


def policy(target: str = "10s", policy_id: str = "test") -> dict[str, Any]:
    """The policy described in the module docstring, as the `policies` section holds it."""
    return {
        "id": policy_id,
        "version": 1,
        "metrics": {"resolution": {"calendar": "always", "targets": dict.fromkeys(PRIORITIES, target)}},
        "escalations": [
            {"name": "open", "metric": "resolution", "before": target, "actions": [{"tag": "sla-open"}]},
            {
                "name": "breach",
                "metric": "resolution",
                "at": "breach",
                "actions": [{"tag": "sla-breached"}, {"comment": "breach"}],
            },
        ],
    }


CALENDARS = {"always": {"timezone": "UTC", "hours": "24x7"}}


def sla_sections(target: str = "10s") -> dict[str, Any]:
    """`calendars` and `policies` of a configuration file (to merge with any `instances`)."""
    return {"calendars": CALENDARS, "policies": [policy(target)]}


def desk_config(
    base_url: str = "https://desk.test",
    *,
    dry_run: bool = False,
    names: tuple[str, ...] = ("desk",),
    target: str = "10s",
) -> Config:
    """A real Config: testdesk instances `names` at `base_url` and the policy above."""
    from . import testdesk

    testdesk.register()
    instances = {n: {"product": "testdesk", "dry_run": dry_run, "base_url": base_url} for n in names}
    return config_from_dict({"instances": instances, **sla_sections(target)}, env={}, source="<test>")


def created(ticket: str, at: datetime, event_id: str | None = None, **fields: Any) -> dict:
    """A creation event (status new, priority normal unless given) in its stored form."""
    fields = {"status": "new", "priority": "normal", **fields}
    event_id = event_id or f"{ticket}-created"
    return TicketEvent(event_id, ticket, EventKind.CREATED, at, fields=fields).to_dict()


def changed(ticket: str, at: datetime, event_id: str, **fields: Any) -> dict:
    return TicketEvent(event_id, ticket, EventKind.CHANGED, at, fields=fields).to_dict()


class CountingEvaluator:
    """The real `evaluate`, recording (ticket, number of events, now) per call for tests that count."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, datetime]] = []

    def __call__(
        self,
        policies: Any,
        calendars: Mapping[str, Any],
        events: list[TicketEvent],
        now: datetime,
        *,
        instance: str | None = None,
        applied_keys: Any = (),
    ) -> Evaluation:
        self.calls.append((events[0].ticket_id, len(events), now))
        return evaluate(policies, calendars, events, now, instance=instance, applied_keys=applied_keys)


class FailingEvaluator:
    """An evaluation that always raises `error` (the pipeline's "evaluation failed" path)."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def __call__(self, *args: Any, **kwargs: Any) -> Evaluation:
        raise self.error
