from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis

from connector import failed, status, store, timers
from connector.config import Config
from connector.pipeline import Processor
from connector.tuning import PipelineSettings
from connector.worker import ensure_group, reclaim, run_worker, touch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from fakes.harness import post  # noqa: E402
from fakes.sla_config import CountingEvaluator, changed, created, desk_config  # noqa: E402

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def day_config() -> Config:
    """Dry-run testdesk with the real engine's test policy: 24h, so nothing here reaches a deadline."""
    return desk_config(dry_run=True, target="24h")


def test_burst_worker_drains_the_stream_and_leaves(redis_conn: redis.Redis) -> None:
    evaluator = CountingEvaluator()
    for i in range(5):
        post(redis_conn, f"d{i}", f"T-{i}", [created(f"T-{i}", T0)])
    run_worker(
        day_config(),
        redis_conn,
        burst=True,
        name="w1",
        settings=PipelineSettings(batch_size=2),
        evaluator=evaluator,
    )
    assert sorted(c[0] for c in evaluator.calls) == [f"T-{i}" for i in range(5)]
    assert redis_conn.xlen(store.STREAM) == 0
    assert status.alive_workers(redis_conn) == []  # a leaving worker says so


def test_entries_of_a_dead_worker_are_reclaimed_and_processed(redis_conn: redis.Redis) -> None:
    evaluator = CountingEvaluator()
    ensure_group(redis_conn)
    post(redis_conn, "d1", "T-1", [created("T-1", T0)])
    post(redis_conn, "d2", "T-2", [created("T-2", T0)])
    # A worker reads the batch, then dies (SIGKILL): nothing acknowledged.
    redis_conn.xreadgroup(store.GROUP, "dead", {store.STREAM: ">"}, count=10)
    settings = PipelineSettings(reclaim_idle_s=0.2)
    assert reclaim(redis_conn, "alive", settings) == []  # not idle long enough yet
    time.sleep(0.25)
    claimed = reclaim(redis_conn, "alive", settings)
    assert len(claimed) == 2
    Processor(redis_conn, day_config(), settings, evaluator=evaluator).process(claimed)
    assert sorted(c[0] for c in evaluator.calls) == ["T-1", "T-2"]
    assert redis_conn.xpending(store.STREAM, store.GROUP)["pending"] == 0


def test_an_entry_that_keeps_killing_workers_goes_to_failed(redis_conn: redis.Redis, caplog) -> None:
    caplog.set_level(logging.INFO, logger="sla_connector.worker")
    ensure_group(redis_conn)
    post(redis_conn, "d1", "T-1", [created("T-1", T0)])
    settings = PipelineSettings(reclaim_idle_s=0, max_deliveries=2)
    redis_conn.xreadgroup(store.GROUP, "dead-1", {store.STREAM: ">"}, count=10)
    assert len(reclaim(redis_conn, "dead-2", settings)) == 1  # delivered twice: one more chance
    assert reclaim(redis_conn, "dead-3", settings) == []  # the third delivery is refused
    [entry] = failed.list_failed(redis_conn)
    assert entry["id"] == "event:desk:d1" and "worker died 2 times" in entry["error"]
    [line] = [r for r in caplog.records if getattr(r, "event", None) == "entry_failed"]
    assert (line.instance, line.ticket, line.delivery) == ("desk", "T-1", "d1")
    assert redis_conn.xlen(store.STREAM) == 0
    assert failed.retry_failed(redis_conn) == 1 and redis_conn.xlen(store.STREAM) == 1


class ProbeEvaluator(CountingEvaluator):
    """Fails the test if two workers ever evaluate the same ticket at the same time."""

    def __init__(self) -> None:
        super().__init__()
        self.guard = threading.Lock()
        self.active: Counter[str] = Counter()
        self.overlaps = 0
        self.by_thread: Counter[str] = Counter()

    def __call__(self, policies, calendars, events, now, *, instance=None):  # type: ignore[no-untyped-def]
        ticket = events[0].ticket_id
        with self.guard:
            self.active[ticket] += 1
            self.overlaps += self.active[ticket] > 1
            self.by_thread[threading.current_thread().name] += 1
        time.sleep(0.003)
        try:
            return super().__call__(policies, calendars, events, now, instance=instance)
        finally:
            with self.guard:
                self.active[ticket] -= 1


