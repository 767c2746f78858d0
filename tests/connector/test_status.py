from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
import responses

from connector import failed, status, timers
from connector.pipeline import Processor
from connector.tuning import PipelineSettings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fakes.harness import Clock, drain, post  # noqa: E402
from fakes.sla_config import created, desk_config  # noqa: E402

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def test_status_of_an_empty_store(redis_conn: redis.Redis) -> None:
    assert status.status(redis_conn) == {
        "queue_depth": 0,
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


def test_status_reports_queue_timers_failures_and_heartbeats(redis_conn: redis.Redis) -> None:
    post(redis_conn, "d1", "T-1", [created("T-1", T0)])
    post(redis_conn, "d2", "T-2", [created("T-2", T0)], instance="zen")
    timers.schedule(redis_conn, "desk", "T-3", time.time() + 60)
    failed.record_ticket(redis_conn, "desk", "T-4", "boom", 8)
    status.heartbeat_worker(redis_conn, "w1")
    status.heartbeat_worker(redis_conn, "w-old", time.time() - 60)
    status.heartbeat_scheduler(redis_conn, "w1", 5)
    time.sleep(0.05)
    s = status.status(redis_conn)
    assert s["queue_depth"] == 2 and 0.04 < s["oldest_pending_age_s"] < 5
    assert s["timers_pending"] == 1 and s["failed"] == 1
    assert s["workers"] == ["w1"] and s["workers_alive"] == 1 and s["scheduler_alive"] is True
    assert set(s["last_event_at"]) == {"desk", "zen"}
    assert status.workers_alive(redis_conn) and status.scheduler_alive(redis_conn)


def test_counters_count_what_the_workers_did(redis_conn: redis.Redis) -> None:
    clock = Clock(T0 + timedelta(seconds=20))
    # The real engine: a 10s target, so at T0+20 the ticket is due, tagged, breached and commented.
    processor = Processor(redis_conn, desk_config(target="10s"), PipelineSettings(), clock=clock)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.PUT, "https://desk.test/tickets/T-1", json={})
        rsps.add(responses.GET, "https://desk.test/tickets/T-1/comments", json={"comments": []})
        rsps.add(responses.POST, "https://desk.test/tickets/T-1/comments", json={})
        rsps.add(responses.PUT, "https://desk.test/tickets/T-2", status=500)
        post(redis_conn, "d1", "T-1", [created("T-1", T0)])
        post(redis_conn, "d2", "T-2", [created("T-2", T0)])
        post(redis_conn, "d3", "T-3", [], poison=True)
        drain(redis_conn, processor)
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


def test_rejected_effects_are_counted_per_instance_and_exported_once(redis_conn: redis.Redis) -> None:
    from connector.metrics import PipelineCollector

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
