"""The report dict's shape: checked once before any rendering, and its keys in a stable order.

The shape is connector/reports/report.schema.json; its `properties` order is the order of the keys
in the JSON output, so a diff of two reports lines up.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match

# Patterns of the schema in words: a regular expression is no help in a message.
_PATTERN_FORMS = {
    "^[0-9]{4}-[0-9]{2}-[0-9]{2}": "an ISO 8601 date or date-time, e.g. 2026-10-01T00:00:00+02:00",
    "^[0-9]{4}-[0-9]{2}-[0-9]{2}$": "a date YYYY-MM-DD, e.g. 2026-10-05",
    "^[0-9]{4}-[0-9]{2}$": "a month YYYY-MM, e.g. 2026-10",
}


@cache
def schema() -> Mapping[str, Any]:
    text = resources.files("connector.reports").joinpath("report.schema.json").read_text(encoding="utf-8")
    loaded = json.loads(text)
    jsonschema.validators.validator_for(loaded).check_schema(loaded)
    return loaded


@cache
def _validator() -> jsonschema.protocols.Validator:
    return jsonschema.validators.validator_for(schema())(schema())


def _path(parts: Iterable[Any]) -> str:
    out = "report"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def check(report: Any) -> None:
    """Raise ValueError naming the first part of `report` that is not the documented shape."""
    error = best_match(_validator().iter_errors(report))
    if error is not None:
        where = _path(error.absolute_path)
        if error.validator == "pattern":
            form = _PATTERN_FORMS.get(str(error.validator_value), "see report.schema.json")
            raise ValueError(f"{where}: {error.instance!r} is not {form}")
        if error.validator == "additionalProperties":
            allowed = list(error.schema.get("properties") or {})
            found = [k for k in error.instance if k not in allowed]
            names = ", ".join(repr(str(k)) for k in found)
            raise ValueError(f"{where}: unknown key(s) {names}; expected {', '.join(allowed)}")
        raise ValueError(f"{where}: {error.message}")
    _check_values(report)


def _check_values(report: Mapping[str, Any]) -> None:
    """What a schema cannot say: real calendar dates, and histogram buckets in increasing order."""
    for i, row in enumerate(report["weekly"]):
        _parse(date.fromisoformat, row["week_start"], f"report.weekly[{i}].week_start", "date")
    for section in ("credits", "credit_totals", "uptime"):
        for i, row in enumerate(report[section]):
            _parse(
                lambda m: date.fromisoformat(m + "-01"), row["month"], f"report.{section}[{i}].month", "month"
            )
    for i, row in enumerate(report["distributions"]):
        bounds = [b["upto_s"] for b in row["buckets"]]
        for j in range(1, len(bounds)):
            if bounds[j] <= bounds[j - 1]:
                raise ValueError(
                    f"report.distributions[{i}].buckets[{j}].upto_s: {bounds[j]} is not above the previous "
                    f"bucket's {bounds[j - 1]}; buckets go in increasing order of upto_s"
                )


def _parse(parse: Any, text: str, where: str, what: str) -> None:
    try:
        parse(text)
    except ValueError:
        raise ValueError(f"{where}: {text!r} is not a real calendar {what}") from None


def ordered(report: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a checked report with every object's keys in the schema's order."""
    return _ordered(report, schema(), schema())


def _ordered(value: Any, node: Mapping[str, Any], root: Mapping[str, Any]) -> Any:
    if "$ref" in node:  # only local references: "#/$defs/<name>"
        node = root["$defs"][node["$ref"].rsplit("/", 1)[1]]
    if isinstance(value, Mapping):
        props = node.get("properties")
        if props is None:  # a free mapping (breaches_by_level): keep the producer's order
            return {str(k): v for k, v in value.items()}
        return {k: _ordered(value[k], props[k], root) for k in props}
    if isinstance(value, list | tuple):
        return [_ordered(v, node.get("items", {}), root) for v in value]
    return value
