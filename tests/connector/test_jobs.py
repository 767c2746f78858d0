"""The `look` job (connector/jobs) run by a real RQ SimpleWorker against the test Redis: effects written
once, dry-run ledgers, failures through RQ's Retry and FailedJobRegistry, gone tickets, poison
deliveries, the ticket's lock, and the coalescing of deliveries into one look per ticket."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import responses
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

from connector.config.loader import InstanceConfig
from connector.config.tuning import PipelineSettings
from connector.jobs import dispatcher
from connector.jobs import ticket as ticket_step
from connector.jobs.context import Context
from connector.state import failed, queues, store, timers
from connector.state.ticket_view import ticket_state
from sla.events import EventKind, TicketEvent

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fakes.harness import Clock, Drained, drain, fire_scheduled, make_context, post  # noqa: E402
from fakes.sla_config import CountingEvaluator, FailingEvaluator, changed, created, desk_config  # noqa: E402

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
BASE = "https://desk.test"
JOB = "look-desk-T-1-1"  # the first look job of desk's T-1 (queues.job_id)
MEMBER = store.member("desk", "T-1")


def make(
    conn: redis.Redis, *, dry_run: bool = False, **settings: float
) -> tuple[Context, Clock, CountingEvaluator]:
    clock = Clock(T0 + timedelta(seconds=1))
    evaluator = CountingEvaluator()
    config = desk_config(BASE, dry_run=dry_run, target="10s")
    ctx = make_context(conn, config, PipelineSettings(**settings), evaluator=evaluator, clock=clock)
    return ctx, clock, evaluator


def calls(rsps: responses.RequestsMock) -> list[tuple[str, str, object]]:
    return [
        (
            c.request.method,
            c.request.url.replace(BASE, ""),
            json.loads(c.request.body) if c.request.body else None,
        )
        for c in rsps.calls
    ]


def desk_api(rsps: responses.RequestsMock, ticket: str = "T-1", comments: list[str] | None = None) -> None:
    rsps.assert_all_requests_are_fired = False
    rsps.add(responses.PUT, f"{BASE}/tickets/{ticket}", json={})
    rsps.add(
        responses.GET,
        f"{BASE}/tickets/{ticket}/comments",
        json={"comments": [{"body": b} for b in comments or []]},
    )
    rsps.add(responses.POST, f"{BASE}/tickets/{ticket}/comments", json={}, status=201)


def tickets_queue(conn: redis.Redis) -> Queue:
    return queues.queue(conn, queues.TICKETS)


def scheduled(conn: redis.Redis) -> dict[str, float]:
    """Look jobs RQ scheduled for a retry (its ScheduledJobRegistry): job id -> epoch it is due."""
    key = ScheduledJobRegistry(queue=tickets_queue(conn)).key
    return {store.text(job_id) or "": at for job_id, at in conn.zrange(key, 0, -1, withscores=True)}


def failed_jobs(conn: redis.Redis) -> list[str]:
    return FailedJobRegistry(queue=tickets_queue(conn)).get_job_ids()


def run_retries(ctx: Context) -> Drained:
    """RQ's scheduler once the retries it scheduled are due, then a drain. RQ schedules a retry in real
    time (whole seconds from its wall clock), never at the fake clock's time."""
    assert fire_scheduled(ctx.conn, time.time() + 86_400) > 0
    return drain(ctx)


def idle(conn: redis.Redis, instance: str = "desk", ticket: str = "T-1") -> bool:
    """Nothing left for the ticket: no delivery in its inbox, no claim or wish for a look, no lock."""
    member = store.member(instance, ticket)
    return (
        conn.llen(store.inbox_key(instance, ticket)) == 0
        and not conn.hexists(store.QUEUED, member)
        and conn.zscore(store.WANT, member) is None
        and not conn.exists(store.lock_key(instance, ticket))
    )


def deleted(ticket: str, at: datetime) -> dict:
    return TicketEvent(f"{ticket}-deleted", ticket, EventKind.DELETED, at).to_dict()


# ---------------------------------------------------------------- live write-back, exactly once


def test_effects_are_written_once_across_duplicates_out_of_order_and_reevaluations(
    redis_conn: redis.Redis,
) -> None:
    ctx, clock, evaluator = make(redis_conn)
    with responses.RequestsMock() as rsps:
        desk_api(rsps)
        # The update arrives before the creation; the creation arrives twice under two delivery ids.
        post(redis_conn, "d2", "T-1", [changed("T-1", T0 + timedelta(seconds=2), "u1", priority="high")])
        post(redis_conn, "d1", "T-1", [created("T-1", T0)])
        post(redis_conn, "d1-again", "T-1", [created("T-1", T0)])
        drained = drain(ctx)
        assert [(r["ticket"], r["deliveries"]) for r in drained.looks] == [("T-1", 3)]  # one look for the 3
        assert calls(rsps) == [
            (
                "PUT",
                "/tickets/T-1",
                {"due": (T0 + timedelta(seconds=10)).isoformat(), "add_tags": ["sla-open"]},
            )
        ]
        # Nothing new: a timer or another look writes nothing.
        timers.schedule(redis_conn, "desk", "T-1", 0)
        drain(ctx, fire_timers_at=clock.now)
        assert len(rsps.calls) == 1
        # The deadline passes: the timer scheduled at the due instant fires and the breach is written once.
        assert timers.due_at(redis_conn, "desk", "T-1") == (T0 + timedelta(seconds=10)).timestamp()
        clock.now = (T0 + timedelta(seconds=11)).timestamp()
        drain(ctx, fire_timers_at=clock.now)
        drain(ctx, fire_timers_at=clock.now)
        post(redis_conn, "d3", "T-1", [created("T-1", T0)])
        drain(ctx)
        assert calls(rsps)[1:] == [
            ("PUT", "/tickets/T-1", {"add_tags": ["sla-breached"]}),
            ("GET", "/tickets/T-1/comments", None),
            ("POST", "/tickets/T-1/comments", {"body": "breach\n[sla-connector:test/resolution:breach]"}),
        ]
    record = store.load_record(redis_conn, "desk", "T-1")
    assert record is not None
    assert [e.event_id for e in record.events] == ["T-1-created", "u1"]
    assert record.stored_rows == 2  # duplicates were never stored
    assert record.ledger == {
        "due": (T0 + timedelta(seconds=10)).isoformat(),
        "tag:sla-open": "present",
        "tag:sla-breached": "present",
        "comment:test/resolution:breach": "posted",
    }
    assert idle(redis_conn)  # every delivery taken from the inbox, no job left claimed
    assert all(n == 2 for _, n, _ in evaluator.calls)  # always the whole (deduplicated) log


