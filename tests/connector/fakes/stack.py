"""The running connector for end-to-end tests: receiver in a thread, workers as subprocesses,
fake Jira and Zendesk over HTTP, and signed webhook deliveries built from the adapters' fixtures."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
import requests
import yaml
from werkzeug.serving import make_server

from adapters.zendesk.signature import sign
from connector.config.loader import Config, load_config
from connector.receiver.app import create_app

ROOT = Path(__file__).resolve().parents[3]
JIRA_FIXTURES = ROOT / "adapters" / "jira" / "tests" / "fixtures"
ZENDESK_FIXTURES = ROOT / "adapters" / "zendesk" / "tests" / "fixtures"
JIRA_SECRET = "e2e-jira-hook-secret"
ZENDESK_SECRET = "ZTJlLXplbmRlc2stc2VjcmV0"
CONNECTOR_ACCOUNT = "712020:0d6c9e3a-6a0b-4f3e-9b8e-2f1c5d7e9a10"
DEADLINE_FIELD = 360000123456

ENV = {
    "E2E_JIRA_EMAIL": "sla-bot@acme.example",
    "E2E_JIRA_TOKEN": "jira-api-token-e2e",
    "E2E_JIRA_HOOK": JIRA_SECRET,
    "E2E_ZD_EMAIL": "sla-bot@acme.example",
    "E2E_ZD_TOKEN": "zendesk-api-token-e2e",
    "E2E_ZD_HOOK": ZENDESK_SECRET,
    "SLA_CONNECTOR_API_TOKEN": "e2e-api-token",
}


def config_data(
    jira_url: str, zendesk_url: str, resolution: str, *, dry_run: bool = False, http_attempts: int = 3
) -> dict[str, Any]:
    """Two instances, a 24x7 calendar and one policy: warning at 50%, tag + comment at the breach."""
    return {
        "redis_url": "${REDIS_URL}",
        "instances": {
            "acme-jira": {
                "product": "jira",
                "dry_run": dry_run,
                "base_url": jira_url,
                "deployment": "cloud",
                "auth": {"email_env": "E2E_JIRA_EMAIL", "token_env": "E2E_JIRA_TOKEN"},
                "webhook_secret_env": "E2E_JIRA_HOOK",
                "connector_user": CONNECTOR_ACCOUNT,
                "priorities": {"Highest": "high", "High": "high", "Medium": "normal"},
                "due_timezone": "UTC",
                "max_attempts": http_attempts,
            },
            "acme-zendesk": {
                "product": "zendesk",
                "dry_run": dry_run,
                "base_url": zendesk_url,
                "auth": {"email_env": "E2E_ZD_EMAIL", "token_env": "E2E_ZD_TOKEN"},
                "webhook": {"kind": "events", "secret_env": "E2E_ZD_HOOK"},
                "connector_user_id": 900000000001,
                "deadline_field_id": DEADLINE_FIELD,
                "deadline_format": "datetime",
                "http": {"max_attempts": http_attempts},
            },
        },
        "calendars": {"always": {"timezone": "UTC", "hours": "24x7"}},
        "policies": [
            {
                "id": "fast",
                "version": 1,
                "match": {},
                "metrics": {
                    "resolution": {
                        "calendar": "always",
                        "targets": {"high": resolution, "normal": resolution},
                    }
                },
                "escalations": [
                    {
                        "name": "warning",
                        "metric": "resolution",
                        "at": "50%",
                        "actions": [{"tag": "sla-warning"}],
                    },
                    {
                        "name": "breach",
                        "metric": "resolution",
                        "at": "breach",
                        "actions": [
                            {"tag": "sla-breached"},
                            {"comment": "SLA breached: {metric} of {ticket} was due {deadline}."},
                        ],
                    },
                ],
            }
        ],
    }


class Stack:
    def __init__(self, tmp: Path, redis_url: str, data: dict[str, Any], worker_env: dict[str, str]) -> None:
        self.tmp = tmp
        self.redis_url = redis_url
        self.path = tmp / "config.yaml"
        self.path.write_text(yaml.safe_dump(data, sort_keys=False))
        self.env = {**os.environ, **ENV, "REDIS_URL": redis_url, "PYTHONPATH": str(ROOT), **worker_env}
        self.config: Config = load_config(self.path, self.env)
        self.conn = redis.Redis.from_url(redis_url)
        self.server = make_server("127.0.0.1", 0, create_app(self.config, self.conn), threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.workers: list[subprocess.Popen[bytes]] = []

    def start_worker(self, name: str, *extra: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "connector", "--config", str(self.path), "worker", "--name", name, *extra],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # stop() can reach RQ's scheduler process, which outlives a killed worker
        )
        self.workers.append(proc)
        return proc

    def worker_log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def print_worker_logs(self, *names: str, tail: int = 5000) -> None:
        """The end of each named worker's log (those that started), for pytest to show with a failure."""
        for name in names:
            try:
                print(name, self.worker_log(name)[-tail:])
            except FileNotFoundError:
                pass

    def stop(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            with contextlib.suppress(ProcessLookupError):  # nothing of it may write into the next test
                os.killpg(proc.pid, signal.SIGKILL)
        self.server.shutdown()
        self.conn.close()

    # ------------------------------------------------------------ deliveries

    def post_jira(self, payload: dict[str, Any], delivery: str) -> requests.Response:
        body = json.dumps(payload).encode()
        digest = hmac.new(JIRA_SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature": f"sha256={digest}",
            "X-Atlassian-Webhook-Identifier": delivery,
        }
        return requests.post(f"{self.url}/hooks/acme-jira", data=body, headers=headers, timeout=10)

    def post_zendesk(self, payload: dict[str, Any]) -> requests.Response:
        body = json.dumps(payload).encode()
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        headers = {
            "Content-Type": "application/json",
            "X-Zendesk-Webhook-Signature-Timestamp": stamp,
            "X-Zendesk-Webhook-Signature": sign(ZENDESK_SECRET, stamp, body),
        }
        return requests.post(f"{self.url}/hooks/acme-zendesk", data=body, headers=headers, timeout=10)


def jira_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}+0000"


