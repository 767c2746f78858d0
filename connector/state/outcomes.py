"""Outcome records and incidents kept in Redis for reports (sla/outcomes.py, sla/uptime.py).

The look job (and backfill, for tickets it stores without a look) writes, in its final MULTI, the
ticket's ended clocks and the incidents it is; `sla-connector report` and `/metrics` read them back.

Keys per instance (record ids are "<ticket>\\n<cycle>", incident ids "<ticket>\\n<service>"):

- `sla:oc:<instance>:<YYYY-MM-DD>` hash: the records of the clocks that stopped on that UTC day,
  id -> `Outcome.to_row()` as compact JSON without the instance, ticket and cycle (the key and id
  hold them). Met and breached clocks only: cancelled ones count in no report. A day's hash expires
  (EXPIREAT) `outcome_retention_s` after the day ends, so trimming needs no job; reading a period
  reads its days (and every later day: a clock still running at the period's end counts as open).
- `sla:oc:open:<instance>` sorted set: tickets with a clock still running -> epoch of their last
  look; a report evaluates these from their event logs. The dispatcher's sweep drops those not looked
  at for `open_ttl_s` (their logs have expired).
- `sla:inc:<instance>` hash: incidents, id -> [start ms, end ms or null while open]; the sweep drops
  those ended longer than `outcome_retention_s` ago.
- in the ticket's hash `sla:tk:...`: "#oc" (JSON {cycle: day}) and "#inc" (the services, comma
  separated): where its records are, so a later look replaces or removes exactly those. A reopened
  clock's record is removed (it is open again, read from the log), a deleted ticket's all go.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import orjson

from connector.state import store
from sla.contracts import Contract, uptime_rules
from sla.evaluate import Evaluation
from sla.events import TicketEvent
from sla.outcomes import (
    STORED_START,
    STORED_STOP,
    Outcome,
    clocks,
    display_key_of,
    ended_outcomes,
    epoch_ms,
    from_epoch_ms,
    open_outcomes,
)
from sla.timeline import build_timeline
from sla.uptime import Incident, incidents_for_ticket

log = logging.getLogger("sla_connector.outcomes")

META_RECORDS = "oc"  # "#oc" in the ticket's hash: {cycle: day of its record}
META_INCIDENTS = "inc"  # "#inc": the services the ticket is an incident of
REPORT_META = frozenset({store.META + META_RECORDS, store.META + META_INCIDENTS})
TRIMMED = "sla:oc:trimmed"  # set while a trim ran recently (one an hour)
TRIM_EVERY_S = 3600
READ_BATCH = 32  # day hashes per pipeline round trip when reading
OPEN_BATCH = 200  # open tickets' logs per pipeline round trip
_DAY = timedelta(days=1)
_MARGIN = timedelta(hours=26)  # UTC offsets span -12h..+14h: a local day lies within a UTC day +- this


def records_key(instance: str, day: date) -> str:
    return f"sla:oc:{instance}:{day.isoformat()}"


def open_key(instance: str) -> str:
    return f"sla:oc:open:{instance}"


def incidents_key(instance: str) -> str:
    return f"sla:inc:{instance}"


def encode_record(outcome: Outcome) -> bytes:
    return orjson.dumps(outcome.to_stored_row())


def decode_record(instance: str, record_id: str | bytes, data: str | bytes | list[Any]) -> Outcome:
    """The Outcome of a stored row (or of the list it holds); ValueError naming the record when it is
    not one."""
    ticket, _, cycle = (store.text(record_id) or "").partition("\n")
    try:
        row = data if isinstance(data, list) else orjson.loads(data)
        return Outcome.from_stored_row(instance, ticket, cycle, row)
    except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
        raise ValueError(f"outcome record {ticket!r} {cycle!r} of instance {instance!r}: {exc}") from None


# ---------------------------------------------------------------- writing


@dataclass(frozen=True)
class TicketReportState:
    """What one look (or backfill) says about a ticket for reports."""

    ended: tuple[Outcome, ...]  # met and breached clocks that stopped
    running: bool  # a clock still runs (or is paused): reports evaluate it from the log
    incidents: tuple[Incident, ...]


def report_state(
    instance: str,
    events: Sequence[TicketEvent],
    evaluation: Evaluation,
    now: datetime,
    contracts: Sequence[Contract] = (),
    display_key: str | None = None,
) -> TicketReportState:
    """The records a ticket's evaluation at `now` leaves (pure: the evaluation is given). The display
    key is the events' `key` field (a Jira issue key), else `display_key` (the one the look indexed)."""
    timeline = build_timeline(events, now)
    if timeline is None or timeline.deleted_at is not None:  # a deleted ticket counts nowhere
        return TicketReportState((), False, ())
    ended = tuple(
        o
        for o in ended_outcomes(
            evaluation, timeline.attrs, instance, display_key_of(timeline.attrs, display_key)
        )
        if o.outcome != "cancelled"
    )
    running = any(c.stopped_at is None for c in clocks(evaluation))
    return TicketReportState(ended, running, _incidents(contracts, timeline, instance))


