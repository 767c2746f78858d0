"""The `sla-connector` command as a child process: its environment and the dry-run acme-jira configuration.

Shared by the tests that start `run`, `worker` or `serve` for real (embedded Redis, binding, signals).
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.connector.fakes import acme_jira

SECRETS = {**acme_jira.SECRETS, "SLA_CONNECTOR_API_TOKEN": "api-token-value"}


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment without a Redis URL or configuration of its own (so the child
    starts its embedded Redis and reads --config), with the instance's secrets and `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "SLA_CONNECTOR_CONFIG")}
    env.update(SECRETS)
    env.update(extra)
    return env


def write_config(tmp_path: Path) -> Path:
    """The dry-run acme-jira configuration, its data (the embedded Redis) under tmp_path/data."""
    path = tmp_path / "config.yaml"
    path.write_text(acme_jira.CONFIG + f"data_dir: {tmp_path / 'data'}\n")
    return path
