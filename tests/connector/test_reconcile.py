"""Reconciliation: lost webhooks healed by reading what changed, through real RQ jobs on the test Redis and
the helpdesks' APIs faked with `responses` (fakes/jira_reads.py; Zendesk from the backfill fixtures)."""

from __future__ import annotations

import json
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import responses
from responses import matchers

from connector.config.loader import Config, ConfigError, config_from_dict
from connector.config.tuning import PipelineSettings
from connector.jobs import reconcile
from connector.receiver.intake import accept
from connector.receiver.metrics import ReceiverMetrics
from connector.state import reconciliation, store
from sla.evaluate import evaluate
from sla.events import EventKind, Role, TicketEvent

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fakes import acme_jira, acme_zendesk, testdesk  # noqa: E402
from fakes.harness import Clock, drain, make_context  # noqa: E402
from fakes.jira_reads import AGENT, FakeJiraReads  # noqa: E402

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
ENV = {
    **acme_jira.SECRETS,
    "ZENDESK_EMAIL": "bot@acme.example",
    "ZENDESK_API_TOKEN": "zendesk-token",
    "ZENDESK_WEBHOOK_SECRET": "s",
}
JIRA = {**acme_jira.INSTANCE, "max_attempts": 1}  # a 5xx is not retried within the call: tests do not wait
ZENDESK = acme_zendesk.INSTANCE
POLICY = {
    "id": "standard",
    "version": 1,
    "metrics": {
        "first_response": {
            "calendar": "always",
            "targets": dict.fromkeys(("urgent", "high", "normal", "low"), "1h"),
        },
        "resolution": {
            "calendar": "always",
            "targets": dict.fromkeys(("urgent", "high", "normal", "low"), "8h"),
        },
    },
}
ZENDESK_FIXTURES = Path(__file__).resolve().parents[2] / "adapters/zendesk/tests/fixtures/backfill"


def config(**instances: dict[str, Any]) -> Config:
    data = {
        "instances": instances or {"acme-jira": JIRA},
        "calendars": {"always": {"timezone": "UTC", "hours": "24x7"}},
        "policies": [POLICY],
    }
    return config_from_dict(json.loads(json.dumps(data)), env=ENV, source="<test>")


def log_ids(conn: redis.Redis, ticket: str, instance: str = "acme-jira") -> list[str]:
    return sorted(json.loads(row)[0] for row in conn.lrange(store.events_key(instance, ticket), 0, -1))


def state(conn: redis.Redis, instance: str = "acme-jira") -> dict[str, str]:
    return reconciliation.read(conn, instance)


def run_due(ctx: Any) -> Any:
    """What RQ's cron scheduler and a worker do each minute: the tick, then the reconcile job it enqueued."""
    enqueued = reconcile.tick(ctx)
    assert len(enqueued) == 1, enqueued
    return drain(ctx)


# ---------------------------------------------------------------- healing


def first_seen_one_interval_ago(ctx: Any, clock: Clock) -> None:
    """The tick saw the instance 15 minutes ago (it is read from then on): the first run is due now."""
    clock.advance(-900)
    assert reconcile.tick(ctx) == []
    clock.advance(900)


