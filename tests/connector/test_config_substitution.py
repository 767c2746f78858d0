"""Config errors about a value that came from `${VAR}` name the variable and never show the value."""

from __future__ import annotations

from typing import Any

import pytest

from connector.config.loader import ConfigError, config_from_dict

SECRET = "pa55w0rd-in-url"
ENV = {
    "JIRA_EMAIL": "bot@acme.example",
    "JIRA_API_TOKEN": "jira-token-value",
    "JIRA_WEBHOOK_SECRET": "jira-webhook-secret-value",
    "JIRA_URL": f"ftp://bot:{SECRET}@jira.acme.example",
    "JIRA_PASS": SECRET,
    "DUE_ZONE": "Europe/Berln",
    "BODY_LIMIT": "lots",
}


def jira(**overrides: Any) -> dict[str, Any]:
    settings = {"product": "jira", "base_url": "https://acme.atlassian.net", "deployment": "cloud",
                "auth": {"email_env": "JIRA_EMAIL", "token_env": "JIRA_API_TOKEN"},
                "webhook_secret_env": "JIRA_WEBHOOK_SECRET", **overrides}
    return {"instances": {"acme": settings}}


def error_of(data: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        config_from_dict(data, ENV, source="cfg.yaml")
    return info.value


@pytest.mark.parametrize("data, path, written, rest", [
    (jira(base_url="${JIRA_URL}"), "instances.acme.base_url", "${JIRA_URL}", "does not match"),
    (jira(base_url="ftp://bot:${JIRA_PASS}@jira.acme.example/"), "instances.acme.base_url",
     "ftp://bot:${JIRA_PASS}@jira.acme.example/", "does not match"),
    ({**jira(), "receiver": {"public_url": "${JIRA_URL}/sla"}}, "receiver.public_url", "${JIRA_URL}/sla",
     "does not match"),
])
def test_a_schema_error_shows_what_the_file_says_not_the_substituted_secret(
        data: dict[str, Any], path: str, written: str, rest: str) -> None:
    error = error_of(data)
    assert error.path == path
    assert SECRET not in str(error)
    assert f"the value of {written!r} (from the environment, not shown) {rest}" in error.message


def test_an_adapter_error_hides_the_substituted_value_too() -> None:
    error = error_of(jira(due_timezone="${DUE_ZONE}"))
    assert "instances.acme.due_timezone" in str(error)  # adapters name the full path themselves
    assert "Europe/Berln" not in str(error)
    assert "'${DUE_ZONE}' (from the environment, not shown)" in error.message


def test_a_type_error_on_a_substituted_number_names_the_variable() -> None:
    error = error_of({**jira(), "receiver": {"max_body_bytes": "${BODY_LIMIT}"}})
    assert error.path == "receiver.max_body_bytes"
    assert "lots" not in error.message
    assert "'${BODY_LIMIT}' (from the environment, not shown) is not of type 'integer'" in error.message


def test_a_message_without_the_value_still_says_it_came_from_the_environment() -> None:
    error = error_of({**jira(), "redis_url": "${JIRA_URL}"})
    assert error.path == "redis_url"
    assert SECRET not in str(error)
    assert error.message.endswith("(the value comes from the environment: ${JIRA_URL})")


def test_values_written_in_the_file_or_taken_from_a_default_are_still_quoted() -> None:
    # Nothing secret in them, and the exact bad value is the quickest help.
    assert "'Europe/Berln'" in error_of(jira(due_timezone="Europe/Berln")).message
    assert "'Mars/Base'" in error_of(jira(due_timezone="${UNSET_ZONE:-Mars/Base}")).message
