"""Evaluation of the clocks, pinned by value on a real Berlin business calendar (Mon-Fri 09-17).

Times in these tests are Berlin wall-clock times (CET in November, UTC+1). 2026-11-23 is a Monday.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sla.calendar import BusinessCalendar
from sla.evaluate import evaluate
from sla.events import TicketEvent
from sla.metrics import MetricStatus, cycle_id
from sla.policy import load_policies

BERLIN = ZoneInfo("Europe/Berlin")
CALENDARS = {
    "berlin": BusinessCalendar.from_config(
        {"timezone": "Europe/Berlin", "hours": {"mon-fri": ["09:00-17:00"]}, "holidays": {"country": "DE"}},
        name="berlin",
    ),
    "always": BusinessCalendar.from_config({"timezone": "UTC", "hours": "24x7"}, name="always"),
}
POLICY = {
    "id": "standard",
    "metrics": {
        "first_response": {"calendar": "berlin", "targets": {"urgent": "30m", "high": "1h", "normal": "4h"}},
        "next_reply": {"calendar": "berlin", "targets": {"urgent": "1h", "high": "2h", "normal": "8h"}},
        "resolution": {
            "calendar": "berlin",
            "targets": {"urgent": "4h", "high": "16h", "normal": "40h", "low": "80h"},
        },
    },
}
POLICIES = load_policies([POLICY], CALENDARS)
H = timedelta(hours=1)


def at(text: str) -> datetime:
    """Berlin wall-clock time, e.g. at("2026-11-23 10:00")."""
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN)


class Ticket:
    """Builds one ticket's events, one readable line per event."""

    def __init__(
        self, created: str | None = "2026-11-23 10:00", ticket_id: str = "T-1", **fields: Any
    ) -> None:
        self.ticket_id = ticket_id
        self.events: list[TicketEvent] = []
        fields = {"status": "new", "priority": "normal", **fields}
        if created is not None:
            self._add("created", created, "requester", fields)

    def _add(
        self, kind: str, when: str, actor: str = "other", fields: Any = None, public: bool | None = None
    ):
        ev = TicketEvent(
            f"e{len(self.events) + 1}", self.ticket_id, kind, at(when), actor, fields or {}, public
        )
        self.events.append(ev)
        return self

    def reply(self, when: str, actor: str = "agent", public: bool = True) -> Ticket:
        return self._add("commented", when, actor, public=public)

    def status(self, when: str, status: str, actor: str = "agent") -> Ticket:
        return self._add("changed", when, actor, {"status": status})

    def change(self, when: str, **fields: Any) -> Ticket:
        return self._add("changed", when, "agent", fields)

    def delete(self, when: str) -> Ticket:
        return self._add("deleted", when)

    def evaluate(self, now: str, policies: Any = POLICIES, **kw: Any):
        return evaluate(policies, CALENDARS, self.events, at(now), **kw)


# --- first response ------------------------------------------------------------------------------


def test_first_response_met_by_an_agents_public_reply() -> None:
    ev = Ticket().reply("2026-11-23 11:30").evaluate("2026-11-24 10:00")
    fr = ev.metrics["first_response"]
    assert (ev.policy_id, ev.policy_version) == ("standard", 1)
    assert fr.status is MetricStatus.MET
    assert (fr.started_at, fr.stopped_at) == (at("2026-11-23 10:00"), at("2026-11-23 11:30"))
    assert (fr.elapsed, fr.remaining, fr.target) == (timedelta(minutes=90), timedelta(minutes=150), 4 * H)
    assert (fr.deadline, fr.breached_at, fr.priority, fr.calendar) == (None, None, "normal", "berlin")


