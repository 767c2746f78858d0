"""`sla-connector report` over a year of 100,000 synthetic tickets kept in Redis, against reading the same
records back (HGETALL, pipelined), in the same run.

Run: .venv/bin/python bench/report_cli_bench.py [--tickets N] [--open N] [--runs R]

Starts its own redis-server (connector.embedded_redis, private socket, no persistence). Writes, with
the connector's own writer (connector/state/outcomes.py `write`, the look job's), the outcome records of
N tickets created over the last 365 days (examples/config.yaml's two instances and policies: urgent
tickets on the 24x7 "incidents" policy, the others on the Berlin office calendar with 0-2 next-reply
cycles; 500 organisations, 50 organisation contracts with KPI credits and one with uptime credits),
300 incidents, and `--open` tickets whose clocks still run with their event logs (evaluated from the
logs by every report). Then, R times each, medians printed:

- report: `sla-connector report --from <12 months ago> --to <this month> --format html --out FILE`,
  called in-process through connector.cli.main (configuration loaded, records read, open tickets
  evaluated, report built, HTML rendered and written);
- baseline: the same day hashes read with HGETALL in pipelines of the same size, nothing decoded;
- its parts once (read, open, build, render per format), a /metrics scrape's computation (the current
  month), and Redis memory per record and per 100,000 tickets.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
import yaml  # noqa: E402

from connector.config.loader import load_config  # noqa: E402
from connector.config.tuning import PipelineSettings  # noqa: E402
from connector.state import outcomes, store  # noqa: E402
from sla.events import EventKind, Role, TicketEvent  # noqa: E402
from sla.outcomes import Outcome  # noqa: E402
from sla.uptime import Incident  # noqa: E402

ENV = {"JIRA_EMAIL": "bench@example.invalid", "JIRA_API_TOKEN": "x" * 12, "JIRA_WEBHOOK_SECRET": "x" * 12,
       "ZENDESK_EMAIL": "bench@example.invalid", "ZENDESK_API_TOKEN": "x" * 12,
       "ZENDESK_WEBHOOK_SECRET": "x" * 12}  # fmt: skip
TARGETS = {  # examples/config.yaml, seconds of business time
    "incidents": {"first_response": {"urgent": 1800}, "resolution": {"urgent": 14400}},
    "standard": {
        "first_response": {"high": 7200, "normal": 28800, "low": 57600},
        "next_reply": {"high": 14400, "normal": 28800, "low": 57600},
        "resolution": {"high": 57600, "normal": 144000, "low": 288000},
    },
}
PRIORITIES, WEIGHTS = ["urgent", "high", "normal", "low"], [5, 20, 60, 15]
ORGS = [str(360000000 + i) for i in range(500)]
INSTANCES = ["acme-zendesk", "acme-jira"]


def contracts() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{
        "id": f"org-{i}", "customer": {"organisation": ORGS[i], "name": f"Customer {i}"},
        "instances": INSTANCES, "timezone": "Europe/Berlin", "monthly_fee": 5000, "currency": "EUR",
        "credits": [{"priority": "high", "metric": "resolution", "below": 95, "credit_percent": 5},
                    {"priority": "high", "metric": "resolution", "below": 90, "credit_percent": 10}],
        "credit_cap_percent": 25,
    } for i in range(50)]  # fmt: skip
    out.append({
        "id": "platform", "instances": INSTANCES, "timezone": "Europe/Berlin", "monthly_fee": 20000,
        "currency": "EUR", "uptime": [{
            "service": service, "incidents": {"match": {"type": "incident", "tags": [f"svc-{service}"]}},
            "service_hours": "24x7", "guaranteed_percent": 99.9,
            "credits": [{"below": 99.9, "credit_percent": 10}, {"below": 99.0, "credit_percent": 25}],
        } for service in ("api", "web")],
    })  # fmt: skip
    return out


def synthesize(tickets: int, now: datetime, seed: int = 7) -> list[tuple[str, str, list[Outcome]]]:
    """(instance, ticket, its ended records) of tickets created over the 365 days before `now`."""
    rng = random.Random(seed)
    out = []
    for n in range(tickets):
        instance = INSTANCES[n % 3 == 0]
        ticket = str(100000 + n)
        key = f"SUP-{n}" if instance == "acme-jira" else None
        prio = rng.choices(PRIORITIES, WEIGHTS)[0]
        policy, calendar = ("incidents", "always") if prio == "urgent" else ("standard", "berlin-office")
        org = rng.choice(ORGS)
        created = now - timedelta(days=365) + timedelta(seconds=rng.randrange(363 * 86400))
        records = []
        cycles = [("first_response", "first_response", created)]
        if policy == "standard":
            cycles += [("next_reply", f"next_reply#{n:05x}{c:05x}", created + timedelta(days=c + 1))
                       for c in range(rng.choice((0, 0, 1, 2)))]  # fmt: skip
        cycles.append(("resolution", "resolution", created))
        for metric, cycle, start in cycles:
            target = TARGETS[policy][metric][prio]
            used = int(target * rng.uniform(0.05, 1.4))
            wall = used if calendar == "always" else used * 3 + rng.randrange(3600)
            stop = min(start + timedelta(seconds=wall), now - timedelta(minutes=1))
            breached = used > target
            levels = ("warning", "breach") if breached else ("warning",) if used > 0.75 * target else ()
            records.append(Outcome(instance, ticket, key, policy, 1, prio, org, None, None, metric, calendar,
                                   cycle, start, stop, used, target, "breached" if breached else "met",
                                   levels))  # fmt: skip
        out.append((instance, ticket, records))
    return out


def write_records(conn: redis.Redis, data: list[tuple[str, str, list[Outcome]]], now: datetime) -> int:
    retention = PipelineSettings().outcome_retention_s
    rng = random.Random(11)
    count = 0
    for i in range(0, len(data), 1000):
        pipe = conn.pipeline(transaction=False)
        for instance, ticket, records in data[i : i + 1000]:
            incidents: tuple[Incident, ...] = ()
            if int(ticket) % 333 == 0:  # 300 incidents, an hour or two each
                start = records[0].started_at
                service = rng.choice(("api", "web"))
                incidents = (
                    Incident(ticket, service, start, start + timedelta(seconds=rng.randrange(7200))),
                )
            state = outcomes.TicketReportState(tuple(records), False, incidents)
            outcomes.write(pipe, instance, ticket, {}, state, now.timestamp(), retention)
            count += len(records)
        pipe.execute()
    return count


def write_open(conn: redis.Redis, tickets: int, now: datetime) -> None:
    """Tickets whose clocks still run: an event log each (created, agent reply, requester question)."""
    rng = random.Random(13)
    pipe = conn.pipeline(transaction=False)
    for n in range(tickets):
        instance, ticket = INSTANCES[n % 3 == 0], f"open-{n}"
        created = now - timedelta(seconds=rng.randrange(30 * 86400))
        prio = rng.choices(PRIORITIES, WEIGHTS)[0]
        events = [
            TicketEvent(f"{ticket}-n", ticket, EventKind.CREATED, created,
                        fields={"status": "open", "priority": prio, "organization": rng.choice(ORGS)}),
            TicketEvent(f"{ticket}-c1", ticket, EventKind.COMMENTED, created + timedelta(minutes=30),
                        Role.AGENT, public=True),
            TicketEvent(f"{ticket}-c2", ticket, EventKind.COMMENTED, created + timedelta(hours=2),
                        Role.REQUESTER, public=True),
        ]  # fmt: skip
        pipe.rpush(store.events_key(instance, ticket), *(store.encode_event(e) for e in events))
        pipe.zadd(outcomes.open_key(instance), {ticket: now.timestamp()})
    pipe.execute()


def baseline(conn: redis.Redis, keys: list[str]) -> float:
    """HGETALL of the same day hashes, pipelined as the report reads them; nothing decoded."""
    t0 = time.perf_counter()
    for i in range(0, len(keys), outcomes.READ_BATCH):
        pipe = conn.pipeline(transaction=False)
        for key in keys[i : i + outcomes.READ_BATCH]:
            pipe.hgetall(key)
        pipe.execute()
    return time.perf_counter() - t0


def report_once(argv: list[str]) -> float:
    from connector.cli.main import main

    t0 = time.perf_counter()
    code = main(argv)
    elapsed = time.perf_counter() - t0
    if code != 0:
        raise SystemExit(f"report exited {code}")
    return elapsed


def parts(conn: redis.Redis, config_path: Path, period: tuple[str, str], now: datetime) -> dict[str, float]:
    import argparse as ap

    from connector.cli import report as report_cli
    from connector.receiver.kpi_metrics import month_counts
    from connector.reports import render

    config = load_config(config_path, os.environ)
    start, end = report_cli.period_bounds(config, *period)
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    records = outcomes.read_records(conn, INSTANCES, start, end, now)
    times["read records"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for name in INSTANCES:
        records.extend(outcomes.evaluate_open(conn, config, name, outcomes.open_tickets(conn, name), now))
    times["evaluate open tickets"] = time.perf_counter() - t0
    args = ap.Namespace(period_from=period[0], instance=None, by_organisation=False)
    t0 = time.perf_counter()
    built = report_cli.build(records, config, args, period[1], now, conn, INSTANCES)
    times["build (sla.report)"] = time.perf_counter() - t0
    for fmt in ("table", "csv", "json", "html"):
        t0 = time.perf_counter()
        render(built, fmt)
        times[f"render {fmt}"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    month_counts(conn, config, now)
    times["/metrics computation (this month)"] = time.perf_counter() - t0
    times["records"] = len(records)
    return times


def memory(conn: redis.Redis, keys: list[str], records: int, tickets: int) -> tuple[float, float]:
    days = sum(conn.memory_usage(k, samples=0) or 0 for k in keys)
    sample = [
        store.ticket_key(INSTANCES[n % 3 == 0], str(100000 + n))
        for n in range(0, tickets, max(1, tickets // 500))
    ]
    meta = statistics.mean(conn.memory_usage(k, samples=0) or 0 for k in sample)
    return days / records, meta


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--open", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    os.environ.update(ENV)
    from connector.embedded_redis import EmbeddedRedis

    now = datetime.now(UTC)
    period = ((now - timedelta(days=335)).strftime("%Y-%m"), now.strftime("%Y-%m"))
    with (
        tempfile.TemporaryDirectory(prefix="sla-bench-") as tmp,
        EmbeddedRedis(tmp, persistent=False) as server,
    ):
        conn = redis.Redis.from_url(server.url)
        config = yaml.safe_load((ROOT / "examples/config.yaml").read_text())
        config.update(redis_url=server.url, data_dir=tmp, contracts=contracts())
        config_path = Path(tmp) / "config.yaml"
        config_path.write_text(yaml.safe_dump(config))
        t0 = time.perf_counter()
        data = synthesize(args.tickets, now)
        count = write_records(conn, data, now)
        write_open(conn, args.open, now)
        print(f"wrote {count:,} records of {args.tickets:,} tickets and {args.open:,} open tickets "
              f"in {time.perf_counter() - t0:.1f} s")  # fmt: skip
        start, end = datetime.fromisoformat(f"{period[0]}-01T00:00:00+00:00"), now
        keys = [outcomes.records_key(i, d) for d in outcomes.days_to_read(start, end, now) for i in INSTANCES]
        out = Path(tmp) / "report.html"
        argv = ["--config", str(config_path), "--log-level", "WARNING", "report", "--from", period[0],
                "--to", period[1], "--format", "html", "--out", str(out)]  # fmt: skip
        reports, bases = [], []
        for _ in range(args.runs):
            bases.append(baseline(conn, keys))
            reports.append(report_once(argv))
        split = parts(conn, config_path, period, now)
        per_record, meta = memory(conn, keys, count, args.tickets)
        load = os.getloadavg()
    report_s, base_s = statistics.median(reports), statistics.median(bases)
    print(
        f"machine: {cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, load average {load[0]:.2f}; {now:%Y-%m-%d %H:%M} UTC"
    )
    print(f"period {period[0]} .. {period[1]}: {int(split['records']):,} records read, HTML {out.name}")
    print(
        f"report (whole command, html): median {report_s:.2f} s of {args.runs} "
        f"({', '.join(f'{t:.2f}' for t in reports)}); target < 10 s"
    )
    print(f"baseline (HGETALL of the same day hashes): median {base_s:.2f} s; ratio {report_s / base_s:.1f}x")
    for name, value in split.items():
        if name != "records":
            print(f"  {name}: {value:.3f} s")
    per_ticket = per_record * count / args.tickets
    print(f"memory: {per_record:.0f} B per record in the day hashes, {per_ticket:.0f} B per ticket "
          f"({count / args.tickets:.2f} records), {per_ticket * 100_000 / 1e6:.0f} MB per 100,000 tickets; "
          f"the ticket hash's '#oc' at most {meta:.0f} B per ticket (a hash holding only it)")  # fmt: skip


if __name__ == "__main__":
    main()
