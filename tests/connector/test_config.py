"""connector.config.loader: loading, defaults, ${VAR} references and every kind of configuration error."""

from __future__ import annotations

import sys
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from connector.config.loader import (
    DEFAULT_MAX_BODY_BYTES,
    Config,
    ConfigError,
    config_from_dict,
    load_config,
    resolve_env,
)
from tests.connector.fakes import shelldesk

shelldesk.register()

ENV = {"DESK_SECRET": "s3cret-value"}


def base(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "instances": {"desk": {"product": "shelldesk", "secret_env": "DESK_SECRET"}},
        "calendars": {
            "berlin": {"timezone": "Europe/Berlin", "hours": {"mon-fri": ["09:00-17:00"]}},
            "always": {"timezone": "UTC", "hours": "24x7"},
        },
        "policies": [
            {
                "id": "standard",
                "version": 1,
                "match": {"priority": ["high"]},
                "metrics": {"resolution": {"calendar": "berlin", "targets": {"high": "4h"}}},
                "escalations": [
                    {"name": "breach", "metric": "resolution", "at": "breach",
                     "actions": [{"tag": "sla-breached"}]}
                ],
            }
        ],
    }
    data.update(overrides)
    return data


def error_of(data: Any, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        config_from_dict(data, ENV if env is None else env, source="cfg.yaml")
    return info.value


def test_builds_everything_with_defaults() -> None:
    cfg = config_from_dict(base(), ENV, source="cfg.yaml")
    assert isinstance(cfg, Config)
    assert list(cfg.instances) == ["desk"]
    desk = cfg.instances["desk"]
    assert (desk.name, desk.product, desk.dry_run) == ("desk", "shelldesk", False)
    assert desk.adapter.instance == "desk" and desk.adapter.product == "shelldesk"
    assert desk.settings["secret_env"] == "DESK_SECRET"
    assert sorted(cfg.calendars) == ["always", "berlin"]
    assert cfg.calendars["berlin"].name == "berlin"
    assert [p.id for p in cfg.policies.policies] == ["standard"]
    assert cfg.policies.policies[0].metrics["resolution"].targets["high"] == timedelta(hours=4)
    assert cfg.redis_url is None
    assert cfg.data_dir == "./data"
    assert cfg.api_token is None and cfg.api_token_env == "SLA_CONNECTOR_API_TOKEN"
    assert cfg.max_body_bytes == DEFAULT_MAX_BODY_BYTES == 1048576
    assert cfg.source == "cfg.yaml"


def test_explicit_top_level_settings() -> None:
    env = {**ENV, "MY_TOKEN": "tok-123"}
    data = base(redis_url="redis://localhost:6379/2", data_dir="/var/lib/sla", api_token_env="MY_TOKEN",
                receiver={"max_body_bytes": 4096})
    data["instances"]["desk"]["dry_run"] = True
    cfg = config_from_dict(data, env)
    assert cfg.redis_url == "redis://localhost:6379/2"
    assert cfg.data_dir == "/var/lib/sla"
    assert cfg.api_token == "tok-123"
    assert cfg.max_body_bytes == 4096
    assert cfg.instances["desk"].dry_run is True
    assert "tok-123" not in repr(cfg)


def test_redis_url_defaults_to_the_environment() -> None:
    assert config_from_dict(base(), {**ENV, "REDIS_URL": "unix:///tmp/r.sock"}).redis_url == "unix:///tmp/r.sock"
    assert config_from_dict(base(), {**ENV, "REDIS_URL": ""}).redis_url is None
    # A value in the file wins over the environment; null or empty means "not set here".
    env = {**ENV, "REDIS_URL": "redis://env:6379"}
    assert config_from_dict(base(redis_url="redis://file:6379"), env).redis_url == "redis://file:6379"
    assert config_from_dict(base(redis_url="${OTHER:-}"), env).redis_url == "redis://env:6379"
    assert config_from_dict(base(redis_url=None), env).redis_url == "redis://env:6379"
    assert config_from_dict(base(redis_url=None), ENV).redis_url is None


@pytest.mark.parametrize(
    ("url", "from_env", "said"),
    [
        ("redis://:pw-s3cret@localhost:99999", False, "redis_url: not a usable Redis URL: Port out of range"),
        ("redis://localhost:abc/0", True, "redis_url (from REDIS_URL): not a usable Redis URL: Port"),
    ],
)
def test_a_redis_url_with_a_bad_port_is_a_configuration_error(url: str, from_env: bool, said: str) -> None:
    data, env = (base(), {**ENV, "REDIS_URL": url}) if from_env else (base(redis_url=url), ENV)
    with pytest.raises(ConfigError) as info:
        config_from_dict(data, env)
    assert said in str(info.value) and "s3cret" not in str(info.value)


def test_a_bad_redis_url_exits_2_with_the_key_and_no_traceback(tmp_path: Path) -> None:
    import subprocess

    path = tmp_path / "c.yaml"
    path.write_text("redis_url: redis://localhost:99999\n" + textwrap.dedent("""
        instances: {desk: {product: shelldesk, base_url: "https://d.test", secret_env: DESK_SECRET}}
        calendars: {always: {timezone: UTC, hours: 24x7}}
        policies: []
    """))
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-m", "connector", "--config", str(path), "status"], cwd=root,
                          capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin",
                                                                          "PYTHONPATH": str(root)})
    assert done.returncode == 2, done.stderr
    assert "redis_url" in done.stderr and "Traceback" not in done.stderr


