"""Configuration messages an admin can act on: what is expected in words, never a regular expression,
one wording for unknown keys, never a whole block dumped, and "is empty" for an empty variable.

The Jira and Zendesk instance blocks are the documented ones (adapters/*/tests/helpers.py); each case
breaks one thing and pins the whole message.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import adapters.jira.tests.helpers as jira_helpers
import adapters.zendesk.tests.helpers as zendesk_helpers
from adapters import base as adapters_base
from connector.config.loader import PATTERN_FORMS, ConfigError, config_from_dict, known_products

ROOT = Path(__file__).resolve().parents[2]
ENV = {**jira_helpers.ENV, **zendesk_helpers.ENV}
# A regular expression's tell-tales: anchors, classes, escapes, quantifiers.
REGEX = re.compile(r"\^|\$'|\[[^\]]*-[^\]]*\]|\\[sdw]|\{\d+,\d*\}|\(\?|\|\)")


def data() -> dict[str, Any]:
    return {
        "instances": {"j": copy.deepcopy(jira_helpers.CLOUD_CONFIG), "z": zendesk_helpers.config()},
        "calendars": {"b": {"timezone": "Europe/Berlin", "hours": {"mon-fri": ["09:00-17:00"]}}},
        "policies": [{"id": "p", "version": 1,
                      "metrics": {"resolution": {"calendar": "b", "targets": {"high": "4h"}}}}],
    }


def message(change: Callable[[dict[str, Any]], Any], env: dict[str, str] | None = None) -> str:
    config = data()
    change(config)
    with pytest.raises(ConfigError) as info:
        config_from_dict(config, ENV if env is None else env, source="cfg.yaml")
    return str(info.value).removeprefix("cfg.yaml: ")


def test_the_documented_blocks_load() -> None:
    config_from_dict(data(), ENV, source="cfg.yaml")


ENV_NAME = "an environment variable name (letters, digits and _, not starting with a digit)"
URL = "an http:// or https:// URL with a host and no spaces, e.g. https://acme.atlassian.net"
NAME = "a name of 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit"


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d.update(api_token_env="not a name"),
     f"api_token_env: 'not a name' does not match the expected form: {ENV_NAME}"),
    (lambda d: d.update(receiver={"public_url": "ftp://sla.acme.example"}),
     f"receiver.public_url: 'ftp://sla.acme.example' does not match the expected form: {URL}"),
    (lambda d: d["instances"].update({"acme jira": {"product": "jira"}}),
     f"instances: key 'acme jira' does not match the expected form: {NAME}"),
    (lambda d: d["calendars"].update({"office hours": {}}),
     f"calendars: key 'office hours' does not match the expected form: {NAME}"),
    (lambda d: d["instances"]["j"].update(base_url="acme.atlassian.net"),
     f"instances.j.base_url: 'acme.atlassian.net' does not match the expected form: {URL}"),
    (lambda d: d["instances"]["j"].update(due_field="customfield_due"),
     "instances.j.due_field: 'customfield_due' does not match the expected form: "
     '"duedate" or "customfield_<number>", e.g. customfield_10042'),
    (lambda d: d["instances"]["j"]["auth"].update(email_env="JIRA EMAIL"),
     f"instances.j.auth.email_env: 'JIRA EMAIL' does not match the expected form: {ENV_NAME}"),
    (lambda d: d["instances"]["j"].update(automation_header="X Secret"),
     "instances.j.automation_header: 'X Secret' does not match the expected form: "
     "an HTTP header name (letters, digits and '-'), e.g. X-Automation-Secret"),
    (lambda d: d["instances"]["j"].update(priorities={"Highest": "Very High"}),
     "instances.j.priorities.Highest: 'Very High' does not match the expected form: "
     "a canonical priority name (lower-case letters, digits, '_' or '-'), e.g. high"),
    (lambda d: d["instances"]["z"].update(subdomain="Acme!"),
     "instances.z.subdomain: 'Acme!' does not match the expected form: "
     "a Zendesk subdomain (lower-case letters, digits and '-'), e.g. acme for acme.zendesk.com"),
    (lambda d: d["instances"]["z"].update(custom_statuses={"on hold": "on_hold"}),
     "instances.z.custom_statuses: key 'on hold' does not match the expected form: "
     "a number written with digits only, e.g. 360000123456"),
    (lambda d: d["instances"]["z"].update(connector_user_id="me"),
     "instances.z.connector_user_id: 'me' does not match the expected form: "
     "a number written with digits only, e.g. 360000123456"),
])
def test_a_value_of_the_wrong_form_is_told_what_is_expected_in_words(change: Any, expected: str) -> None:
    text = message(change)
    assert text == expected
    assert not REGEX.search(text)


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d.update(colour="red"),
     "$: unknown key(s) 'colour'; expected redis_url, data_dir, api_token_env, receiver, instances, "
     "calendars, contracts, policies, notify_channels"),
    (lambda d: d.update(receiver={"max_bytes": 1, "url": "x"}),
     "receiver: unknown key(s) 'max_bytes', 'url'; expected max_body_bytes, public_url"),
    (lambda d: d["instances"]["z"]["webhook"].update(secret="x"),
     "instances.z.webhook: unknown key(s) 'secret'; expected kind, secret_env, signature_max_age, name"),
    (lambda d: d["instances"]["j"]["auth"].update(password_env="X"),  # in a oneOf: all forms' keys
     "instances.j.auth: unknown key(s) 'password_env'; expected email_env, token_env, bearer_env"),
])
def test_unknown_keys_have_one_wording_naming_what_is_expected(change: Any, expected: str) -> None:
    assert message(change) == expected


def test_an_instance_block_lists_its_own_keys() -> None:
    text = message(lambda d: d["instances"]["j"].update(colour="red"))
    assert text.startswith("instances.j: unknown key(s) 'colour'; expected product, dry_run, base_url, ")


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: [d["instances"]["j"].pop(k) for k in ("webhook_secret_env", "automation_secret_env")],
     "instances.j: set at least one of webhook_secret_env, automation_secret_env"),
    (lambda d: d["instances"]["j"].update(auth={}),
     "instances.j.auth: expected {email_env, token_env} or {bearer_env}"),
    (lambda d: d["instances"]["j"].update(auth="JIRA_API_TOKEN"),
     "instances.j.auth: expected {email_env, token_env} or {bearer_env}"),
    (lambda d: d["instances"]["z"]["auth"].update(bearer_env="ZD_OAUTH"),
     "instances.z.auth: email_env and token_env cannot be set together with bearer_env (Names of environment "
     "variables holding the credentials (never the values): {email_env, token_env} for an API token, or "
     "{bearer_env} for an OAuth access token)"),
])
def test_alternatives_are_named_instead_of_dumping_the_block(change: Any, expected: str) -> None:
    text = message(change)
    assert text == expected
    assert "is not valid under any" not in text and "False schema" not in text


def test_an_empty_variable_is_empty_an_unset_one_is_not_set() -> None:
    def reference(d: dict[str, Any]) -> None:
        d["instances"]["j"]["base_url"] = "${JIRA_URL}"

    assert message(reference, {**ENV, "JIRA_URL": ""}) == (
        "instances.j.base_url: environment variable JIRA_URL is empty (referenced as ${JIRA_URL})")
    assert message(reference) == (
        "instances.j.base_url: environment variable JIRA_URL is not set (referenced as ${JIRA_URL})")


def _patterns(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("pattern"), str):
            yield node["pattern"]
        for value in node.values():
            yield from _patterns(value)
    elif isinstance(node, list):
        for value in node:
            yield from _patterns(value)


def test_every_pattern_of_the_connectors_and_the_adapters_schemas_has_words() -> None:
    schemas = [json.loads((ROOT / "connector/config/schemas/config.schema.json").read_text())]
    schemas += [adapters_base.load(product).CONFIG_SCHEMA for product in known_products()]
    patterns = {p for schema in schemas for p in _patterns(schema)}
    assert len(schemas) >= 3 and patterns
    assert patterns - set(PATTERN_FORMS) == set()
    assert not any(REGEX.search(form) for form in PATTERN_FORMS.values())


def test_a_pattern_without_words_still_shows_no_regular_expression() -> None:
    from jsonschema import Draft202012Validator

    from connector.config.loader import schema_message

    schema = {"type": "object", "properties": {"code": {"type": "string", "pattern": "^[A-Z]{3}$"}}}
    [error] = Draft202012Validator(schema).iter_errors({"code": "x"})
    assert schema_message(error, schema) == (
        "'x' does not match the expected form: see the documentation of this setting")
    schema["properties"]["code"]["description"] = "Three capital letters, e.g. ABC"
    [error] = Draft202012Validator(schema).iter_errors({"code": "x"})
    expected = "'x' does not match the expected form: Three capital letters, e.g. ABC"
    assert schema_message(error, schema) == expected
