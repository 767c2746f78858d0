"""End to end: real Redis, the receiver over HTTP, worker processes with the scheduler, the real Jira
and Zendesk adapters, and fake Jira/Zendesk APIs over HTTP. Slow-ish (about 10-20 s each)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
import requests
from rq.registry import StartedJobRegistry

from connector.state import failed, queues, status, store, timers

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fakes.products import Answer, FakeJira, FakeZendesk  # noqa: E402
from fakes.stack import (  # noqa: E402
    DEADLINE_FIELD,
    Stack,
    config_data,
    jira_created,
    jira_deleted,
    jira_labels_changed,
    wait_for,
    zendesk_created,
    zendesk_tags_changed,
)

TARGET_S = 6


@pytest.fixture
def fakes():
    jira = FakeJira(["10042", "10043", "10044", "10045", "10046", "10047"]).start()
    zendesk = FakeZendesk(["5158"]).start()
    yield jira, zendesk
    jira.stop()
    zendesk.stop()


def _label_ops(jira: FakeJira, issue: str) -> Counter[tuple[str, str]]:
    ops: Counter[tuple[str, str]] = Counter()
    for r in jira.calls("PUT", f"/rest/api/3/issue/{issue}"):
        for op in ((r.body or {}).get("update") or {}).get("labels") or []:
            for verb, label in op.items():
                ops[(verb, label)] += 1
    return ops


def test_webhooks_to_write_back_once_each_with_a_breach_on_time(
    tmp_path: Path, redis_url: str, redis_conn: redis.Redis, fakes: tuple[FakeJira, FakeZendesk]
) -> None:
    jira, zendesk = fakes
    stack = Stack(
        tmp_path,
        redis_url,
        config_data(jira.url, zendesk.url, f"{TARGET_S}s"),
        {},
    )
    try:
        stack.start_worker("e2e-w1")
        wait_for(lambda: status.scheduler_alive(redis_conn), 20, "the worker's cron scheduler")
        created = datetime.now(UTC).replace(microsecond=0)
        deadline = created + timedelta(seconds=TARGET_S)

        # Out of order: the update and the tags change arrive before the creations.
        assert (
            stack.post_jira(
                jira_labels_changed("10042", created, created + timedelta(seconds=1)), "jira-d2"
            ).status_code
            == 202
        )
        assert (
            stack.post_zendesk(
                zendesk_tags_changed("5158", created, created + timedelta(seconds=1))
            ).status_code
            == 202
        )
        jira_create = jira_created("10042", created)
        assert stack.post_jira(jira_create, "jira-d1").status_code == 202
        zd_create = zendesk_created("5158", created)
        assert stack.post_zendesk(zd_create).status_code == 202
        # Retries: same delivery id -> a duplicate; a re-sent event under a new id -> no new effect.
        again = stack.post_jira(jira_create, "jira-d1")
        assert again.status_code == 200 and again.json()["status"] == "duplicate"
        assert stack.post_zendesk(zd_create).status_code == 200
        assert stack.post_jira(jira_create, "jira-d1-resent").status_code == 202

        # The due date lands first; the warning at 50% (3 s); the breach at 6 s.
        wait_for(lambda: zendesk.calls("PUT", "/api/v2/tickets/5158.json"), 10, "the Zendesk deadline")
        wait_for(lambda: jira.issues["10042"]["duedate"], 10, "the Jira due date")
        wait_for(
            lambda: (
                "sla-breached" in jira.issues["10042"]["labels"]
                and "sla-breached" in zendesk.tickets["5158"]["tags"]
                and jira.issues["10042"]["comments"]
                and len(zendesk.tickets["5158"]["comments"]) == 1
            ),
            TARGET_S + 10,
            "the breach in both products",
        )
        time.sleep(2.5)  # anything written twice would show up by now

        # Jira: due date once, each label once, the breach comment once.
        puts = jira.calls("PUT", "/rest/api/3/issue/10042")
        assert [r.body.get("fields") for r in puts if r.body.get("fields")] == [
            {"duedate": deadline.date().isoformat()}
        ]
        assert _label_ops(jira, "10042") == Counter({("add", "sla-warning"): 1, ("add", "sla-breached"): 1})
        assert len(jira.calls("POST", "/rest/api/3/issue/10042/comment")) == 1
        [comment] = jira.comment_texts("10042")
        assert "SUP-10042" in comment  # {ticket} names the issue by its key, as people do
        assert "SLA breached" in comment and "[sla-connector:fast/resolution:breach]" in comment
        warning_at = _first(jira, "PUT", "/rest/api/3/issue/10042", "sla-warning")
        breach_at = _first(jira, "PUT", "/rest/api/3/issue/10042", "sla-breached")
        assert 0 <= warning_at - (created + timedelta(seconds=TARGET_S / 2)).timestamp() <= 2.0
        assert 0 <= breach_at - deadline.timestamp() <= 2.0, breach_at - deadline.timestamp()

        # Zendesk: the deadline once (custom field), each tag once, the private note once.
        ticket_puts = zendesk.calls("PUT", "/api/v2/tickets/5158.json")
        deadlines = [
            r.body["ticket"]["custom_fields"] for r in ticket_puts if "custom_fields" in r.body["ticket"]
        ]
        assert deadlines == [[{"id": DEADLINE_FIELD, "value": deadline.strftime("%Y-%m-%dT%H:%M:%SZ")}]]
        tag_puts = [tuple(r.body["tags"]) for r in zendesk.calls("PUT", "/api/v2/tickets/5158/tags.json")]
        assert sorted(tag_puts) == [("sla-breached",), ("sla-warning",)]
        assert zendesk.calls("DELETE", "/api/v2/tickets/5158/tags.json") == []
        [note] = zendesk.tickets["5158"]["comments"]
        assert note["public"] is False and "[sla-connector:fast/resolution:breach]" in note["body"]
        zd_breach_at = min(
            r.at
            for r in zendesk.calls("PUT", "/api/v2/tickets/5158/tags.json")
            if "sla-breached" in r.body["tags"]
        )
        assert 0 <= zd_breach_at - deadline.timestamp() <= 2.0

        # The shell's HTTP surface reads the pipeline's state.
        assert requests.get(f"{stack.url}/readyz", timeout=5).status_code == 200
        state = requests.get(
            f"{stack.url}/api/tickets/acme-jira/10042",
            timeout=5,
            headers={"Authorization": "Bearer e2e-api-token"},
        ).json()
        assert state["policy_id"] == "fast" and state["event_count"] == 2
        assert state["metrics"]["resolution"]["breached_at"] is not None
        assert state["ledger"]["tag:sla-breached"] == "present"
        assert state["ledger"]["comment:fast/resolution:breach"] == "posted"
        metrics = requests.get(f"{stack.url}/metrics", timeout=5).text
        assert any(
            line.startswith("sla_")
            and "breaches" in line
            and 'instance="acme-zendesk"' in line
            and line.endswith(" 1.0")
            for line in metrics.splitlines()
        ), metrics

        # The store: every event once, nothing pending, nothing failed.
        record = store.load_record(redis_conn, "acme-jira", "10042")
        assert record is not None and record.stored_rows == len(record.events) == 2
        assert _idle(redis_conn) and failed.failed_count(redis_conn) == 0
    except BaseException:
        stack.print_worker_logs("e2e-w1")
        raise
    finally:
        stack.stop()


def _first(jira: FakeJira, method: str, path: str, label: str) -> float:
    return min(
        r.at
        for r in jira.calls(method, path)
        if any(op.get("add") == label for op in ((r.body or {}).get("update") or {}).get("labels") or [])
    )


def _idle(conn: redis.Redis) -> bool:
    """No ticket waiting for a look or holding a claim, no inbox left: everything accepted was stored."""
    backlog = status.backlog(conn)
    return (
        backlog["tickets_waiting"] == 0
        and backlog["tickets_claimed"] == 0
        and not list(conn.scan_iter("sla:in:*"))
    )


def test_a_worker_killed_mid_job_loses_nothing(
    tmp_path: Path, redis_url: str, redis_conn: redis.Redis, fakes: tuple[FakeJira, FakeZendesk]
) -> None:
    jira, _ = fakes
    jira.write_delay_s = 0.5  # a slow product: the job is in the middle of its write-back
    issues = ["10042", "10043", "10044", "10045", "10046", "10047"]
    stack = Stack(
        tmp_path,
        redis_url,
        config_data(jira.url, "http://127.0.0.1:9", "1h"),
        # RQ takes a SimpleWorker's job back at its time limit + 60 s (then retries it): a short limit
        # keeps the test near a minute; the default (90 s) bounds it at about 2.5 minutes.
        {"SLA_CONNECTOR_JOB_TIMEOUT_S": "3", "SLA_CONNECTOR_MAINTENANCE_INTERVAL_S": "1"},
    )
    try:
        created = datetime.now(UTC).replace(microsecond=0)
        for issue in issues:
            assert stack.post_jira(jira_created(issue, created), f"kill-{issue}").status_code == 202
        victim = stack.start_worker("victim")
        wait_for(lambda: jira.calls("PUT"), 20, "the first write-back")
        [started_job] = StartedJobRegistry(queue=queues.queue(redis_conn, queues.TICKETS)).get_job_ids()
        os.kill(victim.pid, signal.SIGKILL)  # mid-job: its PUT is in flight
        victim.wait(10)
        started = time.monotonic()
        stack.start_worker("rescuer")

        def all_done() -> bool:
            ledgers_done = all(redis_conn.hexists(store.ticket_key("acme-jira", i), "due") for i in issues)
            return ledgers_done and _idle(redis_conn)

        wait_for(all_done, 150, "the second worker to finish the killed job", interval=0.2)
        assert time.monotonic() - started < 180  # the issue's bar: within 3 minutes
        for issue in issues:
            record = store.load_record(redis_conn, "acme-jira", issue)
            assert record is not None and len(record.events) == 1
            assert (
                "due" in record.ledger
                and jira.issues[issue]["duedate"] == (created + timedelta(hours=1)).date().isoformat()
            )
            assert jira.issues[issue]["labels"] == set()  # 1h target: no warning yet
            # At most the one write in flight at the kill is repeated (a due date: idempotent).
            assert len(jira.calls("PUT", f"/rest/api/3/issue/{issue}")) <= 2
        assert failed.failed_count(redis_conn) == 0
    except BaseException:
        stack.print_worker_logs("victim", "rescuer")
        raise
    finally:
        stack.stop()


def test_write_back_failures_are_retried_and_a_deleted_issue_ends_cleanly(
    tmp_path: Path, redis_url: str, redis_conn: redis.Redis, fakes: tuple[FakeJira, FakeZendesk]
) -> None:
    jira, zendesk = fakes
    # The adapters give up at once (1 HTTP attempt), so RQ's retries (Retry, 1 s apart) do the work.
    stack = Stack(
        tmp_path,
        redis_url,
        config_data(jira.url, zendesk.url, "1h", http_attempts=1),
        {"SLA_CONNECTOR_BACKOFF_BASE_S": "0.5"},
    )
    jira.fail_next(
        "PUT",
        "/rest/api/3/issue/10043",
        Answer(500, {"errorMessages": ["boom"], "errors": {}}),
        Answer(503, {"errorMessages": ["busy"], "errors": {}}),
    )
    zendesk.fail_next(
        "PUT", "/api/v2/tickets/5158.json", Answer(429, {"error": "TooManyRequests"}, {"Retry-After": "1"})
    )
    try:
        stack.start_worker("retry-w1")
        created = datetime.now(UTC).replace(microsecond=0)
        assert stack.post_jira(jira_created("10043", created), "r-1").status_code == 202
        assert stack.post_jira(jira_created("10099", created), "r-2").status_code == 202  # not in Jira
        assert stack.post_zendesk(zendesk_created("5158", created)).status_code == 202
        wait_for(
            lambda: jira.issues["10043"]["duedate"] and zendesk.tickets["5158"]["custom_fields"],
            30,
            "the due dates after the retries",
        )
        # The issue not in Jira: a bare 404 may be missing permission, so it is retried ...
        wait_for(lambda: len(jira.calls("PUT", "/rest/api/3/issue/10099")) >= 2, 15, "the 404 retried")
        # ... until Jira says it was deleted: then its effects end, with no failed entry.
        deleted_at = datetime.now(UTC).replace(microsecond=0)
        assert stack.post_jira(jira_deleted("10099", created, deleted_at), "r-3").status_code == 202
        wait_for(
            lambda: store.is_deleted(store.load_record(redis_conn, "acme-jira", "10099").events),
            15,
            "the deletion stored",
        )
        time.sleep(1.5)
        assert len(jira.calls("PUT", "/rest/api/3/issue/10043")) == 3  # 500, 503, then written once
        puts = zendesk.calls("PUT", "/api/v2/tickets/5158.json")
        assert len(puts) == 2 and puts[1].at - puts[0].at >= 1.0  # waited for Retry-After
        writes = len(jira.calls("PUT", "/rest/api/3/issue/10099"))
        time.sleep(1.5)
        assert len(jira.calls("PUT", "/rest/api/3/issue/10099")) == writes  # nothing more
        assert timers.due_at(redis_conn, "acme-jira", "10099") is None
        for ticket in (("acme-jira", "10043"), ("acme-zendesk", "5158")):
            record = store.load_record(redis_conn, *ticket)
            assert record is not None and "due" in record.ledger
        assert failed.failed_count(redis_conn) == 0
    except BaseException:
        stack.print_worker_logs("retry-w1")
        raise
    finally:
        stack.stop()


def test_dry_run_writes_nothing_and_records_what_it_would_have_written(
    tmp_path: Path, redis_url: str, redis_conn: redis.Redis, fakes: tuple[FakeJira, FakeZendesk]
) -> None:
    jira, zendesk = fakes
    stack = Stack(
        tmp_path,
        redis_url,
        config_data(jira.url, zendesk.url, "2s", dry_run=True),
        {},
    )
    try:
        stack.start_worker("dry-w1")
        created = datetime.now(UTC).replace(microsecond=0)
        assert stack.post_jira(jira_created("10042", created), "dry-1").status_code == 202
        assert stack.post_zendesk(zendesk_created("5158", created)).status_code == 202
        key = store.ticket_key("acme-jira", "10042")
        wait_for(
            lambda: (
                redis_conn.hexists(key, "dry:comment:fast/resolution:breach")
                and redis_conn.hexists(store.ticket_key("acme-zendesk", "5158"), "dry:tag:sla-breached")
            ),
            15,
            "the dry-run breach",
        )
        time.sleep(1.0)
        assert jira.requests == [] and zendesk.requests == []
        log = stack.worker_log("dry-w1")
        assert log.count('"effect":"comment:fast/resolution:breach"') == 2  # logged once per ticket
        assert {k.decode() for k in redis_conn.hkeys(key)} >= {
            "dry:due",
            "dry:tag:sla-warning",
            "dry:tag:sla-breached",
        }
    finally:
        stack.stop()


def test_failing_writes_end_in_rqs_failed_registry_and_a_replay_writes_once(
    tmp_path: Path, redis_url: str, redis_conn: redis.Redis, fakes: tuple[FakeJira, FakeZendesk]
) -> None:
    jira, zendesk = fakes
    stack = Stack(
        tmp_path,
        redis_url,
        config_data(jira.url, zendesk.url, "1h", http_attempts=1),
        {"SLA_CONNECTOR_MAX_ATTEMPTS": "2", "SLA_CONNECTOR_BACKOFF_BASE_S": "1"},
    )
    boom = Answer(500, {"errorMessages": ["boom"], "errors": {}})
    jira.fail_next("PUT", "/rest/api/3/issue/10044", boom, boom)
    try:
        stack.start_worker("fail-w1")
        created = datetime.now(UTC).replace(microsecond=0)
        assert stack.post_jira(jira_created("10044", created), "f-1").status_code == 202
        wait_for(lambda: failed.failed_count(redis_conn) == 1, 30, "the look in RQ's failed registry")
        [entry] = failed.list_failed(redis_conn)
        assert entry["kind"] == "job" and entry["ticket"] == "10044" and "500" in entry["error"]
        assert jira.issues["10044"]["duedate"] is None
        # The admin replays it with the CLI, as `rq requeue` would: the write lands, once.
        command = [sys.executable, "-m", "connector", "--config", str(stack.path), "failed", "retry", "--all"]
        done = subprocess.run(
            command,
            env=stack.env,
            cwd=Path(__file__).resolve().parents[2],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0 and done.stdout == "queued again: 1\n", done.stderr
        wait_for(lambda: jira.issues["10044"]["duedate"], 30, "the due date after the replay")
        wait_for(lambda: failed.failed_count(redis_conn) == 0 and _idle(redis_conn), 30, "nothing left")
        puts = [r for r in jira.calls("PUT", "/rest/api/3/issue/10044") if (r.body or {}).get("fields")]
        assert len(puts) == 3  # 500, 500, then written once
    except BaseException:
        stack.print_worker_logs("fail-w1")
        raise
    finally:
        stack.stop()


def test_a_redis_restart_keeps_what_was_accepted_for_the_workers(
    tmp_path: Path, fakes: tuple[FakeJira, FakeZendesk]
) -> None:
    from connector.embedded_redis import EmbeddedRedis

    jira, zendesk = fakes
    server = EmbeddedRedis(tmp_path / "r", persistent=True).start()
    stack = Stack(tmp_path, server.url, config_data(jira.url, zendesk.url, "1h"), {})
    try:
        created = datetime.now(UTC).replace(microsecond=0)
        assert stack.post_jira(jira_created("10045", created), "rs-1").status_code == 202  # no worker yet
        server.stop()  # Redis writes its append-only file out and stops
        server = EmbeddedRedis(tmp_path / "r", persistent=True).start()
        stack.start_worker("restart-w1")
        wait_for(lambda: jira.issues["10045"]["duedate"], 30, "the due date of the kept delivery")
        conn = redis.Redis.from_url(server.url)
        wait_for(lambda: _idle(conn), 30, "nothing left")
        assert timers.due_at(conn, "acme-jira", "10045") is not None  # the next look is pending
        conn.close()
    except BaseException:
        stack.print_worker_logs("restart-w1")
        raise
    finally:
        stack.stop()
        server.stop()
