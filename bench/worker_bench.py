"""Events per second through the connector's RQ jobs (dry-run) vs no-op RQ jobs, same run, same processes.

Run: .venv/bin/python bench/worker_bench.py [--events 2000] [--runs 3] [--processes 1]

A private redis-server (AOF on, like production) is started for the benchmark. Each run fills it,
then starts the worker processes and times them from inside (imports excluded):
- baseline: one no-op RQ job per event, drained by RQ's `SimpleWorker` (the fastest RQ worker class;
  the forking `Worker` is about 3x slower), the same number of processes;
- connector: the connector's worker (`run_worker(burst=True)`: the same RQ SimpleWorker class),
  draining accepted Jira Cloud webhooks (the adapter's fixtures) through its RQ jobs: dispatch, then
  one look job per ticket (normalise -> event log -> evaluate with the example configuration's
  policies and Berlin calendar -> ledger reconciliation, in dry-run).
Two workloads: 100 tickets x 20 events, interleaved as they arrive in a burst (the deliveries of a
ticket share its look job); and 2000 new tickets with one event each (nothing to coalesce: one look
job per event, the worst case).
Prints the median events/s of each and the ratios.
"""

from __future__ import annotations

import argparse
import copy
import json
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from connector.embedded_redis import EmbeddedRedis  # noqa: E402

FIXTURES = ROOT / "adapters" / "jira" / "tests" / "fixtures"
ENV = {
    "JIRA_EMAIL": "bench@example.com",
    "JIRA_API_TOKEN": "bench-token",
    "JIRA_WEBHOOK_SECRET": "bench",
    "ZENDESK_EMAIL": "bench@example.com",
    "ZENDESK_API_TOKEN": "bench-token",
    "ZENDESK_WEBHOOK_SECRET": "YmVuY2g=",
    "SLA_CONNECTOR_API_TOKEN": "bench",
}


def noop() -> None:
    """The baseline job."""


# ---------------------------------------------------------------- workload: Jira Cloud webhooks


def _fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


_CREATED, _COMMENT, _STATUS = (
    _fixture("cloud_issue_created.json"),
    _fixture("cloud_comment_created_customer.json"),
    _fixture("cloud_issue_updated_status.json"),
)


def jira_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}+0000"


def ticket_payloads(issue: str, created: datetime, count: int) -> list[tuple[str, dict[str, Any]]]:
    """(delivery id, payload): a creation, then comments and status changes every 10 minutes."""
    out = []
    p = copy.deepcopy(_CREATED)
    p["issue"]["id"], p["issue"]["key"] = issue, f"SUP-{issue}"
    p["issue"]["fields"]["created"] = jira_time(created)
    p["timestamp"] = int(created.timestamp() * 1000)
    out.append((f"{issue}-0", p))
    for i in range(1, count):
        at = created + timedelta(minutes=10 * i)
        if i % 3 == 0:
            p = copy.deepcopy(_STATUS)
            p["changelog"]["id"] = f"{issue}{i:03d}"
        else:
            p = copy.deepcopy(_COMMENT)
            p["comment"]["id"] = f"{issue}{i:03d}"
            p["comment"]["created"] = p["comment"]["updated"] = jira_time(at)
        p["issue"]["id"], p["issue"]["key"] = issue, f"SUP-{issue}"
        p["timestamp"] = int(at.timestamp() * 1000)
        out.append((f"{issue}-{i}", p))
    return out


def workload(kind: str, events: int, start: datetime) -> list[tuple[str, dict[str, Any]]]:
    if kind == "single":
        return [ticket_payloads(str(100000 + i), start, 1)[0] for i in range(events)]
    per = 20
    tickets = [ticket_payloads(str(200000 + t), start, per) for t in range(max(1, events // per))]
    return [tickets[t][i] for i in range(per) for t in range(len(tickets))]  # interleaved by arrival


def load_config(path: Path) -> Any:
    from connector.config.loader import load_config as load

    return load(path, {**os.environ, **ENV})


# ---------------------------------------------------------------- children (timed from inside)


def child(kind: str, url: str, config_path: str, name: str) -> None:
    from rq import SimpleWorker

    # Both sides alike: no pubsub listener thread. With RQ 3 and redis-py 8 its thread can hold a burst
    # worker's exit for 60 s, which would count as work (seen: 29 no-op jobs/s instead of hundreds).
    SimpleWorker.subscribe = lambda self: None  # type: ignore[method-assign]
    conn = redis.Redis.from_url(url)
    if kind == "rq":
        from rq import Queue, SimpleWorker

        worker = SimpleWorker([Queue("bench", connection=conn)], connection=conn, name=name)
        start = time.time()
        worker.work(burst=True, logging_level="WARNING")
    else:
        import logging

        from connector.config.tuning import PipelineSettings
        from connector.jobs.worker import run_worker

        logging.disable(logging.INFO)  # dry-run logs every effect; the receiver side is not measured
        config = load_config(Path(config_path))
        import connector.jobs  # noqa: F401 - imported before timing, like RQ's job module after the first job
        import sla.evaluate  # noqa: F401

        start = time.time()
        run_worker(config, conn, burst=True, with_scheduler=False, name=name, settings=PipelineSettings(),
                   log_level="WARNING")
    print(json.dumps({"start": start, "end": time.time()}))


def run_children(kind: str, url: str, config_path: Path, processes: int) -> tuple[float, float]:
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--child",
                kind,
                "--url",
                url,
                "--config",
                str(config_path),
                "--name",
                f"{kind}-{i}",
            ],
            stdout=subprocess.PIPE,
            cwd=Path(__file__).parent,
        )
        for i in range(processes)
    ]
    times = [json.loads(p.communicate()[0].decode().strip().splitlines()[-1]) for p in procs]
    return min(t["start"] for t in times), max(t["end"] for t in times)


