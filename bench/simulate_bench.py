"""Tickets replayed per second by `sla-connector simulate`, against plain `sla.evaluate` of the same tickets.

Run: .venv/bin/python bench/simulate_bench.py [--tickets 10000] [--runs 3]

A private redis-server (no persistence needed: nothing is written during a replay) is filled with
`--tickets` synthetic tickets of 20 events each (bench/evaluate_bench.py's ticket, moved to start on a
different day of the fourth quarter of 2026), stored as the look job stores them. Then, medians of
`--runs` runs each:
- baseline: `sla.evaluate` of every ticket once, in one process, events already decoded in memory, no
  Redis (what one evaluation of the period's tickets costs at the least);
- simulate: the command's path (connector.cli.replay.replay with sla.simulate.Simulation: SCAN the
  instance's logs, pipelined LRANGE per chunk, decode, evaluate under the current and the proposed
  policies, count), with 1 and with 2 processes.
Prints tickets/s, the ratios to the baseline measured in the same run, and the CPU time per ticket of
all the processes involved (this one and the pool's workers; not redis-server): on a machine shared
with other jobs, wall-clock rates of 2 processes depend on whether a second core is free, CPU time does
not.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import redis  # noqa: E402
from evaluate_bench import CALENDARS, TARGETS, ticket_events  # noqa: E402

from connector.cli.replay import replay  # noqa: E402
from connector.embedded_redis import EmbeddedRedis  # noqa: E402
from connector.state.store import encode_event, events_key  # noqa: E402
from sla.evaluate import evaluate  # noqa: E402
from sla.events import TicketEvent  # noqa: E402
from sla.periods import ReportPeriod  # noqa: E402
from sla.policy import PolicySet, load_policies  # noqa: E402
from sla.simulate import Simulation  # noqa: E402

INSTANCE = "bench"
PERIOD = ReportPeriod("2026-10", "2026-12")
NOW = datetime(2027, 1, 15, tzinfo=UTC)
FIRST = datetime(2026, 10, 1, 9, 30, tzinfo=UTC)


def policy(policy_id: str, targets: dict[str, str], **extra: object) -> dict[str, object]:
    """evaluate_bench's policy (three metrics, four levels) under another id and targets."""
    metrics = ("first_response", "next_reply", "resolution")
    levels = [
        {"name": "warning", "metric": "resolution", "at": "75%", "actions": [{"tag": "sla-warning"}]},
        {"name": "due-soon", "metric": "next_reply", "before": "1h", "actions": [{"tag": "sla-due-soon"}]},
        {"name": "breach", "metric": "resolution", "at": "breach", "actions": [{"tag": "sla-breached"}]},
        {"name": "late", "metric": "resolution", "after": "4h", "actions": [{"comment": "{ticket} late"}]},
    ]
    return {"id": policy_id, "metrics": {m: {"calendar": "berlin", "targets": targets} for m in metrics},
            "escalations": levels, **extra}  # fmt: skip


HALVED = {"urgent": "2h", "high": "8h", "normal": "20h"}
VIP = {"match": {"tags_any": ["vip"]}}
CURRENT = load_policies([policy("vip", TARGETS, **VIP), policy("standard", TARGETS)], CALENDARS)
PROPOSALS = {
    # every ticket's policy changes: each ticket is evaluated twice (the worst case)
    "all": load_policies([policy("vip", HALVED, **VIP), policy("standard", HALVED)], CALENDARS),
    # only vip (half the tickets) changes: the others are evaluated once and counted on both sides
    "half": load_policies([policy("vip", HALVED, **VIP), policy("standard", TARGETS)], CALENDARS),
}


def tickets(count: int) -> list[list[TicketEvent]]:
    """`count` copies of the 20-event ticket, each its own id, starting on one of the quarter's 80 days;
    the even ones tagged vip."""
    template = ticket_events()
    shift0 = template[0].at
    out = []
    for n in range(count):
        start = FIRST + timedelta(days=n % 80, minutes=n % 480)
        tid = f"T{n}"
        events = [replace(e, ticket_id=tid, at=start + (e.at - shift0)) for e in template]
        if n % 2:  # half the tickets are not vip: the tag the template adds becomes another
            events = [
                replace(e, fields={**e.fields, "tags": ["std"]}) if "tags" in e.fields else e for e in events
            ]
        out.append(events)
    return out


