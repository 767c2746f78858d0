"""`sla-connector ticket <instance> <ticket>`: a ticket's SLA state as a table, --json, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis

from tests.connector.fakes.acme_jira import CONFIG, JIRA_FIXTURE, SECRETS, deliver_and_look
from tests.connector.fakes.cli import CliConfig, run


@pytest.fixture
def config_path(cli_config_file: CliConfig) -> Path:
    return cli_config_file(CONFIG, SECRETS)


@pytest.fixture
def delivered(capsys: pytest.CaptureFixture[str], config_path: Path, redis_conn: redis.Redis) -> dict:
    """The Jira fixture accepted by the receiver and looked at by a burst worker."""
    body = JIRA_FIXTURE.read_bytes()
    deliver_and_look(capsys, config_path, redis_conn, body, "tk-1")
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
