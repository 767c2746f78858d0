from __future__ import annotations

import dataclasses
import json
import logging
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
import responses

from connector import failed, store, timers
from connector.config import InstanceConfig
from connector.pipeline import Processor, ticket_state
from connector.tuning import PipelineSettings
from connector.worker import reclaim
from sla.events import EventKind, TicketEvent

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fakes.harness import Clock, drain, post  # noqa: E402
from fakes.sla_config import CountingEvaluator, FailingEvaluator, changed, created, desk_config  # noqa: E402

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
BASE = "https://desk.test"


def make(
    conn: redis.Redis, *, dry_run: bool = False, **settings: float
) -> tuple[Processor, Clock, CountingEvaluator]:
    clock = Clock(T0 + timedelta(seconds=1))
    evaluator = CountingEvaluator()
    config = desk_config(BASE, dry_run=dry_run, target="10s")
    processor = Processor(conn, config, PipelineSettings(**settings), evaluator=evaluator, clock=clock)
    return processor, clock, evaluator


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


# ---------------------------------------------------------------- live write-back, exactly once


def test_effects_are_written_once_across_duplicates_out_of_order_and_reevaluations(
    redis_conn: redis.Redis,
) -> None:
    processor, clock, evaluator = make(redis_conn)
    with responses.RequestsMock() as rsps:
        desk_api(rsps)
        # The update arrives before the creation; the creation arrives twice under two delivery ids.
        post(redis_conn, "d2", "T-1", [changed("T-1", T0 + timedelta(seconds=2), "u1", priority="high")])
        post(redis_conn, "d1", "T-1", [created("T-1", T0)])
        post(redis_conn, "d1-again", "T-1", [created("T-1", T0)])
        drain(redis_conn, processor)
        assert calls(rsps) == [
            (
                "PUT",
                "/tickets/T-1",
                {"due": (T0 + timedelta(seconds=10)).isoformat(), "add_tags": ["sla-open"]},
            )
        ]
        # Nothing new: a timer or another look writes nothing.
        timers.schedule(redis_conn, "desk", "T-1", 0)
        drain(redis_conn, processor, fire_timers_at=clock.now)
        assert len(rsps.calls) == 1
        # The deadline passes: the timer scheduled at the due instant fires and the breach is written once.
        assert timers.due_at(redis_conn, "desk", "T-1") == (T0 + timedelta(seconds=10)).timestamp()
        clock.advance(10)
        drain(redis_conn, processor, fire_timers_at=clock.now)
        drain(redis_conn, processor, fire_timers_at=clock.now)
        post(redis_conn, "d3", "T-1", [created("T-1", T0)])
        drain(redis_conn, processor)
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
    assert redis_conn.xlen(store.STREAM) == 0  # every entry acknowledged and deleted
    assert all(n == 2 for _, n, _ in evaluator.calls)  # always the whole (deduplicated) log


def test_a_comment_posted_before_a_crash_is_not_posted_again(redis_conn: redis.Redis) -> None:
    processor, clock, _ = make(redis_conn)
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
        drain(redis_conn, processor)
        assert calls(rsps) == [("GET", "/tickets/T-1/comments", None)]
    assert redis_conn.hget(store.ticket_key("desk", "T-1"), "comment:test/resolution:breach") == b"posted"


# ---------------------------------------------------------------- dry-run


def test_dry_run_logs_each_effect_once_and_calls_nothing(redis_conn: redis.Redis, caplog) -> None:
    processor, clock, _ = make(redis_conn, dry_run=True)
    caplog.set_level(logging.INFO, logger="sla_connector.pipeline")
    with responses.RequestsMock():  # any HTTP call would fail the test
        post(redis_conn, "d1", "T-1", [created("T-1", T0)])
        drain(redis_conn, processor)
        post(redis_conn, "d2", "T-1", [created("T-1", T0)])
        drain(redis_conn, processor)
        clock.advance(15)
        drain(redis_conn, processor, fire_timers_at=clock.now)
    logged = [(r.effect, r.value) for r in caplog.records if getattr(r, "event", None) == "effect_dry_run"]
    assert logged == [
        ("due", (T0 + timedelta(seconds=10)).isoformat()),
        ("tag:sla-open", "sla-open"),
        ("tag:sla-breached", "sla-breached"),
        ("comment:test/resolution:breach", "breach"),
    ]
    record = store.load_record(redis_conn, "desk", "T-1")
    assert record is not None and record.ledger == {}
    assert set(record.dry_ledger) == {"due", "tag:sla-open", "tag:sla-breached", "comment:test/resolution:breach"}


