"""Config helpers every adapter shares: secrets from the environment, JSON Schema checks that name paths.

A product's `config.py` keeps only what is its own (defaults, mappings, the settings dataclass);
how a secret is looked up, how an Authorization header is built and how a schema error is worded
are the same for every helpdesk, so they live here once.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jsonschema import Draft202012Validator, ValidationError


class Secret:
    """A credential: usable via `.value`, never shown by str/repr."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    @property
    def value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


def env_value(env: Mapping[str, str], name: str, where: str) -> str:
    """The value of environment variable `name`; ValueError naming `where` and the variable, never a value."""
    value = env.get(name)
    if value is None:
        raise ValueError(f"{where}: environment variable {name} is not set")
    if not value.strip():
        raise ValueError(f"{where}: environment variable {name} is empty")
    return value


def authorization(
    auth: Mapping[str, str],
    env: Mapping[str, str],
    where: str,
    basic_user: Callable[[str], str] = lambda email: email,
) -> Secret:
    """The Authorization header of an `auth` block: {bearer_env} or {email_env, token_env} (Basic).

    `basic_user` turns the email into the Basic user name (Zendesk's API tokens use `<email>/token`).
    """
    if "bearer_env" in auth:
        return Secret("Bearer " + env_value(env, auth["bearer_env"], f"{where}.auth.bearer_env"))
    email = env_value(env, auth["email_env"], f"{where}.auth.email_env")
    token = env_value(env, auth["token_env"], f"{where}.auth.token_env")
    raw = f"{basic_user(email)}:{token}".encode()
    return Secret("Basic " + base64.b64encode(raw).decode("ascii"))


def time_zone(name: str, where: str) -> ZoneInfo:
    """The IANA zone `name`; ValueError naming `where` for an unknown one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{where}: unknown time zone {name!r}") from exc


def webhook_url(url: str, where: str) -> str:
    """The connector's receiver URL as given to `install`: http(s) with a host, else ValueError."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"{where}: webhook url must be http(s), got {url!r}")
    return url


def load_schema(path: Path) -> tuple[dict[str, Any], Draft202012Validator]:
    """A JSON Schema file and its compiled validator (compiled once: a fresh one per call is slow)."""
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema, Draft202012Validator(schema)


def json_path(error: ValidationError) -> str:
    """`.auth.token_env`, `.items[2]`: where in the instance block the error is ("" for the block)."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)


def check_config(
    validator: Draft202012Validator,
    config: Mapping[str, Any],
    where: str,
    alternatives: Mapping[str, str] | None = None,
) -> None:
    """Raise ValueError `<where><path>: <message>` for the most precise (deepest) schema error.

    An anyOf/oneOf error's own message dumps the whole value (secret names, a whole config block),
    so for objects it is replaced by `alternatives[path]`, a sentence that names the allowed forms.
    """
    errors = sorted(validator.iter_errors(dict(config)), key=lambda e: [str(p) for p in e.absolute_path])
    if not errors:
        return
    error = max(errors, key=lambda e: len(e.absolute_path))
    path, message = json_path(error), error.message
    if error.validator in ("anyOf", "oneOf"):
        if alternatives and path in alternatives:
            message = alternatives[path]
        elif isinstance(error.instance, Mapping | list):
            message = "matches none of the allowed forms"
    raise ValueError(f"{where}{path}: {message}")
