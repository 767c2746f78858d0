"""RQ workers running the connector's jobs: concurrency per ticket, RQ's own tools, stopping cleanly."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from rq import SimpleWorker, Worker
from rq.timeouts import TimerDeathPenalty

from connector.config.tuning import PipelineSettings
from connector.jobs import context
from connector.jobs.worker import ConnectorWorker
from connector.state import queues, status, store

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from fakes.harness import make_context, post  # noqa: E402
from fakes.sla_config import CountingEvaluator, changed, created, desk_config  # noqa: E402
from fakes.stack import Stack, config_data, wait_for  # noqa: E402

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


class ThreadWorker(SimpleWorker):
    """RQ's SimpleWorker in a thread: RQ's thread-based time limit, signals left to the main thread."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self) -> None:
        pass


class ProbeEvaluator(CountingEvaluator):
    """Counts evaluations of one ticket running at the same time (must stay 0) and who ran them."""

    def __init__(self) -> None:
        super().__init__()
        self.guard = threading.Lock()
        self.active: Counter[str] = Counter()
        self.overlaps = 0
        self.by_thread: Counter[str] = Counter()

    def __call__(self, policies: Any, calendars: Any, events: Any, now: Any, **kwargs: Any) -> Any:
        ticket = events[0].ticket_id
        with self.guard:
            self.active[ticket] += 1
            self.overlaps += self.active[ticket] > 1
            self.by_thread[threading.current_thread().name] += 1
        time.sleep(0.003)
        try:
            return super().__call__(policies, calendars, events, now, **kwargs)
        finally:
            with self.guard:
                self.active[ticket] -= 1


