from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from sla.calendar import BusinessCalendar
from sla.events import Status
from sla.policy import Action, PolicySet, load_policies

CALENDARS = {
    "berlin": BusinessCalendar.from_config(
        {"timezone": "Europe/Berlin", "hours": {"mon-fri": ["09:00-17:00"]}, "holidays": {"country": "DE"}},
        name="berlin",
    ),
    "always": BusinessCalendar.from_config({"timezone": "UTC", "hours": "24x7"}, name="always"),
}

EXAMPLE = yaml.safe_load(
    """
- id: standard
  version: 2
  effective_from: 2026-10-01T00:00:00Z
  recalculate: false
  match: {instance: [acme-jira], project: [SUP], priority: [urgent, high],
          tags_any: [vip], tags_none: [internal]}
  pause_statuses: [pending, on_hold]
  metrics:
    first_response: {calendar: berlin, targets: {urgent: 30m, high: 1h, normal: 4h, low: 8h}}
    next_reply:     {calendar: berlin, targets: {urgent: 1h, high: 2h, normal: 8h}}
    resolution:     {calendar: berlin, targets: {urgent: 4h, high: 16h, normal: 40h, low: 80h}}
  escalations:
    - {name: warning, metric: resolution, at: "75%",
       actions: [{tag: sla-warning}, {comment: "Resolution of {ticket} due {deadline} ({remaining} left)"}]}
    - {name: last-hour, metric: first_response, before: 1h, actions: [{tag: sla-due-soon}]}
    - {name: breach, metric: resolution, at: breach,
       actions: [{tag: sla-breached}, {priority: urgent}, {assignee: "team-lead-id"}]}
    - {name: breach+4h, metric: resolution, after: 4h, actions: [{comment: "Still open after breach"}]}
"""
)


def minimal(**overrides: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "id": "p",
        "metrics": {"resolution": {"calendar": "always", "targets": {"high": "4h"}}},
    }
    cfg.update(overrides)
    return cfg


def load(*cfgs: dict[str, Any]) -> PolicySet:
    return load_policies(list(cfgs), CALENDARS)


def test_example_loads_with_every_value_in_place() -> None:
    (p,) = load_policies(EXAMPLE, CALENDARS).policies
    assert (p.id, p.version, p.recalculate) == ("standard", 2, False)
    assert p.effective_from == datetime(2026, 10, 1, tzinfo=UTC)
    assert p.pause_statuses == {Status.PENDING, Status.ON_HOLD}
    assert p.metrics["resolution"].calendar == "berlin"
    assert p.metrics["resolution"].targets == {
        "urgent": timedelta(hours=4),
        "high": timedelta(hours=16),
        "normal": timedelta(hours=40),
        "low": timedelta(hours=80),
    }
    assert p.metrics["first_response"].target("urgent") == timedelta(minutes=30)
    assert p.metrics["next_reply"].target("low") is None
    assert p.metrics["next_reply"].target(None) is None
    warning, last_hour, breach, after = p.escalations
    assert warning.share == Fraction(3, 4) and warning.threshold(timedelta(hours=16)) == timedelta(hours=12)
    assert last_hour.before == timedelta(hours=1)
    assert last_hour.threshold(timedelta(hours=4)) == timedelta(hours=3)
    assert last_hour.threshold(timedelta(minutes=30)) == timedelta(0)  # clamped: due at the start
    assert breach.share == 1 and breach.threshold(timedelta(hours=4)) == timedelta(hours=4)
    assert after.threshold(timedelta(hours=4)) == timedelta(hours=8)
    assert [lv.at_or_after_breach for lv in p.escalations] == [False, False, True, True]
    assert breach.actions == (
        Action("tag", "sla-breached"),
        Action("priority", "urgent"),
        Action("assignee", "team-lead-id"),
    )
    assert p.levels("resolution") == (warning, breach, after)
    assert p.tags == {"sla-warning", "sla-due-soon", "sla-breached"}
    assert p.match.fields == {"instance": {"acme-jira"}, "project": {"SUP"}, "priority": {"urgent", "high"}}


def test_defaults() -> None:
    (p,) = load(minimal()).policies
    assert (p.version, p.effective_from, p.recalculate, p.escalations) == (1, None, False, ())
    assert p.pause_statuses == {Status.PENDING, Status.ON_HOLD}
    assert p.match.matches({}, None)


