"""`sla-connector worker`: RQ workers on the connector's queues, with RQ's scheduler and the cron tick.

- One process: RQ's `SimpleWorker` (jobs run in the worker process: no fork per job, which costs
  more than a ticket look). `--processes N`: RQ's `WorkerPool` of N SimpleWorkers.
- RQ's scheduler runs in the workers (`with_scheduler`): it enqueues the retries RQ scheduled.
- RQ's cron scheduler enqueues `connector.jobs.dispatch` every `tick_s` (timers, waiting tickets,
  lost claims), in a thread here unless `--no-scheduler`; `sla-connector scheduler` runs it alone.
  Several cron schedulers are harmless (dispatch passes are idempotent), one is enough.
A plain `rq worker -c connector.jobs.rq_settings` works on the same queues (see docs/pipeline.md).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import redis
from rq import SimpleWorker
from rq.cron import CronScheduler
from rq.worker_pool import WorkerPool

from connector.config.tuning import PipelineSettings
from connector.jobs import context, dispatch, reconcile
from connector.jobs.context import Context
from connector.state import queues, status

log = logging.getLogger("sla_connector.worker")


class ConnectorWorker(SimpleWorker):
    """RQ's SimpleWorker with the connector's maintenance and monitoring intervals (from the
    environment, see connector/config/tuning.py), so that RQ retries a killed worker's job in time."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        settings = PipelineSettings.from_env()
        kwargs.setdefault("maintenance_interval", settings.maintenance_interval_s)
        kwargs.setdefault("job_monitoring_interval", settings.job_monitoring_interval_s)
        super().__init__(*args, **kwargs)

    def register_birth(self) -> None:
        """RQ's registration, and the digest of the policies and calendars this worker evaluates with,
        so that `recalculate` can refuse to run while a worker still has other ones."""
        super().register_birth()
        try:
            digest = context.current(self.connection).config.sla_digest
        except RuntimeError:  # a plain `rq worker` without SLA_CONNECTOR_CONFIG: its jobs will say so
            return
        self.connection.hset(self.key, status.WORKER_SLA_DIGEST, digest)

    def subscribe(self) -> None:
        """RQ's listener for commands (`rq` shutdown, kill-horse), waking every second instead of RQ's
        60 s. redis-py 8.2's PubSubWorkerThread.stop() waits for the thread, which can sit out that
        whole wait once the channel is unsubscribed: with 60 s a SIGTERM sometimes took a minute."""
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(
            sleep_time=1, daemon=True, exception_handler=self._pubsub_exception_handler
        )


class RedisOutage(logging.Filter):
    """One log line when Redis goes away and one when it is back, instead of RQ's error (and traceback)
    every second from the worker, its scheduler and the cron thread while it is away."""

    def __init__(self, conn: redis.Redis) -> None:
        super().__init__()
        self.conn = conn
        self.down = threading.Event()
        self.pid = os.getpid()  # RQ's scheduler runs in a forked process: only this one speaks
        self.errors = 0  # Redis errors seen in this process (run_worker: did the worker quit on one?)

    def filter(self, record: logging.LogRecord) -> bool:
        text = str(record.msg)
        about_redis = (
            "could not connect to Redis" in text
            or (record.exc_info is not None and isinstance(record.exc_info[1], redis.ConnectionError))
            or (record.name == "rq.scheduler" and "redis.exceptions.ConnectionError" in record.getMessage())
        )
        if not about_redis:
            return True
        self.went_away()
        return False

    def went_away(self) -> None:
        if os.getpid() != self.pid:
            return
        self.errors += 1
        if not self.down.is_set():
            self.down.set()
            log.warning("Redis is unreachable: the workers wait and retry (one line until it is back)",
                        extra={"event": "redis_unreachable"})

    def watch(self) -> None:
        """While Redis is away, ping it every second; say once when it is back."""
        while True:
            self.down.wait()
            time.sleep(1)
            try:
                self.conn.ping()
            except redis.RedisError:
                continue
            self.down.clear()
            log.warning("Redis is reachable again", extra={"event": "redis_reachable"})


class _ThreadCron(CronScheduler):
    """RQ's cron scheduler, run in a thread of the worker process (signals stay the worker's)."""

    def _install_signal_handlers(self) -> None:
        pass


