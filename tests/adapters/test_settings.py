"""Shared adapter config helpers (adapters/settings.py): secrets from the env, schema errors by path."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from adapters.settings import (
    Secret,
    authorization,
    check_config,
    env_value,
    json_path,
    load_schema,
    time_zone,
    webhook_url,
)

ENV = {"EMAIL": "bot@acme.example", "TOKEN": "tok-s3cr3t", "PAT": "pat-s3cr3t", "EMPTY": ""}

SCHEMA = {
    "type": "object",
    "required": ["auth"],
    "additionalProperties": False,
    "properties": {
        "auth": {
            "oneOf": [
                {"type": "object", "required": ["bearer_env"]},
                {"type": "object", "required": ["email_env", "token_env"]},
            ]
        },
        "field_id": {"oneOf": [{"type": "integer"}, {"type": "string", "pattern": "^[0-9]+$"}]},
        "http": {
            "type": "object",
            "properties": {"timeouts": {"type": "array", "items": {"type": "number"}}},
        },
    },
}
VALIDATOR = Draft202012Validator(SCHEMA)


def test_secret_is_usable_but_never_shown() -> None:
    secret = Secret("tok-s3cr3t")
    assert secret.value == "tok-s3cr3t"
    assert repr(secret) == str(secret) == f"{secret}" == "Secret('***')"
    assert "s3cr3t" not in repr([secret]) and "s3cr3t" not in repr({"a": secret})


@pytest.mark.parametrize(("name", "said"), [("NOPE", "is not set"), ("EMPTY", "is empty")])
def test_a_missing_or_empty_variable_names_where_and_the_variable(name: str, said: str) -> None:
    with pytest.raises(ValueError) as info:
        env_value(ENV, name, "instances.acme.auth.token_env")
    assert str(info.value) == f"instances.acme.auth.token_env: environment variable {name} {said}"
    assert env_value(ENV, "TOKEN", "x") == "tok-s3cr3t"


def test_bearer_authorization() -> None:
    header = authorization({"bearer_env": "PAT"}, ENV, "instances.dc")
    assert isinstance(header, Secret) and header.value == "Bearer pat-s3cr3t"


def test_basic_authorization_with_the_products_user_name() -> None:
    plain = authorization({"email_env": "EMAIL", "token_env": "TOKEN"}, ENV, "instances.acme")
    assert plain.value == "Basic " + base64.b64encode(b"bot@acme.example:tok-s3cr3t").decode()
    auth = {"email_env": "EMAIL", "token_env": "TOKEN"}
    zendesk = authorization(auth, ENV, "x", basic_user=lambda e: f"{e}/token")
    assert base64.b64decode(zendesk.value.removeprefix("Basic ")) == b"bot@acme.example/token:tok-s3cr3t"


@pytest.mark.parametrize(
    ("auth", "message"),
    [
        ({"email_env": "NO", "token_env": "TOKEN"}, "instances.acme.auth.email_env: environment variable NO"),
        ({"email_env": "EMAIL", "token_env": "NO"}, "instances.acme.auth.token_env: environment variable NO"),
        ({"bearer_env": "NO"}, "instances.acme.auth.bearer_env: environment variable NO"),
    ],
)
def test_missing_credentials_name_the_setting_never_a_value(auth: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        authorization(auth, ENV, "instances.acme")
    assert str(info.value) == message + " is not set"
    assert all(v not in str(info.value) for v in ENV.values() if v)


def test_time_zone() -> None:
    assert str(time_zone("Europe/Berlin", "x")) == "Europe/Berlin"
    for bad in ("Mars/Olympus", "../etc/passwd", ""):
        with pytest.raises(ValueError) as info:
            time_zone(bad, "instances.acme.tz")
        assert str(info.value) == f"instances.acme.tz: unknown time zone {bad!r}"


def test_load_schema_compiles_once(tmp_path: Path) -> None:
    path = tmp_path / "config.schema.json"
    path.write_text(json.dumps(SCHEMA))
    schema, validator = load_schema(path)
    assert schema == SCHEMA and validator.schema == SCHEMA
    assert validator.is_valid({"auth": {"bearer_env": "P"}}) and not validator.is_valid({})


def test_a_valid_block_passes() -> None:
    check_config(VALIDATOR, {"auth": {"bearer_env": "PAT"}, "field_id": "36"}, "instances.acme")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "instances.acme: 'auth' is a required property"),
        ({"auth": {"bearer_env": "P"}, "x": 1}, "instances.acme: Additional properties are not allowed ('x'"),
        # The deepest error is the most precise one, whatever else is wrong.
        ({"x": 1, "http": {"timeouts": [1, "x"]}}, "instances.acme.http.timeouts[1]: 'x' is not of type"),
        # A scalar that matches no alternative keeps jsonschema's message (it shows only the scalar).
        ({"auth": {"bearer_env": "P"}, "field_id": "3x"}, "instances.acme.field_id: '3x' is not valid under"),
        # An object does not: its message would dump the whole block.
        ({"auth": {"token_env": "TOKEN_VAR"}}, "instances.acme.auth: matches none of the allowed forms"),
    ],
)
def test_schema_errors_name_the_path(config: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        check_config(VALIDATOR, config, "instances.acme")
    assert str(info.value).startswith(message)
    assert "TOKEN_VAR" not in str(info.value)


def test_alternatives_explain_an_object_that_matches_no_form() -> None:
    alternatives = {".auth": "expected {bearer_env} or {email_env, token_env}"}
    with pytest.raises(ValueError) as info:
        check_config(VALIDATOR, {"auth": {"token_env": "T"}}, "instances.acme", alternatives)
    assert str(info.value) == "instances.acme.auth: expected {bearer_env} or {email_env, token_env}"


def test_json_path_formats_keys_and_indexes() -> None:
    error = next(VALIDATOR.iter_errors({"auth": {"bearer_env": "P"}, "http": {"timeouts": ["x"]}}))
    assert json_path(error) == ".http.timeouts[0]"


def test_webhook_url_needs_http_and_a_host() -> None:
    assert webhook_url("https://sla.acme.example/hooks/acme", "x") == "https://sla.acme.example/hooks/acme"
    assert webhook_url("http://127.0.0.1:8080/hook", "x") == "http://127.0.0.1:8080/hook"
    for bad in ("ftp://sla.example.com", "https://", "sla.example.com/hook", "", "HTTPS:/x"):
        with pytest.raises(ValueError) as info:
            webhook_url(bad, "install")
        assert str(info.value) == f"install: webhook url must be http(s), got {bad!r}"