@pytest.mark.parametrize(
    ("actor", "public"),
    [("agent", False), ("requester", True), ("connector", True), ("other", True), ("connector", False)],
)
def test_first_response_ignores_private_notes_requester_connector_and_automation(
    actor: str, public: bool
) -> None:
    ev = Ticket().reply("2026-11-23 11:00", actor, public).evaluate("2026-11-23 12:00")
    fr = ev.metrics["first_response"]
    assert fr.status is MetricStatus.RUNNING
    assert fr.deadline == at("2026-11-23 14:00")
    assert (fr.elapsed, fr.remaining, fr.stopped_at) == (2 * H, 2 * H, None)


def test_first_response_deadline_crosses_night_and_weekend() -> None:
    ev = Ticket("2026-11-27 16:00").evaluate("2026-11-27 16:30")  # Friday
    fr = ev.metrics["first_response"]
    assert fr.deadline == at("2026-11-30 12:00")  # 1h on Friday, 3h on Monday
    assert fr.elapsed == timedelta(minutes=30)


def test_exact_fit_ends_at_closing_time() -> None:
    ev = Ticket("2026-11-27 16:00", priority="high").evaluate("2026-11-27 16:30")
    assert ev.metrics["first_response"].deadline == at("2026-11-27 17:00")


def test_ticket_created_on_a_weekend_starts_counting_on_monday() -> None:
    ev = Ticket("2026-11-28 11:00").evaluate("2026-11-29 23:00")
    fr = ev.metrics["first_response"]
    assert (fr.status, fr.elapsed, fr.deadline) == (
        MetricStatus.RUNNING,
        timedelta(0),
        at("2026-11-30 13:00"),
    )


def test_first_response_breaches_and_stays_breached_when_answered_late() -> None:
    t = Ticket()
    breached = t.evaluate("2026-11-23 14:00")
    assert breached.metrics["first_response"].status is MetricStatus.BREACHED
    assert breached.metrics["first_response"].breached_at == at("2026-11-23 14:00")
    assert t.evaluate("2026-11-23 13:59:59").metrics["first_response"].status is MetricStatus.RUNNING
    late = t.reply("2026-11-23 15:00").evaluate("2026-11-24 09:00").metrics["first_response"]
    assert (late.status, late.breached_at, late.stopped_at) == (
        MetricStatus.BREACHED,
        at("2026-11-23 14:00"),
        at("2026-11-23 15:00"),
    )
    assert (late.elapsed, late.remaining, late.deadline) == (5 * H, timedelta(0), at("2026-11-23 14:00"))


def test_reply_exactly_at_the_deadline_is_in_time() -> None:
    fr = Ticket().reply("2026-11-23 14:00").evaluate("2026-11-24 09:00").metrics["first_response"]
    assert (fr.status, fr.breached_at) == (MetricStatus.MET, None)


def test_reply_after_hours_past_an_exact_fit_deadline_is_late() -> None:
    # Deadline 17:00 (exact fit); answered at 18:00: business time is still 1h, but the due date passed.
    fr = Ticket("2026-11-27 16:00", priority="high").reply("2026-11-27 18:00").evaluate("2026-11-30 09:00")
    fr = fr.metrics["first_response"]
    assert (fr.elapsed, fr.status, fr.breached_at) == (H, MetricStatus.BREACHED, at("2026-11-27 17:00"))


def test_solving_without_a_reply_cancels_first_response() -> None:
    ev = Ticket().status("2026-11-23 11:00", "solved").evaluate("2026-11-23 12:00")
    fr = ev.metrics["first_response"]
    assert (fr.status, fr.stopped_at, fr.elapsed) == (MetricStatus.CANCELLED, at("2026-11-23 11:00"), H)


def test_solving_after_the_breach_keeps_first_response_breached() -> None:
    ev = Ticket().status("2026-11-23 15:00", "solved").evaluate("2026-11-23 16:00")
    assert ev.metrics["first_response"].status is MetricStatus.BREACHED


# --- next reply ------------------------------------------------------------------------------------


def test_requester_comments_before_the_first_response_open_no_cycle() -> None:
    ev = Ticket().reply("2026-11-23 10:30", "requester").evaluate("2026-11-23 11:00")
    assert "next_reply" not in ev.metrics


