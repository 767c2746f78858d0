"""Tickets first seen after their creation start their clocks at the creation their events report.

Times are Berlin wall-clock times on the Mon-Fri 09-17 calendar; 2026-11-23 is a Monday.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sla.calendar import BusinessCalendar
from sla.evaluate import Evaluation, evaluate
from sla.events import EventKind, Status, TicketEvent
from sla.metrics import MetricStatus
from sla.policy import load_policies
from sla.timeline import build_timeline

BERLIN = ZoneInfo("Europe/Berlin")
CALENDARS = {
    "berlin": BusinessCalendar.from_config(
        {"timezone": "Europe/Berlin", "hours": {"mon-fri": ["09:00-17:00"]}}, name="berlin"
    )
}
METRICS = {
    "first_response": {"calendar": "berlin", "targets": {"high": "1h", "normal": "4h"}},
    "resolution": {"calendar": "berlin", "targets": {"high": "16h", "normal": "40h"}},
}
POLICIES = load_policies([{"id": "standard", "metrics": METRICS}], CALENDARS)
H = timedelta(hours=1)
REAL_CREATION = "2026-11-23 10:00"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN)


def event(
    event_id: str, kind: str, when: str, created: str | None = REAL_CREATION, actor: str = "other", **kw: Any
) -> TicketEvent:
    fields = dict(kw.pop("fields", {}))
    if created is not None:
        fields["created_at"] = at(created)
    return TicketEvent(event_id, "T-1", EventKind(kind), at(when), actor, fields, **kw)


def run(events: list[TicketEvent], now: str, policies: Any = POLICIES) -> Evaluation:
    return evaluate(policies, CALENDARS, events, at(now))


# First seen on Tuesday: the priority change, then an agent's reply.
PRIORITY = event("p", "changed", "2026-11-24 10:00", fields={"priority": "normal"})
REPLY = event("a", "commented", "2026-11-24 11:00", actor="agent", public=True)


def test_clocks_start_at_the_reported_creation() -> None:
    ev = run([PRIORITY, REPLY], "2026-11-24 12:00")
    fr, res = ev.metrics["first_response"], ev.metrics["resolution"]
    assert fr.started_at == res.started_at == at(REAL_CREATION)
    assert (res.status, res.elapsed, res.deadline) == (MetricStatus.RUNNING, 10 * H, at("2026-11-30 10:00"))
    # Whether an agent answered before Tuesday 10:00 is unknown: the first response is not measured
    # (no time, never breached) rather than breached on a reply the connector could not see.
    assert (fr.status, fr.elapsed, fr.breached_at) == (MetricStatus.CANCELLED, timedelta(0), None)
    assert fr.stopped_at == at("2026-11-24 10:00")


def test_a_requester_comment_after_a_ticket_is_first_seen_opens_a_next_reply_cycle() -> None:
    metrics = {**METRICS, "next_reply": {"calendar": "berlin", "targets": {"normal": "2h"}}}
    policies = load_policies([{"id": "standard", "metrics": metrics}], CALENDARS)
    asked = event("r", "commented", "2026-11-24 10:30", actor="requester", public=True)
    ev = run([PRIORITY, asked], "2026-11-24 11:00", policies)
    cycle = ev.metrics["next_reply"]
    assert (cycle.status, cycle.started_at, cycle.deadline) == (
        MetricStatus.RUNNING, at("2026-11-24 10:30"), at("2026-11-24 12:30"))


def test_with_its_creation_event_the_first_response_is_measured_from_creation() -> None:
    created = event("c", "created", REAL_CREATION, fields={"status": "new", "priority": "normal"})
    fr = run([created, PRIORITY, REPLY], "2026-11-24 12:00").metrics["first_response"]
    # Answered Tue 11:00 after 9 business hours: breached since Mon 14:00.
    assert (fr.status, fr.elapsed, fr.breached_at) == (MetricStatus.BREACHED, 9 * H, at("2026-11-23 14:00"))


def test_without_a_reported_creation_the_earliest_event_is_the_start_as_before() -> None:
    first = event("p", "changed", "2026-11-24 10:00", created=None, fields={"priority": "normal"})
    reply = event("a", "commented", "2026-11-24 11:00", created=None, actor="agent", public=True)
    fr = run([first, reply], "2026-11-24 12:00").metrics["first_response"]
    assert (fr.started_at, fr.elapsed, fr.status) == (at("2026-11-24 10:00"), H, MetricStatus.MET)


def test_a_creation_event_wins_over_the_reported_creation() -> None:
    created = event(
        "c", "created", "2026-11-23 10:00:00.6", created="2026-11-23 10:00", fields={"status": "new"}
    )
    tl = build_timeline([created, PRIORITY], at("2026-11-24 12:00"))
    assert tl is not None and tl.created == at("2026-11-23 10:00:00.6")


def test_one_event_reporting_the_creation_is_enough_and_the_earliest_report_wins() -> None:
    silent = event("p", "changed", "2026-11-24 10:00", created=None, fields={"priority": "normal"})
    later_report = event(
        "x", "changed", "2026-11-24 10:30", created="2026-11-23 12:00", fields={"group": "g"}
    )
    events = [silent, REPLY, later_report]
    for order in itertools.permutations(events):
        tl = build_timeline(list(order), at("2026-11-24 12:00"))
        assert tl is not None and tl.created == at(REAL_CREATION)


def test_a_reported_creation_after_the_earliest_event_is_not_believed() -> None:
    # Clock skew between a product's timestamps: no event may precede the start.
    skewed = event(
        "p", "changed", "2026-11-24 10:00", created="2026-11-24 10:05", fields={"priority": "normal"}
    )
    tl = build_timeline([skewed], at("2026-11-24 12:00"))
    assert tl is not None and tl.created == at("2026-11-24 10:00")


def test_reports_of_events_after_now_are_not_seen() -> None:
    early = event(
        "p", "changed", "2026-11-24 10:00", created="2026-11-23 12:00", fields={"priority": "normal"}
    )
    later = event("q", "changed", "2026-11-25 10:00", created="2026-11-23 10:00", fields={"group": "g"})
    tl = build_timeline([early, later], at("2026-11-24 12:00"))
    assert tl is not None and tl.created == at("2026-11-23 12:00")


def test_until_the_first_event_the_ticket_is_new_and_the_first_known_priority_applies() -> None:
    # First seen when an agent sets it pending: before that it counted as new (the clock ran).
    pending = event("s", "changed", "2026-11-24 10:00", fields={"status": "pending", "priority": "high"})
    tl = build_timeline([pending], at("2026-11-24 12:00"))
    assert tl is not None
    assert tl.statuses == ((at(REAL_CREATION), Status.NEW), (at("2026-11-24 10:00"), Status.PENDING))
    assert tl.priorities == ((at(REAL_CREATION), "high"),)
    assert tl.priority_at(at("2026-11-23 11:00")) == "high"
    res = run([pending], "2026-11-24 12:00").metrics["resolution"]
    assert (res.status, res.elapsed, res.priority) == (MetricStatus.PAUSED, 8 * H, "high")


def test_with_a_creation_event_an_unknown_first_priority_stays_unknown() -> None:
    created = event("c", "created", REAL_CREATION, fields={"status": "new"})
    tl = build_timeline([created, PRIORITY], at("2026-11-24 12:00"))
    assert tl is not None and tl.priorities == ((at(REAL_CREATION), None), (at("2026-11-24 10:00"), "normal"))


def test_the_policy_version_is_chosen_by_the_real_creation() -> None:
    # v2 took effect on Monday at noon: a ticket created at 10:00 and first seen on Tuesday stays on v1.
    v1 = {"id": "standard", "version": 1, "metrics": METRICS}
    v2 = {**v1, "version": 2, "effective_from": "2026-11-23T12:00:00+01:00"}
    policies = load_policies([v1, v2], CALENDARS)
    assert run([PRIORITY], "2026-11-24 12:00", policies).policy_version == 1
    # A policy whose every version is younger than the ticket does not govern it.
    younger = load_policies([v2], CALENDARS)
    assert run([PRIORITY], "2026-11-24 12:00", younger).policy_id is None


def test_order_and_duplicates_do_not_matter() -> None:
    solved = event("s", "changed", "2026-11-24 15:00", fields={"status": "solved"})
    events = [PRIORITY, REPLY, solved]
    expected = run(events, "2026-11-25 12:00").to_dict()
    for order in itertools.permutations(events):
        assert run([*order, order[0]], "2026-11-25 12:00").to_dict() == expected


# ---------------------------------------------------------------- the field itself


def test_created_at_has_one_spelling_whatever_the_input() -> None:
    utc = TicketEvent(
        "e", "T-1", EventKind.CHANGED, at("2026-11-24 10:00"), fields={"created_at": "2026-11-23T09:00:00Z"}
    )
    plus_one = TicketEvent(
        "e",
        "T-1",
        EventKind.CHANGED,
        at("2026-11-24 10:00"),
        fields={"created_at": "2026-11-23T10:00:00+01:00"},
    )
    as_datetime = TicketEvent(
        "e", "T-1", EventKind.CHANGED, at("2026-11-24 10:00"), fields={"created_at": at("2026-11-23 10:00")}
    )
    assert utc == plus_one == as_datetime
    assert utc.fields["created_at"] == "2026-11-23T09:00:00+00:00"
    assert utc.reported_creation == datetime(2026, 11, 23, 9, tzinfo=UTC)
    assert TicketEvent.from_dict(utc.to_dict()) == utc
    unset = TicketEvent("e", "T-1", EventKind.CHANGED, at("2026-11-24 10:00"), fields={"created_at": None})
    assert unset.reported_creation is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("yesterday", "created_at 'yesterday' is not an ISO 8601 instant"),
        ("2026-11-23T09:00:00", "must be a timezone-aware instant"),
        (datetime(2026, 11, 23, 9), "must be a timezone-aware instant"),
        (1795777200, "must be a timezone-aware instant"),
    ],
)
@pytest.mark.parametrize("name", ["created_at", "outage_start"])
def test_a_bad_instant_field_is_refused_naming_the_event(name: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("created_at", name)) as info:
        TicketEvent("zd:1", "T-1", EventKind.CHANGED, at("2026-11-24 10:00"), fields={name: value})
    assert str(info.value).startswith("TicketEvent zd:1: ")


def test_an_outage_start_is_one_spelling_and_may_be_unset() -> None:
    # Two deliveries stating one instant in two offsets are one event (dedupe compares fields).
    one = TicketEvent("e", "T-1", EventKind.CHANGED, at("2026-11-24 10:00"),
                      fields={"outage_start": "2026-11-23T10:15:00+01:00"})
    other = TicketEvent("e", "T-1", EventKind.CHANGED, at("2026-11-24 10:00"),
                        fields={"outage_start": datetime(2026, 11, 23, 9, 15, tzinfo=UTC)})
    assert one == other and one.fields["outage_start"] == "2026-11-23T09:15:00+00:00"
    assert TicketEvent.from_dict(one.to_dict()) == one
    cleared = TicketEvent("e", "T-1", EventKind.CHANGED, at("2026-11-24 10:00"),
                          fields={"outage_start": None})
    assert cleared.fields["outage_start"] is None


def test_offsets_are_compared_as_instants() -> None:
    east = timezone(timedelta(hours=5))
    ev = TicketEvent(
        "e",
        "T-1",
        EventKind.CHANGED,
        at("2026-11-24 10:00"),
        fields={"created_at": datetime(2026, 11, 23, 14, tzinfo=east)},
    )
    assert ev.reported_creation == at("2026-11-23 10:00")
