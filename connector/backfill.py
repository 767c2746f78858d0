"""Backfill: put tickets that predate the webhook under SLA, through the same event logs as webhooks.

A product supports backfill with a module `adapters.<product>.backfill` exposing
`reader(adapter)`, an object with `tickets_since(since)` (the product's ticket objects updated since
then), `ticket_id(ticket)` and `events(ticket)` (its canonical events, with the ids its webhooks
would give the same changes). `load_reader` finds it by product name, as `adapters.base.load`
finds adapters, so a third helpdesk only adds a file to its folder.

Per ticket this only puts the events its log does not hold yet into the ticket's inbox and marks it
as wanting a look, as the receiver does for a webhook; the next dispatch (within a second) turns it
into a look job, which merges, evaluates and writes back (level-triggered). Duplicate ids are
resolved by `sla.timeline.dedupe`, so a second run, or a run during live traffic, adds nothing that
changes the outcome.
"""

from __future__ import annotations

import importlib
import itertools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from adapters.base import InboundError, NotFound
from connector.config.loader import Config, InstanceConfig
from connector.config.tuning import PipelineSettings
from connector.state import outcomes, store
from sla.events import EventKind, TicketEvent
from sla.timeline import dedupe, final_deletion

DEFAULT_SINCE = "30d"
_RELATIVE = re.compile(r"(\d+)([dh])")


class TicketReader(Protocol):
    def tickets_since(self, since: datetime) -> Iterator[Any]: ...
    def ticket_id(self, ticket: Any) -> str: ...
    def events(self, ticket: Any) -> list[TicketEvent]: ...


@dataclass(frozen=True)
class TicketOutcome:
    """What backfill found for one ticket, and what it appended (or would, in a dry run)."""

    ticket: str
    events: int = 0
    new: int = 0  # events the log did not hold yet (or held in a form that loses to this one)
    known: bool = False  # the ticket had an event log already
    skipped: str | None = None  # why nothing was appended: not tracked and deleted, or an error
    error: bool = False
    quiet: bool = False  # stored but not evaluated: finished, never evaluated, no --include-solved

    def line(self, dry_run: bool) -> str:
        if self.skipped:
            return f"{self.ticket}: {'failed' if self.error else 'skipped'}: {self.skipped}"
        verb = "would append" if dry_run else "appended"
        state = "already tracked" if self.known else "not tracked before"
        text = f"{self.ticket}: {self.events} events, {self.new} new ({state}); {verb} {self.new}"
        if self.quiet:
            text += "; solved or closed: history kept, not evaluated (--include-solved evaluates it)"
        return text


def parse_since(text: str, now: datetime) -> datetime:
    """`30d`, `12h`, a date (`2026-10-01`, midnight UTC) or an ISO 8601 instant with a zone.

    Raises ValueError saying what is accepted; the instant must lie in the past.
    """
    value = text.strip()
    relative = _RELATIVE.fullmatch(value)
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2)
        if amount == 0:
            raise ValueError(f"--since {text!r}: must be more than 0{unit}")
        since = now - (timedelta(days=amount) if unit == "d" else timedelta(hours=amount))
    else:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(
                f"--since {text!r}: expected a number of days or hours (30d, 12h), a date (2026-10-01) "
                "or an instant with a time zone (2026-10-01T08:00:00+02:00)"
            ) from None
        if parsed.tzinfo is None and len(value) > 10:
            raise ValueError(f"--since {text!r}: an instant needs a time zone (e.g. +00:00 or Z)")
        since = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
    if since >= now:
        raise ValueError(f"--since {text!r}: {since.isoformat()} is not in the past")
    return since.astimezone(UTC)


def load_reader(instance: InstanceConfig) -> TicketReader:
    """The product's backfill reader for this instance. Raises ValueError when it has none."""
    name = f"adapters.{instance.product}.backfill"
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:  # the module exists but one of its imports is missing: a real bug
            raise
        raise ValueError(
            f"instance {instance.name!r}: the {instance.product} adapter has no backfill "
            f"(no module adapters/{instance.product}/backfill.py)"
        ) from None
    if not callable(getattr(module, "reader", None)):
        raise ValueError(f"adapters/{instance.product}/backfill.py does not define reader(adapter)")
    return module.reader(instance.adapter)


def run(
    conn: Any,
    instance: InstanceConfig,
    since: datetime,
    now: datetime,
    *,
    dry_run: bool = False,
    limit: int | None = None,
    include_solved: bool = False,
    config: Config | None = None,
) -> Iterator[TicketOutcome]:
    """Backfill `instance`: one outcome per ticket updated since `since` (at most `limit` tickets).
    With `config`, the tickets stored without a look get their outcome records (see `append_events`).

    A ticket whose events cannot be read or made (gone meanwhile, a value the configuration does
    not map) is reported and skipped. Every other API error ends the run (an `ApiError`, e.g.
    `Unauthorized`): tickets done so far stay done, and a new run adds only what is missing.
    """
    reader = load_reader(instance)
    # islice stops before asking for the ticket after the last: no page is read for nothing.
    for ticket in itertools.islice(reader.tickets_since(since), limit):
        tid = reader.ticket_id(ticket)
        try:
            events = reader.events(ticket)
        except (NotFound, InboundError, ValueError) as exc:
            yield TicketOutcome(tid, skipped=f"{type(exc).__name__}: {exc}", error=True)
            continue
        yield append_events(conn, instance.name, tid, events, now.timestamp(), dry_run=dry_run,
                            include_solved=include_solved, config=config)


