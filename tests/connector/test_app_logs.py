"""connector.logs: one JSON object per line, with the stable keys, never a secret-looking extra."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator

import pytest

from connector.logs import JsonFormatter, configure_logging, log_context


@pytest.fixture
def restore_root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


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