def test_log_lines_about_a_ticket_name_its_instance_ticket_and_deliveries(
    redis_conn: redis.Redis, caplog
) -> None:
    processor, clock, _ = make(redis_conn, backoff_base_s=1)
    caplog.set_level(logging.INFO, logger="sla_connector.pipeline")
    with responses.RequestsMock() as rsps:
        rsps.add(responses.PUT, f"{BASE}/tickets/T-1", status=503)
        post(redis_conn, "d1", "T-1", [created("T-1", T0)])
        post(redis_conn, "d2", "T-1", [changed("T-1", T0 + timedelta(seconds=1), "u1", priority="low")])
        drain(redis_conn, processor)
        clock.now = timers.due_at(redis_conn, "desk", "T-1")
        drain(redis_conn, processor, fire_timers_at=clock.now)  # woken by its timer, no delivery
    retries = [r for r in caplog.records if getattr(r, "event", None) == "ticket_retry"]
    assert len(retries) == 2
    first, second = retries
    assert (first.instance, first.ticket, first.delivery) == ("desk", "T-1", "d1,d2")
    assert first.entry and len(first.entry.split(",")) == 2
    assert (second.instance, second.ticket, second.delivery) == ("desk", "T-1", None)
    assert second.entry  # the timer's stream entry


def test_switching_dry_run_off_writes_what_was_only_logged(redis_conn: redis.Redis) -> None:
    dry, _, _ = make(redis_conn, dry_run=True)
    post(redis_conn, "d1", "T-1", [created("T-1", T0)])
    drain(redis_conn, dry)
    live, clock, _ = make(redis_conn)
    with responses.RequestsMock() as rsps:
        desk_api(rsps)
        timers.schedule(redis_conn, "desk", "T-1", 0)
        drain(redis_conn, live, fire_timers_at=clock.now)
        assert [c[0] for c in calls(rsps)] == ["PUT"]


# ---------------------------------------------------------------- failures


def test_rate_limited_write_is_retried_after_retry_after(redis_conn: redis.Redis) -> None:
    processor, clock, _ = make(redis_conn)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.PUT, f"{BASE}/tickets/T-1", status=429, headers={"Retry-After": "30"})
        post(redis_conn, "d1", "T-1", [created("T-1", T0)])
        drain(redis_conn, processor)
    record = store.load_record(redis_conn, "desk", "T-1")
    assert record is not None and record.ledger == {} and record.attempts == 1
    due = timers.due_at(redis_conn, "desk", "T-1")
    assert due is not None and due >= clock.now + 30
    assert failed.list_failed(redis_conn) == []
    with responses.RequestsMock() as rsps:
        desk_api(rsps)
        clock.advance(31)
        drain(redis_conn, processor, fire_timers_at=clock.now)
        assert [c[0] for c in calls(rsps)] == ["PUT", "GET", "POST"]  # past due by now: breach too
    record = store.load_record(redis_conn, "desk", "T-1")
    assert record is not None and record.attempts == 0 and "due" in record.ledger


def test_server_errors_back_off_then_land_in_the_failed_registry_and_replay(redis_conn: redis.Redis) -> None:
    processor, clock, _ = make(redis_conn, max_attempts=3, backoff_base_s=1)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.PUT, f"{BASE}/tickets/T-1", status=503)
        post(redis_conn, "d1", "T-1", [created("T-1", T0)])
        drain(redis_conn, processor)
        delays = []
        for _ in range(2):
            due = timers.due_at(redis_conn, "desk", "T-1")
            assert due is not None
            delays.append(due - clock.now)
            clock.now = due
            drain(redis_conn, processor, fire_timers_at=clock.now)
        assert len(rsps.calls) == 3
    assert 0.5 <= delays[0] <= 1 and 0.5 <= delays[1] <= 2  # exponential with jitter
    # Gave up: no retry timer, only the next check (the breach), where later effects come due.
    assert timers.due_at(redis_conn, "desk", "T-1") == (T0 + timedelta(seconds=10)).timestamp()
    [entry] = failed.list_failed(redis_conn)
    assert entry["id"] == "ticket:desk:T-1" and entry["attempts"] == 3
    assert "ServerError (HTTP 503)" in entry["error"]
    assert failed.retry_failed(redis_conn) == 1
    with responses.RequestsMock() as rsps:
        desk_api(rsps)
        drain(redis_conn, processor)
        assert [c[0] for c in calls(rsps)][:1] == ["PUT"]
    assert failed.list_failed(redis_conn) == []
    assert store.load_record(redis_conn, "desk", "T-1").attempts == 0


