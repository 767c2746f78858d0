"""Helpers of the CLI that are not argument parsing: the check-config summary and test-event signing."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from connector.config.loader import Config, InstanceConfig

# ---------------------------------------------------------------- check-config summary


def redacted_url(url: str) -> str:
    """The URL without its password (redis://:pw@host -> redis://:***@host)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _duration(td: timedelta) -> str:
    seconds = int(td.total_seconds())
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return "".join(f"{v}{u}" for v, u in ((h, "h"), (m, "m"), (s, "s")) if v) or "0s"


def _calendar_line(cal: Any) -> str:
    week = getattr(cal, "week", ())
    seconds = sum(end - start for day in week for start, end in day)
    hours = "24x7" if seconds >= 7 * 86400 else f"{seconds / 3600:g}h a week"
    holidays = []
    if getattr(cal, "country", None):
        holidays.append(cal.country + (f"-{cal.subdivision}" if cal.subdivision else ""))
    if getattr(cal, "holiday_dates", ()):
        holidays.append(f"{len(cal.holiday_dates)} dates")
    extra = f", holidays: {' + '.join(holidays)}" if holidays else ""
    return f"{cal.zone.key}, {hours}{extra}"


def _match_text(match: Any) -> str:
    parts = [f"{name} in [{', '.join(sorted(values))}]" for name, values in match.fields.items()]
    if match.tags_any is not None:
        parts.append(f"tags any of [{', '.join(sorted(match.tags_any))}]")
    if match.tags_none:
        parts.append(f"tags none of [{', '.join(sorted(match.tags_none))}]")
    return " and ".join(parts) if parts else "every ticket"


def summary(config: Config) -> tuple[list[str], list[str]]:
    """Lines describing the configuration, and warnings (things that are valid but likely wrong)."""
    lines = [f"Configuration OK: {config.source}"]
    warnings: list[str] = []
    if config.redis_url:
        lines.append(f"Redis: {redacted_url(config.redis_url)}")
    else:
        lines.append(f"Redis: none configured; `sla-connector run` embeds one under {config.data_dir}")
    state = "enabled" if config.api_token else "disabled"
    lines.append(f"HTTP API: {state} (token from ${config.api_token_env})")
    lines.append(f"Webhook body limit: {config.max_body_bytes} bytes")
    lines.append(f"Instances ({len(config.instances)}):")
    for inst in config.instances.values():
        mode = "dry-run (effects logged, not written)" if inst.dry_run else "live"
        every = inst.reconcile_every_s
        reconcile = f"reconcile every {_duration(timedelta(seconds=every))}" if every else "reconcile off"
        lines.append(f"  {inst.name}: {inst.product}, {mode}, webhook POST /hooks/{inst.name}, {reconcile}")
    lines.append(f"Calendars ({len(config.calendars)}):")
    for name, cal in config.calendars.items():
        lines.append(f"  {name}: {_calendar_line(cal)}")
    policies = config.policies.policies
    lines.append(f"Policies ({len(policies)}, first match wins):")
    matched_instances: set[str] = set()
    catch_all = False
    for p in policies:
        when = f", from {p.effective_from.isoformat()}" if p.effective_from else ""
        recalc = ", recalculates older tickets" if p.recalculate else ""
        lines.append(f"  {p.id} v{p.version}{when}{recalc}: matches {_match_text(p.match)}")
        for metric in p.metrics.values():
            targets = ", ".join(f"{prio} {_duration(t)}" for prio, t in metric.targets.items())
            lines.append(f"    {metric.name} on {metric.calendar}: {targets}")
        for level in p.escalations:
            actions = (
                ", ".join(a.kind if a.kind == "comment" else f"{a.kind} {a.value}" for a in level.actions)
                or "no actions"
            )
            lines.append(f"    escalation {level.name} ({level.metric}): {actions}")
        instances = p.match.fields.get("instance")
        if instances is None:
            catch_all = catch_all or not p.match.fields and p.match.tags_any is None
            matched_instances.update(config.instances)
        else:
            matched_instances.update(instances)
            for name in sorted(set(instances) - set(config.instances)):
                warnings.append(f"policy {p.id} v{p.version} names instance {name!r}, which is not defined")
    for name in config.instances:
        if name not in matched_instances:
            warnings.append(f"instance {name!r} is matched by no policy: its tickets get no SLA")
    if policies and not catch_all:
        lines.append("  (tickets that match none of these get no SLA)")
    if config.notify_channels:
        lines.append(f"Notify channels ({len(config.notify_channels)}):")
        for name, channel in config.notify_channels.items():
            lines.append(f"  {name}: {channel.kind} to {channel.shown}")  # `shown` holds no credentials
    if config.contracts:
        lines.append(f"Contracts ({len(config.contracts)}):")
        for c in config.contracts:
            services = ", ".join(u.service for u in c.uptime)
            parts = [
                f"customer {c.customer}",
                f"instances {', '.join(sorted(c.instances))}",
                f"{len(c.kpi_rules)} credit rule(s)",
            ] + ([f"uptime of {services}"] if services else [])
            lines.append(f"  {c.id}: " + "; ".join(parts))
            for rule in c.uptime:
                if rule.downtime_from != "outage_start":
                    continue
                for name in sorted(set(c.instances) & set(config.instances)):
                    # `outage_start_field` is the one instance setting every adapter reads it from.
                    if config.instances[name].settings.get("outage_start_field") is None:
                        warnings.append(
                            f"contract {c.id}, service {rule.service}: downtime_from is outage_start, but "
                            f"instance {name!r} sets no outage_start_field: its incidents start at creation"
                        )
    return lines, warnings


# ---------------------------------------------------------------- send-test-event signing


def sign_test_event(
    inst: InstanceConfig, body: bytes, env: Mapping[str, str], now: datetime, delivery_id: str | None = None
) -> dict[str, str]:
    """Headers the product would send with `body`: the adapter's `sign(body, now)` (its own secret,
    read when the configuration was loaded; `env` is kept for callers) and, when the adapter has
    `delivery_headers`, a delivery id (`delivery_id`, else a fresh one, so each test is new).

    Raises ValueError when the adapter cannot sign or its secret is not available.
    """
    adapter = inst.adapter
    sign = getattr(adapter, "sign", None)
    if not callable(sign):
        raise ValueError(f"instance {inst.name!r}: the {inst.product} adapter has no sign(): no test events")
    headers = dict(sign(body, now))
    delivery_headers = getattr(adapter, "delivery_headers", None)
    if callable(delivery_headers):
        headers.update(delivery_headers(delivery_id or f"test-{uuid.uuid4()}"))
    return headers