def test_a_comment_posted_before_a_crash_is_not_posted_again(redis_conn: redis.Redis) -> None:
    ctx, clock, _ = make(redis_conn)
    # The ledger already knows the due date and tag, but the worker died after posting the comment.
    redis_conn.hset(
        store.ticket_key("desk", "T-1"),
        mapping={
            "due": (T0 + timedelta(seconds=10)).isoformat(),
            "tag:sla-open": "present",
            "tag:sla-breached": "present",
        },
    )
    clock.advance(20)
    with responses.RequestsMock() as rsps:
        desk_api(rsps, comments=["breach\n[sla-connector:test/resolution:breach]"])
        post(redis_conn, "d1", "T-1", [created("T-1", T0)])
        drain(ctx)
        assert calls(rsps) == [("GET", "/tickets/T-1/comments", None)]
    assert redis_conn.hget(store.ticket_key("desk", "T-1"), "comment:test/resolution:breach") == b"posted"


def test_a_look_abandoned_by_a_killed_worker_is_retried_by_rq_and_writes_nothing_twice(
    redis_conn: redis.Redis,
) -> None:
    ctx, clock, _ = make(redis_conn)
    post(redis_conn, "d1", "T-1", [created("T-1", T0)])
    assert dispatcher.dispatch(ctx) == 1
    # A SimpleWorker takes the job, which takes the ticket's lock and writes the due date and the tag
    # (the ledger records each as the product answers); then the worker is SIGKILLed before the look
    # stores the rest: the job stays "started", its delivery in the inbox, its claim and lock held.
    q = tickets_queue(redis_conn)
    result = Queue.dequeue_any([q], None, connection=redis_conn)
    assert result is not None
    job = result[0]
    dead = SimpleWorker([q], connection=redis_conn)
    dead.prepare_execution(job)
    dead.prepare_job_execution(job, remove_from_intermediate_queue=True)
    redis_conn.set(store.lock_key("desk", "T-1"), job.id, px=int(ctx.settings.lock_ttl_s * 1000))
    written = {"due": (T0 + timedelta(seconds=10)).isoformat(), "tag:sla-open": "present"}
    redis_conn.hset(store.ticket_key("desk", "T-1"), mapping=written)
    assert (job.id, job.get_status()) == (JOB, "started")
    # RQ's maintenance once the job's entry in the started registry has expired (a SimpleWorker sends
    # no heartbeat during a job: at the latest its time limit + 60 s): a retry, RQ's Retry policy.
    StartedJobRegistry(queue=q).cleanup(timestamp=time.time() + ctx.settings.job_timeout_s + 61)
    assert list(scheduled(redis_conn)) == [JOB]
    assert Job.fetch(JOB, connection=redis_conn).retries_left == ctx.settings.max_attempts - 2
    with responses.RequestsMock():  # any HTTP call would fail the test: both effects were written
        drained = run_retries(ctx)  # the retry is the same job: the ticket's lock is its own
    assert [(r["ticket"], r["deliveries"], r["events_new"]) for r in drained.looks] == [("T-1", 1, 1)]
    record = store.load_record(redis_conn, "desk", "T-1")
    assert [e.event_id for e in record.events] == ["T-1-created"] and record.ledger == written
    assert idle(redis_conn) and failed.list_failed(redis_conn) == []
    assert timers.due_at(redis_conn, "desk", "T-1") == (T0 + timedelta(seconds=10)).timestamp()


# ---------------------------------------------------------------- dry-run


def test_dry_run_logs_each_effect_once_and_calls_nothing(redis_conn: redis.Redis, caplog) -> None:
    ctx, clock, _ = make(redis_conn, dry_run=True)
    caplog.set_level(logging.INFO, logger="sla_connector.jobs")
    with responses.RequestsMock():  # any HTTP call would fail the test
        post(redis_conn, "d1", "T-1", [created("T-1", T0)])
        drain(ctx)
        post(redis_conn, "d2", "T-1", [created("T-1", T0)])
        drain(ctx)
        clock.advance(15)
        drain(ctx, fire_timers_at=clock.now)
    logged = [(r.effect, r.value) for r in caplog.records if getattr(r, "event", None) == "effect_dry_run"]
    assert logged == [
        ("due", (T0 + timedelta(seconds=10)).isoformat()),
        ("tag:sla-open", "sla-open"),
        ("tag:sla-breached", "sla-breached"),
        ("comment:test/resolution:breach", "breach"),
    ]
    record = store.load_record(redis_conn, "desk", "T-1")
    assert record is not None and record.ledger == {}
    assert set(record.dry_ledger) == {
        "due", "tag:sla-open", "tag:sla-breached", "comment:test/resolution:breach"}


