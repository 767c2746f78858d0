"""Cron configuration for RQ's `rq cron connector.jobs.rq_cron`: the dispatch and reconcile ticks of plain
RQ setups.

`sla-connector worker` runs the same tick itself (unless --no-scheduler); see connector/jobs/worker.py.
"""

from __future__ import annotations

from rq import cron

from connector.config.tuning import PipelineSettings
from connector.jobs import dispatch, reconcile
from connector.state.queues import DISPATCH, DISPATCH_FAILURE_TTL_S

_settings = PipelineSettings.from_env()
cron.register(dispatch, DISPATCH, interval=_settings.tick_s, job_timeout=_settings.job_timeout_s,
              result_ttl=0, failure_ttl=DISPATCH_FAILURE_TTL_S, name="sla-dispatch")
reconcile.register_cron(cron)  # every minute: reconcile jobs for the instances that are due