def deleted(ticket: str, at: datetime) -> dict:
    return TicketEvent(f"{ticket}-deleted", ticket, EventKind.DELETED, at).to_dict()


def test_a_404_without_a_deletion_is_retried_not_taken_as_gone(redis_conn: redis.Redis) -> None:
    # Jira answers 404 also when the credentials cannot see the issue (or, on Cloud, are refused):
    # once the token is fixed, the ticket's next event must be written back again.
    processor, clock, _ = make(redis_conn, backoff_base_s=1)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.PUT, f"{BASE}/tickets/T-1", status=404)
        post(redis_conn, "d1", "T-1", [created("T-1", T0)])
        drain(redis_conn, processor)
    record = store.load_record(redis_conn, "desk", "T-1")
    assert record is not None and not record.gone and record.attempts == 1
    assert timers.due_at(redis_conn, "desk", "T-1") is not None  # retried with backoff
    with responses.RequestsMock() as rsps:
        desk_api(rsps)
        post(redis_conn, "d2", "T-1", [changed("T-1", T0 + timedelta(seconds=1), "u1", priority="low")])
        drain(redis_conn, processor)
        assert [c[0] for c in calls(rsps)][:1] == ["PUT"]
    record = store.load_record(redis_conn, "desk", "T-1")
    assert record.attempts == 0 and "due" in record.ledger and failed.list_failed(redis_conn) == []


def test_a_lasting_404_ends_in_the_failed_registry_and_retry_asks_again(redis_conn: redis.Redis) -> None:
    processor, clock, _ = make(redis_conn, max_attempts=2, backoff_base_s=1)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.PUT, f"{BASE}/tickets/T-1", status=404)
        post(redis_conn, "d1", "T-1", [created("T-1", T0)])
        drain(redis_conn, processor)
        clock.now = timers.due_at(redis_conn, "desk", "T-1")
        drain(redis_conn, processor, fire_timers_at=clock.now)
        assert len(rsps.calls) == 2
    [entry] = failed.list_failed(redis_conn)
    assert entry["id"] == "ticket:desk:T-1" and "NotFound (HTTP 404)" in entry["error"]
    assert "credentials cannot see it" in entry["error"]
    assert timers.due_at(redis_conn, "desk", "T-1") == (T0 + timedelta(seconds=10)).timestamp()  # next check
    assert failed.retry_failed(redis_conn) == 1
    with responses.RequestsMock() as rsps:
        desk_api(rsps)
        drain(redis_conn, processor)
        assert [c[0] for c in calls(rsps)][:1] == ["PUT"]
    assert failed.list_failed(redis_conn) == []


def test_a_deletion_after_failed_404s_clears_the_failed_entry(redis_conn: redis.Redis) -> None:
    processor, clock, _ = make(redis_conn, max_attempts=1)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.PUT, f"{BASE}/tickets/T-1", status=404)
        post(redis_conn, "d1", "T-1", [created("T-1", T0)])
        drain(redis_conn, processor)
        assert [e["id"] for e in failed.list_failed(redis_conn)] == ["ticket:desk:T-1"]
        # Stamped ahead of our clock (T0+1): the engine does not count it yet, so the write is tried
        # again, and this 404 is explained by the deletion in the log.
        post(redis_conn, "d2", "T-1", [deleted("T-1", T0 + timedelta(seconds=2))])
        drain(redis_conn, processor)
        assert len(rsps.calls) == 2
    record = store.load_record(redis_conn, "desk", "T-1")
    assert record.gone and record.attempts == 0
    assert failed.list_failed(redis_conn) == []


