"""jobs.retries.gone_reason: which NotFound ends a ticket's effects at once, and which RQ retries."""

from __future__ import annotations

import dataclasses
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import responses
from rq.registry import ScheduledJobRegistry

from adapters.base import NotFound
from adapters.zendesk.tests.helpers import BASE, ENV, adapter, config, load
from connector.config.loader import config_from_dict
from connector.config.tuning import PipelineSettings
from connector.jobs.context import Context
from connector.jobs.retries import describe, gone_reason
from connector.receiver.intake import accept
from connector.state import failed, queues, store, timers
from sla.events import EventKind, Status, TicketEvent

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fakes.harness import Clock, drain, make_context  # noqa: E402
from fakes.sla_config import sla_sections  # noqa: E402

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
CREATED = TicketEvent("c1", "5158", EventKind.CREATED, T0, fields={"status": Status.NEW})
DELETED = TicketEvent("x1", "5158", EventKind.DELETED, T0)


@pytest.mark.parametrize(
    ("exc", "events", "reason"),
    [
        (NotFound("PUT: HTTP 404", 404), [CREATED], None),  # a bare 404: maybe lost permission
        (NotFound("no status"), [CREATED], None),
        (NotFound("PUT: HTTP 404", 404), [CREATED, DELETED], "deleted"),
        (NotFound("PUT: HTTP 422: closed prevents ticket update", 422), [CREATED], "HTTP 422"),
        # The adapter re-read the ticket and its credentials work (Zendesk triggers send no deletion).
        (NotFound("PUT: HTTP 404; confirmed", 404, confirmed=True), [CREATED], "confirmed 404"),
        (NotFound("PUT: HTTP 404; confirmed", 404, confirmed=True), [CREATED, DELETED], "deleted"),
    ],
)
def test_gone_reason(exc: NotFound, events: list[TicketEvent], reason: str | None) -> None:
    assert gone_reason(exc, events) == reason


def test_not_found_is_unconfirmed_by_default_and_keeps_its_status() -> None:
    exc = NotFound("GET /x: HTTP 404", 404)
    assert exc.confirmed is False and exc.status == 404 and not exc.retryable
    assert describe(exc).startswith("NotFound (HTTP 404): GET /x: HTTP 404")


# ---------------------------------------------------------------- through the look job, real Zendesk adapter


def _zendesk_context(conn: Any, clock: Clock) -> Context:
    webhook = {"secret_env": "ZD_SECRET", "kind": "trigger"}
    real = config_from_dict({"instances": {"zd": config(webhook=webhook)}, **sla_sections("10s")}, ENV)
    # The same adapter, made by the helper so that its HTTP retries record their sleeps instead of waiting.
    zd = dataclasses.replace(real.instances["zd"], adapter=adapter(webhook=webhook))
    real = dataclasses.replace(real, instances={"zd": zd})
    return make_context(conn, real, PipelineSettings(max_attempts=3), clock=clock)  # the real evaluate


@pytest.mark.parametrize(("me_status", "gone"), [(200, True), (401, False)])
def test_a_deleted_trigger_kind_ticket_ends_at_the_confirmed_404(
    redis_conn: Any, me_status: int, gone: bool
) -> None:
    # Trigger-kind instances never receive a deletion: without the confirmation the ticket would
    # be retried by RQ to max_attempts and land in its failed registry. A refused probe keeps the old rule.
    trigger = load("trigger_ticket_created")
    clock = Clock(datetime.fromisoformat(trigger["ticket"]["created_at"]) + timedelta(seconds=1))
    ctx = _zendesk_context(redis_conn, clock)
    gone_body = {"error": "RecordNotFound", "description": "Not found"}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.put(f"{BASE}/api/v2/tickets/5158/tags.json", status=404, json=gone_body)
        rsps.put(f"{BASE}/api/v2/tickets/5158.json", status=404, json=gone_body)
        rsps.get(f"{BASE}/api/v2/tickets/5158.json", status=404, json=gone_body)
        me = {"user": {"id": 900000000001}} if me_status == 200 else {"error": "Couldn't authenticate you"}
        rsps.get(f"{BASE}/api/v2/users/me.json", status=me_status, json=me)
        headers = {"x-zendesk-webhook-invocation-id": "inv-1"}
        assert accept(redis_conn, "zd", "invocation:inv-1", "5158", trigger, headers, datetime.now(UTC))
        drained = drain(ctx)
    record = store.load_record(redis_conn, "zd", "5158")
    assert record is not None and record.gone is gone
    retrying = ScheduledJobRegistry(queue=queues.queue(redis_conn, queues.TICKETS)).get_job_ids()
    if gone:
        assert record.meta["gone"] == "confirmed 404" and drained.failures == [] and retrying == []
        assert timers.due_at(redis_conn, "zd", "5158") is None
    else:  # a failure: RQ retries the job; the ticket keeps its next check
        assert len(drained.failures) == 1 and retrying == ["look-zd-5158-1"]
        assert timers.due_at(redis_conn, "zd", "5158") is not None
    assert failed.list_failed(redis_conn) == []
