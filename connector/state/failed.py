"""What the connector gave up on, for `sla-connector failed list|retry|purge`.

Three kinds, listed together:
- "job": a look job that failed on every attempt (a write-back the product kept refusing with 5xx,
  a bug, a worker killed each time). It is in RQ's FailedJobRegistry of the `sla-tickets` queue,
  under its RQ job id, so `rq info`, rq-dashboard and `rq requeue` see it too. The ticket's inbox
  keeps what arrived meanwhile. `retry` requeues it through RQ (and clears the ticket's gone mark
  and refused effects, so the product is asked again).
- "event": a delivery that could not be normalised (or names an instance no longer configured):
  not a job, kept here (`sla:failed`, its inbox row in `sla:failed:rows`) under
  "event:<instance>:<delivery>"; `retry` puts it back into its ticket's inbox.
- "refused": a ticket holding effects the product refused (a value it would not take: see
  connector/jobs/retries.py), under "ticket:<instance>:<ticket>"; not a failure, but the refusal
  may come from the setup and be fixed since, so `retry --all` replays them too.
`retry ticket:<instance>:<ticket>` works for any stored ticket (clears its marks, asks for a look).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import redis
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry
from rq.results import Result

from connector.state import queues, store

ROWS = "sla:failed:rows"


def event_id(instance: str, delivery: str) -> str:
    return f"event:{instance}:{delivery}"


def ticket_id(instance: str, ticket: str) -> str:
    return f"ticket:{instance}:{ticket}"


def record_delivery(
    conn: Any, instance: str, ticket: str, row: store.InboxRow, error: str, now: float | None = None
) -> str:
    """Keep a delivery that cannot be normalised, replayable. `conn` may be a pipeline."""
    entry_id = event_id(instance, row.delivery or f"row-{abs(hash(row.raw)):x}")
    entry = {"id": entry_id, "kind": "event", "instance": instance, "ticket": ticket or None,
             "delivery": row.delivery or None, "error": error[:2000], "attempts": 1,
             "failed_at": time.time() if now is None else now}
    conn.hset(store.FAILED, entry_id, json.dumps(entry, separators=(",", ":")))
    conn.hset(ROWS, entry_id, row.raw)
    return entry_id


def _registry(conn: redis.Redis) -> FailedJobRegistry:
    return FailedJobRegistry(queue=queues.queue(conn, queues.TICKETS))


def _job_entry(job: Job) -> dict:
    instance, ticket = (list(job.args or ()) + ["", ""])[:2]
    # The failure RQ recorded (`job.exc_info` is deprecated): also there for a job RQ's maintenance
    # moved here after its worker died, which has no `ended_at`.
    result = job.latest_result()
    failure = result if result is not None and result.type == Result.Type.FAILED else None
    lines = [line for line in (failure.exc_string if failure else "").strip().splitlines() if line.strip()]
    ended = job.ended_at or (failure.created_at if failure else None)
    return {"id": job.id, "kind": "job", "instance": instance, "ticket": ticket, "delivery": None,
            "error": (lines[-1] if lines else "failed")[:2000], "attempts": (job.number_of_retries or 0) + 1,
            "failed_at": ended.timestamp() if ended else 0.0}


def _failed_jobs(conn: redis.Redis) -> list[Job]:
    ids = _registry(conn).get_job_ids()
    return [j for j in Job.fetch_many(ids, connection=conn) if j is not None]


def list_failed(conn: redis.Redis) -> list[dict]:
    """Every failed job and delivery, oldest first, then tickets holding refused effects."""
    out = [_job_entry(job) for job in _failed_jobs(conn)]
    out += [json.loads(raw) for raw in conn.hvals(store.FAILED)]
    listed = {entry["id"] for entry in out}
    for entry_id in sorted(store.text(m) or "" for m in conn.smembers(store.REFUSED)):
        if entry_id not in listed and (entry := _refused_entry(conn, entry_id)) is not None:
            out.append(entry)
    return sorted(out, key=lambda e: (e["failed_at"], e["id"]))


def _refused_entry(conn: redis.Redis, entry_id: str) -> dict | None:
    """A listing of a ticket's refused effects ("effect key: reason; ..."), None when it has none left."""
    _, instance, ticket = _split(entry_id)
    refusals = {
        (store.text(k) or "").removeprefix(store.LEDGER_REJECTED): store.decode_rejection(store.text(v) or "")
        for k, v in conn.hgetall(store.ticket_key(instance, ticket)).items()
        if (store.text(k) or "").startswith(store.LEDGER_REJECTED)
    }
    if not refusals:
        return None
    return {
        "id": entry_id, "kind": "refused", "instance": instance, "ticket": ticket, "delivery": None,
        "error": "; ".join(f"{key}: {r.get('reason', '')}" for key, r in sorted(refusals.items()))[:2000],
        "attempts": 0, "failed_at": min(float(r.get("at") or 0) for r in refusals.values()),
    }


