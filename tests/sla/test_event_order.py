"""Events at the same instant follow the order of their ids, numbers compared as numbers (issue 9, item 3).

Jira's changelog and comment ids, and Zendesk's comment and audit ids, are numbers that grow with
time: `comment:999` was written before `comment:1000`, which text comparison gets backwards.

Berlin wall-clock times (CET, UTC+1); Mon-Fri 09:00-17:00; 2026-11-23 is a Monday.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from sla.calendar import BusinessCalendar
from sla.evaluate import evaluate
from sla.events import TicketEvent, natural_key
from sla.metrics import MetricStatus
from sla.policy import load_policies
from sla.timeline import build_timeline

BERLIN = ZoneInfo("Europe/Berlin")
CALENDARS = {
    "berlin": BusinessCalendar.from_config(
        {"timezone": "Europe/Berlin", "hours": {"mon-fri": ["09:00-17:00"]}}, name="berlin"
    ),
}
TARGETS = {"normal": "4h"}
POLICIES = load_policies(
    [
        {
            "id": "p",
            "metrics": {
                m: {"calendar": "berlin", "targets": TARGETS}
                for m in ("first_response", "next_reply", "resolution")
            },
        }
    ],
    CALENDARS,
)
H = timedelta(hours=1)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN)


def created() -> TicketEvent:
    return TicketEvent(
        "jira:1:created", "1", "created", at("2026-11-23 10:00"), "requester", {"priority": "normal"}
    )


def comment(cid: int, when: str, actor: str) -> TicketEvent:
    return TicketEvent(f"jira:1:comment:{cid}", "1", "commented", at(when), actor, public=True)


def change(hid: int, when: str, status: str) -> TicketEvent:
    return TicketEvent(f"jira:1:changelog:{hid}", "1", "changed", at(when), "agent", {"status": status})


def test_ids_compare_their_numbers_as_numbers() -> None:
    ids = ["comment:1000", "comment:999", "comment:10", "comment:9", "comment:09", "audit:2", "comment:"]
    assert sorted(ids, key=natural_key) == [
        "audit:2",
        "comment:",
        "comment:09",
        "comment:9",
        "comment:10",
        "comment:999",
        "comment:1000",
    ]
    assert natural_key("zendesk:5158:comment:14543565489940") < natural_key(
        "zendesk:5158:comment:100000000000000"
    )
    # Uuids and other text still compare, whatever they hold.
    assert sorted(["zendesk:d4f5c389", "zendesk:0f4a1c7e"], key=natural_key) == [
        "zendesk:0f4a1c7e",
        "zendesk:d4f5c389",
    ]


def test_a_requester_comment_after_an_agent_reply_in_the_same_second_opens_a_cycle() -> None:
    # The agent's reply 999 was written before the requester's comment 1000, in the same second:
    # the requester's question is open (text order read it as answered after 0 s).
    events = [
        created(),
        comment(500, "2026-11-23 10:30", "agent"),  # first response
        comment(999, "2026-11-23 11:00", "agent"),
        comment(1000, "2026-11-23 11:00", "requester"),
    ]
    nr = evaluate(POLICIES, CALENDARS, events, at("2026-11-23 12:00")).metrics["next_reply"]
    assert (nr.status, nr.started_at, nr.elapsed, nr.deadline) == (
        MetricStatus.RUNNING,
        at("2026-11-23 11:00"),
        H,
        at("2026-11-23 15:00"),
    )
    assert nr.past_cycles == ()


def test_two_status_changes_in_the_same_second_end_in_the_later_one() -> None:
    # pending (history 999) then open again (history 1000), in one second: the clock runs.
    events = [created(), change(999, "2026-11-23 11:00", "pending"), change(1000, "2026-11-23 11:00", "open")]
    res = evaluate(POLICIES, CALENDARS, events, at("2026-11-23 12:00")).metrics["resolution"]
    assert (res.status, res.elapsed, res.deadline) == (MetricStatus.RUNNING, 2 * H, at("2026-11-23 14:00"))


@given(
    st.lists(st.integers(0, 10**15), min_size=1, max_size=8, unique=True), st.randoms(use_true_random=False)
)
def test_at_one_instant_the_highest_numbered_change_wins(numbers: list[int], rnd: random.Random) -> None:
    statuses = ["open", "pending", "on_hold", "solved", "closed"]
    events = [change(n, "2026-11-23 11:00", rnd.choice(statuses)) for n in numbers]
    last = max(events, key=lambda e: int(e.event_id.rsplit(":", 1)[1]))
    rnd.shuffle(events)
    tl = build_timeline([created(), *events], at("2026-11-23 12:00"))
    assert tl is not None and tl.statuses[-1][1] is last.fields["status"]
    assert [e.event_id for e in tl.events[1:]] == [f"jira:1:changelog:{n}" for n in sorted(numbers)]