def test_a_deletion_seen_after_failed_404s_writes_nothing_and_clears_the_failed_entry(
    redis_conn: redis.Redis,
) -> None:
    processor, clock, _ = make(redis_conn, max_attempts=1)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.PUT, f"{BASE}/tickets/T-1", status=404)
        post(redis_conn, "d1", "T-1", [created("T-1", T0)])
        drain(redis_conn, processor)
        assert [e["id"] for e in failed.list_failed(redis_conn)] == ["ticket:desk:T-1"]
        clock.advance(5)
        post(redis_conn, "d2", "T-1", [deleted("T-1", T0 + timedelta(seconds=2))])
        drain(redis_conn, processor)
        assert len(rsps.calls) == 1  # a deleted ticket is asked for nothing
    record = store.load_record(redis_conn, "desk", "T-1")
    assert record.attempts == 0 and record.ledger == {}
    assert failed.list_failed(redis_conn) == [] and timers.due_at(redis_conn, "desk", "T-1") is None


def test_a_definite_verdict_from_the_adapter_ends_the_ticket_at_once(redis_conn: redis.Redis) -> None:
    # Zendesk answers 422 "closed prevents ticket update" for a closed ticket; its client raises
    # NotFound with that status: unlike a bare 404 it cannot be a permission problem.
    processor, clock, _ = make(redis_conn)
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
        drain(redis_conn, processor)
        post(redis_conn, "d2", "T-1", [changed("T-1", T0 + timedelta(seconds=1), "u1", priority="low")])
        drain(redis_conn, processor)
        assert len(rsps.calls) == 1
    record = store.load_record(redis_conn, "desk", "T-1")
    assert record.gone and record.meta["gone"] == "HTTP 422" and record.attempts == 0
    assert timers.due_at(redis_conn, "desk", "T-1") is None and failed.list_failed(redis_conn) == []


def test_a_gone_mark_from_a_bare_404_does_not_stop_the_ticket(redis_conn: redis.Redis) -> None:
    # Older versions marked a ticket gone on any 404; such a mark must not keep it silent for ever.
    processor, clock, _ = make(redis_conn)
    redis_conn.hset(store.ticket_key("desk", "T-1"), "#gone", "1")
    with responses.RequestsMock() as rsps:
        desk_api(rsps)
        post(redis_conn, "d1", "T-1", [created("T-1", T0)])
        drain(redis_conn, processor)
        assert [c[0] for c in calls(rsps)][:1] == ["PUT"]
    record = store.load_record(redis_conn, "desk", "T-1")
    assert not record.gone and "due" in record.ledger


def test_a_deleted_ticket_is_written_nothing_and_kept_briefly(redis_conn: redis.Redis) -> None:
    processor, clock, evaluator = make(redis_conn, deleted_retention_s=3600)
    with responses.RequestsMock():  # any HTTP call would fail the test
        post(redis_conn, "d1", "T-1", [created("T-1", T0), deleted("T-1", T0 + timedelta(seconds=1))])
        drain(redis_conn, processor)
        post(redis_conn, "d2", "T-1", [changed("T-1", T0 + timedelta(seconds=2), "u1", priority="low")])
        clock.advance(20)  # past the deadline the ticket would have had
        drain(redis_conn, processor)
    record = store.load_record(redis_conn, "desk", "T-1")
    assert record is not None and record.ledger == {} and len(record.events) == 3
    assert len(evaluator.calls) == 2
    assert 3500 < redis_conn.ttl(store.events_key("desk", "T-1")) <= 3600
    assert timers.due_at(redis_conn, "desk", "T-1") is None
    assert failed.list_failed(redis_conn) == []


def test_a_deleted_ticket_answering_404_ends_its_effects(redis_conn: redis.Redis) -> None:
    # The product's clock runs ahead of ours: the deletion is stamped after `now`, so the engine does
    # not count it yet and the write is tried; its 404 is explained by the deletion in the log.
    processor, clock, evaluator = make(redis_conn, deleted_retention_s=3600)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.PUT, f"{BASE}/tickets/T-1", status=404)
        post(redis_conn, "d1", "T-1", [created("T-1", T0), deleted("T-1", T0 + timedelta(seconds=5))])
        drain(redis_conn, processor)
        post(redis_conn, "d2", "T-1", [changed("T-1", T0 + timedelta(seconds=2), "u1", priority="low")])
        drain(redis_conn, processor)
        assert len(rsps.calls) == 1
    record = store.load_record(redis_conn, "desk", "T-1")
    assert record is not None and record.meta["gone"] == "deleted" and len(record.events) == 3
    assert len(evaluator.calls) == 1  # gone: never evaluated again
    assert 3500 < redis_conn.ttl(store.events_key("desk", "T-1")) <= 3600
    assert timers.due_at(redis_conn, "desk", "T-1") is None
    assert failed.list_failed(redis_conn) == []


