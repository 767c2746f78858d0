"""What the connector is doing, from Redis: RQ's queues and workers, tickets waiting for a look,
timers, failures, and the cross-process counters the jobs keep (rendered on /metrics by the shell).

Counters live in one hash `sla:counters`, field = JSON [name, [[label, value], ...]]; the
processing latency histogram in `sla:latency` (cumulative-free buckets "le:<bound>", "sum", "count").
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

import redis
from rq import Worker
from rq.cron import CronScheduler

from connector.state import queues, store

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
Labels = tuple[tuple[str, str], ...]


# ---------------------------------------------------------------- writers (used by the jobs)


def counter_field(name: str, labels: Mapping[str, str] | None = None) -> str:
    return json.dumps([name, sorted((labels or {}).items())], separators=(",", ":"))


def incr(conn: Any, name: str, labels: Mapping[str, str] | None = None, amount: float = 1) -> None:
    """Add to a counter; `conn` may be a pipeline."""
    if amount:
        conn.hincrbyfloat(store.COUNTERS, counter_field(name, labels), amount)


class Tally:
    """Counter increments buffered for one batch, written as one HINCRBYFLOAT per series."""

    def __init__(self) -> None:
        self._counts: dict[str, float] = {}

    def incr(self, name: str, labels: Mapping[str, str] | None = None, amount: float = 1) -> None:
        if amount:
            key = counter_field(name, labels)
            self._counts[key] = self._counts.get(key, 0) + amount

    def flush(self, conn: Any) -> None:
        for key, amount in self._counts.items():
            conn.hincrbyfloat(store.COUNTERS, key, amount)
        self._counts.clear()


def observe_latency(conn: Any, seconds: Iterable[float]) -> None:
    """Record processing latencies (receipt to evaluation) into the histogram."""
    buckets: dict[str, int] = {}
    total = 0.0
    count = 0
    for value in seconds:
        value = max(0.0, value)
        bound = next((b for b in LATENCY_BUCKETS if value <= b), None)
        key = f"le:{bound}" if bound is not None else "le:+Inf"
        buckets[key] = buckets.get(key, 0) + 1
        total += value
        count += 1
    if not count:
        return
    for key, n in buckets.items():
        conn.hincrby(store.LATENCY, key, n)
    conn.hincrbyfloat(store.LATENCY, "sum", total)
    conn.hincrby(store.LATENCY, "count", count)


def alive_workers(conn: redis.Redis) -> list[str]:
    """Names of the RQ workers registered on the connector's queues (RQ expires dead ones)."""
    names = set()
    for name in queues.QUEUES:
        names.update(w.name for w in Worker.all(queue=queues.queue(conn, name)))
    return sorted(names)


def workers_alive(conn: redis.Redis) -> bool:
    return bool(alive_workers(conn))


#: Field of an RQ worker's hash (`rq:worker:<name>`) where a ConnectorWorker keeps the digest of the
#: policies and calendars it evaluates with (connector.config.loader.sla_digest).
WORKER_SLA_DIGEST = "sla_digest"


def workers_on_other_policies(conn: redis.Redis, digest: str) -> list[str]:
    """Names of the alive workers that evaluate with other policies or calendars than `digest` (those
    that published a digest: a worker of another class says nothing)."""
    names = alive_workers(conn)
    pipe = conn.pipeline(transaction=False)
    for name in names:
        pipe.hget(Worker.redis_worker_namespace_prefix + name, WORKER_SLA_DIGEST)
    return [name for name, theirs in zip(names, pipe.execute(), strict=True)
            if theirs is not None and theirs.decode() != digest]


def scheduler_alive(conn: redis.Redis) -> bool:
    """Whether an RQ cron scheduler that enqueues the dispatch tick is alive (RQ expires dead ones).

    Only one with a job on the dispatch queue counts: the Redis may be shared with other RQ apps,
    whose cron schedulers would not tick ours.
    """
    return any(job.queue_name == queues.DISPATCH
               for cron in CronScheduler.all(conn) for job in cron.get_jobs())