def test_log_lines_about_a_ticket_name_its_instance_ticket_deliveries_and_job(
    redis_conn: redis.Redis, caplog
) -> None:
    ctx, clock, _ = make(redis_conn, backoff_base_s=1)
    caplog.set_level(logging.INFO, logger="sla_connector.jobs")
    with responses.RequestsMock() as rsps:
        rsps.add(responses.PUT, f"{BASE}/tickets/T-1", status=503)
        post(redis_conn, "d1", "T-1", [created("T-1", T0)])
        post(redis_conn, "d2", "T-1", [changed("T-1", T0 + timedelta(seconds=1), "u1", priority="low")])
        drain(ctx)
        run_retries(ctx)  # RQ's retry of the same job: no delivery this time
    retries = [r for r in caplog.records if getattr(r, "event", None) == "ticket_retry"]
    assert len(retries) == 2
    first, second = retries
    assert (first.instance, first.ticket, first.delivery, first.job) == ("desk", "T-1", "d1,d2", JOB)
    assert (second.instance, second.ticket, second.delivery, second.job) == ("desk", "T-1", None, JOB)


def test_switching_dry_run_off_writes_what_was_only_logged(redis_conn: redis.Redis) -> None:
    dry, _, _ = make(redis_conn, dry_run=True)
    post(redis_conn, "d1", "T-1", [created("T-1", T0)])
    drain(dry)
    live, clock, _ = make(redis_conn)
    with responses.RequestsMock() as rsps:
        desk_api(rsps)
        timers.schedule(redis_conn, "desk", "T-1", 0)
        drain(live, fire_timers_at=clock.now)
        assert [c[0] for c in calls(rsps)] == ["PUT"]


# ---------------------------------------------------------------- failures: RQ's Retry and FailedJobRegistry


def test_rate_limited_write_is_looked_at_again_after_retry_after_not_failed(redis_conn: redis.Redis) -> None:
    ctx, clock, _ = make(redis_conn)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.PUT, f"{BASE}/tickets/T-1", status=429, headers={"Retry-After": "30"})
        post(redis_conn, "d1", "T-1", [created("T-1", T0)])
        drained = drain(ctx)
    record = store.load_record(redis_conn, "desk", "T-1")
    assert record is not None and record.ledger == {}
    # Not a failure: the job succeeded, RQ retries nothing; the ticket's timer is at Retry-After.
    assert drained.failures == [] and scheduled(redis_conn) == {} and failed_jobs(redis_conn) == []
    due = timers.due_at(redis_conn, "desk", "T-1")
    assert due is not None and due >= clock.now + 30
    assert failed.list_failed(redis_conn) == [] and idle(redis_conn)
    with responses.RequestsMock() as rsps:
        desk_api(rsps)
        clock.advance(31)
        drain(ctx, fire_timers_at=clock.now)
        assert [c[0] for c in calls(rsps)] == ["PUT", "GET", "POST"]  # past due by now: breach too
    record = store.load_record(redis_conn, "desk", "T-1")
    assert record is not None and "due" in record.ledger and "failed_job" not in record.meta


def test_server_errors_are_retried_by_rq_with_backoff_then_land_in_its_failed_registry_and_replay(
    redis_conn: redis.Redis,
) -> None:
    ctx, clock, _ = make(redis_conn, max_attempts=3, backoff_base_s=1)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.PUT, f"{BASE}/tickets/T-1", status=503)
        post(redis_conn, "d1", "T-1", [created("T-1", T0)])
        for attempt, left in ((1, 1), (2, 0)):
            started = time.time()
            drained = drain(ctx) if attempt == 1 else run_retries(ctx)
            assert len(drained.failures) == 1 and "ServerError" in drained.failures[0]
            [(job_id, at)] = scheduled(redis_conn).items()
            job = Job.fetch(job_id, connection=redis_conn)
            assert (job_id, job.get_status(), job.retries_left) == (JOB, "scheduled", left)
            interval = job.retry_intervals[attempt - 1]
            assert int(started) + interval <= at <= time.time() + interval  # RQ: whole seconds from its now
        drained = run_retries(ctx)  # the third and last attempt
        assert len(rsps.calls) == 3 and len(drained.failures) == 1
    # Exponential with jitter, in whole seconds (RQ's precision): up to base * 2^(n-1), at least base/2.
    assert job.retry_intervals[0] == 1 and 1 <= job.retry_intervals[1] <= 2
    # Gave up: nothing left in RQ's scheduler, only the ticket's next check (the breach), where later
    # effects come due; the ticket no longer counts as having a job, so its next delivery gets a look.
    assert scheduled(redis_conn) == {} and failed_jobs(redis_conn) == [JOB]
    assert timers.due_at(redis_conn, "desk", "T-1") == (T0 + timedelta(seconds=10)).timestamp()
    assert not redis_conn.hexists(store.QUEUED, MEMBER)
    [entry] = failed.list_failed(redis_conn)
    assert (entry["id"], entry["kind"], entry["instance"], entry["ticket"]) == (JOB, "job", "desk", "T-1")
    assert "ServerError" in entry["error"] and "HTTP 503" in entry["error"]
    assert failed.retry_failed(redis_conn) == 1
    with responses.RequestsMock() as rsps:
        desk_api(rsps)
        drain(ctx)
        assert [c[0] for c in calls(rsps)][:1] == ["PUT"]
    assert failed.list_failed(redis_conn) == [] and failed_jobs(redis_conn) == []
    record = store.load_record(redis_conn, "desk", "T-1")
    assert "due" in record.ledger and "failed_job" not in record.meta and idle(redis_conn)


