"""Next-reply cycles are keyed by the event they follow (the latest agent public reply or reopening
before them), not by their position (regression B7: an earlier cycle that arrives late renumbers the
later ones) nor by the requester comment that opens them (regression R4: an earlier requester comment
delivered late moves the cycle's start); neither may re-post their comments.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sla.calendar import BusinessCalendar
from sla.effects import Effect, EffectKind, missing_effects
from sla.evaluate import Evaluation, evaluate
from sla.events import TicketEvent
from sla.metrics import cycle_id
from sla.policy import load_policies

CALENDARS = {"c": BusinessCalendar.from_config({"timezone": "UTC", "hours": "24x7"}, "c")}
POLICIES = load_policies(
    [
        {
            "id": "p",
            "metrics": {
                "first_response": {"calendar": "c", "targets": {"high": "8h"}},
                "next_reply": {"calendar": "c", "targets": {"high": "2h"}},
            },
            "escalations": [
                {"name": "warn", "metric": "next_reply", "at": "50%", "actions": [{"comment": "reply soon"}]}
            ],
        }
    ],
    CALENDARS,
)
T = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def ev(event_id: str, minutes: int, actor: str = "", **fields: str) -> TicketEvent:
    when = T + timedelta(minutes=minutes)
    if actor:
        return TicketEvent(event_id, "1", "commented", when, actor, public=True)
    return TicketEvent(event_id, "1", "created" if event_id == "c" else "changed", when, "agent", fields)


def run(events: list[TicketEvent], minutes: int) -> Evaluation:
    return evaluate(POLICIES, CALENDARS, events, T + timedelta(minutes=minutes))


BASE = [ev("c", 0, priority="high", status="open"), ev("a0", 5, "agent")]
# The open cycle follows the agent's reply a2: warn at 50% of 2h = 09:00 + 1h.
OPEN = [ev("a2", 40, "agent"), ev("r2", 60, "requester")]
LATE = [ev("r1", 10, "requester"), ev("a1", 20, "agent")]  # an earlier, answered cycle


def ledger_of(evaluation: Evaluation) -> dict[str, str]:
    return {e.key: e.ledger_value for e in missing_effects(evaluation.desired, {})}


def test_a_late_earlier_cycle_does_not_re_post_the_open_cycles_comment() -> None:
    first = run(BASE + OPEN, 150)
    ledger = ledger_of(first)
    assert list(first.desired.comments) == [f"next_reply#{cycle_id('a2')}:warn"]

    later = run(BASE + OPEN + LATE, 150)
    assert missing_effects(later.desired, ledger) == []
    assert list(later.desired.comments) == [f"next_reply#{cycle_id('a2')}:warn"]
    nr = later.metrics["next_reply"]
    # The number is for display and does shift; the key does not.
    assert (nr.cycle, nr.cycle_id, nr.key) == (2, cycle_id("a2"), f"next_reply#{cycle_id('a2')}")
    assert nr.past_cycles[0].cycle == 1 and nr.past_cycles[0].cycle_id == cycle_id("a0")


def test_a_late_earlier_requester_comment_in_the_open_cycle_does_not_re_post_its_comment() -> None:
    """Regression R4: r1 (09:10) opens the cycle after the reply a1 (08:30) and its warning is posted;
    r0, written at 09:05 but delivered late, moves the cycle's start, not its key."""
    events = [ev("c", 0, priority="high", status="new"), ev("a1", 30, "agent"), ev("r1", 70, "requester")]
    first = run(events, 200)
    ledger = ledger_of(first)
    assert first.desired.comments == {f"next_reply#{cycle_id('a1')}:warn": "reply soon"}

    later = run([*events, ev("r0", 65, "requester")], 200)
    # Only the due date moves with the start (r0 + 2h); no comment is wanted again.
    due = Effect("due", EffectKind.SET_DUE, "2026-11-27T11:05:00+00:00")
    assert missing_effects(later.desired, ledger) == [due]
    assert later.desired.comments == {f"next_reply#{cycle_id('a1')}:warn": "reply soon"}
    nr = later.metrics["next_reply"]
    assert (nr.cycle, nr.started_at, nr.key) == (1, T + timedelta(minutes=65), f"next_reply#{cycle_id('a1')}")
    assert nr.escalations[0].due_at == T + timedelta(minutes=125)  # the warning's time moved with it


def test_each_cycle_is_keyed_by_the_latest_agent_reply_before_it() -> None:
    # Two agent replies in a row: the cycle follows the second. This is also the one late delivery
    # that re-keys an open cycle: an agent reply timed between that reply and the cycle's start.
    twice = [ev("r1", 10, "requester"), ev("a1", 20, "agent"), ev("a1b", 30, "agent")]
    twice.append(ev("r2", 60, "requester"))
    nr = run(BASE + twice, 150).metrics["next_reply"]
    assert [c.cycle_id for c in (*nr.past_cycles, nr)] == [cycle_id("a0"), cycle_id("a1b")]
    # Private notes and the connector's own comments are not replies, so they key nothing.
    note = TicketEvent("note", "1", "commented", T + timedelta(minutes=50), "agent", public=False)
    own = TicketEvent("own", "1", "commented", T + timedelta(minutes=55), "connector", public=True)
    again = run([*BASE, *OPEN, note, own], 150).metrics["next_reply"]
    assert again.key == f"next_reply#{cycle_id('a2')}"


def test_cycle_ids_are_short_safe_distinct_and_reported() -> None:
    ids = {cycle_id(f"zendesk:{n}:comment") for n in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"[0-9a-f]{10}", i) for i in ids)
    assert cycle_id("jira:10001:comment:1") == cycle_id("jira:10001:comment:1")
    d = run(BASE + OPEN + LATE, 150).metrics["next_reply"].to_dict()
    assert (d["cycle"], d["cycle_id"]) == (2, cycle_id("a2"))
    assert [(c["cycle"], c["cycle_id"]) for c in d["past_cycles"]] == [(1, cycle_id("a0"))]


def test_other_metrics_keep_their_plain_keys() -> None:
    ev_ = run(BASE + OPEN, 150)
    assert ev_.metrics["first_response"].key == "first_response"
    assert "cycle_id" not in ev_.metrics["first_response"].to_dict()