def append_events(
    conn: Any, instance: str, ticket: str, events: list[TicketEvent], now_epoch: float, *, dry_run: bool,
    include_solved: bool = False, retention_s: int | None = None, config: Config | None = None,
) -> TicketOutcome:
    """Append the events the ticket's log lacks and schedule a look at `now_epoch` (not in a dry run).

    A finished ticket stored without a look (see `quiet` below) gets, given `config`, the outcome
    records of its clocks (evaluated at `now_epoch`, nothing written back), so that a report covers
    the time before the connector was installed; again on every run (the records are replaced).
    """
    key = store.events_key(instance, ticket)
    settings = PipelineSettings.from_env()
    retention_s = settings.retention_s if retention_s is None else retention_s
    try:
        rows = conn.lrange(key, 0, -1)
        # Events an earlier run (or a delivery carrying this ticket's events) put into the inbox and
        # no look has merged yet count as held: a second run before the workers ran appends nothing.
        inbox = conn.lrange(store.inbox_key(instance, ticket), 0, -1)
        stored = dedupe(store.decode_event(ticket, row) for row in [*rows, *_pending_events(inbox)])
    except (ValueError, KeyError, IndexError, TypeError) as exc:  # the workers report it as failed too
        why = f"its stored log cannot be read: {exc!r}"
        return TicketOutcome(ticket, len(events), skipped=why, error=True)
    if not stored and store.is_deleted(events):
        return TicketOutcome(ticket, len(events), skipped="deleted, and not tracked")
    # A finished ticket the workers never evaluated: its history is stored (should it be reopened,
    # its clocks continue from it) but not looked at, so nothing is written onto finished work (labels,
    # due dates, its watchers notified). --include-solved evaluates it too (complete reports).
    # A ticket with something in its inbox gets a look anyway: its events go the same way (the log is
    # written only by the look holding the ticket's lock, which may rewrite it).
    tk_fields = set(conn.hkeys(store.ticket_key(instance, ticket)))
    never_evaluated = not {store.text(f) for f in tk_fields} - outcomes.REPORT_META  # only report bookkeeping
    quiet = not include_solved and store.is_finished(events) and not inbox and never_evaluated
    held = {e.event_id: e for e in stored}
    # Compare in the stored form (epoch precision, canonical fields), by the evaluation's own rule.
    incoming = [store.decode_event(ticket, store.encode_event(e)) for e in events]
    gone = final_deletion(stored)
    if gone is not None and final_deletion(incoming) is None:
        # The product lists the ticket as existing, our log says deleted: it was restored while no
        # webhook could say so (Zendesk trigger webhooks carry no undelete). One restore per deletion.
        at = max(gone.at, datetime.fromtimestamp(now_epoch, UTC))
        incoming.append(TicketEvent(f"backfill:restored:{gone.event_id}", ticket, EventKind.RESTORED, at))
    fresh = [e for e in dedupe([*stored, *incoming]) if held.get(e.event_id) != e]
    if quiet and config is not None and not dry_run:
        _keep_outcomes(conn, config, instance, ticket, dedupe([*stored, *incoming]), now_epoch,
                       settings.outcome_retention_s, retention_s)
    if fresh and not dry_run:
        pipe = conn.pipeline(transaction=True)
        if quiet:  # no job looks at it: stored as the jobs keep a finished ticket's log
            pipe.rpush(key, *(store.encode_event(e) for e in fresh))
            pipe.expire(key, retention_s)
        else:  # through the ticket's inbox, like a webhook's events; the next dispatch asks for a look
            pipe.rpush(store.inbox_key(instance, ticket), store.events_row(fresh))
            pipe.zadd(store.WANT, {store.member(instance, ticket): now_epoch}, nx=True)
        pipe.execute()
    return TicketOutcome(ticket, len(events), len(fresh), known=bool(stored), quiet=quiet)


def _keep_outcomes(
    conn: Any, config: Config, instance: str, ticket: str, events: list[TicketEvent], now_epoch: float,
    outcome_retention_s: int, retention_s: int,
) -> None:
    """The outcome records of a ticket no look evaluates: evaluated purely at `now_epoch`."""
    from sla.evaluate import evaluate

    now = datetime.fromtimestamp(now_epoch, UTC)
    tk = store.ticket_key(instance, ticket)
    meta = store.decode_record(instance, ticket, [], conn.hgetall(tk)).meta
    evaluation = evaluate(config.policies, config.calendars, events, now, instance=instance)
    state = outcomes.report_state(instance, events, evaluation, now, config.contracts)
    pipe = conn.pipeline(transaction=True)
    outcomes.write(pipe, instance, ticket, meta, state, now_epoch, outcome_retention_s)
    pipe.expire(tk, retention_s)  # the bookkeeping lives as long as the ticket's log
    pipe.execute()


def _pending_events(inbox: list[bytes]) -> list[str]:
    """The encoded events of the inbox's "v" rows (deliveries, "e" rows, need the adapter: left out)."""
    out: list[str] = []
    for raw in inbox:
        row = store.decode_inbox_row(raw)
        if row.kind == "v":
            out += json.loads(row.body)
    return out


def credential_vars(settings: Mapping[str, Any]) -> list[str]:
    """The environment variables an instance's `auth` block names (never their values)."""
    auth = settings.get("auth")
    if not isinstance(auth, Mapping):
        return []
    return [str(v) for k, v in auth.items() if str(k).endswith("_env") and isinstance(v, str)]