def test_a_404_without_a_deletion_is_retried_not_taken_as_gone(redis_conn: redis.Redis) -> None:
    # Jira answers 404 also when the credentials cannot see the issue (or, on Cloud, are refused):
    # once the token is fixed, the ticket's next event must be written back again.
    ctx, clock, _ = make(redis_conn, backoff_base_s=1)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.PUT, f"{BASE}/tickets/T-1", status=404)
        post(redis_conn, "d1", "T-1", [created("T-1", T0)])
        drained = drain(ctx)
    assert len(drained.failures) == 1 and "NotFound" in drained.failures[0]
    record = store.load_record(redis_conn, "desk", "T-1")
    assert record is not None and not record.gone
    assert list(scheduled(redis_conn)) == [JOB]  # RQ retries it with backoff
    with responses.RequestsMock() as rsps:
        desk_api(rsps)
        # A delivery for a ticket whose job waits for its retry joins that job (nothing runs before it).
        post(redis_conn, "d2", "T-1", [changed("T-1", T0 + timedelta(seconds=1), "u1", priority="low")])
        assert drain(ctx).looks == [] and redis_conn.llen(store.inbox_key("desk", "T-1")) == 1
        drained = run_retries(ctx)
        assert [(r["ticket"], r["deliveries"]) for r in drained.looks] == [("T-1", 1)]
        assert [c[0] for c in calls(rsps)][:1] == ["PUT"]
    record = store.load_record(redis_conn, "desk", "T-1")
    assert "due" in record.ledger and not record.gone and failed.list_failed(redis_conn) == []
    assert scheduled(redis_conn) == {} and idle(redis_conn)


def test_a_lasting_404_ends_in_the_failed_registry_and_retry_asks_again(
    redis_conn: redis.Redis, caplog
) -> None:
    ctx, clock, _ = make(redis_conn, max_attempts=2, backoff_base_s=1)
    caplog.set_level(logging.INFO, logger="sla_connector.jobs")
    with responses.RequestsMock() as rsps:
        rsps.add(responses.PUT, f"{BASE}/tickets/T-1", status=404)
        post(redis_conn, "d1", "T-1", [created("T-1", T0)])
        drain(ctx)
        run_retries(ctx)
        assert len(rsps.calls) == 2
    [entry] = failed.list_failed(redis_conn)
    assert (entry["id"], entry["kind"]) == (JOB, "job")
    assert "NotFound" in entry["error"] and "HTTP 404" in entry["error"]
    # The log line of the failure says what a bare 404 may mean.
    [gave_up] = [r for r in caplog.records if getattr(r, "event", None) == "ticket_failed"]
    assert gave_up.job == JOB and "NotFound (HTTP 404)" in gave_up.error
    assert "credentials cannot see it" in gave_up.error
    assert timers.due_at(redis_conn, "desk", "T-1") == (T0 + timedelta(seconds=10)).timestamp()  # next check
    assert failed.retry_failed(redis_conn) == 1
    with responses.RequestsMock() as rsps:
        desk_api(rsps)
        drain(ctx)
        assert [c[0] for c in calls(rsps)][:1] == ["PUT"]
    assert failed.list_failed(redis_conn) == []


def test_a_deletion_after_failed_404s_clears_the_failed_job(redis_conn: redis.Redis) -> None:
    ctx, clock, _ = make(redis_conn, max_attempts=1)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.PUT, f"{BASE}/tickets/T-1", status=404)
        post(redis_conn, "d1", "T-1", [created("T-1", T0)])
        drain(ctx)
        assert [e["id"] for e in failed.list_failed(redis_conn)] == [JOB]
        # Stamped ahead of our clock (T0+1): the engine does not count it yet, so the write is tried
        # again (by a new look: the failed job holds the ticket no longer), and this 404 is explained
        # by the deletion in the log.
        post(redis_conn, "d2", "T-1", [deleted("T-1", T0 + timedelta(seconds=2))])
        drained = drain(ctx)
        assert [(r["ticket"], r["deliveries"]) for r in drained.looks] == [("T-1", 1)]
        assert len(rsps.calls) == 2
    record = store.load_record(redis_conn, "desk", "T-1")
    assert record.gone and "failed_job" not in record.meta
    assert failed.list_failed(redis_conn) == [] and failed_jobs(redis_conn) == []
    assert not redis_conn.exists(Job.key_for(JOB))  # removed from RQ too (rq info, rq-dashboard)


def test_a_deletion_seen_after_failed_404s_writes_nothing_and_clears_the_failed_job(
    redis_conn: redis.Redis,
) -> None:
    ctx, clock, _ = make(redis_conn, max_attempts=1)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.PUT, f"{BASE}/tickets/T-1", status=404)
        post(redis_conn, "d1", "T-1", [created("T-1", T0)])
        drain(ctx)
        assert [e["id"] for e in failed.list_failed(redis_conn)] == [JOB]
        clock.advance(5)
        post(redis_conn, "d2", "T-1", [deleted("T-1", T0 + timedelta(seconds=2))])
        drained = drain(ctx)
        assert len(rsps.calls) == 1 and drained.failures == []  # a deleted ticket is asked for nothing
    record = store.load_record(redis_conn, "desk", "T-1")
    assert record.ledger == {} and "failed_job" not in record.meta
    assert failed.list_failed(redis_conn) == [] and timers.due_at(redis_conn, "desk", "T-1") is None


def test_a_definite_verdict_from_the_adapter_ends_the_ticket_at_once(redis_conn: redis.Redis) -> None:
    # Zendesk answers 422 "closed prevents ticket update" for a closed ticket; its client raises
    # NotFound with that status: unlike a bare 404 it cannot be a permission problem.
    ctx, clock, _ = make(redis_conn)
    with responses.RequestsMock() as rsps:
        rsps.add(
            responses.PUT,
            f"{BASE}/tickets/T-1",
            status=422,
            json={
                "error": "RecordInvalid",
                "description": "Record validation errors",
                "details": {"status": [{"description": "Status: closed prevents ticket update"}]},
            },
        )
        post(redis_conn, "d1", "T-1", [created("T-1", T0)])
        first = drain(ctx)
        post(redis_conn, "d2", "T-1", [changed("T-1", T0 + timedelta(seconds=1), "u1", priority="low")])
        second = drain(ctx)
        assert len(rsps.calls) == 1
    assert first.failures == second.failures == [] and scheduled(redis_conn) == {}  # no RQ retry
    record = store.load_record(redis_conn, "desk", "T-1")
    assert record.gone and record.meta["gone"] == "HTTP 422"
    assert timers.due_at(redis_conn, "desk", "T-1") is None and failed.list_failed(redis_conn) == []


