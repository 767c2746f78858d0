"""Installing the connector's webhook (and, for the trigger kind, its trigger) in Zendesk.

Everything the connector creates is named `sla-connector <instance>` (or `webhook.name`), which is
how `list`, a second `install` and `uninstall` find it again: installing twice changes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from adapters.settings import webhook_url
from adapters.zendesk.config import ZendeskSettings
from adapters.zendesk.http import ZendeskHttp
from adapters.zendesk.inbound import OUTAGE_START_ONLY, SUPPORTED

TEMPLATE_PATH = Path(__file__).resolve().parent / "trigger_template.json"
TRIGGER_TEMPLATE = TEMPLATE_PATH.read_text()
#: Trigger webhooks subscribe to this pseudo-event; the trigger decides when they fire.
TRIGGER_SUBSCRIPTION = "conditional_ticket_events"


def trigger_conditions() -> dict[str, Any]:
    """Fire on every creation and every update: the connector filters what matters."""
    return {
        "all": [],
        "any": [
            {"field": "update_type", "operator": "is", "value": "Create"},
            {"field": "update_type", "operator": "is", "value": "Change"},
        ],
    }


def trigger_body(settings: ZendeskSettings) -> str:
    """The trigger's JSON body: the shipped template, with the `outage_start_field`'s value where the
    instance names one (Zendesk's placeholder for a ticket field: `{{ticket.ticket_field_<id>}}`)."""
    if settings.outage_start_field is None:
        return TRIGGER_TEMPLATE  # verbatim: triggers installed from it stay equal, so install changes nothing
    body = json.loads(TRIGGER_TEMPLATE)
    body["ticket"]["outage_start"] = "{{ticket.ticket_field_" + str(settings.outage_start_field) + "}}"
    return json.dumps(body, indent=2) + "\n"  # the template's own layout


def _summary(hook: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "name", "endpoint", "status", "subscriptions", "http_method", "request_format")
    return {k: hook.get(k) for k in keys}


class ZendeskInstaller:
    def __init__(self, settings: ZendeskSettings, http: ZendeskHttp) -> None:
        self.settings = settings
        self.http = http
        self.name = settings.webhook_name

    def subscriptions(self) -> list[str]:
        if self.settings.webhook_kind == "trigger":
            return [TRIGGER_SUBSCRIPTION]
        if self.settings.outage_start_field is None:
            return sorted(SUPPORTED - OUTAGE_START_ONLY)
        return sorted(SUPPORTED)

    # ------------------------------------------------------------ queries

    def _webhooks(self) -> list[dict[str, Any]]:
        hooks = self.http.pages("/api/v2/webhooks", "webhooks", {"filter[name_contains]": self.name})
        return [h for h in hooks if h.get("name") == self.name]

    def _triggers(self) -> list[dict[str, Any]]:
        found = self.http.pages("/api/v2/triggers/search.json", "triggers", {"query": self.name})
        return [t for t in found if t.get("title") == self.name]

    def list(self) -> list[dict[str, Any]]:
        return [_summary(h) for h in self._webhooks()]

    # ------------------------------------------------------------ install / uninstall

    def install(self, url: str) -> dict[str, Any]:
        webhook_url(url, "install")
        wanted = {
            "name": self.name,
            "endpoint": url,
            "http_method": "POST",
            "request_format": "json",
            "status": "active",
            "subscriptions": self.subscriptions(),
        }
        hooks = self._webhooks()
        created = updated = False
        if not hooks:
            hook = self.http.request("POST", "/api/v2/webhooks", json={"webhook": wanted})["webhook"]
            created = True
        else:
            hook = hooks[0]
            changes = {
                k: v
                for k, v in wanted.items()
                if (sorted(hook.get(k) or []) if k == "subscriptions" else hook.get(k))
                != (sorted(v) if k == "subscriptions" else v)
            }
            if changes:
                self.http.request("PATCH", f"/api/v2/webhooks/{hook['id']}", json={"webhook": changes})
                hook = {**hook, **changes}
                updated = True
        secret = self.http.request("GET", f"/api/v2/webhooks/{hook['id']}/signing_secret")
        result: dict[str, Any] = {
            "webhook": {**_summary(hook), "created": created, "updated": updated},
            "signing_secret": (secret or {}).get("signing_secret", {}).get("secret"),
            "secret_env": self.settings.secret_env,
            "trigger": None,
        }
        if self.settings.webhook_kind == "trigger":
            result["trigger"] = self._install_trigger(str(hook["id"]))
        return result

    def _install_trigger(self, webhook_id: str) -> dict[str, Any]:
        # Adding (or changing) `outage_start_field` changes the body: compared below, the trigger is updated.
        body = trigger_body(self.settings)
        wanted = {
            "title": self.name,
            "active": True,
            "conditions": trigger_conditions(),
            "actions": [{"field": "notification_webhook", "value": [webhook_id, body]}],
        }
        triggers = self._triggers()
        if not triggers:
            trigger = self.http.request("POST", "/api/v2/triggers.json", json={"trigger": wanted})["trigger"]
            return {"id": trigger["id"], "title": self.name, "created": True, "updated": False}
        trigger = triggers[0]
        same = (
            trigger.get("active") is True
            and trigger.get("actions") == wanted["actions"]
            and _conditions(trigger.get("conditions")) == _conditions(wanted["conditions"])
        )
        if not same:
            self.http.request("PUT", f"/api/v2/triggers/{trigger['id']}.json", json={"trigger": wanted})
        return {"id": trigger["id"], "title": self.name, "created": False, "updated": not same}

    def uninstall(self) -> dict[str, Any]:
        deleted_triggers = []
        for trigger in self._triggers():
            self.http.request("DELETE", f"/api/v2/triggers/{trigger['id']}.json")
            deleted_triggers.append(trigger["id"])
        deleted_webhooks = []
        for hook in self._webhooks():
            self.http.request("DELETE", f"/api/v2/webhooks/{hook['id']}")
            deleted_webhooks.append(hook["id"])
        return {"deleted_webhooks": deleted_webhooks, "deleted_triggers": deleted_triggers}


def _conditions(value: Any) -> str:
    value = value or {}
    return json.dumps({k: value.get(k) or [] for k in ("all", "any")}, sort_keys=True)
