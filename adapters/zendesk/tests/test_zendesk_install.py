"""Webhook (and trigger) installation against a small stateful fake of Zendesk's APIs."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from adapters.zendesk.inbound import OUTAGE_START_ONLY, SUPPORTED
from adapters.zendesk.install import TRIGGER_TEMPLATE
from adapters.zendesk.tests.helpers import BASE, adapter

URL = "https://sla.example.com/webhooks/zendesk/acme"
SIGNING_SECRET = "x3VgWcUbMvq8vOjnY1vE2p7Yc6Wn8jzTqHT3UZqF1gU="


class FakeZendesk:
    """Webhooks and triggers as the Webhooks and Triggers APIs document them; records writes."""

    def __init__(self, rsps: responses.RequestsMock) -> None:
        self.webhooks: dict[str, dict[str, Any]] = {}
        self.triggers: dict[int, dict[str, Any]] = {}
        self.writes: list[tuple[str, str, Any]] = []
        hooks = re.compile(rf"{re.escape(BASE)}/api/v2/webhooks(/[^/?]+)?(/signing_secret)?(\?.*)?$")
        trig = re.compile(rf"{re.escape(BASE)}/api/v2/triggers(/search|/\d+)?\.json(\?.*)?$")
        for method in ("GET", "POST", "PATCH", "DELETE"):
            rsps.add_callback(method, hooks, callback=self.on_webhooks)
        for method in ("GET", "POST", "PUT", "DELETE"):
            rsps.add_callback(method, trig, callback=self.on_triggers)

    def on_webhooks(self, request: Any) -> tuple[int, dict, str]:
        parts = urlsplit(request.url)
        segs = parts.path.split("/")[4:]  # after /api/v2/webhooks
        payload = json.loads(request.body) if request.body else None
        if request.method == "GET" and not segs:
            name = parse_qs(parts.query).get("filter[name_contains]", [""])[0]
            found = [h for h in self.webhooks.values() if name in h["name"]]
            page = {
                "webhooks": found,
                "meta": {"has_more": False, "after_cursor": None, "before_cursor": None},
                "links": {"next": None, "prev": None},
            }
            return 200, {}, json.dumps(page)
        if request.method == "GET" and segs[1:] == ["signing_secret"]:
            return 200, {}, json.dumps({"signing_secret": {"algorithm": "SHA256", "secret": SIGNING_SECRET}})
        self.writes.append((request.method, parts.path, payload))
        if request.method == "POST":
            hook = {
                **payload["webhook"],
                "id": f"01GDXYD7ZTWYP7XJJZQSD0AY{len(self.webhooks):02d}",
                "created_at": "2026-11-27T11:00:00Z",
                "created_by": "900000000001",
            }
            self.webhooks[hook["id"]] = hook
            return 201, {}, json.dumps({"webhook": hook})
        if request.method == "PATCH":
            self.webhooks[segs[0]].update(payload["webhook"])
            return 204, {}, ""
        del self.webhooks[segs[0]]
        return 204, {}, ""

    def on_triggers(self, request: Any) -> tuple[int, dict, str]:
        parts = urlsplit(request.url)
        tail = parts.path.removeprefix("/api/v2/triggers").removesuffix(".json")
        payload = json.loads(request.body) if request.body else None
        if tail == "/search":
            query = parse_qs(parts.query)["query"][0]
            found = [t for t in self.triggers.values() if query in t["title"]]
            page = {"triggers": found, "next_page": None, "previous_page": None, "count": len(found)}
            return 200, {}, json.dumps(page)
        self.writes.append((request.method, parts.path, payload))
        if request.method == "POST":
            trigger = {
                **payload["trigger"],
                "id": 360000100 + len(self.triggers),
                "position": 1,
                "raw_title": payload["trigger"]["title"],
            }
            self.triggers[trigger["id"]] = trigger
            return 201, {}, json.dumps({"trigger": trigger})
        tid = int(tail.strip("/"))
        if request.method == "PUT":
            self.triggers[tid].update(payload["trigger"])
            return 200, {}, json.dumps({"trigger": self.triggers[tid]})
        del self.triggers[tid]
        return 204, {}, ""


@pytest.fixture
def fake() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield FakeZendesk(rsps)


def test_install_creates_an_event_webhook_and_returns_its_secret(fake: FakeZendesk) -> None:
    result = adapter().installer().install(URL)
    [(method, path, body)] = fake.writes
    assert (method, path) == ("POST", "/api/v2/webhooks")
    assert body == {
        "webhook": {
            "name": "sla-connector acme",
            "endpoint": URL,
            "http_method": "POST",
            "request_format": "json",
            "status": "active",
            "subscriptions": sorted(SUPPORTED - OUTAGE_START_ONLY),
        }
    }
    assert "zen:event-type:ticket.comment_added" in body["webhook"]["subscriptions"]
    assert result["webhook"]["created"] is True and result["webhook"]["updated"] is False
    assert result["signing_secret"] == SIGNING_SECRET
    assert result["secret_env"] == "ZD_SECRET"
    assert result["trigger"] is None


def test_install_twice_changes_nothing(fake: FakeZendesk) -> None:
    installer = adapter().installer()
    first = installer.install(URL)
    writes = len(fake.writes)
    second = installer.install(URL)
    assert len(fake.writes) == writes  # only reads the second time
    assert second["webhook"]["id"] == first["webhook"]["id"]
    assert (second["webhook"]["created"], second["webhook"]["updated"]) == (False, False)
    assert installer.list() == [
        {
            k: first["webhook"][k]
            for k in ("id", "name", "endpoint", "status", "subscriptions", "http_method", "request_format")
        }
    ]


def test_install_with_a_new_url_updates_the_existing_webhook(fake: FakeZendesk) -> None:
    installer = adapter().installer()
    first = installer.install(URL)
    result = installer.install("https://sla2.example.com/hook")
    assert fake.writes[-1] == (
        "PATCH",
        f"/api/v2/webhooks/{first['webhook']['id']}",
        {"webhook": {"endpoint": "https://sla2.example.com/hook"}},
    )
    assert result["webhook"]["updated"] is True
    assert len(fake.webhooks) == 1


def test_other_webhooks_with_similar_names_are_left_alone(fake: FakeZendesk) -> None:
    fake.webhooks["01OTHER"] = {
        "id": "01OTHER",
        "name": "sla-connector acme-staging",
        "endpoint": "https://x",
    }
    ours = adapter().installer().install(URL)["webhook"]["id"]
    assert ours != "01OTHER" and len(fake.webhooks) == 2
    assert adapter().installer().uninstall() == {"deleted_webhooks": [ours], "deleted_triggers": []}
    assert list(fake.webhooks) == ["01OTHER"]


def test_trigger_kind_creates_webhook_and_trigger_idempotently(fake: FakeZendesk) -> None:
    zd = adapter(webhook={"secret_env": "ZD_SECRET", "kind": "trigger"})
    result = zd.installer().install(URL)
    hook_id = result["webhook"]["id"]
    assert fake.webhooks[hook_id]["subscriptions"] == ["conditional_ticket_events"]
    [_, (method, path, body)] = fake.writes
    assert (method, path) == ("POST", "/api/v2/triggers.json")
    assert body == {
        "trigger": {
            "title": "sla-connector acme",
            "active": True,
            "conditions": {
                "all": [],
                "any": [
                    {"field": "update_type", "operator": "is", "value": "Create"},
                    {"field": "update_type", "operator": "is", "value": "Change"},
                ],
            },
            "actions": [{"field": "notification_webhook", "value": [hook_id, TRIGGER_TEMPLATE]}],
        }
    }
    assert json.loads(TRIGGER_TEMPLATE)["sla_connector"] == "zendesk-trigger-v1"
    assert result["trigger"] == {
        "id": 360000100,
        "title": "sla-connector acme",
        "created": True,
        "updated": False,
    }

    writes = len(fake.writes)
    again = zd.installer().install(URL)
    assert len(fake.writes) == writes
    assert again["trigger"] == {
        "id": 360000100,
        "title": "sla-connector acme",
        "created": False,
        "updated": False,
    }

    fake.triggers[360000100]["active"] = False  # an admin deactivated it: install repairs it
    repaired = zd.installer().install(URL)
    assert fake.writes[-1][0:2] == ("PUT", "/api/v2/triggers/360000100.json")
    assert repaired["trigger"]["updated"] is True and fake.triggers[360000100]["active"] is True


def test_uninstall_deletes_trigger_then_webhook_and_is_idempotent(fake: FakeZendesk) -> None:
    zd = adapter(webhook={"secret_env": "ZD_SECRET", "kind": "trigger"})
    hook_id = zd.installer().install(URL)["webhook"]["id"]
    assert zd.installer().uninstall() == {"deleted_webhooks": [hook_id], "deleted_triggers": [360000100]}
    assert [w[:2] for w in fake.writes[-2:]] == [
        ("DELETE", "/api/v2/triggers/360000100.json"),
        ("DELETE", f"/api/v2/webhooks/{hook_id}"),
    ]
    assert zd.installer().uninstall() == {"deleted_webhooks": [], "deleted_triggers": []}
    assert zd.installer().list() == []


def test_install_refuses_a_non_http_url(fake: FakeZendesk) -> None:
    with pytest.raises(ValueError, match="webhook url must be http"):
        adapter().installer().install("ftp://sla.example.com")
    assert fake.writes == []


def test_admin_guide_shows_the_shipped_trigger_template() -> None:
    from pathlib import Path

    guide = (Path(__file__).resolve().parents[3] / "docs" / "install-zendesk.md").read_text()
    assert TRIGGER_TEMPLATE.strip() in guide


# ---------------------------------------------------------------- outage_start_field

CUSTOM_FIELD_CHANGED = "zen:event-type:ticket.custom_field_changed"
PLACEHOLDER = "{{ticket.ticket_field_360000123999}}"


def test_custom_field_changes_are_subscribed_to_only_with_an_outage_start_field(fake: FakeZendesk) -> None:
    # Without the setting every custom field edit (the connector's own deadline writes too) would be a
    # delivery dropped on arrival; adding it to an installed instance adds the subscription.
    first = adapter().installer().install(URL)
    assert CUSTOM_FIELD_CHANGED not in fake.webhooks[first["webhook"]["id"]]["subscriptions"]
    result = adapter(outage_start_field=360000123999).installer().install(URL)
    hook_id = first["webhook"]["id"]
    assert fake.writes[-1] == ("PATCH", f"/api/v2/webhooks/{hook_id}",
                               {"webhook": {"subscriptions": sorted(SUPPORTED)}})
    assert result["webhook"]["updated"] is True
    assert CUSTOM_FIELD_CHANGED in fake.webhooks[hook_id]["subscriptions"]
    writes = len(fake.writes)
    assert adapter(outage_start_field="360000123999").installer().install(URL)["webhook"]["updated"] is False
    assert len(fake.writes) == writes


def test_trigger_body_states_the_outage_field_only_where_configured(fake: FakeZendesk) -> None:
    kind = {"secret_env": "ZD_SECRET", "kind": "trigger"}
    adapter(webhook=kind).installer().install(URL)
    [plain] = [t["actions"][0]["value"][1] for t in fake.triggers.values()]
    assert plain == TRIGGER_TEMPLATE and "ticket_field_" not in plain
    assert "outage_start" not in json.loads(plain)["ticket"]

    # The instance adds the setting: its trigger is updated to the body with the field's placeholder...
    configured = adapter(webhook=kind, outage_start_field=360000123999)
    result = configured.installer().install(URL)
    method, path, sent = fake.writes[-1]
    assert (method, path, result["trigger"]["updated"]) == ("PUT", "/api/v2/triggers/360000100.json", True)
    body = sent["trigger"]["actions"][0]["value"][1]
    assert json.loads(body)["ticket"]["outage_start"] == PLACEHOLDER
    # ... which is the template in its own layout with that one key more ...
    assert body.replace(f',\n    "outage_start": "{PLACEHOLDER}"', "") == TRIGGER_TEMPLATE
    # ... and installing again changes nothing; removing the setting puts the plain body back.
    writes = len(fake.writes)
    assert configured.installer().install(URL)["trigger"]["updated"] is False
    assert len(fake.writes) == writes
    assert adapter(webhook=kind).installer().install(URL)["trigger"]["updated"] is True
    assert fake.triggers[360000100]["actions"][0]["value"][1] == TRIGGER_TEMPLATE