def test_env_references_are_resolved_in_instances_and_top_level() -> None:
    env = {**ENV, "DESK_URL": "https://desk.example", "DATA": "/srv/data"}
    data = base(data_dir="${DATA}", redis_url="redis://${RHOST:-localhost}:6379")
    data["instances"]["desk"]["base_url"] = "${DESK_URL}/api"
    cfg = config_from_dict(data, env)
    assert cfg.instances["desk"].settings["base_url"] == "https://desk.example/api"
    assert cfg.data_dir == "/srv/data"
    assert cfg.redis_url == "redis://localhost:6379"


def test_resolve_env_rules() -> None:
    env = {"A": "1", "EMPTY": ""}
    assert resolve_env("x${A}y", env, "f") == "x1y"
    assert resolve_env("${EMPTY:-d}", env, "f") == "d"
    assert resolve_env("${NOPE:-}", env, "f") == ""
    assert resolve_env("$${A} costs $5", env, "f") == "${A} costs $5"
    assert resolve_env({"k": ["${A}", 3, None]}, env, "f") == {"k": ["1", 3, None]}


def test_policies_are_taken_literally() -> None:
    data = base()
    data["policies"][0]["escalations"][0]["actions"].append({"comment": "Breached ${ticket}, costs $5"})
    cfg = config_from_dict(data, ENV)
    level = cfg.policies.policies[0].escalations[0]
    assert level.values("comment") == ["Breached ${ticket}, costs $5"]


def test_unset_variable_names_variable_and_path_but_no_value() -> None:
    data = base()
    data["instances"]["desk"]["base_url"] = "${DESK_URL}"
    err = error_of(data)
    assert str(err) == (
        "cfg.yaml: instances.desk.base_url: "
        "environment variable DESK_URL is not set (referenced as ${DESK_URL})"
    )
    assert (err.source, err.path) == ("cfg.yaml", "instances.desk.base_url")


def test_malformed_reference() -> None:
    err = error_of(base(data_dir="${not valid}"))
    assert err.path == "data_dir" and "malformed ${...} reference" in err.message


@pytest.mark.parametrize(
    ("data", "path", "expected"),
    [
        ([1, 2], "$", "expected a mapping at the top level, got list"),
        ({}, "$", "'instances' is a required property"),
        (base(instances={}), "instances", "should be non-empty"),
        (base(extra=1), "$", "unknown key(s) 'extra'; expected redis_url, data_dir, api_token_env, receiver, "
                              "instances, calendars, contracts, policies, notify_channels"),
        (base(receiver={"max_body_bytes": "big"}), "receiver.max_body_bytes",
         "'big' is not of type 'integer'"),
        (base(receiver={"max_body_bytes": 10}), "receiver.max_body_bytes",
         "10 is less than the minimum of 1024"),
        (base(receiver={"max_bytes": 10}), "receiver",
         "unknown key(s) 'max_bytes'; expected max_body_bytes, public_url"),
        (base(api_token_env="not a name"), "api_token_env", "'not a name' does not match the expected form: "
         "an environment variable name (letters, digits and _, not starting with a digit)"),
        (base(data_dir=""), "data_dir", "should be non-empty"),
        (base(instances={"bad name": {"product": "shelldesk"}}), "instances",
         "key 'bad name' does not match the expected form: a name of 1 to 64 letters, digits, '_', '.' "
         "or '-', starting with a letter or digit"),
        (base(instances={"desk": {"secret_env": "X"}}), "instances.desk", "'product' is a required property"),
        (base(instances={"desk": {"product": "shelldesk", "secret_env": "X", "dry_run": "yes"}}),
         "instances.desk.dry_run", "'yes' is not of type 'boolean'"),
        (base(calendars={"c": "24x7"}), "calendars.c", "'24x7' is not of type 'object'"),
        (base(policies={"id": "x"}), "policies", "is not of type 'array'"),
    ],
)
def test_schema_errors_name_the_path(data: Any, path: str, expected: str) -> None:
    err = error_of(data)
    assert err.path == path
    assert expected in err.message
    assert str(err).startswith(f"cfg.yaml: {path}: ")


def test_unknown_product_lists_the_known_ones() -> None:
    err = error_of(base(instances={"desk": {"product": "freshdesk"}}))
    assert err.path == "instances.desk.product"
    assert "unknown product 'freshdesk'" in err.message
    assert "known:" in err.message


def test_adapter_schema_errors_are_prefixed_with_the_instance() -> None:
    err = error_of(base(instances={"desk": {"product": "shelldesk", "secret_env": "lower"}}))
    assert err.path == "instances.desk.secret_env"
    assert "does not match" in err.message
    err = error_of(base(instances={"desk": {"product": "shelldesk", "secret_env": "X", "colour": "red"}}))
    assert err.path == "instances.desk" and err.message.startswith("unknown key(s) 'colour'")


