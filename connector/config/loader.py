"""The connector's configuration: one YAML file, validated, with `${VAR}` references from the environment.

Everything that can be wrong with the file is found here, once, at start-up, and reported as a
ConfigError naming the file, the path inside it and what was expected. Secrets never appear in the
file itself: instances name the environment variables that hold them (e.g. `token_env`), and the
adapters read those variables; the API token is read from the variable `api_token_env` names.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any

import jsonschema
import redis
import yaml

from adapters import base as adapters_base

if TYPE_CHECKING:  # imported lazily: the SLA core modules are only needed once a config is loaded
    from adapters.base import Adapter
    from sla.calendar import BusinessCalendar
    from sla.contracts import Contract
    from sla.policy import PolicySet

DEFAULT_DATA_DIR = "./data"
DEFAULT_API_TOKEN_ENV = "SLA_CONNECTOR_API_TOKEN"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
#: Instance keys the connector itself reads; the adapters neither see nor list them.
CONNECTOR_INSTANCE_KEYS = ("reconcile_every",)
DEFAULT_RECONCILE_EVERY_S = 900  # `reconcile_every: 15m`, the default
MIN_RECONCILE_EVERY_S = 60  # the reconcile tick runs once a minute

# ${NAME} or ${NAME:-default}; "$${" is a literal "${".
_REF = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_BAD_REF = re.compile(r"(?<!\$)\$\{(?![A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\})")


class ConfigError(ValueError):
    """The configuration is unusable; the message names the file, the path and the expectation."""

    def __init__(self, source: str, path: str, message: str) -> None:
        super().__init__(f"{source}: {path}: {message}" if path else f"{source}: {message}")
        self.source = source
        self.path = path
        self.message = message


@dataclass(frozen=True)
class InstanceConfig:
    name: str
    product: str
    dry_run: bool
    settings: Mapping[str, Any]
    adapter: Adapter
    reconcile_every_s: int = DEFAULT_RECONCILE_EVERY_S  # 0: reconciliation is off


@dataclass(frozen=True)
class Config:
    instances: Mapping[str, InstanceConfig]
    calendars: Mapping[str, BusinessCalendar]
    policies: PolicySet
    redis_url: str | None
    data_dir: str
    api_token: str | None = field(repr=False)
    max_body_bytes: int
    source: str
    # Extras beyond the shared contract (defaults keep it backward compatible):
    api_token_env: str = DEFAULT_API_TOKEN_ENV
    public_url: str | None = None  # receiver.public_url: base URL the helpdesks post to
    contracts: tuple[Contract, ...] = ()  # service credits and uptime for reports (sla/contracts.py)
    notify_channels: Mapping[str, Any] = field(default_factory=dict)  # name -> connector.notices Channel
    # What the SLA clocks depend on (policies, calendars, notice messages), as a short digest: workers
    # publish theirs, and `recalculate` refuses to run while a worker evaluates with other ones.
    sla_digest: str = ""


def _schema_validator() -> jsonschema.protocols.Validator:
    text = resources.files("connector.config").joinpath("schemas/config.schema.json").read_text()
    schema = json.loads(text)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


_VALIDATOR = _schema_validator()


def json_path(parts: Any) -> str:
    """`instances.acme.auth[0]` from a jsonschema-style deque of keys and indexes."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "$"


def _first_error(validator: Any, instance: Any, prefix: tuple[str, ...] = ()) -> tuple[str, str] | None:
    """(path, message) of the most relevant schema error, or None when `instance` is valid."""
    best = jsonschema.exceptions.best_match(validator.iter_errors(instance))
    if best is None:
        return None
    return json_path([*prefix, *best.absolute_path]), schema_message(best, validator.schema)


