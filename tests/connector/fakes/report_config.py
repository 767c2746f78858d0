"""A real configuration for the report tests: the testdesk adapter, the three clocks on a 24x7 UTC
calendar, a contract with a KPI credit and an uptime guarantee, and builders of canonical events.

Targets (every priority): first response 1h, next reply 30m, resolution 8h. Escalations: a
resolution warning at 50% (tag "sla-half") and a breach level "late" on each clock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from connector.config.loader import Config, config_from_dict
from sla.events import EventKind, Role, TicketEvent

PRIORITIES = ("low", "normal", "high", "urgent")


def policy() -> dict[str, Any]:
    def targets(value: str) -> dict[str, str]:
        return dict.fromkeys(PRIORITIES, value)

    return {
        "id": "std",
        "version": 1,
        "metrics": {
            "first_response": {"calendar": "always", "targets": targets("1h")},
            "next_reply": {"calendar": "always", "targets": targets("30m")},
            "resolution": {"calendar": "always", "targets": targets("8h")},
        },
        "escalations": [
            {"name": "half", "metric": "resolution", "at": "50%", "actions": [{"tag": "sla-half"}]},
            {"name": "late", "metric": "resolution", "at": "breach", "actions": [{"tag": "sla-late"}]},
            {"name": "late", "metric": "first_response", "at": "breach", "actions": [{"tag": "sla-late-fr"}]},
            {"name": "late", "metric": "next_reply", "at": "breach", "actions": [{"tag": "sla-late-nr"}]},
        ],
    }


def contract() -> dict[str, Any]:
    return {
        "id": "acme-gold",
        "instances": ["desk"],
        "timezone": "UTC",
        "monthly_fee": 1000,
        "currency": "EUR",
        "credits": [{"priority": "urgent", "metric": "resolution", "below": 95, "credit_percent": 5}],
        "credit_cap_percent": 25,
        "uptime": [
            {
                "service": "api",
                "incidents": {"match": {"type": "incident", "tags": ["svc-api"]}},
                "service_hours": "24x7",
                "guaranteed_percent": 99.9,
                "credits": [{"below": 99.9, "credit_percent": 10}],
            }
        ],
    }


def report_config(names: tuple[str, ...] = ("desk",), *, contracts: bool = True) -> Config:
    from . import testdesk

    testdesk.register()
    data: dict[str, Any] = {
        "instances": {
            n: {"product": "testdesk", "dry_run": True, "base_url": "https://desk.test"} for n in names
        },
        "calendars": {"always": {"timezone": "UTC", "hours": "24x7"}},
        "policies": [policy()],
    }
    if contracts:
        data["contracts"] = [contract()]
    return config_from_dict(data, env={}, source="<test>")


def event(
    ticket: str,
    kind: str,
    at: datetime,
    event_id: str,
    actor: str = "other",
    public: bool | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """One canonical event as the testdesk payload carries it."""
    return TicketEvent(event_id, ticket, EventKind(kind), at, Role(actor), fields, public).to_dict()


def created(ticket: str, at: datetime, **fields: Any) -> dict[str, Any]:
    return event(
        ticket, "created", at, f"{ticket}-created", **{"status": "new", "priority": "normal", **fields}
    )


def reply(ticket: str, at: datetime, n: int, actor: str = "agent") -> dict[str, Any]:
    return event(ticket, "commented", at, f"{ticket}-c{n}", actor, True)


def status(ticket: str, at: datetime, n: int, value: str) -> dict[str, Any]:
    return event(ticket, "changed", at, f"{ticket}-s{n}", "agent", status=value)


def deleted(ticket: str, at: datetime) -> dict[str, Any]:
    return event(ticket, "deleted", at, f"{ticket}-deleted")