def test_dropped_webhooks_are_healed_through_a_429_a_500_and_an_interruption(redis_conn: redis.Redis) -> None:
    cfg = config()
    clock = Clock(NOW)
    ctx = make_context(redis_conn, cfg, PipelineSettings(), clock=clock)
    first_seen_one_interval_ago(ctx, clock)
    with responses.RequestsMock() as rsps:
        jira = FakeJiraReads(rsps, clock)
        issues = [str(10001 + i) for i in range(6)]  # A..F
        for i, issue in enumerate(issues):
            assert accept(
                redis_conn,
                "acme-jira",
                f"c-{issue}",
                issue,
                jira.create(issue, NOW - timedelta(hours=1) + timedelta(minutes=i)),
                {},
                NOW,
            )
        for i, issue in enumerate(issues):
            webhook = jira.comment(issue, f"20{i}", NOW - timedelta(minutes=10) + timedelta(seconds=i))
            if issue not in ("10002", "10005"):  # B's and E's agent replies never arrive
                assert accept(redis_conn, "acme-jira", f"r-{issue}", issue, webhook, {}, NOW)
        drain(ctx)
        assert "jira:10002:comment:201" not in log_ids(redis_conn, "10002")

        # 1: A, then B (its reply found), then C's changelog answers 429: stop, wait what Jira asks.
        jira.fail_next(
            "/issue/10003/changelog", (429, {"Retry-After": "30"}, '{"errorMessages": ["slow down"]}')
        )
        first = run_due(ctx)
        assert state(redis_conn)["page"] == "0" and state(redis_conn)["done"] == "2"
        summary = reconciliation.summary(redis_conn, ["acme-jira"])["acme-jira"]
        assert "rate limited (429)" in summary["last_error"] and summary["missed_total"] == 1
        assert summary["next_run"] == (NOW + timedelta(seconds=30)).isoformat(timespec="seconds")
        clock.advance(10)
        assert reconcile.tick(ctx) == []  # not before Retry-After
        # 2: from the cursor (two tickets again: the overlap), then D's comments answer 500: back off.
        clock.advance(21)
        jira.fail_next("/issue/10004/comment", (500, {}, '{"errorMessages": ["down"]}'))
        run_due(ctx)
        assert state(redis_conn)["failures"] == "1" and state(redis_conn)["done"] == "3"
        assert "HTTP 500" in state(redis_conn)["last_error"]
        clock.advance(899)
        assert reconcile.tick(ctx) == []  # backing off: the interval (15 min) after the first failure
        # 3: the worker dies under the run (an exception mid-run): RQ records the failure, the cursor stays.
        clock.advance(1)
        jira.fail_next("/issue/10005/comment", RuntimeError("worker killed mid-run"))
        interrupted = run_due(ctx)
        assert any("worker killed mid-run" in line for line in interrupted.failures)
        assert state(redis_conn)["done"] == "4" and state(redis_conn)["failures"] == "2"
        # 4: resumed from the cursor (C, D again, never A or B), E's reply found, the window done.
        clock.advance(1800)
        run_due(ctx)
        assert redis_conn.hget(reconciliation.state_key("acme-jira"), "to") is None  # the window is done
        looks = drain(ctx)
    assert first.failures == []
    assert looks.tickets == ["10005"]  # B's look ran at an earlier minute's dispatch
    assert "jira:10002:comment:201" in log_ids(redis_conn, "10002")
    assert "jira:10005:comment:204" in log_ids(redis_conn, "10005")
    # Each ticket's history was read as often as its place in the interrupted runs says, and no more.
    assert [jira.reads(f"/issue/{i}/changelog") for i in issues] == [2, 3, 4, 3, 2, 1]
    summary = reconciliation.summary(redis_conn, ["acme-jira"])["acme-jira"]
    assert (summary["missed_last_run"], summary["missed_total"], summary["last_error"]) == (2, 2, None)
    assert summary["cursor"] == (NOW - timedelta(seconds=180)).isoformat(timespec="seconds")
    # The replies the webhooks lost now count as B's and E's first responses.
    for issue in ("10002", "10005"):
        record = store.load_record(redis_conn, "acme-jira", issue)
        result = evaluate(cfg.policies, cfg.calendars, record.events, clock.dt, instance="acme-jira")
        assert result.metrics["first_response"].status == "met"
    exposed = ReceiverMetrics().exposition(redis_conn)().decode()
    assert 'sla_reconcile_missed_events_total{instance="acme-jira",product="jira"} 2.0' in exposed


def test_a_run_finds_nothing_twice_and_nothing_the_webhooks_brought(redis_conn: redis.Redis) -> None:
    cfg = config()
    clock = Clock(NOW)
    ctx = make_context(redis_conn, cfg, PipelineSettings(), clock=clock)
    first_seen_one_interval_ago(ctx, clock)
    with responses.RequestsMock() as rsps:
        jira = FakeJiraReads(rsps, clock)
        accept(
            redis_conn,
            "acme-jira",
            "c-1",
            "10001",
            jira.create("10001", NOW - timedelta(minutes=20)),
            {},
            NOW,
        )
        reply = jira.comment("10001", "301", NOW - timedelta(minutes=5))
        accept(redis_conn, "acme-jira", "r-1", "10001", reply, {}, NOW)
        # The reply waits in the inbox (no look yet): it counts as held.
        run_due(ctx)
        assert reconciliation.summary(redis_conn, ["acme-jira"])["acme-jira"]["missed_last_run"] == 0
        drain(ctx)
        missed = jira.comment("10001", "302", NOW - timedelta(minutes=3), author=AGENT)  # lost
        assert missed
        clock.advance(900)
        run_due(ctx)
        clock.advance(900)
        run_due(ctx)  # the overlap reads 10001 again: nothing new
    summary = reconciliation.summary(redis_conn, ["acme-jira"])["acme-jira"]
    assert (summary["missed_last_run"], summary["missed_total"]) == (0, 1)
    assert log_ids(redis_conn, "10001").count("jira:10001:comment:302") == 1


