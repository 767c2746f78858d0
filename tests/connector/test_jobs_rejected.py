"""A value the product refuses is recorded once as rejected: not retried, not a failed ticket.

The real Jira adapter writes to the fake Jira server over HTTP (tests/connector/fakes/products.py),
with the real engine and the real Redis: at the breach the policy sets a tag, a priority and a
comment in one write-back; Jira answers the coalesced PUT with a 400 naming `priority`
(`{"errorMessages": [], "errors": {"priority": "..."}}`, its documented shape).
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from rq.registry import ScheduledJobRegistry

from connector.config.loader import Config, config_from_dict
from connector.config.tuning import PipelineSettings
from connector.jobs.context import Context
from connector.receiver.intake import accept
from connector.state import failed, queues, status, store, timers
from connector.state.ticket_view import ticket_state

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fakes.harness import Clock, Drained, drain, make_context  # noqa: E402
from fakes.products import Answer, FakeJira  # noqa: E402
from fakes.stack import CONNECTOR_ACCOUNT, jira_created  # noqa: E402

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
ISSUE = "10042"
PATH = f"/rest/api/3/issue/{ISSUE}"
PRIORITY_KEY = "action:fast/resolution:breach:priority"
REFUSED = Answer(400, {"errorMessages": [], "errors": {"priority": "Specify a valid priority name."}})
ENV = {"JIRA_EMAIL": "sla-bot@acme.example", "JIRA_TOKEN": "jira-token-rejected-test", "JIRA_HOOK": "hook"}


def jira_config(url: str, priority: str, *, dry_run: bool = False) -> Config:
    """10 s resolution target; at the breach: tag, `priority` and a comment."""
    policy = {
        "id": "fast",
        "version": 1,
        "metrics": {"resolution": {"calendar": "always", "targets": {"high": "10s", "normal": "10s"}}},
        "escalations": [
            {
                "name": "breach",
                "metric": "resolution",
                "at": "breach",
                "actions": [{"tag": "sla-breached"}, {"priority": priority}, {"comment": "breached"}],
            }
        ],
    }
    instance = {
        "product": "jira",
        "dry_run": dry_run,
        "base_url": url,
        "deployment": "cloud",
        "auth": {"email_env": "JIRA_EMAIL", "token_env": "JIRA_TOKEN"},
        "webhook_secret_env": "JIRA_HOOK",
        "connector_user": CONNECTOR_ACCOUNT,
        "priorities": {"Highest": "high", "High": "high", "Medium": "normal"},
        "due_timezone": "UTC",
        "max_attempts": 1,
    }
    raw = {
        "instances": {"acme": instance},
        "calendars": {"always": {"timezone": "UTC", "hours": "24x7"}},
        "policies": [policy],
    }
    return config_from_dict(raw, env=ENV, source="<test>")


@pytest.fixture
def jira() -> Any:
    fake = FakeJira([ISSUE]).start()
    yield fake
    fake.stop()


def breach(conn: redis.Redis, ctx: Context, clock: Clock, jira: FakeJira | None = None) -> Drained:
    """Create the issue, then fire its timer after the 10 s target (`jira` refuses the breach's priority);
    what the breach's look did."""
    accept(conn, "acme", "d-created", ISSUE, jira_created(ISSUE, T0), {}, datetime.now(UTC))
    drain(ctx)
    if jira is not None:
        jira.fail_next("PUT", PATH, REFUSED)
    clock.now = (T0 + timedelta(seconds=11)).timestamp()
    return drain(ctx, fire_timers_at=clock.now)


def look_again(conn: redis.Redis, ctx: Context, clock: Clock) -> None:
    clock.advance(60)
    timers.schedule(conn, "acme", ISSUE, clock.now)
    drain(ctx, fire_timers_at=clock.now)


def priority_puts(jira: FakeJira) -> list[Any]:
    puts = [r.body.get("fields", {}) for r in jira.calls("PUT", PATH)]
    return [fields["priority"] for fields in puts if "priority" in fields]


def rejected_count(conn: redis.Redis) -> float:
    series = status.counters(conn).get("effects_rejected", {})
    return sum(series.values())


def test_a_refused_value_is_recorded_once_and_the_rest_is_written(
    redis_conn: redis.Redis, jira: FakeJira, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sla_connector.jobs")
    clock = Clock(T0 + timedelta(seconds=1))
    settings = PipelineSettings(max_attempts=2)
    ctx = make_context(redis_conn, jira_config(jira.url, "high"), settings, clock=clock)
    drained = breach(redis_conn, ctx, clock, jira)

    # The PUT was sent again without the priority; the tag and the comment are on the issue.
    assert priority_puts(jira) == [{"name": "Highest"}]
    assert "sla-breached" in jira.issues[ISSUE]["labels"]
    assert len(jira.issues[ISSUE]["comments"]) == 1
    record = store.load_record(redis_conn, "acme", ISSUE)
    assert record.ledger["tag:sla-breached"] == "present"
    assert "comment:fast/resolution:breach" in record.ledger
    assert PRIORITY_KEY not in record.ledger
    assert record.rejected[PRIORITY_KEY]["value"] == "high"
    assert record.rejected[PRIORITY_KEY]["reason"] == "priority: Specify a valid priority name."
    # Not a failure: the job succeeded (no RQ retry), nothing in the failed registry, no effects_failed.
    assert drained.failures == []
    assert ScheduledJobRegistry(queue=queues.queue(redis_conn, queues.TICKETS)).count == 0
    assert failed.failed_count(redis_conn) == 0
    assert [e["kind"] for e in failed.list_failed(redis_conn)] == ["refused"]  # listed, not failed
    counters = status.counters(redis_conn)
    assert "effects_failed" not in counters
    assert counters["effects_rejected"] == {
        (("instance", "acme"), ("kind", "set_priority"), ("product", "jira")): 1.0
    }
    warned = [r for r in caplog.records if getattr(r, "event", None) == "effect_rejected"]
    assert [(r.levelno, r.effect, r.ticket) for r in warned] == [(logging.WARNING, PRIORITY_KEY, ISSUE)]
    assert "Specify a valid priority name." in warned[0].reason

    # Evaluated again (a timer, a new delivery): the product is not asked again, nothing is logged.
    writes = len([r for r in jira.requests if r.method != "GET"])
    look_again(redis_conn, ctx, clock)
    look_again(redis_conn, ctx, clock)
    assert len([r for r in jira.requests if r.method != "GET"]) == writes
    assert rejected_count(redis_conn) == 1
    assert len([r for r in caplog.records if getattr(r, "event", None) == "effect_rejected"]) == 1
    assert failed.failed_count(redis_conn) == 0


def test_a_changed_value_for_a_refused_key_is_tried_again(redis_conn: redis.Redis, jira: FakeJira) -> None:
    clock = Clock(T0 + timedelta(seconds=1))
    ctx = make_context(redis_conn, jira_config(jira.url, "high"), clock=clock)
    breach(redis_conn, ctx, clock, jira)
    assert PRIORITY_KEY in store.load_record(redis_conn, "acme", ISSUE).rejected

    # The admin changes the policy: the same action key now wants "normal" (Jira "Medium").
    changed = make_context(redis_conn, jira_config(jira.url, "normal"), clock=clock)
    look_again(redis_conn, changed, clock)
    assert priority_puts(jira) == [{"name": "Highest"}, {"name": "Medium"}]
    record = store.load_record(redis_conn, "acme", ISSUE)
    assert record.ledger[PRIORITY_KEY] == "normal" and record.rejected == {}
    # Written once: looking again sends nothing more.
    look_again(redis_conn, changed, clock)
    assert priority_puts(jira) == [{"name": "Highest"}, {"name": "Medium"}]


def test_a_value_with_no_mapping_is_rejected_before_any_call(redis_conn: redis.Redis, jira: FakeJira) -> None:
    clock = Clock(T0 + timedelta(seconds=1))
    ctx = make_context(redis_conn, jira_config(jira.url, "urgent"), clock=clock)  # no Jira priority
    breach(redis_conn, ctx, clock)
    look_again(redis_conn, ctx, clock)
    assert priority_puts(jira) == []
    record = store.load_record(redis_conn, "acme", ISSUE)
    assert "no Jira priority maps to 'urgent'" in record.rejected[PRIORITY_KEY]["reason"]
    assert record.ledger["tag:sla-breached"] == "present"
    assert failed.failed_count(redis_conn) == 0 and rejected_count(redis_conn) == 1
    # The ticket API shows it, with when and why.
    state = ticket_state(redis_conn, ctx.config, "acme", ISSUE, clock.dt)
    assert state["rejected"] == {
        PRIORITY_KEY: {
            "value": "urgent",
            "reason": "instances.acme.priorities: no Jira priority maps to 'urgent'",
            "at": (T0 + timedelta(seconds=11)).isoformat(),
        }
    }
    assert PRIORITY_KEY not in state["ledger"]


def test_failed_retry_forgets_the_refusals_so_a_fixed_mapping_is_tried(
    redis_conn: redis.Redis, jira: FakeJira
) -> None:
    clock = Clock(T0 + timedelta(seconds=1))
    ctx = make_context(redis_conn, jira_config(jira.url, "high"), clock=clock)
    breach(redis_conn, ctx, clock, jira)
    # e.g. the admin created the priority in Jira: replaying the ticket asks the product again.
    assert failed.retry_failed(redis_conn, [f"ticket:acme:{ISSUE}"]) == 1
    drain(ctx)
    assert priority_puts(jira) == [{"name": "Highest"}, {"name": "Highest"}]
    record = store.load_record(redis_conn, "acme", ISSUE)
    assert record.ledger[PRIORITY_KEY] == "high" and record.rejected == {}


def test_failed_list_shows_refusals_and_retry_all_replays_them(redis_conn: redis.Redis,
                                                                 jira: FakeJira) -> None:
    # A refusal can come from the setup (the priority does not exist yet): once the admin fixed it,
    # `failed list` shows which tickets hold refusals and `failed retry --all` asks the product again.
    clock = Clock(T0 + timedelta(seconds=1))
    ctx = make_context(redis_conn, jira_config(jira.url, "high"), clock=clock)
    breach(redis_conn, ctx, clock, jira)
    (entry,) = failed.list_failed(redis_conn)
    assert (entry["id"], entry["kind"], entry["ticket"]) == (f"ticket:acme:{ISSUE}", "refused", ISSUE)
    assert entry["error"] == f"{PRIORITY_KEY}: priority: Specify a valid priority name."
    assert failed.retry_failed(redis_conn) == 1  # --all
    drain(ctx)
    assert priority_puts(jira) == [{"name": "Highest"}, {"name": "Highest"}]
    assert failed.list_failed(redis_conn) == []
    assert store.load_record(redis_conn, "acme", ISSUE).rejected == {}
    assert failed.retry_failed(redis_conn) == 0  # nothing left to replay


def test_dry_run_instances_record_no_rejections(redis_conn: redis.Redis, jira: FakeJira) -> None:
    clock = Clock(T0 + timedelta(seconds=1))
    ctx = make_context(redis_conn, jira_config(jira.url, "urgent", dry_run=True), clock=clock)
    breach(redis_conn, ctx, clock)
    record = store.load_record(redis_conn, "acme", ISSUE)
    assert record.dry_ledger[PRIORITY_KEY] == "urgent" and record.rejected == {}
    assert jira.requests == [] and rejected_count(redis_conn) == 0