def _incidents(contracts: Sequence[Contract], timeline: Any, instance: str) -> tuple[Incident, ...]:
    rules = uptime_rules(contracts)
    if not rules:
        return ()
    return tuple(incidents_for_ticket(rules, timeline, instance))


def write(
    pipe: Any,
    instance: str,
    ticket: str,
    meta: Mapping[str, str],
    state: TicketReportState,
    now_epoch: float,
    retention_s: int,
) -> None:
    """Add to `pipe` the commands that make the stored records of the ticket `state`'s: changed ones
    replaced, ones no longer ended removed (`meta`: the ticket hash's "#" fields, without the "#")."""
    tk = store.ticket_key(instance, ticket)
    old = _json_map(meta.get(META_RECORDS))
    new: dict[str, str] = {}
    expiring: dict[str, float] = {}
    for outcome in state.ended:
        assert outcome.stopped_at is not None
        day = outcome.stopped_at.astimezone(UTC).date()
        expires = datetime.combine(day + _DAY, time(), UTC).timestamp() + retention_s
        if expires <= now_epoch:
            continue  # older than the retention: a report would not find it anyway
        key = records_key(instance, day)
        pipe.hset(key, f"{ticket}\n{outcome.cycle}", encode_record(outcome))
        expiring[key] = expires
        new[outcome.cycle] = day.isoformat()
    for key, at in expiring.items():
        pipe.expireat(key, int(at) + 1)
    for cycle, day in old.items():
        if new.get(cycle) != day:
            pipe.hdel(records_key(instance, date.fromisoformat(day)), f"{ticket}\n{cycle}")
    if new != old:
        _set_meta(
            pipe, tk, META_RECORDS, json.dumps(new, separators=(",", ":"), sort_keys=True) if new else ""
        )
    if state.running:
        pipe.zadd(open_key(instance), {ticket: now_epoch})
    else:
        pipe.zrem(open_key(instance), ticket)
    _write_incidents(pipe, instance, ticket, meta, state.incidents)


def _write_incidents(
    pipe: Any, instance: str, ticket: str, meta: Mapping[str, str], incidents: Iterable[Incident]
) -> None:
    old = {s for s in (meta.get(META_INCIDENTS) or "").split(",") if s}
    new = set()
    for inc in incidents:
        end = None if inc.end is None else epoch_ms(inc.end.astimezone(UTC))
        pipe.hset(
            incidents_key(instance),
            f"{ticket}\n{inc.service}",
            orjson.dumps([epoch_ms(inc.start.astimezone(UTC)), end]),
        )
        new.add(inc.service)
    for service in old - new:
        pipe.hdel(incidents_key(instance), f"{ticket}\n{service}")
    if new != old:
        _set_meta(pipe, store.ticket_key(instance, ticket), META_INCIDENTS, ",".join(sorted(new)))


def _set_meta(pipe: Any, tk: str, name: str, value: str) -> None:
    if value:
        pipe.hset(tk, store.META + name, value)
    else:
        pipe.hdel(tk, store.META + name)


def _json_map(raw: str | None) -> dict[str, str]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        log.warning(
            "unreadable outcome bookkeeping: its records are written again",
            extra={"event": "outcome_meta_unreadable", "value": raw[:100]},
        )
        return {}
    return value


def forget(pipe: Any, instance: str, ticket: str, meta: Mapping[str, str]) -> None:
    """Remove every record and incident of a ticket (deleted: it counts in no report)."""
    write(pipe, instance, ticket, meta, TicketReportState((), False, ()), 0.0, 1)


def keep_look(
    pipe: Any,
    instance: str,
    ticket: str,
    meta: Mapping[str, str],
    events: Sequence[TicketEvent],
    evaluation: Evaluation,
    now_epoch: float,
    retention_s: int,
    contracts: Sequence[Contract] = (),
) -> None:
    """The look job's part: its evaluation's records into its final MULTI. Records serve reports, not
    the ticket: an error here is logged (with its traceback) and never fails the look's write-back."""
    try:
        now = datetime.fromtimestamp(now_epoch, UTC)
        state = report_state(instance, events, evaluation, now, contracts, meta.get("key"))
        write(pipe, instance, ticket, meta, state, now_epoch, retention_s)
    except Exception:
        log.exception(
            "outcome records not written",
            extra={"event": "outcomes_failed", "instance": instance, "ticket": ticket},
        )


# ---------------------------------------------------------------- trimming


def trim(conn: Any, instances: Iterable[str], now_epoch: float, open_ttl_s: float, retention_s: float) -> int:
    """Drop open-index entries whose logs have expired and incidents past the retention (at most once
    an hour; the dispatcher's sweep calls it). Records expire by themselves. Returns entries dropped."""
    if not conn.set(TRIMMED, "1", nx=True, ex=TRIM_EVERY_S):
        return 0
    dropped = 0
    cutoff_ms = (now_epoch - retention_s) * 1000
    for instance in instances:
        dropped += conn.zremrangebyscore(open_key(instance), "-inf", f"({now_epoch - open_ttl_s}")
        old = []
        for field, raw in conn.hscan_iter(incidents_key(instance), count=1000):
            try:
                end = orjson.loads(raw)[1]
            except (orjson.JSONDecodeError, TypeError, IndexError):
                end = -1  # unreadable: nothing can use it
            if end is not None and end < cutoff_ms:
                old.append(field)
        if old:
            dropped += conn.hdel(incidents_key(instance), *old)
    return dropped