def test_a_run_out_of_time_resumes_at_the_next_tick(redis_conn: redis.Redis) -> None:
    cfg = config()
    clock = Clock(NOW)
    ctx = make_context(redis_conn, cfg, PipelineSettings(), clock=clock)
    with responses.RequestsMock() as rsps:
        jira = FakeJiraReads(rsps, clock)
        for i in range(3):
            jira.create(str(10001 + i), NOW - timedelta(minutes=5 - i))
        first = reconcile.reconcile(ctx, "acme-jira", budget_s=0)  # stops after one ticket
        assert (first.completed, first.tickets, first.missed) == (False, 1, 1)
        assert reconcile.tick(ctx) != []  # due at once
        second = reconcile.reconcile(ctx, "acme-jira")
    assert (second.completed, second.tickets) == (True, 3)  # one again (the overlap), then the other two
    assert [jira.reads(f"/issue/{10001 + i}/changelog") for i in range(3)] == [2, 1, 1]
    assert reconciliation.summary(redis_conn, ["acme-jira"])["acme-jira"]["missed_last_run"] == 3


def test_never_two_runs_at_once_for_an_instance(redis_conn: redis.Redis) -> None:
    cfg = config()
    clock = Clock(NOW)
    ctx = make_context(redis_conn, cfg, PipelineSettings(), clock=clock)
    inside, release = threading.Event(), threading.Event()
    with responses.RequestsMock() as rsps:
        jira = FakeJiraReads(rsps, clock)
        jira.create("10001", NOW - timedelta(minutes=5))
        original = jira._search

        def slow_search(query: dict[str, str]) -> Any:
            inside.set()
            assert release.wait(10)
            return original(query)

        jira._search = slow_search  # type: ignore[method-assign]  # the product is slow to answer
        results: list[Any] = []
        first = threading.Thread(target=lambda: results.append(reconcile.reconcile(ctx, "acme-jira")))
        first.start()
        assert inside.wait(10)
        second = reconcile.reconcile(ctx, "acme-jira")  # e.g. `rq requeue`, or a second cron scheduler
        release.set()
        first.join(10)
    assert second.skipped == "another reconcile job is reading this instance" and second.tickets == 0
    assert results[0].completed and results[0].tickets == 1
    assert jira.reads("/search/jql") == 1
    assert redis_conn.get(reconciliation.lock_key("acme-jira")) is None  # released by its holder


def test_the_tick_enqueues_one_job_per_due_instance(redis_conn: redis.Redis) -> None:
    testdesk.register()
    cfg = config(
        **{
            "acme-jira": JIRA,
            "quiet-jira": {**JIRA, "reconcile_every": "off"},
            "desk": {"product": "testdesk", "base_url": "https://desk.test"},
        }
    )
    clock = Clock(NOW)
    ctx = make_context(redis_conn, cfg, PipelineSettings(), clock=clock)
    assert reconcile.tick(ctx) == []  # first sight: read from now on, the first run in one interval
    assert state(redis_conn)["from"] == repr(NOW.timestamp() - reconcile.SETTLE_S)
    clock.advance(899)
    assert reconcile.tick(ctx) == []
    clock.advance(1)
    first = reconcile.tick(ctx)
    assert len(first) == 1 and first[0].startswith(
        "reconcile-acme-jira-"
    )  # not off, not testdesk (no reader)
    assert reconcile.tick(ctx) == []  # its job is still queued: not a second one
    assert redis_conn.keys("sla:rc:quiet-jira*") == [] and redis_conn.keys("sla:rc:desk*") == []
    assert cfg.instances["quiet-jira"].reconcile_every_s == 0
    assert cfg.instances["acme-jira"].reconcile_every_s == 900


