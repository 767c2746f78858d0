"""First sight: a ticket first seen without its creation gets its history read once (an RQ job the look
asks for), so its first response is measured; real RQ jobs on the test Redis, Jira faked with `responses`."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
import responses
from rq.registry import ScheduledJobRegistry

from connector.config.loader import Config, config_from_dict
from connector.config.tuning import PipelineSettings
from connector.jobs import history
from connector.receiver.intake import accept
from connector.state import queues, status, store
from sla.evaluate import evaluate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fakes import acme_jira, testdesk  # noqa: E402
from fakes.harness import Clock, drain, make_context, post  # noqa: E402
from fakes.jira_reads import FakeJiraReads  # noqa: E402
from fakes.sla_config import desk_config  # noqa: E402

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
TARGETS = dict.fromkeys(("urgent", "high", "normal", "low"), "1h")


def config() -> Config:
    data = {
        "instances": {
            "acme-jira": {**acme_jira.INSTANCE, "max_attempts": 1},
        },
        "calendars": {"always": {"timezone": "UTC", "hours": "24x7"}},
        "policies": [
            {
                "id": "standard",
                "version": 1,
                "metrics": {"first_response": {"calendar": "always", "targets": TARGETS}},
            }
        ],
    }
    return config_from_dict(data, env=acme_jira.SECRETS, source="<test>")


def first_response(conn: redis.Redis, cfg: Config, ticket: str, now: datetime) -> tuple[str, timedelta]:
    record = store.load_record(conn, "acme-jira", ticket)
    assert record is not None
    metric = evaluate(cfg.policies, cfg.calendars, record.events, now, instance="acme-jira").metrics[
        "first_response"
    ]
    return str(metric.status), metric.elapsed


def test_a_ticket_first_seen_by_a_comment_gets_its_first_response_measured(redis_conn: redis.Redis) -> None:
    cfg = config()
    clock = Clock(NOW)
    ctx = make_context(redis_conn, cfg, PipelineSettings(), clock=clock)
    with responses.RequestsMock() as rsps:
        jira = FakeJiraReads(rsps, clock)
        jira.create("10001", NOW - timedelta(hours=2))  # before the webhook was installed: never delivered
        reply = jira.comment("10001", "501", NOW - timedelta(minutes=100))
        assert accept(redis_conn, "acme-jira", "r-1", "10001", reply, {}, NOW)
        first = drain(ctx)  # the look stores the reply and asks for the history, read in the same burst
        assert first.tickets == ["10001"] and jira.reads("/issue/10001") == 1
        assert redis_conn.hget(store.ticket_key("acme-jira", "10001"), store.META + history.MARK)
        assert 0 < redis_conn.ttl(store.ticket_key("acme-jira", "10001")) <= PipelineSettings().open_ttl_s
        drain(ctx)  # the look of what the history brought
        measured = first_response(redis_conn, cfg, "10001", clock.dt)
        # A second reply, and a retried delivery of the first: the history is never read again.
        second = jira.comment("10001", "502", NOW - timedelta(minutes=5))
        assert accept(redis_conn, "acme-jira", "r-2", "10001", second, {}, NOW)
        redis_conn.delete(store.dedupe_key("acme-jira", "r-1"))
        assert accept(redis_conn, "acme-jira", "r-1", "10001", reply, {}, NOW)
        drain(ctx)
    assert measured == ("met", timedelta(minutes=20))  # created 10:00, answered 10:20
    assert jira.reads("/issue/10001") == 1 and jira.reads("/issue/10001/changelog") == 1
    ids = [e.event_id for e in store.load_record(redis_conn, "acme-jira", "10001").events]
    assert ids == ["jira:10001:created", "jira:10001:comment:501", "jira:10001:comment:502"]
    counted = status.counters(redis_conn)["history_reads"]
    assert counted == {(("instance", "acme-jira"), ("product", "jira")): 1.0}


def test_a_ticket_seen_from_its_creation_is_not_read(redis_conn: redis.Redis) -> None:
    cfg = config()
    clock = Clock(NOW)
    ctx = make_context(redis_conn, cfg, PipelineSettings(), clock=clock)
    with responses.RequestsMock() as rsps:
        jira = FakeJiraReads(rsps, clock)
        assert accept(
            redis_conn, "acme-jira", "c-1", "10001", jira.create("10001", NOW - timedelta(hours=1)), {}, NOW
        )
        reply = jira.comment("10001", "501", NOW - timedelta(minutes=30))
        assert accept(redis_conn, "acme-jira", "r-1", "10001", reply, {}, NOW)
        drain(ctx)
    assert jira.reads("/issue/10001") == 0
    assert first_response(redis_conn, cfg, "10001", NOW) == ("met", timedelta(minutes=30))


def test_a_rate_limited_history_read_comes_back_after_retry_after(redis_conn: redis.Redis) -> None:
    cfg = config()
    clock = Clock(NOW)
    ctx = make_context(redis_conn, cfg, PipelineSettings(), clock=clock)
    with responses.RequestsMock() as rsps:
        jira = FakeJiraReads(rsps, clock)
        jira.create("10001", NOW - timedelta(hours=2))
        jira.fail_next("/issue/10001", (429, {"Retry-After": "30"}, '{"errorMessages": ["slow down"]}'))
        assert accept(redis_conn, "acme-jira", "r-1", "10001", jira.comment("10001", "501", NOW), {}, NOW)
        drained = drain(ctx)
        scheduled = ScheduledJobRegistry(queue=queues.queue(redis_conn, queues.TICKETS)).get_job_ids()
        assert (
            drained.failures == []
            and len(scheduled) == 1
            and scheduled[0].startswith("history-acme-jira-10001-")
        )
        drain(ctx, retries=True)  # RQ's scheduler, once Retry-After has passed
        drain(ctx)
    assert jira.reads("/issue/10001") == 2
    ids = [e.event_id for e in store.load_record(redis_conn, "acme-jira", "10001").events]
    assert ids[0] == "jira:10001:created"


def test_a_ticket_the_product_no_longer_shows_is_left_alone(redis_conn: redis.Redis) -> None:
    cfg = config()
    clock = Clock(NOW)
    ctx = make_context(redis_conn, cfg, PipelineSettings(), clock=clock)
    with responses.RequestsMock() as rsps:
        jira = FakeJiraReads(rsps, clock)
        jira.create("10001", NOW - timedelta(hours=2))
        reply = jira.comment("10001", "501", NOW)
        del jira.issues["10001"]  # deleted (or out of the service user's reach) since
        assert accept(redis_conn, "acme-jira", "r-1", "10001", reply, {}, NOW)
        drained = drain(ctx)
    assert drained.failures == []
    assert [e.event_id for e in store.load_record(redis_conn, "acme-jira", "10001").events] == [
        "jira:10001:comment:501"
    ]
    assert redis_conn.ttl(store.ticket_key("acme-jira", "10001")) > 0  # the mark does not outlive the ticket


def test_a_product_without_a_history_reader_is_never_asked(redis_conn: redis.Redis) -> None:
    testdesk.register()
    ctx = make_context(redis_conn, desk_config(dry_run=True), PipelineSettings(), clock=Clock(NOW))
    comment = {
        "event_id": "T-1-c",
        "ticket_id": "T-1",
        "kind": "commented",
        "at": NOW.isoformat(),
        "actor": "agent",
        "public": True,
    }
    post(redis_conn, "d-1", "T-1", [comment])
    drain(ctx)
    assert history.after_look(ctx, "desk", "T-1", deliveries=1, creation_missing=True) is None
    assert not redis_conn.hexists(store.ticket_key("desk", "T-1"), store.META + history.MARK)
