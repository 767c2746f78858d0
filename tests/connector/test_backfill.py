"""`sla-connector backfill`: product reads faked with `responses`, tickets' inboxes and event logs in the
real test Redis, and the real RQ look jobs evaluating and writing back what backfill brought in."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import responses

from connector import backfill
from connector.cli.main import main
from connector.config.loader import Config, config_from_dict
from connector.config.tuning import PipelineSettings
from connector.jobs.context import Context
from connector.receiver.intake import accept
from connector.state import store, timers
from sla.events import EventKind, TicketEvent
from sla.timeline import dedupe

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fakes import acme_jira, acme_zendesk, testdesk  # noqa: E402
from fakes.harness import Clock, drain, make_context  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
JIRA_FIXTURES = ROOT / "adapters/jira/tests/fixtures"
ZENDESK_FIXTURES = ROOT / "adapters/zendesk/tests/fixtures"
JIRA = "https://acme.atlassian.net/rest/api/3"
ZENDESK = "https://acme.zendesk.com"
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
ENV = {
    "JIRA_EMAIL": "bot@acme.example",
    "JIRA_API_TOKEN": "jira-token-VALUE-never-shown",
    "JIRA_WEBHOOK_SECRET": "jira-webhook-secret",
    "ZENDESK_EMAIL": "bot@acme.example",
    "ZENDESK_API_TOKEN": "zendesk-token-VALUE-never-shown",
    "ZENDESK_WEBHOOK_SECRET": "zendesk-webhook-secret",
}
CONFIG = {
    "instances": {
        "acme-jira": {**acme_jira.INSTANCE, "webhook_jql": "project = SUP"},
        "acme-zendesk": acme_zendesk.INSTANCE,
    },
    "calendars": {"always": {"timezone": "UTC", "hours": "24x7"}},
    "policies": [
        {
            "id": "standard",
            "version": 1,
            "metrics": {
                "resolution": {
                    "calendar": "always",
                    "targets": dict.fromkeys(("urgent", "high", "normal", "low"), "4h"),
                }
            },
            "escalations": [
                {
                    "name": "breach",
                    "metric": "resolution",
                    "at": "breach",
                    "actions": [{"tag": "sla-breached"}],
                }
            ],
        }
    ],
}


def config(dry_run: bool = False) -> Config:
    data = json.loads(json.dumps(CONFIG))
    for inst in data["instances"].values():
        inst["dry_run"] = dry_run
    return config_from_dict(data, env=ENV, source="<test>")


def jira_fixture(name: str) -> Any:
    return json.loads((JIRA_FIXTURES / "backfill" / f"{name}.json").read_text())


def fake_jira(rsps: responses.RequestsMock, *, second_page: bool = True) -> None:
    rsps.assert_all_requests_are_fired = False
    page1, page2 = jira_fixture("cloud_search_page1"), jira_fixture("cloud_search_page2")
    if not second_page:
        page1 = {**page1, "nextPageToken": None, "isLast": True}

    def search(request: Any) -> tuple[int, dict[str, str], str]:
        # The second page answers the first page's token (a callback: every run reads both again).
        page = page2 if request.params.get("nextPageToken") == "CAEaAggD" else page1
        return 200, {}, json.dumps(page)

    rsps.add_callback(responses.GET, f"{JIRA}/search/jql", callback=search, content_type="application/json")
    rsps.get(f"{JIRA}/status", json=jira_fixture("cloud_statuses"))
    for issue in ("10042", "10043"):
        rsps.get(f"{JIRA}/issue/{issue}/changelog", json=jira_fixture(f"cloud_changelog_{issue}"))
        rsps.get(f"{JIRA}/issue/{issue}/comment", json=jira_fixture(f"cloud_comments_{issue}"))
        rsps.put(f"{JIRA}/issue/{issue}", status=204)


def run_backfill(conn: redis.Redis, cfg: Config, instance: str = "acme-jira", **kw: Any) -> list[Any]:
    return list(backfill.run(conn, cfg.instances[instance], NOW - timedelta(days=30), NOW, **kw))


def log_ids(conn: redis.Redis, instance: str, ticket: str) -> list[str]:
    return [json.loads(row)[0] for row in conn.lrange(store.events_key(instance, ticket), 0, -1)]


def pending_ids(conn: redis.Redis, instance: str, ticket: str) -> list[str]:
    """Ids of the events waiting in the ticket's inbox ("v" rows: backfill) for its next look."""
    rows = [store.decode_inbox_row(r) for r in conn.lrange(store.inbox_key(instance, ticket), 0, -1)]
    assert all(row.kind == "v" for row in rows)
    return [json.loads(e)[0] for row in rows for e in json.loads(row.body)]