def test_two_workers_never_process_one_ticket_concurrently(redis_url: str, redis_conn: redis.Redis) -> None:
    config = day_config()
    probe = ProbeEvaluator()
    tickets = [f"T-{i}" for i in range(6)]
    stop = threading.Event()
    settings = PipelineSettings(batch_size=7, block_ms=100, defer_s=0.01, timer_poll_s=0.02)
    threads = [
        threading.Thread(
            target=run_worker,
            name=f"w{i}",
            args=(config, redis.Redis.from_url(redis_url)),
            kwargs={
                "name": f"w{i}",
                "settings": settings,
                "stop": stop,
                "evaluator": probe,
                "with_scheduler": i == 0,
            },
        )
        for i in range(2)
    ]
    for t in threads:
        t.start()
    try:
        # Post only once both workers are reading, so that both get work however loaded the machine.
        wait_until = time.monotonic() + 15
        while time.monotonic() < wait_until:
            try:
                if len(redis_conn.xinfo_consumers(store.STREAM, store.GROUP)) == 2:
                    break
            except redis.ResponseError:  # the group does not exist yet
                pass
            time.sleep(0.02)
        for t in tickets:
            post(redis_conn, f"{t}-c", t, [created(t, T0)])
        for n in range(120):
            t = tickets[n % len(tickets)]
            post(
                redis_conn, f"{t}-u{n}", t,
                [changed(t, T0 + timedelta(seconds=n + 1), f"u{n}", priority="high")],
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            stored = sum(
                len(store.load_record(redis_conn, "desk", t).events)
                for t in tickets
                if redis_conn.exists(store.events_key("desk", t))
            )
            soon = redis_conn.zcount(store.TIMERS, "-inf", time.time() + 1)  # deferrals, not the deadlines
            idle = redis_conn.xlen(store.STREAM) == 0 and soon == 0
            if stored == 126 and idle:
                break
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert stored == 126 and idle
    assert probe.overlaps == 0
    assert set(probe.by_thread) == {"w0", "w1"}  # both did work
    for t in tickets:  # the last evaluation of each ticket saw its whole log
        assert max(n for tk, n, _ in probe.calls if tk == t) == 21


def test_sigterm_stops_the_worker_gracefully(redis_url: str, redis_conn: redis.Redis) -> None:
    code = (
        f"import sys, redis; sys.path.insert(0, {str(HERE)!r})\n"
        "from fakes.sla_config import desk_config\n"
        "from connector.worker import run_worker\n"
        "from connector.tuning import PipelineSettings\n"
        f"run_worker(desk_config(dry_run=True, target='24h'), redis.Redis.from_url({redis_url!r}),\n"
        "           name='sig', settings=PipelineSettings(block_ms=200))\n"  # the real evaluate
        "print('clean exit')\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=HERE.parent.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(HERE.parent.parent)},
    )
    try:
        deadline = time.monotonic() + 20
        while "sig" not in status.alive_workers(redis_conn) or not status.scheduler_alive(redis_conn):
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()
    assert out.decode().strip() == "clean exit"
    assert "sig" not in status.alive_workers(redis_conn)


def test_a_timer_fires_through_the_scheduler_on_time(redis_url: str, redis_conn: redis.Redis) -> None:
    evaluator = CountingEvaluator()
    stop = threading.Event()
    settings = PipelineSettings(block_ms=100, timer_poll_s=0.05)
    worker = threading.Thread(
        target=run_worker,
        args=(day_config(), redis.Redis.from_url(redis_url)),
        kwargs={"name": "tw", "settings": settings, "stop": stop, "evaluator": evaluator},
    )
    post(redis_conn, "d1", "T-1", [created("T-1", T0)])
    worker.start()
    try:
        due = time.time() + 0.5
        time.sleep(0.3)
        evaluator.calls.clear()
        timers.schedule(redis_conn, "desk", "T-1", due)
        deadline = time.monotonic() + 5
        while not evaluator.calls and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        worker.join(10)
    [(ticket, _, now)] = evaluator.calls
    assert ticket == "T-1"
    assert 0 <= now.timestamp() - due < 1.5  # polled every 0.05 s; slack for a loaded machine


class _SlowEvaluator(CountingEvaluator):
    """A batch that outlives the reclaim idle time (slow write-backs, a long 429 wait)."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def __call__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        time.sleep(self.seconds)
        return super().__call__(*args, **kwargs)


def test_a_live_workers_slow_batch_is_not_reclaimed(redis_conn: redis.Redis) -> None:
    ensure_group(redis_conn)
    post(redis_conn, "d1", "T-1", [created("T-1", T0)])
    settings = PipelineSettings(reclaim_idle_s=0.6, max_deliveries=1)
    evaluator = _SlowEvaluator(2.2)
    stop = threading.Event()
    worker = threading.Thread(
        target=run_worker,
        args=(day_config(), redis_conn),
        kwargs={
            "with_scheduler": False,
            "name": "busy",
            "settings": settings,
            "stop": stop,
            "evaluator": evaluator,
        },
    )
    worker.start()
    try:
        deadline = time.monotonic() + 5
        while not redis_conn.xpending(store.STREAM, store.GROUP)["pending"]:
            assert time.monotonic() < deadline, "the worker never read the entry"
            time.sleep(0.01)
        for name in ("other", "other2", "other3"):  # well past the idle time, several times
            time.sleep(0.5)
            assert reclaim(redis_conn, name, settings) == []
        assert failed.list_failed(redis_conn) == []
        deadline = time.monotonic() + 5
        while redis_conn.xlen(store.STREAM):
            assert time.monotonic() < deadline, "the batch never finished"
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join(10)
    assert [c[0] for c in evaluator.calls] == ["T-1"]  # processed once, by its worker
    assert failed.list_failed(redis_conn) == []


class _HungEvaluator(CountingEvaluator):
    """A batch that never ends on its own (a stuck call), until the test releases it."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def __call__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.release.wait(30)
        return super().__call__(*args, **kwargs)


def test_a_hung_batch_is_left_for_other_workers_after_the_batch_timeout(redis_conn: redis.Redis,
                                                                          caplog) -> None:
    ensure_group(redis_conn)
    post(redis_conn, "d1", "T-1", [created("T-1", T0)])
    settings = PipelineSettings(reclaim_idle_s=0.6, batch_timeout_s=1.0, max_deliveries=3)
    hung = _HungEvaluator()
    stop = threading.Event()
    worker = threading.Thread(
        target=run_worker, args=(day_config(), redis_conn),
        kwargs={"with_scheduler": False, "name": "stuck", "settings": settings, "stop": stop,
                "evaluator": hung},
    )
    worker.start()
    try:
        deadline = time.monotonic() + 5
        while not redis_conn.xpending(store.STREAM, store.GROUP)["pending"]:
            assert time.monotonic() < deadline, "the worker never read the entry"
            time.sleep(0.01)
        time.sleep(0.5)
        assert reclaim(redis_conn, "other", settings) == []  # within the timeout: still its own
        taken: list = []
        deadline = time.monotonic() + 5
        while not taken:  # past the timeout the heartbeat lets go; idle time then grows
            assert time.monotonic() < deadline, "the hung batch was never released"
            time.sleep(0.1)
            taken = reclaim(redis_conn, "other", settings)
        assert [store.text(f[b"d"]) for _, f in taken] == ["d1"]
        assert any(r.__dict__.get("event") == "batch_timeout" for r in caplog.records)
    finally:
        hung.release.set()
        stop.set()
        worker.join(10)


def test_touch_resets_only_the_callers_own_entries(redis_conn: redis.Redis, caplog) -> None:
    ensure_group(redis_conn)
    post(redis_conn, "d1", "T-1", [created("T-1", T0)])
    post(redis_conn, "d2", "T-2", [created("T-2", T0)])
    [[_, [(mine, _), (theirs, _)]]] = redis_conn.xreadgroup(store.GROUP, "me", {store.STREAM: ">"}, count=2)
    time.sleep(0.25)
    redis_conn.xclaim(store.STREAM, store.GROUP, "them", 0, [theirs], justid=True)  # taken over
    time.sleep(0.05)
    assert touch(redis_conn, "me", [mine.decode(), theirs.decode()]) == 1
    pending = {
        p["message_id"]: p
        for p in redis_conn.xpending_range(store.STREAM, store.GROUP, min="-", max="+", count=10)
    }
    assert pending[mine]["consumer"] == b"me" and pending[mine]["time_since_delivered"] < 200
    assert pending[mine]["times_delivered"] == 1  # a touch is not a delivery
    assert pending[theirs]["consumer"] == b"them"
    assert touch(redis_conn, "me", []) == 0
    # A worker that stops touching (it died) is reclaimed as before; each entry is logged by its ids.
    time.sleep(0.25)
    caplog.set_level(logging.INFO, logger="sla_connector.worker")
    assert [i for i, _ in reclaim(redis_conn, "rescuer", PipelineSettings(reclaim_idle_s=0.2))] == [
        mine,
        theirs,
    ]
    logged = [
        (r.instance, r.ticket, r.delivery, r.entry)
        for r in caplog.records
        if getattr(r, "event", None) == "entry_reclaimed"
    ]
    assert logged == [("desk", "T-1", "d1", mine.decode()), ("desk", "T-2", "d2", theirs.decode())]
