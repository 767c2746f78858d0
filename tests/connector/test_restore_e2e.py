"""Through the real receiver, Redis and the RQ look jobs with the real Zendesk adapter and `evaluate`:
a ticket first seen after its creation, and a ticket soft-deleted then restored.

The Zendesk API is faked with `responses`; webhooks are the adapter's fixtures, signed.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import responses

from adapters.zendesk.tests.helpers import BASE, ENV, adapter, config, fixture_bytes, load, signed_headers
from connector.config.loader import Config, config_from_dict
from connector.config.tuning import PipelineSettings
from connector.state import store, timers

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fakes.harness import Clock, drain, make_context  # noqa: E402
from fakes.sla_config import sla_sections  # noqa: E402

CREATED_AT = datetime.fromisoformat("2026-11-23T09:12:07+00:00")  # every fixture's ticket.created_at


def _config() -> Config:
    real = config_from_dict({"instances": {"acme": config()}, **sla_sections("1h")}, ENV)
    # The same adapter, made by the helper so that its HTTP retries record their sleeps instead of waiting.
    zd = dataclasses.replace(real.instances["acme"], adapter=adapter())
    return dataclasses.replace(real, instances={"acme": zd})


@pytest.fixture
def stack(redis_conn: redis.Redis) -> Any:
    from connector.receiver.app import create_app

    cfg = _config()
    client = create_app(cfg, redis_conn).test_client()
    clock = Clock(CREATED_AT)
    processor = make_context(redis_conn, cfg, PipelineSettings(max_attempts=3), clock=clock)
    return client, processor, clock


def deliver(client: Any, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    response = client.post("/hooks/acme", data=body, headers=signed_headers(body, timestamp=stamp))
    assert response.status_code == 202, response.get_data(as_text=True)


def zendesk_api(rsps: responses.RequestsMock) -> None:
    rsps.assert_all_requests_are_fired = False
    ticket = re.compile(rf"{re.escape(BASE)}/api/v2/tickets/5158(\.json|/tags\.json)")
    rsps.add(responses.PUT, ticket, json={"ticket": {"id": 5158}})
    rsps.add(
        responses.GET,
        re.compile(rf"{re.escape(BASE)}/api/v2/tickets/5158/comments\.json.*"),
        json={"comments": []},
    )


def writes(rsps: responses.RequestsMock) -> list[tuple[str, Any]]:
    out = []
    for call in rsps.calls:
        if call.request.method == "PUT":
            out.append((call.request.url.replace(BASE, ""), json.loads(call.request.body)))
    return out


def tags_written(rsps: responses.RequestsMock) -> set[str]:
    tags: set[str] = set()
    for _, body in writes(rsps):
        tags.update(body.get("tags") or [])
        tags.update((body.get("ticket") or {}).get("additional_tags") or [])
    return tags


def test_a_ticket_first_seen_after_creation_breaches_from_its_real_creation(stack: Any, redis_conn) -> None:
    client, processor, clock = stack
    # The creation webhook was lost: the first delivery is a priority change at 10:20; the 1h target
    # counted from the real creation (09:12:07) has passed by then (from 10:20 it would not have).
    clock.now = datetime.fromisoformat("2026-11-23T10:30:00+00:00").timestamp()
    with responses.RequestsMock() as rsps:
        zendesk_api(rsps)
        deliver(client, load("event_priority_changed"))
        drain(processor)
        assert "sla-breached" in tags_written(rsps)
    record = store.load_record(redis_conn, "acme", "5158")
    assert record is not None and record.ledger["comment:test/resolution:breach"] == "posted"
    assert record.events[0].reported_creation == CREATED_AT  # stored with the event


def _restored_payload() -> dict[str, Any]:
    """The restore, an hour after the deletion (fixture times: created Mon 09:12, deleted Tue 08:00)."""
    return load("event_undeleted")


def test_a_deleted_then_restored_ticket_is_written_to_again(stack: Any, redis_conn) -> None:
    client, processor, clock = stack
    with responses.RequestsMock() as rsps:
        zendesk_api(rsps)
        clock.now = (CREATED_AT + timedelta(minutes=1)).timestamp()
        deliver(client, load("event_ticket_created"))
        drain(processor)
        first = len(writes(rsps))
        assert first >= 1 and timers.due_at(redis_conn, "acme", "5158") is not None

        clock.now = datetime.fromisoformat("2026-11-24T08:30:00+00:00").timestamp()
        deliver(client, load("event_soft_deleted"))
        drain(processor)
        assert len(writes(rsps)) == first  # a deleted ticket is written nothing
        assert timers.due_at(redis_conn, "acme", "5158") is None

        clock.now = datetime.fromisoformat("2026-11-24T09:31:00+00:00").timestamp()
        deliver(client, _restored_payload())
        drain(processor)
        # Restored: the breach (1h after creation, long past) is written once, and nothing is pending.
        assert "sla-breached" in tags_written(rsps)
        assert redis_conn.llen(store.inbox_key("acme", "5158")) == 0 and redis_conn.zcard(store.WANT) == 0
    record = store.load_record(redis_conn, "acme", "5158")
    assert record is not None and not record.gone
    assert record.ledger["comment:test/resolution:breach"] == "posted"
    assert [e.kind.value for e in record.events] == ["created", "deleted", "restored"]


def test_a_deleted_ticket_that_is_not_restored_is_written_nothing(stack: Any, redis_conn) -> None:
    client, processor, clock = stack
    clock.now = datetime.fromisoformat("2026-11-24T08:30:00+00:00").timestamp()
    with responses.RequestsMock() as rsps:
        zendesk_api(rsps)
        deliver(client, load("event_ticket_created"))
        deliver(client, load("event_soft_deleted"))
        drain(processor)
        assert writes(rsps) == []
    assert timers.due_at(redis_conn, "acme", "5158") is None


def test_the_undelete_fixture_is_a_valid_signed_delivery(stack: Any) -> None:
    client, _, _ = stack
    body = fixture_bytes("event_undeleted")
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    response = client.post("/hooks/acme", data=body, headers=signed_headers(body, timestamp=stamp))
    assert response.status_code == 202
