"""Next-reply cycles are keyed by the event they follow (the latest agent public reply or reopening
before them), not by their position (regression B7: an earlier cycle that arrives late renumbers the
later ones) nor by the requester comment that opens them (regression R4: an earlier requester comment
delivered late moves the cycle's start); neither may re-post their comments. The third late delivery,
an agent reply between that event and the cycle's start, would change the event: the ledger's keys
(`applied_keys`) let the cycle keep the key its effects were written under.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sla.calendar import BusinessCalendar
from sla.effects import Effect, EffectKind, missing_effects
from sla.evaluate import Evaluation, applied_cycle_ids, evaluate
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
    assert list(first.desired.comments) == [f"p/next_reply#{cycle_id('a2')}:warn"]

    later = run(BASE + OPEN + LATE, 150)
    assert missing_effects(later.desired, ledger) == []
    assert list(later.desired.comments) == [f"p/next_reply#{cycle_id('a2')}:warn"]
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
    assert first.desired.comments == {f"p/next_reply#{cycle_id('a1')}:warn": "reply soon"}

    later = run([*events, ev("r0", 65, "requester")], 200)
    # Only the due date moves with the start (r0 + 2h); no comment is wanted again.
    due = Effect("due", EffectKind.SET_DUE, "2026-11-27T11:05:00+00:00")
    assert missing_effects(later.desired, ledger) == [due]
    assert later.desired.comments == {f"p/next_reply#{cycle_id('a1')}:warn": "reply soon"}
    nr = later.metrics["next_reply"]
    assert (nr.cycle, nr.started_at, nr.key) == (1, T + timedelta(minutes=65), f"next_reply#{cycle_id('a1')}")
    assert nr.escalations[0].due_at == T + timedelta(minutes=125)  # the warning's time moved with it


def test_each_cycle_is_keyed_by_the_latest_agent_reply_before_it() -> None:
    # Two agent replies in a row: the cycle follows the second (with nothing in the ledger; with
    # effects written under the first, see test_a_late_agent_reply_before_the_open_cycle...).
    twice = [ev("r1", 10, "requester"), ev("a1", 20, "agent"), ev("a1b", 30, "agent")]
    twice.append(ev("r2", 60, "requester"))
    nr = run(BASE + twice, 150).metrics["next_reply"]
    assert [c.cycle_id for c in (*nr.past_cycles, nr)] == [cycle_id("a0"), cycle_id("a1b")]
    # Private notes and the connector's own comments are not replies, so they key nothing.
    note = TicketEvent("note", "1", "commented", T + timedelta(minutes=50), "agent", public=False)
    own = TicketEvent("own", "1", "commented", T + timedelta(minutes=55), "connector", public=True)
    again = run([*BASE, *OPEN, note, own], 150).metrics["next_reply"]
    assert again.key == f"next_reply#{cycle_id('a2')}"


def test_a_late_agent_reply_before_the_open_cycle_does_not_re_key_it() -> None:
    """The case the event alone cannot decide: a2b (08:50), an agent reply between the reply a2
    (08:40) the open cycle follows and its opener r2 (09:00), delivered after the cycle's warning
    was posted. The cycle keeps the key its effects were written under (the ledger's keys)."""
    first = run(BASE + OPEN, 150)
    ledger = ledger_of(first)
    key = f"p/next_reply#{cycle_id('a2')}:warn"
    assert list(first.desired.comments) == [key]

    late = [*BASE, *OPEN, ev("a2b", 50, "agent")]
    later = evaluate(POLICIES, CALENDARS, late, T + timedelta(minutes=150), applied_keys=ledger)
    assert missing_effects(later.desired, ledger) == []
    assert list(later.desired.comments) == [key]
    assert later.metrics["next_reply"].key == f"next_reply#{cycle_id('a2')}"
    # With nothing written yet, the rule alone applies: the latest reply before the cycle.
    assert list(run(late, 150).desired.comments) == [f"p/next_reply#{cycle_id('a2b')}:warn"]


def test_the_ledger_keeps_every_case_right_together() -> None:
    """B7, R4 and the late agent reply, each delivered after the warning, evaluated with the ledger."""
    ledger = ledger_of(run(BASE + OPEN, 150))
    for late in (LATE, [ev("r1b", 55, "requester")], [ev("a2b", 50, "agent")]):
        events = [*BASE, *OPEN, *late]
        later = evaluate(POLICIES, CALENDARS, events, T + timedelta(minutes=150), applied_keys=ledger)
        assert [e for e in missing_effects(later.desired, ledger) if e.kind is EffectKind.COMMENT] == []
        assert later.metrics["next_reply"].key == f"next_reply#{cycle_id('a2')}"


def test_a_cycle_never_takes_a_key_of_another_cycle() -> None:
    """Solved while its cycle was open (the warning posted under a1), then reopened by the
    requester: the new cycle follows the reopening, even though a1's key is in the ledger."""
    events = [ev("c", 0, priority="high", status="open"), ev("a1", 5, "agent"), ev("r1", 10, "requester")]
    ledger = ledger_of(run(events, 90))
    assert list(ledger) == ["due", f"comment:p/next_reply#{cycle_id('a1')}:warn"]
    events += [ev("s", 95, status="solved"), ev("r2", 100, "requester"), ev("o", 100, status="open")]
    later = evaluate(POLICIES, CALENDARS, events, T + timedelta(minutes=200), applied_keys=ledger)
    nr = later.metrics["next_reply"]
    assert [c.cycle_id for c in (*nr.past_cycles, nr)] == [cycle_id("a1"), cycle_id("o")]
    assert f"p/next_reply#{cycle_id('o')}:warn" in later.desired.comments


def test_cycle_ids_are_read_from_ledger_keys_only_where_they_name_a_cycle() -> None:
    a, b = cycle_id("a"), cycle_id("b")
    keys = [f"comment:next_reply#{a}:warn", f"action:next_reply#{b}:warn:priority", "due", "tag:x",
            "comment:resolution:breach", f"comment:next_reply#{a}0:warn", "comment:first_response:warn"]
    assert applied_cycle_ids(keys) == {a, b}
    c = cycle_id("c")  # keys that name the policy, as written since
    named = [f"comment:p/next_reply#{c}:warn", f"action:vip/next_reply#{b}:w:priority"]
    assert applied_cycle_ids(named) == {c, b}
    assert applied_cycle_ids([]) == frozenset()


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


def test_a_ticket_first_seen_late_keeps_its_first_cycles_key_when_an_earlier_reply_arrives() -> None:
    # No CREATED event, creation reported two days earlier: the first response is not measured, and
    # the first cycle follows a stable per-ticket anchor, so applied_keys can keep its key when an
    # agent reply timed before the requester's comment is delivered after the warning was written.
    created = (T - timedelta(days=2)).isoformat()

    def seen(event_id: str, minutes: int, actor: str = "", **fields: str) -> TicketEvent:
        when, fields = T + timedelta(minutes=minutes), {**fields, "created_at": created}
        if actor:
            return TicketEvent(event_id, "1", "commented", when, actor, fields, public=True)
        return TicketEvent(event_id, "1", "changed", when, "other", fields)

    events = [seen("p", 0, priority="high", status="open"), seen("r1", 30, "requester")]
    first = run(events, 120)
    ledger = ledger_of(first)
    assert any(key.startswith("comment:p/next_reply#") for key in ledger)
    later = evaluate(POLICIES, CALENDARS, [*events, seen("a0", 10, "agent")], T + timedelta(minutes=121),
                     applied_keys=ledger)
    assert missing_effects(later.desired, ledger) == []