def test_two_workers_never_look_at_one_ticket_at_once(redis_url: str, redis_conn: redis.Redis) -> None:
    probe = ProbeEvaluator()
    ctx = make_context(None, desk_config(dry_run=True, target="24h"), PipelineSettings(), evaluator=probe)
    context.install(ctx)
    tickets = [f"T-{i}" for i in range(6)]
    stop = threading.Event()

    def work(name: str) -> None:
        conn = redis.Redis.from_url(redis_url)
        worker = ThreadWorker([queues.queue(conn, q) for q in queues.QUEUES], connection=conn, name=name)
        while not stop.is_set():
            worker.work(burst=True, logging_level="WARNING")
            time.sleep(0.005)

    threads = [threading.Thread(target=work, args=(f"w{i}",), name=f"w{i}") for i in range(2)]
    for t in threads:
        t.start()
    try:
        for t in tickets:
            post(redis_conn, f"{t}-c", t, [created(t, T0)])
        for n in range(120):
            t = tickets[n % len(tickets)]
            event = changed(t, T0 + timedelta(seconds=n + 1), f"u{n}", priority="high")
            post(redis_conn, f"{t}-u{n}", t, [event])
            if n % 10 == 0:  # dispatch as the cron tick would, while deliveries keep coming
                queues.enqueue_dispatch(redis_conn)
        queues.enqueue_dispatch(redis_conn)

        def done() -> bool:
            stored = sum(len(store.load_record(redis_conn, "desk", t).events) for t in tickets
                         if redis_conn.exists(store.events_key("desk", t)))
            backlog = status.backlog(redis_conn)
            return stored == 126 and backlog["tickets_waiting"] == 0 and backlog["tickets_claimed"] == 0

        wait_for(done, 60, "every event stored and no look pending", interval=0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(20)
        context.install(None)
    assert probe.overlaps == 0
    assert set(probe.by_thread) == {"w0", "w1"}  # both did work
    looks = Counter(t for t, _, _ in probe.calls)
    assert sum(looks.values()) < 126  # deliveries shared looks (coalescing)
    for t in tickets:  # the last look at each ticket saw its whole log
        assert max(n for tk, n, _ in probe.calls if tk == t) == 21


def _stack(tmp_path: Path, redis_url: str) -> Stack:
    nowhere = "http://127.0.0.1:9"
    return Stack(tmp_path, redis_url, config_data(nowhere, nowhere, "1h", dry_run=True), {})


def _rq_info(stack: Stack) -> str:
    env = {**stack.env, "SLA_CONNECTOR_CONFIG": str(stack.path)}
    rq = Path(sys.executable).with_name("rq")
    done = subprocess.run([str(rq), "info", "-c", "connector.jobs.rq_settings"], env=env,
                          cwd=HERE.parent.parent, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_rq_info_shows_the_connectors_queues_and_workers(tmp_path: Path, redis_url: str, redis_conn) -> None:
    stack = _stack(tmp_path, redis_url)
    try:
        stack.start_worker("info-w1")
        stack.start_worker("info-pool", "--processes", "2", "--no-scheduler")
        wait_for(lambda: len(status.alive_workers(redis_conn)) == 3, 30, "three RQ workers")
        out = _rq_info(stack)
        # Both queues are listed from the start, before any job was enqueued on sla-tickets.
        assert re.search(r"sla-dispatch\s+\|", out) and re.search(r"sla-tickets\s+\|", out), out
        assert "info-w1" in out, out
        assert "3 workers, 2 queues" in out, out
    finally:
        stack.stop()


def test_sigterm_stops_the_worker_and_its_registration(tmp_path: Path, redis_url: str, redis_conn) -> None:
    stack = _stack(tmp_path, redis_url)
    try:
        proc = stack.start_worker("sig")
        # RQ registers the worker before it installs its signal handlers: wait until it idles in its loop.
        wait_for(lambda: any(w.name == "sig" and w.get_state() == "idle" for w in Worker.all(redis_conn))
                 and status.scheduler_alive(redis_conn), 30, "the worker idle and its cron scheduler")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, stack.worker_log("sig")[-3000:]
        assert "sig" not in status.alive_workers(redis_conn)
    finally:
        stack.stop()


def test_a_worker_stops_its_command_listener_within_seconds(redis_conn: redis.Redis) -> None:
    # The race behind SIGTERMs that took a minute: RQ's command listener reads the reply to its
    # unsubscribe before it is told to stop, then waits for a new subscription as long as its sleep time
    # (RQ: 60 s), and redis-py 8.2's stop() waits for it.
    tickets = queues.queue(redis_conn, queues.TICKETS)
    worker = ConnectorWorker([tickets], connection=redis_conn, name="listener")
    worker.subscribe()
    wait_for(lambda: worker.pubsub.subscribed, 10, "the listener subscribed")
    worker.pubsub.unsubscribe()
    wait_for(lambda: not worker.pubsub.subscribed, 10, "the listener read the unsubscribe reply")
    started = time.monotonic()
    worker.unsubscribe()
    assert time.monotonic() - started < 5
    assert not worker.pubsub_thread.is_alive()


def test_worker_refuses_zero_processes(tmp_path: Path, redis_url: str) -> None:
    stack = _stack(tmp_path, redis_url)
    try:
        command = [sys.executable, "-m", "connector", "--config", str(stack.path), "worker",
                   "--processes", "0"]
        done = subprocess.run(command, env=stack.env, cwd=HERE.parent.parent, capture_output=True, text=True,
                              timeout=30)
    finally:
        stack.stop()
    assert done.returncode == 2
    assert "--processes must be 1 or more" in done.stderr


def test_plain_rq_worker_runs_the_connectors_jobs(tmp_path: Path, redis_url: str, redis_conn) -> None:
    stack = _stack(tmp_path, redis_url)
    try:
        created_at = datetime.now(UTC).replace(microsecond=0)
        from fakes.stack import jira_created

        assert stack.post_jira(jira_created("10042", created_at), "plain-1").status_code == 202
        env = {**stack.env, "SLA_CONNECTOR_CONFIG": str(stack.path)}
        rq = Path(sys.executable).with_name("rq")
        command = [str(rq), "worker", "-c", "connector.jobs.rq_settings",
                   "-w", "connector.jobs.worker.ConnectorWorker", "--burst"]
        done = subprocess.run(command, env=env, cwd=HERE.parent.parent, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr[-3000:]
        record = store.load_record(redis_conn, "acme-jira", "10042")
        assert record is not None and len(record.events) == 1
        assert "due" in record.dry_ledger  # dry-run: evaluated and logged, nothing written
    finally:
        stack.stop()


@pytest.mark.parametrize("processes", [1, 2])
def test_a_worker_that_loses_redis_mid_job_works_on_once_it_is_back(tmp_path: Path, processes: int) -> None:
    # RQ's worker quits when Redis fails outside its dequeue (here: finishing a job while Redis is
    # away); `sla-connector worker` waits for Redis and works on under the same name. With
    # --processes, RQ's WorkerPool starts new workers for those that quit.
    from connector.embedded_redis import EmbeddedRedis

    server = EmbeddedRedis(tmp_path / "r", persistent=True).start()
    stack = _stack(tmp_path, server.url)
    try:
        proc = stack.start_worker("midjob", "--processes", str(processes))
        conn = redis.Redis.from_url(server.url)
        wait_for(lambda: status.scheduler_alive(conn), 30, "the cron scheduler")
        job = queues.queue(conn, queues.TICKETS).enqueue("time.sleep", 4)
        wait_for(lambda: job.get_status(refresh=True) == "started", 30, "the slow job to start")
        conn.close()
        server.stop()
        time.sleep(6)  # the job ends while Redis is away: RQ's worker cannot record it and quits
        server = EmbeddedRedis(tmp_path / "r", persistent=True).start()
        conn = redis.Redis.from_url(server.url)
        if processes == 1:
            wait_for(lambda: '"worker_restarted"' in stack.worker_log("midjob"), 30, "the worker working on")
        assert proc.poll() is None, stack.worker_log("midjob")[-3000:]
        later = queues.queue(conn, queues.TICKETS).enqueue("time.sleep", 0)
        wait_for(lambda: later.get_status(refresh=True) == "finished", 30, "a job after the outage")
        if processes == 1:  # (a pool's quit workers stay listed until RQ's maintenance cleans them)
            names = [w.name for w in Worker.all(connection=conn)]
            assert names == ["midjob"], names
        if processes == 1:
            proc.terminate()
            assert proc.wait(20) == 0
        # A pool that respawned a worker after the outage may not stop on SIGTERM for minutes: RQ's
        # WorkerPool does not signal the respawned worker, which waits in its BLPOP (py-spy, 1 in 7
        # runs). Not fixed yet; stack.stop() kills the group.
    finally:
        stack.stop()
        server.stop()


def test_a_redis_outage_is_two_log_lines_and_the_tick_goes_on(tmp_path: Path) -> None:
    from connector.embedded_redis import EmbeddedRedis

    server = EmbeddedRedis(tmp_path / "r", persistent=True).start()
    stack = _stack(tmp_path, server.url)
    try:
        proc = stack.start_worker("outage")
        conn = redis.Redis.from_url(server.url)
        wait_for(lambda: status.scheduler_alive(conn), 30, "the cron scheduler")
        conn.close()
        server.stop()
        time.sleep(5)  # RQ retries every second or so meanwhile
        server = EmbeddedRedis(tmp_path / "r", persistent=True).start()
        conn = redis.Redis.from_url(server.url)
        conn.delete(store.DISPATCH_FLAG)
        ticks = len(conn.zrange("rq:cron_job:sla-dispatch:jobs", 0, -1))
        wait_for(lambda: len(conn.zrange("rq:cron_job:sla-dispatch:jobs", 0, -1)) > ticks + 1, 30,
                 "the dispatch tick after the outage")
        wait_for(lambda: '"redis_reachable"' in stack.worker_log("outage"), 30, "the line saying it is back")
        proc.kill()
        proc.wait(10)
        log = stack.worker_log("outage")
        assert log.count('"redis_unreachable"') == 1 and log.count('"redis_reachable"') == 1, log[-3000:]
        assert "could not connect to Redis" not in log
        # RQ's scheduler runs in a process of its own: multiprocessing prints its one traceback (chained
        # two or three deep, by the command the outage met) when it ends on the outage (RQ starts it
        # again); nothing else prints one.
        schedulers = log.count("Process Scheduler:")
        tracebacks = log.count("Traceback (most recent call last)")
        assert schedulers <= 1 and 2 * schedulers <= tracebacks <= 3 * schedulers, log[-3000:]
    finally:
        stack.stop()
        server.stop()