# ---------------------------------------------------------------- reading


def days_to_read(start: datetime, end: datetime, now: datetime) -> list[date]:
    """The UTC days whose records a report of [start, end) needs: from the day before its start (time
    zones) to today (a clock that stopped after the end was still open at the end)."""
    first = (start - _MARGIN).astimezone(UTC).date()
    last = max(now, start).astimezone(UTC).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def read_records(
    conn: Any,
    instances: Sequence[str],
    start: datetime,
    end: datetime,
    now: datetime,
    progress: Any = None,
) -> list[Outcome]:
    """The stored records that can count in [start, end) (any time zone): stopped from a day before
    its start, started before a day after its end. Pipelined, READ_BATCH days per round trip, in
    time order (a record found twice: the later one is the newer). `progress(n)` is told each batch."""
    lo, hi = epoch_ms(start - _MARGIN), epoch_ms(end + _MARGIN)
    keys = [(inst, records_key(inst, day)) for day in days_to_read(start, end, now) for inst in instances]
    out: list[Outcome] = []
    for i in range(0, len(keys), READ_BATCH):
        batch = keys[i : i + READ_BATCH]
        pipe = conn.pipeline(transaction=False)
        for _, key in batch:
            pipe.hgetall(key)
        for (instance, _), found in zip(batch, pipe.execute(), strict=True):
            for record_id, data in found.items():
                try:
                    row = orjson.loads(data)
                    if not (row[STORED_STOP] >= lo and row[STORED_START] < hi):
                        continue
                except (orjson.JSONDecodeError, TypeError, IndexError):
                    row = data  # not a record: decode_record says what is wrong with it
                out.append(decode_record(instance, record_id, row))
        if progress is not None:
            progress(len(batch))
    return out


def open_tickets(conn: Any, instance: str) -> list[str]:
    return [store.text(t) or "" for t in conn.zrange(open_key(instance), 0, -1)]


def evaluate_open(
    conn: Any, config: Any, instance: str, tickets: Sequence[str], now: datetime, progress: Any = None
) -> Iterator[Outcome]:
    """The clocks still running of `tickets`, evaluated from their event logs at `now` (nothing is
    written). A clock reopened after the period counts as open in it, as its record would once it
    ends again (the counting rule: where a cycle finally ends). ValueError naming a ticket whose log
    cannot be evaluated."""
    dry_run = config.instances[instance].dry_run
    for i in range(0, len(tickets), OPEN_BATCH):
        batch = tickets[i : i + OPEN_BATCH]
        pipe = conn.pipeline(transaction=False)
        for ticket in batch:
            pipe.lrange(store.events_key(instance, ticket), 0, -1)
            pipe.hgetall(store.ticket_key(instance, ticket))
        found = pipe.execute()
        for ticket, rows, hash_ in zip(batch, found[::2], found[1::2], strict=True):
            if not rows:
                continue  # its log expired: the sweep drops it from the index
            try:
                running = _open_of(config, instance, ticket, rows, hash_, now, dry_run)
            except Exception as exc:  # a log the look job could not read either: name the ticket
                raise ValueError(f"open ticket {ticket!r} of instance {instance!r}: {type(exc).__name__}: "
                                 f"{exc}") from exc  # fmt: skip
            yield from running
        if progress is not None:
            progress(len(batch))


def _open_of(
    config: Any,
    instance: str,
    ticket: str,
    rows: list[bytes],
    hash_: Mapping[bytes, bytes],
    now: datetime,
    dry_run: bool,
) -> list[Outcome]:
    from sla.evaluate import evaluate

    record = store.decode_record(instance, ticket, rows, hash_)
    if store.is_deleted(record.events):
        return []
    evaluation = evaluate(config.policies, config.calendars, record.events, now, instance=instance,
                          applied_keys=record.applied_keys(dry_run))  # fmt: skip
    timeline = build_timeline(record.events, now)
    assert timeline is not None  # the log has events
    key = display_key_of(timeline.attrs, record.meta.get("key"))
    return open_outcomes(evaluation, timeline.attrs, instance, key)


def read_incidents(conn: Any, instances: Sequence[str]) -> list[Incident]:
    """Every incident kept for `instances` (few: availability clips them to the period)."""
    pipe = conn.pipeline(transaction=False)
    for instance in instances:
        pipe.hgetall(incidents_key(instance))
    out = []
    for instance, found in zip(instances, pipe.execute(), strict=True):
        for field, raw in sorted(found.items()):
            ticket, _, service = (store.text(field) or "").partition("\n")
            start, end = orjson.loads(raw)
            out.append(
                Incident(
                    ticket,
                    service,
                    from_epoch_ms(start),
                    None if end is None else from_epoch_ms(end),
                    instance,
                )
            )
    return out
