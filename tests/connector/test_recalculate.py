"""`sla-connector recalculate`: open tickets re-evaluated after a policy change, as RQ look jobs on the test
Redis; the helpdesk (the test-only testdesk adapter) faked with `responses`."""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import responses
import yaml
from rq import SimpleWorker, Worker

from connector.cli import recalculate as command
from connector.cli.common import Failure
from connector.cli.main import main
from connector.config.loader import Config, config_from_dict, load_config
from connector.config.tuning import PipelineSettings
from connector.state import queues, status, store

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fakes import testdesk  # noqa: E402
from fakes.harness import Clock, drain, make_context, post, register_connector_worker  # noqa: E402
from fakes.sla_config import CALENDARS, changed, created, policy  # noqa: E402

BASE = "https://desk.test"
CREATED = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)  # the command evaluates at now


def policies(*, recalculating_target: str | None = None) -> list[dict[str, Any]]:
    """`test` (4h; with a version 2 that says recalculate: true when a target is given) for every
    ticket but those tagged `other`, which `other` governs (8h, never recalculated)."""
    other = {**policy("8h", "other"), "match": {"tags_any": ["other"]}}
    out = [other, policy("4h")]
    if recalculating_target:
        out.append({**policy(recalculating_target), "version": 2, "recalculate": True})
    return out


def config(**kw: Any) -> Config:
    testdesk.register()
    data = {
        "instances": {"desk": {"product": "testdesk", "base_url": BASE}},
        "calendars": CALENDARS,
        "policies": policies(**kw),
    }
    return config_from_dict(data, env={}, source="<test>")


def desk_api(rsps: responses.RequestsMock) -> None:
    rsps.assert_all_requests_are_fired = False  # comments are read only before one is posted
    for ticket in ("T-1", "T-2", "T-3"):
        rsps.add(responses.PUT, f"{BASE}/tickets/{ticket}", json={})
        rsps.add(responses.GET, f"{BASE}/tickets/{ticket}/comments", json={"comments": []})


def dues(rsps: responses.RequestsMock, ticket: str) -> list[str]:
    return [
        json.loads(c.request.body)["due"]
        for c in rsps.calls
        if c.request.method == "PUT"
        and c.request.url.endswith(f"/tickets/{ticket}")
        and "due" in json.loads(c.request.body)
    ]


def open_three_tickets(conn: redis.Redis, rsps: responses.RequestsMock) -> None:
    """T-1 open under `test`, T-2 solved under `test`, T-3 open under `other`: looked at under v1."""
    post(conn, "d-1", "T-1", [created("T-1", CREATED)])
    post(
        conn,
        "d-2",
        "T-2",
        [
            created("T-2", CREATED),
            changed("T-2", CREATED + timedelta(minutes=5), "T-2-solved", status="solved"),
        ],
    )
    post(conn, "d-3", "T-3", [created("T-3", CREATED, tags=["other"])])
    drain(make_context(conn, config(), PipelineSettings(), clock=Clock(CREATED)))
    assert dues(rsps, "T-1") == [(CREATED + timedelta(hours=4)).isoformat()]


def args(**kw: Any) -> argparse.Namespace:
    return argparse.Namespace(**{"instance": None, "policy": None, "dry_run": False, "timeout": 30.0, **kw})


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def worker_alive(redis_conn: redis.Redis) -> None:
    """An RQ worker registered on the connector's queues (the looks themselves run in `drain`)."""
    SimpleWorker(
        [queues.queue(redis_conn, queues.TICKETS)], connection=redis_conn, name="w-1"
    ).register_birth()


def write_config(path: Path, **kw: Any) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "instances": {"desk": {"product": "testdesk", "base_url": BASE}},
                "calendars": CALENDARS,
                "policies": policies(**kw),
            }
        )
    )
    return path


