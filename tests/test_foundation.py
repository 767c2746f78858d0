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


def _connector_imports() -> dict[str, set[str]]:
    """connector module -> the connector modules it imports (at any depth in the file, lazy ones too)."""
    root = Path(__file__).resolve().parent.parent
    graph: dict[str, set[str]] = {}
    for path in (root / "connector").rglob("*.py"):
        module = ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("connector"):
                names.add(node.module)
                names.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                names.update(a.name for a in node.names if a.name.startswith("connector"))
        graph[module] = names
    return {m: {n for n in names if n in graph and n != m} for m, names in graph.items()}


def test_no_two_connector_modules_import_each_other() -> None:
    graph = _connector_imports()
    pairs = sorted({tuple(sorted((a, b))) for a, deps in graph.items() for b in deps
                    if a in graph.get(b, ())})
    # A package's __init__ may import its own modules, which import from the package: not a pair of peers.
    pairs = [(a, b) for a, b in pairs if not (b.startswith(a + ".") or a.startswith(b + "."))]
    assert pairs == []
