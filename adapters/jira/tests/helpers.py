"""Shared test material: instance configs, environment, fixture loading, signing, request checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"
CLOUD_URL = "https://acme.atlassian.net"
DC_URL = "https://jira.acme.example"
CONNECTOR_ACCOUNT = "712020:0d6c9e3a-6a0b-4f3e-9b8e-2f1c5d7e9a10"

ENV = {
    "JIRA_EMAIL": "sla-bot@acme.example",
    "JIRA_API_TOKEN": "cloud-token-s3cr3t",
    "JIRA_PAT": "dc-pat-s3cr3t",
    "JIRA_WEBHOOK_SECRET": "hook-s3cr3t",
    "JIRA_AUTOMATION_SECRET": "automation-s3cr3t",
}

CLOUD_CONFIG: dict[str, Any] = {
    "product": "jira",
    "base_url": CLOUD_URL,
    "deployment": "cloud",
    "auth": {"email_env": "JIRA_EMAIL", "token_env": "JIRA_API_TOKEN"},
    "webhook_secret_env": "JIRA_WEBHOOK_SECRET",
    "automation_secret_env": "JIRA_AUTOMATION_SECRET",
    "connector_user": CONNECTOR_ACCOUNT,
    "jsm_internal_comments": True,
    "due_timezone": "Europe/Berlin",
    "webhook_jql": "project = SUP",
}

DC_CONFIG: dict[str, Any] = {
    "product": "jira",
    "dry_run": False,
    "base_url": DC_URL + "/",
    "deployment": "datacenter",
    "auth": {"bearer_env": "JIRA_PAT"},
    "webhook_secret_env": "JIRA_WEBHOOK_SECRET",
    "connector_user": "sla-bot",
    "first_response_statuses": ["Triaged"],
    "due_field": "customfield_10050",
    "comment_visibility": {"type": "role", "value": "Developers"},
    "statuses": {"Blocked by vendor": "on_hold"},
}


BASIC = "Basic " + base64.b64encode(f"{ENV['JIRA_EMAIL']}:{ENV['JIRA_API_TOKEN']}".encode()).decode()
BEARER = f"Bearer {ENV['JIRA_PAT']}"


def assert_headers(call: Any, auth: str, body: bool = True) -> None:
    """A request sent `auth`, asked for JSON, and (with a body) declared it JSON."""
    headers = call.request.headers
    assert headers["Authorization"] == auth
    assert headers["Accept"] == "application/json"
    if body:
        assert headers["Content-Type"] == "application/json"


def config_for(name: str) -> dict[str, Any]:
    return CLOUD_CONFIG if name.startswith("cloud_") else DC_CONFIG


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture(name: str) -> dict[str, Any]:
    return json.loads(fixture_bytes(name))


def sign(body: bytes, secret: str = ENV["JIRA_WEBHOOK_SECRET"]) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
