"""Escalation levels, desired effects (due date, tags, comments, actions) and the next check.

Berlin wall-clock times (CET, UTC+1); Mon-Fri 09:00-17:00; 2026-11-23 is a Monday.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sla.calendar import BusinessCalendar
from sla.effects import EffectKind, missing_effects
from sla.evaluate import Evaluation, evaluate
from sla.events import TicketEvent
from sla.metrics import MetricStatus, cycle_id
from sla.policy import load_policies

BERLIN = ZoneInfo("Europe/Berlin")
CALENDARS = {
    "berlin": BusinessCalendar.from_config(
        {"timezone": "Europe/Berlin", "hours": {"mon-fri": ["09:00-17:00"]}, "holidays": {"country": "DE"}},
        name="berlin",
    ),
}
WARNING = (
    "Resolution of {ticket} ({priority}, target {target}) due {deadline}: {elapsed} used, {remaining} left"
)
POLICY = {
    "id": "standard",
    "metrics": {
        "first_response": {"calendar": "berlin", "targets": {"high": "4h"}},
        "next_reply": {"calendar": "berlin", "targets": {"high": "2h"}},
        "resolution": {"calendar": "berlin", "targets": {"high": "16h"}},
    },
    "escalations": [
        {
            "name": "warning",
            "metric": "resolution",
            "at": "75%",
            "actions": [{"tag": "sla-warning"}, {"comment": WARNING}],
        },
        {
            "name": "last-hour",
            "metric": "first_response",
            "before": "1h",
            "actions": [{"tag": "sla-due-soon"}],
        },
        {
            "name": "breach",
            "metric": "resolution",
            "at": "breach",
            "actions": [{"tag": "sla-breached"}, {"priority": "urgent"}, {"assignee": "team-lead-id"}],
        },
        {
            "name": "breach+4h",
            "metric": "resolution",
            "after": "4h",
            "actions": [{"comment": "Still open: {level}"}],
        },
        {
            "name": "late",
            "metric": "next_reply",
            "at": "breach",
            "actions": [{"tag": "sla-reply-late"}, {"comment": "{metric} overdue since {deadline}"}],
        },
    ],
}
POLICIES = load_policies([POLICY], CALENDARS)
ALL_TAGS = {"sla-warning", "sla-due-soon", "sla-breached", "sla-reply-late"}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN)


def ticket(*extra: tuple[str, str, str, Any]) -> list[TicketEvent]:
    """Created Mon 23 10:00 (high); extra: (kind, when, actor, fields-or-public)."""
    events = [TicketEvent("c", "T-1", "created", at("2026-11-23 10:00"), "requester", {"priority": "high"})]
    for i, (kind, when, actor, more) in enumerate(extra):
        if kind == "commented":
            events.append(TicketEvent(f"e{i}", "T-1", kind, at(when), actor, public=more))
        else:
            events.append(TicketEvent(f"e{i}", "T-1", kind, at(when), actor, more))
    return events


def run(events: list[TicketEvent], now: str) -> Evaluation:
    return evaluate(POLICIES, CALENDARS, events, at(now))


ANSWERED = ("commented", "2026-11-23 13:45", "agent", True)


def test_before_any_level_only_the_due_date() -> None:
    ev = run(ticket(), "2026-11-23 12:00")
    d = ev.desired
    assert d.due == at("2026-11-23 14:00")  # the first response deadline comes first
    assert (d.tags_present, d.tags_absent, d.comments, d.actions) == (frozenset(), ALL_TAGS, {}, {})
    assert ev.next_check == at("2026-11-23 13:00")  # last-hour level of the first response


def test_warning_level_before_the_deadline_sets_its_tag_while_running() -> None:
    ev = run(ticket(), "2026-11-23 13:30")
    assert ev.desired.tags_present == {"sla-due-soon"}
    assert ev.desired.tags_absent == ALL_TAGS - {"sla-due-soon"}
    fr = ev.metrics["first_response"]
    assert [(lv.name, lv.due_at, lv.reached) for lv in fr.escalations] == [
        ("last-hour", at("2026-11-23 13:00"), True)
    ]
    assert ev.next_check == at("2026-11-23 14:00")  # the breach of the first response


def test_warning_tag_goes_once_the_metric_is_met() -> None:
    ev = run(ticket(ANSWERED), "2026-11-23 15:00")
    assert ev.desired.tags_present == frozenset()
    assert ev.desired.due == at("2026-11-25 10:00")  # now the resolution deadline
    assert ev.next_check == at("2026-11-24 14:00")  # 75% of 16h = 12h: Mon 7h + Tue 5h


def test_percentage_level_tag_and_comment_rendered_as_of_the_level() -> None:
    ev = run(ticket(ANSWERED), "2026-11-24 14:00")
    assert ev.desired.tags_present == {"sla-warning"}
    assert ev.desired.comments == {
        "standard/resolution:warning": (
            "Resolution of T-1 (high, target 16h) due 2026-11-25 10:00 CET: 12h used, 4h left"
        )
    }
    assert ev.desired.actions == {}
    assert ev.next_check == at("2026-11-25 10:00")
    assert run(ticket(ANSWERED), "2026-11-24 13:59:59").desired.comments == {}


def test_breach_level_tags_and_one_shot_actions() -> None:
    ev = run(ticket(ANSWERED), "2026-11-25 10:00")
    res = ev.metrics["resolution"]
    assert (res.status, res.breached_at) == (MetricStatus.BREACHED, at("2026-11-25 10:00"))
    assert ev.desired.tags_present == {"sla-warning", "sla-breached"}
    assert ev.desired.actions == {
        "standard/resolution:breach:priority": (EffectKind.SET_PRIORITY, "urgent"),
        "standard/resolution:breach:assignee": (EffectKind.SET_ASSIGNEE, "team-lead-id"),
    }
    assert sorted(ev.desired.comments) == ["standard/resolution:warning"]
    assert ev.desired.due == at("2026-11-25 10:00")  # a breached clock still running keeps its due date
    assert ev.next_check == at("2026-11-25 14:00")


def test_level_after_the_breach_then_nothing_more_to_wait_for() -> None:
    ev = run(ticket(ANSWERED), "2026-11-25 14:00")
    assert ev.desired.comments["standard/resolution:breach+4h"] == "Still open: breach+4h"
    assert ev.next_check is None


def test_after_solving_breach_tags_stay_warnings_go_and_nothing_new_is_posted() -> None:
    solved = ("changed", "2026-11-25 15:00", "agent", {"status": "solved"})
    ev = run(ticket(ANSWERED, solved), "2026-11-25 16:00")
    assert ev.desired.tags_present == {"sla-breached"}
    assert ev.desired.tags_absent == ALL_TAGS - {"sla-breached"}
    # The due date stays the deadline the clock was heading for when it stopped (see test_due_arrival_order).
    assert (ev.desired.comments, ev.desired.actions, ev.next_check) == ({}, {}, None)
    assert ev.desired.due == at("2026-11-25 10:00")


def test_solved_before_the_breach_level_was_evaluated_posts_nothing() -> None:
    # The worker was down: first evaluation only after the ticket was solved late.
    solved = ("changed", "2026-11-25 15:00", "agent", {"status": "solved"})
    ev = run(ticket(ANSWERED, solved), "2026-11-26 09:00")
    assert ev.desired.tags_present == {"sla-breached"}
    assert ev.desired.actions == {} and ev.desired.comments == {}


def test_paused_clock_has_no_deadline_no_next_check_and_unknown_level_times() -> None:
    pending = ("changed", "2026-11-23 15:00", "agent", {"status": "pending"})
    ev = run(ticket(ANSWERED, pending), "2026-11-24 12:00")
    res = ev.metrics["resolution"]
    assert (res.status, res.deadline, res.elapsed) == (MetricStatus.PAUSED, None, 5 * timedelta(hours=1))
    assert [lv.due_at for lv in res.escalations] == [None, None, None]
    # The ticket keeps showing the deadline it had when the pause began (16h from Mon 10:00).
    assert (ev.desired.due, ev.next_check) == (at("2026-11-25 10:00"), None)


def test_level_reached_before_a_pause_stays_reached_during_it() -> None:
    pending = ("changed", "2026-11-24 15:00", "agent", {"status": "pending"})
    ev = run(ticket(ANSWERED, pending), "2026-11-25 12:00")
    res = ev.metrics["resolution"]
    assert res.status is MetricStatus.PAUSED
    assert [(lv.name, lv.reached) for lv in res.escalations] == [
        ("warning", True),
        ("breach", False),
        ("breach+4h", False),
    ]
    assert res.escalations[0].due_at == at("2026-11-24 14:00")
    assert ev.desired.tags_present == {"sla-warning"}
    assert ev.desired.comments["standard/resolution:warning"].endswith("due (paused): 12h used, 4h left")


def test_each_next_reply_cycle_has_its_own_comment_key() -> None:
    events = ticket(
        ("commented", "2026-11-23 10:30", "agent", True),
        ("commented", "2026-11-23 11:00", "requester", True),  # cycle 1, due 13:00
        ("commented", "2026-11-23 14:00", "agent", True),  # late
        ("commented", "2026-11-23 14:30", "requester", True),  # cycle 2, due 16:30
    )
    ev = run(events, "2026-11-23 16:30")
    assert ev.desired.comments == {
        # keyed by the agent reply the cycle follows (e2), not the comment that opened it (e3)
        f"standard/next_reply#{cycle_id('e2')}:late": "next reply overdue since 2026-11-23 16:30 CET",
    }
    # Cycle 1 breached too: its tag stays, but its comment is not wanted any more (the clock stopped).
    assert ev.desired.tags_present == {"sla-reply-late"}
    assert ev.metrics["next_reply"].past_cycles[0].status is MetricStatus.BREACHED


def test_reconciling_with_the_ledger_writes_each_effect_once() -> None:
    events = ticket(ANSWERED)
    ledger: dict[str, str] = {}
    written = []
    for now in [
        "2026-11-23 15:00",
        "2026-11-24 14:00",
        "2026-11-24 15:00",
        "2026-11-25 10:00",
        "2026-11-25 10:05",
    ]:
        for effect in missing_effects(run(events, now).desired, ledger):
            ledger[effect.key] = effect.ledger_value
            written.append((now, effect.key))
    assert written == [
        ("2026-11-23 15:00", "due"),
        ("2026-11-24 14:00", "tag:sla-warning"),
        ("2026-11-24 14:00", "comment:standard/resolution:warning"),
        ("2026-11-25 10:00", "tag:sla-breached"),
        ("2026-11-25 10:00", "action:standard/resolution:breach:assignee"),
        ("2026-11-25 10:00", "action:standard/resolution:breach:priority"),
    ]
    events.append(TicketEvent("s", "T-1", "changed", at("2026-11-25 11:00"), "agent", {"status": "solved"}))
    effects = missing_effects(run(events, "2026-11-25 11:00").desired, ledger)
    assert [(e.key, e.kind) for e in effects] == [("tag:sla-warning", EffectKind.REMOVE_TAG)]


def test_a_ticket_that_stops_matching_loses_the_connectors_tags() -> None:
    ps = load_policies([{**POLICY, "match": {"tags_none": ["internal"]}}], CALENDARS)
    events = ticket(("changed", "2026-11-23 11:00", "agent", {"tags": ["internal"]}))
    ev = evaluate(ps, CALENDARS, events, at("2026-11-24 14:00"))
    assert ev.policy_id is None
    assert ev.desired.tags_absent == ALL_TAGS and ev.desired.due is None


def _single_level(level: dict[str, Any]) -> Any:
    cfg = {
        "id": "one",
        "metrics": {"first_response": {"calendar": "berlin", "targets": {"high": "2h"}}},
        "escalations": [{"name": "l", "metric": "first_response", **level}],
    }
    return load_policies([cfg], CALENDARS)


def test_before_longer_than_the_target_is_reached_at_the_start() -> None:
    ps = _single_level({"before": "3h", "actions": [{"tag": "early"}]})
    ev = evaluate(ps, CALENDARS, ticket(), at("2026-11-23 10:00"))
    lv = ev.metrics["first_response"].escalations[0]
    assert (lv.due_at, lv.reached) == (at("2026-11-23 10:00"), True)
    assert ev.desired.tags_present == {"early"}
    assert ev.next_check == at("2026-11-23 12:00")


def test_share_above_100_percent_is_a_breach_level_whose_tag_stays() -> None:
    ps = _single_level({"at": "150%", "actions": [{"tag": "very-late"}]})
    events = ticket(("commented", "2026-11-24 09:30", "agent", True))
    running = evaluate(ps, CALENDARS, events, at("2026-11-23 12:30"))  # breached at 12:00
    assert running.next_check == at("2026-11-23 13:00")  # 150% of 2h: 3h after 10:00
    assert running.desired.tags_present == frozenset()
    ev = evaluate(ps, CALENDARS, events, at("2026-11-24 10:00"))  # answered after 7h30m
    assert ev.metrics["first_response"].escalations[0].due_at == at("2026-11-23 13:00")
    assert ev.desired.tags_present == {"very-late"}


def test_after_offset_counts_business_time_over_the_weekend() -> None:
    ps = _single_level({"after": "4h", "actions": [{"tag": "x"}]})
    created = [TicketEvent("c", "T-1", "created", at("2026-11-27 14:00"), "requester", {"priority": "high"})]
    ev = evaluate(ps, CALENDARS, created, at("2026-11-27 16:30"))
    assert ev.metrics["first_response"].breached_at == at("2026-11-27 16:00")
    assert ev.next_check == at("2026-11-30 12:00")  # 1h on Friday, 3h on Monday


def test_untracked_priority_wants_no_effects_but_removes_managed_tags() -> None:
    events = [TicketEvent("c", "T-1", "created", at("2026-11-23 10:00"), "requester", {"priority": "low"})]
    ev = evaluate(POLICIES, CALENDARS, events, at("2026-11-25 10:00"))
    assert ev.policy_id == "standard" and ev.metrics == {}
    assert (ev.desired.due, ev.desired.tags_present, ev.desired.tags_absent) == (None, frozenset(), ALL_TAGS)
