"""`failed list|retry|purge`: look jobs in RQ's FailedJobRegistry, deliveries that could not be
normalised, and tickets holding refused effects; run through real RQ jobs (fakes/harness.py)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
import responses
from rq.job import Job
from rq.registry import FailedJobRegistry

from connector.config.tuning import PipelineSettings
from connector.jobs.context import Context
from connector.state import failed, queues, store

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fakes.harness import Clock, drain, make_context, post  # noqa: E402
from fakes.sla_config import created, desk_config  # noqa: E402

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
BASE = "https://desk.test"


def make(conn: redis.Redis, *, names: tuple[str, ...] = ("desk",), dry_run: bool = False,
         **settings: float) -> Context:
    clock = Clock(T0 + timedelta(seconds=1))
    return make_context(conn, desk_config(BASE, dry_run=dry_run, names=names), PipelineSettings(**settings),
                        clock=clock)


def registry(conn: redis.Redis) -> FailedJobRegistry:
    return FailedJobRegistry(queue=queues.queue(conn, queues.TICKETS))


def fail_a_look(conn: redis.Redis, ticket: str = "T-1") -> str:
    """A look job that fails on its only attempt (the product answers 503): its RQ job id."""
    ctx = make(conn, max_attempts=1)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.PUT, f"{BASE}/tickets/{ticket}", status=503)
        post(conn, f"d-{ticket}", ticket, [created(ticket, T0)])
        drained = drain(ctx)
    assert drained.failures == [f"adapters.base.ServerError: PUT /tickets/{ticket}: HTTP 503"]
    [job_id] = registry(conn).get_job_ids()
    return job_id


def _refuse(conn: redis.Redis, instance: str, ticket: str) -> None:
    """What a look records for a refused effect (connector/jobs/retries.record_rejected)."""
    conn.hset(store.ticket_key(instance, ticket), store.LEDGER_REJECTED + "tag:x",
              store.encode_rejection("x", "labels: bad", 100.0))
    conn.sadd(store.REFUSED, failed.ticket_id(instance, ticket))


# ---------------------------------------------------------------- deliveries that cannot be normalised


def test_a_delivery_that_cannot_be_normalised_is_listed_and_the_others_go_on(redis_conn: redis.Redis) -> None:
    ctx = make(redis_conn, dry_run=True)
    post(redis_conn, "d1", "T-1", [created("T-1", T0)])
    post(redis_conn, "d2", "T-1", [], poison=True)
    drained = drain(ctx)
    assert drained.failures == [] and drained.failed_deliveries == 1  # not a failed job
    assert store.load_record(redis_conn, "desk", "T-1").events  # d1 was stored all the same
    assert redis_conn.llen(store.inbox_key("desk", "T-1")) == 0
    assert failed.list_failed(redis_conn) == [{
        "id": "event:desk:d2", "kind": "event", "instance": "desk", "ticket": "T-1", "delivery": "d2",
        "error": "ValueError: poison payload", "attempts": 1, "failed_at": T0.timestamp() + 1,
    }]
    assert failed.failed_count(redis_conn) == 1


def test_retry_of_an_event_puts_it_back_and_it_is_then_processed(redis_conn: redis.Redis) -> None:
    # Posted for an instance not configured yet: kept, failed, replayable once it is configured.
    post(redis_conn, "d1", "T-1", [created("T-1", T0)], instance="zen")
    assert drain(make(redis_conn, dry_run=True)).failed_deliveries == 1
    [entry] = failed.list_failed(redis_conn)
    assert entry["id"] == "event:zen:d1" and entry["error"] == "LookupError: unknown instance 'zen'"
    assert store.load_record(redis_conn, "zen", "T-1") is None

    fixed = make(redis_conn, dry_run=True, names=("desk", "zen"))
    assert failed.retry_failed(redis_conn, ["event:zen:d1", "event:zen:nope"]) == 1
    [row] = [store.decode_inbox_row(r) for r in redis_conn.lrange(store.inbox_key("zen", "T-1"), 0, -1)]
    assert (row.kind, row.delivery, row.replay) == ("e", "d1", True)  # the delivery, as it was received
    assert json.loads(row.body)["events"] == [created("T-1", T0)]
    assert redis_conn.zscore(store.WANT, store.member("zen", "T-1")) is not None
    assert queues.queue(redis_conn, queues.DISPATCH).count >= 1  # a dispatch pass asked for
    assert failed.list_failed(redis_conn) == []

    drained = drain(fixed)
    assert [(r["ticket"], r["deliveries"], r["failed_deliveries"]) for r in drained.looks] == [("T-1", 1, 0)]
    record = store.load_record(redis_conn, "zen", "T-1")
    assert [e.event_id for e in record.events] == ["T-1-created"] and "due" in record.dry_ledger
    assert failed.list_failed(redis_conn) == [] and failed.retry_failed(redis_conn) == 0


def test_long_errors_are_cut(redis_conn: redis.Redis) -> None:
    row = store.decode_inbox_row(store.encode_inbox_row("e", b"{}", delivery="d-1"))
    failed.record_delivery(redis_conn, "acme", "T-1", row, "x" * 5000, now=1.0)
    assert len(json.loads(redis_conn.hget(store.FAILED, "event:acme:d-1"))["error"]) == 2000


# ---------------------------------------------------------------- look jobs in RQ's FailedJobRegistry


def test_a_look_that_failed_for_good_is_listed_from_rqs_registry(redis_conn: redis.Redis) -> None:
    job_id = fail_a_look(redis_conn)
    assert job_id.startswith("look-desk-T-1-")
    [entry] = failed.list_failed(redis_conn)
    assert {k: v for k, v in entry.items() if k != "failed_at"} == {
        "id": job_id, "kind": "job", "instance": "desk", "ticket": "T-1", "delivery": None,
        "error": "adapters.base.ServerError: PUT /tickets/T-1: HTTP 503", "attempts": 1,
    }
    assert entry["failed_at"] > 0
    assert failed.failed_count(redis_conn) == 1
    # The ticket no longer counts as having a job: its next delivery asks for a new look.
    assert redis_conn.hlen(store.QUEUED) == 0
    assert redis_conn.hget(store.ticket_key("desk", "T-1"), "#failed_job") == job_id.encode()


def test_retry_of_a_job_requeues_it_through_rq_and_clears_the_tickets_marks(redis_conn: redis.Redis) -> None:
    job_id = fail_a_look(redis_conn)
    tk = store.ticket_key("desk", "T-1")
    redis_conn.hset(tk, mapping={"#gone": "confirmed 404", "#gone_at": "1.0"})  # an older verdict
    _refuse(redis_conn, "desk", "T-1")
    assert failed.retry_failed(redis_conn, [job_id, "look-desk-T-9-9"]) == 1
    assert job_id not in registry(redis_conn)
    assert queues.queue(redis_conn, queues.TICKETS).job_ids == [job_id]  # the same RQ job, queued again
    assert not redis_conn.hexists(tk, "#gone") and not redis_conn.hexists(tk, "rej:tag:x")
    assert not redis_conn.sismember(store.REFUSED, failed.ticket_id("desk", "T-1"))
    ctx = make(redis_conn, max_attempts=1)
    with responses.RequestsMock() as rsps:
        rsps.assert_all_requests_are_fired = False
        rsps.add(responses.PUT, f"{BASE}/tickets/T-1", json={})
        rsps.add(responses.GET, f"{BASE}/tickets/T-1/comments", json={"comments": []})
        rsps.add(responses.POST, f"{BASE}/tickets/T-1/comments", json={})
        drained = drain(ctx, dispatch=False)
        assert rsps.calls[0].request.method == "PUT"
    assert drained.failures == [] and drained.tickets == ["T-1"]
    record = store.load_record(redis_conn, "desk", "T-1")
    assert "due" in record.ledger and "failed_job" not in record.meta and not record.gone
    assert failed.list_failed(redis_conn) == [] and failed.failed_count(redis_conn) == 0


def test_purge_of_a_job_removes_it_from_rqs_registry(redis_conn: redis.Redis) -> None:
    job_id = fail_a_look(redis_conn)
    assert failed.purge_failed(redis_conn, [job_id, "look-desk-T-9-9"]) == 1
    assert job_id not in registry(redis_conn) and not Job.exists(job_id, connection=redis_conn)
    assert failed.list_failed(redis_conn) == [] and failed.failed_count(redis_conn) == 0
    assert failed.purge_failed(redis_conn, [job_id]) == 0
    assert failed.retry_failed(redis_conn, [job_id]) == 0


# ---------------------------------------------------------------- all kinds together


def test_list_retry_and_purge_by_id_and_all(redis_conn: redis.Redis) -> None:
    job_id = fail_a_look(redis_conn, "T-2")
    post(redis_conn, "d1", "T-1", [], poison=True)
    drain(make(redis_conn))
    _refuse(redis_conn, "desk", "T-3")
    listed = failed.list_failed(redis_conn)
    assert [e["kind"] for e in listed] == ["refused", "event", "job"]  # oldest first
    assert [e["id"] for e in listed] == ["ticket:desk:T-3", "event:desk:d1", job_id]
    assert listed[0]["error"] == "tag:x: labels: bad" and listed[0]["failed_at"] == 100.0
    assert failed.failed_count(redis_conn) == 2  # refusals are not failures (status shows them apart)
    assert failed.retry_failed(redis_conn, ["ticket:desk:T-3", "nope"]) == 1
    assert not redis_conn.hexists(store.ticket_key("desk", "T-3"), "rej:tag:x")  # tried again
    assert redis_conn.zscore(store.WANT, store.member("desk", "T-3")) is not None
    assert failed.retry_failed(redis_conn) == 2  # all that is left: the delivery and the job
    assert queues.queue(redis_conn, queues.TICKETS).job_ids == [job_id]
    assert redis_conn.llen(store.inbox_key("desk", "T-1")) == 1
    assert failed.list_failed(redis_conn) == [] and failed.retry_failed(redis_conn) == 0


def test_purge(redis_conn: redis.Redis) -> None:
    job_id = fail_a_look(redis_conn, "T-0")
    for i in (1, 2):
        post(redis_conn, f"d{i}", f"T-{i}", [], poison=True)
    drain(make(redis_conn))
    assert len(failed.list_failed(redis_conn)) == 3
    assert failed.purge_failed(redis_conn, []) == 0
    assert failed.purge_failed(redis_conn, ["event:desk:d1", "unknown"]) == 1
    assert failed.purge_failed(redis_conn) == 2  # --all: the other delivery and the job
    assert failed.purge_failed(redis_conn) == 0
    assert failed.list_failed(redis_conn) == [] and not Job.exists(job_id, connection=redis_conn)
    assert not redis_conn.exists(store.FAILED, failed.ROWS)
    assert redis_conn.zcard(store.WANT) == 0  # nothing was replayed


def test_purge_counts_each_listed_id_once_whichever_list_holds_it(redis_conn: redis.Redis) -> None:
    post(redis_conn, "d1", "T-1", [], poison=True)
    drain(make(redis_conn))
    _refuse(redis_conn, "acme", "2")
    assert failed.purge_failed(redis_conn, ["event:desk:d1", "ticket:acme:2", "ticket:acme:9"]) == 2
    assert failed.list_failed(redis_conn) == []
    fail_a_look(redis_conn, "T-3")
    _refuse(redis_conn, "acme", "4")
    assert len(failed.list_failed(redis_conn)) == 2
    assert failed.purge_failed(redis_conn) == 2  # --all: what `list` showed
    assert failed.list_failed(redis_conn) == []


def test_retry_all_forgets_a_ticket_whose_refusals_were_superseded(redis_conn: redis.Redis) -> None:
    _refuse(redis_conn, "acme", "5")
    # A new value was written since: the look dropped the rej: field.
    redis_conn.hdel(store.ticket_key("acme", "5"), store.LEDGER_REJECTED + "tag:x")
    redis_conn.hset(store.ticket_key("acme", "5"), "tag:x", "x")
    assert failed.list_failed(redis_conn) == []
    assert failed.retry_failed(redis_conn) == 0
    assert not redis_conn.sismember(store.REFUSED, failed.ticket_id("acme", "5"))


@pytest.mark.parametrize(
    "entry_id", ["ticket:acme:404", "ticket::T-1", "event:acme:nope", "look-x-1-1", "look x.1", "é"])
def test_an_unknown_entry_is_neither_replayed_nor_purged(redis_conn: redis.Redis, entry_id: str) -> None:
    # Counted as not found (the CLI says how many ids were not in the registry), never raised.
    assert failed.retry_failed(redis_conn, [entry_id]) == 0
    assert failed.purge_failed(redis_conn, [entry_id]) == 0
    assert redis_conn.zcard(store.WANT) == 0
    assert queues.queue(redis_conn, queues.DISPATCH).count == 0
