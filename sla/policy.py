"""SLA policies: ordered, matched by ticket attributes, versioned, with targets and escalations.

`load_policies` turns the `policies` list of the configuration into a frozen `PolicySet`. The JSON
Schema in `sla/schemas/policy.schema.json` checks the structure; this module checks what a schema
cannot (durations, known calendars, template placeholders, unique id+version and level names).
Every error is a ValueError whose message starts with the configuration path, e.g.
"policies[0].metrics.resolution.targets.high: '4x' is not a duration like 30m, 4h, 2h30m or PT4H".

Bound: a target, and the instant every level is reached at (a share of the target, the target minus
`before` or plus `after`), must lie within two years of business time on the metric's calendar:
`BOUND_WEEKS` (104) times the calendar's open time in a week (4,160h on a 40-hour week, 17,472h on a
24x7 calendar); a `before` offset too. Nobody can wait longer for a ticket, and the bound keeps every
evaluation to a few years of calendar (see `sla.calendar`, MAX_SEARCH_YEARS).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from functools import cache
from typing import TYPE_CHECKING, Any

import jsonschema
from jsonschema.exceptions import ValidationError

from sla._schema import ID_FORM, ID_PATTERN, check_structure, load_validator, plain
from sla.durations import format_duration, parse_duration
from sla.events import Status
from sla.templates import check_template

if TYPE_CHECKING:
    from sla.calendar import BusinessCalendar

METRICS = ("first_response", "next_reply", "resolution")
BOUND_WEEKS = 104  # targets and levels: at most two years of the calendar's business time
DEFAULT_PAUSE = frozenset({Status.PENDING, Status.ON_HOLD})
MATCH_FIELDS = ("instance", "project", "group", "brand", "type", "priority")


@dataclass(frozen=True)
class Match:
    """Conditions on the ticket's current attributes; every condition given must hold."""

    fields: Mapping[str, frozenset[str]] = field(default_factory=dict)  # field -> allowed values
    tags_any: frozenset[str] | None = None
    tags_none: frozenset[str] = frozenset()

    def matches(self, attrs: Mapping[str, Any], instance: str | None) -> bool:
        for name, allowed in self.fields.items():
            value = instance if name == "instance" else attrs.get(name)
            if value is None or str(value) not in allowed:
                return False
        tags = attrs.get("tags") or frozenset()
        if self.tags_any is not None and not (tags & self.tags_any):
            return False
        return not (tags & self.tags_none)


@dataclass(frozen=True)
class MetricPolicy:
    name: str  # first_response | next_reply | resolution
    calendar: str
    targets: Mapping[str, timedelta]  # canonical priority -> business-time target

    def target(self, priority: str | None) -> timedelta | None:
        return None if priority is None else self.targets.get(priority)


@dataclass(frozen=True)
class Action:
    kind: str  # tag | comment | priority | assignee | notify
    value: str  # notify: a channel of the configuration's notify_channels


@dataclass(frozen=True)
class EscalationLevel:
    """A point on a metric's clock: a share of the target, or an offset before/after the deadline."""

    name: str
    metric: str
    share: Fraction | None = None  # at: "75%" -> 3/4, "breach" -> 1
    before: timedelta | None = None
    after: timedelta | None = None
    actions: tuple[Action, ...] = ()

    def threshold(self, target: timedelta) -> timedelta:
        """Elapsed business time at which this level is reached, for a given target."""
        if self.share is not None:
            return timedelta(seconds=round(Fraction(int(target.total_seconds())) * self.share))
        if self.before is not None:
            return max(target - self.before, timedelta(0))
        assert self.after is not None
        return target + self.after

    @property
    def at_or_after_breach(self) -> bool:
        """Breach levels keep their tags once reached (the ticket did breach); others are warnings."""
        return self.after is not None or (self.share is not None and self.share >= 1)

    def values(self, kind: str) -> list[str]:
        return [a.value for a in self.actions if a.kind == kind]


@dataclass(frozen=True)
class Policy:
    id: str
    version: int
    metrics: Mapping[str, MetricPolicy]
    escalations: tuple[EscalationLevel, ...] = ()
    match: Match = Match()
    pause_statuses: frozenset[Status] = DEFAULT_PAUSE
    effective_from: datetime | None = None
    recalculate: bool = False

    def levels(self, metric: str) -> tuple[EscalationLevel, ...]:
        return tuple(e for e in self.escalations if e.metric == metric)

    @property
    def tags(self) -> frozenset[str]:
        return frozenset(v for e in self.escalations for v in e.values("tag"))


