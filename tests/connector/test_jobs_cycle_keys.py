"""Next-reply cycle keys through the look job: the ledger's keys go into the evaluation, so a late
agent reply timed before the open cycle does not re-key it and its comment is posted once.

The real engine, the real Redis, and the test-only testdesk client over HTTP faked with `responses`
(a stateful comments list, so the client's marker check sees what was posted).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
import responses

from connector.config.loader import Config, config_from_dict
from connector.jobs.context import Context
from connector.state import store, timers
from connector.state.ticket_view import ticket_state
from sla.events import EventKind, TicketEvent
from sla.metrics import cycle_id

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fakes.harness import Clock, drain, make_context, post  # noqa: E402
from fakes.sla_config import created  # noqa: E402

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
BASE = "https://desk.test"
WARN = f"comment:replies/next_reply#{cycle_id('a2')}:warn"
PRIORITIES = ("low", "normal", "high", "urgent")


def reply_config(escalate: bool = True) -> Config:
    """Next reply within 2h on a 24x7 calendar; at 50% a comment (unless not `escalate`)."""
    from fakes import testdesk

    testdesk.register()
    policy = {
        "id": "replies",
        "version": 1,
        "metrics": {"next_reply": {"calendar": "always", "targets": dict.fromkeys(PRIORITIES, "2h")}},
        "escalations": [
            {"name": "warn", "metric": "next_reply", "at": "50%", "actions": [{"comment": "reply soon"}]}
        ] if escalate else [],
    }
    raw = {
        "instances": {"desk": {"product": "testdesk", "dry_run": False, "base_url": BASE}},
        "calendars": {"always": {"timezone": "UTC", "hours": "24x7"}},
        "policies": [policy],
    }
    return config_from_dict(raw, env={}, source="<test>")


def reply(event_id: str, minutes: int, actor: str) -> dict[str, Any]:
    at = T0 + timedelta(minutes=minutes)
    return TicketEvent(event_id, "T-1", EventKind.COMMENTED, at, actor, public=True).to_dict()


class Desk:
    """The testdesk ticket T-1: its comments as posted, and every POST."""

    def __init__(self, rsps: responses.RequestsMock) -> None:
        self.comments: list[dict[str, str]] = []
        rsps.assert_all_requests_are_fired = False
        rsps.add(responses.PUT, f"{BASE}/tickets/T-1", json={})
        rsps.add_callback(responses.GET, f"{BASE}/tickets/T-1/comments", self._list)
        rsps.add_callback(responses.POST, f"{BASE}/tickets/T-1/comments", self._post)

    def _list(self, request: Any) -> tuple[int, dict[str, str], str]:
        return 200, {}, json.dumps({"comments": self.comments})

    def _post(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.comments.append({"body": json.loads(request.body)["body"]})
        return 201, {}, "{}"


def warned(conn: redis.Redis, ctx: Context, clock: Clock) -> None:
    """Agent replies a0 and a2, the requester's r2 at 09:00; the warning is due at 10:00."""
    events = [created("T-1", T0, status="open", priority="high"), reply("a0", 5, "agent")]
    events += [reply("a2", 40, "agent"), reply("r2", 60, "requester")]
    post(conn, "d1", "T-1", events)
    clock.now = (T0 + timedelta(minutes=150)).timestamp()
    drain(ctx)


def test_a_late_agent_reply_before_the_open_cycle_does_not_post_its_comment_again(
    redis_conn: redis.Redis,
) -> None:
    clock = Clock(T0)
    ctx = make_context(redis_conn, reply_config(), clock=clock)  # the real evaluate
    with responses.RequestsMock() as rsps:
        desk = Desk(rsps)
        warned(redis_conn, ctx, clock)
        assert len(desk.comments) == 1
        assert f"[sla-connector:{WARN.removeprefix('comment:')}]" in desk.comments[0]["body"]
        # a2b, written at 08:50, delivered now: the cycle would follow it, but keeps its key.
        post(redis_conn, "d2", "T-1", [reply("a2b", 50, "agent")])
        clock.advance(60)
        drain(ctx)
        timers.schedule(redis_conn, "desk", "T-1", clock.now)
        drain(ctx, fire_timers_at=clock.now)
    assert len(desk.comments) == 1
    ledger = store.load_record(redis_conn, "desk", "T-1").ledger
    assert {k for k in ledger if k.startswith("comment:")} == {WARN}
    # The ticket API evaluates with the same keys, so it shows the key the look job uses.
    state = ticket_state(redis_conn, ctx.config, "desk", "T-1", clock.dt)
    assert state["metrics"]["next_reply"]["cycle_id"] == cycle_id("a2")


def test_the_marker_check_still_stops_a_second_post_when_the_ledger_write_was_lost(
    redis_conn: redis.Redis,
) -> None:
    clock = Clock(T0)
    ctx = make_context(redis_conn, reply_config(), clock=clock)
    with responses.RequestsMock() as rsps:
        desk = Desk(rsps)
        warned(redis_conn, ctx, clock)
        # A worker died between the product's answer and the ledger write.
        redis_conn.hdel(store.ticket_key("desk", "T-1"), WARN)
        clock.advance(60)
        timers.schedule(redis_conn, "desk", "T-1", clock.now)
        drain(ctx, fire_timers_at=clock.now)
    assert len(desk.comments) == 1
    assert store.load_record(redis_conn, "desk", "T-1").ledger[WARN] == "posted"  # recorded again


def test_a_counted_breach_keeps_its_key_when_a_late_agent_reply_arrives(redis_conn: redis.Redis) -> None:
    # No escalation on next_reply: the ledger holds nothing for the cycle, only its counted breach.
    from connector.state import status

    config = reply_config(escalate=False)
    clock = Clock(T0)
    ctx = make_context(redis_conn, config, clock=clock)
    events = [created("T-1", T0, status="open", priority="high"), reply("a0", 5, "agent")]

    def breaches() -> float:
        return sum(status.counters(redis_conn).get("breaches", {}).values())

    with responses.RequestsMock() as rsps:
        Desk(rsps)  # the due date is written
        post(redis_conn, "d1", "T-1", [*events, reply("r1", 60, "requester")])  # due 11:00
        clock.now = (T0 + timedelta(minutes=200)).timestamp()
        drain(ctx)
        assert breaches() == 1
        post(redis_conn, "d2", "T-1", [reply("a1", 30, "agent")])  # written at 08:30, delivered now
        clock.advance(60)
        drain(ctx)
    assert breaches() == 1  # the same breach, counted once
