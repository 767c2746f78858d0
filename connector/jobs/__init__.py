"""The connector's RQ jobs: what workers run (see connector/state/queues.py for the queues).

- `look(instance, ticket)`: bring one ticket up to date (connector/jobs/ticket.py).
- `dispatch()`: due timers and waiting tickets into look jobs, and lost claims found again
  (connector/jobs/dispatcher.py); run every second by RQ's cron scheduler and on the receiver's request.
- `on_look_failure`: RQ's failure callback of look jobs: once a job has no retries left (it is then in
  RQ's FailedJobRegistry) its ticket no longer counts as having a job, so the next delivery asks for
  a new look. Its inbox is left as it is: nothing accepted is lost, and `sla-connector failed retry`
  (or `rq requeue`) runs it again.
"""

from __future__ import annotations

import logging
from typing import Any

from rq import get_current_job

from connector.jobs import dispatcher, retries
from connector.jobs import ticket as ticket_step
from connector.jobs.context import current
from connector.state import store

log = logging.getLogger("sla_connector.jobs")


def look(instance: str, ticket: str) -> dict[str, Any]:
    job = get_current_job()
    ctx = current(job.connection if job else None)
    report = ticket_step.look(ctx, instance, ticket, token=job.id if job else None)
    return {"instance": instance, "ticket": report.ticket, "deliveries": report.deliveries,
            "failed_deliveries": report.failed_deliveries, "events_new": report.events_new,
            "effects": report.effects, "deferred": report.deferred, "follow_up": report.follow_up}


def dispatch() -> int:
    job = get_current_job()
    return dispatcher.dispatch(current(job.connection if job else None))


def on_look_failure(job: Any, connection: Any, exc_type: Any, exc_value: Any, traceback: Any) -> None:
    if job.retries_left:  # RQ retries it: the ticket keeps its job
        return
    instance, ticket = (list(job.args) + ["", ""])[:2]
    member = store.member(str(instance), str(ticket))
    value = store.text(connection.hget(store.QUEUED, member)) or ""
    if value.split(" ")[0] == job.id:
        connection.hdel(store.QUEUED, member)
    # Remembered on the ticket: a later look that succeeds (or finds the ticket gone) removes it from
    # RQ's FailedJobRegistry, so `failed list` shows what is still failing.
    connection.hset(store.ticket_key(str(instance), str(ticket)), store.META + "failed_job", job.id)
    log.error("ticket look failed for good; kept in RQ's failed registry",
              extra={"event": "ticket_failed", "instance": instance, "ticket": ticket, "job": job.id,
                     "error": retries.describe(exc_value) if isinstance(exc_value, Exception)
                     else f"{getattr(exc_type, '__name__', exc_type)}: {exc_value}"})
