"""Property: whatever the order, duplication and batching of deliveries and timers, and whatever write
failures RQ retries, each effect is written at most once, and once everything has arrived the ticket
shows exactly the desired state."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
import responses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.config.tuning import PipelineSettings
from connector.receiver.intake import accept
from connector.state import store, timers
from sla.effects import missing_effects
from sla.evaluate import evaluate
from sla.events import EventKind, TicketEvent
from sla.timeline import dedupe

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fakes.harness import Clock, drain, fire_scheduled, make_context, post  # noqa: E402
from fakes.sla_config import changed, created, desk_config  # noqa: E402

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
BASE = "https://desk.test"
EVENTS = [
    created("T-1", T0),
    changed("T-1", T0 + timedelta(seconds=2), "p1", priority="high"),
    changed("T-1", T0 + timedelta(seconds=4), "p2", priority="low"),
    changed("T-1", T0 + timedelta(seconds=30), "s1", status="solved"),
]

steps = st.lists(
    st.one_of(
        st.tuples(st.just("deliver"), st.integers(0, len(EVENTS) - 1)),
        st.tuples(st.just("drain"), st.just(0)),
        st.tuples(st.just("tick"), st.integers(1, 8)),
        st.tuples(st.just("fail"), st.integers(1, 2)),  # the next PUTs answer 503: RQ retries the look
        st.tuples(st.just("retry"), st.just(0)),  # RQ's scheduler moves the retries it scheduled
    ),
    max_size=25,
)


def retries_due(conn: redis.Redis) -> None:
    """Move every retry RQ scheduled to its queue (RQ schedules in real time, not the fake clock's)."""
    fire_scheduled(conn, time.time() + 86_400)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=steps, solved=st.booleans())
def test_effects_are_written_at_most_once_in_any_order(
    redis_conn: redis.Redis, steps: list, solved: bool
) -> None:
    redis_conn.flushall()
    clock = Clock(T0 + timedelta(seconds=1))
    ctx = make_context(redis_conn, desk_config(BASE, target="10s"), PipelineSettings(), clock=clock)
    events = EVENTS if solved else EVENTS[:-1]
    writes: Counter[tuple[str, str]] = Counter()
    comments: list[str] = []
    failing = [0]  # PUTs still to answer 503 (nothing written)

    def put(request):  # type: ignore[no-untyped-def]
        if failing[0]:
            failing[0] -= 1
            return 503, {}, "{}"
        body = json.loads(request.body)
        if "due" in body:
            writes[("due", body["due"])] += 1
        for tag in body.get("add_tags", []):
            writes[("add", tag)] += 1
        for tag in body.get("remove_tags", []):
            writes[("remove", tag)] += 1
        return 200, {}, "{}"

    def post_comment(request):  # type: ignore[no-untyped-def]
        comments.append(json.loads(request.body)["body"])
        return 201, {}, "{}"

    deliveries = 0
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_callback(responses.PUT, f"{BASE}/tickets/T-1", callback=put)
        rsps.add_callback(responses.POST, f"{BASE}/tickets/T-1/comments", callback=post_comment)
        rsps.add_callback(
            responses.GET,
            f"{BASE}/tickets/T-1/comments",
            callback=lambda r: (200, {}, json.dumps({"comments": [{"body": b} for b in comments]})),
        )
        for action, arg in steps:
            if action == "deliver" and arg < len(events):
                deliveries += 1
                post(redis_conn, f"d{deliveries}", "T-1", [events[arg]])
            elif action == "drain":
                drain(ctx, fire_timers_at=clock.now)
            elif action == "fail":
                failing[0] = arg
            elif action == "retry":
                retries_due(redis_conn)
                drain(ctx, fire_timers_at=clock.now)
            else:
                clock.advance(arg)
                drain(ctx, fire_timers_at=clock.now)
        # Everything arrives eventually, the product answers again, RQ's retries come due, and time
        # passes the deadline and the solve.
        failing[0] = 0
        for i, event in enumerate(events):
            post(redis_conn, f"final-{i}", "T-1", [event])
        clock.now = max(clock.now, (T0 + timedelta(seconds=40)).timestamp())
        timers.schedule(redis_conn, "desk", "T-1", 0)
        retries_due(redis_conn)
        drain(ctx, fire_timers_at=clock.now)

    assert all(n == 1 for n in writes.values()), writes
    assert len(comments) == len(set(comments)) <= 1
    due = (T0 + timedelta(seconds=10)).isoformat()
    record = store.load_record(redis_conn, "desk", "T-1")
    assert record is not None and [e.event_id for e in record.events] == [e["event_id"] for e in events]
    # The ticket shows what the engine asks for once everything has arrived.
    config = ctx.config
    full = [TicketEvent.from_dict(e) for e in events]
    desired = evaluate(config.policies, config.calendars, full, clock.dt, instance="desk").desired
    assert missing_effects(desired, record.ledger) == []
    if solved:
        # Solved at T0+30, after the deadline: the breach tag stays, the open (warning) tag is gone. No
        # clock counts any more, so the due date is left as last written (from a partial log, or
        # never if the whole log arrived at once); the comment is posted only if the worker saw the
        # breach while the clock was still open.
        assert record.ledger.get("tag:sla-open") in (None, "absent")
        assert record.ledger["tag:sla-breached"] == "present"
    else:
        assert record.ledger["due"] == due and ("due", due) in writes
        assert record.ledger["tag:sla-open"] == "present" and record.ledger["tag:sla-breached"] == "present"
        assert record.ledger["comment:test/resolution:breach"] == "posted" and len(comments) == 1