def test_next_reply_cycles_are_counted_and_each_keeps_its_outcome() -> None:
    t = (
        Ticket()
        .reply("2026-11-23 10:30")  # first response
        .reply("2026-11-23 11:00", "requester")  # cycle 1 opens
        .reply("2026-11-23 11:30", "agent", public=False)  # private: does not answer
        .reply("2026-11-23 12:00", "connector")  # ours: does not answer
        .reply("2026-11-23 13:00")  # cycle 1 met after 2h
        .reply("2026-11-23 14:00", "requester")  # cycle 2 opens
        .reply("2026-11-23 15:00", "requester")  # same cycle
        .reply("2026-11-24 16:00")  # cycle 2 answered after 10h: breached (8h)
        .reply("2026-11-25 09:30", "requester")  # cycle 3 opens
    )
    nr = t.evaluate("2026-11-25 10:00").metrics["next_reply"]
    assert (nr.cycle, nr.status, nr.started_at, nr.elapsed) == (
        3,
        MetricStatus.RUNNING,
        at("2026-11-25 09:30"),
        timedelta(minutes=30),
    )
    assert nr.deadline == at("2026-11-26 09:30")
    assert nr.key == f"next_reply#{cycle_id('e9')}"  # the agent reply it follows, not its opener e10
    one, two = nr.past_cycles
    assert (one.cycle, one.status, one.elapsed, one.stopped_at) == (
        1,
        MetricStatus.MET,
        2 * H,
        at("2026-11-23 13:00"),
    )
    assert (two.cycle, two.status, two.elapsed) == (2, MetricStatus.BREACHED, 10 * H)
    assert two.breached_at == at("2026-11-24 14:00")
    assert (
        t.evaluate("2026-11-25 10:00").to_dict()["metrics"]["next_reply"]["past_cycles"][1]["status"]
        == "breached"
    )


def test_next_reply_is_cancelled_by_solving() -> None:
    t = (
        Ticket()
        .reply("2026-11-23 10:30")
        .reply("2026-11-23 11:00", "requester")
        .status("2026-11-23 12:00", "solved")
    )
    nr = t.evaluate("2026-11-24 12:00").metrics["next_reply"]
    assert (nr.status, nr.stopped_at) == (MetricStatus.CANCELLED, at("2026-11-23 12:00"))


def test_next_reply_cycle_after_first_response_was_cancelled() -> None:
    t = Ticket().status("2026-11-23 11:00", "solved").reply("2026-11-24 10:00", "requester")
    t.status("2026-11-24 10:00", "open")
    nr = t.evaluate("2026-11-24 11:00").metrics["next_reply"]
    assert (nr.cycle, nr.status, nr.elapsed) == (1, MetricStatus.RUNNING, H)


# --- resolution ------------------------------------------------------------------------------------


def test_resolution_pauses_across_nights_and_weekends_and_resumes() -> None:
    t = Ticket().status("2026-11-23 12:00", "pending").status("2026-11-25 15:00", "open")
    paused = t.evaluate("2026-11-24 10:00").metrics["resolution"]
    assert (paused.status, paused.elapsed, paused.remaining, paused.deadline) == (
        MetricStatus.PAUSED,
        2 * H,
        38 * H,
        None,
    )
    assert paused.paused == ((at("2026-11-23 12:00"), None),)
    res = t.evaluate("2026-11-26 10:00").metrics["resolution"]
    assert (res.status, res.elapsed) == (MetricStatus.RUNNING, 5 * H)  # 2h Mon, 2h Wed, 1h Thu
    assert res.paused == ((at("2026-11-23 12:00"), at("2026-11-25 15:00")),)
    # 36h left after Wednesday: Thu 8, Fri 8, Mon 8, Tue 8, Wed 4 -> Wed 2 Dec 13:00
    assert res.deadline == at("2026-12-02 13:00")