def run(
    conn: redis.Redis,
    path: Path,
    redis_url: str,
    capsys: pytest.CaptureFixture[str],
    stderr: io.StringIO | None = None,
    **kw: Any,
) -> tuple[int, list[str]]:
    """The command on the configuration file at `path`, its looks run by a real RQ worker (with the same
    configuration, as restarted workers would have) while it waits."""
    env = {"REDIS_URL": redis_url}
    ctx = make_context(conn, load_config(path, env), PipelineSettings())
    code = command.cmd_recalculate(
        args(config=str(path), **kw),
        env,
        stderr=stderr or io.StringIO(),
        wait=lambda: drain(ctx, dispatch=False),
    )
    return code, capsys.readouterr().out.splitlines()


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Path]]:
    """The configuration before the change (v1 only) and after it (v2 of `test`: 2h, recalculate: true)."""
    monkeypatch.setitem(sys.modules, "adapters.testdesk", testdesk)
    yield (
        write_config(tmp_path / "before.yaml"),
        write_config(tmp_path / "after.yaml", recalculating_target="2h"),
    )


def test_recalculate_moves_deadlines_after_a_target_change_and_writes_each_effect_once(
    redis_conn: redis.Redis,
    redis_url: str,
    capsys: pytest.CaptureFixture[str],
    files: tuple[Path, Path],
    worker_alive: None,
) -> None:
    with responses.RequestsMock() as rsps:
        desk_api(rsps)
        open_three_tickets(redis_conn, rsps)
        terminal = Terminal()
        code, out = run(redis_conn, files[1], redis_url, capsys, stderr=terminal)
        assert code == 0
        assert out == [
            "desk T-1: deadline moved",
            "1 of 1 open tickets looked at, 1 deadlines moved, 1 effects written",
        ]
        assert dues(rsps, "T-1")[-1] == (CREATED + timedelta(hours=2)).isoformat()
        assert "\rrecalculating [" in terminal.getvalue() and "] 1/1" in terminal.getvalue()
        # Again: the ticket is looked at, nothing is written twice.
        code, out = run(redis_conn, files[1], redis_url, capsys)
        assert (code, out) == (0, ["1 of 1 open tickets looked at, 0 deadlines moved, 0 effects written"])
        # One due date per deadline on T-1; T-3 (its policy does not ask) and T-2 (solved) untouched.
        assert len(dues(rsps, "T-1")) == 2 and len(dues(rsps, "T-3")) == 1 and len(dues(rsps, "T-2")) == 1
    assert redis_conn.zcard(store.WANT) == 0 and redis_conn.hlen(store.QUEUED) == 0


def test_dry_run_says_what_would_move_and_enqueues_nothing(
    redis_conn: redis.Redis,
    redis_url: str,
    capsys: pytest.CaptureFixture[str],
    files: tuple[Path, Path],
    worker_alive: None,
) -> None:
    with responses.RequestsMock() as rsps:
        desk_api(rsps)
        open_three_tickets(redis_conn, rsps)
        calls = len(rsps.calls)
        ledger = redis_conn.hgetall(store.ticket_key("desk", "T-1"))
        code, out = run(redis_conn, files[1], redis_url, capsys, dry_run=True)
        assert len(rsps.calls) == calls
    assert code == 0
    assert out == [
        "desk T-1: deadline would move",
        "dry run: 1 open tickets would be looked at, 1 deadlines would move, 1 effects would be "
        "written (nothing was enqueued)",
    ]
    assert redis_conn.hgetall(store.ticket_key("desk", "T-1")) == ledger
    assert redis_conn.zcard(store.WANT) == 0 and queues.queue(redis_conn, queues.TICKETS).count == 0


def test_progress_is_quiet_when_piped() -> None:
    piped, terminal = io.StringIO(), Terminal()
    for stream in (piped, terminal):
        progress = command.Progress(4, stream)
        for done in range(5):
            progress.update(done)
        progress.close()
    assert piped.getvalue() == ""
    assert terminal.getvalue().endswith("\rrecalculating [##############################] 4/4\n")