def wants_a_look(conn: redis.Redis, instance: str, ticket: str) -> float | None:
    return conn.zscore(store.WANT, store.member(instance, ticket))


def known_events(conn: redis.Redis, instance: str, ticket: str) -> list[TicketEvent]:
    """The ticket's log with what waits in its inbox, as its next look will merge them."""
    rows = conn.lrange(store.events_key(instance, ticket), 0, -1)
    pending = [
        r
        for raw in conn.lrange(store.inbox_key(instance, ticket), 0, -1)
        for r in json.loads(store.decode_inbox_row(raw).body)
    ]
    return dedupe(store.decode_event(ticket, r) for r in [*rows, *pending])


def jobs_context(conn: redis.Redis, cfg: Config) -> Context:
    return make_context(conn, cfg, PipelineSettings(), clock=Clock(NOW))


# ---------------------------------------------------------------- appending


def test_backfill_appends_each_ticket_once_and_asks_for_a_look_now(redis_conn: redis.Redis) -> None:
    cfg = config(dry_run=True)
    ids_10042 = [
        "jira:10042:created",
        "jira:10042:comment:10500",
        "jira:10042:changelog:10301",
        "jira:10042:changelog:10302",
        "jira:10042:comment:10501",
    ]
    with responses.RequestsMock() as rsps:
        fake_jira(rsps)
        first = run_backfill(redis_conn, cfg)
        # Again before any look ran: what waits in the inbox counts as held.
        second = run_backfill(redis_conn, cfg)
        # Into each ticket's inbox, like a webhook's events; the ticket wants a look since now.
        assert pending_ids(redis_conn, "acme-jira", "10042") == ids_10042
        assert len(pending_ids(redis_conn, "acme-jira", "10043")) == 3  # nothing appended twice
        for ticket in ("10042", "10043"):
            assert wants_a_look(redis_conn, "acme-jira", ticket) == NOW.timestamp()
            assert log_ids(redis_conn, "acme-jira", ticket) == []  # the look job writes the log
        drained = drain(jobs_context(redis_conn, cfg))
        third = run_backfill(redis_conn, cfg)
    found = [[(o.ticket, o.events, o.new, o.known) for o in run] for run in (first, second, third)]
    assert found[0] == [("10042", 5, 5, False), ("10043", 3, 3, False)]
    assert found[1] == found[2] == [("10042", 5, 0, True), ("10043", 3, 0, True)]
    assert sorted(drained.tickets) == ["10042", "10043"]
    assert log_ids(redis_conn, "acme-jira", "10042") == ids_10042
    assert pending_ids(redis_conn, "acme-jira", "10042") == [] and redis_conn.zcard(store.WANT) == 0


def test_backfill_during_live_traffic_appends_only_what_the_webhooks_did_not_bring(
    redis_conn: redis.Redis,
) -> None:
    cfg = config(dry_run=True)
    ctx = jobs_context(redis_conn, cfg)
    webhook = json.loads((JIRA_FIXTURES / "cloud_issue_created.json").read_text())
    assert accept(redis_conn, "acme-jira", "d-created", "10042", webhook, {}, NOW)
    drain(ctx)
    assert log_ids(redis_conn, "acme-jira", "10042") == ["jira:10042:created"]
    with responses.RequestsMock() as rsps:
        fake_jira(rsps, second_page=False)
        [outcome] = run_backfill(redis_conn, cfg)
    # The creation the webhook stored is the same event: only the four later ones are new.
    assert (outcome.events, outcome.new, outcome.known) == (5, 4, True)
    assert outcome.line(dry_run=False) == "10042: 5 events, 4 new (already tracked); appended 4"
    assert len(pending_ids(redis_conn, "acme-jira", "10042")) == 4
    assert drain(ctx).tickets == ["10042"]
    assert sorted(log_ids(redis_conn, "acme-jira", "10042")) == sorted(
        [
            "jira:10042:created",
            "jira:10042:comment:10500",
            "jira:10042:changelog:10301",
            "jira:10042:changelog:10302",
            "jira:10042:comment:10501",
        ]
    )


