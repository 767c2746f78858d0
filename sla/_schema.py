"""What the policy and contract loaders share in checking a configuration section against its schema.

Both turn YAML's values back into JSON's, report the error jsonschema finds most relevant and name
where it is with the configuration path (`policies[0].metrics.resolution`), in the same wording for
unknown keys and for values that do not match a pattern. Each loader adds only its special cases.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from importlib import resources
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError, best_match

# The usual id pattern of the schemas, in words (no regular expression in messages).
ID_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_.-]*$"
ID_FORM = "letters, digits, '_', '.' or '-', starting with a letter or digit"


def load_validator(name: str) -> jsonschema.protocols.Validator:
    """The validator of `sla/schemas/<name>` (checked itself first); callers cache it."""
    text = resources.files("sla").joinpath(f"schemas/{name}").read_text(encoding="utf-8")
    schema = json.loads(text)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def config_path(root: str, parts: Iterable[Any]) -> str:
    """`root` and a jsonschema path as the configuration is written: `policies[0].metrics`."""
    return root + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def plain(value: Any) -> Any:
    """YAML reads `2026-01-01` as a date and `{1: 4h}` with an int key; the schema speaks JSON, so
    turn them back into text."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def check_structure(
    validator: jsonschema.protocols.Validator,
    cfg: Any,
    root: str,
    pattern_form: Callable[[str], str],
    special: Callable[[ValidationError], str | None] = lambda _: None,
) -> None:
    """Raise ValueError `<path>: <what is wrong>` for the most relevant schema error, if any.

    `pattern_form` puts a schema pattern in words; `special` gives a loader's own wording for an
    error (None: the common wording)."""
    error = best_match(validator.iter_errors(cfg))
    if error is None:
        return
    text = special(error) or _common_wording(error, pattern_form)
    raise ValueError(f"{config_path(root, error.absolute_path)}: {text}")


def _common_wording(error: ValidationError, pattern_form: Callable[[str], str]) -> str:
    if error.validator == "pattern":
        form = pattern_form(str(error.validator_value))
        return f"{error.instance!r} does not match the expected form: {form}"
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        allowed = list((error.schema or {}).get("properties") or {})
        found = [k for k in error.instance if k not in allowed]
        if found:  # the same wording as the configuration's (connector/config/loader.py)
            names = ", ".join(repr(str(k)) for k in found)
            return f"unknown key(s) {names}; expected {', '.join(allowed) or 'no keys'}"
    return error.message
