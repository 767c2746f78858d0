"""docker-compose.yml hands the containers whatever variables the configuration names (via .env)."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ("web", "worker")


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_app_containers_get_the_whole_optional_env_file() -> None:
    services = compose()["services"]
    for name in APP_SERVICES:
        assert services[name]["env_file"] == [{"path": ".env", "required": False}], name


def test_only_the_containers_own_wiring_is_fixed_in_the_compose_file() -> None:
    # A fixed list of credential names passed nothing for a config naming, say, JIRA_PAT; and an
    # `${X:-}` entry here would override the same variable of .env with an empty value.
    for name in APP_SERVICES:
        environment = compose()["services"][name]["environment"]
        assert environment == {"REDIS_URL": "redis://redis:6379/0",
                               "SLA_CONNECTOR_CONFIG": "/etc/sla-connector/config.yaml"}, name
