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
Prints tickets/s and the ratios to the baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import platform
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


def baseline(all_events: list[list[TicketEvent]]) -> float:
    """Evaluations per second: each ticket once, current policies, in memory, one process."""
    at = PERIOD.bounds(CALENDARS["berlin"].zone)[1]
    t = time.perf_counter()
    for events in all_events:
        evaluate(CURRENT, CALENDARS, events, at, instance=INSTANCE)
    return len(all_events) / (time.perf_counter() - t)


def simulate(conn: redis.Redis, processes: int, proposed: PolicySet) -> tuple[float, Simulation]:
    t = time.perf_counter()
    sim = Simulation((CURRENT, CALENDARS), (proposed, CALENDARS), PERIOD, NOW)
    unreadable = replay(conn, [INSTANCE], sim, processes=processes, progress=False)
    elapsed = time.perf_counter() - t
    assert not unreadable
    return sim.counts.tickets / elapsed, sim


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
    cases = [(name, p) for name in PROPOSALS for p in counts]
    rates: dict[str, list[float]] = {"baseline": [], **{f"{n}/{p}": [] for n, p in cases}}
    rows: dict[str, list] = {}
    with (
        tempfile.TemporaryDirectory(prefix="sla-bench-") as tmp,
        EmbeddedRedis(tmp, persistent=False) as server,
    ):
        conn = redis.Redis.from_url(server.url)
        fill(conn, all_events)
        for _ in range(args.runs):
            rates["baseline"].append(baseline(all_events))
            for name, processes in cases:
                rate, sim = simulate(conn, processes, PROPOSALS[name])
                rates[f"{name}/{processes}"].append(rate)
                assert sim.counts.tickets == args.tickets
                assert rows.setdefault(name, sim.rows()) == sim.rows(), "runs disagree"
        conn.close()
    med = {k: statistics.median(v) for k, v in rates.items()}
    load = os.getloadavg()[0]
    print(f"# simulate benchmark: {args.tickets} tickets x 20 events, median of {args.runs} runs")
    print(
        f"# {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPUs, load {load:.1f}"
    )
    print(f"baseline: sla.evaluate once per ticket, in memory, 1 process: {med['baseline']:,.0f} tickets/s")
    what = {"all": "every policy changed", "half": "one of two policies changed"}
    for name, processes in cases:
        rate = med[f"{name}/{processes}"]
        print(
            f"simulate, {what[name]}, {processes} process(es): {rate:,.0f} tickets/s "
            f"({rate / med['baseline']:.2f}x the baseline)"
        )
    print("runs: " + "; ".join(f"{k} " + ", ".join(f"{r:,.0f}" for r in v) for k, v in rates.items()))


if __name__ == "__main__":
    main()
