"""End to end through the connector's real receiver and a real Redis: Zendesk deliveries in."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import redis

from adapters.zendesk.tests.helpers import ENV, config, fixture_bytes, signed_headers


@pytest.fixture
def client(redis_conn: redis.Redis):
    from connector.config.loader import config_from_dict
    from connector.receiver.app import create_app

    app = create_app(config_from_dict({"instances": {"acme": config()}}, ENV), redis_conn)
    return app.test_client()


def post(client, body: bytes, headers: dict[str, str]):
    return client.post("/hooks/acme", data=body, headers=headers)


def now_stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_signed_event_is_accepted_once(client) -> None:
    body = fixture_bytes("event_comment_added_agent")
    headers = signed_headers(body, timestamp=now_stamp())
    first = post(client, body, headers)
    assert first.status_code == 202, first.get_data(as_text=True)
    assert first.get_json()["delivery"] == "d4f5c389-8f4a-4c2e-a1b9-8e4f39c71d52"
    again = post(client, body, headers)  # Zendesk retries: same event id
    assert again.status_code == 200 and again.get_json()["status"] == "duplicate"


def test_trigger_body_is_accepted_with_its_invocation_id(client) -> None:
    body = fixture_bytes("trigger_agent_reply")
    headers = {**signed_headers(body, timestamp=now_stamp()), "x-zendesk-webhook-invocation-id": "01JDZ"}
    response = post(client, body, headers)
    assert response.status_code == 202 and response.get_json()["delivery"] == "invocation:01JDZ"


def test_wrong_signature_is_401_and_bad_payload_400_with_path(client) -> None:
    body = fixture_bytes("event_status_changed")
    headers = signed_headers(body, timestamp=now_stamp(), secret="not-the-secret")
    response = post(client, body, headers)
    assert response.status_code == 401
    assert "wrong X-Zendesk-Webhook-Signature" in response.get_data(as_text=True)

    payload = json.loads(body)
    payload["detail"]["id"] = "12a"
    bad = json.dumps(payload).encode()
    response = post(client, bad, signed_headers(bad, timestamp=now_stamp()))
    assert response.status_code == 400
    assert "$.detail.id" in response.get_data(as_text=True)
