"""adapters.fastschema (fastjsonschema on a checked keyword subset) answers as jsonschema does: on our
schemas, and on real payloads bent out of shape. The one allowed difference: a `$` pattern and a string
ending in a newline, where fastjsonschema says no and jsonschema (which then decides) says yes."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.fastschema import compile_schema

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = {
    "jira/envelope": ("adapters/jira/schemas/envelope.schema.json", "adapters/jira/tests/fixtures/*.json"),
    "jira/issue": ("adapters/jira/schemas/issue_event.schema.json",
                   "adapters/jira/tests/fixtures/*issue*.json"),
    "jira/comment": ("adapters/jira/schemas/comment_event.schema.json",
                     "adapters/jira/tests/fixtures/*comment*.json"),
    "zendesk/event": ("adapters/zendesk/schemas/event.schema.json",
                      "adapters/zendesk/tests/fixtures/event_*.json"),
    "zendesk/trigger": ("adapters/zendesk/schemas/trigger.schema.json",
                        "adapters/zendesk/tests/fixtures/trigger_*.json"),
}


def _load(name: str) -> tuple[dict[str, Any], list[Any]]:
    schema_path, fixtures = SCHEMAS[name]
    schema = json.loads((ROOT / schema_path).read_text())
    payloads = [json.loads(p.read_text()) for p in sorted(ROOT.glob(fixtures))]
    assert payloads, f"no fixtures match {fixtures}"
    return schema, payloads


# Values that sit on the edges of our schemas' keywords: types jsonschema treats specially (bool is not
# an integer, 1.0 is), empty and digit strings for patterns/minLength, negatives for minimum.
EDGE = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([1.0, 2.5, -1.0, 0.0]),
    st.sampled_from(["", "-", "7", "0012", "abc", "2026-11-27T10:00:00Z", "zen:ticket:5",
                     "zen:event-type:ticket.x",
                     "zen:event-type:ticket.comment_added", "zen:event-type:ticket.tags_changed",
                     "zen:event-type:ticket.status_changed", "jira:issue_created", "comment_created", "true",
                     "https://x/rest/api/2/issue/7/comment/9", "zendesk-trigger-v1"]),
    st.text(max_size=4), st.sampled_from(["7\n", "zen:ticket:5\n", "2026-11-27T10:00:00Z\n"]),
    st.sampled_from([float("nan"), float("inf"), -0.0, 10**20]),
)
JSON = st.recursive(EDGE, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.sampled_from(["id", "name", "key", "accountId", "self", "status", "tags", "items", "field"]), inner,
    max_size=3), max_leaves=6)


def _ends_in_newline(value: Any) -> bool:
    if isinstance(value, str):
        return value.endswith("\n")
    if isinstance(value, dict):
        return any(_ends_in_newline(k) or _ends_in_newline(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_ends_in_newline(v) for v in value)
    return False


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def bent(draw: st.DrawFn, payloads: list[Any]) -> Any:
    """A real payload with a few values replaced or keys removed anywhere in it."""
    value = copy.deepcopy(draw(st.sampled_from(payloads)))
    for _ in range(draw(st.integers(0, 3))):
        paths = _paths(value)
        path = draw(st.sampled_from(paths))
        if not path:
            continue
        parent = value
        for step in path[:-1]:
            parent = parent[step]
        if isinstance(parent, dict) and draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(JSON)
    return value


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_fixtures_are_valid_to_both(name: str) -> None:
    schema, payloads = _load(name)
    fast, slow = compile_schema(schema), jsonschema.Draft202012Validator(schema)
    for payload in payloads:
        if name.startswith("jira/") and name != "jira/envelope" and not slow.is_valid(payload):
            continue  # the glob also matches events of the other Jira schema
        assert fast(payload) is True and slow.is_valid(payload)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_same_answer_as_jsonschema_on_bent_payloads(name: str, data: st.DataObject) -> None:
    schema, payloads = _load(name)
    value = data.draw(bent(payloads))
    fast, slow = compile_schema(schema)(value), jsonschema.Draft202012Validator(schema).is_valid(value)
    assert not (fast and not slow), value  # never accepts what jsonschema rejects: that would be unsafe
    if not _ends_in_newline(value):
        assert fast == slow, value


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_schemas_ids_are_absolute_so_fastjsonschema_resolves_refs(name: str) -> None:
    schema, _ = _load(name)
    assert schema["$id"].startswith("https://sla-connector.invalid/schemas/"), schema["$id"]
    compile_schema(schema, name)  # relative $ids made it fail: "unknown url type"


def test_trailing_newline_is_the_known_difference_and_jsonschema_decides() -> None:
    schema = {"type": "string", "pattern": "^[0-9]+$"}
    assert jsonschema.Draft202012Validator(schema).is_valid("7\n")  # Python's $ matches before a final \n
    assert compile_schema(schema)("7\n") is False  # fastjsonschema reads $ as the end: only slower


def test_payloads_are_not_changed_by_the_check() -> None:
    schema, payloads = _load("jira/issue")
    before = copy.deepcopy(payloads)
    check = compile_schema(schema)
    for payload in payloads:
        check(payload)
    assert payloads == before


@pytest.mark.parametrize(
    ("schema", "value", "valid"),
    [
        ({"type": "integer"}, 1.0, True),  # jsonschema: an integral float is an integer
        ({"type": "integer"}, True, False),  # ... a bool is not
        ({"type": "number"}, False, False),
        ({"type": ["string", "null"]}, None, True),
        ({"enum": ["1"]}, 1, False),
        ({"const": "a"}, "a", True),
        ({"oneOf": [{"type": "integer"}, {"minimum": 0}]}, 3, False),  # both match: not exactly one
        ({"oneOf": [{"type": "integer"}, {"minimum": 0}]}, "x", True),  # minimum ignores strings: one matches
        ({"oneOf": [{"type": "integer"}, {"type": "string"}]}, "x", True),
        ({"anyOf": [{"required": ["a"]}, {"required": ["b"]}]}, {"b": 1}, True),
        ({"anyOf": [{"required": ["a"]}, {"required": ["b"]}]}, {"a": 1, "b": 1}, True),  # not oneOf
        ({"required": ["a"]}, [], True),  # required applies to objects only
        ({"pattern": "b"}, "abc", True),  # unanchored, as re.search
        ({"minLength": 2}, "ab", True),
        ({"maxLength": 1}, "ab", False),
        ({"if": {"required": ["a"]}, "then": {"required": ["b"]}}, {"a": 1}, False),
        ({"if": {"required": ["a"]}, "then": {"required": ["b"]}}, {"c": 1}, True),
        ({"if": {"required": ["a"]}, "else": {"required": ["b"]}}, {"c": 1}, False),
        ({"then": {"required": ["b"]}}, {}, True),  # then without if: ignored
        ({"not": {"type": "null"}}, None, False),
        ({"not": {"minimum": 0}}, float("nan"), False),  # NaN < 0 is false: jsonschema accepts it
        ({"maximum": 0}, float("nan"), True),
        ({"items": {"type": "string"}}, ["a", 1], False),
        ({"enum": [1, None, True]}, 1.0, True),  # numbers compare by value ...
        ({"enum": [1, None]}, True, False),  # ... but a bool is not 1
        ({"enum": [True]}, 1, False),
        ({"const": None}, None, True),
        ({"minimum": 1}, True, True),  # minimum/maximum ignore bools (not numbers)
        ({"minimum": 0}, -1, False),
        ({"minimum": 0}, 0, True),
        ({"exclusiveMinimum": 0}, 0, False),
        ({"exclusiveMinimum": 0}, 0.5, True),
        ({"exclusiveMinimum": 0}, False, True),
        ({"exclusiveMaximum": 1}, 1.0, False),
        ({"type": "object", "properties": {"a": {}}, "additionalProperties": False}, {"a": 1, "b": 2}, False),
        ({"type": "object", "properties": {"a": {}}, "additionalProperties": False}, {"a": 1}, True),
        ({"additionalProperties": {"type": "string"}}, {"x": "1", "y": 2}, False),
        ({"additionalProperties": False}, [1], True),  # applies to objects only
        ({"type": "integer"}, 10**20, True),
        ({"minLength": 1}, "\U0001F600", True),  # code points, not UTF-16 units
        ({"maxLength": 1}, "\U0001F600", True),
        ({"pattern": "^[0-9]+$"}, 7, True),  # pattern applies to strings only
        ({"pattern": "^[0-9]+$"}, "7a", False),
        ({"items": {"type": "string"}}, {"0": 1}, True),  # items applies to arrays only
        ({"properties": {"a": {"type": "string"}}}, {"a": None}, False),
        ({"$defs": {"n": {"type": ["array", "null"], "items": {"$ref": "#/$defs/n"}}}, "$ref": "#/$defs/n"},
         [[None, []], [[1]]], False),
        ({"$defs": {"n": {"type": ["array", "null"], "items": {"$ref": "#/$defs/n"}}}, "$ref": "#/$defs/n"},
         [[None, []], [[]]], True),
        (True, {"any": "thing"}, True),
        ({"properties": {"a": False}}, {"a": 1}, False),
    ],
)
def test_keyword_semantics_match_jsonschema(schema: Any, value: Any, valid: bool) -> None:
    assert jsonschema.Draft202012Validator(schema).is_valid(value) is valid  # the reference itself
    assert compile_schema(schema)(value) is valid


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"properties": {"a": {"uniqueItems": True}}}, "keyword 'uniqueItems' at /properties/a/uniqueItems"),
        ({"properties": {"a": {"default": 1}}}, "keyword 'default' at /properties/a/default"),
        ({"prefixItems": [{}]}, "keyword 'prefixItems'"),
        ({"$defs": {"a": {}}, "$ref": "#/$defs/a", "type": "object"}, "$ref beside other keywords"),
        ({"items": [{}]}, "items as a list"),
        ({"minimum": 1, "exclusiveMinimum": 0}, "minimum beside exclusiveMinimum"),
        ({"$ref": "https://example.com/s.json"}, "only #/$defs/<name>"),
        ({"$ref": "other.json#/x"}, "$ref 'other.json#/x'"),
        ({"$ref": "#/$defs/missing"}, "names no definition"),
        ({"enum": [[1], "a"]}, "enum with non-scalar members"),
        ({"const": {"a": 1}}, "const with non-scalar members"),
        ({"type": "float"}, "type 'float'"),
        ({"anyOf": []}, "non-empty list of schemas"),
        ({"items": {"$id": "x"}}, "$id in a subschema"),
    ],
)
def test_unsupported_schemas_are_refused_with_the_keyword_and_file(schema: Any, message: str) -> None:
    with pytest.raises(ValueError, match="^my/file.json: .*not supported") as info:
        compile_schema(schema, "my/file.json")
    assert message in str(info.value)


def test_a_schema_fastjsonschema_cannot_compile_names_the_file() -> None:
    with pytest.raises(ValueError, match="^my/file.json: fastjsonschema cannot compile it: .*minLength"):
        compile_schema({"minLength": "two"}, "my/file.json")
