"""`sla-connector status` lists the tickets whose next timer is within the hour, and breaches counted."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import redis

from connector.state import status, store
from tests.connector.fakes.acme_jira import CONFIG, SECRETS
from tests.connector.fakes.cli import CliConfig, run

NOW = 1_800_000_000.0


@pytest.fixture
def config_path(cli_config_file: CliConfig) -> Path:
    return cli_config_file(CONFIG, SECRETS)


def _timers(conn: redis.Redis, now: float, offsets: dict[str, float]) -> None:
    conn.zadd(store.TIMERS, {store.member("acme-jira", t): now + s for t, s in offsets.items()})


def test_due_soon_lists_late_then_next_within_the_hour_only(redis_conn: redis.Redis) -> None:
    _timers(redis_conn, NOW, {"1": 1800, "2": -30, "3": 3601, "4": 60})
    redis_conn.hset(store.ticket_key("acme-jira", "4"), store.META + "key", "SUP-4")
    assert status.due_soon(redis_conn, NOW) == [
        {"instance": "acme-jira", "ticket": "2", "key": None, "due_at": NOW - 30, "in_s": -30.0},
        {"instance": "acme-jira", "ticket": "4", "key": "SUP-4", "due_at": NOW + 60, "in_s": 60.0},
        {"instance": "acme-jira", "ticket": "1", "key": None, "due_at": NOW + 1800, "in_s": 1800.0},
    ]
    assert status.due_soon(redis_conn, NOW, limit=1)[0]["ticket"] == "2"
    assert status.due_soon(redis_conn, NOW - 7200) == []


def test_due_soon_is_capped_at_ten(redis_conn: redis.Redis) -> None:
    _timers(redis_conn, NOW, {str(n): n for n in range(25)})
    assert [t["ticket"] for t in status.due_soon(redis_conn, NOW)] == [str(n) for n in range(10)]


def test_status_command_prints_timers_due_and_breaches(
    capsys: pytest.CaptureFixture[str],
    config_path: Path,
    redis_conn: redis.Redis,
) -> None:
    code, out, _ = run(capsys, "--config", str(config_path), "status")
    assert code == 0 and "breaches counted" not in out and "next timers" not in out  # quiet when none
    now = time.time()
    _timers(redis_conn, now, {"10042": 600, "7": 7200})
    redis_conn.hset(store.ticket_key("acme-jira", "10042"), store.META + "key", "SUP-42")
    status.incr(
        redis_conn, "breaches", {"instance": "acme-jira", "product": "jira", "metric": "resolution"}, amount=3
    )
    code, out, _ = run(capsys, "--config", str(config_path), "status")
    lines = out.splitlines()
    assert code == 0
    assert "breaches counted: acme-jira 3" in lines
    i = lines.index("next timers within the hour (1; see `sla-connector ticket <instance> <ticket>`):")
    assert lines[i + 1].startswith("  acme-jira SUP-42 (id 10042): ") and lines[i + 1].endswith("(in 10 min)")
    assert len(lines) == i + 2  # ticket 7's timer is two hours away
    code, out, _ = run(capsys, "--config", str(config_path), "status", "--json")
    data = json.loads(out)
    assert data["breaches"] == {"acme-jira": 3.0}
    assert [t["ticket"] for t in data["due_within_hour"]] == ["10042"]