def test_a_later_webhook_of_a_backfilled_change_is_the_same_event(redis_conn: redis.Redis) -> None:
    cfg = config(dry_run=True)
    with responses.RequestsMock() as rsps:
        fake_jira(rsps, second_page=False)
        run_backfill(redis_conn, cfg)
    webhook = json.loads((JIRA_FIXTURES / "cloud_issue_updated_status.json").read_text())
    assert accept(redis_conn, "acme-jira", "d-status", "10042", webhook, {}, NOW)
    # One look takes both: the backfilled events and the delivery, merged by the evaluation's rule.
    looks = drain(jobs_context(redis_conn, cfg)).looks
    assert [(r["deliveries"], r["events_new"]) for r in looks] == [(1, 5)]
    record = store.load_record(redis_conn, "acme-jira", "10042")
    assert record is not None
    ids = [e.event_id for e in record.events]
    assert ids.count("jira:10042:changelog:10301") == 1 and len(ids) == 5
    # The backfilled change (timed by its history) wins over the delivery's later timestamp.
    change = next(e for e in record.events if e.event_id == "jira:10042:changelog:10301")
    assert change.at == datetime(2026, 11, 27, 10, 0, 0, 500000, tzinfo=UTC)


def test_dry_run_reads_and_reports_but_writes_nothing(redis_conn: redis.Redis) -> None:
    cfg = config()
    with responses.RequestsMock() as rsps:
        fake_jira(rsps)
        outcomes = run_backfill(redis_conn, cfg, dry_run=True)
    assert [(o.ticket, o.new, o.known) for o in outcomes] == [("10042", 5, False), ("10043", 3, False)]
    assert outcomes[0].line(dry_run=True) == "10042: 5 events, 5 new (not tracked before); would append 5"
    assert redis_conn.dbsize() == 0


def test_a_deleted_ticket_that_is_not_tracked_is_skipped_and_a_bad_one_reported(
    redis_conn: redis.Redis,
) -> None:
    cfg = config()
    export = json.loads((ZENDESK_FIXTURES / "backfill/export_page2.json").read_text())
    export["tickets"][0]["status"] = "escalated"  # mapped nowhere: this ticket cannot be read
    export["tickets"][0]["custom_status_id"] = None
    with responses.RequestsMock() as rsps:
        rsps.get(f"{ZENDESK}/api/v2/incremental/tickets/cursor.json", json=export)
        rsps.get(
            f"{ZENDESK}/api/v2/tickets/5159/audits.json",
            json=json.loads((ZENDESK_FIXTURES / "backfill/audits_5159.json").read_text()),
        )
        rsps.get(f"{ZENDESK}/api/v2/users/show_many.json", json={"users": []})
        bad, deleted = run_backfill(redis_conn, cfg, "acme-zendesk")
    assert bad.error and bad.line(False).startswith("5159: failed: PayloadError: ")
    assert "status 'escalated' is not mapped" in bad.line(False)
    assert (deleted.skipped, deleted.error) == ("deleted, and not tracked", False)
    assert redis_conn.dbsize() == 0


def test_a_deletion_of_a_tracked_ticket_is_appended(redis_conn: redis.Redis) -> None:
    created = store.encode_event(
        TicketEvent("zendesk:5160:created", "5160", EventKind.CREATED, NOW - timedelta(days=7))
    )
    redis_conn.rpush(store.events_key("acme-zendesk", "5160"), created)
    export = json.loads((ZENDESK_FIXTURES / "backfill/export_page2.json").read_text())
    with responses.RequestsMock() as rsps:
        deleted_only = {**export, "tickets": export["tickets"][1:]}
        rsps.get(f"{ZENDESK}/api/v2/incremental/tickets/cursor.json", json=deleted_only)
        [outcome] = run_backfill(redis_conn, config(), "acme-zendesk")
    assert (outcome.new, outcome.known, outcome.skipped) == (1, True, None)
    # Never evaluated, now finished: stored in its log, no look asked for (see the finished tickets below).
    assert log_ids(redis_conn, "acme-zendesk", "5160") == ["zendesk:5160:created", "zendesk:5160:deleted"]
    assert wants_a_look(redis_conn, "acme-zendesk", "5160") is None


