"""`notify: <channel>` escalation actions: parsed and checked against the configured channels, wanted
once per level and clock while the clock is open, rendered like comments, planned through the ledger.

Berlin wall-clock times (CET, UTC+1); Mon-Fri 09:00-17:00; 2026-11-23 is a Monday.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sla.calendar import BusinessCalendar
from sla.effects import DesiredEffects, Effect, EffectKind, missing_effects, notice_channel
from sla.evaluate import evaluate
from sla.events import TicketEvent
from sla.notices import DEFAULT_TEMPLATE, subject_and_body
from sla.policy import Action, load_policies

BERLIN = ZoneInfo("Europe/Berlin")
CALENDARS = {
    "berlin": BusinessCalendar.from_config(
        {"timezone": "Europe/Berlin", "hours": {"mon-fri": ["09:00-17:00"]}}, name="berlin"
    ),
}
CHANNELS = {"oncall-slack": DEFAULT_TEMPLATE, "team-lead": "Breach of {ticket}\n{metric} was due {deadline}."}
POLICY: dict[str, Any] = {
    "id": "standard",
    "metrics": {
        "next_reply": {"calendar": "berlin", "targets": {"high": "2h"}},
        "resolution": {"calendar": "berlin", "targets": {"high": "16h"}},
    },
    "escalations": [
        {"name": "warning", "metric": "resolution", "at": "75%", "actions": [{"notify": "oncall-slack"}]},
        {
            "name": "breach",
            "metric": "resolution",
            "at": "breach",
            "actions": [{"tag": "sla-breached"}, {"notify": "oncall-slack"}, {"notify": "team-lead"}],
        },
        {"name": "late", "metric": "next_reply", "at": "breach", "actions": [{"notify": "team-lead"}]},
    ],
}
POLICIES = load_policies([POLICY], CALENDARS, CHANNELS)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN)


def created(*more: TicketEvent) -> list[TicketEvent]:
    first = TicketEvent("c", "T-1", "created", at("2026-11-23 10:00"), "requester", {"priority": "high"})
    return [first, *more]


def policy_with_actions(actions: list[dict[str, str]]) -> dict[str, Any]:
    cfg = copy.deepcopy(POLICY)
    cfg["escalations"] = [{"name": "breach", "metric": "resolution", "at": "breach", "actions": actions}]
    return cfg


# ---------------------------------------------------------------- parsing and bad input


def test_notify_actions_name_their_channel() -> None:
    [policy] = POLICIES.policies
    assert [a for lv in policy.escalations for a in lv.actions if a.kind == "notify"] == [
        Action("notify", "oncall-slack"),
        Action("notify", "oncall-slack"),
        Action("notify", "team-lead"),
        Action("notify", "team-lead"),
    ]
    assert POLICIES.notice_templates == CHANNELS


def test_an_unknown_channel_is_an_error_naming_its_path_and_the_known_channels() -> None:
    other = policy_with_actions([{"tag": "x"}, {"notify": "oncall"}])
    other["id"] = "vip"
    with pytest.raises(ValueError) as exc:
        load_policies([POLICY, other], CALENDARS, CHANNELS)
    assert str(exc.value) == (
        "policies[1].escalations[0].actions[1].notify: unknown channel 'oncall' "
        "(known: oncall-slack, team-lead)"
    )


def test_notify_without_any_configured_channel_says_so() -> None:
    with pytest.raises(ValueError) as exc:
        load_policies([POLICY], CALENDARS)
    assert str(exc.value) == (
        "policies[0].escalations[0].actions[0].notify: unknown channel 'oncall-slack' "
        "(known: none: notify_channels is empty)"
    )


def test_one_channel_twice_on_one_level_is_an_error() -> None:
    cfg = policy_with_actions([{"notify": "team-lead"}, {"notify": "team-lead"}])
    with pytest.raises(
        ValueError,
        match=r"^policies\[0\]\.escalations\[0\]\.actions\[1\]\.notify: channel "
        r"'team-lead' is notified twice by this level$",
    ):
        load_policies([cfg], CALENDARS, CHANNELS)


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ({"notify": ""}, "policies[0].escalations[0].actions[0].notify: '' does not match the expected form"),
        (
            {"notify": "a b"},
            "policies[0].escalations[0].actions[0].notify: 'a b' does not match the expected form",
        ),
        ({"notify": 3}, "policies[0].escalations[0].actions[0].notify: 3 is not of type 'string'"),
        (
            {"notify": "team-lead", "tag": "x"},
            "policies[0].escalations[0].actions[0]: an action has exactly one key "
            "(tag, comment, priority, assignee or notify)",
        ),
    ],
)
def test_malformed_notify_actions_are_refused_with_their_path(action: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as exc:
        load_policies([policy_with_actions([action])], CALENDARS, CHANNELS)
    assert str(exc.value).startswith(message)


# ---------------------------------------------------------------- desired notices


def test_no_notice_before_the_level_is_reached() -> None:
    ev = evaluate(POLICIES, CALENDARS, created(), at("2026-11-24 13:59:59"))
    assert ev.desired.notices == {}


def test_a_reached_level_wants_its_notice_rendered_as_of_the_level() -> None:
    ev = evaluate(POLICIES, CALENDARS, created(), at("2026-11-24 16:00"))
    assert ev.desired.notices == {
        "standard/resolution:warning:oncall-slack": (
            "SLA warning: resolution of T-1\n"
            "resolution of T-1 (priority high) reached level warning: 12h of its 16h target elapsed, "
            "4h left; due 2026-11-25 10:00 CET."
        )
    }
    # The same text whenever it is evaluated (sent late, or again after a failure).
    later = evaluate(POLICIES, CALENDARS, created(), at("2026-11-24 16:59"))
    assert later.desired.notices == ev.desired.notices


def test_each_channel_of_a_level_gets_its_own_notice_and_template() -> None:
    ev = evaluate(POLICIES, CALENDARS, created(), at("2026-11-25 10:00"))
    assert sorted(ev.desired.notices) == [
        "standard/resolution:breach:oncall-slack",
        "standard/resolution:breach:team-lead",
        "standard/resolution:warning:oncall-slack",
    ]
    assert ev.desired.notices["standard/resolution:breach:team-lead"] == (
        "Breach of T-1\nresolution was due 2026-11-25 10:00 CET."
    )


def test_the_jira_key_is_the_ticket_people_read() -> None:
    events = [
        TicketEvent(
            "c",
            "10042",
            "created",
            at("2026-11-23 10:00"),
            "requester",
            {"priority": "high", "key": "SUP-42"},
        )
    ]
    ev = evaluate(POLICIES, CALENDARS, events, at("2026-11-25 10:00"))
    assert ev.desired.notices["standard/resolution:breach:team-lead"].startswith("Breach of SUP-42\n")


def test_no_notice_for_a_clock_that_stopped_before_the_level() -> None:
    solved = TicketEvent("s", "T-1", "changed", at("2026-11-24 15:00"), "agent", {"status": "solved"})
    ev = evaluate(POLICIES, CALENDARS, created(solved), at("2026-11-26 10:00"))
    assert ev.desired.notices == {}
    assert ev.desired.tags_present == frozenset()


def test_a_clock_that_stopped_after_the_breach_wants_no_more_notices() -> None:
    solved = TicketEvent("s", "T-1", "changed", at("2026-11-25 11:00"), "agent", {"status": "solved"})
    ev = evaluate(POLICIES, CALENDARS, created(solved), at("2026-11-25 12:00"))
    assert ev.desired.notices == {}  # like comments: only while the clock is open
    assert ev.desired.tags_present == {"sla-breached"}


def test_each_next_reply_cycle_has_its_own_notice_key() -> None:
    def comment(eid: str, when: str, actor: str) -> TicketEvent:
        return TicketEvent(eid, "T-1", "commented", at(when), actor, public=True)

    events = created(
        comment("a1", "2026-11-23 10:30", "agent"),
        comment("r1", "2026-11-23 11:00", "requester"),
        comment("a2", "2026-11-23 14:00", "agent"),  # cycle 1 answered late (breach at 13:00)
        comment("r2", "2026-11-23 14:30", "requester"),
    )
    first = evaluate(POLICIES, CALENDARS, events[:3], at("2026-11-23 13:30"))
    second = evaluate(POLICIES, CALENDARS, events, at("2026-11-23 16:30"))
    [key1] = [k for k in first.desired.notices if "next_reply" in k]
    [key2] = [k for k in second.desired.notices if "next_reply" in k]
    assert key1 != key2 and key1.endswith(":late:team-lead") and key2.endswith(":late:team-lead")


def test_to_dict_shows_the_notices() -> None:
    ev = evaluate(POLICIES, CALENDARS, created(), at("2026-11-24 16:00"))
    assert list(ev.to_dict()["desired"]["notices"]) == ["standard/resolution:warning:oncall-slack"]


# ---------------------------------------------------------------- the ledger plan


def test_missing_notices_come_last_and_only_until_the_ledger_has_them() -> None:
    desired = DesiredEffects(
        comments={"p/resolution:breach": "C"},
        notices={"p/resolution:breach:team-lead": "N2", "p/resolution:breach:oncall-slack": "N1"},
    )
    assert missing_effects(desired, {}) == [
        Effect("comment:p/resolution:breach", EffectKind.COMMENT, "C"),
        Effect("notify:p/resolution:breach:oncall-slack", EffectKind.NOTIFY, "N1"),
        Effect("notify:p/resolution:breach:team-lead", EffectKind.NOTIFY, "N2"),
    ]
    ledger = {"comment:p/resolution:breach": "posted", "notify:p/resolution:breach:oncall-slack": "sent"}
    assert missing_effects(desired, ledger) == [
        Effect("notify:p/resolution:breach:team-lead", EffectKind.NOTIFY, "N2")
    ]


def test_evaluating_again_after_the_ledger_records_them_sends_nothing() -> None:
    ev = evaluate(POLICIES, CALENDARS, created(), at("2026-11-25 10:00"))
    first = missing_effects(ev.desired, {})
    ledger = {e.key: e.ledger_value for e in first}
    assert {e.key: e.ledger_value for e in first if e.kind is EffectKind.NOTIFY} == {
        "notify:standard/resolution:breach:oncall-slack": "sent",
        "notify:standard/resolution:breach:team-lead": "sent",
        "notify:standard/resolution:warning:oncall-slack": "sent",
    }
    again = evaluate(POLICIES, CALENDARS, created(), at("2026-11-25 16:00"), applied_keys=ledger)
    assert missing_effects(again.desired, ledger) == []


def test_the_channel_of_a_notice_is_the_last_part_of_its_key() -> None:
    effect = Effect("notify:vip/next_reply#3f9a0c12de:late:ops.hook-1", EffectKind.NOTIFY, "x")
    assert notice_channel(effect) == "ops.hook-1"
    with pytest.raises(ValueError, match="is a comment, not a notice"):
        notice_channel(Effect("comment:p/resolution:breach", EffectKind.COMMENT, "x"))


@pytest.mark.parametrize(
    ("text", "subject", "body"),
    [
        ("Subject\nBody line 1\nline 2", "Subject", "Body line 1\nline 2"),
        ("  Only a line  \n", "Only a line", "Only a line"),
        ("Subject\n\n\nBody", "Subject", "Body"),
    ],
)
def test_the_first_line_is_the_subject(text: str, subject: str, body: str) -> None:
    assert subject_and_body(text) == (subject, body)