#: What each `pattern` of the connector's and the adapters' schemas means, for messages: a regular
#: expression is no help to an admin. tests/connector/test_config_messages.py checks every pattern has one.
PATTERN_FORMS: Mapping[str, str] = {
    "^[A-Za-z_][A-Za-z0-9_]*$": "an environment variable name "
    "(letters, digits and _, not starting with a digit)",
    "^https?://[^\\s/]+(/[^\\s]*)?$": "an http:// or https:// URL with a host and no spaces, "
    "e.g. https://acme.atlassian.net",
    "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$": "a name of 1 to 64 letters, digits, '_', '.' or '-', "
    "starting with a letter or digit",
    "^[A-Za-z0-9-]+$": "an HTTP header name (letters, digits and '-'), e.g. X-Automation-Secret",
    "^[a-z0-9_-]+$": "a canonical priority name (lower-case letters, digits, '_' or '-'), e.g. high",
    "^(duedate|customfield_[0-9]+)$": '"duedate" or "customfield_<number>", e.g. customfield_10042',
    "^customfield_[0-9]+$": '"customfield_<number>", e.g. customfield_10061',
    "^[a-z0-9][a-z0-9-]{0,62}$": "a Zendesk subdomain (lower-case letters, digits and '-'), "
    "e.g. acme for acme.zendesk.com",
    "^[0-9]+$": "a number written with digits only, e.g. 360000123456",
    "^[1-9][0-9]*$": "a positive number written with digits only, e.g. 360000123999",
}


def unknown_keys(found: Any, allowed: Any) -> str:
    """The one wording of an unknown key, wherever it is found: what was found and what is expected."""
    names = ", ".join(repr(str(k)) for k in found)
    expected = ", ".join(str(k) for k in allowed) or "no keys"
    return f"unknown key(s) {names}; expected {expected}"


def schema_message(error: jsonschema.ValidationError, root: Any = None) -> str:
    """A schema error in the admin's terms: no regular expression, no dump of a whole block."""
    kind, schema, value = error.validator, error.schema, error.instance
    if kind == "additionalProperties" and isinstance(schema, Mapping) and isinstance(value, Mapping):
        allowed = list(schema.get("properties") or {})
        found = [k for k in value if k not in allowed]
        if found:
            return unknown_keys(found, allowed)
    if kind == "pattern":
        form = PATTERN_FORMS.get(str(error.validator_value)) or _description(root, error.schema_path)
        what = f"key {value!r}" if "propertyNames" in error.schema_path else repr(value)
        return f"{what} does not match the expected form: {form or 'see the documentation of this setting'}"
    if kind in ("anyOf", "oneOf"):
        return _alternatives(kind, list(error.validator_value), value)
    if kind is None:  # a `false` schema: a key that is not allowed in this combination
        return _not_together(root, list(error.schema_path))
    return error.message


def _not_together(root: Any, schema_path: list[Any]) -> str:
    """`if: {required: [a]}, then: {properties: {b: false}}` as "b cannot be set together with a"."""
    about = _description(root, schema_path)
    if len(schema_path) >= 2 and schema_path[-2:] == ["then", "properties"]:
        parent, then = _node(root, schema_path[:-2]), _node(root, schema_path)
        condition = (parent or {}).get("if", {}).get("required") if isinstance(parent, Mapping) else None
        banned = [k for k, v in then.items() if v is False] if isinstance(then, Mapping) else []
        if condition and banned:
            return f"{' and '.join(banned)} cannot be set together with {' and '.join(condition)}" + (
                f" ({about})" if about else ""
            )
    return "a key here is not allowed in this combination" + (f" ({about})" if about else "")


def _node(root: Any, schema_path: list[Any]) -> Any:
    """The schema at `schema_path` under `root` (None when the path leaves it, e.g. through a $ref)."""
    node = root
    for part in schema_path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def _alternatives(kind: str, schemas: list[Any], value: Any) -> str:
    """anyOf/oneOf: unknown keys, or the allowed forms by their keys, instead of the value dumped."""
    objects = [s for s in schemas if isinstance(s, Mapping)]
    closed = all(s.get("additionalProperties") is False for s in objects)
    if isinstance(value, Mapping) and objects and closed:
        allowed = list(dict.fromkeys(k for s in objects for k in s.get("properties") or {}))
        found = [k for k in value if k not in allowed]
        if found:
            return unknown_keys(found, allowed)
    required = [list(s.get("required") or ()) for s in objects]
    if objects and len(objects) == len(schemas) and all(required):
        if all(set(s) <= {"required"} for s in objects):  # only "which keys": at least / exactly one set
            keys = ", ".join(k for keys in required for k in keys)
            return f"set {'at least' if kind == 'anyOf' else 'exactly'} one of {keys}"
        return "expected " + " or ".join("{" + ", ".join(keys) + "}" for keys in required)
    return "matches none of the allowed forms"