def test_a_gone_mark_from_a_bare_404_does_not_stop_the_ticket(redis_conn: redis.Redis) -> None:
    # Older versions marked a ticket gone on any 404; such a mark must not keep it silent for ever.
    ctx, clock, _ = make(redis_conn)
    redis_conn.hset(store.ticket_key("desk", "T-1"), "#gone", "1")
    with responses.RequestsMock() as rsps:
        desk_api(rsps)
        post(redis_conn, "d1", "T-1", [created("T-1", T0)])
        drain(ctx)
        assert [c[0] for c in calls(rsps)][:1] == ["PUT"]
    record = store.load_record(redis_conn, "desk", "T-1")
    assert not record.gone and "due" in record.ledger


def test_a_deleted_ticket_is_written_nothing_and_kept_briefly(redis_conn: redis.Redis) -> None:
    ctx, clock, evaluator = make(redis_conn, deleted_retention_s=3600)
    with responses.RequestsMock():  # any HTTP call would fail the test
        post(redis_conn, "d1", "T-1", [created("T-1", T0), deleted("T-1", T0 + timedelta(seconds=1))])
        drain(ctx)
        post(redis_conn, "d2", "T-1", [changed("T-1", T0 + timedelta(seconds=2), "u1", priority="low")])
        clock.advance(20)  # past the deadline the ticket would have had
        drain(ctx)
    record = store.load_record(redis_conn, "desk", "T-1")
    assert record is not None and record.ledger == {} and len(record.events) == 3
    assert len(evaluator.calls) == 2
    assert 3500 < redis_conn.ttl(store.events_key("desk", "T-1")) <= 3600
    assert timers.due_at(redis_conn, "desk", "T-1") is None
    assert failed.list_failed(redis_conn) == []


def test_a_deleted_ticket_answering_404_ends_its_effects(redis_conn: redis.Redis) -> None:
    # The product's clock runs ahead of ours: the deletion is stamped after `now`, so the engine does
    # not count it yet and the write is tried; its 404 is explained by the deletion in the log.
    ctx, clock, evaluator = make(redis_conn, deleted_retention_s=3600)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.PUT, f"{BASE}/tickets/T-1", status=404)
        post(redis_conn, "d1", "T-1", [created("T-1", T0), deleted("T-1", T0 + timedelta(seconds=5))])
        drain(ctx)
        post(redis_conn, "d2", "T-1", [changed("T-1", T0 + timedelta(seconds=2), "u1", priority="low")])
        drain(ctx)
        assert len(rsps.calls) == 1
    record = store.load_record(redis_conn, "desk", "T-1")
    assert record is not None and record.meta["gone"] == "deleted" and len(record.events) == 3
    assert len(evaluator.calls) == 1  # gone: never evaluated again
    assert 3500 < redis_conn.ttl(store.events_key("desk", "T-1")) <= 3600
    assert timers.due_at(redis_conn, "desk", "T-1") is None
    assert failed.list_failed(redis_conn) == []


def test_a_poison_delivery_goes_to_failed_without_blocking_other_tickets(redis_conn: redis.Redis) -> None:
    ctx, _, _ = make(redis_conn, dry_run=True)
    post(redis_conn, "bad", "T-9", [], poison=True)
    post(redis_conn, "good", "T-1", [created("T-1", T0)])
    drained = drain(ctx)
    assert drained.failed_deliveries == 1 and sorted(drained.tickets) == ["T-1", "T-9"]
    assert drained.failures == []  # a delivery failed, not the job
    assert "due" in store.load_record(redis_conn, "desk", "T-1").dry_ledger
    [entry] = failed.list_failed(redis_conn)
    assert entry["id"] == "event:desk:bad" and entry["kind"] == "event" and entry["ticket"] == "T-9"
    assert "ValueError: poison payload" in entry["error"]
    assert idle(redis_conn, "desk", "T-9") and idle(redis_conn, "desk", "T-1")  # in failed, not the inbox
    # Replayed as it was: still poison, so it comes back to the registry (and nothing else breaks).
    assert failed.retry_failed(redis_conn, ["event:desk:bad", "event:desk:unknown"]) == 1
    row = store.decode_inbox_row(redis_conn.lindex(store.inbox_key("desk", "T-9"), 0))
    assert (row.delivery, row.replay) == ("bad", True)
    drain(ctx)
    assert [e["id"] for e in failed.list_failed(redis_conn)] == ["event:desk:bad"]
    assert failed.purge_failed(redis_conn, ["event:desk:bad"]) == 1
    assert failed.list_failed(redis_conn) == []


def test_an_entry_for_an_unconfigured_instance_is_kept_in_failed(redis_conn: redis.Redis) -> None:
    ctx, _, _ = make(redis_conn, dry_run=True)
    post(redis_conn, "d1", "T-1", [created("T-1", T0)], instance="gone-instance")
    drained = drain(ctx)
    assert drained.failures == []
    [entry] = failed.list_failed(redis_conn)
    assert entry["instance"] == "gone-instance" and "unknown instance 'gone-instance'" in entry["error"]
    assert idle(redis_conn, "gone-instance", "T-1")


