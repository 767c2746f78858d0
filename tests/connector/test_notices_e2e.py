"""End to end: escalation notices from real worker processes, with duplicate deliveries and a worker
SIGKILLed in the middle of sending one.

The receiver over HTTP, `sla-connector worker` subprocesses with RQ's scheduler, the real Jira adapter
against the fake Jira, an SMTP server (aiosmtpd) and a signed JSON webhook receiver on 127.0.0.1. About
70 s: RQ takes a killed SimpleWorker's job back at its time limit (3 s here) + 60 s.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import signal
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from connector.state import failed, status, store

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fakes.notice_servers import FakeHook, FakeSmtp  # noqa: E402
from fakes.products import FakeJira  # noqa: E402
from fakes.stack import Stack, config_data, jira_created, wait_for  # noqa: E402

ISSUE = "10042"
HOOK_SECRET = "e2e-ops-hook-secret-0123456789"
MAIL_KEY = "notify:fast/resolution:breach:lead-mail"
HOOK_KEY = "notify:fast/resolution:breach:ops-hook"


@pytest.fixture
def servers() -> Iterator[tuple[FakeJira, FakeSmtp, FakeHook]]:
    jira = FakeJira([ISSUE]).start()
    smtp = FakeSmtp().start()
    hook = FakeHook().start()
    yield jira, smtp, hook
    hook.stop()
    smtp.stop()
    jira.stop()


def idle(conn: redis.Redis) -> bool:
    backlog = status.backlog(conn)
    return (
        backlog["tickets_waiting"] == 0
        and backlog["tickets_claimed"] == 0
        and not list(conn.scan_iter("sla:in:*"))
    )


def test_notices_go_once_per_level_across_duplicates_and_a_worker_killed_mid_send(
    tmp_path: Path, redis_url: str, redis_conn: redis.Redis, servers: tuple[FakeJira, FakeSmtp, FakeHook]
) -> None:
    jira, smtp, hook = servers
    data = config_data(jira.url, "http://127.0.0.1:9", "4s")
    data["notify_channels"] = {
        # Sent in key order: the email first, then the webhook, which the test holds and kills.
        "lead-mail": {
            "kind": "email",
            "smtp": smtp.url,
            "to": ["lead@example.com"],
            "from": "sla@example.com",
        },
        "ops-hook": {"kind": "webhook", "url": hook.url, "secret": "${E2E_HOOK_SECRET}"},
    }
    data["policies"][0]["escalations"][1]["actions"] += [{"notify": "lead-mail"}, {"notify": "ops-hook"}]
    env = {
        "SLA_CONNECTOR_JOB_TIMEOUT_S": "3",
        "SLA_CONNECTOR_MAINTENANCE_INTERVAL_S": "1",
        "E2E_HOOK_SECRET": HOOK_SECRET,
    }
    stack = Stack(tmp_path, redis_url, data, env)
    ledger_key = store.ticket_key("acme-jira", ISSUE)
    try:
        hook.hold.clear()  # the webhook takes the notice and keeps the sender waiting for its answer
        created = datetime.now(UTC).replace(microsecond=0)
        for delivery in ("d1", "d1-resent"):
            assert stack.post_jira(jira_created(ISSUE, created), delivery).status_code == 202
        victim = stack.start_worker("victim")
        wait_for(lambda: hook.received, 30, "the webhook notice at the breach", interval=0.005)
        os.kill(victim.pid, signal.SIGKILL)  # mid-send: the channel has the notice, the ledger does not
        victim.wait(10)
        hook.hold.set()
        assert [str(m["Subject"]) for m in smtp.messages] == ["SLA breach: resolution of SUP-10042"]
        assert redis_conn.hget(ledger_key, MAIL_KEY) == b"sent"  # recorded before the webhook was tried
        assert redis_conn.hget(ledger_key, HOOK_KEY) is None

        assert stack.post_jira(jira_created(ISSUE, created), "d1-third").status_code == 202
        stack.start_worker("rescuer")
        wait_for(
            lambda: redis_conn.hget(ledger_key, HOOK_KEY) == b"sent" and idle(redis_conn),
            150,
            "the rescuer to finish the killed look",
            interval=0.2,
        )
        assert stack.post_jira(jira_created(ISSUE, created), "d1-fourth").status_code == 202
        wait_for(lambda: idle(redis_conn), 20, "the last look")
        time.sleep(1.5)  # anything sent twice more would show up by now

        assert len(smtp.messages) == 1  # the email was recorded: never sent again
        first, again = hook.received  # at least once across the kill: the second says it may be a repeat
        assert (first.json["repeat"], again.json["repeat"]) == (False, True)
        assert first.json["id"] == again.json["id"] == first.headers["X-SLA-Connector-Notice"]
        assert (
            first.json["key"] == HOOK_KEY and first.json["subject"] == "SLA breach: resolution of SUP-10042"
        )
        for hit in (first, again):
            digest = hmac.new(HOOK_SECRET.encode(), hit.raw, hashlib.sha256).hexdigest()
            assert hit.headers["X-SLA-Connector-Signature"] == f"sha256={digest}"
        assert len(jira.calls("POST", f"/rest/api/3/issue/{ISSUE}/comment")) == 1
        assert not [f for f in redis_conn.hkeys(ledger_key) if f.startswith(b"#notifying:")]
        assert failed.failed_count(redis_conn) == 0
    except BaseException:
        stack.print_worker_logs("victim", "rescuer")
        raise
    finally:
        stack.stop()