def test_a_poison_delivery_goes_to_failed_without_blocking_other_tickets(redis_conn: redis.Redis) -> None:
    processor, _, _ = make(redis_conn, dry_run=True)
    post(redis_conn, "bad", "T-9", [], poison=True)
    post(redis_conn, "good", "T-1", [created("T-1", T0)])
    [report] = drain(redis_conn, processor)
    assert report.failed == 1 and report.tickets == 1
    assert "due" in store.load_record(redis_conn, "desk", "T-1").dry_ledger
    [entry] = failed.list_failed(redis_conn)
    assert entry["id"] == "event:desk:bad" and entry["kind"] == "event" and entry["ticket"] == "T-9"
    assert "ValueError: poison payload" in entry["error"]
    assert redis_conn.xlen(store.STREAM) == 0
    # Replayed as it was: still poison, so it comes back to the registry (and nothing else breaks).
    assert failed.retry_failed(redis_conn, ["event:desk:bad", "event:desk:unknown"]) == 1
    assert redis_conn.xrange(store.STREAM)[0][1][b"x"] == b"1"
    drain(redis_conn, processor)
    assert [e["id"] for e in failed.list_failed(redis_conn)] == ["event:desk:bad"]
    assert failed.purge_failed(redis_conn, ["event:desk:bad"]) == 1
    assert failed.list_failed(redis_conn) == []


def test_an_entry_for_an_unconfigured_instance_is_kept_in_failed(redis_conn: redis.Redis) -> None:
    processor, _, _ = make(redis_conn, dry_run=True)
    post(redis_conn, "d1", "T-1", [created("T-1", T0)], instance="gone-instance")
    drain(redis_conn, processor)
    [entry] = failed.list_failed(redis_conn)
    assert entry["instance"] == "gone-instance" and "unknown instance 'gone-instance'" in entry["error"]


def test_an_evaluation_error_is_retried_then_failed(redis_conn: redis.Redis) -> None:
    processor, clock, _ = make(redis_conn, dry_run=True, max_attempts=2)
    processor.evaluator = FailingEvaluator(RuntimeError("policy bug"))
    post(redis_conn, "d1", "T-1", [created("T-1", T0)])
    drain(redis_conn, processor)
    clock.advance(600)
    drain(redis_conn, processor, fire_timers_at=clock.now)
    [entry] = failed.list_failed(redis_conn)
    assert entry["kind"] == "ticket" and entry["error"] == "RuntimeError: policy bug"
    assert len(store.load_record(redis_conn, "desk", "T-1").events) == 1  # the events are safe


# ---------------------------------------------------------------- serialisation and retention


def test_a_ticket_locked_by_another_worker_is_deferred_not_evaluated(redis_conn: redis.Redis) -> None:
    processor, clock, evaluator = make(redis_conn, dry_run=True, defer_s=0.2)
    redis_conn.set(store.lock_key("desk", "T-1"), "another-worker", px=60_000)
    post(redis_conn, "d1", "T-1", [created("T-1", T0)])
    post(redis_conn, "d2", "T-2", [created("T-2", T0)])
    [report] = drain(redis_conn, processor)
    assert report.deferred == 1 and [c[0] for c in evaluator.calls] == ["T-2"]
    assert redis_conn.llen(store.events_key("desk", "T-1")) == 1  # stored, not lost
    assert timers.due_at(redis_conn, "desk", "T-1") == pytest.approx(clock.now + 0.2)
    assert redis_conn.xlen(store.STREAM) == 0
    # The other worker finishes; the timer brings the ticket back.
    redis_conn.delete(store.lock_key("desk", "T-1"))
    clock.advance(0.2)
    drain(redis_conn, processor, fire_timers_at=clock.now)
    assert [c[0] for c in evaluator.calls] == ["T-2", "T-1"]
    assert not redis_conn.exists(store.lock_key("desk", "T-1"))


