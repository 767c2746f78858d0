"""Webhook installation: create, find (idempotent), replace, list and delete ours only."""

from __future__ import annotations

import json
from typing import Any

import pytest
import responses

import adapters.jira as jira
from adapters.jira.tests.helpers import (
    BASIC,
    BEARER,
    CLOUD_CONFIG,
    CLOUD_URL,
    DC_CONFIG,
    DC_URL,
    ENV,
    assert_headers,
)

WEBHOOKS = f"{CLOUD_URL}/rest/webhooks/1.0/webhook"
RECEIVER = "https://sla.acme.example/hooks/acme"
EVENTS = ["jira:issue_created", "jira:issue_updated", "jira:issue_deleted"]


def bean(ident: int, name: str, url: str, jql: str = "project = SUP", events: Any = None) -> dict[str, Any]:
    """A webhook as GET /rest/webhooks/1.0/webhook describes it (no secret)."""
    return {
        "self": f"{WEBHOOKS}/{ident}",
        "name": name,
        "url": url,
        "excludeBody": False,
        "filters": {"issue-related-events-section": jql},
        "events": events or list(EVENTS),
        "enabled": True,
        "lastUpdated": 1795770000000,
        "lastUpdatedUser": "admin",
        "lastUpdatedDisplayName": "Admin",
    }


@pytest.fixture
def installer():
    return jira.create("acme", CLOUD_CONFIG, ENV).installer()


@responses.activate
def test_install_creates_then_second_run_changes_nothing(installer) -> None:
    foreign = bean(3, "CI notifications", "https://ci.example/hook")
    responses.get(WEBHOOKS, json=[foreign])
    responses.post(WEBHOOKS, status=201, json=bean(7, "sla-connector acme", RECEIVER))
    first = installer.install(RECEIVER)
    assert first["status"] == "created" and first["id"] == "7" and first["removed"] == []
    post = responses.calls[1]
    assert post.request.method == "POST" and post.request.url == WEBHOOKS
    assert_headers(post, BASIC)
    assert json.loads(post.request.body) == {
        "name": "sla-connector acme",
        "url": RECEIVER,
        "events": EVENTS,
        "filters": {"issue-related-events-section": "project = SUP"},
        "excludeBody": False,
        "secret": ENV["JIRA_WEBHOOK_SECRET"],
    }
    assert "secret" not in first["webhook"]

    responses.reset()
    responses.get(WEBHOOKS, json=[foreign, bean(7, "sla-connector acme", RECEIVER)])
    second = installer.install(RECEIVER)
    assert second["status"] == "found" and second["id"] == "7"
    assert [c.request.method for c in responses.calls] == ["GET"]


@responses.activate
def test_install_replaces_ours_when_settings_differ(installer) -> None:
    responses.get(WEBHOOKS, json=[bean(7, "sla-connector acme", "https://old.example/hook")])
    responses.delete(f"{WEBHOOKS}/7", status=204)
    responses.post(WEBHOOKS, status=201, json=bean(8, "sla-connector acme", RECEIVER))
    result = installer.install(RECEIVER)
    assert result["status"] == "replaced" and result["removed"] == ["7"] and result["id"] == "8"
    assert [(c.request.method, c.request.url) for c in responses.calls] == [
        ("GET", WEBHOOKS),
        ("DELETE", f"{WEBHOOKS}/7"),
        ("POST", WEBHOOKS),
    ]
    for call in responses.calls:
        assert_headers(call, BASIC, body=call.request.method == "POST")


@responses.activate
def test_install_replaces_duplicates_of_ours(installer) -> None:
    ours = bean(7, "sla-connector acme", RECEIVER)
    responses.get(WEBHOOKS, json=[ours, bean(9, "sla-connector acme", RECEIVER)])
    responses.delete(f"{WEBHOOKS}/7", status=204)
    responses.delete(f"{WEBHOOKS}/9", status=204)
    responses.post(WEBHOOKS, status=201, json=bean(10, "sla-connector acme", RECEIVER))
    assert installer.install(RECEIVER)["removed"] == ["7", "9"]


def test_install_refuses_a_non_http_url(installer) -> None:
    with pytest.raises(ValueError, match="webhook url must be http"):
        installer.install("ftp://nope")


@responses.activate
def test_list_and_uninstall_touch_only_ours(installer) -> None:
    hooks = [
        bean(3, "CI notifications", "https://ci.example/hook"),
        bean(7, "sla-connector acme", RECEIVER),
        bean(8, "sla-connector other-instance", RECEIVER),
    ]
    responses.get(WEBHOOKS, json=hooks)
    assert [h["name"] for h in installer.list()] == ["sla-connector acme"]
    responses.delete(f"{WEBHOOKS}/7", status=204)
    assert installer.uninstall() == {"deleted": ["7"]}
    assert [c.request.method for c in responses.calls] == ["GET", "GET", "DELETE"]
    responses.reset()
    responses.get(WEBHOOKS, json=[hooks[0]])
    assert installer.uninstall() == {"deleted": []}


@responses.activate
def test_install_without_a_webhook_secret_sends_none() -> None:
    config = {k: v for k, v in CLOUD_CONFIG.items() if k not in ("webhook_secret_env", "webhook_jql")}
    installer = jira.create("acme", config, ENV).installer()
    responses.get(WEBHOOKS, json=[])
    responses.post(WEBHOOKS, status=201, json=bean(7, "sla-connector acme", RECEIVER, jql=""))
    installer.install(RECEIVER)
    body = json.loads(responses.calls[1].request.body)
    assert "secret" not in body and body["filters"] == {"issue-related-events-section": ""}


@responses.activate
def test_data_center_install_uses_the_bearer_token() -> None:
    installer = jira.create("ops", DC_CONFIG, ENV).installer()
    hooks = f"{DC_URL}/rest/webhooks/1.0/webhook"
    responses.get(hooks, json=[])
    created = {**bean(12, "sla-connector ops", RECEIVER, jql=""), "self": f"{hooks}/12"}
    responses.post(hooks, status=201, json=created)
    assert installer.install(RECEIVER)["id"] == "12"
    get, post = responses.calls
    assert_headers(get, BEARER, body=False)
    assert_headers(post, BEARER)
    assert json.loads(post.request.body)["name"] == "sla-connector ops"