def test_adapter_create_errors_name_the_variable_never_a_value() -> None:
    err = error_of(base(), env={})
    assert str(err) == "cfg.yaml: instances.desk: secret_env: environment variable DESK_SECRET is not set"


def test_calendar_errors_name_the_calendar() -> None:
    err = error_of(base(calendars={"support": {"timezone": "Mars/Olympus", "hours": "24x7"}}))
    assert err.path == "calendars.support"
    assert "Mars/Olympus" in err.message


def test_policy_errors_keep_the_policy_path() -> None:
    data = base()
    data["policies"][0]["metrics"]["resolution"]["targets"]["high"] = "4x"
    err = error_of(data)
    assert str(err).startswith("cfg.yaml: policies[0].metrics.resolution.targets.high: ")
    data = base()
    data["policies"][0]["metrics"]["resolution"]["calendar"] = "nowhere"
    err = error_of(data)
    assert "nowhere" in str(err) and str(err).startswith("cfg.yaml: policies[0]")


def test_redis_url_must_be_a_redis_url_and_is_never_echoed() -> None:
    err = error_of(base(redis_url="http://user:hunter2@host"))
    assert err.path == "redis_url" and "hunter2" not in str(err)
    err = error_of(base(), env={**ENV, "REDIS_URL": "localhost:6379"})
    assert err.path == "redis_url (from REDIS_URL)"


# ---------------------------------------------------------------- files


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_load_config_from_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, """
        # comments are fine
        data_dir: ./state
        instances:
          desk:
            product: shelldesk
            secret_env: DESK_SECRET
            dry_run: true
        calendars:
          always: {timezone: UTC, hours: 24x7, holidays: {dates: [2026-12-24]}}
        policies:
          - id: all
            version: 1
            effective_from: 2026-10-01T00:00:00Z
            metrics:
              first_response: {calendar: always, targets: {normal: 30m}}
    """)
    cfg = load_config(path, ENV)
    assert cfg.source == str(path)
    assert cfg.data_dir == "./state"
    assert cfg.instances["desk"].dry_run is True
    assert cfg.policies.policies[0].effective_from.year == 2026


def test_load_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.yaml: no such file"):
        load_config(tmp_path / "missing.yaml", ENV)
    path = write(tmp_path, "instances:\n  desk: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, ENV)
    assert str(info.value).startswith(f"{path}: line 3, column 1: invalid YAML")
    path = write(tmp_path, "# nothing here\n")
    with pytest.raises(ConfigError, match="the file is empty"):
        load_config(path, ENV)
    path = write(tmp_path, "instances:\n  desk: {product: shelldesk, secret_env: DESK_SECRET}\nbogus: 1\n")
    with pytest.raises(ConfigError, match=r"config\.yaml: \$: unknown key\(s\) 'bogus'"):
        load_config(path, ENV)


def test_load_config_reads_os_environ_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DESK_SECRET", "x")
    monkeypatch.setenv("SLA_CONNECTOR_API_TOKEN", "from-env")
    path = write(tmp_path, "instances:\n  desk: {product: shelldesk, secret_env: DESK_SECRET}\n")
    assert load_config(path).api_token == "from-env"


def test_a_key_written_twice_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, """
        instances:
          desk: {product: shelldesk, secret_env: DESK_SECRET}
          desk: {product: shelldesk, secret_env: OTHER}
    """)
    with pytest.raises(ConfigError) as info:
        load_config(path, ENV)
    assert str(info.value) == (
        f"{path}: line 4, column 3: invalid YAML: "
        "duplicate key 'desk' (a later one would silently replace it)"
    )


def test_the_sla_digest_changes_with_policies_calendars_and_notice_messages_only() -> None:
    digest = config_from_dict(base(), ENV, source="a.yaml").sla_digest
    assert len(digest) == 16
    # Elsewhere: another instance, secret, Redis URL or key order leaves it as it is.
    same = base(redis_url="redis://other:6379/0", data_dir="/srv/sla")
    same["instances"] = {"desk": {"secret_env": "OTHER_SECRET", "product": "shelldesk"}}
    same["calendars"] = dict(reversed(list(same["calendars"].items())))
    assert config_from_dict(same, {"OTHER_SECRET": "x"}, source="b.yaml").sla_digest == digest
    # A target, a calendar's hours or a notice's message changes it.
    target = base()
    target["policies"][0]["metrics"]["resolution"]["targets"]["high"] = "2h"
    hours = base()
    hours["calendars"]["berlin"]["hours"] = {"mon-fri": ["08:00-17:00"]}
    digests = {digest, config_from_dict(target, ENV, source="c").sla_digest,
               config_from_dict(hours, ENV, source="d").sla_digest}
    for message in ("{ticket} is late", "{ticket}: {level}"):
        channel = {"kind": "slack", "url": "https://hooks.slack.com/services/T1/B1/x", "message": message}
        noticed = base(notify_channels={"ops": channel})
        digests.add(config_from_dict(noticed, ENV, source="e").sla_digest)
    assert len(digests) == 5
