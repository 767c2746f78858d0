"""The webhook receiver and operational endpoints (Flask app factory; gunicorn serves it).

`POST /hooks/<instance>` only verifies, validates, dedupes and durably enqueues (connector.receiver.intake),
then answers: all work happens in the workers. The checks run cheapest-and-safest first, and the
signature is checked on the raw body before anything parses it:
unknown instance 404, too large 413, not JSON 415, bad signature 401, bad JSON 400, JSON nested
deeper than MAX_DEPTH 400, payload not one the product sends 400 (with the failing path), payload the
adapter cannot normalise 400 (with the path), then dedupe + enqueue: 202 (new) or 200 (duplicate); 503
with Retry-After when Redis is unreachable, so the product retries.

Normalising is the worker's first step, pure and cheap (~10-40 us): the receiver runs it too, so that
a payload the worker could not use is refused at the door (the product sees the error, and no 202 is
followed by a failure and a redelivery loop) and the worker's normalise cannot fail on what was queued.

gunicorn: `gunicorn 'connector.receiver.app:create_app()'` reads the configuration file named by
SLA_CONNECTOR_CONFIG.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
import redis
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from adapters.base import InboundError, PayloadError
from connector.config.loader import Config, ConfigError, load_config
from connector.receiver.metrics import ReceiverMetrics
from connector.receiver.responses import error, json_response
from connector.state import status as status_mod

log = logging.getLogger("sla_connector.app")

#: The deepest JSON the receiver takes. The workers parse a queued body with json.loads, which recurses
#: once per level (RecursionError near 1,000 levels, fewer deep in a worker's stack), while orjson here
#: reads up to 1,024; real payloads nest about 10 levels (ADF comment bodies a few more).
MAX_DEPTH = 512
_LOG_TEXT = {"accepted": "webhook accepted", "duplicate": "webhook duplicate"}
_LOG_EVENT = {"accepted": "webhook_accepted", "duplicate": "webhook_duplicate"}


def _lower_headers(environ: Mapping[str, Any]) -> dict[str, str]:
    """Request headers with lower-case names, straight from the WSGI environ (cheaper than werkzeug)."""
    out = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
    if environ.get("CONTENT_TYPE"):
        out["content-type"] = environ["CONTENT_TYPE"]
    if environ.get("CONTENT_LENGTH"):
        out["content-length"] = environ["CONTENT_LENGTH"]
    return out


class TooDeep(ValueError):
    """JSON nested deeper than MAX_DEPTH; `path` names the first value past the limit ("$" if unknown)."""

    def __init__(self, path: str) -> None:
        super().__init__(f"the JSON is nested deeper than {MAX_DEPTH} levels")
        self.path = path


def parse_json(body: bytes) -> tuple[Any, bytes | None]:
    """The payload, and the bytes it was parsed from when they can be queued as received.

    Products send UTF-8 (RFC 8259), which orjson parses (a few times faster than json; the receiver's
    hot path). Anything orjson refuses gets a second chance from json.loads, which also reads UTF-16/32,
    a UTF-8 BOM, NaN, lone surrogate escapes and integers beyond 64 bits, as the receiver always did;
    a UTF-16/32 or BOM body is queued re-serialised (bytes None). Raises ValueError for what is not
    JSON, TooDeep (a ValueError) for JSON nested deeper than MAX_DEPTH.
    """
    try:
        payload, raw = orjson.loads(body), body
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):  # deeper than orjson's 1,024: json.loads would hit RecursionError
            raise TooDeep("$") from None
        try:
            payload = json.loads(body)
        except RecursionError:
            raise TooDeep("$") from None
        # UTF-8 that orjson refused (a lone surrogate escape: half an emoji cut off by the product, NaN, a
        # huge integer) is queued as received; the workers' json.loads reads it.
        raw = body if _plain_utf8(body) else None
    # Each level opens a bracket, so only a body with more brackets than MAX_DEPTH is walked (rare, large).
    if body.count(b"[") + body.count(b"{") > MAX_DEPTH and _deeper_than(payload, MAX_DEPTH):
        raise TooDeep(_first_too_deep(payload, MAX_DEPTH))
    return payload, raw


def _deeper_than(payload: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than `limit` levels (the top value is level 1)."""
    level = [payload] if isinstance(payload, dict | list) else []
    for _ in range(limit):
        if not level:
            return False
        below: list[Any] = []
        for node in level:
            values = node.values() if isinstance(node, dict) else node
            below += [v for v in values if isinstance(v, dict | list)]
        level = below
    return bool(level)


def _first_too_deep(payload: Any, limit: int) -> str:
    """The JSON path of a value at level `limit` + 1 (payload known to be deeper than `limit`)."""
    stack: list[tuple[Any, str, int]] = [(payload, "$", 1)]
    while stack:
        node, path, level = stack.pop()
        if level > limit:
            return path
        items = node.items() if isinstance(node, dict) else enumerate(node)
        form = "{}.{}" if isinstance(node, dict) else "{}[{}]"
        stack += [(v, form.format(path, k), level + 1) for k, v in items if isinstance(v, dict | list)]
    return "$"