def test_duplicates_appended_while_locked_are_compacted(redis_conn: redis.Redis) -> None:
    processor, clock, _ = make(redis_conn, dry_run=True)
    post(redis_conn, "d1", "T-1", [created("T-1", T0)])
    drain(redis_conn, processor)
    redis_conn.set(store.lock_key("desk", "T-1"), "another-worker", px=60_000)
    post(redis_conn, "d2", "T-1", [created("T-1", T0)])
    drain(redis_conn, processor)
    assert redis_conn.llen(store.events_key("desk", "T-1")) == 2
    redis_conn.delete(store.lock_key("desk", "T-1"))
    drain(redis_conn, processor, fire_timers_at=clock.now + 1)
    assert redis_conn.llen(store.events_key("desk", "T-1")) == 1


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_conflicting_deliveries_of_one_event_id_keep_the_same_event_in_any_order(
    redis_conn: redis.Redis, order: tuple[int, int]
) -> None:
    processor, clock, evaluator = make(redis_conn, dry_run=True)
    post(redis_conn, "d0", "T-1", [created("T-1", T0)])
    drain(redis_conn, processor)
    # The same comment id, seen first at 09:30 by an agent, then echoed at 11:30 by nobody in particular.
    at = T0 + timedelta(minutes=30)
    reply = TicketEvent("c-1", "T-1", EventKind.COMMENTED, at, actor="agent", public=True)
    echo = TicketEvent("c-1", "T-1", EventKind.COMMENTED, T0 + timedelta(hours=2, minutes=30), public=True)
    variants = [reply, echo]
    for n, i in enumerate(order):
        post(redis_conn, f"d{n + 1}", "T-1", [variants[i].to_dict()])
        drain(redis_conn, processor)
    record = store.load_record(redis_conn, "desk", "T-1")
    assert [e for e in record.events if e.event_id == "c-1"] == [reply]
    assert record.stored_rows == 2  # the losing row is not kept around
    seen_last = evaluator.calls[-1]
    assert seen_last[1] == 2


def test_solved_tickets_expire_after_the_retention(redis_conn: redis.Redis) -> None:
    processor, _, _ = make(redis_conn, dry_run=True, retention_s=1000, open_ttl_s=100_000)
    post(redis_conn, "d1", "T-1", [created("T-1", T0)])
    drain(redis_conn, processor)
    assert redis_conn.ttl(store.events_key("desk", "T-1")) > 1000
    post(redis_conn, "d2", "T-1", [changed("T-1", T0 + timedelta(seconds=5), "s1", status="solved")])
    drain(redis_conn, processor)
    for key in (store.events_key("desk", "T-1"), store.ticket_key("desk", "T-1")):
        assert 900 < redis_conn.ttl(key) <= 1000


def test_solved_tickets_are_kept_long_enough_to_be_reopened_months_later(redis_conn: redis.Redis) -> None:
    # A Jira issue reopened after 30+ days must find its history (else its clocks start from zero).
    processor, clock, evaluator = make(redis_conn, dry_run=True)
    assert processor.settings.retention_s >= 400 * 86400
    post(redis_conn, "d1", "T-1", [created("T-1", T0)])
    post(redis_conn, "d2", "T-1", [changed("T-1", T0 + timedelta(seconds=5), "s1", status="solved")])
    drain(redis_conn, processor)
    for key in (store.events_key("desk", "T-1"), store.ticket_key("desk", "T-1")):
        assert redis_conn.ttl(key) > 399 * 86400
    post(redis_conn, "d3", "T-2", [created("T-2", T0)])
    post(redis_conn, "d4", "T-2", [deleted("T-2", T0 + timedelta(seconds=5))])
    drain(redis_conn, processor)
    assert 29 * 86400 < redis_conn.ttl(store.events_key("desk", "T-2")) <= 30 * 86400  # deleted: short


def test_ticket_state_reports_evaluation_ledger_and_counts(redis_conn: redis.Redis) -> None:
    processor, clock, evaluator = make(redis_conn, dry_run=True)
    post(redis_conn, "d1", "T-1", [created("T-1", T0)])
    drain(redis_conn, processor)
    state = ticket_state(redis_conn, processor.config, "desk", "T-1", clock.dt, evaluator=evaluator)
    assert state is not None
    assert state["ticket_id"] == "T-1" and state["event_count"] == 1 and state["dry_run"] is True
    assert state["dry_run_ledger"]["tag:sla-open"] == "present" and state["ledger"] == {}
    assert state["next_timer"] == (T0 + timedelta(seconds=10)).isoformat()
    assert ticket_state(redis_conn, processor.config, "desk", "T-404", clock.dt, evaluator=evaluator) is None
    assert ticket_state(redis_conn, processor.config, "nope", "T-1", clock.dt, evaluator=evaluator) is None


