"""Instance configuration: schema errors name the path, secrets come from the environment."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

import adapters.jira as jira
from adapters.base import load
from adapters.jira.tests.helpers import CLOUD_CONFIG, DC_CONFIG, ENV


def with_(**changes: Any) -> dict[str, Any]:
    return {**CLOUD_CONFIG, **changes}


def without(*keys: str) -> dict[str, Any]:
    return {k: v for k, v in CLOUD_CONFIG.items() if k not in keys}


def test_found_by_the_adapter_loader() -> None:
    module = load("jira")
    assert module.create is jira.create and module.CONFIG_SCHEMA["properties"]["product"] == {"const": "jira"}
    jsonschema.Draft202012Validator.check_schema(module.CONFIG_SCHEMA)


def test_defaults() -> None:
    cfg = jira.create("acme", without("due_timezone", "jsm_internal_comments"), ENV).cfg
    assert (
        cfg.cloud and cfg.api_version == "3" and cfg.due_field == "duedate" and str(cfg.due_timezone) == "UTC"
    )
    assert dict(cfg.priorities) == {
        "Highest": "urgent",
        "High": "high",
        "Medium": "normal",
        "Low": "low",
        "Lowest": "low",
    }
    assert cfg.jira_priority("low") == "Low"
    assert cfg.statuses["waiting for customer"] == "pending"
    assert (cfg.connect_timeout, cfg.read_timeout, cfg.max_attempts) == (5.0, 30.0, 3)
    assert (
        cfg.automation_header == "x-automation-secret"
        and cfg.agents_default == "atlassian_accounts_except_reporter"
    )
    assert cfg.dry_run is False
    assert cfg.outage_start_field is None


def test_data_center_settings() -> None:
    cfg = jira.create("ops", DC_CONFIG, ENV).cfg
    assert not cfg.cloud and cfg.api_version == "2" and cfg.base_url == "https://jira.acme.example"
    assert cfg.secrets.authorization == "Bearer " + ENV["JIRA_PAT"]


@pytest.mark.parametrize(
    "config, message",
    [
        (without("base_url"), r"instances\.acme: 'base_url' is a required property"),
        (with_(deployment="server"), r"instances\.acme\.deployment: 'server' is not one of"),
        (with_(product="zendesk"), r"instances\.acme\.product: 'jira' was expected"),
        (
            with_(base_url="acme.atlassian.net"),
            r"instances\.acme\.base_url: 'acme.atlassian.net' does not match",
        ),
        (
            with_(statuses={"Waiting": "paused"}),
            r"instances\.acme\.statuses\.Waiting: 'paused' is not one of",
        ),
        (with_(due_field="due"), r"instances\.acme\.due_field: 'due' does not match"),
        (with_(timeouts={"read": 0}), r"instances\.acme\.timeouts\.read: 0 is less than or equal"),
        (with_(colour="blue"), r"instances\.acme: Additional properties are not allowed \('colour'"),
        (
            with_(auth={"token_env": "X"}),
            r"instances\.acme\.auth: expected \{email_env, token_env\} \(Cloud\)",
        ),
        (
            with_(agents={"default": "everyone"}),
            r"instances\.acme\.agents\.default: 'everyone' is not one of",
        ),
        (without("webhook_secret_env", "automation_secret_env"), r"instances\.acme: set webhook_secret_env"),
        (
            with_(due_timezone="Mars/Olympus"),
            r"instances\.acme\.due_timezone: unknown time zone 'Mars/Olympus'",
        ),
        (
            with_(outage_start_field="duedate"),
            r"instances\.acme\.outage_start_field: 'duedate' does not match",
        ),
        (
            with_(outage_start_field="Outage start"),
            r"instances\.acme\.outage_start_field: 'Outage start' does not match",
        ),
        (
            with_(outage_start_field=10061),
            r"instances\.acme\.outage_start_field: 10061 is not of type 'string'",
        ),
        (
            with_(due_field="customfield_10050", outage_start_field="customfield_10050"),
            r"instances\.acme\.outage_start_field: 'customfield_10050' is also the due_field the connector "
            r"writes deadlines into",
        ),
    ],
)
def test_bad_config_names_the_path(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        jira.create("acme", config, ENV)


def test_outage_start_field() -> None:
    cfg = jira.create("acme", with_(outage_start_field="customfield_10061"), ENV).cfg
    assert cfg.outage_start_field == "customfield_10061"


def test_a_bad_outage_start_field_is_explained_in_words_by_the_loader() -> None:
    from connector.config.loader import ConfigError, config_from_dict

    config = {"instances": {"acme": with_(outage_start_field="customfield_")}}
    with pytest.raises(ConfigError) as info:
        config_from_dict(config, ENV, source="cfg.yaml")
    message = str(info.value)
    assert "instances.acme.outage_start_field: 'customfield_' does not match the expected form: " in message
    assert "^" not in message and "[0-9]" not in message  # words, not the regular expression


@pytest.mark.parametrize(
    "missing", ["JIRA_EMAIL", "JIRA_API_TOKEN", "JIRA_WEBHOOK_SECRET", "JIRA_AUTOMATION_SECRET"]
)
def test_missing_environment_variable_is_named_not_its_value(missing: str) -> None:
    env = {k: v for k, v in ENV.items() if k != missing}
    with pytest.raises(ValueError, match=f"environment variable {missing} is not set") as info:
        jira.create("acme", CLOUD_CONFIG, env)
    assert all(value not in str(info.value) for value in ENV.values())


def test_missing_bearer_variable() -> None:
    env = {k: v for k, v in ENV.items() if k != "JIRA_PAT"}
    with pytest.raises(ValueError, match=r"instances\.ops\.auth\.bearer_env: environment variable JIRA_PAT"):
        jira.create("ops", DC_CONFIG, env)


def test_the_documented_example_is_a_valid_instance() -> None:
    import re
    from pathlib import Path

    import yaml

    doc = (Path(__file__).parents[3] / "docs" / "install-jira.md").read_text()
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", doc, re.S) if "instances:" in b]
    instance = yaml.safe_load(block)["instances"]["acme"]
    env = {**ENV, "JIRA_AUTOMATION_SECRET": "a"}
    cfg = jira.create("acme", instance, env).cfg
    assert cfg.cloud and cfg.first_response_statuses == {"triaged"} and cfg.statuses["closed"] == "closed"


def test_adapter_implements_the_protocol_signatures() -> None:
    import inspect

    from adapters.base import Adapter, WritebackClient

    adapter = jira.create("acme", CLOUD_CONFIG, ENV)
    assert (adapter.product, adapter.instance) == ("jira", "acme")
    for proto, obj in ((Adapter, adapter), (WritebackClient, adapter.client())):
        for name, member in vars(proto).items():
            if callable(member) and not name.startswith("_"):
                expected = list(inspect.signature(member).parameters)[1:]
                assert list(inspect.signature(getattr(obj, name)).parameters) == expected, name
    installer = adapter.installer()
    assert all(callable(getattr(installer, m)) for m in ("install", "uninstall", "list"))