def test_an_evaluation_error_is_retried_then_failed(redis_conn: redis.Redis) -> None:
    ctx, clock, _ = make(redis_conn, dry_run=True, max_attempts=2)
    ctx = dataclasses.replace(ctx, evaluator=FailingEvaluator(RuntimeError("policy bug")))
    post(redis_conn, "d1", "T-1", [created("T-1", T0)])
    drain(ctx)
    assert list(scheduled(redis_conn)) == [JOB]
    run_retries(ctx)
    [entry] = failed.list_failed(redis_conn)
    assert (entry["id"], entry["kind"], entry["error"]) == (JOB, "job", "RuntimeError: policy bug")
    assert len(store.load_record(redis_conn, "desk", "T-1").events) == 1  # the events are safe
    assert redis_conn.llen(store.inbox_key("desk", "T-1")) == 0


# ---------------------------------------------------------------- the ticket's lock, and serialisation


def test_a_ticket_locked_by_another_worker_is_deferred_not_evaluated(redis_conn: redis.Redis) -> None:
    ctx, clock, evaluator = make(redis_conn, dry_run=True)
    redis_conn.set(store.lock_key("desk", "T-1"), "another-worker", px=60_000)
    post(redis_conn, "d1", "T-1", [created("T-1", T0)])
    post(redis_conn, "d2", "T-2", [created("T-2", T0)])
    drained = drain(ctx)
    assert sorted((r["ticket"], r["deferred"]) for r in drained.looks) == [("T-1", True), ("T-2", False)]
    assert [c[0] for c in evaluator.calls] == ["T-2"]
    # Kept in its inbox, its log untouched; it wants a look and holds no claim, so the holder's end
    # (or the next dispatch, RQ's cron tick) gives it one.
    assert redis_conn.llen(store.inbox_key("desk", "T-1")) == 1
    assert not redis_conn.exists(store.events_key("desk", "T-1"))
    assert redis_conn.zscore(store.WANT, MEMBER) is not None and not redis_conn.hexists(store.QUEUED, MEMBER)
    # The other worker finishes; the next dispatch brings the ticket back.
    redis_conn.delete(store.lock_key("desk", "T-1"))
    drain(ctx)
    assert [c[0] for c in evaluator.calls] == ["T-2", "T-1"]
    assert idle(redis_conn) and redis_conn.llen(store.events_key("desk", "T-1")) == 1


def test_a_duplicate_delivered_while_the_ticket_is_locked_is_never_stored_twice(
    redis_conn: redis.Redis,
) -> None:
    ctx, clock, _ = make(redis_conn, dry_run=True)
    post(redis_conn, "d1", "T-1", [created("T-1", T0)])
    drain(ctx)
    redis_conn.set(store.lock_key("desk", "T-1"), "another-worker", px=60_000)
    post(redis_conn, "d2", "T-1", [created("T-1", T0)])
    drain(ctx)
    # The job that found the ticket locked left the log alone: the duplicate waits in the inbox.
    assert redis_conn.llen(store.events_key("desk", "T-1")) == 1
    assert redis_conn.llen(store.inbox_key("desk", "T-1")) == 1
    redis_conn.delete(store.lock_key("desk", "T-1"))
    drain(ctx)
    assert redis_conn.llen(store.events_key("desk", "T-1")) == 1 and idle(redis_conn)


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_conflicting_deliveries_of_one_event_id_keep_the_same_event_in_any_order(
    redis_conn: redis.Redis, order: tuple[int, int]
) -> None:
    ctx, clock, evaluator = make(redis_conn, dry_run=True)
    post(redis_conn, "d0", "T-1", [created("T-1", T0)])
    drain(ctx)
    # The same comment id, seen first at 09:30 by an agent, then echoed at 11:30 by nobody in particular.
    at = T0 + timedelta(minutes=30)
    reply = TicketEvent("c-1", "T-1", EventKind.COMMENTED, at, actor="agent", public=True)
    echo = TicketEvent("c-1", "T-1", EventKind.COMMENTED, T0 + timedelta(hours=2, minutes=30), public=True)
    variants = [reply, echo]
    for n, i in enumerate(order):
        post(redis_conn, f"d{n + 1}", "T-1", [variants[i].to_dict()])
        drain(ctx)
    record = store.load_record(redis_conn, "desk", "T-1")
    assert [e for e in record.events if e.event_id == "c-1"] == [reply]
    assert record.stored_rows == 2  # the losing row is not kept around
    seen_last = evaluator.calls[-1]
    assert seen_last[1] == 2


def test_solved_tickets_expire_after_the_retention(redis_conn: redis.Redis) -> None:
    ctx, _, _ = make(redis_conn, dry_run=True, retention_s=1000, open_ttl_s=100_000)
    post(redis_conn, "d1", "T-1", [created("T-1", T0)])
    drain(ctx)
    assert redis_conn.ttl(store.events_key("desk", "T-1")) > 1000
    post(redis_conn, "d2", "T-1", [changed("T-1", T0 + timedelta(seconds=5), "s1", status="solved")])
    drain(ctx)
    for key in (store.events_key("desk", "T-1"), store.ticket_key("desk", "T-1")):
        assert 900 < redis_conn.ttl(key) <= 1000


def test_solved_tickets_are_kept_long_enough_to_be_reopened_months_later(redis_conn: redis.Redis) -> None:
    # A Jira issue reopened after 30+ days must find its history (else its clocks start from zero).
    ctx, clock, evaluator = make(redis_conn, dry_run=True)
    assert ctx.settings.retention_s >= 400 * 86400
    post(redis_conn, "d1", "T-1", [created("T-1", T0)])
    post(redis_conn, "d2", "T-1", [changed("T-1", T0 + timedelta(seconds=5), "s1", status="solved")])
    drain(ctx)
    for key in (store.events_key("desk", "T-1"), store.ticket_key("desk", "T-1")):
        assert redis_conn.ttl(key) > 399 * 86400
    post(redis_conn, "d3", "T-2", [created("T-2", T0)])
    post(redis_conn, "d4", "T-2", [deleted("T-2", T0 + timedelta(seconds=5))])
    drain(ctx)
    assert 29 * 86400 < redis_conn.ttl(store.events_key("desk", "T-2")) <= 30 * 86400  # deleted: short