def test_a_zendesk_run_stopped_by_a_429_resumes_from_its_export_page(redis_conn: redis.Redis) -> None:
    cfg = config(**{"acme-zendesk": ZENDESK})
    clock = Clock(datetime(2026, 11, 26, 12, 0, tzinfo=UTC))
    ctx = make_context(redis_conn, cfg, PipelineSettings(), clock=clock)
    base = "https://acme.zendesk.com/api/v2"
    page1, page2 = (json.loads((ZENDESK_FIXTURES / f"export_page{n}.json").read_text()) for n in (1, 2))
    export = f"{base}/incremental/tickets/cursor.json"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        cursor = [matchers.query_param_matcher({"cursor": page1["after_cursor"]})]
        rsps.get(
            export, status=429, headers={"Retry-After": "60"}, json={"error": "TooManyRequests"}, match=cursor
        )
        rsps.get(export, json=page2, match=cursor)
        rsps.get(export, json=page1)
        audits = f"{base}/tickets/5158/audits.json"
        later = {"page[after]": "eyJvIjoiaWQiLCJ2IjoiYVFBQUFBQUFBQUFBIn0="}
        rsps.get(
            audits,
            json=_fixture("audits_5158_page2"),
            match=[matchers.query_param_matcher(later, strict_match=False)],
        )
        rsps.get(
            audits,
            json=_fixture("audits_5158_page1"),
            match=[matchers.query_param_matcher({"page[size]": "100"})],
        )
        rsps.get(f"{base}/tickets/5159/audits.json", json=_fixture("audits_5159"))
        rsps.get(f"{base}/users/show_many.json", json=_fixture("users_show_many"))
        first = reconcile.reconcile(ctx, "acme-zendesk")
        assert (first.completed, first.tickets) == (False, 1)
        assert "rate limited (429)" in (first.error or "") and state(redis_conn, "acme-zendesk")["page"] == ""
        clock.advance(60)
        second = reconcile.reconcile(ctx, "acme-zendesk")
        exports = [c.request.params for c in rsps.calls if c.request.url.startswith(export)]
    assert second.completed and second.tickets == 3 and second.unreadable == 0
    # The first page again from its start time (the overlap), then on with the export's own cursor.
    assert [sorted(p) for p in exports] == [["start_time"], ["cursor"], ["start_time"], ["cursor"]]
    assert first.missed > 0 and second.missed > 0  # 5158 then 5159: never seen by a webhook
    assert log_ids(redis_conn, "5158", "acme-zendesk") == []  # into the inbox: the look writes the log
    assert redis_conn.zscore(store.WANT, store.member("acme-zendesk", "5159")) is not None
    assert redis_conn.zscore(store.WANT, store.member("acme-zendesk", "5160")) is None  # deleted, untracked


def _fixture(name: str) -> Any:
    return json.loads((ZENDESK_FIXTURES / f"{name}.json").read_text())


# ---------------------------------------------------------------- what counts as missed


def _event(event_id: str, kind: EventKind, minute: float, **fields: Any) -> TicketEvent:
    public = True if kind is EventKind.COMMENTED else None
    at = NOW + timedelta(minutes=minute)
    return TicketEvent(event_id, "7", kind, at, Role.AGENT, fields, public=public)


def test_an_event_held_by_id_is_not_missed() -> None:
    held = [_event("z:7:comment:1", EventKind.COMMENTED, 0)]
    assert reconcile.missed_events(held, [_event("z:7:comment:1", EventKind.COMMENTED, 0.5)]) == []


def test_a_change_held_under_an_event_webhooks_id_is_not_missed() -> None:
    # A Zendesk event webhook names the change by its own id; the audit gives another, a second apart.
    held = [_event("zendesk:01HX", EventKind.CHANGED, 0, status="pending", status_name="pending")]
    audit = _event("zendesk:7:audit:9", EventKind.CHANGED, 1 / 60, status="pending", status_name="pending")
    assert reconcile.missed_events(held, [audit]) == []
    other_value = _event("zendesk:7:audit:10", EventKind.CHANGED, 0, status="open", status_name="open")
    much_later = _event("zendesk:7:audit:11", EventKind.CHANGED, 5, status="pending", status_name="pending")
    found = reconcile.missed_events(held, [other_value, much_later])
    assert [e.event_id for e in found] == ["zendesk:7:audit:10", "zendesk:7:audit:11"]


def test_a_deletion_is_missed_only_when_the_log_does_not_end_deleted() -> None:
    deletion = _event("zendesk:7:deleted", EventKind.DELETED, 1)
    assert reconcile.missed_events([_event("zendesk:X", EventKind.DELETED, 1)], [deletion]) == []
    assert reconcile.missed_events([], [deletion]) == [deletion]


def test_backoff_doubles_and_is_capped() -> None:
    assert [reconcile.backoff_s(900, n) for n in (1, 2, 3, 4, 5)] == [900, 1800, 3600, 3600, 3600]
    assert reconcile.backoff_s(7200, 3) == 7200  # never below the interval