def test_fractional_share_rounds_to_the_second() -> None:
    (p,) = load(
        minimal(escalations=[{"name": "w", "metric": "resolution", "at": "33.3%", "actions": [{"tag": "t"}]}])
    ).policies
    assert p.escalations[0].threshold(timedelta(hours=1)) == timedelta(seconds=1199)  # 1198.8 s


def test_iso_effective_from_string_and_yaml_datetime_agree() -> None:
    a = load(minimal(effective_from="2026-10-01T02:00:00+02:00")).policies[0]
    b = load(minimal(effective_from=datetime(2026, 10, 1, tzinfo=UTC))).policies[0]
    assert a.effective_from == b.effective_from == datetime(2026, 10, 1, tzinfo=UTC)


def _bad(path: list[Any], value: Any, base: Any = None) -> list[Any]:
    cfg = copy.deepcopy(EXAMPLE if base is None else base)
    node = cfg
    for p in path[:-1]:
        node = node[p]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return cfg


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            [0, "metrics", "resolution", "targets", "high"],
            "4x",
            "policies[0].metrics.resolution.targets.high: '4x' is not a duration like 30m, 4h, 2h30m or PT4H",
        ),
        (
            [0, "metrics", "resolution", "targets", "high"],
            "2d",
            "policies[0].metrics.resolution.targets.high: '2d' uses days or weeks, which are ambiguous in "
            "business time; write hours instead, e.g. 8h or 40h",
        ),
        (
            [0, "metrics", "resolution", "targets", "high"],
            16,
            "policies[0].metrics.resolution.targets.high: 16 is not of type 'string'",
        ),
        (
            [0, "metrics", "next_reply", "calendar"],
            "tokyo",
            "policies[0].metrics.next_reply.calendar: unknown calendar 'tokyo' (known: always, berlin)",
        ),
        (
            [0, "escalations", 0, "actions", 1, "comment"],
            "Due {deadline} for {customer}",
            "policies[0].escalations[0].actions[1].comment: unknown placeholder {customer} in "
            "'Due {deadline} for {customer}'; known: {ticket}, {metric}, {level}, {priority}, {target}, "
            "{deadline}, {elapsed}, {remaining}",
        ),
        (
            [0, "escalations", 0, "actions", 1, "comment"],
            "Due {deadline:%H}",
            "policies[0].escalations[0].actions[1].comment: placeholder {deadline} takes no format spec or "
            "conversion",
        ),
        (
            [0, "escalations", 0, "actions", 1, "comment"],
            "Due {",
            "policies[0].escalations[0].actions[1].comment: 'Due {' is not a valid template (Single '{' "
            "encountered in format string); write {{ for a brace",
        ),
        (
            [0, "escalations", 1, "before"],
            "1d",
            "policies[0].escalations[1].before: '1d' uses days or weeks, which are ambiguous in business "
            "time; write hours instead, e.g. 8h or 40h",
        ),
        (
            [0, "escalations", 3, "after"],
            "soon",
            "policies[0].escalations[3].after: 'soon' is not a duration like 30m, 4h, 2h30m or PT4H",
        ),
        ([0, "escalations", 0, "at"], "0%", "policies[0].escalations[0].at: '0%' must be more than 0%"),
        (
            [0, "escalations", 0, "at"],
            "75",
            "policies[0].escalations[0].at: '75' does not match the expected form: \"breach\" or a share of "
            "the target such as \"75%\"",
        ),
        (
            [0, "escalations", 0, "before"],
            "1h",
            "policies[0].escalations[0]: an escalation needs exactly one of at, before, after",
        ),
        (
            [0, "escalations", 0, "at"],
            _DELETE,
            "policies[0].escalations[0]: an escalation needs exactly one of at, before, after",
        ),
        (
            [0, "escalations", 0, "metric"],
            "resolution_time",
            "policies[0].escalations[0].metric: 'resolution_time' is not one of "
            "['first_response', 'next_reply', 'resolution']",
        ),
        # the same level name on another metric is fine (None: loads)
        ([0, "escalations", 1, "name"], "warning", None),
        (
            [0, "escalations", 2, "name"],
            "warning",
            "policies[0].escalations[2].name: 'warning' is used twice for resolution",
        ),
        (
            [0, "escalations", 0, "actions", 0],
            {"tag": "a", "comment": "b"},
            "policies[0].escalations[0].actions[0]: an action has exactly one key (tag, comment, priority, "
            "assignee or notify)",
        ),
        (
            [0, "escalations", 0, "actions", 0],
            {"label": "a"},
            "policies[0].escalations[0].actions[0]: unknown key(s) 'label'; expected tag, comment, priority, "
            "assignee, notify",
        ),
        (
            [0, "escalations", 0, "actions", 0],
            {"tag": "two words"},
            "policies[0].escalations[0].actions[0].tag: 'two words' does not match the expected form: "
            "one word, without spaces or commas",
        ),
        (
            [0, "escalations", 0, "actions"],
            [{"comment": "a"}, {"comment": "b"}],
            "policies[0].escalations[0].actions: at most one comment action per level",
        ),
        ([0, "escalations", 0, "actions"], [], "policies[0].escalations[0].actions: [] should be non-empty"),
        ([0, "metrics"], {}, "policies[0].metrics: {} should be non-empty"),
        (
            [0, "metrics", "response"],
            {"calendar": "berlin", "targets": {"high": "1h"}},
            "policies[0].metrics: unknown key(s) 'response'; expected first_response, next_reply, resolution",
        ),
        (
            [0, "metrics", "resolution", "calendar"],
            _DELETE,
            "policies[0].metrics.resolution: 'calendar' is a required property",
        ),
        (
            [0, "metrics", "resolution", "targets"],
            {},
            "policies[0].metrics.resolution.targets: {} should be non-empty",
        ),
        ([0, "id"], _DELETE, "policies[0]: 'id' is a required property"),
        (
            [0, "id"],
            "has space",
            "policies[0].id: 'has space' does not match the expected form: letters, digits, '_', '.' or '-', "
            "starting with a letter or digit",
        ),
        ([0, "version"], "2", "policies[0].version: '2' is not of type 'integer'"),
        ([0, "version"], 0, "policies[0].version: 0 is less than the minimum of 1"),
        ([0, "recalculate"], "yes", "policies[0].recalculate: 'yes' is not of type 'boolean'"),
        (
            [0, "effective_from"],
            "2026-10-01T00:00:00",
            "policies[0].effective_from: '2026-10-01T00:00:00' needs a UTC offset, e.g. 2026-10-01T00:00:00Z",
        ),
        (
            [0, "effective_from"],
            "next week",
            "policies[0].effective_from: 'next week' is not an ISO 8601 date-time like 2026-10-01T00:00:00Z",
        ),
        (
            [0, "pause_statuses"],
            ["pending", "waiting"],
            "policies[0].pause_statuses[1]: 'waiting' is not one of ['new', 'open', 'pending', 'on_hold']",
        ),
        (
            [0, "pause_statuses"],
            ["solved"],
            "policies[0].pause_statuses[0]: 'solved' is not one of ['new', 'open', 'pending', 'on_hold']",
        ),
        ([0, "match", "priority"], "urgent", "policies[0].match.priority: 'urgent' is not of type 'array'"),
        (
            [0, "match", "tags_all"],
            ["x"],
            "policies[0].match: unknown key(s) 'tags_all'; expected instance, project, group, brand, type, "
            "priority, tags_any, tags_none",
        ),
        ([0, "match", "project"], [], "policies[0].match.project: [] should be non-empty"),
        (
            [0, "colour"],
            "red",
            "policies[0]: unknown key(s) 'colour'; expected id, version, effective_from, recalculate, match, "
            "pause_statuses, metrics, escalations",
        ),
    ],
)
def test_config_errors_name_the_path(path: list[Any], value: Any, message: str | None) -> None:
    if message is None:  # same name on another metric is allowed
        load_policies(_bad(path, value), CALENDARS)
        return
    with pytest.raises(ValueError) as err:
        load_policies(_bad(path, value), CALENDARS)
    assert str(err.value) == message


