"""The worker process: drain the work stream in batches, reclaim a dead worker's entries, and
(optionally) run the timer scheduler in a thread.

Why not one RQ job per event: RQ spends about 57 Redis commands per job, which caps a worker at a
few hundred jobs per second on this machine; reading the stream with a consumer group
(XREADGROUP COUNT n) costs a handful of round trips per batch of n. The stream gives the rest of
what a queue must: an entry read but not acknowledged stays in the group's pending list, and
XAUTOCLAIM hands it to another worker after `reclaim_idle_s`, so a SIGKILLed worker loses nothing.
XAUTOCLAIM only sees idle time, so while a live worker processes a batch its heartbeat thread
re-claims the batch's entries for itself (XCLAIM JUSTID: idle time reset, delivery count unchanged)
several times per `reclaim_idle_s`: a slow batch is never taken over, a dead worker's entries are.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from typing import Any

import redis
from redis.commands.core import Script

from connector import failed, status, store, timers
from connector.pipeline import Evaluator, Processor
from connector.tuning import PipelineSettings

log = logging.getLogger("sla_connector.worker")


# Re-claim for ourselves (idle time back to 0) those of the given entries we still own: an entry
# XAUTOCLAIMed by another worker meanwhile is left alone.
_TOUCH = Script(
    None,
    b"""
local n = 0
for i = 3, #ARGV do
  local mine = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
  if #mine > 0 then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    n = n + 1
  end
end
return n
""",
)


class InFlight:
    """Ids of the stream entries the worker is processing, and since when, shared with its heartbeat
    thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: tuple[str, ...] = ()
        self._since = 0.0

    def set(self, entries: list[tuple[Any, Any]]) -> None:
        with self._lock:
            self._ids = tuple(store.text(i) or "" for i, _ in entries)
            self._since = time.monotonic()

    def clear(self) -> None:
        with self._lock:
            self._ids = ()

    def ids(self) -> tuple[str, ...]:
        with self._lock:
            return self._ids

    def running_for(self) -> float:
        """Seconds the current batch has been running (0 when there is none)."""
        with self._lock:
            return time.monotonic() - self._since if self._ids else 0.0


def touch(conn: redis.Redis, name: str, ids: tuple[str, ...] | list[str]) -> int:
    """Reset the idle time of the entries `name` still owns among `ids`; how many it owns."""
    if not ids:
        return 0
    return int(_TOUCH((store.STREAM,), (store.GROUP, name, *ids), client=conn))


def ensure_group(conn: redis.Redis) -> None:
    """Create the consumer group (reading from the stream's start, so nothing queued is skipped)."""
    try:
        conn.xgroup_create(store.STREAM, store.GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class _Stop:
    """Set by SIGTERM/SIGINT: finish the batch in hand, then leave."""

    def __init__(self, event: threading.Event | None = None) -> None:
        self.event = event or threading.Event()
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signals can only be handled in the main thread; the caller stops us via the event
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: Any) -> None:
        log.info("stopping after the current batch", extra={"event": "worker_stopping", "signal": signum})
        self.event.set()


def run_worker(
    config: Any,
    conn: redis.Redis,
    *,
    with_scheduler: bool = True,
    burst: bool = False,
    name: str | None = None,
    settings: PipelineSettings | None = None,
    stop: threading.Event | None = None,
    evaluator: Evaluator | None = None,
) -> None:
    """Process the stream until SIGTERM/SIGINT (or `stop` is set; or, with `burst`, until it is empty)."""
    settings = settings or PipelineSettings.from_env()
    name = name or worker_name()
    stopper = _Stop(stop)
    stopper.install()
    while True:  # Redis may still be starting (compose, restarts): wait for it rather than die
        try:
            ensure_group(conn)
            break
        except redis.ConnectionError:
            log.warning("Redis unreachable; waiting", extra={"event": "worker_redis_unreachable"})
            if stopper.event.wait(1.0):
                stopper.restore()
                return
    processor = Processor(conn, config, settings, evaluator=evaluator, name=name)
    scheduler: threading.Thread | None = None
    if with_scheduler and not burst:
        scheduler = threading.Thread(
            target=run_scheduler,
            args=(config, conn),
            kwargs={"settings": settings, "stop": stopper.event, "name": name},
            name="sla-scheduler",
            daemon=True,
        )
        scheduler.start()
    log.info(
        "worker started", extra={"event": "worker_started", "worker": name, "scheduler": bool(scheduler)}
    )
    inflight = InFlight()
    beat = threading.Thread(
        target=_heartbeat,
        args=(conn, name, stopper.event, inflight, _touch_every(settings), settings.batch_timeout_s),
        name="sla-heartbeat",
        daemon=True,
    )
    beat.start()
    last_reclaim = 0.0
    try:
        while not stopper.event.is_set():
            now = time.time()
            entries: list[Any] = []
            try:
                if burst and with_scheduler:
                    timers.move_due(conn, now, settings.timer_batch)
                if now - last_reclaim >= settings.reclaim_every_s or burst:
                    last_reclaim = now
                    entries = reclaim(conn, name, settings)
                if not entries:
                    entries = _read(conn, name, settings, burst)
                if not entries:
                    if burst:
                        break
                    continue
                inflight.set(entries)
                try:
                    processor.process(entries)
                finally:  # entries left pending (a failed batch) must become reclaimable
                    inflight.clear()
            except redis.ConnectionError:
                log.warning("Redis unreachable; retrying", extra={"event": "worker_redis_unreachable"})
                stopper.event.wait(1.0)
            except Exception:
                # Nothing was acknowledged: the entries stay pending and are reclaimed after the idle
                # time; an entry that keeps failing like this ends in the failed registry (max_deliveries).
                log.exception(
                    "batch failed; it will be reclaimed",
                    extra={"event": "batch_failed", "worker": name, "entries": _describe(entries)},
                )
                stopper.event.wait(1.0)
    finally:
        stopper.restore()
        stopper.event.set()
        if scheduler is not None:
            scheduler.join(timeout=5)
        beat.join(timeout=5)
        try:
            status.forget_worker(conn, name)
        except redis.RedisError:
            pass
        log.info("worker stopped", extra={"event": "worker_stopped", "worker": name})


