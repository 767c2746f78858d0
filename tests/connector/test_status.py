from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
import responses
from rq import SimpleWorker
from rq.cron import CronScheduler

from connector.config.tuning import PipelineSettings
from connector.jobs import dispatcher
from connector.jobs.worker import cron_scheduler
from connector.state import failed, queues, status, store, timers

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fakes.harness import Clock, drain, make_context, post  # noqa: E402
from fakes.sla_config import created, desk_config  # noqa: E402

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def test_status_of_an_empty_store(redis_conn: redis.Redis) -> None:
    assert status.status(redis_conn) == {
        "tickets_waiting": 0,
        "tickets_claimed": 0,
        "jobs_queued": {"sla-dispatch": 0, "sla-tickets": 0},
        "oldest_pending_age_s": None,
        "timers_pending": 0,
        "failed": 0,
        "workers_alive": 0,
        "workers": [],
        "scheduler_alive": False,
        "last_event_at": {},
        "effects_rejected": {},
    }
    assert status.counters(redis_conn) == {}
    assert not status.workers_alive(redis_conn) and not status.scheduler_alive(redis_conn)


def test_status_reports_tickets_rq_queues_timers_and_failures(redis_conn: redis.Redis) -> None:
    post(redis_conn, "d1", "T-1", [created("T-1", T0)])
    post(redis_conn, "d2", "T-2", [created("T-2", T0)], instance="zen")
    timers.schedule(redis_conn, "desk", "T-3", time.time() + 60)
    row = store.decode_inbox_row(store.encode_inbox_row("e", b"{}", delivery="d-4"))
    failed.record_delivery(redis_conn, "desk", "T-4", row, "ValueError: bad")
    time.sleep(0.05)
    s = status.status(redis_conn)
    assert (s["tickets_waiting"], s["tickets_claimed"]) == (2, 0)
    assert s["jobs_queued"] == {"sla-dispatch": 1, "sla-tickets": 0}  # one dispatch asked for, no look yet
    assert 0.04 < s["oldest_pending_age_s"] < 5
    assert s["timers_pending"] == 1 and s["failed"] == 1
    assert set(s["last_event_at"]) == {"desk", "zen"}
    ctx = make_context(redis_conn, desk_config(names=("desk", "zen")), PipelineSettings())
    assert dispatcher.dispatch(ctx) == 2
    s = status.status(redis_conn)
    assert (s["tickets_waiting"], s["tickets_claimed"]) == (0, 2)
    assert s["jobs_queued"] == {"sla-dispatch": 1, "sla-tickets": 2}  # what `rq info` shows too
    assert 0 <= s["oldest_pending_age_s"] < 5  # a claim whose job has not run yet (aged from its claim)


def test_status_sees_rqs_workers_and_cron_scheduler(redis_conn: redis.Redis) -> None:
    worker = SimpleWorker([queues.queue(redis_conn, q) for q in queues.QUEUES], connection=redis_conn,
                          name="w1")
    worker.register_birth()
    other_app = SimpleWorker([queues.queue(redis_conn, "emails")], connection=redis_conn, name="mailer")
    other_app.register_birth()
    s = status.status(redis_conn)
    assert s["workers"] == ["w1"] and s["workers_alive"] == 1 and status.workers_alive(redis_conn)
    assert s["scheduler_alive"] is False

    # Another app's cron scheduler on the same Redis does not tick our dispatch.
    foreign = CronScheduler(connection=redis_conn, name="mailer-cron")
    foreign.register(time.time, "emails", interval=60)
    foreign.register_birth()
    assert not status.scheduler_alive(redis_conn)
    cron = cron_scheduler(redis_conn, PipelineSettings())
    cron.register_birth()
    assert status.scheduler_alive(redis_conn) and status.status(redis_conn)["scheduler_alive"] is True

    cron.register_death()
    worker.register_death()
    assert not status.scheduler_alive(redis_conn)
    assert status.status(redis_conn)["workers"] == []


def test_counters_count_what_the_jobs_did(redis_conn: redis.Redis) -> None:
    clock = Clock(T0 + timedelta(seconds=20))
    # The real engine: a 10s target, so at T0+20 the ticket is due, tagged, breached and commented.
    ctx = make_context(redis_conn, desk_config(target="10s"), PipelineSettings(max_attempts=1), clock=clock)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.PUT, "https://desk.test/tickets/T-1", json={})
        rsps.add(responses.GET, "https://desk.test/tickets/T-1/comments", json={"comments": []})
        rsps.add(responses.POST, "https://desk.test/tickets/T-1/comments", json={})
        rsps.add(responses.PUT, "https://desk.test/tickets/T-2", status=500)
        post(redis_conn, "d1", "T-1", [created("T-1", T0)])
        post(redis_conn, "d2", "T-2", [created("T-2", T0)])
        post(redis_conn, "d3", "T-3", [], poison=True)
        drain(ctx)
    c = status.counters(redis_conn)
    labels = (("instance", "desk"), ("product", "testdesk"))
    assert c["events_processed"] == {labels: 2.0}
    assert c["events_failed"] == {labels: 1.0}
    assert c["effects_applied"] == {labels: 4.0}  # due, two tags, the breach comment
    assert c["effects_failed"] == {labels: 1.0}
    assert c["breaches"] == {
        (("instance", "desk"), ("metric", "resolution"), ("product", "testdesk")): 1.0
    }  # T-1; T-2's write failed first
    assert c["processing_latency_seconds_count"] == {(): 2.0}
    buckets = c["processing_latency_seconds_bucket"]
    assert buckets[(("le", "+Inf"),)] == 2.0
    assert list(buckets.values()) == sorted(buckets.values())  # cumulative
    s = status.status(redis_conn)
    assert s["failed"] == 2  # T-2's look job (RQ's registry) and the poison delivery
    assert (s["tickets_waiting"], s["tickets_claimed"]) == (0, 0)


def test_rejected_effects_are_counted_per_instance_and_exported_once(redis_conn: redis.Redis) -> None:
    from connector.receiver.metrics import PipelineCollector

    tally = status.Tally()
    tally.incr("effects_rejected", {"instance": "desk", "product": "testdesk", "kind": "set_priority"})
    tally.incr("effects_rejected", {"instance": "desk", "product": "testdesk", "kind": "add_tag"})
    tally.incr("effects_rejected", {"instance": "zen", "product": "zendesk", "kind": "set_due"})
    tally.incr("effects_applied", {"instance": "desk", "product": "testdesk"}, 5)
    tally.flush(redis_conn)
    assert status.status(redis_conn)["effects_rejected"] == {"desk": 2.0, "zen": 1.0}
    families = {f.name: f for f in PipelineCollector(redis_conn).collect()}
    samples = {tuple(sorted(s.labels.items())): s.value for s in families["sla_effects_rejected"].samples}
    assert samples[(("instance", "desk"), ("kind", "set_priority"), ("product", "testdesk"))] == 1.0
    assert len(samples) == 3
    assert not any("pipeline_effects_rejected" in name for name in families)  # not repeated as a gauge