def _utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _plain_utf8(body: bytes) -> bool:
    if body.startswith(b"\xef\xbb\xbf"):  # a BOM: json.loads(str) would refuse it
        return False
    try:
        body.decode()
    except UnicodeDecodeError:
        return False
    return True


def _mimetype(content_type: str) -> str:
    """`request.mimetype` without werkzeug's full parameter parsing: the media type, lower-cased."""
    return content_type.partition(";")[0].strip().lower()


def _content_length(environ: Mapping[str, Any]) -> int | None:
    """`request.content_length` (None when absent or not a number, as werkzeug answers)."""
    value = environ.get("CONTENT_LENGTH")
    if not value:
        return None
    try:
        return max(0, int(value))
    except ValueError:
        return None


def connect(url: str) -> redis.Redis:
    """The receiver's Redis client: short timeouts, so an outage answers 503 quickly (the product retries)."""
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30)


def create_app(config: Config | None = None, conn: redis.Redis | None = None) -> Flask:
    """The receiver. Without arguments it loads SLA_CONNECTOR_CONFIG and connects to its Redis."""
    if config is None:
        path = os.environ.get("SLA_CONNECTOR_CONFIG")
        if not path:
            raise ConfigError("<environment>", "", "SLA_CONNECTOR_CONFIG is not set (path of the YAML file)")
        config = load_config(path)
    if conn is None:
        if not config.redis_url:
            raise ConfigError(config.source, "redis_url", "the web process needs Redis: set redis_url or "
                              "REDIS_URL (only `sla-connector run` starts an embedded server)")
        conn = connect(config.redis_url)

    from connector.receiver.intake import accept  # the pipeline's durable enqueue

    app = Flask("sla_connector")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    metrics = ReceiverMetrics()
    app.extensions["sla_connector"] = {"config": config, "conn": conn, "metrics": metrics}
    instances = dict(config.instances)
    max_body = config.max_body_bytes
    rejected, received = metrics.rejected, metrics.received

    # The enqueue uses one connection per serving thread (taken from `conn`'s pool on the thread's first
    # delivery, not at start-up, so the receiver starts and answers 503 while Redis is down). Checking
    # a connection out of the pool per command costs a readiness poll and socket mode switches
    # (~15 us, a tenth of a delivery's own CPU). One per thread, so that threaded workers (gthread)
    # overlap their Redis round trips instead of queueing on one connection's lock. redis-py
    # reconnects a held connection on the command after an error (the enqueue retries once).
    held = threading.local()

    def held_connection() -> redis.Redis:
        client = getattr(held, "client", None)
        if client is None:
            client = held.client = redis.Redis(connection_pool=conn.connection_pool,
                                               single_connection_client=True)
        return client

    def reject(instance: str, status: int, reason: str, detail: str, **extra: Any) -> Response:
        rejected.labels(instance, reason).inc()
        ids = {k: extra.pop(k) for k in ("delivery", "ticket") if k in extra}
        level = logging.ERROR if status >= 500 else logging.INFO  # 5xx: ours to fix, not the sender's
        fields = {"event": "webhook_rejected", "instance": instance, "status": status, "reason": reason}
        log.log(level, "webhook rejected: %s", reason, extra={**fields, **ids})
        return error(status, reason, detail, **extra)

    @app.post("/hooks/<instance>")
    def hook(instance: str) -> Response:
        inst = instances.get(instance)
        if inst is None:
            # The label is fixed: a caller must not create metric series by guessing names.
            return reject("unknown", 404, "unknown_instance", "no instance of that name is configured")
        environ = request.environ  # one context lookup; plain WSGI reads from here on (cheaper)
        length = _content_length(environ)
        if length is not None and length > max_body:
            return reject(instance, 413, "too_large", f"the body exceeds {max_body} bytes")
        mimetype = _mimetype(environ.get("CONTENT_TYPE", ""))
        if mimetype != "application/json" and not mimetype.endswith("+json"):
            return reject(instance, 415, "unsupported_media_type", "expected Content-Type: application/json")
        stream = environ["wsgi.input"]
        if length is not None:
            # Exactly Content-Length bytes: a server's raw socket stream (werkzeug's) would wait for more.
            body = stream.read(length)
        elif environ.get("wsgi.input_terminated"):
            body = stream.read(max_body + 1)  # the server ends the stream (chunked): the limit holds
        else:
            body = request.stream.read(max_body + 1)  # neither: werkzeug's safe default
        if len(body) > max_body:
            return reject(instance, 413, "too_large", f"the body exceeds {max_body} bytes")
        headers = _lower_headers(environ)
        now = datetime.now(UTC)
        adapter = inst.adapter
        try:
            adapter.verify(headers, body, now)
        except InboundError as exc:
            # The adapter's message says what was wrong (missing, stale, mismatch), never the secret.
            return reject(instance, exc.status, exc.reason, str(exc))
        try:
            payload, raw = parse_json(body)
        except TooDeep as exc:
            return reject(instance, 400, "too_deep", str(exc), path=exc.path)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            return reject(instance, 400, "invalid_json", f"the body is not JSON: {exc}")
        try:
            adapter.validate(payload)
            delivery = adapter.delivery_id(headers, payload)
            ticket = adapter.ticket_id(payload)
            adapter.normalise(payload, headers)  # the worker's first step, here: it must not fail there
        except PayloadError as exc:
            return reject(instance, 400, exc.reason, exc.message, path=exc.path)
        except InboundError as exc:
            return reject(instance, exc.status, exc.reason, str(exc))
        except Exception as exc:  # noqa: BLE001 - a payload the adapter did not foresee: the worker would fail too
            log.error("webhook payload the adapter cannot read", exc_info=exc,
                      extra={"event": "webhook_unprocessable", "instance": instance})
            return reject(instance, 400, "unprocessable",
                          f"the payload cannot be read: {type(exc).__name__}: {str(exc)[:200]}", path="$")
        if not delivery or not _utf8(delivery) or (ticket is not None and not _utf8(ticket)):
            # The adapters refuse these with the exact path; this holds for any adapter (Redis keys).
            return reject(instance, 400, "invalid_id",
                          f"the payload gives no usable delivery or ticket id (delivery {delivery!r}, ticket "
                          f"{ticket!r}): it is empty or not valid text", path="$")
        try:
            queue = held_connection()
            try:
                new = accept(queue, instance, delivery, ticket, payload, headers, now, raw=raw)
            except redis.exceptions.ConnectionError:
                # The held connection can die while idle (a Redis restart, its idle timeout, a proxy):
                # redis-py notices only on this command and drops it. One retry reconnects; it is safe
                # because intake's dedupe key makes the enqueue idempotent (at worst: "duplicate").
                new = accept(queue, instance, delivery, ticket, payload, headers, now, raw=raw)
        except redis.exceptions.RedisError as exc:
            return reject(instance, 503, "store_unavailable",
                          f"the queue store is unreachable ({exc.__class__.__name__}); retry later",
                          delivery=delivery, ticket=ticket)
        outcome = "accepted" if new else "duplicate"
        received.labels(instance, outcome).inc()
        # A constant message (no %-args): the line is written per delivery, on the hot path.
        log.info(_LOG_TEXT[outcome], extra={"event": _LOG_EVENT[outcome], "instance": instance,
                                            "delivery": delivery, "ticket": ticket})
        if new:
            return json_response({"status": "accepted", "delivery": delivery}, 202)
        return json_response({"status": "duplicate", "delivery": delivery}, 200)

    _register_ops(app, config, conn, metrics)
    from connector.receiver.api import register_api

    register_api(app, config, conn)
    _register_errors(app)
    return app


