"""The acme-jira instance (Jira Cloud) as the tests configure it: its settings and secrets, a dry-run
configuration for the commands, signed deliveries of the Jira fixture, and a delivery looked at by a
burst worker (`sla-connector worker --burst`)."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest
import redis
import yaml

from connector.config.loader import load_config
from connector.jobs import context
from connector.receiver.app import create_app
from tests.connector.fakes.cli import run

ROOT = Path(__file__).resolve().parents[3]
JIRA_FIXTURE = ROOT / "adapters/jira/tests/fixtures/cloud_issue_created.json"
INSTANCE = {
    "product": "jira",
    "base_url": "https://acme.atlassian.net",
    "deployment": "cloud",
    "auth": {"email_env": "JIRA_EMAIL", "token_env": "JIRA_API_TOKEN"},
    "webhook_secret_env": "JIRA_WEBHOOK_SECRET",
}
SECRETS = {
    "JIRA_EMAIL": "bot@acme.example",
    "JIRA_API_TOKEN": "jira-token-value",
    "JIRA_WEBHOOK_SECRET": "jira-webhook-secret-value",
}
# Resolution on a 24x7 calendar, 4h or 8h by priority, a tag at the breach; effects only logged.
CONFIG = yaml.safe_dump(
    {
        "instances": {"acme-jira": {**INSTANCE, "dry_run": True}},
        "calendars": {"always": {"timezone": "UTC", "hours": "24x7"}},
        "policies": [
            {
                "id": "standard",
                "version": 1,
                "match": {"instance": ["acme-jira"]},
                "metrics": {
                    "resolution": {
                        "calendar": "always",
                        "targets": {
                            "urgent": "4h",
                            "high": "4h",
                            "normal": "8h",
                            "medium": "8h",
                            "low": "8h",
                        },
                    }
                },
                "escalations": [
                    {
                        "name": "breach",
                        "metric": "resolution",
                        "at": "breach",
                        "actions": [{"tag": "sla-breached"}],
                    }
                ],
            }
        ],
    },
    sort_keys=False,
)


def jira_headers(body: bytes, delivery: str) -> dict[str, str]:
    """The headers Jira sends with `body`: signed with SECRETS' webhook secret, `delivery` its id."""
    digest = hmac.new(SECRETS["JIRA_WEBHOOK_SECRET"].encode(), body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-Atlassian-Webhook-Identifier": delivery,
        "X-Hub-Signature": f"sha256={digest}",
    }


def deliver_and_look(
    capsys: pytest.CaptureFixture[str], config_path: Path, conn: redis.Redis, body: bytes, delivery: str
) -> None:
    """`body` accepted by the receiver (202), then looked at by `sla-connector worker --burst`."""
    client = create_app(load_config(config_path), conn).test_client()
    assert client.post("/hooks/acme-jira", data=body, headers=jira_headers(body, delivery)).status_code == 202
    try:
        assert run(capsys, "--config", str(config_path), "worker", "--burst", "--name", delivery)[0] == 0
    finally:
        context.install(None)  # the worker command installed its context in this (test) process
