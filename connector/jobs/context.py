"""What a job needs besides its arguments: the configuration, Redis, tuning, the evaluator, a clock.

RQ jobs take ids and primitives only. A worker process installs its context once (`install`, from
`sla-connector worker`); a process that did not (a plain `rq worker -c connector.jobs.rq_settings`)
builds it on the first job from SLA_CONNECTOR_CONFIG, the same way the receiver reads it. The
connection is always the one RQ runs the job with. Tests install a context with a fake clock.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from connector.config.loader import Config, load_config
from connector.config.tuning import PipelineSettings

Evaluator = Callable[..., Any]  # evaluate(policies, calendars, events, now, *, instance, applied_keys)


def default_evaluator() -> Evaluator:
    from sla.evaluate import evaluate  # imported late: the SLA engine is only needed by workers

    return evaluate


@dataclass(frozen=True)
class Context:
    config: Config
    settings: PipelineSettings = field(default_factory=PipelineSettings.from_env)
    evaluator: Evaluator = field(default_factory=default_evaluator)
    clock: Callable[[], float] = time.time
    conn: Any = None  # the Redis client; None: the connection of the job being run


_installed: Context | None = None


def install(context: Context | None) -> None:
    """Use `context` for the jobs this process runs (None: read SLA_CONNECTOR_CONFIG again)."""
    global _installed
    _installed = context


def current(conn: Any = None) -> Context:
    """The installed context (else one from SLA_CONNECTOR_CONFIG), on `conn` unless it names one."""
    global _installed
    if _installed is None:
        path = os.environ.get("SLA_CONNECTOR_CONFIG")
        if not path:
            raise RuntimeError("no configuration for the jobs: set SLA_CONNECTOR_CONFIG (path of the YAML "
                               "file) in the worker's environment")
        _installed = Context(load_config(path))
    if _installed.conn is None and conn is not None:
        return replace(_installed, conn=conn)
    return _installed
