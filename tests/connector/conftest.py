"""Fixtures the connector tests share: the root logger put back after each test, and configuration
files for the commands run in process."""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.connector.fakes.cli import CliConfig


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """`main()` configures the root logger for the process; put back what pytest had."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def cli_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str) -> CliConfig:
    """Writes tmp_path/config.yaml from a YAML text (dedented, its data under tmp_path/data) and sets
    the environment a command reads it with: the secrets, the test Redis in REDIS_URL (or no REDIS_URL
    at all with `redis=False`, for the commands that start an embedded one) and no
    SLA_CONNECTOR_CONFIG."""

    def write(text: str, secrets: Mapping[str, str] | None = None, *, redis: bool = True) -> Path:
        for name, value in (secrets or {}).items():
            monkeypatch.setenv(name, value)
        if redis:
            monkeypatch.setenv("REDIS_URL", redis_url)
        else:
            monkeypatch.delenv("REDIS_URL", raising=False)
        monkeypatch.delenv("SLA_CONNECTOR_CONFIG", raising=False)
        path = tmp_path / "config.yaml"
        path.write_text(textwrap.dedent(text) + f"data_dir: {tmp_path / 'data'}\n")
        return path

    return write
