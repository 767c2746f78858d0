"""Timer lateness with 10,000 pending timers, and Redis memory per open ticket with 20 events.

Run: .venv/bin/python bench/timer_bench.py [--timers 10000] [--due 300] [--spread 30] [--runs 1]

Lateness: 10,000 urgent Jira tickets (the example configuration: 24x7 calendar, 4h resolution) are
created so that `due` of their breaches fall evenly over the next `spread` seconds and the others
later (an hour out): 10,000 timers pending while those fall due. Their first looks (RQ jobs, run by a
burst worker during set-up) schedule a timer at each breach instant. Then the real `sla-connector
worker` (RQ SimpleWorker + RQ's cron scheduler enqueueing the dispatch tick every second) runs in a
subprocess, dry-run; lateness = the time stamp of its `effect_dry_run` log line for the breach minus
the breach instant. `--due 10000` makes every timer fall due within `spread` (a burst: then the
figure is bound by how many looks per second the worker runs, see bench/worker_bench.py).
Baseline in the same run: RQ's own scheduler (`enqueue_at`, SimpleWorker --with-scheduler) with the
same 10,000 instants, lateness = job start minus its scheduled instant.

Memory: 1,000 tickets with 20 events each (creation, comments, status changes) processed by the
connector's jobs; MEMORY USAGE of each ticket's keys (event log, ledger hash, inbox: empty once looked
at) and its share of the timer set;
the dedupe keys of its deliveries, which expire after `dedupe_ttl_s`, are reported apart.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import redis  # noqa: E402
from worker_bench import ENV, ROOT, ticket_payloads  # noqa: E402

from connector.config.tuning import PipelineSettings  # noqa: E402
from connector.embedded_redis import EmbeddedRedis  # noqa: E402
from connector.jobs.worker import run_worker  # noqa: E402
from connector.receiver.intake import accept  # noqa: E402
from connector.state import store  # noqa: E402

TARGET = timedelta(hours=4)  # examples/config.yaml: incidents, resolution, urgent


def record_lateness(due: float) -> None:
    """The baseline job: how late did RQ start me?"""
    from rq import get_current_job

    get_current_job().connection.rpush("bench:late", time.time() - due)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def load_config() -> Any:
    from connector.config.loader import load_config as load

    return load(ROOT / "examples" / "config.yaml", {**os.environ, **ENV})


def drain(conn: redis.Redis, config: Any) -> None:
    """Run every queued job (dispatch, then the looks) with a burst worker in this process."""
    logging.disable(logging.INFO)
    try:
        run_worker(config, conn, burst=True, with_scheduler=False, settings=PipelineSettings(),
                   log_level="WARNING")
    finally:
        logging.disable(logging.NOTSET)


def urgent(payload: dict[str, Any]) -> dict[str, Any]:
    payload["issue"]["fields"]["priority"]["name"] = "Highest"  # -> "urgent": the 24x7 incidents policy
    return payload


# ---------------------------------------------------------------- lateness: the pipeline


def instants(start: float, count: int, due: int, spread: float) -> list[float]:
    """`count` timer instants: `due` of them evenly over [start, start + spread] (measured), the others
    pending further out (an hour), so the run has `count` timers pending while `due` fall due."""
    inside = [start + spread * i / due for i in range(due)]
    outside = [start + spread + 600 + 3000 * i / max(1, count - due) for i in range(count - due)]
    return inside + outside


def pipeline_lateness(url: str, count: int, spread: float, due_count: int) -> list[float]:
    conn = redis.Redis.from_url(url)
    conn.flushall()
    config = load_config()
    start = time.time() + 20 + count / 80  # room for the set-up below (a look job per ticket)
    due: dict[str, float] = {}
    for i, at in enumerate(instants(start, count, due_count, spread)):
        created = datetime.fromtimestamp(at, UTC) - TARGET
        created = created.replace(microsecond=created.microsecond // 1000 * 1000)  # Jira has milliseconds
        breach = (created + TARGET).timestamp()
        issue = str(300000 + i)
        delivery, payload = ticket_payloads(issue, created, 1)[0]
        accept(conn, "acme-jira", delivery, issue, urgent(payload), {}, datetime.now(UTC))
        if i < due_count:
            due[issue] = breach
    drain(conn, config)
    pending = conn.zcard(store.TIMERS)
    assert pending >= count, f"only {pending} timers pending"
    assert time.time() < start, "set-up took longer than the head start; lower --timers"
    with tempfile.NamedTemporaryFile("w+", prefix="sla-bench-worker-", suffix=".log") as log:
        env = {**os.environ, **ENV, "REDIS_URL": url, "PYTHONPATH": str(ROOT)}
        command = [sys.executable, "-m", "connector", "--config", str(ROOT / "examples" / "config.yaml"),
                   "--log-level", "INFO", "worker", "--name", "bench"]
        proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        seen: dict[str, float] = {}
        offset = 0
        try:
            deadline = start + spread + 60
            while len(seen) < due_count and time.time() < deadline:
                time.sleep(0.5)
                log.seek(offset)
                chunk = log.read()
                complete = chunk[: chunk.rfind("\n") + 1]  # a line still being written waits
                offset += len(complete.encode())
                for line in complete.splitlines():
                    if '"effect_dry_run"' not in line or "resolution:breach" not in line:
                        continue
                    record = json.loads(line)
                    at = datetime.fromisoformat(record["ts"]).timestamp()
                    seen.setdefault(record["ticket"], at)
        finally:
            proc.terminate()
            proc.wait(30)
    missing = sorted(set(due) - set(seen))
    if missing:
        t = missing[0]
        member = store.member("acme-jira", t)
        state = {
            "ledger": conn.hgetall(store.ticket_key("acme-jira", t)),
            "timer": conn.zscore(store.TIMERS, member),
            "want": conn.zscore(store.WANT, member),
            "queued": conn.hget(store.QUEUED, member),
            "due": due[t],
            "inbox": conn.llen(store.inbox_key("acme-jira", t)),
        }
        raise AssertionError(f"{len(seen)} of {due_count} breaches seen; first missing {t}: {state}")
    return [seen[t] - due[t] for t in due]


# ---------------------------------------------------------------- lateness: RQ's scheduler


def rq_lateness(url: str, count: int, spread: float, due_count: int) -> list[float]:
    from rq import Queue

    conn = redis.Redis.from_url(url)
    conn.flushall()
    queue = Queue("bench", connection=conn)
    start = time.time() + 10 + count / 500
    with conn.pipeline() as pipe:
        for at in instants(start, count, due_count, spread):
            queue.enqueue_at(
                datetime.fromtimestamp(at, UTC),
                "timer_bench.record_lateness",
                at,
                result_ttl=60,
                job_timeout=30,
                pipeline=pipe,
            )
        pipe.execute()
    assert time.time() < start
    code = (
        "import redis, sys; from rq import Queue, SimpleWorker\n"
        f"c = redis.Redis.from_url({url!r})\n"
        "w = SimpleWorker([Queue('bench', connection=c)], connection=c)\n"
        "w.work(with_scheduler=True, logging_level='WARNING', max_jobs=%d)\n" % due_count
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=HERE)
    try:
        proc.wait(timeout=spread + 120)
    finally:
        if proc.poll() is None:
            proc.kill()
    values = [float(v) for v in conn.lrange("bench:late", 0, -1)]
    assert len(values) == due_count, f"{len(values)} of {due_count} scheduled jobs ran"
    return values


# ---------------------------------------------------------------- memory per open ticket


def memory(url: str, tickets: int = 1000, events: int = 20) -> dict[str, float]:
    conn = redis.Redis.from_url(url)
    conn.flushall()
    config = load_config()
    created = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    for t in range(tickets):
        for delivery, payload in ticket_payloads(str(400000 + t), created, events):
            accept(
                conn,
                "acme-jira",
                f"{delivery}-0123456789abcdef0123",
                payload["issue"]["id"],
                payload,
                {},
                datetime.now(UTC),
            )  # delivery ids as long as Jira's UUIDs
    drain(conn, config)

    def usage(pattern: str) -> tuple[int, int]:
        keys = list(conn.scan_iter(pattern, count=1000))
        return sum(conn.memory_usage(k, samples=0) or 0 for k in keys), len(keys)

    assert not list(conn.scan_iter("sla:in:*")), "inboxes left after the looks"
    ev, n_ev = usage("sla:ev:*")
    tk, n_tk = usage("sla:tk:*")
    dd, n_dd = usage("sla:dd:*")
    rows = sum(conn.llen(k) for k in conn.scan_iter("sla:ev:*", count=1000))
    assert n_ev == tickets and rows == tickets * events, (n_ev, rows)
    timers = (conn.memory_usage(store.TIMERS, samples=0) or 0) / max(1, conn.zcard(store.TIMERS))
    return {
        "events": ev / tickets,
        "ledger": tk / max(1, n_tk),
        "timer": timers,
        "dedupe": dd / tickets,
        "per_delivery": dd / max(1, n_dd),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--timers", type=int, default=10_000)
    parser.add_argument("--spread", type=float, default=30.0)
    parser.add_argument("--due", type=int, default=300,
                        help="of the pending timers, how many fall due during the run (the rest: later)")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="sla-bench-") as tmp,
        EmbeddedRedis(tmp, persistent=True) as server,
    ):
        ours: list[dict[str, float]] = []
        theirs: list[dict[str, float]] = []
        for _ in range(args.runs):
            for fn, out in ((pipeline_lateness, ours), (rq_lateness, theirs)):
                values = fn(server.url, args.timers, args.spread, min(args.due, args.timers))
                out.append(
                    {
                        "p50": pct(values, 0.5),
                        "p99": pct(values, 0.99),
                        "max": max(values),
                        "min": min(values),
                    }
                )
        mem = memory(server.url)
    head = (f"# timer benchmark: {args.timers} pending timers, {min(args.due, args.timers)} of them due over "
            f"{args.spread:.0f}s")
    print(f"{head}, median of {args.runs} run(s)")
    print(f"# {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPUs")
    for label, runs in (
        ("connector (breach effect emitted)", ours),
        ("baseline RQ enqueue_at (job start)", theirs),
    ):
        m = {k: statistics.median(r[k] for r in runs) for k in ("p50", "p99", "min", "max")}
        print(
            f"{label:36s} lateness p50 {m['p50']:6.3f}s  p99 {m['p99']:6.3f}s  min {m['min']:6.3f}s  "
            f"max {m['max']:6.3f}s"
        )
    total = mem["events"] + mem["ledger"] + mem["timer"]
    print(
        f"memory per open ticket with 20 events: {total:.0f} B (event log {mem['events']:.0f} B, "
        f"ledger {mem['ledger']:.0f} B, timer {mem['timer']:.0f} B); target < 4096 B"
    )
    print(
        f"  plus dedupe keys while they live (default 3 days): {mem['dedupe']:.0f} B per ticket "
        f"({mem['per_delivery']:.0f} B per delivery)"
    )
    print(json.dumps({"pipeline": ours, "rq": theirs, "memory": mem}))


if __name__ == "__main__":
    main()
