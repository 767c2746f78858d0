"""One-shot effect keys name the policy (issue 9, item 2).

A ticket that moves to another policy (a `vip` tag added) gets that policy's comments and actions,
even when its levels have the same names; a ticket that stays on one policy keeps its keys, across
versions too, and ledgers written before keys named the policy keep theirs.

Berlin wall-clock times (CET, UTC+1); Mon-Fri 09:00-17:00; 2026-11-23 is a Monday.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sla.calendar import BusinessCalendar
from sla.effects import Effect, EffectKind, missing_effects
from sla.evaluate import Evaluation, evaluate
from sla.events import TicketEvent
from sla.metrics import cycle_id
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


def policy(pid: str, target: str, text: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": pid,
        "metrics": {
            "resolution": {"calendar": "berlin", "targets": {"high": target}},
            "next_reply": {"calendar": "berlin", "targets": {"high": "2h"}},
        },
        "escalations": [
            {
                "name": "breach",
                "metric": "resolution",
                "at": "breach",
                "actions": [{"tag": "sla-breached"}, {"comment": text}, {"assignee": f"{pid}-lead"}],
            },
            {
                "name": "late",
                "metric": "next_reply",
                "at": "breach",
                "actions": [{"comment": f"{pid} reply"}],
            },
        ],
        **extra,
    }


VIP = policy("vip", "2h", "VIP breach", match={"tags_any": ["vip"]})
STANDARD = policy("standard", "4h", "Standard breach")
POLICIES = load_policies([VIP, STANDARD], CALENDARS)
CREATED = TicketEvent("c", "T-1", "created", at("2026-11-23 10:00"), "requester", {"priority": "high"})
VIP_TAG = TicketEvent("v", "T-1", "changed", at("2026-11-23 15:00"), "agent", {"tags": ["vip"]})


def run(events: list[TicketEvent], now: str, policies: PolicySet = POLICIES, **kw: Any) -> Evaluation:
    return evaluate(policies, CALENDARS, events, at(now), **kw)


def reconcile(ledger: dict[str, str], ev: Evaluation) -> list[str]:
    """Apply what is missing; return the keys written."""
    written = []
    for effect in missing_effects(ev.desired, ledger):
        ledger[effect.key] = effect.ledger_value
        written.append(effect.key)
    return written


def test_keys_name_the_policy() -> None:
    ev = run([CREATED], "2026-11-23 14:00")
    assert ev.policy_id == "standard"
    assert ev.desired.comments == {"standard/resolution:breach": "Standard breach"}
    assert ev.desired.actions == {
        "standard/resolution:breach:assignee": (EffectKind.SET_ASSIGNEE, "standard-lead")
    }


def test_a_ticket_moving_to_another_policy_gets_its_levels_with_the_same_names() -> None:
    ledger: dict[str, str] = {}
    assert reconcile(ledger, run([CREATED], "2026-11-23 14:00")) == [
        "due",
        "tag:sla-breached",
        "comment:standard/resolution:breach",
        "action:standard/resolution:breach:assignee",
    ]
    moved = run([CREATED, VIP_TAG], "2026-11-23 15:00")
    assert moved.policy_id == "vip"  # breached too: 2h from Mon 10:00
    assert moved.desired.comments == {"vip/resolution:breach": "VIP breach"}
    assert missing_effects(moved.desired, ledger) == [
        Effect("due", EffectKind.SET_DUE, "2026-11-23T11:00:00+00:00"),  # 12:00 Berlin
        Effect("comment:vip/resolution:breach", EffectKind.COMMENT, "VIP breach"),
        Effect("action:vip/resolution:breach:assignee", EffectKind.SET_ASSIGNEE, "vip-lead"),
    ]
    reconcile(ledger, moved)
    # Back on the first policy (the tag removed): its effects were written, only its due date again.
    back = TicketEvent("u", "T-1", "changed", at("2026-11-23 16:00"), "agent", {"tags": []})
    assert reconcile(ledger, run([CREATED, VIP_TAG, back], "2026-11-23 16:30")) == ["due"]


def test_next_reply_cycles_name_the_policy_too() -> None:
    events = [
        CREATED,
        TicketEvent("a", "T-1", "commented", at("2026-11-23 10:30"), "agent", public=True),
        TicketEvent("r", "T-1", "commented", at("2026-11-23 11:00"), "requester", public=True),
    ]
    ev = run(events, "2026-11-23 13:00")
    assert ev.desired.comments == {f"standard/next_reply#{cycle_id('a')}:late": "standard reply"}


def test_a_ticket_on_one_policy_keeps_its_keys_across_versions() -> None:
    v2 = policy("standard", "4h", "Standard breach (v2)", version=2, recalculate=True)
    v2["effective_from"] = "2026-11-23T15:00:00+01:00"
    policies = load_policies([STANDARD, v2], CALENDARS)
    ledger: dict[str, str] = {}
    reconcile(ledger, run([CREATED], "2026-11-23 14:00", policies))
    later = run([CREATED], "2026-11-23 15:00", policies)
    assert (later.policy_version, list(later.desired.comments)) == (2, ["standard/resolution:breach"])
    assert missing_effects(later.desired, ledger) == []


def test_a_ledger_written_before_keys_named_the_policy_keeps_its_keys() -> None:
    # Written by an earlier release: no policy in the keys. With the ledger's keys given, the ticket's
    # current policy takes them as its own, so nothing is posted or reassigned again on upgrade.
    old = {
        "due": "2026-11-23T13:00:00+00:00",
        "tag:sla-breached": "present",
        "comment:resolution:breach": "posted",
        "action:resolution:breach:assignee": "standard-lead",
    }
    ev = run([CREATED], "2026-11-23 14:30", applied_keys=old)
    assert ev.desired.comments == {"resolution:breach": "Standard breach"}
    assert list(ev.desired.actions) == ["resolution:breach:assignee"]
    assert missing_effects(ev.desired, old) == []
    # A level that was not written before the upgrade gets the new key.
    assert list(run([CREATED], "2026-11-23 14:30", applied_keys={"due": "x"}).desired.comments) == [
        "standard/resolution:breach"
    ]
