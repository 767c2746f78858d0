"""`sla-connector review`: targets suggested from the business times in the real test Redis's event logs,
by value, as a table and JSON; the default period; bad input with exit 2; nothing written."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.connector.fakes.cli import CliConfig, run
from tests.connector.fakes.replay_setup import JAN, store_ticket, write_config


@pytest.fixture
def config_path(cli_config_file: CliConfig) -> Path:
    return write_config(cli_config_file)


def ten_tickets(conn: redis.Redis, created: datetime = JAN) -> None:
    """Ten tickets solved after 1h .. 10h (24x7 calendar, 10h target: all met)."""
    for hours in range(1, 11):
        store_ticket(conn, f"T{hours}", created + timedelta(days=hours), timedelta(hours=hours))


def review_json(capsys: pytest.CaptureFixture[str], config: Path, *extra: str) -> dict[str, Any]:
    code, out, err = run(capsys, "--config", str(config), "review", "--format", "json", *extra)
    assert code == 0, err
    return json.loads(out)


def test_the_90th_percentile_of_a_month_by_value(
    capsys: pytest.CaptureFixture[str], config_path: Path, redis_conn: redis.Redis
) -> None:
    ten_tickets(redis_conn)
    store_ticket(redis_conn, "OPEN", datetime(2026, 1, 31, 12, tzinfo=UTC), None)  # open: not ended
    result = review_json(capsys, config_path, "--from", "2026-01", "--to", "2026-01")
    assert (result["tickets"], result["skipped"], result["percentile"]) == (11, 0, 90.0)
    assert result["rows"] == [{
        "policy": "test", "priority": "normal", "metric": "resolution",
        "cycles": 10, "met": 10, "breached": 0, "share_met": 1.0, "current_target_s": 36000,
        "percentile": 90.0, "percentile_s": 9 * 3600, "suggested_s": 9 * 3600,
        "would_breach": 1, "share_met_if": 0.9,
    }]  # fmt: skip


def test_the_table_and_another_percentile(
    capsys: pytest.CaptureFixture[str], config_path: Path, redis_conn: redis.Redis
) -> None:
    ten_tickets(redis_conn)
    code, out, err = run(capsys, "--config", str(config_path), "review", "--from", "2026-01", "--to",
                         "2026-01", "--percentile", "45", "--instance", "desk")  # fmt: skip
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == (
        "review 2026-01 .. 2026-01 (desk), tickets evaluated as of 2026-02-01T00:00:00+00:00: "
        "10 evaluated, 0 outside the period (finished before it or created after it)"
    )
    assert lines[1].startswith("suggested target: the 45th percentile (nearest rank)")
    assert lines[2].split() == [
        "POLICY",
        "PRIORITY",
        "METRIC",
        "CYCLES",
        "TARGET",
        "MET",
        "NOW",
        "P45",
        "SUGGESTED",
        "WOULD",
        "BREACH",
        "WOULD",
        "MEET",
    ]
    # the 5th of 10 (ceil 4.5): 5h; would breach the 6h .. 10h ones
    assert lines[3].split() == [
        "test",
        "normal",
        "resolution",
        "10",
        "10h",
        "100.0%",
        "(0",
        "breached)",
        "5h",
        "5h",
        "5",
        "50.0%",
    ]


def test_by_default_the_last_90_days(
    capsys: pytest.CaptureFixture[str], config_path: Path, redis_conn: redis.Redis
) -> None:
    now = datetime.fromtimestamp(time.time(), UTC).replace(microsecond=0)
    ten_tickets(redis_conn, now - timedelta(days=50))  # created 49 .. 40 days ago
    store_ticket(redis_conn, "OLD", now - timedelta(days=100), timedelta(hours=2))  # before the 90 days
    result = review_json(capsys, config_path)
    assert (result["tickets"], result["skipped"]) == (10, 1)
    (row,) = result["rows"]
    assert (row["cycles"], row["suggested_s"]) == (10, 9 * 3600)
    start = datetime.fromisoformat(result["period"]["from"])
    assert timedelta(days=90) <= now + timedelta(seconds=5) - start <= timedelta(days=90, seconds=10)


def test_an_empty_period_says_so(capsys: pytest.CaptureFixture[str], config_path: Path) -> None:
    code, out, _ = run(capsys, "--config", str(config_path), "review", "--from", "2026-01", "--to", "2026-01")
    assert code == 0
    assert out.splitlines()[-1] == "no met or breached cycle ended in this period"


def test_nothing_is_written(
    capsys: pytest.CaptureFixture[str], config_path: Path, redis_conn: redis.Redis
) -> None:
    ten_tickets(redis_conn)
    writes = redis_conn.info("persistence")["rdb_changes_since_last_save"]
    review_json(capsys, config_path, "--from", "2026-01", "--to", "2026-01", "--processes", "2")
    assert redis_conn.info("persistence")["rdb_changes_since_last_save"] == writes


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--instance", "nope"], "unknown instance 'nope' (configured: desk, other)"),
        (["--from", "2026-03", "--to", "2026-01"], "--from/--to: period 2026-03 .. 2026-01 is inverted"),
        (["--from", "last quarter", "--to", "2026-01"], "--from/--to: period 'last quarter' is not one of"),
        (["--percentile", "0"], "--percentile: percentile '0' must be above 0 and at most 100"),
        (["--percentile", "101"], "--percentile: percentile '101' must be above 0 and at most 100"),
        (["--percentile", "p90"], "--percentile: percentile 'p90' is not a number"),
        (["--processes", "0"], "--processes must be 1 or more, got 0"),
    ],
)
def test_bad_arguments_exit_2(
    capsys: pytest.CaptureFixture[str], config_path: Path, argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, "--config", str(config_path), "review", *argv)
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {message}"), err