# ---------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("30s", "'30s' is shorter than 1m, the reconcile tick"),
        ("soon", "'soon' is not a duration like 30m, 4h"),
        (True, "True: expected a duration like 15m or 1h, or off (0) to disable it"),
        (15, "15: expected a duration like 15m or 1h"),
    ],
)
def test_a_bad_reconcile_every_is_a_configuration_error_naming_its_path(value: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        config(**{"acme-jira": {**JIRA, "reconcile_every": value}})
    assert info.value.path == "instances.acme-jira.reconcile_every"
    assert message in str(info.value)


@pytest.mark.parametrize(("value", "seconds"), [("5m", 300), ("1h", 3600), ("off", 0), (0, 0), (False, 0)])
def test_reconcile_every_forms(value: Any, seconds: int) -> None:
    assert (
        config(**{"acme-jira": {**JIRA, "reconcile_every": value}}).instances["acme-jira"].reconcile_every_s
        == seconds
    )


# ---------------------------------------------------------------- status and /metrics


def test_status_shows_each_instances_reconciliation(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    redis_url: str,
    redis_conn: redis.Redis,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import yaml

    from connector.cli.main import main

    for name, value in {**ENV, "REDIS_URL": redis_url}.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "config.yaml"
    data = {
        "instances": {"acme-jira": JIRA, "quiet-jira": {**JIRA, "reconcile_every": "off"}},
        "calendars": {"always": {"timezone": "UTC", "hours": "24x7"}},
        "policies": [POLICY],
    }
    path.write_text(yaml.safe_dump(data))
    clock = Clock(NOW)
    ctx = make_context(redis_conn, config(), PipelineSettings(), clock=clock)
    with responses.RequestsMock() as rsps:
        jira = FakeJiraReads(rsps, clock)
        jira.create("10001", NOW - timedelta(minutes=5))  # its creation webhook was lost
        jira.fail_next("/issue/10001/comment", (503, {}, '{"errorMessages": ["maintenance"]}'))
        failed = reconcile.reconcile(ctx, "acme-jira")
        clock.advance(900)
        done = reconcile.reconcile(ctx, "acme-jira")
    assert failed.error and not failed.completed and done.completed and done.missed == 1
    assert main(["--config", str(path), "status"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("reconcile ")]
    assert lines == [
        "reconcile acme-jira: every 15m, last run 2026-11-27T12:15:00+00:00 found 1 events the webhooks had "
        "missed (1 in all), cursor 2026-11-27T11:57:00+00:00, next run 2026-11-27T12:30:00+00:00",
    ]  # an instance not reconciled (off, or not seen by the tick yet) has no line; --json says why
    assert main(["--config", str(path), "status", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["reconcile"]
    assert shown["quiet-jira"] == {"every_s": 0}
    assert shown["acme-jira"] == {
        "every_s": 900,
        "last_run": "2026-11-27T12:15:00+00:00",
        "missed_last_run": 1,
        "missed_total": 1,
        "cursor": "2026-11-27T11:57:00+00:00",
        "run_under_way": None,
        "next_run": "2026-11-27T12:30:00+00:00",
        "last_error": None,
    }


def test_status_says_why_a_run_stopped(redis_conn: redis.Redis) -> None:
    clock = Clock(NOW)
    ctx = make_context(redis_conn, config(), PipelineSettings(), clock=clock)
    with responses.RequestsMock() as rsps:
        jira = FakeJiraReads(rsps, clock)
        jira.create("10001", NOW - timedelta(minutes=5))
        jira.fail_next("/issue/10001/changelog", (502, {}, "<html>bad gateway</html>"))
        reconcile.reconcile(ctx, "acme-jira")
    item = reconciliation.summary(redis_conn, ["acme-jira"])["acme-jira"]
    line = reconciliation.describe("acme-jira", 900, item)
    assert line.startswith("reconcile acme-jira: every 15m, not run yet, cursor 2026-11-27T11:44:00+00:00, ")
    assert "a run under way (0 tickets of its page read), next run 2026-11-27T12:15:00+00:00" in line
    assert line.endswith("; 1 failed run(s) in a row, next in 900s")
    assert reconciliation.describe("quiet-jira", 0, None) == "reconcile quiet-jira: off"
    assert "HTTP 502" in line


def test_the_workers_cron_scheduler_runs_the_reconcile_tick_every_minute(redis_conn: redis.Redis) -> None:
    from connector.jobs.worker import cron_scheduler

    cron = cron_scheduler(redis_conn, PipelineSettings())
    ticks = {job.name: job.interval for job in cron.get_jobs()}
    assert ticks["sla-reconcile"] == 60 and "sla-dispatch" in ticks
    ctx = make_context(redis_conn, config(), PipelineSettings(), clock=Clock(NOW))
    cron.enqueue_jobs()  # what RQ's cron loop does when they are due (both are, at the start)
    drain(ctx)  # the tick runs as an RQ job: the instance is seen, its first run one interval later
    assert state(redis_conn)["next_run"] == repr(NOW.timestamp() + 900)
