"""Install, list and remove the connector's Jira admin webhook (`/rest/webhooks/1.0/webhook`).

Ours is the webhook named "sla-connector <instance>". `install` is idempotent: a webhook with our
name, URL, events and JQL filter is left alone; one with our name but other settings is replaced.
Comments arrive inside `jira:issue_updated` (with the full issue, so the reporter is known), so
`comment_created` is not subscribed; the inbound side still accepts it.
"""

from __future__ import annotations

from typing import Any

from adapters.jira.config import JiraConfig
from adapters.jira.http import JiraHttp
from adapters.settings import webhook_url

WEBHOOKS = "/rest/webhooks/1.0/webhook"
EVENTS = ["jira:issue_created", "jira:issue_updated", "jira:issue_deleted"]
FILTER_KEY = "issue-related-events-section"


def webhook_id(hook: dict[str, Any]) -> str:
    """Jira returns the id only inside `self` (".../rest/webhooks/1.0/webhook/42")."""
    return str(hook.get("id") or str(hook.get("self", "")).rstrip("/").rsplit("/", 1)[-1])


class JiraInstaller:
    def __init__(self, cfg: JiraConfig, http: JiraHttp) -> None:
        self.cfg = cfg
        self.http = http
        self.name = f"sla-connector {cfg.instance}"

    def desired(self, url: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "url": url,
            "events": list(EVENTS),
            "filters": {FILTER_KEY: self.cfg.webhook_jql or ""},
            "excludeBody": False,
        }
        if self.cfg.secrets.webhook_secret is not None:
            body["secret"] = self.cfg.secrets.webhook_secret.decode()
        return body

    def list(self) -> list[dict[str, Any]]:
        """Our webhooks (by name), as Jira describes them (Jira never returns the secret)."""
        hooks = self.http.request("GET", WEBHOOKS) or []
        return [{k: v for k, v in h.items() if k != "secret"} for h in hooks if h.get("name") == self.name]

    def install(self, url: str) -> dict[str, Any]:
        webhook_url(url, f"jira instance {self.cfg.instance!r}")
        want = self.desired(url)
        ours = self.list()
        for hook in ours:
            same = (
                hook.get("url") == url
                and sorted(hook.get("events") or []) == sorted(EVENTS)
                and (hook.get("filters") or {}).get(FILTER_KEY, "") == want["filters"][FILTER_KEY]
                and not hook.get("excludeBody", False)
            )
            if same and len(ours) == 1:
                return {"status": "found", "id": webhook_id(hook), "webhook": hook}
        removed = [self._delete(hook) for hook in ours]
        created = self.http.request("POST", WEBHOOKS, json=want) or {}
        status = "replaced" if removed else "created"
        shown = {k: v for k, v in created.items() if k != "secret"}  # never hand the secret back
        return {"status": status, "id": webhook_id(created), "removed": removed, "webhook": shown}

    def uninstall(self) -> dict[str, Any]:
        return {"deleted": [self._delete(hook) for hook in self.list()]}

    def _delete(self, hook: dict[str, Any]) -> str:
        ident = webhook_id(hook)
        self.http.request("DELETE", f"{WEBHOOKS}/{ident}")
        return ident
