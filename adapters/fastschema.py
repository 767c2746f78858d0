"""The receiver's fast yes/no schema check: fastjsonschema, on keywords where it answers as jsonschema.

jsonschema spends ~4 us per subschema it descends into, ~150 us for a Jira issue event: a third of the
receiver's CPU. fastjsonschema compiles a schema to Python source once and answers in a few
microseconds. The adapters ask it first; only when it says no does jsonschema run, and jsonschema alone
decides and words every rejection (message and path). So the combination accepts exactly what
jsonschema accepts as long as fastjsonschema never says yes where jsonschema says no; the other way
round only costs time.

fastjsonschema implements drafts 4-2019 and reads our 2020-12 schemas with its 2019 rules. The two
agree on the keywords in `_ASSERTIONS` as our schemas use them (tests/adapters/test_fastschema.py
checks each, and agreement on mutated real payloads). Known difference, in the harmless direction: in
`pattern` it reads `$` as end of string, while jsonschema (Python's re) also matches before one final
newline, so "7\\n" fails fastjsonschema's "^[0-9]+$" and is then accepted by jsonschema.
`compile_schema` refuses anything else with ValueError naming the keyword, where it is and the file, so
a schema that grows a keyword fails at import instead of being checked partly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import fastjsonschema

Check = Callable[[Any], bool]

_ANNOTATIONS = frozenset({"$schema", "$id", "$comment", "$defs", "title", "description", "examples",
                          "deprecated", "readOnly", "writeOnly"})
_ASSERTIONS = frozenset({"type", "properties", "required", "additionalProperties", "items", "pattern",
                         "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum",
                         "exclusiveMaximum", "enum", "const", "anyOf", "allOf", "oneOf", "not", "if",
                         "then", "else", "$ref"})
_TYPES = frozenset({"object", "array", "string", "null", "boolean", "integer", "number"})
_SCALARS = (str, int, float, bool, type(None))


def _check_subset(schema: Any, where: str, source: str) -> None:
    """Raise ValueError for any keyword or form outside what fastjsonschema and jsonschema agree on."""

    def fail(why: str, at: str) -> ValueError:
        return ValueError(f"{source}: {why} at {at or '#'} (not supported by adapters.fastschema)")

    if isinstance(schema, bool):
        return
    if not isinstance(schema, Mapping):
        raise fail(f"schema {schema!r}", where)
    for key, value in schema.items():
        at = f"{where}/{key}"
        if key not in _ANNOTATIONS and key not in _ASSERTIONS:
            raise fail(f"keyword {key!r}", at)  # e.g. "default": fastjsonschema would write it into payloads
        if key == "$id" and where:
            raise fail("$id in a subschema", at)
        if key == "$ref":
            if not isinstance(value, str) or not value.startswith("#/$defs/") or "/" in value[8:]:
                raise fail(f"$ref {value!r} (only #/$defs/<name>)", at)  # never a remote fetch
            if set(schema) & (_ASSERTIONS - {"$ref"}):
                raise fail("$ref beside other keywords (2019+ applies them, fastjsonschema ignores them)", at)
        if key == "type":
            names = [value] if isinstance(value, str) else value
            if not isinstance(names, list) or not names or not set(names) <= _TYPES:
                raise fail(f"type {value!r}", at)
        if key in ("enum", "const"):
            members = value if key == "enum" else [value]
            if not isinstance(members, list) or not all(isinstance(m, _SCALARS) for m in members):
                raise fail(f"{key} with non-scalar members", at)  # container equality differs in detail
        if key in ("minimum", "maximum") and f"exclusive{key.title()}" in schema:
            raise fail(f"{key} beside exclusive{key.title()} (fastjsonschema mixes them as draft 4)", at)
        if key in ("properties", "$defs"):
            for name, sub in value.items():
                _check_subset(sub, f"{at}/{name}", source)
        elif key in ("items", "not", "if", "then", "else", "additionalProperties"):
            if key == "items" and isinstance(value, list):
                raise fail("items as a list (prefixItems in 2020-12)", at)
            _check_subset(value, at, source)
        elif key in ("anyOf", "allOf", "oneOf"):
            if not isinstance(value, list) or not value:
                raise fail(f"expected a non-empty list of schemas, got {value!r}", at)
            for i, sub in enumerate(value):
                _check_subset(sub, f"{at}/{i}", source)


def _defined_refs(schema: Mapping[str, Any], source: str) -> None:
    defs = schema.get("$defs", {})

    def walk(node: Any, where: str) -> None:
        if isinstance(node, Mapping):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref[8:] not in defs:
                raise ValueError(f"{source}: $ref {ref!r} names no definition at {where or '#'}"
                                 " (not supported by adapters.fastschema)")
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}/{i}")

    walk(schema, "")


def compile_schema(schema: Mapping[str, Any] | bool, source: str = "<schema>") -> Check:
    """A predicate equal to `Draft202012Validator(schema).is_valid` on JSON values, except that it may
    say no to a string ending in a newline that a `$` pattern lets jsonschema accept (see above).
    Raises ValueError naming the keyword and `source` (e.g. the schema file) for anything outside the
    subset, or when fastjsonschema cannot compile the schema."""
    _check_subset(schema, "", source)
    if isinstance(schema, Mapping):
        _defined_refs(schema, source)
    try:
        # No defaults written into payloads, no format checks (2020-12 formats are annotations).
        # detailed_exceptions stays on: off, fastjsonschema 2.22 fails to compile `const`.
        validate = fastjsonschema.compile(schema, use_default=False, use_formats=False)
    except (fastjsonschema.JsonSchemaDefinitionException, ValueError) as exc:
        raise ValueError(f"{source}: fastjsonschema cannot compile it: {exc}") from exc
    invalid = fastjsonschema.JsonSchemaValueException

    def is_valid(value: Any) -> bool:
        try:
            validate(value)
        except invalid:
            return False
        return True

    return is_valid
