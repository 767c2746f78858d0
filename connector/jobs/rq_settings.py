"""Settings module for RQ's own command line: `rq worker -c connector.jobs.rq_settings`, `rq info -c ...`.

It reads the connector's configuration (SLA_CONNECTOR_CONFIG) for the Redis URL, so plain RQ tools
see the same Redis and queues as `sla-connector worker`:

    export SLA_CONNECTOR_CONFIG=config.yaml
    rq worker -c connector.jobs.rq_settings -w connector.jobs.worker.ConnectorWorker --with-scheduler
    rq cron connector.jobs.rq_cron   # the dispatch tick, once per deployment
    rq info -c connector.jobs.rq_settings

With `sla-connector run` (embedded Redis, no URL in the configuration) it finds the embedded
server's socket under the data directory.
"""

from __future__ import annotations

import os

from connector.config.loader import load_config
from connector.state.queues import QUEUES as _QUEUES


def _redis_url() -> str:
    config = load_config(os.environ["SLA_CONNECTOR_CONFIG"])
    if config.redis_url:
        return config.redis_url
    from connector.cli.run import embedded_socket

    return f"unix://{embedded_socket(config)}"


REDIS_URL = _redis_url()
QUEUES = list(_QUEUES)