# ---------------------------------------------------------------- the real adapter and SLA engine

ZD_T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
ZD_NOW = ZD_T0 + timedelta(minutes=90)
ZD_FIXTURES = Path(__file__).resolve().parents[2] / "adapters" / "zendesk" / "tests" / "fixtures"


def _zd(name: str, event_id: str, at: datetime, **detail: object) -> dict:
    payload = json.loads((ZD_FIXTURES / f"{name}.json").read_text())
    payload["id"], payload["time"] = event_id, at.strftime("%Y-%m-%dT%H:%M:%SZ")
    payload["detail"].update(created_at=ZD_T0.strftime("%Y-%m-%dT%H:%M:%SZ"), **detail)
    return payload


ZD_WEBHOOKS = [
    _zd("event_ticket_created", "w-created", ZD_T0),
    _zd("event_comment_added_agent", "w-agent", ZD_T0 + timedelta(minutes=10), status="OPEN"),
    _zd("event_status_changed", "w-pending", ZD_T0 + timedelta(minutes=20), status="PENDING"),
    {
        **_zd("event_status_changed", "w-open", ZD_T0 + timedelta(minutes=40), status="OPEN"),
        "event": {"current": "OPEN", "previous": "PENDING"},
    },
]


@pytest.fixture(scope="module")
def zendesk_api():  # type: ignore[no-untyped-def]
    from fakes.products import FakeZendesk

    fake = FakeZendesk(["5158"]).start()
    yield fake
    fake.stop()


