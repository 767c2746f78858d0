"""Warnings about a configuration that is valid but very likely not what the admin meant.

`check-config` prints them (exit status stays 0): a ticket whose priority no policy has a target
for simply gets no SLA clock, silently, so these are worth a line before going live.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connector.config.loader import Config, InstanceConfig
    from sla.policy import Policy


def instance_priorities(inst: InstanceConfig) -> frozenset[str] | None:
    """The canonical priority names an instance's tickets can carry, or None when unknown.

    An adapter may say so itself (`canonical_priorities()`); otherwise its parsed settings are read:
    the values of their `priorities` mapping, plus `default_priority` when there is one.
    """
    hook = getattr(inst.adapter, "canonical_priorities", None)
    if callable(hook):
        return frozenset(str(p) for p in hook())
    for holder in (inst.adapter, getattr(inst.adapter, "cfg", None), getattr(inst.adapter, "settings", None)):
        mapping = getattr(holder, "priorities", None)
        if isinstance(mapping, Mapping):
            names = {str(v) for v in mapping.values()}
            default = getattr(holder, "default_priority", None)
            if default:
                names.add(str(default))
            return frozenset(names)
    return None


def _applies_to(policy: Policy, instance: str) -> bool:
    allowed = policy.match.fields.get("instance")
    return allowed is None or instance in allowed


def _targeted(policy: Policy) -> set[str]:
    """Priorities some metric of `policy` has a target for, among those its match lets in."""
    names = {prio for metric in policy.metrics.values() for prio in metric.targets}
    allowed = policy.match.fields.get("priority")
    return names & set(allowed) if allowed is not None else names


def _names(values: Iterable[str]) -> str:
    return ", ".join(repr(v) for v in sorted(values))


def _matches_everything(versions: list[Policy]) -> bool:
    """Every version matches every ticket, and one is always in force."""
    def empty(p: Policy) -> bool:
        return not p.match.fields and p.match.tags_any is None and not p.match.tags_none
    return all(empty(p) for p in versions) and any(p.effective_from is None for p in versions)


def config_warnings(config: Config) -> list[str]:
    """Warnings about priorities, shadowed policies and escalation levels (empty when all is well)."""
    warnings: list[str] = []
    policies = list(config.policies.policies)
    produced: dict[str, frozenset[str] | None] = {
        name: instance_priorities(inst) for name, inst in config.instances.items()
    }

    # Tickets of an instance whose priority no applicable policy targets get no clock at all.
    for name, prios in produced.items():
        applicable = [p for p in policies if _applies_to(p, name)]
        if prios is None or not applicable:  # "matched by no policy" is in the summary already
            continue
        targeted = set().union(*(_targeted(p) for p in applicable))
        missing = prios - targeted
        if missing:
            warnings.append(
                f"instance {name!r} maps priorities to {_names(missing)}, which no policy for it has a "
                f"target for: those tickets get no SLA clock "
                f"(targets exist for {_names(targeted) or 'none'})")

    seen_ids: set[str] = set()
    shadowing: str | None = None
    for policy in policies:
        label = f"policy {policy.id} v{policy.version}"
        if shadowing is not None and policy.id != shadowing:
            warnings.append(f"{label} never applies: policy {shadowing} before it matches every ticket")
        warnings.extend(_priority_warnings(policy, label, produced))
        warnings.extend(_level_warnings(policy, label))
        if policy.id not in seen_ids:
            seen_ids.add(policy.id)
            versions = [p for p in policies if p.id == policy.id]
            if shadowing is None and _matches_everything(versions):
                shadowing = policy.id
    return warnings


def _priority_warnings(policy: Policy, label: str,
                       produced: Mapping[str, frozenset[str] | None]) -> list[str]:
    """Targets, matches and priority actions naming priorities the policy's instances never produce."""
    instances = [n for n in produced if _applies_to(policy, n)]
    known = [produced[n] for n in instances]
    if not instances or any(k is None for k in known):
        return []
    out = []
    reachable = frozenset().union(*known)
    unused = {prio for metric in policy.metrics.values() for prio in metric.targets} - reachable
    if unused:
        out.append(f"{label} has targets for {_names(unused)}, a priority no instance it applies to "
                   f"produces (they produce {_names(reachable) or 'none'})")
    wanted = policy.match.fields.get("priority")
    if wanted is not None and not set(wanted) & reachable:
        out.append(f"{label} matches priority {_names(wanted)}, which no instance it applies to "
                   "produces: it never applies")
    for level in policy.escalations:
        for value in level.values("priority"):
            lacking = ", ".join(repr(n) for n in instances if value not in (produced[n] or ()))
            if lacking:
                out.append(f"{label} escalation {level.name} sets priority {value!r}, which {lacking} "
                           "maps no priority to: that write-back fails")
    return out


def _level_warnings(policy: Policy, label: str) -> list[str]:
    out = []
    working = sorted(str(s) for s in policy.pause_statuses if str(s) in ("new", "open"))
    if working:
        out.append(f"{label} pauses its clocks in status {_names(working)}, where the team is working: "
                   "they hardly ever run")
    allowed = policy.match.fields.get("priority")
    for level in policy.escalations:
        targets = policy.metrics[level.metric].targets
        if allowed is not None and not set(targets) & set(allowed):
            out.append(f"{label} escalation {level.name} is never reached: {level.metric} has no target "
                       f"for the priorities the policy matches ({_names(allowed)})")
            continue
        if level.before is not None and targets and all(level.before >= t for t in targets.values()):
            out.append(f"{label} escalation {level.name} is {_duration(level.before)} before a deadline that "
                       f"is never that far away: it is reached as soon as the {level.metric} clock starts")
    return out


def _duration(value: Any) -> str:
    seconds = int(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    return f"{hours}h{minutes:02d}m" if minutes else f"{hours}h"