def test_consecutive_pause_statuses_are_one_pause_and_open_new_is_not_a_pause() -> None:
    t = Ticket().status("2026-11-23 11:00", "pending").status("2026-11-23 12:00", "on_hold")
    t.status("2026-11-23 13:00", "open")
    res = t.evaluate("2026-11-23 14:00").metrics["resolution"]
    assert res.paused == ((at("2026-11-23 11:00"), at("2026-11-23 13:00")),)
    assert res.elapsed == 2 * H


def test_policy_pause_statuses_are_configurable() -> None:
    ps = load_policies([{**POLICY, "pause_statuses": ["on_hold"]}], CALENDARS)
    t = Ticket().status("2026-11-23 11:00", "pending")
    assert t.evaluate("2026-11-23 13:00", ps).metrics["resolution"].status is MetricStatus.RUNNING
    t.status("2026-11-23 13:00", "on_hold")
    assert t.evaluate("2026-11-23 15:00", ps).metrics["resolution"].elapsed == 3 * H


def test_reopening_resumes_resolution_with_elapsed_kept() -> None:
    t = Ticket().status("2026-11-23 12:00", "solved")
    met = t.evaluate("2026-11-23 16:00").metrics["resolution"]
    assert (met.status, met.elapsed, met.stopped_at, met.deadline) == (
        MetricStatus.MET,
        2 * H,
        at("2026-11-23 12:00"),
        None,
    )
    t.status("2026-11-24 10:00", "open")
    res = t.evaluate("2026-11-24 11:00").metrics["resolution"]
    assert (res.status, res.elapsed, res.stopped_at) == (MetricStatus.RUNNING, 3 * H, None)
    assert res.deadline == at("2026-11-30 16:00")  # 2h Mon + Tue 7, Wed 8, Thu 8, Fri 8, Mon 7
    t.status("2026-11-24 12:00", "closed")
    final = t.evaluate("2026-11-30 09:00").metrics["resolution"]
    assert (final.status, final.elapsed, final.stopped_at) == (
        MetricStatus.MET,
        4 * H,
        at("2026-11-24 12:00"),
    )


def test_breached_resolution_stays_breached_after_solving() -> None:
    t = Ticket(priority="urgent").status("2026-11-23 15:00", "solved")
    res = t.evaluate("2026-11-23 16:00").metrics["resolution"]
    assert (res.status, res.breached_at) == (MetricStatus.BREACHED, at("2026-11-23 14:00"))


def test_ticket_created_solved_is_met_at_once() -> None:
    res = Ticket(status="closed").evaluate("2026-11-23 12:00").metrics["resolution"]
    assert (res.status, res.elapsed, res.stopped_at) == (
        MetricStatus.MET,
        timedelta(0),
        at("2026-11-23 10:00"),
    )


def test_ticket_created_pending_is_paused_from_the_start() -> None:
    res = Ticket(status="pending").evaluate("2026-11-23 12:00").metrics["resolution"]
    assert (res.status, res.elapsed, res.deadline) == (MetricStatus.PAUSED, timedelta(0), None)


# --- priority --------------------------------------------------------------------------------------


def test_priority_change_applies_the_new_target_from_the_start() -> None:
    t = Ticket().change("2026-11-23 11:00", priority="urgent")
    res = t.evaluate("2026-11-23 12:00").metrics["resolution"]
    assert (res.target, res.priority, res.deadline) == (4 * H, "urgent", at("2026-11-23 14:00"))
    late = t.evaluate("2026-11-23 15:00").metrics["resolution"]
    assert (late.status, late.breached_at) == (MetricStatus.BREACHED, at("2026-11-23 14:00"))


def test_lowering_priority_can_lift_a_breach_while_running() -> None:
    t = Ticket(priority="urgent").change("2026-11-23 15:00", priority="normal")
    res = t.evaluate("2026-11-23 16:00").metrics["resolution"]
    assert (res.status, res.target, res.elapsed) == (MetricStatus.RUNNING, 40 * H, 6 * H)


