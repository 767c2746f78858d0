"""`sla-connector run`: receiver, worker and scheduler in one command, for a first start and small sites.

Without a Redis URL it starts an embedded redis-server with append-only persistence under the
data directory, so nothing else needs installing. The receiver (gunicorn) and the worker (with the
scheduler) run as child processes in sessions of their own, so Ctrl-C reaches only this supervisor,
which then stops them in order: the receiver first (no new deliveries), then the worker (it finishes
its batch), then Redis (last, once nobody writes to it).
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from connector.config.loader import Config
from connector.embedded_redis import DataVersionError, EmbeddedRedis, EmbeddedRedisError

SOCKET_PATH_MAX = 100  # unix socket paths are limited to about 104 bytes


def embedded_socket(config: Config) -> Path:
    """Where the embedded Redis of `run` listens for this configuration."""
    return Path(config.data_dir).resolve() / "redis" / "redis.sock"


def _child(args: argparse.Namespace, *command: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "connector",
        "--config",
        str(args.config),
        "--log-level",
        args.log_level,
        *command,
    ]


def _stop(proc: subprocess.Popen[bytes], timeout: float) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_healthy(bind: str, children: list[subprocess.Popen[bytes]], timeout: float = 30.0) -> bool:
    url = f"http://{bind}/healthz"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(c.poll() is not None for c in children):
            return False
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - our own loopback URL
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.2)
    return False


def _bind_problem(bind: str) -> str | None:
    """Why the receiver could not listen on `bind` (HOST:PORT), or None: checked before anything starts."""
    if bind.startswith(("unix:", "fd://")):
        return None
    host, _, port = bind.rpartition(":")
    if not port.isdigit():
        return f"--bind {bind!r}: expected HOST:PORT, e.g. 127.0.0.1:8000"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host.strip("[]") or None, int(port), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn does
            probe.bind(address)
    except OSError as exc:
        fix = "stop what listens there, or choose" if exc.errno == errno.EADDRINUSE else "choose"
        return f"cannot listen on {bind} ({exc.strerror or exc}): {fix} another address with --bind HOST:PORT"
    return None


def run(config: Config, args: argparse.Namespace) -> int:
    problem = _bind_problem(args.bind)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    env = dict(os.environ)
    env["SLA_CONNECTOR_CONFIG"] = str(args.config)
    embedded = None
    if not config.redis_url:
        data_dir = embedded_socket(config).parent
        if len(str(embedded_socket(config))) > SOCKET_PATH_MAX:
            print(
                f"error: data_dir {config.data_dir!r} is too deep for a unix socket; choose a shorter path",
                file=sys.stderr,
            )
            return 2
        data_dir.mkdir(parents=True, exist_ok=True)
        lock = open(data_dir / "run.lock", "w")  # held (locked) until this process exits
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(
                f"error: another `sla-connector run` is using {data_dir}; stop it or use another data_dir",
                file=sys.stderr,
            )
            return 1
        try:
            embedded = EmbeddedRedis(data_dir, persistent=True).start()
        except EmbeddedRedisError as exc:  # 2: data this redis-server cannot read; 1: it failed to start
            print(f"error: {exc}", file=sys.stderr)
            return 2 if isinstance(exc, DataVersionError) else 1
        env["REDIS_URL"] = embedded.url
        print(f"Embedded Redis (append-only persistence) in {data_dir}", flush=True)

    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    web = worker = None
    try:
        web_cmd = _child(args, "web", "--bind", args.bind, "--workers", str(args.web_workers))
        web = subprocess.Popen(web_cmd, env=env, start_new_session=True)
        worker = subprocess.Popen(_child(args, "worker"), env=env, start_new_session=True)
        children = [web, worker]
        if _wait_healthy(args.bind, children):
            print(
                f"Receiver on http://{args.bind}: POST /hooks/<instance>; Ctrl-C stops everything", flush=True
            )
        code = 0
        while not stop.wait(0.5):
            exited = [c for c in children if c.poll() is not None]
            if exited:
                which = "receiver" if exited[0] is web else "worker"
                print(
                    f"error: the {which} exited with code {exited[0].returncode}; stopping", file=sys.stderr
                )
                code = 1
                break
        return code
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if web is not None:
            _stop(web, 30)
        if worker is not None:
            _stop(worker, 60)
        if embedded is not None:
            embedded.stop()
        print("Stopped.", flush=True)