def fill(conn: redis.Redis, all_events: list[list[TicketEvent]]) -> None:
    conn.flushall()
    pipe = conn.pipeline(transaction=False)
    for i, events in enumerate(all_events):
        pipe.rpush(events_key(INSTANCE, events[0].ticket_id), *(encode_event(e) for e in events))
        if i % 1000 == 999:
            pipe.execute()
    pipe.execute()


def cpu_seconds() -> float:
    """CPU time of this process and of its children that have ended (the pool's workers)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def baseline(all_events: list[list[TicketEvent]]) -> tuple[float, float]:
    """(tickets/s, CPU µs per ticket): each ticket evaluated once, current policies, in memory."""
    at = PERIOD.bounds(CALENDARS["berlin"].zone)[1]
    t, cpu = time.perf_counter(), cpu_seconds()
    for events in all_events:
        evaluate(CURRENT, CALENDARS, events, at, instance=INSTANCE)
    n = len(all_events)
    return n / (time.perf_counter() - t), (cpu_seconds() - cpu) * 1e6 / n


def simulate(conn: redis.Redis, processes: int, proposed: PolicySet) -> tuple[float, float, Simulation]:
    """(tickets/s, CPU µs per ticket of this process and its workers, the simulation)."""
    t, cpu = time.perf_counter(), cpu_seconds()
    sim = Simulation((CURRENT, CALENDARS), (proposed, CALENDARS), PERIOD, NOW)
    unreadable = replay(conn, [INSTANCE], sim, processes=processes, progress=False)
    elapsed = time.perf_counter() - t
    assert not unreadable
    n = sim.counts.tickets
    return n / elapsed, (cpu_seconds() - cpu) * 1e6 / n, sim


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--processes", default="1,2", help="comma-separated process counts (default: 1,2)")
    args = parser.parse_args()
    counts = [int(p) for p in args.processes.split(",")]
    all_events = tickets(args.tickets)
    for cal in CALENDARS.values():  # year tables built once, before any timing (as a running process has)
        cal.between(FIRST, FIRST + timedelta(days=400))
    cases = ["baseline", *(f"{name}/{p}" for name in PROPOSALS for p in counts)]
    rates: dict[str, list[float]] = {case: [] for case in cases}
    cpu: dict[str, list[float]] = {case: [] for case in cases}
    rows: dict[str, list] = {}
    loads = []
    with (
        tempfile.TemporaryDirectory(prefix="sla-bench-") as tmp,
        EmbeddedRedis(tmp, persistent=False) as server,
    ):
        conn = redis.Redis.from_url(server.url)
        fill(conn, all_events)
        for _ in range(args.runs):
            loads.append(os.getloadavg()[0])
            rate, used = baseline(all_events)
            rates["baseline"].append(rate)
            cpu["baseline"].append(used)
            for case in cases[1:]:
                name, processes = case.split("/")
                rate, used, sim = simulate(conn, int(processes), PROPOSALS[name])
                rates[case].append(rate)
                cpu[case].append(used)
                assert sim.counts.tickets == args.tickets
                assert rows.setdefault(name, sim.rows()) == sim.rows(), "runs disagree"
        conn.close()
    med = {k: statistics.median(v) for k, v in rates.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    print(f"# simulate benchmark: {args.tickets} tickets x 20 events, median of {args.runs} runs")
    print(
        f"# {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average at each run's start: {', '.join(f'{x:.1f}' for x in loads)}"
    )
    what = {
        "baseline": "baseline: sla.evaluate once per ticket, in memory",
        "all": "simulate, every policy changed",
        "half": "simulate, one of two policies changed",
    }
    header = ("case", "procs", "tickets/s", "ratio", "CPU us/ticket", "per busy core/s")
    print(f"{header[0]:<50} {header[1]:>5} {header[2]:>10} {header[3]:>6} {header[4]:>14} {header[5]:>16}")
    for case in cases:
        name, _, processes = case.partition("/")
        print(
            f"{what[name]:<50} {processes or '1':>5} {med[case]:>10,.0f} {med[case] / med['baseline']:>6.2f} "
            f"{med_cpu[case]:>14,.0f} {1e6 / med_cpu[case]:>16,.0f}"
        )
    print(
        "runs (tickets/s): "
        + "; ".join(f"{k} " + ", ".join(f"{r:,.0f}" for r in v) for k, v in rates.items())
    )


if __name__ == "__main__":
    main()