def test_escalation_on_a_metric_without_targets() -> None:
    cfg = minimal(
        escalations=[{"name": "w", "metric": "first_response", "at": "50%", "actions": [{"tag": "t"}]}]
    )
    with pytest.raises(ValueError) as err:
        load(cfg)
    assert str(err.value) == (
        "policies[0].escalations[0].metric: 'first_response' has no targets in this policy's metrics"
    )


def test_duplicate_id_and_version() -> None:
    with pytest.raises(ValueError) as err:
        load(minimal(), minimal(id="other"), minimal(version=1))
    assert str(err.value) == "policies[2]: id 'p' version 1 is already defined at policies[0]"


def test_same_id_with_different_versions_is_fine() -> None:
    assert [p.version for p in load(minimal(), minimal(version=2)).policies] == [1, 2]


def test_not_a_list() -> None:
    with pytest.raises(ValueError) as err:
        load_policies({"id": "p"}, CALENDARS)  # type: ignore[arg-type]
    assert str(err.value) == "policies: {'id': 'p'} is not of type 'array'"


def test_no_calendars_known() -> None:
    with pytest.raises(ValueError) as err:
        load_policies([minimal()], {})
    assert (
        str(err.value) == "policies[0].metrics.resolution.calendar: unknown calendar 'always' (known: none)"
    )


