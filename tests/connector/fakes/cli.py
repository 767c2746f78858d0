"""Running the `sla-connector` command in process, as the command tests do."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from connector.cli.main import main

# The `cli_config_file` fixture (tests/connector/conftest.py): (YAML text, secrets, *, redis=True) -> path.
CliConfig = Callable[..., Path]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`main(argv)`: its exit code, what it printed and what it logged or said on stderr."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err
