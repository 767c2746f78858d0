"""`sla-connector ticket <instance> <ticket>`: a ticket's SLA state as a table, --json, exit codes."""

from __future__ import annotations

import json
import logging
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from connector.cli.main import main
from connector.config.loader import load_config
from connector.jobs import context
from connector.receiver.app import create_app

ROOT = Path(__file__).resolve().parents[2]
JIRA_FIXTURE = ROOT / "adapters/jira/tests/fixtures/cloud_issue_created.json"
SECRETS = {"JIRA_EMAIL": "bot@acme.example", "JIRA_API_TOKEN": "jira-token-value",
           "JIRA_WEBHOOK_SECRET": "jira-webhook-secret-value"}
CONFIG = """
    instances:
      acme-jira:
        product: jira
        dry_run: true
        base_url: https://acme.atlassian.net
        deployment: cloud
        auth: {email_env: JIRA_EMAIL, token_env: JIRA_API_TOKEN}
        webhook_secret_env: JIRA_WEBHOOK_SECRET
    calendars:
      always: {timezone: UTC, hours: 24x7}
    policies:
      - id: standard
        version: 1
        match: {instance: [acme-jira]}
        metrics:
          resolution: {calendar: always, targets: {high: 4h, normal: 8h, medium: 8h, low: 8h}}
        escalations:
          - {name: breach, metric: resolution, at: breach, actions: [{tag: sla-breached}]}
"""


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def config_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str) -> Path:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.delenv("SLA_CONNECTOR_CONFIG", raising=False)
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(CONFIG) + f"data_dir: {tmp_path / 'data'}\n")
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def delivered(capsys: pytest.CaptureFixture[str], config_path: Path, redis_conn: redis.Redis) -> dict:
    """The Jira fixture accepted by the receiver and looked at by a burst worker."""
    import hashlib
    import hmac

    client = create_app(load_config(config_path), redis_conn).test_client()
    body = JIRA_FIXTURE.read_bytes()
    signature = hmac.new(SECRETS["JIRA_WEBHOOK_SECRET"].encode(), body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Atlassian-Webhook-Identifier": "tk-1",
               "X-Hub-Signature": "sha256=" + signature}
    assert client.post("/hooks/acme-jira", data=body, headers=headers).status_code == 202
    try:
        assert run(capsys, "--config", str(config_path), "worker", "--burst", "--name", "tk")[0] == 0
    finally:
        context.install(None)
    return json.loads(body)["issue"]


def test_ticket_prints_a_table_of_clocks_and_effects(
    capsys: pytest.CaptureFixture[str], config_path: Path, delivered: dict
) -> None:
    code, out, err = run(capsys, "--config", str(config_path), "ticket", "acme-jira", delivered["id"])
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"acme-jira ticket {delivered['id']}") or delivered["key"] in lines[0]
    assert "policy standard v1" in lines[0] and "[dry run]" in lines[0]
    header = next(line for line in lines if line.startswith("METRIC"))
    for column in ("STATE", "STARTED", "DEADLINE", "REMAINING", "ELAPSED", "BREACHED AT"):
        assert column in header
    row = next(line for line in lines if line.startswith("resolution"))
    # The fixture's issue is days old against an 8h-at-most target on a 24x7 calendar: breached.
    assert row.split()[1] == "breached"
    assert "effects logged (dry run):" in lines
    assert "  tag:sla-breached = present" in lines and any(line.startswith("  due = ") for line in lines)
    assert "effects refused by the product: none" in lines
    assert any(line.startswith("next timer: ") for line in lines)
    assert "pending deliveries: 0" in lines


def test_ticket_json_is_the_raw_state(
    capsys: pytest.CaptureFixture[str], config_path: Path, delivered: dict
) -> None:
    code, out, _ = run(capsys, "--config", str(config_path), "ticket", "acme-jira", delivered["id"], "--json")
    assert code == 0
    state = json.loads(out)
    assert state["ticket_id"] == delivered["id"]
    assert state["metrics"]["resolution"]["status"] == "breached"
    assert state["dry_run"] is True and "dry_run_ledger" in state and state["pending_deliveries"] == 0


def test_unknown_instance_exits_2_unknown_ticket_exits_1(
    capsys: pytest.CaptureFixture[str], config_path: Path, redis_conn: redis.Redis
) -> None:
    code, _, err = run(capsys, "--config", str(config_path), "ticket", "nope", "1")
    assert code == 2 and "unknown instance 'nope'" in err
    code, out, err = run(capsys, "--config", str(config_path), "ticket", "acme-jira", "999")
    assert code == 1 and not out
    assert "no events stored for ticket '999' of instance 'acme-jira'" in err
