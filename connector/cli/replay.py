"""What `simulate` and `review` share: the period from the command line, and a replay of every ticket's
event log of some instances through a collector (sla.simulate.Simulation, sla.review.Review).

The logs are read in chunks of `CHUNK` tickets (one pipelined round trip each) and evaluated in a pool
of worker processes: evaluation is pure Python, so one process is bound to one core. The workers are
forked with the collector already built (policies, calendars, period), read their chunks from Redis
themselves (redis-py opens new connections in a forked process) and hand back only counts, which the
parent merges. Nothing is written to Redis.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from datetime import datetime
from typing import Any, Protocol

from tqdm import tqdm

from connector.cli.common import UsageError, instance_names, require_positive
from connector.state.event_logs import load_events, ticket_ids
from sla.events import TicketEvent
from sla.periods import ReportPeriod

CHUNK = 250  # tickets per round trip and per task: about 5 ms of Redis, 0.2 s of evaluation
PROCESSES = 2


class Collector(Protocol):
    def add(self, instance: str, events: Sequence[TicketEvent]) -> None: ...

    def take(self) -> Any: ...

    def merge(self, part: Any) -> None: ...


def add_replay_arguments(cmd: argparse.ArgumentParser, *, required: bool, default: str = "") -> None:
    """--from, --to, --processes, --instance and --format; `default` says what an optional period
    defaults to."""
    forms = "2026, 2026-Q1, 2026-01, 2026-W05, 2026-01-15 or an ISO 8601 date-time"
    cmd.add_argument(
        "--from",
        dest="period_from",
        required=required,
        metavar="PERIOD",
        help=f"first period: {forms}{default}",
    )
    cmd.add_argument(
        "--to",
        dest="period_to",
        required=required,
        metavar="PERIOD",
        help="last period, included (same forms)",
    )
    cmd.add_argument(
        "--processes", type=int, default=PROCESSES, help="evaluating processes (default: %(default)s)"
    )
    cmd.add_argument("--instance", help="only this instance's tickets (default: every configured instance)")
    cmd.add_argument("--format", choices=("table", "json"), default="table", help="output (default: table)")


def instances_from_args(config: Any, args: argparse.Namespace) -> list[str]:
    """--instance as a list of instance names: that one, else every one; UsageError (exit 2) for an
    unknown instance or a --processes below 1."""
    instances = instance_names(config, args.instance)
    require_positive("--processes", args.processes)
    return instances


def period_from_args(start: str | datetime, end: str | datetime) -> ReportPeriod:
    """--from/--to as a ReportPeriod; UsageError (exit 2) naming the problem."""
    try:
        return ReportPeriod(start, end)
    except ValueError as exc:
        raise UsageError(f"--from/--to: {exc}") from None


def _replay_chunk(conn: Any, collector: Collector, instance: str, tickets: Sequence[str]) -> list[str]:
    """Feed one chunk to the collector; the messages of logs that could not be decoded."""
    unreadable = []
    for _, events in load_events(conn, instance, tickets):
        if isinstance(events, ValueError):
            unreadable.append(str(events))
        else:
            collector.add(instance, events)
    return unreadable


_WORKER: tuple[Any, Collector] | None = None  # set in each forked worker process


def _install(conn: Any, collector: Collector) -> None:
    global _WORKER
    _WORKER = (conn, collector)


def _work(instance: str, tickets: Sequence[str]) -> tuple[Any, list[str]]:
    assert _WORKER is not None, "a replay worker runs only in a process started by replay()"
    conn, collector = _WORKER
    unreadable = _replay_chunk(conn, collector, instance, tickets)
    return collector.take(), unreadable


def replay(
    conn: Any,
    instances: Sequence[str],
    collector: Collector,
    *,
    processes: int = PROCESSES,
    chunk: int | None = None,
    progress: bool | None = None,
) -> list[str]:
    """Every ticket with an event log in `instances` through `collector` (its counts end up in it).
    Returns the messages of event logs that could not be decoded (those tickets are left out).

    `progress`: a tqdm bar on stderr; by default only when stderr is a terminal."""
    chunk = chunk or CHUNK
    work = []
    for instance in instances:
        ids = ticket_ids(conn, instance)
        work.extend((instance, ids[i : i + chunk]) for i in range(0, len(ids), chunk))
    show = sys.stderr.isatty() if progress is None else progress
    total = sum(len(t) for _, t in work)
    unreadable: list[str] = []
    if processes <= 1 or len(work) <= 1:
        with tqdm(total=total, unit="ticket", disable=not show, file=sys.stderr) as bar:
            for instance, tickets in work:
                unreadable += _replay_chunk(conn, collector, instance, tickets)
                bar.update(len(tickets))
        return unreadable
    # fork: the workers start with the collector (policies, calendars, year tables) as built here. They
    # are forked at the first submit, before the progress bar starts its monitor thread.
    context = multiprocessing.get_context("fork")
    pool = ProcessPoolExecutor(
        processes, mp_context=context, initializer=_install, initargs=(conn, collector)
    )
    with pool:
        pending = {pool.submit(_work, instance, tickets): len(tickets) for instance, tickets in work}
        try:
            with tqdm(total=total, unit="ticket", disable=not show, file=sys.stderr) as bar:
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        part, bad = future.result()
                        collector.merge(part)
                        unreadable += bad
                        bar.update(pending.pop(future))
        except BaseException:  # an interrupt or a failed chunk: stop the workers, drop the rest
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return unreadable