def test_a_stopped_clock_keeps_the_target_of_the_priority_it_stopped_under() -> None:
    t = Ticket().reply("2026-11-23 12:00").change("2026-11-23 13:00", priority="urgent")
    fr = t.evaluate("2026-11-23 14:00").metrics["first_response"]
    assert (fr.target, fr.priority, fr.status) == (4 * H, "normal", MetricStatus.MET)


def test_priority_without_target_is_not_tracked() -> None:
    ev = Ticket(priority="low").evaluate("2026-11-23 12:00")
    assert sorted(ev.metrics) == ["resolution"]
    ev = Ticket(priority=None).evaluate("2026-11-23 12:00")
    assert ev.metrics == {} and ev.policy_id == "standard" and ev.next_check is None


# --- tickets without a creation event, deleted, unknown ------------------------------------------


def test_without_created_event_the_earliest_event_starts_the_clocks_and_latest_fields_win() -> None:
    t = Ticket(created=None)
    t.change("2026-11-23 12:00", priority="urgent")
    t.change("2026-11-23 10:00", priority="high", status="open")  # earlier, arrives later
    ev = t.evaluate("2026-11-23 12:30")
    res = ev.metrics["resolution"]
    assert (res.started_at, res.priority, res.target) == (at("2026-11-23 10:00"), "urgent", 4 * H)
    assert res.deadline == at("2026-11-23 14:00")


def test_deleted_ticket_cancels_everything_and_wants_no_effects() -> None:
    ps = load_policies(
        [
            {
                **POLICY,
                "escalations": [
                    {"name": "w", "metric": "resolution", "at": "10%", "actions": [{"tag": "w"}]}
                ],
            }
        ],
        CALENDARS,
    )
    t = Ticket().reply("2026-11-23 11:00").delete("2026-11-23 15:00").reply("2026-11-23 16:00", "requester")
    ev = t.evaluate("2026-11-24 10:00", ps)
    assert (ev.policy_id, ev.policy_version, ev.next_check) == (None, None, None)
    assert {m.status for m in ev.metrics.values()} == {MetricStatus.CANCELLED}
    assert ev.metrics["resolution"].stopped_at == at("2026-11-23 15:00")
    assert ev.metrics["resolution"].elapsed == 5 * H
    assert "next_reply" not in ev.metrics  # the comment after deletion is ignored
    assert ev.desired.due is None and not ev.desired.tags_present and not ev.desired.tags_absent
    assert not ev.desired.comments and not ev.desired.actions


def test_no_events_is_an_unknown_ticket() -> None:
    ev = evaluate(POLICIES, CALENDARS, [], at("2026-11-23 10:00"))
    assert (ev.ticket_id, ev.policy_id, ev.metrics, ev.next_check) == ("", None, {}, None)


def test_events_after_now_are_not_seen() -> None:
    t = Ticket().reply("2026-11-23 12:00")
    assert t.evaluate("2026-11-23 11:00").metrics["first_response"].status is MetricStatus.RUNNING
    ev = evaluate(POLICIES, CALENDARS, Ticket("2026-11-24 10:00").events, at("2026-11-23 10:00"))
    assert ev.ticket_id == ""


def test_events_before_creation_count_from_creation() -> None:
    t = Ticket().reply("2026-11-23 09:59")  # the webhook's clock is a minute behind
    fr = t.evaluate("2026-11-23 11:00").metrics["first_response"]
    assert (fr.status, fr.elapsed, fr.stopped_at) == (MetricStatus.MET, timedelta(0), at("2026-11-23 10:00"))


def test_events_of_two_tickets_are_refused() -> None:
    events = Ticket().events + Ticket(ticket_id="T-2").events
    with pytest.raises(
        ValueError, match=r"^evaluate: events of several tickets given together: \['T-1', 'T-2'\]$"
    ):
        evaluate(POLICIES, CALENDARS, events, at("2026-11-23 11:00"))


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^evaluate: now=.* must be timezone-aware$"):
        evaluate(POLICIES, CALENDARS, Ticket().events, datetime(2026, 11, 23, 11))


