"""Shared test fixtures: a private Redis server that the suite starts and stops itself."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator

import pytest
import redis

from connector.embedded_redis import EmbeddedRedis


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a redis-server on a private unix socket, started for this test session only."""
    # A short path: unix socket paths are limited to about 100 bytes.
    data_dir = tempfile.mkdtemp(prefix="sla-test-redis-")
    server = EmbeddedRedis(data_dir, persistent=False).start()
    try:
        yield server.url
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def redis_conn(redis_url: str) -> Iterator[redis.Redis]:
    """A client on the private server, emptied before each test."""
    conn = redis.Redis.from_url(redis_url)
    conn.flushall()
    try:
        yield conn
    finally:
        conn.close()
