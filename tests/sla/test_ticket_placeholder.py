"""`{ticket}` in a comment names the ticket as people do: its key where the product has one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sla.calendar import BusinessCalendar
from sla.evaluate import evaluate
from sla.events import EventKind, TicketEvent
from sla.policy import load_policies

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
CALENDARS = {"always": BusinessCalendar.from_config({"timezone": "UTC", "hours": "24x7"}, "always")}
POLICIES = load_policies([{
    "id": "p",
    "metrics": {"resolution": {"calendar": "always", "targets": {"high": "1h"}}},
    "escalations": [{"name": "breach", "metric": "resolution", "at": "breach",
                     "actions": [{"comment": "{ticket} breached"}]}],
}], CALENDARS)


def _comment(fields: dict) -> str:
    fields = {"status": "new", "priority": "high", **fields}
    created = TicketEvent("c", "10042", EventKind.CREATED, T0, fields=fields)
    evaluation = evaluate(POLICIES, CALENDARS, [created], T0 + timedelta(hours=2))
    [text] = evaluation.desired.comments.values()
    return text


def test_ticket_placeholder_renders_the_key_when_the_product_gives_one() -> None:
    assert _comment({"key": "SUP-42"}).startswith("SUP-42 breached")


def test_ticket_placeholder_falls_back_to_the_id() -> None:
    assert _comment({}).startswith("10042 breached")
