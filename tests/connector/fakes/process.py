"""The `sla-connector` command as a child process: its environment and a dry-run Jira configuration.

Shared by the tests that start `run`, `worker` or `serve` for real (embedded Redis, binding, signals).
"""

from __future__ import annotations

import os
import socket
import textwrap
from pathlib import Path

from tests.connector.fakes import jira_cli

SECRETS = {**jira_cli.SECRETS, "SLA_CONNECTOR_API_TOKEN": "api-token-value"}
CONFIG = """
    data_dir: {data_dir}
    instances:
      acme-jira:
        product: jira
        dry_run: true
        base_url: https://acme.atlassian.net
        deployment: cloud
        auth: {{email_env: JIRA_EMAIL, token_env: JIRA_API_TOKEN}}
        webhook_secret_env: JIRA_WEBHOOK_SECRET
    calendars:
      always: {{timezone: UTC, hours: 24x7}}
    policies:
      - id: standard
        version: 1
        metrics:
          resolution: {{calendar: always, targets: {{urgent: 4h, high: 4h, normal: 8h, low: 8h}}}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment without a Redis URL or configuration of its own (so the child
    starts its embedded Redis and reads --config), with the instance's secrets and `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "SLA_CONNECTOR_CONFIG")}
    env.update(SECRETS)
    env.update(extra)
    return env


def write_config(tmp_path: Path) -> Path:
    """The dry-run Jira configuration, its data (the embedded Redis) under tmp_path/data."""
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(CONFIG.format(data_dir=tmp_path / "data")))
    return path