def _register_ops(app: Flask, config: Config, conn: redis.Redis, metrics: ReceiverMetrics) -> None:
    render = metrics.exposition(conn, config)
    # Request latency by route family, timed around the whole WSGI call (cheaper than Flask hooks).
    series = {route: metrics.latency.labels(route) for route in _ROUTES.values()}
    inner = app.wsgi_app

    def timed(environ: dict[str, Any], start_response: Any) -> Any:
        start = time.perf_counter()
        try:
            return inner(environ, start_response)
        finally:
            series[_route(environ.get("PATH_INFO", ""))].observe(time.perf_counter() - start)

    app.wsgi_app = timed  # type: ignore[method-assign]

    @app.get("/healthz")
    def healthz() -> Response:
        return json_response({"status": "ok"}, 200)

    @app.get("/readyz")
    def readyz() -> Response:
        reasons = []
        try:
            conn.ping()
        except redis.exceptions.RedisError as exc:
            reasons.append(f"redis unreachable ({exc.__class__.__name__})")
        else:
            try:
                if not status_mod.workers_alive(conn):
                    reasons.append("no worker alive")
                if not status_mod.scheduler_alive(conn):
                    reasons.append("scheduler not alive")
            except redis.exceptions.RedisError as exc:
                reasons.append(f"redis error ({exc.__class__.__name__})")
        if reasons:
            return json_response({"status": "not ready", "reasons": reasons}, 503)
        return json_response({"status": "ready"}, 200)

    @app.get("/metrics")
    def metrics_view() -> Response:
        return Response(render(), mimetype="text/plain; version=0.0.4; charset=utf-8")


_ROUTES = {"/hooks/": "/hooks/<instance>", "/api/": "/api/tickets/<instance>/<ticket_id>",
           "/healthz": "/healthz", "/readyz": "/readyz", "/metrics": "/metrics", "other": "other"}


def _route(path: str) -> str:
    """The latency label of a path: a fixed set, so callers cannot create series."""
    for prefix in ("/hooks/", "/api/"):
        if path.startswith(prefix):
            return _ROUTES[prefix]
    return _ROUTES.get(path, "other")


def _register_errors(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        reason = (exc.name or "error").lower().replace(" ", "_")
        return error(exc.code or 500, reason, exc.description)

    @app.errorhandler(Exception)
    def internal_error(exc: Exception) -> Response:
        log.exception("unhandled error", extra={"event": "http_internal_error", "path": request.path})
        return error(500, "internal", "internal error; see the connector's logs")