def _split(entry_id: str) -> tuple[str, str, str]:
    """"ticket:<instance>:<ticket>" -> its three parts. Ticket ids never hold ":" (instance names may)."""
    prefix, _, rest = entry_id.partition(":")
    instance, _, ticket = rest.rpartition(":")
    return prefix, instance, ticket


def _all_ids(conn: redis.Redis) -> list[str]:
    ids = [store.text(k) or "" for k in conn.hkeys(store.FAILED)] + _registry(conn).get_job_ids()
    for member in conn.smembers(store.REFUSED):  # tickets with refused effects, for `retry --all`
        entry_id = store.text(member) or ""
        if _refused_entry(conn, entry_id) is None:  # none left (a new value was written): forget it
            conn.srem(store.REFUSED, entry_id)
        else:
            ids.append(entry_id)
    return ids


def _clear_marks(pipe: Any, conn: redis.Redis, instance: str, ticket: str) -> None:
    """A replay asks the product again whatever an older 404 said, and tries refused values again."""
    tk = store.ticket_key(instance, ticket)
    refused = [k for k in conn.hkeys(tk) if (store.text(k) or "").startswith(store.LEDGER_REJECTED)]
    pipe.hdel(tk, store.META + "gone", store.META + "gone_at", *refused)
    pipe.srem(store.REFUSED, ticket_id(instance, ticket))


def _want(pipe: Any, instance: str, ticket: str) -> None:
    pipe.zadd(store.WANT, {store.member(instance, ticket): time.time()}, nx=True)


def retry_failed(conn: redis.Redis, ids: Sequence[str] | None = None) -> int:
    """Replay the given entries (all when `ids` is None); the number replayed. Unknown ids are skipped."""
    count = 0
    wanted = False
    for entry_id in _all_ids(conn) if ids is None else list(dict.fromkeys(ids)):
        pipe = conn.pipeline(transaction=True)
        prefix, instance, ticket = _split(entry_id)
        if prefix == "event":
            raw_entry, raw_row = conn.hget(store.FAILED, entry_id), conn.hget(ROWS, entry_id)
            if raw_entry is None or raw_row is None:
                continue
            entry, row = json.loads(raw_entry), store.decode_inbox_row(raw_row)
            replay = store.encode_inbox_row(row.kind, row.body, delivery=row.delivery, received=row.received,
                                            headers=row.headers, replay=True)
            pipe.rpush(store.inbox_key(entry["instance"], entry["ticket"] or ""), replay)
            _want(pipe, entry["instance"], entry["ticket"] or "")
            pipe.hdel(store.FAILED, entry_id)
            pipe.hdel(ROWS, entry_id)
            wanted = True
        elif prefix == "ticket":
            keys = (store.ticket_key(instance, ticket), store.events_key(instance, ticket),
                    store.inbox_key(instance, ticket))
            if not instance or not conn.exists(*keys):
                continue
            _clear_marks(pipe, conn, instance, ticket)
            _want(pipe, instance, ticket)
            wanted = True
        else:
            try:
                job = Job.fetch(entry_id, connection=conn)
            except (NoSuchJobError, ValueError):  # RQ 3 refuses an id that no job can have (a typo)
                continue
            if job.id not in _registry(conn):
                continue
            job_instance, job_ticket = (list(job.args or ()) + ["", ""])[:2]
            _clear_marks(pipe, conn, job_instance, job_ticket)
            pipe.execute()
            _registry(conn).requeue(job)
            count += 1
            continue
        pipe.execute()
        count += 1
    if wanted:
        queues.enqueue_dispatch(conn)
    return count


def purge_failed(conn: redis.Redis, ids: Sequence[str] | None = None) -> int:
    """Forget the given entries (all when `ids` is None); the number removed."""
    if ids is None:
        listed = list_failed(conn)
        for entry in listed:
            if entry["kind"] == "job":
                _remove_job(conn, entry["id"])
        conn.delete(store.FAILED, ROWS, store.REFUSED)  # refusals stay in the tickets' ledgers, unlisted
        return len(listed)
    count = 0
    for entry_id in dict.fromkeys(ids):  # each id counted once, whichever kind it is
        pipe = conn.pipeline(transaction=True)
        pipe.hdel(store.FAILED, entry_id)
        pipe.hdel(ROWS, entry_id)
        pipe.srem(store.REFUSED, entry_id)
        removed, _, refused = pipe.execute()
        count += bool(removed or refused or _remove_job(conn, entry_id))
    return count


def _remove_job(conn: redis.Redis, job_id: str) -> bool:
    registry = _registry(conn)
    if job_id not in registry:
        return False
    registry.remove(job_id, delete_job=True)
    return True


def failed_count(conn: redis.Redis) -> int:
    return int(conn.hlen(store.FAILED)) + _registry(conn).count