# --- matching -------------------------------------------------------------------------------------

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
CREATED = datetime(2026, 11, 20, tzinfo=UTC)


def test_every_given_condition_must_hold() -> None:
    (p,) = load_policies(EXAMPLE, CALENDARS).policies
    ok = {"project": "SUP", "priority": "high", "tags": frozenset({"vip"})}
    assert p.match.matches(ok, "acme-jira")
    assert not p.match.matches(ok, "other-jira")
    assert not p.match.matches(ok, None)
    assert not p.match.matches({**ok, "project": "OPS"}, "acme-jira")
    assert not p.match.matches({**ok, "priority": "low"}, "acme-jira")
    assert not p.match.matches({**ok, "priority": None}, "acme-jira")
    assert not p.match.matches({**ok, "tags": frozenset()}, "acme-jira")
    assert not p.match.matches({**ok, "tags": frozenset({"vip", "internal"})}, "acme-jira")
    assert p.match.matches({**ok, "tags": frozenset({"vip", "other"})}, "acme-jira")


@pytest.mark.parametrize("field", ["group", "brand", "type"])
def test_group_brand_type_conditions(field: str) -> None:
    ps = load(minimal(match={field: ["a", "b"]}))
    assert ps.select({field: "b"}, CREATED, NOW) is not None
    assert ps.select({field: "c"}, CREATED, NOW) is None
    assert ps.select({}, CREATED, NOW) is None


def test_first_matching_policy_in_file_order_wins() -> None:
    ps = load(minimal(id="vip", match={"tags_any": ["vip"]}), minimal(id="default"), minimal(id="never"))
    assert ps.select({"tags": frozenset({"vip"})}, CREATED, NOW).id == "vip"
    assert ps.select({"tags": frozenset()}, CREATED, NOW).id == "default"
    ps2 = load(minimal(id="default"), minimal(id="vip", match={"tags_any": ["vip"]}))
    assert ps2.select({"tags": frozenset({"vip"})}, CREATED, NOW).id == "default"


def test_tags_none_excludes() -> None:
    ps = load(minimal(match={"tags_none": ["internal"]}))
    assert ps.select({"tags": frozenset({"internal"})}, CREATED, NOW) is None
    assert ps.select({}, CREATED, NOW) is not None


# --- versions --------------------------------------------------------------------------------------


def _versions(*specs: dict[str, Any]) -> PolicySet:
    return load(*(minimal(id="std", **s) for s in specs))


def test_ticket_keeps_the_version_in_force_at_its_creation() -> None:
    ps = _versions({"version": 1}, {"version": 2, "effective_from": "2026-11-01T00:00:00Z"})
    assert ps.select({}, datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC), NOW).version == 1
    assert ps.select({}, datetime(2026, 11, 1, tzinfo=UTC), NOW).version == 2


def test_recalculate_moves_older_tickets_once_in_force() -> None:
    ps = _versions(
        {"version": 1},
        {"version": 2, "effective_from": "2026-11-01T00:00:00Z", "recalculate": True},
        {"version": 3, "effective_from": "2026-12-01T00:00:00Z", "recalculate": True},
    )
    old = datetime(2026, 10, 1, tzinfo=UTC)
    assert ps.select({}, old, NOW).version == 2  # v3 is not in force yet at NOW
    assert ps.select({}, old, datetime(2026, 12, 1, tzinfo=UTC)).version == 3


