"""Serve the receiver with gunicorn, from an already validated configuration.

`sla-connector web` and `sla-connector run` use this instead of gunicorn's command line so that the
configuration is read and checked once, before any worker forks, and a bad file stops start-up with
its message. `gunicorn 'connector.app:create_app()'` works as well (SLA_CONNECTOR_CONFIG names the
file); these are the settings both use. Plain gunicorn with several workers needs
PROMETHEUS_MULTIPROC_DIR set to an empty directory for /metrics to add up the workers' counts;
`serve` sets up a private one itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import redis
from gunicorn import glogging
from gunicorn.app.base import BaseApplication

from connector.app import connect, create_app
from connector.config import Config
from connector.logs import JsonFormatter
from connector.metrics import multiprocess_dir


class JsonLogger(glogging.Logger):
    """gunicorn's own messages (start, worker timeouts, errors) as JSON lines like ours."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for handler in (*self.error_log.handlers, *self.access_log.handlers):
            handler.setFormatter(JsonFormatter())

#: The gunicorn settings of the receiver (also used by bench/receiver_bench.py for both routes).
DEFAULTS: Mapping[str, Any] = {
    # gunicorn's own starting point, (2 x cores) + 1: a sync worker waits on each delivery's Redis round
    # trip, and the spare workers use those waits (bench/receiver_bench.py: +23 % deliveries/s on
    # 2 cores over 2 workers). Capped: each worker is a ~60 MB process with its own Redis connection.
    "workers": min(9, 2 * (os.cpu_count() or 1) + 1),
    "worker_class": "sync",  # the handler does no slow I/O: verify, validate, one Redis round trip
    "timeout": 30,
    "graceful_timeout": 20,
    "keepalive": 2,
    "accesslog": None,  # the handler logs each delivery as JSON
    "errorlog": "-",
    "loglevel": "warning",
    "logger_class": "connector.web.JsonLogger",
}


class ReceiverServer(BaseApplication):
    """gunicorn running the receiver app; every worker builds its own app (and Redis pool)."""

    def __init__(self, config: Config, bind: str, options: Mapping[str, Any] | None = None,
                 app_factory: Any = None) -> None:
        self.config_obj = config
        self.options = {**DEFAULTS, **(options or {}), "bind": bind}
        self.app_factory = app_factory or (lambda: create_app(self.config_obj, _connect(self.config_obj)))
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings and value is not None:
                self.cfg.set(key, value)

    def load(self) -> Any:
        return self.app_factory()


def _connect(config: Config) -> redis.Redis:
    assert config.redis_url, "checked by the caller"
    return connect(config.redis_url)


def serve(config: Config, bind: str, options: Mapping[str, Any] | None = None) -> None:
    """Run gunicorn in this process until it is stopped (SIGTERM/SIGINT: graceful).

    With more than one worker, /metrics must add up every worker's counters, whichever answers the
    scrape: multiprocess mode is set up before gunicorn forks (see metrics.multiprocess_dir).
    """
    workers = int((options or {}).get("workers") or DEFAULTS["workers"])
    with multiprocess_dir(workers):
        ReceiverServer(config, bind, options).run()
