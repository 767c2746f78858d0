"""A Jira issue key ("SUP-42") resolves to its ticket: the look job indexes it; the ticket view, the HTTP
API and `sla-connector ticket` accept it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis

from adapters.jira import JiraAdapter, inbound
from connector.config.loader import load_config
from connector.receiver.app import create_app
from connector.state import store
from tests.connector.fakes.acme_jira import CONFIG, JIRA_FIXTURE, SECRETS, deliver_and_look
from tests.connector.fakes.cli import CliConfig, run

TOKEN = "api-token-value"


@pytest.fixture
def keyed_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Jira adapter offering the optional `display_key` hook (delegating to inbound.display_key)."""
    if not hasattr(JiraAdapter, "display_key"):
        monkeypatch.setattr(
            JiraAdapter, "display_key", lambda self, payload: inbound.display_key(payload), raising=False
        )


@pytest.fixture
def config_path(cli_config_file: CliConfig) -> Path:
    return cli_config_file(CONFIG, SECRETS)


def test_the_look_indexes_the_key_and_everything_accepts_it(
    capsys: pytest.CaptureFixture[str],
    config_path: Path,
    redis_conn: redis.Redis,
    keyed_adapter: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deliver_and_look(capsys, config_path, redis_conn, JIRA_FIXTURE.read_bytes(), "key-1")
    assert redis_conn.hget(store.keys_key("acme-jira"), "SUP-42") == b"10042"
    assert store.load_record(redis_conn, "acme-jira", "10042").meta["key"] == "SUP-42"

    code, out, err = run(capsys, "--config", str(config_path), "ticket", "acme-jira", "SUP-42")
    assert code == 0, err
    assert out.splitlines()[0].startswith("acme-jira ticket SUP-42 (id 10042): policy standard v1")
    code, out, _ = run(capsys, "--config", str(config_path), "ticket", "acme-jira", "SUP-42", "--json")
    assert json.loads(out)["ticket_id"] == "10042" and json.loads(out)["key"] == "SUP-42"
    code, _, err = run(capsys, "--config", str(config_path), "ticket", "acme-jira", "SUP-43")
    assert code == 1 and "'SUP-43'" in err

    monkeypatch.setenv("SLA_CONNECTOR_API_TOKEN", TOKEN)
    client = create_app(load_config(config_path), redis_conn).test_client()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    by_key = client.get("/api/tickets/acme-jira/SUP-42", headers=auth)
    assert by_key.status_code == 200
    by_id = client.get("/api/tickets/acme-jira/10042", headers=auth)
    assert by_key.json["ticket_id"] == by_id.json["ticket_id"] == "10042"
    assert by_key.json["key"] == "SUP-42"
    assert client.get("/api/tickets/acme-jira/SUP-43", headers=auth).status_code == 404


def test_a_moved_issue_answers_to_both_keys(
    capsys: pytest.CaptureFixture[str],
    config_path: Path,
    redis_conn: redis.Redis,
    keyed_adapter: None,
) -> None:
    payload = json.loads(JIRA_FIXTURE.read_bytes())
    deliver_and_look(capsys, config_path, redis_conn, json.dumps(payload).encode(), "move-1")
    payload["issue"]["key"] = "OPS-7"
    deliver_and_look(capsys, config_path, redis_conn, json.dumps(payload).encode(), "move-2")
    assert redis_conn.hgetall(store.keys_key("acme-jira")) == {b"SUP-42": b"10042", b"OPS-7": b"10042"}
    assert store.load_record(redis_conn, "acme-jira", "10042").meta["key"] == "OPS-7"


def test_an_adapter_without_the_hook_indexes_nothing(
    capsys: pytest.CaptureFixture[str],
    config_path: Path,
    redis_conn: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(JiraAdapter, "display_key", raising=False)
    deliver_and_look(capsys, config_path, redis_conn, JIRA_FIXTURE.read_bytes(), "nokey-1")
    assert not redis_conn.exists(store.keys_key("acme-jira"))
    assert store.load_record(redis_conn, "acme-jira", "10042").events  # the look itself is unchanged
