"""The project's ground rules, checked: a pure core, and a real private Redis for the tests."""

from __future__ import annotations

import ast
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN_IN_CORE = {"flask", "rq", "redis", "requests", "connector", "adapters", "gunicorn"}


def test_sla_core_imports_no_io_library() -> None:
    offenders = []
    for path in (ROOT / "sla").rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                if name.split(".")[0] in FORBIDDEN_IN_CORE:
                    offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == []


def test_sla_core_never_reads_the_wall_clock() -> None:
    offenders = []
    for path in (ROOT / "sla").rglob("*.py"):
        text = path.read_text()
        for needle in ("datetime.now(", "datetime.utcnow(", "time.time(", "date.today("):
            if needle in text:
                offenders.append(f"{path.relative_to(ROOT)}: {needle}")
    assert offenders == []


def test_suite_redis_is_private_and_real(redis_conn: redis.Redis) -> None:
    info = redis_conn.info("server")
    assert info["tcp_port"] == 0  # unix socket only: never someone else's server
    redis_conn.set("probe", "1")
    assert redis_conn.get("probe") == b"1"