def _description(root: Any, schema_path: Any) -> str:
    """The description of the innermost schema on `schema_path` that has one ("" when none does)."""
    node, found = root, ""
    for part in schema_path:
        if not isinstance(node, Mapping | list):
            break
        if isinstance(node, Mapping) and isinstance(node.get("description"), str):
            found = node["description"]
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
    return found


@dataclass(frozen=True)
class Substitution:
    """A string of the file that took (part of) its value from the environment."""

    path: str
    written: str  # as in the file, e.g. "https://${JIRA_HOST}/"
    value: str  # after substitution: may hold a secret, never shown
    names: tuple[str, ...]  # the variables whose values it took
    parts: tuple[str, ...]  # those values


def resolve_env(
    value: Any, env: Mapping[str, str], source: str, path: str = "", record: list[Substitution] | None = None
) -> Any:
    """Replace `${NAME}` / `${NAME:-default}` in every string of `value` (recursively).

    An unset variable without a default is an error naming the variable (never a value). Strings
    that took a value from `env` are appended to `record` (so errors can avoid echoing them).
    """
    if isinstance(value, str):
        if "${" not in value:
            return value
        if _BAD_REF.search(value.replace("$${", "")):
            expected = "expected ${NAME} or ${NAME:-default}; write $${ for a literal ${"
            raise ConfigError(source, path or "$", f"malformed ${{...}} reference ({expected})")

        taken: dict[str, str] = {}

        def sub(match: re.Match[str]) -> str:
            if match.group(0) == "$${":
                return "${"
            name, default = match.group(1), match.group(2)
            if name in env and env[name] != "":
                taken[name] = env[name]
                return env[name]
            if default is not None:
                return default
            state = "is empty" if name in env else "is not set"
            message = f"environment variable {name} {state} (referenced as ${{{name}}})"
            raise ConfigError(source, path or "$", message)

        result = _REF.sub(sub, value)
        if taken and record is not None:
            record.append(Substitution(path or "$", value, result, tuple(taken), tuple(taken.values())))
        return result
    if isinstance(value, Mapping):
        return {
            k: resolve_env(v, env, source, f"{path}.{k}" if path else str(k), record)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [resolve_env(v, env, source, f"{path}[{i}]", record) for i, v in enumerate(value)]
    return value


_MIN_SCRUB = 4  # shorter values ("1", "on") are too common in messages to hide, and say little


def hide_substituted(error: ConfigError, record: list[Substitution]) -> ConfigError:
    """`error` without any value that came from the environment: the variable is named instead.

    Schema and adapter messages quote the bad value; after `${VAR}` substitution that value can
    hold a secret (a password in a URL), so it is replaced by what the file says, and the message
    says where the value came from.
    """
    message = error.message
    for item in sorted(record, key=lambda r: -len(r.value)):
        shown = f"the value of {item.written!r} (from the environment, not shown)"
        message = message.replace(repr(item.value), shown)
        if len(item.value) >= _MIN_SCRUB:
            message = message.replace(item.value, shown)
        for name, part in zip(item.names, item.parts, strict=True):
            if len(part) >= _MIN_SCRUB:
                message = message.replace(part, f"${{{name}}}")
    hits = [
        r
        for r in record
        if error.path
        and (
            r.path == error.path or r.path.startswith(error.path + ".") or r.path.startswith(error.path + "[")
        )
    ]
    if hits and message == error.message:
        names = ", ".join(dict.fromkeys(f"${{{n}}}" for r in hits for n in r.names))
        message += f" (the value comes from the environment: {names})"
    return ConfigError(error.source, error.path, message)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key written twice in one mapping (YAML would keep the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (a later one would silently replace it)",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_config(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Config:
    """Read, validate and build the configuration in the YAML file at `path`."""
    source = os.fspath(path)
    data = read_yaml(source, missing="no such file (set --config or SLA_CONNECTOR_CONFIG)")
    if data is None:
        raise ConfigError(source, "", "the file is empty (expected a mapping with at least `instances`)")
    return config_from_dict(data, env, source)


def read_yaml(source: str, missing: str = "no such file") -> Any:
    """The parsed YAML file at `source`; ConfigError naming it (`missing` when it does not exist)."""
    try:
        with open(source, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise ConfigError(source, "", missing) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(source, "", f"cannot read the file: {exc.__class__.__name__}: {exc}") from None
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, "", f"{where}invalid YAML: {problem}") from None


def config_from_dict(data: Mapping, env: Mapping[str, str] | None = None, source: str = "<config>") -> Config:
    """Validate and build a Config from already-parsed data (the YAML file's top-level mapping)."""
    env = os.environ if env is None else env
    if not isinstance(data, Mapping):
        raise ConfigError(source, "$", f"expected a mapping at the top level, got {type(data).__name__}")
    record: list[Substitution] = []
    # Policies are taken literally: their comment templates may contain "$" and braces.
    resolved = {
        k: (v if k == "policies" else resolve_env(v, env, source, str(k), record)) for k, v in data.items()
    }
    try:
        return _build(resolved, env, source)
    except ConfigError as exc:
        raise (hide_substituted(exc, record) if record else exc) from None


def _build(resolved: Mapping[str, Any], env: Mapping[str, str], source: str) -> Config:
    error = _first_error(_VALIDATOR, resolved)
    if error:
        raise ConfigError(source, *error)

    # Null or empty in the file means "not set here": REDIS_URL, else none (run embeds a server).
    from_file = bool(resolved.get("redis_url"))
    redis_url = resolved.get("redis_url") or env.get("REDIS_URL") or None
    if redis_url is not None and not redis_url.startswith(REDIS_SCHEMES):
        where = "redis_url" if from_file else "redis_url (from REDIS_URL)"
        # The URL may carry a password: name the scheme only.
        raise ConfigError(source, where, f"expected a URL starting with one of {', '.join(REDIS_SCHEMES)}")
    if redis_url is not None:
        try:
            redis.connection.parse_url(redis_url)
        except ValueError as exc:  # redis-py's words name the port or scheme, never the password
            where = "redis_url" if from_file else "redis_url (from REDIS_URL)"
            raise ConfigError(source, where, f"not a usable Redis URL: {exc}") from None

    token_env = resolved.get("api_token_env", DEFAULT_API_TOKEN_ENV)
    receiver = resolved.get("receiver") or {}
    calendars = _build_calendars(resolved.get("calendars") or {}, source)
    policies_cfg = list(resolved.get("policies") or [])
    channels = _build_channels(resolved.get("notify_channels"), source)
    policies = _build_policies(policies_cfg, calendars, source, {n: c.template for n, c in channels.items()})
    instances = {
        name: _build_instance(name, settings, env, source)
        for name, settings in (resolved.get("instances") or {}).items()
    }
    return Config(
        instances=instances,
        calendars=calendars,
        policies=policies,
        redis_url=redis_url,
        data_dir=resolved.get("data_dir", DEFAULT_DATA_DIR),
        api_token=env.get(token_env) or None,
        max_body_bytes=receiver.get("max_body_bytes", DEFAULT_MAX_BODY_BYTES),
        source=source,
        api_token_env=token_env,
        public_url=(receiver.get("public_url") or "").rstrip("/") or None,
        contracts=_build_contracts(resolved.get("contracts") or [], policies, calendars, instances, source),
        notify_channels=channels,
        sla_digest=sla_digest(resolved),
    )


def sla_digest(data: Mapping[str, Any]) -> str:
    """A digest of the parts of a configuration that decide clocks and effects (`policies`, `calendars`,
    the `message` templates of `notify_channels`), in a canonical form: equal for files that differ only
    elsewhere (instances, secrets, comments, key order)."""
    channels = data.get("notify_channels") or {}
    templates = {name: (cfg or {}).get("message") for name, cfg in channels.items()}
    parts = {"policies": data.get("policies"), "calendars": data.get("calendars"), "templates": templates}
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _build_channels(cfg: Any, source: str) -> dict[str, Any]:
    from connector.notices.channels import parse_channels

    try:
        return parse_channels(cfg)
    except ValueError as exc:  # names the path itself ("notify_channels.<name>...")
        raise ConfigError(source, "", str(exc)) from None


def _build_calendars(cfg: Mapping[str, Any], source: str) -> dict[str, BusinessCalendar]:
    if not cfg:
        return {}
    from sla.calendar import BusinessCalendar

    out = {}
    for name, cal in cfg.items():
        try:
            out[name] = BusinessCalendar.from_config(cal, name=name)
        except ValueError as exc:
            raise ConfigError(source, f"calendars.{name}", str(exc)) from None
    return out


def _build_policies(
    cfg: list, calendars: Mapping[str, BusinessCalendar], source: str, notice_templates: Mapping[str, str]
) -> PolicySet:
    from sla.policy import load_policies

    try:
        return load_policies(cfg, calendars, notice_templates)
    except ValueError as exc:
        # The policy loader names the path itself ("policies[0].metrics...").
        message = str(exc)
        path = "" if message.startswith("policies") else "policies"
        raise ConfigError(source, path, message) from None


def _build_contracts(
    cfg: list,
    policies: PolicySet,
    calendars: Mapping[str, BusinessCalendar],
    instances: Mapping[str, InstanceConfig],
    source: str,
) -> tuple[Contract, ...]:
    if not cfg:
        return ()
    from sla.contracts import load_contracts

    priorities = {p for pol in policies.policies for m in pol.metrics.values() for p in m.targets}
    try:
        return load_contracts(cfg, priorities, calendars, instances, {p.id for p in policies.policies})
    except ValueError as exc:  # the contracts loader names the path itself ("contracts[0].credits[1]...")
        message = str(exc)
        raise ConfigError(source, "" if message.startswith("contracts") else "contracts", message) from None


def _build_instance(
    name: str, settings: Mapping[str, Any], env: Mapping[str, str], source: str
) -> InstanceConfig:
    where = f"instances.{name}"
    product = settings["product"]
    try:
        module = adapters_base.load(product)
    except ValueError as exc:
        known = ", ".join(known_products()) or "none"
        raise ConfigError(source, f"{where}.product", f"{exc} (known: {known})") from None
    own = {k: v for k, v in settings.items() if k not in CONNECTOR_INSTANCE_KEYS}
    error = _first_error(_adapter_validator(module), own, ("instances", name))
    if error:
        raise ConfigError(source, *error)
    try:
        adapter = module.create(name, own, env)
    except ValueError as exc:
        message = str(exc)  # adapters may name the full path themselves
        raise ConfigError(source, "" if message.startswith(where) else where, message) from None
    try:
        every = reconcile_interval(settings.get("reconcile_every", "15m"))
    except ValueError as exc:
        raise ConfigError(source, f"{where}.reconcile_every", str(exc)) from None
    return InstanceConfig(
        name=name,
        product=product,
        dry_run=bool(settings.get("dry_run", False)),
        settings=settings,
        adapter=adapter,
        reconcile_every_s=every,
    )


def reconcile_interval(value: Any) -> int:
    """Seconds between reconciliations from `reconcile_every`: a duration (15m, 1h), or 0/off (never)."""
    if value is False or value == 0 or (isinstance(value, str) and value.strip().lower() in ("0", "off")):
        return 0
    if not isinstance(value, str):
        raise ValueError(f"{value!r}: expected a duration like 15m or 1h, or off (0) to disable it")
    from sla.durations import parse_duration

    try:
        seconds = int(parse_duration(value, "-").total_seconds())
    except ValueError as exc:
        raise ValueError(str(exc).removeprefix("-: ")) from None
    if seconds < MIN_RECONCILE_EVERY_S:
        raise ValueError(f"{value!r} is shorter than 1m, the reconcile tick (write 1m or more, or off)")
    return seconds


def _adapter_validator(module: Any) -> Any:
    cached = _ADAPTER_VALIDATORS.get(module.__name__)
    if cached is None or cached[0] is not module.CONFIG_SCHEMA:
        schema = module.CONFIG_SCHEMA
        cached = (schema, jsonschema.validators.validator_for(schema)(schema))
        _ADAPTER_VALIDATORS[module.__name__] = cached
    return cached[1]


_ADAPTER_VALIDATORS: dict[str, tuple[Any, Any]] = {}


def known_products() -> list[str]:
    """Adapter packages present under adapters/ (for error messages)."""
    import adapters

    names = []
    for entry in resources.files(adapters).iterdir():
        if entry.is_dir() and entry.name.isidentifier() and not entry.name.startswith("_"):
            if entry.joinpath("__init__.py").is_file():
                names.append(entry.name)
    return sorted(names)
