"""An instance's `outage_start_field` through the whole path: a Jira webhook carrying the custom field,
the receiver's intake, the look job (event log, evaluation, incidents kept beside the records), and the
uptime a report computes from them (`downtime_from: outage_start`).

Real Jira adapter, real Redis, real RQ worker in this process; dry-run, so nothing is written to Jira.
"""

from __future__ import annotations

import copy
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis

from connector.config.loader import Config, config_from_dict
from connector.config.tuning import PipelineSettings
from connector.receiver.intake import accept
from connector.state import outcomes as oc

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fakes.harness import Clock, drain, make_context  # noqa: E402
from fakes.stack import jira_created, jira_time  # noqa: E402

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
ISSUE = "10042"
FIELD = "customfield_10061"
ENV = {"JIRA_EMAIL": "sla-bot@acme.example", "JIRA_TOKEN": "jira-token-outage-test", "JIRA_HOOK": "hook"}


def config(downtime_from: str = "outage_start") -> Config:
    instance = {
        "product": "jira",
        "dry_run": True,
        "base_url": "https://acme.atlassian.net",
        "deployment": "cloud",
        "auth": {"email_env": "JIRA_EMAIL", "token_env": "JIRA_TOKEN"},
        "webhook_secret_env": "JIRA_HOOK",
        "due_timezone": "Europe/Berlin",
        "outage_start_field": FIELD,
    }
    policy = {"id": "std", "version": 1,
              "metrics": {"resolution": {"calendar": "always", "targets": {"high": "8h"}}}}
    contract = {
        "id": "acme-gold", "instances": ["acme"], "timezone": "UTC", "monthly_fee": 1000, "currency": "EUR",
        "uptime": [{"service": "api", "incidents": {"match": {"type": "Incident", "tags": ["svc-api"]}},
                    "downtime_from": downtime_from, "service_hours": "24x7", "guaranteed_percent": 99.9}],
    }
    raw = {"instances": {"acme": instance}, "calendars": {"always": {"timezone": "UTC", "hours": "24x7"}},
           "policies": [policy], "contracts": [contract]}
    return config_from_dict(raw, env=ENV, source="<test>")


def created(outage: Any) -> dict[str, Any]:
    payload = jira_created(ISSUE, T0)
    fields = payload["issue"]["fields"]
    fields["issuetype"]["name"] = "Incident"
    fields["labels"] = ["svc-api"]
    fields[FIELD] = outage
    return payload


def updated(at: datetime, outage: Any, changelog_id: str, status: str | None = None) -> dict[str, Any]:
    """The outage field set to `outage` (and the status moved to `status`, category done) at `at`."""
    payload = created(outage)
    payload["webhookEvent"] = "jira:issue_updated"
    payload["timestamp"] = int(at.timestamp() * 1000)
    payload["issue"]["fields"]["updated"] = jira_time(at)
    items = [{"field": "Outage start", "fieldtype": "custom", "fieldId": FIELD, "from": None,
              "fromString": None, "to": "2026-11-27 06:30:00.0", "toString": "27/Nov/26 6:30 AM"}]
    if status:
        payload["issue"]["fields"]["status"] = copy.deepcopy(payload["issue"]["fields"]["status"])
        payload["issue"]["fields"]["status"].update({"name": status, "statusCategory": {"key": "done"}})
        items.append({"field": "status", "fieldtype": "jira", "fieldId": "status", "from": "10010",
                      "fromString": "Waiting for support", "to": "10011", "toString": status})
    payload["changelog"] = {"id": changelog_id, "items": items}
    return payload


def test_an_outage_start_stated_later_moves_the_incidents_start(redis_conn: redis.Redis) -> None:
    clock = Clock(T0 + timedelta(minutes=1))
    ctx = make_context(redis_conn, config(), PipelineSettings(), clock=clock)
    accept(redis_conn, "acme", "d-created", ISSUE, created(None), {}, datetime.now(UTC))
    drain(ctx)
    # The field is empty: the downtime starts at the creation.
    assert oc.read_incidents(redis_conn, ["acme"]) == [oc.Incident(ISSUE, "api", T0, None, "acme")]

    # An agent states the outage began at 06:30 Berlin (05:30 UTC), then resolves the issue at 11:00.
    at = T0 + timedelta(hours=1)
    accept(redis_conn, "acme", "d-outage", ISSUE, updated(at, "2026-11-27T06:30:00.000+0100", "20001"), {},
           datetime.now(UTC))
    resolved_at = T0 + timedelta(hours=2)
    done = updated(resolved_at, "2026-11-27T06:30:00.000+0100", "20002", status="Done")
    accept(redis_conn, "acme", "d-done", ISSUE, done, {}, datetime.now(UTC))
    clock.now = (resolved_at + timedelta(minutes=1)).timestamp()
    drain(ctx)
    outage_began = datetime(2026, 11, 27, 5, 30, tzinfo=UTC)
    assert oc.read_incidents(redis_conn, ["acme"]) == [
        oc.Incident(ISSUE, "api", outage_began, resolved_at, "acme")
    ]


def test_a_date_only_value_starts_at_midnight_in_the_instances_zone(redis_conn: redis.Redis) -> None:
    clock = Clock(T0 + timedelta(minutes=1))
    ctx = make_context(redis_conn, config(), PipelineSettings(), clock=clock)
    accept(redis_conn, "acme", "d-created", ISSUE, created("2026-11-27"), {}, datetime.now(UTC))
    drain(ctx)
    midnight_berlin = datetime(2026, 11, 26, 23, 0, tzinfo=UTC)
    incident = oc.Incident(ISSUE, "api", midnight_berlin, None, "acme")
    assert oc.read_incidents(redis_conn, ["acme"]) == [incident]


def test_a_contract_on_the_creation_ignores_the_field(redis_conn: redis.Redis) -> None:
    clock = Clock(T0 + timedelta(minutes=1))
    ctx = make_context(redis_conn, config("created"), PipelineSettings(), clock=clock)
    accept(redis_conn, "acme", "d-created", ISSUE, created("2026-11-27"), {}, datetime.now(UTC))
    drain(ctx)
    assert oc.read_incidents(redis_conn, ["acme"]) == [oc.Incident(ISSUE, "api", T0, None, "acme")]