@dataclass(frozen=True)
class PolicySet:
    policies: tuple[Policy, ...] = ()  # in file order
    # notify channel -> the template of its notices (a channel without one: sla.notices.DEFAULT_TEMPLATE)
    notice_templates: Mapping[str, str] = field(default_factory=dict)

    @property
    def managed_tags(self) -> frozenset[str]:
        """Every tag some policy can set: the connector removes those that no longer apply."""
        return frozenset().union(*(p.tags for p in self.policies))

    def governing_version(self, policy_id: str, created: datetime, now: datetime) -> Policy | None:
        """The version of `policy_id` a ticket created at `created` is evaluated under at `now`.

        The latest version in force at creation, unless a newer version already in force at `now`
        says `recalculate: true` (then the newest such version). None if no version was in force.
        """
        versions = [p for p in self.policies if p.id == policy_id]
        in_force = [p for p in versions if p.effective_from is None or p.effective_from <= created]
        chosen = max(in_force, key=lambda p: p.version, default=None)
        floor = chosen.version if chosen is not None else 0
        recalc = [
            p
            for p in versions
            if p.recalculate and p.version > floor and (p.effective_from is None or p.effective_from <= now)
        ]
        return max(recalc, key=lambda p: p.version, default=chosen)

    def recalculations_after(self, now: datetime) -> list[datetime]:
        """The instants after `now` at which a `recalculate` version takes effect, in order: the only
        instants at which `select` can answer differently for the same ticket without a new event."""
        return sorted(
            {
                p.effective_from
                for p in self.policies
                if p.recalculate and p.effective_from and p.effective_from > now
            }
        )

    def select(
        self, attrs: Mapping[str, Any], created: datetime, now: datetime, instance: str | None = None
    ) -> Policy | None:
        """The first policy id (in file order) whose governing version matches the ticket."""
        seen: set[str] = set()
        for p in self.policies:
            if p.id in seen:
                continue
            seen.add(p.id)
            version = self.governing_version(p.id, created, now)
            if version is not None and version.match.matches(attrs, instance):
                return version
        return None


@cache
def _validator() -> jsonschema.protocols.Validator:
    return load_validator("policy.schema.json")


def _special_wording(error: ValidationError) -> str | None:
    if error.validator == "oneOf" and isinstance(error.instance, dict) and "metric" in error.instance:
        return "an escalation needs exactly one of at, before, after"
    if error.validator == "maxProperties" and error.instance and len(error.instance) > 1:
        return "an action has exactly one key (tag, comment, priority, assignee or notify)"
    return None


# What each pattern of schemas/policy.schema.json expects, in words (no regular expression in messages).
_PATTERN_FORMS = {
    ID_PATTERN: ID_FORM,
    "^[A-Za-z0-9][A-Za-z0-9_.+-]*$": "letters, digits, '_', '.', '+' or '-', starting with a letter or digit",
    "^(breach|[0-9]{1,4}(\\.[0-9]+)?%)$": '"breach" or a share of the target such as "75%"',
    "^[^\\s,]+$": "one word, without spaces or commas",
}


def _pattern_form(pattern: str) -> str:
    return _PATTERN_FORMS.get(pattern, "see docs/sla-semantics.md")


