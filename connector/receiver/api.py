"""`GET /api/tickets/<instance>/<ticket_id>`: a ticket's current SLA state, behind a bearer token.

The token comes from the environment variable the configuration names (`api_token_env`). With no
token configured the API is disabled (503), never open.
"""

from __future__ import annotations

import hmac
import logging
from datetime import UTC, datetime

import redis
from flask import Flask, Response, request

from connector.config.loader import Config
from connector.receiver.responses import error
from connector.state.ticket_view import ticket_state

log = logging.getLogger("sla_connector.api")


def register_api(app: Flask, config: Config, conn: redis.Redis) -> None:
    token = config.api_token.encode() if config.api_token else None

    @app.get("/api/tickets/<instance>/<ticket_id>")
    def ticket(instance: str, ticket_id: str) -> Response:
        if token is None:
            return error(503, "api_disabled",
                         f"set the environment variable {config.api_token_env} to enable the API")
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            response = error(401, "unauthorized", "send Authorization: Bearer <token>")
            response.headers["WWW-Authenticate"] = 'Bearer realm="sla-connector"'
            return response
        if not hmac.compare_digest(given.strip().encode(), token):
            log.warning("api token refused", extra={"event": "api_forbidden", "instance": instance,
                                                    "ticket": ticket_id})
            return error(403, "forbidden", "the token is not valid")
        if instance not in config.instances:
            return error(404, "unknown_instance", "no instance of that name is configured")
        try:
            state = ticket_state(conn, config, instance, ticket_id, datetime.now(UTC))
        except redis.exceptions.RedisError as exc:
            log.error("store unreachable: %s", exc.__class__.__name__,
                      extra={"event": "api_store_unavailable", "instance": instance, "ticket": ticket_id})
            return error(503, "store_unavailable", "the store is unreachable; retry later")
        if state is None:
            return error(404, "unknown_ticket", "the connector has no events for this ticket")
        return app.json.response(state)