def test_a_ticket_whose_stored_log_cannot_be_read_is_reported_and_left_alone(redis_conn: redis.Redis) -> None:
    redis_conn.rpush(store.events_key("acme-jira", "10042"), "not json")
    with responses.RequestsMock() as rsps:
        fake_jira(rsps)
        broken, fine = run_backfill(redis_conn, config())
    assert broken.error and broken.line(False).startswith("10042: failed: its stored log cannot be read: ")
    assert redis_conn.lrange(store.events_key("acme-jira", "10042"), 0, -1) == [b"not json"]
    assert (fine.ticket, fine.new) == ("10043", 3)


def test_limit_stops_before_reading_the_next_page(redis_conn: redis.Redis) -> None:
    with responses.RequestsMock() as rsps:
        fake_jira(rsps)
        outcomes = run_backfill(redis_conn, config(), limit=1)
        searches = [c for c in rsps.calls if "/search/jql" in c.request.url]
    assert [o.ticket for o in outcomes] == ["10042"]
    assert len(searches) == 1


# ---------------------------------------------------------------- end to end with the worker


def test_backfill_then_a_worker_writes_the_due_date_once(redis_conn: redis.Redis) -> None:
    cfg = config()
    ctx = jobs_context(redis_conn, cfg)
    clock = ctx.clock
    with responses.RequestsMock() as rsps:
        fake_jira(rsps)
        run_backfill(redis_conn, cfg)
        drain(ctx, fire_timers_at=clock.now)
        # Again: a second backfill and look add nothing, so nothing is written again.
        run_backfill(redis_conn, cfg)
        timers.schedule(redis_conn, "acme-jira", "10043", clock.now)
        assert drain(ctx, fire_timers_at=clock.now).tickets == ["10043"]
        puts = [json.loads(c.request.body) for c in rsps.calls if c.request.method == "PUT"]
        put_urls = [c.request.url.split("?")[0] for c in rsps.calls if c.request.method == "PUT"]
    # 10043: created 2026-11-20 08:00 at priority High (4 h), solved, reopened: long breached.
    assert put_urls.count(f"{JIRA}/issue/10043") == 1
    body = puts[put_urls.index(f"{JIRA}/issue/10043")]
    assert body["fields"]["duedate"] == "2026-11-20"
    assert body["update"]["labels"] == [{"add": "sla-breached"}]
    assert len(puts) == len(set(put_urls))  # no issue written twice
    assert store.load_record(redis_conn, "acme-jira", "10043").ledger  # recorded as applied


# ---------------------------------------------------------------- --since


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", NOW - timedelta(days=30)),
        ("12h", NOW - timedelta(hours=12)),
        ("2026-10-01", datetime(2026, 10, 1, tzinfo=UTC)),
        ("2026-10-01T08:00:00+02:00", datetime(2026, 10, 1, 6, tzinfo=UTC)),
        ("2026-10-01T06:00:00Z", datetime(2026, 10, 1, 6, tzinfo=UTC)),
    ],
)
def test_since_forms(text: str, expected: datetime) -> None:
    assert backfill.parse_since(text, NOW) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0d", "must be more than 0d"),
        ("30 days", "expected a number of days or hours"),
        ("-3d", "expected a number of days or hours"),
        ("2026-13-01", "expected a number of days or hours"),
        ("2026-10-01T08:00", "an instant needs a time zone"),
        ("2026-12-01", "is not in the past"),
    ],
)
def test_bad_since_is_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        backfill.parse_since(text, NOW)


# ---------------------------------------------------------------- the command