def test_an_unreadable_stored_log_fails_that_ticket_only(redis_conn: redis.Redis) -> None:
    processor, _, evaluator = make(redis_conn, dry_run=True)
    redis_conn.rpush(store.events_key("desk", "T-1"), "not json")
    post(redis_conn, "d1", "T-1", [changed("T-1", T0, "u1", priority="high")])
    post(redis_conn, "d2", "T-2", [created("T-2", T0)])
    [report] = drain(redis_conn, processor)
    assert report.failed == 1 and [c[0] for c in evaluator.calls] == ["T-2"]
    [entry] = failed.list_failed(redis_conn)
    assert entry["id"] == "ticket:desk:T-1" and "unreadable stored state: JSONDecodeError" in entry["error"]
    assert redis_conn.llen(store.events_key("desk", "T-1")) == 2  # the new event is kept
    assert not redis_conn.exists(store.lock_key("desk", "T-1"))
    assert redis_conn.xlen(store.STREAM) == 0


def test_compaction_keeps_events_appended_while_the_ticket_was_being_evaluated(
    redis_conn: redis.Redis,
) -> None:
    processor, clock, evaluator = make(redis_conn, dry_run=True)
    ek = store.events_key("desk", "T-1")
    post(redis_conn, "d1", "T-1", [created("T-1", T0)])
    drain(redis_conn, processor)
    redis_conn.rpush(ek, redis_conn.lindex(ek, 0))  # a duplicate row, as a deferred append leaves
    late = store.encode_event(TicketEvent("late", "T-1", EventKind.CHANGED, T0, fields={"priority": "low"}))
    inner = processor.evaluator

    def evaluate_while_another_worker_appends(*args, **kwargs):  # type: ignore[no-untyped-def]
        redis_conn.rpush(ek, late)  # another worker defers the ticket and stores its event meanwhile
        return inner(*args, **kwargs)

    processor.evaluator = evaluate_while_another_worker_appends
    timers.schedule(redis_conn, "desk", "T-1", 0)
    drain(redis_conn, processor, fire_timers_at=clock.now)
    record = store.load_record(redis_conn, "desk", "T-1")
    assert record is not None
    assert [e.event_id for e in record.events] == ["T-1-created", "late"]
    assert record.stored_rows == 2  # the duplicate is gone, the late event kept


class _OddAdapter:
    """An adapter bug: an event field that cannot be stored."""

    product = "odd"

    def normalise(self, payload, headers):  # type: ignore[no-untyped-def]
        return [TicketEvent("odd-1", payload["ticket"], EventKind.CREATED, T0, fields={"assignee": object()})]


def test_a_bug_on_one_ticket_does_not_hold_up_the_batch(redis_conn: redis.Redis) -> None:
    base = desk_config(BASE, dry_run=True)
    odd = InstanceConfig("odd", "odd", True, {}, _OddAdapter())  # type: ignore[arg-type]
    config = dataclasses.replace(base, instances={**base.instances, "odd": odd})
    clock = Clock(T0 + timedelta(seconds=1))
    processor = Processor(redis_conn, config, PipelineSettings(), clock=clock)  # the real evaluate
    post(redis_conn, "d1", "T-9", [], instance="odd")
    post(redis_conn, "d2", "T-1", [created("T-1", T0)])
    [report] = drain(redis_conn, processor)
    assert report.failed == 1 and report.tickets == 2
    assert "due" in store.load_record(redis_conn, "desk", "T-1").dry_ledger
    assert not redis_conn.exists(store.lock_key("odd", "T-9"))
    # The odd delivery stays pending (redelivered later); the good one is acknowledged and deleted.
    [(entry_id, fields)] = redis_conn.xrange(store.STREAM)
    assert fields[b"i"] == b"odd" and redis_conn.xpending(store.STREAM, store.GROUP)["pending"] == 1
    # Each redelivery fails the same way; after max_deliveries it is kept whole in the failed registry.
    settings = PipelineSettings(reclaim_idle_s=0, max_deliveries=2)
    for consumer in ("w2", "w3"):
        claimed = reclaim(redis_conn, consumer, settings)
        if claimed:
            processor.process(claimed)
    [entry] = failed.list_failed(redis_conn)
    assert entry["id"] == "event:odd:d1" and redis_conn.xlen(store.STREAM) == 0
