"""connector.logs: one JSON object per line, with the stable keys, never a secret-looking extra."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.logs import JsonFormatter, _timestamp, configure_logging, log_context


@pytest.fixture
def restore_root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    flags = (logging.logThreads, logging.logProcesses, logging.logMultiprocessing, logging._srcfile)
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    logging.logThreads, logging.logProcesses, logging.logMultiprocessing, logging._srcfile = flags


def test_json_lines_carry_the_stable_keys(
    restore_root_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("info")
    log = logging.getLogger("sla_connector.test")
    log.info("webhook %s", "accepted", extra={"event": "webhook_accepted", "instance": "acme",
                                              "delivery": "d-1", "ticket": "10001"})
    log.debug("not shown", extra={"event": "debug_line"})
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record.pop("ts").endswith("+00:00")
    assert record == {"level": "INFO", "logger": "sla_connector.test", "msg": "webhook accepted",
                      "event": "webhook_accepted", "instance": "acme", "delivery": "d-1", "ticket": "10001"}


def test_secret_looking_extras_are_masked_and_exceptions_kept() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("sla_connector.test_mask")
    log.addHandler(handler)
    log.propagate = False
    try:
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            log.exception("failed", extra={"event": "x", "api_token": "t0ken", "webhook_secret": "s3cret",
                                           "authorization": "Bearer abc", "count": 3})
    finally:
        log.removeHandler(handler)
    record = json.loads(stream.getvalue())
    assert record["api_token"] == record["webhook_secret"] == record["authorization"] == "***"
    assert record["count"] == 3
    assert "RuntimeError: boom" in record["exc"]
    assert "t0ken" not in stream.getvalue() and "s3cret" not in stream.getvalue()


def test_unknown_level_is_refused() -> None:
    expected = "log level 'LOUD' is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL"
    with pytest.raises(ValueError, match=expected):
        configure_logging("LOUD")


def _lines(run: Callable[[logging.Logger], None]) -> list[dict]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("sla_connector.test_context")
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.INFO)
    try:
        run(log)
    finally:
        log.removeHandler(handler)
        log.setLevel(logging.NOTSET)
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_log_context_puts_the_delivery_on_every_line_inside_it() -> None:
    # Lines from code that never sees the delivery (an adapter's HTTP retry, a worker's failure)
    # used to carry no delivery id; the worker sets it once around each ticket's step.
    def run(log: logging.Logger) -> None:
        log.info("before", extra={"event": "a"})
        with log_context(delivery="d-1", ticket="10001"):
            log.warning("retrying", extra={"event": "http_retry"})
            with log_context(delivery="d-2", webhook_secret="s3cret"):
                log.info("inner", extra={"event": "b", "ticket": "own"})
            log.info("after inner", extra={"event": "c"})
        log.info("outside", extra={"event": "d"})

    a, retry, inner, after, outside = _lines(run)
    assert "delivery" not in a and "delivery" not in outside and "ticket" not in outside
    assert (retry["delivery"], retry["ticket"]) == ("d-1", "10001")
    assert (inner["delivery"], inner["ticket"]) == ("d-2", "own")  # innermost wins; the line's own wins
    assert inner["webhook_secret"] == "***"  # masked like any extra
    assert (after["delivery"], after["ticket"]) == ("d-1", "10001")


@given(st.one_of(
    st.floats(0, 4e9),
    st.builds(lambda s, f: s + f, st.integers(0, 4_000_000_000),
              st.sampled_from([0.0, 0.0005, 0.9995, 0.1234995, 0.4999995, 0.999999, 0.9999995, 0.9999996])),
))
def test_timestamps_are_what_datetime_writes(created: float) -> None:
    # Formatted once per second; the milliseconds as datetime rounds them (to the microsecond, half to even).
    assert _timestamp(created) == datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")


def test_lines_are_the_same_without_the_thread_process_and_caller_lookups(
    restore_root_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    log = logging.getLogger("sla_connector.test_flags")
    extra = {"event": "webhook_accepted", "instance": "acme", "delivery": "d-1", "ticket": "10001"}
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(JsonFormatter())
    log.addHandler(handler)
    try:
        log.warning("w", extra=extra)  # before configure_logging: every lookup on
        configure_logging("info")
        assert logging._srcfile is None and not logging.logThreads  # what configure_logging turns off
        log.warning("w", extra=extra)
    finally:
        log.removeHandler(handler)
    first, second = (json.loads(line) for line in handler.stream.getvalue().splitlines())
    assert first.pop("ts")[:10] == second.pop("ts")[:10]
    assert first == second
