"""Knobs of the work on RQ (job time limits, retries, dispatch, retention), from the environment.

They are operational tuning, not product configuration, so they are environment variables with
safe defaults (documented in docs/pipeline.md); tests pass a PipelineSettings directly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

ENV_PREFIX = "SLA_CONNECTOR_"


@dataclass(frozen=True)
class PipelineSettings:
    # A ticket job's time limit. RQ kills a job that runs longer (and counts it as failed); a job of a
    # SIGKILLed SimpleWorker is taken back by RQ's maintenance once its registry entry expires at
    # job_timeout_s + 60 s, so this bounds how long a crashed look waits: keep it short.
    job_timeout_s: int = 90
    maintenance_interval_s: int = 20  # RQ's registry clean-up (abandoned jobs retried, expired ones removed)
    job_monitoring_interval_s: int = 10  # the forking Worker's heartbeat while a job runs
    tick_s: int = 1  # the RQ cron interval of `dispatch` (timers due, tickets waiting, lost jobs)
    dispatch_batch: int = 500  # tickets claimed and enqueued per enqueue_many call
    sweep_every_s: float = 30.0  # how often a dispatch also looks for claimed tickets whose job was lost
    lost_after_s: float = 60.0  # a claim whose job does not exist after this long is claimed again
    dispatch_flag_ttl_s: int = 10  # a receiver that asked for a dispatch and died: asked again after this
    min_recheck_s: float = 0.05  # floor for a timer in the past (guards against a hot loop)
    max_attempts: int = 8  # runs of a failing ticket job (RQ Retry) before RQ's FailedJobRegistry
    backoff_base_s: float = 2.0
    backoff_cap_s: float = 600.0
    failure_ttl_s: int = 30 * 86400  # how long RQ keeps a failed job for `failed list|retry`
    dedupe_ttl_s: int = 3 * 86400  # products retry for up to about a day; keep ids three
    # Logs of solved and closed tickets. Long: a ticket reopened later must find its history, or
    # its clocks start from zero (new due-soon tags and comments). Costs ~2.5 KB per ticket kept.
    retention_s: int = 400 * 86400
    deleted_retention_s: int = 30 * 86400  # logs of deleted tickets (Zendesk can restore for 30 days)
    open_ttl_s: int = 400 * 86400  # logs of tickets never seen closed (the close was missed)
    # Outcome records and incidents for reports (connector/state/outcomes.py): 13 months, so a year's
    # report and the same month a year earlier can both be made.
    outcome_retention_s: int = 396 * 86400

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ValueError(f"PipelineSettings.{f.name}: expected a number >= 0, got {value!r}")
        # Counts and intervals, and the TTLs of Redis keys and RQ records: 0 would mean "expire at once"
        # (an EXPIRE 0 deletes a ticket's log and ledger, so its effects would be written again).
        for name in ("dispatch_batch", "max_attempts", "job_timeout_s", "tick_s", "maintenance_interval_s",
                     "dispatch_flag_ttl_s", "failure_ttl_s", "dedupe_ttl_s", "retention_s",
                     "deleted_retention_s", "open_ttl_s", "outcome_retention_s"):
            if getattr(self, name) < 1:
                raise ValueError(f"PipelineSettings.{name}: must be >= 1, got {getattr(self, name)!r}")

    @property
    def lock_ttl_s(self) -> float:
        """A ticket's lock outlives its job's time limit (RQ stops the job first), not the job's
        abandonment (job_timeout_s + 60 s), so a retried job never waits for a dead one's lock."""
        return self.job_timeout_s + 30

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PipelineSettings:
        """Read SLA_CONNECTOR_<NAME> (upper case) for each field, e.g. SLA_CONNECTOR_JOB_TIMEOUT_S."""
        env = os.environ if env is None else env
        values: dict[str, int | float] = {}
        for f in fields(cls):
            name = ENV_PREFIX + f.name.upper()
            if name not in env:
                continue
            raw = env[name]
            kind = int if f.type in ("int", int) else float
            try:
                values[f.name] = kind(raw)
            except ValueError:
                expected = kind.__name__
                raise ValueError(f"environment variable {name}: expected {expected}, got {raw!r}") from None
        return cls(**values)