@pytest.fixture
def cli_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str) -> Path:
    import yaml

    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("REDIS_URL", redis_url)
    data = json.loads(json.dumps(CONFIG))
    data["instances"]["desk"] = {"product": "testdesk", "base_url": "https://desk.test"}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    # A product without backfill; restored afterwards (other modules register their own testdesk).
    monkeypatch.setitem(sys.modules, "adapters.testdesk", testdesk)
    return path


def cli(capsys: pytest.CaptureFixture[str], path: Path, *argv: str) -> tuple[int, str, str]:
    code = main(["--config", str(path), "backfill", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_prints_each_ticket_and_a_summary(
    capsys: pytest.CaptureFixture[str], cli_config: Path, redis_conn: redis.Redis
) -> None:
    with responses.RequestsMock() as rsps:
        fake_jira(rsps)
        code, out, err = cli(capsys, cli_config, "acme-jira", "--since", "2026-11-21")
        assert code == 0, err
        assert out.splitlines()[:2] == [
            "10042: 5 events, 5 new (not tracked before); appended 5",
            "10043: 3 events, 3 new (not tracked before); appended 3",
        ]
        assert out.splitlines()[2] == (
            "acme-jira: 2 tickets updated since 2026-11-21T00:00:00+00:00, 8 events, 8 new, 0 skipped, "
            "0 failed (new events appended, tickets scheduled)"
        )
        code, out, _ = cli(capsys, cli_config, "acme-jira", "--since", "2026-11-21", "--dry-run")
    assert code == 0
    assert out.splitlines()[0] == "10042: 5 events, 0 new (already tracked); would append 0"
    assert out.splitlines()[-1].endswith("8 events, 0 new, 0 skipped, 0 failed (dry run: nothing written)")


def test_cli_dry_run_writes_nothing(
    capsys: pytest.CaptureFixture[str], cli_config: Path, redis_conn: redis.Redis
) -> None:
    with responses.RequestsMock() as rsps:
        fake_jira(rsps)
        code, out, _ = cli(capsys, cli_config, "acme-jira", "--dry-run", "--limit", "1")
    assert code == 0
    first, summary = out.splitlines()
    assert first == "10042: 5 events, 5 new (not tracked before); would append 5"
    assert summary.startswith("acme-jira: 1 tickets updated since ")  # 30 days before now, by default
    assert summary.endswith(", 5 events, 5 new, 0 skipped, 0 failed (dry run: nothing written)")
    assert redis_conn.dbsize() == 0


@pytest.mark.parametrize("status", [401, 403])
def test_cli_refused_credentials_name_the_variables_not_their_values(
    capsys: pytest.CaptureFixture[str], cli_config: Path, redis_conn: redis.Redis, status: int
) -> None:
    with responses.RequestsMock() as rsps:
        refused = {"errorMessages": ["Client must be authenticated to access this resource."]}
        rsps.get(f"{JIRA}/search/jql", status=status, json=refused)
        code, out, err = cli(capsys, cli_config, "acme-jira")
    assert code == 1
    assert f"jira refused the credentials of instance 'acme-jira' (HTTP {status})" in err
    assert "JIRA_EMAIL, JIRA_API_TOKEN" in err
    assert ENV["JIRA_API_TOKEN"] not in out + err
    assert redis_conn.dbsize() == 0


def test_cli_other_api_failures_exit_1_and_say_a_rerun_is_safe(
    capsys: pytest.CaptureFixture[str], cli_config: Path, redis_conn: redis.Redis
) -> None:
    with responses.RequestsMock() as rsps:
        rsps.get(f"{ZENDESK}/api/v2/incremental/tickets/cursor.json", status=503, body="down")
        code, _, err = cli(capsys, cli_config, "acme-zendesk")
    assert code == 1
    assert "zendesk API call failed (HTTP 503)" in err and "running backfill again is safe" in err


def test_cli_a_ticket_that_cannot_be_read_exits_1_after_the_others(
    capsys: pytest.CaptureFixture[str], cli_config: Path, redis_conn: redis.Redis
) -> None:
    export = json.loads((ZENDESK_FIXTURES / "backfill/export_page2.json").read_text())
    export["tickets"][0]["status"] = "escalated"
    export["tickets"][0]["custom_status_id"] = None
    with responses.RequestsMock() as rsps:
        rsps.get(f"{ZENDESK}/api/v2/incremental/tickets/cursor.json", json=export)
        rsps.get(
            f"{ZENDESK}/api/v2/tickets/5159/audits.json",
            json=json.loads((ZENDESK_FIXTURES / "backfill/audits_5159.json").read_text()),
        )
        rsps.get(f"{ZENDESK}/api/v2/users/show_many.json", json={"users": []})
        code, out, _ = cli(capsys, cli_config, "acme-zendesk")
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith("5159: failed: PayloadError:")
    assert lines[1] == "5160: skipped: deleted, and not tracked"
    assert lines[2].endswith("1 events, 0 new, 1 skipped, 1 failed (new events appended, tickets scheduled)")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ghost"], "unknown instance 'ghost' (configured: acme-jira, acme-zendesk, desk)"),
        (["acme-jira", "--since", "yesterday"], "--since 'yesterday': expected a number of days or hours"),
        (["acme-jira", "--since", "2027-01-01"], "is not in the past"),
        (["desk"], "the testdesk adapter has no backfill (no module adapters/testdesk/backfill.py)"),
    ],
)
def test_cli_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str],
    cli_config: Path,
    redis_conn: redis.Redis,
    argv: list[str],
    message: str,
) -> None:
    with responses.RequestsMock():  # no product call is made
        code, out, err = cli(capsys, cli_config, *argv)
    assert code == 2
    assert message in err and out == ""
    assert redis_conn.dbsize() == 0