def test_ticket_state_reports_evaluation_ledger_and_counts(redis_conn: redis.Redis) -> None:
    ctx, clock, evaluator = make(redis_conn, dry_run=True)
    post(redis_conn, "d1", "T-1", [created("T-1", T0)])
    drain(ctx)
    state = ticket_state(redis_conn, ctx.config, "desk", "T-1", clock.dt, evaluator=evaluator)
    assert state is not None
    assert state["ticket_id"] == "T-1" and state["event_count"] == 1 and state["dry_run"] is True
    assert state["dry_run_ledger"]["tag:sla-open"] == "present" and state["ledger"] == {}
    assert state["next_timer"] == (T0 + timedelta(seconds=10)).isoformat()
    assert ticket_state(redis_conn, ctx.config, "desk", "T-404", clock.dt, evaluator=evaluator) is None
    assert ticket_state(redis_conn, ctx.config, "nope", "T-1", clock.dt, evaluator=evaluator) is None


def test_an_unreadable_stored_log_fails_that_ticket_only(redis_conn: redis.Redis) -> None:
    ctx, _, evaluator = make(redis_conn, dry_run=True, max_attempts=1)
    redis_conn.rpush(store.events_key("desk", "T-1"), "not json")
    post(redis_conn, "d1", "T-1", [changed("T-1", T0, "u1", priority="high")])
    post(redis_conn, "d2", "T-2", [created("T-2", T0)])
    drained = drain(ctx)
    assert len(drained.failures) == 1 and [c[0] for c in evaluator.calls] == ["T-2"]
    [entry] = failed.list_failed(redis_conn)
    assert (entry["id"], entry["kind"]) == (JOB, "job") and "JSONDecodeError" in entry["error"]
    # Nothing was stored for T-1: its delivery waits in its inbox (not lost), its lock is released.
    assert redis_conn.llen(store.events_key("desk", "T-1")) == 1
    assert redis_conn.llen(store.inbox_key("desk", "T-1")) == 1
    assert not redis_conn.exists(store.lock_key("desk", "T-1"))
    assert not redis_conn.hexists(store.QUEUED, MEMBER)  # a later delivery asks for a new look
    assert idle(redis_conn, "desk", "T-2")


class _OddAdapter:
    """An adapter bug: an event field that cannot be stored."""

    product = "odd"

    def normalise(self, payload, headers):  # type: ignore[no-untyped-def]
        return [TicketEvent("odd-1", payload["ticket"], EventKind.CREATED, T0, fields={"assignee": object()})]


def test_a_delivery_whose_events_cannot_be_stored_is_kept_in_failed_and_holds_up_nothing(
    redis_conn: redis.Redis,
) -> None:
    base = desk_config(BASE, dry_run=True)
    odd = InstanceConfig("odd", "odd", True, {}, _OddAdapter())  # type: ignore[arg-type]
    config = dataclasses.replace(base, instances={**base.instances, "odd": odd})
    clock = Clock(T0 + timedelta(seconds=1))
    ctx = make_context(redis_conn, config, PipelineSettings(), clock=clock)  # the real evaluate
    post(redis_conn, "d1", "T-9", [], instance="odd")
    post(redis_conn, "d2", "T-1", [created("T-1", T0)])
    drained = drain(ctx)
    assert drained.failed_deliveries == 1 and sorted(drained.tickets) == ["T-1", "T-9"]
    assert drained.failures == []  # not the job: its later deliveries are not held up
    assert "due" in store.load_record(redis_conn, "desk", "T-1").dry_ledger
    # Kept whole in the failed registry (replayable once the adapter is fixed), not in the inbox.
    [entry] = failed.list_failed(redis_conn)
    assert (entry["id"], entry["kind"], entry["ticket"]) == ("event:odd:d1", "event", "T-9")
    assert "TypeError" in entry["error"]
    assert idle(redis_conn, "odd", "T-9") and not redis_conn.exists(store.events_key("odd", "T-9"))


# ---------------------------------------------------------------- coalescing: a look per ticket


def test_deliveries_arriving_while_the_ticket_has_a_queued_job_share_that_job(
    redis_conn: redis.Redis,
) -> None:
    ctx, _, evaluator = make(redis_conn, dry_run=True)
    assert post(redis_conn, "d0", "T-1", [created("T-1", T0)])
    assert dispatcher.dispatch(ctx) == 1  # its look job is queued
    for n in range(1, 6):
        update = changed("T-1", T0 + timedelta(seconds=n / 10), f"u{n}", priority="high")
        assert post(redis_conn, f"d{n}", "T-1", [update])  # kept (202), not a duplicate
    # They joined its inbox: no other look is wanted, no dispatch asked for, one job queued.
    assert redis_conn.llen(store.inbox_key("desk", "T-1")) == 6
    assert redis_conn.zcard(store.WANT) == 0 and not redis_conn.exists(store.DISPATCH_FLAG)
    assert tickets_queue(redis_conn).count == 1
    drained = drain(ctx, dispatch=False)
    assert [(r["ticket"], r["deliveries"], r["events_new"]) for r in drained.looks] == [("T-1", 6, 6)]
    assert len(evaluator.calls) == 1 and redis_conn.get(store.SEQ) == b"1"  # one look job, ever
    assert idle(redis_conn)


