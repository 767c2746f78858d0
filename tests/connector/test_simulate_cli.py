"""`sla-connector simulate`: a period's tickets replayed through a proposed policy file, read from the real
test Redis, figures by value, bad input with exit 2, and nothing written.

The configuration (tests/connector/fakes/replay_setup.py): resolution on a 24x7 UTC calendar, 10h for every
priority, a warning at 50% and a breach level. January 2026 in UTC is the period; tickets are evaluated
at 2026-02-01 00:00Z.
"""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from connector.cli import replay
from connector.state.store import events_key
from tests.connector.fakes.cli import CliConfig, run
from tests.connector.fakes.replay_setup import CONFIG, JAN, store_ticket, write_config

PROPOSED = """
    policies:
      - id: test
        version: 1
        metrics:
          resolution: {calendar: always, targets: {low: 2h30m, normal: 2h30m, high: 2h30m, urgent: 2h30m}}
        escalations:
          - {name: warning, metric: resolution, at: "50%", actions: [{tag: sla-warning}]}
          - {name: breach, metric: resolution, at: breach, actions: [{tag: sla-breached}]}
"""


@pytest.fixture
def config_path(cli_config_file: CliConfig) -> Path:
    return write_config(cli_config_file)


@pytest.fixture
def proposed(tmp_path: Path) -> Path:
    path = tmp_path / "proposed.yaml"
    path.write_text(textwrap.dedent(PROPOSED))
    return path


def january(conn: redis.Redis) -> None:
    """Five tickets solved after 1h, 2h, 3h, 4h and 6h; one open for 4h at the period's end; one solved
    in December (before the period); one created in February (after it)."""
    for i, hours in enumerate((1, 2, 3, 4, 6), start=1):
        store_ticket(conn, f"T{i}", JAN + timedelta(days=i), timedelta(hours=hours))
    store_ticket(conn, "OPEN", datetime(2026, 1, 31, 20, tzinfo=UTC), None)
    store_ticket(conn, "DEC", datetime(2025, 12, 1, 9, tzinfo=UTC), timedelta(hours=30))
    store_ticket(conn, "FEB", datetime(2026, 2, 2, 9, tzinfo=UTC), None)


def simulate_json(
    capsys: pytest.CaptureFixture[str], config: Path, proposed: Path, *extra: str
) -> dict[str, Any]:
    code, out, err = run(
        capsys,
        "--config",
        str(config),
        "simulate",
        "--policies",
        str(proposed),
        "--from",
        "2026-01",
        "--to",
        "2026-01",
        "--format",
        "json",
        *extra,
    )
    assert code == 0, err
    return json.loads(out)


def test_a_shorter_target_turns_three_of_five_met_tickets_into_breaches(
    capsys: pytest.CaptureFixture[str], config_path: Path, proposed: Path, redis_conn: redis.Redis
) -> None:
    january(redis_conn)
    result = simulate_json(capsys, config_path, proposed, "--instance", "desk")
    assert (result["tickets"], result["skipped"], result["unreadable"]) == (6, 2, [])
    assert result["evaluated_at"] == "2026-02-01T00:00:00+00:00"
    (row,) = result["rows"]
    assert (row["instance"], row["priority"], row["metric"]) == ("desk", "normal", "resolution")
    assert row["current"] == {
        "in_scope": 6, "met": 5, "breached": 0, "open": 1, "share_met": 1.0, "targets_s": [36000],
        "levels": {"warning": 1},  # the 6h ticket passed 5h; the open one is at 4h
    }  # fmt: skip
    assert row["proposed"] == {
        "in_scope": 6, "met": 2, "breached": 3, "open": 1, "share_met": 0.4, "targets_s": [9000],
        # warning at 1h15m: 2h, 3h, 4h, 6h and the open one; breach at 2h30m: 3h, 4h, 6h and the open one
        "levels": {"breach": 4, "warning": 5},
    }  # fmt: skip
    assert row["change"] == {
        "in_scope": 0, "met": -3, "breached": 3, "open": 0, "share_met": pytest.approx(-0.6),
        "levels": {"breach": 4, "warning": 4},
    }  # fmt: skip


