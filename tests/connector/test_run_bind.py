"""`sla-connector run` checks that it can listen on --bind before it starts Redis, a worker or a receiver."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from connector.cli.run import _bind_problem
from tests.connector.fakes.process import child_env, write_config

ROOT = Path(__file__).resolve().parents[2]


def listening() -> socket.socket:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    return taken


def test_run_with_the_address_taken_exits_2_before_starting_anything(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    env = child_env()
    with listening() as taken:
        bind = f"127.0.0.1:{taken.getsockname()[1]}"
        command = [sys.executable, "-m", "connector", "--config", str(config), "run", "--bind", bind]
        result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr == (f"error: cannot listen on {bind} (Address already in use): stop what listens "
                             "there, or choose another address with --bind HOST:PORT\n")
    assert result.stdout == ""  # no "Embedded Redis", no receiver URL, no "Stopped."
    assert not (tmp_path / "data").exists()  # no Redis was started


def test_bind_problems_name_the_address() -> None:
    with listening() as taken:
        port = taken.getsockname()[1]
        assert "Address already in use" in (_bind_problem(f"127.0.0.1:{port}") or "")
        assert "Address already in use" in (_bind_problem(f"0.0.0.0:{port}") or "")  # the wildcard too
    assert _bind_problem(f"127.0.0.1:{port}") is None  # free again
    assert _bind_problem("localhost") == "--bind 'localhost': expected HOST:PORT, e.g. 127.0.0.1:8000"
    assert (_bind_problem("192.0.2.1:8000") or "").startswith("cannot listen on 192.0.2.1:8000 (")
    assert "stop what listens" not in (_bind_problem("192.0.2.1:8000") or "")
    assert _bind_problem("unix:/tmp/receiver.sock") is None  # gunicorn's own forms are left to it