def backlog(conn: redis.Redis, now: float | None = None) -> dict[str, Any]:
    """Tickets waiting for a job, look jobs queued, and the age of the oldest unlooked-at request."""
    now = time.time() if now is None else now
    pipe = conn.pipeline(transaction=False)
    pipe.zcard(store.WANT)
    pipe.zrange(store.WANT, 0, 0, withscores=True)
    pipe.hlen(store.QUEUED)
    waiting, first, claimed = pipe.execute()
    oldest = [float(first[0][1])] if first else []
    if claimed:  # the oldest claim (its job queued or running)
        oldest += [float((store.text(v) or " 0").split(" ")[1] or 0)
                   for v in conn.hvals(store.QUEUED)]
    return {
        "tickets_waiting": int(waiting),
        "tickets_claimed": int(claimed),
        "jobs_queued": {name: queues.queue(conn, name).count for name in queues.QUEUES},
        "oldest_pending_age_s": max(0.0, now - min(oldest)) if oldest else None,
    }


def counters(conn: redis.Redis) -> dict[str, dict[Labels, float]]:
    """name -> {labels: value}, plus processing_latency_seconds_{bucket,sum,count} (cumulative buckets)."""
    out: dict[str, dict[Labels, float]] = {}
    for raw_field, raw_value in conn.hgetall(store.COUNTERS).items():
        name, labels = json.loads(raw_field)
        out.setdefault(name, {})[tuple((k, v) for k, v in labels)] = float(raw_value)
    latency = {store.text(k): float(v) for k, v in conn.hgetall(store.LATENCY).items()}
    if latency:
        running = 0.0
        buckets: dict[Labels, float] = {}
        for bound in [*LATENCY_BUCKETS, "+Inf"]:
            running += latency.get(f"le:{bound}", 0.0)
            buckets[(("le", str(bound)),)] = running
        out["processing_latency_seconds_bucket"] = buckets
        out["processing_latency_seconds_sum"] = {(): latency.get("sum", 0.0)}
        out["processing_latency_seconds_count"] = {(): latency.get("count", 0.0)}
    return out


def per_instance(conn: redis.Redis, name: str) -> dict[str, float]:
    """Counter `name` summed per instance (over its other labels), e.g. effects_rejected."""
    out: dict[str, float] = {}
    for raw_field, raw_value in conn.hgetall(store.COUNTERS).items():
        counter, labels = json.loads(raw_field)
        if counter == name:
            instance = dict(labels).get("instance", "")
            out[instance] = out.get(instance, 0.0) + float(raw_value)
    return dict(sorted(out.items()))


def status(conn: redis.Redis) -> dict:
    from connector.state import failed  # imported late: it needs RQ's registries, /metrics only this

    last = {store.text(k): float(v) for k, v in conn.hgetall(store.LAST_EVENT).items()}
    workers = alive_workers(conn)
    return {
        **backlog(conn),
        "timers_pending": int(conn.zcard(store.TIMERS)),
        "failed": failed.failed_count(conn),
        "workers_alive": len(workers),
        "workers": workers,
        "scheduler_alive": scheduler_alive(conn),
        "last_event_at": dict(sorted(last.items())),
        # Effects the products refused (recorded once, not retried): see each ticket's "rejected".
        "effects_rejected": per_instance(conn, "effects_rejected"),
    }


def reconciliation(conn: redis.Redis, instances: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per configured instance: how often it is reconciled (0: off), the last run, the events it found that
    the webhooks had missed, the cursor, the next run and the last error (connector/jobs/reconcile.py)."""
    from connector.state.reconciliation import summary

    every = {name: int(getattr(inst, "reconcile_every_s", 0)) for name, inst in instances.items()}
    found = summary(conn, [name for name, seconds in every.items() if seconds > 0])
    return {name: {"every_s": seconds, **found.get(name, {})} for name, seconds in every.items()}


def due_soon(conn: redis.Redis, now: float | None = None, within_s: float = 3600.0,
             limit: int = 10) -> list[dict[str, Any]]:
    """Up to `limit` tickets whose next timer falls before now + `within_s` (late ones first): the
    tickets with a deadline or escalation coming (or a write being retried). One ZRANGEBYSCORE and one
    pipelined HGET per ticket for its display key; nothing is evaluated."""
    now = time.time() if now is None else now
    due = conn.zrangebyscore(store.TIMERS, "-inf", now + within_s, start=0, num=limit, withscores=True)
    tickets = [(*store.split_member(m), float(score)) for m, score in due]
    pipe = conn.pipeline(transaction=False)
    for instance, ticket, _ in tickets:
        pipe.hget(store.ticket_key(instance, ticket), store.META + "key")
    keys = pipe.execute() if tickets else []
    return [{"instance": instance, "ticket": ticket, "key": store.text(key), "due_at": at,
             "in_s": round(at - now, 1)}
            for (instance, ticket, at), key in zip(tickets, keys, strict=True)]