def test_the_table_shows_both_sides_and_the_difference(
    capsys: pytest.CaptureFixture[str], config_path: Path, proposed: Path, redis_conn: redis.Redis
) -> None:
    january(redis_conn)
    code, out, err = run(
        capsys,
        "--config",
        str(config_path),
        "simulate",
        "--policies",
        str(proposed),
        "--from",
        "2026-01",
        "--to",
        "2026-01",
        "--instance",
        "desk",
    )
    assert code == 0, err
    assert err == ""  # no progress bar when stderr is not a terminal
    lines = out.splitlines()
    assert lines[0] == (
        "simulate 2026-01 .. 2026-01 (desk), tickets evaluated as of 2026-02-01T00:00:00+00:00: "
        "6 replayed, 2 outside the period (finished before it or created after it)"
    )
    assert lines[1] == f"current: {config_path}; proposed: {proposed}"
    header = lines.index(next(line for line in lines if line.startswith("INSTANCE")))
    assert lines[header].split() == [
        "INSTANCE",
        "PRIORITY",
        "METRIC",
        "TARGET",
        "IN",
        "SCOPE",
        "MET",
        "BREACHED",
        "OPEN",
        "SHARE",
        "MET",
    ]
    cells = [c for c in lines[header + 1].split("  ") if c.strip()]
    assert [c.strip() for c in cells] == [
        "desk",
        "normal",
        "resolution",
        "10h -> 2h30m",
        "6",
        "5 -> 2 (-3)",
        "0 -> 3 (+3)",
        "1",
        "100.0% -> 40.0% (-60.0 pts)",
    ]
    assert lines[header + 2] == "  escalations reached: breach 0 -> 4 (+4), warning 1 -> 5 (+4)"


def test_every_instance_by_default_and_the_same_figures_from_two_processes(
    capsys: pytest.CaptureFixture[str],
    config_path: Path,
    proposed: Path,
    redis_conn: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    january(redis_conn)
    for i in range(9):  # the other instance: nine tickets solved after 30m .. 4h30m, high priority
        store_ticket(
            redis_conn, f"O{i}", JAN + timedelta(hours=i), timedelta(minutes=30 * (i + 1)), "other", "high"
        )
    monkeypatch.setattr(replay, "CHUNK", 2)  # 4 + 5 chunks: the pool has work for both processes
    one = simulate_json(capsys, config_path, proposed, "--processes", "1")
    two = simulate_json(capsys, config_path, proposed, "--processes", "2")
    assert one == two
    assert [(r["instance"], r["priority"]) for r in one["rows"]] == [("desk", "normal"), ("other", "high")]
    other = one["rows"][1]
    # 2h30m: 30m .. 2h30m are met (5), 3h .. 4h30m breached (4)
    assert (other["current"]["met"], other["proposed"]["met"], other["proposed"]["breached"]) == (9, 5, 4)
    assert one["tickets"] == 15


def test_a_proposed_calendar_replaces_the_configured_one(
    capsys: pytest.CaptureFixture[str], config_path: Path, tmp_path: Path, redis_conn: redis.Redis
) -> None:
    """Same targets, but service hours 09:00-17:00 on weekdays: a ticket created Friday 16:00 and solved
    Monday 10:00 took 66h of 24x7 time (breached) and 2h of business time (met)."""
    store_ticket(redis_conn, "W", datetime(2026, 1, 16, 16, tzinfo=UTC), timedelta(hours=66))
    path = tmp_path / "hours.yaml"
    path.write_text(
        textwrap.dedent(CONFIG).split("calendars:")[0].replace("instances:", "ignored:")
        + "calendars:\n  always: {timezone: UTC, hours: {mon-fri: ['09:00-17:00']}}\n"
        + "policies:"
        + textwrap.dedent(CONFIG).split("policies:")[1]
    )
    (row,) = simulate_json(capsys, config_path, path)["rows"]
    assert (row["current"]["breached"], row["proposed"]["met"]) == (1, 1)
    assert row["current"]["levels"] == {"breach": 1, "warning": 1} and row["proposed"]["levels"] == {}


def test_tickets_looked_at_by_the_worker_are_replayed(
    capsys: pytest.CaptureFixture[str], config_path: Path, proposed: Path, redis_conn: redis.Redis
) -> None:
    """Deliveries through the receiver's intake and a burst RQ worker, then simulated from their logs."""
    from connector.config.loader import load_config
    from tests.connector.fakes.harness import Clock, drain, make_context, post
    from tests.connector.fakes.sla_config import changed, created

    for i, hours in enumerate((1, 3, 4)):
        at = JAN + timedelta(days=i)
        post(
            redis_conn,
            f"d{i}",
            f"K{i}",
            [created(f"K{i}", at), changed(f"K{i}", at + timedelta(hours=hours), f"K{i}-s", status="solved")],
        )
    clock = Clock(datetime(2026, 1, 20, tzinfo=UTC))
    drained = drain(make_context(redis_conn, load_config(config_path), clock=clock))
    assert sorted(drained.tickets) == ["K0", "K1", "K2"] and not drained.failures
    (row,) = simulate_json(capsys, config_path, proposed)["rows"]
    assert (row["current"]["met"], row["proposed"]["met"], row["proposed"]["breached"]) == (3, 1, 2)


def test_nothing_is_written(
    capsys: pytest.CaptureFixture[str], config_path: Path, proposed: Path, redis_conn: redis.Redis
) -> None:
    january(redis_conn)
    keys = sorted(redis_conn.keys())
    writes = redis_conn.info("persistence")["rdb_changes_since_last_save"]
    simulate_json(capsys, config_path, proposed, "--processes", "2")
    assert redis_conn.info("persistence")["rdb_changes_since_last_save"] == writes
    assert sorted(redis_conn.keys()) == keys


def test_an_unreadable_log_is_named_and_left_out(
    capsys: pytest.CaptureFixture[str], config_path: Path, proposed: Path, redis_conn: redis.Redis
) -> None:
    january(redis_conn)
    redis_conn.rpush(events_key("desk", "BAD"), "not json")
    result = simulate_json(capsys, config_path, proposed, "--instance", "desk")
    (message,) = result["unreadable"]
    assert message.startswith("event log of ticket 'BAD': JSONDecodeError")
    assert result["tickets"] == 6


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--instance", "nope"], "unknown instance 'nope' (configured: desk, other)"),
        (["--from", "2026-03", "--to", "2026-01"], "--from/--to: period 2026-03 .. 2026-01 is inverted"),
        (["--from", "January"], "--from/--to: period 'January' is not one of 2026, 2026-Q1"),
        (["--from", "2026-13"], "--from/--to: period '2026-13' does not exist"),
        (
            ["--from", "2026-01-15T10:00:00Z", "--to", "2026-01-15T10:00:00Z"],
            "--from/--to: period 2026-01-15T10:00:00Z .. 2026-01-15T10:00:00Z is empty",
        ),
        (["--processes", "0"], "--processes must be 1 or more, got 0"),
    ],
)
def test_bad_arguments_exit_2(
    capsys: pytest.CaptureFixture[str], config_path: Path, proposed: Path, argv: list[str], message: str
) -> None:
    args = {"--from": "2026-01", "--to": "2026-01"}
    for i in range(0, len(argv), 2):
        args[argv[i]] = argv[i + 1]
    code, out, err = run(
        capsys,
        "--config",
        str(config_path),
        "simulate",
        "--policies",
        str(proposed),
        *(x for kv in args.items() for x in kv),
    )
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {message}"), err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            PROPOSED.replace("2h30m", "4x", 1),
            "policies[0].metrics.resolution.targets.low: '4x' is not a duration",
        ),
        (
            PROPOSED.replace("calendar: always", "calendar: tokyo"),
            "policies[0].metrics.resolution.calendar: unknown calendar 'tokyo' (known: always)",
        ),
        (
            "- id: test\n",
            "expected a mapping with `policies` (a list, as in the configuration) and optionally "
            "`calendars`, found a list",
        ),
        ("policies: {id: test}\n", "policies: expected a list of policies, found dict"),
        ("calendars: []\npolicies: []\n", "calendars: expected a mapping of calendars, found list"),
        ("policies: []\npolicies: []\n", "line 2, column 1: invalid YAML: duplicate key 'policies'"),
        ("", "expected a mapping with `policies`"),
    ],
)
def test_a_policy_file_that_does_not_validate_exits_2_naming_the_file_and_path(
    capsys: pytest.CaptureFixture[str], config_path: Path, tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent(text))
    code, out, err = run(
        capsys,
        "--config",
        str(config_path),
        "simulate",
        "--policies",
        str(path),
        "--from",
        "2026-01",
        "--to",
        "2026-01",
    )
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {path}: {message}"), err


