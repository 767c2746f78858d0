"""Stalled clients cannot keep real deliveries waiting: the real `sla-connector web` (gunicorn) process.

A client that announces a Content-Length larger than the body it sends, or stops in the middle of
its headers, used to hold a whole sync worker until gunicorn's worker timeout (30 s): a handful of
them held every worker. Now each holds one thread of a worker for at most CLIENT_READ_TIMEOUT
seconds, and the stalled body is answered 408.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import redis

from connector.receiver.web import CLIENT_READ_TIMEOUT
from tests.connector.fakes.acme_jira import JIRA_FIXTURE, ROOT, jira_headers
from tests.connector.fakes.local_http import free_port
from tests.connector.fakes.process import child_env, write_config

WORKERS = 2  # as `sla-connector run` serves
STALLED = 6  # three per worker: with sync workers, a third of them was enough to block everything


def wait_healthy(base: str, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("gunicorn did not answer /healthz")


def stalled(port: int, n: int) -> socket.socket:
    """A connection that stops sending: mid-body (Content-Length too large) or, every third, mid-headers."""
    sock = socket.create_connection(("127.0.0.1", port))
    if n % 3 == 2:
        sock.sendall(b"POST /hooks/acme-jira HTTP/1.1\r\nHost: x\r\nContent-Ty")
    else:
        sock.sendall(
            b"POST /hooks/acme-jira HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 4000\r\n\r\n{"webhookEvent": '
        )
    return sock


def answer_of(sock: socket.socket, timeout: float) -> bytes:
    """What the server sends before it closes the connection (b"" for a close without an answer)."""
    sock.settimeout(timeout)
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_stalled_clients_do_not_keep_a_real_delivery_waiting(
    tmp_path: Path, redis_url: str, redis_conn: redis.Redis
) -> None:
    config = write_config(tmp_path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = child_env(REDIS_URL=redis_url)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "connector",
            "--config",
            str(config),
            "web",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(WORKERS),
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    clients: list[socket.socket] = []
    try:
        wait_healthy(base, proc)
        clients = [stalled(port, n) for n in range(STALLED)]
        time.sleep(0.5)  # every stalled request has reached a worker

        body = JIRA_FIXTURE.read_bytes()
        request = urllib.request.Request(
            f"{base}/hooks/acme-jira", data=body, method="POST", headers=jira_headers(body, "slow-clients-1")
        )
        start = time.monotonic()
        with urllib.request.urlopen(request, timeout=2) as response:  # sync workers: a timeout here
            assert response.status == 202
        assert time.monotonic() - start < 2

        # No stalled client holds its thread for good: the body is answered 408, the headers closed.
        answers = [answer_of(sock, CLIENT_READ_TIMEOUT + 5) for sock in clients]
        for n, answer in enumerate(answers):
            if n % 3 == 2:
                assert answer == b""
            else:
                assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
                assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"] == "request_timeout"
    finally:
        for sock in clients:
            sock.close()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err  # a stalled client is a warning line, not an error with a traceback
    assert "connection closed" in err