@pytest.mark.parametrize("limit", ["0", "-1", "many"])
def test_cli_bad_limit_exits_2(capsys: pytest.CaptureFixture[str], cli_config: Path, limit: str) -> None:
    with pytest.raises(SystemExit) as info:
        cli(capsys, cli_config, "acme-jira", "--limit", limit)
    assert info.value.code == 2
    assert "--limit" in capsys.readouterr().err


def test_a_finished_ticket_never_evaluated_is_stored_but_not_looked_at(redis_conn: redis.Redis) -> None:
    # Its clocks have stopped: by default backfill keeps its history (should it be reopened, its
    # clocks continue from it) but asks for no evaluation, so nothing is written onto finished work.
    at = NOW - timedelta(days=3)
    solved = [
        TicketEvent("x:1:created", "1", EventKind.CREATED, at, "requester", {"status": "open"}),
        TicketEvent(
            "x:1:solved", "1", EventKind.CHANGED, at + timedelta(hours=2), "agent", {"status": "solved"}
        ),
    ]
    quiet = backfill.append_events(
        redis_conn, "acme-jira", "1", solved, NOW.timestamp(), dry_run=False, retention_s=1000
    )
    assert (quiet.new, quiet.quiet, quiet.skipped) == (2, True, None)
    assert "not evaluated" in quiet.line(dry_run=False)
    assert redis_conn.llen(store.events_key("acme-jira", "1")) == 2
    assert 0 < redis_conn.ttl(store.events_key("acme-jira", "1")) <= 1000  # kept as the workers keep it
    assert redis_conn.zcard(store.WANT) == 0 and redis_conn.dbsize() == 1  # no look asked for
    # A second run changes nothing; with --include-solved it is evaluated.
    again = backfill.append_events(redis_conn, "acme-jira", "1", solved, NOW.timestamp(), dry_run=False)
    assert again.new == 0
    later = TicketEvent("x:1:note", "1", EventKind.CHANGED, at + timedelta(hours=3), "agent", {"type": "bug"})
    taken = backfill.append_events(
        redis_conn, "acme-jira", "1", [*solved, later], NOW.timestamp(), dry_run=False, include_solved=True
    )
    assert (taken.new, taken.quiet) == (1, False) and wants_a_look(redis_conn, "acme-jira", "1")
    assert pending_ids(redis_conn, "acme-jira", "1") == ["x:1:note"]