def test_newer_version_without_recalculate_leaves_old_tickets_alone() -> None:
    ps = _versions({"version": 1}, {"version": 2, "effective_from": "2026-11-01T00:00:00Z"})
    assert ps.select({}, datetime(2026, 10, 1, tzinfo=UTC), NOW).version == 1


def test_version_order_in_file_does_not_matter() -> None:
    ps = _versions({"version": 2, "effective_from": "2026-11-01T00:00:00Z"}, {"version": 1})
    assert ps.select({}, datetime(2026, 11, 2, tzinfo=UTC), NOW).version == 2
    assert ps.select({}, datetime(2026, 10, 2, tzinfo=UTC), NOW).version == 1


def test_ticket_older_than_every_version_falls_through_to_the_next_policy() -> None:
    ps = load(minimal(id="new", effective_from="2026-11-01T00:00:00Z"), minimal(id="legacy"))
    assert ps.select({}, datetime(2026, 10, 1, tzinfo=UTC), NOW).id == "legacy"
    assert ps.select({}, datetime(2026, 11, 1, tzinfo=UTC), NOW).id == "new"


def test_the_governing_versions_conditions_decide_the_match() -> None:
    ps = _versions(
        {"version": 1, "match": {"project": ["SUP"]}},
        {"version": 2, "effective_from": "2026-11-01T00:00:00Z", "match": {"project": ["OPS"]}},
    )
    old, new = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC)
    assert ps.select({"project": "SUP"}, old, NOW).version == 1
    assert ps.select({"project": "OPS"}, old, NOW) is None
    assert ps.select({"project": "OPS"}, new, NOW).version == 2
    assert ps.select({"project": "SUP"}, new, NOW) is None


def test_managed_tags_cover_every_policy() -> None:
    ps = load(
        minimal(
            id="a",
            escalations=[{"name": "w", "metric": "resolution", "at": "50%", "actions": [{"tag": "x"}]}],
        ),
        minimal(
            id="b",
            escalations=[{"name": "w", "metric": "resolution", "at": "50%", "actions": [{"tag": "y"}]}],
        ),
    )
    assert ps.managed_tags == {"x", "y"}


KEYS = [
    "id",
    "version",
    "metrics",
    "resolution",
    "targets",
    "high",
    "calendar",
    "at",
    "before",
    "after",
    "actions",
    "tag",
    "comment",
    "priority",
    "name",
    "metric",
    "match",
    "effective_from",
    "recalculate",
    "pause_statuses",
    "escalations",
    "berlin",
]


# --- robustness: any input is either a PolicySet or a ValueError naming a path ------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.sampled_from(["", "4h", "2d", "75%", "breach", "x y", "{x}"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=3),
    max_leaves=8,
)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_mutation_of_a_valid_file_loads_or_names_a_path(data: st.DataObject) -> None:
    cfg = copy.deepcopy(EXAMPLE)
    for _ in range(data.draw(st.integers(1, 3))):
        paths = [p for p in _paths(cfg) if p]
        path = data.draw(st.sampled_from(paths))
        node = cfg
        for p in path[:-1]:
            node = node[p]
        if isinstance(node, dict) and data.draw(st.booleans()):
            node[data.draw(st.sampled_from(KEYS))] = data.draw(json_values)
        else:
            node[path[-1]] = data.draw(json_values)
    try:
        load_policies(cfg, CALENDARS)
    except ValueError as exc:
        assert str(exc).startswith("policies")


def test_yaml_number_keys_become_priority_names() -> None:
    cfg = yaml.safe_load("- {id: p, metrics: {resolution: {calendar: always, targets: {1: 4h, 2: 8h}}}}")
    (p,) = load_policies(cfg, CALENDARS).policies
    assert p.metrics["resolution"].targets == {"1": timedelta(hours=4), "2": timedelta(hours=8)}


def test_every_pattern_of_the_policy_schema_has_words_and_no_message_shows_a_regex() -> None:
    import json
    from importlib import resources

    from sla.policy import _PATTERN_FORMS

    schema = resources.files("sla").joinpath("schemas/policy.schema.json").read_text(encoding="utf-8")
    patterns: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                patterns.add(node["pattern"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(schema))
    assert patterns and patterns <= set(_PATTERN_FORMS)