def test_a_policy_change_only_moves_the_policies_that_ask_for_it(
    redis_conn: redis.Redis,
    redis_url: str,
    capsys: pytest.CaptureFixture[str],
    files: tuple[Path, Path],
    worker_alive: None,
) -> None:
    with responses.RequestsMock() as rsps:
        desk_api(rsps)
        open_three_tickets(redis_conn, rsps)
        code, out = run(redis_conn, files[1], redis_url, capsys, policy="test")
        assert (code, out[-1]) == (0, "1 of 1 open tickets looked at, 1 deadlines moved, 1 effects written")
        # No policy asks: nothing to do, nothing looked at.
        code, out = run(redis_conn, files[0], redis_url, capsys)
    assert (code, out) == (
        0,
        [
            "no policy has a version with recalculate: true: open tickets keep the version "
            "they started under, nothing to do"
        ],
    )


# ---------------------------------------------------------------- the command line


@pytest.fixture
def cli_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str) -> Path:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setitem(sys.modules, "adapters.testdesk", testdesk)
    return write_config(tmp_path / "config.yaml", recalculating_target="2h")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--instance", "ghost"], "unknown instance 'ghost' (configured: desk)"),
        (["--policy", "vip"], "unknown policy 'vip' (configured: other, test)"),
        (["--policy", "other"], "policy 'other' has no version with recalculate: true"),
        (["--timeout", "0"], "--timeout must be more than 0 seconds, got 0"),
    ],
)
def test_bad_input_exits_2_and_enqueues_nothing(
    cli_config: Path,
    redis_conn: redis.Redis,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    assert main(["--config", str(cli_config), "recalculate", *argv]) == 2
    out, err = capsys.readouterr()
    assert message in err and out == ""
    assert redis_conn.keys() == []


def test_without_a_worker_the_looks_stay_queued_and_it_says_so(
    cli_config: Path, redis_conn: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    with responses.RequestsMock() as rsps:
        desk_api(rsps)
        open_three_tickets(redis_conn, rsps)  # by a worker that has stopped since
    assert main(["--config", str(cli_config), "recalculate"]) == 1
    err = capsys.readouterr().err
    assert "no RQ worker is running: 1 looks are queued and run when `sla-connector worker` starts" in err
    assert queues.queue(redis_conn, queues.TICKETS).count == 1


def test_a_worker_still_on_the_old_policies_stops_it_before_anything_is_enqueued(
    redis_conn: redis.Redis,
    redis_url: str,
    capsys: pytest.CaptureFixture[str],
    files: tuple[Path, Path],
) -> None:
    before, after = files
    env = {"REDIS_URL": redis_url}
    with responses.RequestsMock() as rsps:
        desk_api(rsps)
        open_three_tickets(redis_conn, rsps)
        calls = len(rsps.calls)
        # A connector worker started before the file changed publishes the digest of what it runs.
        register_connector_worker(redis_conn, load_config(before, env), "old-1")
        with pytest.raises(Failure) as failed:  # exit 1 (connector/cli/main.py)
            run(redis_conn, after, redis_url, capsys)
        assert len(rsps.calls) == calls
    message = str(failed.value)
    assert message.startswith(f"1 running worker(s) evaluate with other policies or calendars than {after} ")
    assert "(old-1)" in message and "nothing was enqueued" in message
    assert redis_conn.zcard(store.WANT) == 0 and queues.queue(redis_conn, queues.TICKETS).count == 0
    # Restarted with the new file, it publishes the new digest: no longer counted as on other policies.
    redis_conn.delete(Worker.redis_worker_namespace_prefix + "old-1")
    register_connector_worker(redis_conn, load_config(after, env), "new-1")
    assert status.workers_on_other_policies(redis_conn, load_config(after, env).sla_digest) == []
    assert status.workers_on_other_policies(redis_conn, load_config(before, env).sla_digest) == ["new-1"]