def _parse_instant(text: str, where: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        example = "2026-10-01T00:00:00Z"
        raise ValueError(f"{where}: {text!r} is not an ISO 8601 date-time like {example}") from None
    if value.tzinfo is None:
        raise ValueError(f"{where}: {text!r} needs a UTC offset, e.g. 2026-10-01T00:00:00Z")
    return value


def _level(cfg: Mapping[str, Any], where: str, channels: Mapping[str, str]) -> EscalationLevel:
    share = before = after = None
    if "at" in cfg:
        share = Fraction(1) if cfg["at"] == "breach" else Fraction(cfg["at"][:-1]) / 100
        if share <= 0:
            raise ValueError(f"{where}.at: {cfg['at']!r} must be more than 0%")
    elif "before" in cfg:
        before = parse_duration(cfg["before"], f"{where}.before")
    else:
        after = parse_duration(cfg["after"], f"{where}.after")
    actions: list[Action] = []
    for i, action in enumerate(cfg["actions"]):
        ((kind, value),) = action.items()
        if kind == "comment":
            check_template(value, f"{where}.actions[{i}].comment")
        if kind == "notify":
            if value not in channels:
                known = ", ".join(sorted(channels)) or "none: notify_channels is empty"
                raise ValueError(f"{where}.actions[{i}].notify: unknown channel {value!r} (known: {known})")
            if Action(kind, value) in actions:
                raise ValueError(
                    f"{where}.actions[{i}].notify: channel {value!r} is notified twice by this level"
                )
        actions.append(Action(kind, value))
    for kind in ("comment", "priority", "assignee"):
        if sum(a.kind == kind for a in actions) > 1:
            raise ValueError(f"{where}.actions: at most one {kind} action per level")
    return EscalationLevel(cfg["name"], cfg["metric"], share, before, after, tuple(actions))


def _bound(name: str, calendar: BusinessCalendar) -> tuple[timedelta, str]:
    """The longest a target or level may be on `calendar`, and the words for an error about it."""
    weekly = calendar.weekly_open
    bound = BOUND_WEEKS * weekly
    why = (
        f"{format_duration(bound)}, the most a target or a level may be: two years of business time on "
        f"calendar {name!r} ({BOUND_WEEKS} weeks of its {format_duration(weekly)} a week)"
    )
    return bound, why


def _check_level_bound(
    level: EscalationLevel,
    cfg: Mapping[str, Any],
    where: str,
    metric: MetricPolicy,
    calendars: Mapping[str, BusinessCalendar],
) -> None:
    bound, why = _bound(metric.calendar, calendars[metric.calendar])
    if level.before is not None:
        if level.before > bound:
            raise ValueError(f"{where}.before: {cfg['before']!r} is longer than {why}")
        return  # reached at or before the target
    key = "at" if level.share is not None else "after"
    for prio, target in metric.targets.items():
        reached = level.threshold(target)
        if reached > bound:
            raise ValueError(
                f"{where}.{key}: {cfg[key]!r} puts the level at {format_duration(reached)} for priority "
                f"{prio} (target {format_duration(target)}), longer than {why}"
            )


def _policy(
    cfg: Mapping[str, Any],
    where: str,
    calendars: Mapping[str, BusinessCalendar],
    channels: Mapping[str, str],
) -> Policy:
    metrics: dict[str, MetricPolicy] = {}
    for name, mcfg in cfg["metrics"].items():
        mwhere = f"{where}.metrics.{name}"
        if mcfg["calendar"] not in calendars:
            known = ", ".join(sorted(calendars)) or "none"
            raise ValueError(f"{mwhere}.calendar: unknown calendar {mcfg['calendar']!r} (known: {known})")
        bound, why = _bound(mcfg["calendar"], calendars[mcfg["calendar"]])
        targets = {}
        for prio, text in mcfg["targets"].items():
            targets[prio] = parse_duration(text, f"{mwhere}.targets.{prio}")
            if targets[prio] > bound:
                raise ValueError(f"{mwhere}.targets.{prio}: {text!r} is longer than {why}")
        metrics[name] = MetricPolicy(name, mcfg["calendar"], targets)
    levels: list[EscalationLevel] = []
    seen: set[tuple[str, str]] = set()
    for i, ecfg in enumerate(cfg.get("escalations", [])):
        ewhere = f"{where}.escalations[{i}]"
        if ecfg["metric"] not in metrics:
            raise ValueError(f"{ewhere}.metric: {ecfg['metric']!r} has no targets in this policy's metrics")
        if (ecfg["metric"], ecfg["name"]) in seen:
            raise ValueError(f"{ewhere}.name: {ecfg['name']!r} is used twice for {ecfg['metric']}")
        seen.add((ecfg["metric"], ecfg["name"]))
        levels.append(_level(ecfg, ewhere, channels))
        _check_level_bound(levels[-1], ecfg, ewhere, metrics[ecfg["metric"]], calendars)
    m = cfg.get("match", {})
    return Policy(
        id=cfg["id"],
        version=cfg.get("version", 1),
        metrics=metrics,
        escalations=tuple(levels),
        match=Match(
            fields={k: frozenset(m[k]) for k in MATCH_FIELDS if k in m},
            tags_any=frozenset(m["tags_any"]) if "tags_any" in m else None,
            tags_none=frozenset(m.get("tags_none", ())),
        ),
        pause_statuses=frozenset(Status(s) for s in cfg.get("pause_statuses", DEFAULT_PAUSE)),
        effective_from=(
            _parse_instant(cfg["effective_from"], f"{where}.effective_from")
            if "effective_from" in cfg
            else None
        ),
        recalculate=cfg.get("recalculate", False),
    )


def load_policies(
    policies_cfg: list,
    calendars: Mapping[str, BusinessCalendar],
    notice_templates: Mapping[str, str] | None = None,
) -> PolicySet:
    """Validate and build the policy set; raise ValueError naming the configuration path.

    `notice_templates`: the configured notify channels, each with the template of its notices
    (already checked); a `notify:` action naming any other channel is an error.
    """
    channels = dict(notice_templates or {})
    cfg = plain(policies_cfg)
    check_structure(_validator(), cfg, "policies", _pattern_form, _special_wording)
    policies: list[Policy] = []
    seen: dict[tuple[str, int], int] = {}
    for i, pcfg in enumerate(cfg):
        policy = _policy(pcfg, f"policies[{i}]", calendars, channels)
        key = (policy.id, policy.version)
        if key in seen:
            raise ValueError(
                f"policies[{i}]: id {policy.id!r} version {policy.version} is already defined at "
                f"policies[{seen[key]}]"
            )
        seen[key] = i
        policies.append(policy)
    return PolicySet(tuple(policies), channels)
