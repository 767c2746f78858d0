"""Next-reply cycles are keyed by the event that opened them, not by their position (regression B7):
an earlier cycle that arrives late renumbers the later ones but must not re-post their comments.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sla.calendar import BusinessCalendar
from sla.effects import missing_effects
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
OPEN = [ev("r2", 60, "requester")]  # the open cycle: warn at 50% of 2h = 09:00 + 1h
LATE = [ev("r1", 10, "requester"), ev("a1", 20, "agent")]  # an earlier, answered cycle


def test_a_late_earlier_cycle_does_not_re_post_the_open_cycles_comment() -> None:
    first = run(BASE + OPEN, 150)
    ledger = {e.key: e.ledger_value for e in missing_effects(first.desired, {})}

    later = run(BASE + OPEN + LATE, 150)
    assert missing_effects(later.desired, ledger) == []
    assert list(later.desired.comments) == [f"next_reply#{cycle_id('r2')}:warn"]
    nr = later.metrics["next_reply"]
    # The number is for display and does shift; the key does not.
    assert (nr.cycle, nr.cycle_id, nr.key) == (2, cycle_id("r2"), f"next_reply#{cycle_id('r2')}")
    assert nr.past_cycles[0].cycle == 1 and nr.past_cycles[0].cycle_id == cycle_id("r1")


def test_a_cycle_opened_by_reopening_is_keyed_by_the_reopening() -> None:
    solved = [ev("s", 30, status="solved"), ev("thanks", 40, "requester"), ev("reopen", 90, status="open")]
    first = run(BASE + solved, 200)
    nr = first.metrics["next_reply"]
    assert (nr.started_at, nr.key) == (T + timedelta(minutes=90), f"next_reply#{cycle_id('reopen')}")
    # Another requester comment while solved, delivered late, opens nothing new and changes no key.
    again = run([*BASE, *solved, ev("more", 35, "requester")], 200)
    assert again.desired.comments == first.desired.comments


def test_cycle_ids_are_short_safe_distinct_and_reported() -> None:
    ids = {cycle_id(f"zendesk:{n}:comment") for n in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"[0-9a-f]{10}", i) for i in ids)
    assert cycle_id("jira:10001:comment:1") == cycle_id("jira:10001:comment:1")
    d = run(BASE + OPEN + LATE, 150).metrics["next_reply"].to_dict()
    assert (d["cycle"], d["cycle_id"]) == (2, cycle_id("r2"))
    assert [(c["cycle"], c["cycle_id"]) for c in d["past_cycles"]] == [(1, cycle_id("r1"))]


def test_other_metrics_keep_their_plain_keys() -> None:
    ev_ = run(BASE + OPEN, 150)
    assert ev_.metrics["first_response"].key == "first_response"
    assert "cycle_id" not in ev_.metrics["first_response"].to_dict()
