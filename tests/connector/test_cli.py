"""The `sla-connector` commands, in process (main(argv)) against a real Redis and real adapters."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis
import responses
import yaml
from werkzeug.serving import make_server

from connector.cli.main import main
from connector.config.loader import load_config
from connector.receiver.app import create_app
from tests.connector.fakes import acme_jira, shelldesk
from tests.connector.fakes.acme_jira import JIRA_FIXTURE, ROOT, jira_headers
from tests.connector.fakes.cli import CliConfig, run

ZENDESK_FIXTURE = ROOT / "adapters/zendesk/tests/fixtures/event_ticket_created.json"
JIRA = "https://acme.atlassian.net"

SECRETS = {
    **acme_jira.SECRETS,
    "ZENDESK_EMAIL": "bot@acme.example",
    "ZENDESK_API_TOKEN": "zendesk-token-value",
    "ZENDESK_WEBHOOK_SECRET": "zendesk-webhook-secret-value",
    "DESK_SECRET": "desk-secret-value",
}

CONFIG = yaml.safe_dump(
    {
        "instances": {
            "acme-jira": {**acme_jira.INSTANCE, "dry_run": True},
            "acme-zendesk": {
                "product": "zendesk",
                "dry_run": True,
                "base_url": "https://acme.zendesk.com",
                "auth": {"email_env": "ZENDESK_EMAIL", "token_env": "ZENDESK_API_TOKEN"},
                "webhook": {"secret_env": "ZENDESK_WEBHOOK_SECRET"},
            },
            "desk": {"product": "shelldesk", "secret_env": "DESK_SECRET"},
        },
        "calendars": {"always": {"timezone": "UTC", "hours": "24x7"}},
        "policies": [
            {
                "id": "standard",
                "version": 1,
                "match": {"instance": ["acme-jira", "acme-zendesk", "ghost"]},
                "metrics": {"resolution": {"calendar": "always", "targets": {"high": "4h", "normal": "8h"}}},
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

DRY_RUN = "dry-run (effects logged, not written)"  # how check-config shows a dry-run instance

shelldesk.register()


@pytest.fixture
def config_path(cli_config_file: CliConfig) -> Path:
    return cli_config_file(CONFIG, SECRETS, redis=False)


@pytest.fixture
def with_redis(
    config_path: Path, redis_conn: redis.Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> redis.Redis:
    monkeypatch.setenv("REDIS_URL", redis_url)
    return redis_conn


# ---------------------------------------------------------------- parsing and check-config


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in ([], ["frobnicate"], ["failed"], ["--log-level", "LOUD", "status"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2, argv
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0


def test_no_config_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLA_CONNECTOR_CONFIG", raising=False)
    code, _, err = run(capsys, "status")
    assert code == 2
    assert err == "error: no configuration: pass --config PATH or set SLA_CONNECTOR_CONFIG\n"


def test_check_config_prints_a_summary(capsys: pytest.CaptureFixture[str], config_path: Path) -> None:
    code, out, err = run(capsys, "--config", str(config_path), "check-config")
    assert code == 0
    assert out.splitlines() == [
        f"Configuration OK: {config_path}",
        f"Redis: none configured; `sla-connector run` embeds one under {config_path.parent / 'data'}",
        "HTTP API: disabled (token from $SLA_CONNECTOR_API_TOKEN)",
        "Webhook body limit: 1048576 bytes",
        "Instances (3):",
        f"  acme-jira: jira, {DRY_RUN}, webhook POST /hooks/acme-jira, reconcile every 15m",
        f"  acme-zendesk: zendesk, {DRY_RUN}, webhook POST /hooks/acme-zendesk, reconcile every 15m",
        "  desk: shelldesk, live, webhook POST /hooks/desk, reconcile every 15m",
        "Calendars (1):",
        "  always: UTC, 24x7",
        "Policies (1, first match wins):",
        "  standard v1: matches instance in [acme-jira, acme-zendesk, ghost]",
        "    resolution on always: high 4h, normal 8h",
        "    escalation breach (resolution): tag sla-breached",
        "  (tickets that match none of these get no SLA)",
    ]
    assert err.splitlines() == [
        "warning: policy standard v1 names instance 'ghost', which is not defined",
        "warning: instance 'desk' is matched by no policy: its tickets get no SLA",
        "warning: instance 'acme-jira' maps priorities to 'low', 'urgent', which no policy for it has a "
        "target for: those tickets get no SLA clock (targets exist for 'high', 'normal')",
        "warning: instance 'acme-zendesk' maps priorities to 'low', 'urgent', which no policy for it has a "
        "target for: those tickets get no SLA clock (targets exist for 'high', 'normal')",
    ]


def test_check_config_from_the_environment_and_redacted_redis(
    capsys: pytest.CaptureFixture[str], config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLA_CONNECTOR_CONFIG", str(config_path))
    monkeypatch.setenv("REDIS_URL", "redis://:hunter2@redis.internal:6380/1")
    monkeypatch.setenv("SLA_CONNECTOR_API_TOKEN", "t")
    code, out, _ = run(capsys, "check-config")
    assert code == 0
    assert "Redis: redis://:***@redis.internal:6380/1" in out.splitlines()
    assert "HTTP API: enabled (token from $SLA_CONNECTOR_API_TOKEN)" in out.splitlines()
    assert "hunter2" not in out


def test_check_config_errors_exit_1_with_the_message(
    capsys: pytest.CaptureFixture[str], config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JIRA_WEBHOOK_SECRET")
    code, out, err = run(capsys, "--config", str(config_path), "check-config")
    assert code == 1 and out == ""
    assert err.startswith(f"error: {config_path}: instances.acme-jira")
    assert "JIRA_WEBHOOK_SECRET" in err
    code, _, err = run(capsys, "--config", str(config_path.parent / "nope.yaml"), "check-config")
    assert code == 1 and "nope.yaml: no such file" in err


def test_the_example_configuration_is_valid(capsys: pytest.CaptureFixture[str], config_path: Path) -> None:
    code, out, err = run(capsys, "--config", str(ROOT / "examples/config.yaml"), "check-config")
    assert code == 0, err
    assert f"  acme-jira: jira, {DRY_RUN}, webhook POST /hooks/acme-jira, reconcile off" in out
    assert "Policies (2, first match wins):" in out
    assert err == ""


# ---------------------------------------------------------------- Redis-backed commands


def test_commands_needing_redis_say_so(capsys: pytest.CaptureFixture[str], config_path: Path) -> None:
    for argv in (["status"], ["worker", "--burst"], ["scheduler"], ["failed", "list"], ["web"]):
        code, _, err = run(capsys, "--config", str(config_path), *argv)
        assert code == 2, argv
        assert "no Redis configured: set redis_url or REDIS_URL" in err


def test_unreachable_redis_is_a_runtime_failure(
    capsys: pytest.CaptureFixture[str], config_path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REDIS_URL", f"unix://{tmp_path}/none.sock")
    code, _, err = run(capsys, "--config", str(config_path), "status")
    assert code == 1
    assert err == "error: Redis is unreachable or failed (ConnectionError)\n"


def test_status(capsys: pytest.CaptureFixture[str], config_path: Path, with_redis: redis.Redis) -> None:
    from rq import SimpleWorker

    from connector.state import queues, status

    worker = SimpleWorker([queues.queue(with_redis, queues.TICKETS)], connection=with_redis, name="w-1")
    worker.register_birth()
    code, out, _ = run(capsys, "--config", str(config_path), "status")
    assert code == 0
    assert out.splitlines() == [
        "tickets waiting for a look: 0, with a job: 0",
        "RQ queues: sla-dispatch 0, sla-tickets 0",
        "timers pending: 0",
        "failed: 0",
        "workers alive: 1 w-1",
        "cron scheduler: not running",
        "last event acme-jira: never",
        "last event acme-zendesk: never",
        "last event desk: never",
    ]
    code, out, _ = run(capsys, "--config", str(config_path), "status", "--json")
    assert code == 0 and json.loads(out)["workers_alive"] == 1
    assert json.loads(out)["workers_on_other_policies"] == []
    # A connector worker started with other policies (before the file changed) is named.
    from tests.connector.fakes.harness import register_connector_worker

    older = replace(load_config(config_path), sla_digest="0123456789abcdef")
    register_connector_worker(with_redis, older, "w-old")
    code, out, _ = run(capsys, "--config", str(config_path), "status")
    assert "workers on other policies or calendars than this file (restart them): w-old" in out.splitlines()
    # Values a product refused (recorded once by the pipeline) get a line of their own.
    for labels in ({"instance": "desk", "kind": "tag"}, {"instance": "desk", "kind": "priority"}):
        status.incr(with_redis, "effects_rejected", labels)
    code, out, _ = run(capsys, "--config", str(config_path), "status")
    assert "effects refused: desk 2" in out.splitlines()


def test_worker_burst_processes_what_the_receiver_accepted(
    capsys: pytest.CaptureFixture[str], config_path: Path, with_redis: redis.Redis
) -> None:
    client = create_app(load_config(config_path), with_redis).test_client()
    body = JIRA_FIXTURE.read_bytes()
    assert client.post("/hooks/acme-jira", data=body, headers=jira_headers(body, "cli-1")).status_code == 202
    from connector.jobs import context
    from connector.state import store

    try:
        code, _, _ = run(capsys, "--config", str(config_path), "worker", "--burst", "--name", "cli-test")
    finally:
        context.install(None)  # the worker command installed its context in this (test) process
    assert code == 0
    code, out, _ = run(capsys, "--config", str(config_path), "status")
    assert "tickets waiting for a look: 0, with a job: 0" in out
    ticket = json.loads(body)["issue"]["id"]
    record = store.load_record(with_redis, "acme-jira", ticket)
    assert record is not None and record.events  # the RQ look job stored the delivery's events
    ticket = json.loads(body)["issue"]["id"]
    state = client.get(f"/api/tickets/acme-jira/{ticket}")
    assert state.status_code == 503  # no API token configured in this test: disabled, never open


def test_failed_list_retry_purge(
    capsys: pytest.CaptureFixture[str], config_path: Path, with_redis: redis.Redis
) -> None:
    from connector.state import failed, store

    cfg = ["--config", str(config_path)]
    code, out, _ = run(capsys, *cfg, "failed", "list")
    assert (code, out) == (0, "no failed entries\n")

    def unreadable(delivery: str) -> store.InboxRow:
        return store.decode_inbox_row(store.encode_inbox_row("e", b'{"x": 1}', delivery=delivery))

    a = failed.record_delivery(with_redis, "acme-jira", "10001", unreadable("d-1"), "KeyError: 'issue'", 1.0)
    b = failed.record_delivery(with_redis, "acme-jira", "10002", unreadable("d-2"), "KeyError: 'issue'", 2.0)
    code, out, _ = run(capsys, *cfg, "failed", "list")
    assert code == 0
    listed = [json.loads(line) for line in out.splitlines()]
    assert sorted(e["id"] for e in listed) == sorted([a, b])
    code, out, _ = run(capsys, *cfg, "failed", "list", "--json")
    assert len(json.loads(out)) == 2

    code, _, err = run(capsys, *cfg, "failed", "retry")
    assert code == 2 and "name entry ids or pass --all" in err
    code, _, err = run(capsys, *cfg, "failed", "purge", a, "--all")
    assert code == 2 and "not both" in err

    code, out, _ = run(capsys, *cfg, "failed", "retry", a)
    assert (code, out) == (0, "queued again: 1\n")
    code, out, err = run(capsys, *cfg, "failed", "purge", b, "no-such-id")
    assert code == 1 and out == "purged: 1\n"
    assert "1 of the given ids were not in the failed registry" in err
    code, out, _ = run(capsys, *cfg, "failed", "purge", "--all")
    assert (code, out) == (0, "purged: 0\n")


# ---------------------------------------------------------------- install / uninstall


def test_install_and_uninstall_test_adapter(capsys: pytest.CaptureFixture[str], config_path: Path) -> None:
    shelldesk.WEBHOOKS.clear()
    cfg = ["--config", str(config_path)]
    code, _, err = run(capsys, *cfg, "install", "desk")
    assert code == 2 and "give --url" in err
    code, out, _ = run(capsys, *cfg, "install", "desk", "--url", "https://sla.example.com/")
    assert code == 0
    assert out.startswith("desk: webhook for https://sla.example.com/hooks/desk\n")
    assert json.loads(out.split("\n", 1)[1])["created"] == [
        {"id": "hook-desk", "url": "https://sla.example.com/hooks/desk"}
    ]
    # Idempotent, and a full hook URL is taken as it is.
    code, out, _ = run(capsys, *cfg, "install", "desk", "--url", "https://sla.example.com/hooks/desk")
    assert json.loads(out.split("\n", 1)[1])["created"] == []
    code, out, _ = run(capsys, *cfg, "uninstall", "desk")
    assert code == 0 and out.startswith("desk: removed\n")
    assert shelldesk.WEBHOOKS == {}
    code, _, err = run(capsys, *cfg, "install", "nope", "--url", "https://x")
    assert code == 2 and "unknown instance 'nope'" in err


@responses.activate
def test_install_jira_webhook(capsys: pytest.CaptureFixture[str], config_path: Path) -> None:
    responses.get(f"{JIRA}/rest/webhooks/1.0/webhook", json=[])
    responses.post(
        f"{JIRA}/rest/webhooks/1.0/webhook",
        status=201,
        json={
            "self": f"{JIRA}/rest/webhooks/1.0/webhook/42",
            "name": "sla-connector acme-jira",
            "url": "https://sla.example.com/hooks/acme-jira",
            "events": ["jira:issue_created"],
            "enabled": True,
        },
    )
    code, out, err = run(
        capsys, "--config", str(config_path), "install", "acme-jira", "--url", "https://sla.example.com"
    )
    assert code == 0, err
    sent = json.loads(responses.calls[1].request.body)
    assert sent["url"] == "https://sla.example.com/hooks/acme-jira"
    assert sent["secret"] == SECRETS["JIRA_WEBHOOK_SECRET"]  # the product needs it to sign
    result = json.loads(out.split("\n", 1)[1])
    assert result["status"] == "created" and result["id"] == "42"
    assert SECRETS["JIRA_WEBHOOK_SECRET"] not in out


@responses.activate
def test_install_api_failure_exits_1(capsys: pytest.CaptureFixture[str], config_path: Path) -> None:
    responses.get(f"{JIRA}/rest/webhooks/1.0/webhook", status=401, json={"errorMessages": ["bad creds"]})
    code, out, err = run(
        capsys, "--config", str(config_path), "install", "acme-jira", "--url", "https://x.example"
    )
    assert code == 1 and out == ""
    assert err.startswith("error: jira API call failed (HTTP 401)")
    assert SECRETS["JIRA_API_TOKEN"] not in err


# ---------------------------------------------------------------- send-test-event against a live receiver


@pytest.fixture
def receiver(config_path: Path, redis_conn: redis.Redis) -> Iterator[str]:
    app = create_app(load_config(config_path), redis_conn)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


def test_send_test_event_jira(capsys: pytest.CaptureFixture[str], config_path: Path, receiver: str) -> None:
    argv = [
        "--config",
        str(config_path),
        "send-test-event",
        "acme-jira",
        str(JIRA_FIXTURE),
        "--url",
        receiver,
    ]
    code, out, _ = run(capsys, *argv, "--delivery-id", "t-1")
    assert code == 0
    assert out.splitlines() == ["HTTP 202", '{"status":"accepted","delivery":"t-1"}']
    code, out, _ = run(capsys, *argv, "--delivery-id", "t-1")
    assert (code, out.splitlines()[0]) == (0, "HTTP 200")
    code, out, _ = run(capsys, *argv)  # a new delivery id each time by default
    assert out.startswith("HTTP 202")


def test_send_test_event_zendesk_and_test_adapter(
    capsys: pytest.CaptureFixture[str], config_path: Path, receiver: str
) -> None:
    cfg = ["--config", str(config_path), "send-test-event"]
    code, out, _ = run(capsys, *cfg, "acme-zendesk", str(ZENDESK_FIXTURE), "--url", receiver)
    assert code == 0 and out.startswith("HTTP 202\n")
    payload = config_path.parent / "desk.json"
    payload.write_text('{"id": "x-1", "ticket": "T-1"}')
    code, out, _ = run(capsys, *cfg, "desk", str(payload), "--url", receiver)  # the adapter's own sign()
    assert code == 0 and out.startswith("HTTP 202\n")


def test_send_test_event_refused_payload_exits_1(
    capsys: pytest.CaptureFixture[str], config_path: Path, receiver: str
) -> None:
    payload = config_path.parent / "bad.json"
    payload.write_text('{"webhookEvent": 5}')
    code, out, _ = run(
        capsys, "--config", str(config_path), "send-test-event", "acme-jira", str(payload), "--url", receiver
    )
    assert code == 1
    assert out.splitlines()[0] == "HTTP 400"
    assert json.loads(out.splitlines()[1])["error"] == "schema"


def test_send_test_event_errors(
    capsys: pytest.CaptureFixture[str], config_path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cfg = ["--config", str(config_path), "send-test-event"]
    code, _, err = run(capsys, *cfg, "acme-jira", str(tmp_path / "missing.json"))
    assert code == 2 and "cannot read" in err
    code, _, err = run(
        capsys, *cfg, "acme-jira", str(JIRA_FIXTURE), "--url", "http://127.0.0.1:9", "--timeout", "2"
    )
    assert code == 1 and err.startswith("error: could not post to http://127.0.0.1:9/hooks/acme-jira")


def test_send_test_event_signs_through_the_adapter_only(config_path: Path) -> None:
    # connector/cli/tools.py has no product branches: each adapter's sign()/delivery_headers().
    from datetime import UTC, datetime

    from connector.cli.tools import sign_test_event

    config = load_config(config_path)
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    body = JIRA_FIXTURE.read_bytes()
    jira = config.instances["acme-jira"]
    headers = sign_test_event(jira, body, {}, now, "t-9")  # secrets come from the adapter, not `env`
    assert headers["X-Atlassian-Webhook-Identifier"] == "t-9"
    jira.adapter.verify({k.lower(): v for k, v in headers.items()}, body, now)
    fresh = {sign_test_event(jira, body, {}, now)["X-Atlassian-Webhook-Identifier"] for _ in range(2)}
    assert len(fresh) == 2 and all(d.startswith("test-") for d in fresh)
    zendesk = config.instances["acme-zendesk"]
    headers = sign_test_event(zendesk, body, {}, now, "inv-1")
    assert headers["X-Zendesk-Webhook-Signature-Timestamp"] == "2026-11-27T12:00:00Z"
    assert headers["X-Zendesk-Webhook-Invocation-Id"] == "inv-1"
    zendesk.adapter.verify({k.lower(): v for k, v in headers.items()}, body, now)


def test_send_test_event_without_a_signing_secret_or_sign_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ZENDESK_WEBHOOK_SECRET")  # not installed yet: verify() and sign() refuse
    code, _, err = run(
        capsys, "--config", str(config_path), "send-test-event", "acme-zendesk", str(ZENDESK_FIXTURE)
    )
    assert code == 2
    assert "environment variable ZENDESK_WEBHOOK_SECRET (webhook.secret_env) is not set" in err
    monkeypatch.delattr(shelldesk.ShelldeskAdapter, "sign")
    code, _, err = run(capsys, "--config", str(config_path), "send-test-event", "desk", str(ZENDESK_FIXTURE))
    assert code == 2 and "the shelldesk adapter has no sign(): no test events" in err


@responses.activate
def test_install_zendesk_webhook_prints_the_signing_secret_to_store(
    capsys: pytest.CaptureFixture[str], config_path: Path
) -> None:
    zendesk = "https://acme.zendesk.com"
    responses.get(
        f"{zendesk}/api/v2/webhooks", json={"webhooks": [], "meta": {"has_more": False}, "links": {}}
    )
    responses.post(
        f"{zendesk}/api/v2/webhooks",
        status=201,
        json={
            "webhook": {
                "id": "01GDXYD7ZTWYP2D0RYKSAJ9RWN",
                "name": "sla-connector acme-zendesk",
                "status": "active",
                "endpoint": "https://sla.example.com/hooks/acme-zendesk",
                "http_method": "POST",
                "request_format": "json",
                "subscriptions": ["zen:event-type:ticket.created"],
            }
        },
    )
    responses.get(
        f"{zendesk}/api/v2/webhooks/01GDXYD7ZTWYP2D0RYKSAJ9RWN/signing_secret",
        json={"signing_secret": {"algorithm": "SHA256", "secret": "dGhlLXNpZ25pbmctc2VjcmV0"}},
    )
    code, out, err = run(
        capsys, "--config", str(config_path), "install", "acme-zendesk", "--url", "https://sla.example.com"
    )
    assert code == 0, err
    assert json.loads(responses.calls[1].request.body)["webhook"]["endpoint"] == (
        "https://sla.example.com/hooks/acme-zendesk"
    )
    result = json.loads(out.split("\n", 1)[1])
    assert result["signing_secret"] == "dGhlLXNpZ25pbmctc2VjcmV0"
    assert result["webhook"]["created"] is True
    assert err.strip() == (
        "next: set the environment variable ZENDESK_WEBHOOK_SECRET to the signing_secret "
        "above wherever the connector runs, then restart it"
    )