def test_a_missing_policy_file_exits_2(
    capsys: pytest.CaptureFixture[str], config_path: Path, tmp_path: Path
) -> None:
    code, _, err = run(
        capsys,
        "--config",
        str(config_path),
        "simulate",
        "--policies",
        str(tmp_path / "no.yaml"),
        "--from",
        "2026-01",
        "--to",
        "2026-01",
    )
    assert code == 2
    assert err == f"error: {tmp_path / 'no.yaml'}: no such file\n"


def test_a_progress_bar_when_asked_and_on_a_terminal_only(
    capsys: pytest.CaptureFixture[str], config_path: Path, redis_conn: redis.Redis
) -> None:
    from connector.config.loader import load_config
    from sla.periods import ReportPeriod
    from sla.simulate import Simulation

    january(redis_conn)
    config = load_config(config_path)
    sides = (config.policies, config.calendars)
    now = datetime(2026, 3, 1, tzinfo=UTC)
    sim = Simulation(sides, sides, ReportPeriod("2026-01", "2026-01"), now)
    assert replay.replay(redis_conn, ["desk"], sim, processes=1, progress=True) == []
    assert "8/8" in capsys.readouterr().err  # every ticket with a log, replayed or found outside
    sim = Simulation(sides, sides, ReportPeriod("2026-01", "2026-01"), now)
    assert replay.replay(redis_conn, ["desk"], sim, processes=2, chunk=3, progress=True) == []
    assert "8/8" in capsys.readouterr().err and sim.counts.tickets == 6
    sim = Simulation(sides, sides, ReportPeriod("2026-01", "2026-01"), now)
    replay.replay(redis_conn, ["desk"], sim, processes=1)  # stderr is not a terminal here
    assert capsys.readouterr().err == ""
    assert sim.counts.tickets == 6
