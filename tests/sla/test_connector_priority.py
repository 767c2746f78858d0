"""The connector's own priority changes (escalation actions coming back as webhooks) are ignored
for SLA purposes: they change neither the targets nor the policy (regression B3).

Berlin wall-clock times (CET, UTC+1); Mon-Fri 09:00-17:00; 2026-11-23 is a Monday.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sla.calendar import BusinessCalendar
from sla.effects import missing_effects
from sla.evaluate import Evaluation, evaluate
from sla.events import TicketEvent
from sla.metrics import MetricStatus
from sla.policy import load_policies

BERLIN = ZoneInfo("Europe/Berlin")
H = timedelta(hours=1)
CALENDARS = {
    "berlin": BusinessCalendar.from_config(
        {"timezone": "Europe/Berlin", "hours": {"mon-fri": ["09:00-17:00"]}, "holidays": {"country": "DE"}},
        name="berlin",
    ),
}
# Like examples/config.yaml: "incidents" for urgent tickets, "standard" raises the priority at breach.
POLICIES = load_policies(
    [
        {
            "id": "incidents",
            "match": {"priority": ["urgent"]},
            "metrics": {"resolution": {"calendar": "berlin", "targets": {"urgent": "4h"}}},
        },
        {
            "id": "standard",
            "metrics": {
                "first_response": {"calendar": "berlin", "targets": {"high": "2h", "normal": "8h"}},
                "resolution": {"calendar": "berlin", "targets": {"high": "16h", "normal": "40h"}},
            },
            "escalations": [
                {
                    "name": "breach",
                    "metric": "resolution",
                    "at": "breach",
                    "actions": [
                        {"tag": "sla-breached"},
                        {"priority": "high"},
                        {"comment": "missed {target}"},
                    ],
                },
                {
                    "name": "plus8h",
                    "metric": "resolution",
                    "after": "8h",
                    "actions": [{"comment": "escalate"}],
                },
                {
                    "name": "warn",
                    "metric": "first_response",
                    "at": "50%",
                    "actions": [{"priority": "urgent"}],
                },
            ],
        },
    ],
    CALENDARS,
)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN)


def ticket(*extra: tuple[str, str, str, Any]) -> list[TicketEvent]:
    """Created Mon 23 10:00, normal; extra: (kind, when, actor, fields-or-public)."""
    fields = {"status": "open", "priority": "normal"}
    events = [TicketEvent("c", "T-1", "created", at("2026-11-23 10:00"), "requester", fields)]
    for i, (kind, when, actor, more) in enumerate(extra):
        if kind == "commented":
            events.append(TicketEvent(f"e{i}", "T-1", kind, at(when), actor, public=more))
        else:
            events.append(TicketEvent(f"e{i}", "T-1", kind, at(when), actor, more))
    return events


def run(events: list[TicketEvent], now: str) -> Evaluation:
    return evaluate(POLICIES, CALENDARS, events, at(now))


ANSWERED = ("commented", "2026-11-23 10:05", "agent", True)
# normal resolution 40h from Mon 10:00: Mon 7h, Tue-Thu 24h, Fri 9h -> breached Mon 30 Nov 10:00
BREACH = "2026-11-30 10:00"
RAISED = ("changed", "2026-11-30 10:00", "connector", {"priority": "high"})


def test_the_connectors_priority_change_at_breach_moves_neither_breach_nor_later_levels() -> None:
    before = run(ticket(ANSWERED), "2026-11-30 10:00")
    res = before.metrics["resolution"]
    assert (res.status, res.breached_at, res.target) == (MetricStatus.BREACHED, at(BREACH), 40 * H)
    assert before.desired.actions == {"standard/resolution:breach:priority": ("set_priority", "high")}
    ledger = {e.key: e.ledger_value for e in missing_effects(before.desired, {})}

    after = run(ticket(ANSWERED, RAISED), "2026-11-30 10:01")
    res = after.metrics["resolution"]
    # Not "high from the start" (16h: breached Wed 25 10:00, and plus8h reached at once).
    assert (res.status, res.breached_at, res.target, res.priority) == (
        MetricStatus.BREACHED,
        at(BREACH),
        40 * H,
        "normal",
    )
    assert [lv.reached for lv in res.escalations] == [True, False]
    assert after.next_check == at("2026-12-01 10:00")  # plus8h: 7h on Monday, 1h on Tuesday
    assert missing_effects(after.desired, ledger) == []


def test_an_open_clock_keeps_its_target_and_the_ticket_its_policy() -> None:
    # first_response warn at 50% of 8h (Mon 14:00) makes the connector set urgent; "incidents"
    # matches urgent tickets, but the connector's own change must not move the ticket there.
    events = ticket(("changed", "2026-11-23 14:00", "connector", {"priority": "urgent"}))
    ev = run(events, "2026-11-23 15:00")
    assert ev.policy_id == "standard"
    fr = ev.metrics["first_response"]
    assert (fr.status, fr.target, fr.priority, fr.deadline) == (
        MetricStatus.RUNNING,
        8 * H,
        "normal",
        at("2026-11-24 10:00"),
    )


def test_whole_ticket_payloads_restating_the_connectors_priority_change_nothing() -> None:
    # Zendesk sends every field on every update: later events by people repeat "high".
    events = ticket(
        ANSWERED,
        RAISED,
        ("changed", "2026-11-30 11:00", "agent", {"status": "open", "priority": "high"}),
        ("changed", "2026-11-30 11:30", "requester", {"status": "open", "priority": "high"}),
    )
    res = run(events, "2026-11-30 12:00").metrics["resolution"]
    assert (res.breached_at, res.target, res.priority) == (at(BREACH), 40 * H, "normal")


def test_a_person_changing_the_priority_afterwards_still_counts() -> None:
    events = ticket(
        ANSWERED,
        RAISED,
        ("changed", "2026-11-30 11:00", "agent", {"status": "open", "priority": "urgent"}),
    )
    ev = run(events, "2026-11-30 12:00")
    assert ev.policy_id == "incidents"
    assert (ev.metrics["resolution"].target, ev.metrics["resolution"].priority) == (4 * H, "urgent")
    # ... and back to the value the connector had set: a real change in the product, so it counts.
    events.append(
        TicketEvent("back", "T-1", "changed", at("2026-11-30 11:30"), "agent", {"priority": "high"})
    )
    res = run(events, "2026-11-30 12:00").metrics["resolution"]
    assert (res.target, res.priority, res.breached_at) == (16 * H, "high", at("2026-11-25 10:00"))


def test_the_connectors_priority_is_used_while_no_other_is_known() -> None:
    # A ticket older than its first event here: nothing else says what its priority is.
    events = [
        TicketEvent("x", "T-1", "changed", at("2026-11-23 10:00"), "connector", {"priority": "high"}),
        TicketEvent("y", "T-1", "changed", at("2026-11-23 11:00"), "agent", {"status": "open"}),
    ]
    res = run(events, "2026-11-23 12:00").metrics["resolution"]
    assert (res.target, res.priority) == (16 * H, "high")


def test_a_connector_snapshot_at_creation_is_the_tickets_priority() -> None:
    # A creation event is a snapshot of what people chose, whoever is reported as its actor.
    events = [TicketEvent("c", "T-1", "created", at("2026-11-23 10:00"), "connector", {"priority": "high"})]
    assert run(events, "2026-11-23 12:00").metrics["resolution"].target == 16 * H