def _read(conn: redis.Redis, name: str, settings: PipelineSettings, burst: bool) -> list[Any]:
    try:
        batch = conn.xreadgroup(
            store.GROUP,
            name,
            {store.STREAM: ">"},
            count=settings.batch_size,
            block=None if burst else settings.block_ms,
        )
    except redis.ResponseError as exc:
        if "NOGROUP" not in str(exc):
            raise
        ensure_group(conn)  # the stream was deleted (e.g. FLUSHALL): start again
        return []
    return batch[0][1] if batch else []


def _touch_every(settings: PipelineSettings) -> float:
    """Several touches per idle period, so one late beat does not get a live batch reclaimed."""
    return min(2.0, max(0.05, settings.reclaim_idle_s / 4))


def _heartbeat(
    conn: redis.Redis, name: str, stop: threading.Event, inflight: InFlight, every: float = 2.0,
    batch_timeout_s: float = float("inf"),
) -> None:
    """Beat from a thread, so a batch of slow write-backs neither looks dead nor gets reclaimed; a
    batch running longer than `batch_timeout_s` is left to be reclaimed (its worker looks hung)."""
    last_beat = 0.0
    reported: tuple[str, ...] = ()
    while not stop.is_set():
        try:
            if time.monotonic() - last_beat >= 2.0:
                status.heartbeat_worker(conn, name)
                last_beat = time.monotonic()
            ids = inflight.ids()
            if inflight.running_for() <= batch_timeout_s:
                touch(conn, name, ids)
            elif ids != reported:
                reported = ids
                log.error(
                    "batch timed out: its entries are left for other workers to reclaim",
                    extra={"event": "batch_timeout", "worker": name, "entries": len(ids),
                           "timeout_s": batch_timeout_s},
                )
        except redis.RedisError:
            log.warning("heartbeat failed", extra={"event": "heartbeat_failed", "worker": name})
        stop.wait(every)


def reclaim(conn: redis.Redis, name: str, settings: PipelineSettings) -> list[tuple[Any, Any]]:
    """Claim entries other consumers left pending longer than the idle time (they died, most likely).

    An entry delivered `max_deliveries` times keeps killing workers: it goes to the failed registry.
    """
    idle_ms = int(settings.reclaim_idle_s * 1000)
    result = conn.xautoclaim(
        store.STREAM, store.GROUP, name, idle_ms, start_id="0-0", count=settings.batch_size
    )
    claimed = [(i, f) for i, f in result[1] if f]  # entries deleted meanwhile come back empty
    if not claimed:
        return []
    keep = []
    for entry_id, fields in claimed:
        info = conn.xpending_range(store.STREAM, store.GROUP, min=entry_id, max=entry_id, count=1)
        deliveries = info[0]["times_delivered"] if info else 1
        if deliveries > settings.max_deliveries:
            instance = store.text(fields.get(b"i")) or ""
            delivery = store.text(fields.get(b"d")) or store.text(entry_id) or ""
            log.error(
                "entry kept failing its workers; moved to the failed registry",
                extra={"event": "entry_failed", "worker": name, **_describe([(entry_id, fields)])[0]},
            )
            pipe = conn.pipeline(transaction=True)
            failed.record_event(
                pipe,
                instance,
                delivery,
                fields,
                f"worker died {deliveries - 1} times while processing this entry",
            )
            pipe.xack(store.STREAM, store.GROUP, entry_id)
            pipe.xdel(store.STREAM, entry_id)
            pipe.execute()
            continue
        keep.append((entry_id, fields))
    for ids in _describe(keep):
        log.warning(
            "reclaimed an entry of a silent worker", extra={"event": "entry_reclaimed", "worker": name, **ids}
        )
    return keep


def _describe(entries: list[tuple[Any, Any]]) -> list[dict[str, str | None]]:
    """Log fields of stream entries: instance, ticket and delivery ids (never the payload)."""
    out = []
    for entry_id, fields in entries:
        f = {store.text(k): store.text(v) for k, v in fields.items()}
        out.append(
            {
                "entry": store.text(entry_id),
                "instance": f.get("i") or None,
                "ticket": f.get("t") or None,
                "delivery": f.get("d") or None,
            }
        )
    return out


def run_scheduler(
    config: Any,
    conn: redis.Redis,
    *,
    burst: bool = False,
    settings: PipelineSettings | None = None,
    stop: threading.Event | None = None,
    name: str | None = None,
) -> None:
    """Move due timers into the work stream every `timer_poll_s` (several schedulers are safe)."""
    settings = settings or PipelineSettings.from_env()
    name = name or worker_name()
    stopper = _Stop(stop)
    stopper.install()
    try:
        while not stopper.event.is_set():
            try:
                status.heartbeat_scheduler(conn, name, settings.heartbeat_ttl_s)
                moved = timers.move_due(conn, time.time(), settings.timer_batch)
            except redis.RedisError:
                log.exception("scheduler pass failed", extra={"event": "scheduler_redis_error"})
                moved = 0
                stopper.event.wait(1.0)
            if burst:
                break
            if moved < settings.timer_batch:
                stopper.event.wait(settings.timer_poll_s)
    finally:
        stopper.restore()
