"""`next_check` covers the instants at which the governing policy changes without an event (issue 9,
item 1): a `recalculate` policy version taking effect.

Berlin wall-clock times (CET, UTC+1); Mon-Fri 09:00-17:00; 2026-11-23 is a Monday.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sla.calendar import BusinessCalendar
from sla.evaluate import Evaluation, evaluate
from sla.events import TicketEvent
from sla.metrics import MetricStatus
from sla.policy import PolicySet, load_policies

BERLIN = ZoneInfo("Europe/Berlin")
CALENDARS = {
    "berlin": BusinessCalendar.from_config(
        {"timezone": "Europe/Berlin", "hours": {"mon-fri": ["09:00-17:00"]}, "holidays": {"country": "DE"}},
        name="berlin",
    ),
}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN)


def resolution(target: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": "standard",
        "metrics": {"resolution": {"calendar": "berlin", "targets": {"normal": target}}},
        **extra,
    }


V1 = resolution("40h")  # created Mon 23 10:00: due Mon 30 10:00
V2 = resolution("4h", version=2, effective_from="2026-11-24T10:00:00+01:00", recalculate=True)
CREATED = TicketEvent("c", "T-1", "created", at("2026-11-23 10:00"), "requester", {"priority": "normal"})


def run(policies: PolicySet, now: str, *events: TicketEvent) -> Evaluation:
    return evaluate(policies, CALENDARS, [CREATED, *events], at(now))


def test_a_recalculate_version_taking_effect_is_the_next_check() -> None:
    policies = load_policies([V1, V2], CALENDARS)
    before = run(policies, "2026-11-23 12:00")
    assert (before.policy_version, before.metrics["resolution"].deadline) == (1, at("2026-11-30 10:00"))
    assert before.next_check == at("2026-11-24 10:00")  # was Mon 30 10:00: the v1 deadline
    # At that instant the ticket moves to v2 and is breached at once (4h from Mon 10:00).
    moved = run(policies, "2026-11-24 10:00")
    res = moved.metrics["resolution"]
    assert (moved.policy_version, res.status, res.breached_at) == (
        2,
        MetricStatus.BREACHED,
        at("2026-11-23 14:00"),
    )
    assert moved.desired.due == at("2026-11-23 14:00")


def test_a_version_without_recalculate_changes_nothing_for_older_tickets() -> None:
    policies = load_policies([V1, {**V2, "recalculate": False}], CALENDARS)
    assert run(policies, "2026-11-23 12:00").next_check == at("2026-11-30 10:00")


def test_a_solved_ticket_is_looked_at_when_its_version_changes_and_then_no_more() -> None:
    policies = load_policies([V1, V2], CALENDARS)
    solved = TicketEvent("s", "T-1", "changed", at("2026-11-23 11:00"), "agent", {"status": "solved"})
    # Nothing counts, but the governing version changes at Tue 10:00 (v1 -> v2): look then.
    assert run(policies, "2026-11-24 09:00", solved).next_check == at("2026-11-24 10:00")
    after = run(policies, "2026-11-24 10:00", solved)
    assert (after.policy_version, after.next_check) == (2, None)  # already in force: nothing to wait for


def test_a_ticket_governed_by_no_version_yet_is_looked_at_when_one_takes_effect() -> None:
    # The only version starts after the ticket's creation but recalculates: it takes the ticket over.
    late = resolution("4h", effective_from="2026-11-24T10:00:00+01:00", recalculate=True)
    policies = load_policies([late], CALENDARS)
    ev = run(policies, "2026-11-23 12:00")
    assert (ev.policy_id, ev.next_check) == (None, at("2026-11-24 10:00"))
    assert run(policies, "2026-11-24 10:00").policy_id == "standard"


def test_a_recalculate_version_of_a_policy_that_does_not_match_is_no_next_check() -> None:
    other = {**V2, "id": "other", "version": 1, "match": {"tags_any": ["vip"]}}
    policies = load_policies([other, V1], CALENDARS)
    ev = run(policies, "2026-11-23 12:00")
    assert (ev.policy_id, ev.next_check) == ("standard", at("2026-11-30 10:00"))


def test_a_recalculate_version_of_an_earlier_policy_that_starts_matching() -> None:
    # `vip` v1 matches only vip tickets; its v2 (recalculate, Tue 10:00) matches every ticket and comes
    # first in the file: the ticket moves from `standard` to `vip` then.
    vip1 = {**resolution("8h"), "id": "vip", "match": {"tags_any": ["vip"]}}
    vip2 = {
        **resolution("8h"),
        "id": "vip",
        "version": 2,
        "effective_from": "2026-11-24T10:00:00+01:00",
        "recalculate": True,
    }
    policies = load_policies([vip1, vip2, V1], CALENDARS)
    ev = run(policies, "2026-11-23 12:00")
    assert (ev.policy_id, ev.next_check) == ("standard", at("2026-11-24 10:00"))
    assert (
        run(policies, "2026-11-24 10:00").policy_id,
        run(policies, "2026-11-24 10:00").policy_version,
    ) == (
        "vip",
        2,
    )


# --- property: nothing changes between now and next_check, versions included ---------------------

BASE = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # Monday 09:00 Berlin
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
minute = st.integers(min_value=0, max_value=60 * 24 * 10)


@st.composite
def versioned(draw: Any) -> PolicySet:
    cfgs = []
    for pid, match in (("vip", {"tags_any": ["vip"]}), ("standard", {})):
        for version in range(1, draw(st.integers(1, 3)) + 1):
            cfg: dict[str, Any] = {
                "id": pid,
                "version": version,
                "metrics": {
                    "first_response": {
                        "calendar": "berlin",
                        "targets": {"normal": draw(st.sampled_from(["1h", "4h"]))},
                    },
                    "resolution": {
                        "calendar": "berlin",
                        "targets": {"normal": draw(st.sampled_from(["2h", "16h"]))},
                    },
                },
                "escalations": [
                    {"name": "b", "metric": "resolution", "at": "breach", "actions": [{"tag": "late"}]}
                ],
            }
            if match and draw(st.booleans()):
                cfg["match"] = match
            if version > 1 or draw(st.booleans()):
                cfg["effective_from"] = (BASE + timedelta(minutes=draw(minute))).isoformat()
                cfg["recalculate"] = draw(st.booleans())
            cfgs.append(cfg)
    return load_policies(cfgs, CALENDARS)


@st.composite
def tickets(draw: Any) -> list[TicketEvent]:
    events = [
        TicketEvent(
            "c",
            "T",
            "created",
            BASE + timedelta(minutes=draw(st.integers(0, 600))),
            "requester",
            {"priority": "normal", "status": "new"},
        )
    ]
    for i in range(draw(st.integers(0, 4))):
        when = BASE + timedelta(minutes=draw(minute))
        kind = draw(st.sampled_from(["reply", "status", "tags"]))
        if kind == "reply":
            events.append(
                TicketEvent(
                    f"e{i}",
                    "T",
                    "commented",
                    when,
                    draw(st.sampled_from(["agent", "requester"])),
                    public=True,
                )
            )
        elif kind == "status":
            status = draw(st.sampled_from(["open", "pending", "solved"]))
            events.append(TicketEvent(f"e{i}", "T", "changed", when, "agent", {"status": status}))
        else:
            events.append(
                TicketEvent(
                    f"e{i}", "T", "changed", when, "agent", {"tags": draw(st.sampled_from([[], ["vip"]]))}
                )
            )
    return events


def _signature(ev: Evaluation) -> Any:
    clocks = [(c.key, c.status, c.deadline) for m in ev.metrics.values() for c in (*m.past_cycles, m)]
    return ev.policy_id, ev.policy_version, ev.desired, clocks


@SETTINGS
@given(versioned(), tickets(), minute, st.floats(0, 1))
def test_nothing_changes_before_next_check(
    policies: PolicySet, events: list[TicketEvent], m: int, f: float
) -> None:
    now = BASE + timedelta(minutes=m)
    seen = [e for e in events if e.at <= now]
    ev = evaluate(policies, CALENDARS, seen, now)
    horizon = ev.next_check or now + timedelta(days=30)
    assert horizon > now
    # Any instant before the next check gives the same result (sampled: one random, one just before).
    for t in (now + (horizon - now) * f, horizon - timedelta(microseconds=1)):
        if now < t < horizon:
            assert _signature(evaluate(policies, CALENDARS, seen, t)) == _signature(ev)