def test_no_matching_policy() -> None:
    ps = load_policies([{**POLICY, "match": {"project": ["SUP"]}}], CALENDARS)
    ev = Ticket(project="OPS").evaluate("2026-11-23 11:00", ps)
    assert (ev.policy_id, ev.metrics, ev.next_check) == (None, {}, None)
    assert Ticket(project="SUP").evaluate("2026-11-23 11:00", ps).policy_id == "standard"


def test_instance_condition_uses_the_instance_argument() -> None:
    ps = load_policies([{**POLICY, "match": {"instance": ["acme-jira"]}}], CALENDARS)
    assert Ticket().evaluate("2026-11-23 11:00", ps, instance="acme-jira").policy_id == "standard"
    assert Ticket().evaluate("2026-11-23 11:00", ps, instance="acme-zendesk").policy_id is None
    assert Ticket().evaluate("2026-11-23 11:00", ps).policy_id is None


def test_policy_follows_the_tickets_current_attributes() -> None:
    ps = load_policies(
        [{**POLICY, "id": "vip", "match": {"tags_any": ["vip"]}}, {**POLICY, "id": "default"}], CALENDARS
    )
    t = Ticket()
    assert t.evaluate("2026-11-23 11:00", ps).policy_id == "default"
    t.change("2026-11-23 11:00", tags=["vip"])
    assert t.evaluate("2026-11-23 12:00", ps).policy_id == "vip"


def test_version_selection_by_creation_time_in_evaluate() -> None:
    v2 = {**POLICY, "version": 2, "effective_from": "2026-11-23T10:00:00+01:00"}
    v2["metrics"] = {"resolution": {"calendar": "always", "targets": {"normal": "1h"}}}
    ps = load_policies([POLICY, v2], CALENDARS)
    before = Ticket("2026-11-23 09:59").evaluate("2026-11-23 11:00", ps)
    after = Ticket("2026-11-23 10:00").evaluate("2026-11-23 11:00", ps)
    assert (before.policy_version, after.policy_version) == (1, 2)
    assert after.metrics["resolution"].status is MetricStatus.BREACHED
    ps3 = load_policies([POLICY, {**v2, "recalculate": True}], CALENDARS)
    moved = Ticket("2026-11-20 09:00").evaluate("2026-11-23 11:00", ps3)
    assert (moved.policy_version, moved.metrics["resolution"].calendar) == (2, "always")


def test_24x7_calendar_counts_real_time() -> None:
    ps = load_policies(
        [{"id": "p", "metrics": {"resolution": {"calendar": "always", "targets": {"normal": "30h"}}}}],
        CALENDARS,
    )
    res = Ticket("2026-11-28 20:00").evaluate("2026-11-29 20:00", ps).metrics["resolution"]
    assert (res.elapsed, res.deadline) == (24 * H, at("2026-11-30 02:00"))


def test_to_dict_is_json_ready() -> None:
    import json

    d = Ticket().status("2026-11-23 11:00", "pending").evaluate("2026-11-23 12:00").to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["metrics"]["resolution"]["paused"] == [["2026-11-23T10:00:00+00:00", None]]
    assert d["metrics"]["resolution"]["elapsed"] == 3600
    assert d["metrics"]["first_response"]["deadline"] == "2026-11-23T13:00:00+00:00"
    assert d["metrics"]["first_response"]["status"] == "running"
    assert d["policy_id"] == "standard" and d["next_check"] == "2026-11-23T13:00:00+00:00"


