"""Hand-built tickets for the report tests: canonical events, evaluated by sla.evaluate, as outcomes.

Berlin calendar Mon-Fri 09:00-17:00 with German holidays; times are Berlin wall-clock times.
2026-11-23 is a Monday. Targets as in docs/sla-semantics.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sla.calendar import BusinessCalendar
from sla.evaluate import evaluate
from sla.events import TicketEvent
from sla.outcomes import Outcome, ended_outcomes, open_outcomes
from sla.policy import PolicySet, load_policies
from sla.timeline import Timeline, build_timeline

BERLIN = ZoneInfo("Europe/Berlin")
CALENDARS = {
    "berlin": BusinessCalendar.from_config(
        {"timezone": "Europe/Berlin", "hours": {"mon-fri": ["09:00-17:00"]}, "holidays": {"country": "DE"}},
        name="berlin",
    ),
}
ALWAYS = BusinessCalendar.from_config({"timezone": "UTC", "hours": "24x7"}, name="always")
TARGETS = {
    "first_response": {"urgent": "30m", "high": "1h", "normal": "4h"},
    "next_reply": {"urgent": "1h", "high": "2h", "normal": "8h"},
    "resolution": {"urgent": "4h", "high": "16h", "normal": "40h", "low": "80h"},
}
ESCALATIONS = [
    {"name": "warning", "metric": "resolution", "at": "75%", "actions": [{"tag": "sla-warning"}]},
    {"name": "breach", "metric": "resolution", "at": "breach", "actions": [{"tag": "sla-breached"}]},
    {"name": "late", "metric": "resolution", "after": "4h", "actions": [{"tag": "sla-late"}]},
]


def policy(targets: dict[str, dict[str, str]] | None = None, **extra: Any) -> dict[str, Any]:
    metrics = {m: {"calendar": "berlin", "targets": t} for m, t in (targets or TARGETS).items()}
    return {"id": "standard", "metrics": metrics, "escalations": ESCALATIONS, **extra}


POLICIES = load_policies([policy()], CALENDARS)


def at(text: str) -> datetime:
    """Berlin wall-clock time, e.g. at("2026-11-23 10:00")."""
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN)


class Ticket:
    """One ticket's events, one readable line per event; `outcomes` evaluates them."""

    def __init__(self, ticket_id: str, created: str = "2026-11-23 10:00", **fields: Any) -> None:
        self.ticket_id = ticket_id
        self.events: list[TicketEvent] = []
        self._add("created", created, "requester", {"status": "new", "priority": "normal", **fields})

    def _add(
        self, kind: str, when: str, actor: str = "other", fields: Any = None, public: bool | None = None
    ):
        n = len(self.events) + 1
        self.events.append(TicketEvent(f"e{n}", self.ticket_id, kind, at(when), actor, fields or {}, public))
        return self

    def reply(self, when: str, actor: str = "agent") -> Ticket:
        return self._add("commented", when, actor, public=True)

    def status(self, when: str, status: str) -> Ticket:
        return self._add("changed", when, "agent", {"status": status})

    def solve(self, when: str) -> Ticket:
        return self.status(when, "solved")

    def change(self, when: str, **fields: Any) -> Ticket:
        return self._add("changed", when, "agent", fields)

    def delete(self, when: str) -> Ticket:
        return self._add("deleted", when)

    def timeline(self, now: str) -> Timeline:
        tl = build_timeline(self.events, at(now))
        assert tl is not None
        return tl

    def outcomes(self, now: str, policies: PolicySet = POLICIES, instance: str = "acme") -> list[Outcome]:
        """Ended and open records as of `now` (ended first, as a report is given them)."""
        evaluation = evaluate(policies, CALENDARS, self.events, at(now), instance=instance)
        attrs = self.timeline(now).attrs
        key = attrs.get("key")
        return [
            *ended_outcomes(evaluation, attrs, instance, key),
            *open_outcomes(evaluation, attrs, instance, key),
        ]


def november_tickets() -> list[Ticket]:
    """Tickets A to G around November 2026 (the KPIs test_kpis pins by value)."""
    return [
        # A: first response met after 1h30, solved Tue 10:00 (8h).
        Ticket("A").reply("2026-11-23 11:30").solve("2026-11-24 10:00"),
        # B: first response breached (5h); pending Tue 10:00 to Thu 09:00 (paused), solved Thu 12:00: 11h.
        Ticket("B")
        .reply("2026-11-23 15:00")
        .status("2026-11-24 10:00", "pending")
        .status("2026-11-26 09:00", "open")
        .solve("2026-11-26 12:00"),
        # C: reopened: solved Mon 12:00 (2h), reopened Tue 10:00, solved again Tue 11:00: 3h in all.
        Ticket("C").reply("2026-11-23 10:30").solve("2026-11-23 12:00").status("2026-11-24 10:00", "open")
        .solve("2026-11-24 11:00"),
        # D: spans the month's end: answered Tue 1 Dec (8h, breached in December), still open.
        Ticket("D", "2026-11-30 10:00").reply("2026-12-01 10:00"),
        # E: created in October: its first response counts there, its resolution (8h) in November.
        Ticket("E", "2026-10-30 10:00").reply("2026-10-30 10:30").solve("2026-11-02 10:00"),
        # F: deleted: counts nowhere.
        Ticket("F").reply("2026-11-23 11:00").delete("2026-11-23 12:00"),
        # G: urgent, resolution breached after 9h (target 4h): warning, breach and late reached.
        Ticket("G", priority="urgent").reply("2026-11-23 10:10").solve("2026-11-24 11:00"),
    ]  # fmt: skip


def outcomes_of(tickets: list[Ticket], now: str, **kw: Any) -> list[Outcome]:
    return [o for t in tickets for o in t.outcomes(now, **kw)]


def by_cycle(outcomes: list[Outcome]) -> dict[tuple[str, str], Outcome]:
    return {(o.ticket_id, o.cycle): o for o in outcomes}
