"""The contract report over a year: 100,000 synthetic tickets (about 300,000 outcome records).

Run: .venv/bin/python bench/report_bench.py [--tickets N] [--runs R]
Prints the medians of R runs of `build_report` for the year 2026 (Berlin calendar, 50 organisation
contracts with KPI and uptime credits, 300 incidents) and of a baseline measured in the same run:
grouping the same records by (instance, policy, priority, metric) and sorting each group's business
times, the least any report with medians must do. Also the cost of reading the records back from
their JSON rows (what the connector does before a report) and a row's size.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sla.calendar import BusinessCalendar  # noqa: E402
from sla.contracts import load_contracts  # noqa: E402
from sla.outcomes import Outcome  # noqa: E402
from sla.report import build_report  # noqa: E402
from sla.uptime import Incident  # noqa: E402

CALENDARS = {
    "berlin": BusinessCalendar.from_config(
        {"timezone": "Europe/Berlin", "hours": {"mon-fri": ["09:00-17:00"]}, "holidays": {"country": "DE"}},
        name="berlin",
    )
}
TARGETS = {  # seconds per metric and priority
    "first_response": {"urgent": 1800, "high": 3600, "normal": 14400, "low": 28800},
    "next_reply": {"urgent": 3600, "high": 7200, "normal": 28800, "low": 57600},
    "resolution": {"urgent": 14400, "high": 57600, "normal": 144000, "low": 288000},
}
PRIORITIES = ["urgent", "high", "normal", "low"]
WEIGHTS = [5, 20, 60, 15]
LEVELS = ("warning", "breach", "late")
YEAR = datetime(2026, 1, 1, tzinfo=UTC)
ORGS = [str(360000000 + i) for i in range(500)]
INSTANCES = ["acme-zendesk", "acme-jira"]


def synthesize(tickets: int, seed: int = 7) -> list[Outcome]:
    """A year of tickets: a first response, a resolution (5% still open) and 0-2 next-reply cycles each."""
    rng = random.Random(seed)
    out: list[Outcome] = []
    for n in range(tickets):
        instance = "acme-zendesk" if n % 3 else "acme-jira"
        ticket = str(100000 + n)
        key = f"SUP-{n}" if instance == "acme-jira" else None
        prio = rng.choices(PRIORITIES, WEIGHTS)[0]
        org = rng.choice(ORGS)
        created = YEAR + timedelta(seconds=rng.randrange(365 * 86400))
        cycles = [("first_response", "first_response"), ("resolution", "resolution")]
        cycles += [("next_reply", f"next_reply#{rng.getrandbits(40):010x}") for _ in range(rng.randrange(3))]
        for metric, cycle in cycles:
            target = TARGETS[metric][prio]
            used = int(target * rng.lognormvariate(-0.5, 0.6))
            start = created if metric != "next_reply" else created + timedelta(hours=rng.randrange(1, 200))
            still_open = metric == "resolution" and rng.random() < 0.05
            stop = None if still_open else start + timedelta(seconds=used * 3 + rng.randrange(3600))
            breached = used > target
            outcome = "breached" if breached else "open" if still_open else "met"
            reached = _levels(used, target)
            version = 1 if created.month < 7 else 2
            attrs = (instance, ticket, key, "standard", version, prio, org, "brand-1", "group-1")
            out.append(Outcome(*attrs, metric, "berlin", cycle, start, stop, used, target, outcome, reached))
    return out


def _levels(used: int, target: int) -> tuple[str, ...]:
    """Warning at 75% of the target, breach at 100%, late at 150%."""
    return tuple(name for name, share in zip(LEVELS, (0.75, 1.0, 1.5), strict=True) if used > target * share)


def incidents(count: int, seed: int = 11) -> list[Incident]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        start = YEAR + timedelta(seconds=rng.randrange(365 * 86400))
        end = None if i == count - 1 else start + timedelta(minutes=rng.randrange(5, 600))
        out.append(Incident(f"I-{i}", rng.choice(["api", "web"]), start, end, "acme-zendesk"))
    return out


def contracts() -> tuple:
    cfg = []
    for i, org in enumerate(ORGS[:50]):
        cfg.append({
            "id": f"customer-{i}", "customer": {"organisation": org}, "instances": INSTANCES,
            "timezone": "Europe/Berlin", "monthly_fee": 10000, "currency": "EUR", "credit_cap_percent": 25,
            "credits": [
                {"priority": p, "metric": m, "below": b, "credit_percent": c}
                for p in ("urgent", "high") for m in ("first_response", "resolution")
                for b, c in ((95, 5), (90, 10))
            ],
            "uptime": [
                {"service": s, "incidents": {"match": {"type": "incident", "tags": [f"svc-{s}"]}},
                 "service_hours": "24x7", "guaranteed_percent": 99.9,
                 "credits": [{"below": 99.9, "credit_percent": 10}, {"below": 99.0, "credit_percent": 25}]}
                for s in ("api", "web")
            ],
        })  # fmt: skip
    return load_contracts(cfg, PRIORITIES, CALENDARS)


def baseline(records: list[Outcome]) -> None:
    groups: dict[tuple, list[int]] = {}
    for o in records:
        groups.setdefault((o.instance, o.policy_id, o.priority, o.metric), []).append(o.business_s)
    for times in groups.values():
        times.sort()


def timed(fn, runs: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, {platform.processor() or 'cpu?'}")
    records = synthesize(args.tickets)
    incs = incidents(300)
    deals = contracts()
    now = datetime(2027, 1, 5, tzinfo=UTC)
    rows = [json.dumps(o.to_row(), separators=(",", ":")) for o in records]
    sizes = [len(r) for r in rows]
    print(f"{args.tickets:,} tickets, {len(records):,} outcome records, {len(deals)} contracts, ", end="")
    print(f"{len(incs)} incidents")
    median, largest, total = statistics.median(sizes), max(sizes), sum(sizes) / 1e6
    print(f"row size as JSON: median {median:.0f} B, max {largest} B, total {total:.1f} MB")

    def report() -> dict:
        return build_report(records, deals, incs, "2026", "2026", CALENDARS, now=now)

    result = report()
    assert len(result["kpis"]) == 2 * 4 * 3 and len(result["credit_totals"]) == 50 * 12
    base, base_runs = timed(lambda: baseline(records), args.runs)
    full, full_runs = timed(report, args.runs)
    read, _ = timed(lambda: [Outcome.from_row(json.loads(r)) for r in rows], max(1, args.runs // 2))
    runs = ", ".join(f"{t:.3f}" for t in base_runs)
    print(f"baseline group+sort: {base:.3f} s (median of {args.runs}: {runs})")
    runs = ", ".join(f"{t:.3f}" for t in full_runs)
    print(f"build_report, year:  {full:.3f} s (median of {args.runs}: {runs})")
    print(f"ratio build_report / baseline: {full / base:.1f}")
    print(f"reading the rows back (json + from_row): {read:.3f} s; with the report {read + full:.3f} s")
    print(f"credit lines: {len(result['credits'])}, uptime rows: {len(result['uptime'])}")


if __name__ == "__main__":
    main()
