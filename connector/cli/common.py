"""What every `sla-connector` command shares: exit codes, the two errors, and reading the configuration,
its Redis and an instance from the command line (here so that command modules need not import cli)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

import redis

from connector.config.loader import Config, load_config

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A command cannot run as asked (exit 2); the message says what to change."""


class Failure(Exception):
    """A command ran but failed (exit 1)."""


def config_from_args(args: argparse.Namespace, env: Mapping[str, str]) -> Config:
    if not args.config:
        raise UsageError("no configuration: pass --config PATH or set SLA_CONNECTOR_CONFIG")
    return load_config(args.config, env)


def redis_for(config: Config) -> redis.Redis:
    url = config.redis_url
    if not url:
        # Beside a running `sla-connector run`: its embedded server's socket under data_dir.
        from connector.cli.run import embedded_socket

        socket_path = embedded_socket(config)
        if not socket_path.exists():
            raise UsageError(
                f"{config.source}: no Redis configured: set redis_url or REDIS_URL "
                "(only `sla-connector run` starts an embedded server, and none is running under "
                f"{config.data_dir})"
            )
        url = f"unix://{socket_path}"
    return redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30)


def instance_named(config: Config, name: str) -> Any:
    inst = config.instances.get(name)
    if inst is None:
        raise UsageError(f"unknown instance {name!r} (configured: {', '.join(config.instances)})")
    return inst


def instance_names(config: Config, name: str | None) -> list[str]:
    """--instance as a list of instance names: that one (UsageError when unknown), else every one."""
    return [instance_named(config, name).name] if name is not None else list(config.instances)


def require_positive(option: str, value: int) -> None:
    """UsageError (exit 2) for a count option below 1."""
    if value < 1:
        raise UsageError(f"{option} must be 1 or more, got {value}")
