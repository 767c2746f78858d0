"""Helpers of the CLI that are not argument parsing: the check-config summary and test-event signing."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from connector.config import Config, InstanceConfig

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
        lines.append(f"  {inst.name}: {inst.product}, {mode}, webhook POST /hooks/{inst.name}")
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
            actions = ", ".join(a.kind if a.kind == "comment" else f"{a.kind} {a.value}"
                                for a in level.actions) or "no actions"
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
    return lines, warnings


# ---------------------------------------------------------------- send-test-event signing


def sign_test_event(
    inst: InstanceConfig, body: bytes, env: Mapping[str, str], now: datetime, delivery_id: str | None = None
) -> dict[str, str]:
    """Headers the product would send with `body`: its signature with the instance's secret.

    The adapter's own `sign(body, now)` is used when it has one; otherwise Jira and Zendesk are
    signed here as the products document it. Raises ValueError when the secret is not available.
    """
    sign = getattr(inst.adapter, "sign", None)
    if callable(sign):
        return dict(sign(body, now))
    if inst.product == "jira":
        return _sign_jira(inst, body, env, delivery_id or f"test-{uuid.uuid4()}")
    if inst.product == "zendesk":
        return _sign_zendesk(inst, body, env, now)
    raise ValueError(f"instance {inst.name!r}: cannot sign test events for product {inst.product!r}")


def _secret(env: Mapping[str, str], name: str | None, inst: InstanceConfig, key: str) -> str:
    if not name:
        raise ValueError(f"instance {inst.name!r}: no {key} configured, so there is no secret to sign with")
    value = env.get(name)
    if not value:
        raise ValueError(f"instance {inst.name!r}: environment variable {name} ({key}) is not set")
    return value


def _sign_jira(inst: InstanceConfig, body: bytes, env: Mapping[str, str], delivery: str) -> dict[str, str]:
    # Jira keeps one identifier per delivery across its retries: pass the same one to test dedupe.
    headers = {"X-Atlassian-Webhook-Identifier": delivery}
    settings = inst.settings
    if settings.get("webhook_secret_env"):
        secret = _secret(env, settings["webhook_secret_env"], inst, "webhook_secret_env")
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        headers["X-Hub-Signature"] = f"sha256={digest}"
        return headers
    # Only an Automation rule is configured: it sends the shared secret in a header.
    secret = _secret(env, settings.get("automation_secret_env"), inst, "automation_secret_env")
    headers[settings.get("automation_header", "X-Automation-Secret")] = secret
    return headers


def _sign_zendesk(inst: InstanceConfig, body: bytes, env: Mapping[str, str], now: datetime) -> dict[str, str]:
    from adapters.zendesk.signature import sign

    secret = _secret(env, (inst.settings.get("webhook") or {}).get("secret_env"), inst, "webhook.secret_env")
    timestamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "X-Zendesk-Webhook-Signature": sign(secret, timestamp, body),
        "X-Zendesk-Webhook-Signature-Timestamp": timestamp,
    }