def jira_created(issue_id: str, at: datetime) -> dict[str, Any]:
    payload = json.loads((JIRA_FIXTURES / "cloud_issue_created.json").read_text())
    payload["timestamp"] = int(at.timestamp() * 1000)
    payload["issue"]["id"] = issue_id
    payload["issue"]["key"] = f"SUP-{issue_id}"
    for name in ("created", "updated", "statuscategorychangedate"):
        payload["issue"]["fields"][name] = jira_time(at)
    return payload


def jira_deleted(issue_id: str, created: datetime, at: datetime) -> dict[str, Any]:
    payload = json.loads((JIRA_FIXTURES / "cloud_issue_deleted.json").read_text())
    payload["timestamp"] = int(at.timestamp() * 1000)
    payload["issue"] = copy.deepcopy(jira_created(issue_id, created)["issue"])
    return payload


def jira_labels_changed(issue_id: str, created: datetime, at: datetime) -> dict[str, Any]:
    """A customer adds a label (an update that must not disturb the SLA)."""
    payload = json.loads((JIRA_FIXTURES / "cloud_issue_updated_fields.json").read_text())
    payload["timestamp"] = int(at.timestamp() * 1000)
    payload["issue"] = copy.deepcopy(jira_created(issue_id, created)["issue"])
    payload["issue"]["fields"]["labels"] = ["billing", "outage", "vip"]
    payload["issue"]["fields"]["updated"] = jira_time(at)
    payload["changelog"] = {
        "id": f"{issue_id}01",
        "items": [item for item in payload["changelog"]["items"] if item["field"] == "labels"],
    }
    return payload


def zendesk_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def zendesk_created(ticket: str, at: datetime) -> dict[str, Any]:
    payload = json.loads((ZENDESK_FIXTURES / "event_ticket_created.json").read_text())
    payload["id"] = str(uuid.uuid4())
    payload["subject"] = f"zen:ticket:{ticket}"
    payload["time"] = zendesk_time(at)
    payload["detail"].update(id=ticket, created_at=zendesk_time(at), updated_at=zendesk_time(at))
    return payload


def zendesk_tags_changed(ticket: str, created: datetime, at: datetime) -> dict[str, Any]:
    payload = json.loads((ZENDESK_FIXTURES / "event_tags_changed.json").read_text())
    payload["id"] = str(uuid.uuid4())
    payload["subject"] = f"zen:ticket:{ticket}"
    payload["time"] = zendesk_time(at)
    payload["detail"].update(id=ticket, created_at=zendesk_time(created), updated_at=zendesk_time(at))
    return payload


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