@pytest.mark.parametrize("ids", [("a", "b"), ("b", "a")])
def test_reply_and_solve_at_the_same_instant_is_a_reply_whatever_the_ids(ids: tuple[str, str]) -> None:
    created = TicketEvent("c", "T-1", "created", at("2026-11-23 10:00"), "requester", {"priority": "normal"})
    reply = TicketEvent(ids[0], "T-1", "commented", at("2026-11-23 11:00"), "agent", public=True)
    solve = TicketEvent(ids[1], "T-1", "changed", at("2026-11-23 11:00"), "agent", {"status": "solved"})
    ev = evaluate(POLICIES, CALENDARS, [created, reply, solve], at("2026-11-23 12:00"))
    fr = ev.metrics["first_response"]
    assert (fr.status, fr.stopped_at, fr.elapsed) == (MetricStatus.MET, at("2026-11-23 11:00"), H)
    assert ev.metrics["resolution"].status is MetricStatus.MET


def test_24x7_calendar_across_the_autumn_dst_change_counts_real_hours() -> None:
    cals = {
        "always": BusinessCalendar.from_config({"timezone": "Europe/Berlin", "hours": "24x7"}, name="always")
    }
    ps = load_policies(
        [{"id": "p", "metrics": {"resolution": {"calendar": "always", "targets": {"normal": "24h"}}}}], cals
    )
    events = Ticket("2026-10-24 12:00").events  # Berlin leaves summer time on Sunday 25 October
    res = evaluate(ps, cals, events, at("2026-10-25 11:00")).metrics["resolution"]
    assert res.deadline == at("2026-10-25 11:00")  # 24 real hours: the wall clock shows 23h later
    assert res.status is MetricStatus.BREACHED


def test_requester_thanks_on_a_solved_ticket_opens_no_cycle() -> None:
    t = Ticket().reply("2026-11-23 10:30").status("2026-11-23 11:00", "solved")
    t.reply("2026-11-23 12:00", "requester")
    assert "next_reply" not in t.evaluate("2026-11-24 12:00").metrics


def test_requester_comment_on_a_solved_ticket_opens_a_cycle_when_reopened() -> None:
    t = Ticket().reply("2026-11-23 10:30").status("2026-11-23 11:00", "solved")
    t.reply("2026-11-23 12:00", "requester").status("2026-11-24 09:00", "open")
    nr = t.evaluate("2026-11-24 10:00").metrics["next_reply"]
    assert (nr.cycle, nr.started_at, nr.elapsed, nr.status) == (
        1,
        at("2026-11-24 09:00"),
        H,
        MetricStatus.RUNNING,
    )


def test_agent_answer_while_solved_settles_a_waiting_requester() -> None:
    t = Ticket().reply("2026-11-23 10:30").status("2026-11-23 11:00", "solved")
    t.reply("2026-11-23 12:00", "requester").reply("2026-11-23 13:00").status("2026-11-24 09:00", "open")
    assert "next_reply" not in t.evaluate("2026-11-24 10:00").metrics


def test_duplicate_deliveries_that_disagree_resolve_the_same_way_in_any_order() -> None:
    created = TicketEvent("c", "T-1", "created", at("2026-11-23 10:00"), "requester", {"priority": "normal"})
    one = TicketEvent("x", "T-1", "changed", at("2026-11-23 11:00"), "agent", {"priority": "urgent"})
    two = TicketEvent("x", "T-1", "changed", at("2026-11-23 11:00"), "agent", {"priority": "high"})
    a = evaluate(POLICIES, CALENDARS, [created, one, two], at("2026-11-23 12:00"))
    b = evaluate(POLICIES, CALENDARS, [two, created, one], at("2026-11-23 12:00"))
    assert a == b
    assert a.metrics["resolution"].priority == "high"  # the smaller JSON form wins: "high" < "urgent"


def test_a_calendar_missing_at_evaluation_is_a_clear_error() -> None:
    with pytest.raises(
        ValueError, match=r"^evaluate: policy 'standard' v1 uses calendar 'berlin', not given$"
    ):
        evaluate(POLICIES, {}, Ticket().events, at("2026-11-23 12:00"))