def cron_scheduler(conn: redis.Redis, settings: PipelineSettings, thread: bool = False) -> CronScheduler:
    cron = (_ThreadCron if thread else CronScheduler)(connection=conn, name=f"sla-cron-{os.getpid()}")
    cron.register(dispatch, queues.DISPATCH, interval=settings.tick_s,
                  job_timeout=settings.job_timeout_s, result_ttl=0, failure_ttl=queues.DISPATCH_FAILURE_TTL_S,
                  name="sla-dispatch")
    reconcile.register_cron(cron)  # every minute: reconcile jobs for the instances that are due
    return cron


def _keep_cron_running(conn: redis.Redis, settings: PipelineSettings, outage: RedisOutage) -> None:
    """RQ's cron loop ends on a Redis error: start it again once Redis answers (the tick must go on)."""
    while True:
        try:
            cron_scheduler(conn, settings, thread=True).start()
        except redis.RedisError:
            outage.went_away()
        time.sleep(1)


def run_worker(
    config: Any,
    conn: redis.Redis,
    *,
    processes: int = 1,
    with_scheduler: bool = True,
    burst: bool = False,
    name: str | None = None,
    settings: PipelineSettings | None = None,
    log_level: str = "INFO",
) -> bool:
    """Work the queues until SIGTERM/SIGINT (or, with `burst`, until they are empty)."""
    settings = settings or PipelineSettings.from_env()
    context.install(Context(config, settings))
    # RQ logs every job at INFO (several lines per look, and the cron tick every second): only at DEBUG.
    rq_level = "DEBUG" if log_level == "DEBUG" else "WARNING"
    outage = RedisOutage(conn)
    for logger in ("rq.worker", "rq.cron", "rq.scheduler", "rq.job", "rq.worker_pool"):
        logging.getLogger(logger).setLevel(rq_level)
        logging.getLogger(logger).addFilter(outage)
    threading.Thread(target=outage.watch, name="sla-redis-watch", daemon=True).start()
    # Listed by `rq info` and rq-dashboard from the start, not only once a job was enqueued on each.
    qs = [queues.queue(conn, q) for q in queues.QUEUES]
    conn.sadd(qs[0].redis_queues_keys, *(q.key for q in qs))
    if config.source and os.path.exists(str(config.source)):  # pool children and plain rq re-read it
        os.environ.setdefault("SLA_CONNECTOR_CONFIG", str(config.source))
    if with_scheduler and not burst:
        threading.Thread(target=_keep_cron_running, args=(conn, settings, outage), name="sla-cron",
                         daemon=True).start()
    if processes > 1:
        pool = WorkerPool(queues.QUEUES, connection=conn, num_workers=processes, worker_class=ConnectorWorker)
        pool.start(burst=burst, logging_level=rq_level)
        return True
    while True:
        worker = ConnectorWorker(qs, connection=conn, name=name)
        errors, worked = outage.errors, False
        try:
            worked = worker.work(burst=burst, with_scheduler=True, logging_level=rq_level)
        except (redis.ConnectionError, redis.TimeoutError):
            if burst:
                raise
            outage.went_away()  # its teardown could not reach Redis either
        stopped = worker._stop_requested or worker._shutdown_requested_date is not None  # SIGTERM/SIGINT
        if burst or stopped or outage.errors == errors:
            return worked  # emptied the queues, was asked to stop, or quit on another error
        # RQ's worker quits on a Redis error (logged, which the outage filter counts): wait for Redis,
        # retire the worker it registered and work on under the same name.
        _wait_for_redis(conn)
        try:
            worker.register_death()
        except redis.RedisError:
            continue
        log.info("worker %s works again after the Redis outage", worker.name,
                 extra={"event": "worker_restarted"})


def _wait_for_redis(conn: redis.Redis) -> None:
    while True:
        try:
            conn.ping()
            return
        except redis.RedisError:
            time.sleep(1)


def run_scheduler(conn: redis.Redis, settings: PipelineSettings | None = None) -> None:
    """Only RQ's cron scheduler (for workers started with --no-scheduler, or plain `rq worker`)."""
    cron_scheduler(conn, settings or PipelineSettings.from_env()).start()
