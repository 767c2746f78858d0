"""`sla-connector`: run the service, check the configuration, install webhooks, inspect and replay.

Exit codes: 0 ok; 1 runtime failure (Redis or a product API unreachable, a command that did not
succeed, and `check-config` finding the configuration invalid); 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from connector.cli.common import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    Failure,
    UsageError,
    config_from_args,
    instance_named,
    redis_for,
    require_positive,
)
from connector.config.loader import ConfigError
from connector.logs import LEVELS, configure_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sla-connector",
        description="SLA clocks, escalations and write-back for Jira and Zendesk.",
    )
    parser.add_argument(
        "--config",
        metavar="PATH",
        default=os.environ.get("SLA_CONNECTOR_CONFIG"),
        help="the YAML configuration file (default: $SLA_CONNECTOR_CONFIG)",
    )
    parser.add_argument(
        "--log-level",
        default=os.environ.get("SLA_CONNECTOR_LOG_LEVEL", "INFO").upper(),
        type=str.upper,
        choices=LEVELS,
        help="log level of the JSON logs on stderr (default: INFO)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = sub.add_parser("run", help="receiver + worker + scheduler in one command (embeds Redis if none)")
    run.add_argument("--bind", default="127.0.0.1:8000", help="receiver address (default: %(default)s)")
    run.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes (default: 2)")

    web = sub.add_parser("web", help="the webhook receiver and HTTP API under gunicorn")
    web.add_argument(
        "--bind",
        default=os.environ.get("SLA_CONNECTOR_BIND", "0.0.0.0:8000"),
        help="address to listen on (default: $SLA_CONNECTOR_BIND or %(default)s)",
    )
    web.add_argument("--workers", type=int, default=None, help="gunicorn worker processes")

    worker = sub.add_parser("worker", help="RQ workers on the connector's queues (ticket looks, dispatch)")
    worker.add_argument(
        "--processes",
        type=int,
        default=1,
        help="worker processes (RQ's worker pool when more than 1; default: 1)",
    )
    worker.add_argument(
        "--no-scheduler",
        action="store_true",
        help="do not run RQ's cron scheduler (the dispatch tick) in this process",
    )
    worker.add_argument("--burst", action="store_true", help="stop once the queues are empty")
    worker.add_argument("--name", help="RQ worker name (default: RQ's)")

    sub.add_parser("scheduler", help="only RQ's cron scheduler (when workers run with --no-scheduler)")

    sub.add_parser("check-config", help="validate the configuration and print what it does")

    for name, text in (
        ("install", "create the instance's webhook in the helpdesk"),
        ("uninstall", "remove the instance's webhook from the helpdesk"),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("instance")
        if name == "install":
            cmd.add_argument("--url", help="public base URL of the receiver (default: receiver.public_url)")

    status = sub.add_parser("status", help="queue, timers, failures, workers, last event per instance")
    status.add_argument("--json", action="store_true", help="print JSON")

    failed = sub.add_parser("failed", help="the failed registry")
    failed_sub = failed.add_subparsers(dest="action", metavar="ACTION", required=True)
    failed_list = failed_sub.add_parser("list", help="show failed entries")
    failed_list.add_argument("--json", action="store_true", help="print JSON")
    for action, text in (("retry", "queue entries again"), ("purge", "delete entries")):
        cmd = failed_sub.add_parser(action, help=text)
        cmd.add_argument("ids", nargs="*", help="entry ids (see `failed list`)")
        cmd.add_argument("--all", action="store_true", help="every entry")

    test = sub.add_parser("send-test-event", help="sign a payload as the product would and post it")
    test.add_argument("instance")
    test.add_argument("payload", type=Path, help="JSON file with the payload (sent byte for byte)")
    test.add_argument("--url", default="http://127.0.0.1:8000", help="receiver URL (default: %(default)s)")
    test.add_argument("--delivery-id", help="Jira: the X-Atlassian-Webhook-Identifier (default: a new one)")
    test.add_argument("--timeout", type=float, default=10.0, help="seconds (default: %(default)s)")

    from connector.cli.backfill import add_parser as add_backfill

    add_backfill(sub)
    from connector.cli.ticket import add_parser as add_ticket

    add_ticket(sub)
    from connector.cli.report import add_parser as add_report

    add_report(sub)
    from connector.cli.review import add_parser as add_review
    from connector.cli.simulate import add_parser as add_simulate

    add_simulate(sub)
    add_review(sub)
    from connector.cli.recalculate import add_parser as add_recalculate

    add_recalculate(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    handler = COMMANDS[args.command]
    try:
        return handler(args, os.environ)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE if args.command == "check-config" else EXIT_USAGE
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Failure as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except redis.exceptions.RedisError as exc:
        print(f"error: Redis is unreachable or failed ({exc.__class__.__name__})", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130


# ---------------------------------------------------------------- helpers


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, default=str))


# ---------------------------------------------------------------- commands


def cmd_check_config(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from connector.cli.tools import summary
    from connector.config.checks import config_warnings

    config = config_from_args(args, env)
    lines, warnings = summary(config)
    warnings = [*warnings, *config_warnings(config)]
    print("\n".join(lines))
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return EXIT_OK


def cmd_run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from connector.cli.run import run

    return run(config_from_args(args, env), args)


def cmd_web(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from connector.receiver.web import serve

    config = config_from_args(args, env)
    redis_for(config)  # fail here with the message, not in every gunicorn worker
    serve(config, args.bind, {"workers": args.workers} if args.workers else None)
    return EXIT_OK


def cmd_worker(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from connector.jobs.worker import run_worker

    require_positive("--processes", args.processes)
    config = config_from_args(args, env)
    conn = redis_for(config)
    conn.ping()  # unreachable: a clear error now, not a traceback from RQ
    run_worker(
        config,
        conn,
        processes=args.processes,
        with_scheduler=not args.no_scheduler,
        burst=args.burst,
        name=args.name,
        log_level=args.log_level,
    )
    return EXIT_OK


def cmd_scheduler(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from connector.jobs.worker import run_scheduler

    conn = redis_for(config_from_args(args, env))
    conn.ping()
    run_scheduler(conn)
    return EXIT_OK


def _installer_call(args: argparse.Namespace, env: Mapping[str, str], action: str) -> int:
    from adapters.base import ApiError

    config = config_from_args(args, env)
    inst = instance_named(config, args.instance)
    installer = inst.adapter.installer()
    try:
        if action == "install":
            base = args.url or config.public_url
            if not base:
                raise UsageError("give --url (the receiver's public base URL) or set receiver.public_url")
            suffix = f"/hooks/{inst.name}"
            url = base if base.rstrip("/").endswith(suffix) else base.rstrip("/") + suffix
            result = installer.install(url)
            print(f"{inst.name}: webhook for {url}")
        else:
            result = installer.uninstall()
            print(f"{inst.name}: removed")
    except ApiError as exc:
        status = f" (HTTP {exc.status})" if exc.status else ""
        raise Failure(f"{inst.product} API call failed{status}: {exc}") from None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    _print_json(result)
    if isinstance(result, dict) and result.get("signing_secret") and result.get("secret_env"):
        # The product made the secret: the admin must hand it to the connector (it is never stored here).
        print(
            f"next: set the environment variable {result['secret_env']} to the signing_secret above "
            "wherever the connector runs, then restart it",
            file=sys.stderr,
        )
    return EXIT_OK


def cmd_install(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    return _installer_call(args, env, "install")


def cmd_uninstall(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    return _installer_call(args, env, "uninstall")


def cmd_status(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from connector.state import status

    config = config_from_args(args, env)
    conn = redis_for(config)
    data = status.status(conn)
    soon = status.due_soon(conn)  # next timers within the hour: deadlines and escalations coming
    breaches = status.per_instance(conn, "breaches")  # clocks counted breached, per instance
    reconciled = status.reconciliation(conn, config.instances)  # lost webhooks healed, per instance
    stale = status.workers_on_other_policies(conn, config.sla_digest)  # started before a change
    if args.json:
        data = {**data, "due_within_hour": soon, "breaches": breaches, "reconcile": reconciled,
                "workers_on_other_policies": stale}
        _print_json(data)
        return EXIT_OK
    age = data.get("oldest_pending_age_s")
    jobs = data.get("jobs_queued") or {}
    print(
        f"tickets waiting for a look: {data.get('tickets_waiting', 0)}, with a job: "
        f"{data.get('tickets_claimed', 0)}" + (f", oldest {age:.1f}s old" if age else "")
    )
    print("RQ queues: " + ", ".join(f"{name} {count}" for name, count in jobs.items()))
    print(f"timers pending: {data.get('timers_pending', 0)}")
    print(f"failed: {data.get('failed', 0)}")
    refused = data.get("effects_rejected") or {}
    if refused:  # values the products refused, recorded once (the ticket API shows which)
        print("effects refused: " + ", ".join(f"{name} {count:g}" for name, count in sorted(refused.items())))
    print(f"workers alive: {data.get('workers_alive', 0)} {' '.join(data.get('workers') or [])}".rstrip())
    if stale:  # their looks keep the policies they started with
        print(f"workers on other policies or calendars than this file (restart them): {' '.join(stale)}")
    print(f"cron scheduler: {'alive' if data.get('scheduler_alive') else 'not running'}")
    last = data.get("last_event_at") or {}
    for name in config.instances:
        when = last.get(name)
        text = datetime.fromtimestamp(when, UTC).isoformat(timespec="seconds") if when else "never"
        print(f"last event {name}: {text}")
    from connector.state.reconciliation import describe

    for name, item in reconciled.items():
        if item.get("cursor") or item.get("next_run"):  # once the reconcile tick has seen the instance
            print(describe(name, item["every_s"], item))
    if breaches:
        print("breaches counted: " + ", ".join(f"{name} {count:g}" for name, count in breaches.items()))
    if soon:
        print(
            f"next timers within the hour ({len(soon)}{', first 10' if len(soon) == 10 else ''}; "
            "see `sla-connector ticket <instance> <ticket>`):"
        )
        for item in soon:
            name = f"{item['key']} (id {item['ticket']})" if item["key"] else item["ticket"]
            when = datetime.fromtimestamp(item["due_at"], UTC).isoformat(timespec="seconds")
            late = f"{-item['in_s']:.0f}s late" if item["in_s"] < 0 else f"in {item['in_s'] / 60:.0f} min"
            print(f"  {item['instance']} {name}: {when} ({late})")
    return EXIT_OK


def cmd_failed(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from connector.state import failed

    conn = redis_for(config_from_args(args, env))
    if args.action == "list":
        entries = failed.list_failed(conn)
        if args.json:
            _print_json(entries)
        elif not entries:
            print("no failed entries")
        else:
            for entry in entries:
                print(json.dumps(entry, sort_keys=True, default=str))
        return EXIT_OK
    if not args.ids and not args.all:
        raise UsageError(f"failed {args.action}: name entry ids or pass --all")
    if args.ids and args.all:
        raise UsageError(f"failed {args.action}: either entry ids or --all, not both")
    ids = None if args.all else args.ids
    count = (failed.retry_failed if args.action == "retry" else failed.purge_failed)(conn, ids)
    print(f"{'queued again' if args.action == 'retry' else 'purged'}: {count}")
    if ids is not None and count < len(ids):
        raise Failure(f"{len(ids) - count} of the given ids were not in the failed registry")
    return EXIT_OK


def cmd_send_test_event(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    import requests

    from connector.cli.tools import sign_test_event

    config = config_from_args(args, env)
    inst = instance_named(config, args.instance)
    try:
        body = args.payload.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {args.payload}: {exc.strerror or exc}") from None
    try:
        headers = sign_test_event(inst, body, env, datetime.now(UTC), args.delivery_id)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    url = f"{args.url.rstrip('/')}/hooks/{inst.name}"
    try:
        response = requests.post(
            url, data=body, timeout=args.timeout, headers={"Content-Type": "application/json", **headers}
        )
    except requests.RequestException as exc:
        raise Failure(f"could not post to {url}: {exc.__class__.__name__}") from None
    print(f"HTTP {response.status_code}")
    print(response.text.strip())
    return EXIT_OK if response.ok else EXIT_FAILURE


def _lazy(module: str, name: str) -> Callable[[argparse.Namespace, Mapping[str, str]], int]:
    """The command `name` of `module`, imported when it runs: the other commands start without it."""

    def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
        return getattr(importlib.import_module(module), name)(args, env)

    return run


COMMANDS = {
    "run": cmd_run,
    "web": cmd_web,
    "worker": cmd_worker,
    "scheduler": cmd_scheduler,
    "check-config": cmd_check_config,
    "install": cmd_install,
    "uninstall": cmd_uninstall,
    "status": cmd_status,
    "failed": cmd_failed,
    "send-test-event": cmd_send_test_event,
    "backfill": _lazy("connector.cli.backfill", "cmd_backfill"),
    "ticket": _lazy("connector.cli.ticket", "cmd_ticket"),
    "report": _lazy("connector.cli.report", "cmd_report"),
    "simulate": _lazy("connector.cli.simulate", "cmd_simulate"),
    "review": _lazy("connector.cli.review", "cmd_review"),
    "recalculate": _lazy("connector.cli.recalculate", "cmd_recalculate"),
}
