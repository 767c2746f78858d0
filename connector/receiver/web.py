"""Serve the receiver with gunicorn, from an already validated configuration.

`sla-connector web` and `sla-connector run` use this instead of gunicorn's command line so that the
configuration is read and checked once, before any worker forks, and a bad file stops start-up with
its message. `gunicorn 'connector.receiver.app:create_app()'` works as well (SLA_CONNECTOR_CONFIG names the
file); these are the settings both use. Plain gunicorn with several workers needs
PROMETHEUS_MULTIPROC_DIR set to an empty directory for /metrics to add up the workers' counts;
`serve` sets up a private one itself. Plain gunicorn also needs `-k connector.receiver.web.ReceiverWorker
--threads 4 --worker-connections 4 --keepalive 0` for stalled clients to be cut off (see DEFAULTS);
its stalled bodies then end in a 500, not ReceiverServer's 408.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import redis
from gunicorn import glogging
from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import TConn, ThreadWorker
from werkzeug.exceptions import RequestTimeout

from connector.config.loader import Config
from connector.logs import JsonFormatter
from connector.receiver.app import connect, create_app
from connector.receiver.metrics import multiprocess_dir

#: Seconds a client may send nothing while its request (headers or body) is incomplete; then the
#: connection is closed (a body: answered 408). Webhook senders send a delivery at once; this only
#: ends stalled or broken clients, which would otherwise hold a serving thread for good.
CLIENT_READ_TIMEOUT = 5.0


class JsonLogger(glogging.Logger):
    """gunicorn's own messages (start, worker timeouts, errors) as JSON lines like ours."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for handler in (*self.error_log.handlers, *self.access_log.handlers):
            handler.setFormatter(JsonFormatter())

    def exception(self, msg: str, *args: Any, **kwargs: Any) -> None:
        """A client that stalled mid-headers is one warning line, not a traceback per connection."""
        if isinstance(sys.exc_info()[1], TimeoutError):
            self.warning("client sent nothing for %s s in the middle of a request: connection closed",
                         CLIENT_READ_TIMEOUT)
            return
        super().exception(msg, *args, **kwargs)


class _TimedConn(TConn):
    """A gthread connection whose socket reads give up after CLIENT_READ_TIMEOUT seconds."""

    def init(self) -> None:
        super().init()  # runs before each request; the worker has just made the socket blocking
        self.sock.settimeout(CLIENT_READ_TIMEOUT)


class ReceiverWorker(ThreadWorker):
    """gunicorn's gthread worker, with a read timeout on every client connection.

    A stalled client (say, a Content-Length larger than the body it sends) holds one thread for at
    most CLIENT_READ_TIMEOUT seconds, not a whole worker process until the worker timeout (sync
    workers: 30 s, and all of them with a handful of such clients). gthread's own guard only covers
    a connection that sends nothing at all; without a timeout a thread would wait for good.
    """

    def accept(self, listener: Any) -> None:
        # gunicorn's ThreadWorker.accept, with _TimedConn for TConn.
        try:
            client_sock, client_addr = listener.accept()
            self.nr_conns += 1
            client_sock.setblocking(True)
            conn = _TimedConn(self.cfg, client_sock, client_addr, listener.getsockname())
            self.enqueue_req(conn)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise


class _TimedInput:
    """`wsgi.input` whose read timeout is a 408 answer (werkzeug's RequestTimeout), not a 500."""

    __slots__ = ("_stream",)

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def read(self, size: int | None = -1) -> bytes:
        try:
            return self._stream.read(size)
        except TimeoutError:
            raise _late_body() from None

    def readline(self, size: int | None = -1) -> bytes:
        try:
            return self._stream.readline(size)
        except TimeoutError:
            raise _late_body() from None

    def __iter__(self) -> Any:
        return iter(self.readline, b"")


def _late_body() -> RequestTimeout:
    return RequestTimeout(f"the body did not arrive (nothing for {CLIENT_READ_TIMEOUT:g} s)")


def timed_input(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """`app` reading its request bodies through `_TimedInput` (ReceiverServer serves it so)."""

    def wrapped(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        environ["wsgi.input"] = _TimedInput(environ["wsgi.input"])
        return app(environ, start_response)

    return wrapped


#: The gunicorn settings of the receiver (also used by bench/receiver_bench.py for both routes).
DEFAULTS: Mapping[str, Any] = {
    # Threads, so that a slow or stalled client holds one thread for at most CLIENT_READ_TIMEOUT, not
    # a whole process: with sync workers a handful of stalled clients kept every delivery waiting
    # for 30 s (issue 9). A worker takes no more connections than it has threads (worker_connections),
    # so one whose threads are all held leaves new connections to the others; hence no keep-alive.
    # cores + 1 processes of 4 threads: the threads fill each delivery's Redis round trip, which
    # (2 x cores) + 1 sync workers were for; more processes cost CPU per request (thread hand-offs,
    # accept wake-ups: 5 x 4 took ~120 us more per request than 3 x 4 on 2 cores). Capped: each
    # worker is a ~60 MB process with its own Redis connections.
    "workers": min(9, (os.cpu_count() or 1) + 1),
    "worker_class": "connector.receiver.web.ReceiverWorker",
    "threads": 4,
    "worker_connections": 4,
    "keepalive": 0,
    "timeout": 30,
    "graceful_timeout": 20,
    "accesslog": None,  # the handler logs each delivery as JSON
    "errorlog": "-",
    "loglevel": "warning",
    "logger_class": "connector.receiver.web.JsonLogger",
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
        return timed_input(self.app_factory())


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