def test_a_finished_ticket_with_a_look_coming_goes_through_its_inbox(redis_conn: redis.Redis) -> None:
    # A delivery waits for a look: the log is the look's to write (it may rewrite it), so backfill's
    # events join the inbox too, even for a solved ticket never evaluated.
    at = NOW - timedelta(days=3)
    webhook = {"id": "w-1"}
    assert accept(redis_conn, "acme-jira", "d-1", "1", webhook, {}, NOW)
    solved = [
        TicketEvent("x:1:created", "1", EventKind.CREATED, at, "requester", {"status": "open"}),
        TicketEvent(
            "x:1:solved", "1", EventKind.CHANGED, at + timedelta(hours=2), "agent", {"status": "solved"}
        ),
    ]
    outcome = backfill.append_events(redis_conn, "acme-jira", "1", solved, NOW.timestamp(), dry_run=False)
    assert (outcome.new, outcome.quiet) == (2, False)
    assert log_ids(redis_conn, "acme-jira", "1") == []
    assert redis_conn.llen(store.inbox_key("acme-jira", "1")) == 2


def test_a_skipped_solved_ticket_reopened_later_keeps_its_history(redis_conn: redis.Redis) -> None:
    # Reopened by the customer after backfill stored it quietly: the resolution clock counts the time
    # before it was solved, not the weeks it sat solved.
    from sla.evaluate import evaluate

    cfg = config()
    created_at = NOW - timedelta(days=30)
    solved = [
        TicketEvent(
            "y:2:created",
            "2",
            EventKind.CREATED,
            created_at,
            "requester",
            {"status": "open", "priority": "high"},
        ),
        TicketEvent(
            "y:2:solved",
            "2",
            EventKind.CHANGED,
            created_at + timedelta(hours=1),
            "agent",
            {"status": "solved"},
        ),
    ]
    backfill.append_events(redis_conn, "acme-jira", "2", solved, NOW.timestamp(), dry_run=False)
    reopened = TicketEvent(
        "y:2:reopened", "2", EventKind.CHANGED, NOW - timedelta(minutes=5), "requester", {"status": "open"}
    )
    redis_conn.rpush(store.events_key("acme-jira", "2"), store.encode_event(reopened))
    events = store.load_record(redis_conn, "acme-jira", "2").events
    evaluation = evaluate(cfg.policies, cfg.calendars, events, NOW, instance="acme-jira")
    assert evaluation.metrics["resolution"].elapsed < timedelta(days=1)  # not the 30 days since creation


def test_a_ticket_the_log_says_deleted_but_the_product_lists_is_restored(redis_conn: redis.Redis) -> None:
    # A Zendesk trigger-kind instance hears of no undelete: backfill sees the ticket exist again.
    at = NOW - timedelta(days=2)
    created = TicketEvent("z:9:created", "9", EventKind.CREATED, at, "requester", {"status": "open"})
    deleted = TicketEvent("z:9:deleted", "9", EventKind.DELETED, at + timedelta(hours=1))
    assert backfill.append_events(redis_conn, "acme-jira", "9", [created], NOW.timestamp(), dry_run=False).new
    assert (
        backfill.append_events(
            redis_conn, "acme-jira", "9", [created, deleted], NOW.timestamp(), dry_run=False
        ).new
        == 1
    )
    assert store.is_deleted(known_events(redis_conn, "acme-jira", "9"))
    drain(jobs_context(redis_conn, config(dry_run=True)))
    assert store.is_deleted(store.load_record(redis_conn, "acme-jira", "9").events)
    listed = backfill.append_events(redis_conn, "acme-jira", "9", [created], NOW.timestamp(), dry_run=False)
    assert listed.new == 1
    assert pending_ids(redis_conn, "acme-jira", "9") == ["backfill:restored:z:9:deleted"]
    # Once: a second run adds nothing, before the look as after it.
    assert (
        backfill.append_events(redis_conn, "acme-jira", "9", [created], NOW.timestamp(), dry_run=False).new
        == 0
    )
    drain(jobs_context(redis_conn, config(dry_run=True)))
    events = store.load_record(redis_conn, "acme-jira", "9").events
    assert not store.is_deleted(events) and events[-1].kind is EventKind.RESTORED
    assert (
        backfill.append_events(redis_conn, "acme-jira", "9", [created], NOW.timestamp(), dry_run=False).new
        == 0
    )
