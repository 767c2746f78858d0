"""Instance configuration: schema errors name the path, secrets come from the environment."""

from __future__ import annotations

import pytest

from adapters.base import load
from adapters.zendesk import CONFIG_SCHEMA, create
from adapters.zendesk.tests.helpers import ENV, TOKEN, config


def test_loaded_by_product_name_with_its_schema() -> None:
    module = load("zendesk")
    assert module.CONFIG_SCHEMA is CONFIG_SCHEMA
    assert CONFIG_SCHEMA["properties"]["product"] == {"const": "zendesk"}
    zd = module.create("acme", config(dry_run=True), ENV)
    assert (zd.product, zd.instance, zd.settings.dry_run) == ("zendesk", "acme", True)
    assert zd.settings.base_url == "https://acme.zendesk.com"
    assert zd.settings.connector_user_id == "900000000001"


def test_base_url_instead_of_subdomain() -> None:
    zd = create("local", config(subdomain=None, base_url="http://127.0.0.1:8089/"), ENV)
    assert zd.settings.base_url == "http://127.0.0.1:8089"


def test_defaults() -> None:
    s = create("acme", config(deadline_field_id=None, custom_statuses=None), ENV).settings
    assert (s.webhook_kind, s.webhook_name, s.signature_max_age) == ("events", "sla-connector acme", 300)
    assert (s.default_priority, s.deadline_format, str(s.deadline_zone)) == (
        "normal",
        "date",
        "Europe/Berlin",
    )
    assert (s.connect_timeout, s.read_timeout, s.max_attempts) == (5.0, 30.0, 3)
    assert s.deadline_field_id is None and s.custom_statuses == {}
    assert s.outage_start_field is None


@pytest.mark.parametrize("written", [360000123999, "360000123999"])
def test_outage_start_field_is_a_field_id_however_written(written: int | str) -> None:
    assert create("acme", config(outage_start_field=written), ENV).settings.outage_start_field == 360000123999


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"auth": None}, "instances.acme: 'auth' is a required property"),
        ({"product": "jira"}, "instances.acme.product: 'zendesk' was expected"),
        ({"subdomain": "Acme Corp"}, "instances.acme.subdomain: 'Acme Corp' does not match"),
        ({"base_url": "https://x.example"}, "instances.acme: set exactly one of `subdomain` and `base_url`"),
        ({"subdomain": None}, "instances.acme: set exactly one of `subdomain` and `base_url`"),
        ({"auth": {"email_env": "ZD_EMAIL"}}, "instances.acme.auth: 'token_env' is a required property"),
        (
            {"auth": {"bearer_env": "ZD_OAUTH", "token_env": "ZD_TOKEN"}},
            "False schema does not allow 'ZD_TOKEN'",
        ),
        ({"auth": {"password_env": "X"}}, "instances.acme.auth: Additional properties are not allowed"),
        (
            {"webhook": {"secret_env": "ZD_SECRET", "kind": "polling"}},
            "instances.acme.webhook.kind: 'polling'",
        ),
        ({"webhook": {"secret_env": "ZD SECRET"}}, "instances.acme.webhook.secret_env: 'ZD SECRET' does not"),
        ({"webhook": {"secret_env": "ZD_SECRET", "signature_max_age": 0}}, "webhook.signature_max_age: 0"),
        ({"statuses": {"Escalated": "urgent"}}, "instances.acme.statuses.Escalated: 'urgent' is not one of"),
        ({"custom_statuses": {"abc": "pending"}}, "instances.acme.custom_statuses: 'abc' does not match"),
        ({"deadline_field_id": "36x"}, "instances.acme.deadline_field_id: '36x' is not valid"),
        ({"deadline_format": "epoch"}, "instances.acme.deadline_format: 'epoch' is not one of"),
        ({"outage_start_field": "cf_1"}, "instances.acme.outage_start_field: 'cf_1' is not valid"),
        ({"outage_start_field": 0}, "instances.acme.outage_start_field: 0 is not valid"),
        ({"outage_start_field": "0"}, "instances.acme.outage_start_field: '0' is not valid"),
        ({"outage_start_field": -5}, "instances.acme.outage_start_field: -5 is not valid"),
        ({"outage_start_field": 3.5}, "instances.acme.outage_start_field: 3.5 is not valid"),
        ({"outage_start_field": True}, "instances.acme.outage_start_field: True is not valid"),
        ({"outage_start_field": "360000123456", "deadline_field_id": 360000123456},
         "instances.acme.outage_start_field: 360000123456 is also the deadline_field_id the connector"),
        ({"deadline_timezone": "Mars/Olympus"}, "instances.acme.deadline_timezone: unknown time zone"),
        ({"http": {"read_timeout": -1}}, "instances.acme.http.read_timeout: -1"),
        ({"tokens": "x"}, "instances.acme: Additional properties are not allowed ('tokens' was unexpected)"),
        ({"dry_run": "yes"}, "instances.acme.dry_run: 'yes' is not of type 'boolean'"),
    ],
)
def test_config_errors_name_the_path(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        create("acme", config(**overrides), ENV)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("missing", "where"),
    [("ZD_TOKEN", "instances.acme.auth.token_env"), ("ZD_EMAIL", "instances.acme.auth.email_env")],
)
def test_missing_secret_variable_is_named_not_shown(missing: str, where: str) -> None:
    env = {k: v for k, v in ENV.items() if k != missing}
    with pytest.raises(ValueError, match=f"{where}: environment variable {missing} is not set") as info:
        create("acme", config(), env)
    assert TOKEN not in str(info.value)


def test_missing_bearer_variable() -> None:
    with pytest.raises(ValueError, match="auth.bearer_env: environment variable NOPE is not set"):
        create("acme", config(auth={"bearer_env": "NOPE"}), ENV)


def test_signing_secret_may_be_absent_until_installed() -> None:
    env = {k: v for k, v in ENV.items() if k != "ZD_SECRET"}
    assert create("acme", config(), env).settings.webhook_secret is None