def test_a_delivery_accepted_while_the_look_runs_gets_a_follow_up_look_right_after(
    redis_conn: redis.Redis,
) -> None:
    ctx, _, evaluator = make(redis_conn, dry_run=True)
    inner = ctx.evaluator
    kept: list[bool] = []

    def evaluate_while_a_delivery_arrives(*args: Any, **kwargs: Any) -> Any:
        if not kept:  # the receiver accepts d2 while the look evaluates d1
            kept.append(post(redis_conn, "d2", "T-1", [changed("T-1", T0, "u1", priority="high")]))
        return inner(*args, **kwargs)

    ctx = dataclasses.replace(ctx, evaluator=evaluate_while_a_delivery_arrives)
    post(redis_conn, "d1", "T-1", [created("T-1", T0)])
    drained = drain(ctx)
    assert kept == [True]
    first, second = drained.looks
    # The ending look hands the ticket to a follow-up job (no later event or timer is waited for).
    assert (first["deliveries"], first["follow_up"]) == (1, "look-desk-T-1-2")
    assert (second["deliveries"], second["events_new"], second["follow_up"]) == (1, 1, None)
    assert [n for _, n, _ in evaluator.calls] == [1, 2]
    record = store.load_record(redis_conn, "desk", "T-1")
    assert [e.event_id for e in record.events] == ["T-1-created", "u1"] and idle(redis_conn)


def test_a_job_that_finds_its_ticket_locked_asks_for_a_look_after_the_holder(redis_conn: redis.Redis) -> None:
    ctx, _, evaluator = make(redis_conn, dry_run=True)
    inner = ctx.evaluator
    others: list[ticket_step.LookReport] = []

    def evaluate_while_another_job_starts(*args: Any, **kwargs: Any) -> Any:
        if not others:  # e.g. an old job of the ticket, requeued, run by another worker meanwhile
            others.append(ticket_step.look(ctx, "desk", "T-1", token="look-desk-T-1-99"))
        return inner(*args, **kwargs)

    ctx = dataclasses.replace(ctx, evaluator=evaluate_while_another_job_starts)
    post(redis_conn, "d1", "T-1", [created("T-1", T0)])
    drained = drain(ctx)
    [other] = others
    assert other.deferred and other.events_new == 0  # it touched nothing
    first, second = drained.looks
    assert first["follow_up"] == "look-desk-T-1-2"  # the holder handed the ticket on as it ended
    assert (second["deferred"], second["follow_up"]) == (False, None)
    assert len(evaluator.calls) == 2 and idle(redis_conn)


def test_a_claim_whose_dispatcher_died_before_enqueueing_is_found_by_the_sweep(
    redis_conn: redis.Redis,
) -> None:
    ctx, clock, evaluator = make(redis_conn, dry_run=True, lost_after_s=60)
    post(redis_conn, "d1", "T-1", [created("T-1", T0)])
    # A dispatcher claims the ticket, then dies before its enqueue_many: a claim without a job.
    assert ticket_step.claim_wanted(redis_conn, 10, clock.now) == [("desk", "T-1", JOB)]
    post(redis_conn, "d2", "T-1", [changed("T-1", T0, "u1", priority="high")])  # joins the claim
    assert drain(ctx).looks == [] and redis_conn.llen(store.inbox_key("desk", "T-1")) == 2
    clock.advance(59)
    assert dispatcher.sweep_lost(ctx) == 0  # a young claim: its dispatcher may be enqueueing right now
    clock.advance(2)
    assert dispatcher.sweep_lost(ctx) == 1
    assert redis_conn.zscore(store.WANT, MEMBER) is not None and not redis_conn.hexists(store.QUEUED, MEMBER)
    drained = drain(ctx)
    assert [(r["ticket"], r["deliveries"]) for r in drained.looks] == [("T-1", 2)] and idle(redis_conn)
    # A claim whose job exists (queued, scheduled for a retry, running) is left alone however old.
    post(redis_conn, "d3", "T-1", [changed("T-1", T0, "u2", priority="low")])
    assert dispatcher.dispatch(ctx) == 1
    clock.advance(600)
    assert dispatcher.sweep_lost(ctx) == 0
    assert [r["deliveries"] for r in drain(ctx, dispatch=False).looks] == [1] and idle(redis_conn)


def test_a_look_before_the_timers_instant_writes_nothing_early_and_keeps_the_timer(
    redis_conn: redis.Redis,
) -> None:
    ctx, clock, _ = make(redis_conn)
    deadline = (T0 + timedelta(seconds=10)).timestamp()
    with responses.RequestsMock() as rsps:
        desk_api(rsps)
        post(redis_conn, "d1", "T-1", [created("T-1", T0)])
        drain(ctx)
        assert len(rsps.calls) == 1 and timers.due_at(redis_conn, "desk", "T-1") == deadline
        # RQ's cron ticks to the second: the timer is moved, and its look runs, before its instant.
        clock.now = deadline - 0.7
        drain(ctx, fire_timers_at=deadline)
        assert len(rsps.calls) == 1  # no breach before the deadline
        assert timers.due_at(redis_conn, "desk", "T-1") == deadline  # and the next look is kept
        # A delivery's look before the deadline keeps it too.
        clock.now = deadline - 0.3
        post(redis_conn, "d2", "T-1", [changed("T-1", T0 + timedelta(seconds=5), "u1", priority="high")])
        drain(ctx)
        assert len(rsps.calls) == 1 and timers.due_at(redis_conn, "desk", "T-1") == deadline
        clock.now = deadline
        drain(ctx, fire_timers_at=clock.now)
        assert [c[0] for c in calls(rsps)[1:]] == ["PUT", "GET", "POST"]  # the breach, at its instant
