"""A Redis restart with its append-only file: what was accepted, and the timers, survive; the look happens."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
from rq.registry import ScheduledJobRegistry

from connector.config.tuning import PipelineSettings
from connector.embedded_redis import EmbeddedRedis
from connector.state import queues, store, timers

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fakes.harness import Clock, drain, make_context, post  # noqa: E402
from fakes.sla_config import created, desk_config  # noqa: E402

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def test_accepted_deliveries_timers_and_retries_survive_a_redis_restart(tmp_path: Path) -> None:
    config = desk_config(dry_run=True, target="1h")
    clock = Clock(T0 + timedelta(seconds=1))
    server = EmbeddedRedis(tmp_path / "r", persistent=True).start()
    try:
        conn = redis.Redis.from_url(server.url)
        # T-1 was looked at (its timer is pending); T-2 was only accepted (no job has run yet).
        assert post(conn, "d1", "T-1", [created("T-1", T0)])
        drain(make_context(conn, config, PipelineSettings(), clock=clock))
        due = timers.due_at(conn, "desk", "T-1")
        assert due is not None
        assert post(conn, "d2", "T-2", [created("T-2", T0)])
        # And a look RQ was going to retry later.
        q = queues.queue(conn, queues.TICKETS)
        later = datetime.now(UTC) + timedelta(hours=1)
        q.enqueue_at(later, queues.LOOK, "desk", "T-1", job_id="look-desk-T-1-99")
        conn.close()
    finally:
        server.stop()  # SIGTERM: Redis writes its append-only file out before it exits

    server = EmbeddedRedis(tmp_path / "r", persistent=True).start()
    try:
        conn = redis.Redis.from_url(server.url)
        assert timers.due_at(conn, "desk", "T-1") == due
        assert conn.llen(store.inbox_key("desk", "T-2")) == 1
        assert conn.zscore(store.WANT, store.member("desk", "T-2")) is not None
        assert conn.get(store.dedupe_key("desk", "d2")) is not None  # a redelivery is still a duplicate
        assert not post(conn, "d2", "T-2", [created("T-2", T0)])
        assert "look-desk-T-1-99" in ScheduledJobRegistry(queue=queues.queue(conn, queues.TICKETS))
        # The accepted delivery is looked at after the restart.
        drain(make_context(conn, config, PipelineSettings(), clock=clock))
        record = store.load_record(conn, "desk", "T-2")
        assert record is not None and [e.event_id for e in record.events] == ["T-2-created"]
        assert "due" in record.dry_ledger
        assert conn.llen(store.inbox_key("desk", "T-2")) == 0
        conn.close()
    finally:
        server.stop()