def _zd_config(url: str):  # type: ignore[no-untyped-def]
    from connector.config.loader import config_from_dict

    data = {
        "instances": {
            "zd": {
                "product": "zendesk",
                "dry_run": False,
                "base_url": url,
                "auth": {"email_env": "P_EMAIL", "token_env": "P_TOKEN"},
                "webhook": {"kind": "events", "secret_env": "P_SECRET"},
                "deadline_field_id": 77,
                "deadline_format": "datetime",
                "http": {"max_attempts": 1},
            }
        },
        "calendars": {"always": {"timezone": "UTC", "hours": "24x7"}},
        "policies": [
            {
                "id": "p",
                "version": 1,
                "match": {},
                "pause_statuses": ["pending"],
                "metrics": {
                    "first_response": {"calendar": "always", "targets": {"high": "5m"}},
                    "resolution": {"calendar": "always", "targets": {"high": "2h"}},
                },
                "escalations": [
                    {
                        "name": "warn",
                        "metric": "resolution",
                        "at": "50%",
                        "actions": [{"tag": "sla-warning"}],
                    },
                    {
                        "name": "breach",
                        "metric": "first_response",
                        "at": "breach",
                        "actions": [
                            {"tag": "sla-fr-breached"},
                            {"comment": "First response missed on {ticket}."},
                        ],
                    },
                ],
            }
        ],
    }
    return config_from_dict(data, {"P_EMAIL": "bot@example.com", "P_TOKEN": "t", "P_SECRET": "c2VjcmV0"})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    order=st.permutations(range(len(ZD_WEBHOOKS))),
    resend=st.lists(st.integers(0, len(ZD_WEBHOOKS) - 1), max_size=3),
    drains=st.lists(st.booleans(), min_size=len(ZD_WEBHOOKS) + 3, max_size=len(ZD_WEBHOOKS) + 3),
)
def test_real_adapter_and_engine_converge_in_any_order(
    redis_conn: redis.Redis,
    zendesk_api,
    order: list[int],
    resend: list[int],
    drains: list[bool],  # type: ignore[no-untyped-def]
) -> None:
    redis_conn.flushall()
    zendesk_api.tickets["5158"] = {"tags": set(), "custom_fields": {}, "comments": []}
    config = _zd_config(zendesk_api.url)
    ctx = make_context(redis_conn, config, PipelineSettings(), clock=Clock(ZD_NOW))
    sequence = [ZD_WEBHOOKS[i] for i in order] + [ZD_WEBHOOKS[i] for i in resend]
    for n, (payload, drain_now) in enumerate(zip(sequence, drains, strict=False)):
        # A re-send carries the same event under a new delivery id (intake cannot dedupe it).
        accept(redis_conn, "zd", f"{payload['id']}-{n}", "5158", payload, {}, datetime.now(UTC))
        if drain_now:
            drain(ctx)
    drain(ctx)

    adapter = config.instances["zd"].adapter
    events = [e for p in ZD_WEBHOOKS for e in adapter.normalise(p, {})]
    desired = evaluate(config.policies, config.calendars, events, ZD_NOW, instance="zd").desired
    ticket = zendesk_api.tickets["5158"]
    assert ticket["tags"] == set(desired.tags_present)
    assert ticket["custom_fields"] == {77: desired.due.strftime("%Y-%m-%dT%H:%M:%SZ")}
    markers = [c["body"][c["body"].rindex("[sla-connector:") :] for c in ticket["comments"]]
    assert len(markers) == len(set(markers))  # a one-shot comment is never posted twice
    record = store.load_record(redis_conn, "zd", "5158")
    assert record is not None and record.stored_rows == len(record.events) == len(ZD_WEBHOOKS)


# ---------------------------------------------------------------- one event id, conflicting content

# The same comment id as different deliveries tell it (a Zendesk trigger repeats the latest comment
# with the time and actor of a later update): the stored log must end with the one event
# sla.timeline.dedupe picks, whatever the arrival order and whoever held the ticket's lock.
VARIANTS = [
    TicketEvent("c-1", "T-1", EventKind.COMMENTED, T0 + timedelta(minutes=m), actor=actor, public=public)
    for m, actor, public in [
        (30, "agent", True),
        (150, "other", True),
        (30, "requester", True),
        (5, "agent", False),
    ]
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(range(len(VARIANTS))), locked=st.lists(st.booleans(), min_size=4, max_size=4))
def test_conflicting_variants_of_one_event_id_end_the_same_in_any_order(
    redis_conn: redis.Redis, order: list[int], locked: list[bool]
) -> None:
    redis_conn.flushall()
    clock = Clock(T0 + timedelta(seconds=1))
    ctx = make_context(redis_conn, desk_config(BASE, dry_run=True), PipelineSettings(), clock=clock)
    post(redis_conn, "d-created", "T-1", [created("T-1", T0)])
    drain(ctx)
    lock = store.lock_key("desk", "T-1")
    for i, held in zip(order, locked, strict=True):
        if held:  # another job holds the ticket: the look defers, the row waits in the inbox
            redis_conn.set(lock, "another-worker", px=60_000)
        post(redis_conn, f"d{i}", "T-1", [VARIANTS[i].to_dict()])
        drain(ctx)
        redis_conn.delete(lock)
    timers.schedule(redis_conn, "desk", "T-1", 0)
    drain(ctx, fire_timers_at=clock.now)
    record = store.load_record(redis_conn, "desk", "T-1")
    assert record is not None
    assert [e for e in record.events if e.event_id == "c-1"] == [dedupe(VARIANTS)[0]]
    assert record.stored_rows == 2  # losing rows are not kept
