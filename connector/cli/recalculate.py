"""`sla-connector recalculate [--instance NAME] [--policy ID] [--dry-run]`: bring open tickets up to date
after a policy or calendar change, for the policies that ask for it.

A policy asks for it with a version that says `recalculate: true` (docs/sla-semantics.md, "Policies:
matching and versions"): its open tickets then follow the new targets and calendars instead of waiting
for their next event or timer. The command picks the open tickets (not solved, closed, deleted or gone)
that such a policy governs now, by this configuration, and asks for a look at each one as the
dispatcher does (each wants a look; tickets without a job are claimed and enqueued as RQ `look` jobs).
The workers evaluate them with *their* configuration: restart them after changing the file, first. A
running connector worker publishes the digest of its policies and calendars; while one differs from
this file's, nothing is enqueued (exit 1, naming the workers).
It waits for the looks (a progress bar on a terminal, nothing when piped) and prints a summary read
from the tickets' ledgers before and after: tickets looked at, deadlines moved, effects written.
`--dry-run` evaluates here instead, writes nothing and enqueues nothing, and says what would change.

Exit codes as every command's (connector/cli/common.py): 0 done; 1 no worker is running (the looks
stay queued), a worker runs other policies or calendars (nothing enqueued), or looks still pending
after --timeout; 2 an unknown instance or policy, or a policy with
no version that asks for recalculation.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from connector.cli.common import (
    EXIT_FAILURE,
    EXIT_OK,
    Failure,
    UsageError,
    config_from_args,
    instance_names,
    redis_for,
)
from connector.config.loader import Config
from connector.config.tuning import PipelineSettings
from connector.state import status, store
from sla.effects import missing_effects
from sla.timeline import build_timeline

Ticket = tuple[str, str]  # (instance, ticket)
BATCH = 200  # tickets read from Redis per pipeline


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    cmd = sub.add_parser("recalculate", help="re-evaluate open tickets after a policy or calendar change")
    cmd.add_argument("--instance", metavar="NAME", help="only this instance's tickets (default: all)")
    cmd.add_argument(
        "--policy",
        metavar="ID",
        help="only the tickets this policy governs (default: every "
        "policy with a version that says recalculate: true)",
    )
    cmd.add_argument(
        "--dry-run",
        action="store_true",
        help="evaluate here and say what would change; enqueue and write nothing",
    )
    cmd.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="how long to wait for the looks (default: %(default)s)",
    )


@dataclass
class Summary:
    tickets: int = 0  # selected
    looked_at: int = 0  # whose look has run (or, in a dry run, evaluated here)
    deadlines_moved: int = 0
    effects_written: int = 0
    pending: int = 0  # looks not done when the wait ended

    def line(self, dry_run: bool) -> str:
        if dry_run:
            return (
                f"dry run: {self.tickets} open tickets would be looked at, {self.deadlines_moved} deadlines "
                f"would move, {self.effects_written} effects would be written (nothing was enqueued)"
            )
        text = (
            f"{self.looked_at} of {self.tickets} open tickets looked at, {self.deadlines_moved} deadlines "
            f"moved, {self.effects_written} effects written"
        )
        return text + (
            f"; {self.pending} looks still pending (they run when a worker takes them)"
            if self.pending
            else ""
        )


class Progress:
    """`done/total` as a bar on a terminal; nothing when the stream is not one (piped, a file)."""

    def __init__(self, total: int, stream: TextIO, label: str = "recalculating") -> None:
        self.total, self.stream, self.label = total, stream, label
        self.on = total > 0 and stream.isatty()

    def update(self, done: int) -> None:
        if self.on:
            filled = 30 * done // self.total
            self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] {done}/{self.total}")
            self.stream.flush()

    def close(self) -> None:
        if self.on:
            self.stream.write("\n")
            self.stream.flush()


# ---------------------------------------------------------------- choosing the tickets


def asking_policies(config: Config, policy: str | None) -> set[str]:
    """The ids of the policies to recalculate; UsageError naming the choices for a bad --policy."""
    asking = {p.id for p in config.policies.policies if p.recalculate}
    if policy is None:
        return asking
    known = list(dict.fromkeys(p.id for p in config.policies.policies))
    if policy not in known:
        raise UsageError(f"unknown policy {policy!r} (configured: {', '.join(known) or 'none'})")
    if policy not in asking:
        raise UsageError(
            f"policy {policy!r} has no version with recalculate: true, so its open tickets keep "
            "the version they started under (add a version that says recalculate: true)"
        )
    return {policy}


def open_tickets(
    conn: Any, config: Config, instances: Sequence[str], policies: set[str], now: datetime
) -> Iterator[Ticket]:
    """The open tickets of `instances` that one of `policies` governs at `now` (by this configuration)."""
    for instance in instances:
        prefix = store.events_key(instance, "")
        batch: list[str] = []
        for key in conn.scan_iter(match=_glob_escape(prefix) + "*", count=1000):
            batch.append((store.text(key) or "")[len(prefix) :])
            if len(batch) == BATCH:
                yield from _governed(conn, config, instance, batch, policies, now)
                batch = []
        yield from _governed(conn, config, instance, batch, policies, now)


def _governed(
    conn: Any, config: Config, instance: str, tickets: list[str], policies: set[str], now: datetime
) -> Iterator[Ticket]:
    pipe = conn.pipeline(transaction=False)
    for ticket in tickets:
        pipe.lrange(store.events_key(instance, ticket), 0, -1)
        pipe.hgetall(store.ticket_key(instance, ticket))
    answers = pipe.execute() if tickets else []
    for ticket, rows, hash_ in zip(tickets, answers[::2], answers[1::2], strict=True):
        try:
            record = store.decode_record(instance, ticket, rows, hash_)
        except (ValueError, KeyError, IndexError, TypeError):  # the workers report an unreadable log
            continue
        if record.gone or not record.events or store.is_finished(record.events):
            continue
        timeline = build_timeline(record.events, now)
        if timeline is None or timeline.deleted_at is not None:
            continue
        policy = config.policies.select(timeline.attrs, timeline.created, now, instance)
        if policy is not None and policy.id in policies:
            yield instance, ticket


def _glob_escape(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


# ---------------------------------------------------------------- the looks and what they changed


def ledgers(conn: Any, tickets: Sequence[Ticket]) -> dict[Ticket, dict[str, str]]:
    """The effects each ticket's ledger records (the dry-run ledger's too), without bookkeeping."""
    pipe = conn.pipeline(transaction=False)
    for instance, ticket in tickets:
        pipe.hgetall(store.ticket_key(instance, ticket))
    out: dict[Ticket, dict[str, str]] = {}
    for name, hash_ in zip(tickets, pipe.execute() if tickets else [], strict=True):
        fields = {store.text(k) or "": store.text(v) or "" for k, v in hash_.items()}
        out[name] = {k: v for k, v in fields.items() if not k.startswith((store.META, store.LEDGER_REJECTED))}
    return out


def changes(
    before: Mapping[Ticket, Mapping[str, str]], after: Mapping[Ticket, Mapping[str, str]]
) -> tuple[list[Ticket], int]:
    """The tickets whose deadline moved, and the number of effects written (ledger entries new or changed)."""
    moved, written = [], 0
    for name, now in after.items():
        was = before.get(name, {})
        written += sum(1 for key, value in now.items() if was.get(key) != value)
        if any(now.get(k) != was.get(k) for k in ("due", store.LEDGER_DRY + "due") if now.get(k)):
            moved.append(name)
    return moved, written


def request_looks(conn: Any, tickets: Sequence[Ticket], settings: PipelineSettings, now: float) -> int:
    """Each ticket wants a look; those without a job are claimed and enqueued (as the dispatcher does)."""
    from connector.jobs.dispatcher import enqueue_wanted

    if not tickets:
        return 0
    pipe = conn.pipeline(transaction=False)
    for instance, ticket in tickets:
        pipe.zadd(store.WANT, {store.member(instance, ticket): now}, nx=True)
    pipe.execute()
    return enqueue_wanted(conn, settings, now)


def still_pending(conn: Any, tickets: Sequence[Ticket]) -> list[Ticket]:
    """Tickets wanting a look or with one queued or running (a ticket leaves both once its look ended)."""
    pipe = conn.pipeline(transaction=False)
    for instance, ticket in tickets:
        member = store.member(instance, ticket)
        pipe.zscore(store.WANT, member)
        pipe.hexists(store.QUEUED, member)
    answers = pipe.execute() if tickets else []
    return [
        t
        for t, want, queued in zip(tickets, answers[::2], answers[1::2], strict=True)
        if want is not None or queued
    ]


def recalculate(
    conn: Any,
    tickets: Sequence[Ticket],
    settings: PipelineSettings,
    *,
    wait: Callable[[], None],
    timeout_s: float,
    progress: Progress,
    clock: Callable[[], float] = time.time,
) -> tuple[Summary, list[Ticket]]:
    """Ask for a look at each ticket, wait for them, and read what they changed in the ledgers."""
    summary = Summary(tickets=len(tickets))
    before = ledgers(conn, tickets)
    request_looks(conn, tickets, settings, clock())
    ends = time.monotonic() + timeout_s
    while True:
        pending = still_pending(conn, tickets)
        progress.update(len(tickets) - len(pending))
        if not pending or time.monotonic() >= ends:
            break
        wait()
    progress.close()
    summary.pending, summary.looked_at = len(pending), len(tickets) - len(pending)
    moved, summary.effects_written = changes(before, ledgers(conn, tickets))
    summary.deadlines_moved = len(moved)
    return summary, moved


def evaluate_here(
    conn: Any, config: Config, tickets: Sequence[Ticket], now: datetime
) -> tuple[Summary, list[Ticket]]:
    """--dry-run: what the looks would change, evaluated in this process with this configuration."""
    from sla.evaluate import evaluate

    summary, moved = Summary(tickets=len(tickets), looked_at=len(tickets)), []
    for instance, ticket in tickets:
        record = store.load_record(conn, instance, ticket)
        if record is None:
            continue
        dry = config.instances[instance].dry_run
        result = evaluate(
            config.policies,
            config.calendars,
            record.events,
            now,
            instance=instance,
            applied_keys=record.applied_keys(dry),
        )
        missing = missing_effects(result.desired, record.ledger_for(dry))
        summary.effects_written += len(missing)
        if any(e.key == "due" for e in missing) and record.ledger_for(dry).get("due"):
            moved.append((instance, ticket))
    summary.deadlines_moved = len(moved)
    return summary, moved


# ---------------------------------------------------------------- the command


def cmd_recalculate(
    args: argparse.Namespace,
    env: Mapping[str, str],
    *,
    stderr: TextIO | None = None,
    wait: Callable[[], None] | None = None,
) -> int:
    config = config_from_args(args, env)
    instances = instance_names(config, args.instance)
    policies = asking_policies(config, args.policy)
    if not policies:
        print(
            "no policy has a version with recalculate: true: open tickets keep the version they started "
            "under, nothing to do"
        )
        return EXIT_OK
    if args.timeout <= 0:
        raise UsageError(f"--timeout must be more than 0 seconds, got {args.timeout:g}")
    conn = redis_for(config)
    now = datetime.now(UTC)
    tickets = list(open_tickets(conn, config, instances, policies, now))
    if args.dry_run:
        summary, moved = evaluate_here(conn, config, tickets, now)
    else:
        if tickets and (stale := status.workers_on_other_policies(conn, config.sla_digest)):
            raise Failure(
                f"{len(stale)} running worker(s) evaluate with other policies or calendars than "
                f"{config.source} ({', '.join(stale)}): their looks would keep the old targets. Restart "
                "them with this file, then run recalculate again (nothing was enqueued)"
            )
        if tickets and not status.workers_alive(conn):
            request_looks(conn, tickets, PipelineSettings.from_env(), now.timestamp())
            raise Failure(
                f"no RQ worker is running: {len(tickets)} looks are queued and run when "
                "`sla-connector worker` starts (run recalculate again then for the summary)"
            )
        progress = Progress(len(tickets), stderr or sys.stderr)
        summary, moved = recalculate(
            conn,
            tickets,
            PipelineSettings.from_env(),
            wait=wait or _pause,
            timeout_s=args.timeout,
            progress=progress,
        )
    for instance, ticket in moved:
        print(f"{instance} {ticket}: deadline {'would move' if args.dry_run else 'moved'}")
    print(summary.line(args.dry_run))
    return EXIT_FAILURE if summary.pending else EXIT_OK


def _pause() -> None:
    time.sleep(0.2)