def one_run(server_url: str, config_path: Path, kind: str, events: int, processes: int) -> float:
    from rq import Queue

    from connector.receiver.intake import accept

    conn = redis.Redis.from_url(server_url)
    conn.flushall()
    if kind == "rq":
        q = Queue("bench", connection=conn)
        q.enqueue_many(
            [Queue.prepare_data("worker_bench.noop", result_ttl=60, timeout=30) for _ in range(events)]
        )
    else:
        now = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
        for delivery, payload in workload(kind, events, now):
            accept(conn, "acme-jira", delivery, payload["issue"]["id"], payload, {}, datetime.now(UTC))
        # The looks are enqueued before the clock starts, as the baseline's no-op jobs are (a dispatch
        # pass, as the cron tick would run it): otherwise a second burst worker finds the queues empty
        # and leaves before the first has dispatched.
        from connector.jobs import dispatcher
        from connector.jobs.context import Context

        conn.delete("rq:queue:sla-dispatch")
        dispatcher.dispatch(Context(load_config(config_path), conn=conn))
    start, end = run_children("rq" if kind == "rq" else "pipeline", server_url, config_path, processes)
    if kind == "rq":
        assert Queue("bench", connection=conn).count == 0
    else:
        assert not list(conn.scan_iter("sla:in:*")) and conn.zcard("sla:want") == 0, "deliveries left behind"
        assert conn.hlen("sla:queued") == 0, "claims left behind"
        assert conn.hlen("sla:failed") == 0, conn.hgetall("sla:failed")
        tickets = events if kind == "single" else max(1, events // 20)
        ledgers = [k for k in conn.scan_iter("sla:tk:*", count=1000) if conn.hlen(k)]
        assert len(ledgers) == tickets, f"{len(ledgers)} of {tickets} tickets have a dry-run ledger"
        stored = sum(conn.llen(k) for k in conn.scan_iter("sla:ev:*", count=1000))
        assert stored == events, f"{stored} of {events} events stored"
    return events / (end - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--child")
    parser.add_argument("--url")
    parser.add_argument("--config")
    parser.add_argument("--name")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.url, args.config, args.name)
        return
    config_path = ROOT / "examples" / "config.yaml"
    load_config(config_path)  # fail early on a broken example
    with (
        tempfile.TemporaryDirectory(prefix="sla-bench-") as tmp,
        EmbeddedRedis(tmp, persistent=True) as server,
    ):
        results: dict[str, list[float]] = {"rq": [], "interleaved": [], "single": []}
        for _ in range(args.runs):
            for kind in results:
                results[kind].append(one_run(server.url, config_path, kind, args.events, args.processes))
        med = {k: statistics.median(v) for k, v in results.items()}
    print(
        f"# worker benchmark: {args.events} events, {args.processes} process(es), median of {args.runs} runs"
    )
    print(f"# {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPUs")
    print(
        f"baseline  no-op RQ jobs (SimpleWorker)          {med['rq']:8.0f} events/s  "
        f"runs: {', '.join(f'{x:.0f}' for x in results['rq'])}"
    )
    for kind, label in (
        ("interleaved", f"connector dry-run, {max(1, args.events // 20)} tickets x 20 events"),
        ("single", f"connector dry-run, {args.events} tickets x 1 event"),
    ):
        print(
            f"{label:47s} {med[kind]:8.0f} events/s  ratio {med[kind] / med['rq']:5.2f}x  "
            f"runs: {', '.join(f'{x:.0f}' for x in results[kind])}"
        )


if __name__ == "__main__":
    main()
