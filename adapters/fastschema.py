"""A compiled yes/no check for the JSON Schema subset our webhook schemas use (the receiver's fast path).

jsonschema spends ~4 us per subschema it descends into (it builds a validator object for each), about
150 us for a Jira issue event: a third of the receiver's CPU. `compile_schema` turns a schema into
plain closures that answer the same question as `Draft202012Validator(schema).is_valid(value)` for
values from `json.loads`, in a few microseconds. It only says yes or no: the adapters still ask
jsonschema for the error (message and path) when the answer is no, so a rejected payload is reported
exactly as before, and only a payload this check accepts skips jsonschema.

Only the keywords below are understood; any other keyword raises ValueError naming it and where it
is, so a schema that grows a new keyword fails at import instead of being checked partly.
tests/adapters/test_fastschema.py checks agreement with jsonschema on mutated real payloads.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Callable, Mapping
from typing import Any

Check = Callable[[Any], bool]

# Keywords that never affect validity (annotations, and $defs, which are reached through $ref).
_IGNORED = frozenset({"$schema", "$id", "$comment", "$defs", "title", "description", "default", "examples",
                      "deprecated", "readOnly", "writeOnly"})


def _is_integer(value: Any) -> bool:
    # As jsonschema's draft 6+ type checker: bools are not integers, 1.0 is one.
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, bool)


_TYPES: dict[str, Check] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "integer": _is_integer,
    "number": _is_number,
}


def _always(value: Any) -> bool:
    return True


def _never(value: Any) -> bool:
    return False


class _Compiler:
    def __init__(self, root: Mapping[str, Any], source: str) -> None:
        self.root = root
        self.source = source
        self.refs: dict[str, Check] = {}

    def fail(self, where: str, why: str) -> ValueError:
        return ValueError(f"{self.source}: {why} at {where or '#'} (not supported by adapters.fastschema)")

    def ref(self, target: Any, where: str) -> Check:
        if not isinstance(target, str) or not target.startswith("#/$defs/") or "/" in target[8:]:
            raise self.fail(where, f"$ref {target!r} (only #/$defs/<name>)")
        if target not in self.refs:
            defs = self.root.get("$defs")
            name = target[8:]
            if not isinstance(defs, Mapping) or name not in defs:
                raise self.fail(where, f"$ref {target!r} names no definition")
            cell: list[Check] = []
            self.refs[target] = lambda v: cell[0](v)  # late bound: definitions may refer to themselves
            cell.append(self.compile(defs[name], f"#/$defs/{name}"))
        return self.refs[target]

    def compile(self, schema: Any, where: str) -> Check:
        if schema is True:
            return _always
        if schema is False:
            return _never
        if not isinstance(schema, Mapping):
            raise self.fail(where, f"schema {schema!r}")
        if "$id" in schema and where:
            raise self.fail(where, "$id in a subschema")
        checks = [self.keyword(key, value, schema, f"{where}/{key}") for key, value in schema.items()
                  if key not in _IGNORED and key not in ("then", "else")]
        checks = [c for c in checks if c is not _always]
        if not checks:
            return _always
        if len(checks) == 1:
            return checks[0]
        return _every(checks)

    def subs(self, value: Any, where: str) -> list[Check]:
        if not isinstance(value, list) or not value:
            raise self.fail(where, f"expected a non-empty list of schemas, got {value!r}")
        return [self.compile(s, f"{where}/{i}") for i, s in enumerate(value)]

    def keyword(self, key: str, value: Any, schema: Mapping[str, Any], where: str) -> Check:
        if key == "type":
            names = [value] if isinstance(value, str) else value
            if not isinstance(names, list) or not names or any(n not in _TYPES for n in names):
                raise self.fail(where, f"type {value!r}")
            preds = [_TYPES[n] for n in names]
            return preds[0] if len(preds) == 1 else lambda v: any(p(v) for p in preds)
        if key in ("enum", "const"):
            members = value if key == "enum" else [value]
            if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
                raise self.fail(where, f"{key} with non-string members")  # jsonschema's equality is subtle
            allowed = frozenset(members)
            return lambda v: isinstance(v, str) and v in allowed
        if key == "required":
            names = tuple(value)

            def required(v: Any) -> bool:
                if isinstance(v, dict):
                    for name in names:
                        if name not in v:
                            return False
                return True

            return required
        if key == "properties":
            props = [(name, self.compile(sub, f"{where}/{name}")) for name, sub in value.items()]

            def properties(v: Any) -> bool:
                if not isinstance(v, dict):
                    return True
                for name, check in props:
                    if name in v and not check(v[name]):
                        return False
                return True

            return properties
        if key == "items":
            item = self.compile(value, where)
            return lambda v: not isinstance(v, list) or all(item(i) for i in v)
        if key in ("minLength", "maxLength"):
            n = _count(value, where, self)
            if key == "minLength":
                return lambda v: not isinstance(v, str) or len(v) >= n
            return lambda v: not isinstance(v, str) or len(v) <= n
        if key in ("minimum", "maximum"):
            if not _is_number(value):
                raise self.fail(where, f"{key} {value!r}")
            # Written as jsonschema's own failing test negated, so that NaN answers as it does.
            if key == "minimum":
                return lambda v: not _is_number(v) or not v < value
            return lambda v: not _is_number(v) or not v > value
        if key == "pattern":
            search = re.compile(value).search  # jsonschema uses re.search too: unanchored unless ^/$
            return lambda v: not isinstance(v, str) or search(v) is not None
        if key == "$ref":
            return self.ref(value, where)
        if key == "anyOf":
            options = self.subs(value, where)
            return lambda v: any(o(v) for o in options)
        if key == "allOf":
            return _every(self.subs(value, where))
        if key == "oneOf":
            options = self.subs(value, where)
            return lambda v: sum(1 for o in options if o(v)) == 1
        if key == "not":
            inner = self.compile(value, where)
            return lambda v: not inner(v)
        if key == "if":
            base = where.rsplit("/", 1)[0]
            cond = self.compile(value, where)
            then = self.compile(schema.get("then", True), f"{base}/then")
            other = self.compile(schema.get("else", True), f"{base}/else")
            return lambda v: then(v) if cond(v) else other(v)
        raise self.fail(where, f"keyword {key!r}")


def _count(value: Any, where: str, compiler: _Compiler) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise compiler.fail(where, f"length {value!r}")
    return value


def _every(checks: list[Check]) -> Check:
    def every(v: Any) -> bool:
        for check in checks:  # a plain loop: cheaper than all() over a generator
            if not check(v):
                return False
        return True

    return every


def compile_schema(schema: Mapping[str, Any], source: str = "<schema>") -> Check:
    """A predicate equal to `Draft202012Validator(schema).is_valid` on JSON values. Raises ValueError
    naming the keyword (and `source`, e.g. the schema file) for anything outside the subset."""
    return _Compiler(schema, source).compile(schema, "")
