"""Structured logs: one JSON object per line on stderr.

Every module logs through `logging.getLogger("sla_connector.<module>")` with
`extra={"event": "<stable_name>", "instance": ..., "ticket": ..., "delivery": ...}`; the formatter
puts those keys (and any other extra) at the top level so logs can be filtered by field.
Code that works on one delivery or ticket for a while (the worker's per-ticket step) can set those
keys once with `log_context(delivery=..., ticket=...)`: every line logged inside carries them,
including lines from code that does not know them (adapters, HTTP client). Secrets are never passed
to a logger; as a second line of defence, extra keys whose names look like credentials are masked.
"""

from __future__ import annotations

import contextvars
import functools
import json
import logging
import math
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

import orjson

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {"message", "asctime"}
_CONTEXT: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "sla_log_context", default=MappingProxyType({}))
_SECRET_WORDS = ("secret", "token", "password", "authorization", "api_key", "apikey", "signature")


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add `fields` to every line logged in this thread/task until the block ends (nests; the
    innermost value of a key wins, and a line's own `extra` wins over the context)."""
    token = _CONTEXT.set({**_CONTEXT.get(), **fields})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


# The last second formatted and its text, replaced as one tuple: threads crossing a second boundary
# must never pair one second with another second's text.
_SECOND: tuple[int | None, str] = (None, "")


def _timestamp(created: float) -> str:
    """`datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")`, formatting the
    date and time once per second (every line needs one; most lines share their second)."""
    global _SECOND
    fraction, whole = math.modf(created)  # rounded to the microsecond as datetime does
    micro, second = round(fraction * 1e6), int(whole)
    if micro >= 1_000_000:
        second, micro = second + 1, micro - 1_000_000
    cached, text = _SECOND  # one read: the pair is consistent
    if second != cached:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _SECOND = (second, text)
    return f"{text}.{micro // 1000:03d}+00:00"


@functools.lru_cache(maxsize=4096)
def _is_secret(key: str) -> bool:
    # Cached: the same few extra keys come by on every line.
    lowered = key.lower()
    return any(word in lowered for word in _SECRET_WORDS)


_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        context = _CONTEXT.get()
        # Without a log_context (the receiver's case), the record's own extras in their order, with no
        # merged copy; with one, context keys first and a line's own extra wins.
        fields = {**context, **record.__dict__} if context else record.__dict__
        for key, value in fields.items():
            if key in _STANDARD or key[:1] == "_":
                continue
            out[key] = "***" if _is_secret(key) else value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        try:
            # orjson: a few times faster than json.dumps on the receiver's per-delivery line. Datetimes
            # and dataclasses go through `str` as with json.dumps, so both write the same line.
            return orjson.dumps(out, default=str, option=_ORJSON_OPTIONS).decode()
        except TypeError:  # what orjson refuses (an int beyond 64 bits, a non-str key): json.dumps
            return json.dumps(out, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO") -> None:
    """JSON lines on stderr for the whole process (replaces handlers set before)."""
    name = str(level).upper()
    if name not in LEVELS:
        raise ValueError(f"log level {level!r} is not one of {', '.join(LEVELS)}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(name)
    # Our JSON lines carry no thread, process or caller fields: spare every record looking them up
    # (a getpid syscall, a frame walk; the logging HOWTO's "Optimization" section). ~40 us of a
    # gunicorn worker's CPU went into each delivery's log line.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging._srcfile = None
    # Their own chatter at INFO would be unstructured duplicates of ours.
    for noisy in ("werkzeug", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
