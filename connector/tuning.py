"""Knobs of the pipeline (batch size, reclaim idle time, retries, retention), from the environment.

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
    batch_size: int = 200  # stream entries read per XREADGROUP
    block_ms: int = 1000  # how long an idle worker waits on the stream before housekeeping
    reclaim_idle_s: float = 60.0  # entries of a consumer silent this long are claimed by another
    reclaim_every_s: float = 5.0
    max_deliveries: int = 5  # an entry delivered this often (workers died on it) goes to `failed`
    lock_ttl_s: float = 120.0  # per-ticket lock; longer than any ticket's processing
    defer_s: float = 0.2  # a ticket locked by another worker is looked at again this much later
    min_recheck_s: float = 0.05  # floor for a timer in the past (guards against a hot loop)
    max_attempts: int = 8  # failed evaluations / write-backs of a ticket before `failed`
    backoff_base_s: float = 2.0
    backoff_cap_s: float = 600.0
    dedupe_ttl_s: int = 3 * 86400  # products retry for up to about a day; keep ids three
    # Logs of solved and closed tickets. Long: a ticket reopened later must find its history, or
    # its clocks start from zero (new due-soon tags and comments). Costs ~2.5 KB per ticket kept.
    retention_s: int = 400 * 86400
    deleted_retention_s: int = 30 * 86400  # logs of deleted tickets (Zendesk can restore for 30 days)
    open_ttl_s: int = 400 * 86400  # logs of tickets never seen closed (the close was missed)
    timer_poll_s: float = 0.25
    timer_batch: int = 1000
    heartbeat_ttl_s: float = 15.0
    # A batch still running after this long is presumed hung (a stuck call, a deadlock): the heartbeat
    # stops re-claiming its entries, so other workers take them over after reclaim_idle_s. Far above
    # a slow batch's time (200 tickets, write-backs with timeouts and Retry-After waits).
    batch_timeout_s: float = 900.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ValueError(f"PipelineSettings.{f.name}: expected a number >= 0, got {value!r}")
        if self.batch_size < 1 or self.max_attempts < 1 or self.max_deliveries < 1:
            raise ValueError("PipelineSettings: batch_size, max_attempts and max_deliveries must be >= 1")
        if self.batch_timeout_s <= 0:  # 0 would hand every batch to another worker: done twice
            raise ValueError("PipelineSettings.batch_timeout_s: must be > 0 (seconds a batch may run)")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PipelineSettings:
        """Read SLA_CONNECTOR_<NAME> (upper case) for each field, e.g. SLA_CONNECTOR_RECLAIM_IDLE_S."""
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
